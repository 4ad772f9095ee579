//! Validation of an Imposter configuration directory before it is bundled.
//!
//! [`validate_dir`] walks the directory exactly as the image layer does (same filters), finds the
//! Imposter config files in it as the chosen engine would (names ending in `-config.yaml`,
//! `-config.yml` or `-config.json`; subdirectories only when scanning recursively, minus the
//! directories `.imposterignore` skips), parses each one, checks its `plugin:` against the
//! engine's plugins, and checks that every local file it references (response files, scripts,
//! OpenAPI specs, WSDLs, store preload files, ...) exists in the config file's own folder and is
//! not left out by `--exclude`, so that the file really ends up in the image.
//!
//! Problems with the config are returned as [`Finding`]s in a [`Report`]; only problems with
//! the directory itself are a [`ValidateError`].

mod checks;
mod discover;
mod fields;
mod parse;
mod paths;
mod plugins;
mod report;

pub use fields::OutsidePolicy;
pub use report::{Finding, Report, Severity};

use crate::imposter::engine::{self, EngineChoice, EngineFlags};
use crate::imposter::ignore::{IgnoreRules, IMPOSTERIGNORE};
use crate::imposter::project::{self, ProjectError, ProjectFile, PROJECT_FILE, SCAN_RECURSIVE_ENV};
use crate::mutate::walk::{self, WalkOptions};
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// How [`validate_dir`] looks for config files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidateOptions {
    /// Also look for config files in subdirectories (like Imposter's
    /// `IMPOSTER_CONFIG_SCAN_RECURSIVE=true`). The project file can turn this on too.
    pub recursive: bool,
    /// The filters the image will be built with, so a referenced file they leave out is an
    /// error.
    pub walk: WalkOptions,
    /// `--base`/`--engine`/`--engine-version`: the engine whose plugins and discovery rules
    /// apply (the project file and the pinned default fill in the rest).
    pub engine: EngineFlags,
    /// `--env` values; `IMPOSTER_CONFIG_SCAN_RECURSIVE=true` turns recursion on.
    pub env: BTreeMap<String, String>,
    /// Referenced files outside the config directory: shipped (where the engine reads them)
    /// or refused.
    pub outside: OutsidePolicy,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        ValidateOptions {
            recursive: false,
            walk: crate::imposter::walk_options(Vec::new()),
            engine: EngineFlags::default(),
            env: BTreeMap::new(),
            outside: OutsidePolicy::default(),
        }
    }
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
    /// The engine flags or the project file name no engine (a usage error).
    #[error(transparent)]
    Engine(crate::error::Error),
}

