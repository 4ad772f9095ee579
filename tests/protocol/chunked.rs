//! Chunked uploads: registries that refuse a blob in one request get it in `PATCH` chunks, and a
//! session that lost bytes is resumed where it says it is.
use super::common::{fixtures, Env};
use super::fake::{Fake, Req, Resp, State};
use super::{complete, reg_log};
use std::path::Path;

/// Bodies above this the first two registries refuse with 413.
const LIMIT: usize = 100 << 10;

/// The minimum chunk length the chunks-only registry names.
const MIN: usize = 100_000;

/// A single-platform base whose last layer is ~300 KiB that gzip cannot shrink, as an OCI layout
/// in `dir`; returns that layer's digest and bytes.
fn big_base(dir: &Path) -> (String, Vec<u8>) {
    let mut base = fixtures::engine_like(false);
    base.single = true;
    // xorshift: incompressible, and the same on every run.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..300 << 10)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    base.platforms[0].layers.push(vec![fixtures::Item::File(
        "opt/noise.bin".into(),
        noise,
        0o644,
    )]);
    fixtures::write_layout(dir, &base, "1");
    let biggest = std::fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let bytes = std::fs::read(&biggest).unwrap();
    assert!(bytes.len() > 3 * LIMIT, "{} bytes", bytes.len());
    let digest = format!("sha256:{}", biggest.file_name().unwrap().to_string_lossy());
    (digest, bytes)
}

