//! Reading a JSON Lines log that may still be growing (`logs --follow`),
//! and its first and last records (`builds`).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::Record;

/// Reads the complete lines of a file as they are appended; a line still
/// being written is held back until its newline arrives.
pub struct LogTail {
    file: File,
    pending: Vec<u8>,
}

impl LogTail {
    pub fn open(path: &Path) -> io::Result<LogTail> {
        Ok(LogTail {
            file: File::open(path)?,
            pending: Vec::new(),
        })
    }

    /// The complete lines appended since the last call (none at the end of the file).
    pub fn read_lines(&mut self) -> io::Result<Vec<String>> {
        let mut buf = Vec::new();
        self.file.read_to_end(&mut buf)?;
        self.pending.extend_from_slice(&buf);
        let Some(last_nl) = self.pending.iter().rposition(|&b| b == b'\n') else {
            return Ok(Vec::new());
        };
        let rest = self.pending.split_off(last_nl + 1);
        let done = std::mem::replace(&mut self.pending, rest);
        Ok(done
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect())
    }

    /// Bytes of an unfinished last line (a writer that died mid-line leaves one).
    pub fn unfinished(&self) -> Option<String> {
        (!self.pending.is_empty()).then(|| String::from_utf8_lossy(&self.pending).into_owned())
    }
}

/// The first and the last complete record of a log, read without going
/// through the lines between (a log of a long apt step has many).
pub fn first_and_last(path: &Path) -> io::Result<(Option<Record>, Option<Record>)> {
    let mut f = File::open(path)?;
    let mut first = String::new();
    BufReader::new(&mut f).read_line(&mut first)?;
    if !first.ends_with('\n') {
        return Ok((None, None));
    }
    let first = Record::parse(first.trim_end()).ok();
    let last = last_line(&mut f)?.and_then(|l| Record::parse(&l).ok());
    Ok((first, last))
}

/// The last newline-terminated line of a file, reading backwards in chunks.
fn last_line(f: &mut File) -> io::Result<Option<String>> {
    const CHUNK: u64 = 64 * 1024;
    let len = f.seek(SeekFrom::End(0))?;
    let mut tail: Vec<u8> = Vec::new();
    let mut pos = len;
    loop {
        let start = pos.saturating_sub(CHUNK);
        let mut chunk = vec![0u8; (pos - start) as usize];
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&tail);
        tail = chunk;
        pos = start;
        // Drop an unfinished line at the end, then look for the line before.
        let end = match tail.iter().rposition(|&b| b == b'\n') {
            Some(e) => e,
            None if pos == 0 => return Ok(None),
            None => continue,
        };
        match tail[..end].iter().rposition(|&b| b == b'\n') {
            Some(s) => {
                return Ok(Some(
                    String::from_utf8_lossy(&tail[s + 1..end]).into_owned(),
                ));
            }
            None if pos == 0 => {
                return Ok(Some(String::from_utf8_lossy(&tail[..end]).into_owned()));
            }
            None => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn lines_come_out_only_when_complete() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let mut w = File::create(&p).unwrap();
        let mut t = LogTail::open(&p).unwrap();
        assert!(t.read_lines().unwrap().is_empty());
        w.write_all(b"one\ntw").unwrap();
        assert_eq!(t.read_lines().unwrap(), ["one"]);
        assert_eq!(t.unfinished().as_deref(), Some("tw"));
        w.write_all(b"o\nthree\n").unwrap();
        assert_eq!(t.read_lines().unwrap(), ["two", "three"]);
        assert!(t.unfinished().is_none());
    }

    #[test]
    fn the_last_line_is_found_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let long = "x".repeat(200_000);
        std::fs::write(&p, format!("a\n{long}\nunfinished")).unwrap();
        let mut f = File::open(&p).unwrap();
        assert_eq!(last_line(&mut f).unwrap().as_deref(), Some(long.as_str()));
        std::fs::write(&p, "only\n").unwrap();
        let mut f = File::open(&p).unwrap();
        assert_eq!(last_line(&mut f).unwrap().as_deref(), Some("only"));
        std::fs::write(&p, "").unwrap();
        let mut f = File::open(&p).unwrap();
        assert_eq!(last_line(&mut f).unwrap(), None);
    }
}
