//! The referrers tag schema (distribution-spec 1.1), kept by the client for a registry without
//! the referrers API: the OCI index tagged `sha256-<hex>` of the subject lists its referrers.
//!
//! The tag is shared by every writer of the subject's referrers (two CI runs of one
//! reproducible build push the same image with different provenance). So the index is PUT with
//! `If-Match` naming the `ETag` its GET answered (when it answered one), read again after the
//! PUT, and on a 412 or an entry of ours missing, merged and written again (a few times). What
//! remains: a registry that sends no `ETag` or ignores `If-Match` lets a writer between our
//! GET and PUT lose its entries to ours; its own read-back finds that and writes them again, but
//! a writer that does not check (an older tool) loses them for good.
//!
//! An entry of the tag's index the registry no longer holds (its referrer deleted without the
//! tag being updated) makes the registry refuse the index (`MANIFEST_BLOB_UNKNOWN`): such
//! entries are dropped, with a warning naming them, as the spec's delete procedure would have.
use super::artifact::Attachment;
use crate::error::{Error, Result};
use crate::oci::image::Doc;
use crate::oci::media;
use crate::oci::reference::RegistryRef;
use crate::oci::referrer::referrers_tag;
use crate::registry::settle::{names_unknown, put_manifest_if};
use crate::registry::{Action, Registry};
use futures_util::future::join_all;
use serde_json::{json, Value};

/// How often the referrers tag is read, merged and written when another writer changes it
/// under us.
const TAG_TRIES: u32 = 3;

/// The referrers tag schema, kept by the client: the index tagged `sha256-<hex>` read (if
/// any), the entries of `new` it lacks added, written back conditionally, and read again to
/// see ours listed; another writer in between (a 412, or ours missing) means merge and write
/// again, up to [`TAG_TRIES`] times.
pub(super) async fn add_to_tag(
    reg: &Registry,
    target: &RegistryRef,
    subject: &str,
    new: &[&Attachment],
    scopes: &[String],
) -> Result<String> {
    let tag = referrers_tag(subject);
    let via = format!("referrers tag {tag}");
    let tagged = RegistryRef {
        tag: Some(tag.clone()),
        digest: None,
        ..target.clone()
    };
    let ours: Vec<String> = new.iter().map(|a| a.manifest.digest()).collect();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (mut manifests, etag) = read_tag(reg, target, subject, scopes)
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
            return Ok(via);
        }
        match put_index(reg, &tagged, manifests, &ours, etag.as_deref(), scopes).await {
            Ok(()) => {}
            Err(Error::Registry { cause, .. })
                if cause.is_precondition_failed() && attempt < TAG_TRIES =>
            {
                tracing::warn!(
                    "the referrers tag {tag} of {} changed since it was read (another push \
                     of the same image); reading it again",
                    target.repo_name()
                );
                continue;
            }
            Err(e) => return Err(e),
        }
        let now = read_tag(reg, target, subject, scopes)
            .await?
            .map(|(m, _)| m)
            .unwrap_or_default();
        let lost: Vec<&str> = ours
            .iter()
            .filter(|d| !now.iter().any(|m| m["digest"] == d.as_str()))
            .map(String::as_str)
            .collect();
        if lost.is_empty() {
            return Ok(via);
        }
        if attempt >= TAG_TRIES {
            return Err(Error::Registry {
                registry: target.registry.clone(),
                operation: format!("writing the referrers tag {tag} of {}", target.repo_name()),
                message: format!(
                    "another push rewrote it {TAG_TRIES} times without {}",
                    lost.join(", ")
                ),
                cause: Default::default(),
            });
        }
        tracing::warn!(
            "the referrers tag {tag} of {} lost {} to another push writing it at the same \
             time; adding again",
            target.repo_name(),
            lost.join(", ")
        );
    }
}

/// PUTs the referrers index of `manifests` as `tagged` (conditional on `etag`). Refused for
/// naming a manifest the registry does not hold: the entries not `ours` that the registry no
/// longer has are dropped (a referrer deleted without the tag being updated, which the spec's
/// delete procedure would have done), with a warning naming them, and the index PUT again;
/// only then is an unknown entry one of ours just put, and settling applies.
async fn put_index(
    reg: &Registry,
    tagged: &RegistryRef,
    mut manifests: Vec<Value>,
    ours: &[String],
    etag: Option<&str>,
    scopes: &[String],
) -> Result<()> {
    let e = match put_manifest_if(reg, tagged, &index_doc(&manifests), scopes, false, etag).await {
        Ok(_) => return Ok(()),
        Err(e) if names_unknown(&e) => e,
        Err(e) => return Err(e),
    };
    let foreign: Vec<&str> = manifests
        .iter()
        .filter_map(|m| m["digest"].as_str())
        .filter(|d| !ours.iter().any(|o| o == d))
        .collect();
    // Every answer, or the first failure in the order asked.
    let held = join_all(foreign.iter().map(|d| async move {
        reg.manifest_head(Action::Push, &tagged.with_digest(d), scopes)
            .await
            .map(|h| h.is_some())
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<bool>>>()?;
    let gone: Vec<String> = foreign
        .iter()
        .zip(held)
        .filter(|(_, h)| !h)
        .map(|(d, _)| d.to_string())
        .collect();
    if gone.is_empty() {
        tracing::debug!("{e}: every entry not ours is held; waiting for ours to settle");
    } else {
        tracing::warn!(
            "the referrers tag {} of {} lists {} that the registry no longer holds; dropping \
             them from it",
            tagged.tag.as_deref().unwrap_or_default(),
            tagged.repo_name(),
            gone.join(", ")
        );
        manifests.retain(|m| {
            m["digest"]
                .as_str()
                .is_some_and(|d| !gone.iter().any(|g| g == d))
        });
    }
    put_manifest_if(reg, tagged, &index_doc(&manifests), scopes, true, etag).await?;
    Ok(())
}

/// The referrers index listing `manifests`.
fn index_doc(manifests: &[Value]) -> Doc {
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": manifests,
    });
    Doc::new(
        media::OCI_INDEX,
        serde_json::to_vec(&index).expect("JSON values serialise"),
    )
}

/// The entries of the referrers tag's index and the `ETag` its GET answered, `None` when
/// there is no such tag. Something else under the tag (an image, or an image index whose
/// entries are platforms) is someone's image, not ours to replace: an error.
pub(super) async fn read_tag(
    reg: &Registry,
    target: &RegistryRef,
    subject: &str,
    scopes: &[String],
) -> Result<Option<(Vec<Value>, Option<String>)>> {
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
    let (old, etag) = reg.manifest_get_etag(&tagged, scopes).await?;
    let v = old.json("referrers index")?;
    let refuse = |holds: &str| {
        Err(Error::invalid(
            format!("{}:{tag}", target.repo_name()),
            format!(
                "the referrers tag holds {holds}, not an OCI index of referrers — move that \
                 image off the tag"
            ),
        ))
    };
    match v["manifests"].as_array() {
        Some(entries) if old.media_type == media::OCI_INDEX => {
            if crate::oci::referrer::holds_an_image(entries) {
                return refuse("an image index (entries with a platform)");
            }
            Ok(Some((entries.clone(), etag)))
        }
        _ => refuse(&old.media_type),
    }
}
