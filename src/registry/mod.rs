//! The registry client, in two layers: the transport (`transport.rs`: one call, `send`, that
//! takes a `transport::Request` and returns the response or the transport's failure) and the
//! API (`api/`: every distribution-spec call, each over `send`). Below them, leaves that import
//! nothing above: `failure.rs` (a failure as data, the one retry decision) and `tls/classify.rs`.
//! The pull side's orchestration lives in `source/registry.rs`, the push side's in
//! `sink/registry.rs`; both call the API only. `locations.rs` holds where a blob may be found
//! besides: the record of where blobs were seen and the `--mount-from` hints, which both ends
//! read and add to.
//!
//! | file | holds | a new quirk goes here when it is about… |
//! | --- | --- | --- |
//! | `mod.rs` | [`Registry`], [`RegistryOptions`] | a new knob |
//! | `api/` | manifest get/head/put, blob get/head/mount, upload (single request or POST + PUT), tags, referrers | a protocol call or its answers |
//! | `transport.rs` | one request: base URL, `Authorization`, 401 renewal, redirects, `-v` logging | how a request is sent |
//! | `auth.rs` | the probe, challenges, tokens per scope set, scopes | a token server |
//! | `retry.rs` | the backoff and the retry loop (`Retry-After` honoured) | how long or how often to retry |
//! | `failure.rs` | error codes, status, I/O kind, TLS failure → one `is_transient()` (leaf) | what to retry |
//! | `error.rs` | the one line a failure is reported in, with its fix | an error message |
//! | `pool.rs` | one client per host, plain HTTP or TLS | connecting, timeouts, the scheme |
//! | `tls/` | trust: CAs, client certificates, TLS failures | certificates |
//! | `credentials.rs` | where credentials come from | docker config, helpers, env vars |
//! | `login.rs` | `mockimg login` / `logout`: check, store, erase | the credentials file |
mod api;
mod auth;
mod credentials;
mod error;
pub mod failure;
pub mod locations;
mod login;
mod pool;
pub(crate) mod retry;
pub(crate) mod settle;
pub mod tls;
mod transport;

pub(crate) use api::Mount;
pub use api::MANIFEST_MAX;
pub(crate) use auth::{mount_scopes, scopes_for};
pub use credentials::{EnvCredentials, ENV_HOST, ENV_PASS, ENV_USER};
pub use locations::{Locations, MountFrom};
pub use login::{login, logout};
pub(crate) use transport::Action;

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
    /// The `certs.d` roots searched for a registry's `HOST[:PORT]` directory, in order
    /// ([`tls::certs::DEFAULT_ROOTS`] by default).
    pub certs_d: Vec<std::path::PathBuf>,
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
    /// Bytes per chunk when a registry makes a blob go up in chunks (more when it names a
    /// larger minimum, less after a chunk was refused as too large).
    pub chunk_size: u64,
    /// Registries this run pushes to: the only ones [`RegistryOptions::env_credentials`] are
    /// sent to (unless they name one).
    pub push_hosts: Vec<String>,
    /// Credentials from the environment (`MOCKIMG_REGISTRY_USERNAME`/`_PASSWORD`), read by the
    /// caller; they win over config files for the registries they apply to.
    pub env_credentials: Option<EnvCredentials>,
    /// `--mount-from`: repositories on the target registry that may hold the base's blobs.
    pub mount_from: Vec<MountFrom>,
    /// Where blobs were seen (beside the blob cache), read and added to by pulls and pushes.
    pub locations: Option<std::sync::Arc<Locations>>,
}

impl Default for RegistryOptions {
    /// The production values. Nothing is read from the environment here: the CLI reads its
    /// knobs (`MOCKIMG_*`) once and hands them in.
    fn default() -> Self {
        Self {
            insecure: Vec::new(),
            cert_dir: None,
            certs_d: tls::certs::default_roots(),
            retries: 4,
            concurrency: 4,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            backoff: Duration::from_millis(400),
            chunk_size: api::DEFAULT_CHUNK,
            push_hosts: Vec::new(),
            env_credentials: None,
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
    /// The HTTP client for this registry and its token server, made on first use.
    http: std::sync::OnceLock<std::result::Result<reqwest::Client, String>>,
    creds: Option<credentials::Credentials>,
    /// What `GET /v2/` answered, asked once per process (see `auth.rs`).
    probe: tokio::sync::OnceCell<auth::Probe>,
    /// Whether this registry takes a blob in a single POST (see `api/upload.rs`).
    monolithic: std::sync::atomic::AtomicU8,
    /// What bodies this registry refused as too large, so blobs that large go in chunks (see
    /// `api/chunks.rs`).
    chunking: api::Chunking,
    /// `Authorization` values per scope set, until they expire.
    tokens: tokio::sync::Mutex<std::collections::HashMap<String, auth::Token>>,
}
