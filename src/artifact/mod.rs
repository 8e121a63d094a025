//! Upstream artifacts: pinned files (runtime tarballs, ttyd, code-server, gh)
//! fetched on the build host, verified against the catalog's checksum and
//! kept in the store's artifact cache, from which the driver mounts them
//! read-only into the step that installs them.
//!
//! Where a file is looked for: the cache first
//! (`ROOT.state/artifacts/<algorithm>-<hex>/<file>`), then either upstream's
//! URL (rewritten by the build's download mirrors, `--mirror FROM=TO`, when
//! one covers it) or, with an artifact mirror (`--artifact-mirror
//! DIR_OR_URL`), only `MIRROR/<component>/<version>/<file>`, as air-gapped
//! builders need. A file whose checksum differs is discarded and the build
//! fails naming it; a file found nowhere fails the build naming every place
//! looked in. With `offline`, nothing is fetched from upstream: only the
//! cache and mirrors (which are internal) are used, and
//! [`Fetcher::check_offline`] lists up front everything a build would need.
//! URLs are shown with their credentials masked.

mod error;
mod http;
mod verify;

#[cfg(test)]
mod tests;

use std::fs;
use std::path::PathBuf;

pub use error::ArtifactError;

use crate::catalog::ArtifactFile;
use crate::mirror::{Mirrors, redact};
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

    /// Where `req` is in this mirror (credentials included).
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
    rewrites: Mirrors,
    offline: bool,
}

/// Where a fetcher looks for an artifact that is not cached.
enum Source {
    /// A directory mirror's file.
    Dir(PathBuf),
    /// A URL: `internal` when it is a mirror's, which `offline` allows.
    Url { url: String, internal: bool },
}

impl Fetcher {
    /// A fetcher caching in `cache` (created when first needed).
    pub fn new(cache: PathBuf, mirror: Option<Mirror>, offline: bool) -> Fetcher {
        Fetcher {
            cache,
            mirror,
            rewrites: Mirrors::default(),
            offline,
        }
    }

    /// Upstream URLs that a download mirror covers are fetched from it
    /// (when no artifact mirror is given, which takes precedence).
    pub fn with_rewrites(mut self, rewrites: Mirrors) -> Fetcher {
        self.rewrites = rewrites;
        self
    }

    /// Where `req` comes from when it is not cached.
    fn source(&self, req: &Request<'_>) -> Source {
        match &self.mirror {
            Some(Mirror::Dir(dir)) => Source::Dir(dir.join(req.mirror_path())),
            Some(m @ Mirror::Url(_)) => Source::Url {
                url: m.location(req),
                internal: true,
            },
            None => match self.rewrites.rewrite(&req.file.url) {
                Some(url) => Source::Url {
                    url,
                    internal: true,
                },
                None => Source::Url {
                    url: req.file.url.clone(),
                    internal: false,
                },
            },
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

    /// With `offline`, fails naming every artifact of `reqs` that is
    /// neither cached nor in a mirror (a directory mirror must hold it; a
    /// URL mirror is internal, so it is trusted to); without, does nothing.
    pub fn check_offline(&self, reqs: &[Request<'_>]) -> Result<(), ArtifactError> {
        if !self.offline {
            return Ok(());
        }
        let mut missing: Vec<String> = Vec::new();
        for r in reqs {
            if self.cached_path(r).is_file() {
                continue;
            }
            let from = match self.source(r) {
                Source::Dir(path) if path.is_file() => continue,
                Source::Dir(path) => path.display().to_string(),
                Source::Url { internal: true, .. } => continue,
                Source::Url { url, .. } => redact(&url),
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

        let place = match self.source(req) {
            Source::Dir(path) => Place::File(path),
            Source::Url {
                url,
                internal: false,
            } if self.offline => {
                looked.push(format!("{} (not fetched: --offline)", redact(&url)));
                return Err(not_found(req, looked));
            }
            Source::Url { url, .. } => Place::Url(url),
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
                    looked.push(format!("{} ({why})", redact(url)));
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

impl Fetcher {
    /// Downloads `url` (through the download mirrors that cover it) into a
    /// new file `dest`; returns its sha256. `ADD URL` uses it: the caller
    /// checks a pinned checksum. Refused under `--offline` unless a mirror
    /// covers the URL.
    pub fn download_url(
        &self,
        url: &str,
        dest: &std::path::Path,
    ) -> Result<crate::digest::Digest, ArtifactError> {
        let (from, internal) = match self.rewrites.rewrite(url) {
            Some(u) => (u, true),
            None => (url.to_string(), false),
        };
        if self.offline && !internal {
            return Err(ArtifactError::Offline {
                missing: vec![redact(url)],
            });
        }
        let file = fs::File::create(dest).map_err(|e| ArtifactError::io(dest, e))?;
        let mut writer = crate::digest::DigestWriter::new(std::io::BufWriter::new(file));
        http::download(&from, &mut writer).map_err(|why| ArtifactError::NotFound {
            artifact: redact(url),
            looked: vec![format!("{} ({why})", redact(&from))],
        })?;
        let (mut out, digest, _) = writer.finish();
        std::io::Write::flush(&mut out).map_err(|e| ArtifactError::io(dest, e))?;
        Ok(digest)
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
            Place::Url(u) => f.write_str(&redact(u)),
        }
    }
}

fn not_found(req: &Request<'_>, looked: Vec<String>) -> ArtifactError {
    ArtifactError::NotFound {
        artifact: req.describe(),
        looked,
    }
}
