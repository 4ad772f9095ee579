//! Registry failures as data, and the one retry decision made from them. A leaf: it reads a
//! status, a body and a transport error, and imports nothing else of the crate but the TLS
//! classification.
//!
//! A failed request is described by three things: the distribution-spec error code from the
//! body (`{"errors":[{"code":"BLOB_UNKNOWN",…}]}`), the HTTP status, and, when no answer came,
//! the I/O kind (reset, timeout, refused, cut short). [`Failure::is_transient`] reads only those.
use super::tls::classify::{classify, TlsFailure};
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
    /// The HTTP status, when an answer came and the body did not speak for itself (a 4xx with
    /// an error body is read by its codes alone).
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

    /// An answer that was not the one asked for, from its status and body, and its one-line
    /// description: `CODE: message` of a 4xx error body, else `HTTP status: first line`.
    pub(crate) fn of_answer(status: u16, body: &[u8]) -> (Self, String) {
        let text = String::from_utf8_lossy(body);
        if status == 401 {
            return (Self::status(401), format!("HTTP {status}"));
        }
        if (400..500).contains(&status) {
            if let Some(errs) = body_errors(&text) {
                let detail = errs
                    .iter()
                    .map(|(c, m)| format!("{c}: {m}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                let code = decisive(errs.into_iter().map(|(c, _)| c));
                return (
                    Failure {
                        code,
                        // A conditional request's failed precondition is known by its status,
                        // whatever code the body spells it with.
                        status: (status == 412).then_some(status),
                        ..Self::default()
                    },
                    detail,
                );
            }
        }
        let f = Failure {
            code: decisive(body_codes(&text)),
            status: Some(status),
            ..Self::default()
        };
        (f, format!("HTTP {status}: {}", error_body(&text)))
    }

    /// A request that got no (whole) answer, from the transport's error and its sources.
    pub(crate) fn of_transport(e: &reqwest::Error) -> Self {
        Failure {
            status: e.status().map(|s| s.as_u16()),
            io: transport_kind(e),
            tls: classify(e).map(Box::new),
            ..Self::default()
        }
    }

    /// A conditional request (`If-Match`) found the resource changed since it was read: 412.
    pub(crate) fn is_precondition_failed(&self) -> bool {
        self.status == Some(412)
    }

    /// A failure known by its HTTP status alone.
    pub(crate) fn status(s: u16) -> Self {
        Failure {
            status: Some(s),
            ..Self::default()
        }
    }

    /// A failure known by its error code alone.
    pub(crate) fn code(c: ErrorCode) -> Self {
        Failure {
            code: Some(c),
            ..Self::default()
        }
    }

    /// A failure known by its I/O kind alone (`InvalidData`: content that failed verification).
    pub(crate) fn io(k: ErrorKind) -> Self {
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
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
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
fn body_codes(body: &str) -> Vec<ErrorCode> {
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
#[path = "failure_tests.rs"]
mod tests;
