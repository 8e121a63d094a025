//! [`BlobWriter`]: streams a new blob into a layout, verifying it before it becomes visible.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::error::{Result, StoreError};
use super::fsutil::{TEMP_PREFIX, fsync_dir};
use crate::digest::{Digest, Hasher};

/// Writes a blob to a temp file while hashing it. [`BlobWriter::finish`] fsyncs, checks
/// the digest and renames the file into `blobs/sha256/`; dropping the writer instead
/// (or a failed check) deletes the temp file, so a half-written or wrong blob is never
/// visible under a digest name.
pub struct BlobWriter {
    file: BufWriter<NamedTempFile>,
    hasher: Hasher,
    blobs_dir: PathBuf,
}

impl BlobWriter {
    pub(crate) fn new(tmp_dir: &Path, blobs_dir: PathBuf) -> Result<BlobWriter> {
        let file = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(tmp_dir)
            .map_err(|e| StoreError::io(tmp_dir, e))?;
        Ok(BlobWriter {
            file: BufWriter::with_capacity(1 << 16, file),
            hasher: Hasher::new(),
            blobs_dir,
        })
    }

    /// The temp file being written (for error messages).
    pub fn temp_path(&self) -> &Path {
        self.file.get_ref().path()
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.hasher.len()
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.hasher.is_empty()
    }

    /// Completes the blob: flush, fsync, compare with `expected` (if given), rename into
    /// place, fsync the blobs directory. Returns the digest and size of what was written.
    /// On a mismatch the temp file is removed and [`StoreError::DigestMismatch`] returned.
    pub fn finish(self, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        let BlobWriter {
            file,
            hasher,
            blobs_dir,
        } = self;
        let path = file.get_ref().path().to_path_buf();
        let file = file
            .into_inner()
            .map_err(|e| StoreError::io(path, e.into_error()))?;
        let (digest, size) = hasher.finish();
        if let Some(expected) = expected
            && expected != &digest
        {
            return Err(StoreError::DigestMismatch {
                expected: expected.clone(),
                actual: digest,
                size,
            });
        }
        file.as_file()
            .sync_all()
            .map_err(|e| StoreError::io(file.path(), e))?;
        let dest = blobs_dir.join(digest.hex());
        // Renaming over an existing blob is harmless: same digest, same bytes.
        file.persist(&dest)
            .map_err(|e| StoreError::io(&dest, e.error))?;
        fsync_dir(&blobs_dir)?;
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn temp_entries(store: &Store) -> usize {
        std::fs::read_dir(store.tmp_dir()).unwrap().count()
    }

    #[test]
    fn a_verify_failure_leaves_no_blob_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut w = store.blob_writer().unwrap();
        w.write_all(b"actual content").unwrap();
        assert_eq!(temp_entries(&store), 1);
        let wrong = Digest::of(b"something else");
        let err = w.finish(Some(&wrong)).unwrap_err();
        assert!(
            matches!(&err, StoreError::DigestMismatch { actual, size: 14, .. } if *actual == Digest::of(b"actual content")),
            "{err}"
        );
        assert!(!store.has_blob(&wrong));
        assert!(!store.has_blob(&Digest::of(b"actual content")));
        assert_eq!(temp_entries(&store), 0);
        assert_eq!(
            std::fs::read_dir(store.root().join("blobs/sha256"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn dropping_a_writer_aborts_and_finishing_makes_the_blob_visible() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut w = store.blob_writer().unwrap();
        w.write_all(b"abandoned").unwrap();
        drop(w);
        assert_eq!(temp_entries(&store), 0);

        let data = vec![7u8; 300_000];
        let mut w = store.blob_writer().unwrap();
        for chunk in data.chunks(4097) {
            w.write_all(chunk).unwrap();
        }
        assert_eq!(w.len(), 300_000);
        let (d, n) = w.finish(Some(&Digest::of(&data))).unwrap();
        assert_eq!((d.clone(), n), (Digest::of(&data), 300_000));
        assert_eq!(store.read_blob(&d).unwrap(), data);
        assert_eq!(temp_entries(&store), 0);
        // Without an expected digest the writer reports what it wrote.
        let mut w = store.blob_writer().unwrap();
        w.write_all(b"x").unwrap();
        assert_eq!(w.finish(None).unwrap().0, Digest::of(b"x"));
    }
}
