//! Fetching from a local mirror (a directory, and an HTTP server on
//! 127.0.0.1 started by the test), with right, wrong and missing files.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use sha2::{Digest as _, Sha256, Sha512};

use super::*;
use crate::catalog::{ArtifactFile, Checksum};

/// A minimal HTTP/1.0 file server on 127.0.0.1 that counts requests. It
/// stops when dropped.
struct Server {
    addr: String,
    files: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let files: Arc<Mutex<BTreeMap<String, Vec<u8>>>> = Arc::default();
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, h, s) = (files.clone(), hits.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                h.fetch_add(1, Ordering::SeqCst);
                serve(conn, &f);
            }
        });
        Server {
            addr,
            files,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    fn put(&self, path: &str, body: &[u8]) {
        self.files
            .lock()
            .unwrap()
            .insert(path.to_string(), body.to_vec());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr.trim_start_matches("http://"));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, files: &Mutex<BTreeMap<String, Vec<u8>>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    let body = files.lock().unwrap().get(&path).cloned();
    let mut conn = conn;
    let _ = match body {
        Some(b) => {
            let _ = write!(
                conn,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                b.len()
            );
            conn.write_all(&b)
        }
        None => conn
            .write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    };
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn file(name: &str, checksum: Checksum) -> ArtifactFile {
    ArtifactFile {
        file: name.to_string(),
        url: format!("https://upstream.invalid/{name}"),
        checksum,
    }
}

fn req<'a>(f: &'a ArtifactFile) -> Request<'a> {
    Request {
        component: "ttyd",
        version: "1.7.7",
        file: f,
    }
}

const BODY: &[u8] = b"#!/bin/sh\necho ttyd fixture\n";

#[test]
fn directory_mirror_then_cache() {
    let t = tempfile::tempdir().unwrap();
    let mirror = t.path().join("mirror");
    std::fs::create_dir_all(mirror.join("ttyd/1.7.7")).unwrap();
    std::fs::write(mirror.join("ttyd/1.7.7/ttyd.x86_64"), BODY).unwrap();
    let f = file("ttyd.x86_64", Checksum::Sha256(sha256(BODY)));
    let fetcher = Fetcher::new(
        t.path().join("cache"),
        Some(Mirror::Dir(mirror.clone())),
        false,
    );
    let got = fetcher.fetch(&req(&f)).unwrap();
    assert_eq!(std::fs::read(&got).unwrap(), BODY);
    assert_eq!(got, fetcher.cached_path(&req(&f)));
    assert!(got.ends_with(format!("sha256-{}/ttyd.x86_64", sha256(BODY))));
    // From the cache now: the mirror may go away, even offline.
    std::fs::remove_dir_all(&mirror).unwrap();
    let offline = Fetcher::new(t.path().join("cache"), None, true);
    offline.check_offline(&[req(&f)]).unwrap();
    assert_eq!(offline.fetch(&req(&f)).unwrap(), got);
}

#[test]
fn http_mirror_right_wrong_and_missing() {
    let server = Server::start();
    server.put("/ttyd/1.7.7/ttyd.x86_64", BODY);
    server.put("/ttyd/1.7.7/ttyd.bad", b"not the pinned bytes");
    let t = tempfile::tempdir().unwrap();
    let fetcher = Fetcher::new(
        t.path().join("cache"),
        Some(Mirror::parse(&format!("{}/", server.addr))),
        false,
    );

    let good = file("ttyd.x86_64", Checksum::Sha256(sha256(BODY)));
    let path = fetcher.fetch(&req(&good)).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), BODY);
    let hits = server.hits.load(Ordering::SeqCst);
    fetcher.fetch(&req(&good)).unwrap();
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        hits,
        "second fetch must hit the cache"
    );

    let bad = file("ttyd.bad", Checksum::Sha256(sha256(BODY)));
    let err = fetcher.fetch(&req(&bad)).expect_err("wrong checksum");
    let message = err.to_string();
    assert!(matches!(err, ArtifactError::Checksum { .. }), "{err:?}");
    assert!(
        message.starts_with(&format!(
            "artifact ttyd 1.7.7 (ttyd.bad) from {}/ttyd/1.7.7/ttyd.bad has sha256 {}, but the catalog pins {}",
            server.addr,
            sha256(b"not the pinned bytes"),
            sha256(BODY)
        )),
        "{message}"
    );
    assert!(
        !fetcher.cached_path(&req(&bad)).exists(),
        "a bad file must not be cached"
    );
    assert_no_partial_files(&t.path().join("cache"));

    let missing = file("ttyd.aarch64", Checksum::Sha256(sha256(BODY)));
    let err = fetcher.fetch(&req(&missing)).expect_err("missing");
    let message = err.to_string();
    assert!(
        message.starts_with("cannot get ttyd 1.7.7 (ttyd.aarch64): looked in "),
        "{message}"
    );
    assert!(message.contains("(not cached)"), "{message}");
    assert!(
        message.contains(&format!(
            "{}/ttyd/1.7.7/ttyd.aarch64 (HTTP 404 Not Found)",
            server.addr
        )),
        "{message}"
    );
    assert!(!message.contains('\n'));
}

