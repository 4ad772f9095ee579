//! Every distribution-spec call mockimg makes, one method each, over the transport's one
//! [`Registry::send`]: manifests (get, head, put), blobs (get, head, mount; upload in
//! `upload.rs`), tags (paged by `Link`) and referrers. Each call says what it does (for messages),
//! which way it goes (pull or push, for refused access) and which statuses are its answers; any
//! other answer becomes an error through `failure.rs`, and the retry loop around it decides from
//! that alone.
//!
//! Reads are bounded: a manifest or index by [`MANIFEST_MAX`] (as distribution caps what it
//! accepts), a blob by its descriptor's size.
mod chunks;
mod list;
mod upload;

pub(crate) use chunks::{Chunking, DEFAULT_CHUNK};
pub(crate) use upload::MONOLITHIC_UNKNOWN;

use super::failure::Failure;
use super::transport::{Action, Ask, Body, Request};
use super::Registry;
use crate::error::{Error, Result};
use crate::oci::blob::ByteStream;
use crate::oci::digest;
use crate::oci::image::{check_manifest, media, Descriptor, Doc};
use crate::oci::reference::RegistryRef;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE, ETAG, IF_MATCH};
use reqwest::{Method, StatusCode};

/// The largest manifest or index read: distribution refuses to store larger ones, so a larger
/// answer is a broken or hostile registry, not an image.
pub const MANIFEST_MAX: u64 = 4 << 20;

/// How a mount request ended.
pub(crate) enum Mount {
    /// The target repository has the blob now.
    Mounted,
    /// Declined, with an upload session opened for the blob: PUT it there.
    Session(reqwest::Url),
    /// Declined or failed without a session: upload as usual.
    Declined,
}

/// The header a registry with the referrers API answers a manifest PUT carrying a `subject`
/// with (distribution-spec 1.1): without it, the client keeps the referrers tag itself.
const OCI_SUBJECT: &str = "OCI-Subject";

/// What a manifest PUT was answered with, beyond success.
#[derive(Debug, Clone, Default)]
pub(crate) struct Put {
    /// The `OCI-Subject` header: the registry indexed the manifest's `subject` itself.
    pub(crate) subject: Option<String>,
}

fn accept_manifests() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        ACCEPT,
        HeaderValue::from_str(&media::ACCEPTED.join(", ")).expect("media types are ASCII"),
    );
    headers
}

impl Registry {
    /// `GET` a manifest or index as raw bytes (at most [`MANIFEST_MAX`]); a digest-pinned
    /// reference must match its pin, and a copy whose `Docker-Content-Digest` disagrees with its
    /// bytes is fetched again.
    pub(crate) async fn manifest_get(&self, r: &RegistryRef, scopes: &[String]) -> Result<Doc> {
        Ok(self.manifest_get_etag(r, scopes).await?.0)
    }

