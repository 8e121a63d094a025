//! The step loop shared by recipes and Containerfile stages: for each
//! planned step, a cache lookup (local store, then the registry caches),
//! else a run in the sandbox whose diff becomes the step's layer; config
//! steps change the image config and make no layer.

use std::collections::VecDeque;
use std::time::Instant;

use super::{BuildError, BuildOptions, offline, remote_cache, secrets, toolbox};
use crate::digest::Digest;
use crate::image::{Derived, ImageConfig};
use crate::media::LayerInfo;
use crate::mirror::Mirrors;
use crate::plan::{LayerSettings, PlannedStep, chain_id};
use crate::progress::{Event, Sink};
use crate::recipe::{ConfigChange, FilesFrom, StepKind};
use crate::sandbox::{Action, CopyFiles, HostEnv, Network};
use crate::session::{ImageAt, ImageUse, StepResult, StepRunner, Unpacker, Workers};
use crate::store::{CacheEntry, RemoteLayer, Store};

/// What every step of a build shares.
pub(crate) struct StepCx<'a> {
    pub opts: &'a BuildOptions,
    pub store: &'a Store,
    pub workers: &'a Workers,
    pub settings: LayerSettings,
    pub mirrors: &'a Mirrors,
    pub network: Network,
    pub secrets: &'a secrets::Secrets,
    pub fetcher: &'a crate::artifact::Fetcher,
    pub sink: &'a dyn Sink,
    pub cache_from: Vec<String>,
    /// Shared with the stages that run at once (see [`StepCx::for_stage`]).
    pub cache_client: Option<std::sync::Arc<crate::registry::Registry>>,
    /// Every step's key and layer, for `--cache-to`.
    pub records: Vec<(Digest, CacheEntry)>,
    pub cached_steps: usize,
    pub total: usize,
    /// Steps numbered across stages, as progress shows them.
    pub next_number: usize,
    pub checked_offline: bool,
    /// The registry the built image is pushed to, when every layer it
    /// needs from there may stay there: a lazy step-cache hit from that
    /// registry is then never downloaded (the push mounts it).
    pub keep_remote_on: Option<String>,
    /// Keys whose registry record turned out unusable when its layer was
    /// fetched: looked up no more in this build.
    pub refused: std::collections::BTreeSet<Digest>,
    /// Registry hits not yet written to the store (its cache entry and the
    /// note of where the layer is): written together, before anything
    /// reads them (see [`StepCx::flush_hits`]), so that a chain of hits
    /// does not wait on two fsyncs each.
    pub unwritten: Vec<(Digest, CacheEntry, RemoteLayer)>,
    /// Set when a stage running beside this one failed: no further step
    /// starts (the one running finishes).
    pub stop: Option<&'a std::sync::atomic::AtomicBool>,
}

impl<'a> StepCx<'a> {
    /// A context for one stage run on its own thread beside others: the
    /// same build, its steps numbered from `first_number` on, its records
    /// and counts its own until [`StepCx::absorb`] takes them back.
    pub(crate) fn for_stage(
        &self,
        first_number: usize,
        stop: &'a std::sync::atomic::AtomicBool,
    ) -> StepCx<'a> {
        StepCx {
            opts: self.opts,
            store: self.store,
            workers: self.workers,
            settings: self.settings,
            mirrors: self.mirrors,
            network: self.network,
            secrets: self.secrets,
            fetcher: self.fetcher,
            sink: self.sink,
            cache_from: self.cache_from.clone(),
            cache_client: self.cache_client.clone(),
            records: Vec::new(),
            cached_steps: 0,
            total: self.total,
            next_number: first_number,
            checked_offline: self.checked_offline,
            // A stage other stages read from needs its layers here.
            keep_remote_on: None,
            refused: self.refused.clone(),
            unwritten: Vec::new(),
            stop: Some(stop),
        }
    }

    /// Takes back what a stage's context (from [`StepCx::for_stage`]) did.
    pub(crate) fn absorb(&mut self, stage: StepCx<'a>) {
        self.records.extend(stage.records);
        self.cached_steps += stage.cached_steps;
        self.checked_offline |= stage.checked_offline;
    }
}

/// Other stages and images a stage's steps read: their layers by index of
/// stage, and images resolved by reference.
#[derive(Default)]
pub(crate) struct Sources {
    pub stages: Vec<Option<Vec<LayerInfo>>>,
    pub images: Vec<(String, Vec<LayerInfo>)>,
}

