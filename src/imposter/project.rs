//! The Imposter CLI's project file in the config directory: which engine and version to run,
//! which plugins it needs and the environment it runs with.
//!
//! `imposter-project.{yaml,yml,json}` is the current name and wins; `.imposter` (no extension,
//! `.yaml`, `.yml`, `.json`) is the deprecated one. Neither ships in the image.
use super::yaml::{describe, kind_of, untag};
use serde_norway::Value;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// The project file name the Imposter CLI writes today (the first of [`PROJECT_FILES`]).
pub(crate) const PROJECT_FILE: &str = "imposter-project.yaml";

/// Every project file name, in the order they are looked for: the current names, then the
/// deprecated ones.
pub(crate) const PROJECT_FILES: [&str; 7] = [
    "imposter-project.yaml",
    "imposter-project.yml",
    "imposter-project.json",
    ".imposter.yaml",
    ".imposter.yml",
    ".imposter.json",
    ".imposter",
];

/// The engine variable that turns on the recursive config scan.
pub(crate) const SCAN_RECURSIVE_ENV: &str = "IMPOSTER_CONFIG_SCAN_RECURSIVE";

/// The settings mockimg uses from the project file.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProjectFile {
    /// Engine version, e.g. `4.9.3`.
    pub version: Option<String>,
    /// Engine type, e.g. `docker`, `jvm`, `golang`.
    pub engine: Option<String>,
    /// `recursive:` or `scanRecursive:` (mockimg's own keys, kept for older files).
    pub recursive: Option<bool>,
    /// `plugins:`: plugins the project needs.
    pub plugins: Vec<String>,
    /// `env:`: environment variables for the engine.
    pub env: BTreeMap<String, String>,
    /// The file it was read from (a name from [`PROJECT_FILES`]).
    pub file_name: &'static str,
}

impl ProjectFile {
    /// Whether it was read from a deprecated `.imposter*` name.
    pub fn is_deprecated_name(&self) -> bool {
        self.file_name.starts_with(".imposter")
    }
}

/// The project file exists but cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// It cannot be read.
    #[error("cannot read '{}': {source} — check that it exists and that you have permission to read it", path.display())]
    Io {
        /// The project file.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: io::Error,
    },
    /// It is not the `key: value` file the Imposter CLI writes.
    #[error("malformed '{}': {message} — fix the file or delete it", path.display())]
    Malformed {
        /// The project file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// A project file larger than this is not one (and a fifo or device is never read).
const MAX_PROJECT_FILE: u64 = 1 << 20;

/// Reads the project file from `dir`. `Ok(None)` when there is none.
pub(crate) fn read(dir: &Path) -> Result<Option<ProjectFile>, ProjectError> {
    for name in PROJECT_FILES {
        let path = dir.join(name);
        // `.imposter` may be the Imposter CLI's directory rather than a file.
        if path.is_dir() {
            continue;
        }
        match crate::mutate::walk::read_small_text(&path, MAX_PROJECT_FILE) {
            Ok(text) => return parse(&path, name, &text).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(ProjectError::Io { path, source }),
        }
    }
    Ok(None)
}

fn parse(path: &Path, name: &'static str, text: &str) -> Result<ProjectFile, ProjectError> {
    let bad = |message: String| ProjectError::Malformed {
        path: path.to_path_buf(),
        message,
    };
    // JSON is YAML too, so one parser reads every name.
    let value: Value =
        serde_norway::from_str(text).map_err(|e| bad(format!("invalid YAML: {e}")))?;
    let mut out = ProjectFile {
        file_name: name,
        ..ProjectFile::default()
    };
    let map = match untag(&value) {
        Value::Null => return Ok(out),
        Value::Mapping(map) => map,
        other => {
            return Err(bad(format!(
                "expected `key: value` lines, found {}",
                kind_of(other)
            )))
        }
    };
    for (key, value) in map {
        let value = untag(value);
        match key.as_str() {
            Some("version") => {
                out.version = match value {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    other => {
                        return Err(bad(format!(
                            "`version` must be a version such as 4.9.3, found {}",
                            kind_of(other)
                        )))
                    }
                }
            }
            Some("engine") => {
                out.engine = match value {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    other => {
                        return Err(bad(format!(
                            "`engine` must be an engine name such as docker or jvm, found {}",
                            kind_of(other)
                        )))
                    }
                }
            }
            Some(name @ ("recursive" | "scanRecursive")) => {
                let flag = match value {
                    Value::Null => None,
                    Value::Bool(b) => Some(*b),
                    Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
                    Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
                    other => {
                        return Err(bad(format!(
                            "`{name}` must be true or false, found {}",
                            describe(other)
                        )))
                    }
                };
                // Either key turning recursion on wins.
                if flag.is_some() && out.recursive != Some(true) {
                    out.recursive = flag;
                }
            }
            Some("plugins") => {
                out.plugins = match value {
                    Value::Null => Vec::new(),
                    Value::Sequence(items) => items
                        .iter()
                        .map(|i| scalar(untag(i)))
                        .collect::<Option<_>>()
                        .ok_or_else(|| bad("`plugins` must be a list of plugin names".into()))?,
                    other => {
                        return Err(bad(format!(
                            "`plugins` must be a list of plugin names, found {}",
                            kind_of(other)
                        )))
                    }
                }
            }
            Some("env") => {
                out.env = match value {
                    Value::Null => BTreeMap::new(),
                    Value::Mapping(m) => m
                        .iter()
                        .map(|(k, v)| {
                            let k = scalar(untag(k)).filter(|k| valid_env_name(k));
                            let v = match untag(v) {
                                Value::Null => Some(String::new()),
                                v => scalar(v),
                            };
                            k.zip(v)
                        })
                        .collect::<Option<_>>()
                        .ok_or_else(|| {
                            bad("`env` must map variable names to plain values".into())
                        })?,
                    other => {
                        return Err(bad(format!(
                            "`env` must be a mapping of NAME: value, found {}",
                            kind_of(other)
                        )))
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// A scalar as the engine would read it from the environment.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A name that can be an environment variable: no `=`, not empty, no NUL.
pub(crate) fn valid_env_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['=', '\0'])
}

/// Whether configs in subdirectories are loaded (the engine's `IMPOSTER_CONFIG_SCAN_RECURSIVE`):
/// the `--recursive` flag, the project file's `recursive:`/`scanRecursive:`, or the variable
/// itself set to `true` in `env` (the project file's `env:` with `--env` applied).
pub(crate) fn scan_recursive(
    flag: bool,
    project: Option<&ProjectFile>,
    env: &BTreeMap<String, String>,
) -> bool {
    flag || project.and_then(|p| p.recursive) == Some(true)
        || env
            .get(SCAN_RECURSIVE_ENV)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The engine environment: the project file's `env:`, then `--env` values over it.
pub(crate) fn merged_env(
    project: Option<&ProjectFile>,
    flags: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut env = project.map(|p| p.env.clone()).unwrap_or_default();
    env.extend(flags.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

#[cfg(test)]
mod tests;
