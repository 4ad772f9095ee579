//! What the Imposter engine expects: engines, project file, validation, the Lambda bundle.

pub mod bundle;
pub mod publish;
pub mod validate;