/// Pushes the big base (and the rest example over it) to `team/mocks:1` on `reg`.
fn push(reg: &Fake, env: &Env, layout: &Path) {
    let base = format!("oci:{}:1", layout.display());
    let target = reg.reference("team/mocks:1");
    let out = env.run(&[
        "build",
        "examples/rest",
        "--base",
        &base,
        "--push",
        &target,
        "--jobs",
        "1",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(complete(reg, "team/mocks", "1"), "{:#?}", reg.requests());
}

/// The accepted `PATCH`es of the session the blob `digest` was closed in, in order.
fn chunks_of(seen: &[(Req, u16)], digest: &str) -> Vec<Req> {
    let close = seen
        .iter()
        .find(|(r, s)| {
            r.method == "PUT" && *s == 201 && r.query("digest").as_deref() == Some(digest)
        })
        .expect("the upload was closed");
    assert!(close.0.body.is_empty(), "the last chunk went in a PATCH");
    seen.iter()
        .filter(|(r, s)| r.method == "PATCH" && *s == 202 && r.path() == close.0.path())
        .map(|(r, _)| r.clone())
        .collect()
}

/// `Content-Range: a-b` as (a, b).
fn range(r: &Req) -> (usize, usize) {
    let (a, b) = r.header("content-range").unwrap().split_once('-').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

/// The chunks, in order, are the blob: each starts where the last ended.
fn assert_whole(chunks: &[Req], blob: &[u8]) {
    let mut at = 0;
    for c in chunks {
        assert_eq!(range(c), (at, at + c.body.len() - 1));
        at += c.body.len();
    }
    let joined: Vec<u8> = chunks.iter().flat_map(|c| c.body.clone()).collect();
    assert!(
        joined == blob,
        "{} bytes sent of {}",
        joined.len(),
        blob.len()
    );
}

fn too_large(req: &Req, _: &mut State) -> Option<Resp> {
    (req.body.len() > LIMIT)
        .then(|| Resp::new(413).body("<html>413 Request Entity Too Large</html>"))
}

#[test]
fn a_registry_that_refuses_large_bodies_with_413_gets_the_blob_in_chunks_under_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (digest, blob) = big_base(dir.path());
    let reg = Fake::start(too_large);
    push(&reg, &Env::new(), dir.path());
    let st = reg.state.lock().unwrap();
    assert!(st.blobs[&digest] == blob, "the stored blob differs");
    let chunks = chunks_of(&st.log, &digest);
    assert!(chunks.len() >= 2, "{:#?}", reg_log(&st));
    assert!(chunks.iter().all(|c| c.body.len() <= LIMIT));
    assert_whole(&chunks, &blob);
    // The whole blob was offered once; after the 413 it went in chunks, never whole again.
    let whole = st
        .log
        .iter()
        .filter(|(r, _)| r.method == "PUT" && r.body.len() == blob.len())
        .count();
    assert_eq!(whole, 1, "{:#?}", reg_log(&st));
}

#[test]
fn a_registry_that_names_a_minimum_chunk_length_gets_chunks_at_least_that_long() {
    let dir = tempfile::tempdir().unwrap();
    let (digest, blob) = big_base(dir.path());
    let reg = Fake::start(|req, st| {
        if req.method == "POST" && req.query("mount").is_none() {
            // Every session comes with the minimum, and any body a POST carries is ignored.
            let id = format!("c{}", st.log.len());
            st.open_upload(&id);
            return Some(
                Resp::new(202)
                    .header("Location", &format!("/v2/team/mocks/blobs/uploads/{id}"))
                    .header("OCI-Chunk-Min-Length", &MIN.to_string()),
            );
        }
        (req.method == "PUT" && req.path().contains("/blobs/uploads/") && !req.body.is_empty())
            .then(|| {
                Resp::new(400)
                    .header("Content-Type", "application/json")
                    .body(r#"{"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"chunks only"}]}"#)
            })
    });
    // Below the registry's minimum: the minimum decides the chunk length.
    let env = Env::new().set("MOCKIMG_CHUNK_BYTES", "32768");
    push(&reg, &env, dir.path());
    let st = reg.state.lock().unwrap();
    assert!(st.blobs[&digest] == blob, "the stored blob differs");
    let chunks = chunks_of(&st.log, &digest);
    assert!(chunks.len() >= 3, "{:#?}", reg_log(&st));
    let (last, full) = chunks.split_last().unwrap();
    assert!(
        full.iter().all(|c| c.body.len() >= MIN),
        "{:?}",
        lens(&chunks)
    );
    assert!(!last.body.is_empty());
    assert_whole(&chunks, &blob);
    // Whole bodies were refused until the first refusal was learnt: at most one per stream of
    // uploads (new blobs, base blobs; one at a time each with `--jobs 1`). The big layer came
    // after that and went straight to chunks.
    let whole: Vec<String> = st
        .log
        .iter()
        .filter(|(r, _)| {
            r.method == "PUT" && r.path().contains("/blobs/uploads/") && !r.body.is_empty()
        })
        .map(|(r, _)| r.query("digest").unwrap())
        .collect();
    assert!(
        (1..=2).contains(&whole.len()) && !whole.contains(&digest),
        "{:#?}",
        reg_log(&st)
    );
}

fn lens(chunks: &[Req]) -> Vec<usize> {
    chunks.iter().map(|c| c.body.len()).collect()
}

#[test]
fn a_416_mid_upload_resumes_from_the_range_the_session_reports() {
    let dir = tempfile::tempdir().unwrap();
    let (digest, blob) = big_base(dir.path());
    let reg = Fake::start(|req, st| {
        if let Some(r) = too_large(req, st) {
            return Some(r);
        }
        // Once, a session two chunks in loses the end of what it took: the next chunk no longer
        // starts where the session ends, and the registry answers 416.
        if req.method == "PATCH" && !st.log.iter().any(|(_, s)| *s == 416) {
            let id = req.path().rsplit('/').next().unwrap().to_string();
            let held = st.upload_len(&id).unwrap_or(0);
            if held >= 2 * (LIMIT / 2) {
                st.truncate_upload(&id, held - 1000);
            }
        }
        None
    });
    push(&reg, &Env::new(), dir.path());
    let st = reg.state.lock().unwrap();
    assert!(st.blobs[&digest] == blob, "the stored blob differs");
    let log = &st.log;
    let refused: Vec<usize> = (0..log.len()).filter(|i| log[*i].1 == 416).collect();
    assert_eq!(refused.len(), 1, "{:#?}", reg_log(&st));
    let (patch, _) = &log[refused[0]];
    // The session was asked where it is, and the next chunk started there, in the same session
    // (the other stream of uploads may answer in between: only this session's requests count).
    let after: Vec<&(Req, u16)> = log[refused[0] + 1..]
        .iter()
        .filter(|(r, _)| r.path() == patch.path())
        .collect();
    let (asked, status) = after[0];
    assert_eq!(
        (asked.method.as_str(), *status),
        ("GET", 204),
        "{:#?}",
        reg_log(&st)
    );
    let reported = range(patch).0 - 1000;
    let (next, s) = after[1];
    assert_eq!((next.method.as_str(), *s), ("PATCH", 202));
    assert_eq!(range(next).0, reported);
    let chunks = chunks_of(log, &digest);
    assert_eq!(chunks[0].path(), patch.path(), "no new session was opened");
}
