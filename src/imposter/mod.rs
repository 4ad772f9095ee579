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

use crate::mutate::WalkOptions;

/// How a config directory is walked for the engine: `excludes` (`--exclude`), and never the
/// project files at its top (the Imposter CLI's and mockimg's), which say how to run the
/// engine and are not config. The walker knows no engine: every job gets its options here.
pub fn walk_options(excludes: Vec<String>) -> WalkOptions {
    WalkOptions {
        excludes,
        never_at_top: &project::PROJECT_FILES,
    }
}
