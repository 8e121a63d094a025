//! Download mirrors: URL prefix rewrites (`--mirror FROM=TO`, `[mirrors]` in
//! registries.toml) that send every download of a build to internal servers.
//!
//! A rule maps a directory URL to another: a download whose URL starts with
//! FROM is fetched from TO followed by the rest of the URL. Both ends are
//! normalized to end in `/`, and the longest matching FROM wins (as git's
//! `url.<base>.insteadOf`). Rules apply to:
//!
//! - artifacts fetched on the build host (the catalog's upstream URLs);
//! - run steps, through the host side of their environment (as proxies):
//!   `NPM_CONFIG_REGISTRY`, `PIP_INDEX_URL` (+ `PIP_TRUSTED_HOST` for plain
//!   HTTP) and code-server's `EXTENSIONS_GALLERY` when a rule covers the npm
//!   registry, PyPI or Open VSX; none of them is part of the image config;
//! - apt inside run steps: the sandbox hands apt rewritten copies of the
//!   image's sources on its /run tmpfs ([`apt`]), so layers keep the originals.
//!
//! A mirror URL may carry `user:password@`: it is never shown ([`redact`]),
//! and step output has it masked ([`Mirrors::scrub`]).

pub mod apt;

use std::fmt;

use serde::{Deserialize, Serialize};

/// The npm registry, as npm names it by default.
pub const NPM_REGISTRY: &str = "https://registry.npmjs.org/";
/// PyPI's simple index, pip's default index URL.
pub const PYPI_INDEX: &str = "https://pypi.org/simple/";
/// Open VSX, code-server's default extension gallery.
pub const OPEN_VSX: &str = "https://open-vsx.org/";
/// The public Debian and Ubuntu archives; `--offline` wants one of them
/// mirrored before it lets a step install apt packages.
pub const APT_ARCHIVES: [&str; 7] = [
    "http://deb.debian.org/",
    "https://deb.debian.org/",
    "http://security.debian.org/",
    "http://archive.ubuntu.com/",
    "http://security.ubuntu.com/",
    "http://ports.ubuntu.com/",
    "https://archive.ubuntu.com/",
];

/// One rewrite: URLs under `from` go to `to`. Both end in `/`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    from: String,
    to: String,
}

/// Why a rule is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RuleError(String);

impl Rule {
    /// A rule from two http(s) URLs; a trailing `/` is added to each.
    pub fn new(from: &str, to: &str) -> Result<Rule, RuleError> {
        let (from, to) = (from.trim(), to.trim());
        for (what, url) in [("FROM", from), ("TO", to)] {
            if let Err(why) = check_url(url) {
                // A URL that failed the check may hide a password where
                // `redact` does not look: mask up to its last '@'.
                return Err(RuleError(format!(
                    "mirror {}={}: {what} {why}",
                    redact_unchecked(from),
                    redact_unchecked(to)
                )));
            }
        }
        Ok(Rule {
            from: with_slash(from),
            to: with_slash(to),
        })
    }

    /// Parses `FROM=TO` (as `--mirror` takes it).
    pub fn parse(text: &str) -> Result<Rule, RuleError> {
        match text.split_once('=') {
            Some((from, to)) => Rule::new(from, to),
            None => Err(RuleError(format!(
                "mirror '{}' is not FROM=TO: give two URLs, e.g. --mirror http://deb.debian.org/=http://mirror.internal/debian/",
                redact(text)
            ))),
        }
    }

    pub fn from(&self) -> &str {
        &self.from
    }

    pub fn to(&self) -> &str {
        &self.to
    }

    /// `url` rewritten if it is under `from` (or is `from` without its `/`).
    fn apply(&self, url: &str) -> Option<String> {
        if let Some(rest) = url.strip_prefix(&self.from) {
            return Some(format!("{}{rest}", self.to));
        }
        (url.len() + 1 == self.from.len() && self.from.starts_with(url))
            .then(|| self.to.trim_end_matches('/').to_string())
    }
}

/// Rules print with their credentials masked.
impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", redact(&self.from), redact(&self.to))
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", redact(&self.from), redact(&self.to))
    }
}

fn with_slash(url: &str) -> String {
    if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    }
}

