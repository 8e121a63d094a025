//! What the driver adds around a toolbox recipe's steps: artifacts fetched on
//! the host and mounted read-only, cache mounts from the store, the PATH and
//! variables each component adds, and the dev access layer's config.

use std::path::PathBuf;

use crate::artifact::{Fetcher, Mirror, Request};
use crate::image::{ConfigOverrides, ImageConfig};
use crate::mirror::Mirrors;
use crate::plan::{Plan, PlannedStep};
use crate::progress::{Event, Sink};
use crate::recipe::{CacheSharing, StepKind, labels};
use crate::sandbox::BindMount;
use crate::store::{MountLock, Store};

use super::{BuildError, BuildOptions};

use crate::sandbox::DEFAULT_PATH;

/// The artifact fetcher of this build: `--artifact-mirror`, else upstream
/// URLs through the download mirrors.
pub(crate) fn fetcher(opts: &BuildOptions, store: &Store, mirrors: &Mirrors) -> Fetcher {
    Fetcher::new(
        store.artifacts_dir(),
        opts.artifact_mirror.as_deref().map(Mirror::parse),
        opts.offline,
    )
    .with_rewrites(mirrors.clone())
}

fn request(a: &crate::recipe::ArtifactUse) -> Request<'_> {
    Request {
        component: &a.component,
        version: &a.version,
        file: &a.file,
    }
}

/// With `--offline`, fails up front naming every artifact the plan needs
/// that is not at hand.
pub(crate) fn check_offline(plan: &Plan, fetcher: &Fetcher) -> Result<(), BuildError> {
    let reqs: Vec<Request<'_>> = plan
        .steps
        .iter()
        .flat_map(|s| s.artifacts.iter().map(request))
        .collect();
    fetcher.check_offline(&reqs)?;
    Ok(())
}

/// The bind mounts of a step that is about to run (its cache mounts, its
/// artifacts, fetched and verified now, and its host inputs), and the locks
/// on its cache mounts, held until the step ends (see [`CacheSharing`]).
pub(crate) fn step_mounts(
    ps: &PlannedStep,
    store: &Store,
    fetcher: &Fetcher,
    sink: &dyn Sink,
) -> Result<(Vec<BindMount>, Vec<MountLock>), BuildError> {
    let mut mounts = Vec::new();
    let mut held = Vec::new();
    // Caches of one `id` are one directory, whatever their targets.
    let mut chosen: Vec<(String, PathBuf)> = Vec::new();
    // Locked ones in one order (by name), so that two steps wanting the
    // same two caches cannot each hold one and wait for the other; private
    // ones never wait.
    let mut caches: Vec<(&String, String, CacheSharing)> = ps
        .caches
        .iter()
        .map(|c| {
            let name = match ps.step.options.cache_ids.iter().find(|(t, _)| t == c) {
                // Named with a NUL, which no target path can hold.
                Some((_, id)) => format!("\0id/{id}"),
                None => c.clone(),
            };
            let given = ps.step.options.cache_sharing.iter().find(|(t, _)| t == c);
            let sharing = match given {
                Some((_, s)) => *s,
                None if APT_CACHES.contains(&c.as_str()) && runs_apt(ps) => CacheSharing::Locked,
                None => CacheSharing::Shared,
            };
            (c, name, sharing)
        })
        .collect();
    caches.sort_by(|a, b| a.1.cmp(&b.1));
    for (target, name, sharing) in caches {
        let source = match chosen.iter().find(|(n, _)| *n == name) {
            Some((_, dir)) => dir.clone(),
            None => {
                let dir = match sharing {
                    CacheSharing::Shared => store.mount_cache_dir(&name)?,
                    CacheSharing::Locked => {
                        let dir = store.mount_cache_dir(&name)?;
                        held.push(match store.try_lock_mount(&dir)? {
                            Some(l) => l,
                            None => {
                                sink.emit(&Event::Info {
                                    message: format!(
                                        "step {}: the cache mount {target} is in use by another step; waiting for it",
                                        ps.number
                                    ),
                                });
                                store.lock_mount(&dir)?
                            }
                        });
                        dir
                    }
                    CacheSharing::Private => {
                        let (dir, lock) = private_copy(store, &name)?;
                        held.push(lock);
                        dir
                    }
                };
                chosen.push((name, dir.clone()));
                dir
            }
        };
        mounts.push(BindMount {
            source,
            target: target.clone(),
            readonly: false,
        });
    }
    for a in &ps.artifacts {
        mounts.push(BindMount {
            source: fetcher.fetch(&request(a))?,
            target: a.target.clone(),
            readonly: true,
        });
    }
    for i in &ps.host_inputs {
        mounts.push(BindMount {
            source: i.src.clone(),
            target: i.target.clone(),
            readonly: !ps.step.options.rw_targets.contains(&i.target),
        });
    }
    Ok((mounts, held))
}

