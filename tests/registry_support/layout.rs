//! A plain OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/`)
//! as a blob source and sink for registry tests, and generated images in it.
//! skopeo and umoci read and write the same layout, which is how the tests
//! check what boxwright pushed and pulled.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use boxwright::digest::{Digest, DigestWriter};
use boxwright::media::{self, Descriptor};
use boxwright::registry::{BlobSink, BlobSource, BlobWrite};

/// An OCI layout directory.
#[derive(Clone, Debug)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    /// Creates (or opens) a layout at `root`.
    pub fn create(root: &Path) -> Layout {
        fs::create_dir_all(root.join("blobs/sha256")).expect("layout dirs");
        let marker = root.join("oci-layout");
        if !marker.exists() {
            fs::write(&marker, r#"{"imageLayoutVersion":"1.0.0"}"#).expect("oci-layout");
        }
        if !root.join("index.json").exists() {
            fs::write(
                root.join("index.json"),
                r#"{"schemaVersion":2,"manifests":[]}"#,
            )
            .expect("index.json");
        }
        Layout {
            root: root.to_path_buf(),
        }
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    /// The digests of all blobs present.
    pub fn blobs(&self) -> Vec<Digest> {
        let mut v: Vec<Digest> = fs::read_dir(self.root.join("blobs/sha256"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| Digest::from_hex(&e.file_name().to_string_lossy()).ok())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Every file under the layout (to prove a failed pull left nothing behind).
    pub fn files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = walkdir::WalkDir::new(&self.root)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
            .map(|e| e.path().to_path_buf())
            .collect();
        v.sort();
        v
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).exists()
    }

    pub fn read_blob(&self, d: &Digest) -> Vec<u8> {
        fs::read(self.blob_path(d)).expect("read blob")
    }

    pub fn put_blob(&self, bytes: &[u8]) -> Digest {
        let d = Digest::of(bytes);
        fs::write(self.blob_path(&d), bytes).expect("write blob");
        d
    }

    /// Names `desc` (a manifest) `tag` in index.json.
    pub fn tag(&self, tag: &str, desc: &Descriptor) {
        let path = self.root.join("index.json");
        let mut idx: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).expect("index.json")).expect("index json");
        let list = idx["manifests"].as_array_mut().expect("manifests array");
        list.retain(|m| m["annotations"][media::ANNOTATION_REF_NAME] != tag);
        let mut d = serde_json::to_value(desc).expect("descriptor json");
        d["annotations"] = serde_json::json!({ media::ANNOTATION_REF_NAME: tag });
        list.push(d);
        fs::write(&path, serde_json::to_vec(&idx).expect("index bytes")).expect("write index.json");
    }

    /// Writes an image for this host's platform whose layers are `layers`
    /// (blob bytes, media type, and the diff_id its config claims, checked
    /// against nothing: for crafted and hostile images), tagged `tag`.
    pub fn put_image(&self, tag: &str, layers: &[(&[u8], &str, &Digest)]) -> Descriptor {
        let diff_ids: Vec<String> = layers.iter().map(|(_, _, d)| d.to_string()).collect();
        let config = serde_json::json!({
            "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
            "os": "linux",
            "config": {"Env": ["PATH=/bin:/usr/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": layers.iter().map(|_| serde_json::json!({"created_by": "crafted"})).collect::<Vec<_>>(),
        });
        let cb = serde_json::to_vec(&config).expect("config bytes");
        let cd = self.put_blob(&cb);
        let descs: Vec<Descriptor> = layers
            .iter()
            .map(|(bytes, media_type, _)| {
                Descriptor::new(*media_type, self.put_blob(bytes), bytes.len() as u64)
            })
            .collect();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": Descriptor::new(media::OCI_CONFIG, cd, cb.len() as u64),
            "layers": descs,
        });
        let mb = serde_json::to_vec(&manifest).expect("manifest bytes");
        let desc = Descriptor::new(media::OCI_MANIFEST, self.put_blob(&mb), mb.len() as u64);
        self.tag(tag, &desc);
        desc
    }

    /// The manifest descriptor tagged `tag` in index.json.
    pub fn tagged(&self, tag: &str) -> Descriptor {
        let idx: serde_json::Value =
            serde_json::from_slice(&fs::read(self.root.join("index.json")).expect("index.json"))
                .expect("index json");
        let m = idx["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .find(|m| m["annotations"][media::ANNOTATION_REF_NAME] == tag)
            .unwrap_or_else(|| panic!("no tag {tag} in {}", self.root.display()));
        serde_json::from_value(m.clone()).expect("descriptor")
    }
}

