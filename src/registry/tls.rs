//! TLS client configuration: rustls with the `ring` provider, the system
//! roots (which honour `SSL_CERT_FILE`/`SSL_CERT_DIR`) plus extra CA files,
//! or no verification at all for `tls_verify = false`.
//!
//! The `ring` provider rather than reqwest's default `aws-lc-rs`: aws-lc-rs
//! builds C code with cmake, which this project's machines do not have.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::registry::error::{RegistryError, Result};

/// Builds a rustls client config. `roots` false skips loading the system
/// roots (for a plain-HTTP client that never does TLS).
pub(crate) fn client_config(
    ca_files: &[PathBuf],
    verify: bool,
    roots: bool,
) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| RegistryError::Invalid(format!("TLS set-up: {e}")))?;
    let mut config = if !verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth()
    } else {
        let mut store = rustls::RootCertStore::empty();
        if roots {
            let native = rustls_native_certs::load_native_certs();
            if native.certs.is_empty() && !native.errors.is_empty() {
                tracing::warn!(errors = ?native.errors, "no system CA certificates could be loaded");
            }
            store.add_parsable_certificates(native.certs);
        }
        for file in ca_files {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(file)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| RegistryError::Config {
                    path: file.clone(),
                    message: format!("cannot read CA certificates ({e}): give a PEM file"),
                })?;
            if certs.is_empty() {
                return Err(RegistryError::Config {
                    path: file.clone(),
                    message: "holds no PEM certificate".into(),
                });
            }
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(RegistryError::Config {
                    path: file.clone(),
                    message: "holds no usable CA certificate".into(),
                });
            }
        }
        builder.with_root_certificates(store).with_no_client_auth()
    };
    // HTTP/1.1 only: parallel blob uploads on separate connections are not
    // throttled by one HTTP/2 connection's flow-control window.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts any server certificate (still checks handshake signatures, so the
/// connection is encrypted to whoever holds the key). Used only when the user
/// asked for `tls_verify = false`.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_roots_load_and_bad_ca_files_are_named() {
        let cfg = client_config(&[], true, true).unwrap();
        assert_eq!(cfg.alpn_protocols, [b"http/1.1".to_vec()]);
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("ca.pem");
        std::fs::write(&bad, "not a certificate").unwrap();
        let e = client_config(&[bad], true, false).unwrap_err().to_string();
        assert!(
            e.contains("ca.pem") && e.contains("no PEM certificate"),
            "{e}"
        );
        // Debian's bundle (package ca-certificates) is a valid extra CA file.
        client_config(
            &[PathBuf::from("/etc/ssl/certs/ca-certificates.crt")],
            true,
            false,
        )
        .unwrap();
        client_config(&[], false, false).unwrap();
    }
}
