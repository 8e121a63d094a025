//! Downloading one URL into a writer, with the registry client's HTTP
//! set-up and retry policy (`crate::registry::build_client`,
//! `crate::registry::Retry`): rustls (`ring`) with the system CA roots
//! (which honour `SSL_CERT_FILE` and `SSL_CERT_DIR`), the proxies of
//! `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` but never for a loopback host,
//! retries with backoff on 5xx, 408, 429 and dropped connections, none on
//! a 404 or an unknown host.
//!
//! The writer hashes what it gets and cannot rewind, so a download that
//! broke off goes on where it stopped: a `Range` request, or, from a
//! server that sends the whole file again, the bytes already written are
//! skipped.

use std::io::Write;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, RANGE};

use crate::registry::{
    ClientSpec, Failure, RegistryError, Retry, build_client, classify, error_chain, is_loopback,
};

/// Why a download failed, one line, without the URL (the caller names it).
#[derive(Debug, thiserror::Error)]
pub(crate) enum DownloadError {
    /// The server answered with an error status (`HTTP 404 Not Found`).
    #[error("HTTP {status}")]
    Status { status: StatusCode },
    /// No answer, or the body broke off.
    #[error("{message}")]
    Request {
        message: String,
        #[source]
        source: reqwest::Error,
    },
    /// A resumed download does not fit what was already written.
    #[error("{0}: the file changed on the server while it was downloaded")]
    Changed(String),
    #[error("cannot write the download: {0}")]
    Write(#[source] std::io::Error),
    #[error("cannot start the HTTP client: {0}")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Client(#[from] RegistryError),
    /// The last of several failures that might have healed.
    #[error("{last} (gave up after {attempts} attempts)")]
    GaveUp {
        attempts: u32,
        #[source]
        last: Box<DownloadError>,
    },
}

/// One attempt's failure: whether another attempt may succeed.
enum Attempt {
    Heal(DownloadError, Option<std::time::Duration>),
    Final(DownloadError),
}

/// Downloads `url` into `out`.
pub(crate) fn download(url: &str, out: &mut dyn Write) -> Result<(), DownloadError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DownloadError::Runtime)?;
    runtime.block_on(fetch(url, out, &Retry::default()))
}

async fn fetch(url: &str, out: &mut dyn Write, retry: &Retry) -> Result<(), DownloadError> {
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let client = build_client(&ClientSpec {
        direct: is_loopback(&host),
        ..ClientSpec::default()
    })?;
    let mut written = 0u64;
    let mut attempts = retry.attempts();
    loop {
        match attempt(&client, url, out, &mut written).await {
            Ok(()) => return Ok(()),
            Err(Attempt::Final(e)) => return Err(e),
            Err(Attempt::Heal(e, retry_after)) => {
                if attempts.fail().is_none() {
                    return Err(match attempts.failures() {
                        1 => e,
                        n => DownloadError::GaveUp {
                            attempts: n,
                            last: Box::new(e),
                        },
                    });
                }
                tracing::debug!(url, written, error = %e, "download failed; retrying");
                attempts.pause(retry_after).await;
            }
        }
    }
}

/// One request: from byte `written` on when some bytes are there already.
async fn attempt(
    client: &reqwest::Client,
    url: &str,
    out: &mut dyn Write,
    written: &mut u64,
) -> Result<(), Attempt> {
    let mut rb = client.get(url);
    if *written > 0 {
        rb = rb.header(RANGE, format!("bytes={written}-"));
    }
    let mut resp = rb.send().await.map_err(request_failed)?;
    let status = resp.status();
    let mut skip = if status == StatusCode::PARTIAL_CONTENT && *written > 0 {
        match range_start(&resp) {
            Some(start) if start <= *written => *written - start,
            _ => {
                return Err(Attempt::Final(DownloadError::Changed(format!(
                    "asked for bytes from {written}, got a range starting elsewhere"
                ))));
            }
        }
    } else if status.is_success() {
        // The whole file again: skip what the writer has.
        *written
    } else if Retry::status_can_heal(status) {
        let retry_after = crate::registry::retry_after(resp.headers());
        return Err(Attempt::Heal(DownloadError::Status { status }, retry_after));
    } else {
        return Err(Attempt::Final(DownloadError::Status { status }));
    };
    while let Some(chunk) = resp.chunk().await.map_err(request_failed)? {
        let mut data = &chunk[..];
        if skip > 0 {
            let n = (skip as usize).min(data.len());
            data = &data[n..];
            skip -= n as u64;
        }
        out.write_all(data)
            .map_err(|e| Attempt::Final(DownloadError::Write(e)))?;
        *written += data.len() as u64;
    }
    if skip > 0 {
        return Err(Attempt::Final(DownloadError::Changed(format!(
            "it is now shorter than the {written} bytes already downloaded"
        ))));
    }
    Ok(())
}

