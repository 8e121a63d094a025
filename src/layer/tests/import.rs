//! `import_tar`: a tar taken as it is, whatever its compression.

use std::fs;

use super::*;
use crate::digest::Digest;
use crate::layer::{LayerError, import_tar};

#[test]
fn plain_gzip_and_zstd_tars_import_to_the_same_layer() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    fs::create_dir(&tree).unwrap();
    sh(
        &tree,
        "mkdir -p usr/bin etc && echo hi > etc/motd && ln -s ../etc/motd usr/bin/m && ln etc/motd etc/hard",
    );
    sh(
        dir.path(),
        "tar -C tree --sort=name -cf rootfs.tar . && gzip -k rootfs.tar && zstd -q -k rootfs.tar",
    );
    let tar = fs::read(dir.path().join("rootfs.tar")).unwrap();
    let mut infos = Vec::new();
    for name in ["rootfs.tar", "rootfs.tar.gz", "rootfs.tar.zst"] {
        let input = fs::File::open(dir.path().join(name)).unwrap();
        let mut blob = Vec::new();
        let info = import_tar(input, Compression::Gzip, &mut blob).unwrap();
        assert_eq!(info.diff_id, Digest::of(&tar), "{name}");
        assert_eq!(info.digest, Digest::of(&blob));
        let mut back = Vec::new();
        open_layer(&blob[..], Compression::Gzip)
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == tar, "{name}: the layer is not the tar as-is");
        infos.push(info);
    }
    assert!(infos.windows(2).all(|w| w[0] == w[1]));
    // GNU tar's record padding (10 KiB) is kept too.
    assert_eq!(tar.len() % 10240, 0);
}

#[test]
fn garbage_empty_and_hostile_tars_are_refused() {
    let err = import_tar(
        &b"this is not a tar archive at all"[..],
        Compression::Zstd,
        Vec::new(),
    );
    assert!(matches!(err, Err(LayerError::NotATar(_))), "{err:?}");
    let err = import_tar(&b""[..], Compression::Zstd, Vec::new());
    assert!(matches!(err, Err(LayerError::NotATar(_))), "{err:?}");
    let hostile = RawTar::new()
        .file("ok", b"1")
        .file("../escape", b"2")
        .finish();
    let err = import_tar(&hostile[..], Compression::Zstd, Vec::new()).unwrap_err();
    assert!(err.to_string().contains("../escape"), "{err}");
    let hostile = RawTar::new().hardlink("l", "/etc/shadow").finish();
    let err = import_tar(&hostile[..], Compression::Zstd, Vec::new()).unwrap_err();
    assert!(matches!(err, LayerError::Hostile { .. }), "{err}");
}