impl Sources {
    fn layers(&self, from: &FilesFrom) -> Result<Vec<LayerInfo>, BuildError> {
        match from {
            FilesFrom::Stage(i) => self.stages.get(*i).and_then(Clone::clone).ok_or_else(|| {
                BuildError::BadInput(format!("stage {i} was not built before it is used"))
            }),
            FilesFrom::Image(r) => self
                .images
                .iter()
                .find(|(n, _)| n == r)
                .map(|(_, l)| l.clone())
                .ok_or_else(|| BuildError::BadInput(format!("image {r} was not resolved"))),
            FilesFrom::Context(_)
            | FilesFrom::Staged(_)
            | FilesFrom::Url { .. }
            | FilesFrom::Git { .. } => Ok(Vec::new()),
        }
    }
}

/// What an ADD fetched (on the host, as the build's user): removed with
/// this value, whether the step ran or came from the cache.
struct Fetched {
    dir: std::path::PathBuf,
    /// The tree the copy reads (`dir`, or its clone).
    root: std::path::PathBuf,
}

impl Drop for Fetched {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Keeps the last lines of a step's output for the failure report.
struct Tail {
    lines: VecDeque<String>,
    cap: usize,
}

impl Tail {
    fn new(cap: usize) -> Tail {
        Tail {
            lines: VecDeque::with_capacity(cap),
            cap,
        }
    }

    fn push(&mut self, line: &str) {
        if self.lines.len() == self.cap {
            self.lines.pop_front();
        }
        self.lines.push_back(line.to_string());
    }
}

impl StepCx<'_> {
    /// An ADD's URL or git repository, fetched into a directory of its own.
    fn fetch_remote(&self, from: &FilesFrom) -> Result<Fetched, BuildError> {
        match from {
            FilesFrom::Url {
                url,
                checksum,
                name,
            } => {
                let dir = self.fetch_url(url, checksum.as_ref(), name)?;
                Ok(Fetched {
                    root: dir.clone(),
                    dir,
                })
            }
            FilesFrom::Git {
                url,
                reference,
                keep_git_dir,
            } => {
                let dir = self.clone_git(url, reference.as_deref(), *keep_git_dir)?;
                Ok(Fetched {
                    root: dir.join("src"),
                    dir,
                })
            }
            _ => Err(BuildError::BadInput(
                "only a URL or a git repository is fetched".into(),
            )),
        }
    }

