//! [`Store`]: boxwright's own layout plus its extras (unpacked layers, cache, temp, trash).

use std::ffi::OsString;
use std::fs;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use super::error::{Result, StoreError};
use super::fsutil::{TEMP_PREFIX, fsync_dir, move_into, rename_noreplace};
use super::layout::Layout;
use crate::digest::Digest;

/// boxwright's store: an OCI image layout at `root` (readable by skopeo, umoci and
/// oci-image-tool) with boxwright's own state in `ROOT.state/` beside it:
///
/// ```text
/// ROOT.state/layers/<diff_id hex>/   unpacked layers, used as overlay lowerdirs
/// ROOT.state/layer-use/<diff_id hex> an unpacked layer's size; its mtime is the last use
/// ROOT.state/cache/<key hex>.json    build cache: step key -> CacheEntry
/// ROOT.state/tmp/                    temp files and dirs (same file system: atomic renames)
/// ROOT.state/trash/                  dirs renamed away, to be emptied in a user namespace
/// ROOT.state/lock                    flock: builds hold it shared, gc exclusive
/// ROOT.state/builds/<id>.jsonl       build logs (JSON Lines events), the last 50 kept
/// ROOT.state/artifacts/              verified upstream files (toolbox components)
/// ROOT.state/mounts/<name>/          cache mounts of run steps (apt, npm, pip, …)
/// ```
///
/// The state sits beside the layout, not inside it: `oci-image-tool validate`
/// opens every file under a layout, and unpacked layers hold dangling
/// symlinks (it fails) and fifos (it hangs).
///
/// Derefs to its [`Layout`] for blob and tag operations.
#[derive(Clone, Debug)]
pub struct Store {
    layout: Layout,
    extras: PathBuf,
}

impl Deref for Store {
    type Target = Layout;

    fn deref(&self) -> &Layout {
        &self.layout
    }
}

/// [`Store::default_root`] with the environment passed in, so it can be tested without
/// mutating the process environment.
fn default_root_from(env: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    let xdg = crate::xdg::Xdg::with_lookup(env);
    if let Some(p) = xdg.var("BOXWRIGHT_STORE") {
        return PathBuf::from(p);
    }
    // Without a usable home either, a relative `.local/share` (as before).
    xdg.data_home()
        .unwrap_or_else(|| PathBuf::from(".local/share"))
        .join("boxwright")
}

/// `ROOT.state`, beside the layout at `root`.
fn state_dir(root: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(root).map_err(|e| StoreError::io(root, e))?;
    let name = abs.file_name().ok_or_else(|| {
        StoreError::io(
            root,
            std::io::Error::other("a store must be a named directory, not a file system root"),
        )
    })?;
    let mut state = name.to_os_string();
    state.push(".state");
    Ok(abs.with_file_name(state))
}

