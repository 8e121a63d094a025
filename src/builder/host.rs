//! What every build opens before its steps, whatever its front end: the
//! registries config and download mirrors, the store (stale leftovers of
//! interrupted runs removed, then locked shared), the id mapping and its
//! namespace workers, the artifact fetcher; and, once the image is written,
//! its names, its push and the final events.

use super::{BuildError, BuildOptions, BuildOutcome, download_mirrors, normalize_tag, offline};
use super::{push, remote, secrets, steps, toolbox};
use crate::artifact::Fetcher;
use crate::media::Descriptor;
use crate::mirror::{Mirrors, Rule};
use crate::plan::LayerSettings;
use crate::progress::{Event, Phase, Sink};
use crate::registry::RegistriesConfig;
use crate::sandbox::{IdMapping, Network, Userns};
use crate::session::{Workers, clean_stale, evict_unpacked};
use crate::store::{Store, StoreLock};

pub(super) struct Host {
    pub registries: RegistriesConfig,
    pub mirrors: Mirrors,
    /// The network run steps get (`--offline` may take it away).
    pub network: Network,
    pub store: Store,
    pub mapping: IdMapping,
    pub workers: Workers,
    pub fetcher: Fetcher,
    /// Held for the whole build; declared last, so released last.
    _lock: StoreLock,
}

impl Host {
    pub fn open(opts: &BuildOptions, sink: &dyn Sink) -> Result<Host, BuildError> {
        let registries = opts.registry.load_config()?;
        let mirrors = download_mirrors(&registries, &opts.mirrors)?;
        if !mirrors.is_empty() {
            let rules: Vec<String> = mirrors.rules().iter().map(Rule::to_string).collect();
            sink.emit(&Event::Info {
                message: format!("download mirrors: {}", rules.join(", ")),
            });
        }
        let network = offline::step_network(opts.network, opts.offline, &mirrors);
        let store = Store::open(&opts.store)?;
        let mapping = IdMapping::detect()?;
        sink.emit(&Event::Info {
            message: format!("id mapping: {}", mapping.describe()),
        });
        let workers = Workers::new(opts.worker_exe.clone(), Userns::new(mapping.clone()));
        if let Some(freed) = clean_stale(&store, &workers)?
            && freed > 0
        {
            sink.emit(&Event::Info {
                message: format!(
                    "removed {} left in the store by interrupted runs",
                    crate::units::human_bytes(freed)
                ),
            });
        }
        let lock = store.lock_shared()?;
        let fetcher = toolbox::fetcher(opts, &store, &mirrors);
        Ok(Host {
            registries,
            mirrors,
            network,
            store,
            mapping,
            workers,
            fetcher,
            _lock: lock,
        })
    }

    /// The settings that change a layer's bytes, at `epoch`.
    pub fn settings(&self, opts: &BuildOptions, epoch: u64) -> LayerSettings {
        LayerSettings {
            compression: opts.compression,
            source_date_epoch: epoch,
            fake_root: self.mapping.fake_root(),
        }
    }

