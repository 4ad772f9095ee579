//! Pushing attachments: per target repository, each attachment's two blobs (the empty config
//! and its document), then its manifest by digest. A registry with the referrers API answers
//! that PUT with `OCI-Subject` and indexes the `subject` itself; any other registry gets the
//! referrers tag schema (distribution-spec 1.1): the OCI index tagged `sha256-<hex>` of the
//! subject is read, the attachment's entry added (an entry already there is kept, so a re-push
//! changes nothing), and the index pushed back. Runs after the image, its tags and its
//! signatures, so a referrer never names an image that is not there yet.
use super::artifact::Attachment;
use super::Attest;
use crate::error::{Error, Result};
use crate::oci::blob::{BlobSource, ByteStream};
use crate::oci::image::{Descriptor, Doc, Root};
use crate::oci::media;
use crate::oci::reference::RegistryRef;
use crate::registry::settle::put_manifest;
use crate::registry::{scopes_for, Action, Registry, RegistryOptions};
use bytes::Bytes;
use futures_util::future::join_all;
use futures_util::future::BoxFuture;
use futures_util::{StreamExt, TryFutureExt};
use serde_json::{json, Value};

/// One attachment pushed (or written) beside an image: what `--json` lists.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Attached {
    /// `sbom` or `provenance`.
    pub kind: String,
    /// The manifest's `artifactType`.
    #[serde(rename = "artifactType")]
    pub artifact_type: String,
    /// The referrer manifest's digest.
    pub digest: String,
    /// The image it is attached to.
    pub subject: String,
    /// `registry/repository` it was pushed to; absent for file outputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// `referrers API` or `referrers tag sha256-<hex>`; absent for file outputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

impl Attached {
    /// The record of `a`, attached to `subject`.
    pub fn of(a: &Attachment, subject: &str) -> Attached {
        Attached {
            kind: a.kind.clone(),
            artifact_type: a.artifact_type.clone(),
            digest: a.manifest.digest(),
            subject: subject.to_string(),
            repository: None,
            via: None,
        }
    }
}

/// Makes the attachments for `root` (already pushed to every target, with its tags) and pushes
/// them, once per target repository, each naming that repository. A failure says which
/// attachment of which image is missing; the image itself is in place.
pub async fn push_attachments(
    root: &Root,
    targets: &[RegistryRef],
    attest: &Attest,
    opts: &RegistryOptions,
) -> Result<Vec<Attached>> {
    let mut out = Vec::new();
    let mut done: Vec<String> = Vec::new();
    for t in targets {
        let repo = t.repo_name();
        if done.contains(&repo) {
            continue;
        }
        done.push(repo.clone());
        let attachments = attest.for_subject(root.doc(), &repo)?;
        out.extend(push_referrers(root.doc(), &attachments, std::slice::from_ref(t), opts).await?);
    }
    Ok(out)
}

/// Pushes ready-made `attachments` of the image `subject` to every target repository (those
/// made by a build, or read from a layout by `mockimg push`).
pub async fn push_referrers(
    subject: &Doc,
    attachments: &[Attachment],
    targets: &[RegistryRef],
    opts: &RegistryOptions,
) -> Result<Vec<Attached>> {
    let mut out = Vec::new();
    let mut done: Vec<String> = Vec::new();
    for t in targets {
        let repo = t.repo_name();
        if done.contains(&repo) || attachments.is_empty() {
            continue;
        }
        done.push(repo.clone());
        let vias = push_to(t, subject, attachments, opts).await?;
        for (a, via) in attachments.iter().zip(vias) {
            let mut rec = Attached::of(a, &subject.digest());
            rec.repository = Some(repo.clone());
            rec.via = Some(via);
            out.push(rec);
        }
    }
    Ok(out)
}

/// The referrers tag of `subject_digest`: `sha256-<hex>`.
pub fn referrers_tag(subject_digest: &str) -> String {
    subject_digest.replacen(':', "-", 1)
}

