//! One streaming pass from an uncompressed tar to a layer blob: hash the tar
//! (diff_id), compress it, hash and count the compressed bytes (digest, size).

use std::io::{self, Write};

use crate::digest::{DigestWriter, Hasher};
use crate::media::{Compression, LayerInfo};

use super::pgzip::ParallelGzip;

/// zstd level for layers: level 3 is zstd's default and the speed/ratio
/// balance registries and containerd use.
const ZSTD_LEVEL: i32 = 3;

/// A `Write` that takes an uncompressed tar stream and writes the compressed
/// layer blob to `W`, computing the diff_id, digest and size on the way.
///
/// Memory stays bounded whatever the input size. The output bytes depend only
/// on the input bytes and the compression, never on the thread count or on how
/// writes are sliced; [`Write::flush`] therefore flushes `W` but does not cut
/// the compressed stream.
pub struct Compressor<W: Write> {
    engine: Engine<W>,
    /// Hash of the uncompressed input; unused for `Compression::None`, where
    /// the blob digest is the diff_id.
    diff: Hasher,
    compression: Compression,
}

enum Engine<W: Write> {
    Gzip(Box<ParallelGzip<DigestWriter<W>>>),
    Zstd(zstd::stream::write::Encoder<'static, DigestWriter<W>>),
    None(DigestWriter<W>),
}

impl<W: Write> Compressor<W> {
    /// A compressor using every available core.
    pub fn new(out: W, compression: Compression) -> io::Result<Compressor<W>> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Compressor::with_threads(out, compression, threads)
    }

    /// A compressor using `threads` worker threads (at least one). The output
    /// is byte-identical for every thread count.
    pub fn with_threads(
        out: W,
        compression: Compression,
        threads: usize,
    ) -> io::Result<Compressor<W>> {
        let out = DigestWriter::new(out);
        let threads = threads.max(1);
        let engine = match compression {
            Compression::Gzip => Engine::Gzip(Box::new(ParallelGzip::new(out, threads)?)),
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
                // zstd's multithreaded mode gives the same frame for any
                // nbWorkers >= 1 (but not for 0, the single-threaded mode),
                // so one worker is the floor, never zero.
                enc.multithread(threads as u32)?;
                enc.include_checksum(true)?;
                Engine::Zstd(enc)
            }
            Compression::None => Engine::None(out),
        };
        Ok(Compressor {
            engine,
            diff: Hasher::new(),
            compression,
        })
    }

    /// Uncompressed bytes written so far.
    pub fn uncompressed_len(&self) -> u64 {
        match &self.engine {
            Engine::None(w) => w.len(),
            _ => self.diff.len(),
        }
    }

    /// Ends the compressed stream and returns the output writer with the
    /// layer's digests, size and media type.
    pub fn finish(self) -> io::Result<(W, LayerInfo)> {
        let out = match self.engine {
            Engine::Gzip(gz) => gz.finish()?,
            Engine::Zstd(enc) => enc.finish()?,
            Engine::None(w) => w,
        };
        let (mut out, digest, size) = out.finish();
        out.flush()?;
        let diff_id = match self.compression {
            Compression::None => digest.clone(),
            _ => self.diff.finish().0,
        };
        let info = LayerInfo {
            digest,
            diff_id,
            size,
            media_type: self.compression.layer_media_type().to_string(),
        };
        Ok((out, info))
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.engine {
            Engine::Gzip(gz) => gz.write(buf)?,
            Engine::Zstd(enc) => enc.write(buf)?,
            Engine::None(w) => return w.write(buf),
        };
        self.diff.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.engine {
            Engine::Gzip(gz) => gz.flush(),
            // Not `enc.flush()`: that would end a zstd block here and make
            // the output depend on when callers flush.
            Engine::Zstd(enc) => enc.get_mut().flush(),
            Engine::None(w) => w.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::media::{OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD};
    use std::io::Read;

    fn sample(len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len);
        let mut x: u64 = 42;
        while v.len() < len {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            if x.is_multiple_of(3) {
                v.extend_from_slice(&x.to_le_bytes());
            } else {
                v.extend_from_slice(format!("entry {} of the sample\n", x % 1000).as_bytes());
            }
        }
        v.truncate(len);
        v
    }

    fn compress(data: &[u8], c: Compression, threads: usize, slice: usize) -> (Vec<u8>, LayerInfo) {
        let mut comp = Compressor::with_threads(Vec::new(), c, threads).unwrap();
        for part in data.chunks(slice) {
            comp.write_all(part).unwrap();
            comp.flush().unwrap();
        }
        assert_eq!(comp.uncompressed_len(), data.len() as u64);
        comp.finish().unwrap()
    }

    #[test]
    fn digests_sizes_and_media_types_match_the_bytes() {
        let data = sample(3_000_000);
        for (c, mt) in [
            (Compression::Gzip, OCI_LAYER_GZIP),
            (Compression::Zstd, OCI_LAYER_ZSTD),
            (Compression::None, OCI_LAYER_TAR),
        ] {
            let (blob, info) = compress(&data, c, 2, 65536);
            assert_eq!(info.media_type, mt);
            assert_eq!(info.diff_id, Digest::of(&data), "{c}");
            assert_eq!(info.digest, Digest::of(&blob), "{c}");
            assert_eq!(info.size, blob.len() as u64, "{c}");
            let mut back = Vec::new();
            super::super::open_layer(&blob[..], c)
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == data, "{c} does not decompress to its input");
        }
        let (blob, info) = compress(&data, Compression::None, 1, 999);
        assert!(blob == data);
        assert_eq!(info.digest, info.diff_id);
    }

    #[test]
    fn output_is_identical_for_any_thread_count_and_flushes() {
        // Large enough for several zstd jobs and gzip members.
        let data = sample(24 << 20);
        for c in [Compression::Gzip, Compression::Zstd] {
            let (one, info1) = compress(&data, c, 1, 1 << 20);
            for (threads, slice) in [(2, 4096), (4, 3 << 20)] {
                let (many, info) = compress(&data, c, threads, slice);
                assert!(one == many, "{c}: {threads} threads gave other bytes");
                assert_eq!(info, info1);
            }
        }
    }

    #[test]
    fn zstd_output_is_checked_by_the_zstd_cli() {
        let data = sample(2_000_000);
        let (blob, _) = compress(&data, Compression::Zstd, 2, 100_000);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.zst");
        std::fs::write(&path, &blob).unwrap();
        let out = std::process::Command::new("zstd")
            .args(["-dc", "--no-progress"])
            .arg(&path)
            .output()
            .expect("zstd must be installed (apt-get install zstd)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout == data);
    }
}
