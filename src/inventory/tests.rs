//! Inventory tests over real files in temporary directories.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use tempfile::TempDir;

use super::*;

/// Writes `contents` to `path` inside `root`, creating parent directories.
fn put(root: &Path, path: &str, contents: impl AsRef<[u8]>) {
    let path = root.join(path.trim_start_matches('/'));
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
}

fn mkdir(root: &Path, path: &str) {
    fs::create_dir_all(root.join(path.trim_start_matches('/'))).unwrap();
}

fn link(root: &Path, path: &str, target: &str) {
    let path = root.join(path.trim_start_matches('/'));
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    symlink(target, path).unwrap();
}

fn inventory_of(root: &TempDir) -> Inventory {
    take(&DirTree::new(root.path())).unwrap()
}

/// Sets an xattr, or says why it could not (file systems without user xattrs).
fn set_xattr(path: &Path, name: &str, value: &[u8]) -> bool {
    match rustix::fs::lsetxattr(path, name, value, rustix::fs::XattrFlags::empty()) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("cannot set {name} on {}: {e}", path.display());
            false
        }
    }
}

const STATUS: &str = "\
Package: cowsay
Status: install ok installed
Priority: optional
Architecture: all
Version: 3.03+dfsg2-8
Description: configurable talking cow
 Cowsay (or cowthink) will turn text into happy ASCII cows, with
 speech (or thought) balloons.
 .
 Version: 9.9 is not a field on a continuation line

Package: jq
Status: install ok installed
Architecture: amd64
Version: 1.6-2.1

Package: libjq1
Status: install ok installed
Architecture: amd64
Version: 1.6-2.1

Package: libc6
Status: install ok installed
Architecture: i386
Version: 2.36-9

Package: nano
Status: deinstall ok config-files
Architecture: amd64
Version: 7.2-1

Package: vim
Status: install reinstreq half-installed
Architecture: amd64
Version: 9.0-1

Package: noversion
Status: install ok installed
";

const EXTENDED_STATES: &str = "\
Package: libjq1
Architecture: amd64
Auto-Installed: 1

Package: jq
Architecture: amd64
Auto-Installed: 0

Package: libc6
Architecture: amd64
Auto-Installed: 1

Package: cowsay
Auto-Installed: 1
";

#[test]
fn dpkg_keeps_installed_packages_and_apt_manual_marks() {
    let root = tempfile::tempdir().unwrap();
    put(root.path(), "/var/lib/dpkg/status", STATUS);
    put(root.path(), "/var/lib/apt/extended_states", EXTENDED_STATES);
    let dpkg = inventory_of(&root).dpkg.unwrap();
    let pkg = |name: &str, version: &str, arch: &str, manual: bool| DpkgPackage {
        name: name.into(),
        version: version.into(),
        arch: arch.into(),
        manual,
    };
    assert_eq!(
        dpkg,
        vec![
            // Auto-installed with no architecture named: any architecture.
            pkg("cowsay", "3.03+dfsg2-8", "all", false),
            pkg("jq", "1.6-2.1", "amd64", true),
            // Marked auto for amd64 only: the i386 one was asked for.
            pkg("libc6", "2.36-9", "i386", true),
            pkg("libjq1", "1.6-2.1", "amd64", false),
        ]
    );
}

#[test]
fn dpkg_without_extended_states_is_all_manual() {
    let root = tempfile::tempdir().unwrap();
    put(root.path(), "/var/lib/dpkg/status", STATUS);
    let dpkg = inventory_of(&root).dpkg.unwrap();
    assert_eq!(dpkg.len(), 4);
    assert!(dpkg.iter().all(|p| p.manual));
}

#[test]
fn apt_sources_read_one_line_and_deb822_files() {
    let root = tempfile::tempdir().unwrap();
    put(
        root.path(),
        "/etc/apt/sources.list",
        "# the main archive\n\
         deb http://deb.debian.org/debian bookworm main\n\
         \n\
         #deb http://disabled.example/debian bookworm main\n\
         deb-src   http://deb.debian.org/debian  bookworm main   # trailing comment\n\
         not a source line\n",
    );
    put(
        root.path(),
        "/etc/apt/sources.list.d/docker.list",
        "deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.gpg] https://download.docker.com/linux/debian bookworm stable\n",
    );
    put(
        root.path(),
        "/etc/apt/sources.list.d/debian.sources",
        "# deb822\n\
         Types: deb\n\
         URIs: http://deb.debian.org/debian\n\
         Suites: bookworm bookworm-updates\n\
         Components: main\n \
          contrib\n\
         Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\
         \n\
         Types: deb\n\
         URIs: http://off.example/debian\n\
         Suites: sid\n\
         Components: main\n\
         Enabled: no\n",
    );
    put(
        root.path(),
        "/etc/apt/sources.list.d/ignored.save",
        "deb http://x.example/ y z\n",
    );
    let sources = inventory_of(&root).apt_sources.unwrap();
    let source = |file: &str, entry: &str| AptSource {
        file: file.into(),
        entry: entry.into(),
    };
    assert_eq!(
        sources,
        vec![
            source(
                "/etc/apt/sources.list",
                "deb http://deb.debian.org/debian bookworm main"
            ),
            source(
                "/etc/apt/sources.list",
                "deb-src http://deb.debian.org/debian bookworm main"
            ),
            source(
                "/etc/apt/sources.list.d/debian.sources",
                "deb http://deb.debian.org/debian bookworm bookworm-updates main contrib"
            ),
            source(
                "/etc/apt/sources.list.d/docker.list",
                "deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.gpg] https://download.docker.com/linux/debian bookworm stable"
            ),
        ]
    );
}

