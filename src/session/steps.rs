//! A build's steps, each run on the layers built so far: overlay lowerdirs
//! with a fresh upperdir, or the snapshot fallback when an overlay cannot be
//! mounted; each successful step's changes come back as one layer.

use std::path::PathBuf;

use crate::media::LayerInfo;
use crate::plan::LayerSettings;
use crate::progress::{Event, Sink};
use crate::sandbox::{Action, BindMount, HostEnv, ImageMount, Network, Rootfs, RunSpec, StdioMode};
use crate::store::Store;

use super::SessionError;
use super::lowers::Unpacker;
use super::worker::{Answer, Diff, Op, Unpack, Workers};

/// How a step's changes are found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DiffMethod {
    /// Overlay when it can be mounted, else the snapshot fallback.
    #[default]
    Auto,
    Overlay,
    /// Copy the tree, snapshot stats before the step, compare after.
    Snapshot,
}

/// The outcome of one step.
#[derive(Clone, Debug)]
pub enum StepResult {
    /// It succeeded; its changes are this layer (already in the store).
    Layer(LayerInfo),
    /// It exited with this non-zero code.
    Exit(i32),
}

/// Another image's file system a step reads (a stage or an image of a
/// Containerfile): mounted read-only, never part of the step's layer.
#[derive(Clone, Debug)]
pub struct ImageUse {
    /// Its layers, bottom first.
    pub layers: Vec<LayerInfo>,
    pub at: ImageAt,
}

/// Where an [`ImageUse`] appears.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageAt {
    /// As the source tree of a [`crate::sandbox::CopyFiles`] action (`COPY --from`).
    CopySource,
    /// The image's `source` path at the container path `target`
    /// (`RUN --mount=type=bind,from=...`).
    Mount {
        source: String,
        target: String,
        /// Writes allowed (to a scratch upper layer), discarded after the step.
        writable: bool,
    },
}

/// What [`choose_method`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Chosen {
    Overlay,
    /// The snapshot fallback (a copied tree): asked for (`why` is `None`),
    /// or overlay cannot be mounted here, for this reason.
    Snapshot {
        why: Option<String>,
    },
}

/// Overlay or the snapshot fallback, as `diff` asks. `Auto` and `Overlay`
/// probe an overlay mount in a worker (the kernel decides, and inside some
/// containers it refuses a nested unprivileged overlay); a failed probe is
/// the fallback for `Auto` and an error for `Overlay`. Builds and sandboxes
/// both choose here, so `run` works wherever `build` does.
pub(super) fn choose_method(
    store: &Store,
    workers: &Workers,
    diff: DiffMethod,
) -> Result<Chosen, SessionError> {
    if diff == DiffMethod::Snapshot {
        return Ok(Chosen::Snapshot { why: None });
    }
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
    let why = match probe {
        Ok(Answer::Ok) => return Ok(Chosen::Overlay),
        Ok(Answer::Failed { message }) => message,
        Err(e) => e.to_string(),
        Ok(a) => format!("unexpected answer {a:?}"),
    };
    if diff == DiffMethod::Overlay {
        return Err(SessionError::NoOverlay { why });
    }
    Ok(Chosen::Snapshot { why: Some(why) })
}

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
pub struct StepRunner<'a> {
    store: &'a Store,
    workers: &'a Workers,
    method: Method,
    max_layer_size: u64,
    sink: &'a dyn Sink,
}

/// A step's scratch directory, removed (through a worker: it may hold
/// files of subordinate ids) however the step ends. An early error return,
/// such as a base layer refused while it is unpacked, must not leave it
/// behind for `fsck` to report as the leftover of an interrupted write.
struct Scratch<'w> {
    unpacker: Unpacker<'w>,
    path: PathBuf,
}

impl Drop for Scratch<'_> {
    fn drop(&mut self) {
        self.unpacker.remove(std::mem::take(&mut self.path));
    }
}

impl<'a> StepRunner<'a> {
    /// Whether steps run on overlay lowerdirs (each layer unpacked once into
    /// the store), not on the snapshot method's copied tree.
    pub fn uses_overlay(&self) -> bool {
        matches!(self.method, Method::Overlay)
    }

