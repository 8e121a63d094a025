//! Image references as users write them: `ubuntu:24.04`, `host:5000/a/b:tag`,
//! `name@sha256:…`, `name:tag@sha256:…`.
//!
//! The grammar is distribution's (`distribution/reference`), with Docker's
//! normalisation: a reference without a registry is on `docker.io`, and a
//! one-component repository there lives under `library/`.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

/// The registry a reference without a host names.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that actually serves the distribution API for `docker.io`.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The tag a reference without tag or digest means.
pub const DEFAULT_TAG: &str = "latest";

const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// Why a reference string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("empty image reference: write NAME[:TAG][@sha256:DIGEST], e.g. debian:bookworm")]
    Empty,
    #[error(
        "invalid image reference '{reference}': repository component '{component}' must be lower-case letters, digits and single '.', '_', '__' or '-' separators"
    )]
    Component {
        reference: String,
        component: String,
    },
    #[error(
        "invalid image reference '{reference}': registry host '{host}' is not a valid host[:port]"
    )]
    Host { reference: String, host: String },
    #[error(
        "invalid image reference '{reference}': tag '{tag}' must be 1-128 letters, digits, '_', '.' or '-' and not start with '.' or '-'"
    )]
    Tag { reference: String, tag: String },
    #[error("invalid image reference '{reference}': {message}")]
    Digest { reference: String, message: String },
    #[error("invalid image reference '{reference}': repository name is longer than 255 characters")]
    TooLong { reference: String },
    /// A registry namespace (`--template-registry`) that does not start
    /// with a registry host, or has a scheme.
    #[error(
        "'{namespace}' is not a registry namespace: write HOST[/ORG] without a scheme, e.g. registry.example.com/team or 127.0.0.1:5000/team"
    )]
    NotANamespace { namespace: String },
    /// A namespace whose names are not valid references.
    #[error("'{namespace}' is not a registry namespace: {source}")]
    Namespace {
        namespace: String,
        #[source]
        source: Box<ReferenceError>,
    },
}

/// A parsed, normalised image reference.
///
/// Always names a registry and a repository; `tag` is `latest` when neither a
/// tag nor a digest was written. When both are present the digest wins for
/// fetching and the tag is informational (as Docker does).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Builds a reference from parts that are already valid (e.g. a tag
    /// taken from a registry's tag list). Use [`str::parse`] for user input.
    pub fn new(
        registry: &str,
        repository: &str,
        tag: Option<&str>,
        digest: Option<Digest>,
    ) -> Self {
        Reference {
            registry: normalise_registry(registry),
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest,
        }
    }

    /// The registry as written and normalised (`docker.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host:port that serves the distribution API for this registry
    /// (`registry-1.docker.io` for `docker.io`).
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// The repository path (`library/ubuntu`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What goes after `/manifests/` in the API: the digest if there is one,
    /// else the tag (`latest` by default).
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// The same repository pinned to `digest` (the tag is dropped).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same registry with another repository (keeps tag and digest).
    pub fn with_repository(&self, repository: &str) -> Reference {
        Reference {
            repository: repository.to_string(),
            ..self.clone()
        }
    }

    /// The reference of `name` (`repo/path:tag`) under a registry namespace
    /// `HOST[/ORG…]` written by a user (`--template-registry`). The
    /// namespace must start with a registry host, so that `team` alone is
    /// refused instead of being read as Docker Hub's `team`.
    pub fn in_namespace(namespace: &str, name: &str) -> Result<Reference, ReferenceError> {
        let ns = namespace.trim_end_matches('/');
        let first = ns.split('/').next().unwrap_or_default();
        if ns.contains("://") || !looks_like_host(first) {
            return Err(ReferenceError::NotANamespace {
                namespace: namespace.to_string(),
            });
        }
        format!("{ns}/{name}")
            .parse()
            .map_err(|e: ReferenceError| ReferenceError::Namespace {
                namespace: namespace.to_string(),
                source: Box::new(e),
            })
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

/// Maps a registry name to the host that serves its API.
pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_API
    } else {
        registry
    }
}

