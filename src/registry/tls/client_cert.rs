//! Presenting a client certificate as it is given, the way Go's TLS stack (Docker, skopeo) and
//! curl do. rustls's own `with_client_auth_cert` parses the certificate with webpki to check it
//! matches the key, and webpki accepts only X.509 v3: the v1 certificates `openssl x509 -req`
//! makes by default were refused although the registry takes them. The client's certificate is
//! the server's to judge, so it is loaded without being parsed; only the key must load.
//!
//! With a client certificate the rustls configuration is built here rather than by reqwest, with
//! the same server checks reqwest makes: the platform verifier over the system roots plus this
//! host's CAs, or no check at all for `--insecure-registry`.
use crate::error::{Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

/// The crypto provider reqwest uses: an installed default, else aws-lc-rs.
fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// The certificate chain of `cert` (PEM, unparsed) and the signing key of `key` (PEM): every
/// failure names the file and why.
pub(crate) fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey> {
    let bad = |path: &Path, message: String| Error::Path {
        path: path.to_path_buf(),
        message,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<std::result::Result<_, _>>())
        .map_err(|e| bad(cert, format!("cannot read the client certificate: {e}")))?;
    if chain.is_empty() {
        return Err(bad(
            cert,
            "holds no PEM certificate (a client certificate must be PEM, ending in .cert)".into(),
        ));
    }
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        bad(
            key,
            format!("cannot read the client key (PEM: PKCS#8, PKCS#1 or SEC1): {e}"),
        )
    })?;
    let signing = provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| bad(key, format!("unusable client key: {e}")))?;
    Ok(CertifiedKey::new(chain, signing))
}

/// The rustls client configuration for a host with a client certificate: the server checked as
/// reqwest would (`extra_roots` added to the system's, or nothing checked when `verify` is
/// false), and `pair` presented whenever the server asks.
pub(crate) fn config(
    pair: CertifiedKey,
    extra_roots: Vec<CertificateDer<'static>>,
    verify: bool,
    cert_path: &Path,
) -> Result<rustls::ClientConfig> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Path {
            path: cert_path.to_path_buf(),
            message: format!("cannot set up TLS with this client certificate: {e}"),
        })?
        .dangerous();
    let builder = if verify {
        let v = rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots, provider)
            .map_err(|e| Error::Path {
                path: cert_path.to_path_buf(),
                message: format!(
                    "cannot set up TLS with this client certificate: the system's roots and \
                     the CAs beside it do not load ({e})"
                ),
            })?;
        builder.with_custom_certificate_verifier(Arc::new(v))
    } else {
        builder.with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
    };
    let mut c = builder.with_client_cert_resolver(Arc::new(Present(Arc::new(pair))));
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(c)
}

/// Offers the one client certificate to every server that asks.
#[derive(Debug)]
struct Present(Arc<CertifiedKey>);

impl ResolvesClientCert for Present {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// `--insecure-registry`: nothing about the server's certificate is checked, as reqwest does
/// it.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
