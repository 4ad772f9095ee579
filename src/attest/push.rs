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
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
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
        if done.contains(&repo) {
            continue;
        }
        done.push(repo.clone());
        for a in attachments {
            let via = push_one(t, subject, a, opts)
                .await
                .map_err(|e| missing(e, &repo, a, &subject.digest()))?;
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

async fn push_one(
    target: &RegistryRef,
    subject: &Doc,
    a: &Attachment,
    opts: &RegistryOptions,
) -> Result<String> {
    let reg = Registry::connect(&target.registry, opts)?;
    let scopes = scopes_for(target, Action::Push);
    let digest = a.manifest.digest();
    let by_digest = target.with_digest(&digest);
    // Already there and listed where a reader looks: a re-push writes nothing.
    if reg
        .manifest_head(Action::Push, &by_digest, &scopes)
        .await?
        .is_some()
    {
        if let Some(via) = listed(&reg, target, &subject.digest(), &digest, &scopes).await? {
            return Ok(via);
        }
    }
    let blobs = Memory(a.blobs.clone());
    for (d, _) in &blobs.0 {
        if !reg.blob_head(target, &d.digest, &scopes).await? {
            reg.blob_upload(target, d, &blobs, &scopes, None).await?;
        }
    }
    // Every blob it names was just found or put: a concurrent push of the same attachment
    // (its empty config is every attachment's) may still be settling in the registry.
    let put = put_manifest(&reg, &by_digest, &a.manifest, &scopes, true).await?;
    if put.subject.is_some() {
        return Ok("referrers API".into());
    }
    // No referrers API: keep the tag schema's index ourselves.
    let tag = referrers_tag(&subject.digest());
    let tagged = RegistryRef {
        tag: Some(tag.clone()),
        digest: None,
        ..target.clone()
    };
    let mut manifests: Vec<Value> = Vec::new();
    if reg
        .manifest_head(Action::Push, &tagged, &scopes)
        .await?
        .is_some()
    {
        let old = reg.manifest_get(&tagged, &scopes).await?;
        let v = old.json("referrers index")?;
        // Something else under the tag is someone's image, not ours to replace.
        let Some(entries) = v["manifests"]
            .as_array()
            .filter(|_| old.media_type == media::OCI_INDEX)
        else {
            return Err(Error::invalid(
                format!("{}:{tag}", target.repo_name()),
                format!(
                    "the referrers tag holds a {}, not an OCI index of referrers — move that \
                     image off the tag",
                    old.media_type
                ),
            ));
        };
        manifests.extend(entries.iter().cloned());
    }
    if manifests.iter().any(|m| m["digest"] == digest.as_str()) {
        return Ok(format!("referrers tag {tag}"));
    }
    manifests.push(a.index_entry());
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": manifests,
    });
    let doc = Doc::new(
        media::OCI_INDEX,
        serde_json::to_vec(&index).expect("JSON values serialise"),
    );
    // Its entries are manifests the registry holds (this one just put): settling applies.
    put_manifest(&reg, &tagged, &doc, &scopes, true).await?;
    Ok(format!("referrers tag {tag}"))
}

/// How a reader finds the referrer `digest` of `subject` already: the referrers API lists it,
/// or (a registry without the API) the referrers tag does; `None` when neither.
async fn listed(
    reg: &Registry,
    target: &RegistryRef,
    subject: &str,
    digest: &str,
    scopes: &[String],
) -> Result<Option<String>> {
    let lists = |index: &Doc| -> Result<bool> {
        let v = index.json("referrers index")?;
        Ok(v["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m["digest"] == digest))
    };
    if let Some(index) = reg.referrers(target, subject).await? {
        return Ok(lists(&index)?.then(|| "referrers API".to_string()));
    }
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
    let index = reg.manifest_get(&tagged, scopes).await?;
    Ok(lists(&index)?.then(|| format!("referrers tag {tag}")))
}

/// The one-line failure: which attachment of which image is missing, and that the image is
/// pushed.
fn missing(e: Error, repo: &str, a: &Attachment, subject: &str) -> Error {
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
    Error::Registry {
        registry,
        operation: format!(
            "attaching the {} ({}) to {repo}@{subject}",
            a.kind, a.artifact_type
        ),
        message: if a.kind == "sbom" || a.kind == "provenance" {
            format!(
                "{why} — the image was pushed without its {} (push again, or build with \
                 --no-{} to go without it)",
                a.kind, a.kind
            )
        } else {
            format!("{why} — the image was pushed without it")
        },
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
