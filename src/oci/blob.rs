//! Blob access behind one small trait, so any source (registry, layout, archive, memory) can feed
//! any sink, and a sink opens a blob only when it has to.
use crate::error::{Error, Result};
use crate::oci::digest::Hasher;
use crate::oci::image::{Descriptor, Root};
use crate::oci::reference::RegistryRef;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, Stream, StreamExt};
use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// A blob's bytes as they arrive; an `InvalidData` error means they failed verification.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// Where an image's blobs are read from: a registry, a local layout or archive, the cache, memory.
pub trait BlobSource: Send + Sync {
    /// Opens a blob for reading. The bytes are not checked here: every reader verifies them
    /// against `desc`, so one check covers every source.
    fn open<'a>(&'a self, desc: &'a Descriptor) -> BoxFuture<'a, Result<ByteStream>>;

    /// The registry repository the blobs live in, so a push to the same registry can mount them.
    fn registry(&self) -> Option<&RegistryRef> {
        None
    }

    /// The registry repository `digest` can be mounted from: [`BlobSource::registry`] unless
    /// the blobs come from more than one repository (a rebase: the config layer from the old
    /// image's, the rest from the new base's).
    fn registry_of(&self, _digest: &str) -> Option<&RegistryRef> {
        self.registry()
    }

    /// Bytes held in memory (the new layer, configs): pushed directly, never mounted.
    fn in_memory(&self, _digest: &str) -> Option<Bytes> {
        None
    }

    /// Made by this build and held locally (in memory or spooled to a temp file): a push
    /// uploads it rather than trying to mount it from the base's repository, where it cannot be.
    fn local(&self, digest: &str) -> bool {
        self.in_memory(digest).is_some()
    }

    /// The copy of `digest` just read failed verification: a source that serves local copies
    /// (the cache) drops its copy so the next `open` goes back to the origin. Sinks verify every
    /// byte themselves, so sources need not hash what they serve a second time.
    fn distrust(&self, _digest: &str) {}
}

/// An image (or index) and where its blobs come from.
#[derive(Clone)]
pub struct Source {
    /// The manifest or index, its images and their configs, as raw bytes.
    pub root: Root,
    /// Where the layers (and anything else `root` points at) are read from.
    pub blobs: Arc<dyn BlobSource>,
    /// How the user named it, for `org.opencontainers.image.base.name`.
    pub name: String,
}

/// New blobs (in memory or spooled to disk) over the base's blobs.
pub(crate) struct Overlay {
    /// Digest → the blobs this build made (the config layer, new configs).
    pub(crate) local: HashMap<String, LocalBlob>,
    /// The base image's blobs, for everything else.
    pub(crate) base: Arc<dyn BlobSource>,
}

impl BlobSource for Overlay {
    fn open<'a>(&'a self, desc: &'a Descriptor) -> BoxFuture<'a, Result<ByteStream>> {
        match self.local.get(&desc.digest) {
            Some(b) => {
                let s = b.stream();
                Box::pin(async move { Ok(s) })
            }
            None => self.base.open(desc),
        }
    }
    fn registry(&self) -> Option<&RegistryRef> {
        self.base.registry()
    }
    fn registry_of(&self, digest: &str) -> Option<&RegistryRef> {
        self.base.registry_of(digest)
    }
    fn in_memory(&self, digest: &str) -> Option<Bytes> {
        match self.local.get(digest) {
            Some(LocalBlob::Memory(b)) => Some(b.clone()),
            Some(LocalBlob::File(_)) => None,
            None => self.base.in_memory(digest),
        }
    }
    fn local(&self, digest: &str) -> bool {
        self.local.contains_key(digest) || self.base.local(digest)
    }
    fn distrust(&self, digest: &str) {
        self.base.distrust(digest)
    }
}

