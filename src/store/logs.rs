//! Build logs: one file per build in `ROOT.state/builds/<id>.jsonl`.
//!
//! The store only keeps the files; what is written in them (JSON Lines
//! progress events) is the business of the `progress` module. A build
//! holds an exclusive `flock` on its log for as long as it runs, so a
//! reader can tell a running build from one whose process died without
//! finishing (the kernel drops the lock with the process), however it died.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::error::{Result, StoreError};
use super::fsutil::rename_noreplace;
use super::root::Store;

/// How many build logs are kept: creating a log removes the oldest beyond
/// this (never one whose build still runs).
pub const KEEP_BUILDS: usize = 50;

const SUFFIX: &str = ".jsonl";

/// The build logs of a store.
#[derive(Clone, Debug)]
pub struct BuildLogs {
    dir: PathBuf,
}

/// A log being written by the running build that owns it; the build's
/// lock on it goes when this is dropped.
#[derive(Debug)]
pub struct BuildLogWriter {
    id: String,
    path: PathBuf,
    file: File,
}

/// One build's log file.
#[derive(Clone, Debug)]
pub struct BuildLogFile {
    pub id: String,
    pub path: PathBuf,
    /// When it was last written.
    pub modified: SystemTime,
}

impl Store {
    /// This store's build logs.
    pub fn build_logs(&self) -> BuildLogs {
        BuildLogs {
            dir: self.builds_dir(),
        }
    }
}

impl BuildLogWriter {
    /// The build's id: 12 lowercase hex digits.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Write for BuildLogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl BuildLogFile {
    /// True while the build that writes this log still runs.
    pub fn is_running(&self) -> bool {
        is_locked(&self.path)
    }
}

/// Whether another open file description holds a lock on `path`.
fn is_locked(path: &Path) -> bool {
    match File::open(path) {
        Ok(f) => matches!(f.try_lock_shared(), Err(fs::TryLockError::WouldBlock)),
        Err(_) => false,
    }
}

/// A fresh build id: 12 lowercase hex digits (48 random bits).
pub fn new_build_id() -> String {
    format!("{:012x}", fastrand::u64(..) >> 16)
}

impl BuildLogs {
    /// The directory holding the logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts the log of a new build under a fresh id, locked for as long as
    /// the writer lives, then removes the oldest logs beyond [`KEEP_BUILDS`].
    pub fn create(&self) -> Result<BuildLogWriter> {
        fs::create_dir_all(&self.dir).map_err(|e| StoreError::io(&self.dir, e))?;
        loop {
            let id = new_build_id();
            // Locked before it gets its name, so no reader ever sees the
            // log of a live build unlocked (it would call it interrupted).
            let tmp = self.dir.join(format!(".{id}.tmp"));
            // 0600: a build's output is its user's (steps may print what
            // they were given).
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(|e| StoreError::io(&tmp, e))?;
            file.lock().map_err(|e| StoreError::io(&tmp, e))?;
            let path = self.dir.join(format!("{id}{SUFFIX}"));
            if rename_noreplace(&tmp, &path)? {
                self.prune(KEEP_BUILDS)?;
                return Ok(BuildLogWriter { id, path, file });
            }
            // 48 random bits collided with a kept log: draw again.
            let _ = fs::remove_file(&tmp);
        }
    }

