//! The image model: manifests, indexes and configs kept as their raw bytes (a re-serialised
//! manifest is a different manifest), parsed into `serde_json::Value` only to read or edit them,
//! so unknown fields survive. Blobs are not here: they sit behind a [`crate::oci::blob::BlobSource`].
use crate::error::{Error, Result};
use crate::oci::digest;
use bytes::Bytes;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt;

pub mod media {
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

    /// Everything we can read as a base, in the order we prefer it.
    pub const ACCEPTED: &[&str] = &[OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

    pub fn is_index(mt: &str) -> bool {
        mt == OCI_INDEX || mt == DOCKER_LIST
    }
    pub fn is_manifest(mt: &str) -> bool {
        mt == OCI_MANIFEST || mt == DOCKER_MANIFEST
    }
    pub fn is_docker(mt: &str) -> bool {
        mt.starts_with("application/vnd.docker.")
    }
}

/// A serialised JSON document (manifest, index or config) with its media type.
#[derive(Clone, PartialEq, Eq)]
pub struct Doc {
    pub media_type: String,
    pub bytes: Bytes,
}

impl fmt::Debug for Doc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Doc({}, {})", self.media_type, self.digest())
    }
}

impl Doc {
    pub fn new(media_type: impl Into<String>, bytes: impl Into<Bytes>) -> Self {
        Doc {
            media_type: media_type.into(),
            bytes: bytes.into(),
        }
    }
    pub fn digest(&self) -> String {
        digest::sha256(&self.bytes)
    }
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
    pub fn json(&self, what: &str) -> Result<Value> {
        let v: Value = serde_json::from_slice(&self.bytes)
            .map_err(|e| Error::invalid(what, format!("not valid JSON: {e}")))?;
        if !v.is_object() {
            return Err(Error::invalid(what, "expected a JSON object"));
        }
        Ok(v)
    }
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

/// `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn parse(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |x: &&str| !x.is_empty();
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, v] if ok(os) && ok(arch) && ok(v) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(v.to_string()),
            }),
            _ => Err(Error::Usage(format!(
                "--platform {s:?}: expected OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8"
            ))),
        }
    }

    pub fn from_json(v: &Value) -> Option<Self> {
        Some(Platform {
            os: v.get("os")?.as_str()?.to_string(),
            architecture: v.get("architecture")?.as_str()?.to_string(),
            variant: v.get("variant").and_then(Value::as_str).map(str::to_string),
        })
    }

    /// The platform this binary runs on, in OCI spelling.
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// Whether a requested platform selects this one; a request without variant matches any
    /// variant, and arm64's implicit v8 matches an explicit one.
    pub fn matches(&self, wanted: &Platform) -> bool {
        self.os == wanted.os
            && self.architecture == wanted.architecture
            && match (&wanted.variant, &self.variant) {
                (None, _) => true,
                (Some(w), Some(v)) => w == v,
                (Some(w), None) => self.architecture == "arm64" && w == "v8",
            }
    }

    pub fn is_unknown(&self) -> bool {
        self.os == "unknown" || self.architecture == "unknown"
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A content descriptor; fields we don't model are kept in `extra` and written back.
#[derive(Debug, Clone, PartialEq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    pub platform: Option<Platform>,
    pub extra: Map<String, Value>,
}

impl Descriptor {
    pub fn from_json(v: &Value, what: &str) -> Result<Self> {
        let obj = v
            .as_object()
            .ok_or_else(|| Error::invalid(what, "descriptor is not an object"))?;
        let media_type = obj
            .get("mediaType")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid(what, "descriptor lacks mediaType"))?
            .to_string();
        let digest = obj
            .get("digest")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid(what, "descriptor lacks digest"))?
            .to_string();
        digest::check(&digest).map_err(|e| Error::invalid(what, e))?;
        let size = obj
            .get("size")
            .and_then(Value::as_u64)
            .ok_or_else(|| Error::invalid(what, "descriptor lacks a numeric size"))?;
        let platform = obj.get("platform").and_then(Platform::from_json);
        Ok(Descriptor {
            media_type,
            digest,
            size,
            platform,
            extra: obj.clone(),
        })
    }

    /// JSON form: the original object with our fields written over it (key order kept).
    pub fn to_json(&self) -> Value {
        let mut m = self.extra.clone();
        m.insert("mediaType".into(), json!(self.media_type));
        m.insert("digest".into(), json!(self.digest));
        m.insert("size".into(), json!(self.size));
        Value::Object(m)
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.extra.get("annotations")?.get(key)?.as_str()
    }

    pub fn is_attestation(&self) -> bool {
        self.annotation("vnd.docker.reference.type") == Some("attestation-manifest")
            || self.platform.as_ref().is_some_and(Platform::is_unknown)
    }
}

