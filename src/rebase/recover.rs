//! What `mockimg build` appended to an image, read back from the image: the config layer (from
//! mockimg's history entry, which names the version and `--config-path`) and the options it
//! applied (labels, annotations, env, `created`, platforms), as the difference between the
//! image and the base it records. Nothing extra is recorded at build time, so existing images
//! and their digests stay as they are.
use crate::error::{Error, Result};
use crate::imposter::engine::ENGINE_CONFIG_DIR;
use crate::mutate::append::{AppendOptions, LayerInfo};
use crate::mutate::runconfig::CONFIG_DIR_ENV;
use crate::oci::convert::Family;
use crate::oci::image::{Image, Platform, Root};
use oci_spec::image::{ANNOTATION_BASE_IMAGE_DIGEST, ANNOTATION_BASE_IMAGE_NAME};
use serde_json::Value;
use std::collections::BTreeMap;

/// The comment of the history entry `append` writes for the config layer.
const HISTORY_COMMENT: &str = "imposter config layer";

/// What one image's mockimg history entry and last layer say.
#[derive(Debug, Clone)]
pub(crate) struct Appended {
    /// The config layer: the image's last layer.
    pub(crate) layer: LayerInfo,
    /// `--config-path` of the build.
    pub(crate) config_path: String,
    /// The mockimg version that built the image.
    pub(crate) version: String,
    /// The history entry's `created`.
    pub(crate) created: Option<String>,
}

