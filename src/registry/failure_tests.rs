use super::*;

fn with_code(code: &str, status: Option<u16>) -> Failure {
    Failure {
        code: Some(ErrorCode::parse(code)),
        status,
        ..Failure::default()
    }
}

#[test]
fn every_spec_code_has_its_own_decision() {
    let transient = [
        "TOOMANYREQUESTS",
        "BLOB_UPLOAD_INVALID",
        "BLOB_UPLOAD_UNKNOWN",
        "DIGEST_INVALID",
        "SIZE_INVALID",
    ];
    let final_ = [
        "BLOB_UNKNOWN",
        "MANIFEST_BLOB_UNKNOWN",
        "MANIFEST_INVALID",
        "MANIFEST_UNKNOWN",
        "NAME_INVALID",
        "NAME_UNKNOWN",
        "UNAUTHORIZED",
        "DENIED",
        "UNSUPPORTED",
    ];
    for c in transient {
        assert!(with_code(c, Some(400)).is_transient(), "{c}");
        assert_eq!(ErrorCode::parse(c).as_str(), c);
    }
    for c in final_ {
        assert!(!with_code(c, Some(400)).is_transient(), "{c}");
        assert!(!with_code(c, None).is_transient(), "{c}");
        assert_eq!(ErrorCode::parse(c).as_str(), c);
    }
}

#[test]
fn a_refused_manifest_sent_as_500_is_final() {
    for code in ["MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID", "BLOB_UNKNOWN"] {
        let body =
            format!(r#"{{"errors":[{{"code":"{code}","message":"blob unknown to registry"}}]}}"#);
        let (f, detail) = Failure::of_answer(500, body.as_bytes());
        assert_eq!(f.status, Some(500));
        assert_eq!(f.code, Some(ErrorCode::parse(code)));
        assert!(!f.is_transient(), "{code} as 500");
        assert_eq!(
            detail,
            format!("HTTP 500: {code}: blob unknown to registry")
        );
    }
    // As distribution 2.8 sends a manifest whose foreign layer URL it refuses: unknown codes
    // first, the refusal last.
    let body = br#"{"errors":[{"code":"UNKNOWN","message":"unknown error"},{"code":"UNKNOWN","message":"unknown error"},{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#;
    let (f, _) = Failure::of_answer(500, body);
    assert_eq!(f.code, Some(ErrorCode::ManifestBlobUnknown));
    assert!(!f.is_transient(), "a refusal listed after unknown codes");
    // A 500 with no code, or one we do not know, is the server's trouble: try again.
    assert!(Failure::of_answer(500, b"internal error").0.is_transient());
    assert!(with_code("SOMETHING_NEW", Some(503)).is_transient());
    assert!(!with_code("SOMETHING_NEW", Some(400)).is_transient());
}

#[test]
fn answers_read_as_data_and_one_line() {
    let (f, detail) = Failure::of_answer(401, b"{}");
    assert!(f.is_unauthorized() && !f.is_transient());
    assert_eq!(detail, "HTTP 401");
    let (f, detail) = Failure::of_answer(
        404,
        br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"no such tag"}]}"#,
    );
    assert_eq!(f.code, Some(ErrorCode::ManifestUnknown));
    assert!(!f.is_transient());
    assert_eq!(detail, "MANIFEST_UNKNOWN: no such tag");
    let (f, _) = Failure::of_answer(429, br#"{"errors":[{"code":"TOOMANYREQUESTS"}]}"#);
    assert!(f.is_transient());
    let (f, detail) = Failure::of_answer(503, b"down\nfor maintenance");
    assert_eq!((f.status, f.code.clone()), (Some(503), None));
    assert!(f.is_transient());
    assert_eq!(detail, "HTTP 503: down");
    let (f, detail) = Failure::of_answer(404, b"<html>not here</html>");
    assert_eq!(f.status, Some(404));
    assert!(!f.is_transient());
    assert_eq!(detail, "HTTP 404: <html>not here</html>");
}

#[test]
fn statuses_without_a_code() {
    for s in [408, 429, 500, 502, 503, 504] {
        assert!(Failure::status(s).is_transient(), "{s}");
    }
    for s in [400, 401, 403, 404, 405, 409] {
        assert!(!Failure::status(s).is_transient(), "{s}");
    }
}

#[test]
fn io_kinds() {
    use ErrorKind as K;
    for k in [
        K::ConnectionReset,
        K::ConnectionAborted,
        K::ConnectionRefused,
        K::TimedOut,
        K::UnexpectedEof,
        K::BrokenPipe,
        K::InvalidData,
    ] {
        assert!(Failure::io(k).is_transient(), "{k:?}");
    }
    for k in [K::PermissionDenied, K::NotFound, K::Other, K::InvalidInput] {
        assert!(!Failure::io(k).is_transient(), "{k:?}");
    }
    assert!(!Failure::default().is_transient());
    assert!(!Failure {
        tls: Some(Box::new(TlsFailure::UnknownIssuer)),
        status: Some(503),
        ..Failure::default()
    }
    .is_transient());
}

#[test]
fn io_kind_is_found_behind_wrapping() {
    use ErrorKind as K;
    let reset = std::io::Error::from(K::ConnectionReset);
    let wrapped = std::io::Error::other(reset);
    assert_eq!(transport_kind(&wrapped), Some(K::ConnectionReset));
    let twice = std::io::Error::other(wrapped);
    assert_eq!(transport_kind(&twice), Some(K::ConnectionReset));
    let opaque = std::io::Error::other("gave up");
    assert_eq!(transport_kind(&opaque), None);
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    // Bound then dropped: nothing listens on the port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/v2/"))
        .send()
        .await
        .unwrap_err();
    let f = Failure::of_transport(&e);
    assert_eq!((f.status, f.io), (None, Some(ErrorKind::ConnectionRefused)));
    assert!(f.is_transient());
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_final() {
    // `.invalid` never resolves (RFC 2606), with or without a network.
    let e = reqwest::Client::new()
        .get("http://registry.mockimg-test.invalid/v2/")
        .send()
        .await
        .unwrap_err();
    let f = Failure::of_transport(&e);
    assert_eq!(f.io, Some(ErrorKind::HostUnreachable));
    assert!(!f.is_transient());
}

#[tokio::test]
async fn a_body_that_failed_our_verification_reads_as_corrupt() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        while tokio::io::AsyncReadExt::read(&mut sock, &mut buf)
            .await
            .is_ok_and(|n| n > 0)
        {}
    });
    let bad = std::io::Error::new(ErrorKind::InvalidData, "content mismatch");
    let body = futures_util::stream::iter(vec![Ok(bytes::Bytes::from_static(b"half")), Err(bad)]);
    let e = reqwest::Client::new()
        .put(format!("http://{addr}/v2/a/blobs/uploads/x"))
        .header("Content-Length", "8")
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap_err();
    let f = Failure::of_transport(&e);
    assert_eq!(f.io, Some(ErrorKind::InvalidData));
    assert!(f.is_transient());
}

#[test]
fn error_bodies_read_as_codes() {
    let body =
        r#"{"errors":[{"code":"DIGEST_INVALID","message":"bad\nsecond line"},{"code":"X"}]}"#;
    assert_eq!(
        body_codes(body),
        vec![ErrorCode::DigestInvalid, ErrorCode::Unknown("X".into())]
    );
    assert_eq!(error_body(body), "DIGEST_INVALID: bad; X: ");
    assert!(body_codes("<html>oops</html>").is_empty());
    assert_eq!(error_body("oops\nmore"), "oops");
}
