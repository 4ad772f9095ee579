//! The library's error type. Every message is meant to be printed as one line that names the
//! thing that went wrong and, where there is one, the fix.
use crate::registry::error::Failure;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user asked for something impossible or malformed; exit code 2.
    #[error("{0}")]
    Usage(String),

    #[error("invalid image reference {input:?}: {reason}")]
    Reference { input: String, reason: String },

    #[error("{path}: {message}")]
    Path { path: PathBuf, message: String },

    #[error("{context}: {path}: {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A manifest, index, config or archive that is not what it claims to be.
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },

    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },

    /// Streamed bytes that did not match their descriptor (size or digest); a fresh copy from
    /// the source may be fine, so this is retryable.
    #[error("{what}: {message}")]
    Corrupt { what: String, message: String },

    /// A registry request failed; the line names the registry, the operation and the fix.
    #[error("{}: {message}", registry_operation(registry, operation))]
    Registry {
        /// `HOST[:PORT]`.
        registry: String,
        /// What was being done, naming the repository, blob or manifest.
        operation: String,
        /// What went wrong, for people.
        message: String,
        /// What went wrong, as data: error code, HTTP status, I/O kind. Retries are decided
        /// from this alone ([`Failure::is_transient`]).
        cause: Failure,
    },

    /// A problem with the config directory itself, already worded with its path and fix.
    #[error("{0}")]
    ConfigDir(String),

    /// One error is told in full on this line; several are listed above it.
    #[error("config validation failed: {}", validation_detail(*.errors, .first))]
    Validation { errors: usize, first: String },

    #[error("interrupted")]
    Interrupted,
}

/// The operation, prefixed with the registry unless it already names it.
fn registry_operation(registry: &str, operation: &str) -> String {
    if operation.contains(registry) {
        operation.to_string()
    } else {
        format!("{registry}: {operation}")
    }
}

fn validation_detail(errors: usize, first: &str) -> String {
    if errors == 1 {
        format!("{first} (or pass --no-validate)")
    } else {
        format!("{errors} errors, listed above; fix them or pass --no-validate")
    }
}

impl Error {
    pub fn io(context: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            context,
            path: path.into(),
            source,
        }
    }

    pub fn invalid(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            message: message.into(),
        }
    }

    pub fn path(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Path {
            path: path.into(),
            message: message.into(),
        }
    }

    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Usage(_) | Error::Reference { .. })
    }

    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Registry { cause, .. } => cause.is_transient(),
            Error::DigestMismatch { .. } | Error::Corrupt { .. } => true,
            _ => false,
        }
    }
}
