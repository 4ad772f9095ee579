//! The run settings of the image config (`config.Env`, `Cmd`, `Entrypoint`): where the engine
//! looks for config and the environment it starts with. Edited as `serde_json::Value` so fields
//! mockimg does not know survive, and left byte-for-byte alone when nothing changes.
use crate::error::{Error, Result};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The variable both engines read their config directory from.
pub(crate) const CONFIG_DIR_ENV: &str = "IMPOSTER_CONFIG_DIR";

/// The JVM engine's command-line option for the config directory.
const CONFIG_DIR_ARG: &str = "--configDir";

/// Points the engine at `config_path` in exactly one way, so it loads the config once: the JVM
/// launcher adds `IMPOSTER_CONFIG_DIR`'s directories to `--configDir`'s
/// (imposter-jvm-engine@v4.9.3:cmd/src/main/java/io/gatehill/imposter/cmd/ImposterLauncher.kt:188),
/// so setting both loads it twice. A base whose `Cmd`/`Entrypoint` passes `--configDir` (the JVM
/// images: distro/core/Dockerfile:7, distro/all/Dockerfile:7) gets every such argument rewritten
/// and no variable (one the base set is removed); any other base (the Go images, which read
/// `IMPOSTER_CONFIG_DIR` or their first argument: imposter-go@v5.21.3:internal/adapter/common.go:74-85,
/// distro/core/Dockerfile:23) gets `IMPOSTER_CONFIG_DIR`, replaced when the base sets it and
/// added when the path is not the default. Then sets `env` over the base's values, so a user's
/// own `IMPOSTER_CONFIG_DIR` wins. `engine_dir` is where the base's engine reads config when told
/// nothing (an engine fact, handed in by the caller).
pub(crate) fn apply(
    config: &mut Map<String, Value>,
    config_path: &str,
    engine_dir: &str,
    env: &BTreeMap<String, String>,
) -> Result<()> {
    let mut vars: Vec<(String, String)> = Vec::new();
    if !config_path.is_empty() {
        let has_env = env_list(config)
            .iter()
            .any(|e| e.split_once('=').is_some_and(|(k, _)| k == CONFIG_DIR_ENV));
        if has_config_dir_arg(config) {
            for key in ["Entrypoint", "Cmd"] {
                rewrite_config_dir_args(config, key, config_path, engine_dir)?;
            }
            if has_env && config_path != engine_dir && !env.contains_key(CONFIG_DIR_ENV) {
                env_list_mut(config).retain(|e| {
                    e.as_str()
                        .and_then(|s| s.split_once('='))
                        .is_none_or(|(k, _)| k != CONFIG_DIR_ENV)
                });
            }
        } else if has_env || config_path != engine_dir {
            vars.push((CONFIG_DIR_ENV.to_string(), config_path.to_string()));
        }
    }
    vars.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
    if vars.is_empty() {
        return Ok(());
    }
    let list = env_list_mut(config);
    for (k, v) in vars {
        let item = json!(format!("{k}={v}"));
        let slot = list.iter_mut().find(|e| {
            e.as_str()
                .and_then(|s| s.split_once('='))
                .is_some_and(|(name, _)| name == k)
        });
        match slot {
            Some(s) => *s = item,
            None => list.push(item),
        }
    }
    Ok(())
}

/// Whether `Entrypoint` or `Cmd` passes `--configDir` (in any form).
fn has_config_dir_arg(config: &Map<String, Value>) -> bool {
    ["Entrypoint", "Cmd"].iter().any(|key| {
        config
            .get("config")
            .and_then(|c| c.get(*key))
            .and_then(Value::as_array)
            .is_some_and(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .any(|s| s.contains(CONFIG_DIR_ARG))
            })
    })
}

