//! What the Lambda function that runs a bundle must be, and what does not run there: printed by
//! `bundle` so the function is created right the first time.
use crate::imposter::engine::Generation;
use crate::imposter::project::SCAN_RECURSIVE_ENV;
use serde_norway::Value;
use std::path::Path;

/// The function settings a bundle needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LambdaSettings {
    /// The Lambda runtime.
    pub(crate) runtime: &'static str,
    /// The handler.
    pub(crate) handler: &'static str,
}

/// The runtime and handler per engine. JVM: the classes are built for Java 11
/// (imposter-jvm-engine@v4.9.3:build.gradle:92-93, adapter/awslambda/build.gradle:9), so `java8`
/// cannot load them; the HTTP API v2 handler is
/// adapter/awslambda/src/main/java/io/gatehill/imposter/awslambda/HandlerV2.kt:57. Go: a custom
/// runtime running `bootstrap` (imposter-go@v5.21.3:examples/lambda/build-deploy.sh:22-23).
pub(crate) fn settings(generation: Generation) -> LambdaSettings {
    match generation {
        Generation::Jvm => LambdaSettings {
            runtime: "java11",
            handler: "io.gatehill.imposter.awslambda.HandlerV2",
        },
        Generation::Go => LambdaSettings {
            runtime: "provided.al2023",
            handler: "bootstrap",
        },
    }
}

/// The lines `bundle` prints: the function settings, then what will not work as bundled.
/// `config_files` are the configs the validation found (relative, `/`-separated) under `dir`.
pub(crate) fn advice(generation: Generation, dir: &Path, config_files: &[String]) -> Vec<String> {
    let s = settings(generation);
    let mut out = vec![format!(
        "create the function with runtime {} and handler {}{}",
        s.runtime,
        s.handler,
        match generation {
            Generation::Jvm => " (java8 cannot run it: the engine is built for Java 11)",
            Generation::Go => "",
        }
    )];
    if let Some(nested) = config_files.iter().find(|f| f.contains('/')) {
        // Both engines scan only the top of /var/task/config unless told to
        // (imposter-jvm-engine@v4.9.3:core/config/src/main/java/io/gatehill/imposter/config/util/ConfigUtil.kt:86-87,
        // imposter-go@v5.21.3:internal/config/config.go:19-24,101-104); a zip sets no variables.
        out.push(format!(
            "warning: configs sit in subdirectories (e.g. '{nested}'): set \
             {SCAN_RECURSIVE_ENV}=true on the function, or the engine will not load them"
        ));
    }
    if generation == Generation::Go {
        // imposter-go@v5.21.3:internal/adapter/awslambda/awslambda.go:70-79.
        for file in config_files {
            let Ok(text) = std::fs::read_to_string(dir.join(file)) else {
                continue;
            };
            for doc in serde_norway::Deserializer::from_str(&text) {
                let Ok(v) = <Value as serde::Deserialize>::deserialize(doc) else {
                    continue;
                };
                if v.get("plugin").and_then(Value::as_str) == Some("websocket") {
                    out.push(format!(
                        "warning: {file}: the Go engine does not run the websocket plugin on Lambda"
                    ));
                }
                if v.get("schedules")
                    .and_then(Value::as_sequence)
                    .is_some_and(|s| !s.is_empty())
                {
                    out.push(format!(
                        "warning: {file}: the Go engine does not run schedules on Lambda"
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_and_handler_per_engine() {
        let jvm = settings(Generation::Jvm);
        assert_eq!(
            (jvm.runtime, jvm.handler),
            ("java11", "io.gatehill.imposter.awslambda.HandlerV2")
        );
        let go = settings(Generation::Go);
        assert_eq!((go.runtime, go.handler), ("provided.al2023", "bootstrap"));
        let d = tempfile::tempdir().unwrap();
        let jvm = advice(Generation::Jvm, d.path(), &[]);
        assert_eq!(jvm.len(), 1);
        assert!(jvm[0].contains("java8 cannot run it"), "{jvm:?}");
    }

    #[test]
    fn configs_in_subdirectories_need_the_recursive_scan_on_the_function() {
        let d = tempfile::tempdir().unwrap();
        let top = advice(Generation::Jvm, d.path(), &["a-config.yaml".into()]);
        assert_eq!(top.len(), 1);
        let nested = advice(
            Generation::Go,
            d.path(),
            &["a-config.yaml".into(), "v2/b-config.yaml".into()],
        );
        assert!(
            nested[1].contains("'v2/b-config.yaml'")
                && nested[1].contains("IMPOSTER_CONFIG_SCAN_RECURSIVE=true on the function"),
            "{nested:?}"
        );
    }

    #[test]
    fn go_websocket_and_schedules_do_not_run_on_lambda() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("ws-config.yaml"), "plugin: websocket\n").unwrap();
        std::fs::write(
            d.path().join("s-config.yaml"),
            "plugin: rest\nschedules:\n  - id: tick\n---\nplugin: rest\n",
        )
        .unwrap();
        let files = ["ws-config.yaml".to_string(), "s-config.yaml".to_string()];
        let go = advice(Generation::Go, d.path(), &files);
        assert!(
            go.iter()
                .any(|l| l
                    .contains("ws-config.yaml: the Go engine does not run the websocket plugin")),
            "{go:?}"
        );
        assert!(
            go.iter()
                .any(|l| l.contains("s-config.yaml: the Go engine does not run schedules")),
            "{go:?}"
        );
        assert_eq!(
            advice(Generation::Jvm, d.path(), &files).len(),
            1,
            "the JVM engine runs both"
        );
    }
}
