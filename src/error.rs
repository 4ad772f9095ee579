//! The library's error type. Every message is meant to be printed as one line that names the
//! thing that went wrong and, where there is one, the fix.
use crate::registry::failure::Failure;
use std::path::PathBuf;

/// The crate's result, with [`Error`] unless said otherwise.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, each variant worded as one line for the user.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user asked for something impossible or malformed; exit code 2.
    #[error("{0}")]
    Usage(String),

    /// An image reference that does not parse; a usage error.
    #[error("invalid image reference {input:?}: {reason}")]
    Reference {
        /// The reference as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A file or directory that is not what it must be.
    #[error("{path}: {message}")]
    Path {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong with it, and the fix.
        message: String,
    },

    /// An I/O failure on a file.
    #[error("{context}: {path}: {source}")]
    Io {
        /// What was being done (`"reading archive"`).
        context: &'static str,
        /// The file.
        path: PathBuf,
        /// The failure itself.
        #[source]
        source: std::io::Error,
    },

    /// A manifest, index, config or archive that is not what it claims to be.
    #[error("{what}: {message}")]
    Invalid {
        /// The thing, named so the user can find it.
        what: String,
        /// What is wrong with it.
        message: String,
    },

    /// Content that does not hash to the digest it was asked for by; a fresh copy may, so this
    /// is retryable.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The thing, named so the user can find it.
        what: String,
        /// The digest it was asked for by.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },

    /// Streamed bytes that did not match their descriptor (size or digest); a fresh copy from
    /// the source may be fine, so this is retryable.
    #[error("{what}: {message}")]
    Corrupt {
        /// The blob, named so the user can find it.
        what: String,
        /// How it differed.
        message: String,
    },

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
    Validation {
        /// How many problems were found.
        errors: usize,
        /// The first of them, in full.
        first: String,
    },

    /// Ctrl-C: the job was cancelled and its temp files dropped.
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
    /// An [`Error::Io`] while doing `context` on `path`.
    pub fn io(context: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            context,
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Invalid`]: `what` is not what it claims to be.
    pub fn invalid(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            message: message.into(),
        }
    }

    /// An [`Error::Path`]: something is wrong with `path`.
    pub fn path(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Path {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Whether the user asked for something impossible (exit code 2) rather than the job failing.
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Usage(_) | Error::Reference { .. })
    }

    /// Whether trying again may cure it: a transient registry failure, or content that arrived
    /// corrupted. The one place retry loops ask.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Registry { cause, .. } => cause.is_transient(),
            Error::DigestMismatch { .. } | Error::Corrupt { .. } => true,
            _ => false,
        }
    }
}
