//! The sandbox for real: user namespaces in the three id modes, overlays,
//! pid 1, /dev, /proc, network isolation, host files, COPY, fake root.
//!
//! The helper is this test binary, re-executed inside a user namespace with
//! a job in an environment variable; `helper_entry` then does the job. The
//! tests run as root; the rootless modes run as the users `bwsub` (with an
//! /etc/subuid range) and `bwsingle` (without) through runuser.

mod sandbox_support;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use boxwright::sandbox::{
    Action, HostEnv, IdMapping, IdMode, IdRange, Network, Rootfs, SandboxError,
};
use sandbox_support::{
    Job, Layers, Workspace, as_root, busybox_tree, chown_tree, owner_mode, spec, tree_entries,
    user_ids,
};

const SUB_USER: &str = "bwsub";
const SINGLE_USER: &str = "bwsingle";

/// Does nothing in a normal test run; does the job when re-executed as a helper.
#[test]
fn helper_entry() {
    sandbox_support::helper_entry();
}

fn set(items: &[&str]) -> std::collections::BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn root_mode_step_changes_land_in_the_upperdir_and_nothing_else() {
    let layers = Layers::new();
    std::fs::create_dir(layers.lower.join("data")).unwrap();
    std::fs::write(layers.lower.join("data/old"), "old").unwrap();
    std::fs::write(layers.lower.join("data/keep"), "keep").unwrap();
    let mut spec = layers.shell(
        "set -e; pwd > /cwd; echo hi > /new; rm /data/old; \
         touch /owned; chown 1000:1000 /owned; touch /suid; chmod u+s /suid; \
         mkdir -p /etc; echo x > /etc/new.conf",
    );
    if let Action::Exec { cwd, .. } = &mut spec.action {
        *cwd = "/work/dir".into();
    }
    let out = as_root(&Job::Run(spec));
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);

    let up = &layers.upper;
    assert_eq!(std::fs::read_to_string(up.join("new")).unwrap(), "hi\n");
    assert_eq!(
        std::fs::read_to_string(up.join("cwd")).unwrap(),
        "/work/dir\n"
    );
    let whiteout = std::fs::symlink_metadata(up.join("data/old")).unwrap();
    assert!(whiteout.file_type().is_char_device() && whiteout.rdev() == 0);
    let (uid, gid, _) = owner_mode(&up.join("owned"));
    assert_eq!((uid, gid), (1000, 1000), "root mode maps ids one to one");
    assert_ne!(
        owner_mode(&up.join("suid")).2 & 0o4000,
        0,
        "setuid bit kept"
    );
    // proc, dev, sys, run, etc/resolv.conf and etc/hosts were created as
    // mountpoints and must be gone; /etc stays because the step wrote into
    // it, and the missing cwd is a real change.
    assert_eq!(
        layers.upper_entries(),
        set(&[
            "cwd",
            "data",
            "data/old",
            "etc",
            "etc/new.conf",
            "new",
            "owned",
            "suid",
            "work",
            "work/dir",
        ])
    );
}

#[test]
fn exit_codes_and_signals_are_propagated() {
    let layers = Layers::new();
    assert_eq!(as_root(&Job::Run(layers.shell("exit 7"))).code(), 7);
    assert_eq!(as_root(&Job::Run(layers.shell("kill -9 $$"))).code(), 137);
    assert!(
        layers.upper_entries().is_empty(),
        "{:?}",
        layers.upper_entries()
    );
}

#[test]
fn network_none_has_only_a_loopback_that_is_up() {
    let layers = Layers::new();
    let mut spec = layers.shell(
        "cat /proc/net/dev; echo flags=$(cat /sys/class/net/lo/flags); echo sys=$(ls /sys/class/net)",
    );
    spec.network = Network::None;
    let out = as_root(&Job::Run(spec));
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    let interfaces: Vec<&str> = out
        .stderr
        .lines()
        .filter_map(|l| l.split_once(':').map(|(name, _)| name.trim()))
        .filter(|name| !name.contains('|') && !name.is_empty() && !name.starts_with("flags"))
        .collect();
    assert_eq!(interfaces, ["lo"], "stderr: {}", out.stderr);
    let flags = out
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("flags=0x"))
        .expect("lo flags printed");
    let flags = u32::from_str_radix(flags.trim(), 16).unwrap();
    assert_eq!(flags & 1, 1, "IFF_UP set on lo");
    assert!(
        out.stderr.lines().any(|l| l == "sys=lo"),
        "/sys shows the private netns: {}",
        out.stderr
    );
    assert!(layers.upper_entries().is_empty());
}

