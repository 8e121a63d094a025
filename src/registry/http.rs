//! The HTTP plumbing every boxwright transfer shares: registry requests
//! (`transport`) and pinned upstream files (`crate::artifact`) alike.
//!
//! - [`ClientSpec`] → [`build_client`]: reqwest on rustls (`ring`), the system
//!   roots (which honour `SSL_CERT_FILE`/`SSL_CERT_DIR`) plus extra CA files,
//!   the proxies of `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` except for loopback
//!   hosts, timeouts and redirects;
//! - [`Retry`]: the one retry policy (attempts, exponential backoff with
//!   jitter, `Retry-After`), with [`classify`] and [`Retry::status_can_heal`]
//!   deciding which failures are worth another attempt: never a TLS/HTTP
//!   mismatch, an untrusted certificate, an unknown host name, a 401 or a 404;
//! - [`is_loopback`]: whether a host is this machine.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;

use crate::registry::error::{RegistryError, Result};

/// How failed requests are tried again. One policy for every loop that
/// retries: requests, token fetches, uploads (whole or resumed chunks),
/// downloads, the HTTPS/HTTP probe and artifact downloads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Tries per operation (1 = no retry).
    pub max_attempts: u32,
    /// First delay; doubles with each failure, with jitter.
    pub base: Duration,
    /// Upper bound of one delay (a registry's `Retry-After` included).
    pub max: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max_attempts: 5,
            base: Duration::from_millis(250),
            max: Duration::from_secs(10),
        }
    }
}

impl Retry {
    /// The delay after failure number `failures` (1-based): exponential
    /// with jitter in [d/2, d], or what the server asked for in
    /// `Retry-After`, capped at [`Retry::max`] either way.
    pub fn delay(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(d) = retry_after {
            return d.min(self.max);
        }
        let exp = self
            .base
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16));
        let d = exp.min(self.max);
        let half = d / 2;
        half + Duration::from_nanos(fastrand::u64(0..=half.as_nanos() as u64))
    }

    /// Whether an answer with this status may succeed if asked again: 5xx,
    /// 408 and 429. Never 401 (the credentials stay wrong) or 404.
    pub fn status_can_heal(status: StatusCode) -> bool {
        status.is_server_error()
            || status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS
    }

    /// A fresh count of one operation's attempts under this policy.
    pub(crate) fn attempts(&self) -> Attempts<'_> {
        Attempts {
            policy: self,
            failures: 0,
        }
    }
}

/// The attempts of one operation under a [`Retry`] policy.
pub(crate) struct Attempts<'a> {
    policy: &'a Retry,
    failures: u32,
}

impl Attempts<'_> {
    /// Counts a failure that may heal. Returns the failures so far when
    /// another attempt is allowed, `None` when the attempts are used up.
    pub fn fail(&mut self) -> Option<u32> {
        self.failures += 1;
        (self.failures < self.policy.max_attempts.max(1)).then_some(self.failures)
    }

    /// Failures counted so far (after a last [`Attempts::fail`], the attempts made).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Waits the backoff due after the failures counted so far.
    pub async fn pause(&self, retry_after: Option<Duration>) {
        tokio::time::sleep(self.policy.delay(self.failures.max(1), retry_after)).await;
    }
}

/// The wait a `Retry-After` header asks for, in either of its forms
/// (RFC 9110 §10.2.3): delta-seconds (`120`) or an HTTP-date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`), counted from `now`. A date already
/// past asks for no wait; anything else is no answer (the backoff applies).
pub(crate) fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// [`parse_retry_after`] of a response's `Retry-After` header, if it has one.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(v, std::time::SystemTime::now())
}

/// What a request that got no HTTP answer says about trying again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Refused, reset, timed out or cut off: may heal.
    Transient,
    /// HTTPS reached a server that speaks plain HTTP: cannot heal.
    PlainHttp,
    /// The server's TLS certificate is not trusted: cannot heal.
    Certificate,
    /// The host name does not exist, or the request could not even be
    /// built (bad URL or header): cannot heal.
    Permanent,
}