#[test]
fn apt_keyrings_list_files_of_the_keyring_dirs() {
    let root = tempfile::tempdir().unwrap();
    put(root.path(), "/etc/apt/trusted.gpg.d/debian.gpg", "k");
    put(root.path(), "/etc/apt/keyrings/docker.gpg", "k");
    put(root.path(), "/usr/share/keyrings/nodesource.gpg", "k");
    mkdir(root.path(), "/usr/share/keyrings/subdir");
    put(root.path(), "/etc/apt/trusted.gpg", "k");
    assert_eq!(
        inventory_of(&root).apt_keyrings.unwrap(),
        vec![
            "/etc/apt/keyrings/docker.gpg",
            "/etc/apt/trusted.gpg",
            "/etc/apt/trusted.gpg.d/debian.gpg",
            "/usr/share/keyrings/nodesource.gpg",
        ]
    );
}

#[test]
fn apk_reads_installed_db_records() {
    let root = tempfile::tempdir().unwrap();
    put(
        root.path(),
        "/lib/apk/db/installed",
        "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nF:lib\nR:libc.musl-x86_64.so.1\n\n\
         P:busybox\nV:1.36.1-r5\n\nP:broken-no-version\n\nP:curl\nV:8.5.0-r0",
    );
    let apk = inventory_of(&root).apk.unwrap();
    let pkg = |name: &str, version: &str| Package {
        name: name.into(),
        version: version.into(),
    };
    assert_eq!(
        apk,
        vec![
            pkg("busybox", "1.36.1-r5"),
            pkg("curl", "8.5.0-r0"),
            pkg("musl", "1.2.4-r2")
        ]
    );
}

#[test]
fn pip_reads_dist_info_and_egg_info() {
    let root = tempfile::tempdir().unwrap();
    let site = "/usr/local/lib/python3.11/dist-packages";
    put(
        root.path(),
        &format!("{site}/Requests_OAuthlib-1.3.1.dist-info/METADATA"),
        "Metadata-Version: 2.1\nName: requests_oauthlib\nVersion: 1.3.1\n\nName: not-this\n",
    );
    put(
        root.path(),
        &format!("{site}/Requests_OAuthlib-1.3.1.dist-info/INSTALLER"),
        "pip\n",
    );
    // An empty METADATA: name and version come from the directory.
    put(
        root.path(),
        &format!("{site}/Zope.Interface-6.1.dist-info/METADATA"),
        "",
    );
    put(
        root.path(),
        &format!("{site}/mytool-0.1.dist-info/METADATA"),
        "Name: mytool\nVersion: 0.1\n",
    );
    put(
        root.path(),
        &format!("{site}/mytool-0.1.dist-info/direct_url.json"),
        r#"{"url": "https://github.com/me/mytool.git", "vcs_info": {"vcs": "git"}}"#,
    );
    // egg-info as a directory and as a file.
    put(
        root.path(),
        "/usr/lib/python3/dist-packages/PyYAML-6.0.egg-info/PKG-INFO",
        "Metadata-Version: 1.1\nName: PyYAML\nVersion: 6.0\n",
    );
    put(
        root.path(),
        "/usr/lib/python3/dist-packages/six-1.16.0.egg-info",
        "Metadata-Version: 1.1\nName: six\nVersion: 1.16.0\n",
    );
    put(
        root.path(),
        "/home/dev/.local/lib/python3.12/site-packages/httpie-3.2.2.dist-info/METADATA",
        "Name: httpie\nVersion: 3.2.2\n",
    );
    // Not a site directory: not read.
    put(
        root.path(),
        "/srv/lib/python3.11/site-packages/nope-1.0.dist-info/METADATA",
        "Name: nope\nVersion: 1.0\n",
    );
    let pip = inventory_of(&root).pip.unwrap();
    let dist = |name: &str, version: &str, site: &str| PipDist {
        name: name.into(),
        version: version.into(),
        site: site.into(),
        installer: None,
        direct_url: None,
    };
    assert_eq!(
        pip,
        vec![
            dist(
                "httpie",
                "3.2.2",
                "/home/dev/.local/lib/python3.12/site-packages"
            ),
            PipDist {
                direct_url: Some("https://github.com/me/mytool.git".into()),
                ..dist("mytool", "0.1", site)
            },
            dist("pyyaml", "6.0", "/usr/lib/python3/dist-packages"),
            PipDist {
                installer: Some("pip".into()),
                ..dist("requests-oauthlib", "1.3.1", site)
            },
            dist("six", "1.16.0", "/usr/lib/python3/dist-packages"),
            dist("zope-interface", "6.1", site),
        ]
    );
}

#[test]
fn pep503_names_are_normalized() {
    assert_eq!(pep503_name("Foo__Bar.-baz"), "foo-bar-baz");
    assert_eq!(pep503_name("requests"), "requests");
}