#[test]
fn proc_dev_pid_namespace_and_hostname() {
    let layers = Layers::new();
    let script = "set -e; echo pid=$$; grep -q '^Pid:' /proc/self/status; \
        echo x > /dev/null; test -c /dev/null; test -c /dev/zero; \
        echo urandom=$(head -c 4 /dev/urandom | wc -c); test -e /dev/pts/ptmx; \
        test -L /dev/ptmx; test -L /dev/fd; test -d /dev/shm; echo shm > /dev/shm/x; \
        echo pids=$(cd /proc && echo [0-9]*); echo host=$(hostname); \
        echo run > /run/scratch; grep -q '^sysfs /sys sysfs ro,' /proc/mounts; echo stdin=$(cat)";
    let out = as_root(&Job::Run(layers.shell(script)));
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(
        lines.contains(&"pid=2"),
        "the step is pid 2 under init: {lines:?}"
    );
    assert!(lines.contains(&"urandom=4"), "{lines:?}");
    // init, the shell and the $(...) subshell: no host process is visible.
    let pids: Vec<u32> = lines
        .iter()
        .find_map(|l| l.strip_prefix("pids="))
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(
        pids.len(),
        3,
        "only the sandbox's processes are visible: {pids:?}"
    );
    assert_eq!(pids[..2], [1, 2]);
    assert!(lines.contains(&"host=boxwright"), "{lines:?}");
    assert!(lines.contains(&"stdin="), "stdin is /dev/null: {lines:?}");
    assert!(
        layers.upper_entries().is_empty(),
        "{:?}",
        layers.upper_entries()
    );
}

