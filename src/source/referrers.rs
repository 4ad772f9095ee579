//! The referrers of an image (OCI 1.1: manifests whose `subject` is the image), wherever the
//! image is: a registry answers through the referrers API, or keeps them under the referrers
//! tag `sha256-<hex>` (distribution-spec 1.1's fallback); a layout or archive written by
//! mockimg holds them as blobs beside the image, not listed in `index.json` (so `docker load`,
//! `ctr import` and `skopeo copy oci-archive:FILE` still see exactly one image), found by
//! their `subject`.
use super::store::{blob_path, Store};
use crate::error::{Error, Result};
use crate::oci::digest;
use crate::oci::image::{media, Descriptor, Doc};
use crate::oci::reference::{ImageRef, RegistryRef};
use crate::registry::{scopes_for, Action, Registry, RegistryOptions};
use bytes::Bytes;
use serde_json::{json, Map, Value};

/// The most a referrer manifest among a layout's blobs may hold: one with a layer or two is
/// well under a KiB, and every blob up to this size is read when looking for them.
const REFERRER_MAX: u64 = 64 << 10;

/// The most an attached document (an SBOM of a large config) may hold when read from a layout.
const DOCUMENT_MAX: u64 = 64 << 20;

/// One referrer carried in a layout or archive: its manifest and the blobs it names (its config
/// and layers), read whole.
#[derive(Debug, Clone)]
pub struct Carried {
    /// The referrer manifest.
    pub manifest: Doc,
    /// Its config then its layers: descriptor and bytes.
    pub blobs: Vec<(Descriptor, Bytes)>,
}

/// The referrers of `subject` in `r`, as referrers-index entries (descriptor, `artifactType`,
/// annotations), sorted by artifact type then digest. A registry without referrers (or a
/// docker-archive, which cannot hold them) gives none.
pub async fn list(r: &ImageRef, subject: &str, opts: &RegistryOptions) -> Result<Vec<Value>> {
    let mut out = match r {
        ImageRef::Registry(rr) => in_registry(rr, subject, opts).await?,
        ImageRef::DockerArchive { .. } => Vec::new(),
        _ => carried(r, subject)?
            .iter()
            .map(|c| entry(&c.manifest))
            .collect(),
    };
    out.sort_by(|a, b| {
        (a["artifactType"].as_str(), a["digest"].as_str())
            .cmp(&(b["artifactType"].as_str(), b["digest"].as_str()))
    });
    Ok(out)
}

/// The referrers of `subject` that a layout or archive `r` holds, with their blobs, sorted
/// by artifact type then digest; none for other references.
pub fn carried(r: &ImageRef, subject: &str) -> Result<Vec<Carried>> {
    let store = match r {
        ImageRef::OciLayout { dir, .. } => Store::open_dir(dir)?,
        ImageRef::OciArchive { path, .. } => Store::open_tar(path)?,
        _ => return Ok(Vec::new()),
    };
    let what = format!("OCI layout {}", store.describe());
    let mut out = Vec::new();
    for name in store.small_blobs(REFERRER_MAX) {
        let Ok(bytes) = store.read(&name, REFERRER_MAX) else {
            continue;
        };
        // Layers and configs are skipped unparsed; only a manifest naming `subject` counts.
        if bytes.first() != Some(&b'{') {
            continue;
        }
        let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        if v["mediaType"] != media::OCI_MANIFEST || v["subject"]["digest"] != subject {
            continue;
        }
        let manifest = Doc::new(media::OCI_MANIFEST, bytes);
        if blob_path(&manifest.digest())? != name {
            return Err(Error::path(
                std::path::PathBuf::from(store.describe()),
                format!("holds a damaged referrer at {name} — export it again"),
            ));
        }
        let mut named = vec![Descriptor::from_json(
            &v["config"],
            &format!("{what} {name} config"),
        )?];
        for (i, l) in v["layers"].as_array().into_iter().flatten().enumerate() {
            named.push(Descriptor::from_json(
                l,
                &format!("{what} {name} layers[{i}]"),
            )?);
        }
        let mut blobs = Vec::new();
        for d in named {
            let b = store.read(&blob_path(&d.digest)?, DOCUMENT_MAX.min(d.size))?;
            if digest::sha256(&b) != d.digest {
                return Err(Error::path(
                    std::path::PathBuf::from(store.describe()),
                    format!("holds a damaged blob {} — export it again", d.digest),
                ));
            }
            blobs.push((d, Bytes::from(b)));
        }
        out.push(Carried { manifest, blobs });
    }
    out.sort_by(|a, b| {
        let key = |c: &Carried| (artifact_type(&c.manifest), c.manifest.digest());
        key(a).cmp(&key(b))
    });
    Ok(out)
}

/// Its `artifactType`, else its config's media type (as the referrers API reports it).
fn artifact_type(manifest: &Doc) -> String {
    manifest
        .json("referrer")
        .ok()
        .and_then(|v| crate::oci::referrer::artifact_type(&v))
        .unwrap_or_default()
}

/// The referrers-index entry of a referrer manifest.
fn entry(manifest: &Doc) -> Value {
    let mut m = Map::new();
    m.insert("mediaType".into(), json!(manifest.media_type));
    m.insert("digest".into(), json!(manifest.digest()));
    m.insert("size".into(), json!(manifest.size()));
    let t = artifact_type(manifest);
    if !t.is_empty() {
        m.insert("artifactType".into(), json!(t));
    }
    if let Some(a) = manifest
        .json("referrer")
        .ok()
        .and_then(|v| v.get("annotations").cloned())
    {
        m.insert("annotations".into(), a);
    }
    Value::Object(m)
}

/// The referrers API, else the referrers tag.
async fn in_registry(r: &RegistryRef, subject: &str, opts: &RegistryOptions) -> Result<Vec<Value>> {
    let reg = Registry::connect(&r.registry, opts)?;
    let index = match reg.referrers(r, subject).await? {
        Some(doc) => Some(doc),
        None => {
            let tagged = RegistryRef {
                tag: Some(crate::oci::referrer::referrers_tag(subject)),
                digest: None,
                ..r.clone()
            };
            let scopes = scopes_for(r, Action::Pull);
            match reg.manifest_head(Action::Pull, &tagged, &scopes).await? {
                Some(_) => Some(reg.manifest_get(&tagged, &scopes).await?),
                None => None,
            }
        }
    };
    let Some(index) = index else {
        return Ok(Vec::new());
    };
    let v = index.json("referrers index")?;
    let entries = v["manifests"].as_array().cloned().unwrap_or_default();
    // Someone's multi-platform image under the tag name lists platforms, not attachments.
    if crate::oci::referrer::holds_an_image(&entries) {
        tracing::warn!(
            "{}:{} holds an image index, not referrers: nothing attached is listed",
            r.repo_name(),
            crate::oci::referrer::referrers_tag(subject)
        );
        return Ok(Vec::new());
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_for_a_referrer_without_artifact_type_names_its_config_media_type() {
        let m = json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.example.config+json",
                       "digest": digest::sha256(b"{}"), "size": 2},
            "layers": [],
        });
        let doc = Doc::new(media::OCI_MANIFEST, serde_json::to_vec(&m).unwrap());
        assert_eq!(
            entry(&doc)["artifactType"],
            "application/vnd.example.config+json"
        );
        // Nothing to name: no empty `artifactType` is written.
        let bare = Doc::new(media::OCI_MANIFEST, &b"{\"schemaVersion\":2}"[..]);
        assert!(entry(&bare).get("artifactType").is_none());
    }
}
