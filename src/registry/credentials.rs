//! Where credentials come from and where `login` puts them.
//!
//! Read, in order (first file with an entry wins), as containers/image does:
//! 1. `$REGISTRY_AUTH_FILE` if set, else `$XDG_RUNTIME_DIR/containers/auth.json`
//!    and `$XDG_CONFIG_HOME/containers/auth.json` (podman's, skopeo's);
//! 2. `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
//!
//! In each file: `credHelpers[host]`, then `auths` (a `host/repo` key beats a
//! `host` key), then `credsStore`. Helpers are the `docker-credential-NAME`
//! programs (`get`, server on stdin, JSON on stdout).
//!
//! `login` writes podman's file (`$REGISTRY_AUTH_FILE`, else
//! `$XDG_RUNTIME_DIR/containers/auth.json`, else
//! `$XDG_CONFIG_HOME/containers/auth.json`), so that a login is shared with
//! podman, buildah and skopeo; boxwright keeps no auth file of its own.
//!
//! The `docker_credential` crate was evaluated and not used: its credential
//! enum derives `Debug` with the password, its helper errors embed the
//! helper's stdout (which holds the secret), it matches `auths` keys only
//! verbatim (no `https://…/v1/` forms, no `host/repo` keys), and it cannot
//! write a login.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

use crate::registry::error::{RegistryError, Result};
use crate::registry::reference::DOCKER_HUB;
use crate::registry::secret::{Credential, Secret};

/// The server address Docker's helpers and config use for Docker Hub.
const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// The credential files boxwright reads and the one `login` writes.
#[derive(Clone, Debug)]
pub struct CredentialStore {
    read: Vec<PathBuf>,
    write: PathBuf,
    /// `PATH` for finding `docker-credential-*` helpers; the process's when `None`.
    helper_path: Option<OsString>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

impl CredentialStore {
    /// The files named by this process's environment.
    pub fn from_env() -> CredentialStore {
        CredentialStore::from_vars(|k| std::env::var_os(k))
    }

    /// The files an environment with these variables names (`HOME`,
    /// `REGISTRY_AUTH_FILE`, `XDG_RUNTIME_DIR`, `XDG_CONFIG_HOME`, `DOCKER_CONFIG`).
    pub fn from_vars(var: impl Fn(&str) -> Option<OsString>) -> CredentialStore {
        let xdg = crate::xdg::Xdg::with_lookup(var);
        let nonempty = |k: &str| xdg.var(k).map(PathBuf::from);
        // Without a home, `/` as containers/image does (its files are then
        // simply absent).
        let home = xdg.home().unwrap_or_else(|| PathBuf::from("/"));
        let config_home = xdg.config_home().unwrap_or_else(|| home.join(".config"));
        let config_auth = config_home.join("containers/auth.json");
        let runtime_auth = xdg.runtime_dir().map(|d| d.join("containers/auth.json"));
        let docker = nonempty("DOCKER_CONFIG")
            .unwrap_or_else(|| home.join(".docker"))
            .join("config.json");
        let (mut read, write) = match nonempty("REGISTRY_AUTH_FILE") {
            Some(f) => (vec![f.clone()], f),
            None => {
                let mut r = Vec::new();
                r.extend(runtime_auth.clone());
                r.push(config_auth.clone());
                (r, runtime_auth.unwrap_or(config_auth))
            }
        };
        read.push(docker);
        CredentialStore {
            read,
            write,
            helper_path: None,
        }
    }

    /// Explicit files: `read` in order, `write` for login/logout.
    pub fn with_files(read: Vec<PathBuf>, write: PathBuf) -> CredentialStore {
        CredentialStore {
            read,
            write,
            helper_path: None,
        }
    }

    /// Looks for `docker-credential-*` helpers in `path` (a `PATH`-style list)
    /// instead of the process's `PATH`.
    pub fn with_helper_path(mut self, path: impl Into<OsString>) -> CredentialStore {
        self.helper_path = Some(path.into());
        self
    }

    /// The files read, in order.
    pub fn read_paths(&self) -> &[PathBuf] {
        &self.read
    }

    /// The file `login` writes.
    pub fn write_path(&self) -> &Path {
        &self.write
    }