#[test]
fn ca_bundle_and_proxies_reach_the_step_read_only() {
    let layers = Layers::new();
    let ca = layers.lower.parent().unwrap().join("test-ca.pem");
    std::fs::write(&ca, "-----TEST CA-----\n").unwrap();
    let mut spec = layers.shell(
        "for v in SSL_CERT_FILE NODE_EXTRA_CA_CERTS REQUESTS_CA_BUNDLE PIP_CERT CURL_CA_BUNDLE \
         GIT_SSL_CAINFO; do eval echo $v=\\$$v; done; echo proxy=$HTTPS_PROXY,$no_proxy; \
         cat \"$SSL_CERT_FILE\"; if echo x >> \"$SSL_CERT_FILE\"; then echo writable; \
         else echo read-only; fi",
    );
    spec.host = HostEnv {
        proxies: vec![
            ("HTTPS_PROXY".into(), "http://proxy.invalid:3128".into()),
            ("no_proxy".into(), "localhost".into()),
        ],
        ca_bundle: Some(ca.clone()),
        ..HostEnv::default()
    };
    let out = as_root(&Job::Run(spec));
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    for var in [
        "SSL_CERT_FILE",
        "NODE_EXTRA_CA_CERTS",
        "REQUESTS_CA_BUNDLE",
        "PIP_CERT",
        "CURL_CA_BUNDLE",
        "GIT_SSL_CAINFO",
    ] {
        let line = format!("{var}=/run/boxwright/ca-certificates.crt");
        assert!(
            out.stderr.lines().any(|l| l == line),
            "{line} in {}",
            out.stderr
        );
    }
    assert!(
        out.stderr
            .contains("proxy=http://proxy.invalid:3128,localhost")
    );
    assert!(out.stderr.contains("-----TEST CA-----"));
    assert!(
        out.stderr.lines().any(|l| l == "read-only"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read_to_string(&ca).unwrap(), "-----TEST CA-----\n");
    assert!(
        layers.upper_entries().is_empty(),
        "{:?}",
        layers.upper_entries()
    );
}

#[test]
fn host_network_files_are_read_only_and_leave_no_trace() {
    let layers = Layers::new();
    // An image with /etc but no resolv.conf or hosts: creating the stubs
    // copies /etc up, and that copy must go too.
    std::fs::create_dir(layers.lower.join("etc")).unwrap();
    std::fs::write(layers.lower.join("etc/os-release"), "ID=test\n").unwrap();
    let before = (
        std::fs::read("/etc/resolv.conf").expect("the host has /etc/resolv.conf"),
        std::fs::read("/etc/hosts").expect("the host has /etc/hosts"),
    );
    let out = as_root(&Job::Run(layers.shell(
        "cat /etc/resolv.conf; for f in resolv.conf hosts; do \
         if echo bad > /etc/$f; then echo wrote $f; else echo refused $f; fi; done",
    )));
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    assert!(
        out.stderr
            .contains(&String::from_utf8_lossy(&before.0).to_string())
    );
    assert!(
        out.stderr.lines().any(|l| l == "refused resolv.conf"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.lines().any(|l| l == "refused hosts"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read("/etc/resolv.conf").unwrap(), before.0);
    assert_eq!(std::fs::read("/etc/hosts").unwrap(), before.1);
    assert!(
        layers.upper_entries().is_empty(),
        "{:?}",
        layers.upper_entries()
    );
}

#[test]
fn a_directory_rootfs_is_changed_in_place_without_stubs() {
    let dir = tempfile::tempdir().unwrap();
    busybox_tree(dir.path());
    let out = as_root(&Job::Run(spec(
        Rootfs::Directory(dir.path().to_path_buf()),
        "set -e; echo hi > /new; test -d /proc/self; test -c /dev/null",
    )));
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("new")).unwrap(),
        "hi\n"
    );
    let top: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let top: std::collections::BTreeSet<String> = top.into_iter().collect();
    assert_eq!(top, set(&["bin", "new"]));
}

#[test]
fn layer_paths_with_colons_and_several_lowerdirs() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("sha256:base");
    busybox_tree(&base);
    let top = dir.path().join("sha256:top");
    std::fs::create_dir_all(top.join("etc")).unwrap();
    std::fs::write(top.join("etc/motd"), "from the top layer\n").unwrap();
    let (upper, work) = (dir.path().join("upper"), dir.path().join("work"));
    std::fs::create_dir(&upper).unwrap();
    std::fs::create_dir(&work).unwrap();
    let rootfs = Rootfs::Overlay {
        lowerdirs: vec![top, base],
        upperdir: upper.clone(),
        workdir: work,
    };
    let out = as_root(&Job::Run(spec(rootfs, "cat /etc/motd; busybox true")));
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    assert!(out.stderr.contains("from the top layer"));
    assert!(
        tree_entries(&upper).is_empty(),
        "{:?}",
        tree_entries(&upper)
    );
}

