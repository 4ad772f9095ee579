//! Uploading a blob in chunks (distribution spec, "Pushing a blob in chunks"): the fallback for a
//! registry that refuses a whole blob in one request, either by a body-size limit answering 413
//! or by naming a minimum chunk length (`OCI-Chunk-Min-Length`) and refusing the single PUT.
//!
//! `PATCH` after `PATCH`, each with its `Content-Range` and to the `Location` the previous answer
//! gave, then the closing `PUT ?digest=` with no body. At most one chunk is held in memory: the
//! bytes come from the blob's source as they are sent, verified against the digest as they are
//! read. A 416 (the session holds other than what was sent) resumes from the offset the session
//! reports (`GET` on it); a 413 for a chunk halves the chunk; anything else fails the attempt,
//! and the one retry policy (`retry.rs`) starts the upload again from a new session.
use super::super::failure::{ErrorCode, Failure};
use super::super::transport::{Ask, Body};
use super::super::Registry;
use crate::error::{Error, Result};
use crate::oci::blob::{self, BlobSource, ByteStream};
use crate::oci::image::Descriptor;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The chunk length when the registry asks for no other: few requests, and one chunk in memory
/// does not matter.
pub(crate) const DEFAULT_CHUNK: u64 = 8 << 20;

/// Halving after a 413 stops here: a registry that refuses this much refuses uploads, not sizes.
const SMALLEST_CHUNK: u64 = 64 << 10;

/// 416s resumed in one upload attempt: a session whose offset keeps moving is not converging.
const MAX_RESUMES: u32 = 8;

/// The header a registry names its minimum chunk length in, on the answer that opens a session.
pub(crate) const CHUNK_MIN_HEADER: &str = "OCI-Chunk-Min-Length";

/// What this process learnt of a registry's limits on upload bodies, so that a blob is not sent
/// whole to be refused again.
#[derive(Debug)]
pub(crate) struct Chunking {
    /// The smallest body refused as too large (413); `u64::MAX` until one is.
    too_large: AtomicU64,
    /// It named a minimum chunk length and refused a whole blob: every blob goes in chunks.
    only: AtomicBool,
}

impl Default for Chunking {
    fn default() -> Self {
        Chunking {
            too_large: AtomicU64::new(u64::MAX),
            only: AtomicBool::new(false),
        }
    }
}

impl Chunking {
    /// Whether a blob of `size` bytes goes straight to chunks: a body this large was refused.
    pub(crate) fn first(&self, size: u64) -> bool {
        self.only.load(Ordering::Relaxed) || size >= self.too_large.load(Ordering::Relaxed)
    }

    /// A whole blob of `size` bytes was refused with `status`: remember what it says.
    pub(crate) fn refused(&self, status: u16, size: u64) {
        if status == 413 {
            self.too_large.fetch_min(size, Ordering::Relaxed);
        } else {
            self.only.store(true, Ordering::Relaxed);
        }
    }

    fn too_large(&self) -> u64 {
        self.too_large.load(Ordering::Relaxed)
    }
}

/// Whether a registry's refusal of a whole blob means "send it in chunks": a 413 (the body is
/// over its limit), or, from a registry that named a minimum chunk length, a refusal of the
/// request's form (400, 405, 411, 416, 501) whose error code does not say something else (bad
/// bytes, no access, no such repository, slow down).
pub(crate) fn wants_chunks(status: u16, code: Option<&ErrorCode>, chunk_min: Option<u64>) -> bool {
    if status == 413 {
        return true;
    }
    if chunk_min.is_none() {
        return false;
    }
    let says_else = matches!(
        code,
        Some(
            ErrorCode::DigestInvalid
                | ErrorCode::Denied
                | ErrorCode::Unauthorized
                | ErrorCode::NameInvalid
                | ErrorCode::NameUnknown
                | ErrorCode::TooManyRequests
        )
    );
    !says_else && matches!(status, 400 | 405 | 411 | 416 | 501)
}

/// The length of the next chunk: `default`, under half the smallest body refused as too large
/// (not below [`SMALLEST_CHUNK`]), and never under the registry's minimum.
pub(crate) fn chunk_len(default: u64, chunk_min: Option<u64>, too_large: u64) -> u64 {
    let cap = if too_large == u64::MAX {
        u64::MAX
    } else {
        (too_large / 2).max(SMALLEST_CHUNK)
    };
    default.min(cap).max(chunk_min.unwrap_or(0)).max(1)
}

