//! The one mutation: append the config layer to every selected image of a base, rewrite each
//! config (diff_ids, history, created, labels) and manifest, and rebuild the index. Documents are
//! edited as `serde_json::Value` so fields mockimg does not know survive.
use super::runconfig;
use crate::error::{Error, Result};
use crate::oci::image::layers_of;
use crate::oci::image::{media, Descriptor, Doc, Image, Platform, Root};
use oci_spec::image::{ANNOTATION_BASE_IMAGE_DIGEST, ANNOTATION_BASE_IMAGE_NAME};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Everything the append mutation needs besides the layer itself.
#[derive(Debug, Clone, Default)]
pub struct AppendOptions {
    /// Where the layer puts the config; the engine is pointed there (see `runconfig::apply`).
    pub config_path: String,
    /// Where the base's engine reads config when told nothing (the engine's facts): a
    /// `config_path` equal to it leaves the run settings alone.
    pub engine_config_dir: String,
    /// Variables set in the image config's `Env`, replacing the base's value of the same name.
    pub env: BTreeMap<String, String>,
    /// RFC 3339 timestamp for `created` and the history entry; `None` keeps the base's value.
    pub created: Option<String>,
    /// Image config labels to add or replace.
    pub labels: BTreeMap<String, String>,
    /// Annotations for OCI manifests and the index.
    pub annotations: BTreeMap<String, String>,
    /// `org.opencontainers.image.base.name` for OCI manifests.
    pub base_name: Option<String>,
    /// `org.opencontainers.image.base.digest`; `None` records the digest of the root given to
    /// [`append_layer`] (set it when that root was re-described from the real base).
    pub base_digest: Option<String>,
    /// Platforms to keep; empty keeps every platform of the base.
    pub platforms: Vec<Platform>,
}

/// The new layer as the mutation sees it.
#[derive(Debug, Clone)]
pub struct LayerInfo {
    /// Digest of the compressed layer blob.
    pub digest: String,
    /// Digest of the uncompressed tar, appended to `rootfs.diff_ids`.
    pub diff_id: String,
    /// Compressed size in bytes.
    pub size: u64,
}

/// The one mutation: append the config layer to every (selected) image and rebuild the index.
pub fn append_layer(base: &Root, layer: &LayerInfo, opts: &AppendOptions) -> Result<Root> {
    match base {
        Root::Image(img) => {
            if !opts.platforms.is_empty() {
                let p = img.platform();
                if !opts
                    .platforms
                    .iter()
                    .any(|w| p.as_ref().is_some_and(|p| p.matches(w)))
                {
                    return Err(Error::Usage(format!(
                        "--platform {}: the base is a single image for {}; drop --platform or pick a base that has it",
                        join(&opts.platforms),
                        p.map(|p| p.to_string()).unwrap_or_else(|| "an unknown platform".into())
                    )));
                }
            }
            let base_digest = opts.base_digest.clone().unwrap_or_else(|| base.digest());
            Ok(Root::Image(append_to_image(
                img,
                layer,
                opts,
                &base_digest,
            )?))
        }
        Root::Index { index, images } => {
            let base_digest = opts.base_digest.clone().unwrap_or_else(|| index.digest());
            let mut v = index.json("base index")?;
            let entries = v
                .get("manifests")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for w in &opts.platforms {
                if !images
                    .iter()
                    .any(|i| i.platform().is_some_and(|p| p.matches(w)))
                {
                    let have: Vec<String> = images
                        .iter()
                        .filter_map(|i| i.platform().map(|p| p.to_string()))
                        .collect();
                    return Err(Error::Usage(format!(
                        "--platform {w}: the base has no such platform (it has {}); pick one of those",
                        have.join(", ")
                    )));
                }
            }
            let mut new_images = Vec::new();
            let mut new_entries = Vec::new();
            for (i, e) in entries.iter().enumerate() {
                let desc = Descriptor::from_json(e, &format!("base index manifests[{i}]"))?;
                let Some(img) = images.iter().find(|im| im.manifest.digest() == desc.digest) else {
                    continue; // attestations and other non-image entries: they describe the base
                };
                if !opts.platforms.is_empty()
                    && !opts
                        .platforms
                        .iter()
                        .any(|w| img.platform().is_some_and(|p| p.matches(w)))
                {
                    continue;
                }
                let new_img = append_to_image(img, layer, opts, &base_digest)?;
                let mut nd = desc.clone();
                nd.digest = new_img.manifest.digest();
                nd.size = new_img.manifest.size();
                nd.media_type = new_img.manifest.media_type.clone();
                new_entries.push(nd.to_json());
                new_images.push(Image {
                    index_entry: Some(nd),
                    ..new_img
                });
            }
            if new_images.is_empty() {
                return Err(Error::invalid("base index", "contains no runnable image"));
            }
            v["manifests"] = Value::Array(new_entries);
            if index.media_type == media::OCI_INDEX && !opts.annotations.is_empty() {
                merge_annotations(&mut v, &opts.annotations);
            }
            Ok(Root::Index {
                index: Doc::new(index.media_type.clone(), to_bytes(&v)),
                images: new_images,
            })
        }
    }
}

fn join(p: &[Platform]) -> String {
    p.iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("a Value always serialises")
}

