//! Media types of the documents and layers mockimg reads and writes. The OCI names agree with
//! `oci_spec::image::MediaType` (checked in a test); they are `&str` constants here because they
//! are compared with the raw strings of manifests, which must not be re-serialised.

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI gzip layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI uncompressed layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Docker manifest list (schema 2).
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest (schema 2).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker uncompressed layer (not in the schema 2 spec, but written by some tools).
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker's foreign layer: the descriptor carries `urls`, and registries are not sent the blob.
pub const DOCKER_FOREIGN_GZIP: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// OCI's non-distributable layer (deprecated in image-spec 1.1, still read by every tool).
pub const OCI_FOREIGN_GZIP: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";

/// Everything we can read as a base, in the order we prefer it.
pub const ACCEPTED: &[&str] = &[OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

/// Whether `mt` is an index or a manifest list.
pub fn is_index(mt: &str) -> bool {
    mt == OCI_INDEX || mt == DOCKER_LIST
}
/// Whether `mt` is an image manifest (OCI or Docker).
pub fn is_manifest(mt: &str) -> bool {
    mt == OCI_MANIFEST || mt == DOCKER_MANIFEST
}
/// Whether a layer is foreign (non-distributable): kept as a descriptor, never uploaded.
pub fn is_foreign(mt: &str) -> bool {
    mt == DOCKER_FOREIGN_GZIP || mt.starts_with("application/vnd.oci.image.layer.nondistributable.")
}
/// Whether `mt` belongs to the Docker family (its layers must be Docker-typed too).
pub fn is_docker(mt: &str) -> bool {
    mt.starts_with("application/vnd.docker.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::MediaType;

    #[test]
    fn oci_names_agree_with_oci_spec() {
        assert_eq!(OCI_INDEX, MediaType::ImageIndex.to_string());
        assert_eq!(OCI_MANIFEST, MediaType::ImageManifest.to_string());
        assert_eq!(OCI_CONFIG, MediaType::ImageConfig.to_string());
        assert_eq!(OCI_LAYER_GZIP, MediaType::ImageLayerGzip.to_string());
        assert_eq!(OCI_LAYER_TAR, MediaType::ImageLayer.to_string());
    }

    #[test]
    fn classifies_indexes_manifests_and_docker_types() {
        assert!(is_index(OCI_INDEX) && is_index(DOCKER_LIST));
        assert!(is_manifest(OCI_MANIFEST) && is_manifest(DOCKER_MANIFEST));
        assert!(!is_index(OCI_MANIFEST) && !is_manifest(OCI_CONFIG));
        assert!(is_docker(DOCKER_LAYER_GZIP) && !is_docker(OCI_LAYER_GZIP));
    }
}
