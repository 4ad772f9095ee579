//! Pulling from a registry: the manifest or index and the configs are read at once; layers stay
//! in the registry until a sink asks for them (`RegistryBlobs`, which restarts a download cut mid-body).
use crate::error::Result;
use crate::oci::blob::{self, BlobSource, ByteStream, Source};
use crate::oci::image::{media, Descriptor, Doc, Image, Root};
use crate::oci::reference::RegistryRef;
use crate::registry::failure::{root_cause, transport_kind};
use crate::registry::{retry, scopes_for, Action, Registry};
use futures_util::future::BoxFuture;
use futures_util::{stream, StreamExt, TryStreamExt};
use std::sync::Arc;

/// Reads an image or index and its configs; layers stay in the registry until a sink asks.
pub(crate) async fn pull(reg: &Arc<Registry>, r: &RegistryRef) -> Result<Source> {
    reg.authenticate(r, Action::Pull).await?;
    let scopes = scopes_for(r, Action::Pull);
    let doc = reg.manifest_get(r, &scopes).await?;
    let blobs = Arc::new(RegistryBlobs {
        registry: reg.clone(),
        repo: r.clone(),
    });
    let jobs = reg.opts.concurrency.max(1);
    let root = if media::is_index(&doc.media_type) {
        let v = doc.json(&format!("index {r}"))?;
        let mut entries = Vec::new();
        for (i, e) in v["manifests"].as_array().into_iter().flatten().enumerate() {
            let d = Descriptor::from_json(e, &format!("index {r} manifests[{i}]"))?;
            if d.is_attestation() || !media::is_manifest(&d.media_type) {
                continue;
            }
            entries.push(d);
        }
        // The platform manifests, then their configs, each step in parallel: two round trips
        // whatever the number of platforms (within --jobs).
        let scopes = &scopes;
        let children: Vec<Doc> = stream::iter(entries.iter())
            .map(|d| {
                let child = r.with_digest(&d.digest);
                async move { reg.manifest_get(&child, scopes).await }
            })
            .buffered(jobs)
            .try_collect()
            .await?;
        let blobs_ref = blobs.as_ref();
        let images = stream::iter(children.into_iter().zip(entries))
            .map(|(child, d)| image_with_config(reg, child, Some(d), blobs_ref, r))
            .buffered(jobs)
            .try_collect()
            .await?;
        Root::Index { index: doc, images }
    } else {
        Root::Image(image_with_config(reg, doc, None, blobs.as_ref(), r).await?)
    };
    Ok(Source {
        root,
        blobs,
        name: r.to_string(),
    })
}

async fn image_with_config(
    reg: &Registry,
    manifest: Doc,
    entry: Option<Descriptor>,
    blobs: &dyn BlobSource,
    r: &RegistryRef,
) -> Result<Image> {
    let tmp = Image {
        manifest,
        config: Doc::new("", Vec::new()),
        index_entry: entry,
    };
    let cd = tmp.config_descriptor()?;
    let what = format!("config {} of {r}", cd.digest);
    // A config that arrives corrupted is fetched again, like any other transient failure.
    let op = format!("fetching config {} of {r}", cd.digest);
    let bytes = reg.retry(&op, || blob::read_all(blobs, &cd, &what)).await?;
    Ok(Image {
        config: Doc::new(cd.media_type, bytes),
        ..tmp
    })
}

/// Blobs of one repository, fetched on demand.
struct RegistryBlobs {
    registry: Arc<Registry>,
    repo: RegistryRef,
}

impl BlobSource for RegistryBlobs {
    fn open<'a>(&'a self, desc: &'a Descriptor) -> BoxFuture<'a, Result<ByteStream>> {
        Box::pin(async move {
            let reg = &self.registry;
            let op = format!(
                "downloading blob {} from {}",
                desc.digest,
                self.repo.repo_name()
            );
            let first = reg.blob_get(&self.repo, desc, &op).await?;
            Ok(restarting(
                reg.clone(),
                self.repo.clone(),
                desc.clone(),
                op,
                first,
            ))
        })
    }
    fn registry(&self) -> Option<&RegistryRef> {
        Some(&self.repo)
    }
}

/// A download that survives a connection cut mid-body: the blob is fetched again from its first
/// byte (never resumed with a range) and what was already passed on is skipped. Consumers verify
/// the whole stream against the digest, so bytes that differ between attempts are still caught.
fn restarting(
    reg: Arc<Registry>,
    repo: RegistryRef,
    desc: Descriptor,
    op: String,
    first: ByteStream,
) -> ByteStream {
    struct St {
        reg: Arc<Registry>,
        repo: RegistryRef,
        desc: Descriptor,
        op: String,
        inner: Option<ByteStream>,
        delivered: u64,
        skip: u64,
        restarts: u32,
        done: bool,
    }
    fn fail(st: &St, kind: std::io::ErrorKind, msg: String) -> std::io::Error {
        std::io::Error::new(kind, format!("{}: {}: {msg}", st.reg.host, st.op))
    }
    let st = St {
        reg,
        repo,
        desc,
        op,
        inner: Some(first),
        delivered: 0,
        skip: 0,
        restarts: 0,
        done: false,
    };
    futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            let Some(inner) = st.inner.as_mut() else {
                match st.reg.blob_get(&st.repo, &st.desc, &st.op).await {
                    Ok(s) => {
                        st.inner = Some(s);
                        st.skip = st.delivered;
                        continue;
                    }
                    Err(e) => {
                        st.done = true;
                        // Already retried: a reader of this stream should not try again.
                        let e = std::io::Error::other(e.to_string());
                        return Some((Err(e), st));
                    }
                }
            };
            match inner.next().await {
                Some(Ok(mut b)) => {
                    if st.skip > 0 {
                        let n = st.skip.min(b.len() as u64);
                        b = b.slice(n as usize..);
                        st.skip -= n;
                        if b.is_empty() {
                            continue;
                        }
                    }
                    st.delivered += b.len() as u64;
                    return Some((Ok(b), st));
                }
                None if st.skip > 0 => {
                    st.done = true;
                    let e = fail(
                        &st,
                        std::io::ErrorKind::UnexpectedEof,
                        "the blob came back shorter on a retry".into(),
                    );
                    return Some((Err(e), st));
                }
                None => return None,
                // Once every byte is out, a failure is about the content (the reader checks the
                // digest at the end), and fetching again cannot take back what was passed on.
                Some(Err(e))
                    if st.restarts < st.reg.opts.retries && st.delivered < st.desc.size =>
                {
                    let wait = retry::backoff(st.reg.opts.backoff, st.restarts);
                    st.restarts += 1;
                    tracing::warn!(
                        "{}: cut after {} bytes ({}); fetching again from the start, retry {}/{}",
                        st.op,
                        st.delivered,
                        root_cause(&e),
                        st.restarts,
                        st.reg.opts.retries
                    );
                    tokio::time::sleep(wait).await;
                    st.inner = None;
                }
                Some(Err(e)) => {
                    st.done = true;
                    let msg = format!(
                        "failed after {} of {} bytes: {} ({} retries used)",
                        st.delivered,
                        st.desc.size,
                        root_cause(&e),
                        st.restarts
                    );
                    // Every byte arrived and they were wrong: corruption, which readers retry
                    // from the source (see blob::io_to_error). Otherwise the transport's kind.
                    let kind = if st.delivered >= st.desc.size {
                        std::io::ErrorKind::InvalidData
                    } else {
                        transport_kind(&e).unwrap_or(std::io::ErrorKind::Other)
                    };
                    return Some((Err(fail(&st, kind, msg)), st));
                }
            }
        }
    })
    .boxed()
}