    /// The credential for `registry` (and `repository`, for per-repo entries),
    /// or `None` for anonymous access.
    pub fn get(&self, registry: &str, repository: Option<&str>) -> Result<Option<Credential>> {
        for path in &self.read {
            let Some(file) = read_auth_file(path)? else {
                continue;
            };
            if let Some(c) = lookup(&file, path, registry, repository, self.helper_path.as_ref())? {
                tracing::debug!(registry, file = %path.display(), user = c.username(), "using stored credentials");
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// Stores `credential` for `registry` in the write file (mode 0600),
    /// keeping every other entry. Returns the file written.
    pub fn store(&self, registry: &str, credential: &Credential) -> Result<PathBuf> {
        let mut doc = read_json(&self.write)?;
        let entry = match credential {
            Credential::Basic { username, password } => serde_json::json!({
                "auth": base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose()))
            }),
            Credential::IdentityToken(t) => serde_json::json!({ "identitytoken": t.expose() }),
        };
        let auths = doc
            .as_object_mut()
            .ok_or_else(|| bad_file(&self.write, "is not a JSON object"))?
            .entry("auths")
            .or_insert_with(|| serde_json::json!({}));
        let auths = auths
            .as_object_mut()
            .ok_or_else(|| bad_file(&self.write, "'auths' is not a JSON object"))?;
        auths.insert(registry.to_string(), entry);
        write_json(&self.write, &doc)?;
        Ok(self.write.clone())
    }

    /// Removes `registry`'s entry (all key forms) from the write file.
    /// Returns whether there was one.
    pub fn remove(&self, registry: &str) -> Result<bool> {
        if !self.write.exists() {
            return Ok(false);
        }
        let mut doc = read_json(&self.write)?;
        let keys = key_forms(registry);
        let mut removed = false;
        if let Some(auths) = doc.get_mut("auths").and_then(|a| a.as_object_mut()) {
            let before = auths.len();
            auths.retain(|k, _| !keys.iter().any(|f| f == k) && normalise_key(k) != registry);
            removed = auths.len() != before;
        }
        if removed {
            write_json(&self.write, &doc)?;
        }
        Ok(removed)
    }
}

fn bad_file(path: &Path, what: &str) -> RegistryError {
    RegistryError::Credentials {
        message: format!("{} {what}: fix or remove it", path.display()),
    }
}

fn read_auth_file(path: &Path) -> Result<Option<AuthFile>> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(None),
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| RegistryError::Credentials {
                    // serde_json's message names line and column, never the content.
                    message: format!(
                        "{} is not a valid auth file ({e}): fix or remove it",
                        path.display()
                    ),
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RegistryError::io(format!("reading {}", path.display()), e)),
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    match std::fs::read(path) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(serde_json::json!({})),
        Ok(b) => serde_json::from_slice(&b).map_err(|e| RegistryError::Credentials {
            message: format!(
                "{} is not valid JSON ({e}): fix or remove it",
                path.display()
            ),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(serde_json::json!({})),
        Err(e) => Err(RegistryError::io(format!("reading {}", path.display()), e)),
    }
}

fn write_json(path: &Path, doc: &serde_json::Value) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(doc).map_err(|e| RegistryError::Credentials {
        message: format!("cannot encode {}: {e}", path.display()),
    })?;
    // A folder made here is private (as podman makes it): others may not
    // even learn which registries this user logs in to.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| RegistryError::io(format!("creating {}", dir.display()), e))?;
    }
    // Mode 0600 from the first byte, then renamed over the old file: the
    // file holds credentials, and a reader never sees half of it.
    crate::store::replace_file(path, &bytes, Some(0o600))
        .map_err(|e| RegistryError::io(format!("writing {}", path.display()), e))
}

/// The `auths` keys that can name `registry`, most usual first.
fn key_forms(registry: &str) -> Vec<String> {
    let mut v = vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
        format!("https://{registry}/v1/"),
        format!("https://{registry}/v2/"),
    ];
    if registry == DOCKER_HUB {
        v.extend(
            [
                DOCKER_HUB_SERVER,
                "index.docker.io",
                "registry-1.docker.io",
                "https://registry-1.docker.io",
            ]
            .map(str::to_string),
        );
    }
    v
}

/// `https://host/v1/` → `host`; Docker Hub aliases → `docker.io`.
fn normalise_key(key: &str) -> String {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let k = k.trim_end_matches('/');
    let k = k
        .strip_suffix("/v1")
        .or_else(|| k.strip_suffix("/v2"))
        .unwrap_or(k);
    crate::registry::reference::normalise_registry(k)
}

