//! Layers written by boxwright, read by independent implementations: GNU tar
//! (listing and extraction with xattrs), umoci (Go's archive/tar and
//! compress/gzip, through a real OCI layout) and the zstd CLI.
//!
//! Needs root (devices, ownership, capabilities), GNU tar, umoci, zstd and
//! setcap; each missing tool fails the test with the package to install.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use boxwright::digest::Digest;
use boxwright::layer::{WriteOptions, write_upperdir};
use boxwright::media::{self, Compression, LayerInfo};

const EPOCH: u64 = 1_600_000_000;

fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "these tests need root (devices, chown, capabilities): run them as root, as CI does"
    );
}

fn run(cmd: &mut Command, install: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} ({e}): {install}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sh(dir: &Path, script: &str) {
    run(
        Command::new("sh").arg("-euc").arg(script).current_dir(dir),
        "sh is missing",
    );
}

fn long(c: char, n: usize) -> String {
    std::iter::repeat_n(c, n).collect()
}

/// An upperdir with hardlinks, long names (> 100 and > 255 bytes), long
/// and dangling symlinks, setuid/setgid/sticky modes, a capability, a fifo,
/// devices, foreign ownership, a whiteout and an opaque directory.
fn build_tree(root: &Path) {
    let (l, m, f) = (long('L', 120), long('M', 120), long('F', 200));
    sh(
        root,
        &format!(
            "mkdir -p a b sticky opq {l}/{m}
             echo hello > a/file
             echo suid > a/suid && chmod 4755 a/suid
             echo sgid > a/sgid && chmod 2711 a/sgid
             chmod 1777 sticky
             echo linked > a/hl1 && ln a/hl1 a/hl2 && ln a/hl1 b/hl3
             echo deep > {l}/{m}/{f}
             ln -s a/file link
             ln -s /nonexistent/target dangling
             ln -s {t} longtarget
             ln -s {l}/{m}/{f} longlink
             mkfifo fifo
             mknod null c 1 3
             mknod loop b 7 0
             echo owned > owned && chown 1000:2000 owned
             echo ping > ping && setcap cap_net_raw+ep ping
             mknod gone c 0 0
             echo keep > opq/keep",
            t = long('t', 150),
        ),
    );
    rustix::fs::lsetxattr(
        root.join("opq"),
        "user.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
}

/// Every path below `root`: type, mode, owner, clamped mtime, content or
/// target, device numbers, capability, and its hardlink group.
fn describe(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), String> = BTreeMap::new();
    for e in walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
    {
        let e = e.unwrap();
        let rel = e
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let md = fs::symlink_metadata(e.path()).unwrap();
        let ft = md.file_type();
        use std::os::unix::fs::FileTypeExt;
        let what = if ft.is_file() {
            let data = fs::read(e.path()).unwrap();
            let mut buf = [0u8; 64];
            let cap = rustix::fs::lgetxattr(e.path(), "security.capability", &mut buf[..])
                .ok()
                .map(|n| hex::encode(&buf[..n]));
            format!("file {} cap={cap:?}", Digest::of(&data).short())
        } else if ft.is_dir() {
            "dir".into()
        } else if ft.is_symlink() {
            format!("symlink -> {}", fs::read_link(e.path()).unwrap().display())
        } else if ft.is_fifo() {
            "fifo".into()
        } else {
            let kind = if ft.is_char_device() { "char" } else { "block" };
            format!("{kind} {:x}", md.rdev())
        };
        let link = if !ft.is_dir() && md.nlink() > 1 {
            let first = inodes
                .entry((md.dev(), md.ino()))
                .or_insert_with(|| rel.clone());
            format!(" linkgroup={first}")
        } else {
            String::new()
        };
        out.insert(
            rel,
            format!(
                "{what} mode={:o} owner={}:{} mtime={}{link}",
                md.mode() & 0o7777,
                md.uid(),
                md.gid(),
                md.mtime().min(EPOCH as i64)
            ),
        );
    }
    out
}

