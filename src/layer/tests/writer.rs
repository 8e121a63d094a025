//! `write_upperdir`: what a tree becomes, entry by entry, and determinism.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use rustix::fs::FileType;

use super::*;
use crate::digest::Digest;

/// `cap_net_raw+ep` in v2 form.
pub(super) const CAP_NET_RAW_V2: [u8; 20] = [
    1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

pub(super) fn long(c: char, n: usize) -> String {
    std::iter::repeat_n(c, n).collect()
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// A tree with one of everything a layer can hold, as an upperdir would have
/// it (whiteout device, opaque directories, overlay xattrs), plus a socket
/// that layers cannot hold.
pub(super) fn rich_upperdir(root: &Path) {
    let w = |rel: &str, data: &str| fs::write(root.join(rel), data).unwrap();
    fs::create_dir_all(root.join("a")).unwrap();
    fs::create_dir_all(root.join("b")).unwrap();
    w("a/file", "hello\n");
    w("a/suid", "suid");
    chmod(&root.join("a/suid"), 0o4755);
    w("a/sgid", "sgid");
    chmod(&root.join("a/sgid"), 0o2711);
    w("a/hl1", "linked");
    fs::hard_link(root.join("a/hl1"), root.join("a/hl2")).unwrap();
    fs::hard_link(root.join("a/hl1"), root.join("b/hl3")).unwrap();
    fs::create_dir(root.join("sticky")).unwrap();
    chmod(&root.join("sticky"), 0o1777);
    symlink("a/file", root.join("link")).unwrap();
    symlink("/nonexistent/target", root.join("dangling")).unwrap();
    symlink(long('t', 150), root.join("longtarget")).unwrap();
    mknod(&root.join("fifo"), FileType::Fifo, 0, 0);
    mknod(&root.join("null"), FileType::CharacterDevice, 1, 3);
    mknod(&root.join("blk"), FileType::BlockDevice, 7, 0);
    w("owned", "owned");
    rustix::fs::chown(
        root.join("owned"),
        Some(rustix::fs::Uid::from_raw(1000)),
        Some(rustix::fs::Gid::from_raw(2000)),
    )
    .unwrap();
    w("old", "old");
    let t = rustix::fs::Timespec {
        tv_sec: 1000,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        root.join("old"),
        &rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        },
        rustix::fs::AtFlags::empty(),
    )
    .unwrap();
    w("cap", "cap");
    set_xattr(&root.join("cap"), "security.capability", &CAP_NET_RAW_V2);
    let deep = root.join(long('L', 100)).join(long('M', 100));
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join(long('F', 120)), "deep").unwrap();
    w(&long('n', 100), "exactly 100");
    mknod(&root.join("gone"), FileType::CharacterDevice, 0, 0);
    fs::create_dir(root.join("opq")).unwrap();
    set_xattr(&root.join("opq"), "user.overlay.opaque", b"y");
    w("opq/keep", "keep");
    fs::create_dir(root.join("topq")).unwrap();
    set_xattr(&root.join("topq"), "trusted.overlay.opaque", b"y");
    fs::create_dir(root.join("nopq")).unwrap();
    set_xattr(&root.join("nopq"), "user.overlay.opaque", b"n");
    w("xat", "xattrs");
    set_xattr(&root.join("xat"), "user.test", b"1");
    set_xattr(&root.join("xat"), "user.overlay.origin", b"junk");
    set_xattr(&root.join("xat"), "trusted.overlay.redirect", b"/elsewhere");
    std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
}

