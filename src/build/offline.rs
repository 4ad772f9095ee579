//! The hint a build gives when its base cannot be reached at all: how to build offline.
use crate::error::Error;
use crate::oci::reference::ImageRef;

/// A base that cannot be reached (no answer at all, e.g. offline or a name that does not
/// resolve) is named in full, with how to build without the network.
pub(super) fn offline_hint(e: Error, base: &ImageRef) -> Error {
    match (e, base) {
        (
            Error::Registry {
                registry,
                message,
                cause,
                ..
            },
            ImageRef::Registry(r),
        ) if cause.status.is_none() && cause.code.is_none() && cause.io.is_some() => {
            let full = r.to_string();
            let file = r
                .repository
                .rsplit('/')
                .next()
                .unwrap_or("base")
                .to_string()
                + "-"
                + r.tag.as_deref().unwrap_or("latest")
                + ".tar";
            Error::Registry {
                operation: format!("pulling base image {full}"),
                message: format!(
                    "{message} — to build offline, pass --base oci-archive:{file} (made where \
                     the registry is reachable, e.g. 'skopeo copy --all docker://{full} \
                     oci-archive:{file}')"
                ),
                registry,
                cause,
            }
        }
        (e, _) => e,
    }
}
