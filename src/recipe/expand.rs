//! Expansion: a recipe's components turned into the ordered steps of its image.
//!
//! One step, so one layer, per component, in a fixed order: the dev access
//! layer, the system packages, each runtime, the AI tools, the VS Code
//! extensions, then each of the recipe's own steps. Images on the same base
//! therefore share their first layers, and a changed extension list rebuilds
//! only the layers after it.
//!
//! Every step is an ordinary run step (its script is its command, so the cache
//! key covers everything it installs) plus what the driver adds around it:
//! the artifacts to fetch and mount, read-only host inputs, cache mounts, and
//! the PATH and variables the image gains after it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::Recipe;
use super::image::Base;
use super::port::{Port, Protocol};
use super::scripts::{ARTIFACTS_DIR, ENTRYPOINT_PATH, ENTRYPOINT_SH, Script, VSIX_DIR, quote};
use super::step::{RunCommand, Step, StepKind};
use super::toolbox::{Extension, Toolbox};
use crate::catalog::{
    Arch, ArtifactFile, ArtifactSpec, Catalog, CatalogError, DevComponent, Runtime, RuntimeVersion,
};

/// Package-manager caches mounted into every run step, kept per store across
/// builds and never part of a layer.
pub const STANDARD_CACHES: [&str; 4] = [
    "/var/cache/apt",
    "/var/lib/apt/lists",
    "/root/.npm",
    "/root/.cache/pip",
];

/// Label keys of toolbox images.
pub mod labels {
    pub const RECIPE_DIGEST: &str = "io.boxwright.recipe.digest";
    pub const TEMPLATE: &str = "io.boxwright.template";
    pub const RUNTIMES: &str = "io.boxwright.runtimes";
    pub const PACKAGES: &str = "io.boxwright.packages";
    pub const CATEGORIES: &str = "io.boxwright.packages.categories";
    pub const AI_TOOLS: &str = "io.boxwright.ai-tools";
    pub const EXTENSIONS: &str = "io.boxwright.vscode.extensions";
    pub const DEV_ACCESS: &str = "io.boxwright.dev-access";
    pub const DEV_ACCESS_SKIPPED: &str = "io.boxwright.dev-access.skipped";
}

/// An upstream file a step needs, and where the step expects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactUse {
    /// Mirror path segment: `MIRROR/<component>/<version>/<file>`.
    pub component: String,
    pub version: String,
    pub file: ArtifactFile,
    /// Path inside the step (read-only).
    pub target: String,
}

/// A host file the step reads, mounted read-only (a recipe's `.vsix`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputMount {
    pub src: PathBuf,
    pub target: String,
}

/// One step of the image with what the driver needs around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandedStep {
    pub step: Step,
    /// What it installs: `dev-access`, `packages`, `runtime python 3.12`,
    /// `ai-tools`, `vscode`, or `recipe step N` (from 1) for the recipe's own.
    pub component: String,
    pub artifacts: Vec<ArtifactUse>,
    pub inputs: Vec<InputMount>,
    /// Container directories mounted from the store's caches.
    pub caches: Vec<String>,
    /// Directories the image's PATH gains after this step (prepended).
    pub path: Vec<String>,
    /// Variables the image's environment gains after this step.
    pub env: BTreeMap<String, String>,
}

/// A recipe's steps and the config its components add.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expansion {
    pub steps: Vec<ExpandedStep>,
    /// Ports of the dev access layer.
    pub ports: Vec<Port>,
    pub labels: BTreeMap<String, String>,
    /// The dev access entrypoint, when the layer is built here.
    pub entrypoint: Option<Vec<String>>,
    /// Things the user should know (a skipped component…), one line each.
    pub warnings: Vec<String>,
}

/// Why a recipe cannot be expanded on this machine.
#[derive(Debug, thiserror::Error)]
pub enum ExpandError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(
        "{what} has no upstream artifact for {arch}; boxwright cannot install it on this machine"
    )]
    NoArtifact { what: String, arch: Arch },
    #[error("boxwright builds toolbox images on amd64 and arm64 only, not on {0}")]
    UnsupportedArch(&'static str),
}

impl Recipe {
    /// The ordered steps of this recipe's image for the host's architecture.
    pub fn expand(&self) -> Result<Expansion, ExpandError> {
        let arch = match Arch::host() {
            Some(arch) => arch,
            // Plain recipes install no architecture-specific component.
            None if !self.toolbox.enabled => Arch::Amd64,
            None => return Err(ExpandError::UnsupportedArch(std::env::consts::ARCH)),
        };
        self.expand_for(arch)
    }

