//! Unit tests of `chunks.rs`: which answers mean "go chunked", chunk lengths, and the feed.
use super::*;

#[test]
fn a_413_means_chunks_whatever_else_the_registry_said() {
    assert!(wants_chunks(413, None, None));
    assert!(wants_chunks(413, Some(&ErrorCode::SizeInvalid), Some(1)));
}

#[test]
fn a_refused_form_means_chunks_only_from_a_registry_that_named_a_minimum() {
    for s in [400, 405, 411, 416, 501] {
        assert!(wants_chunks(s, None, Some(5 << 20)), "{s}");
        assert!(!wants_chunks(s, None, None), "{s}");
    }
    assert!(wants_chunks(
        400,
        Some(&ErrorCode::BlobUploadInvalid),
        Some(1 << 20)
    ));
}

#[test]
fn refusals_that_mean_something_else_never_mean_chunks() {
    let min = Some(5 << 20);
    for s in [401, 403, 404, 429, 500, 502, 503] {
        assert!(!wants_chunks(s, None, min), "{s}");
    }
    for c in [
        ErrorCode::DigestInvalid,
        ErrorCode::Denied,
        ErrorCode::Unauthorized,
        ErrorCode::NameUnknown,
        ErrorCode::NameInvalid,
        ErrorCode::TooManyRequests,
    ] {
        assert!(!wants_chunks(400, Some(&c), min), "{c}");
    }
}

#[test]
fn chunks_are_the_default_length_unless_the_registry_says_otherwise() {
    assert_eq!(chunk_len(DEFAULT_CHUNK, None, u64::MAX), DEFAULT_CHUNK);
    // A minimum above the default wins; one below it changes nothing.
    assert_eq!(chunk_len(DEFAULT_CHUNK, Some(20 << 20), u64::MAX), 20 << 20);
    assert_eq!(
        chunk_len(DEFAULT_CHUNK, Some(5 << 20), u64::MAX),
        DEFAULT_CHUNK
    );
}

#[test]
fn a_body_refused_as_too_large_halves_the_chunk_down_to_a_floor() {
    // A huge blob refused: the default already fits under half of it.
    assert_eq!(chunk_len(DEFAULT_CHUNK, None, 1 << 30), DEFAULT_CHUNK);
    assert_eq!(chunk_len(DEFAULT_CHUNK, None, 6 << 20), 3 << 20);
    assert_eq!(chunk_len(DEFAULT_CHUNK, None, 100), SMALLEST_CHUNK);
    // The registry's own minimum is never undercut.
    assert_eq!(chunk_len(DEFAULT_CHUNK, Some(5 << 20), 6 << 20), 5 << 20);
}

#[test]
fn what_was_refused_is_remembered_per_size_or_for_every_blob() {
    let c = Chunking::default();
    assert!(!c.first(1 << 40));
    c.refused(413, 10 << 20);
    c.refused(413, 20 << 20);
    assert!(c.first(10 << 20) && !c.first((10 << 20) - 1));
    c.refused(400, 10);
    assert!(c.first(1));
}

#[test]
fn a_session_range_gives_the_next_offset() {
    assert_eq!(next_offset(Some("0-1023")), Some(1024));
    assert_eq!(next_offset(Some("bytes=0-99")), Some(100));
    assert_eq!(next_offset(Some("0-0")), Some(0));
    for bad in [None, Some(""), Some("5-9"), Some("0-x"), Some("garbage")] {
        assert_eq!(next_offset(bad), None, "{bad:?}");
    }
}

#[test]
fn the_minimum_chunk_length_is_read_from_the_session_answer() {
    let mut h = HeaderMap::new();
    assert_eq!(chunk_min(&h), None);
    h.insert(CHUNK_MIN_HEADER, HeaderValue::from_static("5242880"));
    assert_eq!(chunk_min(&h), Some(5 << 20));
    h.insert(CHUNK_MIN_HEADER, HeaderValue::from_static("0"));
    assert_eq!(chunk_min(&h), None);
    h.insert(CHUNK_MIN_HEADER, HeaderValue::from_static("lots"));
    assert_eq!(chunk_min(&h), None);
}