    /// `ADD` of a git repository: a shallow clone (a full one for a commit
    /// id) into `DIR/src`, without `.git` unless asked to keep it.
    fn clone_git(
        &self,
        url: &str,
        reference: Option<&str>,
        keep_git_dir: bool,
    ) -> Result<std::path::PathBuf, BuildError> {
        let dir = self.store.temp_dir()?;
        let src = dir.join("src");
        let shown = crate::mirror::redact(url);
        let commit =
            reference.filter(|r| r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit()));
        let mut clone = std::process::Command::new("git");
        clone.args(["clone", "--quiet"]);
        if commit.is_none() {
            clone.args(["--depth", "1"]);
            if let Some(r) = reference {
                clone.args(["--branch", r]);
            }
        }
        clone.arg("--").arg(url).arg(&src);
        let run = |cmd: &mut std::process::Command| -> Result<(), BuildError> {
            let out = cmd.stdin(std::process::Stdio::null()).output().map_err(|e| {
                BuildError::BadInput(format!(
                    "ADD {shown}: cannot run git ({e}): install git on the build host (apt-get install git)"
                ))
            })?;
            if out.status.success() {
                return Ok(());
            }
            let why = String::from_utf8_lossy(&out.stderr);
            Err(BuildError::BadInput(format!(
                "ADD {shown}: git failed: {}",
                crate::quote::excerpt_n(&crate::mirror::redact(why.trim()), 300)
            )))
        };
        run(&mut clone)?;
        if let Some(c) = commit {
            run(std::process::Command::new("git")
                .arg("-C")
                .arg(&src)
                .args(["checkout", "--quiet", c]))?;
        }
        if !keep_git_dir {
            let _ = std::fs::remove_dir_all(src.join(".git"));
        }
        Ok(dir)
    }

    /// `ADD URL`: the file in a directory of its own (as `name`, 0600),
    /// checked against `checksum` when there is one.
    fn fetch_url(
        &self,
        url: &str,
        checksum: Option<&Digest>,
        name: &str,
    ) -> Result<std::path::PathBuf, BuildError> {
        let dir = self.store.temp_dir()?;
        let file = dir.join(name);
        let got = self.fetcher.download_url(url, &file)?;
        if let Some(want) = checksum
            && *want != got
        {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(BuildError::BadInput(format!(
                "ADD {}: the download has {got}, but --checksum pins {want}: the file changed or the checksum is wrong",
                crate::mirror::redact(url)
            )));
        }
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(|e| {
                BuildError::BadInput(format!("ADD {}: {e}", crate::mirror::redact(url)))
            })?;
        Ok(dir)
    }

    /// This store's cache entry of `key`, unless it names a layer that is
    /// only in a registry and this build found that layer unusable (the
    /// step runs instead: taking the entry again would go round forever).
    fn local_hit(&self, key: &Digest) -> Result<Option<CacheEntry>, BuildError> {
        Ok(self
            .store
            .cache_get(key)?
            .filter(|hit| !self.refused.contains(key) || self.store.has_blob(&hit.layer.digest)))
    }

    fn cached_layer(&mut self, key: &Digest) -> Result<Option<CacheEntry>, BuildError> {
        if self.opts.no_cache {
            return Ok(None);
        }
        if let Some(hit) = self.local_hit(key)? {
            return Ok(Some(hit));
        }
        if self.refused.contains(key) {
            return Ok(None);
        }
        for repo in &self.cache_from {
            if let Some(client) = &self.cache_client
                && let Some((hit, remote)) = remote_cache::lookup(client, repo, key, self.sink)
            {
                self.sink.emit(&Event::Info {
                    message: format!("step cache: layer {} from {repo}", hit.layer.digest.short()),
                });
                self.unwritten.push((key.clone(), hit.clone(), remote));
                return Ok(Some(hit));
            }
        }
        Ok(None)
    }

    /// Writes the registry hits of [`StepCx::unwritten`] into the store, at
    /// once (their fsyncs overlap).
    fn flush_hits(&mut self) -> Result<(), BuildError> {
        let hits = std::mem::take(&mut self.unwritten);
        let store = self.store;
        for batch in hits.chunks(8) {
            self.write_hits(store, batch)?;
        }
        Ok(())
    }

    fn write_hits(
        &self,
        store: &Store,
        batch: &[(Digest, CacheEntry, RemoteLayer)],
    ) -> Result<(), BuildError> {
        let written: Vec<Result<(), crate::store::StoreError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = batch
                .iter()
                .map(|(key, hit, remote)| {
                    scope.spawn(move || {
                        if !store.has_blob(&hit.layer.digest) {
                            store.put_remote_layer(remote)?;
                        }
                        store.cache_put(key, hit)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(crate::store::StoreError::io(
                            store.root(),
                            std::io::Error::other(
                                "a cache write's thread panicked; this is a bug in boxwright",
                            ),
                        ))
                    })
                })
                .collect()
        });
        for w in written {
            w?;
        }
        Ok(())
    }

    /// Fetches the layers among `layers` that the store holds only in a
    /// registry (lazy step-cache hits), except, with `at_end`, those the
    /// image's push will mount (whose presence there is asked instead).
    /// With `stream`, layers not yet unpacked are unpacked as they download.
    ///
    /// A layer of one of this stage's hits that cannot be had (its content
    /// is not what its record claims, it is gone, or the registry fails)
    /// makes that hit a miss: the hit to go back to, the lowest such, is
    /// returned. Any other layer (a base image's) that cannot be fetched
    /// fails the build.
    fn fetch_lazy(
        &mut self,
        lazy: &mut Vec<LazyHit>,
        layers: &[LayerInfo],
        at_end: bool,
        stream: bool,
    ) -> Result<Option<LazyHit>, BuildError> {
        use crate::registry::RegistryError;
        // The notes of where layers are must be on disk before they are
        // read (and before a fetch drops one).
        self.flush_hits()?;
        let store = self.store;
        let keep_on = self.keep_remote_on.clone().filter(|_| at_end);
        let kept = |r: &RemoteLayer| {
            keep_on.as_deref().is_some_and(|host| {
                r.repository
                    .parse::<crate::registry::Reference>()
                    .is_ok_and(|from| from.registry() == host)
            })
        };
        let mut outcomes: Vec<(Digest, String, Result<(), RegistryError>)> = Vec::new();
        // A hit whose layer is neither here nor noted as held by a registry
        // (another build dropped the note): nothing to fetch it from.
        for h in lazy.iter() {
            if layers.iter().any(|l| l.digest == h.layer)
                && !store.has_blob(&h.layer)
                && store.remote_layer(&h.layer).is_none()
            {
                outcomes.push((
                    h.layer.clone(),
                    String::new(),
                    Err(RegistryError::Invalid(format!(
                        "its layer {} is no longer noted as held by a registry",
                        h.layer.short()
                    ))),
                ));
            }
        }
        let remote = store.remote_only(layers);
        if outcomes.is_empty() && remote.is_empty() {
            if !at_end {
                lazy.clear();
            }
            return Ok(None);
        }
        if outcomes.is_empty() {
            let client = match &self.cache_client {
                Some(c) => c.clone(),
                None => {
                    let c = std::sync::Arc::new(
                        super::remote::client(&self.opts.registry, self.store)
                            .map_err(BuildError::RemoteLayer)?,
                    );
                    self.cache_client = Some(c.clone());
                    c
                }
            };
            let report = super::remote::transfer_reporter(self.sink);
            let (keep, fetch): (Vec<RemoteLayer>, Vec<RemoteLayer>) =
                remote.into_iter().partition(|r| kept(r));
            // Layers a step runs on are unpacked as they stream in, one
            // after another (each holds a worker); the rest come at once.
            let (streamed, plain): (Vec<RemoteLayer>, Vec<RemoteLayer>) = fetch
                .into_iter()
                .partition(|r| stream && !at_end && !store.has_layer_dir(&r.layer.diff_id));
            for r in streamed {
                let fetched = self.fetch_unpacking(&client, &r, &report);
                let failed = fetched.is_err();
                outcomes.push((r.layer.digest.clone(), r.repository.clone(), fetched));
                if failed {
                    break;
                }
            }
            if outcomes.iter().all(|(_, _, o)| o.is_ok()) {
                // Fetched, or (kept) asked whether the registry still has it.
                let fetched = crate::registry::fetch_remote_layers(&client, store, &plain, &report);
                let present = crate::registry::check_remote_layers(&client, &keep);
                for (r, o) in plain.iter().zip(fetched).chain(keep.iter().zip(present)) {
                    outcomes.push((r.layer.digest.clone(), r.repository.clone(), o));
                }
            }
        }
        // The lowest layer that failed decides (the hits above it go too).
        let order = |d: &Digest| layers.iter().position(|l| l.digest == *d);
        outcomes.sort_by_key(|(d, _, _)| order(d));
        for (digest, repository, outcome) in outcomes {
            let Err(e) = outcome else {
                continue;
            };
            let Some(pos) = lazy.iter().position(|h| h.layer == digest) else {
                return Err(BuildError::RemoteLayer(e));
            };
            let back = lazy.swap_remove(pos);
            // Hits below it stay pending, their layers still to fetch.
            lazy.retain(|h| h.index < back.index);
            // The record itself is wrong (its layer's content, size or
            // presence): its note and this store's entry go. A registry
            // that fails is no verdict on it: they stay for later builds.
            let wrong = match &e {
                RegistryError::LayerContent { .. }
                | RegistryError::DigestMismatch { .. }
                | RegistryError::SizeMismatch { .. }
                | RegistryError::Invalid(_) => true,
                other => other.status() == Some(404),
            };
            let why = match &e {
                RegistryError::LayerContent { .. } => {
                    "its layer's content is not the diff_id it claims".to_string()
                }
                RegistryError::Invalid(why) => why.clone(),
                e => crate::quote::excerpt_n(&e.to_string(), 200),
            };
            let from = if repository.is_empty() {
                String::new()
            } else {
                format!(" in {repository}")
            };
            self.sink.emit(&Event::Warning {
                message: format!(
                    "cache record for step key {}{from} is not usable ({why}): running the step",
                    back.key.short(),
                ),
            });
            if wrong {
                store.forget_remote_layer(&digest)?;
                store.cache_remove(&back.key)?;
            }
            self.refused.insert(back.key.clone());
            return Ok(Some(back));
        }
        if !at_end {
            lazy.clear();
        }
        Ok(None)
    }

    /// Fetches a layer a step runs on and unpacks it while it streams in:
    /// the download goes into the store and, through a fifo, to the unpack
    /// (which checks the content against the diff_id too), so the layer is
    /// read off the network once and unpacked once. The result is the
    /// fetch's: should the streamed unpack fail while the download
    /// succeeds, the step's own unpack from the stored blob says why.
    fn fetch_unpacking(
        &self,
        client: &crate::registry::Registry,
        r: &RemoteLayer,
        report: &(dyn Fn(crate::registry::TransferEvent) + Send + Sync),
    ) -> Result<(), crate::registry::RegistryError> {
        let unpacker = Unpacker {
            store: self.store,
            workers: self.workers,
            max_layer_size: self.opts.max_layer_size,
            sink: self.sink,
        };
        let Ok(tmp) = self.store.temp_dir() else {
            return crate::registry::fetch_remote_layer(client, self.store, r, report);
        };
        let fifo = tmp.join("blob");
        let made = nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600));
        let fetched = match made {
            Ok(()) => std::thread::scope(|scope| {
                let unpack = scope.spawn(|| unpacker.ensure_unpacked_from(&r.layer, Some(&fifo)));
                let tee = open_fifo_writer(&fifo, &|| unpack.is_finished());
                let fetched =
                    crate::registry::fetch_remote_layer_teeing(client, self.store, r, report, tee);
                // An unpack still waiting for a writer (none was opened)
                // gets one that closes at once, and ends.
                while !unpack.is_finished() {
                    drop(open_fifo_writer(&fifo, &|| true));
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                let _ = unpack.join();
                fetched
            }),
            // No fifo here: the step unpacks from the store.
            Err(_) => crate::registry::fetch_remote_layer(client, self.store, r, report),
        };
        let _ = std::fs::remove_dir_all(&tmp);
        fetched
    }

    /// Runs `steps` on `image`, adding their layers and config changes.
    /// `args` are the recipe's build arguments (every step's environment);
    /// a Containerfile's are in each run step's own env.
    pub(crate) fn run_steps(
        &mut self,
        image: &mut Derived,
        steps: &[PlannedStep],
        args: &[(String, String)],
        sources: &Sources,
        epoch: u64,
    ) -> Result<(), BuildError> {
        let sink = self.sink;
        let mut runner: Option<StepRunner> = None;
        let mut run_env = env_for_steps(&image.config, args);
        // Hits whose layers are still only in a registry, with the state to
        // go back to should one's layer turn out unusable when fetched.
        let mut lazy: Vec<LazyHit> = Vec::new();
        let mut i = 0;
        loop {
            let Some(planned) = steps.get(i) else {
                // The stage's image is done: what it needs here is fetched.
                match self.fetch_lazy(&mut lazy, &image.layers, true, false)? {
                    Some(back) => {
                        i = self.go_back(back, image, &mut run_env);
                        continue;
                    }
                    None => break,
                }
            };
            i += 1;
            if self
                .stop
                .is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst))
            {
                return Err(BuildError::Stopped);
            }
            self.next_number += 1;
            let mut ps = planned.clone();
            ps.number = self.next_number;
            let total = self.total;
            if let StepKind::Config(change) = &ps.step.kind {
                apply_config(&mut image.config, change);
                image.config.push_empty_history(&ps.created_by, epoch);
                run_env = env_for_steps(&image.config, args);
                sink.emit(&Event::StepCached {
                    step: ps.number,
                    total,
                    description: ps.step.summary(),
                    layer: Digest::of(b""),
                });
                self.cached_steps += 1;
                continue;
            }
            let cwd = working_dir(&image.config);
            let user = if ps.step.options.image_user {
                image
                    .config
                    .config
                    .as_ref()
                    .and_then(|c| c.user.clone())
                    .unwrap_or_default()
            } else {
                String::new()
            };
            // What the step reads from other stages and images.
            let mut images: Vec<ImageUse> = Vec::new();
            let mut with: Vec<Option<Digest>> = Vec::new();
            if let StepKind::Files(f) = &ps.step.kind {
                if matches!(f.from, FilesFrom::Stage(_) | FilesFrom::Image(_)) {
                    let layers = sources.layers(&f.from)?;
                    with.push(chain_id(&diff_ids(&layers)));
                    images.push(ImageUse {
                        layers,
                        at: ImageAt::CopySource,
                    });
                }
                if ps.inputs.is_none()
                    && let FilesFrom::Staged(dir) = &f.from
                {
                    ps.inputs = Some(crate::plan::hash_tree(dir).map_err(|e| {
                        BuildError::BadInput(format!("cannot read {}: {e}", dir.display()))
                    })?);
                }
            }
            // ADD's remote sources: a URL with a pinned checksum is keyed
            // by it and fetched only to run; an unpinned URL and a git
            // repository are fetched now, as their content is the key.
            let mut fetched: Option<Fetched> = None;
            if let StepKind::Files(f) = &ps.step.kind {
                match &f.from {
                    FilesFrom::Url {
                        checksum: Some(sum),
                        ..
                    } => ps.inputs = Some(sum.clone()),
                    FilesFrom::Url { .. } | FilesFrom::Git { .. } => {
                        let got = self.fetch_remote(&f.from)?;
                        ps.inputs = Some(
                            crate::plan::hash_tree(&got.root)
                                .map_err(|e| BuildError::BadInput(format!("{}: {e}", f.text)))?,
                        );
                        fetched = Some(got);
                    }
                    _ => {}
                }
            }
            for b in &ps.step.options.binds {
                let layers = sources.layers(&b.from)?;
                with.push(chain_id(&diff_ids(&layers)));
                images.push(ImageUse {
                    layers,
                    at: ImageAt::Mount {
                        source: b.source.clone(),
                        target: b.target.clone(),
                        writable: b.writable,
                    },
                });
            }
            let parent = chain_id(&diff_ids(&image.layers));
            let step_env = step_env(&run_env, &ps.step.kind);
            let key = if ps.step.options.image_user {
                ps.cache_key_in(
                    parent.as_ref(),
                    &step_env,
                    &self.settings,
                    &cwd,
                    &user,
                    &with,
                )
            } else {
                ps.cache_key(parent.as_ref(), &step_env, &self.settings)
            };
            // Another build of this store running the same step holds its
            // lock: wait, then take its layer from the cache.
            let mut key_lock = None;
            let mut hit = self.cached_layer(&key)?;
            if hit.is_none() && !self.opts.no_cache {
                key_lock = Some(match self.store.try_lock_key(&key)? {
                    Some(l) => l,
                    None => {
                        sink.emit(&Event::Info {
                            message: format!(
                                "step {}: another build is running the same step; waiting for it",
                                ps.number
                            ),
                        });
                        self.store.lock_key(&key)?
                    }
                });
                hit = self.local_hit(&key)?;
            }
            if let Some(hit) = hit {
                if !self.store.has_blob(&hit.layer.digest) {
                    lazy.push(LazyHit {
                        index: i - 1,
                        image: image.clone(),
                        run_env: run_env.clone(),
                        next_number: self.next_number - 1,
                        records: self.records.len(),
                        cached_steps: self.cached_steps,
                        key: key.clone(),
                        layer: hit.layer.digest.clone(),
                    });
                }
                sink.emit(&Event::StepCached {
                    step: ps.number,
                    total,
                    description: ps.step.summary(),
                    layer: hit.layer.digest.clone(),
                });
                self.records.push((key, hit.clone()));
                image.add_layer(hit.layer, &ps.created_by, epoch);
                toolbox::apply_step_env(&mut image.config, &ps);
                run_env = env_for_steps(&image.config, args);
                self.cached_steps += 1;
                continue;
            }
            if self.opts.offline && !self.checked_offline {
                offline::check(&steps[i - 1..], self.mirrors)?;
                self.checked_offline = true;
            }
            let description = ps.step.summary();
            let r = match &mut runner {
                Some(r) => r,
                None => runner.insert(StepRunner::new(
                    self.store,
                    self.workers,
                    self.opts.diff,
                    self.opts.max_layer_size,
                    sink,
                )?),
            };
            // The step runs on its lowers and reads its sources: layers of
            // them still in a registry are fetched now (on overlay, each
            // unpacked as it streams in).
            let mut needed = image.layers.clone();
            needed.extend(images.iter().flat_map(|u| u.layers.iter().cloned()));
            if let Some(back) = self.fetch_lazy(&mut lazy, &needed, false, r.uses_overlay())? {
                drop(key_lock);
                i = self.go_back(back, image, &mut run_env);
                continue;
            }
            sink.emit(&Event::StepStarted {
                step: ps.number,
                total,
                description: description.clone(),
            });
            let started = Instant::now();
            // Secret env values go to the step alone: not into `step_env`, which
            // makes the cache key.
            let given = self.secrets.for_step(&ps)?;
            let mut action_env = step_env.clone();
            action_env.extend(given.env);
            if let StepKind::Files(f) = &ps.step.kind
                && matches!(f.from, FilesFrom::Url { .. } | FilesFrom::Git { .. })
                && fetched.is_none()
            {
                fetched = Some(self.fetch_remote(&f.from)?);
            }
            let action = match &ps.step.kind {
                StepKind::Run { command, .. } => Action::Exec {
                    argv: command.argv(),
                    env: action_env,
                    cwd: cwd.clone(),
                    uid: 0,
                    gid: 0,
                    // A Containerfile's steps run as the image's user, root
                    // by default, with that user's groups (as runc sets them).
                    user: match (ps.step.options.image_user, user.is_empty()) {
                        (true, true) => Some("0".to_string()),
                        (true, false) => Some(user.clone()),
                        (false, _) => None,
                    },
                },
                StepKind::Copy(c) => Action::Copy {
                    src: c.src.clone(),
                    dest: c.dest.clone(),
                    mode: c.mode,
                    owner: c.owner,
                },
                StepKind::Files(f) => Action::CopyFiles(CopyFiles {
                    root: match &f.from {
                        FilesFrom::Context(d) | FilesFrom::Staged(d) => d.clone(),
                        FilesFrom::Url { .. } | FilesFrom::Git { .. } => {
                            fetched.as_ref().map(|f| f.root.clone()).unwrap_or_default()
                        }
                        // Set by the step runner to where it mounts the source.
                        FilesFrom::Stage(_) | FilesFrom::Image(_) => std::path::PathBuf::new(),
                    },
                    source_layers: Vec::new(),
                    sources: f.sources.clone(),
                    excludes: f.excludes.clone(),
                    source_excludes: f.source_excludes.clone(),
                    dest: match f.dest.strip_prefix("./") {
                        Some(rel) => {
                            let mut d = crate::plan::containerfile::clean_abs(rel, &cwd);
                            if f.dest.ends_with('/') && !d.ends_with('/') {
                                d.push('/');
                            }
                            d
                        }
                        None => f.dest.clone(),
                    },
                    mode: f.mode,
                    chown: if f.chown_user {
                        Some(user.clone()).filter(|u| !u.is_empty())
                    } else {
                        f.chown.clone()
                    },
                    parents: f.parents,
                    extract: f.extract,
                }),
                StepKind::Config(_) => unreachable!("config steps make no layer"),
            };
            let (mut mounts, caches_held) =
                toolbox::step_mounts(&ps, self.store, self.fetcher, sink)?;
            mounts.extend(given.mounts);
            // tmpfs mounts: empty directories of the step's own, removed after it.
            let mut scratch = Vec::new();
            for target in &ps.step.options.tmpfs {
                let dir = self.store.temp_dir()?;
                mounts.push(crate::sandbox::BindMount {
                    source: dir.clone(),
                    target: target.clone(),
                    readonly: false,
                });
                scratch.push(dir);
            }
            let mut tail = Tail::new(20);
            let number = ps.number;
            let secrets = self.secrets;
            let mirrors = self.mirrors;
            let mut on_line = |line: &str| {
                let line = secrets.scrub(&mirrors.scrub(line));
                tail.push(&line);
                sink.emit(&Event::Log { step: number, line });
            };
            let host = HostEnv {
                mirrors: self.mirrors.clone(),
                offline: self.opts.offline,
                ..HostEnv::capture(self.opts.host_ca)
            };
            let network = if ps.step.options.no_network {
                Network::None
            } else {
                self.network
            };
            let outcome = r.run_step(
                &image.layers,
                action,
                mounts,
                &images,
                network,
                host,
                &self.settings,
                ps.step.timeout.or(self.opts.step_timeout),
                &mut on_line,
            );
            drop(caches_held);
            for dir in scratch {
                // Files of other ids may be there: the worker removes them.
                crate::session::Unpacker::for_store(self.store, self.workers, self.sink)
                    .remove(dir);
            }
            let layer = match outcome {
                Ok(StepResult::Layer(l)) => l,
                Ok(StepResult::Exit(code)) => {
                    return Err(BuildError::StepFailed {
                        step: ps.number,
                        command: description,
                        exit_code: code,
                        last_lines: tail.lines.into_iter().collect(),
                    });
                }
                Err(e) => {
                    return Err(BuildError::StepError {
                        step: ps.number,
                        command: description,
                        message: e.to_string(),
                    });
                }
            };
            let entry = CacheEntry {
                layer: layer.clone(),
                created_by: ps.created_by.clone(),
                created: epoch,
            };
            self.store.cache_put(&key, &entry)?;
            drop(key_lock);
            self.records.push((key, entry));
            sink.emit(&Event::StepFinished {
                step: ps.number,
                total,
                duration_ms: started.elapsed().as_millis() as u64,
                layer: layer.digest.clone(),
                size: layer.size,
            });
            image.add_layer(layer, &ps.created_by, epoch);
            toolbox::apply_step_env(&mut image.config, &ps);
            run_env = env_for_steps(&image.config, args);
        }
        if let Some(r) = runner {
            r.finish();
        }
        Ok(())
    }
}

