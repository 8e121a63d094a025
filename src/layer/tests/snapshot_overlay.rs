//! The snapshot diff against the real thing: one change script run on an
//! overlayfs mount and on a plain copy of the same tree must give the same
//! layer.

use std::fs;

use super::*;
use crate::layer::{
    Snapshot, write_snapshot_diff, write_snapshot_diff_filtered, write_upperdir_filtered,
};

/// The lower tree both sides start from.
const LOWER: &str = "
mkdir -p etc a/b d/sub/deeper r/old usr/share/doc opt keep/untouched
echo conf > etc/conf
echo mode > etc/mode
echo f > a/b/f
echo g > a/b/g
echo x > d/x
echo z > d/sub/deeper/z
echo old > r/old/file
echo r > r/top
echo doc > usr/share/doc/f
echo bin > usr/share/doc/bin
echo same > keep/untouched/file
ln -s ../etc/conf keep/oldlink
";

/// Every kind of change a step makes.
const CHANGES: &str = "
echo new > etc/new.txt                      # create a file
echo more >> etc/conf                       # modify a file
chmod 600 etc/mode                          # metadata only
rm a/b/f                                    # delete a file
rm -rf d                                    # delete a tree
rm -rf r && mkdir r && echo in > r/inside   # replace a directory
mkdir -p opt/new/sub && echo n > opt/new/sub/file
ln -s ../etc/conf usr/link                  # new symlink
ln -s /nonexistent usr/dangling             # dangling symlink
ln etc/new.txt etc/hard                     # hardlink to a new file
ln usr/share/doc/f usr/share/doc/g          # hardlink to a lower file
echo s > usr/su && chmod 4755 usr/su        # setuid file
rm usr/share/doc/bin && mkdir usr/share/doc/bin && echo d > usr/share/doc/bin/x  # file -> dir
echo top > rootfile
";

#[test]
fn snapshot_diff_equals_the_overlay_upperdir() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    for d in ["lower", "upper", "work", "merged"] {
        fs::create_dir(p(d)).unwrap();
    }
    sh(&p("lower"), LOWER);
    sh(dir.path(), "cp -a lower copy");

    // The overlay way: the upperdir is the diff.
    in_overlay(
        &[&p("lower")],
        &p("upper"),
        &p("work"),
        &p("merged"),
        CHANGES,
    );
    let mut upper_blob = Vec::new();
    let upper = write_upperdir(&p("upper"), &opts(Compression::None), &mut upper_blob).unwrap();

    // The fallback: snapshot, same change on a plain tree, compare. The
    // snapshot crosses a process boundary as JSON in real use.
    let before = Snapshot::take(&p("copy")).unwrap();
    let before: Snapshot = serde_json::from_str(&serde_json::to_string(&before).unwrap()).unwrap();
    sh(&p("copy"), CHANGES);
    let mut snap_blob = Vec::new();
    let snap = write_snapshot_diff(
        &p("copy"),
        &before,
        &opts(Compression::None),
        &mut snap_blob,
    )
    .unwrap();

    assert_eq!(
        listing(&snap_blob, Compression::None),
        listing(&upper_blob, Compression::None),
        "snapshot diff (left) and overlay upperdir (right) differ"
    );
    assert_eq!(snap.diff_id, upper.diff_id);

    // And what the layer says is what the script did.
    let ents = entries(&upper_blob, Compression::None);
    let got = names(&ents);
    for want in [
        "a/",
        "a/b/",
        "a/b/.wh.f",
        ".wh.d",
        "r/",
        "r/.wh..wh..opq",
        "r/inside",
        "etc/new.txt",
        "etc/hard",
        "usr/share/doc/g",
        "usr/share/doc/bin/",
        "usr/share/doc/bin/.wh..wh..opq",
        "usr/su",
        "rootfile",
        "opt/new/sub/file",
        "usr/dangling",
    ] {
        assert!(
            got.contains(&want),
            "{want} missing from\n{}",
            listing(&upper_blob, Compression::None)
        );
    }
    for unwanted in ["d/x", "a/b/g", "keep/", "r/old/", "r/.wh.old", ".wh.r"] {
        assert!(
            !got.contains(&unwanted),
            "{unwanted} should not be in the layer"
        );
    }
    let su = ents.iter().find(|e| e.name == "usr/su").unwrap();
    assert_eq!(su.mode, 0o4755);

    // Gzip and zstd give identical digests both ways too.
    for c in [Compression::Gzip, Compression::Zstd] {
        let a = write_upperdir(&p("upper"), &opts(c), std::io::sink()).unwrap();
        let b = write_snapshot_diff(&p("copy"), &before, &opts(c), std::io::sink()).unwrap();
        assert_eq!(a, b, "{c}");
    }

    // Filtered (as fork leaves paths out): the same layer and the same
    // counts both ways, a file, a deletion and a whole new tree left out.
    let exclude = |p: &str| matches!(p, "/etc/conf" | "/a/b/f" | "/opt/new");
    let (a, a_stats) = write_upperdir_filtered(
        &p("upper"),
        &opts(Compression::None),
        std::io::sink(),
        &exclude,
    )
    .unwrap();
    let (b, b_stats) = write_snapshot_diff_filtered(
        &p("copy"),
        &before,
        &opts(Compression::None),
        std::io::sink(),
        &exclude,
    )
    .unwrap();
    assert_eq!(a, b);
    assert_eq!(a_stats, b_stats);
    assert_eq!(a_stats.excluded_paths, ["/a/b/f", "/etc/conf", "/opt/new"]);
    assert_ne!(a.diff_id, upper.diff_id, "the exclusions changed the layer");
}

#[test]
fn an_unchanged_tree_gives_an_empty_layer() {
    let dir = tempfile::tempdir().unwrap();
    sh(
        dir.path(),
        "mkdir -p x/y && echo a > x/y/f && ln -s f x/y/l",
    );
    let before = Snapshot::take(dir.path()).unwrap();
    assert_eq!(before.len(), 4);
    let mut blob = Vec::new();
    write_snapshot_diff(dir.path(), &before, &opts(Compression::None), &mut blob).unwrap();
    assert!(
        entries(&blob, Compression::None).is_empty(),
        "{}",
        listing(&blob, Compression::None)
    );
}