/// A blob this build made: small ones stay in memory, large ones (a config layer with big
/// fixtures) sit in a temp file, so memory does not grow with the config.
#[derive(Debug, Clone)]
pub enum LocalBlob {
    /// Held in memory.
    Memory(Bytes),
    /// Spooled to an unnamed temp file, read back in bounded chunks.
    File(SpooledFile),
}

impl LocalBlob {
    /// Size in bytes.
    pub fn len(&self) -> u64 {
        match self {
            LocalBlob::Memory(b) => b.len() as u64,
            LocalBlob::File(f) => f.len,
        }
    }

    /// Whether the blob has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Streams the blob from the start; every call is an independent reader.
    pub fn stream(&self) -> ByteStream {
        match self {
            LocalBlob::Memory(b) => {
                let b = b.clone();
                futures_util::stream::once(async move { Ok(b) }).boxed()
            }
            LocalBlob::File(f) => f.stream(),
        }
    }

    /// A blocking reader over the blob from the start (for a pass over a layer's entries on a
    /// blocking thread); a spooled blob is read positionally, so other readers are unaffected.
    pub fn reader(&self) -> Box<dyn std::io::Read + Send> {
        match self {
            LocalBlob::Memory(b) => Box::new(std::io::Cursor::new(b.clone())),
            LocalBlob::File(f) => Box::new(PositionalReader {
                file: f.file.clone(),
                off: 0,
                len: f.len,
            }),
        }
    }

    /// Reads the whole blob into memory (tests and small blobs only).
    pub fn to_vec(&self) -> std::io::Result<Vec<u8>> {
        match self {
            LocalBlob::Memory(b) => Ok(b.to_vec()),
            LocalBlob::File(f) => {
                let mut out = vec![0; f.len as usize];
                f.file.read_exact_at(&mut out, 0)?;
                Ok(out)
            }
        }
    }
}

/// [`LocalBlob::reader`] over a spooled file.
struct PositionalReader {
    file: Arc<std::fs::File>,
    off: u64,
    len: u64,
}

impl std::io::Read for PositionalReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = buf.len().min((self.len - self.off) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.off)?;
        self.off += n as u64;
        Ok(n)
    }
}

/// Bytes per read of a spooled file: small enough that a few readers in flight stay a few MiB,
/// large enough that the syscalls are not what a push or export waits on.
const READ_CHUNK: usize = 256 << 10;

/// A complete, read-only temp file. It has no name (it was unlinked when created), so the
/// kernel frees it when the last handle closes — on drop, on Ctrl-C, or on a crash.
#[derive(Debug, Clone)]
pub struct SpooledFile {
    file: Arc<std::fs::File>,
    len: u64,
}

impl SpooledFile {
    /// Wraps a file whose first `len` bytes are the blob. Reads are positional, so any number
    /// of streams can read the same handle at once.
    pub fn new(file: std::fs::File, len: u64) -> Self {
        SpooledFile {
            file: Arc::new(file),
            len,
        }
    }

    fn stream(&self) -> ByteStream {
        let start = (self.file.clone(), 0u64, self.len);
        futures_util::stream::try_unfold(start, |(file, off, len)| async move {
            if off >= len {
                return Ok(None);
            }
            let n = READ_CHUNK.min((len - off) as usize);
            let (file, buf) = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0; n];
                file.read_exact_at(&mut buf, off).map(|()| (file, buf))
            })
            .await
            .map_err(std::io::Error::other)??;
            Ok(Some((Bytes::from(buf), (file, off + n as u64, len))))
        })
        .boxed()
    }
}

/// Wraps a stream so it fails unless the bytes hash to `desc.digest` and number `desc.size`: a
/// corrupted or truncated blob never reaches a sink as if it were good. The check is made when the
/// last byte arrives, and a bad last chunk is replaced by the error: an HTTP body with a known
/// length is complete after that chunk and would never poll for an error that came after it.
pub(crate) fn verified(
    inner: ByteStream,
    desc: &Descriptor,
    what: impl Into<String>,
) -> ByteStream {
    VerifyingStream {
        inner,
        hasher: Some(Hasher::new()),
        digest: desc.digest.clone(),
        size: desc.size,
        what: what.into(),
        done: false,
    }
    .boxed()
}

