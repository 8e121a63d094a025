//! Parallel gzip in the manner of pigz: the input is cut at fixed offsets and
//! each chunk becomes an independent gzip member, compressed by a pool of
//! worker threads and written in order.
//!
//! Why fixed offsets: the output then depends only on the input bytes, never
//! on how callers slice their writes nor on how many threads compress, so a
//! layer has the same digest on every machine. A concatenation of members is
//! one valid gzip file (RFC 1952 §2.2); readers must decode every member
//! (`MultiGzDecoder`, `gzip -d`, Go's `gzip.Reader` by default).
//!
//! Why 1 MiB chunks: each member restarts the 32 KiB deflate window and adds
//! 18 bytes of framing. On a Debian minbase rootfs (170 MB of tar) 1 MiB
//! members are 0.17 % larger than one zlib-rs stream (61.73 vs 61.63 MB;
//! 4 MiB: 61.65 MB), so larger chunks buy almost nothing, while they keep
//! small layers on one core and raise the memory held in flight (at most
//! `2 × threads` chunks in and out: a few MiB at 1 MiB).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Crc, FlushCompress, Status};

/// Bytes of uncompressed input per gzip member.
pub(crate) const CHUNK: usize = 1 << 20;

/// gzip level (RFC 1952 members, deflate level 6 like `gzip -6`).
const LEVEL: u32 = 6;

/// The member header: magic, deflate, no flags, mtime 0, XFL 0 (what zlib
/// writes for level 6), OS 255 "unknown" (as Go writes it): no file name, no
/// time stamp, nothing about the machine.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

type Job = (u64, Vec<u8>);
type Done = (u64, io::Result<Vec<u8>>, Vec<u8>);

/// A writer that gzips what it is given, in parallel, to `out`.
pub(crate) struct ParallelGzip<W: Write> {
    out: W,
    buf: Vec<u8>,
    /// Input buffers returned by workers, reused for the next chunks.
    spare: Vec<Vec<u8>>,
    pool: Option<Pool>,
    /// Compressor used when there is no pool (one thread).
    local: Option<MemberCompressor>,
    submitted: u64,
    written: u64,
    /// Members that finished before an earlier one; at most `max_in_flight`.
    pending: BTreeMap<u64, Vec<u8>>,
}

struct Pool {
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
    in_flight: usize,
    max_in_flight: usize,
}

impl<W: Write> ParallelGzip<W> {
    /// A compressor using `threads` workers; with one thread it compresses on
    /// the caller's thread. The output is the same for any `threads`.
    pub(crate) fn new(out: W, threads: usize) -> io::Result<ParallelGzip<W>> {
        let threads = threads.max(1);
        let (pool, local) = if threads == 1 {
            (None, Some(MemberCompressor::new()))
        } else {
            (Some(Pool::start(threads)?), None)
        };
        Ok(ParallelGzip {
            out,
            buf: Vec::with_capacity(CHUNK),
            spare: Vec::new(),
            pool,
            local,
            submitted: 0,
            written: 0,
            pending: BTreeMap::new(),
        })
    }

