//! `--lambda-function`: point a stock Imposter Lambda at the published config. Changing the
//! function's environment makes Lambda retire warm instances, so the next invocation loads the
//! new config: the revision variable changes with every different config.
use super::PublishError;
use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::types::Environment;
use std::collections::HashMap;
use std::time::Duration;

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

/// The function's variables with ours set and every other one kept.
pub(crate) fn merged_variables(
    current: Option<&HashMap<String, String>>,
    u: &LambdaUpdate,
) -> HashMap<String, String> {
    let mut vars = current.cloned().unwrap_or_default();
    vars.insert(CONFIG_DIR_VAR.into(), u.config_dir.clone());
    vars.insert(REVISION_VAR.into(), u.digest.clone());
    vars
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
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let client = aws_sdk_lambda::Client::new(&conf);
    let cfg = client
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .map_err(|e| PublishError::Lambda {
            function: function.to_string(),
            message: match e.code() {
                Some("ResourceNotFoundException") => format!(
                    "reading the configuration: no such function — check --lambda-function and AWS_REGION ({})",
                    conf.region().map(|r| r.to_string()).unwrap_or_else(|| "unset".into())
                ),
                _ => format!(
                    "reading the configuration failed: {}",
                    aws_sdk_lambda::error::DisplayErrorContext(&e)
                ),
            },
        })?;
    match cfg.runtime().map(|r| r.as_str()) {
        Some(r) if r.starts_with("provided") => Err(PublishError::Lambda {
            function: function.to_string(),
            message: format!("its runtime {r} runs the Go engine, and {GO_READS_NO_BUCKET}"),
        }),
        _ => Ok(()),
    }
}

/// Reads the function's configuration and sets [`CONFIG_DIR_VAR`] and [`REVISION_VAR`],
/// keeping every other variable. Credentials, region and endpoint come from the AWS
/// environment (`AWS_ENDPOINT_URL_LAMBDA`/`AWS_ENDPOINT_URL` for a local stand-in).
pub(crate) async fn update(u: &LambdaUpdate) -> Result<LambdaOutcome, PublishError> {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let client = aws_sdk_lambda::Client::new(&conf);
    let fail = |op: &str, code: Option<&str>, msg: String| {
        PublishError::Lambda {
        function: u.function.clone(),
        message: match code {
            Some("ResourceNotFoundException") => format!(
                "{op}: no such function — check --lambda-function and AWS_REGION ({})",
                conf.region().map(|r| r.to_string()).unwrap_or_else(|| "unset".into())
            ),
            Some("AccessDeniedException" | "UnrecognizedClientException" | "InvalidSignatureException" | "ExpiredTokenException") => format!(
                "{op}: access denied — check the AWS credentials and that they allow lambda:GetFunctionConfiguration and lambda:UpdateFunctionConfiguration"
            ),
            _ => format!("{op} failed: {msg}"),
        },
    }
    };
    let cfg = client
        .get_function_configuration()
        .function_name(&u.function)
        .send()
        .await
        .map_err(|e| {
            fail(
                "reading the configuration",
                e.code(),
                aws_sdk_lambda::error::DisplayErrorContext(&e).to_string(),
            )
        })?;
    let runtime = cfg.runtime().map(|r| r.as_str().to_string());
    let warning = runtime
        .as_deref()
        .and_then(|r| runtime_warning(r, u.go_engine));
    let current = cfg.environment().and_then(|e| e.variables());
    let vars = merged_variables(current, u);
    if current == Some(&vars) {
        return Ok(LambdaOutcome {
            updated: false,
            runtime,
            warning,
        });
    }
    // A function still applying an earlier update refuses another for a few seconds.
    let mut attempt = 0;
    loop {
        let r = client
            .update_function_configuration()
            .function_name(&u.function)
            .environment(
                Environment::builder()
                    .set_variables(Some(vars.clone()))
                    .build(),
            )
            .send()
            .await;
        match r {
            Ok(_) => break,
            Err(e) if e.code() == Some("ResourceConflictException") && attempt < 30 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => {
                return Err(fail(
                    "updating the environment",
                    e.code(),
                    aws_sdk_lambda::error::DisplayErrorContext(&e).to_string(),
                ))
            }
        }
    }
    Ok(LambdaOutcome {
        updated: true,
        runtime,
        warning,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upd() -> LambdaUpdate {
        LambdaUpdate {
            function: "mocks".into(),
            config_dir: "s3://b/p".into(),
            digest: "sha256:ab".into(),
            go_engine: false,
        }
    }

    #[test]
    fn merge_keeps_other_variables_and_overwrites_ours() {
        let cur: HashMap<String, String> = [
            ("JAVA_TOOL_OPTIONS", "-Xmx512m"),
            (CONFIG_DIR_VAR, "s3://old/x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let m = merged_variables(Some(&cur), &upd());
        assert_eq!(m["JAVA_TOOL_OPTIONS"], "-Xmx512m");
        assert_eq!(m[CONFIG_DIR_VAR], "s3://b/p");
        assert_eq!(m[REVISION_VAR], "sha256:ab");
        assert_eq!(merged_variables(None, &upd()).len(), 2);
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
