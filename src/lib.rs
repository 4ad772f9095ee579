//! mockimg: bundle an Imposter configuration directory onto an engine image, daemonlessly.
//!
//! The modules read as the data flow of one build (see `ARCHITECTURE.md`):
//! [`oci`] (the image model) → [`source`] (open a base) → [`mutate`] (the config layer and the
//! append) → [`sink`] (push, layout, archive), with [`registry`] as the client both ends use,
//! [`imposter`] for what the engine expects, [`build`] wiring a job, and [`cli`] at the edge;
//! [`atomic`] (the one file writer) and [`error`] are helpers every layer may use.

#![deny(missing_docs)]
#![warn(unreachable_pub)]

/// The pinned default engine release, as a literal so `--version` can `concat!` it.
#[macro_export]
macro_rules! default_engine_version {
    () => {
        "4.9.3"
    };
}

pub mod atomic;
pub mod attest;
pub mod build;
pub mod cli;
pub mod error;
pub mod imposter;
pub mod inspect;
pub mod mutate;
pub mod oci;
pub mod rebase;
pub mod registry;
pub mod sign;
pub mod sink;
pub mod source;
pub(crate) mod temps;
