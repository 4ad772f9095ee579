//! `mockimg validate`: the config check alone, its findings printed (or one JSON object).
use super::args::{parse_env, ValidateArgs};
use super::check::outside_policy;
use super::output;
use crate::error::Error;
use crate::imposter::validate::{self, ValidateOptions};

pub(super) fn run_validate(a: ValidateArgs) -> anyhow::Result<()> {
    let opts = ValidateOptions {
        recursive: a.recursive,
        walk: a.exclude.walk_options(),
        engine: a.engine.flags(),
        env: parse_env(&a.env)?,
        outside: outside_policy(
            a.no_outside_files,
            crate::mutate::layer::DEFAULT_CONFIG_PATH,
        ),
    };
    let mut report = validate::validate_dir(&a.config_dir, &opts).map_err(Error::from)?;
    a.findings.judge(&mut report);
    output::print_validation(&a.config_dir, &report, a.json, a.findings.quiet)?;
    if !report.is_ok() {
        return Err(output::validation_error(&report).into());
    }
    Ok(())
}
