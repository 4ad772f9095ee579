//! Sinks: push to a registry, write an OCI layout or an archive tar.

pub mod archive;
pub mod atomic;
pub mod registry;
