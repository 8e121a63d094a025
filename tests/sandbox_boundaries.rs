//! What a build step can and cannot reach: host files outside its root and
//! mounts, processes that outlive it, privileges through setuid
//! (`no_new_privs`), and the host's abstract unix sockets when it has no
//! network. Each check has a counterpart that shows the probe works.

mod support;

use std::fs;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::Path;
use std::process::Command;

use support::*;

fn build(store: &Path, ctx: &Path, text: &str, extra: &[&str]) -> Run {
    fs::write(ctx.join("Containerfile"), text).unwrap();
    let s = store.display().to_string();
    let c = ctx.display().to_string();
    let mut args = vec!["--store", s.as_str(), "build", "-q", "-t", "b"];
    args.extend_from_slice(extra);
    args.push(c.as_str());
    boxwright(&args)
}

fn cat(store: &Path, path: &str) -> String {
    let s = store.display().to_string();
    boxwright(&["--store", &s, "run", "--rm", "b", "cat", path])
        .ok()
        .stdout
}

#[test]
fn host_files_leftover_processes_and_setuid_stay_out_of_reach() {
    let t = tempfile::tempdir().unwrap();
    let (store, ctx) = (t.path().join("store"), t.path().join("ctx"));
    fs::create_dir_all(&ctx).unwrap();
    let canary = t.path().join("host-canary");
    fs::write(&canary, "host").unwrap();
    let marker = format!("{}", 3000 + std::process::id() % 1000);
    let text = format!(
        "FROM rootfs:{base}\n\
         RUN (test -e {canary} && echo visible || echo hidden) > /canary\n\
         RUN sleep {marker} & echo started > /bg\n\
         RUN grep NoNewPrivs /proc/self/status | tr -d ' \\t' > /nnp\n",
        base = busybox_tar().display(),
        canary = canary.display(),
    );
    build(&store, &ctx, &text, &[]).ok();
    assert_eq!(cat(&store, "/canary"), "hidden\n", "a step saw a host file");
    assert_eq!(cat(&store, "/nnp"), "NoNewPrivs:1\n");
    // The background sleep died with its step: none is left on the host.
    let left = Command::new("pgrep")
        .args(["-f", &format!("^sleep {marker}$")])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "a step's process outlived it: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    // A sandbox run interactively keeps setuid (developers use sudo there).
    let s = store.display().to_string();
    let run = boxwright(&[
        "--store",
        &s,
        "run",
        "--rm",
        "b",
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ])
    .ok();
    assert!(run.stdout.contains('0'), "{}", run.stdout);
}

#[test]
fn abstract_unix_sockets_of_the_host_are_out_of_reach_without_network() {
    let name = format!("boxwright-abstract-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let listener = UnixListener::bind_addr(&addr).unwrap();
    listener.set_nonblocking(true).unwrap();
    let t = tempfile::tempdir().unwrap();
    let (store, ctx) = (t.path().join("store"), t.path().join("ctx"));
    fs::create_dir_all(&ctx).unwrap();
    let base = debian_base_in(t.path());
    let probe = format!(
        "perl -MSocket -e 'socket(S, PF_UNIX, SOCK_STREAM, 0) or die; print connect(S, pack_sockaddr_un(\"\\0{name}\")) ? \"connected\\n\" : \"refused\\n\"'"
    );
    let text = format!(
        "FROM rootfs:{}\nRUN --network=none {probe} > /none\nRUN {probe} > /host\n",
        base.display()
    );
    build(&store, &ctx, &text, &[]).ok();
    assert_eq!(cat(&store, "/none"), "refused\n");
    assert_eq!(
        cat(&store, "/host"),
        "connected\n",
        "the probe must work on the host network"
    );
    // `build --network none` too.
    let text = format!("FROM rootfs:{}\nRUN {probe} > /all-none\n", base.display());
    build(&store, &ctx, &text, &["--network", "none"]).ok();
    assert_eq!(cat(&store, "/all-none"), "refused\n");
    drop(listener);
}