#[test]
fn copy_follows_dockerfile_semantics() {
    let layers = Layers::new();
    let ctx = layers.lower.parent().unwrap().join("context");
    std::fs::create_dir_all(ctx.join("tree/sub")).unwrap();
    std::fs::write(ctx.join("hello.txt"), "hello\n").unwrap();
    sandbox_support::chmod(&ctx.join("hello.txt"), 0o600);
    std::fs::write(ctx.join("tree/a.txt"), "a\n").unwrap();
    std::fs::write(ctx.join("tree/sub/b.txt"), "b\n").unwrap();
    std::os::unix::fs::symlink("a.txt", ctx.join("tree/link")).unwrap();
    let copy = |src: &str, dest: &str, mode, owner| {
        let mut spec = layers.shell("unused");
        spec.action = Action::Copy {
            src: ctx.join(src),
            dest: dest.into(),
            mode,
            owner,
        };
        let out = as_root(&Job::Run(spec));
        assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    };
    copy("hello.txt", "/opt/app/", None, None);
    copy("hello.txt", "/etc/renamed.conf", None, Some((7, 8)));
    copy("tree", "/srv/data", Some(0o750), Some((1000, 1001)));

    let up = &layers.upper;
    assert_eq!(
        std::fs::read_to_string(up.join("opt/app/hello.txt")).unwrap(),
        "hello\n"
    );
    assert_eq!(owner_mode(&up.join("opt/app/hello.txt")), (0, 0, 0o100600));
    assert_eq!(
        owner_mode(&up.join("opt")),
        (0, 0, 0o040755),
        "parents made 0755"
    );
    assert_eq!(owner_mode(&up.join("etc/renamed.conf")), (7, 8, 0o100600));
    assert_eq!(
        std::fs::read_to_string(up.join("srv/data/sub/b.txt")).unwrap(),
        "b\n"
    );
    for file in ["srv/data/a.txt", "srv/data/sub/b.txt"] {
        assert_eq!(owner_mode(&up.join(file)), (1000, 1001, 0o100750), "{file}");
    }
    for dir in ["srv/data", "srv/data/sub"] {
        assert_eq!(owner_mode(&up.join(dir)), (1000, 1001, 0o040750), "{dir}");
    }
    assert_eq!(owner_mode(&up.join("srv")), (0, 0, 0o040755));
    let link = up.join("srv/data/link");
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("a.txt"));
    assert_eq!(
        owner_mode(&link).0,
        1000,
        "symlinks are chowned, not followed"
    );
    assert_eq!(
        layers.upper_entries(),
        set(&[
            "etc",
            "etc/renamed.conf",
            "opt",
            "opt/app",
            "opt/app/hello.txt",
            "srv",
            "srv/data",
            "srv/data/a.txt",
            "srv/data/link",
            "srv/data/sub",
            "srv/data/sub/b.txt",
        ])
    );
}

#[test]
fn a_missing_program_is_an_error_that_names_it() {
    let layers = Layers::new();
    for program in ["/no/such/program", "no-such-program"] {
        let mut spec = layers.shell("unused");
        spec.action = Action::Exec {
            argv: vec![program.into()],
            env: vec![],
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            user: None,
        };
        let out = as_root(&Job::Run(spec));
        match out.error() {
            SandboxError::Exec { program: p, .. } => assert_eq!(p, program),
            other => panic!("expected an exec error, got {other}"),
        }
    }
    let mut bad = layers.shell("unused");
    if let Action::Exec { argv, .. } = &mut bad.action {
        argv.clear();
    }
    assert!(matches!(
        boxwright::sandbox::run_in_namespace(&bad),
        Err(SandboxError::InvalidSpec { .. })
    ));
}

#[test]
fn probe_overlay_as_root_leaves_nothing_behind() {
    let scratch = tempfile::tempdir().unwrap();
    let out = as_root(&Job::Probe(scratch.path().to_path_buf()));
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert!(tree_entries(scratch.path()).is_empty());
}

