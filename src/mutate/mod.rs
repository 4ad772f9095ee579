//! The one mutation: walk the config directory, build the deterministic config layer (tar,
//! gzip) and append it.

pub(crate) mod append;
mod gzip;
pub(crate) mod layer;
pub mod outside;
pub(crate) mod runconfig;
pub(crate) mod spool;
pub(crate) mod walk;

pub use append::{append_layer, AppendOptions, LayerInfo};
pub use layer::{Layer, LayerOptions};
pub use walk::{config_files, WalkOptions};
