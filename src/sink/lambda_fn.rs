//! A Lambda function's environment, set in place: the writer behind `publish --lambda-function`.
//! Changing the environment makes Lambda retire warm instances, so the next invocation starts
//! afresh. Which variables to set and which runtimes fit is the engine's business
//! (`imposter::publish::lambda`). Credentials, region and endpoint come from the AWS
//! environment (`AWS_ENDPOINT_URL_LAMBDA`/`AWS_ENDPOINT_URL` for a local stand-in).
use super::publish::PublishError;
use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::types::Environment;
use std::collections::HashMap;
use std::time::Duration;

/// What setting the variables did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SetOutcome {
    /// False when every variable already had its value.
    pub updated: bool,
    /// The function's runtime, as Lambda reports it.
    pub runtime: Option<String>,
}

/// A client for the function named by `function` (name or ARN).
pub(crate) struct Function {
    name: String,
    conf: aws_config::SdkConfig,
    client: aws_sdk_lambda::Client,
}

impl Function {
    /// Loads the AWS configuration from the environment.
    pub(crate) async fn new(name: &str) -> Function {
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let client = aws_sdk_lambda::Client::new(&conf);
        Function {
            name: name.to_string(),
            conf,
            client,
        }
    }

    /// One line for a failed `op`, by the error code Lambda answered.
    fn fail(&self, op: &str, code: Option<&str>, msg: String) -> PublishError {
        PublishError::Lambda {
            function: self.name.clone(),
            message: match code {
                Some("ResourceNotFoundException") => format!(
                    "{op}: no such function — check --lambda-function and AWS_REGION ({})",
                    self.conf.region().map(|r| r.to_string()).unwrap_or_else(|| "unset".into())
                ),
                Some("AccessDeniedException" | "UnrecognizedClientException" | "InvalidSignatureException" | "ExpiredTokenException") => format!(
                    "{op}: access denied — check the AWS credentials and that they allow lambda:GetFunctionConfiguration and lambda:UpdateFunctionConfiguration"
                ),
                _ => format!("{op} failed: {msg}"),
            },
        }
    }

    /// The function's configuration.
    async fn configuration(
        &self,
    ) -> Result<
        aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput,
        PublishError,
    > {
        self.client
            .get_function_configuration()
            .function_name(&self.name)
            .send()
            .await
            .map_err(|e| {
                self.fail(
                    "reading the configuration",
                    e.code(),
                    aws_sdk_lambda::error::DisplayErrorContext(&e).to_string(),
                )
            })
    }

    /// The function's runtime, as Lambda reports it.
    pub(crate) async fn runtime(&self) -> Result<Option<String>, PublishError> {
        let cfg = self.configuration().await?;
        Ok(cfg.runtime().map(|r| r.as_str().to_string()))
    }

    /// Sets `vars` in the function's environment, keeping every other variable; changes nothing
    /// when they all have these values already.
    pub(crate) async fn set_variables(
        &self,
        vars: &HashMap<String, String>,
    ) -> Result<SetOutcome, PublishError> {
        let cfg = self.configuration().await?;
        let runtime = cfg.runtime().map(|r| r.as_str().to_string());
        let current = cfg.environment().and_then(|e| e.variables());
        let merged = merged_variables(current, vars);
        if current == Some(&merged) {
            return Ok(SetOutcome {
                updated: false,
                runtime,
            });
        }
        // A function still applying an earlier update refuses another for a few seconds.
        let mut attempt = 0;
        loop {
            let r = self
                .client
                .update_function_configuration()
                .function_name(&self.name)
                .environment(
                    Environment::builder()
                        .set_variables(Some(merged.clone()))
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
                    return Err(self.fail(
                        "updating the environment",
                        e.code(),
                        aws_sdk_lambda::error::DisplayErrorContext(&e).to_string(),
                    ))
                }
            }
        }
        Ok(SetOutcome {
            updated: true,
            runtime,
        })
    }
}

/// The function's variables with `set` over them and every other one kept.
fn merged_variables(
    current: Option<&HashMap<String, String>>,
    set: &HashMap<String, String>,
) -> HashMap<String, String> {
    let mut vars = current.cloned().unwrap_or_default();
    vars.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn merge_keeps_other_variables_and_overwrites_ours() {
        let cur = map(&[
            ("JAVA_TOOL_OPTIONS", "-Xmx512m"),
            ("IMPOSTER_CONFIG_DIR", "s3://old/x"),
        ]);
        let set = map(&[
            ("IMPOSTER_CONFIG_DIR", "s3://b/p"),
            ("MOCKIMG_CONFIG_REVISION", "sha256:ab"),
        ]);
        let m = merged_variables(Some(&cur), &set);
        assert_eq!(m["JAVA_TOOL_OPTIONS"], "-Xmx512m");
        assert_eq!(m["IMPOSTER_CONFIG_DIR"], "s3://b/p");
        assert_eq!(m["MOCKIMG_CONFIG_REVISION"], "sha256:ab");
        assert_eq!(merged_variables(None, &set), set);
    }
}
