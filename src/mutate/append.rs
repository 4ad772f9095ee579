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
mod tests {
    use super::*;
    use crate::oci::digest;

    fn cfg(arch: &str) -> Doc {
        Doc::new(
            media::OCI_CONFIG,
            serde_json::to_vec(&json!({
                "architecture": arch, "os": "linux", "created": "2024-01-01T00:00:00Z",
                "config": {"User": "2048", "Cmd": ["imposter"], "Labels": {"z": "1", "a": "2"}},
                "rootfs": {"type": "layers", "diff_ids": [digest::sha256(b"base")]},
                "history": [{"created_by": "base"}],
                "x-unknown": {"keep": true}
            }))
            .unwrap(),
        )
    }

    fn image(mt: &str, arch: &str) -> Image {
        let config = cfg(arch);
        let m = json!({
            "schemaVersion": 2, "mediaType": mt,
            "config": {"mediaType": if media::is_docker(mt) {media::DOCKER_CONFIG} else {media::OCI_CONFIG}, "digest": config.digest(), "size": config.size()},
            "layers": [{"mediaType": media::OCI_LAYER_GZIP, "digest": digest::sha256(b"gz"), "size": 2}]
        });
        Image {
            manifest: Doc::new(mt, serde_json::to_vec(&m).unwrap()),
            config,
            index_entry: None,
        }
    }