fn request_failed(e: reqwest::Error) -> Attempt {
    let why = classify(&e);
    // The caller shows the URL (with credentials masked); reqwest's own
    // message would repeat it.
    let e = e.without_url();
    let err = DownloadError::Request {
        message: error_chain(&e),
        source: e,
    };
    match why {
        Failure::Transient => Attempt::Heal(err, None),
        Failure::PlainHttp | Failure::Certificate | Failure::Permanent => Attempt::Final(err),
    }
}

/// The first byte's offset in a `Content-Range: bytes START-END/TOTAL`.
fn range_start(resp: &reqwest::Response) -> Option<u64> {
    let v = resp.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let range = v.trim().strip_prefix("bytes")?.trim_start();
    range.split('-').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    /// What the test server does with its next request.
    #[derive(Clone, Copy)]
    enum Reply {
        /// Sends this status and no body.
        Status(u16),
        /// Sends the body from the asked-for offset (206 for a Range
        /// request when `ranges`), cutting the connection after `cut` bytes
        /// of it when given.
        Body { ranges: bool, cut: Option<usize> },
    }

    /// A one-connection-at-a-time HTTP/1.0 server: replies in order, and
    /// the Range header of each request it saw.
    struct Server {
        url: String,
        seen: Arc<Mutex<Vec<Option<String>>>>,
    }

    fn serve(body: &'static [u8], replies: Vec<Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/file", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for reply in replies {
                let Ok((conn, _)) = listener.accept() else {
                    return;
                };
                let range = read_request(&conn);
                log.lock().unwrap().push(range.clone());
                answer(conn, body, reply, range);
            }
        });
        Server { url, seen }
    }

    fn read_request(conn: &TcpStream) -> Option<String> {
        let mut r = BufReader::new(conn);
        let mut range = None;
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                return range;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("range:") {
                range = Some(v.trim().to_string());
            }
        }
    }

    fn answer(mut conn: TcpStream, body: &[u8], reply: Reply, range: Option<String>) {
        match reply {
            Reply::Status(code) => {
                let _ = write!(conn, "HTTP/1.0 {code} X\r\nContent-Length: 0\r\n\r\n");
            }
            Reply::Body { ranges, cut } => {
                let from = range
                    .filter(|_| ranges)
                    .and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok());
                let part = &body[from.unwrap_or(0)..];
                let head = match from {
                    Some(f) => format!(
                        "HTTP/1.0 206 Partial\r\nContent-Range: bytes {f}-{}/{}\r\nContent-Length: {}\r\n\r\n",
                        body.len() - 1,
                        body.len(),
                        part.len()
                    ),
                    None => format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", part.len()),
                };
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(&part[..cut.unwrap_or(part.len()).min(part.len())]);
                let _ = conn.flush();
                // Let the bytes reach the client before the connection goes.
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = conn.shutdown(std::net::Shutdown::Both);
        let mut sink = Vec::new();
        let _ = conn.read_to_end(&mut sink);
    }

    fn get(url: &str) -> (Result<(), DownloadError>, Vec<u8>) {
        let retry = Retry {
            max_attempts: 3,
            base: Duration::from_millis(10),
            max: Duration::from_millis(50),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut out = Vec::new();
        let r = rt.block_on(fetch(url, &mut out, &retry));
        (r, out)
    }

    const BODY: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

    #[test]
    fn a_broken_download_resumes_with_a_range_request() {
        let s = serve(
            BODY,
            vec![
                Reply::Body {
                    ranges: true,
                    cut: Some(10),
                },
                Reply::Body {
                    ranges: true,
                    cut: None,
                },
            ],
        );
        let (r, out) = get(&s.url);
        r.unwrap();
        assert_eq!(out, BODY);
        assert_eq!(
            *s.seen.lock().unwrap(),
            [None, Some("bytes=10-".to_string())]
        );
    }

    #[test]
    fn a_server_without_ranges_sends_it_all_and_the_start_is_skipped() {
        let s = serve(
            BODY,
            vec![
                Reply::Status(503),
                Reply::Body {
                    ranges: false,
                    cut: Some(7),
                },
                Reply::Body {
                    ranges: false,
                    cut: None,
                },
            ],
        );
        let (r, out) = get(&s.url);
        r.unwrap();
        assert_eq!(out, BODY);
        assert_eq!(s.seen.lock().unwrap().len(), 3);
    }

    #[test]
    fn a_404_is_not_retried_and_5xx_gives_up_after_the_policy_s_attempts() {
        let s = serve(BODY, vec![Reply::Status(404), Reply::Status(404)]);
        let (r, _) = get(&s.url);
        assert_eq!(r.unwrap_err().to_string(), "HTTP 404 Not Found");
        assert_eq!(s.seen.lock().unwrap().len(), 1, "a 404 is asked once");

        let s = serve(BODY, vec![Reply::Status(503); 4]);
        let (r, _) = get(&s.url);
        assert_eq!(
            r.unwrap_err().to_string(),
            "HTTP 503 Service Unavailable (gave up after 3 attempts)"
        );
        assert_eq!(s.seen.lock().unwrap().len(), 3);
    }
}
