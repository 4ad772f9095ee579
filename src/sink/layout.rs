//! Writes an image into an OCI image layout directory (`--oci-layout DIR`), and what the archive
//! writer shares with it: the names an image gets in `index.json`, the documents to store.
use crate::error::{Error, Result};
use crate::oci::blob::Source;
use crate::oci::image::{media, Doc, Root};
use crate::sink::atomic;
use crate::sink::refetch::copy_blob;
use crate::source::layout::{CONTAINERD_NAME, REF_NAME};
use crate::source::store::blob_path;
use serde_json::{json, Value};
use std::path::Path;

/// The `oci-layout` file every layout starts with.
pub(crate) const OCI_LAYOUT_FILE: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Names an image gets in a layout/archive: the OCI ref name (tag) and the full name.
#[derive(Debug, Clone)]
pub struct ImageName {
    /// `repo:tag` as docker prints it (`RepoTags`): Docker Hub's prefixes dropped.
    pub full: String,
    /// `registry/repo:tag` fully qualified, as containerd names images (`io.containerd.image.name`).
    pub qualified: String,
    /// The tag alone, for `org.opencontainers.image.ref.name`.
    pub tag: String,
}

impl ImageName {
    /// The names for an image pushed or tagged as `r` (`latest` when it has no tag).
    pub fn from_registry_ref(r: &crate::oci::reference::RegistryRef) -> ImageName {
        let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
        let qualified = format!("{}:{tag}", r.repo_name());
        let mut repo = r.repo_name();
        if let Some(rest) = repo.strip_prefix("docker.io/library/") {
            repo = rest.to_string();
        } else if let Some(rest) = repo.strip_prefix("docker.io/") {
            repo = rest.to_string();
        }
        ImageName {
            full: format!("{repo}:{tag}"),
            qualified,
            tag,
        }
    }
}

/// Every document of the image tree: children then root.
pub(crate) fn docs(root: &Root) -> Vec<&Doc> {
    let mut v: Vec<&Doc> = Vec::new();
    if let Root::Index { .. } = root {
        v.extend(root.images().iter().map(|i| &i.manifest));
    }
    v.push(root.doc());
    v
}

/// The `index.json` entry for the image, annotated with its names when it has them.
pub(crate) fn root_descriptor(root: &Root, name: Option<&ImageName>) -> Value {
    let mut d = root.doc().descriptor().to_json();
    if let Some(n) = name {
        d["annotations"] = json!({ REF_NAME: n.tag, CONTAINERD_NAME: n.qualified });
    }
    d
}

/// Adds the image to an OCI layout directory (created if needed), once per name in `names`
/// (untagged when there are none). Blobs already present are kept as they are; new ones are
/// verified on the way to disk.
pub(crate) async fn write(src: &Source, dir: &Path, names: &[ImageName]) -> Result<()> {
    // A layout this call creates is removed again if the image cannot be written in full; an
    // existing one only ever gains verified blobs, and its index changes last.
    let existed = dir.exists();
    let empty = match std::fs::read_dir(dir) {
        Ok(mut d) => d.next().is_none(),
        Err(_) if !existed => true,
        Err(e) => return Err(Error::io("reading layout directory", dir, e)),
    };
    // Writing blobs/ and index.json into some other directory (`--oci-layout .`) would litter it.
    if !empty && !dir.join("oci-layout").is_file() {
        return Err(Error::path(
            dir,
            "is not empty and not an OCI image layout (no oci-layout file) — give a new or empty directory",
        ));
    }
    let r = add(src, dir, names).await;
    if r.is_err() && empty {
        if existed {
            for name in ["blobs", "oci-layout", "index.json"] {
                let p = dir.join(name);
                let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
            }
        } else {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    r
}

async fn add(src: &Source, dir: &Path, names: &[ImageName]) -> Result<()> {
    let blobs_dir = dir.join("blobs/sha256");
    tokio::fs::create_dir_all(&blobs_dir)
        .await
        .map_err(|e| Error::io("creating layout", &blobs_dir, e))?;
    let layout = dir.join("oci-layout");
    if !layout.exists() {
        atomic::write(&layout, OCI_LAYOUT_FILE, atomic::READABLE)?;
    }
    for d in src.root.blobs()? {
        let mut dest = dir.join(blob_path(&d.digest)?);
        if dest.is_file() {
            continue;
        }
        copy_blob(src, &d, &mut dest, |dest, s| {
            Box::pin(atomic::write_stream(dest, s))
        })
        .await?;
    }
    for doc in docs(&src.root) {
        let dest = dir.join(blob_path(&doc.digest())?);
        if !dest.is_file() {
            atomic::write(&dest, &doc.bytes, atomic::READABLE)?;
        }
    }
    let index_path = dir.join("index.json");
    let mut index: Value = match std::fs::read(&index_path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| {
            Error::path(
                &index_path,
                format!("is not valid JSON ({e}) — fix or remove the layout"),
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": []})
        }
        Err(e) => return Err(Error::io("reading", &index_path, e)),
    };
    let manifests = index
        .get_mut("manifests")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| Error::path(&index_path, "lacks a manifests array"))?;
    if names.is_empty() {
        // Untagged: listed once, and an entry that already names this image (tagged or not)
        // is kept as it is rather than losing its tag.
        let entry = root_descriptor(&src.root, None);
        if !manifests.iter().any(|m| m["digest"] == entry["digest"]) {
            manifests.push(entry);
        }
    }
    for n in names {
        // A tag names one image: the new one replaces an older one of the same name.
        manifests.retain(|m| m["annotations"][REF_NAME].as_str() != Some(n.tag.as_str()));
        manifests.push(root_descriptor(&src.root, Some(n)));
    }
    atomic::write(
        &index_path,
        &serde_json::to_vec(&index).expect("serialises"),
        atomic::READABLE,
    )
}