fn lookup(
    file: &AuthFile,
    path: &Path,
    registry: &str,
    repository: Option<&str>,
    helper_path: Option<&OsString>,
) -> Result<Option<Credential>> {
    if let Some(helper) = file
        .cred_helpers
        .iter()
        .find(|(k, _)| normalise_key(k) == registry)
        .map(|(_, h)| h)
    {
        return run_helper(helper, registry, helper_path);
    }
    // Most specific key first: host/a/b, host/a, then host.
    if let Some(repo) = repository {
        let mut prefix = repo.to_string();
        loop {
            let key = format!("{registry}/{prefix}");
            if let Some(e) = file.auths.get(&key)
                && let Some(c) = decode_entry(e, path, &key)?
            {
                return Ok(Some(c));
            }
            match prefix.rfind('/') {
                Some(i) => prefix.truncate(i),
                None => break,
            }
        }
    }
    for (key, entry) in &file.auths {
        if normalise_key(key) == registry
            && let Some(c) = decode_entry(entry, path, key)?
        {
            return Ok(Some(c));
        }
    }
    match &file.creds_store {
        Some(store) if !store.is_empty() => run_helper(store, registry, helper_path),
        _ => Ok(None),
    }
}

fn decode_entry(e: &AuthEntry, path: &Path, key: &str) -> Result<Option<Credential>> {
    if let Some(t) = e.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credential::IdentityToken(Secret::new(t))));
    }
    let Some(auth) = e.auth.as_deref().filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let bad = || RegistryError::Credentials {
        message: format!(
            "{}: the 'auth' of '{key}' is not base64 of USER:PASSWORD; log in again",
            path.display()
        ),
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| bad())?;
    let pair = String::from_utf8(raw).map_err(|_| bad())?;
    let (user, pass) = pair.split_once(':').ok_or_else(bad)?;
    Ok(Some(Credential::basic(user, pass)))
}

