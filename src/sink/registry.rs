//! Pushing to a registry: blobs first (skipped when present, mounted when the registry has them
//! in another repository, uploaded otherwise), then manifests children first, and tags last.
use crate::error::{Error, Result};
use crate::oci::blob::{self, BlobSource, ByteStream, Source};
use crate::oci::image::{Descriptor, Doc, Root};
use crate::oci::reference::RegistryRef;
use crate::registry::error::Failure;
use crate::registry::{Registry, RegistryOptions};
use futures_util::{StreamExt, TryStreamExt};
use oci_client::errors::OciDistributionError;
use oci_client::RegistryOperation;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// What a push did, for the summary line and `--json`.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct PushStats {
    /// Blobs sent.
    pub uploaded: usize,
    /// Bytes of the blobs sent.
    pub uploaded_bytes: u64,
    /// Blobs linked from another repository of the same registry instead of sent.
    pub mounted: usize,
    /// Blobs the target repository had already.
    pub existing: usize,
}

impl PushStats {
    fn add(&mut self, o: &PushStats) {
        self.uploaded += o.uploaded;
        self.uploaded_bytes += o.uploaded_bytes;
        self.mounted += o.mounted;
        self.existing += o.existing;
    }
}

/// Pushes `src` to every target. Blobs and digest-addressed manifests go to each repository
/// first; tags are written only after every repository has everything, so a failure part-way
/// never moves a tag.
pub(crate) async fn push(
    src: &Source,
    targets: &[RegistryRef],
    opts: &RegistryOptions,
) -> Result<PushStats> {
    let mut conns: Vec<(String, Arc<Registry>)> = Vec::new();
    let mut stats = PushStats::default();
    let mut done_repos: Vec<String> = Vec::new();
    for t in targets {
        let reg = match conns.iter().find(|(h, _)| h == &t.registry) {
            Some((_, r)) => r.clone(),
            None => {
                let r = Registry::connect(&t.registry, opts)?;
                conns.push((t.registry.clone(), r.clone()));
                r
            }
        };
        if done_repos.contains(&t.repo_name()) {
            continue;
        }
        done_repos.push(t.repo_name());
        reg.authenticate(t, RegistryOperation::Push).await?;
        stats.add(&push_blobs(&reg, t, src).await?);
        for img in src.root.images() {
            if matches!(src.root, Root::Index { .. }) {
                reg.put_manifest(&t.with_digest(&img.manifest.digest()), &img.manifest)
                    .await?;
            }
        }
        reg.put_manifest(&t.with_digest(&src.root.digest()), src.root.doc())
            .await?;
    }
    for t in targets {
        if let Some(tag) = &t.tag {
            let reg = &conns
                .iter()
                .find(|(h, _)| h == &t.registry)
                .expect("connected")
                .1;
            let tagged = RegistryRef {
                tag: Some(tag.clone()),
                digest: None,
                ..t.clone()
            };
            reg.put_manifest(&tagged, src.root.doc()).await?;
        }
    }
    Ok(stats)
}

async fn push_blobs(reg: &Arc<Registry>, target: &RegistryRef, src: &Source) -> Result<PushStats> {
    let uploaded = AtomicUsize::new(0);
    let uploaded_bytes = AtomicU64::new(0);
    let mounted = AtomicUsize::new(0);
    let existing = AtomicUsize::new(0);
    let blobs = src.root.distributable_blobs()?;
    let from = src.blobs.registry().cloned();
    futures_util::stream::iter(blobs.iter().map(|d| {
        let (uploaded, uploaded_bytes, mounted, existing) =
            (&uploaded, &uploaded_bytes, &mounted, &existing);
        let from = from.as_ref();
        async move {
            if reg.blob_exists(target, &d.digest).await? {
                existing.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            let local = src.blobs.in_memory(&d.digest).is_some();
            if let Some(f) = from.filter(|f| !local && f.same_registry(target)) {
                if reg.mount(target, f, &d.digest).await {
                    mounted.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
            }
            reg.upload(target, d, src.blobs.as_ref()).await?;
            uploaded.fetch_add(1, Ordering::Relaxed);
            uploaded_bytes.fetch_add(d.size, Ordering::Relaxed);
            Ok::<(), Error>(())
        }
    }))
    .buffer_unordered(reg.opts.concurrency.max(1))
    .try_collect::<Vec<()>>()
    .await?;
    Ok(PushStats {
        uploaded: uploaded.into_inner(),
        uploaded_bytes: uploaded_bytes.into_inner(),
        mounted: mounted.into_inner(),
        existing: existing.into_inner(),
    })
}

impl Registry {
    async fn blob_exists(&self, target: &RegistryRef, digest: &str) -> Result<bool> {
        let op = format!("checking blob {digest} in {}", target.repo_name());
        self.retry(&op, || async {
            let res = self
                .oci()
                .await?
                .blob_exists(&target.to_oci(), digest)
                .await;
            let path = format!("/v2/{}/blobs/{digest}", target.repository);
            let ok = if matches!(res, Ok(false)) {
                "404"
            } else {
                "200"
            };
            self.log_http("HEAD", &path, &res, ok);
            res.map_err(|e| self.error(&op, e))
        })
        .await
    }

    async fn upload(
        &self,
        target: &RegistryRef,
        desc: &Descriptor,
        src: &dyn BlobSource,
    ) -> Result<()> {
        let op = format!("uploading blob {} to {}", desc.digest, target.repo_name());
        self.retry(&op, || async {
            // Each attempt restarts from the source: a broken stream is never resumed.
            let body: ByteStream = match src.in_memory(&desc.digest) {
                Some(b) => futures_util::stream::once(async move { Ok(b) }).boxed(),
                None => src.open(desc).await?,
            };
            let body = blob::verified(body, desc, format!("blob {}", desc.digest))
                .map_err(OciDistributionError::IoError);
            let res = self
                .oci()
                .await?
                .push_blob_stream(&target.to_oci(), body, &desc.digest, Some(desc.size))
                .await;
            let path = format!("/v2/{}/blobs/uploads/", target.repository);
            if res.is_ok() {
                self.log_http("POST", &path, &res, "202");
            }
            let put = format!("{path}<session>?digest={}", desc.digest);
            self.log_http(
                if res.is_ok() { "PUT" } else { "POST+PUT" },
                &put,
                &res,
                "201",
            );
            if let Err(e) = &res {
                // Our own verification refused the body: the source's copy is bad, so a source
                // that serves a local copy (the cache) must go back to the origin next time.
                if Failure::of(e).io == Some(std::io::ErrorKind::InvalidData) {
                    src.distrust(&desc.digest);
                }
            }
            res.map(|_| ()).map_err(|e| self.error(&op, e))
        })
        .await
    }

    async fn put_manifest(&self, target: &RegistryRef, doc: &Doc) -> Result<()> {
        let op = format!("pushing manifest {target}");
        let ct: reqwest::header::HeaderValue = doc
            .media_type
            .parse()
            .map_err(|_| Error::invalid("manifest", "media type is not a valid header"))?;
        self.retry(&op, || async {
            let res = self
                .oci()
                .await?
                .push_manifest_raw(&target.to_oci(), doc.bytes.clone(), ct.clone())
                .await;
            let path = format!(
                "/v2/{}/manifests/{}",
                target.repository,
                target.tag_or_digest()
            );
            self.log_http("PUT", &path, &res, "201");
            res.map(|_| ()).map_err(|e| self.error(&op, e))
        })
        .await
    }
}