impl Store {
    /// Opens the store at `root`, creating the layout and every extra directory needed.
    pub fn open(root: &Path) -> Result<Store> {
        let extras = state_dir(root)?;
        for sub in ["layers", "layer-use", "cache", "tmp", "trash"] {
            let dir = extras.join(sub);
            fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        }
        let layout = Layout::create(root)?.with_temp_dir(extras.join("tmp"));
        let store = Store { layout, extras };
        let lock = store.lock_path();
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&lock)
            .map_err(|e| StoreError::io(&lock, e))?;
        Ok(store)
    }

    /// Where the store lives by default: `$BOXWRIGHT_STORE`, else
    /// `$XDG_DATA_HOME/boxwright`, else `~/.local/share/boxwright` (relative
    /// `.local/share/boxwright` when there is no home either).
    pub fn default_root() -> PathBuf {
        default_root_from(|name| std::env::var_os(name))
    }

    /// boxwright's own state beside the layout (`ROOT.state`).
    pub fn state_dir(&self) -> &Path {
        &self.extras
    }

    /// The store's layout (also reachable through `Deref`).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub(crate) fn lock_path(&self) -> PathBuf {
        self.extras.join("lock")
    }

    pub(crate) fn cache_dir(&self) -> PathBuf {
        self.extras.join("cache")
    }

    pub(crate) fn layers_dir(&self) -> PathBuf {
        self.extras.join("layers")
    }

    pub(crate) fn trash_dir(&self) -> PathBuf {
        self.extras.join("trash")
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.extras.join("tmp")
    }

    /// `ROOT.state/builds/`: one log per build (see [`super::BuildLogs`]).
    pub(crate) fn builds_dir(&self) -> PathBuf {
        self.extras.join("builds")
    }

    /// The cache of verified upstream artifacts (see `crate::artifact`).
    pub fn artifacts_dir(&self) -> PathBuf {
        self.extras.join("artifacts")
    }

    /// Where named sandboxes live (`ROOT.state/sandboxes/NAME/`): their
    /// records, upperdirs and logs (see `crate::session`).
    pub fn sandboxes_dir(&self) -> PathBuf {
        self.extras.join("sandboxes")
    }

    /// Where the cache mounts' host directories live (`ROOT.state/mounts`).
    pub fn mounts_dir(&self) -> PathBuf {
        self.extras.join("mounts")
    }

    /// The host directory behind the cache mount at `container_path` (such as
    /// `/var/cache/apt`), created if missing. Kept across builds; never in a layer.
    pub fn mount_cache_dir(&self, container_path: &str) -> Result<PathBuf> {
        // `/var/cache/apt` → `var+cache+apt`: readable, and one-to-one, since
        // every other byte (`+` included) is written as %XX.
        let mut name = String::new();
        for b in container_path.trim_matches('/').bytes() {
            match b {
                b'/' => name.push('+'),
                b if b.is_ascii_alphanumeric() || b"._-".contains(&b) => name.push(b as char),
                b => name.push_str(&format!("%{b:02X}")),
            }
        }
        let dir = self.mounts_dir().join(name);
        fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        Ok(dir)
    }

    /// Where the unpacked layer with this diff_id lives (whether or not it exists).
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.layers_dir().join(diff_id.hex())
    }

    /// Whether the layer with this diff_id has been unpacked and committed.
    pub fn has_layer_dir(&self, diff_id: &Digest) -> bool {
        self.layer_dir(diff_id).is_dir()
    }

    /// A fresh empty directory under `ROOT.state/tmp`; the caller fills it, then commits
    /// it with [`Store::commit_layer_dir`] or removes it.
    pub fn temp_dir(&self) -> Result<PathBuf> {
        let tmp = self.tmp_dir();
        tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempdir_in(&tmp)
            .map(|d| d.keep())
            .map_err(|e| StoreError::io(tmp, e))
    }

    /// Makes a filled temp dir the unpacked layer `diff_id`, atomically. The file system
    /// is synced first so a committed dir never turns out half-empty after a crash. If
    /// another process committed the same layer first, ours is moved to the trash and the
    /// call succeeds (the contents are the same layer).
    pub fn commit_layer_dir(&self, tmp: &Path, diff_id: &Digest) -> Result<()> {
        let dir = fs::File::open(tmp).map_err(|e| StoreError::io(tmp, e))?;
        rustix::fs::syncfs(&dir).map_err(|e| StoreError::io(tmp, e.into()))?;
        let dest = self.layer_dir(diff_id);
        if rename_noreplace(tmp, &dest)? {
            fsync_dir(&self.layers_dir())?;
        } else {
            self.move_to_trash(tmp)?;
        }
        self.record_layer_use(diff_id);
        Ok(())
    }

    /// Renames `path` into `ROOT.state/trash/` and returns where it went.
    pub(crate) fn move_to_trash(&self, path: &Path) -> Result<PathBuf> {
        move_into(&self.trash_dir(), path)
    }

    /// What is waiting in the trash. Entries may hold files of subordinate uids: empty
    /// them from inside a user namespace that maps those ids.
    pub fn trash_entries(&self) -> Vec<PathBuf> {
        let mut entries: Vec<PathBuf> = fs::read_dir(self.trash_dir())
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        entries.sort();
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_mount_dirs_are_one_to_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s")).unwrap();
        let name = |p: &str| {
            let d = store.mount_cache_dir(p).unwrap();
            d.file_name().unwrap().to_string_lossy().into_owned()
        };
        assert_eq!(name("/var/cache/apt"), "var+cache+apt");
        assert_eq!(name("/a+b"), "a%2Bb");
        assert_ne!(name("/a+b"), name("/a/b"));
        assert_eq!(name("/root/my cache"), "root+my%20cache");
    }

    #[test]
    fn open_creates_the_extras_and_a_plain_layout() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s")).unwrap();
        for sub in ["layers", "layer-use", "cache", "tmp", "trash"] {
            assert!(store.extras.join(sub).is_dir(), "{sub}");
        }
        assert!(store.lock_path().is_file());
        assert!(Layout::open(store.root()).is_ok());
        Store::open(store.root()).unwrap();
    }

    #[test]
    fn commit_is_atomic_and_the_loser_of_a_race_goes_to_the_trash() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let diff_id = Digest::of(b"layer");
        let a = store.temp_dir().unwrap();
        let b = store.temp_dir().unwrap();
        assert_ne!(a, b);
        fs::write(a.join("file"), "from a").unwrap();
        fs::write(b.join("file"), "from b").unwrap();
        assert!(!store.has_layer_dir(&diff_id));
        store.commit_layer_dir(&a, &diff_id).unwrap();
        assert!(store.has_layer_dir(&diff_id));
        store.commit_layer_dir(&b, &diff_id).unwrap();
        assert_eq!(
            fs::read_to_string(store.layer_dir(&diff_id).join("file")).unwrap(),
            "from a"
        );
        assert!(!a.exists() && !b.exists());
        let trash = store.trash_entries();
        assert_eq!(trash.len(), 1);
        assert_eq!(fs::read_to_string(trash[0].join("file")).unwrap(), "from b");
        // An empty layer dir is not replaced either (RENAME_NOREPLACE, not rename(2)).
        let empty_id = Digest::of(b"empty");
        let e1 = store.temp_dir().unwrap();
        let e2 = store.temp_dir().unwrap();
        store.commit_layer_dir(&e1, &empty_id).unwrap();
        store.commit_layer_dir(&e2, &empty_id).unwrap();
        assert_eq!(store.trash_entries().len(), 2);
    }

    #[test]
    fn a_dir_from_another_file_system_is_refused_clearly() {
        // /dev/shm is a tmpfs and the system temp dir is on disk on every machine this
        // suite targets; the assertion below fails loudly if that stops being true.
        let store_dir = tempfile::tempdir_in("/dev/shm").unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        let elsewhere = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
        let err = store
            .commit_layer_dir(elsewhere.path(), &Digest::of(b"x"))
            .unwrap_err();
        assert!(matches!(err, StoreError::CrossDevice(_)), "{err}");
    }

    #[test]
    fn default_root_follows_the_environment() {
        fn env<'a>(pairs: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
            move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.into())
        }
        let all = [
            ("BOXWRIGHT_STORE", "/s"),
            ("XDG_DATA_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(default_root_from(env(&all)), PathBuf::from("/s"));
        let xdg = [("XDG_DATA_HOME", "/x"), ("HOME", "/h")];
        assert_eq!(default_root_from(env(&xdg)), PathBuf::from("/x/boxwright"));
        let empty_xdg = [
            ("BOXWRIGHT_STORE", ""),
            ("XDG_DATA_HOME", ""),
            ("HOME", "/h"),
        ];
        assert_eq!(
            default_root_from(env(&empty_xdg)),
            PathBuf::from("/h/.local/share/boxwright")
        );
    }
}
