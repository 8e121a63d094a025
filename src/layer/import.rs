//! Importing a tar as a layer as-is (a `rootfs:FILE.tar` base): its bytes are
//! kept, so the diff_id is the tar's own sha256.

use std::io::{self, BufRead, BufReader, Read, Write};

use crate::media::{Compression, LayerInfo};

use super::apply::{check_link_target, normalize_entry_name};
use super::compress::Compressor;
use super::error::LayerError;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// Recompresses the tar read from `r` (plain, or gzip or zstd, told apart by
/// their magic bytes) into a layer written to `out`. The uncompressed bytes
/// are kept exactly; the tar structure and entry names are checked on the
/// way, so a corrupt or hostile tar fails here rather than when applied.
pub fn import_tar<W: Write>(
    r: impl Read,
    compression: Compression,
    out: W,
) -> Result<LayerInfo, LayerError> {
    let mut r = BufReader::with_capacity(256 * 1024, r);
    let head = r.fill_buf().map_err(LayerError::ReadLayer)?;
    if head.is_empty() {
        return Err(LayerError::NotATar("the input is empty".into()));
    }
    let tar: Box<dyn Read + '_> = if head.starts_with(GZIP_MAGIC) {
        Box::new(flate2::read::MultiGzDecoder::new(r))
    } else if head.starts_with(ZSTD_MAGIC) {
        Box::new(zstd::stream::read::Decoder::with_buffer(r).map_err(LayerError::ReadLayer)?)
    } else {
        Box::new(r)
    };
    let comp = Compressor::new(out, compression).map_err(LayerError::WriteLayer)?;
    let mut tee = Tee {
        r: tar,
        w: comp,
        write_err: None,
    };
    let result = check_entries(&mut tee);
    if let Some(e) = tee.write_err.take() {
        return Err(LayerError::WriteLayer(e));
    }
    result?;
    // What follows the end-of-archive blocks (record padding) is part of the
    // tar's bytes too.
    io::copy(&mut tee, &mut io::sink()).map_err(|e| match tee.write_err.take() {
        Some(w) => LayerError::WriteLayer(w),
        None => LayerError::ReadLayer(e),
    })?;
    let (_, info) = tee.w.finish().map_err(LayerError::WriteLayer)?;
    Ok(info)
}

/// Reads every entry (data included, which is how it reaches the tee),
/// checking the structure and refusing names that would leave the root.
fn check_entries<R: Read, W: Write>(tee: &mut Tee<R, W>) -> Result<(), LayerError> {
    let mut archive = tar::Archive::new(tee);
    let entries = archive.entries().map_err(|e| LayerError::not_a_tar(&e))?;
    let mut count = 0u64;
    for entry in entries {
        let mut entry = entry.map_err(|e| LayerError::not_a_tar(&e))?;
        count += 1;
        let name = entry.path_bytes().into_owned();
        normalize_entry_name(&name)?;
        if entry.header().entry_type() == tar::EntryType::Link {
            let target = entry
                .link_name_bytes()
                .map(|l| l.into_owned())
                .unwrap_or_default();
            check_link_target(&name, &target)?;
        }
        io::copy(&mut entry, &mut io::sink()).map_err(|e| LayerError::not_a_tar(&e))?;
    }
    if count == 0 {
        return Err(LayerError::NotATar("the archive holds no entries".into()));
    }
    Ok(())
}

/// A reader that also writes all it reads to a compressor; a write error is
/// kept aside so it is reported as such, not as a read error.
struct Tee<R: Read, W: Write> {
    r: R,
    w: Compressor<W>,
    write_err: Option<io::Error>,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.r.read(buf)?;
        if let Err(e) = self.w.write_all(&buf[..n]) {
            let msg = e.to_string();
            self.write_err = Some(e);
            return Err(io::Error::other(msg));
        }
        Ok(n)
    }
}
