//! A Containerfile's `COPY`/`ADD`, inside the container: the working
//! directory is the source tree, `/` is the image. Sources are selected with
//! [`crate::context`] (globs, in-tree symlink resolution, exclusions), then
//! copied with the same copier as a recipe's `copy`, or unpacked when `ADD`
//! meets a tar archive.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::copy::{CopyJob, copy_into};
use super::error::SandboxError;
use super::spec::CopyFiles;
use crate::context::{Excludes, Selected, has_magic, select};

/// Runs one `COPY`/`ADD` job; the working directory is the source tree.
pub(crate) fn copy_files(job: &CopyFiles) -> Result<(), SandboxError> {
    let bad = |reason: String| SandboxError::Copy {
        path: job.dest.clone(),
        reason,
    };
    let excludes =
        Excludes::new(job.excludes.iter().map(String::as_str)).map_err(|e| bad(e.to_string()))?;
    let source_excludes = Excludes::new(job.source_excludes.iter().map(String::as_str))
        .map_err(|e| bad(e.to_string()))?;
    let root = Path::new(".");
    let mut selected: Vec<Selected> = Vec::new();
    for pattern in &job.sources {
        selected.extend(
            select(root, pattern, &excludes, &source_excludes).map_err(|e| bad(e.to_string()))?,
        );
    }
    let many = selected.len() > 1 || job.sources.iter().any(|s| has_magic(s));
    let owner = owner(job.chown.as_deref())?;
    let dest_dir = job.dest.ends_with('/') || many || job.parents;
    for s in &selected {
        let mut dest = job.dest.trim_end_matches('/').to_string();
        if job.parents
            && let Some(parent) = s.matched.parent().filter(|p| !p.as_os_str().is_empty())
        {
            dest = format!("{dest}/{}", parent.display());
        }
        if dest.is_empty() {
            dest.push('/');
        }
        if s.dir && job.parents {
            dest = format!(
                "{}/{}",
                dest.trim_end_matches('/'),
                s.matched.file_name().unwrap_or_default().to_string_lossy()
            );
        }
        let src: PathBuf = if s.resolved.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            s.resolved.clone()
        };
        if !s.dir && job.extract && is_archive(&src)? {
            unpack(&src, &dest, job.mode)?;
            continue;
        }
        if dest_dir && !dest.ends_with('/') && !s.dir {
            dest.push('/');
        }
        let name = s
            .matched
            .file_name()
            .unwrap_or(OsStr::new("src"))
            .to_os_string();
        copy_into(&CopyJob {
            src: &src,
            src_name: &name,
            dest: dest.trim_start_matches('/'),
            mode: job.mode,
            owner,
            excludes: Some(&excludes),
            source_excludes: Some(&source_excludes),
        })?;
    }
    Ok(())
}

/// `--chown` as Docker reads it: `user[:group]` by name or id, looked up in
/// the image; a user without a group gets the user's id as its group id.
fn owner(spec: Option<&str>) -> Result<(u32, u32), SandboxError> {
    let Some(spec) = spec.filter(|s| !s.is_empty()) else {
        return Ok((0, 0));
    };
    let user = super::users::resolve(spec, Path::new("/"))?;
    if spec.contains(':') {
        Ok((user.uid, user.gid))
    } else {
        Ok((user.uid, user.uid))
    }
}

/// Gzip, zstd, or a plain tar (the `ustar` magic at offset 257).
fn is_archive(path: &Path) -> Result<bool, SandboxError> {
    let mut head = [0u8; 262];
    let mut f = std::fs::File::open(path).map_err(|e| SandboxError::io("open", path, e))?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(SandboxError::io("read", path, e)),
        }
    }
    let head = &head[..n];
    Ok(head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || head.get(257..262) == Some(b"ustar"))
}

/// Unpacks a tar archive into the image directory `dest`, keeping the
/// archive's owners, modes and mtimes as `ADD` does (chrooted: its paths
/// and symlinks resolve in the image). `mode` (`--chmod`) is not applied to
/// unpacked files, as in BuildKit.
fn unpack(src: &Path, dest: &str, _mode: Option<u32>) -> Result<(), SandboxError> {
    let file = std::fs::File::open(src).map_err(|e| SandboxError::io("open", src, e))?;
    let mut head = std::io::BufReader::new(file);
    let magic = {
        use std::io::BufRead;
        head.fill_buf()
            .map_err(|e| SandboxError::io("read", src, e))?
            .get(..4)
            .map(<[u8]>::to_vec)
            .unwrap_or_default()
    };
    let reader: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(head))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::Decoder::new(head).map_err(|e| SandboxError::io("read", src, e))?)
    } else {
        Box::new(head)
    };
    let target = Path::new("/").join(dest.trim_start_matches('/'));
    std::fs::create_dir_all(&target).map_err(|e| SandboxError::io("create", &target, e))?;
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    archive.unpack(&target).map_err(|e| SandboxError::Copy {
        path: src.display().to_string(),
        reason: format!("cannot unpack the archive: {e}"),
    })
}