    /// [`Recipe::expand`] for `arch`.
    pub fn expand_for(&self, arch: Arch) -> Result<Expansion, ExpandError> {
        let mut out = Expansion::default();
        if self.toolbox.enabled {
            toolbox_steps(self, Catalog::builtin()?, arch, &mut out)?;
        }
        for step in &self.steps {
            let mut caches: Vec<String> = Vec::new();
            if matches!(step.kind, StepKind::Run { .. }) {
                caches = with_standard_caches(&step.cache);
            }
            out.steps.push(ExpandedStep {
                step: step.clone(),
                component: format!("recipe step {}", step.index + 1),
                artifacts: Vec::new(),
                inputs: Vec::new(),
                caches,
                path: Vec::new(),
                env: BTreeMap::new(),
            });
        }
        Ok(out)
    }
}

/// The standard caches, then `extra` (the order is part of a step's key).
pub fn with_standard_caches(extra: &[String]) -> Vec<String> {
    let mut caches: Vec<String> = STANDARD_CACHES.iter().map(|s| s.to_string()).collect();
    for c in extra {
        if !caches.contains(c) {
            caches.push(c.clone());
        }
    }
    caches
}

fn toolbox_steps(
    recipe: &Recipe,
    catalog: &Catalog,
    arch: Arch,
    out: &mut Expansion,
) -> Result<(), ExpandError> {
    let tb = &recipe.toolbox;
    let template = match &recipe.image.base {
        Base::Template(name) => Some(name.as_str()),
        _ => None,
    };
    let mut labels = BTreeMap::new();
    labels.insert(labels::RECIPE_DIGEST.to_string(), recipe.digest.to_string());
    if let Some(t) = template {
        labels.insert(labels::TEMPLATE.to_string(), t.to_string());
    }

    // The dev access layer; a template's image already has it.
    let mut claude_in_dev_access = false;
    match template {
        Some(t) => {
            if !tb.skip.is_empty() || recipe.image.dev_access.is_some() {
                out.warnings.push(format!(
                    "the dev access layer comes from template '{t}': dev_access and [dev_access] in this recipe are ignored"
                ));
            }
            claude_in_dev_access = true;
        }
        None if tb.dev_access => {
            for s in &tb.skip {
                out.warnings.push(format!(
                    "the dev access layer leaves out {s} (recorded in the {} label)",
                    labels::DEV_ACCESS_SKIPPED
                ));
            }
            let (step, ports, installed) = dev_access_step(tb, catalog, arch, recipe)?;
            claude_in_dev_access = installed.iter().any(|c| c == "claude-code");
            labels.insert(labels::DEV_ACCESS.to_string(), installed.join(","));
            if !tb.skip.is_empty() {
                labels.insert(labels::DEV_ACCESS_SKIPPED.to_string(), tb.skip.join(","));
            }
            out.ports = ports;
            out.entrypoint = Some(vec![ENTRYPOINT_PATH.to_string()]);
            out.steps.push(step);
        }
        None => {
            labels.insert(labels::DEV_ACCESS.to_string(), "none".to_string());
        }
    }

    if !tb.apt.is_empty() || !tb.categories.is_empty() {
        let mut packages: Vec<String> = Vec::new();
        for name in &tb.categories {
            if let Some(c) = catalog.category(name) {
                packages.extend(c.apt.iter().cloned());
            }
        }
        packages.extend(tb.apt.iter().cloned());
        let mut seen = Vec::new();
        packages.retain(|p| {
            let keep = !seen.contains(p);
            seen.push(p.clone());
            keep
        });
        out.steps.push(packages_step(&packages, tb.lines.packages));
        if !tb.apt.is_empty() {
            labels.insert(labels::PACKAGES.to_string(), tb.apt.join(","));
        }
        if !tb.categories.is_empty() {
            labels.insert(labels::CATEGORIES.to_string(), tb.categories.join(","));
        }
    }

    for choice in &tb.runtimes {
        let runtime = catalog.runtime(&choice.name);
        let version = runtime.and_then(|r| r.version(&choice.version));
        if let (Some(runtime), Some(version)) = (runtime, version) {
            out.steps
                .push(runtime_step(runtime, version, arch, choice.line)?);
        }
    }
    if !tb.runtimes.is_empty() {
        let list: Vec<String> = tb
            .runtimes
            .iter()
            .map(|r| format!("{}={}", r.name, r.version))
            .collect();
        labels.insert(labels::RUNTIMES.to_string(), list.join(","));
    }

    let npm_tools: Vec<&str> = tb
        .ai_tools
        .iter()
        .map(String::as_str)
        .filter(|t| !(claude_in_dev_access && *t == "claude-code"))
        .collect();
    if !npm_tools.is_empty() || !tb.custom_tools.is_empty() {
        out.steps.push(ai_tools_step(
            &npm_tools,
            recipe,
            catalog,
            &mut out.warnings,
        ));
    }
    if !tb.ai_tools.is_empty() || !tb.custom_tools.is_empty() {
        let mut list: Vec<String> = tb
            .ai_tools
            .iter()
            .filter_map(|t| catalog.tool(t))
            .filter_map(|t| t.npm.as_ref().map(|n| format!("{}@{}", t.name, n.version)))
            .collect();
        list.extend(tb.custom_tools.iter().map(|c| format!("custom:{}", c.name)));
        labels.insert(labels::AI_TOOLS.to_string(), list.join(","));
    }

    if !tb.extensions.is_empty() {
        out.steps.push(vscode_step(&tb.extensions, tb.lines.vscode));
        let list: Vec<String> = tb.extensions.iter().map(Extension::describe).collect();
        labels.insert(labels::EXTENSIONS.to_string(), list.join(","));
    }
    out.labels = labels;
    Ok(())
}

