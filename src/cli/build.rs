//! `boxwright build`.

use std::path::PathBuf;

use boxwright::builder::{BuildOptions, ContainerfileOptions};
use boxwright::media::Compression;
use boxwright::mirror::Rule;
use boxwright::progress::{Clock, sink_for};

use super::choices::{CompressionArg, DiffArg, NetworkArg};
use super::{CliResult, Failure, Global};

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// A recipe (*.toml), or the build context directory of a Containerfile
    /// (CONTEXT/Containerfile or CONTEXT/Dockerfile unless -f names one).
    /// With neither this nor -f, the current directory (podman's default).
    #[arg(value_name = "RECIPE|CONTEXT")]
    pub recipe: Option<PathBuf>,
    /// The recipe (*.toml) or the Containerfile/Dockerfile (its context is
    /// CONTEXT, else the directory the file is in, as podman and buildah do).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Containerfile: build this stage (and what it needs) instead of the last.
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// Containerfile: run up to N stages at once when none needs another's
    /// result (0: no limit; 1: one after another) [default: the number of CPUs].
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// The platform to build for; only the host's (e.g. linux/amd64) for now.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Bring your own image: add the dev access layer to REF (any image), keeping its
    /// layers, env, entrypoint and user; no recipe needed.
    #[arg(long, value_name = "REF", conflicts_with_all = ["recipe", "file"])]
    pub byoi: Option<String>,
    /// With --byoi: leave a dev access component out (repeatable), e.g. --skip ttyd.
    #[arg(long = "skip", value_name = "COMPONENT", requires = "byoi")]
    pub skip: Vec<String>,
    /// Name the image NAME[:TAG] (":latest" when no tag is given); repeatable.
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tag: Vec<String>,
    /// Run every step, ignoring the step cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Layer compression.
    #[arg(long, value_enum, default_value_t)]
    pub compression: CompressionArg,
    /// Network for run steps: the host's, or none (loopback only).
    #[arg(long, value_enum, default_value_t)]
    pub network: NetworkArg,
    /// Do not give steps the host's CA bundle.
    #[arg(long)]
    pub no_host_ca: bool,
    /// Push the image to the registry named by -t once it is built.
    #[arg(long)]
    pub push: bool,
    /// How a step's changes are found: overlay upperdir, snapshot comparison, or auto.
    #[arg(long, value_enum, default_value_t)]
    pub diff: DiffArg,
    /// Look up upstream artifacts (runtimes, code-server, ttyd, gh) in DIR_OR_URL as
    /// <component>/<version>/<file> instead of upstream.
    #[arg(long, value_name = "DIR_OR_URL")]
    pub artifact_mirror: Option<String>,
    /// Download nothing from upstream, only from caches and mirrors: fail up front naming
    /// every download the build needs that no cache or mirror covers. Without download
    /// mirrors, steps run with no network.
    #[arg(long)]
    pub offline: bool,
    /// Download from TO whatever is under FROM (two http(s) URLs): artifacts, apt sources,
    /// the npm registry (https://registry.npmjs.org/), PyPI (https://pypi.org/simple/).
    /// Repeatable; wins over [mirrors] in registries.toml.
    #[arg(long = "mirror", value_name = "FROM=TO")]
    pub mirrors: Vec<String>,
    /// Where `template = "NAME"` is pulled from when it is not in the store:
    /// HOST[/ORG]/boxwright/template-NAME:latest [default: template_registry in registries.toml]
    #[arg(long, value_name = "HOST[/ORG]", env = "BOXWRIGHT_TEMPLATE_REGISTRY")]
    pub template_registry: Option<String>,
    /// Kill a run step (its whole process tree) that runs longer than this, e.g. 30m;
    /// a step's own `timeout` wins. Default: no limit.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_flag)]
    pub step_timeout: Option<u64>,
    /// A value for a build argument (the recipe's [args] or a Containerfile's
    /// ARG; repeatable); a bare K takes the value of the environment variable K.
    #[arg(long = "build-arg", value_name = "K=V")]
    pub build_args: Vec<String>,
    /// A build secret for the steps that ask for it: id=NAME,src=FILE or id=NAME,env=VARIABLE.
    #[arg(long = "secret", value_name = "id=NAME,src=FILE")]
    pub secrets: Vec<String>,
    /// An image label (repeatable).
    #[arg(long = "label", value_name = "K=V")]
    pub labels: Vec<String>,
    /// A manifest annotation (repeatable).
    #[arg(long = "annotation", value_name = "K=V")]
    pub annotations: Vec<String>,
    /// Write the image id (its config digest) to FILE.
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Print only the manifest digest (and errors).
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Do not record the recipe in the image (the io.boxwright.recipe annotation `clone` reads).
    #[arg(long)]
    pub no_recipe_annotation: bool,
    /// Look steps up in this registry step cache before running them (repeatable;
    /// also `cache_from` in registries.toml).
    #[arg(long = "cache-from", value_name = "REPO")]
    pub cache_from: Vec<String>,
    /// Push every step's layer and cache record to this registry repository
    /// (also `cache_to` in registries.toml).
    #[arg(long = "cache-to", value_name = "REPO")]
    pub cache_to: Option<String>,
}

