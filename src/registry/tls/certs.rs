//! Certificate directories as the container tools lay them out (Docker's and containers/image's
//! `certs.d`, skopeo's `--cert-dir`): `*.crt` files are CA certificates, a `NAME.cert` with a
//! `NAME.key` beside it is a client certificate and its key. Other files are ignored.
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Where Podman, skopeo, buildah (first) and Docker (second) keep per-registry certificates.
pub const DEFAULT_ROOTS: [&str; 2] = ["/etc/containers/certs.d", "/etc/docker/certs.d"];

/// A CA file and the certificates it holds.
#[derive(Debug, Clone)]
pub(crate) struct CaFile {
    pub(crate) path: PathBuf,
    pub(crate) pem: Vec<u8>,
}

/// A client certificate with its key.
#[derive(Debug, Clone)]
pub(crate) struct ClientPair {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    /// The certificate chain as given (never parsed: see `client_cert`) and the loaded key.
    pub(crate) key_pair: rustls::sign::CertifiedKey,
}

/// What one certificate directory holds.
#[derive(Debug, Clone, Default)]
pub(crate) struct Loaded {
    pub(crate) cas: Vec<CaFile>,
    pub(crate) client: Option<ClientPair>,
}

/// The default `certs.d` roots, as paths.
pub fn default_roots() -> Vec<PathBuf> {
    DEFAULT_ROOTS.iter().map(PathBuf::from).collect()
}

/// The first `ROOT/HOST[:PORT]` directory that exists, as the container tools pick it (they do
/// not merge the two roots either). `host` is spelled as the image reference spells it.
pub(crate) fn host_dir(roots: &[PathBuf], host: &str) -> Option<PathBuf> {
    roots.iter().map(|r| r.join(host)).find(|d| d.is_dir())
}

/// Reads `dir`: every `*.crt` as CAs, and the client pair. A `.cert` without its `.key` (or the
/// reverse) is an error, as it is for Docker: half a pair is always a mistake worth hearing about.
pub(crate) fn load(dir: &Path) -> Result<Loaded> {
    let io = |source| Error::Io {
        context: "reading certificate directory",
        path: dir.to_path_buf(),
        source,
    };
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()).map_err(io))
        .collect::<Result<_>>()?;
    // Sorted, so which pair wins when there are several does not depend on the file system.
    names.sort();
    let mut out = Loaded::default();
    for path in &names {
        match path.extension().and_then(|e| e.to_str()) {
            Some("crt") => {
                let pem = read(path)?;
                if ders(&pem).is_empty() {
                    return Err(bad(
                        path,
                        "holds no PEM certificate (a CA file must be PEM, ending in .crt)",
                    ));
                }
                out.cas.push(CaFile {
                    path: path.clone(),
                    pem,
                });
            }
            Some("cert") => {
                let key = path.with_extension("key");
                if !key.is_file() {
                    return Err(bad(
                        path,
                        &format!(
                            "client certificate without its key: expected {}",
                            key.display()
                        ),
                    ));
                }
                if out.client.is_some() {
                    tracing::debug!(
                        "{}: another client certificate came first; ignored",
                        path.display()
                    );
                    continue;
                }
                let key_pair = super::client_cert::load_pair(path, &key)?;
                out.client = Some(ClientPair {
                    cert: path.clone(),
                    key,
                    key_pair,
                });
            }
            Some("key") => {
                let cert = path.with_extension("cert");
                if !cert.is_file() {
                    return Err(bad(
                        path,
                        &format!(
                            "client key without its certificate: expected {}",
                            cert.display()
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The certificates of a PEM bundle, DER; none when it holds none or is not PEM.
pub(crate) fn ders(pem: &[u8]) -> Vec<Vec<u8>> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    CertificateDer::pem_slice_iter(pem)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<std::result::Result<_, _>>()
        .unwrap_or_default()
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io {
        context: "reading certificate",
        path: path.to_path_buf(),
        source,
    })
}

fn bad(path: &Path, message: &str) -> Error {
    Error::Path {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.self_signed(&key).unwrap().pem()
    }

    fn client_pair() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["client".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn crt_files_are_cas_and_a_cert_with_its_key_is_the_client_pair() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("b.crt"), ca_pem()).unwrap();
        std::fs::write(d.path().join("a.crt"), ca_pem() + &ca_pem()).unwrap();
        let (cert, key) = client_pair();
        std::fs::write(d.path().join("client.cert"), cert).unwrap();
        std::fs::write(d.path().join("client.key"), key).unwrap();
        std::fs::write(d.path().join("README"), "not a certificate").unwrap();
        let l = load(d.path()).unwrap();
        let names: Vec<_> = l
            .cas
            .iter()
            .map(|c| c.path.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["a.crt", "b.crt"]);
        let pair = l.client.unwrap();
        assert_eq!(pair.cert, d.path().join("client.cert"));
        assert_eq!(pair.key, d.path().join("client.key"));
    }

    #[test]
    fn half_a_client_pair_is_an_error_naming_the_missing_file() {
        let (cert, key) = client_pair();
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("client.cert"), &cert).unwrap();
        let e = load(d.path()).unwrap_err().to_string();
        assert!(e.contains("client.key"), "{e}");
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("client.key"), &key).unwrap();
        let e = load(d.path()).unwrap_err().to_string();
        assert!(e.contains("client.cert"), "{e}");
    }

    #[test]
    fn a_crt_that_is_not_pem_is_an_error_naming_it() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("ca.crt"), b"\x30\x82binary DER").unwrap();
        let e = load(d.path()).unwrap_err().to_string();
        assert!(e.contains("ca.crt") && e.contains("PEM"), "{e}");
    }

    #[test]
    fn the_host_dir_is_the_first_root_that_has_one() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::create_dir(b.path().join("r.example:5000")).unwrap();
        let roots = vec![a.path().to_path_buf(), b.path().to_path_buf()];
        assert_eq!(
            host_dir(&roots, "r.example:5000"),
            Some(b.path().join("r.example:5000"))
        );
        std::fs::create_dir(a.path().join("r.example:5000")).unwrap();
        assert_eq!(
            host_dir(&roots, "r.example:5000"),
            Some(a.path().join("r.example:5000"))
        );
        // The port is part of the name, as for Docker: `r.example` alone is another directory.
        assert_eq!(host_dir(&roots, "r.example"), None);
    }
}
