//! Running steps on the layers built so far: overlay lowerdirs, or the
//! snapshot fallback when an overlay cannot be mounted.

use std::path::PathBuf;

use crate::media::LayerInfo;
use crate::plan::LayerSettings;
use crate::progress::{Event, Sink};
use crate::sandbox::{Action, BindMount, HostEnv, Network, Rootfs, RunSpec};
use crate::store::Store;

use super::worker::{Answer, Diff, Op, Unpack, Workers};
use super::{BuildError, DiffMethod, StepResult};

enum Method {
    Overlay,
    /// One full tree, updated in place step after step; `applied` counts the
    /// layers of the chain that are already in it.
    Snapshot {
        tree: PathBuf,
        applied: usize,
    },
}

/// Runs the steps of one build.
pub(crate) struct Runner<'a> {
    store: &'a Store,
    workers: &'a Workers,
    method: Method,
    max_layer_size: u64,
    sink: &'a dyn Sink,
}

impl<'a> Runner<'a> {
    /// Chooses overlay or snapshot (probing overlay in a worker) and says which.
    pub(crate) fn new(
        store: &'a Store,
        workers: &'a Workers,
        diff: DiffMethod,
        max_layer_size: u64,
        sink: &'a dyn Sink,
    ) -> Result<Runner<'a>, BuildError> {
        let snapshot = |store: &Store| -> Result<Method, BuildError> {
            Ok(Method::Snapshot {
                tree: store.temp_dir()?.join("rootfs"),
                applied: 0,
            })
        };
        let method = match diff {
            DiffMethod::Snapshot => {
                sink.emit(&Event::Info {
                    message: "diff method: snapshot (copied tree, stat comparison)".into(),
                });
                snapshot(store)?
            }
            DiffMethod::Overlay | DiffMethod::Auto => {
                let scratch = store.temp_dir()?;
                let probe = workers.run(
                    &Op::ProbeOverlay {
                        scratch: scratch.clone(),
                    },
                    &mut |_| {},
                );
                let _ = workers.run(
                    &Op::Remove {
                        paths: vec![scratch],
                    },
                    &mut |_| {},
                );
                match probe {
                    Ok(Answer::Ok) => {
                        sink.emit(&Event::Info {
                            message: "diff method: overlay upperdir".into(),
                        });
                        Method::Overlay
                    }
                    other => {
                        let why = match other {
                            Ok(Answer::Failed { message }) | Err(message) => message,
                            Ok(a) => format!("unexpected answer {a:?}"),
                        };
                        if diff == DiffMethod::Overlay {
                            return Err(BuildError::Sandbox(format!(
                                "{why}; use --diff snapshot (or auto) to build without overlayfs"
                            )));
                        }
                        sink.emit(&Event::Warning {
                            message: format!(
                                "overlay not available ({why}): falling back to the snapshot diff (a copied tree compared before and after each step; slower)"
                            ),
                        });
                        snapshot(store)?
                    }
                }
            }
        };
        Ok(Runner {
            store,
            workers,
            method,
            max_layer_size,
            sink,
        })
    }

    /// Runs one step on top of `layers`, with `mounts` bound into it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_step(
        &mut self,
        layers: &[LayerInfo],
        action: Action,
        mounts: Vec<BindMount>,
        network: Network,
        host: HostEnv,
        settings: &LayerSettings,
        timeout_secs: Option<u64>,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<StepResult, String> {
        let tmp = self.store.temp_dir().map_err(|e| e.to_string())?;
        let result = match &mut self.method {
            Method::Overlay => {
                let mut lowerdirs: Vec<PathBuf> = Vec::with_capacity(layers.len().max(1));
                for l in layers.iter().rev() {
                    let dir = self.ensure_unpacked(l)?;
                    // overlayfs refuses a directory twice in its stack (ELOOP).
                    // Two steps with the same result share a layer dir; the
                    // topmost copy shadows everything the lower copy shows or
                    // hides, so dropping the lower one changes nothing.
                    if !lowerdirs.contains(&dir) {
                        lowerdirs.push(dir);
                    }
                }
                if lowerdirs.is_empty() {
                    // overlayfs needs a lowerdir even on an empty base.
                    let empty = tmp.join("empty");
                    std::fs::create_dir_all(&empty).map_err(|e| e.to_string())?;
                    lowerdirs.push(empty);
                }
                let upper = tmp.join("upper");
                let work = tmp.join("work");
                for d in [&upper, &work] {
                    std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
                }
                let spec = RunSpec {
                    rootfs: Rootfs::Overlay {
                        lowerdirs,
                        upperdir: upper.clone(),
                        workdir: work,
                    },
                    action,
                    network,
                    host,
                    fake_root: settings.fake_root,
                    mounts,
                    timeout_secs,
                };
                let answer = self.step(spec, Diff::Upperdir(upper.clone()), settings, on_line)?;
                if let StepResult::Layer(l) = &answer {
                    // The upperdir is already the layer in overlay form: keep
                    // it as the layer's lowerdir instead of unpacking the blob.
                    self.store
                        .commit_layer_dir(&upper, &l.diff_id)
                        .map_err(|e| e.to_string())?;
                }
                Ok(answer)
            }
            Method::Snapshot { tree, applied } => {
                let tree = tree.clone();
                for l in &layers[*applied..] {
                    self.unpack(l, Unpack::Flatten, &tree)?;
                }
                let spec = RunSpec {
                    rootfs: Rootfs::Directory(tree.clone()),
                    action,
                    network,
                    host,
                    fake_root: settings.fake_root,
                    mounts,
                    timeout_secs,
                };
                let answer = self.step(spec, Diff::Snapshot(tree), settings, on_line)?;
                if let (StepResult::Layer(_), Method::Snapshot { applied, .. }) =
                    (&answer, &mut self.method)
                {
                    // The step changed the tree in place: its layer is applied.
                    *applied = layers.len() + 1;
                }
                Ok(answer)
            }
        };
        self.remove(tmp);
        result
    }

    fn step(
        &self,
        spec: RunSpec,
        diff: Diff,
        settings: &LayerSettings,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<StepResult, String> {
        let op = Op::Step {
            store: self.store.root().to_path_buf(),
            spec: Box::new(spec),
            diff,
            compression: settings.compression,
            source_date_epoch: settings.source_date_epoch,
        };
        match self.workers.run(&op, on_line)? {
            Answer::Step {
                exit_code: 0,
                layer: Some(l),
            } => Ok(StepResult::Layer(l)),
            Answer::Step { exit_code, .. } => Ok(StepResult::Exit(exit_code)),
            Answer::Failed { message } => Err(message),
            other => Err(format!("unexpected worker answer {other:?}")),
        }
    }

    /// The overlay lowerdir of a layer, unpacking its blob the first time.
    fn ensure_unpacked(&self, layer: &LayerInfo) -> Result<PathBuf, String> {
        let dir = self.store.layer_dir(&layer.diff_id);
        if self.store.has_layer_dir(&layer.diff_id) {
            return Ok(dir);
        }
        let tmp = self.store.temp_dir().map_err(|e| e.to_string())?;
        let dest = tmp.join("layer");
        self.unpack(layer, Unpack::OverlayLower, &dest)?;
        self.store
            .commit_layer_dir(&dest, &layer.diff_id)
            .map_err(|e| e.to_string())?;
        self.remove(tmp);
        Ok(dir)
    }

    fn unpack(
        &self,
        layer: &LayerInfo,
        mode: Unpack,
        dest: &std::path::Path,
    ) -> Result<(), String> {
        let op = Op::Unpack {
            store: self.store.root().to_path_buf(),
            layer: layer.clone(),
            mode,
            dest: dest.to_path_buf(),
            max_size: self.max_layer_size,
        };
        match self.workers.run(&op, &mut |_| {})? {
            Answer::Unpacked {
                skipped_devices, ..
            } => {
                if skipped_devices > 0 {
                    self.sink.emit(&Event::Warning {
                        message: format!(
                            "layer {}: {skipped_devices} device node(s) not created where steps run (a user namespace cannot make them; steps get the sandbox's /dev); the image's layer keeps them",
                            layer.digest.short()
                        ),
                    });
                }
                Ok(())
            }
            Answer::Failed { message } => Err(message),
            other => Err(format!("unexpected worker answer {other:?}")),
        }
    }

    /// Removes a temporary tree through a worker (it may hold files of
    /// subordinate ids); a failure leaves garbage for `gc`, not a failed build.
    fn remove(&self, path: PathBuf) {
        let _ = self
            .workers
            .run(&Op::Remove { paths: vec![path] }, &mut |_| {});
    }

    /// Cleans up the snapshot tree, if any.
    pub(crate) fn finish(self) {
        if let Method::Snapshot { tree, .. } = &self.method
            && let Some(parent) = tree.parent()
        {
            self.remove(parent.to_path_buf());
        }
    }
}
