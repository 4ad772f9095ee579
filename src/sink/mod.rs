//! Sinks: push to a registry, write an OCI layout or an archive tar, write a Lambda zip, sync a
//! bucket prefix (`publish`) and set a Lambda function's environment (`lambda_fn`).
//!
//! File sinks write through [`crate::atomic`] and copy blobs through one verified, refetching copy.

pub(crate) mod archive;
mod diffid;
pub(crate) mod lambda_fn;
pub(crate) mod lambda_zip;
pub(crate) mod layout;
mod names;
pub(crate) mod publish;
mod refetch;
pub(crate) mod registry;

pub use layout::ImageName;
pub use registry::PushStats;

use crate::oci::blob::Source;

/// Which kind of sink reads a source, for the words progress is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Pushed to a registry.
    Registry,
    /// Written to a file (archive, layout).
    File,
}

/// Where a job reports the blobs it moves, passed in by the caller (as go-containerregistry's
/// `WithProgress` is): the job hands each source to [`Progress::track`] before a sink of `to`'s
/// kind reads it, and gives the sink what comes back. The library draws nothing itself.
pub trait Progress: Send + Sync {
    /// `src` as the sink should read it: the same blobs, counted as they stream.
    fn track(&self, src: &Source, to: Kind) -> Source;
}

/// No progress shown: sinks read the source as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn track(&self, src: &Source, _: Kind) -> Source {
        src.clone()
    }
}

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
