//! Pushing to a registry: blobs first (skipped when present, mounted when the registry has them
//! in another repository, uploaded otherwise), then manifests children first, and tags last.
use crate::error::{Error, Result};
use crate::oci::blob::Source;
use crate::oci::image::media;
use crate::oci::image::{Doc, Root};
use crate::oci::reference::RegistryRef;
use crate::registry::error::ErrorCode;
use crate::registry::{mount_scopes, scopes_for, Mount, Registry, RegistryOptions};
use futures_util::{StreamExt, TryStreamExt};
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

/// Pushes `src` to every target. Per repository: nothing when the image is there already (found
/// by its digest); else blobs (mounted without asking first when the base is in the same
/// registry, uploaded otherwise), then the platform manifests in parallel. Tags come last, each
/// moved only if it does not already point at the image, and only after every repository has
/// everything, so a failure part-way never moves a tag. The index is PUT by tag (the registry
/// keeps it by digest too), or by digest for a target without one.
pub(crate) async fn push(
    src: &Source,
    targets: &[RegistryRef],
    opts: &RegistryOptions,
) -> Result<PushStats> {
    let mut conns: Vec<(String, Arc<Registry>)> = Vec::new();
    let mut stats = PushStats::default();
    let mut done_repos: Vec<String> = Vec::new();
    let root_digest = src.root.digest();
    // Every blob a manifest names is put or found by this push unless a layer is foreign.
    let settles = !src
        .root
        .blobs()?
        .iter()
        .any(|d| media::is_foreign(&d.media_type));
    let mut tags: Vec<(Arc<Registry>, RegistryRef, Vec<String>)> = Vec::new();
    for t in targets {
        let reg = match conns.iter().find(|(h, _)| h == &t.registry) {
            Some((_, r)) => r.clone(),
            None => {
                let r = Registry::connect(&t.registry, opts)?;
                conns.push((t.registry.clone(), r.clone()));
                r
            }
        };
        let scopes = push_scopes(src, t)?;
        let tagged = t.tag.as_ref().map(|tag| RegistryRef {
            tag: Some(tag.clone()),
            digest: None,
            ..t.clone()
        });
        if done_repos.contains(&t.repo_name()) {
            tags.extend(tagged.map(|r| (reg.clone(), r, scopes)));
            continue;
        }
        done_repos.push(t.repo_name());
        reg.authorization(&scopes).await?;
        // An unchanged rebuild: the tag points at the image already, or the image is there
        // under its digest. Both asked at once: one round trip either way.
        let by_digest = t.with_digest(&root_digest);
        let (tag_now, present) = tokio::join!(
            async {
                match &tagged {
                    Some(r) => reg.manifest_digest(r, &scopes).await,
                    None => Ok(None),
                }
            },
            reg.manifest_digest(&by_digest, &scopes)
        );
        let present = present?.is_some();
        let tag_done = tag_now?.as_deref() == Some(root_digest.as_str());
        if present {
            stats.existing += src.root.blobs()?.len();
        } else {
            stats.add(&push_blobs(&reg, t, src, &scopes).await?);
            if matches!(src.root, Root::Index { .. }) {
                futures_util::stream::iter(src.root.images())
                    .map(|img| {
                        let r = t.with_digest(&img.manifest.digest());
                        let (reg, scopes) = (&reg, &scopes);
                        async move { put_manifest(reg, &r, &img.manifest, scopes, settles).await }
                    })
                    .buffer_unordered(reg.opts.concurrency.max(1))
                    .try_collect::<Vec<()>>()
                    .await?;
            }
            if tagged.is_none() {
                put_manifest(&reg, &by_digest, src.root.doc(), &scopes, settles).await?;
            }
        }
        if let Some(r) = tagged.filter(|_| !tag_done) {
            tags.push((reg.clone(), r, scopes));
        }
    }
    // Every repository holds everything now: move the tags, one after another, so that a tag
    // refused for good leaves the ones after it where they were.
    for (reg, r, scopes) in &tags {
        put_manifest(reg, r, src.root.doc(), scopes, settles).await?;
    }
    Ok(stats)
}