#[test]
fn npm_reads_scoped_and_unscoped_packages_and_skips_bin() {
    let root = tempfile::tempdir().unwrap();
    let prefix = "/usr/local/lib/node_modules";
    put(
        root.path(),
        &format!("{prefix}/npm/package.json"),
        r#"{"name": "npm", "version": "10.2.4"}"#,
    );
    put(
        root.path(),
        &format!("{prefix}/@anthropic-ai/claude-code/package.json"),
        r#"{"name": "@anthropic-ai/claude-code", "version": "1.0.0"}"#,
    );
    put(
        root.path(),
        &format!("{prefix}/.bin/package.json"),
        r#"{"name": "bin", "version": "1"}"#,
    );
    put(
        root.path(),
        &format!("{prefix}/@scope/.hidden/package.json"),
        r#"{"name": "hidden", "version": "1"}"#,
    );
    put(root.path(), &format!("{prefix}/.package-lock.json"), "{}");
    put(
        root.path(),
        "/home/dev/.npm-global/lib/node_modules/typescript/package.json",
        r#"{"name": "typescript", "version": "5.3.3"}"#,
    );
    // A package linked in from elsewhere in the tree.
    put(
        root.path(),
        "/srv/linked/package.json",
        r#"{"name": "linked", "version": "0.0.1"}"#,
    );
    link(root.path(), &format!("{prefix}/linked"), "/srv/linked");
    let npm = inventory_of(&root).npm.unwrap();
    let pkg = |name: &str, version: &str, prefix: &str| NpmPackage {
        name: name.into(),
        version: version.into(),
        prefix: prefix.into(),
    };
    assert_eq!(
        npm,
        vec![
            pkg("@anthropic-ai/claude-code", "1.0.0", prefix),
            pkg("linked", "0.0.1", prefix),
            pkg("npm", "10.2.4", prefix),
            pkg(
                "typescript",
                "5.3.3",
                "/home/dev/.npm-global/lib/node_modules"
            ),
        ]
    );
}

#[test]
fn vscode_extensions_from_extensions_json() {
    let root = tempfile::tempdir().unwrap();
    let dir = "/root/.local/share/code-server/extensions";
    put(
        root.path(),
        &format!("{dir}/extensions.json"),
        r#"[
            {"identifier": {"id": "MS-Python.python", "uuid": "x"}, "version": "2024.1.0",
             "relativeLocation": "ms-python.python-2024.1.0"},
            {"identifier": {"id": "rust-lang.rust-analyzer"}, "version": "0.3.1"},
            {"identifier": {}, "version": "1.0"},
            "garbage"
        ]"#,
    );
    // Folders are not read when extensions.json is.
    mkdir(root.path(), &format!("{dir}/other.ext-1.0.0"));
    let ext = inventory_of(&root).vscode_extensions.unwrap();
    let e = |id: &str, version: &str| Extension {
        id: id.into(),
        version: version.into(),
        dir: dir.into(),
    };
    assert_eq!(
        ext,
        vec![
            e("ms-python.python", "2024.1.0"),
            e("rust-lang.rust-analyzer", "0.3.1")
        ]
    );
}

#[test]
fn vscode_extensions_from_folder_names() {
    let root = tempfile::tempdir().unwrap();
    let dir = "/home/dev/.vscode-server/extensions";
    mkdir(root.path(), &format!("{dir}/esbenp.prettier-vscode-10.1.0"));
    mkdir(
        root.path(),
        &format!("{dir}/rust-lang.rust-analyzer-0.3.1-linux-x64"),
    );
    put(
        root.path(),
        &format!("{dir}/whatever-folder/package.json"),
        r#"{"publisher": "GitHub", "name": "copilot", "version": "1.150.0"}"#,
    );
    mkdir(root.path(), &format!("{dir}/old.ext-1.0.0"));
    put(
        root.path(),
        &format!("{dir}/.obsolete"),
        r#"{"old.ext-1.0.0": true}"#,
    );
    mkdir(root.path(), &format!("{dir}/no-version-here"));
    // extensions.json that is not JSON: the folders are read instead.
    put(root.path(), &format!("{dir}/extensions.json"), "{not json");
    let ext = inventory_of(&root).vscode_extensions.unwrap();
    let e = |id: &str, version: &str| Extension {
        id: id.into(),
        version: version.into(),
        dir: dir.into(),
    };
    assert_eq!(
        ext,
        vec![
            e("esbenp.prettier-vscode", "10.1.0"),
            e("github.copilot", "1.150.0"),
            e("rust-lang.rust-analyzer", "0.3.1-linux-x64"),
        ]
    );
}

#[test]
fn dir_tree_absolute_symlink_stays_inside_the_root() {
    let root = tempfile::tempdir().unwrap();
    let tree = DirTree::new(root.path());
    link(root.path(), "/x/etc", "/etc");
    // The tree has no /etc: the link leads nowhere, never to the host's.
    assert_eq!(tree.read("/x/etc/passwd").unwrap(), None);
    assert!(tree.list("/x/etc").unwrap().is_empty());
    put(
        root.path(),
        "/etc/passwd",
        "root:x:0:0:tree:/root:/bin/sh\n",
    );
    assert_eq!(
        tree.read("/x/etc/passwd").unwrap().as_deref(),
        Some(&b"root:x:0:0:tree:/root:/bin/sh\n"[..])
    );
    assert_eq!(tree.list("/x/etc").unwrap(), vec!["passwd"]);
}

#[test]
fn dir_tree_dotdot_is_clamped_at_the_root() {
    let outer = tempfile::tempdir().unwrap();
    // A file just outside the root, reachable with one `..` too many.
    put(outer.path(), "/etc/passwd", "outside\n");
    let root = outer.path().join("root");
    mkdir(&root, "/a/b");
    link(&root, "/a/b/x", "../../../../etc");
    link(&root, "/up", "..");
    let tree = DirTree::new(&root);
    assert_eq!(tree.read("/a/b/x/passwd").unwrap(), None);
    assert_eq!(tree.read("/../etc/passwd").unwrap(), None);
    assert_eq!(tree.read("/up/up/etc/passwd").unwrap(), None);
    put(&root, "/etc/passwd", "inside\n");
    for path in [
        "/a/b/x/passwd",
        "/../etc/passwd",
        "/up/up/etc/passwd",
        "/a/../a/b/x/passwd",
    ] {
        assert_eq!(
            tree.read(path).unwrap().as_deref(),
            Some(&b"inside\n"[..]),
            "{path}"
        );
    }
    // A relative link resolves from its own directory.
    put(&root, "/a/f", "f\n");
    link(&root, "/a/b/rel", "../f");
    assert_eq!(tree.read("/a/b/rel").unwrap().as_deref(), Some(&b"f\n"[..]));
}

