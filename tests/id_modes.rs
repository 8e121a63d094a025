//! The three id-mapping modes, each running steps that chown to uid 1000 and
//! install a setuid file; the layers are read back with GNU tar.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use support::*;

const RECIPE: &str = r#"
[[steps]]
run = "echo data > /f && chown 1000:1000 /f && chmod 4755 /f && ls -ln /f"
[[steps]]
run = "cp /bin/busybox /usr/bin/suidtool && chmod u+s /usr/bin/suidtool"
"#;

/// Builds RECIPE as `user` (None = root) and returns (stderr, layer listings
/// of the two step layers as `tar -tv --numeric-owner` prints them).
fn build_as(user: Option<&str>) -> (String, Vec<String>) {
    let t = world_tempdir();
    let dir = t.path();
    let exe = shared_binary(dir);
    fs::copy(busybox_tar(), dir.join("busybox.tar")).unwrap();
    fs::set_permissions(dir.join("busybox.tar"), fs::Permissions::from_mode(0o644)).unwrap();
    let recipe = write_recipe(
        dir,
        "recipe.toml",
        &format!("[image]\nbase = \"rootfs:busybox.tar\"\n{RECIPE}"),
    );
    fs::set_permissions(&recipe, fs::Permissions::from_mode(0o644)).unwrap();
    let work = dir.join("work");
    fs::create_dir(&work).unwrap();
    let store = work.join("store");
    let args = [
        "build",
        "--store",
        store.to_str().unwrap(),
        "-t",
        "ids",
        recipe.to_str().unwrap(),
    ];
    let run = match user {
        None => {
            let o = Command::new(&exe).args(args).output().unwrap();
            Run {
                code: o.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&o.stdout).into(),
                stderr: String::from_utf8_lossy(&o.stderr).into(),
            }
        }
        Some(u) => {
            require_user(u);
            sh(Command::new("chown").arg(u).arg(&work));
            run_as(u, &work, &exe, &args)
        }
    };
    let run = run.ok();
    let manifest = inspect_layers(&exe, &store);
    let listings = manifest[manifest.len() - 2..]
        .iter()
        .map(|d| {
            let blob = store
                .join("blobs/sha256")
                .join(d.trim_start_matches("sha256:"));
            sh(Command::new("tar")
                .arg("--numeric-owner")
                .arg("-tvzf")
                .arg(blob))
        })
        .collect();
    // Unpacked layers may belong to subordinate ids: root removes them.
    drop(t);
    (run.stderr, listings)
}

fn inspect_layers(exe: &Path, store: &Path) -> Vec<String> {
    let out = sh(Command::new(exe).args(["inspect", "--store", store.to_str().unwrap(), "ids"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["manifest"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

fn entry<'a>(listing: &'a str, name: &str) -> &'a str {
    listing
        .lines()
        .find(|l| l.ends_with(&format!(" {name}")))
        .unwrap_or_else(|| panic!("{name} not in layer:\n{listing}"))
}

#[test]
fn root_maps_the_whole_range() {
    require_root("root mode");
    let (stderr, layers) = build_as(None);
    assert!(stderr.contains("id mapping:"), "{stderr}");
    assert!(
        entry(&layers[0], "f").starts_with("-rwsr-xr-x 1000/1000 "),
        "{}",
        layers[0]
    );
    assert!(
        entry(&layers[1], "usr/bin/suidtool").starts_with("-rwsr-xr-x 0/0 "),
        "{}",
        layers[1]
    );
}

#[test]
fn unprivileged_user_with_subordinate_ids_keeps_container_ids() {
    let (stderr, layers) = build_as(Some("bwsub"));
    assert!(stderr.to_lowercase().contains("subordinate"), "{stderr}");
    assert!(
        entry(&layers[0], "f").starts_with("-rwsr-xr-x 1000/1000 "),
        "{}",
        layers[0]
    );
    assert!(
        entry(&layers[1], "usr/bin/suidtool").starts_with("-rwsr-xr-x 0/0 "),
        "{}",
        layers[1]
    );
}

#[test]
fn unprivileged_user_without_ranges_fakes_chown_and_files_are_root_owned() {
    let (stderr, layers) = build_as(Some("bwsingle"));
    assert!(
        stderr.contains("usermod --add-subuids"),
        "the fix is named: {stderr}"
    );
    assert!(
        stderr.contains("-rwsr-xr-x"),
        "ls inside the step shows the setuid file: {stderr}"
    );
    assert!(
        entry(&layers[0], "f").starts_with("-rwsr-xr-x 0/0 "),
        "{}",
        layers[0]
    );
    assert!(
        entry(&layers[1], "usr/bin/suidtool").starts_with("-rwsr-xr-x 0/0 "),
        "{}",
        layers[1]
    );
}