/// A step-cache hit whose layer is still only in a registry, and the
/// state of the stage before it (to go back to, should the layer turn out
/// unusable when it is fetched).
struct LazyHit {
    /// The step's index in the stage.
    index: usize,
    image: Derived,
    run_env: Vec<(String, String)>,
    next_number: usize,
    records: usize,
    cached_steps: usize,
    key: Digest,
    /// The layer's blob digest.
    layer: Digest,
}

impl StepCx<'_> {
    /// Restores the stage to just before `back`'s step; returns its index.
    fn go_back(
        &mut self,
        back: LazyHit,
        image: &mut Derived,
        run_env: &mut Vec<(String, String)>,
    ) -> usize {
        *image = back.image;
        *run_env = back.run_env;
        self.next_number = back.next_number;
        self.records.truncate(back.records);
        self.cached_steps = back.cached_steps;
        back.index
    }
}

/// Opens `fifo` for writing once its reader has opened it; `None` if the
/// reader is `gone` first (it failed before reading) or the open fails.
fn open_fifo_writer(fifo: &std::path::Path, gone: &dyn Fn() -> bool) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    loop {
        // Non-blocking, so that a reader that never comes cannot hang the
        // build: ENXIO until it has opened its end.
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo)
        {
            Ok(f) => {
                // Writes block again (the unpack's pace is the download's).
                rustix::fs::fcntl_setfl(&f, rustix::fs::OFlags::empty()).ok()?;
                return Some(f);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) && !gone() => {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Err(_) => return None,
        }
    }
}

