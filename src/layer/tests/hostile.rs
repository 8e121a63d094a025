//! Hostile layers: every trick to write outside the destination either lands
//! inside it or is refused, and nothing outside changes.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::layer::{ApplyMode, LayerError, apply_layer};

/// A destination beside an `outside` directory holding a secret.
struct Bed {
    _tmp: tempfile::TempDir,
    top: PathBuf,
    dest: PathBuf,
    outside: PathBuf,
}

impl Bed {
    fn new() -> Bed {
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path().to_path_buf();
        let dest = top.join("dest");
        let outside = top.join("outside");
        fs::create_dir(&dest).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret"), "secret").unwrap();
        Bed {
            _tmp: tmp,
            top,
            dest,
            outside,
        }
    }

    /// Everything outside `dest` that a trick could touch: the outside tree
    /// and the names beside `dest`.
    fn outside_state(&self) -> (BTreeMap<String, String>, Vec<String>, u64) {
        let beside = fs::read_dir(&self.top)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let passwd_links = fs::metadata("/etc/passwd").unwrap().nlink();
        (describe(&self.outside), beside, passwd_links)
    }

    fn apply(
        &self,
        layer: &[u8],
        mode: ApplyMode,
    ) -> Result<crate::layer::ApplyReport, LayerError> {
        apply_layer(layer, Compression::None, &self.dest, mode)
    }
}

fn assert_refused(r: Result<crate::layer::ApplyReport, LayerError>, entry: &str) {
    match r {
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(entry), "error '{msg}' does not name '{entry}'");
            assert!(!msg.contains('\n'));
        }
        Ok(r) => panic!("entry {entry} was accepted: {r:?}"),
    }
}

const MODES: [ApplyMode; 2] = [ApplyMode::Flatten, ApplyMode::OverlayLower];

#[test]
fn dotdot_and_absolute_names_are_refused() {
    for mode in MODES {
        for name in [
            "../evil",
            "a/../../evil",
            "ok/../x",
            "/abs-evil",
            "/tmp/abs-evil",
        ] {
            let bed = Bed::new();
            let before = bed.outside_state();
            let layer = RawTar::new().file(name, b"pwned").finish();
            let r = bed.apply(&layer, mode);
            assert!(
                matches!(r, Err(LayerError::Hostile { .. })),
                "{name}: {r:?}"
            );
            assert_refused(r, name);
            assert_eq!(bed.outside_state(), before, "{name} touched the outside");
            assert!(!Path::new("/abs-evil").exists() && !Path::new("/tmp/abs-evil").exists());
        }
    }
}

#[test]
fn symlinked_parents_resolve_inside_the_destination() {
    for mode in MODES {
        let bed = Bed::new();
        let before = bed.outside_state();
        let out_abs = bed.outside.display().to_string();
        let layer = RawTar::new()
            .symlink("root", "/")
            .file("root/pwned", b"1")
            .symlink("up", "../../../../../..")
            .file("up/pwned2", b"2")
            .finish();
        bed.apply(&layer, mode).unwrap();
        // `/` and `../..` at the root are the root itself.
        assert_eq!(fs::read_to_string(bed.dest.join("pwned")).unwrap(), "1");
        assert_eq!(fs::read_to_string(bed.dest.join("pwned2")).unwrap(), "2");
        assert!(!Path::new("/pwned").exists() && !Path::new("/pwned2").exists());
        assert_eq!(bed.outside_state(), before);

        // `deep` means dest/etc, which does not exist: like `mkdir -p` through
        // a dangling symlink, the entry is refused; never is /etc written.
        let layer = RawTar::new()
            .symlink("deep", "../../../../../../etc")
            .file("deep/pwned3", b"3")
            .finish();
        assert_refused(bed.apply(&layer, mode), "deep/pwned3");
        assert!(!Path::new("/etc/pwned3").exists() && !bed.dest.join("etc").exists());
        // Once dest/etc exists, that is where the entry lands.
        let layer = RawTar::new().dir("etc/").file("deep/pwned3", b"3").finish();
        bed.apply(&layer, mode).unwrap();
        assert_eq!(
            fs::read_to_string(bed.dest.join("etc/pwned3")).unwrap(),
            "3"
        );
        assert!(!Path::new("/etc/pwned3").exists());
        assert_eq!(bed.outside_state(), before);

        // Through a symlink to the real outside directory, absolute or
        // relative: the path means dest/… where nothing exists, so the
        // entry is refused, or lands inside.
        for (link, target) in [("abs", out_abs.as_str()), ("rel", "../outside")] {
            let layer = RawTar::new()
                .symlink(link, target)
                .file(&format!("{link}/secret"), b"pwned")
                .file(&format!("{link}/new"), b"pwned")
                .finish();
            if let Ok(r) = bed.apply(&layer, mode) {
                panic!("{link}: writing through it was accepted ({r:?})");
            }
            assert_eq!(
                bed.outside_state(),
                before,
                "{link} -> {target} touched the outside"
            );
            assert_eq!(
                fs::read_to_string(bed.outside.join("secret")).unwrap(),
                "secret"
            );
        }
    }
}