/// A blob served in pieces of 7 bytes, counting how often it was opened.
struct Pieces(Bytes, std::sync::atomic::AtomicUsize);

impl BlobSource for Pieces {
    fn open<'a>(
        &'a self,
        _: &'a Descriptor,
    ) -> futures_util::future::BoxFuture<'a, Result<ByteStream>> {
        self.1.fetch_add(1, Ordering::Relaxed);
        let parts: Vec<_> = self.0.chunks(7).map(Bytes::copy_from_slice).collect();
        Box::pin(async move { Ok(futures_util::stream::iter(parts.into_iter().map(Ok)).boxed()) })
    }
}

fn pieces(n: usize) -> (Pieces, Descriptor) {
    let data: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
    let d = crate::oci::image::Doc::new("x", data.clone()).descriptor();
    (Pieces(data.into(), Default::default()), d)
}

fn bad(e: std::io::Error) -> Error {
    panic!("read failed: {e}")
}

#[tokio::test]
async fn chunks_are_cut_across_pieces_and_end_with_an_empty_one() {
    let (src, d) = pieces(100);
    let mut f = Feed::open(&d, &src).await.unwrap();
    let mut got = Vec::new();
    loop {
        let (at, c) = f.take(30).await.unwrap();
        if c.is_empty() {
            break;
        }
        assert_eq!(at as usize, got.len());
        assert!(c.len() == 30 || at == 90, "{at}: {}", c.len());
        got.extend_from_slice(&c);
    }
    assert_eq!(got, src.0);
}

#[tokio::test]
async fn a_seek_into_the_chunk_sent_resends_its_tail_without_reopening() {
    let (src, d) = pieces(100);
    let mut f = Feed::open(&d, &src).await.unwrap();
    f.take(30).await.unwrap();
    let (at, c) = f.take(30).await.unwrap();
    f.seek(at, &c, 45, bad).await.unwrap();
    let (at, c) = f.take(30).await.unwrap();
    assert_eq!((at, &c[..]), (45, &src.0[45..75]));
    assert_eq!(src.1.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_seek_before_the_chunk_sent_reads_the_source_again() {
    let (src, d) = pieces(100);
    let mut f = Feed::open(&d, &src).await.unwrap();
    f.take(30).await.unwrap();
    let (at, c) = f.take(30).await.unwrap();
    f.seek(at, &c, 12, bad).await.unwrap();
    let (at, c) = f.take(30).await.unwrap();
    assert_eq!((at, &c[..]), (12, &src.0[12..42]));
    assert_eq!(src.1.load(Ordering::Relaxed), 2);
    // And on to the end, the digest checked again from the start.
    let (_, rest) = f.take(100).await.unwrap();
    assert_eq!(&rest[..], &src.0[42..]);
    assert!(f.take(100).await.unwrap().1.is_empty());
}

#[tokio::test]
async fn a_seek_past_the_chunk_sent_skips_ahead() {
    let (src, d) = pieces(100);
    let mut f = Feed::open(&d, &src).await.unwrap();
    let (at, c) = f.take(30).await.unwrap();
    f.seek(at, &c, 64, bad).await.unwrap();
    let (at, c) = f.take(100).await.unwrap();
    assert_eq!((at, &c[..]), (64, &src.0[64..]));
}

#[tokio::test]
async fn a_source_that_differs_from_its_digest_fails_the_read() {
    let (src, mut d) = pieces(100);
    d.digest = crate::oci::image::Doc::new("x", vec![0; 100])
        .descriptor()
        .digest;
    let mut f = Feed::open(&d, &src).await.unwrap();
    let e = f.take(1000).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
}
