//! `apply_layer`: round trips, whiteouts in both modes (checked through a
//! real overlay mount), and what a user namespace refuses.

use std::fs;
use std::path::Path;

use super::writer::{CAP_NET_RAW_V2, rich_upperdir};
use super::*;
use crate::layer::{ApplyMode, ApplyReport, apply_layer};

fn apply(blob: &[u8], c: Compression, dest: &Path, mode: ApplyMode) -> ApplyReport {
    apply_layer(blob, c, dest, mode).unwrap()
}

#[test]
fn flatten_round_trip_gives_the_same_tree_and_diff_id() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let dest = dir.path().join("dest");
    fs::create_dir(&src).unwrap();
    fs::create_dir(&dest).unwrap();
    rich_upperdir(&src);
    // What Flatten consumes rather than creates, and what no layer holds.
    for gone in ["gone", "sock"] {
        fs::remove_file(src.join(gone)).unwrap();
    }
    for d in ["opq", "topq"] {
        for x in ["user.overlay.opaque", "trusted.overlay.opaque"] {
            let _ = rustix::fs::lremovexattr(src.join(d), x);
        }
    }
    let (blob, info) = layer_of(&src, Compression::Gzip);
    let report = apply(&blob, Compression::Gzip, &dest, ApplyMode::Flatten);
    assert_eq!(
        report.skipped_devices + report.ownership_failures + report.xattr_failures,
        0,
        "{report:?}"
    );
    assert_eq!(
        report.entries,
        entries(&blob, Compression::Gzip).len() as u64
    );

    let mut want = describe(&src);
    // Only security.capability travels; the user.test xattr does not, which
    // `describe` does not look at anyway.
    want.retain(|_, _| true);
    assert_eq!(describe(&dest), want);
    assert_eq!(
        get_xattr(&dest.join("cap"), "security.capability").unwrap(),
        CAP_NET_RAW_V2
    );
    let (_, again) = layer_of(&dest, Compression::Gzip);
    assert_eq!(again.diff_id, info.diff_id);
}

#[test]
fn overlay_lower_round_trip_keeps_whiteouts_and_opaque_dirs() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let dest = dir.path().join("dest");
    fs::create_dir(&src).unwrap();
    fs::create_dir(&dest).unwrap();
    rich_upperdir(&src);
    fs::remove_file(src.join("sock")).unwrap();
    let (blob, info) = layer_of(&src, Compression::Zstd);
    let report = apply(&blob, Compression::Zstd, &dest, ApplyMode::OverlayLower);
    assert_eq!(report.whiteouts, 3, "{report:?}");

    let gone = super::super::fsmeta::Meta::of(&dest.join("gone")).unwrap();
    assert!(
        gone.is_whiteout(),
        "gone should be a 0/0 char device: {gone:?}"
    );
    for d in ["opq", "topq"] {
        assert_eq!(
            get_xattr(&dest.join(d), "user.overlay.opaque").as_deref(),
            Some(&b"y"[..]),
            "{d}"
        );
    }
    assert_eq!(get_xattr(&dest.join("nopq"), "user.overlay.opaque"), None);
    let (_, again) = layer_of(&dest, Compression::Zstd);
    assert_eq!(again.diff_id, info.diff_id);
}

/// A lower layer's content, flattened into dest.
fn lower_tree(dest: &Path) {
    sh(
        dest,
        "mkdir -p a d/sub e && echo x > a/x && echo y > a/y && echo o > d/old && echo o > d/sub/old && echo e > e/lower",
    );
}

#[test]
fn flatten_whiteouts_remove_lower_content_only() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path();
    lower_tree(dest);
    let layer = RawTar::new()
        .dir("a/")
        .file("a/.wh.x", b"")
        .dir("d/")
        // This layer's own file before the marker: it stays (layer.md).
        .file("d/new", b"new")
        .file("d/.wh..wh..opq", b"")
        .dir("d/sub/")
        .file("d/sub/f", b"f")
        .dir("e/")
        .file("e/mine", b"m")
        .file("e/.wh.mine", b"")
        .file("e/.wh.lower", b"")
        .file(".wh.nothing-there", b"")
        .finish();
    let report = apply(&layer, Compression::None, dest, ApplyMode::Flatten);
    assert_eq!(report.whiteouts, 5);
    let tree: Vec<String> = describe(dest).into_keys().collect();
    assert_eq!(
        tree,
        ["a", "a/y", "d", "d/new", "d/sub", "d/sub/f", "e", "e/mine"],
        "whiteouts applied wrongly"
    );
}

#[test]
fn overlay_lower_layers_mount_as_the_image_would_look() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    for d in ["l1", "l2", "merged"] {
        fs::create_dir(p(d)).unwrap();
    }
    let base = RawTar::new()
        .dir("hide/")
        .file("hide/me", b"me")
        .file("hide/stay", b"stay")
        .dir("opq/")
        .file("opq/old", b"old")
        .dir("gone/")
        .file("gone/f", b"f")
        .finish();
    let top = RawTar::new()
        .dir("hide/")
        .file("hide/.wh.me", b"")
        .dir("opq/")
        .file("opq/.wh..wh..opq", b"")
        .file("opq/new", b"new")
        .file(".wh.gone", b"")
        .finish();
    apply(&base, Compression::None, &p("l1"), ApplyMode::OverlayLower);
    apply(&top, Compression::None, &p("l2"), ApplyMode::OverlayLower);
    let seen = in_readonly_overlay(&[&p("l2"), &p("l1")], &p("merged"), "find . | sort");
    assert_eq!(
        seen, ".\n./hide\n./hide/stay\n./opq\n./opq/new\n",
        "merged view"
    );
}

