//! Re-describing an image in the other media-type family (OCI ⇄ Docker schema2). Only the
//! descriptors change: configs and layers keep their bytes (and digests), while manifests and
//! indexes are rewritten, so they get new digests. A document that needs no change keeps its
//! exact bytes, so converting an image to its own family is free and digest-neutral.
use crate::error::{Error, Result};
use crate::oci::image::{media, Doc, Image, Root};
use serde_json::{json, Value};

/// A family of media types for manifests, indexes, configs and layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `application/vnd.oci.image.*`: what OCI layouts and archives must hold.
    Oci,
    /// `application/vnd.docker.*` (schema2): what older registries and tools expect.
    Docker,
}

impl Family {
    /// The family an image is described in now (judged by its root document).
    pub fn of(root: &Root) -> Family {
        if media::is_docker(&root.doc().media_type) {
            Family::Docker
        } else {
            Family::Oci
        }
    }

    fn manifest(self) -> &'static str {
        match self {
            Family::Oci => media::OCI_MANIFEST,
            Family::Docker => media::DOCKER_MANIFEST,
        }
    }

    fn index(self) -> &'static str {
        match self {
            Family::Oci => media::OCI_INDEX,
            Family::Docker => media::DOCKER_LIST,
        }
    }

    fn config(self) -> &'static str {
        match self {
            Family::Oci => media::OCI_CONFIG,
            Family::Docker => media::DOCKER_CONFIG,
        }
    }
}

/// The layer media type in family `to`. OCI manifests get OCI types even for layers a base
/// described with Docker types (the uncompressed Docker type is not even in Docker's schema2
/// spec); a layer type Docker schema2 cannot express (zstd) cannot be converted.
fn layer_type(mt: &str, to: Family) -> Result<String> {
    let pairs = [
        (media::OCI_LAYER_GZIP, media::DOCKER_LAYER_GZIP),
        (media::OCI_LAYER_TAR, media::DOCKER_LAYER_TAR),
        (media::OCI_FOREIGN_GZIP, media::DOCKER_FOREIGN_GZIP),
    ];
    let found = pairs.iter().find_map(|&(oci, docker)| match to {
        Family::Oci if docker == mt => Some(oci),
        Family::Docker if oci == mt => Some(docker),
        _ => None,
    });
    if let Some(t) = found {
        return Ok(t.to_string());
    }
    match to {
        Family::Oci if !media::is_docker(mt) => Ok(mt.to_string()),
        Family::Oci => Err(Error::invalid(
            "image manifest",
            format!("has a layer of Docker type {mt:?}, which has no OCI equivalent"),
        )),
        Family::Docker if media::is_docker(mt) => Ok(mt.to_string()),
        Family::Docker => Err(Error::Usage(format!(
            "the base has a layer of type {mt:?}, which a Docker schema2 manifest cannot describe — use --format oci"
        ))),
    }
}

/// `img` described in family `to`; the same image (same bytes) when nothing changes.
pub(crate) fn convert_image(img: &Image, to: Family) -> Result<Image> {
    let mut m = img.manifest_json()?;
    let mut changed = img.manifest.media_type != to.manifest();
    let config_mt = if changed || img.config.media_type != to.config() {
        to.config()
    } else {
        img.config.media_type.as_str()
    };
    if let Some(c) = m.get_mut("config").and_then(Value::as_object_mut) {
        if c.get("mediaType").and_then(Value::as_str) != Some(config_mt) {
            c.insert("mediaType".into(), json!(config_mt));
            changed = true;
        }
    }
    let layers = m
        .get_mut("layers")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| Error::invalid("image manifest", "lacks a layers array"))?;
    for l in layers.iter_mut() {
        let mt = l.get("mediaType").and_then(Value::as_str).unwrap_or("");
        let new = layer_type(mt, to)?;
        if new != mt {
            l["mediaType"] = json!(new);
            changed = true;
        }
    }
    if !changed {
        return Ok(img.clone());
    }
    // Docker schema2 requires mediaType in the document; OCI recommends it: always write it.
    m["mediaType"] = json!(to.manifest());
    Ok(Image {
        manifest: Doc::new(to.manifest(), to_bytes(&m)),
        config: Doc::new(config_mt, img.config.bytes.clone()),
        index_entry: img.index_entry.clone(),
    })
}

/// `root` described in family `to`: every image, and the index pointing at them.
pub(crate) fn convert(root: &Root, to: Family) -> Result<Root> {
    match root {
        Root::Image(img) => Ok(Root::Image(convert_image(img, to)?)),
        Root::Index { index, images } => {
            let mut v = index.json("image index")?;
            let mut changed = index.media_type != to.index();
            let mut new_images = Vec::with_capacity(images.len());
            for img in images {
                let new = convert_image(img, to)?;
                let (old_d, new_d) = (img.manifest.digest(), new.manifest.digest());
                let mut new = new;
                if old_d != new_d {
                    changed = true;
                    for e in v
                        .get_mut("manifests")
                        .and_then(Value::as_array_mut)
                        .into_iter()
                        .flatten()
                    {
                        if e.get("digest").and_then(Value::as_str) == Some(old_d.as_str()) {
                            e["digest"] = json!(new_d);
                            e["size"] = json!(new.manifest.size());
                            e["mediaType"] = json!(new.manifest.media_type);
                        }
                    }
                    if let Some(d) = new.index_entry.as_mut() {
                        d.digest = new_d;
                        d.size = new.manifest.size();
                        d.media_type = new.manifest.media_type.clone();
                    }
                }
                new_images.push(new);
            }
            if !changed {
                return Ok(root.clone());
            }
            v["mediaType"] = json!(to.index());
            Ok(Root::Index {
                index: Doc::new(to.index(), to_bytes(&v)),
                images: new_images,
            })
        }
    }
}

fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("a Value always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::digest;
    use crate::oci::image::Descriptor;

    fn image(manifest_mt: &str, config_mt: &str, layer_mts: &[&str]) -> Image {
        let config = Doc::new(
            config_mt,
            br#"{"architecture":"amd64","os":"linux"}"#.to_vec(),
        );
        let layers: Vec<Value> = layer_mts
            .iter()
            .enumerate()
            .map(
                |(i, mt)| json!({"mediaType": mt, "digest": digest::sha256(&[i as u8]), "size": 1}),
            )
            .collect();
        let m = json!({
            "schemaVersion": 2, "mediaType": manifest_mt,
            "config": {"mediaType": config_mt, "digest": config.digest(), "size": config.size()},
            "layers": layers,
        });
        Image {
            manifest: Doc::new(manifest_mt, to_bytes(&m)),
            config,
            index_entry: None,
        }
    }

    fn docker_image() -> Image {
        image(
            media::DOCKER_MANIFEST,
            media::DOCKER_CONFIG,
            &[
                media::DOCKER_LAYER_GZIP,
                media::DOCKER_LAYER_TAR,
                media::DOCKER_FOREIGN_GZIP,
            ],
        )
    }

    #[test]
    fn a_docker_image_becomes_oci_with_the_same_config_and_layer_bytes() {
        let d = docker_image();
        let o = convert_image(&d, Family::Oci).unwrap();
        assert_eq!(o.manifest.media_type, media::OCI_MANIFEST);
        assert_eq!(o.config.media_type, media::OCI_CONFIG);
        assert_eq!(o.config.digest(), d.config.digest());
        let m = o.manifest_json().unwrap();
        assert_eq!(m["mediaType"], media::OCI_MANIFEST);
        assert_eq!(m["config"]["mediaType"], media::OCI_CONFIG);
        let types: Vec<&str> = m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["mediaType"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                media::OCI_LAYER_GZIP,
                media::OCI_LAYER_TAR,
                media::OCI_FOREIGN_GZIP
            ]
        );
        let back = convert_image(&o, Family::Docker).unwrap();
        assert_eq!(back.manifest_json().unwrap(), d.manifest_json().unwrap());
    }

    #[test]
    fn an_image_already_in_the_family_keeps_its_exact_bytes() {
        let o = image(
            media::OCI_MANIFEST,
            media::OCI_CONFIG,
            &[media::OCI_LAYER_GZIP],
        );
        assert_eq!(convert_image(&o, Family::Oci).unwrap().manifest, o.manifest);
        let d = docker_image();
        assert_eq!(
            convert_image(&d, Family::Docker).unwrap().manifest,
            d.manifest
        );
    }

    #[test]
    fn docker_layer_types_in_an_oci_manifest_get_oci_types() {
        let mixed = image(
            media::OCI_MANIFEST,
            media::OCI_CONFIG,
            &[media::DOCKER_LAYER_TAR],
        );
        let o = convert_image(&mixed, Family::Oci).unwrap();
        assert_ne!(o.manifest, mixed.manifest);
        assert_eq!(o.layers().unwrap()[0].media_type, media::OCI_LAYER_TAR);
    }

    #[test]
    fn zstd_cannot_be_described_by_docker_schema2() {
        let z = image(
            media::OCI_MANIFEST,
            media::OCI_CONFIG,
            &["application/vnd.oci.image.layer.v1.tar+zstd"],
        );
        let e = convert_image(&z, Family::Docker).unwrap_err();
        assert!(e.to_string().contains("--format oci"), "{e}");
    }

    #[test]
    fn an_index_points_at_the_converted_manifests() {
        let mut d = docker_image();
        let entry = json!({"mediaType": media::DOCKER_MANIFEST, "digest": d.manifest.digest(), "size": d.manifest.size(), "platform": {"os": "linux", "architecture": "amd64"}});
        d.index_entry = Some(Descriptor::from_json(&entry, "t").unwrap());
        let idx =
            json!({"schemaVersion": 2, "mediaType": media::DOCKER_LIST, "manifests": [entry]});
        let root = Root::Index {
            index: Doc::new(media::DOCKER_LIST, to_bytes(&idx)),
            images: vec![d],
        };
        let o = convert(&root, Family::Oci).unwrap();
        assert_eq!(o.doc().media_type, media::OCI_INDEX);
        let v = o.doc().json("t").unwrap();
        let img = &o.images()[0];
        assert_eq!(v["mediaType"], media::OCI_INDEX);
        assert_eq!(v["manifests"][0]["digest"], img.manifest.digest());
        assert_eq!(v["manifests"][0]["mediaType"], media::OCI_MANIFEST);
        assert_eq!(v["manifests"][0]["platform"]["architecture"], "amd64");
        let e = img.index_entry.as_ref().unwrap();
        assert_eq!(e.digest, img.manifest.digest());
        assert_eq!(Family::of(&o), Family::Oci);
        assert_eq!(Family::of(&root), Family::Docker);
    }
}
