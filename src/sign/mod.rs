//! Signing pushed images in cosign's key-pair format, so that `cosign verify --key`, skopeo and
//! podman (`sigstoreSigned` policies) and admission controllers accept them.
//!
//! | file | holds |
//! | --- | --- |
//! | `key.rs` | [`SigningKey`]: cosign's encrypted key (scrypt + secretbox), plain PKCS#8, key generation |
//! | `payload.rs` | the simple-signing payload and the `sha256-<hex>.sig` image that carries it |
//! | `push.rs` | [`push_signatures`]: after the image and its tags, one `.sig` per manifest |
//!
//! Keyless signing (Fulcio certificate, Rekor entry) is designed in the README, not built.
pub mod key;
pub mod payload;
mod push;

pub use key::SigningKey;
pub use push::{push_signatures, SignStats};