    /// Chooses overlay or snapshot (probing overlay in a worker) and says which.
    pub fn new(
        store: &'a Store,
        workers: &'a Workers,
        diff: DiffMethod,
        max_layer_size: u64,
        sink: &'a dyn Sink,
    ) -> Result<StepRunner<'a>, SessionError> {
        let method = match choose_method(store, workers, diff)? {
            Chosen::Overlay => {
                sink.emit(&Event::Info {
                    message: "diff method: overlay upperdir".into(),
                });
                Method::Overlay
            }
            Chosen::Snapshot { why } => {
                sink.emit(&match why {
                    None => Event::Info {
                        message: "diff method: snapshot (copied tree, stat comparison)".into(),
                    },
                    Some(why) => Event::Warning {
                        message: format!(
                            "overlay not available ({why}): falling back to the snapshot diff (a copied tree compared before and after each step; slower)"
                        ),
                    },
                });
                Method::Snapshot {
                    tree: store.temp_dir()?.join("rootfs"),
                    applied: 0,
                }
            }
        };
        Ok(StepRunner {
            store,
            workers,
            method,
            max_layer_size,
            sink,
        })
    }

    /// Runs one step on top of `layers`, with `mounts` bound into it.
    #[allow(clippy::too_many_arguments)]
    pub fn run_step(
        &mut self,
        layers: &[LayerInfo],
        mut action: Action,
        mounts: Vec<BindMount>,
        images: &[ImageUse],
        network: Network,
        host: HostEnv,
        settings: &LayerSettings,
        timeout_secs: Option<u64>,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<StepResult, SessionError> {
        let tmp = self.store.temp_dir()?;
        let _scratch = Scratch {
            // Its own copy of the references: `self` is borrowed mutably below.
            unpacker: Unpacker {
                store: self.store,
                workers: self.workers,
                max_layer_size: self.max_layer_size,
                sink: self.sink,
            },
            path: tmp.clone(),
        };
        let image_mounts = self.image_mounts(images, &mut action, &tmp)?;
        match &mut self.method {
            Method::Overlay => {
                let lowerdirs = self.unpacker().lowerdirs(layers, &tmp)?;
                let upper = tmp.join("upper");
                let work = tmp.join("work");
                for d in [&upper, &work] {
                    std::fs::create_dir_all(d)
                        .map_err(|e| SessionError::io(format!("{}", d.display()), e))?;
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
                    image_mounts: image_mounts.clone(),
                    timeout_secs,
                    stdio: StdioMode::Step,
                    hostname: None,
                    pid_file: None,
                    no_new_privs: true,
                };
                let answer = self.step(spec, Diff::Upperdir(upper.clone()), settings, on_line)?;
                if let StepResult::Layer(l) = &answer {
                    // The upperdir is already the layer in overlay form: keep
                    // it as the layer's lowerdir instead of unpacking the blob.
                    self.store.commit_layer_dir(&upper, &l.diff_id)?;
                }
                Ok(answer)
            }
            Method::Snapshot { tree, applied } => {
                let tree = tree.clone();
                for l in &layers[*applied..] {
                    self.unpacker().unpack(l, Unpack::Flatten, &tree)?;
                }
                let spec = RunSpec {
                    rootfs: Rootfs::Directory(tree.clone()),
                    action,
                    network,
                    host,
                    fake_root: settings.fake_root,
                    mounts,
                    image_mounts: image_mounts.clone(),
                    timeout_secs,
                    stdio: StdioMode::Step,
                    hostname: None,
                    pid_file: None,
                    no_new_privs: true,
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
        }
    }

    /// The lowerdirs of each image a step reads: its unpacked layers with an
    /// overlay, else one flattened copy (the snapshot method's kernels may
    /// lack overlayfs). A copy source is mounted on an empty directory under
    /// `tmp` that becomes the action's tree.
    fn image_mounts(
        &self,
        images: &[ImageUse],
        action: &mut Action,
        tmp: &std::path::Path,
    ) -> Result<Vec<ImageMount>, SessionError> {
        let mut out = Vec::new();
        for (i, image) in images.iter().enumerate() {
            let lowerdirs = match self.method {
                Method::Overlay => self
                    .unpacker()
                    .lowerdirs(&image.layers, &tmp.join(format!("image-{i}")))?,
                Method::Snapshot { .. } => {
                    let tree = tmp.join(format!("image-{i}/tree"));
                    std::fs::create_dir_all(&tree)
                        .map_err(|e| SessionError::io(format!("{}", tree.display()), e))?;
                    for l in &image.layers {
                        self.unpacker().unpack(l, Unpack::Flatten, &tree)?;
                    }
                    vec![tree]
                }
            };
            match (&image.at, &mut *action) {
                (ImageAt::CopySource, Action::CopyFiles(c)) => {
                    let root = tmp.join(format!("image-{i}/root"));
                    std::fs::create_dir_all(&root)
                        .map_err(|e| SessionError::io(format!("{}", root.display()), e))?;
                    c.root = root;
                    c.source_layers = lowerdirs;
                }
                (
                    ImageAt::Mount {
                        source,
                        target,
                        writable,
                    },
                    _,
                ) => {
                    // An overlay's writes need an upper layer; a flattened
                    // copy is the step's own already.
                    let scratch = match (writable, &self.method) {
                        (true, Method::Overlay) => {
                            let dir = tmp.join(format!("image-{i}/rw"));
                            for d in [dir.join("upper"), dir.join("work")] {
                                std::fs::create_dir_all(&d)
                                    .map_err(|e| SessionError::io(format!("{}", d.display()), e))?;
                            }
                            Some(dir)
                        }
                        _ => None,
                    };
                    out.push(ImageMount {
                        lowerdirs,
                        source: source.clone(),
                        target: target.clone(),
                        writable: *writable,
                        scratch,
                    })
                }
                (ImageAt::CopySource, _) => {
                    return Err(SessionError::Worker(
                        "an image copy source needs a copy action".into(),
                    ));
                }
            }
        }
        Ok(out)
    }

    fn step(
        &self,
        spec: RunSpec,
        diff: Diff,
        settings: &LayerSettings,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<StepResult, SessionError> {
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
            Answer::Failed { message } => Err(SessionError::Worker(message)),
            other => Err(SessionError::Worker(format!(
                "unexpected worker answer {other:?}"
            ))),
        }
    }

    fn unpacker(&self) -> Unpacker<'_> {
        Unpacker {
            store: self.store,
            workers: self.workers,
            max_layer_size: self.max_layer_size,
            sink: self.sink,
        }
    }

    fn remove(&self, path: PathBuf) {
        self.unpacker().remove(path);
    }

    /// Cleans up the snapshot tree, if any.
    pub fn finish(self) {
        if let Method::Snapshot { tree, .. } = &self.method
            && let Some(parent) = tree.parent()
        {
            self.remove(parent.to_path_buf());
        }
    }
}