#[test]
fn detect_picks_the_mode_for_each_user() {
    let root = IdMapping::detect().unwrap();
    assert_eq!(root.mode, IdMode::Root);
    assert_eq!(
        root.uids,
        [IdRange {
            container: 0,
            host: 0,
            len: u32::MAX
        }]
    );
    assert_eq!(
        root.describe(),
        "root: user namespace mapping the whole id range (no helper tools needed)"
    );
    assert!(!root.fake_root());

    let ws = Workspace::new();
    let detect = |user: &str| -> (IdMapping, String) {
        let out = ws.as_user(user, &Job::Detect);
        serde_json::from_value(out.result.expect("detection works")).unwrap()
    };

    let (sub_uid, sub_gid) = user_ids(SUB_USER);
    let (sub_start, sub_count) = subid_range(SUB_USER);
    let (sub, text) = detect(SUB_USER);
    assert_eq!(sub.mode, IdMode::Subordinate);
    assert_eq!(
        sub.uids,
        [
            IdRange {
                container: 0,
                host: sub_uid,
                len: 1
            },
            IdRange {
                container: 1,
                host: sub_start,
                len: sub_count
            },
        ]
    );
    assert_eq!(sub.gids[0].host, sub_gid);
    assert_eq!(
        text,
        format!(
            "rootless: user namespace with subordinate ids {sub_start}-{} (newuidmap)",
            sub_start + sub_count - 1
        )
    );
    assert!(!sub.fake_root());

    let (single_uid, _) = user_ids(SINGLE_USER);
    let (single, text) = detect(SINGLE_USER);
    assert_eq!(single.mode, IdMode::Single);
    assert_eq!(
        single.uids,
        [IdRange {
            container: 0,
            host: single_uid,
            len: 1
        }]
    );
    assert!(single.fake_root());
    let free = free_subid_start();
    let usermod = format!(
        "usermod --add-subuids {free}-{end} --add-subgids {free}-{end} {SINGLE_USER}",
        end = free + 65535
    );
    assert!(text.contains(&usermod), "{text}");
    assert!(
        text.contains("root-owned") && text.contains("chown is faked"),
        "{text}"
    );
    assert!(!text.contains('\n'));
}

#[test]
fn subordinate_mode_chown_lands_on_subordinate_host_ids() {
    let ws = Workspace::new();
    let layers = Layers::inside(&ws.path().join("sub"));
    std::fs::write(layers.lower.join("f"), "f").unwrap();
    let (uid, gid) = user_ids(SUB_USER);
    chown_tree(&ws.path().join("sub"), uid, gid);
    let out = ws.in_userns_as(
        SUB_USER,
        None,
        Job::Run(layers.shell("chown 1000:1000 /f && chmod u+s /f && ls -ln /f")),
    );
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    let ls = out
        .stderr
        .lines()
        .find(|l| l.ends_with("/f"))
        .expect("ls output");
    assert_eq!(ls.split_whitespace().nth(2), Some("1000"), "{ls}");
    let (start, _) = subid_range(SUB_USER);
    let expected = start + 1000 - 1;
    let (fuid, fgid, mode) = owner_mode(&layers.upper.join("f"));
    assert_eq!(
        (fuid, fgid),
        (expected, expected),
        "container 1000 is host start+999"
    );
    assert_ne!(mode & 0o4000, 0, "setuid bit kept");
    assert_eq!(layers.upper_entries(), set(&["f"]));
}

