//! OCI archives (a tar of an OCI layout): `save_archive` and `load_archive`.
//!
//! This is what `skopeo copy … oci-archive:FILE:NAME` and `podman save --format
//! oci-archive` write and `podman load` reads. A docker-archive (`docker save` before
//! Docker 25: `manifest.json` and no `oci-layout`) is not read; the error says how to
//! convert one.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Component, Path};

use flate2::read::MultiGzDecoder;

use super::canonical_json::to_canonical_json;
use super::error::{Result, StoreError};
use super::index::{Index, normalize_name, ref_name};
use super::layout::{JSON_FILE_LIMIT, Layout};
use super::reach::{Reach, Role};
use super::root::Store;
use crate::digest::{Digest, DigestReader};
use crate::media::{ANNOTATION_REF_NAME, Descriptor, OCI_LAYOUT_VERSION};

/// containerd and Docker ≥ 25 put the full image name here and only the tag in the ref name.
const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Writes an OCI archive holding the named images of `layout` (each resolved as
/// [`Layout::resolve`] does, and listed in the archive's `index.json` under its normalized
/// name) and only their blobs. Blobs are checked against their digests as they are
/// copied. Entries are written in a fixed order with fixed metadata, so the same images
/// give the same archive bytes.
pub fn save_archive<W: Write>(layout: &Layout, names: &[String], out: W) -> Result<()> {
    let mut index = Index::default();
    let mut reach = Reach::default();
    for name in names {
        let mut desc = layout.resolve(name)?;
        let before = reach.missing.len();
        reach.walk(layout, &desc)?;
        // A missing child of an index is tolerated (images pulled for one platform);
        // anything else missing means the image cannot be used from the archive.
        let top = &desc.digest;
        if let Some((digest, role)) = reach.missing[before..]
            .iter()
            .find(|(d, role)| *role != Role::Child || d == top)
        {
            return Err(StoreError::Incomplete {
                name: name.clone(),
                digest: digest.clone(),
                role: role.name(),
                root: layout.root().to_path_buf(),
            });
        }
        let stored_name = if name.contains('@') || name.is_empty() {
            ref_name(&desc).map(str::to_string)
        } else {
            Some(normalize_name(name)?)
        };
        desc.annotations.remove(ANNOTATION_REF_NAME);
        if let Some(n) = stored_name {
            if index
                .manifests
                .iter()
                .any(|d| ref_name(d) == Some(n.as_str()))
            {
                continue; // the same name twice: one entry
            }
            desc.annotations.insert(ANNOTATION_REF_NAME.to_string(), n);
        }
        index.manifests.push(desc);
    }

    let archive_err =
        |e: io::Error| StoreError::Archive(format!("writing the archive failed: {e}"));
    let mut tar = tar::Builder::new(out);
    let marker = format!("{{\"imageLayoutVersion\":\"{OCI_LAYOUT_VERSION}\"}}");
    append_bytes(&mut tar, "oci-layout", marker.as_bytes()).map_err(archive_err)?;
    let index_bytes = to_canonical_json(&index).map_err(|e| StoreError::BadJson {
        path: "index.json".into(),
        source: e,
    })?;
    append_bytes(&mut tar, "index.json", &index_bytes).map_err(archive_err)?;
    append_dir(&mut tar, "blobs/").map_err(archive_err)?;
    append_dir(&mut tar, "blobs/sha256/").map_err(archive_err)?;
    let mut blobs = reach.blobs;
    blobs.sort();
    for digest in &blobs {
        let size = layout.blob_size(digest)?;
        let mut reader = DigestReader::new(layout.open_blob(digest)?.take(size));
        let mut header = file_header(size, 0o644);
        tar.append_data(
            &mut header,
            format!("blobs/sha256/{}", digest.hex()),
            &mut reader,
        )
        .map_err(archive_err)?;
        let (_, actual, n) = reader.finish();
        if &actual != digest || n != size {
            return Err(StoreError::CorruptBlob {
                digest: digest.clone(),
                actual,
                path: layout.blob_path(digest),
            });
        }
    }
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(archive_err)
}

fn file_header(size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, path: &str, bytes: &[u8]) -> io::Result<()> {
    let mut h = file_header(bytes.len() as u64, 0o644);
    tar.append_data(&mut h, path, bytes)
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> io::Result<()> {
    let mut h = file_header(0, 0o755);
    h.set_entry_type(tar::EntryType::Directory);
    tar.append_data(&mut h, path, io::empty())
}

/// Reads an OCI archive stream (plain or gzip-compressed tar) into the store and tags
/// its images; returns the names tagged. Every blob is verified against its digest while
/// it is copied, and every image is checked complete before anything is tagged. Entries
/// with absolute paths, `..` or link types are refused. Names come from the
/// `io.containerd.image.name` annotation when present (Docker ≥ 25 puts the full name
/// there), else from `org.opencontainers.image.ref.name`.
pub fn load_archive<R: Read>(store: &Store, input: R) -> Result<Vec<String>> {
    let _lock = store.lock_shared()?;
    let read_err = |e: io::Error| StoreError::Archive(format!("reading the archive failed: {e}"));
    let mut input = BufReader::new(input);
    let gzip = input
        .fill_buf()
        .map_err(read_err)?
        .starts_with(&[0x1f, 0x8b]);
    let stream: Box<dyn Read> = if gzip {
        Box::new(MultiGzDecoder::new(input))
    } else {
        Box::new(input)
    };
    let mut archive = tar::Archive::new(stream);
    let mut marker: Option<Vec<u8>> = None;
    let mut index: Option<Vec<u8>> = None;
    let mut docker_manifest = false;
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let raw = entry.path().map_err(read_err)?.into_owned();
        let path = clean_path(&raw)?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(StoreError::HostileArchivePath(raw.display().to_string()));
        }
        match path.as_str() {
            "oci-layout" => marker = Some(read_small(&mut entry, &path)?),
            "index.json" => index = Some(read_small(&mut entry, &path)?),
            "manifest.json" => docker_manifest = true,
            p => {
                if let Some(rest) = p.strip_prefix("blobs/") {
                    load_blob(store, rest, &mut entry)?;
                }
            }
        }
    }
    let Some(marker) = marker else {
        return Err(if docker_manifest {
            StoreError::DockerArchive
        } else {
            StoreError::Archive(
                "the archive has no oci-layout file, so it is not an OCI archive: create one with `skopeo copy … oci-archive:FILE:NAME`".into(),
            )
        });
    };
    let marker: serde_json::Value = serde_json::from_slice(&marker).map_err(|e| {
        StoreError::Archive(format!("the archive's oci-layout is not valid JSON: {e}"))
    })?;
    if !marker["imageLayoutVersion"]
        .as_str()
        .is_some_and(|v| v.starts_with("1."))
    {
        return Err(StoreError::Archive(format!(
            "the archive's oci-layout says {marker}, not imageLayoutVersion 1.x: boxwright reads OCI layout 1.x only"
        )));
    }
    let index = index.ok_or_else(|| {
        StoreError::Archive(
            "the archive has no index.json: it is truncated or not an OCI archive".into(),
        )
    })?;
    let index: Index = serde_json::from_slice(&index).map_err(|e| {
        StoreError::Archive(format!(
            "the archive's index.json is not a valid OCI index: {e}"
        ))
    })?;

    // Name → descriptor; everything checked before the first tag is written.
    let mut named: BTreeMap<String, Descriptor> = BTreeMap::new();
    for desc in &index.manifests {
        let name = desc
            .annotations
            .get(ANNOTATION_CONTAINERD_NAME)
            .or_else(|| desc.annotations.get(ANNOTATION_REF_NAME));
        let Some(name) = name else { continue };
        let name = normalize_name(name)?;
        check_complete(store, &name, desc)?;
        named.insert(name, desc.clone());
    }
    if named.is_empty() {
        return Err(StoreError::Archive(
            "the archive's index.json names no image (no org.opencontainers.image.ref.name annotation): re-create it with a name, e.g. `skopeo copy SRC oci-archive:FILE:NAME`".into(),
        ));
    }
    for (name, desc) in &named {
        let mut desc = desc.clone();
        desc.annotations.remove(ANNOTATION_REF_NAME);
        store.tag(name, desc)?;
    }
    Ok(named.into_keys().collect())
}

