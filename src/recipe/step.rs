//! `[[steps]]`: what runs, in order, each step becoming one layer.

use std::collections::BTreeMap;
use std::path::Path;

use toml::de::DeValue;

use super::copy::{CopySpec, parse_copy};
use super::error::RecipeError;
use super::files::{ConfigChange, FilesSpec, StepOptions};
use super::reader::{self, Doc, Keys, Value};

/// One step of a recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// 0-based position in `steps`; messages number steps from 1 (`step 3`).
    pub index: usize,
    /// Line where the step starts (its `[[steps]]` header or inline `{`).
    pub line: usize,
    /// Optional label shown in progress output.
    pub name: Option<String>,
    /// What the step does.
    pub kind: StepKind,
    /// Extra cache mounts for a run step (`cache = ["/root/.cargo/registry"]`):
    /// absolute directories kept per store across builds, never in the layer.
    pub cache: Vec<String>,
    /// Seconds a run step may take (`timeout = "10m"` or `timeout = 600`);
    /// `None` for no limit (the build's `--step-timeout` may still set one).
    pub timeout: Option<u64>,
    /// Build secrets this run step reads (`secrets = ["npmrc", { id = "token", env = "TOKEN" }]`).
    pub secrets: Vec<SecretUse>,
    /// What a Containerfile's `RUN` adds; a recipe's steps have the defaults.
    pub options: StepOptions,
}

/// How a run step receives a build secret (`--secret id=NAME,...`): as a
/// read-only file (`/run/secrets/ID` unless `target` says where) or as an
/// environment variable. Neither reaches a layer, the history or the cache key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretUse {
    pub id: String,
    /// The file's path inside the step (under /run: never in a layer).
    pub target: Option<String>,
    /// Given as this environment variable instead of a file.
    pub env: Option<String>,
    /// A missing secret fails the step (always for a recipe; a
    /// Containerfile's `required=true`); otherwise the step runs without it.
    pub required: bool,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    /// Run a command in the image being built. `env` is added to the image's
    /// environment for this step only.
    Run {
        command: RunCommand,
        env: BTreeMap<String, String>,
    },
    /// Add a file or directory from the build host.
    Copy(CopySpec),
    /// A Containerfile's `COPY`/`ADD`.
    Files(FilesSpec),
    /// A Containerfile's config instruction: no layer.
    Config(ConfigChange),
}

/// The command of a run step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunCommand {
    /// `run = "..."`: a shell command line, run by `/bin/sh -c`.
    Shell(String),
    /// `run = ["prog", "arg", ...]`: run directly; never empty, `[0]` never empty.
    Exec(Vec<String>),
}

impl RunCommand {
    /// The argv to execute: `["/bin/sh", "-c", line]` for a shell command.
    pub fn argv(&self) -> Vec<String> {
        match self {
            RunCommand::Shell(line) => vec!["/bin/sh".into(), "-c".into(), line.clone()],
            RunCommand::Exec(argv) => argv.clone(),
        }
    }
}