#[test]
fn single_mode_fakes_chown_and_tells_apt_to_stay_root() {
    let ws = Workspace::new();
    let layers = Layers::inside(&ws.path().join("single"));
    std::fs::write(layers.lower.join("f"), "f").unwrap();
    let (uid, gid) = user_ids(SINGLE_USER);
    chown_tree(&ws.path().join("single"), uid, gid);
    let mut spec = layers.shell(
        "chown 1000:1000 /f && chmod u+s /f && ls -ln /f && mknod /dev-node c 1 3 && \
         echo apt=$(cat \"$APT_CONFIG\") && echo id=$(id -u)",
    );
    spec.fake_root = true;
    let out = ws.in_userns_as(SINGLE_USER, None, Job::Run(spec));
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    let ls = out
        .stderr
        .lines()
        .find(|l| l.ends_with("/f"))
        .expect("ls output");
    assert_eq!(ls.split_whitespace().nth(2), Some("0"), "{ls}");
    assert!(
        out.stderr.contains("apt=APT::Sandbox::User \"root\";"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.lines().any(|l| l == "id=0"));
    let (fuid, fgid, mode) = owner_mode(&layers.upper.join("f"));
    assert_eq!((fuid, fgid), (uid, gid), "the file stays the user's");
    assert_ne!(mode & 0o4000, 0, "setuid bit kept");
    assert_eq!(
        layers.upper_entries(),
        set(&["f"]),
        "the device mknod was faked"
    );
}

#[test]
fn probe_overlay_as_a_subordinate_user() {
    let ws = Workspace::new();
    let scratch = ws.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let (uid, gid) = user_ids(SUB_USER);
    chown_tree(&scratch, uid, gid);
    let out = ws.in_userns_as(SUB_USER, None, Job::Probe(scratch.clone()));
    assert!(out.result.is_ok(), "{:?} {}", out.result, out.stderr);
    assert!(tree_entries(&scratch).is_empty());
}

#[test]
fn newuidmap_refusal_is_reported_with_its_message() {
    let ws = Workspace::new();
    let (uid, gid) = user_ids(SINGLE_USER);
    let range = |own| {
        vec![
            IdRange {
                container: 0,
                host: own,
                len: 1,
            },
            IdRange {
                container: 1,
                host: 100000,
                len: 65536,
            },
        ]
    };
    let forced = IdMapping {
        mode: IdMode::Subordinate,
        uids: range(uid),
        gids: range(gid),
    };
    let out = ws.in_userns_as(
        SINGLE_USER,
        Some(forced),
        Job::Probe(ws.path().to_path_buf()),
    );
    match out.error() {
        SandboxError::IdMapTool { tool, stderr } => {
            assert_eq!(tool, "newuidmap");
            assert!(
                stderr.contains("newuidmap"),
                "quotes the tool's message: {stderr}"
            );
        }
        other => panic!("expected a newuidmap error, got {other}"),
    }
}

/// The first /etc/subuid range of `user`, read independently of the crate.
fn subid_range(user: &str) -> (u32, u32) {
    let text = std::fs::read_to_string("/etc/subuid").expect("/etc/subuid exists");
    text.lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() == 3 && f[0] == user).then(|| (f[1].parse().unwrap(), f[2].parse().unwrap()))
        })
        .unwrap_or_else(|| {
            panic!("{user} has no /etc/subuid range: usermod --add-subuids 100000-165535 {user}")
        })
}

/// The first id above every subordinate range on this machine.
fn free_subid_start() -> u32 {
    ["/etc/subuid", "/etc/subgid"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| {
            t.lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    Some(f.get(1)?.parse::<u32>().ok()? + f.get(2)?.parse::<u32>().ok()?)
                })
                .collect::<Vec<_>>()
        })
        .fold(100_000, u32::max)
}

#[test]
fn steps_run_as_the_requested_ids() {
    let layers = Layers::new();
    let mut spec = layers.shell("echo ids=$(id -u):$(id -g):$(id -G)");
    if let Action::Exec { uid, gid, .. } = &mut spec.action {
        (*uid, *gid) = (1000, 1001);
    }
    let out = as_root(&Job::Run(spec));
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    assert!(
        out.stderr.lines().any(|l| l == "ids=1000:1001:1001"),
        "{}",
        out.stderr
    );
}

#[test]
fn overlay_options_use_short_relative_paths_and_have_a_limit() {
    let dir = tempfile::tempdir().unwrap();
    // 40 layers under a 300-byte parent would need 12 KiB of absolute
    // paths; relative to their common parent they fit in one page.
    let deep = dir
        .path()
        .join(["d".repeat(100), "e".repeat(100), "f".repeat(100)].join("/"));
    let layer = |i: usize| deep.join(format!("{i:064x}"));
    busybox_tree(&layer(0));
    for i in 1..40 {
        std::fs::create_dir_all(layer(i)).unwrap();
    }
    std::fs::write(layer(39).join("top"), "top\n").unwrap();
    let (upper, work) = (deep.join("upper"), deep.join("work"));
    std::fs::create_dir(&upper).unwrap();
    std::fs::create_dir(&work).unwrap();
    let rootfs = |n: usize| Rootfs::Overlay {
        lowerdirs: (0..n).rev().map(layer).collect(),
        upperdir: upper.clone(),
        workdir: work.clone(),
    };
    let out = as_root(&Job::Run(spec(rootfs(40), "cat /top")));
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    assert!(out.stderr.contains("top"));

    for i in 40..100 {
        std::fs::create_dir_all(layer(i)).unwrap();
    }
    let out = as_root(&Job::Run(spec(rootfs(100), "true")));
    match out.error() {
        SandboxError::OverlayOptionsTooLong { len, limit } => assert!(len > limit),
        other => panic!("expected the option limit, got {other}"),
    }
}