/// One image: its manifest and config documents, and the platform the index gave it.
#[derive(Debug, Clone)]
pub struct Image {
    pub manifest: Doc,
    pub config: Doc,
    /// The descriptor that pointed at this manifest in its index (platform, annotations).
    pub index_entry: Option<Descriptor>,
}

impl Image {
    pub fn manifest_json(&self) -> Result<Value> {
        self.manifest.json("image manifest")
    }

    pub fn layers(&self) -> Result<Vec<Descriptor>> {
        layers_of(&self.manifest_json()?)
    }

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

pub fn layers_of(manifest: &Value) -> Result<Vec<Descriptor>> {
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
    Image(Image),
    Index { index: Doc, images: Vec<Image> },
}

impl Root {
    pub fn images(&self) -> &[Image] {
        match self {
            Root::Image(i) => std::slice::from_ref(i),
            Root::Index { images, .. } => images,
        }
    }

    pub fn doc(&self) -> &Doc {
        match self {
            Root::Image(i) => &i.manifest,
            Root::Index { index, .. } => index,
        }
    }

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

    /// The image to show a single-platform consumer (docker load): the host's if present.
    pub fn image_for(&self, wanted: &Platform) -> &Image {
        let imgs = self.images();
        imgs.iter()
            .find(|i| i.platform().is_some_and(|p| p.matches(wanted)))
            .unwrap_or(&imgs[0])
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

/// Everything the append mutation needs besides the layer itself.
#[derive(Debug, Clone, Default)]
pub struct AppendOptions {
    pub config_path: String,
    /// RFC 3339 timestamp for `created` and the history entry; `None` keeps the base's value.
    pub created: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// `org.opencontainers.image.base.name` for OCI manifests.
    pub base_name: Option<String>,
    pub platforms: Vec<Platform>,
}

/// The new layer as the mutation sees it.
#[derive(Debug, Clone)]
pub struct LayerInfo {
    pub digest: String,
    pub diff_id: String,
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
            Ok(Root::Image(append_to_image(
                img,
                layer,
                opts,
                &base.digest(),
            )?))
        }
        Root::Index { index, images } => {
            let base_digest = index.digest();
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

fn append_to_image(
    img: &Image,
    layer: &LayerInfo,
    opts: &AppendOptions,
    base_digest: &str,
) -> Result<Image> {
    let docker = media::is_docker(&img.manifest.media_type);
    let mut m = img.manifest_json()?;
    let old_layers = layers_of(&m)?;

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
        let hist = c.entry("history").or_insert_with(|| json!([]));
        if let Some(a) = hist.as_array_mut() {
            a.push(Value::Object(h));
        }
        if let Some(t) = &opts.created {
            c.insert("created".into(), json!(t));
        }
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
    m["config"]["digest"] = json!(config.digest());
    m["config"]["size"] = json!(config.size());
    m["layers"]
        .as_array_mut()
        .expect("checked by layers_of")
        .push(json!({"mediaType": layer_mt, "digest": layer.digest, "size": layer.size}));
    if !docker {
        let mut ann = BTreeMap::new();
        if let Some(n) = &opts.base_name {
            ann.insert("org.opencontainers.image.base.name".to_string(), n.clone());
        }
        ann.insert(
            "org.opencontainers.image.base.digest".to_string(),
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
    fn rejects_non_images() {
        let helm = json!({"schemaVersion": 2, "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": digest::sha256(b"x"), "size": 1}, "layers": []});
        let e = check_manifest(
            &serde_json::to_vec(&helm).unwrap(),
            Some(media::OCI_MANIFEST),
            "base",
        )
        .unwrap_err();
        assert!(e.to_string().contains("Helm"), "{e}");
        assert!(check_manifest(b"{not json", None, "base").is_err());
        assert!(check_manifest(b"{\"schemaVersion\":2}", None, "base").is_err());
    }
}
