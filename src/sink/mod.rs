//! Sinks: push to a registry, write an OCI layout or an archive tar.
//!
//! File sinks write through [`atomic`] and copy blobs through one verified, refetching copy.

pub(crate) mod archive;
pub mod atomic;
pub(crate) mod layout;
mod refetch;
pub(crate) mod registry;

pub use layout::ImageName;
pub use registry::PushStats;