#[test]
fn upstream_url_without_a_mirror_and_sha512() {
    let server = Server::start();
    server.put("/dl/sdk.tar.gz", BODY);
    let t = tempfile::tempdir().unwrap();
    let f = ArtifactFile {
        file: "sdk.tar.gz".into(),
        url: format!("{}/dl/sdk.tar.gz", server.addr),
        checksum: Checksum::Sha512(hex::encode(Sha512::digest(BODY))),
    };
    let fetcher = Fetcher::new(t.path().join("cache"), None, false);
    let path = fetcher.fetch(&req(&f)).unwrap();
    assert!(path.to_string_lossy().contains("/sha512-"));
    assert_eq!(std::fs::read(path).unwrap(), BODY);
}

#[test]
fn offline_lists_everything_needed_up_front() {
    let t = tempfile::tempdir().unwrap();
    let a = file("ttyd.x86_64", Checksum::Sha256(sha256(BODY)));
    let b = file("code-server.tar.gz", Checksum::Sha256(sha256(b"cs")));
    let reqs = [
        req(&a),
        Request {
            component: "code-server",
            version: "4.139.1",
            file: &b,
        },
    ];
    let fetcher = Fetcher::new(t.path().join("cache"), None, true);
    let err = fetcher.check_offline(&reqs).expect_err("offline");
    assert_eq!(
        err.to_string(),
        "--offline: this build needs 2 download(s) that are not in the artifact cache: \
         ttyd 1.7.7 (ttyd.x86_64) from https://upstream.invalid/ttyd.x86_64; \
         code-server 4.139.1 (code-server.tar.gz) from https://upstream.invalid/code-server.tar.gz; \
         run once without --offline, or give an internal mirror \
         (--artifact-mirror DIR_OR_URL, or --mirror FROM=TO for their URLs)"
    );
    let err = fetcher.fetch(&reqs[0]).expect_err("no network offline");
    assert!(
        err.to_string().contains("(not fetched: --offline)"),
        "{err}"
    );
    // Not offline: nothing to check.
    Fetcher::new(t.path().join("cache"), None, false)
        .check_offline(&reqs)
        .unwrap();
    // A directory mirror is fine offline.
    let mirror = t.path().join("m");
    std::fs::create_dir_all(mirror.join("ttyd/1.7.7")).unwrap();
    std::fs::write(mirror.join("ttyd/1.7.7/ttyd.x86_64"), BODY).unwrap();
    let with_mirror = Fetcher::new(t.path().join("cache"), Some(Mirror::Dir(mirror)), true);
    with_mirror.check_offline(&reqs[..1]).unwrap();
    with_mirror.fetch(&reqs[0]).unwrap();
    // A URL mirror is internal: offline trusts it to hold everything.
    let url_mirror = Fetcher::new(
        t.path().join("cache2"),
        Some(Mirror::Url("http://127.0.0.1:9/m".into())),
        true,
    );
    url_mirror.check_offline(&reqs).unwrap();
}

