//! [`RawTar`], shared by two test crates: the layer unit tests
//! (`src/layer/tests`) and the hostile-layer tests of the command line
//! (`tests/hostile_layers.rs`, which include this file by path). Each uses
//! part of it.
#![allow(dead_code)]

/// Builds a layer tar by hand, entry by entry, as a hostile or foreign
/// producer might (the tar crate's raw header API, no checks).
pub struct RawTar {
    b: tar::Builder<Vec<u8>>,
}

impl RawTar {
    pub fn new() -> RawTar {
        RawTar {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn header(name: &[u8], kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        assert!(name.len() <= 100, "RawTar keeps names short");
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_000_000);
        h.set_size(size);
        h.set_device_major(0).unwrap();
        h.set_device_minor(0).unwrap();
        h
    }

    pub fn file(mut self, name: &str, data: &[u8]) -> RawTar {
        let mut h = Self::header(
            name.as_bytes(),
            tar::EntryType::Regular,
            0o644,
            data.len() as u64,
        );
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn dir(mut self, name: &str) -> RawTar {
        let mut h = Self::header(name.as_bytes(), tar::EntryType::Directory, 0o755, 0);
        h.set_cksum();
        self.b.append(&h, &[][..]).unwrap();
        self
    }

    pub fn link(mut self, kind: tar::EntryType, name: &str, target: &str) -> RawTar {
        let mut h = Self::header(name.as_bytes(), kind, 0o777, 0);
        let t = target.as_bytes();
        assert!(t.len() <= 100, "RawTar keeps link targets short");
        h.as_old_mut().linkname[..t.len()].copy_from_slice(t);
        h.set_cksum();
        self.b.append(&h, &[][..]).unwrap();
        self
    }

    pub fn symlink(self, name: &str, target: &str) -> RawTar {
        self.link(tar::EntryType::Symlink, name, target)
    }

    pub fn hardlink(self, name: &str, target: &str) -> RawTar {
        self.link(tar::EntryType::Link, name, target)
    }

    /// A file entry with PAX xattr records.
    pub fn file_with_xattrs(mut self, name: &str, data: &[u8], xattrs: &[(&str, &[u8])]) -> RawTar {
        let recs: Vec<(String, &[u8])> = xattrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
            .collect();
        self.b
            .append_pax_extensions(recs.iter().map(|(k, v)| (k.as_str(), *v)))
            .unwrap();
        self.file(name, data)
    }

    pub fn finish(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}