/// The `OCI-Chunk-Min-Length` of an answer that opened a session, when it is a number.
pub(crate) fn chunk_min(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CHUNK_MIN_HEADER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|n| *n > 0)
}

/// The offset the next chunk starts at, from a session's `Range: 0-<last byte>` (some registries
/// write `bytes=0-…`). CNCF distribution writes `0-0` for an empty session as well as for one
/// holding one byte; it is read as empty, the common case (chunks are never one byte long but
/// the last), and a wrong guess costs one more 416.
pub(crate) fn next_offset(range: Option<&str>) -> Option<u64> {
    let r = range?.trim();
    let r = r.strip_prefix("bytes=").unwrap_or(r);
    let (first, last) = r.split_once('-')?;
    if first.trim() != "0" {
        return None;
    }
    let last: u64 = last.trim().parse().ok()?;
    Some(if last == 0 { 0 } else { last + 1 })
}

fn range_header(res: &reqwest::Response) -> Option<&str> {
    res.headers().get("range").and_then(|v| v.to_str().ok())
}

/// The blob's bytes as they are sent: the verified stream from its source, and what was read of
/// it but not yet accepted by the registry (at most a chunk and one piece of the stream).
struct Feed<'a> {
    desc: &'a Descriptor,
    src: &'a dyn BlobSource,
    stream: ByteStream,
    /// The offset in the blob of the first held byte.
    pos: u64,
    held: VecDeque<Bytes>,
    held_len: u64,
}

impl<'a> Feed<'a> {
    async fn open(desc: &'a Descriptor, src: &'a dyn BlobSource) -> Result<Feed<'a>> {
        Ok(Feed {
            desc,
            src,
            stream: Self::verified(desc, src).await?,
            pos: 0,
            held: VecDeque::new(),
            held_len: 0,
        })
    }

    async fn verified(desc: &Descriptor, src: &dyn BlobSource) -> Result<ByteStream> {
        let stream = src.open(desc).await?;
        Ok(blob::verified(
            stream,
            desc,
            format!("blob {}", desc.digest),
        ))
    }

    /// Reads until `n` bytes are held or the blob ends. The stream's end is always read, so the
    /// last chunk is taken only after the digest was checked.
    async fn fill(&mut self, n: u64) -> std::io::Result<()> {
        while self.held_len < n || self.pos + self.held_len == self.desc.size {
            match self.stream.next().await {
                Some(b) => {
                    let b = b?;
                    self.held_len += b.len() as u64;
                    if !b.is_empty() {
                        self.held.push_back(b);
                    }
                }
                None => break,
            }
        }
        Ok(())
    }

    /// The next chunk of at most `n` bytes and its offset (an empty chunk at the end).
    async fn take(&mut self, n: u64) -> std::io::Result<(u64, Bytes)> {
        self.fill(n).await?;
        let at = self.pos;
        let n = n.min(self.held_len);
        let chunk = match self.held.front_mut() {
            // One piece of the stream holds the whole chunk (an in-memory blob): no copy.
            Some(front) if front.len() as u64 >= n => {
                let c = front.split_to(n as usize);
                if front.is_empty() {
                    self.held.pop_front();
                }
                c
            }
            _ => {
                let mut c = BytesMut::with_capacity(n as usize);
                while (c.len() as u64) < n {
                    let Some(mut front) = self.held.pop_front() else {
                        break;
                    };
                    let want = (n - c.len() as u64) as usize;
                    if front.len() > want {
                        c.extend_from_slice(&front.split_to(want));
                        self.held.push_front(front);
                    } else {
                        c.extend_from_slice(&front);
                    }
                }
                c.freeze()
            }
        };
        self.held_len -= chunk.len() as u64;
        self.pos += chunk.len() as u64;
        Ok((at, chunk))
    }

    /// Goes on from offset `to`, after `chunk` (sent from `at`) was answered: from the chunk's
    /// tail or what is held when `to` falls there, else from the source again, read from the
    /// start (every byte is hashed) and dropped up to `to`.
    async fn seek(
        &mut self,
        at: u64,
        chunk: &Bytes,
        to: u64,
        read_failed: impl Fn(std::io::Error) -> Error,
    ) -> Result<()> {
        let end = at + chunk.len() as u64;
        if (at..end).contains(&to) {
            self.held.push_front(chunk.slice((to - at) as usize..));
            self.held_len += end - to;
            self.pos = to;
            return Ok(());
        }
        if to < at {
            self.stream = Self::verified(self.desc, self.src).await?;
            self.held.clear();
            self.held_len = 0;
            self.pos = 0;
        }
        while self.pos < to {
            let step = (to - self.pos).min(DEFAULT_CHUNK);
            let (_, skipped) = self.take(step).await.map_err(&read_failed)?;
            if skipped.is_empty() {
                break;
            }
        }
        Ok(())
    }
}

