//! The registry client: our own requests over reqwest, so that every round trip is ours to count
//! and every response header ours to read (oci-client is kept for its error and reference types,
//! which the error mapping reads). The pull side lives in `crate::source::registry`, the push
//! side in `crate::sink::registry`; this folder holds what both use, one job per file:
//!
//! | file | holds | a new quirk goes here when it is about… |
//! | --- | --- | --- |
//! | `mod.rs` | [`Registry`], [`RegistryOptions`] | a new knob |
//! | `http.rs` | one request: auth probe and tokens cached, 401 renewal, redirects, `Retry-After` | how a request is sent |
//! | `upload.rs` | HEAD a blob or manifest, upload a blob (single request or POST + PUT), PUT a manifest | the push protocol |
//! | `pool.rs` | one client per host, plain HTTP or TLS | connecting, timeouts, the scheme |
//! | `tls/` | trust: CAs, client certificates, TLS failures | certificates |
//! | `credentials.rs` | where credentials come from | docker config, helpers, env vars |
//! | `login.rs` | `mockimg login` / `logout`: check, store, erase | the credentials file |
//! | `auth.rs` | challenges, tokens, scopes | a token server |
//! | `mount.rs` | cross-repository blob mounts (no HEAD first; 202 ⇒ upload into its session) | mounting |
//! | `retry.rs` | the backoff and the retry loop | how long or how often to retry |
//! | `error.rs` | error codes, status, I/O kind → one transient decision | what to retry |
mod auth;
mod credentials;
pub mod error;
mod http;
mod login;

pub use login::{login, logout};
mod mount;
mod pool;
pub(crate) mod retry;
pub(crate) mod tags;
mod upload;
pub(crate) use auth::{mount_scopes, scopes_for};
pub(crate) use http::Body;
pub(crate) use mount::Mount;
pub mod tls;

use std::time::Duration;

/// How registries are reached and how hard to try.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// `--insecure-registry HOST[:PORT]`: TLS without verification for these, or plain HTTP
    /// when they do not speak TLS.
    pub insecure: Vec<String>,
    /// `--cert-dir DIR`: CA certificates and a client pair for every registry, in place of the
    /// `certs.d` directories.
    pub cert_dir: Option<std::path::PathBuf>,
    /// Attempts after the first, for transient failures.
    pub retries: u32,
    /// Requests in flight at once per step of a pull or push (`--jobs`): blobs, manifests,
    /// configs.
    pub concurrency: usize,
    /// Longest wait for a connection to open.
    pub connect_timeout: Duration,
    /// Longest silence on an open transfer before it counts as dead.
    pub idle_timeout: Duration,
    /// Base of the exponential backoff.
    pub backoff: Duration,
    /// Registries this run pushes to: the only ones `MOCKIMG_REGISTRY_USERNAME`/`_PASSWORD`
    /// are sent to (unless `MOCKIMG_REGISTRY` names one).
    pub push_hosts: Vec<String>,
    /// `--mount-from`: repositories on the target registry that may hold the base's blobs.
    pub mount_from: Vec<crate::sink::registry::MountFrom>,
    /// Where blobs were seen (beside the blob cache), read and added to by pulls and pushes.
    pub locations: Option<std::sync::Arc<crate::source::locations::Locations>>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        // Knobs for tests (and the desperate): a fault test must not wait out production delays.
        let ms = |var: &str, default: u64| {
            Duration::from_millis(
                std::env::var(var)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(default),
            )
        };
        Self {
            insecure: Vec::new(),
            cert_dir: None,
            retries: 4,
            concurrency: 4,
            connect_timeout: ms("MOCKIMG_CONNECT_TIMEOUT_MS", 10_000),
            idle_timeout: ms("MOCKIMG_IDLE_TIMEOUT_MS", 60_000),
            backoff: ms("MOCKIMG_RETRY_BASE_MS", 400),
            push_hosts: Vec::new(),
            mount_from: Vec::new(),
            locations: None,
        }
    }
}

/// A connection to one registry host, shared by every pull and push to it (see
/// [`Registry::connect`]).
pub struct Registry {
    /// `HOST[:PORT]` as references name it.
    pub(crate) host: String,
    /// Certificates for this host, shared by every client made for it.
    trust: tls::Trust,
    pub(crate) opts: RegistryOptions,
    /// Whether a 401 means "log in" or "your login was refused".
    has_credentials: bool,
    /// Our own HTTP client for what oci-client cannot do (mounts, their tokens), made on first
    /// use.
    http: std::sync::OnceLock<std::result::Result<reqwest::Client, String>>,
    creds: Option<credentials::Credentials>,
    /// What `GET /v2/` answered, asked once per process (see `http.rs`).
    probe: tokio::sync::OnceCell<http::Probe>,
    /// Whether this registry takes a blob in a single POST (see `upload.rs`).
    monolithic: std::sync::atomic::AtomicU8,
    /// `Authorization` values per scope set, until they expire.
    tokens: tokio::sync::Mutex<std::collections::HashMap<String, http::Token>>,
}
