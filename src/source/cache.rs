//! Content-addressed blob cache: `DIR/blobs/sha256/<hex>`. A blob enters the cache only after
//! its bytes hashed to its digest while streaming through; until then it is a temp file that is
//! removed on any failure.
use crate::atomic::{AtomicFile, PRIVATE};
use crate::error::Result;
use crate::oci::blob::{BlobSource, ByteStream};
use crate::oci::digest::Hasher;
use crate::oci::image::Descriptor;
use crate::oci::reference::RegistryRef;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::{Stream, StreamExt};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// A blob cache directory (see the module docs).
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// Names the cache directory. Nothing is created until a blob is stored, so a build that
    /// never reads base layers (a plain push) works with a read-only home.
    pub fn open(dir: &Path) -> Result<Cache> {
        Ok(Cache {
            dir: dir.to_path_buf(),
        })
    }

    /// Where the blob `digest` is (or would be) cached; `None` for a digest mockimg cannot hash.
    fn path(&self, digest: &str) -> Option<PathBuf> {
        crate::oci::digest::blob_path(digest)
            .ok()
            .map(|p| self.dir.join(p))
    }

    /// Whether a copy of the blob of the right size is cached (its bytes are checked by the
    /// sink that reads it).
    fn has(&self, d: &Descriptor) -> bool {
        self.path(&d.digest)
            .and_then(|p| std::fs::metadata(p).ok())
            .is_some_and(|m| m.len() == d.size)
    }

    /// Wraps a source so reads come from the cache when they can and fill it when they can't.
    pub fn wrap(&self, inner: Arc<dyn BlobSource>) -> Arc<dyn BlobSource> {
        Arc::new(CachedBlobs {
            cache: self.clone(),
            inner,
        })
    }
}

struct CachedBlobs {
    cache: Cache,
    inner: Arc<dyn BlobSource>,
}

impl CachedBlobs {
    /// A cached blob as a stream. It is not hashed here: every sink verifies what it reads and
    /// calls [`BlobSource::distrust`] on a mismatch, which removes a copy damaged on disk.
    async fn cached(&self, desc: &Descriptor, path: &Path) -> Option<ByteStream> {
        if !self.cache.has(desc) {
            return None;
        }
        let f = tokio::fs::File::open(path).await.ok()?;
        tracing::debug!("cache hit {}", desc.digest);
        Some(tokio_util::io::ReaderStream::with_capacity(f, 256 << 10).boxed())
    }
}

impl BlobSource for CachedBlobs {
    fn open<'a>(&'a self, desc: &'a Descriptor) -> BoxFuture<'a, Result<ByteStream>> {
        Box::pin(async move {
            // In-memory blobs need no cache; only sha256 is hashed as it streams, so only sha256
            // blobs can be proven before they are stored.
            let path = match self.cache.path(&desc.digest) {
                Some(p) if desc.digest.starts_with("sha256:") => p,
                _ => return self.inner.open(desc).await,
            };
            if self.inner.in_memory(&desc.digest).is_some() {
                return self.inner.open(desc).await;
            }
            if let Some(s) = self.cached(desc, &path).await {
                return Ok(s);
            }
            let inner = self.inner.open(desc).await?;
            let parent = crate::atomic::parent_of(&path);
            // The cache is an optimisation: if it cannot be written, stream without it.
            let tmp = std::fs::create_dir_all(parent)
                .map_err(|e| e.to_string())
                .and_then(|_| {
                    AtomicFile::create(&path).map_err(|e| match e {
                        crate::error::Error::Io { source, .. } => source.to_string(),
                        other => other.to_string(),
                    })
                });
            let tmp = match tmp {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(
                        "not caching {}: cannot write {} ({e}); set --cache-dir or --no-cache",
                        desc.digest,
                        parent.display()
                    );
                    None
                }
            };
            Ok(Tee {
                inner,
                tmp,
                hasher: Hasher::new(),
                digest: desc.digest.clone(),
                size: desc.size,
            }
            .boxed())
        })
    }
    fn registry(&self) -> Option<&RegistryRef> {
        self.inner.registry()
    }
    fn in_memory(&self, digest: &str) -> Option<Bytes> {
        self.inner.in_memory(digest)
    }
    fn local(&self, digest: &str) -> bool {
        self.inner.local(digest)
    }
    fn distrust(&self, digest: &str) {
        if let Some(p) = self.cache.path(digest) {
            if std::fs::remove_file(&p).is_ok() {
                tracing::warn!(
                    "cached blob {} is damaged; removed it, fetching from the source",
                    p.display()
                );
            }
        }
        self.inner.distrust(digest)
    }
}

/// Passes bytes through while copying them to a temp file; at a clean end whose digest and size
/// match, the temp file is renamed into the cache. Anything else drops (deletes) it.
struct Tee {
    inner: ByteStream,
    tmp: Option<AtomicFile>,
    hasher: Hasher,
    digest: String,
    size: u64,
}

impl Stream for Tee {
    type Item = std::io::Result<Bytes>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(b))) => {
                if let Some(t) = this.tmp.as_mut() {
                    this.hasher.update(&b);
                    if t.write_all(&b).is_err() {
                        // A full disk must not fail the export: stop caching, keep streaming.
                        this.tmp = None;
                    }
                }
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(None) => {
                if let Some(t) = this.tmp.take() {
                    let h = std::mem::take(&mut this.hasher);
                    if h.len() == this.size && h.finish() == this.digest {
                        if let Err(e) = t.commit(PRIVATE) {
                            tracing::debug!("could not add {} to the cache: {}", this.digest, e);
                        }
                    }
                }
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.tmp = None;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting {
        data: Bytes,
        opens: AtomicUsize,
    }
    impl BlobSource for Counting {
        fn open<'a>(&'a self, _d: &'a Descriptor) -> BoxFuture<'a, Result<ByteStream>> {
            self.opens.fetch_add(1, Ordering::SeqCst);
            let b = self.data.clone();
            Box::pin(async move { Ok(futures_util::stream::once(async move { Ok(b) }).boxed()) })
        }
    }

    fn desc(data: &[u8]) -> Descriptor {
        crate::oci::image::Doc::new("x", data.to_vec()).descriptor()
    }

    async fn drain(s: ByteStream) -> Vec<u8> {
        let v: Vec<_> = s.collect().await;
        v.into_iter().flat_map(|b| b.unwrap().to_vec()).collect()
    }

    #[tokio::test]
    async fn second_read_is_served_from_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let src = Arc::new(Counting {
            data: Bytes::from_static(b"layer bytes"),
            opens: AtomicUsize::new(0),
        });
        let cached = cache.wrap(src.clone());
        let d = desc(b"layer bytes");
        assert_eq!(drain(cached.open(&d).await.unwrap()).await, b"layer bytes");
        assert_eq!(drain(cached.open(&d).await.unwrap()).await, b"layer bytes");
        assert_eq!(src.opens.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn corrupt_blob_never_enters_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let src = Arc::new(Counting {
            data: Bytes::from_static(b"layer bytez"),
            opens: AtomicUsize::new(0),
        });
        let cached = cache.wrap(src);
        let d = desc(b"layer bytes");
        drain(cached.open(&d).await.unwrap()).await;
        assert!(!cache.has(&d));
        let left: Vec<_> = std::fs::read_dir(dir.path().join("blobs/sha256"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "no temp file or bad blob left behind");
    }
}
