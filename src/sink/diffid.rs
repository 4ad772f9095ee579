//! A layer a file sink copies is read whole anyway: decompressing it on the way costs one pass
//! and proves the config's `diff_id` for it, so an image whose config lies about its layers (a
//! hand-edited layout, a damaged `docker save`) is refused instead of exported as it is.
use crate::error::Result;
use crate::oci::blob::{BlobSource, ByteStream, Source};
use crate::oci::digest::Hasher;
use crate::oci::image::{media, Descriptor};
use crate::oci::reference::RegistryRef;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{Stream, StreamExt};
use std::collections::HashMap;
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Layer digest → the diff_id every config of `src` gives it (the first one, if configs
/// disagreed; each is checked against the same bytes). Layers whose position has no diff_id
/// are left out.
pub(crate) fn diff_ids(src: &Source) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for img in src.root.images() {
        let Ok(layers) = img.layers() else { continue };
        let cfg: serde_json::Value = match serde_json::from_slice(&img.config.bytes) {
            Ok(v) => v,
            Err(_) => continue,
        };
        let ids = cfg["rootfs"]["diff_ids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (l, id) in layers.iter().zip(ids) {
            if let Some(id) = id.as_str() {
                m.entry(l.digest.clone()).or_insert_with(|| id.to_string());
            }
        }
    }
    m
}

/// Wraps the (already digest-verified) stream of layer `d` so it fails unless its uncompressed
/// bytes hash to `diff_id`. Uncompressed layers are their own diff_id (checked as the
/// digest); other compressions are passed through unchecked.
pub(crate) fn checked(inner: ByteStream, d: &Descriptor, diff_id: &str) -> ByteStream {
    let gzip = d.media_type == media::OCI_LAYER_GZIP || d.media_type == media::DOCKER_LAYER_GZIP;
    if !gzip {
        if (d.media_type == media::OCI_LAYER_TAR || d.media_type == media::DOCKER_LAYER_TAR)
            && d.digest != diff_id
        {
            let e = mismatch(&d.digest, &d.digest, diff_id);
            return futures_util::stream::once(async move { Err(e) }).boxed();
        }
        return inner;
    }
    DiffIdStream {
        inner,
        decoder: Some(flate2::write::MultiGzDecoder::new(Sink(Hasher::new()))),
        seen: 0,
        size: d.size,
        digest: d.digest.clone(),
        diff_id: diff_id.to_string(),
        done: false,
    }
    .boxed()
}

/// A source whose base layers are diff_id-checked as they are read: a push that copies a layer
/// (from a local archive or layout, or from another registry) reads it whole anyway, so a config
/// that lies about its layers fails the push before any manifest names them and a tag moves.
/// Layers this build made, and everything mounted, are not read and so not checked.
pub(crate) struct Checking<'a> {
    inner: &'a dyn BlobSource,
    ids: HashMap<String, String>,
}

impl<'a> Checking<'a> {
    /// Checks `src`'s blobs against the diff_ids its configs give.
    pub(crate) fn new(src: &'a Source) -> Self {
        Checking {
            inner: src.blobs.as_ref(),
            ids: diff_ids(src),
        }
    }
}

impl BlobSource for Checking<'_> {
    fn open<'b>(&'b self, desc: &'b Descriptor) -> BoxFuture<'b, Result<ByteStream>> {
        Box::pin(async move {
            let s = self.inner.open(desc).await?;
            Ok(match self.ids.get(&desc.digest) {
                Some(id) if !self.inner.local(&desc.digest) => checked(s, desc, id),
                _ => s,
            })
        })
    }
    fn registry(&self) -> Option<&RegistryRef> {
        self.inner.registry()
    }
    fn registry_of(&self, digest: &str) -> Option<&RegistryRef> {
        self.inner.registry_of(digest)
    }
    fn in_memory(&self, digest: &str) -> Option<Bytes> {
        self.inner.in_memory(digest)
    }
    fn local(&self, digest: &str) -> bool {
        self.inner.local(digest)
    }
    fn distrust(&self, digest: &str) {
        self.inner.distrust(digest)
    }
}

