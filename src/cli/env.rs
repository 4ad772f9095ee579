//! The environment, read once here at the edge and handed to the library as values: the
//! library reads no `MOCKIMG_*` (nor any other user setting) itself.
use crate::error::Error;
use crate::registry::{EnvCredentials, RegistryOptions, ENV_HOST, ENV_PASS, ENV_USER};
use std::path::PathBuf;
use std::time::Duration;

/// The environment variable naming the `certs.d` roots to search, `:`-separated, in order.
/// Unset, the roots are `registry::tls::certs::DEFAULT_ROOTS`; tests point it at their own
/// directories.
pub(crate) const CERTS_D_ENV: &str = "MOCKIMG_CERTS_D";

/// A variable's value; empty counts as unset.
pub(crate) fn var(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

fn var_os(k: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(k).filter(|v| !v.is_empty())
}

/// `SOURCE_DATE_EPOCH` as seconds, if set and valid: read here, once per command, and handed to
/// the library as a value.
pub(crate) fn source_date_epoch() -> Result<Option<u64>, Error> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) if !s.is_empty() => s.trim().parse().map(Some).map_err(|_| {
            Error::Usage(format!(
                "SOURCE_DATE_EPOCH={s:?} is not a number of seconds; unset it or give e.g. 1700000000"
            ))
        }),
        _ => Ok(None),
    }
}

/// The registry options before any flag: the production defaults with what the environment
/// sets over them. The timing knobs are for tests (and the desperate): a fault test must not
/// wait out production delays.
pub(crate) fn registry_options() -> RegistryOptions {
    let defaults = RegistryOptions::default();
    let ms = |k: &str, default: Duration| {
        std::env::var(k)
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(default, Duration::from_millis)
    };
    RegistryOptions {
        connect_timeout: ms("MOCKIMG_CONNECT_TIMEOUT_MS", defaults.connect_timeout),
        idle_timeout: ms("MOCKIMG_IDLE_TIMEOUT_MS", defaults.idle_timeout),
        backoff: ms("MOCKIMG_RETRY_BASE_MS", defaults.backoff),
        chunk_size: std::env::var("MOCKIMG_CHUNK_BYTES")
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|n| *n > 0)
            .unwrap_or(defaults.chunk_size),
        certs_d: match std::env::var_os(CERTS_D_ENV) {
            Some(v) => std::env::split_paths(&v)
                .filter(|p| !p.as_os_str().is_empty())
                .collect(),
            None => defaults.certs_d.clone(),
        },
        env_credentials: match (std::env::var(ENV_USER), std::env::var(ENV_PASS)) {
            (Ok(username), Ok(password)) => Some(EnvCredentials {
                username,
                password,
                registry: std::env::var(ENV_HOST).ok(),
            }),
            _ => None,
        },
        ..defaults
    }
}

/// The blob cache directory when `--cache-dir` is not given: `MOCKIMG_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/mockimg`, else `~/.cache/mockimg`. Empty variables count as unset, as the
/// XDG spec says.
pub(crate) fn cache_dir() -> Option<PathBuf> {
    if let Some(d) = var_os("MOCKIMG_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("mockimg"));
    }
    var_os("HOME").map(|h| PathBuf::from(h).join(".cache/mockimg"))
}

/// The variables of the process environment that any of the stores reads (`AWS_*`,
/// `GOOGLE_*`, `AZURE_*`), read here and handed to the store builder.
pub(crate) fn store_vars() -> crate::sink::publish::store::Vars {
    std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("AWS_") || k.starts_with("GOOGLE_") || k.starts_with("AZURE_")
        })
        .collect()
}