fn merge_annotations(v: &mut Value, extra: &BTreeMap<String, String>) {
    let obj = v.as_object_mut().expect("checked object");
    let ann = obj
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !ann.is_object() {
        *ann = Value::Object(Map::new());
    }
    let ann = ann.as_object_mut().expect("just made an object");
    for (k, val) in extra {
        ann.insert(k.clone(), json!(val));
    }
}

/// Tools pair non-empty history entries with layers one to one (`buildah commit` refuses an
/// image where they disagree, `docker history` shifts every comment). A base with fewer entries
/// than layers (no history at all, as `docker import` makes) gets one synthetic entry per
/// unexplained layer, put first because the known entries describe the latest layers.
fn pad_history(history: &mut Vec<Value>, layers: usize, created: Option<Value>) {
    let non_empty = history
        .iter()
        .filter(|h| h.get("empty_layer").and_then(Value::as_bool) != Some(true))
        .count();
    let missing = layers.saturating_sub(non_empty);
    if missing == 0 {
        return;
    }
    let synthetic = (0..missing).map(|_| {
        let mut e = Map::new();
        if let Some(t) = &created {
            e.insert("created".into(), t.clone());
        }
        e.insert("comment".into(), json!("base layer without history"));
        Value::Object(e)
    });
    history.splice(0..0, synthetic);
}

fn append_to_image(
    img: &Image,
    layer: &LayerInfo,
    opts: &AppendOptions,
    base_digest: &str,
) -> Result<Image> {
    let docker = media::is_docker(&img.manifest.media_type);
    let mut m = img.manifest_json()?;
    let old_layers = layers_of(&m)?;
    // `json()` guarantees objects, so the config edits below cannot hit a non-object.

    let mut cfg = img.config.json("image config")?;
    let created = opts.created.clone().or_else(|| {
        cfg.get("created")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    {
        let c = cfg.as_object_mut().expect("checked object");
        let rootfs = c
            .entry("rootfs")
            .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
        let diff_ids = rootfs
            .get_mut("diff_ids")
            .and_then(Value::as_array_mut)
            .ok_or_else(|| Error::invalid("image config", "rootfs lacks diff_ids"))?;
        if diff_ids.len() != old_layers.len() {
            return Err(Error::invalid(
                "image config",
                format!(
                    "has {} diff_ids but the manifest has {} layers",
                    diff_ids.len(),
                    old_layers.len()
                ),
            ));
        }
        diff_ids.push(json!(layer.diff_id));
        let mut h = Map::new();
        if let Some(t) = &created {
            h.insert("created".into(), json!(t));
        }
        h.insert(
            "created_by".into(),
            json!(format!(
                "mockimg {}: COPY config {}",
                env!("CARGO_PKG_VERSION"),
                opts.config_path
            )),
        );
        h.insert("comment".into(), json!("imposter config layer"));
        let base_created = c.get("created").cloned();
        let hist = c.entry("history").or_insert_with(|| json!([]));
        if !hist.is_array() {
            *hist = json!([]);
        }
        if let Some(a) = hist.as_array_mut() {
            pad_history(a, old_layers.len(), base_created);
            a.push(Value::Object(h));
        }
        if let Some(t) = &opts.created {
            c.insert("created".into(), json!(t));
        }
        runconfig::apply(c, &opts.config_path, &opts.engine_config_dir, &opts.env)?;
        if !opts.labels.is_empty() {
            let inner = c.entry("config").or_insert_with(|| json!({}));
            if !inner.is_object() {
                *inner = json!({});
            }
            let labels = inner
                .as_object_mut()
                .expect("object")
                .entry("Labels")
                .or_insert_with(|| json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            for (k, val) in &opts.labels {
                labels
                    .as_object_mut()
                    .expect("object")
                    .insert(k.clone(), json!(val));
            }
        }
    }
    let config = Doc::new(img.config.media_type.clone(), to_bytes(&cfg));

    let layer_mt = if docker {
        media::DOCKER_LAYER_GZIP
    } else {
        media::OCI_LAYER_GZIP
    };
    let cfg_desc = m
        .get_mut("config")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| Error::invalid("image manifest", "config is not a descriptor object"))?;
    cfg_desc.insert("digest".into(), json!(config.digest()));
    cfg_desc.insert("size".into(), json!(config.size()));
    m.get_mut("layers")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| Error::invalid("image manifest", "lacks a layers array"))?
        .push(json!({"mediaType": layer_mt, "digest": layer.digest, "size": layer.size}));
    if !docker {
        let mut ann = BTreeMap::new();
        if let Some(n) = &opts.base_name {
            ann.insert(ANNOTATION_BASE_IMAGE_NAME.to_string(), n.clone());
        }
        ann.insert(
            ANNOTATION_BASE_IMAGE_DIGEST.to_string(),
            base_digest.to_string(),
        );
        ann.extend(opts.annotations.clone());
        merge_annotations(&mut m, &ann);
    }
    Ok(Image {
        manifest: Doc::new(img.manifest.media_type.clone(), to_bytes(&m)),
        config,
        index_entry: img.index_entry.clone(),
    })
}

#[cfg(test)]
#[path = "append_tests.rs"]
mod tests;