struct VerifyingStream {
    inner: ByteStream,
    /// Taken once `size` bytes have been seen and checked.
    hasher: Option<Hasher>,
    digest: String,
    size: u64,
    what: String,
    done: bool,
}

impl VerifyingStream {
    fn fail(&mut self, msg: &str) -> Poll<Option<std::io::Result<Bytes>>> {
        self.done = true;
        Poll::Ready(Some(Err(mismatch_io(&self.what, msg))))
    }

    /// Compares the digest once `size` bytes are in.
    fn check(&mut self) -> Result<(), String> {
        let h = self.hasher.take().expect("checked once");
        let got = h.finish();
        if got != self.digest {
            return Err(format!("digest {got}, expected {}", self.digest));
        }
        Ok(())
    }
}

impl Stream for VerifyingStream {
    type Item = std::io::Result<Bytes>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(b))) => {
                let Some(h) = this.hasher.as_mut() else {
                    if b.is_empty() {
                        return Poll::Ready(Some(Ok(b)));
                    }
                    let msg = format!("more than the {} bytes its descriptor says", this.size);
                    return this.fail(&msg);
                };
                h.update(&b);
                if h.len() > this.size {
                    let msg = format!("more than the {} bytes its descriptor says", this.size);
                    return this.fail(&msg);
                }
                if h.len() == this.size {
                    if let Err(msg) = this.check() {
                        return this.fail(&msg);
                    }
                }
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(None) => {
                this.done = true;
                match this.hasher.as_ref().map(|h| h.len()) {
                    None => Poll::Ready(None),
                    Some(n) if n != this.size => {
                        let msg = format!("{n} bytes, expected {} (truncated)", this.size);
                        this.fail(&msg)
                    }
                    // Only an empty blob gets here: size 0, no chunk to check it on.
                    Some(_) => match this.check() {
                        Ok(()) => Poll::Ready(None),
                        Err(msg) => this.fail(&msg),
                    },
                }
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

/// A verification failure surfaces as InvalidData; report it as the corruption it is (retryable).
pub(crate) fn io_to_error(what: &str, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::InvalidData {
        Error::Corrupt {
            what: what.to_string(),
            message: e.to_string(),
        }
    } else {
        Error::invalid(what, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(data: &[u8]) -> Descriptor {
        crate::oci::image::Doc::new("x", data.to_vec()).descriptor()
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
        let e = flipped.last().unwrap().as_ref().unwrap_err().to_string();
        assert!(e.contains("content mismatch"), "{e}");
        let short: Vec<_> = verified(stream(vec![b"hello "]), &d, "t").collect().await;
        let e = short.last().unwrap().as_ref().unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        let long: Vec<_> = verified(stream(vec![b"hello world!"]), &d, "t")
            .collect()
            .await;
        let e = long.last().unwrap().as_ref().unwrap_err().to_string();
        assert!(e.contains("more than the 11 bytes"), "{e}");
    }

    #[tokio::test]
    async fn bad_last_chunk_is_withheld() {
        // A sink that stops after `size` bytes (an HTTP body with Content-Length) must still see
        // the error, so the bytes it took must not include the bad chunk.
        let d = desc(b"hello world");
        let mut s = verified(stream(vec![b"hello ", b"World", b""]), &d, "t");
        assert_eq!(&s.next().await.unwrap().unwrap()[..], b"hello ");
        let e = s.next().await.unwrap().unwrap_err().to_string();
        assert!(e.contains("content mismatch"), "{e}");
        assert!(s.next().await.is_none());
        let empty = desc(b"");
        let ok: Vec<_> = verified(stream(vec![]), &empty, "t").collect().await;
        assert!(ok.is_empty());
        let bad: Vec<_> = verified(stream(vec![]), &d, "t").collect().await;
        let e = bad[0].as_ref().unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
    }
}
