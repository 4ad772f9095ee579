//! Flag groups several subcommands share, declared once and flattened into each
//! (`#[command(flatten)]`); the help is build's, and another subcommand words a flag for itself
//! with `mut_arg`.
use crate::error::Error;
use crate::imposter::engine::EngineFlags;
use crate::imposter::validate::Report;
use clap::Args;

/// The engine a config is checked and built for (`build`, `validate`). The help is build's;
/// another subcommand words it for itself with `mut_arg`.
#[derive(Args, Debug, Clone)]
pub struct EngineArgs {
    /// Base engine image: registry reference, oci:DIR[:TAG], oci-archive:PATH[:TAG], docker-archive:PATH.
    #[arg(long, value_name = "REF", env = "MOCKIMG_BASE")]
    pub base: Option<String>,
    /// Engine image when --base is not given (with --base: which engine the base holds). The
    /// Imposter CLI's names (docker, docker-all, docker-distroless, jvm, native, golang) and
    /// mockimg's (core, all, distroless, go); golang/native/go are the Go engine 5.x.
    #[arg(long, value_parser = crate::imposter::engine::ENGINE_NAMES)]
    pub engine: Option<String>,
    /// Engine version when --base is not given (never looked up online; 5.x is the Go engine).
    #[arg(long, value_name = "VERSION")]
    pub engine_version: Option<String>,
}

impl EngineArgs {
    /// The engine choice these flags ask for.
    pub(crate) fn flags(&self) -> EngineFlags {
        EngineFlags {
            base: self.base.clone(),
            engine: self.engine.clone(),
            version: self.engine_version.clone(),
        }
    }
}

/// How a config directory is checked before it ships (`build`, `bundle`). The help is build's;
/// another subcommand words it for itself with `mut_arg`.
#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    /// Skip config validation.
    #[arg(long)]
    pub no_validate: bool,
    /// Refuse referenced files outside the config directory (by default a spec or script the
    /// engine reads from outside, e.g. specFile: ../openapi.yaml, ships where it looks for it).
    #[arg(long)]
    pub no_outside_files: bool,
    /// Load config files in subdirectories too: validates them and sets
    /// IMPOSTER_CONFIG_SCAN_RECURSIVE=true in the image.
    #[arg(long)]
    pub recursive: bool,
}

/// What happens to validation findings (`bundle`, `validate`, `publish`).
#[derive(Args, Debug, Clone)]
pub struct FindingsArgs {
    /// Don't print warnings.
    #[arg(short, long)]
    pub quiet: bool,
    /// Treat warnings as errors (for CI).
    #[arg(long)]
    pub strict: bool,
}

impl FindingsArgs {
    /// `--strict`: warnings count as errors.
    pub(crate) fn judge(&self, report: &mut Report) {
        if self.strict {
            report.make_warnings_errors();
        }
    }
}

/// `SOURCE_DATE_EPOCH` as seconds, if set and valid: read here, once per command, and handed to
/// the library as a value.
pub(crate) fn source_date_epoch() -> Result<Option<u64>, Error> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) if !s.is_empty() => s.trim().parse().map(Some).map_err(|_| {
            Error::Usage(format!(
                "SOURCE_DATE_EPOCH={s:?} is not a number of seconds; unset it or give e.g. 1700000000"
            ))
        }),
        _ => Ok(None),
    }
}
