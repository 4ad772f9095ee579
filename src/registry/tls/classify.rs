//! TLS failures read from the error chain (rustls's own error values, never message text), and
//! the one-line cause-and-fix a user sees for each.
use std::error::Error as StdError;

/// Why a TLS connection to a registry failed. None of these is cured by trying again, and none
/// is a reason to fall back to plain HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFailure {
    /// The certificate chain does not lead to a CA we trust.
    UnknownIssuer,
    /// The certificate is not valid for the name we connected to.
    NameMismatch {
        /// The names it is valid for (subject alternative names), as the certificate has them.
        valid_for: Vec<String>,
    },
    /// The certificate's validity period is over.
    Expired,
    /// The certificate's validity period has not started.
    NotYetValid,
    /// The server asked for a client certificate and we had none to give.
    ClientCertRequired,
    /// The server refused the client certificate we gave.
    ClientCertRefused,
    /// Any other refused certificate or handshake, as rustls describes it.
    Other(String),
}

/// The TLS failure somewhere along `e`'s sources, if there is one.
pub(crate) fn classify(e: &(dyn StdError + 'static)) -> Option<TlsFailure> {
    use rustls::{AlertDescription as A, CertificateError as C, Error as R};
    let r = rustls_error(e)?;
    Some(match r {
        R::InvalidCertificate(c) => match c {
            C::UnknownIssuer => TlsFailure::UnknownIssuer,
            C::NotValidForName => TlsFailure::NameMismatch { valid_for: vec![] },
            C::NotValidForNameContext { presented, .. } => TlsFailure::NameMismatch {
                valid_for: presented.iter().map(|n| bare_name(n)).collect(),
            },
            C::Expired | C::ExpiredContext { .. } => TlsFailure::Expired,
            C::NotValidYet | C::NotValidYetContext { .. } => TlsFailure::NotYetValid,
            other => TlsFailure::Other(format!("certificate refused: {other:?}")),
        },
        // TLS 1.3 servers say it with `certificate_required`; TLS 1.2 ones with a handshake
        // failure or bad certificate, which is what a missing or refused client pair means.
        R::AlertReceived(A::CertificateRequired) => TlsFailure::ClientCertRequired,
        R::AlertReceived(
            A::BadCertificate | A::UnknownCA | A::CertificateUnknown | A::HandshakeFailure,
        ) => TlsFailure::ClientCertRefused,
        // Not TLS at all (a plain HTTP answer) is a protocol question, not a trust failure.
        R::InvalidMessage(_) => return None,
        other => TlsFailure::Other(other.to_string()),
    })
}

/// Whether `e` says the peer answered a TLS handshake with something that is not TLS (a plain
/// HTTP server's `400 Bad Request`): the one case where a registry is reached over plain HTTP.
pub(crate) fn is_not_tls(e: &(dyn StdError + 'static)) -> bool {
    matches!(rustls_error(e), Some(rustls::Error::InvalidMessage(_)))
}

/// Whether nothing answered at all (refused, timed out): no sign either way of what the port
/// speaks.
pub(crate) fn nothing_answered(e: &(dyn StdError + 'static)) -> bool {
    use std::io::ErrorKind as K;
    io_errors(e).any(|io| matches!(io.kind(), K::ConnectionRefused | K::TimedOut))
}

fn rustls_error<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    chain(e).find_map(|e| e.downcast_ref())
}

fn io_errors<'a>(e: &'a (dyn StdError + 'static)) -> impl Iterator<Item = &'a std::io::Error> + 'a {
    chain(e).filter_map(|e| e.downcast_ref())
}

/// `e` and its sources, looking inside `io::Error`s too: tokio-rustls hands a handshake
/// failure on as `io::Error::new(InvalidData, rustls_error)`, whose `source()` skips the value
/// it holds, and hyper may wrap that in another `io::Error`.
fn chain<'a>(
    e: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> + 'a {
    let next = |e: &&'a (dyn StdError + 'static)| -> Option<&'a (dyn StdError + 'static)> {
        let e: &'a (dyn StdError + 'static) = *e;
        match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner),
            None => e.source(),
        }
    };
    std::iter::successors(Some(e), next)
}