impl Registry {
    /// Uploads `desc` from `src` into the open session `url`, chunk by chunk.
    pub(super) async fn upload_chunks(
        &self,
        ask: Ask<'_>,
        url: reqwest::Url,
        chunk_min: Option<u64>,
        desc: &Descriptor,
        src: &dyn BlobSource,
    ) -> Result<()> {
        let read_failed = |e: std::io::Error| {
            let detail = e.to_string();
            self.failed(ask.op, None, Failure::io(e.kind()), detail)
        };
        let mut feed = Feed::open(desc, src).await?;
        let mut url = url;
        let mut resumes = 0;
        loop {
            let len = chunk_len(self.opts.chunk_size, chunk_min, self.chunking.too_large());
            let (at, chunk) = feed.take(len).await.map_err(read_failed)?;
            if chunk.is_empty() {
                break;
            }
            let end = at + chunk.len() as u64;
            let mut headers = octet_stream();
            let range = format!("{at}-{}", end - 1);
            headers.insert(
                "content-range",
                HeaderValue::from_str(&range).expect("digits and a dash"),
            );
            let res = self
                .send(ask.request(
                    Method::PATCH,
                    url.as_str(),
                    headers,
                    Body::Bytes(chunk.clone()),
                ))
                .await?;
            match res.status() {
                s if s.is_success() => {
                    // The next chunk goes where this answer says. Its `Range` is not read: the
                    // spec has it match what was sent, registries have been seen off by one, and
                    // a session that really holds other bytes answers the next chunk with 416.
                    if res.headers().contains_key(reqwest::header::LOCATION) {
                        url = self.location(ask.op, &res)?;
                    }
                }
                StatusCode::RANGE_NOT_SATISFIABLE if resumes < MAX_RESUMES => {
                    resumes += 1;
                    let (u, next) = self.upload_status(ask, &url).await?;
                    if next > desc.size {
                        return Err(self.invalid_answer(
                            ask.op,
                            &format!("the upload session holds {next} bytes of {}", desc.size),
                        ));
                    }
                    tracing::debug!("{}: resuming at byte {next} after a 416", ask.op);
                    url = u;
                    feed.seek(at, &chunk, next, read_failed).await?;
                }
                StatusCode::PAYLOAD_TOO_LARGE
                    if chunk_len(self.opts.chunk_size, chunk_min, chunk.len() as u64)
                        < chunk.len() as u64 =>
                {
                    // The limit is below this chunk: send the same bytes in smaller ones.
                    self.chunking.refused(413, chunk.len() as u64);
                    feed.seek(at, &chunk, at, read_failed).await?;
                }
                _ => return Err(self.answer_error(ask, res).await),
            }
        }
        url.query_pairs_mut().append_pair("digest", &desc.digest);
        let res = self
            .send(ask.request(Method::PUT, url.as_str(), HeaderMap::new(), Body::Empty))
            .await?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(self.answer_error(ask, res).await)
        }
    }

    /// Where an upload session is and how much it holds (`GET` on it; 204, `Range`).
    async fn upload_status(&self, ask: Ask<'_>, url: &reqwest::Url) -> Result<(reqwest::Url, u64)> {
        let res = self
            .send(ask.request(Method::GET, url.as_str(), HeaderMap::new(), Body::Empty))
            .await?;
        if !res.status().is_success() {
            return Err(self.answer_error(ask, res).await);
        }
        let next = next_offset(range_header(&res)).ok_or_else(|| {
            self.invalid_answer(ask.op, "the upload session's status has no Range")
        })?;
        let url = if res.headers().contains_key(reqwest::header::LOCATION) {
            self.location(ask.op, &res)?
        } else {
            url.clone()
        };
        Ok((url, next))
    }
}

/// `Content-Type: application/octet-stream`, as every upload body is sent.
pub(super) fn octet_stream() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h
}

#[cfg(test)]
#[path = "chunks_tests.rs"]
mod tests;
