//! Flag groups several subcommands share, declared once and flattened into each
//! (`#[command(flatten)]`); the help is build's, and another subcommand words a flag for itself
//! with `mut_arg`.
use crate::error::Error;
use crate::imposter::engine::EngineFlags;
use crate::imposter::validate::Report;
use crate::mutate::walk::WalkOptions;
use crate::registry::MountFrom;
use clap::Args;
use std::path::PathBuf;

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

/// Which paths of the config directory never ship (`build`, `bundle`, `validate`, `publish`).
/// The help is build's; another subcommand words it for itself with `mut_arg`.
#[derive(Args, Debug, Clone)]
pub struct ExcludeArgs {
    /// Leave out of the image paths matching this gitignore-style pattern (repeatable).
    /// .imposterignore only stops the engine's config discovery; it leaves files in.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
}

impl ExcludeArgs {
    /// How the config directory is walked for the engine with these patterns.
    pub(crate) fn walk_options(&self) -> WalkOptions {
        crate::imposter::walk_options(self.exclude.clone())
    }
}

/// Repositories to mount base layers from (`build`, `push`, `rebase`). The help is build's;
/// another subcommand words it for itself with `mut_arg`.
#[derive(Args, Debug, Clone)]
pub struct MountFromArgs {
    /// Repository on the target registry that holds the base's layers, to mount them from
    /// (repeatable; REPO or HOST/REPO): for CI jobs without a cache.
    #[arg(long, value_name = "REPO")]
    pub mount_from: Vec<String>,
}

impl MountFromArgs {
    /// The `--mount-from` values, parsed.
    pub(crate) fn parse(&self) -> Result<Vec<MountFrom>, Error> {
        self.mount_from
            .iter()
            .map(|s| MountFrom::parse(s))
            .collect()
    }
}

/// What a job that writes an image prints and records (`build`, `push`).
#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// Write the image digest to this file.
    #[arg(long, value_name = "PATH", env = "MOCKIMG_DIGEST_FILE")]
    pub digest_file: Option<PathBuf>,
    /// Write one `repo@sha256:…` line per pushed or recorded name to this file (for deploy steps).
    #[arg(long, value_name = "PATH", env = "MOCKIMG_IMAGE_REFS")]
    pub image_refs: Option<PathBuf>,
    /// Print one JSON object on stdout (logs go to stderr).
    #[arg(long)]
    pub json: bool,
    /// Only errors on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

/// What is attached to a written image (`build`, `rebase`), or carried along with it (`push`,
/// which words the help for itself with `mut_arg`).
#[derive(Args, Debug, Clone)]
pub struct AttachArgs {
    /// Don't attach the SPDX SBOM (the config layer's files, the base) to the image.
    #[arg(long)]
    pub no_sbom: bool,
    /// Don't attach the SLSA provenance (in-toto statement; DSSE-signed with --sign-key).
    #[arg(long)]
    pub no_provenance: bool,
}

impl AttachArgs {
    /// The attachment kinds (`sbom`, `provenance`) these flags leave out.
    pub(crate) fn left_out(&self) -> Vec<&'static str> {
        [("sbom", self.no_sbom), ("provenance", self.no_provenance)]
            .into_iter()
            .filter_map(|(k, off)| off.then_some(k))
            .collect()
    }

    /// What these flags ask to attach, with the CI run read from the environment here at the
    /// edge.
    pub(crate) fn wanted(&self) -> crate::attest::Wanted {
        crate::attest::Wanted {
            sbom: !self.no_sbom,
            provenance: !self.no_provenance,
            ci: crate::imposter::ci::ci_run(super::env::var),
        }
    }
}