impl Step {
    /// The step in the style of an image history's `created_by`, also used in error
    /// messages: `RUN /bin/sh -c echo hi`, `RUN --env=LANG,TOKEN /bin/sh -c make`
    /// (the step env's names only: its values are build-time input, never written
    /// into an image), `COPY --chmod=0644 --chown=0:0 files/motd /etc/motd` (source
    /// as written).
    ///
    /// A step that carries its history text (`options.text`: a Containerfile
    /// instruction as written, a catalog runtime's `RUN [boxwright] component python
    /// 3.12 sha256:<catalog entry digest>`) gives that. Another component's generated
    /// script (a ~5 KB shell library plus its install lines) is named by its title
    /// and the script's digest: `RUN [boxwright] component system packages jq sha256:…`.
    pub fn describe(&self) -> String {
        match &self.kind {
            StepKind::Run { .. } | StepKind::Files(_) | StepKind::Config(_)
                if self.options.text.is_some() =>
            {
                self.options.text.clone().unwrap_or_default()
            }
            StepKind::Run {
                command: RunCommand::Shell(text),
                ..
            } if super::scripts::title(text).is_some() => format!(
                "RUN [boxwright] component {} {}",
                super::scripts::title(text).unwrap_or_default(),
                crate::digest::Digest::of(text.as_bytes())
            ),
            StepKind::Files(f) => f.text.clone(),
            StepKind::Config(_) => String::new(),
            StepKind::Run { command, env } => {
                let mut words: Vec<String> = Vec::new();
                if !env.is_empty() {
                    let names: Vec<&str> = env.keys().map(String::as_str).collect();
                    words.push(format!("--env={}", names.join(",")));
                }
                words.extend(command.argv());
                format!("RUN {}", words.join(" "))
            }
            StepKind::Copy(copy) => {
                let mut text = String::from("COPY");
                if let Some(mode) = copy.mode {
                    text.push_str(&format!(" --chmod={mode:04o}"));
                }
                if let Some((uid, gid)) = copy.owner {
                    text.push_str(&format!(" --chown={uid}:{gid}"));
                }
                text.push_str(&format!(" {} {}", copy.src_as_written, copy.dest));
                text
            }
        }
    }

