//! mockimg: bundle an Imposter configuration directory onto an engine image, daemonlessly.
pub mod error;
pub mod digest;
pub mod reference;
pub mod layer;
pub mod image;
pub mod blob;
pub mod credentials;
pub mod registry;
pub mod validate;
pub mod archive;
pub mod cache;
pub mod build;
pub mod cli;
