//! Uploading a blob.
//!
//! A blob goes up in one request (`POST …/blobs/uploads/?digest=` with the body) where the
//! registry accepts that (201); a registry that answers 202 instead gets the body in a PUT to
//! the session it opened, and is not asked the single-request way again in this process. A blob
//! larger than [`MONOLITHIC_TRY_MAX`] is never sent in the POST before the registry has shown it
//! takes it (and only one held in memory), so a registry that ignores such a body does not cost
//! the transfer twice. Either way a blob is one streamed body where the registry takes that: no
//! chunk-size minimums to trip over (ECR wants 5 MiB), no request more than needed.
//!
//! A registry that refuses the whole body as too large (413), or that named a minimum chunk
//! length and refuses the whole body, gets it in chunks instead (`chunks.rs`), in a new session;
//! blobs that large (every blob, for the second kind) then go straight to chunks.
use super::super::transport::{Action, Ask, Body, Request};
use super::super::Registry;
use super::chunks::{self, octet_stream, wants_chunks};
use crate::error::{Error, Result};
use crate::oci::blob::{self, BlobSource, ByteStream};
use crate::oci::image::Descriptor;
use crate::oci::reference::RegistryRef;
use futures_util::StreamExt;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use std::sync::atomic::Ordering;

/// The largest blob sent in a single-request upload before the registry has accepted one.
const MONOLITHIC_TRY_MAX: u64 = 1 << 20;

/// What this registry did with a single-request upload: not tried yet, took it, declined it.
pub(crate) const MONOLITHIC_UNKNOWN: u8 = 0;
const MONOLITHIC_YES: u8 = 1;
const MONOLITHIC_NO: u8 = 2;

impl Registry {
    /// Uploads `desc` from `src` into `target`, into `session` when a declined mount opened one.
    pub(crate) async fn blob_upload(
        &self,
        target: &RegistryRef,
        desc: &Descriptor,
        src: &dyn BlobSource,
        scopes: &[String],
        session: Option<reqwest::Url>,
    ) -> Result<()> {
        let op = format!("uploading blob {} to {}", desc.digest, target.repo_name());
        let mut session = session;
        self.retry(&op, || {
            let session = session.take();
            let op = &op;
            async move {
                let res = self
                    .upload_once(target, desc, src, scopes, session, op)
                    .await;
                if let Err(Error::Registry { cause, .. }) = &res {
                    // Our own verification refused the body: the source's copy is bad, so a
                    // source that serves a local copy (the cache) must go back to the origin.
                    if cause.io == Some(std::io::ErrorKind::InvalidData) {
                        src.distrust(&desc.digest);
                    }
                }
                res
            }
        })
        .await
    }

    async fn upload_once(
        &self,
        target: &RegistryRef,
        desc: &Descriptor,
        src: &dyn BlobSource,
        scopes: &[String],
        session: Option<reqwest::Url>,
        op: &str,
    ) -> Result<()> {
        let start = format!(
            "/v2/{}/blobs/uploads/?digest={}",
            target.repository, desc.digest
        );
        let repo = target.repo_name();
        let ask = Request {
            action: Action::Push,
            repo: &repo,
            op,
            scopes,
            method: Method::POST,
            path: &start,
            headers: HeaderMap::new(),
            body: Body::Empty,
        }
        .ask();
        let (session, chunk_min) = match session {
            // A declined mount's 202 is not read for a minimum chunk length: none is known.
            Some(u) => (u, None),
            None => {
                let mono = self.monolithic.load(Ordering::Relaxed);
                // Until the registry has taken one, only a small blob held in memory is tried:
                // a declined body is then cheap, and no source is read twice.
                let single = mono == MONOLITHIC_YES
                    || (mono == MONOLITHIC_UNKNOWN
                        && desc.size <= MONOLITHIC_TRY_MAX
                        && src.in_memory(&desc.digest).is_some());
                let body = if single {
                    self.body(desc, src).await?
                } else {
                    Body::Empty
                };
                let res = self
                    .send(ask.request(Method::POST, &start, octet_stream(), body))
                    .await?;
                match res.status() {
                    StatusCode::CREATED if single => {
                        self.monolithic.store(MONOLITHIC_YES, Ordering::Relaxed);
                        return Ok(());
                    }
                    StatusCode::ACCEPTED => {
                        if single {
                            self.monolithic.store(MONOLITHIC_NO, Ordering::Relaxed);
                        }
                        (self.location(op, &res)?, chunks::chunk_min(res.headers()))
                    }
                    StatusCode::PAYLOAD_TOO_LARGE if single => {
                        // Too large even for one request: the PUT will tell whether a whole
                        // body goes at all.
                        self.monolithic.store(MONOLITHIC_NO, Ordering::Relaxed);
                        self.open_session(ask, target).await?
                    }
                    _ => return Err(self.answer_error(ask, res).await),
                }
            }
        };
        if self.chunking.first(desc.size) {
            return self.upload_chunks(ask, session, chunk_min, desc, src).await;
        }
        let mut url = session;
        url.query_pairs_mut().append_pair("digest", &desc.digest);
        let body = self.body(desc, src).await?;
        let res = self
            .send(ask.request(Method::PUT, url.as_str(), octet_stream(), body))
            .await?;
        if res.status().is_success() {
            return Ok(());
        }
        let status = res.status().as_u16();
        let err = self.answer_error(ask, res).await;
        let code = match &err {
            Error::Registry { cause, .. } => cause.code.clone(),
            _ => None,
        };
        if !wants_chunks(status, code.as_ref(), chunk_min) {
            return Err(err);
        }
        tracing::debug!("{op}: HTTP {status} for the whole blob; sending it in chunks");
        self.chunking.refused(status, desc.size);
        // The refused session may be spent: chunks go into a new one.
        let (session, chunk_min) = self.open_session(ask, target).await?;
        self.upload_chunks(ask, session, chunk_min, desc, src).await
    }

    /// Opens an upload session with no body (`POST …/blobs/uploads/`): its `Location` and the
    /// minimum chunk length the registry named.
    async fn open_session(
        &self,
        ask: Ask<'_>,
        target: &RegistryRef,
    ) -> Result<(reqwest::Url, Option<u64>)> {
        let path = format!("/v2/{}/blobs/uploads/", target.repository);
        let res = self
            .send(ask.request(Method::POST, &path, HeaderMap::new(), Body::Empty))
            .await?;
        if res.status() != StatusCode::ACCEPTED {
            return Err(self.answer_error(ask, res).await);
        }
        Ok((
            self.location(ask.op, &res)?,
            chunks::chunk_min(res.headers()),
        ))
    }

    /// The blob's bytes as a request body, checked against its digest as they go: each attempt
    /// restarts from the source, a broken stream is never resumed.
    async fn body(&self, desc: &Descriptor, src: &dyn BlobSource) -> Result<Body> {
        if let Some(b) = src.in_memory(&desc.digest) {
            return Ok(Body::Bytes(b));
        }
        let stream: ByteStream = src.open(desc).await?;
        let verified = blob::verified(stream, desc, format!("blob {}", desc.digest)).boxed();
        Ok(Body::Stream(
            reqwest::Body::wrap_stream(verified),
            desc.size,
        ))
    }
}
