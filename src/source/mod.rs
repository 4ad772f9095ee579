//! Sources: open a base image from a registry, an OCI layout or an archive.
//!
//! `open` is the one entry point; each local format has its reader (`layout` for `oci:` and
//! `oci-archive:`, `docker_archive`), over the files a `store::Store` holds (`tar_index`
//! for tars). Registry pulls go through `crate::registry`; `cache` keeps their blobs.

pub(crate) mod cache;
pub(crate) mod docker_archive;
pub(crate) mod file;
pub(crate) mod layout;
pub mod referrers;
pub(crate) mod registry;
pub(crate) mod store;
pub(crate) mod tar_index;

pub use cache::Cache;
pub use tar_index::TarIndex;

use crate::error::{Error, Result};
use crate::oci::blob::Source;
use crate::oci::reference::ImageRef;
use crate::registry::{Registry, RegistryOptions};
use std::path::Path;

/// Opens any image reference. Registry blobs are read through `cache` when one is given (file
/// sinks read every layer, so a cache pays off there; a registry-to-registry push mounts them).
pub async fn open(r: &ImageRef, opts: &RegistryOptions, cache: Option<&Cache>) -> Result<Source> {
    let name = r.to_string();
    let src = match r {
        ImageRef::Registry(rr) => {
            registry::pull(&Registry::connect(&rr.registry, opts)?, rr).await?
        }
        ImageRef::OciLayout { dir, tag } => {
            layout::open(store::Store::open_dir(dir)?, tag.as_deref(), name)?
        }
        ImageRef::OciArchive { path, tag } => {
            layout::open(store::Store::open_tar(path)?, tag.as_deref(), name)?
        }
        ImageRef::DockerArchive { path } => docker_archive::open(path, name)?,
    };
    Ok(match (cache, r) {
        (Some(c), ImageRef::Registry(_)) => Source {
            blobs: c.wrap(src.blobs.clone()),
            ..src
        },
        _ => src,
    })
}

/// Parses what a user names as an image to read, where a bare path is allowed
/// (`mockimg push mocks.tar REF`): an existing directory is an OCI layout; a tar is an
/// oci-archive when it has an `index.json`, else a docker-archive (`docker save` output).
/// Anything with a scheme or prefix parses as an [`ImageRef`].
pub fn parse_input(s: &str) -> Result<ImageRef> {
    let p = Path::new(s);
    let looks_like_path =
        s.ends_with(".tar") || s.starts_with('/') || s.starts_with("./") || p.exists();
    if s.contains("://")
        || !looks_like_path
        || s.starts_with("oci:")
        || s.starts_with("oci-archive:")
        || s.starts_with("docker-archive:")
    {
        return ImageRef::parse(s);
    }
    if p.is_dir() {
        return Ok(ImageRef::OciLayout {
            dir: p.into(),
            tag: None,
        });
    }
    if !p.exists() {
        return Err(Error::path(
            p,
            "does not exist — give the archive written by 'mockimg build --output'",
        ));
    }
    let index = tar_index::TarIndex::open(p)?;
    if index.get("index.json").is_none() && index.get("manifest.json").is_some() {
        return Ok(ImageRef::DockerArchive { path: p.into() });
    }
    Ok(ImageRef::OciArchive {
        path: p.into(),
        tag: None,
    })
}
