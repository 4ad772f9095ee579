//! `mockimg inspect`: any image reference, opened as a base would be, summarised (platforms,
//! layers, the run settings of each config). Reads manifests and configs only, never a layer.
use crate::error::Result;
use crate::oci::reference::ImageRef;
use crate::registry::RegistryOptions;
use serde::Serialize;

/// What `mockimg inspect` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The reference as given.
    pub reference: String,
    /// Digest of the top-level manifest or index.
    pub digest: String,
    /// Media type of the top-level document.
    pub media_type: String,
    /// One entry per image (platform).
    pub images: Vec<InspectedImage>,
    /// What is attached to the image (its referrers: SBOM, provenance, …), as referrers-index
    /// entries (descriptor, `artifactType`, annotations).
    pub attached: Vec<serde_json::Value>,
}

/// One image of an inspection.
#[derive(Debug, Clone, Serialize)]
pub struct InspectedImage {
    /// `os/arch[/variant]`, or `unknown`.
    pub platform: String,
    /// Digest of the image manifest.
    pub digest: String,
    /// Media type of the image manifest.
    pub media_type: String,
    /// The layers, base first.
    pub layers: Vec<InspectedLayer>,
    /// Config `Entrypoint` (null when absent).
    pub entrypoint: serde_json::Value,
    /// Config `Cmd`.
    pub cmd: serde_json::Value,
    /// Config `Env`.
    pub env: serde_json::Value,
    /// Config `User`.
    pub user: serde_json::Value,
    /// Config `WorkingDir`.
    pub working_dir: serde_json::Value,
    /// Config `created`.
    pub created: serde_json::Value,
}

/// One layer of an inspected image.
#[derive(Debug, Clone, Serialize)]
pub struct InspectedLayer {
    /// Layer digest.
    pub digest: String,
    /// Compressed size in bytes.
    pub size: u64,
    /// Layer media type.
    pub media_type: String,
}

/// Opens any image reference and summarises it for `mockimg inspect`.
pub async fn inspect(r: &ImageRef, opts: &RegistryOptions) -> Result<Inspection> {
    let src = crate::source::open(r, opts, None).await?;
    let mut images = Vec::new();
    for img in src.root.images() {
        let c = img.config.json("image config")?;
        let cc = c.get("config").cloned().unwrap_or_default();
        images.push(InspectedImage {
            platform: img
                .platform()
                .map(|p| p.to_string())
                .unwrap_or_else(|| "unknown".into()),
            digest: img.manifest.digest(),
            media_type: img.manifest.media_type.clone(),
            layers: img
                .layers()?
                .into_iter()
                .map(|l| InspectedLayer {
                    digest: l.digest,
                    size: l.size,
                    media_type: l.media_type,
                })
                .collect(),
            entrypoint: cc.get("Entrypoint").cloned().unwrap_or_default(),
            cmd: cc.get("Cmd").cloned().unwrap_or_default(),
            env: cc.get("Env").cloned().unwrap_or_default(),
            user: cc.get("User").cloned().unwrap_or_default(),
            working_dir: cc.get("WorkingDir").cloned().unwrap_or_default(),
            created: c.get("created").cloned().unwrap_or_default(),
        });
    }
    // The image is what was asked for; a registry that will not list referrers leaves the
    // list empty with a warning rather than failing the inspection.
    let attached = match crate::source::referrers::list(r, &src.root.digest(), opts).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!("not listing what is attached to {r}: {e}");
            Vec::new()
        }
    };
    Ok(Inspection {
        reference: r.to_string(),
        digest: src.root.digest(),
        media_type: src.root.doc().media_type.clone(),
        images,
        attached,
    })
}
