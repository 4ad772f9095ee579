//! Sinks: push to a registry, write an OCI layout or an archive tar.
//!
//! File sinks write through [`atomic`] and copy blobs through one verified, refetching copy.

pub mod archive;
pub mod atomic;
pub mod layout;
mod refetch;
pub mod registry;
