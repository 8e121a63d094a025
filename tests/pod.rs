//! boxwright inside an unprivileged container: the boxwright image, built by
//! boxwright from `recipes/boxwright-image.toml`, run by podman as a
//! non-root user with podman's default seccomp profile, no --privileged and
//! no added capability, builds the busybox recipe of the tests and pushes
//! it to the local registry.

#[path = "registry_support/mod.rs"]
mod regsupport;
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use regsupport::registry::TestRegistry;
use support::*;

#[test]
fn the_boxwright_image_builds_and_pushes_as_a_non_root_container() {
    require_root("podman with the test configuration");
    let reg = TestRegistry::start();
    let t = world_tempdir();
    let ctx = t.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::copy(
        repo().join("recipes/boxwright-image.toml"),
        ctx.join("boxwright-image.toml"),
    )
    .unwrap();
    fs::copy(bin(), ctx.join("boxwright")).unwrap();
    debian_base_in(&ctx);
    let store = t.path().join("store");
    let s = store.to_str().unwrap();
    boxwright(&[
        "--store",
        s,
        "build",
        ctx.join("boxwright-image.toml").to_str().unwrap(),
        "-t",
        "boxwright-image",
    ])
    .ok();

    // Into podman.
    let pod = t.path().join("podman");
    let _guard = PodmanStorage(&pod);
    let id = podman_pull(&pod, &store, "boxwright-image:latest");

    // What the container builds: the busybox recipe, from a read-only mount;
    // the store on a volume (a real file system under the overlays).
    let work = t.path().join("work");
    fs::create_dir_all(&work).unwrap();
    fs::copy(busybox_tar(), work.join("busybox.tar")).unwrap();
    fs::write(
        work.join("r.toml"),
        "[image]\nbase = \"rootfs:busybox.tar\"\n[[steps]]\nrun = \"echo built-in-a-pod > /pod\"\n",
    )
    .unwrap();
    let vol = t.path().join("vol");
    fs::create_dir_all(&vol).unwrap();
    fs::set_permissions(&vol, fs::Permissions::from_mode(0o777)).unwrap();
    let target = format!("{}/ci/from-pod:1", reg.host());
    let out = podman(&pod)
        .args(["run", "--rm", "--user", "1000:1000", "--network", "host"])
        .arg("-v")
        .arg(format!("{}:/work:ro", work.display()))
        .arg("-v")
        .arg(format!("{}:/home/builder/store", vol.display()))
        .arg(&id)
        .args([
            "--progress",
            "plain",
            "build",
            "/work/r.toml",
            "-t",
            &target,
            "--push",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("rootless, single id"),
        "a non-root user without subordinate ids: {stderr}"
    );
    // The registry has it, and it runs.
    let inspect = regsupport::skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{target}"),
    ]);
    assert!(inspect.contains("\"Layers\""), "{inspect}");
    let fresh = t.path().join("fresh");
    let r = boxwright(&[
        "--store",
        fresh.to_str().unwrap(),
        "run",
        "--rm",
        &target,
        "cat",
        "/pod",
    ])
    .ok();
    assert_eq!(r.stdout, "built-in-a-pod\n");
}
