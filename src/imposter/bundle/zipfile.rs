//! What makes new zip entries deterministic (timestamp, options) and the byte plumbing.
use crate::error::{Error, Result};
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use zip::result::ZipError;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime};

/// Deflate level for entries written here; pinned so the output does not depend on a default.
const ZIP_DEFLATE_LEVEL: i64 = 6;

/// Sizes at or above this need zip64 headers.
const ZIP64_THRESHOLD: u64 = 0xFFFF_FFFF;

pub(super) fn file_options(time: DateTime, mode: u32, size: u64) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(ZIP_DEFLATE_LEVEL))
        .last_modified_time(time)
        .unix_permissions(mode)
        .large_file(size >= ZIP64_THRESHOLD)
}

/// `io::copy` that tells read errors from write errors.
pub(super) fn copy_tagged<R: Read, W: Write>(
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

pub(super) fn hash_file(f: &mut File) -> io::Result<(u64, String)> {
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
pub(super) fn zip_time(mtime: u64) -> DateTime {
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
pub(super) fn zip_msg(e: &ZipError) -> String {
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
