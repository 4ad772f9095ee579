//! Validation of an Imposter configuration directory before it is bundled.
//!
//! [`validate_dir`] walks the directory exactly as the image layer does (same filters), finds the
//! Imposter config files in it (names ending in `-config.yaml`, `-config.yml` or
//! `-config.json`), parses each one, checks its `plugin:` key, and checks that every local file
//! it references (response files, scripts, OpenAPI specs, WSDLs, store preload files, ...) exists
//! *inside* the config directory and is not left out by `.imposterignore` or `--exclude`, so
//! that the file really ends up in the image.
//!
//! Problems with the config are returned as [`Finding`]s in a [`Report`]; only problems with
//! the directory itself are a [`ValidateError`].

mod checks;
mod discover;
mod parse;
mod plugins;
mod report;

pub use report::{Finding, Report, Severity};

use crate::imposter::project::{self, ProjectError, PROJECT_FILE};
use crate::mutate::walk::{self, WalkOptions};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// How [`validate_dir`] looks for config files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidateOptions {
    /// Also look for config files in subdirectories (like Imposter's
    /// `IMPOSTER_CONFIG_SCAN_RECURSIVE=true`). The project file can turn this on too.
    pub recursive: bool,
    /// The filters the image will be built with, so a referenced file they leave out is an
    /// error.
    pub walk: WalkOptions,
}

/// The config directory itself cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// The directory does not exist.
    #[error("config directory '{}' does not exist — check the path, or create the directory and put your *-config.yaml files in it", path.display())]
    NotFound {
        /// The directory as given.
        path: PathBuf,
    },
    /// A file was given where the directory was expected.
    #[error("'{}' is not a directory — pass the directory that contains your *-config.yaml files, not a file", path.display())]
    NotADirectory {
        /// The path as given.
        path: PathBuf,
    },
    /// The directory cannot be read.
    #[error("cannot read '{}': {source} — check that it exists and that you have permission to read it", path.display())]
    Io {
        /// The directory as given.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: io::Error,
    },
    /// The project file is unreadable or malformed.
    #[error(transparent)]
    Project(#[from] ProjectError),
    /// The walk failed: an unusable filter pattern or an entry that cannot be read.
    #[error(transparent)]
    Walk(#[from] crate::error::Error),
}

impl From<ValidateError> for crate::error::Error {
    /// A walk error keeps its own kind (a bad `--exclude` is a usage error); the others are
    /// already worded as one line about the directory.
    fn from(e: ValidateError) -> Self {
        match e {
            ValidateError::Walk(e) => e,
            other => crate::error::Error::ConfigDir(other.to_string()),
        }
    }
}

/// Validates the Imposter config directory `dir`.
///
/// Returns `Err` only when `dir` itself is missing, not a directory or unreadable, its project
/// file is malformed, or a filter is unusable; everything else is reported as a [`Finding`].
pub fn validate_dir(dir: &Path, opts: &ValidateOptions) -> Result<Report, ValidateError> {
    let io_err = |source| ValidateError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let meta = fs::metadata(dir).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => ValidateError::NotFound {
            path: dir.to_path_buf(),
        },
        _ => io_err(source),
    })?;
    if !meta.is_dir() {
        return Err(ValidateError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    let root = fs::canonicalize(dir).map_err(io_err)?;
    let project = project::read(dir)?;
    let recursive = project::scan_recursive(opts.recursive, project.as_ref());
    fs::read_dir(&root).map_err(io_err)?;
    let walk = walk::walk(dir, &opts.walk)?;
    let mut discovery = discover::discover(&walk);

    let mut report = Report {
        findings: Vec::new(),
        config_files: discovery.top,
    };
    if recursive {
        report.findings.append(&mut discovery.problems);
        report.config_files.extend(discovery.nested.iter().cloned());
    }

    if report.config_files.is_empty() {
        let mut message = format!(
            "no Imposter config files (*-config.yaml|yml|json) found in '{}' — add one, e.g. \
             'mock-config.yaml' starting with `plugin: rest`, or pass the directory that holds them",
            dir.display()
        );
        if let Some(nested) = discovery.nested.first() {
            message.push_str(&format!(
                "; a config file exists in a subdirectory ('{nested}'): pass --recursive or set \
                 `recursive: true` in {PROJECT_FILE} to include subdirectories"
            ));
        }
        report.findings.push(Finding::error("", "", message));
    } else if let (false, Some(nested)) = (recursive, discovery.nested.first()) {
        report.findings.push(Finding::warning(
            "",
            "",
            format!(
                "config files in subdirectories (e.g. '{nested}') are not loaded — pass \
                 --recursive or set `recursive: true` in {PROJECT_FILE} if Imposter should load them"
            ),
        ));
    }

    for file in &report.config_files {
        checks::Checker {
            root: &root,
            dir_display: dir,
            walk: &walk,
            file,
            findings: &mut report.findings,
        }
        .check_config();
    }
    report.sort();
    Ok(report)
}

#[cfg(test)]
mod tests;