/// An absolute http(s) URL with a host, without spaces, query or fragment.
fn check_url(url: &str) -> Result<(), &'static str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("must be an http:// or https:// URL")?;
    let authority = rest.split('/').next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err("has no host");
    }
    // A password with a raw '/' ends the authority early ("http://u:p/w@h/"):
    // what is left looks like HOST:PORT with a port that is no number, and the
    // password would escape redaction. Such URLs are refused.
    let port = match host.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map(|(_, after)| after.strip_prefix(':')),
        None => Some(host.rsplit_once(':').map(|(_, p)| p)),
    };
    match port {
        None => return Err("has an unterminated [IPv6] host"),
        Some(Some(p)) if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(
                "has a port that is no number (percent-encode '/', '@' and ':' in a user name or password)",
            );
        }
        _ => {}
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains a space or control character");
    }
    if url.contains(['?', '#']) {
        return Err("must not have a query or fragment");
    }
    Ok(())
}

/// `url` with any `user:password@` shown as `***@`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// `url` with everything between `://` and its last `@` shown as `***`: for
/// URLs that may not parse, where any `@` may end a password.
fn redact_unchecked(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) if at > scheme.len() => {
            format!("{scheme}://***@{}", &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// The `user:password` part of a URL, if any.
fn userinfo(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    authority.rfind('@').map(|at| &authority[..at])
}

/// `host[:port]` of a URL, without credentials.
fn host_port(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    authority.rsplit('@').next().unwrap_or("")
}

/// A build's mirror rules, longest FROM first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mirrors {
    rules: Vec<Rule>,
}

impl Mirrors {
    /// The rules in order of precedence: a later rule with the same FROM
    /// replaces an earlier one (so the command line, given last, wins over
    /// the config file).
    pub fn new(rules: impl IntoIterator<Item = Rule>) -> Mirrors {
        let mut kept: Vec<Rule> = Vec::new();
        for rule in rules {
            kept.retain(|r| r.from != rule.from);
            kept.push(rule);
        }
        kept.sort_by(|a, b| b.from.len().cmp(&a.from.len()).then(a.from.cmp(&b.from)));
        Mirrors { rules: kept }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Where `url` is downloaded from, if a rule covers it.
    pub fn rewrite(&self, url: &str) -> Option<String> {
        self.rules.iter().find_map(|r| r.apply(url))
    }

    /// Whether a rule covers `url`.
    pub fn covers(&self, url: &str) -> bool {
        self.rewrite(url).is_some()
    }

    /// Whether a rule covers `url` or a URL under it (the Debian archive
    /// `http://deb.debian.org/debian/` is under `http://deb.debian.org/`).
    pub fn reaches(&self, url: &str) -> bool {
        self.covers(url) || self.rules.iter().any(|r| r.from.starts_with(url))
    }

    /// The variables that point package managers in a run step at the
    /// mirrors. Given to steps as proxies are, never put in the image.
    pub fn step_env(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        if let Some(npm) = self.rewrite(NPM_REGISTRY) {
            env.push(("NPM_CONFIG_REGISTRY".to_string(), npm));
        }
        if let Some(pypi) = self.rewrite(PYPI_INDEX) {
            if pypi.starts_with("http://") {
                env.push(("PIP_TRUSTED_HOST".to_string(), host_port(&pypi).to_string()));
            }
            env.push(("PIP_INDEX_URL".to_string(), pypi));
        }
        if self.covers(OPEN_VSX) {
            let url = |u: &str| self.rewrite(u).unwrap_or_else(|| u.to_string());
            let gallery = serde_json::json!({
                "serviceUrl": url("https://open-vsx.org/vscode/gallery"),
                "itemUrl": url("https://open-vsx.org/vscode/item"),
                "resourceUrlTemplate": url(
                    "https://open-vsx.org/vscode/unpkg/{publisher}/{name}/{version}/{path}"
                ),
            });
            env.push(("EXTENSIONS_GALLERY".to_string(), gallery.to_string()));
        }
        env
    }

    /// `text` with the credentials of every mirror URL masked, for step
    /// output that may echo a URL (a package manager's log line).
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for rule in &self.rules {
            for url in [&rule.from, &rule.to] {
                let Some(info) = userinfo(url).filter(|i| !i.is_empty()) else {
                    continue;
                };
                out = out.replace(info, "***");
                // A tool may print the password alone; a very short one
                // would mask unrelated text, and is masked with the user only.
                if let Some((_, password)) = info.split_once(':')
                    && password.len() >= 6
                {
                    out = out.replace(password, "***");
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