#[test]
fn disabled_user_namespaces_give_a_clear_error() {
    match as_root(&Job::NoMoreUserns).error() {
        SandboxError::UserNamespace { reason } => assert!(reason.contains("ENOSPC"), "{reason}"),
        other => panic!("expected a user namespace error, got {other}"),
    }
}

#[test]
fn host_env_capture_reads_proxies_and_finds_the_ca_bundle() {
    let ca = tempfile::NamedTempFile::new().unwrap();
    let ca_path = ca.path().to_str().unwrap();
    let env = [
        ("HTTPS_PROXY", "http://proxy.invalid:3128"),
        ("no_proxy", "localhost,127.0.0.1"),
        ("SSL_CERT_FILE", ca_path),
        ("UNRELATED", "x"),
    ];
    let captured: HostEnv = serde_json::from_value(
        sandbox_support::plain(&Job::Capture(true), &env)
            .result
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        captured.proxies,
        [
            (
                "HTTPS_PROXY".to_string(),
                "http://proxy.invalid:3128".to_string()
            ),
            ("no_proxy".to_string(), "localhost,127.0.0.1".to_string()),
        ]
    );
    assert_eq!(captured.ca_bundle.as_deref(), Some(ca.path()));

    let without: HostEnv = serde_json::from_value(
        sandbox_support::plain(&Job::Capture(false), &env)
            .result
            .unwrap(),
    )
    .unwrap();
    assert_eq!(without.ca_bundle, None);

    let debian = Path::new("/etc/ssl/certs/ca-certificates.crt");
    assert!(debian.exists(), "install ca-certificates for this test");
    let fallback: HostEnv = serde_json::from_value(
        sandbox_support::plain(&Job::Capture(true), &[])
            .result
            .unwrap(),
    )
    .unwrap();
    assert_eq!(fallback.ca_bundle.as_deref(), Some(debian));
    assert!(fallback.proxies.is_empty());
}

#[test]
fn symlinked_network_files_resolve_inside_the_image() {
    let layers = Layers::new();
    let etc = layers.lower.join("etc");
    std::fs::create_dir(&etc).unwrap();
    // systemd-resolved style: points into a /run the sandbox replaces.
    std::os::unix::fs::symlink(
        "../run/systemd/resolve/stub-resolv.conf",
        etc.join("resolv.conf"),
    )
    .unwrap();
    // Absolute: must resolve inside the image, never on the host.
    std::os::unix::fs::symlink("/etc/hosts.real", etc.join("hosts")).unwrap();
    std::fs::write(etc.join("hosts.real"), "image hosts\n").unwrap();
    let host_hosts = std::fs::read_to_string("/etc/hosts").unwrap();
    let out = as_root(&Job::Run(layers.shell("cat /etc/hosts.real")));
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    assert!(out.stderr.contains(&host_hosts), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("/etc/resolv.conf is a dangling symlink"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(etc.join("hosts.real")).unwrap(),
        "image hosts\n"
    );
    assert!(!Path::new("/etc/hosts.real").exists());
    assert!(
        layers.upper_entries().is_empty(),
        "{:?}",
        layers.upper_entries()
    );
}

#[test]
fn a_failed_set_up_names_the_obstacle_and_still_removes_stubs() {
    let layers = Layers::new();
    std::fs::write(layers.lower.join("run"), "not a directory").unwrap();
    let out = as_root(&Job::Run(layers.shell("true")));
    match out.error() {
        SandboxError::Mountpoint { path, reason } => {
            assert_eq!(path, "/run");
            assert_eq!(reason, "is not a directory");
        }
        other => panic!("expected a mountpoint error, got {other}"),
    }
    // /proc, /dev and /sys had been created before /run stopped the set-up.
    assert!(
        layers.upper_entries().is_empty(),
        "{:?}",
        layers.upper_entries()
    );
}
