//! The image model: manifests, indexes and configs kept as their raw bytes (a re-serialised
//! manifest is a different manifest), parsed into `serde_json::Value` only to read or edit them,
//! so unknown fields survive. Blobs are not here: they sit behind a [`crate::oci::blob::BlobSource`].
use crate::error::{Error, Result};
pub(crate) use crate::oci::descriptor::Descriptor;
use crate::oci::digest;
pub(crate) use crate::oci::media;
pub(crate) use crate::oci::platform::Platform;
use bytes::Bytes;
use serde_json::{Map, Value};
use std::fmt;

/// A serialised JSON document (manifest, index or config) with its media type.
#[derive(Clone, PartialEq, Eq)]
pub struct Doc {
    /// The document's media type, as declared where it was found.
    pub media_type: String,
    /// The exact bytes; digests are computed over these.
    pub bytes: Bytes,
}

impl fmt::Debug for Doc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Doc({}, {})", self.media_type, self.digest())
    }
}

impl Doc {
    /// A document from its media type and bytes.
    pub fn new(media_type: impl Into<String>, bytes: impl Into<Bytes>) -> Self {
        Doc {
            media_type: media_type.into(),
            bytes: bytes.into(),
        }
    }
    /// `sha256:` digest of the bytes.
    pub fn digest(&self) -> String {
        digest::sha256(&self.bytes)
    }
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
    /// The bytes parsed as a JSON object; `what` names the document in errors.
    pub fn json(&self, what: &str) -> Result<Value> {
        let v: Value = serde_json::from_slice(&self.bytes)
            .map_err(|e| Error::invalid(what, format!("not valid JSON: {e}")))?;
        if !v.is_object() {
            return Err(Error::invalid(what, "expected a JSON object"));
        }
        Ok(v)
    }
    /// A descriptor pointing at this document.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest(),
            size: self.size(),
            platform: None,
            extra: Map::new(),
        }
    }
}

/// One image: its manifest and config documents, and the platform the index gave it.
#[derive(Debug, Clone)]
pub struct Image {
    /// The image manifest.
    pub manifest: Doc,
    /// The image config.
    pub config: Doc,
    /// The descriptor that pointed at this manifest in its index (platform, annotations).
    pub index_entry: Option<Descriptor>,
}

impl Image {
    /// The manifest parsed as JSON.
    pub fn manifest_json(&self) -> Result<Value> {
        self.manifest.json("image manifest")
    }

    /// The layer descriptors, base first.
    pub fn layers(&self) -> Result<Vec<Descriptor>> {
        layers_of(&self.manifest_json()?)
    }

    /// The descriptor of the config blob.
    pub fn config_descriptor(&self) -> Result<Descriptor> {
        let m = self.manifest_json()?;
        Descriptor::from_json(
            m.get("config")
                .ok_or_else(|| Error::invalid("image manifest", "lacks config"))?,
            "image manifest config",
        )
    }

    /// Platform from the index entry, else from the config.
    pub fn platform(&self) -> Option<Platform> {
        if let Some(p) = self.index_entry.as_ref().and_then(|d| d.platform.clone()) {
            return Some(p);
        }
        let c: Value = serde_json::from_slice(&self.config.bytes).ok()?;
        Platform::from_json(&c)
    }

    /// Every blob the manifest needs: config then layers.
    pub fn blobs(&self) -> Result<Vec<Descriptor>> {
        let mut v = vec![self.config_descriptor()?];
        v.extend(self.layers()?);
        Ok(v)
    }
}

pub(crate) fn layers_of(manifest: &Value) -> Result<Vec<Descriptor>> {
    let arr = manifest
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::invalid("image manifest", "lacks a layers array"))?;
    arr.iter()
        .enumerate()
        .map(|(i, l)| Descriptor::from_json(l, &format!("image manifest layers[{i}]")))
        .collect()
}

/// What a reference resolves to: one image, or an index of images.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // a handful of Roots per run; boxing buys nothing
pub enum Root {
    /// A single-platform image.
    Image(Image),
    /// An index (or Docker manifest list) and the images it lists that are runnable.
    Index {
        /// The index document as read.
        index: Doc,
        /// Its runnable images, in index order (attestations left out).
        images: Vec<Image>,
    },
}

impl Root {
    /// Every image: one for a single image, the runnable ones of an index.
    pub fn images(&self) -> &[Image] {
        match self {
            Root::Image(i) => std::slice::from_ref(i),
            Root::Index { images, .. } => images,
        }
    }

