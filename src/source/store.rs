//! Where the files of a local image live: a directory (OCI layout) or a tar (oci-archive,
//! docker-archive). Readers ask for files by their name inside the layout and never care which.
use crate::error::{Error, Result};
use crate::oci::blob::{BlobSource, ByteStream};
use crate::oci::digest;
use crate::oci::image::Descriptor;
use crate::source::file::{open_regular, read_capped};
use crate::source::tar_index::TarIndex;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use tokio::io::AsyncSeekExt;

/// The most a manifest or index file may hold (distribution's own limit for manifests): a
/// bigger one is a hostile or broken layout, and it would be read into memory.
pub(crate) const MAX_MANIFEST: u64 = 4 << 20;
/// The most an image config may hold (as for configs pulled from a registry).
pub(crate) const MAX_CONFIG: u64 = 64 << 20;

/// The files of a local image.
pub(crate) enum Store {
    /// An OCI image layout directory.
    Dir(PathBuf),
    /// A tar, read in place through its index.
    Tar(TarIndex),
}

impl Store {
    /// A layout directory; it must exist (what is in it is checked by the reader).
    pub(crate) fn open_dir(dir: &Path) -> Result<Store> {
        if !dir.is_dir() {
            return Err(Error::path(
                dir,
                "is not a directory — expected an OCI image layout",
            ));
        }
        Ok(Store::Dir(dir.to_path_buf()))
    }

    /// A tar, indexed without extracting it (see [`TarIndex::open`]).
    pub(crate) fn open_tar(path: &Path) -> Result<Store> {
        TarIndex::open(path).map(Store::Tar)
    }

    /// The directory or tar, as error messages name it.
    pub(crate) fn describe(&self) -> String {
        self.root().display().to_string()
    }

    fn root(&self) -> &Path {
        match self {
            Store::Dir(d) => d,
            Store::Tar(ix) => ix.path(),
        }
    }

    /// Whether the file `name` is there (anything by that name: what it is, is checked when it
    /// is read).
    pub(crate) fn has(&self, name: &str) -> bool {
        match self {
            Store::Dir(d) => d.join(name).exists(),
            Store::Tar(ix) => ix.get(name).is_some(),
        }
    }

    /// Reads a small file whole, refusing one over `cap` bytes (see [`MAX_MANIFEST`]) or one
    /// that is not a regular file.
    pub(crate) fn read(&self, name: &str, cap: u64) -> Result<Vec<u8>> {
        match self {
            Store::Dir(d) => {
                let p = d.join(name);
                let (f, size) = open_regular(&p).map_err(|e| match &e {
                    Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                        Error::path(self.root(), format!("lacks {name}"))
                    }
                    _ => e,
                })?;
                read_capped(f, size, cap, d, name)
            }
            Store::Tar(ix) => ix.read(name, cap),
        }
    }

    /// The names (`blobs/sha256/<hex>`) of the regular blob files of at most `cap` bytes, sorted:
    /// where a reader looks for the small manifests nothing in `index.json` points at
    /// (referrers of an image).
    pub(crate) fn small_blobs(&self, cap: u64) -> Vec<String> {
        let mut out: Vec<String> = match self {
            Store::Dir(d) => std::fs::read_dir(d.join("blobs/sha256"))
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| {
                    e.metadata()
                        .is_ok_and(|m| m.file_type().is_file() && m.len() <= cap)
                })
                .map(|e| format!("blobs/sha256/{}", e.file_name().to_string_lossy()))
                .collect(),
            Store::Tar(ix) => ix
                .entries()
                .filter(|(name, _, size)| name.starts_with("blobs/sha256/") && *size <= cap)
                .map(|(name, _, _)| name.to_string())
                .collect(),
        };
        out.sort();
        out
    }

    /// Streams the file `name` without loading it; it must hold exactly `want` bytes (its
    /// descriptor's size), so a sparse or growing file is refused before it is read.
    async fn stream(&self, name: &str, want: u64) -> Result<ByteStream> {
        let (f, path, off, size) = match self {
            Store::Dir(d) => {
                let p = d.join(name);
                let (f, size) = open_regular(&p)?;
                (f, p, 0, size)
            }
            Store::Tar(ix) => {
                let (off, size) = ix
                    .get(name)
                    .ok_or_else(|| Error::path(ix.path(), format!("lacks {name}")))?;
                let (f, _) = open_regular(ix.path())?;
                (f, ix.path().to_path_buf(), off, size)
            }
        };
        if size != want {
            return Err(Error::path(
                self.root(),
                format!("holds {size} bytes at {name}, but its descriptor says {want} — the image is damaged; export it again"),
            ));
        }
        let mut f = tokio::fs::File::from_std(f);
        f.seek(SeekFrom::Start(off))
            .await
            .map_err(|e| Error::io("reading blob", &path, e))?;
        let r = tokio::io::AsyncReadExt::take(f, size);
        Ok(tokio_util::io::ReaderStream::with_capacity(r, 256 << 10).boxed())
    }
}

/// A descriptor's digest as the file that holds its blob in a layout; a digest mockimg cannot
/// hash (sha512, …) is refused here by name rather than reported missing or corrupt later.
pub(crate) fn blob_path(digest: &str) -> Result<String> {
    digest::blob_path(digest).map_err(|e| Error::invalid("descriptor", e))
}

/// Blobs of a local layout or archive.
pub(crate) struct LocalBlobs {
    pub(crate) store: Store,
    /// Where a digest lives when not at `blobs/sha256/<hex>` (a docker-archive's own names).
    pub(crate) paths: HashMap<String, String>,
}

impl BlobSource for LocalBlobs {
    fn open<'a>(&'a self, desc: &'a Descriptor) -> BoxFuture<'a, Result<ByteStream>> {
        Box::pin(async move {
            let name = match self.paths.get(&desc.digest) {
                Some(p) => p.clone(),
                None => blob_path(&desc.digest)?,
            };
            if !self.store.has(&name) {
                return Err(Error::path(
                    self.store.root(),
                    format!(
                        "lacks blob {} — the image is incomplete; export it again",
                        desc.digest
                    ),
                ));
            }
            self.store.stream(&name, desc.size).await
        })
    }
}