fn run_step(component: &str, script: String, line: usize, caches: Vec<String>) -> ExpandedStep {
    ExpandedStep {
        step: Step {
            index: 0,
            line,
            name: Some(component.to_string()),
            kind: StepKind::Run {
                command: RunCommand::Shell(script),
                env: BTreeMap::new(),
            },
            cache: Vec::new(),
            timeout: None,
            secrets: Vec::new(),
            options: Default::default(),
        },
        component: component.to_string(),
        artifacts: Vec::new(),
        inputs: Vec::new(),
        caches,
        path: Vec::new(),
        env: BTreeMap::new(),
    }
}

/// The artifact of `spec` for `arch`, mounted at its conventional place.
fn artifact_use(spec: &ArtifactSpec, arch: Arch, what: &str) -> Result<ArtifactUse, ExpandError> {
    let file = spec.for_arch(arch).ok_or_else(|| ExpandError::NoArtifact {
        what: what.to_string(),
        arch,
    })?;
    Ok(ArtifactUse {
        component: spec.component.clone(),
        version: spec.version.clone(),
        file: file.clone(),
        target: format!("{ARTIFACTS_DIR}/{}/{}", spec.component, file.file),
    })
}

/// Sets `$ARTIFACT` for the lines that follow.
fn artifact_line(a: &ArtifactUse) -> String {
    format!(
        "ARTIFACT={}  # {} {} {}, verified on the build host",
        quote(&a.target),
        a.component,
        a.version,
        a.file.checksum
    )
}

const SSHD_CONFIG: &str = "# boxwright: key-based logins only; host keys are made at first boot\n\
PasswordAuthentication no\n\
KbdInteractiveAuthentication no\n\
PermitRootLogin prohibit-password\n";

