//! mockimg: bundle an Imposter configuration directory onto an engine image, daemonlessly.

/// The pinned default engine release, as a literal so `--version` can `concat!` it.
#[macro_export]
macro_rules! default_engine_version {
    () => {
        "4.9.3"
    };
}

pub mod archive;
pub mod blob;
pub mod build;
pub mod bundle;
pub mod cache;
pub mod cli;
pub mod credentials;
pub mod digest;
pub mod error;
pub mod gzip;
pub mod image;
pub mod layer;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod validate;
