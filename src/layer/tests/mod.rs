//! Tests of the layer module against real file systems, real overlayfs
//! mounts and real tools. They need root (as CI runs them); each says so
//! when it is not.

mod apply;
mod hostile;
mod import;
mod raw_tar;
mod snapshot_overlay;
mod writer;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use crate::media::{Compression, LayerInfo};
pub(super) use raw_tar::RawTar;

use super::{WriteOptions, open_layer, write_upperdir};

/// The SOURCE_DATE_EPOCH of the tests: older than any file they create, so
/// every mtime is clamped to it unless a test sets an older one.
pub(super) const EPOCH: u64 = 1_600_000_000;

pub(super) fn opts(compression: Compression) -> WriteOptions {
    WriteOptions {
        compression,
        source_date_epoch: EPOCH,
    }
}

pub(super) fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test needs root (mknod, chown, overlay mounts): run the suite as root, as CI does"
    );
}

/// Runs `sh -euc SCRIPT` in `dir` and returns its stdout; fails the test
/// with stderr when the script fails.
pub(super) fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("sh")
        .arg("-euc")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("sh must be installed");
    assert!(
        out.status.success(),
        "script failed: {script}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Mounts an overlay (`userxattr`, inside `unshare -r -m`, as the sandbox
/// does) of `lowers` (topmost first) with `upper`, runs `script` in the
/// merged view and returns its stdout. The mount dies with the namespace.
pub(super) fn in_overlay(
    lowers: &[&Path],
    upper: &Path,
    work: &Path,
    merged: &Path,
    script: &str,
) -> String {
    let lowerdir: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
    let full = format!(
        "mount -t overlay overlay -o lowerdir={},upperdir={},workdir={},userxattr {m}\ncd {m}\n{script}\ncd /\numount {m}\n",
        lowerdir.join(":"),
        upper.display(),
        work.display(),
        m = merged.display(),
    );
    let out = Command::new("unshare")
        .args(["-r", "-m", "sh", "-euc", &full])
        .output()
        .expect("unshare must be installed (apt-get install util-linux)");
    assert!(
        out.status.success(),
        "overlay script failed:\n{full}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Like [`in_overlay`] with a read-only overlay of lowers only.
pub(super) fn in_readonly_overlay(lowers: &[&Path], merged: &Path, script: &str) -> String {
    let lowerdir: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
    let full = format!(
        "mount -t overlay overlay -o lowerdir={},userxattr {m}\ncd {m}\n{script}\ncd /\numount {m}\n",
        lowerdir.join(":"),
        m = merged.display(),
    );
    let out = Command::new("unshare")
        .args(["-r", "-m", "sh", "-euc", &full])
        .output()
        .expect("unshare must be installed (apt-get install util-linux)");
    assert!(
        out.status.success(),
        "overlay script failed:\n{full}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(super) fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(path, name, value, rustix::fs::XattrFlags::empty())
        .unwrap_or_else(|e| panic!("setxattr {name} on {}: {e}", path.display()));
}

pub(super) fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    super::fsmeta::xattr(path, name).unwrap()
}

pub(super) fn mknod(path: &Path, ty: rustix::fs::FileType, major: u32, minor: u32) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        ty,
        rustix::fs::Mode::from_raw_mode(0o644),
        rustix::fs::makedev(major, minor),
    )
    .unwrap_or_else(|e| panic!("mknod {}: {e}", path.display()));
}

/// The layer of upperdir `upper`, in memory.
pub(super) fn layer_of(upper: &Path, c: Compression) -> (Vec<u8>, LayerInfo) {
    let mut blob = Vec::new();
    let info = write_upperdir(upper, &opts(c), &mut blob).unwrap();
    (blob, info)
}

/// One tar entry as the tar crate reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Ent {
    pub name: String,
    pub kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub link: Option<String>,
    pub data: Vec<u8>,
    pub dev: (u32, u32),
    pub xattrs: BTreeMap<String, Vec<u8>>,
    pub uname: Vec<u8>,
}

pub(super) fn entries(blob: &[u8], c: Compression) -> Vec<Ent> {
    let mut ar = tar::Archive::new(open_layer(blob, c));
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let mut xattrs = BTreeMap::new();
        if let Some(exts) = e.pax_extensions().unwrap() {
            for x in exts {
                let x = x.unwrap();
                if let Some(k) = x.key().unwrap().strip_prefix("SCHILY.xattr.") {
                    xattrs.insert(k.to_string(), x.value_bytes().to_vec());
                }
            }
        }
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push(Ent {
            name: String::from_utf8_lossy(&e.path_bytes()).into_owned(),
            kind: h.entry_type().as_byte() as char,
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            mtime: h.mtime().unwrap(),
            link: e
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned()),
            data,
            dev: (
                h.device_major().unwrap().unwrap_or(0),
                h.device_minor().unwrap().unwrap_or(0),
            ),
            xattrs,
            uname: h.username_bytes().unwrap_or_default().to_vec(),
        });
    }
    out
}

pub(super) fn names(ents: &[Ent]) -> Vec<&str> {
    ents.iter().map(|e| e.name.as_str()).collect()
}

/// `tar -tv` of an uncompressed layer, for failure messages.
pub(super) fn listing(blob: &[u8], c: Compression) -> String {
    entries(blob, c)
        .iter()
        .map(|e| {
            format!(
                "{} {:o} {}:{} {} {} {:?} {:?}\n",
                e.kind,
                e.mode,
                e.uid,
                e.gid,
                e.mtime,
                e.name,
                e.link,
                e.data.len()
            )
        })
        .collect()
}

/// Every path below `root` with what can be compared of it (type, mode,
/// owner, mtime clamped to [`EPOCH`], content or target, device numbers,
/// capability), for checking a tree against another.
pub(super) fn describe(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    super::fsmeta::walk(root, |key, m| {
        let path = key.under(root);
        let what = match m.kind {
            super::fsmeta::Kind::File => {
                let data = std::fs::read(&path).unwrap();
                format!("file {}", crate::digest::Digest::of(&data).short())
            }
            super::fsmeta::Kind::Symlink => {
                format!(
                    "symlink -> {}",
                    std::fs::read_link(&path).unwrap().display()
                )
            }
            super::fsmeta::Kind::Dir => "dir".to_string(),
            k => format!("{k:?} {}:{}", m.rdev_major, m.rdev_minor),
        };
        let cap = if m.kind == super::fsmeta::Kind::File {
            get_xattr(&path, "security.capability").map(hex::encode)
        } else {
            None
        };
        let mtime = m.mtime_secs().min(EPOCH as i64);
        out.insert(
            String::from_utf8_lossy(&key.0).into_owned(),
            format!(
                "{what} mode={:o} owner={}:{} mtime={mtime} cap={cap:?}",
                m.mode, m.uid, m.gid
            ),
        );
        Ok(true)
    })
    .unwrap();
    out
}
