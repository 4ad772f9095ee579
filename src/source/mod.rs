//! Sources: open a base image from a registry, an OCI layout or an archive.

pub mod cache;
pub mod registry;
