//! Signing keys as cosign writes them: the password-protected `ENCRYPTED SIGSTORE PRIVATE KEY`
//! PEM (older cosign: `ENCRYPTED COSIGN PRIVATE KEY`) and plain PKCS#8 (or SEC1) PEM, ECDSA P-256
//! only, which is what cosign's own key pairs are.
//!
//! The encrypted form is a JSON envelope (go-securesystemslib's `encrypted` format): the key is
//! derived from the password with scrypt (`kdf.params` N, r, p and a random `kdf.salt`) and the
//! PKCS#8 DER of the private key is sealed with NaCl secretbox (XSalsa20-Poly1305, random
//! `cipher.nonce`). Byte fields are standard base64, as Go's `encoding/json` writes `[]byte`.
use crate::error::{Error, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use p256::ecdsa::signature::Signer;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// PEM label cosign writes today.
pub const ENCRYPTED_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// PEM label of keys made by cosign before it moved to the sigstore library.
const LEGACY_ENCRYPTED_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";

/// scrypt cost cosign uses for new keys (N = 2^15, r = 8, p = 1: 32 MiB, well under a second).
const SCRYPT_LOG_N: u8 = 15;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
/// A key file may ask for more work than cosign does, but not unbounded memory or time:
/// N ≤ 2^20 and r ≤ 32 (4 GiB would be 2^22 × 8 × 128) keep a hostile file from exhausting us.
const MAX_LOG_N: u8 = 20;
const MAX_R: u32 = 32;
const MAX_P: u32 = 16;

/// An ECDSA P-256 private key ready to sign, with the file it came from (for messages).
#[derive(Clone)]
pub struct SigningKey {
    key: p256::ecdsa::SigningKey,
    /// The key file, named in errors and never its contents.
    pub path: PathBuf,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret: only where it came from.
        write!(f, "SigningKey({})", self.path.display())
    }
}

impl SigningKey {
    /// A key from a PEM file's text; `password` opens an encrypted one.
    pub fn from_pem(pem: &str, password: Option<&[u8]>, path: &Path) -> Result<SigningKey> {
        let bad = |m: String| Error::path(path, m);
        let label = pem_label(pem).ok_or_else(|| {
            bad("not a PEM key file (expected a cosign.key or a PKCS#8 EC private key)".into())
        })?;
        let secret = match label.as_str() {
            ENCRYPTED_LABEL | LEGACY_ENCRYPTED_LABEL => {
                let password = password.ok_or_else(|| {
                    bad("the key is encrypted: set COSIGN_PASSWORD or pass \
                         --sign-key-password-stdin"
                        .into())
                })?;
                let body = pem_body(pem, &label).map_err(bad)?;
                let der = decrypt(&body, password).map_err(bad)?;
                p256::SecretKey::from_pkcs8_der(&der)
                    .map_err(|e| bad(format!("the decrypted key is not an ECDSA P-256 key: {e}")))?
            }
            "PRIVATE KEY" => p256::SecretKey::from_pkcs8_pem(pem).map_err(|e| {
                bad(format!(
                    "not an ECDSA P-256 PKCS#8 key ({e}); only P-256 keys are supported"
                ))
            })?,
            "EC PRIVATE KEY" => p256::SecretKey::from_sec1_pem(pem).map_err(|e| {
                bad(format!(
                    "not an ECDSA P-256 key ({e}); only P-256 keys are supported"
                ))
            })?,
            "ENCRYPTED PRIVATE KEY" => {
                return Err(bad(
                    "PKCS#8-encrypted keys are not supported: use a cosign.key \
                     (mockimg generate-key) or an unencrypted PKCS#8 key"
                        .into(),
                ))
            }
            other => {
                return Err(bad(format!(
                    "a {other:?} PEM block is not a private key: pass the private half \
                     (cosign.key), not cosign.pub"
                )))
            }
        };
        Ok(SigningKey {
            key: p256::ecdsa::SigningKey::from(&secret),
            path: path.to_path_buf(),
        })
    }