/// Classifies a failed request (or a body that broke off).
pub(crate) fn classify(e: &reqwest::Error) -> Failure {
    if e.is_builder() {
        return Failure::Permanent;
    }
    match find_rustls(e) {
        // An HTTP server answers a TLS ClientHello with "HTTP/1.1 400 …",
        // whose first byte is no TLS record type.
        Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) => {
            return Failure::PlainHttp;
        }
        Some(rustls::Error::InvalidCertificate(_)) => return Failure::Certificate,
        _ => {}
    }
    // getaddrinfo's definite "no such name" (EAI_NONAME, EAI_NODATA), as
    // opposed to "Temporary failure in name resolution" (EAI_AGAIN).
    let text = error_chain(e);
    if text.contains("Name or service not known")
        || text.contains("No address associated with hostname")
    {
        return Failure::Permanent;
    }
    Failure::Transient
}

/// The rustls error somewhere in `e`'s causes. An `io::Error` hides the
/// error it wraps from `source()` (it returns the inner error's source), so
/// each one is opened with `get_ref`.
fn find_rustls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            && let Some(r) = find_rustls(inner)
        {
            return Some(r);
        }
        cur = err.source();
    }
    None
}

/// An error and its causes on one line (reqwest's Display hides the cause).
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s.replace('\n', " ")
}

