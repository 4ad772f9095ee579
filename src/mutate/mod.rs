//! The one mutation: walk the config directory, build the deterministic config layer (tar,
//! gzip) and append it.

pub mod append;
mod gzip;
pub mod layer;
pub mod runconfig;
pub mod walk;
