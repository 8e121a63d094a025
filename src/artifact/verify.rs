//! Hashing files with the algorithm their checksum names.

use std::io::{self, Write};
use std::path::Path;

use sha2::{Digest as _, Sha256, Sha512};

use crate::catalog::Checksum;

enum State {
    Sha256(Sha256),
    Sha512(Sha512),
}

/// A writer that hashes what passes through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    state: State,
}

impl<W: Write> HashingWriter<W> {
    /// Hashes with the algorithm of `like`.
    pub fn new(inner: W, like: &Checksum) -> HashingWriter<W> {
        let state = match like {
            Checksum::Sha256(_) => State::Sha256(Sha256::new()),
            Checksum::Sha512(_) => State::Sha512(Sha512::new()),
        };
        HashingWriter { inner, state }
    }

    /// The lower-case hex digest of everything written.
    pub fn finish(self) -> String {
        match self.state {
            State::Sha256(h) => hex::encode(h.finalize()),
            State::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        match &mut self.state {
            State::Sha256(h) => h.update(&buf[..n]),
            State::Sha512(h) => h.update(&buf[..n]),
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The hex digest of the file at `path`, with the algorithm of `like`.
pub(crate) fn file_checksum(path: &Path, like: &Checksum) -> io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut w = HashingWriter::new(io::sink(), like);
    io::copy(&mut f, &mut w)?;
    Ok(w.finish())
}