/// Normalises the aliases of Docker Hub to `docker.io`.
pub fn normalise_registry(registry: &str) -> String {
    match registry {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_string()
        }
        other => other.to_string(),
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        parse(s)
    }
}

fn parse(s: &str) -> Result<Reference, ReferenceError> {
    if s.is_empty() {
        return Err(ReferenceError::Empty);
    }
    let reference = s.to_string();
    let (rest, digest) = match s.split_once('@') {
        Some((rest, d)) => {
            let digest = d.parse::<Digest>().map_err(|e| ReferenceError::Digest {
                reference: reference.clone(),
                message: e.to_string(),
            })?;
            (rest, Some(digest))
        }
        None => (s, None),
    };
    // A tag is after the last ':' that follows the last '/'; a ':' before it is a port.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => {
            let i = last_slash + i;
            (&rest[..i], Some(&rest[i + 1..]))
        }
        None => (rest, None),
    };
    if let Some(tag) = tag
        && !valid_tag(tag)
    {
        return Err(ReferenceError::Tag {
            reference,
            tag: tag.to_string(),
        });
    }
    if name.is_empty() {
        return Err(ReferenceError::Empty);
    }
    let (registry, repository) = match name.split_once('/') {
        Some((first, path)) if looks_like_host(first) => (first.to_string(), path.to_string()),
        _ => (DOCKER_HUB.to_string(), name.to_string()),
    };
    if registry != DOCKER_HUB && !valid_host(&registry) {
        return Err(ReferenceError::Host {
            reference,
            host: registry,
        });
    }
    let registry = normalise_registry(&registry);
    let repository = if registry == DOCKER_HUB && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository
    };
    for component in repository.split('/') {
        if !valid_component(component) {
            return Err(ReferenceError::Component {
                reference,
                component: component.to_string(),
            });
        }
    }
    if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
        return Err(ReferenceError::TooLong { reference });
    }
    let tag = match (tag, &digest) {
        (Some(t), _) => Some(t.to_string()),
        (None, Some(_)) => None,
        (None, None) => Some(DEFAULT_TAG.to_string()),
    };
    Ok(Reference {
        registry,
        repository,
        tag,
        digest,
    })
}

/// True when `name` (`[HOST/]REPO[:TAG]`) starts with a registry host, as
/// opposed to a bare name that Docker would read as Docker Hub's and
/// boxwright reads as a local store name.
pub fn names_a_registry(name: &str) -> bool {
    name.split_once('/')
        .is_some_and(|(first, _)| looks_like_host(first))
}

/// Docker's rule: the first component is a host when it has a '.' or a ':'
/// or is `localhost` (or has upper case, which a repository cannot).
fn looks_like_host(first: &str) -> bool {
    first.contains('.')
        || first.contains(':')
        || first == "localhost"
        || first.bytes().any(|b| b.is_ascii_uppercase())
}

