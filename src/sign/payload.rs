//! What cosign stores for a key-pair signature: the simple-signing payload (the signed bytes),
//! and the OCI manifest tagged `sha256-<hex>.sig` that carries it as a layer with the signature
//! in an annotation. Bytes are laid out as cosign (Go's `encoding/json`, go-containerregistry's
//! structs) writes them, so a verifier sees the same documents either tool would push.
use crate::oci::digest;
use crate::oci::media;
use serde_json::{json, Value};

/// Media type of the payload layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Layer annotation holding the base64 signature over the payload.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// The simple-signing payload for `image_digest` pushed as `docker_reference` (`host/repo`,
/// no tag). Field order is Go's struct order; `optional` is `null` as cosign leaves it.
pub fn simple_signing(docker_reference: &str, image_digest: &str) -> Vec<u8> {
    let v = json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": image_digest},
            "type": "cosign container image signature",
        },
        "optional": null,
    });
    serde_json::to_vec(&v).expect("JSON values serialise")
}

/// The tag cosign stores the signatures of `image_digest` under: `sha256-<hex>.sig`.
pub fn signature_tag(image_digest: &str) -> String {
    format!("{}.sig", image_digest.replacen(':', "-", 1))
}

/// One signature: the payload bytes and the base64 DER signature over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The simple-signing payload.
    pub payload: Vec<u8>,
    /// Base64 of the ASN.1 DER ECDSA signature over `payload`.
    pub signature: String,
}

/// The layer descriptor of one signature: the payload blob, the signature in its annotation.
pub fn signature_layer(s: &Signed) -> Value {
    json!({
        "mediaType": SIMPLE_SIGNING_MEDIA_TYPE,
        "size": s.payload.len(),
        "digest": digest::sha256(&s.payload),
        "annotations": {SIGNATURE_ANNOTATION: s.signature},
    })
}

/// The `.sig` image over `layers` (descriptors as [`signature_layer`] makes them, or kept from
/// the `.sig` image already there): `(config bytes, manifest bytes)`. The config is what
/// go-containerregistry writes for layers appended to an empty image: zero times, empty
/// platform, one history entry and one diff_id (the layer's digest: payloads are not
/// compressed) per layer.
pub fn signature_image(layers: &[Value]) -> (Vec<u8>, Vec<u8>) {
    let zero = "0001-01-01T00:00:00Z";
    let diff_ids: Vec<&Value> = layers.iter().map(|l| &l["digest"]).collect();
    let config = json!({
        "architecture": "",
        "created": zero,
        "history": layers.iter().map(|_| json!({"created": zero})).collect::<Vec<_>>(),
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
    });
    let config = serde_json::to_vec(&config).expect("JSON values serialise");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {
            "mediaType": media::OCI_CONFIG,
            "size": config.len(),
            "digest": digest::sha256(&config),
        },
        "layers": layers,
    });
    let manifest = serde_json::to_vec(&manifest).expect("JSON values serialise");
    (config, manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_is_cosigns_simple_signing_json_byte_for_byte() {
        let p = simple_signing("127.0.0.1:5000/team/mocks", "sha256:abc");
        assert_eq!(
            String::from_utf8(p).unwrap(),
            "{\"critical\":{\"identity\":{\"docker-reference\":\"127.0.0.1:5000/team/mocks\"},\
             \"image\":{\"docker-manifest-digest\":\"sha256:abc\"},\
             \"type\":\"cosign container image signature\"},\"optional\":null}"
        );
    }

    #[test]
    fn the_signature_tag_replaces_the_colon() {
        assert_eq!(signature_tag("sha256:0123ab"), "sha256-0123ab.sig");
    }

    #[test]
    fn the_signature_image_carries_one_annotated_layer_per_signature() {
        let s = |sig: &str| Signed {
            payload: b"{}".to_vec(),
            signature: sig.into(),
        };
        let (config, manifest) =
            signature_image(&[signature_layer(&s("AAA")), signature_layer(&s("BBB"))]);
        let d = digest::sha256(b"{}");
        assert_eq!(
            String::from_utf8(config.clone()).unwrap(),
            format!(
                "{{\"architecture\":\"\",\"created\":\"0001-01-01T00:00:00Z\",\"history\":\
                 [{{\"created\":\"0001-01-01T00:00:00Z\"}},{{\"created\":\"0001-01-01T00:00:00Z\"}}],\
                 \"os\":\"\",\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[\"{d}\",\"{d}\"]}},\
                 \"config\":{{}}}}"
            )
        );
        let m: Value = serde_json::from_slice(&manifest).unwrap();
        assert_eq!(m["mediaType"], media::OCI_MANIFEST);
        assert_eq!(m["config"]["digest"], digest::sha256(&config));
        assert_eq!(m["config"]["size"], config.len());
        assert_eq!(m["layers"][0]["mediaType"], SIMPLE_SIGNING_MEDIA_TYPE);
        assert_eq!(m["layers"][0]["digest"], d);
        assert_eq!(m["layers"][1]["annotations"][SIGNATURE_ANNOTATION], "BBB");
    }
}