/// The token scopes of a push to `t`: push on the target, and pull on every repository of the
/// same registry that a blob can be mounted from (one scope set, so one token).
fn push_scopes(src: &Source, t: &RegistryRef) -> Result<Vec<String>> {
    let mut froms: Vec<&RegistryRef> = Vec::new();
    if let Some(f) = src.blobs.registry() {
        froms.push(f);
    }
    for d in src.root.distributable_blobs()? {
        if let Some(f) = src.blobs.registry_of(&d.digest) {
            if !froms.iter().any(|g| g.repo_name() == f.repo_name()) {
                froms.push(f);
            }
        }
    }
    let mut froms = froms.into_iter().filter(|f| f.same_registry(t));
    let Some(first) = froms.next() else {
        return Ok(scopes_for(t, RegistryOperation::Push));
    };
    let mut scopes = mount_scopes(t, first);
    for f in froms {
        let s = format!("repository:{}:pull", f.repository);
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    Ok(scopes)
}

/// How often a manifest is PUT again while the registry still says a blob or child manifest
/// it names is unknown, after this push put or found every one of them.
const SETTLE_TRIES: u32 = 4;

/// PUTs a manifest whose blobs and child manifests are all in the repository (`settles`: this
/// push put or found each one; no foreign layer). Such a manifest answered `MANIFEST_BLOB_UNKNOWN`
/// (or `BLOB_UNKNOWN`) is not refused for good: CNCF distribution's filesystem storage rewrites
/// a repository's link file in place each time a blob or manifest is put or mounted, and another
/// push of the same image into the same repository reads as "unknown" for that instant (seen
/// with four builds pushing one base's image to one repository at once). So it is asked again,
/// a few times with the usual backoff; anywhere else those codes stay final.
async fn put_manifest(
    reg: &Registry,
    target: &RegistryRef,
    doc: &Doc,
    scopes: &[String],
    settles: bool,
) -> Result<()> {
    let mut attempt = 0;
    loop {
        match reg.put_manifest(target, doc, scopes).await {
            Err(e) if settles && attempt < SETTLE_TRIES && names_unknown(&e) => {
                let wait = crate::registry::retry::backoff(reg.opts.backoff, attempt);
                attempt += 1;
                tracing::warn!(
                    "{e} — every blob it names is in the repository, so the registry is still \
                     settling a concurrent write; retry {attempt}/{SETTLE_TRIES} in {wait:?}"
                );
                tokio::time::sleep(wait).await;
            }
            r => return r,
        }
    }
}

/// The registry answered that a manifest names a blob or manifest it does not hold.
fn names_unknown(e: &Error) -> bool {
    matches!(
        e,
        Error::Registry { cause, .. }
            if matches!(
                cause.code,
                Some(ErrorCode::ManifestBlobUnknown | ErrorCode::BlobUnknown)
            )
    )
}

async fn push_blobs(
    reg: &Arc<Registry>,
    target: &RegistryRef,
    src: &Source,
    scopes: &[String],
) -> Result<PushStats> {
    let uploaded = AtomicUsize::new(0);
    let uploaded_bytes = AtomicU64::new(0);
    let mounted = AtomicUsize::new(0);
    let existing = AtomicUsize::new(0);
    let mut blobs = src.root.distributable_blobs()?;
    // Uploads (two requests each where the registry declines a single-request upload) start
    // first, so that the one-request mounts and HEADs fill in behind them within --jobs.
    blobs.sort_by_key(|d| !src.blobs.local(&d.digest));
    futures_util::stream::iter(blobs.iter().map(|d| {
        let (uploaded, uploaded_bytes, mounted, existing) =
            (&uploaded, &uploaded_bytes, &mounted, &existing);
        let from = src.blobs.registry_of(&d.digest);
        async move {
            // Blobs made here (the config layer, in memory or spooled, and the configs) are
            // nowhere to mount from: upload them straight away.
            let local = src.blobs.local(&d.digest);
            let mut session = None;
            if let Some(f) = from.filter(|f| !local && f.same_registry(target)) {
                // No HEAD first: a mount answers 201 for a blob the target has already.
                match reg.mount(target, f, &d.digest, scopes).await {
                    Mount::Mounted => {
                        mounted.fetch_add(1, Ordering::Relaxed);
                        return Ok(());
                    }
                    Mount::Session(u) => session = Some(u),
                    Mount::Declined => {}
                }
            } else if !local && reg.blob_exists(target, &d.digest, scopes).await? {
                // A blob we would have to fetch first: worth one HEAD to skip the copy.
                existing.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            reg.upload(target, d, src.blobs.as_ref(), scopes, session)
                .await?;
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