impl From<ValidateError> for crate::error::Error {
    /// A walk error keeps its own kind (a bad `--exclude` is a usage error); the others are
    /// already worded as one line about the directory.
    fn from(e: ValidateError) -> Self {
        match e {
            ValidateError::Walk(e) | ValidateError::Engine(e) => e,
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
    let choice = engine::choose(&opts.engine, project.as_ref()).map_err(ValidateError::Engine)?;
    let env = project::merged_env(project.as_ref(), &opts.env);
    let recursive = project::scan_recursive(opts.recursive, project.as_ref(), &env);
    fs::read_dir(&root).map_err(io_err)?;
    let ignore = IgnoreRules::load(dir, choice.facts.generation).map_err(io_err)?;
    let walk = walk::walk(dir, &opts.walk)?;
    let mut discovery = discover::discover(&walk, &ignore);

    let mut report = Report {
        findings: engine_findings(&choice, project.as_ref()),
        config_files: discovery.top,
        outside: Vec::new(),
    };
    for entry in ignore.patterns_the_jvm_engine_ignores() {
        report.findings.push(Finding::warning(
            IMPOSTERIGNORE,
            "",
            format!(
                "'{entry}' is not a file or directory name: the JVM engine matches \
                 {IMPOSTERIGNORE} lines against names exactly, spaces included, so it never \
                 skips anything for it"
            ),
        ));
    }
    let skips_everything = ignore.skips_everything();
    if let Some(entry) = skips_everything {
        report.findings.push(Finding::error(
            IMPOSTERIGNORE,
            "",
            format!(
                "entry '{entry}' is part of the config directory's own path ({}): the Go engine \
                 skips every path that contains an entry, so it loads nothing — remove the entry \
                 or make it a longer name",
                ignore.root
            ),
        ));
    }
    // What build would refuse, validate refuses, whether or not the engine scans subdirectories.
    report.findings.append(&mut discovery.problems);
    if recursive {
        report.config_files.extend(discovery.nested.iter().cloned());
    }
    for (config, entry) in &discovery.ignored {
        if skips_everything.is_some() || (config.contains('/') && !recursive) {
            continue;
        }
        if ignore.is_substring_match(config, entry) {
            report.findings.push(Finding::warning(
                config,
                "",
                format!(
                    "not loaded: its path contains the {IMPOSTERIGNORE} entry '{entry}', and the \
                     Go engine skips every path containing an entry — rename the file or the entry"
                ),
            ));
            continue;
        }
        let from = if ignore.from_file {
            format!("{IMPOSTERIGNORE} entry '{entry}'")
        } else {
            format!(
                "the engine's default skip list ('{entry}'; add a {IMPOSTERIGNORE} to change it)"
            )
        };
        report.findings.push(Finding::note(
            config,
            "",
            format!("not loaded: the engine skips it when looking for configs ({from}); its files still ship"),
        ));
    }

    let enable = format!(
        "pass --recursive or set {SCAN_RECURSIVE_ENV}=true (--env, or `env:` in {PROJECT_FILE})"
    );
    if report.config_files.is_empty() && skips_everything.is_none() {
        let mut message = format!(
            "no Imposter config files (*-config.yaml|yml|json) found in '{}' — add one, e.g. \
             'mock-config.yaml' starting with `plugin: rest`, or pass the directory that holds them",
            dir.display()
        );
        if let (false, Some(nested)) = (recursive, discovery.nested.first()) {
            message.push_str(&format!(
                "; a config file exists in a subdirectory ('{nested}'): {enable} to include subdirectories"
            ));
        }
        report.findings.push(Finding::error("", "", message));
    } else if let (false, Some(nested)) = (recursive, discovery.nested.first()) {
        report.findings.push(Finding::warning(
            "",
            "",
            format!(
                "config files in subdirectories (e.g. '{nested}') are not loaded by the engine \
                 without {SCAN_RECURSIVE_ENV}=true — {enable} if it should load them"
            ),
        ));
    }

    let mut outside = Vec::new();
    for file in &report.config_files {
        checks::Checker {
            root: &root,
            dir_display: dir,
            walk: &walk,
            engine: choice.facts,
            file,
            findings: &mut report.findings,
            policy: &opts.outside,
            outside: &mut outside,
        }
        .check_config();
    }
    if let OutsidePolicy::Ship { config_path, .. } = &opts.outside {
        for (i, why) in crate::mutate::outside::conflicts(&outside, config_path) {
            let f = &outside[i];
            report.findings.push(Finding::error(
                &f.config,
                &f.key,
                format!(
                    "'{}' {why} — move the file into the config directory",
                    f.reference
                ),
            ));
        }
    }
    outside.sort_by(|a, b| a.path.cmp(&b.path));
    outside.dedup_by(|a, b| a.path == b.path);
    report.outside = outside;
    report.sort();
    Ok(report)
}

/// What the engine choice and the project file say before any config is read: a base that
/// moves, a deprecated project file name, and project plugins the engine lacks.
pub fn engine_findings(choice: &EngineChoice, project: Option<&ProjectFile>) -> Vec<Finding> {
    let mut out = Vec::new();
    for note in &choice.notes {
        out.push(Finding::note("", "", note.clone()));
    }
    if choice.floating {
        out.push(Finding::warning(
            "",
            "",
            format!(
                "the base {} is a moving tag: the build is neither reproducible nor \
                 air-gap-safe — pin a version (e.g. --engine-version {})",
                choice.base,
                choice.facts.pinned_version()
            ),
        ));
    }
    let Some(p) = project else { return out };
    for (i, plugin) in p.plugins.iter().enumerate() {
        let key = format!("plugins[{i}]");
        if plugins::is_placeholder(plugin) {
            continue;
        }
        match plugins::short_name(plugin) {
            None => out.push(Finding::warning(
                p.file_name,
                &key,
                format!("unknown plugin '{plugin}' — check for a typo"),
            )),
            Some(short) => {
                if let Some(m) = plugins::missing_from(choice.facts, short) {
                    out.push(Finding::warning(p.file_name, &key, m));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_engine;
#[cfg(test)]
mod tests_paths;
