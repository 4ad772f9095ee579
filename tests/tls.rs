//! TLS registries on loopback, as the harness starts them (CNCF distribution's `http.tls`), with
//! a CA made for each test: trust through `--cert-dir`, a `certs.d` directory or
//! `SSL_CERT_FILE`; client certificates; `--insecure-registry`; and the one-line errors.
mod common;
use common::tls::TestCa;
use common::*;
use std::path::Path;

/// An Env whose `certs.d` roots are its own (empty) directories, never the machine's.
fn env_with_roots(roots: &[&Path]) -> Env {
    let joined = std::env::join_paths(roots).unwrap();
    Env::new().set("MOCKIMG_CERTS_D", joined.to_str().unwrap())
}

fn empty_roots() -> (tempfile::TempDir, Env) {
    let d = tempfile::tempdir().unwrap();
    let env = env_with_roots(&[d.path()]);
    (d, env)
}

fn build_push(env: &Env, base: &str, target: &str, extra: &[&str]) -> Run {
    let mut args = vec!["build", "examples/rest", "--base", base, "--push", target];
    args.extend_from_slice(extra);
    env.run(&args)
}

fn one_line_error(run: &Run) -> String {
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line: {}", run.stderr);
    lines[0].to_string()
}

fn pushed_nothing(reg: &Registry) {
    let writes: Vec<String> = reg
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("PUT") || r.starts_with("POST") || r.starts_with("PATCH"))
        .collect();
    assert!(writes.is_empty(), "nothing pushed: {writes:?}");
}

#[test]
fn untrusted_registry_fails_with_the_fix_and_pushes_nothing() {
    let ca = TestCa::new("untrusted");
    let tls = Registry::start_tls(&ca.server(&["127.0.0.1", "localhost"]), None);
    let plain = Registry::start();
    let base = seed_engine(&plain, false);
    let (roots, env) = empty_roots();
    let run = build_push(&env, &base, &tls.reference("team/mocks:1"), &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = one_line_error(&run);
    assert!(line.contains("unknown authority"), "{line}");
    let want_dir = roots.path().join(&tls.addr).join("ca.crt");
    assert!(line.contains(&want_dir.display().to_string()), "{line}");
    assert!(
        line.contains("--cert-dir") && line.contains("--insecure-registry"),
        "{line}"
    );
    // Refused for good: no retries, and never plain HTTP to a registry that speaks TLS.
    assert!(!run.stderr.contains("retry"), "{}", run.stderr);
    assert!(!tls.log().contains("HTTP request to an HTTPS server"));
    pushed_nothing(&tls);
}

#[test]
fn cert_dir_trusts_the_registry_for_pull_and_push() {
    let ca = TestCa::new("cert-dir");
    let tls = Registry::start_tls(&ca.server(&["127.0.0.1"]), None);
    let base = seed_engine(&tls, false);
    let certs = tempfile::tempdir().unwrap();
    ca.write_dir(certs.path(), None);
    let (_roots, env) = empty_roots();
    let target = tls.reference("team/mocks:1");
    let cert_dir = certs.path().to_str().unwrap();
    let run = build_push(&env, &base, &target, &["--cert-dir", cert_dir]).ok();
    let digest = digest_of(&run.stdout);
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--cert-dir",
        cert_dir,
        &format!("docker://{target}"),
    ]);
    assert_eq!(format!("sha256:{}", sha256_hex(raw.as_bytes())), digest);
    // And back out again, with skopeo checking the certificate the same way.
    let out = tempfile::tempdir().unwrap();
    skopeo(&[
        "copy",
        "--quiet",
        "--all",
        "--src-cert-dir",
        cert_dir,
        &format!("docker://{target}"),
        &format!("oci:{}:x", out.path().display()),
    ]);
}