/// Collects the decompressed bytes' hash.
struct Sink(Hasher);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct DiffIdStream {
    inner: ByteStream,
    decoder: Option<flate2::write::MultiGzDecoder<Sink>>,
    seen: u64,
    size: u64,
    digest: String,
    diff_id: String,
    done: bool,
}

fn mismatch(digest: &str, got: &str, want: &str) -> std::io::Error {
    // Not InvalidData: fetching the layer again cannot help when its config disagrees with it.
    std::io::Error::other(format!(
        "layer {digest} decompresses to {got}, but the image config gives its diff_id as {want} — the image is inconsistent; save or export it again"
    ))
}

impl DiffIdStream {
    /// Feeds one chunk; at the last byte (the descriptor's size) compares the diff_id, so the
    /// verdict replaces the last chunk rather than trailing after it.
    fn feed(&mut self, b: &[u8]) -> std::io::Result<()> {
        let Some(dec) = self.decoder.as_mut() else {
            return Ok(());
        };
        dec.write_all(b).map_err(|e| {
            std::io::Error::other(format!("layer {} is not valid gzip ({e})", self.digest))
        })?;
        self.seen += b.len() as u64;
        if self.seen >= self.size {
            self.finish()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        let Some(dec) = self.decoder.take() else {
            return Ok(());
        };
        let Sink(h) = dec.finish().map_err(|e| {
            std::io::Error::other(format!("layer {} is not valid gzip ({e})", self.digest))
        })?;
        let got = h.finish();
        if got != self.diff_id {
            return Err(mismatch(&self.digest, &got, &self.diff_id));
        }
        Ok(())
    }
}

impl Stream for DiffIdStream {
    type Item = std::io::Result<Bytes>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(b))) => match this.feed(&b) {
                Ok(()) => Poll::Ready(Some(Ok(b))),
                Err(e) => {
                    this.done = true;
                    Poll::Ready(Some(Err(e)))
                }
            },
            Poll::Ready(None) => {
                this.done = true;
                match this.finish() {
                    Ok(()) => Poll::Ready(None),
                    Err(e) => Poll::Ready(Some(Err(e))),
                }
            }
            Poll::Ready(Some(Err(e))) => {
                this.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    async fn run(blob: Vec<u8>, diff_id: &str) -> std::io::Result<Vec<u8>> {
        let d = Descriptor {
            media_type: media::OCI_LAYER_GZIP.into(),
            ..crate::oci::image::Doc::new("x", blob.clone()).descriptor()
        };
        let chunks: Vec<std::io::Result<Bytes>> = blob
            .chunks(7)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let mut s = checked(futures_util::stream::iter(chunks).boxed(), &d, diff_id);
        let mut out = Vec::new();
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn a_layer_matching_its_diff_id_passes_unchanged() {
        let raw = b"a tar, as far as this test cares".repeat(50);
        let blob = gz(&raw);
        let out = run(blob.clone(), &crate::oci::digest::sha256(&raw))
            .await
            .unwrap();
        assert_eq!(out, blob);
    }

    #[tokio::test]
    async fn a_wrong_diff_id_fails_on_the_last_chunk() {
        let raw = b"layer".repeat(100);
        let wrong = crate::oci::digest::sha256(b"another layer");
        let e = run(gz(&raw), &wrong).await.unwrap_err().to_string();
        assert!(e.contains(&wrong) && e.contains("diff_id"), "{e}");
        assert!(e.contains(&crate::oci::digest::sha256(&raw)), "{e}");
    }

    #[tokio::test]
    async fn a_layer_that_is_not_gzip_is_named() {
        let e = run(b"plain bytes, no gzip header".to_vec(), "sha256:00")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("not valid gzip"), "{e}");
    }
}