#[test]
fn dir_tree_link_loops_fail_and_non_files_read_as_none() {
    let root = tempfile::tempdir().unwrap();
    link(root.path(), "/loop1", "/loop2");
    link(root.path(), "/loop2", "loop1");
    let tree = DirTree::new(root.path());
    assert!(matches!(
        tree.read("/loop1"),
        Err(InventoryError::SymlinkLoop { .. })
    ));
    assert!(!tree.is_dir("/loop1"));
    mkdir(root.path(), "/d");
    assert_eq!(tree.read("/d").unwrap(), None);
    assert!(tree.is_dir("/d"));
    assert!(tree.list("/missing").unwrap().is_empty());
    put(root.path(), "/file", "x");
    assert!(tree.list("/file").unwrap().is_empty());
    // A file used as a directory.
    assert_eq!(tree.read("/file/x").unwrap(), None);
    nix::unistd::mkfifo(&root.path().join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    assert_eq!(tree.read("/fifo").unwrap(), None);
}

#[test]
fn large_files_are_refused_or_skipped() {
    let root = tempfile::tempdir().unwrap();
    let big = |path: &str| {
        let path = root.path().join(path.trim_start_matches('/'));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        // Sparse: no disk space used.
        fs::File::create(path)
            .unwrap()
            .set_len(MAX_FILE_SIZE + 1)
            .unwrap();
    };
    big("/usr/lib/python3/dist-packages/huge-1.0.dist-info/METADATA");
    big("/usr/lib/node_modules/huge/package.json");
    // A package's file too large: that package falls back or is skipped.
    let inv = inventory_of(&root);
    assert_eq!(
        inv.pip.as_deref().unwrap().len(),
        1,
        "METADATA skipped, name from the directory"
    );
    assert_eq!(inv.pip.as_deref().unwrap()[0].name, "huge");
    assert!(inv.npm.as_deref().unwrap().is_empty());
    // A database too large fails the inventory.
    big("/var/lib/dpkg/status");
    assert!(matches!(
        take(&DirTree::new(root.path())),
        Err(InventoryError::TooLarge { .. })
    ));
}

#[test]
fn malformed_inputs_never_panic() {
    let root = tempfile::tempdir().unwrap();
    let garbage: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    put(root.path(), "/var/lib/dpkg/status", &garbage);
    put(root.path(), "/var/lib/apt/extended_states", &garbage);
    put(root.path(), "/etc/apt/sources.list", &garbage);
    put(root.path(), "/etc/apt/sources.list.d/x.sources", &garbage);
    put(root.path(), "/lib/apk/db/installed", &garbage);
    let site = "/usr/lib/python3.11/site-packages";
    put(
        root.path(),
        &format!("{site}/empty-1.0.dist-info/METADATA"),
        "",
    );
    put(
        root.path(),
        &format!("{site}/bin-2.0.dist-info/METADATA"),
        &garbage,
    );
    put(
        root.path(),
        &format!("{site}/bin-2.0.dist-info/direct_url.json"),
        &garbage,
    );
    put(
        root.path(),
        &format!("{site}/bin-2.0.dist-info/INSTALLER"),
        &garbage,
    );
    mkdir(root.path(), &format!("{site}/-.dist-info"));
    mkdir(root.path(), &format!("{site}/.egg-info"));
    put(
        root.path(),
        "/usr/lib/node_modules/bad/package.json",
        "{\"name\": ",
    );
    put(
        root.path(),
        "/usr/lib/node_modules/arr/package.json",
        "[1, 2]",
    );
    put(
        root.path(),
        "/usr/lib/node_modules/num/package.json",
        r#"{"name": 5, "version": {}}"#,
    );
    put(
        root.path(),
        "/usr/lib/node_modules/@s/bin/package.json",
        &garbage,
    );
    put(
        root.path(),
        "/root/.vscode/extensions/extensions.json",
        &garbage,
    );
    put(
        root.path(),
        "/root/.vscode/extensions/a.b-1/package.json",
        &garbage,
    );
    mkdir(root.path(), "/root/.vscode/extensions/-1");
    let inv = inventory_of(&root);
    assert!(inv.npm.as_deref().unwrap().is_empty());
    // The empty METADATA falls back to its directory's name.
    assert!(
        inv.pip
            .as_deref()
            .unwrap()
            .iter()
            .any(|d| d.name == "empty" && d.version == "1.0")
    );
    assert_eq!(
        inv.vscode_extensions
            .as_deref()
            .unwrap()
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        vec!["a.b"]
    );
    // And the result still serializes.
    serde_json::to_string(&inv).unwrap();
}

#[test]
fn inventory_json_round_trips_and_partial_json_reads() {
    let root = tempfile::tempdir().unwrap();
    put(root.path(), "/var/lib/dpkg/status", STATUS);
    let inv = inventory_of(&root);
    assert_eq!(inv.format, FORMAT);
    let json = serde_json::to_string(&inv).unwrap();
    assert_eq!(serde_json::from_str::<Inventory>(&json).unwrap(), inv);
    let partial: Inventory = serde_json::from_str(
        r#"{"dpkg": [{"name": "jq", "version": "1.6"}], "pip": [{"name": "x"}]}"#,
    )
    .unwrap();
    assert_eq!(partial.dpkg.as_deref().unwrap()[0].name, "jq");
    assert!(partial.dpkg.as_deref().unwrap()[0].arch.is_empty());
    assert_eq!(partial.pip.as_deref().unwrap()[0].installer, None);
    // An absent section is unknown, not empty, and stays absent when written.
    assert_eq!(partial.npm, None);
    assert_eq!(partial.apt_sources, None);
    let back = serde_json::to_value(&partial).unwrap();
    assert!(
        back.get("npm").is_none() && back.get("dpkg").is_some(),
        "{back}"
    );
    // A full inventory holds every section, empty or not.
    let json = serde_json::to_value(inventory_of(&tempfile::tempdir().unwrap())).unwrap();
    for k in [
        "dpkg",
        "apt_sources",
        "apt_keyrings",
        "apk",
        "pip",
        "npm",
        "vscode_extensions",
    ] {
        assert_eq!(json[k], serde_json::json!([]), "{k}: {json}");
    }
}

/// A layer dir holding a 0/0 character device at `path`, or, where device
/// nodes cannot be made, an xwhiteout (the kernel's xattr form of a whiteout).
/// Returns false when neither can be made.
fn whiteout(layer: &Path, path: &str) -> bool {
    let host = layer.join(path.trim_start_matches('/'));
    fs::create_dir_all(host.parent().unwrap()).unwrap();
    use nix::sys::stat::{Mode, SFlag, mknod};
    match mknod(&host, SFlag::S_IFCHR, Mode::empty(), 0) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("mknod whiteout failed ({e}); using an xwhiteout instead");
            fs::write(&host, "").unwrap();
            set_xattr(&host, "user.overlay.whiteout", b"")
                && set_xattr(host.parent().unwrap(), "user.overlay.opaque", b"x")
        }
    }
}