#[test]
fn upperdir_becomes_the_documented_entries() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    rich_upperdir(dir.path());
    let (blob, info) = layer_of(dir.path(), Compression::None);
    let ents = entries(&blob, Compression::None);

    let (l, m, f, n) = (
        long('L', 100),
        long('M', 100),
        long('F', 120),
        long('n', 100),
    );
    let expected = [
        format!("{l}/"),
        format!("{l}/{m}/"),
        format!("{l}/{m}/{f}"),
        "a/".into(),
        "a/file".into(),
        "a/hl1".into(),
        "a/hl2".into(),
        "a/sgid".into(),
        "a/suid".into(),
        "b/".into(),
        "b/hl3".into(),
        "blk".into(),
        "cap".into(),
        "dangling".into(),
        "fifo".into(),
        ".wh.gone".into(),
        "link".into(),
        "longtarget".into(),
        n.clone(),
        "nopq/".into(),
        "null".into(),
        "old".into(),
        "opq/".into(),
        "opq/.wh..wh..opq".into(),
        "opq/keep".into(),
        "owned".into(),
        "sticky/".into(),
        "topq/".into(),
        "topq/.wh..wh..opq".into(),
        "xat".into(),
    ];
    assert_eq!(
        names(&ents),
        expected,
        "\n{}",
        listing(&blob, Compression::None)
    );

    let get = |name: &str| ents.iter().find(|e| e.name == name).unwrap();
    for e in &ents {
        assert!(e.uname.is_empty(), "{}: uname must be empty", e.name);
        let want_mtime = if e.name == "old" { 1000 } else { EPOCH };
        assert_eq!(e.mtime, want_mtime, "{}", e.name);
        if e.name != "cap" {
            assert!(
                e.xattrs.is_empty(),
                "{} carries xattrs {:?}",
                e.name,
                e.xattrs
            );
        }
        if e.name != "owned" {
            assert_eq!((e.uid, e.gid), (0, 0), "{}", e.name);
        }
    }
    assert_eq!(get("a/file").data, b"hello\n");
    assert_eq!((get("a/file").kind, get("a/file").mode), ('0', 0o644));
    assert_eq!(get("a/suid").mode, 0o4755);
    assert_eq!(get("a/sgid").mode, 0o2711);
    assert_eq!(get("sticky/").mode, 0o1777);
    assert_eq!(
        (get("a/hl1").kind, get("a/hl1").data.as_slice()),
        ('0', &b"linked"[..])
    );
    for hl in ["a/hl2", "b/hl3"] {
        assert_eq!(
            (get(hl).kind, get(hl).link.as_deref()),
            ('1', Some("a/hl1")),
            "{hl}"
        );
    }
    assert_eq!(
        (get("link").kind, get("link").link.as_deref()),
        ('2', Some("a/file"))
    );
    assert_eq!(get("dangling").link.as_deref(), Some("/nonexistent/target"));
    assert_eq!(
        get("longtarget").link.as_deref(),
        Some(long('t', 150).as_str())
    );
    assert_eq!(get("fifo").kind, '6');
    assert_eq!((get("null").kind, get("null").dev), ('3', (1, 3)));
    assert_eq!((get("blk").kind, get("blk").dev), ('4', (7, 0)));
    assert_eq!((get("owned").uid, get("owned").gid), (1000, 2000));
    assert_eq!(
        get("cap")
            .xattrs
            .get("security.capability")
            .map(Vec::as_slice),
        Some(&CAP_NET_RAW_V2[..])
    );
    assert_eq!(get(&format!("{l}/{m}/{f}")).data, b"deep");
    for marker in [".wh.gone", "opq/.wh..wh..opq"] {
        let e = get(marker);
        assert_eq!((e.kind, e.mode, e.data.len()), ('0', 0o644, 0), "{marker}");
    }
    assert_eq!(info.diff_id, Digest::of(&blob));
    assert!(
        !blob.windows(8).any(|w| w == b"overlay."),
        "an overlay xattr leaked into the layer"
    );
}

#[test]
fn same_tree_gives_same_digests_wherever_it_lives() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one");
    fs::create_dir(&one).unwrap();
    rich_upperdir(&one);
    fs::remove_file(one.join("sock")).unwrap();
    // A copy has other inodes and other directory order on disk.
    let two = dir.path().join("two");
    sh(dir.path(), "cp -a one two");
    for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let (blob1, info1) = layer_of(&one, c);
        let (blob2, info2) = layer_of(&one, c);
        let (_, info3) = layer_of(&two, c);
        assert!(blob1 == blob2, "{c}: two commits of one tree differ");
        assert_eq!(info1, info2);
        assert_eq!(info1, info3, "{c}: a copy of the tree gives another layer");
    }
    let (_, gz) = layer_of(&one, Compression::Gzip);
    let (_, none) = layer_of(&one, Compression::None);
    assert_eq!(
        gz.diff_id, none.diff_id,
        "diff_id must not depend on compression"
    );
}

#[test]
fn v3_capabilities_are_written_as_v2() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ping");
    fs::write(&f, "ping").unwrap();
    chmod(dir.path(), 0o755);
    rustix::fs::chown(
        &f,
        Some(rustix::fs::Uid::from_raw(100_000)),
        Some(rustix::fs::Gid::from_raw(100_000)),
    )
    .unwrap();
    // The root of a user namespace owned by uid 100000 writes a v3 value
    // whose root id is 100000.
    let out = Command::new("setpriv")
        .args([
            "--reuid=100000",
            "--regid=100000",
            "--clear-groups",
            "unshare",
            "-r",
            "setcap",
            "cap_net_raw+ep",
        ])
        .arg(&f)
        .output()
        .expect("setpriv/unshare (util-linux) and setcap (apt-get install libcap2-bin) are needed");
    assert!(
        out.status.success(),
        "setcap in a user namespace failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = get_xattr(&f, "security.capability").unwrap();
    assert_eq!(
        stored.len(),
        24,
        "expected a v3 capability on disk, got {stored:02x?}"
    );
    assert_eq!(stored[3], 3);

    let (blob, _) = layer_of(dir.path(), Compression::None);
    let ents = entries(&blob, Compression::None);
    assert_eq!(names(&ents), ["ping"]);
    assert_eq!(ents[0].uid, 100_000);
    assert_eq!(
        ents[0].xattrs.get("security.capability").map(Vec::as_slice),
        Some(&CAP_NET_RAW_V2[..])
    );
}

#[test]
fn an_empty_upperdir_is_an_empty_but_valid_layer() {
    let dir = tempfile::tempdir().unwrap();
    let (blob, info) = layer_of(dir.path(), Compression::Gzip);
    assert!(entries(&blob, Compression::Gzip).is_empty());
    let (tar, _) = layer_of(dir.path(), Compression::None);
    assert_eq!(tar, vec![0u8; 1024]);
    assert_eq!(info.diff_id, Digest::of(&tar));
}

#[test]
fn unreadable_tree_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let err = write_upperdir(&missing, &opts(Compression::Gzip), Vec::new()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&missing.display().to_string()), "{msg}");
    assert!(!msg.contains('\n'));
}