#[test]
fn download_mirrors_rewrite_upstream_urls_even_offline() {
    let server = Server::start();
    server.put("/internal/ttyd.x86_64", BODY);
    let t = tempfile::tempdir().unwrap();
    let f = file("ttyd.x86_64", Checksum::Sha256(sha256(BODY)));
    let other = file("code-server.tar.gz", Checksum::Sha256(sha256(b"cs")));
    let rule = |to: &str| crate::mirror::Rule::new("https://upstream.invalid/ttyd", to).unwrap();
    let f2 = ArtifactFile {
        url: "https://upstream.invalid/ttyd/ttyd.x86_64".into(),
        ..f.clone()
    };
    // The rule covers the directory of f2's URL only: f's and the other
    // file's stay upstream ("ttyd/" is a directory, not a name prefix).
    let rules = Mirrors::new([rule(&format!("{}/internal/", server.addr))]);
    let fetcher = Fetcher::new(t.path().join("cache"), None, true).with_rewrites(rules);
    let err = fetcher
        .check_offline(&[req(&f2), req(&f), req(&other)])
        .expect_err("upstream only");
    assert!(
        err.to_string()
            .contains("2 download(s) that are not in the artifact cache: ttyd 1.7.7 (ttyd.x86_64) from https://upstream.invalid/ttyd.x86_64; ttyd 1.7.7 (code-server.tar.gz) from https://upstream.invalid/code-server.tar.gz;"),
        "{err}"
    );
    fetcher.check_offline(&[req(&f2)]).unwrap();
    let got = fetcher.fetch(&req(&f2)).unwrap();
    assert_eq!(std::fs::read(got).unwrap(), BODY);
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
    // An artifact mirror takes precedence over the rules.
    let both = Fetcher::new(
        t.path().join("cache2"),
        Some(Mirror::Url(format!("{}/am", server.addr))),
        false,
    )
    .with_rewrites(Mirrors::new([rule(&format!("{}/internal/", server.addr))]));
    let err = both
        .fetch(&req(&f2))
        .expect_err("not in the artifact mirror");
    assert!(
        err.to_string()
            .contains("/am/ttyd/1.7.7/ttyd.x86_64 (HTTP 404"),
        "{err}"
    );
    // A mirror's credentials never show in an error.
    let secret =
        Fetcher::new(t.path().join("cache3"), None, false).with_rewrites(Mirrors::new([rule(
            "http://me:hunter2-secret@127.0.0.1:9/x/",
        )]));
    let err = secret
        .fetch(&req(&f2))
        .expect_err("nothing listens on port 9");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(
        err.to_string()
            .contains("http://***@127.0.0.1:9/x/ttyd.x86_64"),
        "{err}"
    );
}

#[test]
fn a_corrupt_cached_file_is_fetched_again() {
    let t = tempfile::tempdir().unwrap();
    let mirror = t.path().join("mirror");
    std::fs::create_dir_all(mirror.join("ttyd/1.7.7")).unwrap();
    std::fs::write(mirror.join("ttyd/1.7.7/ttyd.x86_64"), BODY).unwrap();
    let f = file("ttyd.x86_64", Checksum::Sha256(sha256(BODY)));
    let fetcher = Fetcher::new(t.path().join("cache"), Some(Mirror::Dir(mirror)), false);
    let path = fetcher.cached_path(&req(&f));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"bit rot").unwrap();
    assert_eq!(fetcher.fetch(&req(&f)).unwrap(), path);
    assert_eq!(std::fs::read(&path).unwrap(), BODY);
}

#[test]
fn mirror_forms() {
    assert_eq!(
        Mirror::parse("https://m.example/a/"),
        Mirror::Url("https://m.example/a".into())
    );
    assert_eq!(Mirror::parse("file:///srv/m"), Mirror::Dir("/srv/m".into()));
    assert_eq!(Mirror::parse("rel/dir"), Mirror::Dir("rel/dir".into()));
}

fn assert_no_partial_files(dir: &Path) {
    for e in walkdir::WalkDir::new(dir).into_iter().flatten() {
        assert!(
            !e.file_name().to_string_lossy().starts_with(".partial-"),
            "left behind: {}",
            e.path().display()
        );
    }
}
