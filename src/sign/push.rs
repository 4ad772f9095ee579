//! Pushing the signatures of a pushed image: per target repository, one `sha256-<hex>.sig`
//! image for the index (or single manifest) and one for each platform manifest, every key's
//! signature a layer of it. Runs after the image and its tags are in place, so a verifier never
//! finds a signature for something that is not there.
use super::key::SigningKey;
use super::payload::{signature_image, signature_layer, signature_tag, simple_signing, Signed};
use crate::error::{Error, Result};
use crate::oci::blob::{BlobSource, ByteStream};
use crate::oci::digest;
use crate::oci::image::{Descriptor, Doc, Root};
use crate::oci::media;
use crate::oci::reference::RegistryRef;
use crate::registry::{scopes_for, Action, Registry, RegistryOptions};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use serde_json::Value;
use std::collections::HashMap;

/// What was signed: `repo@digest` lines, one per signed manifest per repository.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SignStats {
    /// Each signed `registry/repository@sha256:…`.
    pub signed: Vec<String>,
}

/// Signs `root` (already pushed to every target) with every key and pushes the signatures.
/// Any failure is reported as the image having been pushed unsigned: the image is there, its
/// signatures (some or all) are not.
pub async fn push_signatures(
    root: &Root,
    targets: &[RegistryRef],
    keys: &[SigningKey],
    opts: &RegistryOptions,
) -> Result<SignStats> {
    let mut stats = SignStats::default();
    let mut digests = vec![root.digest()];
    if matches!(root, Root::Index { .. }) {
        digests.extend(root.images().iter().map(|i| i.manifest.digest()));
    }
    let mut done: Vec<String> = Vec::new();
    for t in targets {
        let repo = t.repo_name();
        if done.contains(&repo) {
            continue;
        }
        done.push(repo.clone());
        for d in &digests {
            push_one(t, d, keys, opts)
                .await
                .map_err(|e| unsigned(e, &repo, d))?;
            stats.signed.push(format!("{repo}@{d}"));
        }
    }
    Ok(stats)
}

/// Pushes the `.sig` image for `image_digest` in `target`'s repository.
async fn push_one(
    target: &RegistryRef,
    image_digest: &str,
    keys: &[SigningKey],
    opts: &RegistryOptions,
) -> Result<()> {
    let payload = simple_signing(&target.repo_name(), image_digest);
    let sigs: Vec<Signed> = keys
        .iter()
        .map(|k| Signed {
            payload: payload.clone(),
            signature: B64.encode(k.sign(&payload)),
        })
        .collect();
    let reg = Registry::connect(&target.registry, opts)?;
    let scopes = scopes_for(target, Action::Push);
    let tagged = RegistryRef {
        tag: Some(signature_tag(image_digest)),
        digest: None,
        ..target.clone()
    };
    // Signatures already there (another key, another tool) stay, as `cosign sign` keeps them;
    // ours are deterministic, so a re-push finds them equal and adds nothing.
    let ours: Vec<Value> = sigs.iter().map(signature_layer).collect();
    let mut layers: Vec<Value> = Vec::new();
    if reg
        .manifest_head(Action::Push, &tagged, &scopes)
        .await?
        .is_some()
    {
        let old = reg
            .manifest_get(&tagged, &scopes)
            .await?
            .json("signature manifest")?;
        layers.extend(
            old["layers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|l| !ours.contains(l))
                .cloned(),
        );
    }
    layers.extend(ours);
    let (config, manifest) = signature_image(&layers);
    let blobs = Memory(HashMap::from([
        (digest::sha256(&payload), Bytes::from(payload.clone())),
        (digest::sha256(&config), Bytes::from(config.clone())),
    ]));
    for (bytes, media_type) in [
        (&payload, super::payload::SIMPLE_SIGNING_MEDIA_TYPE),
        (&config, media::OCI_CONFIG),
    ] {
        let d = Doc::new(media_type, bytes.clone()).descriptor();
        if !reg.blob_head(target, &d.digest, &scopes).await? {
            reg.blob_upload(target, &d, &blobs, &scopes, None).await?;
        }
    }
    reg.manifest_put(&tagged, &Doc::new(media::OCI_MANIFEST, manifest), &scopes)
        .await
        .map(|_| ())
}

/// The one-line failure: what was not signed, why, and that the image itself is pushed.
fn unsigned(e: Error, repo: &str, image_digest: &str) -> Error {
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
        operation: format!("pushing the signature of {repo}@{image_digest}"),
        message: format!("{why} — the image was pushed unsigned"),
        cause,
    }
}

/// The two small blobs of a `.sig` image, held in memory.
struct Memory(HashMap<String, Bytes>);

impl BlobSource for Memory {
    fn open<'a>(&'a self, desc: &'a Descriptor) -> BoxFuture<'a, Result<ByteStream>> {
        let b = self.0.get(&desc.digest).cloned();
        Box::pin(async move {
            let b = b.ok_or_else(|| Error::invalid("signature blob", "not held in memory"))?;
            Ok(futures_util::stream::once(async move { Ok(b) }).boxed())
        })
    }
    fn in_memory(&self, digest: &str) -> Option<Bytes> {
        self.0.get(digest).cloned()
    }
}
