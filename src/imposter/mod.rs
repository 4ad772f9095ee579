//! What the Imposter engine expects: engines, project file, validation, the Lambda bundle, CI
//! annotations.

pub mod bundle;
pub mod ci;
pub mod engine;
pub mod ignore;
pub mod project;
pub mod validate;
mod yaml;