/// The archive path as a relative `/`-joined string, or an error if it could escape.
fn clean_path(raw: &Path) -> Result<String> {
    let mut parts = Vec::new();
    for c in raw.components() {
        match c {
            Component::Normal(p) => parts.push(
                p.to_str()
                    .ok_or_else(|| StoreError::HostileArchivePath(raw.display().to_string()))?,
            ),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(StoreError::HostileArchivePath(raw.display().to_string()));
            }
        }
    }
    Ok(parts.join("/"))
}

fn read_small(entry: &mut impl Read, path: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    entry
        .take(JSON_FILE_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| StoreError::Archive(format!("reading {path} from the archive failed: {e}")))?;
    if bytes.len() as u64 > JSON_FILE_LIMIT {
        return Err(StoreError::Archive(format!(
            "{path} in the archive is larger than {JSON_FILE_LIMIT} bytes: refusing it"
        )));
    }
    Ok(bytes)
}

/// Copies `blobs/<algorithm>/<hex>` into the store, verifying it against its name.
fn load_blob(store: &Store, rest: &str, entry: &mut impl Read) -> Result<()> {
    let digest: Digest = rest.replacen('/', ":", 1).parse().map_err(|e| {
        StoreError::Archive(format!(
            "archive entry blobs/{rest} is not named by a usable digest: {e}"
        ))
    })?;
    if store.has_blob(&digest) {
        return Ok(());
    }
    let mut w = store.blob_writer()?;
    io::copy(entry, &mut w).map_err(|e| {
        StoreError::Archive(format!(
            "reading blob {digest} from the archive failed: {e}"
        ))
    })?;
    w.finish(Some(&digest))?;
    Ok(())
}

/// Fails unless the image `desc` and everything it needs is in the store with the sizes
/// its descriptors promise.
fn check_complete(store: &Store, name: &str, desc: &Descriptor) -> Result<()> {
    let mut reach = Reach::default();
    reach.walk(store, desc)?;
    if let Some((digest, role)) = reach
        .missing
        .iter()
        .find(|(d, role)| *role != Role::Child || d == &desc.digest)
    {
        return Err(StoreError::Incomplete {
            name: name.to_string(),
            digest: digest.clone(),
            role: role.name(),
            root: store.root().to_path_buf(),
        });
    }
    if let Some((digest, promised, actual)) = reach.wrong_size.first() {
        return Err(StoreError::Archive(format!(
            "image '{name}': blob {digest} should be {promised} bytes but is {actual}: the archive is damaged"
        )));
    }
    Ok(())
}