/// Pushes the attachments into `target`'s repository, each step for all of them at once (one
/// wave of requests, not one per attachment), and the referrers tag (when the registry needs
/// it) read and written once. Every request of a step is waited for, and the first failure in
/// attachment order is the one told, so the same failure always reads the same. Returns how each is found: `referrers API` or `referrers tag …`.
async fn push_to(
    target: &RegistryRef,
    subject: &Doc,
    attachments: &[Attachment],
    opts: &RegistryOptions,
) -> Result<Vec<String>> {
    let reg = Registry::connect(&target.registry, opts)?;
    let scopes = scopes_for(target, Action::Push);
    let (reg, scopes) = (&reg, &scopes[..]);
    let subject_digest = subject.digest();
    let repo = target.repo_name();
    let fail = |a: &Attachment| {
        let (repo, subject) = (repo.clone(), subject_digest.clone());
        let what = format!("{} ({})", a.kind, a.artifact_type);
        let kind = a.kind.clone();
        move |e| missing(e, &repo, &what, &kind, &subject)
    };
    let all = describe(attachments);
    // Already there and listed where a reader looks: a re-push writes nothing.
    let present = join_all(attachments.iter().map(|a| async move {
        let by_digest = target.with_digest(&a.manifest.digest());
        reg.manifest_head(Action::Push, &by_digest, scopes)
            .await
            .map(|h| h.is_some())
            .map_err(fail(a))
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<bool>>>()?;
    let listed = if present.iter().any(|p| *p) {
        listed(reg, target, &subject_digest, scopes)
            .await
            .map_err(|e| missing(e, &repo, &all.0, &all.1, &subject_digest))?
    } else {
        None
    };
    let vias: Vec<Option<String>> = attachments
        .iter()
        .zip(&present)
        .map(|(a, p)| {
            let (via, digests) = listed.as_ref().filter(|_| *p)?;
            digests.contains(&a.manifest.digest()).then(|| via.clone())
        })
        .collect();
    let todo: Vec<&Attachment> = attachments
        .iter()
        .zip(&vias)
        .filter(|(_, v)| v.is_none())
        .map(|(a, _)| a)
        .collect();
    if todo.is_empty() {
        return Ok(vias.into_iter().flatten().collect());
    }
    // Their blobs (the empty config is every attachment's: once), then their manifests.
    let blobs = Memory(todo.iter().flat_map(|a| a.blobs.iter().cloned()).collect());
    let mut unique: Vec<(&Descriptor, &Attachment)> = Vec::new();
    for a in &todo {
        for (d, _) in &a.blobs {
            if !unique.iter().any(|(u, _)| u.digest == d.digest) {
                unique.push((d, a));
            }
        }
    }
    let blobs = &blobs;
    join_all(unique.into_iter().map(|(d, a)| {
        async move {
            if !reg.blob_head(target, &d.digest, scopes).await? {
                reg.blob_upload(target, d, blobs, scopes, None).await?;
            }
            Ok::<_, Error>(())
        }
        .map_err(fail(a))
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<()>>>()?;
    // Every blob each names was just found or put: a concurrent push of the same attachment
    // (its empty config is every attachment's) may still be settling in the registry.
    let puts = join_all(todo.iter().map(|a| async move {
        let by_digest = target.with_digest(&a.manifest.digest());
        put_manifest(reg, &by_digest, &a.manifest, scopes, true)
            .await
            .map_err(fail(a))
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<_>>>()?;
    let api = "referrers API".to_string();
    let needs_tag: Vec<&Attachment> = todo
        .iter()
        .zip(&puts)
        .filter(|(_, p)| p.subject.is_none())
        .map(|(a, _)| *a)
        .collect();
    let tag_via = if needs_tag.is_empty() {
        None
    } else {
        let (what, kind) = describe_refs(&needs_tag);
        Some(
            add_to_tag(reg, target, &subject_digest, &needs_tag, scopes)
                .await
                .map_err(|e| missing(e, &repo, &what, &kind, &subject_digest))?,
        )
    };
    let mut out = Vec::new();
    for (a, v) in attachments.iter().zip(vias) {
        out.push(match v {
            Some(v) => v,
            None if needs_tag
                .iter()
                .any(|n| n.manifest.digest() == a.manifest.digest()) =>
            {
                tag_via.clone().expect("the tag was written")
            }
            None => api.clone(),
        });
    }
    Ok(out)
}

/// The referrers tag schema, kept by the client: the index tagged `sha256-<hex>` read (if
/// any), the entries of `new` it lacks added, pushed back once.
async fn add_to_tag(
    reg: &Registry,
    target: &RegistryRef,
    subject: &str,
    new: &[&Attachment],
    scopes: &[String],
) -> Result<String> {
    let tag = referrers_tag(subject);
    let tagged = RegistryRef {
        tag: Some(tag.clone()),
        digest: None,
        ..target.clone()
    };
    let mut manifests: Vec<Value> = read_tag(reg, target, subject, scopes)
        .await?
        .unwrap_or_default();
    let before = manifests.len();
    for a in new {
        let digest = a.manifest.digest();
        if !manifests.iter().any(|m| m["digest"] == digest.as_str()) {
            manifests.push(a.index_entry());
        }
    }
    if manifests.len() == before {
        return Ok(format!("referrers tag {tag}"));
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": manifests,
    });
    let doc = Doc::new(
        media::OCI_INDEX,
        serde_json::to_vec(&index).expect("JSON values serialise"),
    );
    // Its entries are manifests the registry holds (these just put): settling applies.
    put_manifest(reg, &tagged, &doc, scopes, true).await?;
    Ok(format!("referrers tag {tag}"))
}

/// The entries of the referrers tag's index, `None` when there is no such tag. Something else
/// under the tag is someone's image, not ours to replace: an error.
async fn read_tag(
    reg: &Registry,
    target: &RegistryRef,
    subject: &str,
    scopes: &[String],
) -> Result<Option<Vec<Value>>> {
    let tag = referrers_tag(subject);
    let tagged = RegistryRef {
        tag: Some(tag.clone()),
        digest: None,
        ..target.clone()
    };
    if reg
        .manifest_head(Action::Push, &tagged, scopes)
        .await?
        .is_none()
    {
        return Ok(None);
    }
    let old = reg.manifest_get(&tagged, scopes).await?;
    let v = old.json("referrers index")?;
    match v["manifests"].as_array() {
        Some(entries) if old.media_type == media::OCI_INDEX => Ok(Some(entries.clone())),
        _ => Err(Error::invalid(
            format!("{}:{tag}", target.repo_name()),
            format!(
                "the referrers tag holds {}, not an OCI index of referrers — move that \
                 image off the tag",
                old.media_type
            ),
        )),
    }
}

/// Where a reader finds the referrers of `subject` already: the referrers API's list, or (a
/// registry without the API) the referrers tag's; with the digests listed. `None`: neither.
async fn listed(
    reg: &Registry,
    target: &RegistryRef,
    subject: &str,
    scopes: &[String],
) -> Result<Option<(String, Vec<String>)>> {
    let digests = |entries: &[Value]| -> Vec<String> {
        entries
            .iter()
            .filter_map(|m| m["digest"].as_str().map(str::to_string))
            .collect()
    };
    if let Some(index) = reg.referrers(target, subject).await? {
        let v = index.json("referrers index")?;
        let entries = v["manifests"].as_array().cloned().unwrap_or_default();
        return Ok(Some(("referrers API".to_string(), digests(&entries))));
    }
    Ok(read_tag(reg, target, subject, scopes)
        .await?
        .map(|entries| {
            (
                format!("referrers tag {}", referrers_tag(subject)),
                digests(&entries),
            )
        }))
}

/// `(what, kind)` of several attachments for a failure line: `sbom (…) and provenance (…)`,
/// and the kind when there is one.
fn describe(attachments: &[Attachment]) -> (String, String) {
    describe_refs(&attachments.iter().collect::<Vec<_>>())
}

fn describe_refs(attachments: &[&Attachment]) -> (String, String) {
    let what: Vec<String> = attachments
        .iter()
        .map(|a| format!("{} ({})", a.kind, a.artifact_type))
        .collect();
    let kind = match attachments {
        [one] => one.kind.clone(),
        _ => String::new(),
    };
    (what.join(" and "), kind)
}

/// The one-line failure: which attachment (`what`) of which image is missing, and that the
/// image is pushed. `kind` (`sbom`, `provenance`, or empty for several) names the flag that
/// leaves it out.
fn missing(e: Error, repo: &str, what: &str, kind: &str, subject: &str) -> Error {
    let (registry, why, cause) = match e {
        Error::Registry {
            registry,
            message,
            cause,
            ..
        } => (registry, message, cause),
        other => (
            repo.split('/').next().unwrap_or_default().to_string(),
            other.to_string(),
            Default::default(),
        ),
    };
    let hint = match kind {
        "sbom" | "provenance" => format!(
            "the image was pushed without its {kind} (push again, or build with --no-{kind} to \
             go without it)"
        ),
        "" => "the image was pushed without them (push again, or build with --no-sbom \
               --no-provenance to go without them)"
            .to_string(),
        _ => "the image was pushed without it (push again)".to_string(),
    };
    Error::Registry {
        registry,
        operation: format!("attaching the {what} to {repo}@{subject}"),
        message: format!("{why} — {hint}"),
        cause,
    }
}

/// The two blobs of an attachment, held in memory.
struct Memory(Vec<(Descriptor, Bytes)>);

impl BlobSource for Memory {
    fn open<'a>(&'a self, desc: &'a Descriptor) -> BoxFuture<'a, Result<ByteStream>> {
        let b = self
            .0
            .iter()
            .find(|(d, _)| d.digest == desc.digest)
            .map(|(_, b)| b.clone());
        Box::pin(async move {
            let b = b.ok_or_else(|| Error::invalid("attachment blob", "not held in memory"))?;
            Ok(futures_util::stream::once(async move { Ok(b) }).boxed())
        })
    }
    fn in_memory(&self, digest: &str) -> Option<Bytes> {
        self.0
            .iter()
            .find(|(d, _)| d.digest == digest)
            .map(|(_, b)| b.clone())
    }
}
