//! Image management across the store and registries: images --registry,
//! clone, default, rmi --remote, and tag across registries.

use std::path::{Path, PathBuf};

use boxwright::builder::{RECIPE_ANNOTATION, normalize_tag, registry_client};
use boxwright::digest::Digest;
use boxwright::image::{self, ImageConfig, ManifestKind};
use boxwright::progress::human_bytes;
use boxwright::registry::{Reference, Registry};
use boxwright::settings::{Settings, SettingsError};
use boxwright::store::Store;

use super::{CliResult, Failure, Global, lock_store, open_store, reference};

fn config_path() -> PathBuf {
    Settings::path()
}

fn read_settings(path: &Path) -> Result<Settings, Failure> {
    Settings::load(path).map_err(settings_failure)
}

fn write_settings(path: &Path, s: &Settings) -> Result<(), Failure> {
    s.save(path).map_err(settings_failure)
}

/// A settings file the user must fix is bad input (exit 2).
pub fn settings_failure(e: SettingsError) -> Failure {
    if e.is_bad_input() {
        Failure::input(e.to_string())
    } else {
        Failure::failed(e.to_string())
    }
}

/// The configured default image, if any (for `images` to mark it).
pub fn local_default() -> Option<String> {
    read_settings(&config_path()).ok()?.default_image
}

fn client(global: &Global, store: &Store) -> Result<Registry, Failure> {
    registry_client(&global.registry_options(), store).map_err(|e| Failure::failed(e.to_string()))
}

/// `HOST/ORG` → (registry host, org path).
fn org(s: &str) -> Result<(String, String), Failure> {
    match s.split_once('/') {
        Some((host, org)) if !host.is_empty() && !org.is_empty() => {
            Ok((host.to_string(), org.trim_end_matches('/').to_string()))
        }
        _ => Err(Failure::input(format!(
            "'{s}' is not a registry namespace: use HOST/ORG, e.g. registry.example.com/team"
        ))),
    }
}

/// Whether `name` starts with a registry host (`host.domain/…`,
/// `host:port/…`, `localhost/…`), as the docker reference grammar decides.
fn qualified(name: &str) -> bool {
    match name.split_once('/') {
        Some((first, _)) => first.contains('.') || first.contains(':') || first == "localhost",
        None => false,
    }
}

/// Where the org's default image is kept: the repository `ORG/default`.
fn default_ref(host: &str, org: &str) -> Result<Reference, Failure> {
    reference(&format!("{host}/{org}/default:latest"))
}

/// `images --registry HOST/ORG`: every tag of every repository under ORG.
pub fn remote_images(global: &Global, namespace: &str, no_trunc: bool, json: bool) -> CliResult {
    let (host, org) = org(namespace)?;
    let store = open_store(global)?;
    let reg = client(global, &store)?;
    let repos = reg
        .catalog(&host)
        .map_err(|e| Failure::failed(e.to_string()))?;
    let default = reg
        .manifest_digest(&default_ref(&host, &org)?)
        .ok()
        .flatten();
    let mut table =
        super::table::Table::new(&["NAME", "DIGEST", "SIZE", "CREATED", "DEFAULT"]).align_right(2);
    let mut rows: Vec<serde_json::Value> = Vec::new();
    let prefix = format!("{org}/");
    for repo in repos.iter().filter(|r| r.starts_with(&prefix)) {
        if repo == &format!("{org}/default") {
            continue;
        }
        let tags = reg
            .list_tags(&reference(&format!("{host}/{repo}"))?)
            .map_err(|e| Failure::failed(e.to_string()))?;
        for tag in tags {
            let r = reference(&format!("{host}/{repo}:{tag}"))?;
            let (m, config) = match reg.fetch_image_config(&r) {
                Ok(x) => x,
                Err(e) => {
                    rows.push(serde_json::json!({
                        "name": format!("{host}/{repo}:{tag}"),
                        "error": e.to_string(),
                    }));
                    table.row([
                        format!("{host}/{repo}:{tag}"),
                        format!("({e})"),
                        String::new(),
                        String::new(),
                        String::new(),
                    ]);
                    continue;
                }
            };
            let size: u64 = match &m.kind {
                ManifestKind::Image(image) => {
                    image.config.size
                        + image.layers.iter().map(|l| l.size).sum::<u64>()
                        + m.bytes.len() as u64
                }
                ManifestKind::Index(_) => 0,
            };
            let created = ImageConfig::from_json(&config)
                .ok()
                .and_then(|c| c.created)
                .unwrap_or_else(|| "?".into());
            let digest = if no_trunc {
                m.digest.to_string()
            } else {
                m.digest.short()
            };
            let mark = if default.as_ref() == Some(&m.digest) {
                "*"
            } else {
                ""
            };
            rows.push(serde_json::json!({
                "name": format!("{host}/{repo}:{tag}"),
                "digest": m.digest.to_string(),
                "size": size,
                "created": if created == "?" { serde_json::Value::Null } else { created.clone().into() },
                "default": !mark.is_empty(),
            }));
            table.row([
                format!("{host}/{repo}:{tag}"),
                digest,
                human_bytes(size),
                created,
                mark.to_string(),
            ]);
        }
    }
    if json {
        return super::output::emit_json(&rows);
    }
    super::output::emit(&table.render())
}

