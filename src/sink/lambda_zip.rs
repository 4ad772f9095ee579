//! The Lambda zip file: written to a temp file beside the target, finished, hashed and moved
//! into place, and every entry written here made deterministic (one DOS timestamp, a fixed unix
//! mode, a pinned deflate level, no extra fields). Which entries go in, and where, is the
//! engine's business (`imposter/bundle/`): it fills the zip through [`write`].
use crate::atomic::{AtomicFile, READABLE};
use crate::error::{Error, Result};
use sha2::{Digest as _, Sha256};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use zip::result::ZipError;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

/// The zip as the engine's entry writers fill it.
pub(crate) type Writer<'a> = ZipWriter<BufWriter<&'a mut File>>;

/// The zip file once it is in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Written {
    /// Size in bytes.
    pub(crate) size: u64,
    /// Lower-case hex sha256, as `sha256sum` prints it.
    pub(crate) sha256: String,
}

/// Writes the zip at `output`: `fill` adds every entry (given the temp file's path for its
/// messages), then the zip is finished, hashed and moved into place. Without `force`, a file
/// that appeared at `output` meanwhile is not replaced. Call [`check_output`] first, and create
/// nothing the zip should hold afterwards: the temp file lies beside `output`.
pub(crate) fn write<T>(
    output: &Path,
    force: bool,
    fill: impl FnOnce(&mut Writer<'_>, &Path) -> Result<T>,
) -> Result<(T, Written)> {
    let mut tmp = AtomicFile::create(output)?;
    let tmp_path = tmp.temp_path().to_path_buf();
    let write_err = |e: io::Error| Error::io("writing bundle", &tmp_path, e);

    let filled = {
        let mut zip = ZipWriter::new(BufWriter::with_capacity(1 << 16, tmp.file()));
        let filled = fill(&mut zip, &tmp_path)?;
        let buf = zip
            .finish()
            .map_err(|e| Error::path(&tmp_path, format!("finishing zip: {}", zip_msg(&e))))?;
        buf.into_inner().map_err(|e| write_err(e.into_error()))?;
        filled
    };

    let (size, sha256) = hash_file(tmp.file()).map_err(write_err)?;
    if force {
        tmp.commit(READABLE)?;
    } else {
        // Fails rather than replacing a file that appeared while we were writing.
        tmp.commit_noclobber(READABLE).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                exists_error(output)
            } else {
                Error::io("moving bundle into place", output, e)
            }
        })?;
    }
    Ok((filled, Written { size, sha256 }))
}

fn exists_error(output: &Path) -> Error {
    Error::Usage(format!(
        "{}: already exists — pass --force to overwrite it",
        output.display()
    ))
}

/// Checks the output can be written; returns the directory the temp file goes in.
pub(crate) fn check_output(output: &Path, force: bool) -> Result<PathBuf> {
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

/// Deflate level for entries written here; pinned so the output does not depend on a default.
const ZIP_DEFLATE_LEVEL: i64 = 6;

/// Sizes at or above this need zip64 headers.
const ZIP64_THRESHOLD: u64 = 0xFFFF_FFFF;

pub(crate) fn file_options(time: DateTime, mode: u32, size: u64) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(ZIP_DEFLATE_LEVEL))
        .last_modified_time(time)
        .unix_permissions(mode)
        .large_file(size >= ZIP64_THRESHOLD)
}

/// `io::copy` that tells read errors from write errors.
pub(crate) fn copy_tagged<R: Read, W: Write>(
    r: &mut R,
    w: &mut W,
    read_err: impl Fn(io::Error) -> Error,
    write_err: impl Fn(io::Error) -> Error,
) -> Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        w.write_all(&buf[..n]).map_err(&write_err)?;
        total += n as u64;
    }
}

fn hash_file(f: &mut File) -> io::Result<(u64, String)> {
    f.seek(SeekFrom::Start(0))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(h.finalize())))
}

/// `mtime` (seconds since the epoch, UTC) as a zip timestamp, clamped to the DOS range
/// 1980-01-01 00:00:00 ..= 2107-12-31 23:59:58. DOS time has 2-second resolution.
pub(crate) fn zip_time(mtime: u64) -> DateTime {
    use chrono::{Datelike, Timelike};
    let min = DateTime::default();
    let max = DateTime::from_date_and_time(2107, 12, 31, 23, 59, 58).unwrap_or(min);
    let Some(t) = i64::try_from(mtime)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
    else {
        return max;
    };
    match t.year() {
        y if y < 1980 => min,
        y if y > 2107 => max,
        y => DateTime::from_date_and_time(
            y as u16,
            t.month() as u8,
            t.day() as u8,
            t.hour() as u8,
            t.minute() as u8,
            t.second() as u8,
        )
        .unwrap_or(min),
    }
}

/// The zip crate's `Display` for I/O errors hides the cause; show it.
pub(crate) fn zip_msg(e: &ZipError) -> String {
    match e {
        ZipError::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip_time_conversion_and_clamping() {
        let min = DateTime::from_date_and_time(1980, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(zip_time(0), min);
        assert_eq!(zip_time(315_532_799), min);
        assert_eq!(zip_time(315_532_800), min);
        assert_eq!(
            zip_time(1_700_000_000),
            DateTime::from_date_and_time(2023, 11, 14, 22, 13, 20).unwrap()
        );
        let max = DateTime::from_date_and_time(2107, 12, 31, 23, 59, 58).unwrap();
        assert_eq!(zip_time(u64::MAX), max);
        assert_eq!(zip_time(5_000_000_000), max, "year 2128 clamps");
        assert_eq!(
            zip_time(1_700_000_001),
            zip_time(1_700_000_000),
            "2-second resolution"
        );
    }
}
