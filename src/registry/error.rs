//! Registry failures as data, and the one retry decision made from them.
//!
//! A failed request is described by three things: the distribution-spec error code from the
//! body (`{"errors":[{"code":"BLOB_UNKNOWN",…}]}`), the HTTP status, and, when no answer came,
//! the I/O kind (reset, timeout, refused, cut short). [`Failure::is_transient`] reads only those.
//! oci-client reports failures as [`OciDistributionError`]; `Failure::of` maps its variants,
//! status codes and error sources, never its message text.
use super::tls::{self, TlsFailure};
use super::Registry;
use crate::error::Error;
use oci_client::errors::{OciDistributionError, OciErrorCode};
use std::io::ErrorKind;

/// An error code from the distribution spec's error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    /// `BLOB_UNKNOWN`: the blob is not in the repository (or a manifest names one that is not).
    BlobUnknown,
    /// `BLOB_UPLOAD_INVALID`: the upload went wrong and cannot go on.
    BlobUploadInvalid,
    /// `BLOB_UPLOAD_UNKNOWN`: the upload session is gone.
    BlobUploadUnknown,
    /// `DIGEST_INVALID`: the bytes that arrived do not hash to the digest given.
    DigestInvalid,
    /// `MANIFEST_BLOB_UNKNOWN`: a manifest names a blob the repository does not have.
    ManifestBlobUnknown,
    /// `MANIFEST_INVALID`: the manifest failed the registry's checks.
    ManifestInvalid,
    /// `MANIFEST_UNKNOWN`: no such manifest.
    ManifestUnknown,
    /// `NAME_INVALID`: the repository name is malformed.
    NameInvalid,
    /// `NAME_UNKNOWN`: no such repository.
    NameUnknown,
    /// `SIZE_INVALID`: the length that arrived is not the length announced.
    SizeInvalid,
    /// `UNAUTHORIZED`: credentials are missing or refused.
    Unauthorized,
    /// `DENIED`: the credentials lack access to the resource.
    Denied,
    /// `UNSUPPORTED`: the registry does not do this operation.
    Unsupported,
    /// `TOOMANYREQUESTS`: rate limited.
    TooManyRequests,
    /// Any other code, as the registry spelled it.
    Unknown(String),
}

impl ErrorCode {
    /// The code for its spec spelling (`"BLOB_UNKNOWN"`); anything else is kept as `Unknown`.
    pub fn parse(code: &str) -> Self {
        match code {
            "BLOB_UNKNOWN" => Self::BlobUnknown,
            "BLOB_UPLOAD_INVALID" => Self::BlobUploadInvalid,
            "BLOB_UPLOAD_UNKNOWN" => Self::BlobUploadUnknown,
            "DIGEST_INVALID" => Self::DigestInvalid,
            "MANIFEST_BLOB_UNKNOWN" => Self::ManifestBlobUnknown,
            "MANIFEST_INVALID" => Self::ManifestInvalid,
            "MANIFEST_UNKNOWN" => Self::ManifestUnknown,
            "NAME_INVALID" => Self::NameInvalid,
            "NAME_UNKNOWN" => Self::NameUnknown,
            "SIZE_INVALID" => Self::SizeInvalid,
            "UNAUTHORIZED" => Self::Unauthorized,
            "DENIED" => Self::Denied,
            "UNSUPPORTED" => Self::Unsupported,
            "TOOMANYREQUESTS" => Self::TooManyRequests,
            other => Self::Unknown(other.to_string()),
        }
    }

