//! Copying one blob into a file sink, verified, with the one rule for a copy that arrives
//! corrupted: drop what was written, tell the source not to trust its copy, fetch it again.
use crate::error::{Error, Result};
use crate::oci::blob::{self, ByteStream, Source};
use crate::oci::image::Descriptor;
use futures_util::future::BoxFuture;

/// How often a blob that arrived corrupted is fetched again before the export fails.
const CORRUPT_RETRIES: u32 = 2;

/// Whether a failed copy is worth fetching again: only when the bytes did not match their
/// descriptor (a flaky network or a damaged cache copy) and the retries are not used up. A
/// refused digest algorithm, a missing file or a full disk would fail the same way again.
fn should_refetch(e: &Error, attempts: u32) -> bool {
    is_corrupt(e) && attempts < CORRUPT_RETRIES
}

/// Whether the bytes did not match their descriptor: a copy written so far must be undone.
pub(crate) fn is_corrupt(e: &Error) -> bool {
    matches!(e, Error::Corrupt { .. } | Error::DigestMismatch { .. })
}

/// Streams blob `d` of `src`, verified against `d`, into `target` through `write`. On a
/// corrupted copy ([`is_corrupt`]) `write` must leave `target` as it was before the call (the archive writer cuts
/// the tar back; a file writer's temp file is gone), and the blob is fetched again.
pub(crate) async fn copy_blob<W>(
    src: &Source,
    d: &Descriptor,
    target: &mut W,
    mut write: impl for<'a> FnMut(&'a mut W, ByteStream) -> BoxFuture<'a, Result<()>>,
) -> Result<()> {
    let mut attempts = 0;
    // A base layer is read whole here anyway: check its diff_id on the way (the layer this
    // build made is right by construction).
    let diff_id = if src.blobs.local(&d.digest) {
        None
    } else {
        crate::sink::diffid::diff_ids(src).remove(&d.digest)
    };
    loop {
        let mut s = blob::verified(
            src.blobs.open(d).await?,
            d,
            format!("blob {} from {}", d.digest, src.name),
        );
        if let Some(id) = &diff_id {
            s = crate::sink::diffid::checked(s, d, id);
        }
        match write(target, s).await {
            Ok(()) => return Ok(()),
            Err(e) if should_refetch(&e, attempts) => {
                attempts += 1;
                tracing::warn!("{e}; fetching it again ({attempts}/{CORRUPT_RETRIES})");
                src.blobs.distrust(&d.digest);
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::blob::BlobSource;
    use crate::oci::image::{Doc, Root};
    use bytes::Bytes;
    use futures_util::StreamExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Serves `bad` for the first `bad_opens` opens, then `good`; counts distrust calls.
    struct Flaky {
        good: &'static [u8],
        bad: &'static [u8],
        bad_opens: usize,
        opens: AtomicUsize,
        distrusted: AtomicUsize,
    }
    impl BlobSource for Flaky {
        fn open<'a>(&'a self, _d: &'a Descriptor) -> BoxFuture<'a, Result<ByteStream>> {
            let n = self.opens.fetch_add(1, Ordering::SeqCst);
            let b = if n < self.bad_opens {
                self.bad
            } else {
                self.good
            };
            Box::pin(async move {
                Ok(futures_util::stream::once(async move { Ok(Bytes::from_static(b)) }).boxed())
            })
        }
        fn distrust(&self, _digest: &str) {
            self.distrusted.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn source(bad_opens: usize) -> (Source, Arc<Flaky>, Descriptor) {
        let flaky = Arc::new(Flaky {
            good: b"layer bytes",
            bad: b"layer bytez",
            bad_opens,
            opens: AtomicUsize::new(0),
            distrusted: AtomicUsize::new(0),
        });
        let doc = Doc::new("x", b"layer bytes".to_vec());
        let d = doc.descriptor();
        let src = Source {
            root: Root::Image(crate::oci::image::Image {
                manifest: doc.clone(),
                config: doc,
                index_entry: None,
            }),
            blobs: flaky.clone(),
            name: "test".into(),
        };
        (src, flaky, d)
    }

    /// Collects into a Vec, cutting it back on failure as the archive writer does.
    async fn copy(src: &Source, d: &Descriptor) -> (Result<()>, Vec<u8>) {
        let mut out = Vec::new();
        let r = copy_blob(src, d, &mut out, |out, mut s| {
            Box::pin(async move {
                let start = out.len();
                while let Some(c) = s.next().await {
                    match c {
                        Ok(c) => out.extend_from_slice(&c),
                        Err(e) => {
                            out.truncate(start);
                            return Err(blob::io_to_error("test", e));
                        }
                    }
                }
                Ok(())
            })
        })
        .await;
        (r, out)
    }

    #[tokio::test]
    async fn a_corrupt_copy_is_distrusted_and_fetched_again() {
        let (src, flaky, d) = source(2);
        let (r, out) = copy(&src, &d).await;
        r.unwrap();
        assert_eq!(out, b"layer bytes");
        assert_eq!(flaky.opens.load(Ordering::SeqCst), 3);
        assert_eq!(flaky.distrusted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn refetching_stops_after_the_retries() {
        let (src, flaky, d) = source(usize::MAX);
        let (r, out) = copy(&src, &d).await;
        assert!(matches!(r, Err(Error::Corrupt { .. })));
        assert!(out.is_empty());
        assert_eq!(
            flaky.opens.load(Ordering::SeqCst),
            1 + CORRUPT_RETRIES as usize
        );
    }

    #[test]
    fn only_content_mismatches_are_refetched() {
        let corrupt = Error::Corrupt {
            what: "b".into(),
            message: "content mismatch".into(),
        };
        assert!(should_refetch(&corrupt, 0));
        assert!(!should_refetch(&corrupt, CORRUPT_RETRIES));
        let sha512 = format!("sha512:{}", "a".repeat(128));
        let refused = crate::source::store::blob_path(&sha512).unwrap_err();
        assert!(!should_refetch(&refused, 0), "{refused}");
        let io = Error::io("writing", "/x", std::io::Error::other("disk full"));
        assert!(!should_refetch(&io, 0));
    }
}