    fn index() -> Root {
        let a = image(media::OCI_MANIFEST, "amd64");
        let b = image(media::OCI_MANIFEST, "arm64");
        let att = digest::sha256(b"att");
        let idx = json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": [
            {"mediaType": media::OCI_MANIFEST, "digest": a.manifest.digest(), "size": a.manifest.size(), "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": media::OCI_MANIFEST, "digest": b.manifest.digest(), "size": b.manifest.size(), "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}, "annotations": {"keep": "me"}},
            {"mediaType": media::OCI_MANIFEST, "digest": att, "size": 10, "platform": {"os": "unknown", "architecture": "unknown"}, "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}
        ]});
        let index = Doc::new(media::OCI_INDEX, serde_json::to_vec(&idx).unwrap());
        let entries = idx["manifests"].as_array().unwrap();
        let a = Image {
            index_entry: Some(Descriptor::from_json(&entries[0], "t").unwrap()),
            ..a
        };
        let b = Image {
            index_entry: Some(Descriptor::from_json(&entries[1], "t").unwrap()),
            ..b
        };
        Root::Index {
            index,
            images: vec![a, b],
        }
    }

    fn layer() -> LayerInfo {
        LayerInfo {
            digest: digest::sha256(b"layer"),
            diff_id: digest::sha256(b"tar"),
            size: 5,
        }
    }

    fn opts() -> AppendOptions {
        AppendOptions {
            config_path: "/opt/imposter/config".into(),
            engine_config_dir: "/opt/imposter/config".into(),
            ..Default::default()
        }
    }

    #[test]
    fn appends_to_every_platform_and_drops_attestations() {
        let out = append_layer(&index(), &layer(), &opts()).unwrap();
        let Root::Index { index, images } = &out else {
            panic!()
        };
        assert_eq!(images.len(), 2);
        let v = index.json("x").unwrap();
        let entries = v["manifests"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1]["annotations"]["keep"], "me");
        assert_eq!(entries[1]["platform"]["variant"], "v8");
        for (e, img) in entries.iter().zip(images) {
            assert_eq!(e["digest"], img.manifest.digest());
            let m = img.manifest_json().unwrap();
            assert_eq!(m["config"]["digest"], img.config.digest());
            let layers = img.layers().unwrap();
            assert_eq!(layers.len(), 2);
            assert_eq!(layers[1].media_type, media::OCI_LAYER_GZIP);
            let c = img.config.json("c").unwrap();
            assert_eq!(c["rootfs"]["diff_ids"][1], layer().diff_id);
            assert_eq!(c["history"].as_array().unwrap().len(), 2);
            assert_eq!(c["x-unknown"]["keep"], true);
            assert_eq!(c["config"]["User"], "2048");
            assert_eq!(c["created"], "2024-01-01T00:00:00Z");
            // key order of the base survives
            let keys: Vec<_> = c["config"]["Labels"].as_object().unwrap().keys().collect();
            assert_eq!(keys, ["z", "a"]);
            assert!(m["annotations"]["org.opencontainers.image.base.digest"]
                .as_str()
                .unwrap()
                .starts_with("sha256:"));
        }
    }

    #[test]
    fn platform_selection_and_errors() {
        let mut o = opts();
        o.platforms = vec![Platform::parse("linux/arm64").unwrap()];
        let out = append_layer(&index(), &layer(), &o).unwrap();
        assert_eq!(out.images().len(), 1);
        assert_eq!(out.images()[0].platform().unwrap().architecture, "arm64");
        o.platforms = vec![Platform::parse("linux/s390x").unwrap()];
        let e = append_layer(&index(), &layer(), &o).unwrap_err();
        assert!(e.is_usage());
        assert!(e.to_string().contains("linux/amd64"), "{e}");
    }

    #[test]
    fn docker_base_gets_docker_layer_and_no_annotations() {
        let base = Root::Image(image(media::DOCKER_MANIFEST, "amd64"));
        let mut o = opts();
        o.created = Some("2025-01-01T00:00:00Z".into());
        o.labels.insert("team".into(), "mocks".into());
        let out = append_layer(&base, &layer(), &o).unwrap();
        let img = &out.images()[0];
        assert_eq!(
            img.layers().unwrap()[1].media_type,
            media::DOCKER_LAYER_GZIP
        );
        assert!(img.manifest_json().unwrap().get("annotations").is_none());
        let c = img.config.json("c").unwrap();
        assert_eq!(c["created"], "2025-01-01T00:00:00Z");
        assert_eq!(c["config"]["Labels"]["team"], "mocks");
        // same input, same bytes
        let again = append_layer(&base, &layer(), &o).unwrap();
        assert_eq!(again.digest(), out.digest());
    }

    #[test]
    fn a_config_without_rootfs_gets_one_instead_of_a_panic() {
        let mut img = image(media::OCI_MANIFEST, "amd64");
        let m = json!({
            "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
            "config": {"mediaType": media::OCI_CONFIG, "digest": digest::sha256(b"{}"), "size": 2},
            "layers": []
        });
        img.manifest = Doc::new(media::OCI_MANIFEST, serde_json::to_vec(&m).unwrap());
        img.config = Doc::new(media::OCI_CONFIG, b"{}".to_vec());
        let out = append_layer(&Root::Image(img), &layer(), &opts()).unwrap();
        let c = out.images()[0].config.json("c").unwrap();
        assert_eq!(c["rootfs"]["diff_ids"], json!([layer().diff_id]));
    }

    #[test]
    fn malformed_documents_are_errors_not_panics() {
        let mut img = image(media::OCI_MANIFEST, "amd64");
        img.config = Doc::new(media::OCI_CONFIG, br#"{"rootfs": "flat"}"#.to_vec());
        let e = append_layer(&Root::Image(img.clone()), &layer(), &opts()).unwrap_err();
        assert!(e.to_string().contains("rootfs"), "{e}");
        let m = json!({"schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "config": "x", "layers": []});
        img.manifest = Doc::new(media::OCI_MANIFEST, serde_json::to_vec(&m).unwrap());
        img.config = cfg("amd64");
        let e = append_layer(&Root::Image(img), &layer(), &opts()).unwrap_err();
        assert!(e.to_string().contains("config"), "{e}");
    }

    #[test]
    fn an_index_without_manifests_is_refused() {
        let index = Doc::new(
            media::OCI_INDEX,
            br#"{"schemaVersion":2,"manifests":[]}"#.to_vec(),
        );
        let root = Root::Index {
            index,
            images: vec![],
        };
        let e = append_layer(&root, &layer(), &opts()).unwrap_err();
        assert!(e.to_string().contains("no runnable image"), "{e}");
    }

    #[test]
    fn a_base_without_history_gets_one_entry_per_layer() {
        for history in [
            None,
            Some(json!([])),
            Some(json!([{"created_by": "x", "empty_layer": true}])),
        ] {
            let mut img = image(media::OCI_MANIFEST, "amd64");
            let mut c = img.config.json("c").unwrap();
            match &history {
                Some(h) => c["history"] = h.clone(),
                None => {
                    c.as_object_mut().unwrap().remove("history");
                }
            }
            img.config = Doc::new(media::OCI_CONFIG, serde_json::to_vec(&c).unwrap());
            let m = img.manifest_json().unwrap();
            let config_desc = json!({"mediaType": media::OCI_CONFIG, "digest": img.config.digest(), "size": img.config.size()});
            let mut m2 = m.clone();
            m2["config"] = config_desc;
            img.manifest = Doc::new(media::OCI_MANIFEST, serde_json::to_vec(&m2).unwrap());
            let out = append_layer(&Root::Image(img), &layer(), &opts()).unwrap();
            let c = out.images()[0].config.json("c").unwrap();
            let h = c["history"].as_array().unwrap();
            let non_empty = h
                .iter()
                .filter(|e| e.get("empty_layer") != Some(&json!(true)))
                .count();
            assert_eq!(
                non_empty,
                c["rootfs"]["diff_ids"].as_array().unwrap().len(),
                "{history:?}: {h:?}"
            );
            assert_eq!(h[0]["comment"], "base layer without history");
            assert_eq!(h[0]["created"], "2024-01-01T00:00:00Z");
        }
    }
}