    /// Every log, newest first.
    pub fn list(&self) -> Result<Vec<BuildLogFile>> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io(&self.dir, e)),
        };
        let mut logs = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| StoreError::io(&self.dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(SUFFIX) else {
                continue;
            };
            if id.starts_with('.') {
                continue;
            }
            // A log removed by a concurrent prune is simply not listed.
            let Ok(meta) = entry.metadata() else { continue };
            logs.push(BuildLogFile {
                id: id.to_string(),
                path: entry.path(),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
        logs.sort_by(|a, b| b.modified.cmp(&a.modified).then(a.id.cmp(&b.id)));
        Ok(logs)
    }

    /// The log of build `id`, given in full or as a unique prefix.
    pub fn find(&self, id: &str) -> Result<BuildLogFile> {
        let logs = self.list()?;
        if let Some(exact) = logs.iter().find(|l| l.id == id) {
            return Ok(exact.clone());
        }
        let matches: Vec<&BuildLogFile> = if id.is_empty() {
            Vec::new()
        } else {
            logs.iter().filter(|l| l.id.starts_with(id)).collect()
        };
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(StoreError::NoSuchBuild {
                id: id.to_string(),
                dir: self.dir.clone(),
            }),
            many => Err(StoreError::AmbiguousBuild {
                id: id.to_string(),
                matches: many
                    .iter()
                    .map(|l| l.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// The most recently written log, if any.
    pub fn latest(&self) -> Result<Option<BuildLogFile>> {
        Ok(self.list()?.into_iter().next())
    }

    /// Removes all but the `keep` newest logs, except logs of running
    /// builds, and temp files of builds that died while creating theirs.
    /// Returns the ids removed.
    pub fn prune(&self, keep: usize) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for log in self.list()?.into_iter().skip(keep) {
            if log.is_running() {
                continue;
            }
            match fs::remove_file(&log.path) {
                Ok(()) => removed.push(log.id),
                // Another build pruned it first.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(&log.path, e)),
            }
        }
        if let Ok(rd) = fs::read_dir(&self.dir) {
            for entry in rd.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') && name.ends_with(".tmp") && !is_locked(&entry.path()) {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s")).unwrap();
        (dir, store)
    }

    #[test]
    fn a_log_is_running_while_its_writer_lives() {
        let (_d, store) = store();
        let logs = store.build_logs();
        let mut w = logs.create().unwrap();
        assert_eq!(w.id().len(), 12);
        assert!(w.id().bytes().all(|b| b.is_ascii_hexdigit()));
        writeln!(w, "{{}}").unwrap();
        let found = logs.find(w.id()).unwrap();
        assert_eq!(found.path, w.path());
        assert!(found.is_running());
        drop(w);
        assert!(!found.is_running());
        assert_eq!(fs::read_to_string(&found.path).unwrap(), "{}\n");
    }

    #[test]
    fn ids_are_found_by_unique_prefix() {
        let (_d, store) = store();
        let logs = store.build_logs();
        fs::create_dir_all(logs.dir()).unwrap();
        for id in ["abc111", "abc222", "def333"] {
            fs::write(logs.dir().join(format!("{id}.jsonl")), "").unwrap();
        }
        assert_eq!(logs.find("d").unwrap().id, "def333");
        assert_eq!(logs.find("abc2").unwrap().id, "abc222");
        assert!(matches!(
            logs.find("abc"),
            Err(StoreError::AmbiguousBuild { .. })
        ));
        assert!(matches!(
            logs.find("zzz"),
            Err(StoreError::NoSuchBuild { .. })
        ));
        assert!(matches!(logs.find(""), Err(StoreError::NoSuchBuild { .. })));
    }

    #[test]
    fn pruning_keeps_the_newest_and_running_builds() {
        let (_d, store) = store();
        let logs = store.build_logs();
        let running = logs.create().unwrap();
        let old = SystemTime::now() - Duration::from_secs(3600);
        // Make the running build's log the oldest of all.
        File::options()
            .write(true)
            .open(running.path())
            .unwrap()
            .set_modified(old)
            .unwrap();
        for i in 0..5u64 {
            let p = logs.dir().join(format!("old{i}.jsonl"));
            fs::write(&p, "").unwrap();
            File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(old + Duration::from_secs(60 * (i + 1)))
                .unwrap();
        }
        fs::write(logs.dir().join(".dead.tmp"), "").unwrap();
        let mut removed = logs.prune(2).unwrap();
        removed.sort();
        assert_eq!(removed, ["old0", "old1", "old2"]);
        let mut left: Vec<String> = logs.list().unwrap().into_iter().map(|l| l.id).collect();
        left.sort();
        let mut expected = vec!["old3".to_string(), "old4".into(), running.id().into()];
        expected.sort();
        assert_eq!(left, expected);
        assert!(!logs.dir().join(".dead.tmp").exists());
        assert_eq!(logs.latest().unwrap().unwrap().id, "old4");
    }
}