#[derive(clap::Args, Debug)]
pub struct CloneArgs {
    /// The image to clone: a local name or a registry reference.
    pub source: String,
    /// The new name: the recipe is written to NEW.toml (or --output); with
    /// --image, the image itself is tagged NEW.
    pub new: String,
    /// Tag the same manifest as NEW instead of writing the recipe out
    /// (server-side for registry images: no blob moves).
    #[arg(long)]
    pub image: bool,
    /// Where to write the recipe [default: NEW.toml in the current directory].
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        conflicts_with = "image"
    )]
    pub output: Option<PathBuf>,
}

pub fn clone(global: &Global, a: &CloneArgs) -> CliResult {
    let store = open_store(global)?;
    let local = normalize_tag(&a.source)
        .ok()
        .and_then(|n| store.layout().resolve(&n).ok().map(|d| (n, d)));
    if a.image {
        // Registry names on both sides: a server-side copy, even when the
        // store has SRC too; plain names are local tags.
        let remote = qualified(&a.source) && qualified(&a.new);
        return match local.filter(|_| !remote) {
            Some((_, desc)) => {
                let new = normalize_tag(&a.new).map_err(|e| Failure::input(e.to_string()))?;
                let _lock = lock_store(&store)?;
                store
                    .layout()
                    .tag(&new, desc.clone())
                    .map_err(|e| Failure::failed(e.to_string()))?;
                println!("{}", desc.digest);
                Ok(())
            }
            None => {
                let from = reference(&a.source)?;
                let to = reference(&a.new)?;
                let digest = client(global, &store)?
                    .copy_image(&from, &to)
                    .map_err(|e| Failure::failed(e.to_string()))?;
                println!("{digest}");
                Ok(())
            }
        };
    }
    let annotations = match local {
        Some((_, desc)) => {
            image::load_image(store.layout(), &desc)
                .map_err(|e| Failure::failed(e.to_string()))?
                .manifest
                .annotations
        }
        None => {
            let r = reference(&a.source)?;
            // The fetch parsed the document already (a malformed one fails there).
            match client(global, &store)?
                .fetch_manifest(&r)
                .map_err(|e| Failure::failed(e.to_string()))?
                .kind
            {
                ManifestKind::Image(m) => m.annotations,
                ManifestKind::Index(ix) => ix.annotations,
            }
        }
    };
    let recipe = annotations.get(RECIPE_ANNOTATION).ok_or_else(|| {
        Failure::input(format!(
            "{} carries no recipe (it was not built by boxwright): clone --image tags the image itself",
            a.source
        ))
    })?;
    let out = a.output.clone().unwrap_or_else(|| {
        let stem: String = a
            .new
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        PathBuf::from(format!("{stem}.toml"))
    });
    if out.exists() {
        return Err(Failure::input(format!(
            "{} exists: choose another name or --output FILE",
            out.display()
        )));
    }
    std::fs::write(&out, recipe)
        .map_err(|e| Failure::failed(format!("cannot write {}: {e}", out.display())))?;
    eprintln!(
        "wrote the recipe of {} to {} (relative paths in it, such as copy sources, still point where the original recipe was)",
        a.source,
        out.display()
    );
    println!("{}", out.display());
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct DefaultArgs {
    #[command(subcommand)]
    pub action: DefaultAction,
}

#[derive(clap::Subcommand, Debug)]
pub enum DefaultAction {
    /// Make REF the default image for new sandboxes.
    Set {
        /// The image (a registry reference, or a local name).
        reference: String,
        /// Also keep it in the registry namespace HOST/ORG, as HOST/ORG/default:latest.
        #[arg(long, value_name = "HOST/ORG")]
        registry: Option<String>,
    },
    /// Print the default image.
    Show {
        /// Read it from the registry namespace HOST/ORG instead of the local config.
        #[arg(long, value_name = "HOST/ORG")]
        registry: Option<String>,
    },
}

pub fn default(global: &Global, a: &DefaultArgs) -> CliResult {
    let path = config_path();
    match &a.action {
        DefaultAction::Set {
            reference: r,
            registry,
        } => {
            let store = open_store(global)?;
            let mut s = read_settings(&path)?;
            match registry {
                Some(ns) => {
                    // The registry copy is made server-side: REF must be
                    // in that registry, whatever the store holds.
                    let (host, org) = org(ns)?;
                    let from = reference(r)?;
                    let reg = client(global, &store)?;
                    remote_digest(&reg, &from)?.ok_or_else(|| {
                        Failure::input(format!(
                            "{from} does not exist in its registry: push it first (boxwright push NAME {from})"
                        ))
                    })?;
                    let digest = reg
                        .copy_image(&from, &default_ref(&host, &org)?)
                        .map_err(|e| Failure::failed(e.to_string()))?;
                    eprintln!("{host}/{org}/default:latest now points at {digest}");
                    s.registry_defaults
                        .insert(format!("{host}/{org}"), r.clone());
                }
                None => {
                    let local = normalize_tag(r)
                        .ok()
                        .is_some_and(|n| store.layout().resolve(&n).is_ok());
                    // A name without a registry host is a local name (as
                    // for clone --image): not looked for on Docker Hub.
                    if !local && !qualified(r) {
                        return Err(Failure::input(format!(
                            "{r} does not exist in the local store (boxwright images lists it): build or pull it, or name it with its registry (HOST/NAME:TAG)"
                        )));
                    }
                    if !local {
                        let from = reference(r)?;
                        remote_digest(&client(global, &store)?, &from)?.ok_or_else(|| {
                            Failure::input(format!(
                                "{r} does not exist: it is neither in the local store (boxwright images) nor in its registry"
                            ))
                        })?;
                    }
                }
            }
            s.default_image = Some(r.clone());
            write_settings(&path, &s)?;
            eprintln!("default image: {r} (in {})", path.display());
            Ok(())
        }
        DefaultAction::Show { registry: Some(ns) } => {
            let (host, org) = org(ns)?;
            let store = open_store(global)?;
            let reg = client(global, &store)?;
            let dref = default_ref(&host, &org)?;
            let digest = reg
                .manifest_digest(&dref)
                .map_err(|e| Failure::failed(e.to_string()))?
                .ok_or_else(|| Failure::input(format!("{host}/{org} has no default image: boxwright default set REF --registry {ns}")))?;
            // What was set here, as it was given, while it still names the
            // registry's default.
            let recorded = read_settings(&path)?
                .registry_defaults
                .remove(&format!("{host}/{org}"))
                .filter(|r| {
                    r.parse::<Reference>().is_ok_and(|r| {
                        reg.manifest_digest(&r).ok().flatten().as_ref() == Some(&digest)
                    })
                });
            if let Some(r) = recorded {
                println!("{r} {digest}");
                return Ok(());
            }
            // Set elsewhere: name it after the repository tags that share its digest.
            let mut names = Vec::new();
            let prefix = format!("{org}/");
            for repo in reg.catalog(&host).unwrap_or_default() {
                if !repo.starts_with(&prefix) || repo == format!("{org}/default") {
                    continue;
                }
                for tag in reg
                    .list_tags(&reference(&format!("{host}/{repo}"))?)
                    .unwrap_or_default()
                {
                    let r = reference(&format!("{host}/{repo}:{tag}"))?;
                    if reg.manifest_digest(&r).ok().flatten().as_ref() == Some(&digest) {
                        names.push(r.to_string());
                    }
                }
            }
            println!(
                "{} {digest}",
                names.first().cloned().unwrap_or_else(|| dref.to_string())
            );
            Ok(())
        }
        DefaultAction::Show { registry: None } => match read_settings(&path)?.default_image {
            Some(d) => {
                println!("{d}");
                Ok(())
            }
            None => Err(Failure::input(format!(
                "no default image set ({}): boxwright default set REF",
                path.display()
            ))),
        },
    }
}

/// The digest of the manifest `r` names in its registry, `None` if it has none.
fn remote_digest(reg: &Registry, r: &Reference) -> Result<Option<Digest>, Failure> {
    reg.manifest_digest(r)
        .map_err(|e| Failure::failed(format!("cannot check that {r} exists: {e}")))
}

/// `rmi --remote [--force] REF…`. A registry deletes a manifest by digest,
/// and with it every tag of its repository that points at it: a reference
/// by tag is refused, naming those other tags, unless `force`. A reference
/// by digest names the manifest itself and is deleted with all its tags.
/// Every reference is checked before anything is deleted.
pub fn remote_rmi_with(global: &Global, names: &[String], force: bool) -> CliResult {
    let store = open_store(global)?;
    let reg = client(global, &store)?;
    let mut doomed = Vec::new();
    for n in names {
        let r = reference(n)?;
        let digest = match r.digest() {
            Some(d) => d.clone(),
            None => reg
                .manifest_digest(&r)
                .map_err(|e| Failure::failed(e.to_string()))?
                .ok_or_else(|| Failure::input(format!("{r} does not exist")))?,
        };
        let others = if force || r.digest().is_some() {
            Vec::new()
        } else {
            other_tags(&reg, &r, &digest)?
        };
        if !others.is_empty() {
            return Err(Failure::failed(format!(
                "{r} is not the only tag of manifest {digest} ({} too), and a registry deletes a manifest with all its tags: delete them all with --force",
                others.join(", ")
            )));
        }
        doomed.push((r, digest));
    }
    for (r, digest) in doomed {
        reg.delete_manifest(&r.with_digest(digest.clone()))
            .map_err(|e| Failure::failed(e.to_string()))?;
        println!("deleted {r} {digest}");
    }
    Ok(())
}

/// The other tags of `r`'s repository whose manifest is `digest`, as references.
fn other_tags(reg: &Registry, r: &Reference, digest: &Digest) -> Result<Vec<String>, Failure> {
    let named = r.manifest_reference();
    let tags = reg.list_tags(r).map_err(|e| {
        Failure::failed(format!(
            "cannot check which other tags point at {r}'s manifest ({e}); --force deletes it without checking"
        ))
    })?;
    let mut others = Vec::new();
    for tag in tags.iter().filter(|t| **t != named) {
        let t = r.with_tag(tag);
        let d = reg
            .manifest_digest(&t)
            .map_err(|e| Failure::failed(e.to_string()))?;
        if d.as_ref() == Some(digest) {
            others.push(t.to_string());
        }
    }
    Ok(others)
}

/// `tag --remote SRC DST`: a server-side copy within one registry.
pub fn remote_tag(global: &Global, source: &str, target: &str) -> CliResult {
    let store = open_store(global)?;
    let digest = client(global, &store)?
        .copy_image(&reference(source)?, &reference(target)?)
        .map_err(|e| Failure::failed(e.to_string()))?;
    println!("{digest}");
    Ok(())
}
