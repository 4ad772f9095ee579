//! The Imposter CLI's project file in the config directory: which engine and version to run,
//! and whether to scan subdirectories for configs.
//!
//! Today this reads `.imposter.yaml`, the name the Imposter CLI used first.
use super::yaml::{describe, kind_of, untag};
use serde_norway::Value;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Name of the project file the Imposter CLI reads from the config directory.
pub(crate) const PROJECT_FILE: &str = ".imposter.yaml";

/// The settings mockimg uses from the project file.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct ProjectFile {
    /// Engine version, e.g. `4.9.3`.
    pub version: Option<String>,
    /// Engine type, e.g. `docker`, `jvm`, `golang`.
    pub engine: Option<String>,
    /// `recursive:` or `scanRecursive:`.
    pub recursive: Option<bool>,
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

/// Reads the project file from `dir`. `Ok(None)` when there is none.
pub(crate) fn read(dir: &Path) -> Result<Option<ProjectFile>, ProjectError> {
    let path = dir.join(PROJECT_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ProjectError::Io { path, source }),
    };
    let bad = |message: String| ProjectError::Malformed {
        path: path.clone(),
        message,
    };
    let value: Value =
        serde_norway::from_str(&text).map_err(|e| bad(format!("invalid YAML: {e}")))?;
    let map = match untag(&value) {
        Value::Null => return Ok(Some(ProjectFile::default())),
        Value::Mapping(map) => map,
        other => {
            return Err(bad(format!(
                "expected `key: value` lines, found {}",
                kind_of(other)
            )))
        }
    };
    let mut out = ProjectFile::default();
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
            _ => {}
        }
    }
    Ok(Some(out))
}

/// Whether configs in subdirectories are loaded (the engine's `IMPOSTER_CONFIG_SCAN_RECURSIVE`):
/// the `--recursive` flag, or the project file's `recursive:`/`scanRecursive:`.
pub(crate) fn scan_recursive(flag: bool, project: Option<&ProjectFile>) -> bool {
    flag || project.and_then(|p| p.recursive) == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, body: &str) {
        fs::write(dir.join(PROJECT_FILE), body).unwrap();
    }

    #[test]
    fn project_file_is_parsed() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(read(tmp.path()).unwrap(), None);

        write(
            tmp.path(),
            "version: 4.9.3\nengine: docker\nsomethingElse: [1, 2]\n",
        );
        assert_eq!(
            read(tmp.path()).unwrap(),
            Some(ProjectFile {
                version: Some("4.9.3".into()),
                engine: Some("docker".into()),
                recursive: None,
            })
        );

        write(tmp.path(), "version: 4.2\nscanRecursive: true\n");
        let parsed = read(tmp.path()).unwrap().unwrap();
        assert_eq!(parsed.version.as_deref(), Some("4.2"));
        assert_eq!(parsed.engine, None);
        assert_eq!(parsed.recursive, Some(true));

        write(tmp.path(), "recursive: false\n");
        let parsed = read(tmp.path()).unwrap().unwrap();
        assert_eq!(parsed.recursive, Some(false));

        write(tmp.path(), "");
        assert_eq!(read(tmp.path()).unwrap(), Some(ProjectFile::default()));
    }

    #[test]
    fn malformed_project_file_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "version: [4.9.3\n");
        let err = read(tmp.path()).unwrap_err();
        assert!(matches!(err, ProjectError::Malformed { .. }), "{err:?}");
        assert!(err.to_string().contains(PROJECT_FILE), "{err}");

        write(tmp.path(), "recursive: maybe\n");
        let err = read(tmp.path()).unwrap_err();
        assert!(
            err.to_string()
                .contains("`recursive` must be true or false"),
            "{err}"
        );
    }

    #[test]
    fn recursive_scan_comes_from_the_flag_or_the_project_file() {
        let on = ProjectFile {
            recursive: Some(true),
            ..Default::default()
        };
        let off = ProjectFile {
            recursive: Some(false),
            ..Default::default()
        };
        assert!(!scan_recursive(false, None));
        assert!(scan_recursive(true, None));
        assert!(scan_recursive(false, Some(&on)));
        assert!(!scan_recursive(false, Some(&off)));
        assert!(scan_recursive(true, Some(&off)));
    }
}