fn write_layer(src: &Path, c: Compression, path: &Path) -> LayerInfo {
    let opts = WriteOptions {
        compression: c,
        source_date_epoch: EPOCH,
    };
    write_upperdir(src, &opts, fs::File::create(path).unwrap()).unwrap()
}

/// What the tree looks like once a reader that does not know whiteouts
/// (GNU tar) extracts it: markers are plain empty files.
fn expected_plain(src: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut want = src.clone();
    let marker = format!(
        "file {} cap=None mode=644 owner=0:0 mtime={EPOCH}",
        Digest::of(b"").short()
    );
    want.remove("gone");
    want.insert(".wh.gone".into(), marker.clone());
    want.insert("opq/.wh..wh..opq".into(), marker);
    want
}

#[test]
fn gnu_tar_lists_and_extracts_the_layer() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let out = dir.path().join("out");
    fs::create_dir(&src).unwrap();
    fs::create_dir(&out).unwrap();
    build_tree(&src);
    let want = expected_plain(&describe(&src));
    // The comparison covers what matters: capability and hardlink groups.
    assert!(
        want["ping"].contains("cap=Some(\"0100000200200000"),
        "{}",
        want["ping"]
    );
    assert!(
        want["b/hl3"].contains("linkgroup=a/hl1"),
        "{}",
        want["b/hl3"]
    );

    for (c, flag) in [
        (Compression::None, ""),
        (Compression::Gzip, "-z"),
        (Compression::Zstd, "--zstd"),
    ] {
        let layer = dir.path().join(format!("layer-{c}"));
        let info = write_layer(&src, c, &layer);
        assert_eq!(info.digest, Digest::of(&fs::read(&layer).unwrap()));

        let mut list = Command::new("tar");
        list.arg("-tvf").arg(&layer);
        if !flag.is_empty() {
            list.arg(flag);
        }
        let listing = run(&mut list, "install GNU tar (apt-get install tar zstd)");
        let (l, m, f) = (long('L', 120), long('M', 120), long('F', 200));
        let (lmf, t) = (format!("{l}/{m}/{f}"), long('t', 150));
        // Each row: the parts one listing line must hold.
        let rows: [&[&str]; 13] = [
            &["-rw-r--r-- 0/0", " 5 ", &lmf],
            &["hrw-r--r-- 0/0", "a/hl2 link to a/hl1"],
            &["hrw-r--r-- 0/0", "b/hl3 link to a/hl1"],
            &["lrwxrwxrwx", "dangling -> /nonexistent/target"],
            &["lrwxrwxrwx", &format!("longtarget -> {t}")],
            &["-rwsr-xr-x 0/0", "a/suid"],
            &["-rwx--s--x 0/0", "a/sgid"],
            &["drwxrwxrwt 0/0", "sticky/"],
            &["crw-r--r-- 0/0", " 1,3 ", "null"],
            &["brw-r--r-- 0/0", " 7,0 ", "loop"],
            &["prw-r--r-- 0/0", "fifo"],
            &["-rw-r--r-- 1000/2000", "owned"],
            &["-rw-r--r-- 0/0", " 0 ", "opq/.wh..wh..opq"],
        ];
        for parts in rows {
            assert!(
                listing
                    .lines()
                    .any(|line| parts.iter().all(|p| line.contains(p))),
                "{c}: no line with {parts:?} in tar -tv:\n{listing}"
            );
        }
        assert!(listing.contains(" .wh.gone\n"), "{c}: whiteout missing");
        assert!(
            listing.contains(" 2020-09-13 "),
            "{c}: mtimes are not the epoch"
        );
        assert!(!listing.contains("./"), "{c}: names must not start with ./");

        fs::remove_dir_all(&out).unwrap();
        fs::create_dir(&out).unwrap();
        let mut x = Command::new("tar");
        x.args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf"])
            .arg(&layer)
            .arg("-C")
            .arg(&out);
        if !flag.is_empty() {
            x.arg(flag);
        }
        run(&mut x, "install GNU tar (apt-get install tar zstd)");
        assert_eq!(describe(&out), want, "{c}: GNU tar extracted another tree");
    }
}

