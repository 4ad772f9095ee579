//! What the provenance states as a build's parameters (SLSA `externalParameters`), read off
//! the request: everything the user chose that changes the image's bytes.
use super::BuildRequest;
use crate::oci::convert::Family;
use crate::oci::reference::ImageRef;

impl BuildRequest {
    /// The parameters as the user gave them; for a local base only its transport, so no build
    /// machine's path is published.
    pub fn parameters(&self, base: &ImageRef) -> crate::attest::Parameters {
        crate::attest::Parameters {
            base: as_given(base),
            platforms: self.platforms.iter().map(|p| p.to_string()).collect(),
            format: self.format.map(|f| {
                match f {
                    Family::Oci => "oci",
                    Family::Docker => "docker",
                }
                .to_string()
            }),
            engine_config_dir: self.engine_config_dir.clone(),
            excludes: Some(self.walk.excludes.clone()),
            gzip_level: Some(self.layer.gzip_level),
            replace: Some(self.layer.replace),
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            env: self.env.clone(),
        }
    }
}

/// A base as the provenance states it: a registry reference as given; for a local base only its
/// transport, so no build machine's path is published.
pub fn as_given(base: &ImageRef) -> String {
    match base {
        ImageRef::Registry(_) => base.to_string(),
        ImageRef::OciLayout { .. } => "oci:".into(),
        ImageRef::OciArchive { .. } => "oci-archive:".into(),
        ImageRef::DockerArchive { .. } => "docker-archive:".into(),
    }
}