fn valid_host(host: &str) -> bool {
    let (name, port) = if let Some(inner) = host.strip_prefix('[') {
        // [ipv6]:port
        match inner.split_once(']') {
            Some((addr, rest)) => {
                if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                    return false;
                }
                ("x", rest.strip_prefix(':'))
            }
            None => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        }
    };
    if let Some(p) = port
        && (p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+ ( ( [._] | __ | -+ ) [a-z0-9]+ )*
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_TAG_LEN
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || x == b'_' || x == b'.' || x == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn p(s: &str) -> Reference {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn a_registry_host_is_told_from_a_bare_name() {
        for n in [
            "127.0.0.1:5000/x:1",
            "localhost/x",
            "registry.example/team/x:1",
        ] {
            assert!(names_a_registry(n), "{n}");
        }
        for n in ["web-box:1", "team/web-box", "web-box"] {
            assert!(!names_a_registry(n), "{n}");
        }
    }

    #[test]
    fn docker_hub_names_are_normalised() {
        let r = p("ubuntu:24.04");
        assert_eq!(r.to_string(), "docker.io/library/ubuntu:24.04");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(p("ubuntu").to_string(), "docker.io/library/ubuntu:latest");
        assert_eq!(p("bitnami/redis").repository(), "bitnami/redis");
        assert_eq!(p("index.docker.io/foo/bar:1").registry(), "docker.io");
        assert_eq!(p("docker.io/debian").repository(), "library/debian");
    }

    #[test]
    fn hosts_ports_tags_and_digests() {
        let r = p("localhost:5000/a/b:t");
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("localhost:5000", "a/b", Some("t"))
        );
        assert_eq!(r.api_host(), "localhost:5000");
        let r = p(&format!("127.0.0.1:5000/x@{D}"));
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().to_string(), D);
        assert_eq!(r.manifest_reference(), D);
        assert_eq!(r.to_string(), format!("127.0.0.1:5000/x@{D}"));
        let r = p(&format!("quay.io/org/app:v1.2@{D}"));
        assert_eq!(r.tag(), Some("v1.2"));
        assert_eq!(r.manifest_reference(), D);
        assert_eq!(r.to_string(), format!("quay.io/org/app:v1.2@{D}"));
        assert_eq!(p("localhost/app").registry(), "localhost");
        assert_eq!(p("[::1]:5000/app:x").registry(), "[::1]:5000");
        assert_eq!(p("a__b/c.d/e-f--g:T_1").repository(), "a__b/c.d/e-f--g");
    }

    #[test]
    fn names_under_a_namespace_need_a_host_first() {
        let r = Reference::in_namespace("127.0.0.1:5000/team/", "boxwright/template-rust:latest")
            .unwrap();
        assert_eq!(
            r.to_string(),
            "127.0.0.1:5000/team/boxwright/template-rust:latest"
        );
        let r =
            Reference::in_namespace("registry.example.com", "boxwright/template-x:latest").unwrap();
        assert_eq!(r.repository(), "boxwright/template-x");
        for bad in [
            "team",
            "team/sub",
            "https://r.example.com/team",
            "r.example.com/Team",
            "",
        ] {
            let e = Reference::in_namespace(bad, "a:latest").unwrap_err();
            assert!(
                matches!(
                    e,
                    ReferenceError::NotANamespace { .. } | ReferenceError::Namespace { .. }
                ),
                "{bad}: {e}"
            );
            assert!(
                e.to_string().contains("not a registry namespace"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "docker.io/library/ubuntu:24.04",
            "localhost:5000/a/b:t",
            &format!("ghcr.io/o/r:t@{D}"),
        ] {
            assert_eq!(p(s).to_string(), s);
            assert_eq!(p(&p(s).to_string()), p(s));
        }
    }

    #[test]
    fn malformed_references_say_what_is_wrong() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("Ubuntu/Foo", "component 'Foo'"),
            ("ubuntu:", "tag ''"),
            ("ubuntu:-x", "tag '-x'"),
            ("ubuntu@sha256:abc", "not a digest"),
            ("ubuntu@md5:abc", "not supported"),
            ("a//b", "component ''"),
            ("a/b_/c", "component 'b_'"),
            ("local_host:5000/x", "host 'local_host:5000'"),
            ("host:99x/a", "host"),
            (":tag", "empty"),
            ("bad-.host.com/a", "host 'bad-.host.com'"),
        ];
        for (input, needle) in cases {
            let e = input.parse::<Reference>().unwrap_err().to_string();
            assert!(e.contains(needle), "{input:?}: {e}");
            assert!(!e.contains('\n'));
        }
        let long = format!("h.io/{}", "a".repeat(300));
        assert!(matches!(
            long.parse::<Reference>(),
            Err(ReferenceError::TooLong { .. })
        ));
        assert!(
            format!("a:{}", "t".repeat(129))
                .parse::<Reference>()
                .is_err()
        );
    }

    #[test]
    fn with_helpers_keep_the_repository() {
        let r = p("localhost:5000/a:t");
        let d: Digest = D.parse().unwrap();
        assert_eq!(r.with_tag("u").to_string(), "localhost:5000/a:u");
        assert_eq!(
            r.with_digest(d.clone()).to_string(),
            format!("localhost:5000/a@{D}")
        );
        assert_eq!(r.with_repository("b").to_string(), "localhost:5000/b:t");
        assert_eq!(r.name(), "localhost:5000/a");
    }
}