fn dev_access_step(
    tb: &Toolbox,
    catalog: &Catalog,
    arch: Arch,
    recipe: &Recipe,
) -> Result<(ExpandedStep, Vec<Port>, Vec<String>), ExpandError> {
    let kept: Vec<&DevComponent> = catalog
        .dev_access
        .iter()
        .filter(|c| !tb.skip.contains(&c.name))
        .collect();
    let names: Vec<String> = kept.iter().map(|c| c.name.clone()).collect();
    let mut s = Script::new(&format!("dev access layer: {}", names.join(" ")));
    s.line("bw_os; bw_pm")
        .line("echo \"boxwright: dev access layer on $BW_PRETTY with $BW_PM\"")
        .line("bw_pkg_install ca-certificates")
        .line("bw_pkg_install_first tini || echo 'boxwright: no tini package here; the entrypoint is its own init'");
    let mut artifacts = Vec::new();
    let mut ports = Vec::new();
    for c in &kept {
        s.line(&format!("# {}", c.name));
        if !c.packages.is_empty() {
            s.line("case \"$BW_PM\" in");
            for (pm, packages) in &c.packages {
                let pattern = if pm == "dnf" { "dnf|microdnf" } else { pm };
                s.line(&format!(
                    "  {pattern}) bw_pkg_install {} ;;",
                    packages.join(" ")
                ));
            }
            s.line(&format!(
                "  *) bw_die \"{} has no package for $BW_PM\" ;;",
                c.name
            ))
            .line("esac");
        }
        if let (Some(spec), Some(install)) = (&c.artifact, &c.install) {
            let a = artifact_use(spec, arch, &c.name)?;
            s.line(&artifact_line(&a)).line(install);
            artifacts.push(a);
        }
        if let Some(tool) = c.tool.as_deref().and_then(|t| catalog.tool(t))
            && let Some(npm) = &tool.npm
        {
            s.line("command -v npm >/dev/null 2>&1 || bw_pkg_install nodejs npm")
                .line(&format!(
                    "npm install -g --no-fund --no-audit --loglevel=warn {}",
                    quote(&npm.spec())
                ))
                .line(&format!("{} --version", tool.bin));
        }
        if c.name == "openssh-server" {
            s.file(
                "/etc/ssh/sshd_config.d/00-boxwright.conf",
                "0644",
                SSHD_CONFIG,
            )
            .line("grep -qs '^Include /etc/ssh/sshd_config.d/' /etc/ssh/sshd_config || sed -i '1i Include /etc/ssh/sshd_config.d/*.conf' /etc/ssh/sshd_config")
            .line("# Host keys are made by the entrypoint at first boot, never baked in.")
            .line("rm -f /etc/ssh/ssh_host_*");
        }
        if let Some(port) = c.port {
            ports.push(Port {
                number: port,
                protocol: Protocol::Tcp,
            });
        }
    }
    s.file(ENTRYPOINT_PATH, "0755", ENTRYPOINT_SH)
        .line("mkdir -p /var/lib/boxwright");
    let line = recipe.toolbox.lines.dev_access.max(recipe.image.base_line);
    let mut step = run_step(
        "dev-access",
        s.finish(),
        line,
        STANDARD_CACHES.map(String::from).to_vec(),
    );
    step.artifacts = artifacts;
    Ok((step, ports, names))
}

