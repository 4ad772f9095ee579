//! The referrer manifest that carries one attachment (image-spec 1.1 "artifacts"): an image
//! manifest with an `artifactType`, the empty config (`{}`), the document as its one layer, and
//! the image as its `subject`. This is the shape `oras attach` writes and the guidance in
//! image-spec's `manifest.md` ("Guidelines for Artifact Usage") gives for an artifact without a
//! config of its own.
use crate::error::{Error, Result};
use crate::oci::digest;
use crate::oci::image::{Descriptor, Doc};
use crate::oci::media;
use bytes::Bytes;
use serde_json::{json, Map, Value};

/// The empty descriptor's media type (image-spec 1.1).
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The empty blob: `{}`.
pub const EMPTY_BLOB: &[u8] = b"{}";
/// The SBOM's artifact and layer type.
pub const SPDX_MEDIA_TYPE: &str = "application/spdx+json";
/// An in-toto statement's artifact type (and its layer type when unsigned).
pub const IN_TOTO_MEDIA_TYPE: &str = "application/vnd.in-toto+json";
/// A DSSE envelope's media type: the signed provenance's layer.
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The layer annotation naming the predicate of an in-toto layer (as BuildKit and cosign set it).
pub const PREDICATE_TYPE_ANNOTATION: &str = "in-toto.io/predicate-type";

/// One attachment, ready to write: its manifest and the blobs it names.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// `sbom`, `provenance` (or the artifact type of one carried from elsewhere), for messages
    /// and `--json`.
    pub kind: String,
    /// The manifest's `artifactType`.
    pub artifact_type: String,
    /// The referrer manifest.
    pub manifest: Doc,
    /// Its config (the empty blob) then its layer (the document): descriptor and bytes.
    pub blobs: Vec<(Descriptor, Bytes)>,
}

impl Attachment {
    /// The empty config's descriptor.
    pub fn empty_config() -> Descriptor {
        Doc::new(EMPTY_MEDIA_TYPE, Bytes::from_static(EMPTY_BLOB)).descriptor()
    }

    /// An attachment read back from a layout or archive (`mockimg push` carries it on).
    pub fn from_carried(c: &crate::source::referrers::Carried) -> Result<Attachment> {
        let v = c.manifest.json("referrer manifest")?;
        let artifact_type = crate::oci::referrer::artifact_type(&v).ok_or_else(|| {
            Error::invalid(
                format!("referrer manifest {}", c.manifest.digest()),
                "has neither an artifactType nor a config media type",
            )
        })?;
        let kind = match artifact_type.as_str() {
            SPDX_MEDIA_TYPE => "sbom".to_string(),
            IN_TOTO_MEDIA_TYPE => "provenance".to_string(),
            other => other.to_string(),
        };
        Ok(Attachment {
            kind,
            artifact_type,
            manifest: c.manifest.clone(),
            blobs: c.blobs.clone(),
        })
    }

    /// The attached document: the manifest's (last) layer.
    pub fn document(&self) -> &Bytes {
        &self.blobs.last().expect("an attachment has a layer").1
    }

    /// The entry for this attachment in a referrers index (distribution-spec 1.1: the
    /// manifest's descriptor with its `artifactType` and annotations).
    pub fn index_entry(&self) -> Value {
        index_entry(&self.manifest, &self.artifact_type)
    }
}

/// The referrers-index entry for `manifest`: its descriptor, `artifactType`, and annotations.
pub fn index_entry(manifest: &Doc, artifact_type: &str) -> Value {
    let mut m = Map::new();
    m.insert("mediaType".into(), json!(manifest.media_type));
    m.insert("digest".into(), json!(manifest.digest()));
    m.insert("size".into(), json!(manifest.size()));
    m.insert("artifactType".into(), json!(artifact_type));
    if let Ok(v) = manifest.json("referrer manifest") {
        if let Some(a) = v.get("annotations") {
            m.insert("annotations".into(), a.clone());
        }
    }
    Value::Object(m)
}

/// The SBOM attachment for `subject`.
pub fn sbom(doc: Vec<u8>, subject: &Doc) -> Attachment {
    build(
        "sbom",
        SPDX_MEDIA_TYPE,
        SPDX_MEDIA_TYPE,
        "sbom.spdx.json",
        None,
        doc,
        subject,
    )
}

/// The unsigned provenance attachment: the in-toto statement itself as the layer.
pub fn provenance(statement: Vec<u8>, subject: &Doc) -> Attachment {
    build(
        "provenance",
        IN_TOTO_MEDIA_TYPE,
        IN_TOTO_MEDIA_TYPE,
        "provenance.intoto.json",
        Some(super::provenance::SLSA_PREDICATE_TYPE),
        statement,
        subject,
    )
}