    /// [`Registry::manifest_get`], with the answer's `ETag` when the registry sent one: what a
    /// later PUT names in `If-Match` so it replaces only the manifest that was read.
    pub(crate) async fn manifest_get_etag(
        &self,
        r: &RegistryRef,
        scopes: &[String],
    ) -> Result<(Doc, Option<String>)> {
        let op = format!("fetching manifest {r}");
        let path = format!("/v2/{}/manifests/{}", r.repository, r.tag_or_digest());
        let name = r.to_string();
        let (bytes, etag) = self
            .retry(&op, || async {
                let req = Request {
                    action: Action::Pull,
                    repo: &name,
                    op: &op,
                    scopes,
                    method: Method::GET,
                    path: &path,
                    headers: accept_manifests(),
                    body: Body::Empty,
                };
                let ask = req.ask();
                let res = self.send(req).await?;
                if res.status() != StatusCode::OK {
                    return Err(self.answer_error(ask, res).await);
                }
                let said = res
                    .headers()
                    .get("Docker-Content-Digest")
                    .and_then(|v| v.to_str().ok())
                    .filter(|d| d.starts_with("sha256:"))
                    .map(str::to_string);
                let etag = res
                    .headers()
                    .get(ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let bytes = self.read_capped(ask, res, MANIFEST_MAX, "manifest").await?;
                // A manifest fetched by tag has no pin, but the registry says its digest: a
                // copy corrupted on the way is fetched again.
                match said {
                    Some(d) if d != digest::sha256(&bytes) => Err(self.failed(
                        &op,
                        None,
                        Failure::io(std::io::ErrorKind::InvalidData),
                        format!(
                            "content digest mismatch: expected {d}, got {}",
                            digest::sha256(&bytes)
                        ),
                    )),
                    _ => Ok((bytes, etag)),
                }
            })
            .await?;
        if let Some(pin) = &r.digest {
            let got = digest::sha256(&bytes);
            if &got != pin {
                return Err(Error::DigestMismatch {
                    what: format!("manifest {r}"),
                    expected: pin.clone(),
                    actual: got,
                });
            }
        }
        let mt = check_manifest(&bytes, None, &format!("manifest {r}"))?;
        Ok((Doc::new(mt, bytes), etag))
    }

    /// A whole response body of at most `max` bytes; more is an error (final: a registry that
    /// sends too much once will again), found out without holding more than `max` in memory.
    async fn read_capped(
        &self,
        ask: Ask<'_>,
        res: reqwest::Response,
        max: u64,
        what: &str,
    ) -> Result<bytes::Bytes> {
        let mib = max >> 20;
        let too_big = |said: String| {
            self.failed(
                ask.op,
                None,
                Failure::default(),
                format!("the {what} {said}, more than the {mib} MiB mockimg reads of one; refusing to read it"),
            )
        };
        if let Some(n) = res.content_length().filter(|n| *n > max) {
            return Err(too_big(format!("is {n} bytes")));
        }
        let mut out = Vec::new();
        let mut body = res.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|e| self.transport_error(ask.op, (ask.action, ask.repo), &e))?;
            if (out.len() + chunk.len()) as u64 > max {
                return Err(too_big("runs on".into()));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(bytes::Bytes::from(out))
    }

    /// `HEAD` a manifest: the digest `r` (a tag or a digest) names in its repository, or `None`
    /// when there is no such manifest (or the registry does not say which digest it is).
    pub(crate) async fn manifest_head(
        &self,
        action: Action,
        r: &RegistryRef,
        scopes: &[String],
    ) -> Result<Option<String>> {
        let op = format!(
            "checking manifest {} in {}",
            r.tag_or_digest(),
            r.repo_name()
        );
        let path = format!("/v2/{}/manifests/{}", r.repository, r.tag_or_digest());
        let repo = r.repo_name();
        self.retry(&op, || async {
            let req = Request {
                action,
                repo: &repo,
                op: &op,
                scopes,
                method: Method::HEAD,
                path: &path,
                headers: accept_manifests(),
                body: Body::Empty,
            };
            let ask = req.ask();
            let res = self.send(req).await?;
            match res.status() {
                s if s.is_success() => Ok(res
                    .headers()
                    .get("Docker-Content-Digest")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
                    // Asked by digest, the answer is that digest whatever the headers say.
                    .or_else(|| r.digest.clone())),
                StatusCode::NOT_FOUND => Ok(None),
                _ => Err(self.answer_error(ask, res).await),
            }
        })
        .await
    }

    /// `PUT` `doc` as `target` (by tag or by digest).
    pub(crate) async fn manifest_put(
        &self,
        target: &RegistryRef,
        doc: &Doc,
        scopes: &[String],
    ) -> Result<Put> {
        self.manifest_put_if(target, doc, scopes, None).await
    }

    /// [`Registry::manifest_put`], conditional on `if_match` (an `ETag` a GET of `target`
    /// answered) when given: a registry that honours it answers 412 if the manifest changed
    /// since (an error whose status is 412).
    pub(crate) async fn manifest_put_if(
        &self,
        target: &RegistryRef,
        doc: &Doc,
        scopes: &[String],
        if_match: Option<&str>,
    ) -> Result<Put> {
        let op = format!("pushing manifest {target}");
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            doc.media_type
                .parse()
                .map_err(|_| Error::invalid("manifest", "media type is not a valid header"))?,
        );
        if let Some(tag) = if_match.and_then(|t| HeaderValue::from_str(t).ok()) {
            headers.insert(IF_MATCH, tag);
        }
        let path = format!(
            "/v2/{}/manifests/{}",
            target.repository,
            target.tag_or_digest()
        );
        let name = target.to_string();
        self.retry(&op, || async {
            let req = Request {
                action: Action::Push,
                repo: &name,
                op: &op,
                scopes,
                method: Method::PUT,
                path: &path,
                headers: headers.clone(),
                body: Body::Bytes(doc.bytes.clone()),
            };
            let ask = req.ask();
            let res = self.send(req).await?;
            if res.status().is_success() {
                let subject = res
                    .headers()
                    .get(OCI_SUBJECT)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                Ok(Put { subject })
            } else {
                Err(self.answer_error(ask, res).await)
            }
        })
        .await
    }

