//! Benchmark: committing a directory tree into a layer.
//!
//! `cargo bench --bench layer_commit [-- DIR]` commits DIR (default: a Debian
//! bookworm minbase rootfs made with mmdebstrap, cached as
//! /var/tmp/boxwright-bench/minbase.tar and extracted to a temporary
//! directory) and prints, median of 3 runs each:
//! - boxwright gzip and zstd (`write_upperdir`, blob written to a file), with
//!   the peak RSS of the committing process;
//! - `tar --sort=name -cf - . | gzip -6 | sha256sum`;
//! - `buildah commit` of the same tree (gzip, to an OCI layout), when buildah
//!   is installed; only the commit is timed.
//!
//! Each boxwright run is a child process (this binary again), so that its
//! peak RSS (`VmHWM`) is its own. Needs root to extract the rootfs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use boxwright::layer::{WriteOptions, write_upperdir};
use boxwright::media::Compression;

const CACHE_DIR: &str = "/var/tmp/boxwright-bench";
const RUNS: usize = 3;
const CHILD_ENV: &str = "BW_BENCH_CHILD";
const DIR_ENV: &str = "BW_BENCH_DIR";
const OUT_ENV: &str = "BW_BENCH_OUT";

fn main() -> Result<()> {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        return child(&spec);
    }
    // cargo bench passes `--bench`; anything else not a flag is the tree.
    let arg = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let work = tempfile::Builder::new()
        .prefix("bench-")
        .tempdir_in(prepare_cache()?)?;
    let tree = match arg {
        Some(dir) => PathBuf::from(dir),
        None => extract_minbase(work.path())?,
    };
    let (files, bytes) = tree_size(&tree)?;
    println!(
        "tree: {} ({files} entries, {:.0} MB); {} cores; median of {RUNS} runs\n",
        tree.display(),
        bytes as f64 / 1e6,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("{:<44} {:>9} {:>11} {:>13}", "", "time", "blob", "peak RSS");

    let mut results = Vec::new();
    for c in [Compression::Gzip, Compression::Zstd] {
        let mut runs = Vec::new();
        for i in 0..RUNS {
            runs.push(boxwright_run(
                &tree,
                c,
                &work.path().join(format!("out-{c}-{i}")),
            )?);
        }
        let rss = runs.iter().map(|r| r.rss_kb).max().unwrap_or(0);
        let size = runs[0].size;
        let t = median(runs.into_iter().map(|r| r.time).collect());
        println!(
            "{:<44} {:>7.2} s {:>8.1} MB {:>10.1} MB",
            format!("boxwright {c}"),
            t.as_secs_f64(),
            size as f64 / 1e6,
            rss as f64 / 1024.0
        );
        results.push((c, t));
    }

    let pipeline = "tar --sort=name -cf - . | gzip -6 | sha256sum >/dev/null";
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        sh(&tree, pipeline)?;
        runs.push(start.elapsed());
    }
    let tar_gzip = median(runs);
    let size: u64 = sh(&tree, "tar --sort=name -cf - . | gzip -6 | wc -c")?
        .trim()
        .parse()?;
    println!(
        "{:<44} {:>7.2} s {:>8.1} MB",
        "tar --sort=name | gzip -6 | sha256sum",
        tar_gzip.as_secs_f64(),
        size as f64 / 1e6
    );

    let buildah = match buildah_commit(&tree, work.path()) {
        Ok(Some((t, size))) => {
            println!(
                "{:<44} {:>7.2} s {:>8.1} MB",
                "buildah commit (gzip, to oci: layout)",
                t.as_secs_f64(),
                size as f64 / 1e6
            );
            Some(t)
        }
        Ok(None) => {
            println!("buildah commit: buildah is not installed (apt-get install buildah)");
            None
        }
        Err(e) => {
            println!("buildah commit: failed: {e:#}");
            None
        }
    };

    let gzip = results[0].1.as_secs_f64();
    println!(
        "\nboxwright gzip is {:.1}x faster than tar | gzip -6 (target >= 3x)",
        tar_gzip.as_secs_f64() / gzip
    );
    if let Some(b) = buildah {
        println!(
            "boxwright gzip is {:.1}x faster than buildah commit (target > 1x)",
            b.as_secs_f64() / gzip
        );
    }
    println!(
        "boxwright zstd: {:.2} s (target < 1 s)",
        results[1].1.as_secs_f64()
    );
    Ok(())
}

/// Child mode: one commit of the tree in `BW_BENCH_DIR` with the compression
/// in `BW_BENCH_CHILD` to `BW_BENCH_OUT`; prints the time, the blob size and
/// the process's peak RSS.
fn child(spec: &str) -> Result<()> {
    let (Some(dir), Some(out)) = (std::env::var_os(DIR_ENV), std::env::var_os(OUT_ENV)) else {
        bail!("{CHILD_ENV} needs {DIR_ENV} and {OUT_ENV}");
    };
    let compression: Compression = spec.parse().map_err(anyhow::Error::msg)?;
    let opts = WriteOptions {
        compression,
        source_date_epoch: 1_700_000_000,
    };
    let file = fs::File::create(out)?;
    let start = Instant::now();
    let info = write_upperdir(Path::new(&dir), &opts, file)?;
    let took = start.elapsed();
    let status = fs::read_to_string("/proc/self/status")?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .context("no VmHWM in /proc/self/status")?;
    println!(
        "RESULT {} {} {hwm} {}",
        took.as_nanos(),
        info.size,
        info.digest
    );
    Ok(())
}

