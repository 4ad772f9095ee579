//! The project file in the config directory: which engine and version to run, which plugins
//! it needs and the environment it runs with.
//!
//! The Imposter CLI reads `.imposter.{json,toml,yaml,yml}` from the config directory: viper's
//! `MergeInConfig` takes the first name that exists in that extension order
//! (imposter-cli@main:internal/config/cli_config.go:83-88; viper's `SupportedExts`), and a file
//! without an extension is not read. mockimg also reads its own `imposter-project.*` (same
//! extension order), merged over the CLI's file key by key, the later winning. Neither ships in
//! the image.
use super::yaml::{describe, kind_of, untag};
use serde_norway::Value;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// The project file name mockimg suggests.
pub(crate) const PROJECT_FILE: &str = "imposter-project.yaml";

/// The Imposter CLI's project file names, in the order it looks for them (json, toml, yaml, yml).
pub(crate) const CLI_PROJECT_FILES: [&str; 4] = [
    ".imposter.json",
    ".imposter.toml",
    ".imposter.yaml",
    ".imposter.yml",
];

/// mockimg's own project file names, in the same extension order (TOML is not read).
pub(crate) const OWN_PROJECT_FILES: [&str; 3] = [
    "imposter-project.json",
    "imposter-project.yaml",
    "imposter-project.yml",
];

/// Every project-like file name, none of which ships in the image: the CLI's, mockimg's, and a
/// bare `.imposter` (which neither reads).
pub(crate) const PROJECT_FILES: [&str; 8] = [
    ".imposter.json",
    ".imposter.toml",
    ".imposter.yaml",
    ".imposter.yml",
    "imposter-project.json",
    "imposter-project.yaml",
    "imposter-project.yml",
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
    /// The file that findings name: the last one read (mockimg's when both exist).
    pub file_name: &'static str,
    /// Whether the Imposter CLI reads it too (a `.imposter.*` file was found).
    pub read_by_cli: bool,
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

/// Reads the project files from `dir`: the Imposter CLI's first, then mockimg's over it.
/// `Ok(None)` when there is none.
pub(crate) fn read(dir: &Path) -> Result<Option<ProjectFile>, ProjectError> {
    let mut out: Option<ProjectFile> = None;
    for names in [&CLI_PROJECT_FILES[..], &OWN_PROJECT_FILES[..]] {
        let Some((name, path, text)) = first_existing(dir, names)? else {
            continue;
        };
        if name.ends_with(".toml") {
            return Err(ProjectError::Malformed {
                path,
                message: "mockimg does not read TOML: convert it to .imposter.yaml, which the \
                          Imposter CLI reads too"
                    .into(),
            });
        }
        let next = parse(&path, name, &text)?;
        out = Some(match out {
            None => ProjectFile {
                read_by_cli: name.starts_with(".imposter"),
                ..next
            },
            Some(earlier) => merge(earlier, next),
        });
    }
    Ok(out)
}

/// The first of `names` that exists in `dir` as a file, with its text.
fn first_existing(
    dir: &Path,
    names: &[&'static str],
) -> Result<Option<(&'static str, PathBuf, String)>, ProjectError> {
    for &name in names {
        let path = dir.join(name);
        if path.is_dir() {
            continue;
        }
        match crate::mutate::walk::read_small_text(&path, MAX_PROJECT_FILE) {
            Ok(text) => return Ok(Some((name, path, text))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(ProjectError::Io { path, source }),
        }
    }
    Ok(None)
}

/// `later` over `earlier`, key by key (viper's merge): a key `later` sets wins; `env` merges
/// per variable.
fn merge(earlier: ProjectFile, later: ProjectFile) -> ProjectFile {
    let mut env = earlier.env;
    env.extend(later.env);
    ProjectFile {
        version: later.version.or(earlier.version),
        engine: later.engine.or(earlier.engine),
        recursive: later.recursive.or(earlier.recursive),
        plugins: if later.plugins.is_empty() {
            earlier.plugins
        } else {
            later.plugins
        },
        env,
        file_name: later.file_name,
        read_by_cli: earlier.read_by_cli,
    }
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
                            // The CLI upper-cases every key (imposter-cli@main:cmd/up.go:210-211).
                            let k = scalar(untag(k))
                                .map(|k| k.to_uppercase())
                                .filter(|k| valid_env_name(k));
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