fn packages_step(packages: &[String], line: usize) -> ExpandedStep {
    let mut s = Script::new(&format!("system packages {}", packages.join(" ")));
    s.line("bw_pm")
        .line("[ \"$BW_PM\" = apt ] || { bw_os; bw_die \"[packages] lists apt packages, but the base ($BW_PRETTY) has no apt-get\"; }")
        .line(&format!(
            "bw_pkg_install {}",
            packages
                .iter()
                .map(|p| quote(p))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    run_step(
        "packages",
        s.finish(),
        line,
        STANDARD_CACHES.map(String::from).to_vec(),
    )
}

fn runtime_step(
    runtime: &Runtime,
    version: &RuntimeVersion,
    arch: Arch,
    line: usize,
) -> Result<ExpandedStep, ExpandError> {
    let component = format!("runtime {} {}", runtime.name, version.version);
    let mut s = Script::new(&component);
    s.line("bw_os").line("case \"$BW_DISTRO\" in");
    for (distro, packages) in &version.distro {
        s.line(&format!(
            "  {}) bw_pkg_install {} ;;",
            quote(distro),
            packages.join(" ")
        ));
    }
    let mut artifacts = Vec::new();
    match (&version.artifact, &version.install) {
        (Some(spec), Some(install)) => {
            let a = artifact_use(spec, arch, &component)?;
            s.line("  *)")
                .line(&format!("    {}", artifact_line(&a)))
                .line(&format!("    {install}"))
                .line("    ;;");
            artifacts.push(a);
        }
        _ => {
            let distros: Vec<&str> = version.distro.keys().map(String::as_str).collect();
            s.line(&format!(
                "  *) bw_die \"{} {} comes from the packages of {} only, and this base is $BW_PRETTY ($BW_DISTRO): choose another version (known: {}) or another base\" ;;",
                runtime.name,
                version.version,
                distros.join(", "),
                runtime.available_versions().join(", ")
            ));
        }
    }
    s.line("esac");
    let mut env = runtime.env.clone();
    env.extend(version.env.clone());
    s.profile(&runtime.name, &runtime.path, &env);
    let mut check_env: Vec<String> = Vec::new();
    if !runtime.path.is_empty() {
        check_env.push(format!("PATH=\"{}:$PATH\"", runtime.path.join(":")));
    }
    for (k, v) in &env {
        check_env.push(format!("{k}={}", quote(v)));
    }
    s.line(&format!(
        "env {} sh -c {}",
        check_env.join(" "),
        quote(&runtime.check)
    ));
    let mut step = run_step(
        &component,
        s.finish(),
        line,
        STANDARD_CACHES.map(String::from).to_vec(),
    );
    // Issue 12 item 4: the history names the component and its catalog entry
    // (`component python 3.12 sha256:…`), not the ~5 KB script with its shell library.
    step.step.options.text = Some(format!(
        "RUN [boxwright] component {} {} {}",
        runtime.name,
        version.version,
        runtime.entry_digest(version)
    ));
    step.artifacts = artifacts;
    step.path = runtime.path.clone();
    step.env = env;
    Ok(step)
}

/// The major version of a `node` runtime choice (`"20"` → 20).
fn node_major(recipe: &Recipe) -> Option<u32> {
    recipe
        .toolbox
        .runtimes
        .iter()
        .find(|r| r.name == "node")
        .and_then(|r| r.version.split('.').next()?.parse().ok())
}

fn ai_tools_step(
    npm_tools: &[&str],
    recipe: &Recipe,
    catalog: &Catalog,
    warnings: &mut Vec<String>,
) -> ExpandedStep {
    let tb = &recipe.toolbox;
    let mut names: Vec<&str> = npm_tools.to_vec();
    names.extend(tb.custom_tools.iter().map(|c| c.name.as_str()));
    let mut s = Script::new(&format!("AI tools {}", names.join(" ")));
    let mut specs = Vec::new();
    let mut bins = Vec::new();
    for name in npm_tools {
        let Some(tool) = catalog.tool(name) else {
            continue;
        };
        let Some(npm) = &tool.npm else { continue };
        if let Some(min) = tool.node
            && node_major(recipe).is_none_or(|m| m < min)
        {
            warnings.push(format!(
                "{} needs Node.js >= {min}: add node = \"{}\" to [runtimes] (otherwise the base's own Node.js is used)",
                tool.name,
                if min <= 20 { 20 } else { min }
            ));
        }
        specs.push(quote(&npm.spec()));
        bins.push(tool.bin.clone());
    }
    if !specs.is_empty() {
        s.line("command -v npm >/dev/null 2>&1 || bw_pkg_install nodejs npm")
            .line(&format!(
                "npm install -g --no-fund --no-audit --loglevel=warn {}",
                specs.join(" ")
            ));
        for b in &bins {
            s.line(&format!(
                "command -v {b} >/dev/null || bw_die '{b} is not on PATH after npm install'"
            ));
        }
    }
    for c in &tb.custom_tools {
        s.line(&format!("# custom tool {}", c.name))
            .line("(")
            .line(&c.run)
            .line(")");
    }
    run_step(
        "ai-tools",
        s.finish(),
        tb.lines.ai_tools,
        STANDARD_CACHES.map(String::from).to_vec(),
    )
}

/// code-server's cache of downloaded .vsix files: a cache mount, not a layer.
const VSIX_CACHE: &str = "/root/.local/share/code-server/CachedExtensionVSIXs";

fn vscode_step(extensions: &[Extension], line: usize) -> ExpandedStep {
    let names: Vec<String> = extensions.iter().map(Extension::describe).collect();
    let mut s = Script::new(&format!("VS Code extensions {}", names.join(" ")));
    s.line("command -v code-server >/dev/null 2>&1 || bw_die 'code-server is not in the image: the VS Code extensions need the dev access layer'")
        // code-server writes a config with a random password on first use:
        // one made here must not be baked into the image.
        .line("cfg=/root/.config/code-server/config.yaml; had_cfg=; [ -e \"$cfg\" ] && had_cfg=1");
    let mut inputs = Vec::new();
    for (i, ext) in extensions.iter().enumerate() {
        match ext {
            Extension::Marketplace { id, version } => {
                s.line(&format!(
                    "code-server --install-extension {}",
                    quote(&format!("{id}@{version}"))
                ));
            }
            Extension::Vsix { path, .. } => {
                let file = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "extension.vsix".into());
                let target = format!("{VSIX_DIR}/{i}-{file}");
                s.line(&format!(
                    "code-server --install-extension {}",
                    quote(&target)
                ));
                inputs.push(InputMount {
                    src: path.clone(),
                    target,
                });
            }
        }
    }
    s.line("[ -n \"$had_cfg\" ] || { rm -f \"$cfg\"; rmdir /root/.config/code-server 2>/dev/null || true; }")
        .line("code-server --list-extensions --show-versions");
    let mut caches = STANDARD_CACHES.map(String::from).to_vec();
    caches.push(VSIX_CACHE.to_string());
    let mut step = run_step("vscode", s.finish(), line, caches);
    step.inputs = inputs;
    step
}