    /// Compresses what is buffered, waits for every member and returns the
    /// output writer. An empty input still gives one (empty) member, so the
    /// result is always a valid gzip file.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        if !self.buf.is_empty() || self.submitted == 0 {
            self.submit()?;
        }
        while self.written < self.submitted {
            self.receive_one()?;
        }
        self.out.flush()?;
        // Dropping the pool joins its (now idle) workers.
        self.pool = None;
        Ok(self.out)
    }

    fn submit(&mut self) -> io::Result<()> {
        let next = self
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(CHUNK));
        let chunk = std::mem::replace(&mut self.buf, next);
        let seq = self.submitted;
        self.submitted += 1;
        if let Some(local) = self.local.as_mut() {
            let member = local.compress(&chunk)?;
            self.out.write_all(&member)?;
            self.written += 1;
            self.recycle(chunk);
            return Ok(());
        }
        loop {
            let full = match &self.pool {
                Some(pool) => pool.in_flight >= pool.max_in_flight,
                None => return Err(stopped()),
            };
            if !full {
                break;
            }
            self.receive_one()?;
        }
        let pool = self.pool.as_mut().ok_or_else(stopped)?;
        let jobs = pool.jobs.as_ref().ok_or_else(stopped)?;
        jobs.send((seq, chunk)).map_err(|_| stopped())?;
        pool.in_flight += 1;
        // Write out whatever is already finished, without waiting.
        while let Some(done) = self.pool.as_mut().and_then(|p| p.done.try_recv().ok()) {
            self.accept(done)?;
        }
        Ok(())
    }

    /// Waits for one member from the pool and writes out all that are in order.
    fn receive_one(&mut self) -> io::Result<()> {
        let pool = self.pool.as_mut().ok_or_else(stopped)?;
        let done = pool.done.recv().map_err(|_| stopped())?;
        self.accept(done)
    }

    /// Takes one finished member from the pool.
    fn accept(&mut self, (seq, member, input): Done) -> io::Result<()> {
        if let Some(pool) = self.pool.as_mut() {
            pool.in_flight -= 1;
        }
        self.recycle(input);
        self.pending.insert(seq, member?);
        while let Some(member) = self.pending.remove(&self.written) {
            self.out.write_all(&member)?;
            self.written += 1;
        }
        Ok(())
    }

    fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.spare.len() < 4 && buf.capacity() >= CHUNK {
            buf.clear();
            self.spare.push(buf);
        }
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.submit()?;
        }
        Ok(n)
    }

    /// Flushes the output writer only: cutting a member early would make the
    /// output depend on when callers flush.
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Pool {
    fn start(threads: usize) -> io::Result<Pool> {
        let max_in_flight = 2 * threads;
        let (jobs_tx, jobs_rx) = mpsc::sync_channel::<Job>(max_in_flight);
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let mut workers = Vec::with_capacity(threads);
        for i in 0..threads {
            let jobs_rx = Arc::clone(&jobs_rx);
            let done_tx = done_tx.clone();
            let worker = std::thread::Builder::new()
                .name(format!("bw-gzip-{i}"))
                .spawn(move || work(&jobs_rx, &done_tx));
            match worker {
                Ok(handle) => workers.push(handle),
                Err(e) => {
                    // Dropping the partial pool joins the workers already started.
                    drop(Pool {
                        jobs: Some(jobs_tx),
                        done: done_rx,
                        workers,
                        in_flight: 0,
                        max_in_flight,
                    });
                    return Err(e);
                }
            }
        }
        Ok(Pool {
            jobs: Some(jobs_tx),
            done: done_rx,
            workers,
            in_flight: 0,
            max_in_flight,
        })
    }

    /// Closes the job queue and joins the workers; they finish their current
    /// chunk (results are dropped) and exit.
    fn stop(&mut self) {
        self.jobs = None;
        for w in self.workers.drain(..) {
            // A worker that panicked has nothing left to clean up.
            let _ = w.join();
        }
    }
}

fn work(jobs: &Mutex<Receiver<Job>>, done: &mpsc::Sender<Done>) {
    let mut compressor = MemberCompressor::new();
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((seq, input)) = job else { return };
        let member = compressor.compress(&input);
        if done.send((seq, member, input)).is_err() {
            return;
        }
    }
}

fn stopped() -> io::Error {
    io::Error::other("gzip worker threads stopped unexpectedly")
}

/// Compresses one chunk into one complete gzip member, reusing its deflate
/// state from chunk to chunk.
struct MemberCompressor {
    deflate: flate2::Compress,
}

impl MemberCompressor {
    fn new() -> MemberCompressor {
        MemberCompressor {
            // Raw deflate: the gzip framing is written here, byte for byte.
            deflate: flate2::Compress::new(flate2::Compression::new(LEVEL), false),
        }
    }

