//! The config check every command that ships a config directory runs first (`build`,
//! `publish`, `bundle`).
use super::groups::FindingsArgs;
use super::output;
use crate::error::Error;
use crate::imposter::engine::{self, EngineFlags};
use crate::imposter::validate::{self, Report, ValidateOptions};
use crate::mutate::walk::WalkOptions;
use std::collections::BTreeMap;

/// Applies `--strict` and `--quiet` to a report, prints it, and fails on errors.
pub(super) fn settle(report: &mut Report, f: &FindingsArgs) -> anyhow::Result<()> {
    f.judge(report);
    output::print_findings(report, f.quiet);
    if !report.is_ok() {
        return Err(output::validation_error(report).into());
    }
    Ok(())
}

/// What `build` and `publish` check before they touch anything.
pub(crate) struct Check<'a> {
    pub(crate) dir: &'a std::path::Path,
    pub(crate) project: Option<&'a crate::imposter::project::ProjectFile>,
    pub(crate) flags: EngineFlags,
    pub(crate) walk: &'a WalkOptions,
    pub(crate) recursive: bool,
    pub(crate) env: &'a BTreeMap<String, String>,
    pub(crate) no_validate: bool,
    /// `--quiet` and `--strict`.
    pub(crate) findings: FindingsArgs,
    /// Referenced files outside the config directory: shipped or refused.
    pub(crate) outside: validate::OutsidePolicy,
}

/// One code path for build and publish: the engine choice (flags > project file > pinned
/// default) and validation with the walker filters the layer uses; warnings printed, or errors
/// with `--strict`. A config that fails here is neither built nor uploaded.
///
/// Returns the engine choice and the referenced files from outside the config directory that
/// ship with it (none with `--no-validate`: references are not read then).
pub(crate) fn check_tree(
    c: &Check<'_>,
) -> anyhow::Result<(
    crate::imposter::engine::EngineChoice,
    Vec<crate::mutate::outside::OutsideFile>,
)> {
    let choice = engine::choose(&c.flags, c.project)?;
    let mut report = if c.no_validate {
        Report {
            findings: validate::engine_findings(&choice, c.project),
            ..Report::default()
        }
    } else {
        let opts = ValidateOptions {
            recursive: c.recursive,
            walk: c.walk.clone(),
            engine: c.flags.clone(),
            env: c.env.clone(),
            outside: c.outside.clone(),
        };
        validate::validate_dir(c.dir, &opts).map_err(Error::from)?
    };
    settle(&mut report, &c.findings)?;
    Ok((choice, std::mem::take(&mut report.outside)))
}

/// The reason `--no-outside-files` gives when it refuses a file.
pub(crate) const NO_OUTSIDE_FILES: &str =
    "--no-outside-files keeps the image to the config directory";

/// `--no-outside-files` or not, for a config directory placed at `config_path`.
pub(super) fn outside_policy(refuse: bool, config_path: &str) -> validate::OutsidePolicy {
    if refuse {
        validate::OutsidePolicy::Refuse(NO_OUTSIDE_FILES.to_string())
    } else {
        validate::OutsidePolicy::image(config_path)
    }
}