#[test]
fn layered_whiteouts_hide_lower_names() {
    let (upper, lower) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    put(lower.path(), "/etc/gone.conf", "lower");
    put(lower.path(), "/etc/kept.conf", "lower");
    put(lower.path(), "/opt/tool/bin/tool", "lower");
    put(lower.path(), "/opt/other", "lower");
    put(upper.path(), "/etc/new.conf", "upper");
    let made = whiteout(upper.path(), "/etc/gone.conf") && whiteout(upper.path(), "/opt/tool");
    let tree = LayeredTree::new(vec![upper.path().into(), lower.path().into()]);
    assert_eq!(
        tree.read("/etc/kept.conf").unwrap().as_deref(),
        Some(&b"lower"[..])
    );
    assert_eq!(
        tree.read("/etc/new.conf").unwrap().as_deref(),
        Some(&b"upper"[..])
    );
    if !made {
        eprintln!("SKIPPED: no whiteout of either form could be made here");
        return;
    }
    assert_eq!(tree.read("/etc/gone.conf").unwrap(), None);
    assert_eq!(tree.list("/etc").unwrap(), vec!["kept.conf", "new.conf"]);
    // A whited-out directory hides everything under it.
    assert!(!tree.is_dir("/opt/tool"));
    assert_eq!(tree.read("/opt/tool/bin/tool").unwrap(), None);
    assert!(tree.list("/opt/tool/bin").unwrap().is_empty());
    assert_eq!(tree.list("/opt").unwrap(), vec!["other"]);
}

#[test]
fn layered_opaque_dirs_hide_lower_contents() {
    let (top, middle, bottom) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    put(
        bottom.path(),
        "/usr/lib/node_modules/old/package.json",
        "bottom",
    );
    put(bottom.path(), "/usr/lib/node_modules/a/x", "bottom");
    put(
        middle.path(),
        "/usr/lib/node_modules/mid/package.json",
        "middle",
    );
    put(top.path(), "/usr/lib/node_modules/top/package.json", "top");
    let opaque = middle.path().join("usr/lib/node_modules");
    if !set_xattr(&opaque, "user.overlay.opaque", b"y") {
        panic!("user xattrs are needed to test opaque directories");
    }
    let tree = LayeredTree::new(vec![
        top.path().into(),
        middle.path().into(),
        bottom.path().into(),
    ]);
    assert_eq!(
        tree.list("/usr/lib/node_modules").unwrap(),
        vec!["mid", "top"]
    );
    assert_eq!(
        tree.read("/usr/lib/node_modules/old/package.json").unwrap(),
        None
    );
    assert!(!tree.is_dir("/usr/lib/node_modules/a"));
    assert_eq!(
        tree.read("/usr/lib/node_modules/mid/package.json")
            .unwrap()
            .as_deref(),
        Some(&b"middle"[..])
    );
    // Above the opaque directory, lower layers still count.
    assert_eq!(tree.list("/usr/lib").unwrap(), vec!["node_modules"]);
    // The value must be `y`: `x` only marks a directory holding xwhiteouts.
    put(bottom.path(), "/srv/kept", "bottom");
    mkdir(middle.path(), "/srv");
    assert!(set_xattr(
        &middle.path().join("srv"),
        "user.overlay.opaque",
        b"x"
    ));
    assert_eq!(tree.list("/srv").unwrap(), vec!["kept"]);
}

#[test]
fn layered_file_shadows_a_lower_directory() {
    let (upper, lower) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    put(lower.path(), "/a/b/c", "lower");
    put(lower.path(), "/a/d", "lower");
    put(upper.path(), "/a", "a file now");
    let tree = LayeredTree::new(vec![upper.path().into(), lower.path().into()]);
    assert_eq!(
        tree.read("/a").unwrap().as_deref(),
        Some(&b"a file now"[..])
    );
    assert_eq!(tree.read("/a/b/c").unwrap(), None);
    assert_eq!(tree.read("/a/d").unwrap(), None);
    assert!(tree.list("/a").unwrap().is_empty());
    assert!(!tree.is_dir("/a/b"));
    // A directory above a lower file: the file below does not merge in.
    put(lower.path(), "/e", "lower file");
    put(upper.path(), "/e/f", "upper");
    assert_eq!(tree.list("/e").unwrap(), vec!["f"]);
    assert_eq!(tree.list("/").unwrap(), vec!["a", "e"]);
}