/// Run inside `unshare -r` (one id mapped) by the test below.
#[test]
#[ignore = "helper: apply_in_a_user_namespace_counts_what_it_cannot_do runs it inside unshare -r"]
fn userns_apply_helper() {
    let layer = std::env::var("BW_TEST_LAYER")
        .expect("set by apply_in_a_user_namespace_counts_what_it_cannot_do");
    let dest = std::env::var("BW_TEST_DEST")
        .expect("set by apply_in_a_user_namespace_counts_what_it_cannot_do");
    let blob = fs::read(layer).unwrap();
    let report = apply_layer(
        &blob[..],
        Compression::None,
        Path::new(&dest),
        ApplyMode::Flatten,
    )
    .unwrap();
    println!("REPORT {}", serde_json::to_string(&report).unwrap());
}

#[test]
fn apply_in_a_user_namespace_counts_what_it_cannot_do() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let dest = dir.path().join("dest");
    fs::create_dir(&src).unwrap();
    fs::create_dir(&dest).unwrap();
    sh(
        &src,
        "echo a > mine && echo b > theirs && chown 1000:1000 theirs && mknod null c 1 3 && mkfifo fifo",
    );
    let layer = dir.path().join("layer.tar");
    let info = write_upperdir(
        &src,
        &opts(Compression::None),
        fs::File::create(&layer).unwrap(),
    )
    .unwrap();
    assert_eq!(info.media_type, crate::media::OCI_LAYER_TAR);

    let out = Command::new("unshare")
        .arg("-r")
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "layer::tests::apply::userns_apply_helper",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("BW_TEST_LAYER", &layer)
        .env("BW_TEST_DEST", &dest)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "helper failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = stdout
        .lines()
        .find_map(|l| l.split_once("REPORT ").map(|(_, json)| json))
        .unwrap_or_else(|| panic!("no report in:\n{stdout}"));
    let report: ApplyReport = serde_json::from_str(json).unwrap();
    assert_eq!(report.skipped_devices, 1, "{report:?}");
    // `theirs` (uid 1000 is not mapped) could not be chowned.
    assert_eq!(report.ownership_failures, 1, "{report:?}");
    assert_eq!(report.entries, 4);
    assert!(!dest.join("null").exists());
    assert!(dest.join("fifo").exists());
    assert_eq!(fs::read_to_string(dest.join("theirs")).unwrap(), "b\n");
}

#[test]
fn security_capability_is_restored_and_overlay_xattrs_are_ignored() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let layer = RawTar::new()
        .file_with_xattrs("ping", b"ping", &[("security.capability", &CAP_NET_RAW_V2)])
        .dir("d/")
        .file_with_xattrs(
            "d/f",
            b"f",
            &[
                ("trusted.overlay.opaque", b"y"),
                ("user.overlay.redirect", b"/x"),
                ("user.other", b"1"),
            ],
        )
        .finish();
    for mode in [ApplyMode::Flatten, ApplyMode::OverlayLower] {
        let dest = dir.path().join(format!("{mode:?}"));
        fs::create_dir(&dest).unwrap();
        let report = apply(&layer, Compression::None, &dest, mode);
        assert_eq!(report.xattr_failures, 0);
        assert_eq!(
            get_xattr(&dest.join("ping"), "security.capability").unwrap(),
            CAP_NET_RAW_V2
        );
        for x in [
            "trusted.overlay.opaque",
            "user.overlay.redirect",
            "user.other",
        ] {
            assert_eq!(get_xattr(&dest.join("d/f"), x), None, "{x} applied");
        }
        assert_eq!(get_xattr(&dest.join("d"), "user.overlay.opaque"), None);
    }
}

#[test]
fn directory_mtimes_survive_their_children_and_existing_dirs_keep_contents() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path();
    sh(dest, "mkdir keep && echo old > keep/old");
    let layer = RawTar::new()
        .dir("keep/")
        .file("keep/new", b"n")
        .dir("fresh/")
        .file("fresh/f", b"f")
        .finish();
    apply(&layer, Compression::None, dest, ApplyMode::Flatten);
    for d in ["keep", "fresh"] {
        let m = super::super::fsmeta::Meta::of(&dest.join(d)).unwrap();
        assert_eq!(m.mtime_secs(), 1_000_000, "{d} mtime");
        assert_eq!(m.mode, 0o755, "{d} mode");
    }
    assert!(dest.join("keep/old").exists() && dest.join("keep/new").exists());
}

#[test]
fn non_utf8_and_long_names_round_trip() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let dest = dir.path().join("dest");
    fs::create_dir(&src).unwrap();
    fs::create_dir(&dest).unwrap();
    let odd = OsStr::from_bytes(b"caf\xe9-\xff");
    let long_odd = [&[b'x'; 120][..], b"\xfe"].concat();
    fs::create_dir(src.join(odd)).unwrap();
    fs::write(src.join(odd).join(OsStr::from_bytes(&long_odd)), "odd").unwrap();
    std::os::unix::fs::symlink(OsStr::from_bytes(&long_odd), src.join("to-odd")).unwrap();
    let (blob, info) = layer_of(&src, Compression::None);
    apply(&blob, Compression::None, &dest, ApplyMode::Flatten);
    assert_eq!(
        fs::read_to_string(dest.join(odd).join(OsStr::from_bytes(&long_odd))).unwrap(),
        "odd"
    );
    assert_eq!(describe(&dest), describe(&src));
    assert_eq!(layer_of(&dest, Compression::None).1.diff_id, info.diff_id);
    // GNU tar reads the raw bytes of the PAX path too.
    let tar = dir.path().join("l.tar");
    fs::write(&tar, &blob).unwrap();
    let listing = sh(dir.path(), "tar --quoting-style=escape -tf l.tar");
    assert!(listing.contains("caf\\351-\\377/xxxx"), "{listing}");
}