/// Applies a Containerfile config instruction as Docker records it.
fn apply_config(config: &mut ImageConfig, change: &ConfigChange) {
    if let ConfigChange::Maintainer(name) = change {
        config.author = Some(name.clone());
        return;
    }
    let c = config.config.get_or_insert_with(Default::default);
    match change {
        ConfigChange::Env(pairs) => {
            for (k, v) in pairs {
                let entry = format!("{k}={v}");
                match c
                    .env
                    .iter_mut()
                    .find(|e| e.split('=').next() == Some(k.as_str()))
                {
                    Some(e) => *e = entry,
                    None => c.env.push(entry),
                }
            }
        }
        ConfigChange::Label(pairs) => {
            for (k, v) in pairs {
                c.labels.insert(k.clone(), v.clone());
            }
        }
        ConfigChange::Workdir(dir) => {
            let base = c.working_dir.clone().unwrap_or_else(|| "/".into());
            c.working_dir = Some(crate::plan::containerfile::clean_abs(dir, &base));
        }
        ConfigChange::User(u) => c.user = Some(u.clone()),
        ConfigChange::Expose(ports) => {
            for p in ports {
                c.exposed_ports.insert(p.clone(), serde_json::json!({}));
            }
        }
        ConfigChange::Cmd(argv) => c.cmd = Some(argv.clone()),
        ConfigChange::Entrypoint { argv, reset_cmd } => {
            c.entrypoint = Some(argv.clone());
            if *reset_cmd {
                c.cmd = None;
            }
        }
        ConfigChange::Shell(argv) => {
            c.extra.insert("Shell".into(), serde_json::json!(argv));
        }
        ConfigChange::Volume(vols) => {
            for v in vols {
                c.volumes.insert(v.clone(), serde_json::json!({}));
            }
        }
        ConfigChange::StopSignal(s) => c.stop_signal = Some(s.clone()),
        ConfigChange::Healthcheck(h) => {
            c.extra.insert("Healthcheck".into(), h.clone());
        }
        ConfigChange::OnBuild(t) => {
            let list = c
                .extra
                .entry("OnBuild".to_string())
                .or_insert_with(|| serde_json::json!([]));
            if let Some(a) = list.as_array_mut() {
                a.push(serde_json::json!(t));
            }
        }
        ConfigChange::Arg | ConfigChange::Maintainer(_) => {}
    }
}

