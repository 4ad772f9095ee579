//! Pulling from a registry: the manifest or index and the configs are read at once; layers stay
//! in the registry until a sink asks for them (`RegistryBlobs`, which restarts a download cut mid-body).
use crate::error::{Error, Result};
use crate::oci::blob::{self, BlobSource, ByteStream, Source};
use crate::oci::digest;
use crate::oci::image::{check_manifest, media, Descriptor, Doc, Image, Root};
use crate::oci::reference::RegistryRef;
use crate::registry::error::{root_cause, transport_kind};
use crate::registry::{retry, scopes_for, Body, Registry};
use futures_util::future::BoxFuture;
use futures_util::{stream, StreamExt, TryStreamExt};
use oci_client::errors::OciDistributionError;
use oci_client::RegistryOperation;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT};
use reqwest::{Method, StatusCode};
use std::sync::Arc;

impl Registry {
    /// Fetches a manifest or index as raw bytes; a digest-pinned reference must match its pin.
    pub(crate) async fn manifest(&self, r: &RegistryRef) -> Result<Doc> {
        let op = format!("fetching manifest {r}");
        let scopes = scopes_for(r, RegistryOperation::Pull);
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_str(&media::ACCEPTED.join(", ")).expect("media types are ASCII"),
        );
        let path = format!("/v2/{}/manifests/{}", r.repository, r.tag_or_digest());
        let bytes = self
            .retry(&op, || async {
                let res = self
                    .send(
                        &op,
                        &scopes,
                        Method::GET,
                        &path,
                        headers.clone(),
                        Body::Empty,
                    )
                    .await?;
                if res.status() != StatusCode::OK {
                    return Err(self.status_error(&op, res).await);
                }
                let said = res
                    .headers()
                    .get("Docker-Content-Digest")
                    .and_then(|v| v.to_str().ok())
                    .filter(|d| d.starts_with("sha256:"))
                    .map(str::to_string);
                let bytes = res
                    .bytes()
                    .await
                    .map_err(|e| self.error(&op, OciDistributionError::RequestError(e)))?;
                // A manifest fetched by tag has no pin, but the registry says its digest: a
                // copy corrupted on the way is fetched again.
                match said {
                    Some(d) if d != digest::sha256(&bytes) => Err(self.error(
                        &op,
                        OciDistributionError::DigestError(
                            oci_client::errors::DigestError::VerificationError {
                                expected: d,
                                actual: digest::sha256(&bytes),
                            },
                        ),
                    )),
                    _ => Ok(bytes),
                }
            })
            .await?;
        if let Some(pin) = &r.digest {
            let got = digest::sha256(&bytes);
            if &got != pin {
                return Err(Error::DigestMismatch {
                    what: format!("manifest {r}"),
                    expected: pin.clone(),
                    actual: got,
                });
            }
        }
        let mt = check_manifest(&bytes, None, &format!("manifest {r}"))?;
        Ok(Doc::new(mt, bytes))
    }

    /// Reads an image or index and its configs; layers stay in the registry until a sink asks.
    pub async fn pull(self: &Arc<Self>, r: &RegistryRef) -> Result<Source> {
        self.authenticate(r, RegistryOperation::Pull).await?;
        let doc = self.manifest(r).await?;
        let blobs = Arc::new(RegistryBlobs {
            registry: self.clone(),
            repo: r.clone(),
        });
        let jobs = self.opts.concurrency.max(1);
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
            // The platform manifests, then their configs, each step in parallel: two round
            // trips whatever the number of platforms (within --jobs).
            let children: Vec<Doc> = stream::iter(entries.iter())
                .map(|d| self.manifest_owned(r.with_digest(&d.digest)))
                .buffered(jobs)
                .try_collect()
                .await?;
            let blobs_ref = blobs.as_ref();
            let images = stream::iter(children.into_iter().zip(entries))
                .map(|(child, d)| image_with_config(self, child, Some(d), blobs_ref, r))
                .buffered(jobs)
                .try_collect()
                .await?;
            Root::Index { index: doc, images }
        } else {
            Root::Image(image_with_config(self, doc, None, blobs.as_ref(), r).await?)
        };
        Ok(Source {
            root,
            blobs,
            name: r.to_string(),
        })
    }

    async fn manifest_owned(&self, r: RegistryRef) -> Result<Doc> {
        self.manifest(&r).await
    }

    async fn open_blob(
        &self,
        repo: &RegistryRef,
        desc: &Descriptor,
        op: &str,
    ) -> Result<ByteStream> {
        let scopes = scopes_for(repo, RegistryOperation::Pull);
        let path = format!("/v2/{}/blobs/{}", repo.repository, desc.digest);
        self.retry(op, || async {
            let res = self
                .send(
                    op,
                    &scopes,
                    Method::GET,
                    &path,
                    HeaderMap::new(),
                    Body::Empty,
                )
                .await?;
            // Registries send blob downloads to object storage on another host.
            let res = self.follow(op, &scopes, res).await?;
            if res.status() != StatusCode::OK {
                return Err(self.status_error(op, res).await);
            }
            Ok(res.bytes_stream().map_err(std::io::Error::other).boxed())
        })
        .await
    }
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
    let what = format!("config of {r}");
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
            let first = reg.open_blob(&self.repo, desc, &op).await?;
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
                match st.reg.open_blob(&st.repo, &st.desc, &st.op).await {
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
                // Once every byte is out, a failure is about the content (oci-client checks the
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
