//! Build secrets (`--secret id=NAME,src=FILE` / `id=NAME,env=VAR`), as
//! BuildKit users know them: given only to the run steps that ask for them
//! (`secrets = [...]`), as a read-only file on the step's /run tmpfs or as an
//! environment variable; never in a layer, the history, a cache key, a log
//! line or an event (step output has their values masked).

use std::collections::BTreeMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::plan::PlannedStep;
use crate::recipe::is_secret_id;
use crate::sandbox::BindMount;

use super::BuildError;

/// Where a secret's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// A file on the build host.
    File(PathBuf),
    /// An environment variable of the build.
    Env(String),
}

/// One `--secret`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildSecret {
    pub id: String,
    pub source: SecretSource,
}

/// Why a `--secret` value does not read (never quoting a value).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "--secret '{0}': write id=NAME,src=FILE or id=NAME,env=VARIABLE (also type=file|env and source=)"
)]
pub struct SecretSyntax(String);

impl FromStr for BuildSecret {
    type Err = SecretSyntax;

    /// BuildKit's forms: `id=x,src=f`, `id=x,source=f`, `id=x,env=V`,
    /// `type=env,id=x,src=V`, and `id=x` alone (the env variable `x`, or
    /// the file `x`, as BuildKit looks them up).
    fn from_str(s: &str) -> Result<BuildSecret, SecretSyntax> {
        let bad = || SecretSyntax(crate::quote::excerpt(s));
        let mut id = None;
        let mut src = None;
        let mut env = None;
        let mut kind = None;
        for part in s.split(',') {
            let (k, v) = part.split_once('=').ok_or_else(bad)?;
            match k {
                "id" => id = Some(v.to_string()),
                "src" | "source" => src = Some(v.to_string()),
                "env" => env = Some(v.to_string()),
                "type" if v == "file" || v == "env" => kind = Some(v.to_string()),
                _ => return Err(bad()),
            }
        }
        let id = id.filter(|i| is_secret_id(i)).ok_or_else(bad)?;
        let source = match (kind.as_deref(), src, env) {
            (_, None, Some(e)) => SecretSource::Env(e),
            (Some("env"), Some(v), None) => SecretSource::Env(v),
            (_, Some(f), None) => SecretSource::File(PathBuf::from(f)),
            (None, None, None) if std::env::var_os(&id).is_some() => SecretSource::Env(id.clone()),
            (None, None, None) => SecretSource::File(PathBuf::from(&id)),
            _ => return Err(bad()),
        };
        Ok(BuildSecret { id, source })
    }
}

/// What one step gets of the secrets.
pub(crate) struct StepSecrets {
    /// Files, bound read-only on the step's /run tmpfs.
    pub mounts: Vec<BindMount>,
    /// Variables, in the step's environment only (never its cache key).
    pub env: Vec<(String, String)>,
}

/// The secrets of one build, read once; temp files made for env-sourced
/// secrets that steps read as files are removed when this is dropped.
pub(crate) struct Secrets {
    values: BTreeMap<String, (Vec<u8>, PathBuf)>,
    /// A temp dir of the store holding the env-sourced secrets as files.
    dir: Option<PathBuf>,
}

impl Secrets {
    /// Reads every secret; env-sourced ones are written to 0600 files in a
    /// temp dir of `store` so a step may read them as files too.
    pub(crate) fn load(
        list: &[BuildSecret],
        store: &crate::store::Store,
    ) -> Result<Secrets, BuildError> {
        let mut s = Secrets {
            values: BTreeMap::new(),
            dir: None,
        };
        for b in list {
            let value = match &b.source {
                SecretSource::File(path) => {
                    let real = std::fs::canonicalize(path).map_err(|e| {
                        BuildError::BadInput(format!(
                            "--secret id={}: {}: {e}",
                            b.id,
                            path.display()
                        ))
                    })?;
                    std::fs::read(&real).map_err(|e| {
                        BuildError::BadInput(format!(
                            "--secret id={}: {}: {e}",
                            b.id,
                            path.display()
                        ))
                    })?
                }
                SecretSource::Env(var) => std::env::var_os(var)
                    .ok_or_else(|| {
                        BuildError::BadInput(format!(
                            "--secret id={}: the environment variable {var} is not set",
                            b.id
                        ))
                    })?
                    .into_encoded_bytes(),
            };
            // Every secret is a private copy, read-only for its owner (root
            // inside the step), as Docker mounts secrets (mode 0400): the
            // user's file keeps its own mode and is never bound itself.
            let tmp = match &s.dir {
                Some(d) => d.clone(),
                None => s.dir.insert(store.temp_dir()?).clone(),
            };
            let file = tmp.join(format!(".boxwright-secret-{}-{}", std::process::id(), b.id));
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o400)
                .open(&file)
                .map_err(|e| BuildError::BadInput(format!("--secret id={}: {e}", b.id)))?;
            std::io::Write::write_all(&mut f, &value)
                .map_err(|e| BuildError::BadInput(format!("--secret id={}: {e}", b.id)))?;
            s.values.insert(b.id.clone(), (value, file));
        }
        Ok(s)
    }

    /// The mounts and environment variables that give `ps` its secrets.
    pub(crate) fn for_step(&self, ps: &PlannedStep) -> Result<StepSecrets, BuildError> {
        let mut mounts = Vec::new();
        let mut env = Vec::new();
        for want in &ps.step.secrets {
            if !want.required && !self.values.contains_key(&want.id) {
                continue;
            }
            let Some((value, file)) = self.values.get(&want.id) else {
                return Err(BuildError::BadInput(format!(
                    "step {} asks for the secret '{}': give it with --secret id={},src=FILE (or env=VARIABLE)",
                    ps.number, want.id, want.id
                )));
            };
            match &want.env {
                Some(var) => env.push((var.clone(), String::from_utf8_lossy(value).into_owned())),
                None => mounts.push(BindMount {
                    source: file.clone(),
                    target: want
                        .target
                        .clone()
                        .unwrap_or_else(|| format!("/run/secrets/{}", want.id)),
                    readonly: true,
                }),
            }
        }
        Ok(StepSecrets { mounts, env })
    }

    /// `line` with every secret value (of 4 bytes or more) masked as `***`.
    pub(crate) fn scrub(&self, line: &str) -> String {
        let mut out = line.to_string();
        for (value, _) in self.values.values() {
            let v = String::from_utf8_lossy(value);
            let v = v.trim_end_matches(['\n', '\r']);
            if v.len() >= 4 && out.contains(v) {
                out = out.replace(v, "***");
            }
        }
        out
    }
}

impl Drop for Secrets {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildkit_forms_parse() {
        let s: BuildSecret = "id=npm,src=/home/me/.npmrc".parse().unwrap();
        assert_eq!(s.source, SecretSource::File("/home/me/.npmrc".into()));
        let s: BuildSecret = "id=tok,env=GITHUB_TOKEN".parse().unwrap();
        assert_eq!(s.source, SecretSource::Env("GITHUB_TOKEN".into()));
        let s: BuildSecret = "type=env,id=tok,src=T".parse().unwrap();
        assert_eq!(s.source, SecretSource::Env("T".into()));
        for bad in [
            "",
            "src=x",
            "id=,src=x",
            "id=a b,src=x",
            "id=x,src=a,env=b",
            "id=x,what=1",
        ] {
            assert!(bad.parse::<BuildSecret>().is_err(), "{bad}");
        }
    }
}