#[test]
fn layered_symlinks_resolve_through_the_merged_view() {
    let (upper, lower) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // The link is in the lower layer, its target only in the upper one.
    link(lower.path(), "/usr/lib/python3/dist-packages", "/opt/site");
    put(
        upper.path(),
        "/opt/site/pkg-1.0.dist-info/METADATA",
        "Name: pkg\nVersion: 1.0\n",
    );
    link(upper.path(), "/escape", "../../../../../../etc");
    let tree = LayeredTree::new(vec![upper.path().into(), lower.path().into()]);
    assert!(tree.is_dir("/usr/lib/python3/dist-packages"));
    assert_eq!(
        tree.list("/usr/lib/python3/dist-packages").unwrap(),
        vec!["pkg-1.0.dist-info"]
    );
    assert_eq!(tree.read("/escape/passwd").unwrap(), None);
    let inv = take(&tree).unwrap();
    assert_eq!(inv.pip.as_deref().unwrap().len(), 1);
    assert_eq!(
        inv.pip.as_deref().unwrap()[0].site,
        "/usr/lib/python3/dist-packages"
    );
}

fn dpkg(name: &str, version: &str, arch: &str) -> DpkgPackage {
    DpkgPackage {
        name: name.into(),
        version: version.into(),
        arch: arch.into(),
        manual: true,
    }
}

fn pip(name: &str, version: &str, site: &str) -> PipDist {
    PipDist {
        name: name.into(),
        version: version.into(),
        site: site.into(),
        ..PipDist::default()
    }
}

fn npm(name: &str, version: &str) -> NpmPackage {
    NpmPackage {
        name: name.into(),
        version: version.into(),
        prefix: "/usr/lib/node_modules".into(),
    }
}

fn ext(id: &str, version: &str) -> Extension {
    Extension {
        id: id.into(),
        version: version.into(),
        dir: "/root/.vscode/extensions".into(),
    }
}

fn versioned(name: &str, version: &str) -> Versioned {
    Versioned {
        name: name.into(),
        version: version.into(),
    }
}

fn changed(name: &str, from: &str, to: &str) -> Changed {
    Changed {
        name: name.into(),
        from: from.into(),
        to: to.into(),
    }
}

fn boot_and_now() -> (Inventory, Inventory) {
    let site = "/usr/lib/python3/dist-packages";
    let boot = Inventory {
        format: FORMAT.into(),
        dpkg: Some(vec![
            dpkg("curl", "7.88", "amd64"),
            dpkg("nano", "7.2", "amd64"),
            dpkg("jq", "1.6", "amd64"),
        ]),
        apt_sources: Some(vec![AptSource {
            file: "/etc/apt/sources.list".into(),
            entry: "deb http://deb.debian.org/debian bookworm main".into(),
        }]),
        apt_keyrings: Some(vec!["/usr/share/keyrings/debian.gpg".into()]),
        apk: Some(vec![]),
        pip: Some(vec![
            pip("requests", "2.28", site),
            pip("six", "1.16", site),
        ]),
        npm: Some(vec![npm("npm", "10.0.0"), npm("left-pad", "1.0.0")]),
        vscode_extensions: Some(vec![ext("ms-python.python", "2024.1.0")]),
    };
    let now = Inventory {
        format: FORMAT.into(),
        dpkg: Some(vec![
            dpkg("curl", "7.88", "amd64"),
            dpkg("jq", "1.7", "amd64"),
            dpkg("cowsay", "3.03+dfsg2-8", "all"),
        ]),
        apt_sources: Some(vec![
            AptSource {
                file: "/etc/apt/sources.list".into(),
                entry: "deb http://deb.debian.org/debian bookworm main".into(),
            },
            AptSource {
                file: "/etc/apt/sources.list.d/gh.list".into(),
                entry: "deb https://cli.github.com/packages stable main".into(),
            },
        ]),
        apt_keyrings: Some(vec![
            "/usr/share/keyrings/debian.gpg".into(),
            "/etc/apt/keyrings/gh.gpg".into(),
        ]),
        apk: Some(vec![Package {
            name: "ignored".into(),
            version: "1".into(),
        }]),
        // Names from a shell script may not be normalized: still the same project.
        pip: Some(vec![
            pip("Requests", "2.31", site),
            pip("httpie", "3.2.2", site),
        ]),
        npm: Some(vec![
            npm("npm", "10.0.0"),
            npm("@anthropic-ai/claude-code", "1.0.0"),
        ]),
        vscode_extensions: Some(vec![
            ext("MS-Python.Python", "2024.2.0"),
            ext("esbenp.prettier-vscode", "10.1.0"),
        ]),
    };
    (boot, now)
}