/// Whether `host` (`name`, `name:port`, `[v6]:port` or a bare address) is
/// this machine: `localhost`, 127.0.0.0/8 or ::1. Such a host is never
/// reached through a proxy, and a registry there may speak plain HTTP
/// without being configured to (as Docker allows).
pub fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split_once(']').map_or(rest, |(a, _)| a)
    } else if host.matches(':').count() > 1 {
        // A bare IPv6 address: its colons are not a port separator.
        host
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `url` with `pairs` added to its query (form-encoded, as the
/// distribution and token APIs expect).
pub(crate) fn with_query(url: &str, pairs: &[(&str, &str)]) -> Result<String> {
    let mut u = reqwest::Url::parse(url)
        .map_err(|e| RegistryError::Invalid(format!("'{url}' is not a URL ({e})")))?;
    if !pairs.is_empty() {
        u.query_pairs_mut().extend_pairs(pairs);
    }
    Ok(u.into())
}

/// `pairs` as an `application/x-www-form-urlencoded` body. reqwest's own
/// `form` needs a feature (and serde_urlencoded) this crate does without;
/// a URL's query serializer is the same encoding.
pub(crate) fn form_body(pairs: &[(&str, &str)]) -> String {
    let mut u = reqwest::Url::parse("http://form.invalid/").expect("a constant URL");
    u.query_pairs_mut().extend_pairs(pairs);
    u.query().unwrap_or_default().to_string()
}

/// What an HTTP client is built from. Clients with equal specs are
/// interchangeable, so the registry transport keeps one per spec.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ClientSpec {
    /// Extra PEM CA files trusted beside the system roots.
    pub ca_files: Vec<PathBuf>,
    /// Verify server certificates (`false`: `--tls-verify=false`).
    pub verify: bool,
    /// Load the system roots (not needed by a client that only speaks plain HTTP).
    pub roots: bool,
    /// Never use a proxy (for loopback hosts, whatever `NO_PROXY` says).
    pub direct: bool,
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of an answer (not a whole transfer).
    pub read_timeout: Duration,
    /// Idle connections kept per host (parallel transfers reuse them).
    pub idle_per_host: usize,
    pub user_agent: String,
}

impl Default for ClientSpec {
    fn default() -> Self {
        ClientSpec {
            ca_files: Vec::new(),
            verify: true,
            roots: true,
            direct: false,
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(300),
            idle_per_host: 6,
            user_agent: format!("boxwright/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// Builds the client `spec` describes.
pub(crate) fn build_client(spec: &ClientSpec) -> Result<reqwest::Client> {
    let tls = crate::registry::tls::client_config(&spec.ca_files, spec.verify, spec.roots)?;
    let mut b = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent(spec.user_agent.clone())
        .connect_timeout(spec.connect_timeout)
        .read_timeout(spec.read_timeout)
        .pool_max_idle_per_host(spec.idle_per_host)
        .tcp_nodelay(true)
        // Registries redirect blob GETs to storage, download sites to CDNs;
        // reqwest drops the Authorization header when a redirect leaves the host.
        .redirect(reqwest::redirect::Policy::limited(10));
    if spec.direct {
        b = b.no_proxy();
    }
    b.build()
        .map_err(|e| RegistryError::Invalid(format!("HTTP client set-up: {}", error_chain(&e))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let r = Retry {
            max_attempts: 5,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for _ in 0..50 {
            let d1 = r.delay(1, None);
            assert!(
                d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100),
                "{d1:?}"
            );
            let d3 = r.delay(3, None);
            assert!(
                d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400),
                "{d3:?}"
            );
            let d10 = r.delay(10, None);
            assert!(
                d10 >= Duration::from_millis(500) && d10 <= Duration::from_secs(1),
                "{d10:?}"
            );
        }
        assert_eq!(
            r.delay(1, Some(Duration::from_secs(60))),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn attempts_stop_at_the_policy_limit() {
        let r = Retry {
            max_attempts: 3,
            ..Default::default()
        };
        let mut a = r.attempts();
        assert_eq!(a.fail(), Some(1));
        assert_eq!(a.fail(), Some(2));
        assert_eq!(a.fail(), None);
        assert_eq!(a.failures(), 3);
        let once = Retry {
            max_attempts: 1,
            ..Default::default()
        };
        assert_eq!(once.attempts().fail(), None);
    }

    #[test]
    fn retry_after_in_seconds_or_as_an_http_date() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        // 1_445_412_480 is Wed, 21 Oct 2015 07:28:00 GMT.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:07 GMT", now),
            Some(Duration::from_secs(7))
        );
        // The obsolete forms RFC 9110 says a recipient must accept.
        assert_eq!(
            parse_retry_after("Wednesday, 21-Oct-15 07:28:03 GMT", now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            parse_retry_after("Wed Oct 21 07:28:05 2015", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO),
            "a date already past"
        );
        for bad in ["", "-1", "1.5", "soon", "Wed, 32 Oct 2015 07:28:00 GMT"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn statuses_that_can_heal() {
        for s in [500, 502, 503, 408, 429] {
            assert!(Retry::status_can_heal(StatusCode::from_u16(s).unwrap()));
        }
        for s in [400, 401, 403, 404, 405, 416] {
            assert!(!Retry::status_can_heal(StatusCode::from_u16(s).unwrap()));
        }
    }

    #[test]
    fn loopback_hosts() {
        for h in [
            "127.0.0.1:5000",
            "127.1.2.3",
            "localhost",
            "LOCALHOST:80",
            "[::1]:5000",
            "[::1]",
            "::1",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "registry-1.docker.io",
            "10.0.0.1:5000",
            "localhost.example.com",
            "[2001:db8::1]:5000",
            "",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn queries_are_form_encoded_through_url() {
        assert_eq!(
            with_query(
                "http://t/token?x=1",
                &[("scope", "repository:a/b:pull,push"), ("service", "s s")]
            )
            .unwrap(),
            "http://t/token?x=1&scope=repository%3Aa%2Fb%3Apull%2Cpush&service=s+s"
        );
        assert_eq!(
            with_query(
                "http://r/v2/a/blobs/uploads/u?_state=x%2B",
                &[("digest", "sha256:0f")]
            )
            .unwrap(),
            "http://r/v2/a/blobs/uploads/u?_state=x%2B&digest=sha256%3A0f"
        );
        assert!(with_query("not a url", &[]).is_err());
        assert_eq!(
            form_body(&[("grant_type", "refresh_token"), ("scope", "a b")]),
            "grant_type=refresh_token&scope=a+b"
        );
    }

    /// An HTTP server meeting a TLS ClientHello: the client's error is
    /// classified as plain HTTP (not retried), a closed port as transient.
    #[test]
    fn https_to_a_plain_http_server_is_classified() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        });
        let client = build_client(&ClientSpec {
            direct: true,
            ..Default::default()
        })
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let e = rt
            .block_on(async {
                client
                    .get(format!("https://127.0.0.1:{port}/v2/"))
                    .send()
                    .await
            })
            .unwrap_err();
        assert_eq!(classify(&e), Failure::PlainHttp, "{}", error_chain(&e));
        server.join().unwrap();
        // Nothing listens there any more.
        let e = rt
            .block_on(async {
                client
                    .get(format!("https://127.0.0.1:{port}/v2/"))
                    .send()
                    .await
            })
            .unwrap_err();
        assert_eq!(classify(&e), Failure::Transient, "{}", error_chain(&e));
    }
}
