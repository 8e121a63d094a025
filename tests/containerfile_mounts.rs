//! RUN mounts and heredocs a Containerfile build gives a step, checked in
//! the built image and on the host: tmpfs and `rw` binds are writable and
//! leave nothing behind (not in the layer, not in the context), heredocs
//! inside a command line reach the shell with their bodies.

mod support;

use std::fs;

use support::*;

#[test]
fn tmpfs_rw_binds_and_inline_heredocs() {
    let t = tempfile::tempdir().unwrap();
    let (store, ctx) = (t.path().join("store"), t.path().join("ctx"));
    fs::create_dir_all(ctx.join("data")).unwrap();
    fs::write(ctx.join("data/f"), "orig\n").unwrap();
    let base = format!("rootfs:{}", busybox_tar().display());
    fs::write(
        ctx.join("Containerfile"),
        format!(
            "FROM {base} AS s\n\
             RUN mkdir /d && echo stage > /d/g\n\
             FROM {base}\n\
             RUN --mount=type=tmpfs,target=/scratch echo t > /scratch/f && cat /scratch/f > /seen-tmpfs\n\
             RUN --mount=type=bind,source=data,target=/data,rw echo changed > /data/f && cat /data/f > /seen-rw\n\
             RUN --mount=type=bind,from=s,source=/d,target=/d,rw echo more >> /d/g && cat /d/g > /seen-stage\n\
             RUN --mount=type=bind,source=data,target=/data cat /data/f > /seen-ro\n\
             RUN <<ONE cat > /one && <<TWO cat > /two\n\
             first\n\
             ONE\n\
             second\n\
             TWO\n"
        ),
    )
    .unwrap();
    let s = store.display().to_string();
    boxwright(&[
        "--store",
        &s,
        "build",
        "-q",
        "-t",
        "m",
        &ctx.display().to_string(),
    ])
    .ok();
    let run = boxwright(&[
        "--store",
        &s,
        "run",
        "--rm",
        "m",
        "sh",
        "-c",
        "cat /seen-tmpfs /seen-rw /seen-stage /seen-ro /one /two; for p in /scratch /data /d; do test -e $p && echo \"$p left\"; done; true",
    ])
    .ok();
    assert_eq!(
        run.stdout, "t\nchanged\nstage\nmore\norig\nfirst\nsecond\n",
        "{}",
        run.stderr
    );
    assert_eq!(fs::read_to_string(ctx.join("data/f")).unwrap(), "orig\n");
}