#[test]
fn compare_reports_added_removed_and_changed_for_each_manager() {
    let (boot, now) = boot_and_now();
    let c = compare(&boot, &now);
    assert_eq!(c.apt.delta.added, vec![versioned("cowsay", "3.03+dfsg2-8")]);
    assert_eq!(c.apt.delta.removed, vec![versioned("nano", "7.2")]);
    assert_eq!(c.apt.delta.changed, vec![changed("jq", "1.6", "1.7")]);
    assert_eq!(
        c.apt.new_sources,
        vec!["deb https://cli.github.com/packages stable main"]
    );
    assert_eq!(c.apt.new_keyrings, vec!["/etc/apt/keyrings/gh.gpg"]);
    assert_eq!(c.pip.added, vec![versioned("httpie", "3.2.2")]);
    assert_eq!(c.pip.removed, vec![versioned("six", "1.16")]);
    assert_eq!(c.pip.changed, vec![changed("requests", "2.28", "2.31")]);
    assert_eq!(
        c.npm.added,
        vec![versioned("@anthropic-ai/claude-code", "1.0.0")]
    );
    assert_eq!(c.npm.removed, vec![versioned("left-pad", "1.0.0")]);
    assert!(c.npm.changed.is_empty());
    assert_eq!(
        c.vscode_extensions.added,
        vec![versioned("esbenp.prettier-vscode", "10.1.0")]
    );
    assert_eq!(
        c.vscode_extensions.changed,
        vec![changed("ms-python.python", "2024.1.0", "2024.2.0")]
    );
    assert!(!c.is_empty());
    assert!(compare(&now, &now).is_empty());
    assert!(compare(&Inventory::default(), &Inventory::default()).is_empty());
    // The apt delta is flattened into the apt object.
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["apt"]["added"][0]["name"], "cowsay");
    assert_eq!(json["apt"]["new_keyrings"][0], "/etc/apt/keyrings/gh.gpg");
    assert_eq!(serde_json::from_value::<Changes>(json).unwrap(), c);
}

#[test]
fn compare_qualifies_names_installed_in_several_places() {
    let boot = Inventory {
        dpkg: Some(vec![dpkg("libc6", "2.36", "amd64")]),
        pip: Some(vec![pip("rich", "13.0", "/usr/lib/python3/dist-packages")]),
        ..Inventory::default()
    };
    let now = Inventory {
        dpkg: Some(vec![
            dpkg("libc6", "2.36", "amd64"),
            dpkg("libc6", "2.36", "i386"),
        ]),
        pip: Some(vec![
            pip("rich", "13.0", "/usr/lib/python3/dist-packages"),
            pip("rich", "13.7", "/root/.local/lib/python3.11/site-packages"),
        ]),
        ..Inventory::default()
    };
    let c = compare(&boot, &now);
    assert_eq!(c.apt.delta.added, vec![versioned("libc6:i386", "2.36")]);
    assert!(c.apt.delta.removed.is_empty() && c.apt.delta.changed.is_empty());
    assert_eq!(
        c.pip.added,
        vec![versioned(
            "rich (/root/.local/lib/python3.11/site-packages)",
            "13.7"
        )]
    );
    assert!(c.pip.removed.is_empty() && c.pip.changed.is_empty());
}

/// The first-boot inventory the dev access entrypoint writes: names and
/// versions only, no apt sources or keyrings (recipes/scripts/entrypoint.sh).
const ENTRYPOINT_BOOT: &str = r#"{"format":"boxwright-inventory/1",
  "dpkg":[{"name":"curl","version":"7.88"},{"name":"jq","version":"1.6"}],
  "pip":[{"name":"Requests","version":"2.28"}],
  "npm":[{"name":"npm","version":"10.0.0"}],
  "vscode_extensions":[{"id":"MS-Python.Python","version":"2024.1.0"}]}"#;

#[test]
fn compare_leaves_out_what_a_partial_boot_inventory_lacks() {
    let boot: Inventory = serde_json::from_str(ENTRYPOINT_BOOT).unwrap();
    let debian = AptSource {
        file: "/etc/apt/sources.list.d/debian.sources".into(),
        entry: "deb http://deb.debian.org/debian bookworm main".into(),
    };
    let site = "/usr/lib/python3/dist-packages";
    let user_site = "/root/.local/lib/python3.11/site-packages";
    // The image as `take` reads it: every section, with places.
    let image = Inventory {
        dpkg: Some(vec![
            dpkg("curl", "7.88", "amd64"),
            dpkg("jq", "1.6", "amd64"),
        ]),
        apt_sources: Some(vec![debian.clone()]),
        apt_keyrings: Some(vec![
            "/usr/share/keyrings/debian-archive-keyring.gpg".into(),
        ]),
        pip: Some(vec![pip("requests", "2.28", site)]),
        npm: Some(vec![npm("npm", "10.0.0")]),
        vscode_extensions: Some(vec![ext("ms-python.python", "2024.1.0")]),
        ..Inventory::empty()
    };
    // Nothing installed: no change, though the boot inventory has no sources
    // or keyrings (they were all reported new).
    let c = compare(&boot, &image);
    assert!(c.is_empty(), "{c:?}");
    assert!(c.apt.new_sources.is_empty() && c.apt.new_keyrings.is_empty());
    assert_eq!(c.not_compared, ["apt_sources", "apt_keyrings"]);
    // What was installed is still found in the sections both hold; the
    // second copy of requests in a user site is compared by name alone,
    // since the boot list has no sites.
    let mut now = image.clone();
    now.dpkg.as_mut().unwrap().push(DpkgPackage {
        manual: true,
        ..dpkg("cowsay", "3.03", "all")
    });
    now.apt_sources.as_mut().unwrap().push(AptSource {
        file: "/etc/apt/sources.list.d/gh.list".into(),
        entry: "deb https://cli.github.com/packages stable main".into(),
    });
    now.pip
        .as_mut()
        .unwrap()
        .push(pip("requests", "2.31", user_site));
    now.npm.as_mut().unwrap().push(npm("semver", "7.6.3"));
    let c = compare(&boot, &now);
    assert_eq!(c.apt.delta.added, vec![versioned("cowsay", "3.03")]);
    assert!(c.apt.delta.removed.is_empty() && c.apt.delta.changed.is_empty());
    assert!(c.apt.new_sources.is_empty(), "sources are not compared");
    assert!(c.pip.added.is_empty() && c.pip.removed.is_empty());
    assert_eq!(c.pip.changed, vec![changed("requests", "2.28", "2.31")]);
    assert_eq!(c.npm.added, vec![versioned("semver", "7.6.3")]);
    assert!(c.vscode_extensions.is_empty());
    assert_eq!(c.not_compared, ["apt_sources", "apt_keyrings"]);
    // A full boot inventory compares everything, and says nothing of it.
    let c = compare(&image, &now);
    assert_eq!(
        c.apt.new_sources,
        vec!["deb https://cli.github.com/packages stable main"]
    );
    assert!(c.not_compared.is_empty());
    assert!(
        serde_json::to_value(&c)
            .unwrap()
            .get("not_compared")
            .is_none()
    );
}

