//! Concurrent writers of one store: threads with their own handles and separate processes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;

use super::{Layout, Store};
use crate::media::{Descriptor, OCI_MANIFEST};

const TAGS_PER_WORKER: usize = 25;
const ROOT_VAR: &str = "BOXWRIGHT_TEST_TAG_ROOT";
const WORKER_VAR: &str = "BOXWRIGHT_TEST_TAG_WORKER";

/// What worker `id` does: write its own manifest-ish blob and a shared one, then tag
/// `TAGS_PER_WORKER` names, each with its own fresh `Store` handle (own lock fds).
fn tag_as_worker(root: &Path, id: &str) {
    let store = Store::open(root).unwrap();
    let shared = store.write_blob(b"{\"schemaVersion\":2}").unwrap();
    let own = store
        .write_blob(format!("{{\"schemaVersion\":2,\"worker\":\"{id}\"}}").as_bytes())
        .unwrap();
    for i in 0..TAGS_PER_WORKER {
        let handle = Store::open(root).unwrap();
        let digest = if i % 2 == 0 { &own } else { &shared };
        let size = handle.blob_size(digest).unwrap();
        handle
            .tag(
                &format!("w{id}/img:{i}"),
                Descriptor::new(OCI_MANIFEST, digest.clone(), size),
            )
            .unwrap();
    }
}

fn expected_names(ids: &[String]) -> BTreeSet<String> {
    ids.iter()
        .flat_map(|id| (0..TAGS_PER_WORKER).map(move |i| format!("w{id}/img:{i}")))
        .collect()
}

fn names_in(root: &Path) -> BTreeSet<String> {
    Layout::open(root)
        .unwrap()
        .tags()
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

/// Run in-process this tags into a temp store and checks the result. The cross-process
/// test below re-executes this test binary to run it as a worker on a shared store.
#[test]
fn tagging_worker() {
    if let (Some(root), Some(id)) = (std::env::var_os(ROOT_VAR), std::env::var(WORKER_VAR).ok()) {
        tag_as_worker(Path::new(&root), &id);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    tag_as_worker(dir.path(), "solo");
    assert_eq!(names_in(dir.path()), expected_names(&["solo".to_string()]));
}

/// Tags from many threads while another thread keeps reading index.json: no read ever
/// sees a torn file and no tag is lost.
#[test]
fn threads_with_separate_handles_never_lose_a_tag() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    Store::open(&root).unwrap();
    let ids: Vec<String> = (0..6).map(|i| format!("t{i}")).collect();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let root = root.clone();
        let done = done.clone();
        thread::spawn(move || {
            let layout = Layout::open(&root).unwrap();
            let mut reads = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                layout.index().unwrap();
                reads += 1;
            }
            reads
        })
    };
    let workers: Vec<_> = ids
        .iter()
        .map(|id| {
            let (root, id) = (root.clone(), id.clone());
            thread::spawn(move || tag_as_worker(&root, &id))
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    assert_eq!(names_in(&root), expected_names(&ids));
    assert_no_temp_left(&root);
}

/// Several processes (this test binary re-executed as `tagging_worker`) plus threads of
/// this process tag one store at the same time.
#[test]
fn processes_and_threads_tagging_at_once_never_lose_a_tag() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    Store::open(&root).unwrap();
    let exe = std::env::current_exe().unwrap();
    let proc_ids: Vec<String> = (0..4).map(|i| format!("p{i}")).collect();
    let children: Vec<_> = proc_ids
        .iter()
        .map(|id| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "store::concurrency_tests::tagging_worker",
                    "--test-threads=1",
                    "--quiet",
                ])
                .env(ROOT_VAR, &root)
                .env(WORKER_VAR, id)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let thread_ids: Vec<String> = (0..2).map(|i| format!("x{i}")).collect();
    let threads: Vec<_> = thread_ids
        .iter()
        .map(|id| {
            let (root, id): (PathBuf, String) = (root.clone(), id.clone());
            thread::spawn(move || tag_as_worker(&root, &id))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "worker process failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let all: Vec<String> = proc_ids.into_iter().chain(thread_ids).collect();
    let names = names_in(&root);
    assert_eq!(names, expected_names(&all));
    // Exactly one entry per name: no duplicates from racing read-modify-writes.
    assert_eq!(
        Layout::open(&root)
            .unwrap()
            .index()
            .unwrap()
            .manifests
            .len(),
        names.len()
    );
    assert_no_temp_left(&root);
}

/// Many threads writing the same blob at once all succeed and leave it intact.
#[test]
fn racing_writers_of_the_same_blob_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    Store::open(&root).unwrap();
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    let data = std::sync::Arc::new(data);
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let (root, data) = (root.clone(), data.clone());
            thread::spawn(move || {
                let store = Store::open(&root).unwrap();
                let mut w = store.blob_writer().unwrap();
                std::io::Write::write_all(&mut w, &data).unwrap();
                w.finish(Some(&crate::digest::Digest::of(&data))).unwrap()
            })
        })
        .collect();
    for w in workers {
        assert_eq!(w.join().unwrap().1, data.len() as u64);
    }
    let store = Store::open(&root).unwrap();
    assert_eq!(
        store.read_blob(&crate::digest::Digest::of(&data)).unwrap(),
        *data
    );
    assert_no_temp_left(&root);
}

fn assert_no_temp_left(root: &Path) {
    let left: Vec<_> = std::fs::read_dir(Store::open(root).unwrap().tmp_dir())
        .unwrap()
        .collect();
    assert!(left.is_empty(), "temp files left: {left:?}");
}
