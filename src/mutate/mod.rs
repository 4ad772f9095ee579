//! The one mutation: build the deterministic config layer (walk, tar, gzip) and append it.

pub mod append;
pub mod gzip;
pub mod layer;
