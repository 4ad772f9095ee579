//! TLS trust, built in one place for every client mockimg makes: the registry client (which also
//! presents a client certificate when one is configured), token servers, and any later one
//! (object stores) through [`Trust::client_builder`].
//!
//! The system's roots (which honour `SSL_CERT_FILE` and `SSL_CERT_DIR`) are always trusted; a
//! registry's own CAs are added to them, never put in their place. They come from `--cert-dir`
//! when given, else from the first of `/etc/containers/certs.d/HOST[:PORT]/` and
//! `/etc/docker/certs.d/HOST[:PORT]/` that exists (see [`certs`] for the layout).
pub mod certs;
pub(crate) mod classify;
mod client_cert;

pub use classify::TlsFailure;
pub(crate) use classify::{is_not_tls, nothing_answered};

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The trust for one registry host: the CAs added for it, its client certificate, and whether
/// certificates are checked at all.
#[derive(Debug, Clone)]
pub struct Trust {
    loaded: certs::Loaded,
    verify: bool,
    place: classify::Place,
}

impl Trust {
    /// The trust for `host` (`HOST[:PORT]` as references spell it): the certificates in
    /// `cert_dir` when given, else in its directory under the first of the `certs_d` roots that
    /// has one ([`certs::DEFAULT_ROOTS`] unless the caller says otherwise). `verify: false` is
    /// `--insecure-registry`: certificates are not checked (a client certificate is still
    /// offered).
    pub fn for_host(
        host: &str,
        cert_dir: Option<&Path>,
        certs_d: &[PathBuf],
        verify: bool,
    ) -> Result<Self> {
        let found = match cert_dir {
            Some(d) if !d.is_dir() => {
                return Err(Error::Path {
                    path: d.to_path_buf(),
                    message: "--cert-dir is not a directory".into(),
                })
            }
            Some(_) => None,
            None => certs::host_dir(certs_d, host),
        };
        let dir = cert_dir.map(Path::to_path_buf).or_else(|| found.clone());
        let loaded = match &dir {
            Some(d) => certs::load(d)?,
            None => certs::Loaded::default(),
        };
        if let Some(d) = &dir {
            tracing::debug!(
                registry = host,
                dir = %d.display(),
                cas = loaded.cas.len(),
                client_cert = loaded.client.is_some(),
                "certificates"
            );
        }
        let place = classify::Place {
            host: host.to_string(),
            flag_dir: cert_dir.map(Path::to_path_buf),
            found_dir: found,
            first_root: certs_d.first().cloned(),
            ca_files: loaded.cas.iter().map(|c| c.path.clone()).collect(),
            client_cert: loaded.client.as_ref().map(|c| c.cert.clone()),
        };
        Ok(Trust {
            loaded,
            verify,
            place,
        })
    }

    /// A reqwest client builder with this trust applied: system roots plus this host's CAs, its
    /// client certificate, and verification off for an insecure registry. Timeouts, redirects
    /// and the rest are the caller's.
    pub fn client_builder(&self) -> Result<reqwest::ClientBuilder> {
        let Some(pair) = &self.loaded.client else {
            return Ok(reqwest::Client::builder()
                .tls_certs_merge(self.reqwest_roots())
                .tls_danger_accept_invalid_certs(!self.verify));
        };
        // reqwest would parse the client certificate with webpki (v3 only): the configuration
        // is built here instead, the certificate presented as given.
        let roots = self
            .ders()
            .map(rustls::pki_types::CertificateDer::from)
            .collect();
        let config = client_cert::config(pair.key_pair.clone(), roots, self.verify, &pair.cert)?;
        let b = reqwest::Client::builder().tls_backend_preconfigured(config);
        Ok(b)
    }

    /// Why a client with this trust could not be built, naming the files it came from: the
    /// client certificate and its key, else the CA files.
    pub(crate) fn build_failure(&self, e: &reqwest::Error) -> String {
        let mut why = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            why.push_str(&format!(": {s}"));
            src = s.source();
        }
        let files = match &self.loaded.client {
            Some(c) => format!("{} with key {}", c.cert.display(), c.key.display()),
            None if self.place.ca_files.is_empty() => "the system's CA certificates".into(),
            None => self
                .place
                .ca_files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        };
        format!("TLS setup from {files} failed: {why}")
    }

    /// Whether a client certificate will be offered.
    pub fn has_client_certificate(&self) -> bool {
        self.loaded.client.is_some()
    }

    /// The client certificate file, when there is one.
    pub fn client_certificate(&self) -> Option<&Path> {
        self.loaded.client.as_ref().map(|c| c.cert.as_path())
    }

    /// The CA files added to the system roots.
    pub fn ca_files(&self) -> Vec<PathBuf> {
        self.place.ca_files.clone()
    }

    /// The one-line cause and fix for `f` on this host.
    pub fn message(&self, f: &TlsFailure) -> String {
        classify::message(f, &self.place)
    }

    fn reqwest_roots(&self) -> Vec<reqwest::Certificate> {
        self.ders()
            .filter_map(|der| reqwest::Certificate::from_der(&der).ok())
            .collect()
    }

    /// Every CA certificate, DER, in file order.
    fn ders(&self) -> impl Iterator<Item = Vec<u8>> + '_ {
        self.loaded.cas.iter().flat_map(|ca| certs::ders(&ca.pem))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cert_dir_that_does_not_exist_is_an_error() {
        let e = Trust::for_host(
            "r.example",
            Some(Path::new("/nonexistent/certs")),
            &[],
            true,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("/nonexistent/certs") && e.contains("--cert-dir"),
            "{e}"
        );
    }

    #[test]
    fn an_empty_cert_dir_adds_nothing_and_still_builds_a_client() {
        let d = tempfile::tempdir().unwrap();
        let t = Trust::for_host("r.example", Some(d.path()), &[], true).unwrap();
        assert!(t.ca_files().is_empty() && !t.has_client_certificate());
        t.client_builder().unwrap().build().unwrap();
    }
}
