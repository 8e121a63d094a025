//! The tar format as boxwright writes it: ustar headers, PAX extended headers
//! for what ustar cannot hold (long names, link targets, large ids and sizes,
//! xattrs), nothing that varies from run to run.

use std::collections::BTreeMap;
use std::io::{self, Write};

use tar::{EntryType, Header};

const BLOCK: usize = 512;

/// Largest value of an 8-byte octal header field (uid, gid).
const MAX_OCTAL_8: u64 = 0o7777777;
/// Largest value of the 12-byte octal size field.
const MAX_OCTAL_12: u64 = 0o77777777777;

/// The name PAX headers carry. Readers ignore it; a constant keeps the output
/// independent of anything but the entry itself.
const PAX_NAME: &[u8] = b"././@PaxHeader";

/// One entry's header fields.
pub(crate) struct EntryHead<'a> {
    /// Full entry name: no `./` prefix, directories end in `/`.
    pub name: &'a [u8],
    pub kind: EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: u64,
    pub link: Option<&'a [u8]>,
    pub dev_major: u32,
    pub dev_minor: u32,
    /// `security.capability`, already in v2 form.
    pub capability: Option<&'a [u8]>,
}

/// A tar stream being written to `W`.
pub(crate) struct TarOut<W: Write> {
    w: W,
}

impl<W: Write> TarOut<W> {
    pub(crate) fn new(w: W) -> TarOut<W> {
        TarOut { w }
    }

    /// Writes the header of an entry, preceded by a PAX header when needed.
    /// The caller then writes exactly `head.size` data bytes and calls
    /// [`TarOut::pad`].
    pub(crate) fn head(&mut self, head: &EntryHead<'_>) -> io::Result<()> {
        let mut pax: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
        if head.name.len() > 100 {
            pax.insert("path", head.name.to_vec());
        }
        if let Some(link) = head.link.filter(|l| l.len() > 100) {
            pax.insert("linkpath", link.to_vec());
        }
        if head.uid > MAX_OCTAL_8 {
            pax.insert("uid", head.uid.to_string().into_bytes());
        }
        if head.gid > MAX_OCTAL_8 {
            pax.insert("gid", head.gid.to_string().into_bytes());
        }
        if head.size > MAX_OCTAL_12 {
            pax.insert("size", head.size.to_string().into_bytes());
        }
        if let Some(cap) = head.capability {
            pax.insert("SCHILY.xattr.security.capability", cap.to_vec());
        }
        if !pax.is_empty() {
            let records = pax_records(&pax);
            let mut h = header(PAX_NAME, EntryType::XHeader, 0o644, records.len() as u64)?;
            h.set_mtime(0);
            h.set_cksum();
            self.w.write_all(h.as_bytes())?;
            self.w.write_all(&records)?;
            self.pad(records.len() as u64)?;
        }

        let mut h = header(head.name, head.kind, head.mode, head.size)?;
        // A value too large for its field goes to PAX and the field holds 0.
        h.set_uid(if head.uid > MAX_OCTAL_8 { 0 } else { head.uid });
        h.set_gid(if head.gid > MAX_OCTAL_8 { 0 } else { head.gid });
        h.set_mtime(head.mtime);
        if let Some(link) = head.link {
            let n = link.len().min(100);
            h.as_old_mut().linkname[..n].copy_from_slice(&link[..n]);
        }
        h.set_device_major(head.dev_major)?;
        h.set_device_minor(head.dev_minor)?;
        h.set_cksum();
        self.w.write_all(h.as_bytes())
    }

    /// Writes entry data (the caller counts it).
    pub(crate) fn data(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.w.write_all(bytes)
    }

    /// Pads data of `size` bytes to the next block boundary.
    pub(crate) fn pad(&mut self, size: u64) -> io::Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.w.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    /// Writes the end-of-archive marker (two zero blocks) and returns `W`.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.w.write_all(&[0u8; 2 * BLOCK])?;
        Ok(self.w)
    }
}

