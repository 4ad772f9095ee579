//! Sinks: push to a registry, write an OCI layout or an archive tar.
//!
//! File sinks write through [`atomic`] and copy blobs through one verified, refetching copy.

pub(crate) mod archive;
pub mod atomic;
mod diffid;
pub(crate) mod layout;
mod names;
mod refetch;
pub(crate) mod registry;
pub(crate) mod temps;

pub use layout::ImageName;
pub use registry::{MountFrom, PushStats};

/// Says up front which layers are foreign (non-distributable): their descriptors are kept as
/// the base has them, pointing at their URLs, and registries are never sent the blob (as skopeo
/// does). A foreign layer without URLs cannot be fetched by anyone: refused.
pub(crate) fn note_foreign_layers(root: &crate::oci::image::Root) -> crate::error::Result<()> {
    for d in root.blobs()? {
        if !crate::oci::image::media::is_foreign(&d.media_type) {
            continue;
        }
        let urls: Vec<&str> = d
            .extra
            .get("urls")
            .and_then(serde_json::Value::as_array)
            .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect())
            .unwrap_or_default();
        if urls.is_empty() {
            return Err(crate::error::Error::invalid(
                "base image",
                format!(
                    "layer {} is foreign ({}) but lists no urls: no registry holds it and no \
                     client can fetch it — rebuild the base with that layer distributable",
                    d.digest, d.media_type
                ),
            ));
        }
        tracing::info!(
            "layer {} is foreign (non-distributable; from {}): its descriptor is kept as it is, and registries are not sent the blob",
            d.digest,
            urls.join(", ")
        );
    }
    Ok(())
}