    /// The spec spelling, as registries send it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::BlobUnknown => "BLOB_UNKNOWN",
            Self::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Self::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Self::DigestInvalid => "DIGEST_INVALID",
            Self::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Self::ManifestInvalid => "MANIFEST_INVALID",
            Self::ManifestUnknown => "MANIFEST_UNKNOWN",
            Self::NameInvalid => "NAME_INVALID",
            Self::NameUnknown => "NAME_UNKNOWN",
            Self::SizeInvalid => "SIZE_INVALID",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Denied => "DENIED",
            Self::Unsupported => "UNSUPPORTED",
            Self::TooManyRequests => "TOOMANYREQUESTS",
            Self::Unknown(s) => s,
        }
    }

    /// Whether the code alone settles the retry decision, and which way; `None` leaves it to
    /// the status. The code outranks the status because registries send refusals as 500 too
    /// (CNCF distribution answers a manifest with a missing blob that way).
    fn transient(&self) -> Option<bool> {
        match self {
            Self::TooManyRequests => Some(true),
            // What arrived of an upload was refused (bytes that did not hash to the digest, a
            // lost session): the upload starts again from the source, which may well be fine.
            Self::BlobUploadInvalid
            | Self::BlobUploadUnknown
            | Self::DigestInvalid
            | Self::SizeInvalid => Some(true),
            Self::BlobUnknown
            | Self::ManifestBlobUnknown
            | Self::ManifestInvalid
            | Self::ManifestUnknown
            | Self::NameInvalid
            | Self::NameUnknown
            | Self::Unauthorized
            | Self::Denied
            | Self::Unsupported => Some(false),
            Self::Unknown(_) => None,
        }
    }

    fn from_oci(code: &OciErrorCode) -> Self {
        use OciErrorCode as C;
        match code {
            C::BlobUnknown => Self::BlobUnknown,
            C::BlobUploadInvalid => Self::BlobUploadInvalid,
            C::BlobUploadUnknown => Self::BlobUploadUnknown,
            C::DigestInvalid => Self::DigestInvalid,
            C::ManifestBlobUnknown => Self::ManifestBlobUnknown,
            C::ManifestInvalid => Self::ManifestInvalid,
            C::ManifestUnknown => Self::ManifestUnknown,
            C::NameInvalid => Self::NameInvalid,
            C::NameUnknown => Self::NameUnknown,
            C::SizeInvalid => Self::SizeInvalid,
            C::Unauthorized => Self::Unauthorized,
            C::Denied => Self::Denied,
            C::Unsupported => Self::Unsupported,
            C::Toomanyrequests => Self::TooManyRequests,
            // Codes the spec dropped; kept by name so messages still show them.
            C::ManifestUnverified => Self::Unknown("MANIFEST_UNVERIFIED".into()),
            C::TagInvalid => Self::Unknown("TAG_INVALID".into()),
            C::NotFound => Self::Unknown("NOT_FOUND".into()),
            C::Other(s) => Self::parse(s),
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a failed registry request was, as data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failure {
    /// The error code of the response body that decides a retry (see `decisive`), when it
    /// had one.
    pub code: Option<ErrorCode>,
    /// The HTTP status, when an answer came and its status is known.
    pub status: Option<u16>,
    /// How the transport failed, when it did (no answer, or a body cut short or corrupted).
    pub io: Option<ErrorKind>,
    /// The TLS handshake failed: a certificate was refused, one way or the other. Final.
    /// Boxed: it is rare, and every `Result` in the crate carries this struct's size.
    pub tls: Option<Box<TlsFailure>>,
    /// Seconds the registry's `Retry-After` asked for on a 429 or 503, when it sent one.
    /// (Seconds in 16 bits: anything past a minute is not waited out anyway, and every
    /// `Result` in the crate carries this struct.)
    pub retry_after: Option<u16>,
}

impl Failure {
    /// Whether trying again may cure it: a code that says so, else 408/429/5xx, else a transport
    /// failure that a new connection may not meet (reset, timeout, refused, cut short) or a copy
    /// that arrived corrupted. 400/401/403/404 and refusals of what we sent are final.
    pub fn is_transient(&self) -> bool {
        // Trust does not change between attempts.
        if self.tls.is_some() {
            return false;
        }
        if let Some(t) = self.code.as_ref().and_then(ErrorCode::transient) {
            return t;
        }
        if let Some(s) = self.status {
            return s == 408 || s == 429 || s >= 500;
        }
        self.io.is_some_and(io_is_transient)
    }

    /// Credentials are missing or refused.
    pub(crate) fn is_unauthorized(&self) -> bool {
        self.status == Some(401) || self.code == Some(ErrorCode::Unauthorized)
    }

    /// What oci-client's error says, read from its variant, status and sources.
    pub(crate) fn of(e: &OciDistributionError) -> Self {
        use OciDistributionError as E;
        match e {
            E::UnauthorizedError { .. } => Self::status(401),
            // The token server refused us; oci-client keeps only its body.
            E::AuthenticationFailure(_) => Self::code(ErrorCode::Unauthorized),
            E::ImageManifestNotFoundError(_) => Self::status(404),
            E::RegistryError { envelope, .. } => Failure {
                code: decisive(envelope.errors.iter().map(|x| ErrorCode::from_oci(&x.code))),
                ..Self::default()
            },
            // oci-client parses the error body of 4xx answers only; a 5xx keeps it as text.
            E::ServerError { code, message, .. } => Failure {
                code: decisive(body_codes(message)),
                status: Some(*code),
                ..Self::default()
            },
            E::RequestError(r) => Failure {
                status: r.status().map(|s| s.as_u16()),
                io: transport_kind(r),
                code: None,
                tls: tls::classify(r).map(Box::new),
                retry_after: None,
            },
            E::IoError(io) => Failure {
                io: transport_kind(io).or(Some(io.kind())),
                ..Self::default()
            },
            // The manifest that arrived does not hash to its digest: a fresh copy may.
            E::DigestError(_) => Self::io(ErrorKind::InvalidData),
            _ => Self::default(),
        }
    }

    fn status(s: u16) -> Self {
        Failure {
            status: Some(s),
            ..Self::default()
        }
    }

    fn code(c: ErrorCode) -> Self {
        Failure {
            code: Some(c),
            ..Self::default()
        }
    }

    fn io(k: ErrorKind) -> Self {
        Failure {
            io: Some(k),
            ..Self::default()
        }
    }
}

fn io_is_transient(k: ErrorKind) -> bool {
    use ErrorKind as K;
    matches!(
        k,
        K::ConnectionReset
            | K::ConnectionAborted
            | K::ConnectionRefused
            | K::NotConnected
            | K::BrokenPipe
            | K::TimedOut
            | K::UnexpectedEof
            | K::Interrupted
            // Bytes that failed verification: the next copy may be whole.
            | K::InvalidData
    )
}

/// The I/O kind behind a transport failure, looked for along the error's sources: reqwest's own
/// classification for timeouts, else the first specific `io::Error` kind, else what reqwest says
/// it was doing (connecting, or sending/receiving a body that ended early).
pub(crate) fn transport_kind(e: &(dyn std::error::Error + 'static)) -> Option<ErrorKind> {
    let mut fallback = None;
    let mut cur = Some(e);
    while let Some(err) = cur {
        // hyper-util reports a failed name lookup as its private `ConnectError`, whose whole
        // description is "dns error"; the io::Error below it can have any kind (a resolver that
        // refuses looks like a refused connection). A name that did not resolve will not on the
        // next try either, so it is final.
        if err.to_string() == "dns error" {
            return Some(ErrorKind::HostUnreachable);
        }
        if let Some(r) = err.downcast_ref::<reqwest::Error>() {
            if r.is_timeout() {
                return Some(ErrorKind::TimedOut);
            }
            if fallback.is_none() {
                fallback = if r.is_connect() {
                    Some(ErrorKind::ConnectionRefused)
                } else if r.is_body() || r.is_request() || r.is_decode() {
                    Some(ErrorKind::UnexpectedEof)
                } else {
                    None
                };
            }
        }
        // oci-client's `IoError` is transparent: its `source()` skips the io::Error it holds.
        let io = match err.downcast_ref::<OciDistributionError>() {
            Some(OciDistributionError::IoError(io)) => Some(io),
            _ => err.downcast_ref::<std::io::Error>(),
        };
        if let Some(io) = io {
            if io.kind() != ErrorKind::Other {
                return Some(io.kind());
            }
            // `io::Error::other(inner)` reports inner's source, not inner: look at inner itself.
            if let Some(inner) = io.get_ref() {
                cur = Some(inner);
                continue;
            }
        }
        cur = err.source();
    }
    fallback
}

/// Of a body's error codes, the one that settles the retry decision: a refusal first (one final
/// code makes the answer final, whatever else is listed; CNCF distribution sends a manifest
/// naming a missing blob as 500 with `UNKNOWN` codes ahead of `MANIFEST_BLOB_UNKNOWN`), then a
/// code that says to retry, else the first.
fn decisive(codes: impl IntoIterator<Item = ErrorCode>) -> Option<ErrorCode> {
    let codes: Vec<ErrorCode> = codes.into_iter().collect();
    let pick = |want: bool| codes.iter().position(|c| c.transient() == Some(want));
    let i = pick(false).or_else(|| pick(true)).unwrap_or(0);
    codes.into_iter().nth(i)
}

/// The error codes of a distribution-spec error body, in order; none when it is not one.
pub(crate) fn body_codes(body: &str) -> Vec<ErrorCode> {
    body_errors(body)
        .map(|errs| errs.into_iter().map(|(c, _)| c).collect())
        .unwrap_or_default()
}

fn body_errors(body: &str) -> Option<Vec<(ErrorCode, String)>> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let errs = v.get("errors")?.as_array()?;
    Some(
        errs.iter()
            .map(|e| {
                let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
                let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
                (ErrorCode::parse(code), msg.to_string())
            })
            .collect(),
    )
}

/// A registry error body, as the `CODE: message` of its error envelope when it is one, else its
/// first line.
fn error_body(body: &str) -> String {
    match body_errors(body) {
        Some(v) if !v.is_empty() => v
            .iter()
            .map(|(c, m)| first_line(&format!("{c}: {m}")))
            .collect::<Vec<_>>()
            .join("; "),
        _ => first_line(body),
    }
}

impl Registry {
    /// The crate error for a failed `op`: one line naming the registry, what was being done and,
    /// for refused access, the fix.
    pub(crate) fn error(&self, op: &str, e: OciDistributionError) -> Error {
        use OciDistributionError as E;
        let cause = Failure::of(&e);
        let host = &self.host;
        let (user, pass) = (super::credentials::ENV_USER, super::credentials::ENV_PASS);
        let access = cause.is_unauthorized() || cause.status == Some(403);
        let message = if let Some(t) = &cause.tls {
            self.trust().message(t)
        } else if cause.is_unauthorized() {
            if self.has_credentials {
                format!("401 unauthorized — the stored credentials were refused; run 'mockimg login {host}' (or 'docker login {host}') again or fix {user}/{pass}")
            } else {
                format!("401 unauthorized — run 'mockimg login {host}' (or 'docker login {host}') or set {user}/{pass} for a push target")
            }
        } else if cause.status == Some(403) {
            format!("403 denied — the credentials for {host} lack permission for this repository")
        } else {
            match &e {
                E::ServerError { code, message, .. } => {
                    format!("HTTP {code}: {}", error_body(message))
                }
                E::RegistryError { envelope, .. } => envelope
                    .errors
                    .iter()
                    .map(|x| format!("{}: {}", ErrorCode::from_oci(&x.code), x.message))
                    .collect::<Vec<_>>()
                    .join("; "),
                E::RequestError(r) if r.is_connect() => {
                    format!("cannot connect ({})", root_cause(r))
                }
                E::RequestError(r) if r.is_timeout() => format!(
                    "timed out: no answer within {:.1} s",
                    self.opts.idle_timeout.as_secs_f64()
                ),
                E::RequestError(r) => match r.status() {
                    Some(s) => format!("HTTP {s}"),
                    None => root_cause(r),
                },
                E::IoError(io) => io.to_string(),
                E::DigestError(d) => format!("content digest mismatch: {d}"),
                E::ImageManifestNotFoundError(m) => format!("manifest not found: {m}"),
                other => first_line(&other.to_string()),
            }
        };
        Error::Registry {
            registry: self.host.clone(),
            // Refused access is about the repository, not the blob or manifest that hit it first.
            operation: if access {
                access_op(op)
            } else {
                op.to_string()
            },
            message,
            cause,
        }
    }
}

/// `pushing to HOST/REPO` or `pulling HOST/REPO` from an operation such as `checking blob D in
/// HOST/REPO` (every operation string ends with the repository or reference it is about).
fn access_op(op: &str) -> String {
    let repo = op.rsplit(' ').next().unwrap_or(op);
    let pushing = [
        "checking blob",
        "checking manifest",
        "mounting blob",
        "uploading blob",
        "pushing manifest",
        "authenticating to push",
    ];
    if pushing.iter().any(|p| op.starts_with(p)) {
        format!("pushing to {repo}")
    } else {
        format!("pulling {repo}")
    }
}

/// The first line of `s`, at most 300 characters: error lines stay one line.
pub(crate) fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(300).collect()
}

/// The innermost error's text, which is the one that says what happened ("connection refused").
pub(crate) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_client::errors::{OciEnvelope, OciError};

    fn with_code(code: &str, status: Option<u16>) -> Failure {
        Failure {
            code: Some(ErrorCode::parse(code)),
            status,
            ..Failure::default()
        }
    }

    #[test]
    fn every_spec_code_has_its_own_decision() {
        let transient = [
            "TOOMANYREQUESTS",
            "BLOB_UPLOAD_INVALID",
            "BLOB_UPLOAD_UNKNOWN",
            "DIGEST_INVALID",
            "SIZE_INVALID",
        ];
        let final_ = [
            "BLOB_UNKNOWN",
            "MANIFEST_BLOB_UNKNOWN",
            "MANIFEST_INVALID",
            "MANIFEST_UNKNOWN",
            "NAME_INVALID",
            "NAME_UNKNOWN",
            "UNAUTHORIZED",
            "DENIED",
            "UNSUPPORTED",
        ];
        for c in transient {
            assert!(with_code(c, Some(400)).is_transient(), "{c}");
            assert_eq!(ErrorCode::parse(c).as_str(), c);
        }
        for c in final_ {
            assert!(!with_code(c, Some(400)).is_transient(), "{c}");
            assert!(!with_code(c, None).is_transient(), "{c}");
            assert_eq!(ErrorCode::parse(c).as_str(), c);
        }
    }

    #[test]
    fn a_refused_manifest_sent_as_500_is_final() {
        for code in ["MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID", "BLOB_UNKNOWN"] {
            let body = format!(
                r#"{{"errors":[{{"code":"{code}","message":"blob unknown to registry"}}]}}"#
            );
            let e = OciDistributionError::ServerError {
                code: 500,
                url: "http://r/v2/a/manifests/1".into(),
                message: body,
            };
            let f = Failure::of(&e);
            assert_eq!(f.status, Some(500));
            assert_eq!(f.code, Some(ErrorCode::parse(code)));
            assert!(!f.is_transient(), "{code} as 500");
        }
        // As distribution 2.8 sends a manifest whose foreign layer URL it refuses: unknown
        // codes first, the refusal last.
        let e = OciDistributionError::ServerError {
            code: 500,
            url: "http://r/v2/a/manifests/1".into(),
            message: r#"{"errors":[{"code":"UNKNOWN","message":"unknown error"},{"code":"UNKNOWN","message":"unknown error"},{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#.into(),
        };
        let f = Failure::of(&e);
        assert_eq!(f.code, Some(ErrorCode::ManifestBlobUnknown));
        assert!(!f.is_transient(), "a refusal listed after unknown codes");
        // A 500 with no code, or one we do not know, is the server's trouble: try again.
        let plain = OciDistributionError::ServerError {
            code: 500,
            url: String::new(),
            message: "internal error".into(),
        };
        assert!(Failure::of(&plain).is_transient());
        assert!(with_code("SOMETHING_NEW", Some(503)).is_transient());
        assert!(!with_code("SOMETHING_NEW", Some(400)).is_transient());
    }

    #[test]
    fn statuses_without_a_code() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(Failure::status(s).is_transient(), "{s}");
        }
        for s in [400, 401, 403, 404, 405, 409] {
            assert!(!Failure::status(s).is_transient(), "{s}");
        }
    }

    #[test]
    fn io_kinds() {
        use ErrorKind as K;
        for k in [
            K::ConnectionReset,
            K::ConnectionAborted,
            K::ConnectionRefused,
            K::TimedOut,
            K::UnexpectedEof,
            K::BrokenPipe,
            K::InvalidData,
        ] {
            assert!(Failure::io(k).is_transient(), "{k:?}");
        }
        for k in [K::PermissionDenied, K::NotFound, K::Other, K::InvalidInput] {
            assert!(!Failure::io(k).is_transient(), "{k:?}");
        }
        assert!(!Failure::default().is_transient());
    }

    #[test]
    fn io_kind_is_found_behind_wrapping() {
        use ErrorKind as K;
        let reset = std::io::Error::from(K::ConnectionReset);
        let wrapped = std::io::Error::other(reset);
        assert_eq!(transport_kind(&wrapped), Some(K::ConnectionReset));
        let e = OciDistributionError::IoError(std::io::Error::other(wrapped));
        assert!(Failure::of(&e).is_transient());
        let opaque = OciDistributionError::IoError(std::io::Error::other("gave up"));
        assert_eq!(Failure::of(&opaque).io, Some(K::Other));
        assert!(!Failure::of(&opaque).is_transient());
    }

    #[tokio::test]
    async fn a_refused_connection_is_transient() {
        // Bound then dropped: nothing listens on the port any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/v2/"))
            .send()
            .await
            .unwrap_err();
        let f = Failure::of(&OciDistributionError::RequestError(e));
        assert_eq!((f.status, f.io), (None, Some(ErrorKind::ConnectionRefused)));
        assert!(f.is_transient());
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_final() {
        // `.invalid` never resolves (RFC 2606), with or without a network.
        let e = reqwest::Client::new()
            .get("http://registry.mockimg-test.invalid/v2/")
            .send()
            .await
            .unwrap_err();
        let f = Failure::of(&OciDistributionError::RequestError(e));
        assert_eq!(f.io, Some(ErrorKind::HostUnreachable));
        assert!(!f.is_transient());
    }

    #[tokio::test]
    async fn a_body_that_failed_our_verification_reads_as_corrupt() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            while tokio::io::AsyncReadExt::read(&mut sock, &mut buf)
                .await
                .is_ok_and(|n| n > 0)
            {}
        });
        let bad = std::io::Error::new(ErrorKind::InvalidData, "content mismatch");
        let body = futures_util::stream::iter(vec![
            Ok(bytes::Bytes::from_static(b"half")),
            Err(OciDistributionError::IoError(bad)),
        ]);
        let e = reqwest::Client::new()
            .put(format!("http://{addr}/v2/a/blobs/uploads/x"))
            .header("Content-Length", "8")
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
            .unwrap_err();
        let f = Failure::of(&OciDistributionError::RequestError(e));
        assert_eq!(f.io, Some(ErrorKind::InvalidData));
        assert!(f.is_transient());
    }

    #[test]
    fn oci_client_variants_map_to_data() {
        let unauthorized = OciDistributionError::UnauthorizedError { url: String::new() };
        assert!(Failure::of(&unauthorized).is_unauthorized());
        assert!(!Failure::of(&unauthorized).is_transient());
        let env = |code| OciDistributionError::RegistryError {
            envelope: OciEnvelope {
                errors: vec![OciError {
                    code,
                    message: String::new(),
                    detail: serde_json::Value::Null,
                }],
            },
            url: String::new(),
        };
        let limited = Failure::of(&env(OciErrorCode::Toomanyrequests));
        assert_eq!(limited.code, Some(ErrorCode::TooManyRequests));
        assert!(limited.is_transient());
        let denied = Failure::of(&env(OciErrorCode::Unauthorized));
        assert!(denied.is_unauthorized() && !denied.is_transient());
        let other = Failure::of(&env(OciErrorCode::Other("DIGEST_INVALID".into())));
        assert_eq!(other.code, Some(ErrorCode::DigestInvalid));
        let missing = OciDistributionError::ImageManifestNotFoundError("x".into());
        assert!(!Failure::of(&missing).is_transient());
    }

    #[test]
    fn error_bodies_read_as_codes() {
        let body =
            r#"{"errors":[{"code":"DIGEST_INVALID","message":"bad\nsecond line"},{"code":"X"}]}"#;
        assert_eq!(
            body_codes(body),
            vec![ErrorCode::DigestInvalid, ErrorCode::Unknown("X".into())]
        );
        assert_eq!(error_body(body), "DIGEST_INVALID: bad; X: ");
        assert!(body_codes("<html>oops</html>").is_empty());
        assert_eq!(error_body("oops\nmore"), "oops");
    }

    #[test]
    fn refused_access_names_the_repository() {
        assert_eq!(
            access_op("checking blob sha256:ab in r:5000/team/mocks"),
            "pushing to r:5000/team/mocks"
        );
        assert_eq!(
            access_op("fetching manifest r:5000/base:1"),
            "pulling r:5000/base:1"
        );
    }
}
