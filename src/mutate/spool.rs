//! Where the config layer is written as it is compressed: memory while it is small, an unnamed
//! temp file once it is not, so a config with large fixtures costs disk, not memory.
use crate::oci::blob::{LocalBlob, SpooledFile};
use bytes::Bytes;
use std::fs::File;
use std::io::{self, Seek, Write};
use std::path::PathBuf;

/// Layers up to this size stay in memory: typical configs (kilobytes to a few megabytes) never
/// touch the disk, and pushes of them keep the in-memory path. Well under the 64 MB budget.
pub(crate) const SPILL_AT: usize = 8 << 20;

/// A writer that keeps up to `limit` bytes in memory and moves everything to a temp file when
/// a write would pass it.
pub(crate) struct Spool {
    mem: Vec<u8>,
    file: Option<File>,
    len: u64,
    limit: usize,
    /// Where the temp file goes; `None` is the system temp dir (`TMPDIR`).
    dir: Option<PathBuf>,
}

impl Spool {
    /// A spool that spills past [`SPILL_AT`] into `dir` (or the system temp dir).
    pub(crate) fn new(dir: Option<PathBuf>) -> Self {
        Self::with_limit(dir, SPILL_AT)
    }

    /// A spool that spills past `limit` bytes (tests use a small one).
    pub(crate) fn with_limit(dir: Option<PathBuf>, limit: usize) -> Self {
        Spool {
            mem: Vec::new(),
            file: None,
            len: 0,
            limit,
            dir,
        }
    }

    fn spill(&mut self) -> io::Result<()> {
        // tempfile() unlinks the file as it creates it (O_TMPFILE on Linux): nothing is left
        // behind whatever ends the process, and nothing else can open it.
        let mut f = match &self.dir {
            Some(d) => tempfile::tempfile_in(d)?,
            None => tempfile::tempfile()?,
        };
        f.write_all(&self.mem)?;
        self.mem = Vec::new();
        self.file = Some(f);
        Ok(())
    }

    /// The finished blob, in memory or in the temp file.
    pub(crate) fn finish(self) -> io::Result<LocalBlob> {
        match self.file {
            None => Ok(LocalBlob::Memory(Bytes::from(self.mem))),
            Some(mut f) => {
                f.flush()?;
                f.rewind()?;
                Ok(LocalBlob::File(SpooledFile::new(f, self.len)))
            }
        }
    }
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.file.is_none() && self.mem.len() + buf.len() > self.limit {
            self.spill()?;
        }
        let n = match &mut self.file {
            Some(f) => f.write(buf)?,
            None => {
                self.mem.extend_from_slice(buf);
                buf.len()
            }
        };
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    async fn streamed(b: &LocalBlob) -> Vec<u8> {
        let mut out = Vec::new();
        let mut s = b.stream();
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn small_output_stays_in_memory() {
        let mut s = Spool::with_limit(None, 1000);
        s.write_all(&bytes(1000)).unwrap();
        let b = s.finish().unwrap();
        assert!(matches!(b, LocalBlob::Memory(_)));
        assert_eq!(streamed(&b).await, bytes(1000));
    }

    #[tokio::test]
    async fn large_output_spills_to_an_unnamed_file_and_streams_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let data = bytes(3 * (256 << 10) + 17);
        let mut s = Spool::with_limit(Some(dir.path().into()), 1000);
        for part in data.chunks(999) {
            s.write_all(part).unwrap();
        }
        let b = s.finish().unwrap();
        assert!(matches!(b, LocalBlob::File(_)));
        assert_eq!(b.len(), data.len() as u64);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the temp file has no name to leave behind"
        );
        // Two readers at once, each from the start: positional reads share no cursor.
        let (x, y) = tokio::join!(streamed(&b), streamed(&b));
        assert_eq!(x, data);
        assert_eq!(y, data);
        assert_eq!(b.to_vec().unwrap(), data);
    }
}