/// `K=V` pairs of a repeatable flag; a missing `=` is an input error naming the flag.
fn pairs(flag: &str, items: &[String]) -> Result<Vec<(String, String)>, Failure> {
    items
        .iter()
        .map(|i| match i.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(Failure::input(format!(
                "{flag} '{}': write KEY=VALUE",
                boxwright::quote::excerpt(i)
            ))),
        })
        .collect()
}

/// `--build-arg K=V`, or a bare `K` that takes its value from the
/// environment and is left out when the environment has none (so the
/// ARG's default applies), as docker, podman and buildah do.
fn build_args(items: &[String]) -> Result<Vec<(String, String)>, Failure> {
    let mut out = Vec::new();
    for i in items {
        if i.contains('=') {
            out.extend(pairs("--build-arg", std::slice::from_ref(i))?);
        } else if i.is_empty() {
            return Err(Failure::input("--build-arg '': write KEY=VALUE or KEY"));
        } else if let Ok(v) = std::env::var(i) {
            out.push((i.clone(), v));
        }
    }
    Ok(out)
}

/// Why clap refuses a `--step-timeout` value (clap prints it after the value).
#[derive(Debug, thiserror::Error)]
enum TimeoutFlagError {
    /// A zero timeout would kill every step at once.
    #[error("the timeout must be above 0 seconds")]
    Zero,
    #[error(transparent)]
    Duration(#[from] boxwright::units::DurationError),
}

fn parse_duration_flag(text: &str) -> Result<u64, TimeoutFlagError> {
    match boxwright::units::parse_duration(text)? {
        0 => Err(TimeoutFlagError::Zero),
        s => Ok(s),
    }
}

pub fn run(global: &Global, a: &BuildArgs) -> CliResult {
    // --byoi builds a recipe of its own: the image as base, the dev access layer on top.
    let byoi_dir = match &a.byoi {
        Some(r) => Some(byoi_recipe(r, &a.skip)?),
        None => None,
    };
    let (recipe, containerfile) = match &byoi_dir {
        Some(d) => (d.path().join("byoi.toml"), None),
        None => front_end(a.file.as_deref(), a.recipe.as_deref(), a.target.as_deref())?,
    };
    let containerfile = containerfile.map(|cf| ContainerfileOptions {
        jobs: a.jobs.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        }),
        ..cf
    });
    if a.target.is_some() && containerfile.is_none() {
        return Err(Failure::input(
            "--target names a stage of a Containerfile; a recipe has no stages",
        ));
    }
    if let Some(p) = &a.platform {
        check_platform(p)?;
    }
    let compression: Compression = a.compression.into();
    // Parsed here rather than by clap, whose error would echo the value
    // (and any password in it).
    let mirrors = a
        .mirrors
        .iter()
        .map(|m| Rule::parse(m).map_err(|e| Failure::input(format!("--mirror: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let worker_exe = std::env::current_exe()
        .map_err(|e| Failure::failed(format!("cannot find boxwright's own executable: {e}")))?;
    let opts = BuildOptions {
        recipe,
        tag: a.tag.first().cloned(),
        extra_tags: a.tag.iter().skip(1).cloned().collect(),
        containerfile,
        store: global.store_root(),
        no_cache: a.no_cache,
        compression,
        network: a.network.into(),
        host_ca: !a.no_host_ca,
        diff: a.diff.into(),
        worker_exe,
        source_date_epoch_env: std::env::var("SOURCE_DATE_EPOCH").ok(),
        registry: boxwright::builder::RegistryOptions {
            template_registry: a.template_registry.clone(),
            ..global.registry_options()
        },
        push: a.push,
        artifact_mirror: a.artifact_mirror.clone(),
        offline: a.offline,
        mirrors,
        max_layer_size: global.max_layer_size,
        max_unpacked: global.max_unpacked()?,
        step_timeout: a.step_timeout,
        build_args: build_args(&a.build_args)?,
        secrets: a
            .secrets
            .iter()
            .map(|s| {
                s.parse()
                    .map_err(|e: boxwright::builder::SecretSyntax| Failure::input(e.to_string()))
            })
            .collect::<Result<_, _>>()?,
        labels: pairs("--label", &a.labels)?.into_iter().collect(),
        annotations: pairs("--annotation", &a.annotations)?.into_iter().collect(),
        no_recipe_annotation: a.no_recipe_annotation,
        cache_from: a.cache_from.clone(),
        cache_to: a.cache_to.clone(),
    };
    // A Containerfile that cannot be built is reported before anything
    // runs, as one line: FILE:LINE:COLUMN: what is wrong (as a `failed`
    // event in JSON mode, where stdout carries events only).
    let mode = global.progress_mode();
    if !mode.uses_stdout()
        && let Err(e) = boxwright::builder::check_containerfile(&opts)
    {
        eprintln!("{e}");
        return Err(Failure::reported(if e.is_bad_input() { 2 } else { 1 }));
    }
    let sink: Box<dyn boxwright::progress::Sink> = if a.quiet {
        Box::new(boxwright::progress::NullSink)
    } else {
        sink_for(mode, Clock::default())
    };
    let result = boxwright::builder::build(&opts, sink.as_ref());
    sink.finish();
    match result {
        Ok(outcome) => {
            if let Some(path) = &a.iidfile {
                let image = boxwright::image::load_image(
                    boxwright::store::Store::open(&opts.store)
                        .map_err(|e| Failure::failed(e.to_string()))?
                        .layout(),
                    &outcome.manifest,
                )
                .map_err(|e| Failure::failed(e.to_string()))?;
                boxwright::store::replace_file(
                    path,
                    image.manifest.config.digest.to_string().as_bytes(),
                    Some(0o644),
                )
                .map_err(|e| Failure::failed(format!("--iidfile {}: {e}", path.display())))?;
            }
            // In JSON mode stdout is for events only; the last one holds the digest.
            if a.quiet || !mode.uses_stdout() {
                println!("{}", outcome.manifest.digest);
            }
            Ok(())
        }
        // Quiet: nothing showed the failure yet.
        Err(e) if a.quiet => Err(if e.is_bad_input() {
            Failure::input(e.to_string())
        } else {
            Failure::failed(e.to_string())
        }),
        // The sink has already printed the failure, ending with its one-line reason.
        Err(e) => Err(Failure::reported(if e.is_bad_input() { 2 } else { 1 })),
    }
}

/// Which front end reads the build: a recipe (`*.toml`), or a Containerfile
/// with its context (podman's rules: `-f FILE` and/or a CONTEXT directory
/// holding `Containerfile` or `Dockerfile`; without CONTEXT, the context is
/// the directory `-f FILE` is in, and with neither, `.`).
fn front_end(
    file: Option<&std::path::Path>,
    positional: Option<&std::path::Path>,
    target: Option<&str>,
) -> Result<(PathBuf, Option<ContainerfileOptions>), Failure> {
    let is_recipe = |p: &std::path::Path| p.extension().is_some_and(|e| e == "toml");
    let cf = |file: PathBuf, context: PathBuf| {
        Ok((
            file,
            Some(ContainerfileOptions {
                context,
                target: target.map(String::from),
                jobs: 1,
            }),
        ))
    };
    match (file, positional) {
        (Some(f), None) if is_recipe(f) => Ok((f.to_path_buf(), None)),
        (Some(f), None) => cf(f.to_path_buf(), dir_of(f)),
        (Some(f), Some(ctx)) if ctx.is_dir() => cf(f.to_path_buf(), ctx.to_path_buf()),
        (Some(_), Some(ctx)) => Err(Failure::input(format!(
            "with -f FILE, the argument is the build context: {} is not a directory",
            ctx.display()
        ))),
        (None, Some(p)) if p.is_dir() => {
            for name in ["Containerfile", "Dockerfile"] {
                if p.join(name).is_file() {
                    return cf(p.join(name), p.to_path_buf());
                }
            }
            Err(Failure::input(format!(
                "{} has no Containerfile or Dockerfile: name the file with -f FILE",
                p.display()
            )))
        }
        (None, Some(p)) if is_recipe(p) || !p.exists() => Ok((p.to_path_buf(), None)),
        (None, Some(p)) => cf(p.to_path_buf(), dir_of(p)),
        (None, None) => {
            let here = std::path::Path::new(".");
            for name in ["Containerfile", "Dockerfile"] {
                if here.join(name).is_file() {
                    return cf(PathBuf::from(name), here.to_path_buf());
                }
            }
            Err(Failure::input(
                "nothing to build: the current directory has no Containerfile or Dockerfile; boxwright build RECIPE.toml, or boxwright build [-f Containerfile] [CONTEXT]",
            ))
        }
    }
}

/// The directory a file is in (`.` for a bare name).
fn dir_of(f: &std::path::Path) -> PathBuf {
    f.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."))
        .to_path_buf()
}

/// `--platform`: the host's is built; others need emulation, which is not here yet.
fn check_platform(text: &str) -> Result<(), Failure> {
    let host = boxwright::image::host_platform();
    let mut want = text.split('/');
    let (os, arch, variant) = (want.next(), want.next(), want.next());
    let same = os == Some(host.os.as_str())
        && arch == Some(host.architecture.as_str())
        && (variant.is_none() || variant == host.variant.as_deref());
    if same {
        return Ok(());
    }
    let host_text = match &host.variant {
        Some(v) => format!("{}/{}/{v}", host.os, host.architecture),
        None => format!("{}/{}", host.os, host.architecture),
    };
    Err(Failure::input(format!(
        "--platform {text}: boxwright builds for the host platform ({host_text}) only; cross-platform builds are not supported yet: build on a {text} machine"
    )))
}

/// Writes the recipe `--byoi REF` stands for ([`boxwright::recipe::byoi_recipe`])
/// into a temp dir.
fn byoi_recipe(reference: &str, skip: &[String]) -> Result<tempfile::TempDir, Failure> {
    let cwd = std::env::current_dir()
        .map_err(|e| Failure::failed(format!("cannot read the current directory: {e}")))?;
    let text = boxwright::recipe::byoi_recipe(reference, skip, &cwd).map_err(|why| {
        Failure::input(format!(
            "--byoi '{reference}' is not an image reference (it {why}): give a registry reference such as registry.example.com/team/image:tag, a local name, oci:DIR[:TAG] or oci-archive:FILE[:NAME]"
        ))
    })?;
    let dir = tempfile::tempdir()
        .map_err(|e| Failure::failed(format!("cannot create a temp dir: {e}")))?;
    std::fs::write(dir.path().join("byoi.toml"), text)
        .map_err(|e| Failure::failed(format!("cannot write the --byoi recipe: {e}")))?;
    Ok(dir)
}