#[test]
fn certs_d_directory_is_found_by_host_and_port() {
    let ca = TestCa::new("certs.d");
    let tls = Registry::start_tls(&ca.server(&["127.0.0.1"]), None);
    let plain = Registry::start();
    let base = seed_engine(&plain, false);
    // Second root: the first (empty) one is searched, then this one.
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    ca.write_dir(&second.path().join(&tls.addr), None);
    let env = env_with_roots(&[first.path(), second.path()]);
    build_push(&env, &base, &tls.reference("team/mocks:1"), &[]).ok();
    raw_manifest(&tls.reference("team/mocks:1"));
}

#[test]
fn ssl_cert_file_is_honoured() {
    let ca = TestCa::new("ssl-cert-file");
    let tls = Registry::start_tls(&ca.server(&["127.0.0.1"]), None);
    let plain = Registry::start();
    let base = seed_engine(&plain, false);
    let (roots, env) = empty_roots();
    let bundle = roots.path().join("bundle.pem");
    std::fs::write(&bundle, ca.pem()).unwrap();
    let env = env.set("SSL_CERT_FILE", bundle.to_str().unwrap());
    build_push(&env, &base, &tls.reference("team/mocks:1"), &[]).ok();
}

#[test]
fn a_name_the_certificate_does_not_list_is_named_with_the_ones_it_does() {
    let ca = TestCa::new("names");
    let tls = Registry::start_tls(&ca.server(&["registry.internal"]), None);
    let plain = Registry::start();
    let base = seed_engine(&plain, false);
    let certs = tempfile::tempdir().unwrap();
    ca.write_dir(certs.path(), None);
    let (_roots, env) = empty_roots();
    let run = build_push(
        &env,
        &base,
        &tls.reference("team/mocks:1"),
        &["--cert-dir", certs.path().to_str().unwrap()],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = one_line_error(&run);
    assert!(
        line.contains("valid for registry.internal only, not 127.0.0.1"),
        "{line}"
    );
    pushed_nothing(&tls);
}

#[test]
fn mtls_registry_without_a_client_pair_says_so() {
    let ca = TestCa::new("mtls");
    let tls = Registry::start_tls(&ca.server(&["127.0.0.1"]), Some(&ca));
    let plain = Registry::start();
    let base = seed_engine(&plain, false);
    let certs = tempfile::tempdir().unwrap();
    ca.write_dir(certs.path(), None);
    let (_roots, env) = empty_roots();
    let run = build_push(
        &env,
        &base,
        &tls.reference("team/mocks:1"),
        &["--cert-dir", certs.path().to_str().unwrap()],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = one_line_error(&run);
    assert!(line.contains(&tls.addr), "{line}");
    // Under TLS 1.3 the server's `certificate_required` alert comes after the client's side of
    // the handshake is done, and the server closes at once: whether the alert or only the closed
    // connection reaches the client is a race. When the alert is seen, the line names the fix.
    if line.contains("client certificate") {
        assert!(line.contains("client.cert and client.key"), "{line}");
    } else {
        assert!(
            line.contains("closed")
                || line.contains("broken pipe")
                || line.contains("reset")
                || line.contains("alert"),
            "{line}"
        );
    }
    pushed_nothing(&tls);
}

#[test]
fn mtls_registry_with_the_client_pair_takes_the_push() {
    let ca = TestCa::new("mtls");
    let tls = Registry::start_tls(&ca.server(&["127.0.0.1"]), Some(&ca));
    let plain = Registry::start();
    let base = seed_engine(&plain, false);
    let (roots, env) = empty_roots();
    ca.write_dir(&roots.path().join(&tls.addr), Some(&ca.client()));
    build_push(&env, &base, &tls.reference("team/mocks:1"), &[]).ok();
}

fn openssl(dir: &Path, args: &[&str]) -> String {
    let o = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI is installed (scripts/test installs it)");
    assert!(
        o.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn mtls_registry_takes_an_x509_v1_client_certificate_made_by_openssl() {
    // The client pair as many how-tos make it: `openssl x509 -req` signs a v1 certificate.
    let pki = tempfile::tempdir().unwrap();
    let p = pki.path();
    openssl(p, &["genrsa", "-out", "ca.key", "2048"]);
    openssl(
        p,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-subj",
            "/CN=v1 client CA",
            "-days",
            "2",
            "-out",
            "ca.crt",
        ],
    );
    openssl(p, &["genrsa", "-out", "cli.key", "2048"]);
    openssl(
        p,
        &[
            "req",
            "-new",
            "-key",
            "cli.key",
            "-subj",
            "/CN=v1 client",
            "-out",
            "cli.csr",
        ],
    );
    openssl(
        p,
        &[
            "x509",
            "-req",
            "-in",
            "cli.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "cli.cert",
        ],
    );
    let text = openssl(p, &["x509", "-in", "cli.cert", "-noout", "-text"]);
    assert!(
        text.contains("Version: 1 (0x0)"),
        "not a v1 certificate:\n{text}"
    );

    let server_ca = TestCa::new("v1-server");
    let client_ca = std::fs::read_to_string(p.join("ca.crt")).unwrap();
    let tls = Registry::start_tls_pem(&server_ca.server(&["127.0.0.1"]), Some(&client_ca));
    let plain = Registry::start();
    let base = seed_engine(&plain, false);
    let certs = tempfile::tempdir().unwrap();
    server_ca.write_dir(certs.path(), None);
    std::fs::copy(p.join("cli.cert"), certs.path().join("cli.cert")).unwrap();
    std::fs::copy(p.join("cli.key"), certs.path().join("cli.key")).unwrap();
    let cert_dir = certs.path().to_str().unwrap();
    let (_roots, env) = empty_roots();
    let target = tls.reference("team/mocks:v1");
    let run = build_push(&env, &base, &target, &["--cert-dir", cert_dir]).ok();
    // skopeo (Go's TLS) reads it back with the same directory: the same pair works for both.
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--cert-dir",
        cert_dir,
        &format!("docker://{target}"),
    ]);
    assert_eq!(
        format!("sha256:{}", sha256_hex(raw.as_bytes())),
        digest_of(&run.stdout)
    );
    // With --insecure-registry the server goes unchecked, and the pair is still presented.
    let run = build_push(
        &env,
        &base,
        &tls.reference("team/mocks:v1-insecure"),
        &["--cert-dir", cert_dir, "--insecure-registry", &tls.addr],
    )
    .ok();
    assert_eq!(
        digest_of(&run.stdout),
        format!("sha256:{}", sha256_hex(raw.as_bytes()))
    );
}

#[test]
fn an_unusable_client_key_is_named_with_the_reason() {
    let ca = TestCa::new("bad-key");
    let tls = Registry::start_tls(&ca.server(&["127.0.0.1"]), Some(&ca));
    let certs = tempfile::tempdir().unwrap();
    ca.write_dir(certs.path(), Some(&ca.client()));
    std::fs::write(
        certs.path().join("client.key"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let (_roots, env) = empty_roots();
    let run = build_push(
        &env,
        "oci:testdata/engine-base:4.9.3",
        &tls.reference("team/mocks:1"),
        &["--cert-dir", certs.path().to_str().unwrap()],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = one_line_error(&run);
    let key = certs.path().join("client.key");
    assert!(line.contains(&key.display().to_string()), "{line}");
    assert!(line.contains("client key"), "{line}");
    pushed_nothing(&tls);
}

#[test]
fn insecure_registry_speaks_tls_unverified_to_a_self_signed_registry() {
    let ca = TestCa::new("self-signed");
    let tls = Registry::start_tls(&ca.server(&["127.0.0.1"]), None);
    let base = seed_engine(&tls, false);
    let (_roots, env) = empty_roots();
    let target = tls.reference("team/mocks:1");
    build_push(&env, &base, &target, &["--insecure-registry", &tls.addr]).ok();
    raw_manifest(&target);
    // Every request went over TLS: none reached the registry as plain HTTP.
    assert!(
        !tls.log().contains("HTTP request to an HTTPS server"),
        "{}",
        tls.log()
    );
}

fn sha256_hex(b: &[u8]) -> String {
    use std::fmt::Write;
    let d = ring::digest::digest(&ring::digest::SHA256, b);
    d.as_ref().iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}
