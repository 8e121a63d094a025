//! `fsck`: checking everything the store holds against the digests that name it.
//!
//! Blobs are hashed and compared with their file names; every tag is walked
//! (index → manifests → config and layers) for blobs that are missing or of
//! the wrong size; every layer a config or a cache record names is
//! decompressed and its content compared with its diff_id; cache records
//! must parse and point at a present layer of the right size and diff_id.
//! Unpacked layer directories need a user namespace to read (their files
//! belong to subordinate ids), so this module only says which ones exist
//! and which blob each came from; the build driver compares them.
//!
//! Repair removes what is broken (a blob whose bytes are not its digest, a
//! cache record that points nowhere, temp leftovers), never a tag and never
//! a valid blob something references: a tag whose image is damaged is
//! reported, to be pulled or built again.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, BufReader};

use super::error::{Result, StoreError};
use super::fsutil::TEMP_PREFIX;
use super::reach::{Links, config_diff_ids};
use super::root::Store;
use crate::digest::{Digest, DigestReader, DigestWriter};
use crate::media::{Compression, Descriptor, LayerInfo};

/// Why a layer's content or a cache record could not be checked: the
/// reason part of a problem line. Private: callers get the lines.
#[derive(Debug, thiserror::Error)]
enum Finding {
    #[error("its blob is corrupt")]
    CorruptBlob,
    #[error("its blob is {actual} bytes, not {expected}")]
    BlobSize { actual: u64, expected: u64 },
    #[error("its blob {} is missing", .0.short())]
    MissingBlob(Digest),
    #[error("unknown layer media type {0}")]
    MediaType(String),
    #[error(transparent)]
    Open(#[from] StoreError),
    /// The tar reader's messages quote header bytes: only an excerpt is shown.
    #[error("cannot decompress it ({})", crate::quote::excerpt(&.0.to_string()))]
    Decompress(#[source] io::Error),
    #[error("{0}")]
    ReadRecord(#[source] io::Error),
    #[error("not a cache record ({0})")]
    NotARecord(#[source] serde_json::Error),
}

/// One thing `fsck` found wrong, as a line for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsckProblem {
    /// What is wrong, naming the blob, tag, record or directory.
    pub message: String,
    /// Whether `--repair` removed it.
    pub repaired: bool,
}

/// What `fsck` checked and found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FsckReport {
    pub blobs_checked: usize,
    pub tags_checked: usize,
    pub layers_checked: usize,
    pub cache_records_checked: usize,
    pub layer_dirs_checked: usize,
    /// Layers a registry holds for the store (lazy step-cache hits), not
    /// checked here: their content is checked when it is fetched.
    pub remote_layers: usize,
    pub problems: Vec<FsckProblem>,
}

impl FsckReport {
    fn problem(&mut self, message: String, repaired: bool) {
        self.problems.push(FsckProblem { message, repaired });
    }

    /// Records a problem found outside this module (an unpacked layer dir).
    pub fn add_problem(&mut self, message: String, repaired: bool) {
        self.problem(message, repaired);
    }

    /// True when nothing is wrong, or everything wrong was repaired.
    pub fn is_clean(&self) -> bool {
        self.problems.iter().all(|p| p.repaired)
    }
}

/// The unpacked layer dirs of a store, with the blob each can be checked against.
#[derive(Clone, Debug, Default)]
pub struct LayerDirs {
    /// Dirs whose diff_id a config or cache record names, with that layer.
    pub known: Vec<LayerInfo>,
    /// Dirs no image or cache record names (`gc` removes them).
    pub unknown: Vec<Digest>,
}

impl Store {
    /// Checks blobs, tags, layers and cache records (see the module docs);
    /// with `repair`, removes what is broken. Returns the report and the
    /// unpacked layer dirs for the caller to compare with their blobs. The
    /// caller holds the exclusive store lock.
    pub fn fsck_files(&self, repair: bool) -> Result<(FsckReport, LayerDirs)> {
        let mut report = FsckReport::default();
        let corrupt = self.check_blobs(repair, &mut report)?;
        let mut diff_ids: BTreeMap<Digest, Digest> = BTreeMap::new(); // blob → content digest
        let mut layer_of: BTreeMap<Digest, LayerInfo> = BTreeMap::new(); // diff_id → layer

        for (name, desc) in self.tags()? {
            report.tags_checked += 1;
            let mut seen = BTreeSet::new();
            self.check_image(
                &name,
                &desc,
                0,
                &corrupt,
                &mut seen,
                &mut diff_ids,
                &mut layer_of,
                &mut report,
            );
        }
        report.layers_checked = diff_ids.len();

        for key in self.cache_keys()? {
            report.cache_records_checked += 1;
            let path = self.cache_dir().join(format!("{}.json", key.hex()));
            let why = match self.cache_record(&path) {
                Err(why) => Some(why.to_string()),
                Ok(entry)
                    if !self.has_blob(&entry.layer.digest)
                        && self
                            .remote_layer(&entry.layer.digest)
                            .is_some_and(|r| r.layer == entry.layer) =>
                {
                    None // a lazy registry hit: checked when fetched
                }
                Ok(entry) => match self.content_digest(&entry.layer, &corrupt, &mut diff_ids) {
                    Err(why) => Some(why.to_string()),
                    Ok(actual) if actual != entry.layer.diff_id => Some(format!(
                        "its layer {} holds content {actual}, not the recorded diff_id {}",
                        entry.layer.digest, entry.layer.diff_id
                    )),
                    Ok(_) => {
                        layer_of
                            .entry(entry.layer.diff_id.clone())
                            .or_insert(entry.layer);
                        None
                    }
                },
            };
            if let Some(why) = why {
                let fixed = repair && fs::remove_file(&path).is_ok();
                report.problem(format!("cache record {}: {why}", key.short()), fixed);
            }
        }

        for (digest, record) in self.remote_layer_records()? {
            match record {
                Some(_) if !self.has_blob(&digest) => report.remote_layers += 1,
                // Fetched since: the record is stale (gc drops it too).
                Some(_) => {
                    if repair {
                        let _ = self.forget_remote_layer(&digest);
                    }
                }
                None => {
                    let fixed = repair && self.forget_remote_layer(&digest).is_ok();
                    report.problem(
                        format!(
                            "remote layer record {} does not read: fsck --repair removes it (an image naming its layer then needs pulling or building again)",
                            digest.short()
                        ),
                        fixed,
                    );
                }
            }
        }

        for entry in fs::read_dir(self.tmp_dir()).map_err(|e| StoreError::io(self.tmp_dir(), e))? {
            let entry = entry.map_err(|e| StoreError::io(self.tmp_dir(), e))?;
            let fixed = repair && self.move_to_trash(&entry.path()).is_ok();
            report.problem(
                format!(
                    "leftover of an interrupted write: {}",
                    entry.path().display()
                ),
                fixed,
            );
        }

        let mut dirs = LayerDirs::default();
        for entry in
            fs::read_dir(self.layers_dir()).map_err(|e| StoreError::io(self.layers_dir(), e))?
        {
            let entry = entry.map_err(|e| StoreError::io(self.layers_dir(), e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            match Digest::from_hex(&name) {
                Ok(d) => match layer_of.get(&d) {
                    Some(l) => dirs.known.push(l.clone()),
                    None => dirs.unknown.push(d),
                },
                Err(_) => {
                    let fixed = repair && self.move_to_trash(&entry.path()).is_ok();
                    report.problem(
                        format!(
                            "{} is not an unpacked layer (its name is no diff_id)",
                            entry.path().display()
                        ),
                        fixed,
                    );
                }
            }
        }
        report.layer_dirs_checked = dirs.known.len();
        Ok((report, dirs))
    }

    /// Hashes every blob; returns the ones whose content is not their name.
    fn check_blobs(&self, repair: bool, report: &mut FsckReport) -> Result<BTreeSet<Digest>> {
        let dir = self.root().join("blobs/sha256");
        let mut corrupt = BTreeSet::new();
        let mut names: Vec<_> = fs::read_dir(&dir)
            .map_err(|e| StoreError::io(&dir, e))?
            .filter_map(|e| e.ok())
            .collect();
        names.sort_by_key(|e| e.file_name());
        for entry in names {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with(TEMP_PREFIX) || name.starts_with('.') {
                let fixed = repair && fs::remove_file(&path).is_ok();
                report.problem(
                    format!("leftover of an interrupted write: {}", path.display()),
                    fixed,
                );
                continue;
            }
            let Ok(expected) = Digest::from_hex(&name) else {
                report.problem(
                    format!("{} is not named by a sha256 digest", path.display()),
                    false,
                );
                continue;
            };
            report.blobs_checked += 1;
            let actual = fs::File::open(&path).and_then(|f| {
                let mut w = DigestWriter::new(io::sink());
                io::copy(&mut BufReader::with_capacity(1 << 20, f), &mut w)?;
                Ok(w.finish().1)
            });
            match actual {
                Ok(actual) if actual == expected => {}
                Ok(actual) => {
                    corrupt.insert(expected.clone());
                    // Bytes that are not what their name says are never
                    // right to keep: a push or pull would pass them on.
                    let fixed = repair && fs::remove_file(&path).is_ok();
                    report.problem(
                        format!("blob {expected} is corrupt: its content hashes to {actual}"),
                        fixed,
                    );
                }
                Err(e) => report.problem(format!("blob {expected} cannot be read: {e}"), false),
            }
        }
        Ok(corrupt)
    }

    #[allow(clippy::too_many_arguments)]
    fn check_image(
        &self,
        tag: &str,
        desc: &Descriptor,
        depth: usize,
        corrupt: &BTreeSet<Digest>,
        seen: &mut BTreeSet<Digest>,
        diff_ids: &mut BTreeMap<Digest, Digest>,
        layer_of: &mut BTreeMap<Digest, LayerInfo>,
        report: &mut FsckReport,
    ) {
        let damaged = |report: &mut FsckReport, what: String| {
            report.problem(
                format!("tag {tag}: {what}: pull or build the image again"),
                false,
            );
        };
        if depth > 8 || !seen.insert(desc.digest.clone()) {
            return;
        }
        let Some(bytes) = self.present(desc, corrupt, report, tag, true) else {
            return;
        };
        let links: Links = match serde_json::from_slice(&bytes) {
            Ok(l) => l,
            Err(e) => {
                return damaged(
                    report,
                    format!("manifest {} is not valid JSON ({e})", desc.digest.short()),
                );
            }
        };
        for child in &links.manifests {
            self.check_image(
                tag,
                child,
                depth + 1,
                corrupt,
                seen,
                diff_ids,
                layer_of,
                report,
            );
        }
        let Some(config) = &links.config else { return };
        let Some(config_bytes) = self.present(config, corrupt, report, tag, true) else {
            return;
        };
        // Not an image config (an artifact), or diff_ids that are not digests: it
        // names no layers to check.
        let Some(config_diff_ids) = config_diff_ids(&config_bytes).and_then(|ids| {
            ids.iter()
                .map(|d| d.parse())
                .collect::<Result<Vec<Digest>, _>>()
                .ok()
        }) else {
            return;
        };
        if config_diff_ids.len() != links.layers.len() {
            return damaged(
                report,
                format!(
                    "manifest {} has {} layers but its config {} diff_ids",
                    desc.digest.short(),
                    links.layers.len(),
                    config_diff_ids.len()
                ),
            );
        }
        for (layer, diff_id) in links.layers.iter().zip(&config_diff_ids) {
            if layer.urls.is_some() && !self.has_blob(&layer.digest) {
                continue; // a foreign layer, fetched from its URL when needed
            }
            if !self.has_blob(&layer.digest)
                && self
                    .remote_layer(&layer.digest)
                    .is_some_and(|r| r.layer.size == layer.size && r.layer.diff_id == *diff_id)
            {
                continue; // in a registry's cache repository, fetched when needed
            }
            if self.present(layer, corrupt, report, tag, false).is_none() {
                continue;
            }
            let info = LayerInfo {
                digest: layer.digest.clone(),
                diff_id: diff_id.clone(),
                size: layer.size,
                media_type: layer.media_type.clone(),
            };
            match self.content_digest(&info, corrupt, diff_ids) {
                Ok(actual) if actual == *diff_id => {
                    layer_of.entry(diff_id.clone()).or_insert(info);
                }
                Ok(actual) => damaged(
                    report,
                    format!(
                        "layer {} holds content {actual}, but the config says diff_id {diff_id}",
                        layer.digest.short()
                    ),
                ),
                Err(why) => damaged(report, format!("layer {}: {why}", layer.digest.short())),
            }
        }
    }

    /// The blob `desc` names, read in full when it is small enough to be a
    /// manifest or config (layers are streamed elsewhere); `None` (with a
    /// problem recorded) when it is missing, corrupt or of the wrong size.
    fn present(
        &self,
        desc: &Descriptor,
        corrupt: &BTreeSet<Digest>,
        report: &mut FsckReport,
        tag: &str,
        read: bool,
    ) -> Option<Vec<u8>> {
        let what = if corrupt.contains(&desc.digest) {
            Some("is corrupt".to_string())
        } else {
            match self.blob_size(&desc.digest) {
                Err(_) => Some("is missing".to_string()),
                Ok(n) if n != desc.size => Some(format!(
                    "is {n} bytes, not the {} its descriptor says",
                    desc.size
                )),
                Ok(_) => None,
            }
        };
        if let Some(what) = what {
            report.problem(
                format!(
                    "tag {tag}: blob {} ({}) {what}: pull or build the image again",
                    desc.digest, desc.media_type
                ),
                false,
            );
            return None;
        }
        if !read || desc.size > 16 << 20 {
            return Some(Vec::new());
        }
        self.read_blob(&desc.digest).ok()
    }

    /// The sha256 of a layer's uncompressed content, computed once per blob.
    fn content_digest(
        &self,
        layer: &LayerInfo,
        corrupt: &BTreeSet<Digest>,
        memo: &mut BTreeMap<Digest, Digest>,
    ) -> std::result::Result<Digest, Finding> {
        if let Some(d) = memo.get(&layer.digest) {
            return Ok(d.clone());
        }
        if corrupt.contains(&layer.digest) {
            return Err(Finding::CorruptBlob);
        }
        match self.blob_size(&layer.digest) {
            Ok(n) if n == layer.size => {}
            Ok(n) => {
                return Err(Finding::BlobSize {
                    actual: n,
                    expected: layer.size,
                });
            }
            Err(_) => return Err(Finding::MissingBlob(layer.digest.clone())),
        }
        let compression = Compression::from_layer_media_type(&layer.media_type)
            .ok_or_else(|| Finding::MediaType(layer.media_type.clone()))?;
        let blob = self.open_blob(&layer.digest)?;
        let mut r = DigestReader::new(crate::layer::open_layer(
            BufReader::with_capacity(1 << 20, blob),
            compression,
        ));
        io::copy(&mut r, &mut io::sink()).map_err(Finding::Decompress)?;
        let d = r.finish().1;
        memo.insert(layer.digest.clone(), d.clone());
        Ok(d)
    }

    fn cache_record(
        &self,
        path: &std::path::Path,
    ) -> std::result::Result<super::CacheEntry, Finding> {
        let bytes = fs::read(path).map_err(Finding::ReadRecord)?;
        serde_json::from_slice(&bytes).map_err(Finding::NotARecord)
    }
}