/// A ustar header with every numeric field set (readers reject empty ones);
/// names longer than 100 bytes are cut here and carried whole in PAX.
fn header(name: &[u8], kind: EntryType, mode: u32, size: u64) -> io::Result<Header> {
    let mut h = Header::new_ustar();
    let n = name.len().min(100);
    h.as_old_mut().name[..n].copy_from_slice(&name[..n]);
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(if size > MAX_OCTAL_12 { 0 } else { size });
    h.set_mtime(0);
    h.set_device_major(0)?;
    h.set_device_minor(0)?;
    Ok(h)
}

/// PAX records (`"%d %s=%s\n"`, the length counting itself), sorted by key.
fn pax_records(records: &BTreeMap<&str, Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        let base = key.len() + value.len() + 3; // ' ', '=', '\n'
        let mut len = base + 1;
        while len != base + len.to_string().len() {
            len = base + len.to_string().len();
        }
        out.extend_from_slice(len.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(key.as_bytes());
        out.push(b'=');
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn pax_record_lengths_count_themselves() {
        for vlen in [0usize, 1, 5, 6, 7, 90, 93, 94, 95, 994, 995, 996, 9990] {
            let mut m = BTreeMap::new();
            m.insert("path", vec![b'x'; vlen]);
            let rec = pax_records(&m);
            let sp = rec.iter().position(|b| *b == b' ').unwrap();
            let n: usize = std::str::from_utf8(&rec[..sp]).unwrap().parse().unwrap();
            assert_eq!(n, rec.len(), "value length {vlen}");
        }
    }

    #[test]
    fn long_names_links_and_ids_read_back_with_the_tar_crate() {
        let long = "d/".repeat(80) + "file";
        let target = "t/".repeat(70) + "target";
        let mut out = TarOut::new(Vec::new());
        out.head(&EntryHead {
            name: long.as_bytes(),
            kind: EntryType::Regular,
            mode: 0o4755,
            uid: 5_000_000,
            gid: 7,
            size: 3,
            mtime: 1_700_000_000,
            link: None,
            dev_major: 0,
            dev_minor: 0,
            capability: Some(&[
                1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ]),
        })
        .unwrap();
        out.data(b"abc").unwrap();
        out.pad(3).unwrap();
        out.head(&EntryHead {
            name: b"s",
            kind: EntryType::Symlink,
            mode: 0o777,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 1,
            link: Some(target.as_bytes()),
            dev_major: 0,
            dev_minor: 0,
            capability: None,
        })
        .unwrap();
        let bytes = out.finish().unwrap();
        assert_eq!(bytes.len() % 512, 0);

        let mut ar = tar::Archive::new(&bytes[..]);
        let mut entries = ar.entries().unwrap();
        let mut e = entries.next().unwrap().unwrap();
        assert_eq!(&*e.path_bytes(), long.as_bytes());
        assert_eq!(e.header().uid().unwrap(), 5_000_000);
        assert_eq!(e.header().gid().unwrap(), 7);
        assert_eq!(e.header().mode().unwrap(), 0o4755);
        let caps: Vec<(String, Vec<u8>)> = e
            .pax_extensions()
            .unwrap()
            .unwrap()
            .map(|x| x.unwrap())
            .map(|x| (x.key().unwrap().to_string(), x.value_bytes().to_vec()))
            .filter(|(k, _)| k.starts_with("SCHILY"))
            .collect();
        assert_eq!(caps.len(), 1);
        assert_eq!(caps[0].0, "SCHILY.xattr.security.capability");
        let mut data = String::new();
        e.read_to_string(&mut data).unwrap();
        assert_eq!(data, "abc");
        let e = entries.next().unwrap().unwrap();
        assert_eq!(&*e.link_name_bytes().unwrap(), target.as_bytes());
        assert!(entries.next().is_none());
    }
}
