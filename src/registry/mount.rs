//! Cross-repository blob mounts: a blob already in the registry is linked into the target
//! repository instead of being uploaded again.
//!
//! Done with our own request rather than oci-client's `mount_blob`, for two reasons: a bearer
//! token for a mount needs `pull` on the source repository as well as `push` on the target, and
//! oci-client only asks for the latter (oci-client issue #235); and it reports a declined mount
//! (202) as an error, where the right answer is to upload instead — into the session the 202
//! opened, which saves a request.
//!
//! No HEAD comes first: the mount answers 201 when the blob is there (in the source, or in the
//! target already), so asking first would only add a round trip.
use super::http::Body;
use super::Registry;
use crate::oci::reference::RegistryRef;
use reqwest::header::HeaderMap;
use reqwest::Method;

/// How a mount request ended.
pub(crate) enum Mount {
    /// The target repository has the blob now.
    Mounted,
    /// Declined, with an upload session opened for the blob: PUT it there.
    Session(reqwest::Url),
    /// Declined or failed without a session: upload as usual.
    Declined,
}

impl Registry {
    /// Mounts `digest` from `from` into `target`, authorised for `scopes` (see
    /// `auth::mount_scopes`).
    pub(crate) async fn mount(
        &self,
        target: &RegistryRef,
        from: &RegistryRef,
        digest: &str,
        scopes: &[String],
    ) -> Mount {
        let op = format!("mounting blob {digest} into {}", target.repo_name());
        let path = format!(
            "/v2/{}/blobs/uploads/?mount={digest}&from={}",
            target.repository, from.repository
        );
        let res = match self
            .send(
                &op,
                scopes,
                Method::POST,
                &path,
                HeaderMap::new(),
                Body::Empty,
            )
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("{e}; uploading instead");
                return Mount::Declined;
            }
        };
        match res.status().as_u16() {
            201 => Mount::Mounted,
            202 => match self.location(&op, &res) {
                Ok(u) => Mount::Session(u),
                Err(_) => Mount::Declined,
            },
            s => {
                tracing::debug!(
                    "mount of {digest} from {} refused with {s}",
                    from.repo_name()
                );
                Mount::Declined
            }
        }
    }
}