    /// The step context of a build: everything its steps share, and the
    /// registry caches it reads and fills.
    pub fn step_cx<'a>(
        &'a self,
        opts: &'a BuildOptions,
        settings: LayerSettings,
        secrets: &'a secrets::Secrets,
        sink: &'a dyn Sink,
        total: usize,
    ) -> Result<steps::StepCx<'a>, BuildError> {
        // `--cache-from` adds to registries.toml's (its `[[cache]]` tables
        // for this recipe, then its `cache_from`); `--cache-to` wins over its.
        let mut cache_from = opts.cache_from.clone();
        for r in self.registries.caches_for(&opts.recipe).0 {
            if !cache_from.contains(&r) {
                cache_from.push(r);
            }
        }
        let cache_client = if cache_from.is_empty() && self.cache_to(opts).is_none() {
            None
        } else {
            Some(std::sync::Arc::new(
                remote::client(&opts.registry, &self.store).map_err(BuildError::Push)?,
            ))
        };
        Ok(steps::StepCx {
            opts,
            store: &self.store,
            workers: &self.workers,
            settings,
            mirrors: &self.mirrors,
            network: self.network,
            secrets,
            fetcher: &self.fetcher,
            sink,
            cache_from,
            cache_client,
            records: Vec::new(),
            cached_steps: 0,
            total,
            next_number: 0,
            checked_offline: false,
            keep_remote_on: None,
            refused: Default::default(),
            unwritten: Vec::new(),
            stop: None,
        })
    }

    /// The registry the image goes to when step-cache layers from it may
    /// stay there (see `StepCx::keep_remote_on`): the build pushes to it,
    /// and any `--cache-to` is on it too (records mount their layers).
    pub fn keep_remote_on(&self, opts: &BuildOptions, first_name: Option<&str>) -> Option<String> {
        let host = |r: &str| {
            r.parse::<crate::registry::Reference>()
                .ok()
                .map(|r| r.registry().to_string())
        };
        let target = host(first_name.filter(|_| opts.push)?)?;
        match self.cache_to(opts) {
            Some(repo) if host(&repo).as_deref() != Some(target.as_str()) => None,
            _ => Some(target),
        }
    }

    fn cache_to(&self, opts: &BuildOptions) -> Option<String> {
        opts.cache_to
            .clone()
            .or_else(|| self.registries.caches_for(&opts.recipe).1)
    }

    /// After the steps: this build's trash emptied (upperdirs whose layer
    /// was already unpacked), and every step's record pushed to the
    /// `--cache-to` repository (a failure is a warning: the image is built).
    pub fn after_steps(&self, cx: &steps::StepCx<'_>) {
        crate::session::empty_own_trash(&self.store, &self.workers);
        let (Some(repo), Some(client)) = (self.cache_to(cx.opts), &cx.cache_client) else {
            return;
        };
        let mut pushed = 0;
        for (key, entry) in &cx.records {
            match super::remote_cache::push_record(client, &self.store, &repo, key, entry, cx.sink)
            {
                Ok(()) => pushed += 1,
                Err(e) => cx.sink.emit(&Event::Warning {
                    message: format!(
                        "--cache-to {repo}: {}",
                        crate::quote::excerpt_n(&e.to_string(), 200)
                    ),
                }),
            }
        }
        cx.sink.emit(&Event::Info {
            message: format!("step cache: {pushed} record(s) in {repo}"),
        });
    }

    /// The written image gets its names (`-t`, all of them), is pushed to
    /// the first with `--push`, and the build ends with `done` and `finished`.
    #[allow(clippy::too_many_arguments)]
    pub fn finish(
        self,
        opts: &BuildOptions,
        manifest: Descriptor,
        names: &Names,
        cached_steps: usize,
        total_steps: usize,
        sink: &dyn Sink,
    ) -> Result<BuildOutcome, BuildError> {
        for n in names.first.iter().chain(&names.more) {
            self.store.layout().tag(n, manifest.clone())?;
        }
        if let (true, Some(target)) = (opts.push, names.first.as_deref()) {
            push(&self.store, &manifest, target, &opts.registry, sink)?;
        }
        let Host {
            store,
            workers,
            _lock,
            ..
        } = self;
        // The bound needs the exclusive lock: ours goes first, and if other
        // builds still hold theirs, the last one out (or gc) evicts.
        drop(_lock);
        match evict_unpacked(&store, &workers, opts.max_unpacked) {
            Ok(Some(e)) if !e.evicted.is_empty() => sink.emit(&Event::Info {
                message: format!(
                    "evicted {} least recently used unpacked layer(s), {} (unpacked layers: {} of {} allowed)",
                    e.evicted.len(),
                    crate::units::human_bytes(e.bytes),
                    crate::units::human_bytes(e.remaining),
                    crate::units::human_bytes(opts.max_unpacked)
                ),
            }),
            Ok(_) => {}
            // The image is built and tagged: a failed eviction is for the
            // next build or gc, not a failed build.
            Err(e) => sink.emit(&Event::Warning {
                message: format!("could not evict unpacked layers: {e}"),
            }),
        }
        sink.emit(&Event::Phase { phase: Phase::Done });
        sink.emit(&Event::Finished {
            digest: manifest.digest.clone(),
            name: names.first.clone(),
            cached_steps,
            total_steps,
        });
        Ok(BuildOutcome {
            manifest,
            name: names.first.clone(),
            cached_steps,
            total_steps,
            build_id: String::new(),
        })
    }
}

/// `--label` (a config change with its history line) and `--annotation`
/// (after any annotation of the front end's own, so the user's wins).
pub(super) fn labels_and_annotations(
    image: &mut crate::image::Derived,
    opts: &BuildOptions,
    epoch: u64,
) {
    image.apply(
        &crate::image::ConfigOverrides {
            labels: opts.labels.clone(),
            ..Default::default()
        },
        "boxwright: --label",
        epoch,
    );
    for (k, v) in &opts.annotations {
        image.annotate(k, v.clone());
    }
}

/// The image's names from `-t`, normalized (`:latest` added), checked
/// before anything runs; `--push` needs one.
pub(super) struct Names {
    pub first: Option<String>,
    pub more: Vec<String>,
}

impl Names {
    pub fn from_opts(opts: &BuildOptions) -> Result<Names, BuildError> {
        let first = opts.tag.as_deref().map(normalize_tag).transpose()?;
        let more = opts
            .extra_tags
            .iter()
            .map(|t| normalize_tag(t))
            .collect::<Result<Vec<_>, _>>()?;
        if opts.push && first.is_none() {
            return Err(BuildError::BadInput(
                "--push needs -t REGISTRY/NAME[:TAG] to know where to push".into(),
            ));
        }
        Ok(Names { first, more })
    }
}
