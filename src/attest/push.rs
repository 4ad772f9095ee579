//! Pushing attachments: per target repository, each attachment's two blobs (the empty config
//! and its document), then its manifest by digest. A registry with the referrers API answers
//! that PUT with `OCI-Subject` and indexes the `subject` itself; any other registry gets the
//! referrers tag schema (distribution-spec 1.1): the OCI index tagged `sha256-<hex>` of the
//! subject is read, the attachment's entry added (an entry already there is kept, so a re-push
//! changes nothing), and the index pushed back. Runs after the image, its tags and its
//! signatures, so a referrer never names an image that is not there yet.
//!
//! The tag itself is `tag.rs`'s. Two pushes of one image (a reproducible build run twice, with
//! different provenance) write it at once: it is PUT with `If-Match` and read back, and written
//! again when another writer's PUT took our entries out. The race that remains: a registry that
//! ignores `If-Match` (or sends no `ETag`) lets our PUT replace an index another writer put
//! after our GET, and that writer's entries stay lost unless it reads the tag back as we do.
//! A stale entry (a referrer deleted, the tag left listing it) is dropped with a warning.
use super::artifact::Attachment;
use super::tag::{add_to_tag, read_tag};
use super::Attest;
use crate::error::{Error, Result};
use crate::oci::blob::{BlobSource, ByteStream};
use crate::oci::image::{Descriptor, Doc, Root};
use crate::oci::reference::RegistryRef;
use crate::registry::settle::put_manifest;
use crate::registry::{scopes_for, Action, Registry, RegistryOptions};
use bytes::Bytes;
use futures_util::future::join_all;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use serde_json::Value;

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
        out.extend(push_all(root.doc(), &attachments, std::slice::from_ref(t), opts).await?);
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
    push_all(subject, attachments, targets, opts).await
}

async fn push_all(
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

/// Pushes the attachments into `target`'s repository, each step for all of them at once (one
/// wave of requests, not one per attachment), and the referrers tag (when the registry needs
/// it) written once. Every request of a step is waited for; a failure names every attachment
/// the run leaves out, with the first failure in attachment order as the cause, so the same
/// failure always reads the same. Returns how each is found: `referrers API` or
/// `referrers tag …`.
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
    // The failure of a step, naming the attachments `left` out of the repository.
    let fail = |left: &[&Attachment], e: Error| {
        let (what, kind) = describe_refs(left);
        missing(e, &repo, &what, &kind, &subject_digest)
    };
    let all: Vec<&Attachment> = attachments.iter().collect();
    // Already there and listed where a reader looks: a re-push writes nothing.
    let present = first_failure(
        join_all(attachments.iter().map(|a| async move {
            let by_digest = target.with_digest(&a.manifest.digest());
            reg.manifest_head(Action::Push, &by_digest, scopes)
                .await
                .map(|h| h.is_some())
        }))
        .await,
    )
    .map_err(|e| fail(&all, e))?;
    let listed = if present.iter().any(|p| *p) {
        listed(reg, target, &subject_digest, scopes)
            .await
            .map_err(|e| fail(&all, e))?
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
    // Their blobs (the empty config is every attachment's: once), then their manifests. A
    // blob that fails leaves every one of them out: no manifest is put before all are in.
    let blobs = Memory(todo.iter().flat_map(|a| a.blobs.iter().cloned()).collect());
    let mut unique: Vec<&Descriptor> = Vec::new();
    for a in &todo {
        for (d, _) in &a.blobs {
            if !unique.iter().any(|u| u.digest == d.digest) {
                unique.push(d);
            }
        }
    }
    let blobs = &blobs;
    first_failure(
        join_all(unique.into_iter().map(|d| async move {
            if !reg.blob_head(target, &d.digest, scopes).await? {
                reg.blob_upload(target, d, blobs, scopes, None).await?;
            }
            Ok::<_, Error>(())
        }))
        .await,
    )
    .map_err(|e| fail(&todo, e))?;
    // Every blob each names was just found or put: a concurrent push of the same attachment
    // (its empty config is every attachment's) may still be settling in the registry.
    let puts = join_all(todo.iter().map(|a| async move {
        let by_digest = target.with_digest(&a.manifest.digest());
        put_manifest(reg, &by_digest, &a.manifest, scopes, true).await
    }))
    .await;
    // Those put are listed even when another was refused: pushed, but listed nowhere, an
    // attachment would be as good as missing.
    let mut cause: Option<Error> = None;
    let mut left: Vec<String> = Vec::new();
    let mut needs_tag: Vec<&Attachment> = Vec::new();
    for (a, p) in todo.iter().zip(puts) {
        match p {
            Ok(p) if p.subject.is_none() => needs_tag.push(a),
            Ok(_) => {}
            Err(e) => {
                left.push(a.manifest.digest());
                cause.get_or_insert(e);
            }
        }
    }
    let api = "referrers API".to_string();
    let tag_via = if needs_tag.is_empty() {
        None
    } else {
        match add_to_tag(reg, target, &subject_digest, &needs_tag, scopes).await {
            Ok(via) => Some(via),
            Err(e) => {
                left.extend(needs_tag.iter().map(|a| a.manifest.digest()));
                cause.get_or_insert(e);
                None
            }
        }
    };
    if let Some(e) = cause {
        let left: Vec<&Attachment> = todo
            .iter()
            .copied()
            .filter(|a| left.contains(&a.manifest.digest()))
            .collect();
        return Err(fail(&left, e));
    }
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

/// Every result of a step, or its first failure (in the order the step was asked).
fn first_failure<T>(results: Vec<Result<T>>) -> Result<Vec<T>> {
    results.into_iter().collect()
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
        .map(|(entries, _)| {
            (
                format!(
                    "referrers tag {}",
                    crate::oci::referrer::referrers_tag(subject)
                ),
                digests(&entries),
            )
        }))
}

/// `(what, kind)` of attachments for a failure line: `sbom (…) and provenance (…)`, and the
/// kind when there is one.
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

/// The one-line failure: which attachments (`what`) of which image are missing, and that the
/// image is pushed. `kind` (`sbom`, `provenance`, or empty for several) names the flag that
/// leaves it out (`build`, `rebase` and `push` all have it). A refusal of ours (the referrers tag holds someone's image) says its own fix,
/// and pushing again would not help: no "push again" then.
fn missing(e: Error, repo: &str, what: &str, kind: &str, subject: &str) -> Error {
    let again = !matches!(e, Error::Invalid { .. });
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
    let (without, flags) = match kind {
        "sbom" | "provenance" => (format!("without its {kind}"), format!("--no-{kind}")),
        "" => (
            "without them".to_string(),
            "--no-sbom --no-provenance".to_string(),
        ),
        _ => ("without it".to_string(), String::new()),
    };
    let hint = if !again {
        format!("the image was pushed {without}")
    } else if flags.is_empty() {
        format!("the image was pushed {without} (push again)")
    } else {
        let it = if kind.is_empty() { "them" } else { "it" };
        format!("the image was pushed {without} (push again, or leave {it} out with {flags})")
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