    fn compress(&mut self, input: &[u8]) -> io::Result<Vec<u8>> {
        self.deflate.reset();
        let mut out = Vec::with_capacity(input.len() / 2 + 1024);
        out.extend_from_slice(&HEADER);
        let mut consumed = 0usize;
        loop {
            if out.capacity() - out.len() < 1024 {
                out.reserve(out.capacity().max(64 * 1024));
            }
            let before_in = self.deflate.total_in();
            let status = self
                .deflate
                .compress_vec(&input[consumed..], &mut out, FlushCompress::Finish)
                .map_err(io::Error::other)?;
            consumed += (self.deflate.total_in() - before_in) as usize;
            if status == Status::StreamEnd {
                break;
            }
        }
        let mut crc = Crc::new();
        crc.update(input);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        // ISIZE is the input length modulo 2^32 (RFC 1952).
        out.extend_from_slice(&(input.len() as u32).to_le_bytes());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::MultiGzDecoder;
    use std::io::Read;

    /// Input that compresses like real files: text, repeats and noise.
    pub(crate) fn sample(len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len);
        let mut x: u32 = 12345;
        while v.len() < len {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            match (x >> 16) % 4 {
                0 => v.extend_from_slice(b"the quick brown fox jumps over the lazy dog\n"),
                1 => v.extend_from_slice(&x.to_le_bytes()),
                2 => v.extend(std::iter::repeat_n((x >> 8) as u8, (x % 64) as usize)),
                _ => v.extend_from_slice(format!("line {x}\n").as_bytes()),
            }
        }
        v.truncate(len);
        v
    }

    fn gzip(data: &[u8], threads: usize, slice: usize) -> Vec<u8> {
        let mut gz = ParallelGzip::new(Vec::new(), threads).unwrap();
        for part in data.chunks(slice.max(1)) {
            gz.write_all(part).unwrap();
        }
        gz.finish().unwrap()
    }

    #[test]
    fn output_is_independent_of_threads_and_write_slicing() {
        let data = sample(5 * CHUNK + 12345);
        let one = gzip(&data, 1, 1 << 16);
        for (threads, slice) in [(2, 1 << 16), (3, 7777), (8, CHUNK), (4, 10 * CHUNK)] {
            assert!(
                gzip(&data, threads, slice) == one,
                "{threads} threads, writes of {slice} bytes gave different bytes"
            );
        }
    }

    #[test]
    fn members_decode_to_the_input_with_multigz_and_gzip_cli() {
        let data = sample(3 * CHUNK + 1);
        let gz = gzip(&data, 2, 100_000);
        // One member per started chunk.
        let members = gz.windows(10).filter(|w| *w == HEADER).count();
        assert!(members >= 4, "expected at least 4 members, found {members}");
        let mut back = Vec::new();
        MultiGzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
        assert!(back == data, "MultiGzDecoder output differs from input");

        let mut child = std::process::Command::new("gzip")
            .arg("-dc")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("gzip must be installed (apt-get install gzip)");
        let mut stdin = child.stdin.take().unwrap();
        let feeder = std::thread::spawn(move || stdin.write_all(&gz));
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap().unwrap();
        assert!(out.status.success(), "gzip -dc failed");
        assert!(out.stdout == data, "gzip -dc output differs from input");
    }

    #[test]
    fn empty_and_exact_multiple_inputs() {
        let empty = gzip(&[], 2, 1);
        assert_eq!(&empty[..10], &HEADER);
        let mut back = Vec::new();
        MultiGzDecoder::new(&empty[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back.is_empty());
        assert_eq!(empty, gzip(&[], 1, 1));

        let data = sample(2 * CHUNK);
        let gz = gzip(&data, 3, 4096);
        assert_eq!(gz.windows(10).filter(|w| *w == HEADER).count(), 2);
        let mut back = Vec::new();
        MultiGzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
        assert!(back == data);
    }

    #[test]
    fn dropping_an_unfinished_compressor_stops_its_workers() {
        let mut gz = ParallelGzip::new(Vec::new(), 4).unwrap();
        gz.write_all(&sample(3 * CHUNK)).unwrap();
        drop(gz); // must not hang or panic
    }
}
