//! Bridges between the synchronous blob traits (`Read`, `Write`) and the
//! async HTTP client: a blocking thread per transfer moves bounded chunks
//! through a channel, so memory stays at a few chunks whatever the blob size.

use std::io::Read;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use crate::digest::{Digest, Hasher};
use crate::registry::BlobWrite;

/// Bytes per chunk read from a source.
const CHUNK: usize = 256 << 10;
/// Chunks in flight per transfer.
const DEPTH: usize = 4;

/// A request body that streams exactly `len` bytes of `reader`, calling
/// `progress(n)` with each chunk's size as it is handed to the connection.
/// A reader that ends early (or fails) aborts the request.
pub(crate) fn reader_body(
    reader: Box<dyn Read + Send>,
    len: u64,
    progress: impl Fn(u64) + Send + Sync + 'static,
) -> reqwest::Body {
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(DEPTH);
    tokio::task::spawn_blocking(move || {
        let mut reader = reader.take(len);
        let mut sent = 0u64;
        loop {
            let mut buf = BytesMut::zeroed(CHUNK);
            let mut filled = 0;
            // Fill whole chunks: fewer, larger writes to the socket.
            while filled < CHUNK {
                match reader.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
            if filled == 0 {
                if sent < len {
                    let _ = tx.blocking_send(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("blob source ended after {sent} of {len} bytes"),
                    )));
                }
                return;
            }
            buf.truncate(filled);
            sent += filled as u64;
            if tx.blocking_send(Ok(buf.freeze())).is_err() {
                return; // the request was dropped
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, move |mut rx| async move {
        let next = rx.recv().await;
        next.map(|r| (r, rx))
    });
    let stream = futures_util::StreamExt::inspect(stream, move |r| {
        if let Ok(b) = r {
            progress(b.len() as u64);
        }
    });
    reqwest::Body::wrap_stream(stream)
}

/// Streams a response body into a sink writer on a blocking thread,
/// hashing as it goes; commits only when size and digest match.
pub(crate) struct SinkPipe {
    tx: mpsc::Sender<Bytes>,
    handle: tokio::task::JoinHandle<std::io::Result<Written>>,
}

/// An uncommitted writer with the digest and size of what went into it.
pub(crate) type Written = (Box<dyn BlobWrite>, Digest, u64);

impl SinkPipe {
    pub fn new(mut writer: Box<dyn BlobWrite>) -> SinkPipe {
        let (tx, mut rx) = mpsc::channel::<Bytes>(DEPTH * 2);
        let handle = tokio::task::spawn_blocking(move || {
            let mut hasher = Hasher::new();
            while let Some(chunk) = rx.blocking_recv() {
                hasher.update(&chunk);
                writer.write_all(&chunk)?;
            }
            let (d, n) = hasher.finish();
            Ok((writer, d, n))
        });
        SinkPipe { tx, handle }
    }

    /// Hands one chunk to the writer thread. Fails if the writer failed.
    pub async fn send(&self, chunk: Bytes) -> Result<(), ()> {
        self.tx.send(chunk).await.map_err(|_| ())
    }

    /// Stops the transfer and waits until the writer thread has dropped the
    /// writer, so the sink has discarded the partial blob when this returns.
    pub async fn abort(self) {
        drop(self.tx);
        let _ = self.handle.await;
    }

    /// Ends the stream. Returns the writer (not yet committed) with the
    /// digest and size of what was written.
    pub async fn finish(self) -> std::io::Result<Written> {
        drop(self.tx);
        self.handle
            .await
            .map_err(|e| std::io::Error::other(format!("blob writer thread failed: {e}")))?
    }
}
