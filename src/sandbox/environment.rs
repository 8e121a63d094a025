//! The environment a step runs with.

use super::spec::{CA_BUNDLE_PATH, HostEnv};

/// `PATH` when neither the image nor the step sets one (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// boxwright's apt configuration snippet, on the /run tmpfs.
pub(crate) const APT_CONF_PATH: &str = "/run/boxwright/apt.conf";

/// Where apt finds the image's sources rewritten for the download mirrors.
pub(crate) const APT_SOURCES_DIR: &str = "/run/boxwright/apt";

/// In a single-id namespace apt cannot drop to its `_apt` sandbox user.
/// `APT_CONFIG` names a file apt reads *in addition to* /etc/apt/apt.conf
/// and apt.conf.d (checked with `apt-config dump`), before them; it lives
/// on /run so nothing reaches the layer, unlike a file in apt.conf.d.
pub(crate) const APT_CONF_FAKE_ROOT: &str = "APT::Sandbox::User \"root\";\n";

/// With apt's caches mounted, apt keeps what it downloads (the `apt` command
/// otherwise deletes it), so the next build finds it in the cache mount.
pub(crate) const APT_CONF_KEEP: &str = "APT::Keep-Downloaded-Packages \"true\";\n\
Binary::apt::APT::Keep-Downloaded-Packages \"true\";\n";

/// The snippet for a step: the fake-root line and/or the keep-downloads lines.
pub(crate) fn apt_conf(fake_root: bool, apt_cache: bool) -> String {
    let mut text = String::new();
    if fake_root {
        text.push_str(APT_CONF_FAKE_ROOT);
    }
    if apt_cache {
        text.push_str(APT_CONF_KEEP);
    }
    text
}

/// Variables that point common tools at a CA bundle.
const CA_VARS: [&str; 6] = [
    "SSL_CERT_FILE",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "PIP_CERT",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
];

/// Set to `1` in steps of an `--offline` build (read by recipes/scripts/lib.sh).
pub const OFFLINE_VAR: &str = "BOXWRIGHT_OFFLINE";

/// Host proxies, mirror variables, then CA variables and `APT_CONFIG`, then
/// the step's own variables (which win), plus a default `PATH` and `HOME`
/// when unset.
pub(crate) fn step_env(
    spec_env: &[(String, String)],
    host: &HostEnv,
    apt_conf: bool,
    uid: u32,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    for (k, v) in &host.proxies {
        set(&mut env, k, v);
    }
    for (k, v) in host.mirrors.step_env() {
        set(&mut env, &k, &v);
    }
    if host.offline {
        set(&mut env, OFFLINE_VAR, "1");
    }
    if host.ca_bundle.is_some() {
        for var in CA_VARS {
            set(&mut env, var, CA_BUNDLE_PATH);
        }
    }
    if apt_conf {
        set(&mut env, "APT_CONFIG", APT_CONF_PATH);
    }
    for (k, v) in spec_env {
        set(&mut env, k, v);
    }
    if !env.iter().any(|(k, _)| k == "PATH") {
        set(&mut env, "PATH", DEFAULT_PATH);
    }
    if !env.iter().any(|(k, _)| k == "HOME") {
        set(&mut env, "HOME", if uid == 0 { "/root" } else { "/" });
    }
    env
}

/// Sets `key` to `value`, replacing an earlier value in place.
fn set(env: &mut Vec<(String, String)>, key: &str, value: &str) {
    match env.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value.to_string(),
        None => env.push((key.to_string(), value.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
        env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn step_values_win_and_defaults_fill_gaps() {
        let host = HostEnv {
            proxies: vec![("https_proxy".into(), "http://proxy:3128".into())],
            ca_bundle: Some("/etc/ssl/certs/ca-certificates.crt".into()),
            mirrors: crate::mirror::Mirrors::new([crate::mirror::Rule::parse(
                "https://registry.npmjs.org/=http://npm.internal/",
            )
            .unwrap()]),
            offline: true,
        };
        let spec = vec![("SSL_CERT_FILE".to_string(), "/mine.pem".to_string())];
        let env = step_env(&spec, &host, true, 1000);
        assert_eq!(get(&env, OFFLINE_VAR), Some("1"));
        let online = step_env(&[], &HostEnv::default(), false, 0);
        assert_eq!(get(&online, OFFLINE_VAR), None);
        assert_eq!(get(&env, "https_proxy"), Some("http://proxy:3128"));
        assert_eq!(
            get(&env, "NPM_CONFIG_REGISTRY"),
            Some("http://npm.internal/")
        );
        assert_eq!(get(&env, "SSL_CERT_FILE"), Some("/mine.pem"));
        assert_eq!(get(&env, "GIT_SSL_CAINFO"), Some(CA_BUNDLE_PATH));
        assert_eq!(get(&env, "APT_CONFIG"), Some(APT_CONF_PATH));
        assert_eq!(get(&env, "PATH"), Some(DEFAULT_PATH));
        assert_eq!(get(&env, "HOME"), Some("/"));
        assert_eq!(env.iter().filter(|(k, _)| k == "SSL_CERT_FILE").count(), 1);
    }

    #[test]
    fn nothing_from_the_host_without_proxies_or_ca() {
        let env = step_env(&[], &HostEnv::default(), false, 0);
        let keys: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["PATH", "HOME"]);
        assert_eq!(get(&env, "HOME"), Some("/root"));
    }
}