/// The signed provenance: the DSSE envelope as the layer.
///
/// The `artifactType` stays `application/vnd.in-toto+json` and only the layer says
/// `application/vnd.dsse.envelope.v1+json`: the artifact type answers "what is this
/// attachment" (an in-toto attestation, signed or not), which is what `oras discover
/// --artifact-type` and policy tools filter on, while the layer type says how its bytes are
/// encoded — the way cosign's own attestation layers are typed `application/vnd.dsse.envelope.v1+json`
/// and BuildKit's in-toto layers carry the predicate type in an annotation. A consumer that
/// looks for provenance finds it the same way whether or not a key was given.
pub fn signed_provenance(envelope: Vec<u8>, subject: &Doc) -> Attachment {
    build(
        "provenance",
        IN_TOTO_MEDIA_TYPE,
        DSSE_MEDIA_TYPE,
        "provenance.intoto.dsse.json",
        Some(super::provenance::SLSA_PREDICATE_TYPE),
        envelope,
        subject,
    )
}

fn build(
    kind: &str,
    artifact_type: &str,
    layer_type: &str,
    title: &str,
    predicate: Option<&str>,
    bytes: Vec<u8>,
    subject: &Doc,
) -> Attachment {
    let mut annotations = Map::new();
    if let Some(p) = predicate {
        annotations.insert(PREDICATE_TYPE_ANNOTATION.into(), json!(p));
    }
    // The title lets `oras pull` save the document under a file name.
    annotations.insert("org.opencontainers.image.title".into(), json!(title));
    let layer = Descriptor {
        media_type: layer_type.to_string(),
        digest: digest::sha256(&bytes),
        size: bytes.len() as u64,
        platform: None,
        extra: Map::from_iter([("annotations".to_string(), Value::Object(annotations))]),
    };
    let s = subject.descriptor();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": Attachment::empty_config().to_json(),
        "layers": [layer.to_json()],
        "subject": {"mediaType": s.media_type, "digest": s.digest, "size": s.size},
    });
    Attachment {
        kind: kind.to_string(),
        artifact_type: artifact_type.to_string(),
        manifest: Doc::new(
            media::OCI_MANIFEST,
            serde_json::to_vec(&manifest).expect("JSON values serialise"),
        ),
        blobs: vec![
            (Attachment::empty_config(), Bytes::from_static(EMPTY_BLOB)),
            (layer, Bytes::from(bytes)),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_referrer_manifest_has_the_empty_config_one_layer_and_the_subject() {
        let subject = Doc::new(media::OCI_INDEX, &b"{\"schemaVersion\":2}"[..]);
        let a = sbom(b"{\"spdxVersion\":\"SPDX-2.3\"}".to_vec(), &subject);
        let m = a.manifest.json("m").unwrap();
        assert_eq!(m["artifactType"], SPDX_MEDIA_TYPE);
        assert_eq!(m["config"]["mediaType"], EMPTY_MEDIA_TYPE);
        assert_eq!(
            m["config"]["digest"],
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(m["config"]["size"], 2);
        assert_eq!(m["layers"].as_array().unwrap().len(), 1);
        assert_eq!(m["layers"][0]["digest"], digest::sha256(a.document()));
        assert_eq!(m["subject"]["digest"], subject.digest());
        assert_eq!(m["subject"]["mediaType"], media::OCI_INDEX);
        let e = a.index_entry();
        assert_eq!(e["digest"], a.manifest.digest());
        assert_eq!(e["artifactType"], SPDX_MEDIA_TYPE);
    }

    #[test]
    fn a_carried_referrer_without_artifact_type_takes_its_config_media_type() {
        let m = json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.example.sig.config+json",
                       "digest": digest::sha256(b"{}"), "size": 2},
            "layers": [],
            "subject": {"mediaType": media::OCI_MANIFEST, "digest": digest::sha256(b"x"), "size": 1},
        });
        let c = crate::source::referrers::Carried {
            manifest: Doc::new(media::OCI_MANIFEST, serde_json::to_vec(&m).unwrap()),
            blobs: vec![(Attachment::empty_config(), Bytes::from_static(EMPTY_BLOB))],
        };
        let a = Attachment::from_carried(&c).unwrap();
        assert_eq!(a.artifact_type, "application/vnd.example.sig.config+json");
        assert_eq!(
            a.index_entry()["artifactType"],
            "application/vnd.example.sig.config+json"
        );
        // Neither: refused, naming the manifest.
        let bare = json!({"schemaVersion": 2, "mediaType": media::OCI_MANIFEST});
        let c = crate::source::referrers::Carried {
            manifest: Doc::new(media::OCI_MANIFEST, serde_json::to_vec(&bare).unwrap()),
            blobs: Vec::new(),
        };
        let e = Attachment::from_carried(&c).unwrap_err().to_string();
        assert!(e.contains("artifactType"), "{e}");
    }

    #[test]
    fn signed_provenance_keeps_the_in_toto_artifact_type_and_types_its_layer_dsse() {
        let subject = Doc::new(media::OCI_MANIFEST, &b"{}"[..]);
        let a = signed_provenance(b"{}".to_vec(), &subject);
        let m = a.manifest.json("m").unwrap();
        assert_eq!(m["artifactType"], IN_TOTO_MEDIA_TYPE);
        assert_eq!(m["layers"][0]["mediaType"], DSSE_MEDIA_TYPE);
        assert_eq!(
            m["layers"][0]["annotations"][PREDICATE_TYPE_ANNOTATION],
            "https://slsa.dev/provenance/v1"
        );
    }
}
