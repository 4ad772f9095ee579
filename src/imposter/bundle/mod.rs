//! AWS Lambda bundles: a zip holding the engine plus the config tree under `config/`, which the
//! Lambda runtime sees as `/var/task/config`.
//!
//! * JVM engine (`imposter-awslambda.zip`): every engine entry is copied in its original order
//!   with its compressed bytes untouched (raw copy), except anything under `config/`, which the
//!   bundled config replaces.
//! * Go engine (`imposter-go_linux_<arch>.tar.gz`): the `imposter-go` executable becomes
//!   `bootstrap` at the zip root, as the `provided.al2023` runtime expects.
//!
//! The output is deterministic: the same engine, config tree and `mtime` give a byte-identical
//! zip. Config entries come sorted; the zip file itself (its temp file, the fixed options of
//! every new entry) is written by `sink::lambda_zip`, beside the other sinks.

mod config;
mod go;
mod jvm;
pub(crate) mod lambda;

use crate::error::{Error, Result};
use crate::mutate::walk::WalkOptions;
use crate::sink::lambda_zip::{self, check_output};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Top-level directory of the zip that the Lambda runtime reads config from.
const CONFIG_DIR: &str = "config";

/// Where Lambda unpacks the zip: the zip's root. A referenced file outside the config directory
/// lands below it (`../openapi.yaml` from a top-level config is `/var/task/openapi.yaml`), never
/// above.
pub const LAMBDA_TASK_ROOT: &str = "/var/task";

/// Name the Lambda custom runtime executes.
const BOOTSTRAP: &str = "bootstrap";

/// The engine release archive a bundle starts from (a local file; never downloaded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineArchive {
    /// `imposter-awslambda.zip` from an Imposter release (JVM engine).
    JvmZip(PathBuf),
    /// `imposter-go_linux_<arch>.tar.gz` from an imposter-go release.
    GoTarGz(PathBuf),
}

impl EngineArchive {
    /// The archive file.
    pub fn path(&self) -> &Path {
        match self {
            EngineArchive::JvmZip(p) | EngineArchive::GoTarGz(p) => p,
        }
    }
}

/// What [`bundle`] builds.
#[derive(Debug, Clone)]
pub struct BundleOptions {
    /// The config directory; it goes under `config/` in the zip.
    pub config_dir: PathBuf,
    /// The engine release archive.
    pub engine: EngineArchive,
    /// The zip to write.
    pub output: PathBuf,
    /// Replace `output` if it exists.
    pub force: bool,
    /// The same filters an image build takes.
    pub walk: WalkOptions,
    /// Referenced files outside the config directory (paths under [`LAMBDA_TASK_ROOT`]), found
    /// by validation; written at the zip's root.
    pub outside: Vec<crate::mutate::outside::OutsideFile>,
    /// Seconds since the epoch for every entry written here (`SOURCE_DATE_EPOCH`, else 0).
    /// Zip timestamps cannot go below 1980-01-01, so earlier values are clamped to it.
    pub mtime: u64,
}

/// What [`bundle`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleSummary {
    /// The zip written.
    pub output: PathBuf,
    /// Every entry in the zip: engine entries, `config/` and the config tree.
    pub entries: usize,
    /// Regular files under `config/` (symlinks count once, as the file they were stored as).
    pub config_files: usize,
    /// Size of the zip in bytes.
    pub size: u64,
    /// Lower-case hex sha256 of the zip, as `sha256sum` prints it.
    pub sha256: String,
    /// The referenced files from outside the config directory in the zip.
    pub outside: Vec<crate::mutate::outside::OutsideFile>,
}

/// Builds the Lambda zip described by `opts` and moves it into place atomically.
pub fn bundle(opts: &BundleOptions) -> Result<BundleSummary> {
    let out_dir = check_output(&opts.output, opts.force)?;
    let config = config::collect_config(opts, &out_dir)?;
    check_engine_file(opts.engine.path())?;

    // Created after the walk, so a temp file in the config directory is never bundled.
    let (counts, written) = lambda_zip::write(&opts.output, opts.force, |zip, tmp_path| {
        let mut counts = match &opts.engine {
            EngineArchive::JvmZip(p) => jvm::copy_jvm_engine(p, zip, tmp_path)?,
            EngineArchive::GoTarGz(p) => go::add_go_engine(p, zip, opts.mtime, tmp_path)?,
        };
        let (entries, files) = config::add_config(&config, zip, opts.mtime, tmp_path)?;
        counts.0 += entries;
        counts.1 += files;
        counts.0 += config::add_outside(&opts.outside, zip, opts.mtime, tmp_path)?;
        Ok(counts)
    })?;

    Ok(BundleSummary {
        output: opts.output.clone(),
        entries: counts.0,
        config_files: counts.1,
        size: written.size,
        sha256: written.sha256,
        outside: opts.outside.clone(),
    })
}

fn check_engine_file(path: &Path) -> Result<()> {
    match fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(Error::path(
            path,
            "engine archive is not a file — pass the downloaded release archive",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::path(
            path,
            "engine archive does not exist — download it from the Imposter releases page",
        )),
        Err(e) => Err(Error::io("opening engine archive", path, e)),
    }
}

#[cfg(test)]
mod tests;