/// Reads the layer mockimg appended to `img`; an image whose last layer mockimg did not make
/// is refused.
pub(crate) fn appended(img: &Image, what: &str) -> Result<Appended> {
    let refuse = |why: String| {
        Error::invalid(
            what,
            format!(
                "was not built by mockimg ({why}) — rebase moves only images `mockimg build` made; \
                 build this one with `mockimg build CONFIG_DIR --base NEW_BASE` instead"
            ),
        )
    };
    let cfg = img.config.json("image config")?;
    let last = cfg
        .get("history")
        .and_then(Value::as_array)
        .and_then(|h| {
            h.iter()
                .rev()
                .find(|e| e.get("empty_layer").and_then(Value::as_bool) != Some(true))
        })
        .ok_or_else(|| refuse("its config has no history".into()))?;
    let created_by = last.get("created_by").and_then(Value::as_str).unwrap_or("");
    let parsed = created_by
        .strip_prefix("mockimg ")
        .and_then(|s| s.split_once(": COPY config "))
        .filter(|_| last.get("comment").and_then(Value::as_str) == Some(HISTORY_COMMENT));
    let Some((version, config_path)) = parsed else {
        return Err(refuse(format!("its last layer was made by {created_by:?}")));
    };
    let layers = img.layers()?;
    let diff_id = cfg
        .get("rootfs")
        .and_then(|r| r.get("diff_ids"))
        .and_then(Value::as_array)
        .and_then(|d| d.last())
        .and_then(Value::as_str);
    let (Some(layer), Some(diff_id)) = (layers.last(), diff_id) else {
        return Err(refuse("it has no layers".into()));
    };
    Ok(Appended {
        layer: LayerInfo {
            digest: layer.digest.clone(),
            diff_id: diff_id.to_string(),
            size: layer.size,
        },
        config_path: config_path.to_string(),
        version: version.to_string(),
        created: last
            .get("created")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// `org.opencontainers.image.base.name` and `.digest` as the image records them (OCI manifests
/// only: Docker schema2 has no annotations).
pub(crate) fn recorded_base(root: &Root) -> (Option<String>, Option<String>) {
    let Some(img) = root.images().first() else {
        return (None, None);
    };
    let m = img.manifest_json().unwrap_or_default();
    let get = |k: &str| {
        m.get("annotations")
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    (
        get(ANNOTATION_BASE_IMAGE_NAME),
        get(ANNOTATION_BASE_IMAGE_DIGEST),
    )
}

/// The config layer and the options of the build, recovered from the image and its old base.
#[derive(Debug, Clone)]
pub(crate) struct Recovered {
    /// The config layer, reused byte for byte.
    pub(crate) layer: LayerInfo,
    /// The options `append` applied (base name and digest left to the caller).
    pub(crate) opts: AppendOptions,
    /// The media-type family the image is described in.
    pub(crate) family: Family,
    /// The mockimg version that built the image.
    pub(crate) version: String,
}

/// The old base's image for `img`'s platform.
fn base_image_for<'a>(base: &'a Root, img: &Image) -> Option<&'a Image> {
    match (base, img.platform()) {
        (Root::Image(b), _) => Some(b),
        (Root::Index { images, .. }, Some(p)) => images.iter().find(|b| {
            b.platform()
                .is_some_and(|bp| bp.matches(&p) && p.matches(&bp))
        }),
        (Root::Index { images, .. }, None) => images.first(),
    }
}

fn map_of(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn env_of(cfg: &Value) -> BTreeMap<String, String> {
    cfg.get("config")
        .and_then(|c| c.get("Env"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter_map(|e| e.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// What `image` has that `base` has not (or has with another value).
fn added(
    image: BTreeMap<String, String>,
    base: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    image
        .into_iter()
        .filter(|(k, v)| base.get(k) != Some(v))
        .collect()
}

/// Recovers the build of `image` on `old_base`: every platform must carry the same mockimg
/// layer on top of exactly the old base's layers.
pub(crate) fn recover(image: &Root, image_name: &str, old_base: &Root) -> Result<Recovered> {
    let images = image.images();
    let first = images
        .first()
        .ok_or_else(|| Error::invalid(image_name, "holds no image"))?;
    let a = appended(first, image_name)?;
    for img in images {
        let p = platform_name(img);
        let b = appended(img, &format!("{image_name} ({p})"))?;
        if b.layer.digest != a.layer.digest || b.config_path != a.config_path {
            return Err(Error::invalid(
                image_name,
                format!("its {p} image has another config layer than its first image: not one mockimg build"),
            ));
        }
        let base = base_image_for(old_base, img).ok_or_else(|| {
            Error::invalid(image_name, format!("its recorded base has no {p} image"))
        })?;
        let mine: Vec<String> = img.layers()?.into_iter().map(|l| l.digest).collect();
        let theirs: Vec<String> = base.layers()?.into_iter().map(|l| l.digest).collect();
        if mine.len() != theirs.len() + 1 || mine[..theirs.len()] != theirs[..] {
            return Err(Error::invalid(
                image_name,
                format!(
                    "its {p} layers are not its recorded base's plus one config layer — it was \
                     changed after mockimg built it, or give the base it was built on with --old-base"
                ),
            ));
        }
    }
    let base = base_image_for(old_base, first).expect("checked above");
    let cfg = first.config.json("image config")?;
    let base_cfg = base.config.json("base image config")?;
    let labels = added(
        map_of(cfg.get("config").and_then(|c| c.get("Labels"))),
        &map_of(base_cfg.get("config").and_then(|c| c.get("Labels"))),
    );
    let mut env = added(env_of(&cfg), &env_of(&base_cfg));
    // Put there by --config-path itself (runconfig), which the rebase applies again.
    if env.get(CONFIG_DIR_ENV) == Some(&a.config_path) {
        env.remove(CONFIG_DIR_ENV);
    }
    let mut annotations = added(
        map_of(first.manifest_json()?.get("annotations")),
        &map_of(base.manifest_json()?.get("annotations")),
    );
    if let (Root::Index { index, .. }, Root::Index { index: bi, .. }) = (image, old_base) {
        annotations.extend(added(
            map_of(index.json("image index")?.get("annotations")),
            &map_of(bi.json("base index")?.get("annotations")),
        ));
    }
    annotations.remove(ANNOTATION_BASE_IMAGE_NAME);
    annotations.remove(ANNOTATION_BASE_IMAGE_DIGEST);
    // `created` follows the base unless SOURCE_DATE_EPOCH set it.
    let base_created = base_cfg.get("created").and_then(Value::as_str);
    let created = a
        .created
        .clone()
        .filter(|c| Some(c.as_str()) != base_created);
    let platforms: Vec<Platform> = if images.len() == old_base.images().len() {
        Vec::new()
    } else {
        images.iter().filter_map(Image::platform).collect()
    };
    Ok(Recovered {
        layer: a.layer,
        opts: AppendOptions {
            config_path: a.config_path,
            // Both engines read config from one directory when told nothing; the old base and
            // the new one are Imposter images alike.
            engine_config_dir: ENGINE_CONFIG_DIR.to_string(),
            env,
            created,
            labels,
            annotations,
            base_name: None,
            base_digest: None,
            platforms,
        },
        family: Family::of(image),
        version: a.version,
    })
}

/// `os/arch[/variant]`, or `unknown`.
pub(crate) fn platform_name(img: &Image) -> String {
    img.platform()
        .map(|p| p.to_string())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutate::append::append_layer;
    use crate::oci::digest;
    use crate::oci::image::{media, Doc};
    use serde_json::json;

    fn base() -> Root {
        let cfg = json!({
            "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
            "config": {"Env": ["PATH=/bin", "IMPOSTER_CONFIG_DIR=/opt/imposter/config"],
                       "Cmd": ["imposter", "--configDir=/opt/imposter/config"],
                       "Labels": {"org.opencontainers.image.version": "4.9.3"}},
            "rootfs": {"type": "layers", "diff_ids": [digest::sha256(b"base")]},
            "history": [{"created_by": "base"}]
        });
        let config = Doc::new(media::OCI_CONFIG, serde_json::to_vec(&cfg).unwrap());
        let m = json!({
            "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
            "config": {"mediaType": media::OCI_CONFIG, "digest": config.digest(), "size": config.size()},
            "layers": [{"mediaType": media::OCI_LAYER_GZIP, "digest": digest::sha256(b"gz"), "size": 2}],
            "annotations": {"org.opencontainers.image.version": "4.9.3"}
        });
        Root::Image(Image {
            manifest: Doc::new(media::OCI_MANIFEST, serde_json::to_vec(&m).unwrap()),
            config,
            index_entry: None,
        })
    }

    fn layer() -> LayerInfo {
        LayerInfo {
            digest: digest::sha256(b"layer"),
            diff_id: digest::sha256(b"tar"),
            size: 5,
        }
    }

    #[test]
    fn the_options_of_a_build_come_back_and_reproduce_it() {
        for created in [None, Some("2025-05-05T00:00:00Z".to_string())] {
            let mut opts = AppendOptions {
                config_path: "/srv/mocks".into(),
                engine_config_dir: ENGINE_CONFIG_DIR.into(),
                created: created.clone(),
                base_name: Some("r/x@sha256:0".into()),
                ..Default::default()
            };
            opts.env.insert("IMPOSTER_LOG_LEVEL".into(), "DEBUG".into());
            opts.labels.insert("team".into(), "mocks".into());
            opts.annotations
                .insert("org.opencontainers.image.revision".into(), "abc".into());
            let built = append_layer(&base(), &layer(), &opts).unwrap();
            let r = recover(&built, "img", &base()).unwrap();
            assert_eq!(r.opts.config_path, "/srv/mocks");
            assert_eq!(r.opts.created, created);
            assert_eq!(r.opts.env, opts.env);
            assert_eq!(r.opts.labels, opts.labels);
            assert_eq!(r.opts.annotations, opts.annotations);
            assert_eq!(r.layer.diff_id, layer().diff_id);
            let again = append_layer(
                &base(),
                &r.layer,
                &AppendOptions {
                    base_name: opts.base_name.clone(),
                    ..r.opts
                },
            )
            .unwrap();
            assert_eq!(again.digest(), built.digest());
        }
    }

    #[test]
    fn an_image_mockimg_did_not_build_is_refused() {
        let e = recover(&base(), "team/app:1", &base())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("team/app:1") && e.contains("not built by mockimg"),
            "{e}"
        );
        assert!(e.contains("\"base\""), "{e}");
    }

    #[test]
    fn an_image_not_on_its_recorded_base_is_refused() {
        let built = append_layer(
            &base(),
            &layer(),
            &AppendOptions {
                config_path: "/opt/imposter/config".into(),
                engine_config_dir: ENGINE_CONFIG_DIR.into(),
                ..Default::default()
            },
        )
        .unwrap();
        let other = append_layer(&base(), &layer(), &AppendOptions::default()).unwrap();
        let e = recover(&built, "img", &other).unwrap_err().to_string();
        assert!(e.contains("--old-base"), "{e}");
    }
}
