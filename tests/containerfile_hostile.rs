//! A hostile Containerfile and build context cannot read host files: COPY
//! sources resolve inside the context (`..` stops at its root, symlinks
//! are followed inside it only, a symlink inside a copied directory stays a
//! symlink), and ADD's archive unpacking happens inside the image's root.

mod support;

use std::fs;
use std::os::unix::fs::symlink;

use support::*;

const SECRET: &str = "host-secret-canary-7f3a";

#[test]
fn copy_cannot_leave_the_build_context() {
    let t = tempfile::tempdir().unwrap();
    let (store, ctx) = (t.path().join("store"), t.path().join("ctx"));
    fs::create_dir_all(ctx.join("dir")).unwrap();
    let outside = t.path().join("outside.txt");
    fs::write(&outside, SECRET).unwrap();
    symlink(&outside, ctx.join("abs-link")).unwrap();
    symlink("../outside.txt", ctx.join("rel-link")).unwrap();
    symlink(&outside, ctx.join("dir/inner-link")).unwrap();
    let base = format!("FROM rootfs:{}\n", busybox_tar().display());
    let s = store.display().to_string();
    let build = |body: &str| {
        fs::write(ctx.join("Containerfile"), format!("{base}{body}")).unwrap();
        boxwright(&[
            "--store",
            &s,
            "build",
            "-q",
            "-t",
            "h",
            &ctx.display().to_string(),
        ])
    };
    for body in [
        "COPY ../outside.txt /x\n",
        "COPY /../../outside.txt /x\n",
        "COPY abs-link /x\n",
        "COPY rel-link /x\n",
    ] {
        let run = build(body);
        assert_eq!(run.code, 2, "{body}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains("not in the build context"),
            "{body}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains(SECRET) && !run.stdout.contains(SECRET));
    }
    // A symlink inside a copied directory is copied as a symlink.
    build("COPY dir/ /d/\n").ok();
    let out = boxwright(&[
        "--store",
        &s,
        "run",
        "--rm",
        "h",
        "sh",
        "-c",
        "readlink /d/inner-link; cat /d/inner-link 2>/dev/null || echo unreadable",
    ])
    .ok();
    assert_eq!(out.stdout, format!("{}\nunreadable\n", outside.display()));
}

#[test]
fn add_unpacks_hostile_archives_inside_the_image_only() {
    let t = tempfile::tempdir().unwrap();
    let (store, ctx) = (t.path().join("store"), t.path().join("ctx"));
    fs::create_dir_all(&ctx).unwrap();
    // An archive whose entries climb out with `..` and through a symlink.
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        // set_path refuses `..`: write the name bytes directly.
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        tar.append(&h, data).unwrap();
    };
    add("ok.txt", b"fine");
    add("../../../../../../tmp/boxwright-hostile-escape", b"escaped");
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.as_old_mut().name[..3].copy_from_slice(b"out");
    h.set_link_name("/tmp").unwrap();
    h.set_cksum();
    tar.append(&h, &[][..]).unwrap();
    fs::write(ctx.join("evil.tar"), tar.into_inner().unwrap()).unwrap();
    let _ = fs::remove_file("/tmp/boxwright-hostile-escape");
    fs::write(
        ctx.join("Containerfile"),
        format!(
            "FROM rootfs:{}\nADD evil.tar /unpacked/\n",
            busybox_tar().display()
        ),
    )
    .unwrap();
    let s = store.display().to_string();
    let run = boxwright(&[
        "--store",
        &s,
        "build",
        "-q",
        "-t",
        "h",
        &ctx.display().to_string(),
    ]);
    assert!(
        !std::path::Path::new("/tmp/boxwright-hostile-escape").exists(),
        "the archive wrote on the host"
    );
    // The `..` entry is left out (as BuildKit does), the rest unpacks.
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = boxwright(&[
        "--store",
        &s,
        "run",
        "--rm",
        "h",
        "sh",
        "-c",
        "cat /unpacked/ok.txt; echo; readlink /unpacked/out; test -e /tmp/boxwright-hostile-escape && echo escaped-in-image; true",
    ])
    .ok();
    assert_eq!(out.stdout, "fine\n/tmp\n", "{}", out.stderr);
}
