//! A manifest PUT that waits out a registry still settling a concurrent write of the blobs it
//! names: used by the image push and by the attachments pushed after it.
use super::api::Put;
use super::failure::ErrorCode;
use super::Registry;
use crate::error::{Error, Result};
use crate::oci::image::Doc;
use crate::oci::reference::RegistryRef;

/// How often a manifest is PUT again while the registry still says a blob or child manifest
/// it names is unknown, after this push put or found every one of them.
const SETTLE_TRIES: u32 = 4;

/// PUTs a manifest whose blobs and child manifests are all in the repository (`settles`: this
/// push put or found each one; no foreign layer). Such a manifest answered `MANIFEST_BLOB_UNKNOWN`
/// (or `BLOB_UNKNOWN`) is not refused for good: CNCF distribution's filesystem storage rewrites
/// a repository's link file in place each time a blob or manifest is put or mounted, and another
/// push of the same image into the same repository reads as "unknown" for that instant (seen
/// with four builds pushing one base's image to one repository at once). So it is asked again,
/// a few times with the usual backoff; anywhere else those codes stay final.
pub(crate) async fn put_manifest(
    reg: &Registry,
    target: &RegistryRef,
    doc: &Doc,
    scopes: &[String],
    settles: bool,
) -> Result<Put> {
    put_manifest_if(reg, target, doc, scopes, settles, None).await
}

/// [`put_manifest`], conditional on `if_match` (see [`Registry::manifest_put_if`]).
pub(crate) async fn put_manifest_if(
    reg: &Registry,
    target: &RegistryRef,
    doc: &Doc,
    scopes: &[String],
    settles: bool,
    if_match: Option<&str>,
) -> Result<Put> {
    let mut attempt = 0;
    loop {
        match reg.manifest_put_if(target, doc, scopes, if_match).await {
            Err(e) if settles && attempt < SETTLE_TRIES && names_unknown(&e) => {
                let wait = super::retry::backoff(reg.opts.backoff, attempt);
                attempt += 1;
                tracing::warn!(
                    "{e} — every blob it names is in the repository, so the registry is still \
                     settling a concurrent write; retry {attempt}/{SETTLE_TRIES} in {wait:?}"
                );
                tokio::time::sleep(wait).await;
            }
            r => return r,
        }
    }
}

/// The registry answered that a manifest names a blob or manifest it does not hold.
pub(crate) fn names_unknown(e: &Error) -> bool {
    matches!(
        e,
        Error::Registry { cause, .. }
            if matches!(
                cause.code,
                Some(ErrorCode::ManifestBlobUnknown | ErrorCode::BlobUnknown)
            )
    )
}