    /// `GET` a blob, following a redirect to object storage (without our credentials); the
    /// stream fails once it runs past `desc.size`. `op` names the download in messages.
    pub(crate) async fn blob_get(
        &self,
        repo: &RegistryRef,
        desc: &Descriptor,
        op: &str,
    ) -> Result<ByteStream> {
        let scopes = super::scopes_for(repo, Action::Pull);
        let path = format!("/v2/{}/blobs/{}", repo.repository, desc.digest);
        let name = repo.repo_name();
        self.retry(op, || async {
            let req = Request {
                action: Action::Pull,
                repo: &name,
                op,
                scopes: &scopes,
                method: Method::GET,
                path: &path,
                headers: HeaderMap::new(),
                body: Body::Empty,
            };
            let ask = req.ask();
            let res = self.send(req).await?;
            // Registries send blob downloads to object storage on another host.
            let res = self.follow(ask, res).await?;
            if res.status() != StatusCode::OK {
                return Err(self.answer_error(ask, res).await);
            }
            if let Some(n) = res.content_length().filter(|n| *n > desc.size) {
                return Err(self.failed(
                    op,
                    None,
                    Failure::default(),
                    format!(
                        "blob {} is {n} bytes, more than the {} its descriptor says",
                        desc.digest, desc.size
                    ),
                ));
            }
            Ok(res.bytes_stream().map_err(std::io::Error::other).boxed())
        })
        .await
    }

    /// `HEAD` a blob: whether `target`'s repository holds `digest`.
    pub(crate) async fn blob_head(
        &self,
        target: &RegistryRef,
        digest: &str,
        scopes: &[String],
    ) -> Result<bool> {
        let op = format!("checking blob {digest} in {}", target.repo_name());
        let path = format!("/v2/{}/blobs/{digest}", target.repository);
        let repo = target.repo_name();
        self.retry(&op, || async {
            let req = Request {
                action: Action::Push,
                repo: &repo,
                op: &op,
                scopes,
                method: Method::HEAD,
                path: &path,
                headers: HeaderMap::new(),
                body: Body::Empty,
            };
            let ask = req.ask();
            let res = self.send(req).await?;
            match res.status() {
                s if s.is_success() => Ok(true),
                StatusCode::NOT_FOUND => Ok(false),
                _ => Err(self.answer_error(ask, res).await),
            }
        })
        .await
    }

    /// Mounts `digest` from `from` into `target` (`POST …/blobs/uploads/?mount=&from=`),
    /// authorised for `scopes` (see `auth::mount_scopes`). No HEAD comes first: a mount answers
    /// 201 when the blob is there (in the source, or in the target already). A 202 opens an
    /// upload session, which the upload then uses; any failure means "upload instead".
    pub(crate) async fn blob_mount(
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
        let repo = target.repo_name();
        let req = Request {
            action: Action::Push,
            repo: &repo,
            op: &op,
            scopes,
            method: Method::POST,
            path: &path,
            headers: HeaderMap::new(),
            body: Body::Empty,
        };
        let res = match self.send(req).await {
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