    /// Reads and opens a key file.
    pub fn load(path: &Path, password: Option<&[u8]>) -> Result<SigningKey> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::io("reading signing key", path, e))?;
        Self::from_pem(&text, password, path)
    }

    /// A new random key (from the operating system's generator).
    pub fn generate() -> SigningKey {
        SigningKey {
            key: p256::ecdsa::SigningKey::random(&mut OsRng),
            path: PathBuf::new(),
        }
    }

    /// ASN.1 DER ECDSA-P256-SHA256 signature over `msg`, as cosign writes (RFC 6979: the same
    /// key and message always give the same signature, so a re-push changes nothing).
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let sig: p256::ecdsa::Signature = self.key.sign(msg);
        sig.to_der().as_bytes().to_vec()
    }

    /// The public key as a PKIX `PUBLIC KEY` PEM (cosign.pub).
    pub fn public_pem(&self) -> String {
        self.key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("a P-256 public key always encodes")
    }

    /// The private key in cosign's encrypted PEM, sealed with `password`.
    pub fn encrypted_pem(&self, password: &[u8]) -> Result<String> {
        let der = p256::SecretKey::from(&self.key)
            .to_pkcs8_der()
            .map_err(|e| Error::invalid("signing key", format!("cannot encode: {e}")))?;
        let mut salt = [0u8; 32];
        let mut nonce = [0u8; 24];
        OsRng.fill_bytes(&mut salt);
        OsRng.fill_bytes(&mut nonce);
        let envelope = seal(der.as_bytes(), password, &salt, &nonce);
        Ok(pem_encode(ENCRYPTED_LABEL, &envelope))
    }
}

/// The JSON envelope, field names and order as go-securesystemslib writes them.
#[derive(Serialize, Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "b64")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    #[serde(with = "b64")]
    salt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    #[serde(with = "b64")]
    nonce: Vec<u8>,
}

mod b64 {
    use super::B64;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};
    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(v))
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        B64.decode(s).map_err(serde::de::Error::custom)
    }
}

fn derive_key(password: &[u8], salt: &[u8], log_n: u8, r: u32, p: u32) -> Result<[u8; 32], String> {
    let params = scrypt::Params::new(log_n, r, p, 32)
        .map_err(|e| format!("unusable scrypt parameters: {e}"))?;
    let mut out = [0u8; 32];
    scrypt::scrypt(password, salt, &params, &mut out).map_err(|e| format!("scrypt failed: {e}"))?;
    Ok(out)
}

/// Seals `plain` into the JSON envelope (cosign's scrypt cost; salt and nonce given so tests
/// can pin them).
fn seal(plain: &[u8], password: &[u8], salt: &[u8; 32], nonce: &[u8; 24]) -> Vec<u8> {
    let key = derive_key(password, salt, SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P)
        .expect("cosign's scrypt parameters are valid");
    let ciphertext = XSalsa20Poly1305::new(&key.into())
        .encrypt(nonce.into(), plain)
        .expect("secretbox sealing cannot fail");
    let env = Envelope {
        kdf: Kdf {
            name: "scrypt".into(),
            params: KdfParams {
                n: 1 << SCRYPT_LOG_N,
                r: SCRYPT_R,
                p: SCRYPT_P,
            },
            salt: salt.to_vec(),
        },
        cipher: Cipher {
            name: "nacl/secretbox".into(),
            nonce: nonce.to_vec(),
        },
        ciphertext,
    };
    serde_json::to_vec(&env).expect("the envelope serialises")
}

/// Opens the JSON envelope: the PKCS#8 DER inside, or why not (a wrong password included).
fn decrypt(envelope: &[u8], password: &[u8]) -> Result<Vec<u8>, String> {
    let env: Envelope = serde_json::from_slice(envelope)
        .map_err(|e| format!("not a cosign encrypted key (bad JSON envelope: {e})"))?;
    if env.kdf.name != "scrypt" {
        return Err(format!(
            "unsupported key derivation {:?} (expected scrypt)",
            env.kdf.name
        ));
    }
    if env.cipher.name != "nacl/secretbox" {
        return Err(format!(
            "unsupported cipher {:?} (expected nacl/secretbox)",
            env.cipher.name
        ));
    }
    let KdfParams { n, r, p } = env.kdf.params;
    if !n.is_power_of_two() || n < 2 {
        return Err(format!("scrypt N = {n} is not a power of two"));
    }
    let log_n = n.trailing_zeros() as u8;
    if log_n > MAX_LOG_N || r == 0 || r > MAX_R || p == 0 || p > MAX_P {
        return Err(format!(
            "scrypt parameters N={n} r={r} p={p} exceed what mockimg accepts \
             (N ≤ 2^{MAX_LOG_N}, r ≤ {MAX_R}, p ≤ {MAX_P})"
        ));
    }
    let nonce: [u8; 24] = env
        .cipher
        .nonce
        .as_slice()
        .try_into()
        .map_err(|_| "the secretbox nonce is not 24 bytes".to_string())?;
    let key = derive_key(password, &env.kdf.salt, log_n, r, p)?;
    XSalsa20Poly1305::new(&key.into())
        .decrypt(&nonce.into(), env.ciphertext.as_slice())
        .map_err(|_| "wrong password for the encrypted key (COSIGN_PASSWORD)".to_string())
}

/// The label of the first PEM block in `text`.
fn pem_label(text: &str) -> Option<String> {
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let end = text[start..].find("-----")?;
    Some(text[start..start + end].to_string())
}

