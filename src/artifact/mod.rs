//! Upstream artifacts: pinned files (runtime tarballs, ttyd, code-server, gh)
//! fetched on the build host, verified against the catalog's checksum and
//! kept in the store's artifact cache, from which the driver mounts them
//! read-only into the step that installs them.
//!
//! Where a file is looked for: the cache first
//! (`ROOT.state/artifacts/<algorithm>-<hex>/<file>`), then either upstream's
//! URL or, with a mirror (`--artifact-mirror DIR_OR_URL`), only
//! `MIRROR/<component>/<version>/<file>`, as air-gapped builders need. A file
//! whose checksum differs is discarded and the build fails naming it; a file
//! found nowhere fails the build naming every place looked in. With
//! `offline`, nothing is fetched over the network and
//! [`Fetcher::check_offline`] lists up front everything a build would need.

mod error;
mod http;
mod verify;

#[cfg(test)]
mod tests;

use std::fs;
use std::path::PathBuf;

pub use error::ArtifactError;

use crate::catalog::ArtifactFile;
use verify::{HashingWriter, file_checksum};

/// One artifact to get.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Mirror path segment, such as `code-server`.
    pub component: &'a str,
    /// Upstream's version, such as `4.139.1`.
    pub version: &'a str,
    pub file: &'a ArtifactFile,
}

impl Request<'_> {
    /// `code-server 4.139.1 (code-server-4.139.1-linux-amd64.tar.gz)`.
    pub fn describe(&self) -> String {
        format!("{} {} ({})", self.component, self.version, self.file.file)
    }

    /// `<component>/<version>/<file>`, the file's place in a mirror.
    pub fn mirror_path(&self) -> String {
        format!("{}/{}/{}", self.component, self.version, self.file.file)
    }
}

/// Where artifacts come from instead of upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mirror {
    /// A local directory laid out as `<component>/<version>/<file>`.
    Dir(PathBuf),
    /// An HTTP(S) server laid out the same way; no trailing `/`.
    Url(String),
}

impl Mirror {
    /// `http(s)://...` is a URL; anything else (or `file://...`) a directory.
    pub fn parse(text: &str) -> Mirror {
        if text.starts_with("http://") || text.starts_with("https://") {
            Mirror::Url(text.trim_end_matches('/').to_string())
        } else {
            Mirror::Dir(PathBuf::from(text.strip_prefix("file://").unwrap_or(text)))
        }
    }

    /// Where `req` is in this mirror.
    fn location(&self, req: &Request<'_>) -> String {
        match self {
            Mirror::Dir(dir) => dir.join(req.mirror_path()).display().to_string(),
            Mirror::Url(base) => format!("{base}/{}", req.mirror_path()),
        }
    }
}

/// Gets artifacts into the cache.
#[derive(Debug, Clone)]
pub struct Fetcher {
    cache: PathBuf,
    mirror: Option<Mirror>,
    offline: bool,
}

impl Fetcher {
    /// A fetcher caching in `cache` (created when first needed).
    pub fn new(cache: PathBuf, mirror: Option<Mirror>, offline: bool) -> Fetcher {
        Fetcher {
            cache,
            mirror,
            offline,
        }
    }

    /// Where `req` is kept once fetched: named by its checksum, so a file is
    /// never confused with another of the same name.
    pub fn cached_path(&self, req: &Request<'_>) -> PathBuf {
        let c = &req.file.checksum;
        self.cache
            .join(format!("{}-{}", c.algorithm(), c.hex()))
            .join(&req.file.file)
    }

    /// Whether `req` can be had without the network: cached, or in a
    /// directory mirror.
    fn available_offline(&self, req: &Request<'_>) -> bool {
        if self.cached_path(req).is_file() {
            return true;
        }
        match &self.mirror {
            Some(Mirror::Dir(dir)) => dir.join(req.mirror_path()).is_file(),
            _ => false,
        }
    }

