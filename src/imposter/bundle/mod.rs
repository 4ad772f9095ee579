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
//! zip. Config entries come sorted, every new entry carries the same DOS timestamp, a fixed unix
//! mode and no extra fields, and files are deflated at a fixed level.

mod config;
mod go;
mod jvm;
pub(crate) mod lambda;
mod zipfile;

use crate::error::{Error, Result};
use crate::mutate::walk::WalkOptions;
use crate::sink::atomic::{AtomicFile, READABLE};
use std::fs;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use zip::ZipWriter;
use zipfile::{hash_file, zip_msg};

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
    let mut tmp = AtomicFile::create(&opts.output)?;
    let tmp_path = tmp.temp_path().to_path_buf();
    let write_err = |e: io::Error| Error::io("writing bundle", &tmp_path, e);

    let counts = {
        let mut zip = ZipWriter::new(BufWriter::with_capacity(1 << 16, tmp.file()));
        let mut counts = match &opts.engine {
            EngineArchive::JvmZip(p) => jvm::copy_jvm_engine(p, &mut zip, &tmp_path)?,
            EngineArchive::GoTarGz(p) => go::add_go_engine(p, &mut zip, opts.mtime, &tmp_path)?,
        };
        let (entries, files) = config::add_config(&config, &mut zip, opts.mtime, &tmp_path)?;
        counts.0 += entries;
        counts.1 += files;
        counts.0 += config::add_outside(&opts.outside, &mut zip, opts.mtime, &tmp_path)?;
        let buf = zip
            .finish()
            .map_err(|e| Error::path(&tmp_path, format!("finishing zip: {}", zip_msg(&e))))?;
        buf.into_inner().map_err(|e| write_err(e.into_error()))?;
        counts
    };

    let (size, sha256) = hash_file(tmp.file()).map_err(write_err)?;
    if opts.force {
        tmp.commit(READABLE)?;
    } else {
        // Fails rather than replacing a file that appeared while we were writing.
        tmp.commit_noclobber(READABLE).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                exists_error(&opts.output)
            } else {
                Error::io("moving bundle into place", &opts.output, e)
            }
        })?;
    }

    Ok(BundleSummary {
        output: opts.output.clone(),
        entries: counts.0,
        config_files: counts.1,
        size,
        sha256,
        outside: opts.outside.clone(),
    })
}

fn exists_error(output: &Path) -> Error {
    Error::Usage(format!(
        "{}: already exists — pass --force to overwrite it",
        output.display()
    ))
}

/// Checks the output can be written; returns the directory the temp file goes in.
fn check_output(output: &Path, force: bool) -> Result<PathBuf> {
    let name_ok = output.file_name().is_some_and(|n| n != "." && n != "..");
    if !name_ok {
        return Err(Error::path(
            output,
            "output must be a file name such as lambda.zip",
        ));
    }
    match fs::symlink_metadata(output) {
        Ok(m) if m.is_dir() => {
            return Err(Error::path(
                output,
                "is a directory — pass a file name such as lambda.zip",
            ))
        }
        Ok(_) if !force => return Err(exists_error(output)),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("checking output", output, e)),
    }
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match fs::metadata(&dir) {
        Ok(m) if m.is_dir() => Ok(dir),
        Ok(_) => Err(Error::path(
            &dir,
            "output's parent is not a directory — choose another output path",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::path(
            &dir,
            "output directory does not exist — create it first or choose another output path",
        )),
        Err(e) => Err(Error::io("checking output directory", &dir, e)),
    }
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
