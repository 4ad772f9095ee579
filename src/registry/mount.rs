//! Cross-repository blob mounts: a blob already in the registry is linked into the target
//! repository instead of being uploaded again.
//!
//! Done with our own request rather than oci-client's `mount_blob`, for two reasons: a bearer
//! token for a mount needs `pull` on the source repository as well as `push` on the target, and
//! oci-client only asks for the latter (oci-client issue #235); and it reports a declined mount
//! (202) as an error, where the right answer is to upload instead.
use super::auth::mount_scopes;
use super::error::root_cause;
use super::Registry;
use crate::oci::reference::RegistryRef;
use reqwest::header::{AUTHORIZATION, LOCATION, WWW_AUTHENTICATE};

impl Registry {
    /// Mounts `digest` from `from` into `target`; `false` when the registry declines (202) or
    /// refuses, or the mount fails, so the caller uploads instead.
    pub(crate) async fn mount(
        &self,
        target: &RegistryRef,
        from: &RegistryRef,
        digest: &str,
    ) -> bool {
        let Some(http) = self.http() else {
            return false;
        };
        let base = self.base_url();
        let url = format!(
            "{base}/v2/{}/blobs/uploads/?mount={digest}&from={}",
            target.repository, from.repository
        );
        let key = format!("{}|{}", target.repository, from.repository);
        let mut auth = self.mount_tokens.lock().await.get(&key).cloned();
        // At most two tries: as we are, then once more with a token for the challenge.
        for _ in 0..2 {
            let mut req = http.post(&url).header("Content-Length", "0");
            if let Some(a) = &auth {
                req = req.header(AUTHORIZATION, a);
            }
            let res = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!("mount of {digest} failed: {}", root_cause(&e));
                    return false;
                }
            };
            tracing::debug!(target: "mockimg::http", "POST {url} {}", res.status().as_u16());
            match res.status().as_u16() {
                201 => return true,
                202 => {
                    // Declined: close the upload session it opened instead of leaving it dangling.
                    if let Some(loc) = res.headers().get(LOCATION).and_then(|v| v.to_str().ok()) {
                        let loc = if loc.starts_with('/') {
                            format!("{base}{loc}")
                        } else {
                            loc.to_string()
                        };
                        let mut del = http.delete(loc);
                        if let Some(a) = &auth {
                            del = del.header(AUTHORIZATION, a);
                        }
                        if let Ok(r) = del.send().await {
                            tracing::debug!(target: "mockimg::http", "DELETE {} {}", r.url(), r.status().as_u16());
                        }
                    }
                    return false;
                }
                401 if auth.is_none() => {
                    let challenge = res
                        .headers()
                        .get(WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let scopes = mount_scopes(target, from);
                    let Some(a) = self.authorization_for(&challenge, &scopes).await else {
                        return false;
                    };
                    self.mount_tokens
                        .lock()
                        .await
                        .insert(key.clone(), a.clone());
                    auth = Some(a);
                }
                s => {
                    tracing::debug!(
                        "mount of {digest} from {} refused with {s}",
                        from.repo_name()
                    );
                    return false;
                }
            }
        }
        false
    }
}