fn env_list(config: &Map<String, Value>) -> Vec<String> {
    config
        .get("config")
        .and_then(|c| c.get("Env"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn env_list_mut(config: &mut Map<String, Value>) -> &mut Vec<Value> {
    let inner = config.entry("config").or_insert_with(|| json!({}));
    if !inner.is_object() {
        *inner = json!({});
    }
    let env = inner
        .as_object_mut()
        .expect("just made an object")
        .entry("Env")
        .or_insert_with(|| json!([]));
    if !env.is_array() {
        *env = json!([]);
    }
    env.as_array_mut().expect("just made an array")
}

/// Rewrites `--configDir=X`, `--configDir X` (two arguments) and the same inside a shell
/// command string. A `--configDir` with no value cannot be rewritten: an error, since the engine
/// would otherwise start without the bundled config.
fn rewrite_config_dir_args(
    config: &mut Map<String, Value>,
    key: &str,
    path: &str,
    engine_dir: &str,
) -> Result<()> {
    let Some(args) = config
        .get_mut("config")
        .and_then(|c| c.get_mut(key))
        .and_then(Value::as_array_mut)
    else {
        return Ok(());
    };
    let mut i = 0;
    while i < args.len() {
        let Some(arg) = args[i].as_str().map(str::to_string) else {
            i += 1;
            continue;
        };
        if arg == CONFIG_DIR_ARG {
            match args.get_mut(i + 1) {
                Some(v) if v.is_string() => *v = json!(path),
                // Nothing was asked of it: the base runs as it always did.
                _ if path == engine_dir => {}
                _ => {
                    return Err(Error::invalid(
                        "base image config",
                        format!(
                            "{key} ends with '{CONFIG_DIR_ARG}' and no directory, so it cannot be \
                             pointed at {path} — use a base whose {key} names the directory, or \
                             the default --config-path"
                        ),
                    ))
                }
            }
            i += 2;
            continue;
        }
        if arg.contains(CONFIG_DIR_ARG) {
            args[i] = json!(rewrite_in_string(&arg, path));
        }
        i += 1;
    }
    Ok(())
}

/// `… --configDir=/old …` or `… --configDir /old …` inside one string, with the value replaced.
fn rewrite_in_string(s: &str, path: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find(CONFIG_DIR_ARG) {
        let after = &rest[at + CONFIG_DIR_ARG.len()..];
        out.push_str(&rest[..at + CONFIG_DIR_ARG.len()]);
        let (sep, value_start) = match after.chars().next() {
            Some('=') => ("=", 1),
            Some(' ') => (" ", after.len() - after[1..].trim_start().len()),
            _ => {
                rest = after;
                continue;
            }
        };
        let value = &after[value_start..];
        let end = value.find(char::is_whitespace).unwrap_or(value.len());
        out.push_str(sep);
        out.push_str(path);
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where both engines read config when told nothing.
    const ENGINE_CONFIG_DIR: &str = "/opt/imposter/config";

    fn config(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn env_of(c: &Map<String, Value>) -> Vec<String> {
        env_list(c)
    }

    #[test]
    fn env_values_replace_the_base_and_append_new_ones_in_order() {
        let mut c = config(json!({"config": {"Env": ["PATH=/bin", "IMPOSTER_LOG_LEVEL=INFO"]}}));
        let env = BTreeMap::from([
            ("IMPOSTER_LOG_LEVEL".to_string(), "DEBUG".to_string()),
            ("A".to_string(), "x=y".to_string()),
        ]);
        apply(&mut c, ENGINE_CONFIG_DIR, ENGINE_CONFIG_DIR, &env).unwrap();
        assert_eq!(
            env_of(&c),
            ["PATH=/bin", "IMPOSTER_LOG_LEVEL=DEBUG", "A=x=y"]
        );
        let mut bare = config(json!({}));
        apply(&mut bare, ENGINE_CONFIG_DIR, ENGINE_CONFIG_DIR, &env).unwrap();
        assert_eq!(env_of(&bare), ["A=x=y", "IMPOSTER_LOG_LEVEL=DEBUG"]);
    }

    #[test]
    fn the_default_path_leaves_the_config_untouched() {
        let base = json!({"config": {"Env": ["IMPOSTER_CONFIG_DIR=/opt/imposter/config"],
            "Cmd": ["--configDir=/opt/imposter/config"], "x-other": 1}});
        let mut c = config(base.clone());
        apply(
            &mut c,
            ENGINE_CONFIG_DIR,
            ENGINE_CONFIG_DIR,
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(Value::Object(c), base);
        let mut none = config(json!({"config": {"Cmd": ["imposter"]}}));
        apply(
            &mut none,
            ENGINE_CONFIG_DIR,
            ENGINE_CONFIG_DIR,
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(
            Value::Object(none),
            json!({"config": {"Cmd": ["imposter"]}})
        );
    }

    #[test]
    fn a_config_path_rewrites_the_env_and_every_config_dir_argument() {
        let mut c = config(json!({"config": {
            "Env": ["IMPOSTER_CONFIG_DIR=/opt/imposter/config"],
            "Entrypoint": ["/bin/sh", "-c", "exec imposter --configDir /opt/imposter/config --x"],
            "Cmd": ["--configDir=/opt/imposter/config", "--configDir", "/old", "--plugin=rest"]}}));
        apply(&mut c, "/mocks", ENGINE_CONFIG_DIR, &BTreeMap::new()).unwrap();
        assert!(
            env_of(&c).is_empty(),
            "the argument alone: {:?}",
            env_of(&c)
        );
        assert_eq!(
            c["config"]["Cmd"],
            json!([
                "--configDir=/mocks",
                "--configDir",
                "/mocks",
                "--plugin=rest"
            ])
        );
        assert_eq!(
            c["config"]["Entrypoint"][2],
            "exec imposter --configDir /mocks --x"
        );
    }

    #[test]
    fn a_config_path_sets_exactly_one_of_the_argument_and_the_variable() {
        // The JVM core image: --configDir in Cmd, no variable.
        let mut jvm = config(json!({"config": {
            "Entrypoint": ["java", "-classpath", "/opt/imposter/lib/*", "io.gatehill.imposter.cmd.ImposterLauncher"],
            "Cmd": ["--plugin=openapi", "--plugin=rest", "--plugin=soap", "--configDir=/opt/imposter/config"],
            "Env": ["IMPOSTER_PLUGIN_DIR=/opt/imposter/plugins"]}}));
        apply(&mut jvm, "/mocks", ENGINE_CONFIG_DIR, &BTreeMap::new()).unwrap();
        assert_eq!(jvm["config"]["Cmd"][3], "--configDir=/mocks");
        assert_eq!(env_of(&jvm), ["IMPOSTER_PLUGIN_DIR=/opt/imposter/plugins"]);
        // The Go image: no arguments, the variable.
        let mut go = config(json!({"config": {"Entrypoint": ["/imposter-go"],
            "Env": ["IMPOSTER_CONFIG_DIR=/opt/imposter/config", "IMPOSTER_PLUGIN_DIR=/opt/imposter/plugins"]}}));
        apply(&mut go, "/mocks", ENGINE_CONFIG_DIR, &BTreeMap::new()).unwrap();
        assert_eq!(
            env_of(&go),
            [
                "IMPOSTER_CONFIG_DIR=/mocks",
                "IMPOSTER_PLUGIN_DIR=/opt/imposter/plugins"
            ]
        );
        assert_eq!(go["config"]["Entrypoint"], json!(["/imposter-go"]));
    }

    #[test]
    fn a_users_own_config_dir_variable_wins() {
        let mut c = config(json!({}));
        let env = BTreeMap::from([(CONFIG_DIR_ENV.to_string(), "/a,/b".to_string())]);
        apply(&mut c, "/mocks", ENGINE_CONFIG_DIR, &env).unwrap();
        assert_eq!(env_of(&c), ["IMPOSTER_CONFIG_DIR=/a,/b"]);
    }

    #[test]
    fn a_dangling_config_dir_argument_is_a_clear_error() {
        let mut c = config(json!({"config": {"Cmd": ["imposter", "--configDir"]}}));
        let e = apply(&mut c, "/mocks", ENGINE_CONFIG_DIR, &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("--configDir") && e.contains("/mocks"), "{e}");
    }
}