impl BlobSource for Layout {
    fn open(&self, digest: &Digest) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(fs::File::open(self.blob_path(digest))?))
    }

    fn open_at(&self, digest: &Digest, offset: u64) -> io::Result<Box<dyn Read + Send>> {
        let mut f = fs::File::open(self.blob_path(digest))?;
        f.seek(SeekFrom::Start(offset))?;
        Ok(Box::new(f))
    }

    fn size(&self, digest: &Digest) -> io::Result<u64> {
        Ok(fs::metadata(self.blob_path(digest))?.len())
    }
}

impl BlobSink for Layout {
    fn has(&self, digest: &Digest) -> bool {
        self.blob_path(digest).exists()
    }

    fn writer(&self) -> io::Result<Box<dyn BlobWrite>> {
        // Temp files live outside blobs/ so a half-written blob is never listed.
        let tmpdir = self.root.join(".tmp");
        fs::create_dir_all(&tmpdir)?;
        let tmp = tempfile::NamedTempFile::new_in(&tmpdir)?;
        Ok(Box::new(LayoutWriter {
            inner: DigestWriter::new(tmp),
            dir: self.root.join("blobs/sha256"),
        }))
    }
}

struct LayoutWriter {
    inner: DigestWriter<tempfile::NamedTempFile>,
    dir: PathBuf,
}

impl Write for LayoutWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl BlobWrite for LayoutWriter {
    fn commit(self: Box<Self>, expected: &Digest) -> io::Result<()> {
        let (tmp, d, _) = self.inner.finish();
        if &d != expected {
            return Err(io::Error::other(format!(
                "blob is {d}, expected {expected}"
            )));
        }
        tmp.as_file().sync_all()?;
        tmp.persist(self.dir.join(d.hex())).map_err(|e| e.error)?;
        Ok(())
    }
}

/// An image written into a layout.
#[derive(Clone, Debug)]
pub struct Image {
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

impl Image {
    /// Config and layers, as `push` wants them.
    pub fn blobs(&self) -> Vec<Descriptor> {
        let mut v = vec![self.config.clone()];
        v.extend(self.layers.iter().cloned());
        v
    }

    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            self.media_type.clone(),
            self.manifest_digest.clone(),
            self.manifest.len() as u64,
        )
    }
}

/// Writes an OCI image with one gzip layer per entry of `layer_sizes`, each
/// a tar holding one file of that many pseudo-random bytes (from `seed`),
/// for `arch`; tags it `tag` in the layout.
pub fn make_image(
    layout: &Layout,
    tag: &str,
    layer_sizes: &[usize],
    seed: u64,
    arch: &str,
) -> Image {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (i, &size) in layer_sizes.iter().enumerate() {
        let mut data = vec![0u8; size];
        rng.fill(&mut data);
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(size as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, format!("file{i}.bin"), &data[..])
            .expect("tar entry");
        let tar = tar.into_inner().expect("tar bytes");
        diff_ids.push(Digest::of(&tar).to_string());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).expect("gzip");
        let gz = gz.finish().expect("gzip finish");
        let d = layout.put_blob(&gz);
        layers.push(Descriptor::new(media::OCI_LAYER_GZIP, d, gz.len() as u64));
    }
    let config = serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": ["/file0.bin"], "Labels": {"seed": seed.to_string()}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": layer_sizes.iter().map(|_| serde_json::json!({"created_by": "boxwright test"})).collect::<Vec<_>>(),
    });
    let config_bytes = serde_json::to_vec(&config).expect("config json");
    let cd = layout.put_blob(&config_bytes);
    let config = Descriptor::new(media::OCI_CONFIG, cd, config_bytes.len() as u64);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": config,
        "layers": layers,
    });
    let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest json");
    let md = layout.put_blob(&manifest_bytes);
    let img = Image {
        manifest: manifest_bytes,
        manifest_digest: md,
        media_type: media::OCI_MANIFEST.to_string(),
        config,
        layers,
    };
    layout.tag(tag, &img.descriptor());
    img
}