/// The caches apt locks for itself, failing at once ("Could not get lock")
/// when another apt holds them: a step that runs apt holds them alone.
const APT_CACHES: [&str; 2] = ["/var/cache/apt", "/var/lib/apt/lists"];

/// Whether a run step's command names apt. A step that runs apt from a
/// script it does not name gets no lock (its `apt` fails with its own
/// clear error if another holds the caches; apt's lock keeps them
/// intact): a Containerfile can then ask for one with
/// `--mount=type=cache,target=/var/lib/apt/lists,sharing=locked`. Steps
/// that do not run apt do not wait for those that do.
fn runs_apt(ps: &PlannedStep) -> bool {
    let StepKind::Run { command, .. } = &ps.step.kind else {
        return false;
    };
    let mut texts = command.argv();
    texts.extend(ps.step.options.text.clone());
    texts.iter().any(|t| names_apt(t))
}

/// Whether shell text has apt as a word (`apt-get`, `/usr/bin/apt`, …).
fn names_apt(text: &str) -> bool {
    text.split(|c: char| c.is_whitespace() || ";&|()<>'\"`$={}".contains(c))
        .map(|w| w.rsplit('/').next().unwrap_or(w))
        .any(|w| matches!(w, "apt" | "apt-get" | "aptitude" | "apt-cache"))
}

/// The first copy of cache `name` that no running step holds, locked:
/// the cache itself, else `NAME` + NUL + 1, 2, … (made empty when first
/// needed, kept and reused like the cache itself).
fn private_copy(store: &Store, name: &str) -> Result<(PathBuf, MountLock), BuildError> {
    for n in 0usize.. {
        let copy = if n == 0 {
            name.to_string()
        } else {
            format!("{name}\0{n}")
        };
        let dir = store.mount_cache_dir(&copy)?;
        if let Some(lock) = store.try_lock_mount(&dir)? {
            return Ok((dir, lock));
        }
    }
    unreachable!("one of unboundedly many copies is free")
}

/// Adds the PATH entries and variables of a finished (or cached) step to the
/// config, so later steps and the image see them.
pub(crate) fn apply_step_env(config: &mut ImageConfig, ps: &PlannedStep) {
    if ps.path.is_empty() && ps.env.is_empty() {
        return;
    }
    let mut env = ps.env.clone();
    if !ps.path.is_empty() {
        let current = config
            .env()
            .into_iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v)
            .unwrap_or_else(|| DEFAULT_PATH.to_string());
        let mut parts: Vec<&str> = ps.path.iter().map(String::as_str).collect();
        parts.extend(
            current
                .split(':')
                .filter(|p| !ps.path.iter().any(|x| x == p)),
        );
        env.insert("PATH".to_string(), parts.join(":"));
    }
    config.apply(&ConfigOverrides {
        env,
        ..ConfigOverrides::default()
    });
}

/// The config the components add (ports, labels, entrypoint); the recipe's
/// own `[config]` is applied on top of it. List labels (runtimes, tools,
/// extensions…) extend the base's, so an image built on a template still
/// describes the template's components too.
pub(crate) fn toolbox_overrides(plan: &Plan, config: &ImageConfig) -> ConfigOverrides {
    let t = &plan.toolbox;
    let inherited = config
        .config
        .as_ref()
        .map(|c| c.labels.clone())
        .unwrap_or_default();
    let mut labels = t.labels.clone();
    for (key, value) in labels.iter_mut() {
        let single = [labels::RECIPE_DIGEST, labels::TEMPLATE, labels::DEV_ACCESS];
        if single.contains(&key.as_str()) {
            continue;
        }
        if let Some(old) = inherited.get(key).filter(|o| !o.is_empty()) {
            let mut items: Vec<&str> = old.split(',').collect();
            for item in value.split(',') {
                if !items.contains(&item) {
                    items.push(item);
                }
            }
            *value = items.join(",");
        }
    }
    let (entrypoint, cmd) = match &t.entrypoint {
        Some(ours) => wrap_entrypoint(ours, config),
        None => (None, None),
    };
    ConfigOverrides {
        exposed_ports: t.ports.iter().map(|p| p.to_string()).collect(),
        labels,
        entrypoint,
        cmd,
        ..ConfigOverrides::default()
    }
}