struct Run {
    time: Duration,
    size: u64,
    rss_kb: u64,
}

fn boxwright_run(tree: &Path, c: Compression, out: &Path) -> Result<Run> {
    let output = Command::new(std::env::current_exe()?)
        .env(CHILD_ENV, c.to_string())
        .env(DIR_ENV, tree)
        .env(OUT_ENV, out)
        .stderr(Stdio::inherit())
        .output()?;
    if !output.status.success() {
        bail!("boxwright {c} commit failed");
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .context("no result from the child")?;
    let f: Vec<&str> = line.split(' ').collect();
    let _ = fs::remove_file(out);
    Ok(Run {
        time: Duration::from_nanos(f[0].parse()?),
        size: f[1].parse()?,
        rss_kb: f[2].parse()?,
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn sh(dir: &Path, script: &str) -> Result<String> {
    let out = Command::new("bash")
        .args(["-o", "pipefail", "-euc", script])
        .current_dir(dir)
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("`{script}` failed");
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn prepare_cache() -> Result<&'static Path> {
    fs::create_dir_all(CACHE_DIR)?;
    Ok(Path::new(CACHE_DIR))
}

/// The minbase rootfs, built once with mmdebstrap and extracted into `work`.
fn extract_minbase(work: &Path) -> Result<PathBuf> {
    let tarball = Path::new(CACHE_DIR).join("minbase.tar");
    if !tarball.exists() {
        eprintln!(
            "building {} with mmdebstrap (once; 20-60 s)...",
            tarball.display()
        );
        let partial = tarball.with_extension("tar.partial");
        let st = Command::new("mmdebstrap")
            .args(["--variant=minbase", "--format=tar", "--quiet", "bookworm"])
            .arg(&partial)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .status()
            .context("mmdebstrap is needed for the default tree (apt-get install mmdebstrap)")?;
        if !st.success() {
            bail!("mmdebstrap failed");
        }
        fs::rename(&partial, &tarball)?;
    }
    let root = work.join("rootfs");
    fs::create_dir(&root)?;
    let st = Command::new("tar")
        .args(["--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf"])
        .arg(&tarball)
        .arg("-C")
        .arg(&root)
        .status()?;
    if !st.success() {
        bail!(
            "extracting {} failed (run the benchmark as root)",
            tarball.display()
        );
    }
    Ok(root)
}

fn tree_size(tree: &Path) -> Result<(u64, u64)> {
    let (mut n, mut bytes) = (0, 0);
    for e in walkdir::WalkDir::new(tree).follow_links(false) {
        let md = e?.metadata()?;
        n += 1;
        if md.is_file() {
            bytes += md.len();
        }
    }
    Ok((n, bytes))
}

/// `buildah commit` of a scratch container holding `tree`; returns the
/// median commit time and the layer size, `None` without buildah.
fn buildah_commit(tree: &Path, work: &Path) -> Result<Option<(Duration, u64)>> {
    if Command::new("buildah").arg("--version").output().is_err() {
        return Ok(None);
    }
    let ctr = run_out(Command::new("buildah").args(["from", "scratch"]))?;
    let ctr = ctr.trim().to_string();
    let result = (|| -> Result<(Duration, u64)> {
        let mnt = run_out(Command::new("buildah").args(["mount", &ctr]))?;
        sh(
            tree,
            &format!(
                "tar --numeric-owner --xattrs -cf - . | tar --numeric-owner --xattrs -xpf - -C '{}'",
                mnt.trim()
            ),
        )?;
        run_out(Command::new("buildah").args(["umount", &ctr]))?;
        let mut runs = Vec::new();
        let mut size = 0;
        for i in 0..RUNS {
            let layout = work.join(format!("buildah-oci-{i}"));
            let start = Instant::now();
            run_out(
                Command::new("buildah")
                    .args(["commit", "--quiet", "--disable-compression=false", &ctr])
                    .arg(format!("oci:{}:bench", layout.display())),
            )?;
            runs.push(start.elapsed());
            size = largest_blob(&layout)?;
            fs::remove_dir_all(&layout)?;
        }
        Ok((median(runs), size))
    })();
    let _ = Command::new("buildah")
        .args(["rm", &ctr])
        .stdout(Stdio::null())
        .status();
    result.map(Some)
}

fn largest_blob(layout: &Path) -> Result<u64> {
    let mut max = 0;
    for e in fs::read_dir(layout.join("blobs/sha256"))? {
        max = max.max(e?.metadata()?.len());
    }
    Ok(max)
}

fn run_out(cmd: &mut Command) -> Result<String> {
    let out = cmd.stderr(Stdio::inherit()).output()?;
    if !out.status.success() {
        bail!("{cmd:?} failed");
    }
    Ok(String::from_utf8(out.stdout)?)
}
