//! DSSE (Dead Simple Signing Envelope, secure-systems-lab/dsse `envelope.md` and
//! `protocol.md`): the statement is signed through its pre-authentication encoding, so a
//! signature can never be replayed over the same bytes read as another type.
use super::artifact::IN_TOTO_MEDIA_TYPE;
use crate::sign::SigningKey;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::json;

/// `PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths as ASCII
/// decimal byte counts: the bytes a DSSE signature is made over.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The envelope around an in-toto `statement`, one signature per key (ECDSA P-256 SHA-256 over
/// the PAE, DER, base64: what cosign's DSSE signer writes). `keyid` is left empty, as cosign
/// leaves it for key-pair signatures: the verifier is handed the key.
pub fn envelope(statement: &[u8], keys: &[SigningKey]) -> Vec<u8> {
    let signed = pae(IN_TOTO_MEDIA_TYPE, statement);
    let signatures: Vec<_> = keys
        .iter()
        .map(|k| json!({"keyid": "", "sig": B64.encode(k.sign(&signed))}))
        .collect();
    let v = json!({
        "payloadType": IN_TOTO_MEDIA_TYPE,
        "payload": B64.encode(statement),
        "signatures": signatures,
    });
    serde_json::to_vec(&v).expect("JSON values serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_the_dsse_specs_encoding() {
        // The worked example of the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn the_envelope_carries_the_payload_and_one_signature_per_key() {
        let keys = [SigningKey::generate(), SigningKey::generate()];
        let e: serde_json::Value = serde_json::from_slice(&envelope(b"{}", &keys)).unwrap();
        assert_eq!(e["payloadType"], IN_TOTO_MEDIA_TYPE);
        assert_eq!(B64.decode(e["payload"].as_str().unwrap()).unwrap(), b"{}");
        assert_eq!(e["signatures"].as_array().unwrap().len(), 2);
    }
}