#[test]
fn an_existing_symlink_is_replaced_not_written_through() {
    for mode in MODES {
        let bed = Bed::new();
        let before = bed.outside_state();
        let abs_secret = bed.outside.join("secret").display().to_string();
        let abs_dir = bed.outside.display().to_string();
        let layer = RawTar::new()
            .symlink("v1", &abs_secret)
            .file("v1", b"pwned")
            .symlink("v2", "../outside/secret")
            .file("v2", b"pwned")
            .symlink("d1", &abs_dir)
            .dir("d1/")
            .file("d1/f", b"inside")
            .finish();
        bed.apply(&layer, mode).unwrap();
        assert_eq!(bed.outside_state(), before);
        for v in ["v1", "v2"] {
            let m = fs::symlink_metadata(bed.dest.join(v)).unwrap();
            assert!(m.is_file(), "{v} should now be a plain file");
            assert_eq!(fs::read_to_string(bed.dest.join(v)).unwrap(), "pwned");
        }
        assert!(fs::symlink_metadata(bed.dest.join("d1")).unwrap().is_dir());
        assert_eq!(fs::read_to_string(bed.dest.join("d1/f")).unwrap(), "inside");
    }
}

#[test]
fn hardlinks_cannot_reach_outside() {
    for mode in MODES {
        for target in ["../outside/secret", "/etc/passwd", "a/../../outside/secret"] {
            let bed = Bed::new();
            let before = bed.outside_state();
            let layer = RawTar::new().hardlink("hl", target).finish();
            let r = bed.apply(&layer, mode);
            assert!(
                matches!(r, Err(LayerError::Hostile { .. })),
                "{target}: {r:?}"
            );
            assert_refused(r, "hl");
            assert_eq!(bed.outside_state(), before);
        }
        // Through a symlinked directory: resolved inside, where the target
        // does not exist.
        let bed = Bed::new();
        let before = bed.outside_state();
        let layer = RawTar::new()
            .symlink("etc", "/etc")
            .hardlink("hl", "etc/passwd")
            .symlink("out", &bed.outside.display().to_string())
            .hardlink("hl2", "out/secret")
            .finish();
        assert_refused(bed.apply(&layer, mode), "hl");
        assert!(!bed.dest.join("hl").exists());
        assert_eq!(bed.outside_state(), before);
    }
}

#[test]
fn whiteouts_cannot_delete_outside() {
    for mode in MODES {
        let bed = Bed::new();
        let before = bed.outside_state();
        let layer = RawTar::new()
            .symlink("wa", &bed.outside.display().to_string())
            .file("wa/.wh.secret", b"")
            .file("wa/.wh..wh..opq", b"")
            .symlink("wr", "../outside")
            .file("wr/.wh.secret", b"")
            .file("wr/.wh..wh..opq", b"")
            .finish();
        // Refusing or acting inside are both fine; touching outside is not.
        let _ = bed.apply(&layer, mode);
        assert_eq!(bed.outside_state(), before, "{mode:?}");

        for name in [".wh..", ".wh.", "x/.wh.."] {
            let bed = Bed::new();
            let layer = RawTar::new().dir("x/").file(name, b"").finish();
            assert_refused(bed.apply(&layer, mode), name);
            assert_eq!(bed.outside_state().0, before.0);
        }
    }
}