/// The dev access entrypoint goes in front of the base's own, which it runs
/// with the arguments: `podman run IMAGE ARGS` then does what it did on the
/// base (BYOI keeps its entrypoint semantics) while the services run beside
/// it. The base's cmd stays the default arguments. An image that already
/// starts with ours (a template) keeps its entrypoint as is.
fn wrap_entrypoint(
    ours: &[String],
    config: &ImageConfig,
) -> (Option<Vec<String>>, Option<Vec<String>>) {
    let (base_ep, base_cmd) = config
        .config
        .as_ref()
        .map(|c| (c.entrypoint.clone().unwrap_or_default(), c.cmd.clone()))
        .unwrap_or_default();
    if base_ep.starts_with(ours) {
        return (None, None);
    }
    let mut entrypoint = ours.to_vec();
    entrypoint.extend(base_ep);
    (Some(entrypoint), base_cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_cache_found_busy_is_another_copy_and_the_first_again_once_free() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (first, lock1) = private_copy(&store, "/root/.cache/x").unwrap();
        assert_eq!(first, store.mount_cache_dir("/root/.cache/x").unwrap());
        let (second, lock2) = private_copy(&store, "/root/.cache/x").unwrap();
        assert_ne!(first, second);
        let (third, _lock3) = private_copy(&store, "/root/.cache/x").unwrap();
        assert!(third != first && third != second);
        drop((lock1, lock2));
        let (again, _) = private_copy(&store, "/root/.cache/x").unwrap();
        assert_eq!(again, first);
    }

    #[test]
    fn apt_is_found_as_a_word_only() {
        for t in [
            "apt-get update && apt-get install -y hello",
            "set -e; /usr/bin/apt install x",
            "DEBIAN_FRONTEND=noninteractive apt-get -y upgrade",
            "(cd /tmp&&aptitude search x)",
            "x=$(apt-cache policy bash)",
        ] {
            assert!(names_apt(t), "{t}");
        }
        for t in [
            "make capture",
            "echo adapt",
            "cp apt.txt /x",
            "pip install aptly",
        ] {
            assert!(!names_apt(t), "{t}");
        }
    }
    use crate::image::ContainerConfig;

    fn config(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageConfig {
        let mut c: ImageConfig = serde_json::from_value(serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []}
        }))
        .unwrap();
        c.config = Some(ContainerConfig {
            entrypoint: entrypoint.and_then(strings),
            cmd: cmd.and_then(strings),
            ..ContainerConfig::default()
        });
        c
    }

    fn strings(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn the_base_entrypoint_runs_behind_ours_with_its_cmd() {
        let ours = vec!["/usr/local/bin/boxwright-entrypoint".to_string()];
        let base = config(
            Some(&["/docker-entrypoint.sh"]),
            Some(&["nginx", "-g", "daemon off;"]),
        );
        assert_eq!(
            wrap_entrypoint(&ours, &base),
            (
                strings(&[
                    "/usr/local/bin/boxwright-entrypoint",
                    "/docker-entrypoint.sh"
                ]),
                strings(&["nginx", "-g", "daemon off;"])
            )
        );
        // No entrypoint: the cmd becomes ours's arguments.
        let base = config(None, Some(&["bash"]));
        assert_eq!(
            wrap_entrypoint(&ours, &base),
            (
                strings(&["/usr/local/bin/boxwright-entrypoint"]),
                strings(&["bash"])
            )
        );
        // A template already starts with ours: left alone.
        let built = config(Some(&["/usr/local/bin/boxwright-entrypoint"]), None);
        assert_eq!(wrap_entrypoint(&ours, &built), (None, None));
    }
}
