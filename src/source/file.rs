//! Reading a local image's files safely: only regular files, and never more than a cap. A
//! leaf both the store and the tar index read through.
use crate::error::{Error, Result};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens `path` for reading only if it is a regular file (a link to one is fine): a device
/// (`/dev/zero`) would be read without end, a FIFO would block. The open itself never blocks,
/// and the opened file is checked again so a swap in between is caught. Returns its size.
pub(crate) fn open_regular(path: &Path) -> Result<(std::fs::File, u64)> {
    let not_regular = || {
        Error::path(
            path,
            "is not a regular file (a device, FIFO, socket or directory) — refusing to read it",
        )
    };
    let meta = std::fs::metadata(path).map_err(|e| Error::io("opening", path, e))?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Error::io("opening", path, e))?;
    let meta = f.metadata().map_err(|e| Error::io("opening", path, e))?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    Ok((f, meta.len()))
}

/// Reads at most `cap` bytes of `r`, which claims to hold `size`: a file larger than `cap`
/// is refused before reading, one that grows past it while read is refused then.
pub(crate) fn read_capped(
    mut r: impl Read,
    size: u64,
    cap: u64,
    path: &Path,
    name: &str,
) -> Result<Vec<u8>> {
    let too_big = |n: u64| {
        Error::path(
            path,
            format!("{name} is {n} bytes, more than the {cap} a manifest, index or config may hold — refusing to load it"),
        )
    };
    if size > cap {
        return Err(too_big(size));
    }
    let mut v = Vec::with_capacity(size as usize);
    (&mut r)
        .take(cap + 1)
        .read_to_end(&mut v)
        .map_err(|e| Error::io("reading", path.join(name), e))?;
    if v.len() as u64 > cap {
        return Err(too_big(v.len() as u64));
    }
    Ok(v)
}
