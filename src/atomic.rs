//! The one way mockimg puts a file on disk: write a temp file beside the destination, set its
//! mode, fsync, rename. A failure or Ctrl-C before the rename leaves nothing at the destination
//! (the temp file is removed when dropped), and a reader never sees half a file.
use crate::error::{Error, Result};
use crate::oci::blob::{self, ByteStream};
use crate::temps;
use futures_util::StreamExt;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Mode for what mockimg hands to other users and tools (archives, layouts, bundles): temp files
/// start 0600, and a CI runner or container engine reading the result is often another user.
pub const READABLE: u32 = 0o644;

/// Mode for what only this user's later runs read (the blob cache).
pub const PRIVATE: u32 = 0o600;

/// A file being written; it appears at its destination only on [`AtomicFile::commit`].
pub struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    dest: PathBuf,
    /// Known to the signal handler until committed or dropped.
    _live: temps::Live,
}

impl AtomicFile {
    /// Starts writing `dest`: the temp file sits in the same directory so the rename is atomic.
    pub fn create(dest: &Path) -> Result<AtomicFile> {
        let parent = parent_of(dest);
        temps::clean_stale(parent);
        let tmp = tempfile::Builder::new()
            .prefix(&temps::file_prefix())
            .tempfile_in(parent)
            .map_err(|e| Error::io("creating temp file", parent, e))?;
        Ok(AtomicFile {
            _live: temps::Live::new(tmp.path()),
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    /// The open temp file, for writers that need `Seek` or a clone of the handle.
    pub fn file(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// Where the bytes are going now (for error messages about the write itself).
    pub fn temp_path(&self) -> &Path {
        self.tmp.path()
    }

    /// Sets `mode`, syncs the data and renames over the destination.
    pub fn commit(self, mode: u32) -> Result<()> {
        let dest = self.dest.clone();
        let (tmp, _live) = self.prepare(mode)?;
        tmp.persist(&dest)
            .map_err(|e| Error::io("renaming into place", &dest, e.error))?;
        Ok(())
    }

    /// As [`AtomicFile::commit`], but fails with `AlreadyExists` instead of replacing a file
    /// that appeared at the destination meanwhile.
    pub fn commit_noclobber(self, mode: u32) -> std::result::Result<(), io::Error> {
        let dest = self.dest.clone();
        let (tmp, _live) = self.prepare(mode).map_err(io::Error::other)?;
        tmp.persist_noclobber(&dest)
            .map(|_| ())
            .map_err(|e| e.error)
    }

    fn prepare(self, mode: u32) -> Result<(tempfile::NamedTempFile, temps::Live)> {
        let f = self.tmp.as_file();
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io("setting permissions", self.tmp.path(), e))?;
        f.sync_all()
            .map_err(|e| Error::io("syncing", self.tmp.path(), e))?;
        Ok((self.tmp, self._live))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tmp.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

/// Writes `data` to `dest` atomically with `mode`.
pub fn write(dest: &Path, data: &[u8], mode: u32) -> Result<()> {
    let mut f = AtomicFile::create(dest)?;
    let tmp = f.temp_path().to_path_buf();
    f.write_all(data)
        .map_err(|e| Error::io("writing", tmp, e))?;
    f.commit(mode)
}

/// Streams `s` to `dest` atomically with [`READABLE`]. A stream error (a blob that failed
/// verification included) leaves nothing at `dest` and comes back as the [`Error`] it means.
pub async fn write_stream(dest: &Path, mut s: ByteStream) -> Result<()> {
    let mut f = AtomicFile::create(dest)?;
    let tmp = f.temp_path().to_path_buf();
    let file = f
        .file()
        .try_clone()
        .map_err(|e| Error::io("creating temp file", &tmp, e))?;
    let mut w = tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(file));
    while let Some(chunk) = s.next().await {
        let chunk =
            chunk.map_err(|e| blob::io_to_error(&format!("writing {}", dest.display()), e))?;
        tokio::io::AsyncWriteExt::write_all(&mut w, &chunk)
            .await
            .map_err(|e| Error::io("writing", &tmp, e))?;
    }
    tokio::io::AsyncWriteExt::flush(&mut w)
        .await
        .map_err(|e| Error::io("writing", &tmp, e))?;
    drop(w);
    f.commit(READABLE)
}

/// `dest`'s directory; a bare file name lives in the current directory (`Path::parent` gives an
/// empty path for it, which is not a directory one can create a temp file in).
pub fn parent_of(dest: &Path) -> &Path {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_appears_until_commit_and_mode_is_set() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("out.tar");
        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_all(b"half").unwrap();
        assert!(!dest.exists());
        f.commit(READABLE).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"half");
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }

    #[test]
    fn dropped_writer_leaves_no_file_behind() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("x");
        {
            let mut f = AtomicFile::create(&dest).unwrap();
            f.write_all(b"abc").unwrap();
        }
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn noclobber_refuses_an_existing_destination() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("x");
        std::fs::write(&dest, b"old").unwrap();
        let f = AtomicFile::create(&dest).unwrap();
        let e = f.commit_noclobber(READABLE).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&dest).unwrap(), b"old");
    }

    #[tokio::test]
    async fn a_failed_stream_leaves_nothing_behind() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("blob");
        let ok = futures_util::stream::iter(vec![Ok(bytes::Bytes::from_static(b"ab"))]).boxed();
        write_stream(&dest, ok).await.unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"ab");
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, READABLE);
        let bad = d.path().join("bad");
        let err = io::Error::new(io::ErrorKind::InvalidData, "content mismatch");
        let s = futures_util::stream::iter(vec![Ok(bytes::Bytes::from_static(b"x")), Err(err)]);
        let e = write_stream(&bad, s.boxed()).await.unwrap_err();
        assert!(matches!(e, Error::Corrupt { .. }), "{e}");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn bare_file_names_write_to_the_current_directory() {
        assert_eq!(parent_of(Path::new("mocks.tar")), Path::new("."));
        assert_eq!(parent_of(Path::new("a/b.tar")), Path::new("a"));
    }
}
