//! Bind mounts of a step: read-only inputs on /run, read-write caches in the
//! image's tree, apt's caches only where dpkg is (with Docker's docker-clean
//! hook hidden), and no trace of any of them in the upperdir.

mod sandbox_support;

use std::path::Path;

use boxwright::sandbox::BindMount;
use sandbox_support::{Job, Layers, as_root};

/// Does nothing in a normal test run; does the job when re-executed as a helper.
#[test]
fn helper_entry() {
    sandbox_support::helper_entry();
}

fn mount(source: &Path, target: &str, readonly: bool) -> BindMount {
    BindMount {
        source: source.to_path_buf(),
        target: target.to_string(),
        readonly,
    }
}

#[test]
fn inputs_are_read_only_caches_are_kept_and_nothing_reaches_the_upperdir() {
    let layers = Layers::new();
    let host = layers.lower.parent().unwrap().join("host");
    std::fs::create_dir_all(host.join("npm")).unwrap();
    std::fs::create_dir_all(host.join("apt")).unwrap();
    std::fs::write(host.join("ttyd.x86_64"), "pinned bytes\n").unwrap();
    let mut spec = layers.shell(
        "a=/run/boxwright/artifacts/ttyd/ttyd.x86_64; cat $a; \
         if echo x >> $a; then echo input-writable; else echo input-read-only; fi; \
         echo cached > /root/.npm/entry && echo cache-written; \
         if [ -d /var/cache/apt ]; then echo apt-mounted; else echo apt-skipped; fi",
    );
    spec.mounts = vec![
        mount(
            &host.join("ttyd.x86_64"),
            "/run/boxwright/artifacts/ttyd/ttyd.x86_64",
            true,
        ),
        mount(&host.join("npm"), "/root/.npm", false),
        mount(&host.join("apt"), "/var/cache/apt", false),
    ];
    let out = as_root(&Job::Run(spec));
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    for expected in [
        "pinned bytes",
        "input-read-only",
        "cache-written",
        // busybox has no dpkg: no apt directories are made for it.
        "apt-skipped",
    ] {
        assert!(lines.contains(&expected), "{expected} in {}", out.stderr);
    }
    assert_eq!(
        std::fs::read_to_string(host.join("npm/entry")).unwrap(),
        "cached\n"
    );
    assert_eq!(
        std::fs::read_to_string(host.join("ttyd.x86_64")).unwrap(),
        "pinned bytes\n"
    );
    assert!(
        layers.upper_entries().is_empty(),
        "mountpoint stubs left in the upperdir: {:?}",
        layers.upper_entries()
    );
}

#[test]
fn apt_caches_on_a_dpkg_image_keep_downloads_despite_docker_clean() {
    let layers = Layers::new();
    for d in [
        "var/lib/dpkg",
        "var/cache/apt/archives/partial",
        "var/lib/apt/lists/partial",
        "etc/apt/apt.conf.d",
    ] {
        std::fs::create_dir_all(layers.lower.join(d)).unwrap();
    }
    let hook = "DPkg::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb || true\"; };\n";
    std::fs::write(layers.lower.join("etc/apt/apt.conf.d/docker-clean"), hook).unwrap();
    std::fs::write(
        layers.lower.join("var/cache/apt/archives/old.deb"),
        "from the base",
    )
    .unwrap();
    let host = layers.lower.parent().unwrap().join("host");
    std::fs::create_dir_all(host.join("archives")).unwrap();
    std::fs::create_dir_all(host.join("lists")).unwrap();
    let mut spec = layers.shell(
        "echo docker-clean=$(wc -c < /etc/apt/apt.conf.d/docker-clean); \
         cat \"$APT_CONFIG\"; ls /var/cache/apt; \
         mkdir -p /var/cache/apt/archives && echo deb > /var/cache/apt/archives/jq.deb; \
         echo list > /var/lib/apt/lists/deb_Packages",
    );
    spec.mounts = vec![
        mount(&host.join("archives"), "/var/cache/apt", false),
        mount(&host.join("lists"), "/var/lib/apt/lists", false),
    ];
    let out = as_root(&Job::Run(spec));
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(
        lines.contains(&"docker-clean=0"),
        "docker-clean hidden: {}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("APT::Keep-Downloaded-Packages \"true\";"),
        "{}",
        out.stderr
    );
    assert!(
        !lines.contains(&"archives"),
        "the base's cache is hidden: {}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(host.join("archives/archives/jq.deb")).unwrap(),
        "deb\n"
    );
    assert_eq!(
        std::fs::read_to_string(host.join("lists/deb_Packages")).unwrap(),
        "list\n"
    );
    // The hook itself is untouched in the image.
    assert_eq!(
        std::fs::read_to_string(layers.lower.join("etc/apt/apt.conf.d/docker-clean")).unwrap(),
        hook
    );
    assert!(
        layers.upper_entries().is_empty(),
        "{:?}",
        layers.upper_entries()
    );
}