    /// The top-level document (manifest or index).
    pub fn doc(&self) -> &Doc {
        match self {
            Root::Image(i) => &i.manifest,
            Root::Index { index, .. } => index,
        }
    }

    /// Digest of the top-level document: the image's digest.
    pub fn digest(&self) -> String {
        self.doc().digest()
    }

    /// Every blob (configs and layers) of every image, each digest once, in a stable order.
    pub fn blobs(&self) -> Result<Vec<Descriptor>> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for img in self.images() {
            for d in img.blobs()? {
                if seen.insert(d.digest.clone()) {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }

    /// [`Root::blobs`] less the foreign (non-distributable) layers: what a sink copies. Their
    /// descriptors stay in the manifests, pointing at their URLs, as skopeo keeps them.
    pub fn distributable_blobs(&self) -> Result<Vec<Descriptor>> {
        let mut v = self.blobs()?;
        v.retain(|d| !media::is_foreign(&d.media_type));
        Ok(v)
    }

    /// The image to show a single-platform consumer (docker load): the host's if present,
    /// else the first; `None` only for an index without images.
    pub fn image_for(&self, wanted: &Platform) -> Option<&Image> {
        let imgs = self.images();
        imgs.iter()
            .find(|i| i.platform().is_some_and(|p| p.matches(wanted)))
            .or_else(|| imgs.first())
    }
}

/// Checks the manifest document's shape and media type; returns the media type to use.
pub fn check_manifest(doc_bytes: &[u8], declared: Option<&str>, what: &str) -> Result<String> {
    let v: Value = serde_json::from_slice(doc_bytes)
        .map_err(|e| Error::invalid(what, format!("manifest is not valid JSON: {e}")))?;
    let inner = v.get("mediaType").and_then(Value::as_str);
    let mt = match (declared, inner) {
        (Some(d), _) if !d.is_empty() && d != "application/json" => d.to_string(),
        (_, Some(i)) => i.to_string(),
        _ if v.get("manifests").is_some() => media::OCI_INDEX.to_string(),
        _ if v.get("layers").is_some() => media::OCI_MANIFEST.to_string(),
        _ => {
            return Err(Error::invalid(
                what,
                "neither an image manifest nor an index",
            ))
        }
    };
    if media::is_manifest(&mt) {
        if let Some(c) = v.get("config") {
            let ct = c.get("mediaType").and_then(Value::as_str).unwrap_or("");
            if ct != media::OCI_CONFIG && ct != media::DOCKER_CONFIG {
                return Err(Error::invalid(
                    what,
                    format!("is not a container image (config media type {ct:?}): an artifact such as a Helm chart cannot be a base"),
                ));
            }
        } else {
            return Err(Error::invalid(what, "image manifest lacks config"));
        }
        layers_of(&v)?;
    } else if media::is_index(&mt) {
        if !v.get("manifests").is_some_and(Value::is_array) {
            return Err(Error::invalid(what, "index lacks a manifests array"));
        }
    } else {
        return Err(Error::invalid(
            what,
            format!(
                "unsupported media type {mt:?} (expected an OCI or Docker v2 manifest or index)"
            ),
        ));
    }
    Ok(mt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rejects_non_images() {
        let helm = json!({"schemaVersion": 2, "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": digest::sha256(b"x"), "size": 1}, "layers": []});
        let e = check_manifest(
            &serde_json::to_vec(&helm).unwrap(),
            Some(media::OCI_MANIFEST),
            "base",
        )
        .unwrap_err();
        assert!(e.to_string().contains("Helm"), "{e}");
        let e = check_manifest(b"{not json", None, "base")
            .unwrap_err()
            .to_string();
        assert!(e.contains("base") && e.contains("JSON"), "{e}");
        let e = check_manifest(b"{\"schemaVersion\":2}", None, "base")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("base: neither an image manifest nor an index"),
            "{e}"
        );
    }

    #[test]
    fn an_empty_index_has_no_image_to_show_instead_of_panicking() {
        let root = Root::Index {
            index: Doc::new(
                media::OCI_INDEX,
                br#"{"schemaVersion":2,"manifests":[]}"#.to_vec(),
            ),
            images: vec![],
        };
        assert!(root.image_for(&Platform::host()).is_none());
        assert!(root.blobs().unwrap().is_empty());
    }
}
