//! Blob access behind one small trait, so any source (registry, layout, archive, memory) can feed
//! any sink, and a sink opens a blob only when it has to.
use crate::digest::Hasher;
use crate::error::{Error, Result};
use crate::image::{Descriptor, Root};
use crate::reference::RegistryRef;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, Stream, StreamExt};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

pub trait BlobSource: Send + Sync {
    /// Opens a blob for reading. Callers verify what they read with [`verified`].
    fn open<'a>(&'a self, desc: &'a Descriptor) -> BoxFuture<'a, Result<ByteStream>>;

    /// The registry repository the blobs live in, so a push to the same registry can mount them.
    fn registry(&self) -> Option<&RegistryRef> {
        None
    }

    /// Bytes held in memory (the new layer, configs): pushed directly, never mounted.
    fn in_memory(&self, _digest: &str) -> Option<Bytes> {
        None
    }
}

/// An image (or index) and where its blobs come from.
#[derive(Clone)]
pub struct Source {
    pub root: Root,
    pub blobs: Arc<dyn BlobSource>,
    /// How the user named it, for `org.opencontainers.image.base.name`.
    pub name: String,
}

/// New blobs in memory over the base's blobs.
pub struct Overlay {
    pub mem: HashMap<String, Bytes>,
    pub base: Arc<dyn BlobSource>,
}

impl BlobSource for Overlay {
    fn open<'a>(&'a self, desc: &'a Descriptor) -> BoxFuture<'a, Result<ByteStream>> {
        match self.mem.get(&desc.digest) {
            Some(b) => {
                let b = b.clone();
                Box::pin(
                    async move { Ok(futures_util::stream::once(async move { Ok(b) }).boxed()) },
                )
            }
            None => self.base.open(desc),
        }
    }
    fn registry(&self) -> Option<&RegistryRef> {
        self.base.registry()
    }
    fn in_memory(&self, digest: &str) -> Option<Bytes> {
        self.mem
            .get(digest)
            .cloned()
            .or_else(|| self.base.in_memory(digest))
    }
}

/// Wraps a stream so it fails, at its end, unless the bytes hash to `desc.digest` and number
/// `desc.size`: a corrupted or truncated blob never reaches a sink as if it were good.
pub fn verified(inner: ByteStream, desc: &Descriptor, what: impl Into<String>) -> ByteStream {
    VerifyingStream {
        inner,
        hasher: Some(Hasher::new()),
        digest: desc.digest.clone(),
        size: desc.size,
        what: what.into(),
    }
    .boxed()
}

struct VerifyingStream {
    inner: ByteStream,
    hasher: Option<Hasher>,
    digest: String,
    size: u64,
    what: String,
}

impl Stream for VerifyingStream {
    type Item = std::io::Result<Bytes>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(h) = this.hasher.as_mut() else {
            return Poll::Ready(None);
        };
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(b))) => {
                h.update(&b);
                if h.len() > this.size {
                    this.hasher = None;
                    return Poll::Ready(Some(Err(mismatch_io(
                        &this.what,
                        &format!("more than the {} bytes its descriptor says", this.size),
                    ))));
                }
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(None) => {
                let h = this.hasher.take().expect("checked above");
                if h.len() != this.size {
                    return Poll::Ready(Some(Err(mismatch_io(
                        &this.what,
                        &format!("{} bytes, expected {} (truncated)", h.len(), this.size),
                    ))));
                }
                let got = h.finish();
                if got != this.digest {
                    return Poll::Ready(Some(Err(mismatch_io(
                        &this.what,
                        &format!("digest {got}, expected {}", this.digest),
                    ))));
                }
                Poll::Ready(None)
            }
            other => other,
        }
    }
}

fn mismatch_io(what: &str, msg: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{what}: content mismatch: {msg}"),
    )
}

/// Reads a whole (small) blob, verified: configs and manifests.
pub async fn read_all(src: &dyn BlobSource, desc: &Descriptor, what: &str) -> Result<Bytes> {
    if desc.size > 64 << 20 {
        return Err(Error::invalid(
            what,
            format!("is {} bytes; refusing to load it into memory", desc.size),
        ));
    }
    let mut s = verified(src.open(desc).await?, desc, what);
    let mut out = Vec::with_capacity(desc.size as usize);
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(|e| io_to_error(what, e))?;
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

/// A verification failure surfaces as InvalidData; report it as the digest error it is.
pub fn io_to_error(what: &str, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::InvalidData {
        Error::DigestMismatch {
            what: what.to_string(),
            expected: String::new(),
            actual: e.to_string(),
        }
    } else {
        Error::invalid(what, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256;

    fn desc(data: &[u8]) -> Descriptor {
        Descriptor {
            media_type: "x".into(),
            digest: sha256(data),
            size: data.len() as u64,
            platform: None,
            extra: Default::default(),
        }
    }

    fn stream(parts: Vec<&'static [u8]>) -> ByteStream {
        futures_util::stream::iter(parts.into_iter().map(|p| Ok(Bytes::from_static(p)))).boxed()
    }

    #[tokio::test]
    async fn verifies_digest_and_size() {
        let d = desc(b"hello world");
        let ok: Vec<_> = verified(stream(vec![b"hello ", b"world"]), &d, "t")
            .collect()
            .await;
        assert!(ok.iter().all(|r| r.is_ok()));
        let flipped: Vec<_> = verified(stream(vec![b"hello ", b"World"]), &d, "t")
            .collect()
            .await;
        assert!(flipped.last().unwrap().is_err());
        let short: Vec<_> = verified(stream(vec![b"hello "]), &d, "t").collect().await;
        let e = short.last().unwrap().as_ref().unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        let long: Vec<_> = verified(stream(vec![b"hello world!"]), &d, "t")
            .collect()
            .await;
        assert!(long.last().unwrap().is_err());
    }
}