    /// With `offline`, fails naming every artifact of `reqs` that would need
    /// the network; without, does nothing.
    pub fn check_offline(&self, reqs: &[Request<'_>]) -> Result<(), ArtifactError> {
        if !self.offline {
            return Ok(());
        }
        let mut missing: Vec<String> = Vec::new();
        for r in reqs {
            if self.available_offline(r) {
                continue;
            }
            let from = match &self.mirror {
                Some(m) => m.location(r),
                None => r.file.url.clone(),
            };
            let line = format!("{} from {from}", r.describe());
            if !missing.contains(&line) {
                missing.push(line);
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ArtifactError::Offline { missing })
        }
    }

    /// The path of `req` in the cache, fetching and verifying it first if
    /// needed.
    pub fn fetch(&self, req: &Request<'_>) -> Result<PathBuf, ArtifactError> {
        let cached = self.cached_path(req);
        let mut looked: Vec<String> = Vec::new();
        if cached.is_file() {
            match file_checksum(&cached, &req.file.checksum) {
                Ok(sum) if sum == req.file.checksum.hex() => return Ok(cached),
                Ok(_) => {
                    // A cached file that no longer matches is useless: refetch.
                    let _ = fs::remove_file(&cached);
                    looked.push(format!("{} (corrupt, removed)", cached.display()));
                }
                Err(e) => looked.push(format!("{} ({e})", cached.display())),
            }
        } else {
            looked.push(format!("{} (not cached)", cached.display()));
        }
        let dir = cached
            .parent()
            .ok_or_else(|| ArtifactError::io(&cached, std::io::Error::other("no parent")))?;
        fs::create_dir_all(dir).map_err(|e| ArtifactError::io(dir, e))?;

        let place = match &self.mirror {
            Some(Mirror::Dir(mirror)) => Place::File(mirror.join(req.mirror_path())),
            Some(Mirror::Url(_)) | None => {
                let url = match &self.mirror {
                    Some(m) => m.location(req),
                    None => req.file.url.clone(),
                };
                if self.offline {
                    looked.push(format!("{url} (not fetched: --offline)"));
                    return Err(not_found(req, looked));
                }
                Place::Url(url)
            }
        };
        let tmp = tempfile::Builder::new()
            .prefix(".partial-")
            .tempfile_in(dir)
            .map_err(|e| ArtifactError::io(dir, e))?;
        let mut writer = HashingWriter::new(tmp.as_file(), &req.file.checksum);
        let got = match &place {
            Place::File(path) => match fs::File::open(path) {
                Ok(mut f) => std::io::copy(&mut f, &mut writer)
                    .map(drop)
                    .map_err(|e| ArtifactError::io(path, e)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    looked.push(format!("{} (not found)", path.display()));
                    return Err(not_found(req, looked));
                }
                Err(e) => Err(ArtifactError::io(path, e)),
            },
            Place::Url(url) => match http::download(url, &mut writer) {
                Ok(()) => Ok(()),
                Err(why) => {
                    looked.push(format!("{url} ({why})"));
                    return Err(not_found(req, looked));
                }
            },
        };
        got?;
        let sum = writer.finish();
        if sum != req.file.checksum.hex() {
            return Err(ArtifactError::Checksum {
                artifact: req.describe(),
                from: place.to_string(),
                algorithm: req.file.checksum.algorithm(),
                expected: req.file.checksum.hex().to_string(),
                got: sum,
            });
        }
        tmp.as_file()
            .sync_all()
            .map_err(|e| ArtifactError::io(tmp.path(), e))?;
        tmp.persist(&cached)
            .map_err(|e| ArtifactError::io(&cached, e.error))?;
        Ok(cached)
    }
}

/// Where a file is fetched from.
enum Place {
    File(PathBuf),
    Url(String),
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::File(p) => write!(f, "{}", p.display()),
            Place::Url(u) => f.write_str(u),
        }
    }
}

fn not_found(req: &Request<'_>, looked: Vec<String>) -> ArtifactError {
    ArtifactError::NotFound {
        artifact: req.describe(),
        looked,
    }
}
