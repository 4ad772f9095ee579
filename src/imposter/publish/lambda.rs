//! `--lambda-function`: what a stock Imposter Lambda needs to read the published config, and
//! which runtimes run which engine. The function's environment is set by `sink::lambda_fn`.
//! The revision variable changes with every different config, so the environment changes and
//! Lambda retires warm instances: the next invocation loads the new config.
use crate::sink::lambda_fn::Function;
use crate::sink::publish::PublishError;
use std::collections::HashMap;

/// Where the engine reads its config from.
pub(crate) const CONFIG_DIR_VAR: &str = "IMPOSTER_CONFIG_DIR";
/// Holds the published digest, so a config change is an environment change.
pub(crate) const REVISION_VAR: &str = "MOCKIMG_CONFIG_REVISION";

/// What to set on which function.
#[derive(Debug, Clone)]
pub(crate) struct LambdaUpdate {
    /// Function name or ARN.
    pub function: String,
    /// `s3://BUCKET/PREFIX`.
    pub config_dir: String,
    /// The published digest.
    pub digest: String,
    /// The config was validated for the Go engine (5.x), not the JVM one.
    pub go_engine: bool,
}

/// What the update did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LambdaOutcome {
    /// False when both variables already had these values.
    pub updated: bool,
    /// The function's runtime, as Lambda reports it.
    pub runtime: Option<String>,
    /// A runtime that does not fit the engine the config was validated for.
    pub warning: Option<String>,
}

/// The variables that point the engine at the published config.
fn variables(u: &LambdaUpdate) -> HashMap<String, String> {
    HashMap::from([
        (CONFIG_DIR_VAR.to_string(), u.config_dir.clone()),
        (REVISION_VAR.to_string(), u.digest.clone()),
    ])
}

/// A warning when `runtime` cannot run the engine: the JVM engine needs `java*`, the Go engine
/// a custom runtime (`provided.al2`, `provided.al2023`).
pub(crate) fn runtime_warning(runtime: &str, go_engine: bool) -> Option<String> {
    let fits = if go_engine {
        runtime.starts_with("provided.al2")
    } else {
        runtime.starts_with("java")
    };
    (!fits).then(|| {
        let (engine, want) = if go_engine {
            ("the Go engine (5.x)", "provided.al2023 or provided.al2")
        } else {
            ("the JVM engine (4.x)", "a java* runtime such as java21")
        };
        format!("the function's runtime {runtime} does not fit {engine} the config was validated for; it needs {want}")
    })
}

/// Why `publish --lambda-function` cannot serve a Go engine function: it reads no S3 config.
/// It stats `IMPOSTER_CONFIG_DIR` as a local directory and stops when it is not one
/// (imposter-go@v5.21.3:internal/adapter/common.go:32-35; on Lambda it defaults to
/// /var/task/config, internal/adapter/awslambda/awslambda.go:54-58).
pub(crate) const GO_READS_NO_BUCKET: &str = "the Go engine reads no S3 config (it loads \
    IMPOSTER_CONFIG_DIR as a local directory) — bundle the config into the function's zip \
    instead: mockimg bundle DIR --engine-archive imposter-go_linux_<arch>.tar.gz";

/// The function's runtime, read before anything is uploaded: a custom runtime (`provided.*`)
/// runs the Go engine, which cannot read the bucket, so the publish is refused up front.
pub(crate) async fn check_function(function: &str) -> Result<(), PublishError> {
    match Function::new(function).await.runtime().await? {
        Some(r) if r.starts_with("provided") => Err(PublishError::Lambda {
            function: function.to_string(),
            message: format!("its runtime {r} runs the Go engine, and {GO_READS_NO_BUCKET}"),
        }),
        _ => Ok(()),
    }
}

/// Sets [`CONFIG_DIR_VAR`] and [`REVISION_VAR`] on the function, keeping every other variable,
/// and says whether its runtime fits the engine.
pub(crate) async fn update(u: &LambdaUpdate) -> Result<LambdaOutcome, PublishError> {
    let o = Function::new(&u.function)
        .await
        .set_variables(&variables(u))
        .await?;
    let warning = o
        .runtime
        .as_deref()
        .and_then(|r| runtime_warning(r, u.go_engine));
    Ok(LambdaOutcome {
        updated: o.updated,
        runtime: o.runtime,
        warning,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variables_point_the_engine_at_the_prefix_and_the_revision() {
        let v = variables(&LambdaUpdate {
            function: "mocks".into(),
            config_dir: "s3://b/p".into(),
            digest: "sha256:ab".into(),
            go_engine: false,
        });
        assert_eq!(v.len(), 2);
        assert_eq!(v[CONFIG_DIR_VAR], "s3://b/p");
        assert_eq!(v[REVISION_VAR], "sha256:ab");
    }

    #[test]
    fn runtime_must_fit_the_engine() {
        assert!(runtime_warning("java21", false).is_none());
        assert!(runtime_warning("provided.al2023", true).is_none());
        assert!(runtime_warning("provided.al2", true).is_none());
        let w = runtime_warning("python3.12", false).unwrap();
        assert!(w.contains("python3.12") && w.contains("java"), "{w}");
        assert!(runtime_warning("java17", true)
            .unwrap()
            .contains("provided.al2023"));
    }
}