/// The base64-decoded body of the `label` block (headers, as Go's pem writes none, refused).
fn pem_body(text: &str, label: &str) -> Result<Vec<u8>, String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let from = text.find(&begin).map(|i| i + begin.len());
    let to = text.find(&end);
    let (Some(from), Some(to)) = (from, to) else {
        return Err(format!("the {label} PEM block is not terminated"));
    };
    if to < from {
        return Err(format!("the {label} PEM block is malformed"));
    }
    let b64: String = text[from..to].split_whitespace().collect();
    B64.decode(b64)
        .map_err(|e| format!("the {label} PEM block is not base64: {e}"))
}

fn pem_encode(label: &str, data: &[u8]) -> String {
    let b64 = B64.encode(data);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier;
    use p256::pkcs8::DecodePublicKey;

    fn verifies(public_pem: &str, msg: &[u8], der: &[u8]) -> bool {
        let vk = p256::ecdsa::VerifyingKey::from_public_key_pem(public_pem).unwrap();
        let sig = p256::ecdsa::Signature::from_der(der).unwrap();
        vk.verify(msg, &sig).is_ok()
    }

    #[test]
    fn an_encrypted_key_opens_with_its_password_and_signs_for_its_public_key() {
        let k = SigningKey::generate();
        let pem = k.encrypted_pem(b"s3cret").unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        let back = SigningKey::from_pem(&pem, Some(b"s3cret"), Path::new("k")).unwrap();
        assert_eq!(back.public_pem(), k.public_pem());
        let sig = back.sign(b"payload");
        assert!(verifies(&k.public_pem(), b"payload", &sig));
        assert!(!verifies(&k.public_pem(), b"payload!", &sig));
    }

    #[test]
    fn a_wrong_or_missing_password_is_refused_by_name() {
        let pem = SigningKey::generate().encrypted_pem(b"right").unwrap();
        let e = SigningKey::from_pem(&pem, Some(b"wrong"), Path::new("cosign.key")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cosign.key: wrong password for the encrypted key (COSIGN_PASSWORD)"
        );
        let e = SigningKey::from_pem(&pem, None, Path::new("cosign.key")).unwrap_err();
        assert!(e.to_string().contains("COSIGN_PASSWORD"), "{e}");
    }

    #[test]
    fn the_envelope_has_cosigns_fields_in_cosigns_order() {
        // Known answer for the format: fixed salt and nonce, our own key.
        let salt = [7u8; 32];
        let nonce = [9u8; 24];
        let env = seal(b"plain der", b"pw", &salt, &nonce);
        let text = String::from_utf8(env.clone()).unwrap();
        let prefix = format!(
            "{{\"kdf\":{{\"name\":\"scrypt\",\"params\":{{\"N\":32768,\"r\":8,\"p\":1}},\
             \"salt\":\"{}\"}},\"cipher\":{{\"name\":\"nacl/secretbox\",\"nonce\":\"{}\"}},\
             \"ciphertext\":\"",
            B64.encode(salt),
            B64.encode(nonce)
        );
        assert!(text.starts_with(&prefix), "{text}");
        // secretbox: 16-byte tag + the plaintext length.
        let v: serde_json::Value = serde_json::from_slice(&env).unwrap();
        let ct = B64.decode(v["ciphertext"].as_str().unwrap()).unwrap();
        assert_eq!(ct.len(), 16 + b"plain der".len());
        assert_eq!(decrypt(&env, b"pw").unwrap(), b"plain der");
        // Same inputs, same bytes: the only randomness is the salt and nonce.
        assert_eq!(seal(b"plain der", b"pw", &salt, &nonce), env);
    }

    #[test]
    fn a_plain_pkcs8_key_loads_and_a_public_key_is_refused() {
        let k = SigningKey::generate();
        let pkcs8 = p256::SecretKey::from(&k.key)
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap();
        let back = SigningKey::from_pem(&pkcs8, None, Path::new("k.pem")).unwrap();
        assert_eq!(back.public_pem(), k.public_pem());
        let e = SigningKey::from_pem(&k.public_pem(), None, Path::new("cosign.pub")).unwrap_err();
        assert!(e.to_string().contains("not cosign.pub"), "{e}");
    }

    #[test]
    fn hostile_scrypt_parameters_are_refused_before_any_work() {
        let mut v: serde_json::Value =
            serde_json::from_slice(&seal(b"x", b"pw", &[1; 32], &[2; 24])).unwrap();
        v["kdf"]["params"]["N"] = serde_json::json!(1u64 << 30);
        let e = decrypt(&serde_json::to_vec(&v).unwrap(), b"pw").unwrap_err();
        assert!(e.contains("exceed"), "{e}");
        v["kdf"]["params"]["N"] = serde_json::json!(1000);
        let e = decrypt(&serde_json::to_vec(&v).unwrap(), b"pw").unwrap_err();
        assert!(e.contains("power of two"), "{e}");
    }
}