#[test]
fn summary_labels_list_added_and_changed_packages() {
    let (boot, now) = boot_and_now();
    let labels = summary_labels(&compare(&boot, &now));
    let expected: Vec<(&str, &str)> = vec![
        ("io.boxwright.fork.apt", "cowsay=3.03+dfsg2-8,jq=1.7"),
        ("io.boxwright.fork.npm", "@anthropic-ai/claude-code=1.0.0"),
        ("io.boxwright.fork.pip", "httpie=3.2.2,requests=2.31"),
        (
            "io.boxwright.fork.vscode-extensions",
            "esbenp.prettier-vscode=10.1.0,ms-python.python=2024.2.0",
        ),
    ];
    let labels: Vec<(&str, &str)> = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(labels, expected);
    // Only removals: no label.
    assert!(summary_labels(&compare(&now, &Inventory::empty())).is_empty());
}

#[test]
fn summary_labels_are_cut_at_a_comma() {
    let now = Inventory {
        dpkg: Some(
            (0..200)
                .map(|i| dpkg(&format!("package-{i:03}"), "1.0-1", "amd64"))
                .collect(),
        ),
        npm: Some(vec![npm(&"x".repeat(2000), "1")]),
        ..Inventory::empty()
    };
    let labels = summary_labels(&compare(&Inventory::empty(), &now));
    let apt = &labels["io.boxwright.fork.apt"];
    assert!(apt.chars().count() <= 1000, "{}", apt.chars().count());
    assert!(apt.ends_with(",…"));
    assert!(apt.starts_with("package-000=1.0-1,package-001=1.0-1,"));
    let kept = apt.trim_end_matches(",…");
    assert!(
        kept.split(',')
            .all(|i| i.starts_with("package-") && i.ends_with("=1.0-1"))
    );
    let npm = &labels["io.boxwright.fork.npm"];
    assert_eq!(npm.chars().count(), 1000);
    assert!(npm.ends_with('…'));
}

#[test]
fn wildcards_match_like_a_shell() {
    use super::wildcard_match as m;
    assert!(m("python3*", "python3.11"));
    assert!(m("python3*", "python3"));
    assert!(!m("python3*", "python2.7"));
    assert!(m("*", "dev"));
    assert!(!m("*", ".hidden"));
    assert!(m("a*b*c", "aXbYc"));
    assert!(!m("a*a", "a"));
    assert!(m("exact", "exact"));
    assert!(!m("exact", "exactly"));
}

#[test]
fn layered_xwhiteouts_hide_lower_names() {
    let (upper, lower) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    put(lower.path(), "/etc/gone.conf", "lower");
    put(lower.path(), "/etc/kept.conf", "lower");
    put(upper.path(), "/etc/gone.conf", "");
    // A zero-size file with the whiteout xattr counts only in a directory
    // marked `x`: first without the mark, it is an ordinary empty file.
    assert!(set_xattr(
        &upper.path().join("etc/gone.conf"),
        "user.overlay.whiteout",
        b""
    ));
    let tree = LayeredTree::new(vec![upper.path().into(), lower.path().into()]);
    assert_eq!(
        tree.read("/etc/gone.conf").unwrap().as_deref(),
        Some(&b""[..])
    );
    assert!(set_xattr(
        &upper.path().join("etc"),
        "user.overlay.opaque",
        b"x"
    ));
    assert_eq!(tree.read("/etc/gone.conf").unwrap(), None);
    assert_eq!(tree.list("/etc").unwrap(), vec!["kept.conf"]);
}

/// The dev access entrypoint writes the first-boot inventory fork compares
/// a podman container with: it must look for Python distributions, npm
/// packages and extension dirs where this reader does, or whatever lies
/// elsewhere would look installed since boot.
#[test]
fn the_entrypoint_reads_where_the_inventory_reads() {
    let script = include_str!("../../recipes/scripts/entrypoint.sh");
    let patterns = |var: &str| -> BTreeSet<String> {
        let start = format!("\n{var}='");
        let at = script.find(&start).unwrap_or_else(|| panic!("no {var}")) + start.len();
        let end = script[at..].find('\'').unwrap();
        script[at..at + end]
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    let set = |list: &[&str]| -> BTreeSet<String> { list.iter().map(|p| p.to_string()).collect() };
    assert_eq!(patterns("PIP_SITES"), set(&super::pip::SITE_PATTERNS));
    assert_eq!(patterns("NPM_PREFIXES"), set(&super::npm::PREFIX_PATTERNS));
    assert_eq!(
        patterns("EXTENSION_DIRS"),
        set(&super::vscode::DIR_PATTERNS)
    );
}
