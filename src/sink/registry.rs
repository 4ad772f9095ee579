//! Pushing to a registry: blobs first (skipped when present, mounted when the registry has them
//! in another repository, uploaded otherwise), then manifests children first, and tags last.
use crate::error::Result;
use crate::oci::blob::Source;
use crate::oci::image::media;
use crate::oci::image::Descriptor;
use crate::oci::image::Root;
use crate::oci::reference::RegistryRef;
use crate::registry::settle::put_manifest;
use crate::registry::{mount_scopes, scopes_for, Action, Mount, Registry, RegistryOptions};
use futures_util::{StreamExt, TryStreamExt};
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
    // Repositories done, with the scopes their token was granted for.
    let mut done_repos: Vec<(String, Vec<String>)> = Vec::new();
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
        // Where each blob not made here might be mounted from; the token must let us pull
        // from every one of those repositories.
        let fallback = base_repository(src);
        let descs = src.root.distributable_blobs()?;
        let mut remote: Vec<Remote> = descs
            .iter()
            .filter(|d| !src.blobs.local(&d.digest))
            .map(|d| {
                // A rebase reads blobs from two repositories: each blob's own.
                let base = src.blobs.registry_of(&d.digest).or(fallback.as_ref());
                Remote {
                    desc: d,
                    candidates: mount_candidates(&d.digest, t, base, opts),
                    base: base.cloned(),
                }
            })
            .collect();
        let mut scopes = scopes_for(t, Action::Push);
        for from in remote.iter().flat_map(|r| &r.candidates) {
            for s in mount_scopes(t, from) {
                if !scopes.contains(&s) {
                    scopes.push(s);
                }
            }
        }
        let tagged = t.tag.as_ref().map(|tag| RegistryRef {
            tag: Some(tag.clone()),
            digest: None,
            ..t.clone()
        });
        if let Some((_, granted)) = done_repos.iter().find(|(n, _)| n == &t.repo_name()) {
            tags.extend(tagged.map(|r| (reg.clone(), r, granted.clone())));
            continue;
        }
        // A token server may refuse a token for a repository the record or a hint names that
        // this login cannot read: then mount only from the base's own repository.
        let narrow = push_scopes(src, t)?;
        let scopes = match reg.authorization(Action::Push, &scopes).await {
            Err(e) if scopes.len() > narrow.len() => {
                tracing::debug!("{e}; mounting only from the base's own repository");
                reg.authorization(Action::Push, &narrow).await?;
                for r in &mut remote {
                    let own = r.base.clone().filter(|b| b.same_registry(t));
                    r.candidates
                        .retain(|c| own.as_ref().is_some_and(|o| o.repository == c.repository));
                }
                narrow
            }
            res => res.map(|_| scopes)?,
        };
        done_repos.push((t.repo_name(), scopes.clone()));
        // An unchanged rebuild: the tag points at the image already, or the image is there
        // under its digest. Both asked at once: one round trip either way.
        let by_digest = t.with_digest(&root_digest);
        let (tag_now, present) = tokio::join!(
            async {
                match &tagged {
                    Some(r) => reg.manifest_head(Action::Push, r, &scopes).await,
                    None => Ok(None),
                }
            },
            reg.manifest_head(Action::Push, &by_digest, &scopes)
        );
        let present = present?.is_some();
        let tag_now = tag_now?;
        let tag_done = tag_now.as_deref() == Some(root_digest.as_str());
        if present {
            stats.existing += src.root.blobs()?.len();
        } else {
            let exists = tag_now.is_some();
            stats.add(&push_blobs(&reg, t, src, &remote, exists, &scopes).await?);
            if matches!(src.root, Root::Index { .. }) {
                futures_util::stream::iter(src.root.images())
                    .map(|img| {
                        let r = t.with_digest(&img.manifest.digest());
                        let (reg, scopes) = (&reg, &scopes);
                        async move { put_manifest(reg, &r, &img.manifest, scopes, settles).await }
                    })
                    .buffer_unordered(reg.opts.concurrency.max(1))
                    .try_collect::<Vec<_>>()
                    .await?;
            }
            if tagged.is_none() {
                put_manifest(&reg, &by_digest, src.root.doc(), &scopes, settles).await?;
            }
        }
        // Every blob of the image is in this repository now: a later push can mount from it.
        if let Some(l) = &opts.locations {
            for d in &descs {
                l.learn(&d.digest, t);
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

/// At most this many mounts are tried per blob before it is copied: each refusal is a round
/// trip.
const MAX_MOUNT_TRIES: usize = 3;

/// Where the base's blobs live in a registry, if anywhere: the repository they are read from,
/// else the base an image built by mockimg records (`org.opencontainers.image.base.name`; a
/// pushed archive or layout).
fn base_repository(src: &Source) -> Option<RegistryRef> {
    if let Some(r) = src.blobs.registry() {
        return Some(r.clone());
    }
    let m = src.root.images().first()?.manifest_json().ok()?;
    let name = m["annotations"][oci_spec::image::ANNOTATION_BASE_IMAGE_NAME].as_str()?;
    RegistryRef::parse(name).ok()
}

/// The repositories to try mounting `digest` from into `target`, in order: the base's own
/// repository when it is on the target's registry (it surely holds the blob); repositories of
/// the target's registry where the location record has seen it, newest first; `--mount-from`
/// hints; the base's repository path on the target registry (mirrors keep the name). Then the
/// blob is copied. The target itself is never a candidate, and at most [`MAX_MOUNT_TRIES`].
fn mount_candidates(
    digest: &str,
    target: &RegistryRef,
    base: Option<&RegistryRef>,
    opts: &RegistryOptions,
) -> Vec<RegistryRef> {
    let on_target = |repository: &str| RegistryRef {
        registry: target.registry.clone(),
        repository: repository.to_string(),
        tag: None,
        digest: None,
    };
    let mut repos: Vec<String> = Vec::new();
    if let Some(b) = base.filter(|b| b.same_registry(target)) {
        repos.push(b.repository.clone());
    }
    if let Some(l) = &opts.locations {
        repos.extend(l.repositories(digest, &target.registry));
    }
    repos.extend(
        opts.mount_from
            .iter()
            .filter(|m| m.registry.as_ref().is_none_or(|r| r == &target.registry))
            .map(|m| m.repository.clone()),
    );
    if let Some(b) = base.filter(|b| !b.same_registry(target)) {
        repos.push(b.repository.clone());
    }
    let mut out: Vec<RegistryRef> = Vec::new();
    for r in repos {
        if r != target.repository && !out.iter().any(|o| o.repository == r) {
            out.push(on_target(&r));
        }
    }
    out.truncate(MAX_MOUNT_TRIES);
    out
}

/// Records where the source's blobs were read from (a registry base), so that a later push of
/// an image built on it (an archive pushed to that registry) can mount them.
pub(crate) fn note_source(src: &Source, opts: &RegistryOptions) {
    let Some(l) = &opts.locations else { return };
    for d in src.root.distributable_blobs().unwrap_or_default() {
        if let Some(from) = src.blobs.registry_of(&d.digest) {
            if !src.blobs.local(&d.digest) {
                l.learn(&d.digest, from);
            }
        }
    }
}

/// One blob this build did not make, the repository it is read from, and where it might be
/// mounted from.
struct Remote<'a> {
    desc: &'a Descriptor,
    base: Option<RegistryRef>,
    candidates: Vec<RegistryRef>,
}

/// The token scopes of a push to `t` that mounts only from where the blobs are read: push on
/// the target, and pull on every repository of the same registry that a blob comes from.
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
        return Ok(scopes_for(t, Action::Push));
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

#[derive(Default)]
struct Counts {
    uploaded: AtomicUsize,
    uploaded_bytes: AtomicU64,
    mounted: AtomicUsize,
    existing: AtomicUsize,
}

/// Pushes every blob `target` needs. Blobs made here (the config layer, in memory or spooled,
/// and the configs) are uploaded; the others are mounted from the first candidate that holds
/// them, HEAD-checked first when the target may hold them already (and no mount would say so),
/// else copied from the source. Uploads and mounts are two streams, each within `--jobs`, so
/// that the one-request mounts do not queue behind two-request uploads.
async fn push_blobs(
    reg: &Arc<Registry>,
    target: &RegistryRef,
    src: &Source,
    remote: &[Remote<'_>],
    target_exists: bool,
    scopes: &[String],
) -> Result<PushStats> {
    let c = Counts::default();
    let jobs = reg.opts.concurrency.max(1);
    let blobs = src.root.distributable_blobs()?;
    // Base layers copied here are read whole: their diff_ids are checked on the way.
    let checked = crate::sink::diffid::Checking::new(src);
    let uploads = futures_util::stream::iter(
        blobs
            .iter()
            .filter(|d| src.blobs.local(&d.digest))
            .map(|d| upload(reg, target, &checked, d, None, scopes, &c)),
    )
    .buffer_unordered(jobs)
    .try_collect::<Vec<_>>();
    let others = futures_util::stream::iter(remote.iter().map(|r| {
        let base = r.base.as_ref();
        let c = &c;
        let checked = &checked;
        async move {
            let digest = &r.desc.digest;
            // The base's own repository holds the blob: its mount answers 201 even when the
            // target has the blob already. Any other candidate might not, so a target that may
            // hold it (the record says so, or the repository is not new) is asked first, as is
            // one with nowhere to mount from: a HEAD is cheaper than a copy.
            let sure = r
                .candidates
                .first()
                .zip(base)
                .is_some_and(|(f, b)| f.registry == b.registry && f.repository == b.repository);
            let may_hold = target_exists
                || reg
                    .opts
                    .locations
                    .as_ref()
                    .is_some_and(|l| l.holds(digest, target));
            if !sure
                && (may_hold || r.candidates.is_empty())
                && reg.blob_head(target, digest, scopes).await?
            {
                c.existing.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            let mut session = None;
            for from in &r.candidates {
                match reg.blob_mount(target, from, digest, scopes).await {
                    Mount::Mounted => {
                        c.mounted.fetch_add(1, Ordering::Relaxed);
                        return Ok(());
                    }
                    Mount::Session(u) => {
                        // Refused for certain: the blob is not there (or not ours to read).
                        if let Some(l) = reg
                            .opts
                            .locations
                            .as_ref()
                            .filter(|l| l.holds(digest, from))
                        {
                            l.forget(digest, from);
                        }
                        // The first session opened takes the copy; later ones are left to
                        // the registry's upload purge.
                        session = session.or(Some(u));
                    }
                    Mount::Declined => {}
                }
            }
            upload(reg, target, checked, r.desc, session, scopes, c).await
        }
    }))
    .buffer_unordered(jobs)
    .try_collect::<Vec<_>>();
    futures_util::try_join!(uploads, others)?;
    Ok(PushStats {
        uploaded: c.uploaded.into_inner(),
        uploaded_bytes: c.uploaded_bytes.into_inner(),
        mounted: c.mounted.into_inner(),
        existing: c.existing.into_inner(),
    })
}

async fn upload(
    reg: &Registry,
    target: &RegistryRef,
    blobs: &dyn crate::oci::blob::BlobSource,
    d: &Descriptor,
    session: Option<reqwest::Url>,
    scopes: &[String],
    c: &Counts,
) -> Result<()> {
    reg.blob_upload(target, d, blobs, scopes, session).await?;
    c.uploaded.fetch_add(1, Ordering::Relaxed);
    c.uploaded_bytes.fetch_add(d.size, Ordering::Relaxed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Locations, MountFrom};

    fn r(s: &str) -> RegistryRef {
        RegistryRef::parse(s).unwrap()
    }

    fn repos(v: Vec<RegistryRef>) -> Vec<String> {
        v.into_iter().map(|r| r.repo_name()).collect()
    }

    const D: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";

    #[test]
    fn mounts_are_tried_base_then_record_then_hints_then_the_mirror_name() {
        let l = Locations::in_memory();
        l.learn(D, &r("b.example/seen/old"));
        l.learn(D, &r("b.example/seen/new"));
        l.learn(D, &r("c.example/elsewhere"));
        let opts = RegistryOptions {
            locations: Some(Arc::new(l)),
            mount_from: vec![
                MountFrom::parse("hint/any").unwrap(),
                MountFrom::parse("c.example/hint/other-registry").unwrap(),
            ],
            ..Default::default()
        };
        // Base on another registry: record (newest first), hint, then the mirror name; at most
        // three tries.
        let base = r("a.example/engine/imposter:4");
        let got = mount_candidates(D, &r("b.example/team/m:1"), Some(&base), &opts);
        assert_eq!(
            repos(got),
            [
                "b.example/seen/new",
                "b.example/seen/old",
                "b.example/hint/any"
            ]
        );
        let opts_few = RegistryOptions {
            locations: None,
            ..opts.clone()
        };
        let got = mount_candidates(D, &r("b.example/team/m:1"), Some(&base), &opts_few);
        assert_eq!(
            repos(got),
            ["b.example/hint/any", "b.example/engine/imposter"]
        );
        // Base on the target registry: its own repository first; the target is never one.
        let base = r("b.example/engine/imposter:4");
        let got = mount_candidates(D, &r("b.example/seen/new:1"), Some(&base), &opts);
        assert_eq!(
            repos(got),
            [
                "b.example/engine/imposter",
                "b.example/seen/old",
                "b.example/hint/any"
            ]
        );
        // Nothing known, no base in a registry: copy.
        let got = mount_candidates(D, &r("d.example/x:1"), None, &RegistryOptions::default());
        assert!(got.is_empty());
    }
}
