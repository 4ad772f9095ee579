//! Content descriptors, kept as their JSON objects so fields mockimg does not model survive.
use crate::error::{Error, Result};
use crate::oci::digest;
use crate::oci::platform::Platform;
use serde_json::{json, Map, Value};

/// A content descriptor; fields we don't model are kept in `extra` and written back.
#[derive(Debug, Clone, PartialEq)]
pub struct Descriptor {
    /// The blob's media type.
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Set on index entries.
    pub platform: Option<Platform>,
    /// The whole JSON object as read, so fields mockimg does not model are written back.
    pub extra: Map<String, Value>,
}

impl Descriptor {
    /// Parses a descriptor object; `what` names it in errors.
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

    /// The value of an annotation, if present.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.extra.get("annotations")?.get(key)?.as_str()
    }

    /// Whether an index entry describes the base's build (a buildx attestation), not a runnable image.
    pub fn is_attestation(&self) -> bool {
        self.annotation("vnd.docker.reference.type") == Some("attestation-manifest")
            || self.platform.as_ref().is_some_and(Platform::is_unknown)
    }
}
