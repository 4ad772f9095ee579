//! The JVM engine's `imposter-awslambda.zip`: every entry copied with its compressed bytes
//! untouched, except the engine's own `config/`, which the bundled config replaces.
use super::zipfile::zip_msg;
use super::CONFIG_DIR;
use crate::error::{Error, Result};
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::Path;
use zip::result::ZipError;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

/// Copies everything from a JVM engine zip except `config/`; returns (entries, 0).
pub(super) fn copy_jvm_engine<W: Write + Seek>(
    path: &Path,
    zip: &mut ZipWriter<W>,
    out: &Path,
) -> Result<(usize, usize)> {
    let bad = |msg: String| Error::path(path, msg);
    let file = File::open(path).map_err(|e| Error::io("opening engine zip", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io("opening engine zip", path, e))?
        .len();
    let mut archive = ZipArchive::new(io::BufReader::new(file)).map_err(|e| {
        bad(format!(
            "not a readable zip archive ({}) — download imposter-awslambda.zip from an Imposter release again",
            zip_msg(&e)
        ))
    })?;
    if archive.is_empty() {
        return Err(bad(
            "engine zip has no entries — pass the imposter-awslambda.zip from an Imposter release"
                .into(),
        ));
    }

    // Check every entry before writing any, so a damaged download fails with its name rather
    // than producing a zip the Lambda runtime cannot load.
    let mut keep = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let (name, method, end) = {
            let f = archive
                .by_index_raw(i)
                .map_err(|e| bad(format!("entry #{i}: {} — download it again", zip_msg(&e))))?;
            let end = f.data_start().checked_add(f.compressed_size());
            (f.name().to_owned(), f.compression(), end)
        };
        if unsafe_entry_name(&name) {
            return Err(bad(format!(
                "entry {name:?} has an absolute or `..` path — refusing to bundle it; use an official engine zip"
            )));
        }
        if end.is_none_or(|end| end > len) {
            return Err(bad(format!(
                "entry {name:?} runs past the end of the file (truncated?) — download it again"
            )));
        }
        if matches!(
            method,
            CompressionMethod::Stored | CompressionMethod::Deflated
        ) {
            let mut f = archive.by_index(i).map_err(|e| {
                bad(format!(
                    "entry {name:?}: {} — download it again",
                    zip_msg(&e)
                ))
            })?;
            io::copy(&mut f, &mut io::sink()).map_err(|e| {
                bad(format!(
                    "entry {name:?} is corrupt ({e}) — download it again"
                ))
            })?;
        }
        if is_under_config(&name) {
            tracing::debug!("dropping {name} from the engine zip; the bundled config replaces it");
        } else {
            keep.push(i);
        }
    }

    let zerr = |name: &str, e: ZipError| {
        Error::path(out, format!("copying engine entry {name}: {}", zip_msg(&e)))
    };
    for &i in &keep {
        let f = archive
            .by_index_raw(i)
            .map_err(|e| bad(format!("entry #{i}: {}", zip_msg(&e))))?;
        let name = f.name().to_owned();
        let time = f
            .last_modified()
            .filter(|t| t.is_valid())
            .unwrap_or_default();
        let mode = f.unix_mode();
        if f.is_dir() {
            drop(f);
            let opts = SimpleFileOptions::default()
                .last_modified_time(time)
                .unix_permissions(mode.unwrap_or(0o755));
            zip.add_directory(name.as_str(), opts)
                .map_err(|e| zerr(&name, e))?;
        } else if f.is_symlink() {
            // The raw copy would turn the link into a regular file; keep it a link instead.
            drop(f);
            let mut target = String::new();
            archive
                .by_index(i)
                .and_then(|mut f| Ok(f.read_to_string(&mut target)?))
                .map_err(|e| bad(format!("entry {name:?}: {}", zip_msg(&e))))?;
            let opts = SimpleFileOptions::default()
                .last_modified_time(time)
                .unix_permissions(mode.unwrap_or(0o777));
            zip.add_symlink(name.as_str(), target, opts)
                .map_err(|e| zerr(&name, e))?;
        } else {
            // Compressed bytes, CRC and sizes are carried over as they are. The time is passed
            // explicitly so a missing one never becomes "now".
            zip.raw_copy_file_touch(f, time, mode)
                .map_err(|e| zerr(&name, e))?;
        }
    }
    Ok((keep.len(), 0))
}

/// True for names that would extract outside the Lambda task root.
pub(super) fn unsafe_entry_name(name: &str) -> bool {
    let b = name.as_bytes();
    name.is_empty()
        || name.contains('\0')
        || name.starts_with('/')
        || name.starts_with('\\')
        || (b.len() >= 2 && b[1] == b':' && b[0].is_ascii_alphabetic())
        || name.split(['/', '\\']).any(|c| c == "..")
}

/// True for `config`, `config/` and anything below it (also spelt `./config/...`).
pub(super) fn is_under_config(name: &str) -> bool {
    name.split('/')
        .find(|c| !c.is_empty() && *c != ".")
        .is_some_and(|c| c == CONFIG_DIR)
}