fn run_helper(
    helper: &str,
    registry: &str,
    helper_path: Option<&OsString>,
) -> Result<Option<Credential>> {
    let program = format!("docker-credential-{helper}");
    let server = if registry == DOCKER_HUB {
        DOCKER_HUB_SERVER
    } else {
        registry
    };
    let fail = |message: String| RegistryError::Credentials {
        message: format!("{program} for {registry}: {message}"),
    };
    let mut cmd = Command::new(&program);
    if let Some(p) = helper_path {
        cmd.env("PATH", p);
    }
    let mut child = cmd
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            fail(format!(
                "cannot run it ({e}): install it or fix credHelpers/credsStore"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|e| fail(format!("cannot talk to it ({e})")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("cannot talk to it ({e})")))?;
    if !out.status.success() {
        // Helpers say "credentials not found" on stdout when they have none.
        let said = String::from_utf8_lossy(&out.stdout);
        if said.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        // Never echo the helper's output: it may hold the secret.
        return Err(fail(format!("it failed ({})", out.status)));
    }
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout).map_err(|_| {
        fail("its answer is not the JSON {\"Username\",\"Secret\"} it should print".into())
    })?;
    if answer.username == "<token>" {
        Ok(Some(Credential::IdentityToken(Secret::new(answer.secret))))
    } else {
        Ok(Some(Credential::basic(answer.username, answer.secret)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_in(dir: &Path) -> CredentialStore {
        let d = dir.to_path_buf();
        CredentialStore::from_vars(move |k| match k {
            "HOME" => Some(d.clone().into_os_string()),
            _ => None,
        })
    }

    #[test]
    fn paths_follow_the_environment() {
        let s = CredentialStore::from_vars(|k| match k {
            "HOME" => Some("/h".into()),
            "XDG_RUNTIME_DIR" => Some("/run/u".into()),
            _ => None,
        });
        assert_eq!(
            s.read_paths(),
            [
                PathBuf::from("/run/u/containers/auth.json"),
                PathBuf::from("/h/.config/containers/auth.json"),
                PathBuf::from("/h/.docker/config.json")
            ]
        );
        assert_eq!(s.write_path(), Path::new("/run/u/containers/auth.json"));
        let s = CredentialStore::from_vars(|k| match k {
            "HOME" => Some("/h".into()),
            "REGISTRY_AUTH_FILE" => Some("/a.json".into()),
            "DOCKER_CONFIG" => Some("/d".into()),
            _ => None,
        });
        assert_eq!(
            s.read_paths(),
            [PathBuf::from("/a.json"), PathBuf::from("/d/config.json")]
        );
        assert_eq!(s.write_path(), Path::new("/a.json"));
    }

    #[test]
    fn docker_config_entries_in_every_key_form() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".docker")).unwrap();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let cfg = serde_json::json!({"auths": {
            "https://index.docker.io/v1/": {"auth": b64("hub:hubpw")},
            "http://127.0.0.1:5000": {"auth": b64("u:p:with:colons")},
            "quay.io/org/app": {"auth": b64("repo:repopw")},
            "quay.io": {"auth": b64("host:hostpw")},
            "tok.io": {"identitytoken": "refresh"},
            "bad.io": {"auth": "!!!"}
        }});
        std::fs::write(dir.path().join(".docker/config.json"), cfg.to_string()).unwrap();
        let s = store_in(dir.path());
        let user =
            |r: &str, repo: Option<&str>| s.get(r, repo).unwrap().map(|c| c.username().to_string());
        assert_eq!(user("docker.io", None).as_deref(), Some("hub"));
        assert_eq!(
            s.get("127.0.0.1:5000", None).unwrap(),
            Some(Credential::basic("u", "p:with:colons"))
        );
        assert_eq!(
            user("quay.io", Some("org/app/sub")).as_deref(),
            Some("repo")
        );
        assert_eq!(user("quay.io", Some("other")).as_deref(), Some("host"));
        assert_eq!(user("tok.io", None).as_deref(), Some("<token>"));
        assert_eq!(user("nowhere.io", None), None);
        let e = s.get("bad.io", None).unwrap_err().to_string();
        assert!(e.contains("not base64") && e.contains("bad.io"), "{e}");
    }

    #[test]
    fn login_file_is_private_and_keeps_other_entries() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("sub/auth.json");
        let s = CredentialStore::with_files(vec![f.clone()], f.clone());
        s.store("a.io", &Credential::basic("x", "y")).unwrap();
        s.store("b.io", &Credential::basic("z", "w")).unwrap();
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(f.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700,
            "a folder made for the file is private"
        );
        // A file that was readable by others is replaced by a private one,
        // and no temp file is left beside it.
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        s.store("c.io", &Credential::basic("v", "u")).unwrap();
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = std::fs::read_dir(f.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["auth.json"]);
        assert_eq!(
            s.get("a.io", None).unwrap(),
            Some(Credential::basic("x", "y"))
        );
        assert!(s.remove("a.io").unwrap());
        assert!(!s.remove("a.io").unwrap());
        assert_eq!(s.get("a.io", None).unwrap(), None);
        assert_eq!(
            s.get("b.io", None).unwrap(),
            Some(Credential::basic("z", "w"))
        );
    }

    #[test]
    fn credential_helpers_are_asked_and_their_output_never_echoed() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        // Answers for one server, fails noisily for another, "not found" otherwise.
        let helper = bin.join("docker-credential-bwtest");
        std::fs::write(
            &helper,
            "#!/bin/sh\n[ \"$1\" = get ] || exit 9\nread s\n\
             if [ \"$s\" = helped.io ]; then echo '{\"ServerURL\":\"helped.io\",\"Username\":\"hu\",\"Secret\":\"hs\"}';\n\
             elif [ \"$s\" = https://index.docker.io/v1/ ]; then echo '{\"Username\":\"<token>\",\"Secret\":\"rt\"}';\n\
             elif [ \"$s\" = broken.io ]; then echo 'SECRET-LEAK'; exit 3;\n\
             else echo 'credentials not found in native keychain'; exit 1; fi\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cfg = dir.path().join("config.json");
        std::fs::write(
            &cfg,
            r#"{"credHelpers": {"helped.io": "bwtest", "broken.io": "bwtest", "none.io": "bwtest",
                                "https://index.docker.io/v1/": "bwtest"},
               "auths": {"stored.io": {}},
               "credsStore": "bwmissing"}"#,
        )
        .unwrap();
        let s = CredentialStore::with_files(vec![cfg], dir.path().join("w.json"))
            .with_helper_path(bin.as_os_str());
        assert_eq!(
            s.get("helped.io", None).unwrap(),
            Some(Credential::basic("hu", "hs"))
        );
        assert_eq!(
            s.get("docker.io", None).unwrap(),
            Some(Credential::IdentityToken("rt".into()))
        );
        assert_eq!(s.get("none.io", None).unwrap(), None);
        let e = s.get("broken.io", None).unwrap_err().to_string();
        assert!(e.contains("docker-credential-bwtest for broken.io"), "{e}");
        assert!(!e.contains("SECRET-LEAK"), "{e}");
        // An empty auths entry defers to credsStore, whose program is missing.
        let e = s.get("stored.io", None).unwrap_err().to_string();
        assert!(
            e.contains("docker-credential-bwmissing") && e.contains("install it"),
            "{e}"
        );
    }
}