    /// [`Step::describe`] as one line of at most [`SUMMARY_CHARS`] characters (blank
    /// runs, newlines included, become one space), for progress lines and error
    /// messages, which are one line each.
    ///
    /// A component's generated script is summarised by its title (`RUN [boxwright]
    /// dev access layer: openssh-server`): the whole script is in the image history,
    /// and a progress line or error should say which component it is. A recipe step
    /// with a `name` leads with it.
    pub fn summary(&self) -> String {
        let generated = match &self.kind {
            StepKind::Run {
                command: RunCommand::Shell(text),
                ..
            } => super::scripts::title(text),
            _ => None,
        };
        let text = match (generated, &self.name) {
            (Some(title), _) => format!("RUN [boxwright] {title}"),
            (None, Some(name)) => format!("{name}: {}", self.describe()),
            (None, None) => self.describe(),
        };
        let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.chars().count() <= SUMMARY_CHARS {
            return line;
        }
        let mut cut: String = line.chars().take(SUMMARY_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}

/// The longest [`Step::summary`], in characters.
pub const SUMMARY_CHARS: usize = 80;

/// The keys of a step. Later steps gain keys (such as `cache`) here.
const STEP_KEYS: Keys = Keys {
    known: &["name", "run", "env", "copy", "cache", "timeout", "secrets"],
    later: &[],
};

const RUN_TYPE: &str = "'run' must be a string or a list of strings";

/// Reads the `steps` value of the top-level table.
pub(super) fn parse_steps(
    doc: &Doc<'_>,
    value: &Value<'_>,
    dir: &Path,
) -> Result<Vec<Step>, RecipeError> {
    let DeValue::Array(items) = value.get_ref() else {
        return Err(doc.invalid(
            &value.span(),
            "",
            "'steps' must be an array of tables, written [[steps]]",
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| parse_step(doc, index, item, dir))
        .collect()
}

fn parse_step(
    doc: &Doc<'_>,
    index: usize,
    value: &Value<'_>,
    dir: &Path,
) -> Result<Step, RecipeError> {
    let path = format!("step {}", index + 1);
    let DeValue::Table(table) = value.get_ref() else {
        return Err(doc.invalid(
            &value.span(),
            &path,
            "a step must be a table with 'run' or 'copy'",
        ));
    };
    let fields = doc.fields(table, value.span(), &path, &STEP_KEYS)?;

    let name = match fields.get("name") {
        Some(v) => Some(reader::non_empty_string(doc, v, &path, "name")?.to_string()),
        None => None,
    };

    let kind = match (fields.get("run"), fields.get("copy")) {
        (Some(_), Some(_)) => {
            return Err(doc.invalid(
                &value.span(),
                &path,
                "a step has either 'run' or 'copy', not both; split it into two steps",
            ));
        }
        (None, None) => {
            return Err(doc.invalid(
                &value.span(),
                &path,
                "a step needs 'run' (a command) or 'copy' (a file to add)",
            ));
        }
        (Some(run), None) => StepKind::Run {
            command: parse_run(doc, run, &path)?,
            env: match fields.get("env") {
                Some(env) => reader::string_map(doc, env, &path, "env", reader::check_env_name)?,
                None => BTreeMap::new(),
            },
        },
        (None, Some(copy)) => {
            for key in ["env", "cache", "timeout", "secrets"] {
                if let Some(v) = fields.get(key) {
                    return Err(doc.invalid(
                        &v.span(),
                        &path,
                        format!("'{key}' applies only to run steps"),
                    ));
                }
            }
            StepKind::Copy(parse_copy(doc, copy, &path, dir)?)
        }
    };
    let cache = match fields.get("cache") {
        Some(v) => parse_cache(doc, v, &path)?,
        None => Vec::new(),
    };

    let timeout = match fields.get("timeout") {
        Some(v) => Some(parse_timeout(doc, v, &path)?),
        None => None,
    };

    let secrets = match fields.get("secrets") {
        Some(v) => parse_secrets(doc, v, &path)?,
        None => Vec::new(),
    };

    Ok(Step {
        index,
        line: doc.line(value.span().start),
        name,
        kind,
        cache,
        timeout,
        secrets,
        options: StepOptions::default(),
    })
}

/// `secrets = ["id", { id = "id", env = "VAR" }, { id = "id", target = "/run/secrets/x" }]`.
fn parse_secrets(
    doc: &Doc<'_>,
    value: &Value<'_>,
    path: &str,
) -> Result<Vec<SecretUse>, RecipeError> {
    const WHAT: &str = "'secrets' must be a list of secret ids or tables such as { id = \"npm\", env = \"NPM_TOKEN\" }";
    let DeValue::Array(items) = value.get_ref() else {
        return Err(doc.invalid(&value.span(), path, WHAT));
    };
    let mut out: Vec<SecretUse> = Vec::new();
    for item in items {
        let secret = match item.get_ref() {
            DeValue::String(id) => SecretUse {
                id: id.to_string(),
                target: None,
                env: None,
                required: true,
            },
            DeValue::Table(t) => {
                let keys = Keys {
                    known: &["id", "env", "target"],
                    later: &[],
                };
                let f = doc.fields(t, item.span(), path, &keys)?;
                let id = reader::non_empty_string(doc, f.require(doc, "id")?, path, "id")?;
                let env = match f.get("env") {
                    Some(v) => {
                        let name = reader::string(doc, v, path, "env")?;
                        reader::check_env_name(name)
                            .map_err(|why| doc.invalid(&v.span(), path, why.to_string()))?;
                        Some(name.to_string())
                    }
                    None => None,
                };
                let target = match f.get("target") {
                    Some(v) => {
                        let t = reader::string(doc, v, path, "target")?;
                        if !t.starts_with("/run/") || t.split('/').any(|c| c == "..") {
                            return Err(doc.invalid(
                                &v.span(),
                                path,
                                format!("secret target '{t}' must be a path under /run/ (a tmpfs: never in a layer)"),
                            ));
                        }
                        Some(t.to_string())
                    }
                    None => None,
                };
                if env.is_some() && target.is_some() {
                    return Err(doc.invalid(
                        &item.span(),
                        path,
                        "a secret is given as 'env' or as a file at 'target', not both",
                    ));
                }
                SecretUse {
                    id: id.to_string(),
                    target,
                    env,
                    required: true,
                }
            }
            _ => return Err(doc.invalid(&item.span(), path, WHAT)),
        };
        if !is_secret_id(&secret.id) {
            return Err(doc.invalid(
                &item.span(),
                path,
                format!(
                    "secret id '{}' must be letters, digits, '.', '_' or '-'",
                    crate::quote::excerpt(&secret.id)
                ),
            ));
        }
        out.push(secret);
    }
    Ok(out)
}

/// A secret id as BuildKit allows it, which is also a safe file name.
pub fn is_secret_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// `timeout = 600` (seconds) or `timeout = "10m"` / `"1h 30m"`: more than zero seconds.
fn parse_timeout(doc: &Doc<'_>, value: &Value<'_>, path: &str) -> Result<u64, RecipeError> {
    let seconds = match value.get_ref() {
        DeValue::Integer(_) => reader::integer(value).and_then(|i| u64::try_from(i).ok()),
        DeValue::String(s) => crate::units::parse_duration(s).ok(),
        _ => None,
    };
    seconds.filter(|s| *s > 0).ok_or_else(|| {
        doc.invalid(
            &value.span(),
            path,
            format!(
                "'timeout' must be a duration such as \"10m\", \"90s\" or \"1h 30m\", or a number of seconds above 0; got {}",
                doc.written(&value.span())
            ),
        )
    })
}

/// `cache = ["/abs/dir", ...]`: normalized absolute paths outside the
/// sandbox's own mounts.
fn parse_cache(doc: &Doc<'_>, value: &Value<'_>, path: &str) -> Result<Vec<String>, RecipeError> {
    let dirs = reader::string_list(doc, value, path, "cache")?;
    let mut out: Vec<String> = Vec::new();
    for dir in dirs {
        if let Err(why) = check_cache_dir(&dir) {
            return Err(doc.invalid(
                &value.span(),
                path,
                format!("cache directory '{dir}' {why}"),
            ));
        }
        if !out.contains(&dir) {
            out.push(dir);
        }
    }
    Ok(out)
}

/// Why `dir` cannot be a cache mount, if it cannot.
pub(crate) fn check_cache_dir(dir: &str) -> Result<(), &'static str> {
    if !dir.starts_with('/') {
        return Err("must be an absolute path, such as \"/root/.cargo/registry\"");
    }
    let parts: Vec<&str> = dir[1..].split('/').collect();
    if dir == "/"
        || parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err("must be a normalized path below / (no '.', '..' or '//', no trailing '/')");
    }
    if ["proc", "sys", "dev", "run"].contains(&parts[0]) {
        return Err("is inside /proc, /sys, /dev or /run, which the sandbox provides");
    }
    if dir.contains('\0') {
        return Err("contains a NUL character");
    }
    Ok(())
}

fn parse_run(doc: &Doc<'_>, value: &Value<'_>, path: &str) -> Result<RunCommand, RecipeError> {
    match value.get_ref() {
        DeValue::String(_) => {
            let line = reader::non_empty_string(doc, value, path, "run")?;
            Ok(RunCommand::Shell(line.to_string()))
        }
        DeValue::Array(items) => {
            if items.is_empty() {
                return Err(doc.invalid(
                    &value.span(),
                    path,
                    "'run' must not be an empty list; give the program and its arguments, such as [\"/bin/echo\", \"hi\"]",
                ));
            }
            if let Some(bad) = items.iter().find(|item| !item.get_ref().is_str()) {
                return Err(doc.invalid(&bad.span(), path, RUN_TYPE));
            }
            let argv = reader::string_list(doc, value, path, "run")?;
            if let Some(program) = items.first().filter(|p| p.get_ref().as_str() == Some("")) {
                return Err(doc.invalid(
                    &program.span(),
                    path,
                    "'run[0]' (the program to run) must not be empty",
                ));
            }
            Ok(RunCommand::Exec(argv))
        }
        _ => Err(doc.invalid(&value.span(), path, RUN_TYPE)),
    }
}