/// Where the certificates for a registry were looked for: the words a fix is given in.
#[derive(Debug, Clone, Default)]
pub(crate) struct Place {
    /// `HOST[:PORT]`.
    pub(crate) host: String,
    /// `--cert-dir`, when given.
    pub(crate) flag_dir: Option<std::path::PathBuf>,
    /// The `certs.d/HOST` directory that was read, when there was one.
    pub(crate) found_dir: Option<std::path::PathBuf>,
    /// The first `certs.d` root, where a new directory would go.
    pub(crate) first_root: Option<std::path::PathBuf>,
    /// The CA files that were added.
    pub(crate) ca_files: Vec<std::path::PathBuf>,
    /// The client certificate that was offered.
    pub(crate) client_cert: Option<std::path::PathBuf>,
}

impl Place {
    /// The directory a user should put files in.
    fn dir(&self) -> String {
        match (&self.flag_dir, &self.found_dir, &self.first_root) {
            (Some(d), _, _) | (None, Some(d), _) => d.display().to_string(),
            (None, None, Some(r)) => r.join(&self.host).display().to_string(),
            (None, None, None) => format!("certs.d/{}", self.host),
        }
    }

    fn ca_files(&self) -> String {
        self.ca_files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The one line for `f`: what is wrong, then what to do about it.
pub(crate) fn message(f: &TlsFailure, at: &Place) -> String {
    let host = &at.host;
    let dir = at.dir();
    let elsewhere = if at.flag_dir.is_some() {
        String::new()
    } else {
        " or pass --cert-dir DIR holding it".to_string()
    };
    match f {
        TlsFailure::UnknownIssuer if at.ca_files.is_empty() => format!(
            "TLS: the certificate of {host} is signed by an unknown authority — save the registry's CA certificate (PEM) as {dir}/ca.crt{elsewhere}, or skip verification with --insecure-registry {host}"
        ),
        TlsFailure::UnknownIssuer => format!(
            "TLS: the certificate of {host} is signed by none of the CAs in {} — add the CA that signed it to {dir} as a .crt file, or skip verification with --insecure-registry {host}",
            at.ca_files()
        ),
        TlsFailure::NameMismatch { valid_for } if valid_for.is_empty() => format!(
            "TLS: the certificate of {host} is not valid for that name — reach the registry by a name its certificate lists, or reissue it with {} as a subject alternative name",
            host_only(host)
        ),
        TlsFailure::NameMismatch { valid_for } => format!(
            "TLS: the certificate of {host} is valid for {} only, not {} — use one of those names, or reissue the certificate with {} as a subject alternative name",
            valid_for.join(", "),
            host_only(host),
            host_only(host)
        ),
        TlsFailure::Expired => format!(
            "TLS: the certificate of {host} has expired — renew it on the registry (or check this machine's clock)"
        ),
        TlsFailure::NotYetValid => format!(
            "TLS: the certificate of {host} is not valid yet — check this machine's clock, or the certificate's start date"
        ),
        TlsFailure::ClientCertRequired => format!(
            "TLS: {host} requires a client certificate — put client.cert and client.key (PEM) in {dir}{}",
            if at.flag_dir.is_some() { "" } else { ", or pass --cert-dir DIR holding them" }
        ),
        TlsFailure::ClientCertRefused => match &at.client_cert {
            Some(c) => format!(
                "TLS: {host} refused the client certificate {} — it must be signed by a CA the registry trusts",
                c.display()
            ),
            None => format!(
                "TLS: {host} refused the handshake, likely for want of a client certificate — put client.cert and client.key (PEM) in {dir}{elsewhere}"
            ),
        },
        TlsFailure::Other(m) => format!("TLS: {host}: {m}"),
    }
}

/// `registry.internal` of rustls's `DnsName("registry.internal")`, `10.0.0.5` of
/// `IpAddress(10.0.0.5)`: the name as a user would type it.
fn bare_name(n: &str) -> String {
    let inner = match (n.find('('), n.strip_suffix(')')) {
        (Some(open), Some(head)) => &head[open + 1..],
        _ => n,
    };
    inner.trim_matches('"').to_string()
}

/// `HOST` of `HOST[:PORT]` (IPv6 literals keep their brackets).
fn host_only(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::{AlertDescription as A, CertificateError as C, Error as R};

    /// As tokio-rustls hands a handshake failure to hyper, and hyper to reqwest.
    fn wrapped(r: R) -> std::io::Error {
        std::io::Error::other(std::io::Error::new(std::io::ErrorKind::InvalidData, r))
    }

    #[test]
    fn certificate_errors_are_read_behind_io_wrapping() {
        assert_eq!(
            classify(&wrapped(R::InvalidCertificate(C::UnknownIssuer))),
            Some(TlsFailure::UnknownIssuer)
        );
        assert_eq!(
            classify(&wrapped(R::InvalidCertificate(C::Expired))),
            Some(TlsFailure::Expired)
        );
        let presented = vec!["registry.internal".to_string(), "10.0.0.5".to_string()];
        let e = R::InvalidCertificate(C::NotValidForNameContext {
            expected: rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap(),
            presented: presented.clone(),
        });
        assert_eq!(
            classify(&wrapped(e)),
            Some(TlsFailure::NameMismatch {
                valid_for: presented
            })
        );
    }

    #[test]
    fn alerts_about_client_certificates() {
        assert_eq!(
            classify(&wrapped(R::AlertReceived(A::CertificateRequired))),
            Some(TlsFailure::ClientCertRequired)
        );
        assert_eq!(
            classify(&wrapped(R::AlertReceived(A::BadCertificate))),
            Some(TlsFailure::ClientCertRefused)
        );
    }

    #[test]
    fn a_plain_http_answer_is_not_a_trust_failure_but_is_not_tls() {
        let e = wrapped(R::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType,
        ));
        assert_eq!(classify(&e), None);
        assert!(is_not_tls(&e));
        // A TLS server that hangs up on us (no client certificate) is still a TLS server.
        let eof = std::io::Error::other(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        assert!(!is_not_tls(&eof) && !nothing_answered(&eof));
        let refused =
            std::io::Error::other(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(!is_not_tls(&refused) && nothing_answered(&refused));
        assert!(!is_not_tls(&wrapped(R::InvalidCertificate(
            C::UnknownIssuer
        ))));
    }

    #[test]
    fn messages_name_the_cause_and_the_fix() {
        let at = Place {
            host: "127.0.0.1:5443".into(),
            first_root: Some("/etc/containers/certs.d".into()),
            ..Place::default()
        };
        let m = message(&TlsFailure::UnknownIssuer, &at);
        assert!(m.contains("unknown authority"), "{m}");
        assert!(
            m.contains("/etc/containers/certs.d/127.0.0.1:5443/ca.crt"),
            "{m}"
        );
        assert!(m.contains("--cert-dir") && m.contains("--insecure-registry 127.0.0.1:5443"));
        let m = message(
            &TlsFailure::NameMismatch {
                valid_for: vec!["registry.internal".into()],
            },
            &at,
        );
        assert!(
            m.contains("valid for registry.internal only, not 127.0.0.1"),
            "{m}"
        );
        let flag = Place {
            flag_dir: Some("/certs".into()),
            ..at.clone()
        };
        let m = message(&TlsFailure::ClientCertRequired, &flag);
        assert!(
            m.contains("client.cert and client.key") && m.contains("/certs"),
            "{m}"
        );
        assert!(!m.contains("--cert-dir"), "{m}");
        for f in [TlsFailure::Expired, TlsFailure::ClientCertRefused] {
            assert_eq!(message(&f, &at).lines().count(), 1);
        }
    }

    #[test]
    fn presented_names_read_as_typed() {
        assert_eq!(
            bare_name(r#"DnsName("registry.internal")"#),
            "registry.internal"
        );
        assert_eq!(bare_name("IpAddress(10.0.0.5)"), "10.0.0.5");
        assert_eq!(bare_name("plain.example"), "plain.example");
    }

    #[test]
    fn host_only_drops_the_port() {
        assert_eq!(host_only("r.example:5000"), "r.example");
        assert_eq!(host_only("r.example"), "r.example");
        assert_eq!(host_only("[::1]:5000"), "[::1]");
    }
}
