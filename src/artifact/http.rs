//! Downloading one URL into a writer: reqwest with rustls (`ring`), the
//! system CA roots (which honour `SSL_CERT_FILE` and `SSL_CERT_DIR`) and the
//! proxies of `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`. A loopback host is
//! never reached through a proxy.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// Downloads `url` into `out`. The error is a short reason, such as
/// `HTTP 404 Not Found` or `connection refused`.
pub(crate) fn download(url: &str, out: &mut dyn Write) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the HTTP client: {e}"))?;
    runtime.block_on(fetch(url, out))
}

async fn fetch(url: &str, out: &mut dyn Write) -> Result<(), String> {
    let client = client(is_loopback(url))?;
    let mut resp = client.get(url).send().await.map_err(|e| chain(&e))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    while let Some(chunk) = resp.chunk().await.map_err(|e| chain(&e))? {
        out.write_all(&chunk)
            .map_err(|e| format!("cannot write the download: {e}"))?;
    }
    Ok(())
}

fn client(loopback: bool) -> Result<reqwest::Client, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut b = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent(concat!("boxwright/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(120))
        .redirect(reqwest::redirect::Policy::limited(10));
    if loopback {
        b = b.no_proxy();
    }
    b.build()
        .map_err(|e| format!("HTTP client set-up: {}", chain(&e)))
}

fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', ':']).next().unwrap_or("");
    host == "localhost" || host.starts_with("127.") || rest.starts_with("[::1]")
}

/// An error with its causes on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("http://127.0.0.1:8080/x"));
        assert!(is_loopback("http://localhost/x"));
        assert!(is_loopback("http://[::1]:80/x"));
        assert!(!is_loopback("https://nodejs.org/dist/x"));
        assert!(!is_loopback("https://localhost.example.com/x"));
    }
}