pub(crate) fn diff_ids(layers: &[LayerInfo]) -> Vec<Digest> {
    layers.iter().map(|l| l.diff_id.clone()).collect()
}

/// Where steps run: the image's working directory, else `/`.
fn working_dir(config: &ImageConfig) -> String {
    config
        .config
        .as_ref()
        .and_then(|c| c.working_dir.clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".to_string())
}

/// The environment steps run with: the image's, with a default PATH, and
/// the build arguments (which the image's own variables do not override,
/// as Docker's ARG and ENV of the same name behave).
fn env_for_steps(config: &ImageConfig, args: &[(String, String)]) -> Vec<(String, String)> {
    let mut env = config.env();
    for (k, v) in args {
        if !env.iter().any(|(ek, _)| ek == k) {
            env.push((k.clone(), v.clone()));
        }
    }
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".to_string(), crate::sandbox::DEFAULT_PATH.to_string()));
    }
    env
}

fn step_env(base: &[(String, String)], kind: &StepKind) -> Vec<(String, String)> {
    let mut env = base.to_vec();
    if let StepKind::Run { env: extra, .. } = kind {
        for (k, v) in extra {
            match env.iter_mut().find(|(ek, _)| ek == k) {
                Some(e) => e.1 = v.clone(),
                None => env.push((k.clone(), v.clone())),
            }
        }
    }
    env
}
