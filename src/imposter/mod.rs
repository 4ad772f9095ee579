//! What the Imposter engine expects: engines, project file, validation, the Lambda bundle, CI
//! annotations.

pub mod bundle;
pub(crate) mod ci;
pub(crate) mod engine;
pub(crate) mod ignore;
pub(crate) mod project;
pub(crate) mod publish;
pub mod validate;

pub use engine::{EngineFacts, DEFAULT_ENGINE_VERSION, ENGINES};
mod yaml;