/// Writes a one-layer OCI image layout around `layer` by hand.
fn oci_layout(dir: &Path, layer: &Path, info: &LayerInfo) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    fs::copy(layer, blobs.join(info.digest.hex())).unwrap();
    let put = |bytes: Vec<u8>| {
        let d = Digest::of(&bytes);
        fs::write(blobs.join(d.hex()), &bytes).unwrap();
        (d, bytes.len())
    };
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [info.diff_id.to_string()]},
    });
    let (cd, cs) = put(serde_json::to_vec(&config).unwrap());
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_CONFIG, "digest": cd.to_string(), "size": cs},
        "layers": [{"mediaType": info.media_type, "digest": info.digest.to_string(), "size": info.size}],
    });
    let (md, ms) = put(serde_json::to_vec(&manifest).unwrap());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": media::OCI_MANIFEST, "digest": md.to_string(), "size": ms,
                       "annotations": {media::ANNOTATION_REF_NAME: "t"}}],
    });
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

#[test]
fn umoci_unpacks_the_parallel_gzip_layer() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    build_tree(&src);
    let layer = dir.path().join("layer.tar.gz");
    let info = write_layer(&src, Compression::Gzip, &layer);
    let layout = dir.path().join("layout");
    oci_layout(&layout, &layer, &info);
    let bundle = dir.path().join("bundle");
    run(
        Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:t", layout.display()))
            .arg(&bundle),
        "install umoci (apt-get install umoci)",
    );
    // umoci applies whiteouts (nothing below to delete) and drops markers.
    let mut want = describe(&src);
    want.remove("gone");
    assert_eq!(
        describe(&bundle.join("rootfs")),
        want,
        "umoci unpacked another tree"
    );
}

#[test]
fn umoci_reads_a_multi_member_gzip_layer_of_big_files() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    // ~5 MiB: several 1 MiB gzip members, members cutting through files.
    let mut x: u64 = 1;
    for i in 0..5 {
        let data: Vec<u8> = (0..1_100_000)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                if x >> 62 == 0 {
                    (x >> 40) as u8
                } else {
                    b'a' + (i as u8)
                }
            })
            .collect();
        fs::write(src.join(format!("big{i}")), data).unwrap();
    }
    fs::set_permissions(src.join("big0"), fs::Permissions::from_mode(0o600)).unwrap();
    let layer = dir.path().join("layer.tar.gz");
    let info = write_layer(&src, Compression::Gzip, &layer);
    let gz = fs::read(&layer).unwrap();
    let members = gz
        .windows(10)
        .filter(|w| *w == [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255])
        .count();
    assert!(
        members >= 5,
        "expected several gzip members, found {members}"
    );
    let layout = dir.path().join("layout");
    oci_layout(&layout, &layer, &info);
    let bundle = dir.path().join("bundle");
    run(
        Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:t", layout.display()))
            .arg(&bundle),
        "install umoci (apt-get install umoci)",
    );
    assert_eq!(describe(&bundle.join("rootfs")), describe(&src));
    // And the zstd CLI reads the zstd form to the same tar.
    let zst = dir.path().join("layer.tar.zst");
    let zinfo = write_layer(&src, Compression::Zstd, &zst);
    assert_eq!(zinfo.diff_id, info.diff_id);
    let raw = Command::new("zstd")
        .args(["-dc", "--no-progress"])
        .arg(&zst)
        .output()
        .expect("install zstd (apt-get install zstd)");
    assert!(raw.status.success());
    assert_eq!(Digest::of(&raw.stdout), zinfo.diff_id);
}
