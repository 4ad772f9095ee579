//! Signing: what mockimg pushes with `--sign-key` verifies the way cosign verifies a key-pair
//! signature, checked with independent tools (skopeo reads the registry, openssl the ECDSA
//! signature); what is unsigned, signed with another key, or signed for another digest is
//! refused.
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A cosign-style key pair made by `mockimg generate-key` in `dir`, password `pw`.
fn generate_key(dir: &Path, name: &str, pw: &str) -> (PathBuf, PathBuf) {
    let prefix = dir.join(name);
    Env::new()
        .set("COSIGN_PASSWORD", pw)
        .run(&["generate-key", "--output-prefix", prefix.to_str().unwrap()])
        .ok();
    (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
    )
}

/// cosign's key-pair verification, done by independent tools: skopeo reads the registry (the
/// manifest the tag names, the `sha256-<hex>.sig` image beside it, its payload blob) and openssl
/// checks the ECDSA signature with the public key. (skopeo's own `sigstoreSigned` policy would
/// do all of this in one step, but Debian's skopeo 1.9.3 is built with sigstore disabled: "Source
/// image rejected: Debian-local change: sigstore disabled".) Checks the index (or manifest) the
/// tag names and, with `arch: None`, every platform manifest it lists, else the `arch` one.
/// Returns (accepted, why not).
fn verifies_like_cosign(
    reg: &Registry,
    repo: &str,
    tag: &str,
    public_key: &Path,
    arch: Option<&str>,
) -> (bool, String) {
    let scope = format!("{}/{repo}", reg.addr);
    let raw = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{scope}:{tag}"),
    ]);
    let top = fixtures::sha256(raw.as_bytes());
    let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let mut digests = vec![top];
    for m in index["manifests"].as_array().into_iter().flatten() {
        if arch.is_none() || m["platform"]["architecture"].as_str() == arch {
            digests.push(m["digest"].as_str().unwrap().to_string());
        }
    }
    for d in &digests {
        if let Err(why) = verify_one(&scope, d, public_key) {
            return (false, why);
        }
    }
    (true, String::new())
}

fn verify_one(scope: &str, digest: &str, public_key: &Path) -> Result<(), String> {
    let sig_ref = format!("docker://{scope}:{}.sig", digest.replace(':', "-"));
    let o = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw", &sig_ref])
        .output()
        .unwrap();
    if !o.status.success() {
        return Err(format!(
            "no signature for {digest}: {}",
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("sig");
    skopeo(&[
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &sig_ref,
        &format!("dir:{}", dir.display()),
    ]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let mut why = format!("no layer of {sig_ref} verifies");
    for l in manifest["layers"].as_array().unwrap() {
        if l["mediaType"] != "application/vnd.dev.cosign.simplesigning.v1+json" {
            continue;
        }
        let hex = l["digest"].as_str().unwrap().trim_start_matches("sha256:");
        let payload_path = dir.join(hex);
        let payload: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&payload_path).unwrap()).unwrap();
        if payload["critical"]["image"]["docker-manifest-digest"] != digest {
            why = format!(
                "signature is for digest {}, not {digest}",
                payload["critical"]["image"]["docker-manifest-digest"]
            );
            continue;
        }
        if payload["critical"]["identity"]["docker-reference"] != scope
            || payload["critical"]["type"] != "cosign container image signature"
        {
            why = format!("signature identity {} is not {scope}", payload["critical"]);
            continue;
        }
        use base64::Engine as _;
        let sig = base64::engine::general_purpose::STANDARD
            .decode(
                l["annotations"]["dev.cosignproject.cosign/signature"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        let sig_path = d.path().join(format!("{hex}.sig"));
        std::fs::write(&sig_path, sig).unwrap();
        let o = Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(public_key)
            .arg("-signature")
            .arg(&sig_path)
            .arg(&payload_path)
            .output()
            .unwrap();
        if o.status.success() {
            return Ok(());
        }
        why = format!(
            "signature does not verify with {}: {}",
            public_key.display(),
            String::from_utf8_lossy(&o.stdout)
        );
    }
    Err(why)
}

fn build(env: &Env, base: &str, target: &str, extra: &[&str]) -> Run {
    let mut args = vec!["build", "examples/rest", "--base", base, "--push", target];
    args.extend_from_slice(extra);
    env.run(&args)
}

#[test]
fn a_push_signed_with_a_cosign_key_is_accepted_and_unsigned_or_foreign_keys_are_refused() {
    let reg = Registry::start();
    let base = seed_engine(&reg, false);
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = generate_key(keys.path(), "cosign", "correct horse");
    let (_, other_public) = generate_key(keys.path(), "other", "x");
    let env = Env::new().set("COSIGN_PASSWORD", "correct horse");

    let target = reg.reference("team/mocks:1");
    let out = build(&env, &base, &target, &["--sign-key", key.to_str().unwrap()]).ok();
    let digest = digest_of(out.stdout.lines().next().unwrap());
    // The signature sits where cosign puts it, in cosign's shape.
    let sig = raw_manifest(&reg.reference(&format!("team/mocks:{}.sig", digest.replace(':', "-"))));
    assert_eq!(
        sig["layers"][0]["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    assert!(sig["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"].is_string());

    let (ok, err) = verifies_like_cosign(&reg, "team/mocks", "1", &public, None);
    assert!(ok, "the signed index and both platforms: {err}");
    let (ok, err) = verifies_like_cosign(&reg, "team/mocks", "1", &public, Some("arm64"));
    assert!(ok, "one platform: {err}");

    let (ok, err) = verifies_like_cosign(&reg, "team/mocks", "1", &other_public, None);
    assert!(!ok, "a signature by another key must be refused");
    assert!(err.contains("does not verify"), "{err}");

    build(&Env::new(), &base, &reg.reference("team/unsigned:1"), &[]).ok();
    let (ok, err) = verifies_like_cosign(&reg, "team/unsigned", "1", &public, None);
    assert!(!ok, "an unsigned image must be refused");
    assert!(err.contains("no signature"), "{err}");
}

#[test]
fn a_second_key_adds_its_signature_beside_the_first_and_a_re_push_adds_nothing() {
    let reg = Registry::start();
    let base = seed_engine(&reg, false);
    let keys = tempfile::tempdir().unwrap();
    let (a_key, a_pub) = generate_key(keys.path(), "a", "pw");
    let (b_key, b_pub) = generate_key(keys.path(), "b", "pw");
    let env = Env::new().set("COSIGN_PASSWORD", "pw");
    let target = reg.reference("team/mocks:1");
    let out = build(
        &env,
        &base,
        &target,
        &["--sign-key", a_key.to_str().unwrap()],
    )
    .ok();
    let digest = digest_of(out.stdout.lines().next().unwrap());
    build(
        &env,
        &base,
        &target,
        &["--sign-key", b_key.to_str().unwrap()],
    )
    .ok();
    build(
        &env,
        &base,
        &target,
        &["--sign-key", b_key.to_str().unwrap()],
    )
    .ok();
    for public in [&a_pub, &b_pub] {
        let (ok, err) = verifies_like_cosign(&reg, "team/mocks", "1", public, None);
        assert!(ok, "{}: {err}", public.display());
    }
    let sig = raw_manifest(&reg.reference(&format!("team/mocks:{}.sig", digest.replace(':', "-"))));
    assert_eq!(sig["layers"].as_array().unwrap().len(), 2, "{sig}");
}

#[test]
fn a_tag_moved_to_another_digest_is_refused_even_with_the_old_signature_beside_it() {
    let reg = Registry::start();
    let base = seed_engine(&reg, false);
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = generate_key(keys.path(), "cosign", "pw");
    let env = Env::new().set("COSIGN_PASSWORD", "pw");
    let target = reg.reference("team/mocks:stable");
    let signed = build(&env, &base, &target, &["--sign-key", key.to_str().unwrap()]).ok();
    let signed = digest_of(signed.stdout.lines().next().unwrap());
    assert!(verifies_like_cosign(&reg, "team/mocks", "stable", &public, None).0);

    // Someone moves the tag to another image and copies the old signature to its .sig tag.
    let moved = build(&Env::new(), &base, &target, &["--label", "moved=yes"]).ok();
    let moved = digest_of(moved.stdout.lines().next().unwrap());
    assert_ne!(moved, signed);
    let tag = |d: &str| {
        format!(
            "docker://{}",
            reg.reference(&format!("team/mocks:{}.sig", d.replace(':', "-")))
        )
    };
    skopeo(&[
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &tag(&signed),
        &tag(&moved),
    ]);
    let (ok, err) = verifies_like_cosign(&reg, "team/mocks", "stable", &public, None);
    assert!(!ok, "a signature for another digest must be refused");
    assert!(err.contains("signature is for digest"), "{err}");
}

#[test]
fn mockimg_push_signs_with_a_plain_pkcs8_key_from_the_environment() {
    let reg = Registry::start();
    let base = seed_engine(&reg, false);
    let keys = tempfile::tempdir().unwrap();
    // The pair made by openssl, not by us: PKCS#8 private, PKIX public.
    let key = keys.path().join("ec.pem");
    let public = keys.path().join("ec.pub");
    let o = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&key)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&public)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let env = Env::new();
    build(&env, &base, &reg.reference("team/mocks:1"), &[]).ok();
    let (ok, _) = verifies_like_cosign(&reg, "team/mocks", "1", &public, None);
    assert!(!ok, "the source was pushed unsigned");
    Env::new()
        .set("MOCKIMG_SIGN_KEY", key.to_str().unwrap())
        .run(&[
            "push",
            &reg.reference("team/mocks:1"),
            &reg.reference("team/copy:1"),
        ])
        .ok();
    let (ok, err) = verifies_like_cosign(&reg, "team/copy", "1", &public, None);
    assert!(ok, "{err}");
    let (ok, err) = verifies_like_cosign(&reg, "team/copy", "1", &public, Some("amd64"));
    assert!(ok, "{err}");
}

#[test]
fn a_refused_signature_push_fails_the_run_saying_the_image_is_unsigned() {
    let reg = Registry::start();
    let base = seed_engine(&reg, false);
    let proxy = proxy::Proxy::start(&reg.addr);
    proxy.rule("PUT", ".sig", 100, proxy::status(403));
    let keys = tempfile::tempdir().unwrap();
    let (key, _) = generate_key(keys.path(), "cosign", "pw");
    let target = format!("{}/team/mocks:1", proxy.addr);
    let run = build(
        &Env::new().set("COSIGN_PASSWORD", "pw"),
        &base,
        &target,
        &["--sign-key", key.to_str().unwrap()],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    let line = errors[0];
    assert!(line.contains("the image was pushed unsigned"), "{line}");
    assert!(!proxy.injected().is_empty());
    // The image itself is there, tag moved: only its signature is missing.
    assert!(raw_manifest(&reg.reference("team/mocks:1"))["manifests"].is_array());
}

#[test]
fn a_wrong_password_stops_the_build_before_anything_is_pushed() {
    let reg = Registry::start();
    let base = seed_engine(&reg, false);
    let keys = tempfile::tempdir().unwrap();
    let (key, _) = generate_key(keys.path(), "cosign", "right");
    let run = build(
        &Env::new().set("COSIGN_PASSWORD", "wrong"),
        &base,
        &reg.reference("team/mocks:1"),
        &["--sign-key", key.to_str().unwrap()],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("wrong password"), "{}", run.stderr);
    assert!(
        !reg.requests().iter().any(|r| r.contains("team/mocks")),
        "{:?}",
        reg.requests()
    );
    // Password from stdin instead of the environment.
    let mut c = Env::new().command(env!("CARGO_BIN_EXE_mockimg"));
    c.args([
        "build",
        "examples/rest",
        "--base",
        &base,
        "--push",
        &reg.reference("team/mocks:1"),
        "--sign-key",
        key.to_str().unwrap(),
        "--sign-key-password-stdin",
    ]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"right\n").unwrap();
    Run::from(child.wait_with_output().unwrap()).ok();
}

#[test]
fn generate_key_writes_a_private_key_only_its_owner_reads_and_never_overwrites_unasked() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let (key, public) = generate_key(d.path(), "cosign", "pw");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(std::fs::read_to_string(&key)
        .unwrap()
        .starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
    let before = std::fs::read(&key).unwrap();
    let prefix = d.path().join("cosign");
    let again = Env::new().set("COSIGN_PASSWORD", "pw").run(&[
        "generate-key",
        "--output-prefix",
        prefix.to_str().unwrap(),
    ]);
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    assert_eq!(std::fs::read(&key).unwrap(), before);
    Env::new()
        .set("COSIGN_PASSWORD", "pw")
        .run(&[
            "generate-key",
            "--output-prefix",
            prefix.to_str().unwrap(),
            "--force",
        ])
        .ok();
    assert_ne!(std::fs::read(&key).unwrap(), before);
    // openssl reads the public half as a P-256 key.
    let o = Command::new("openssl")
        .args(["pkey", "-pubin", "-text", "-noout", "-in"])
        .arg(&public)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("P-256"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// A rebased image is signed as a build is: the tag's new index and its platforms verify with the
/// key, and the provenance attached to it is the DSSE envelope signed with it.
#[test]
fn rebase_with_a_sign_key_signs_the_rebased_image_and_its_provenance() {
    let reg = Registry::start();
    let (old, new) = seed_releases(&reg, false, false);
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = generate_key(keys.path(), "cosign", "pw");
    let env = Env::new().set("COSIGN_PASSWORD", "pw");
    let target = reg.reference("team/mocks:1");
    let key_arg = key.to_str().unwrap();
    let built = build(&env, &old, &target, &["--sign-key", key_arg]).ok();
    let built = digest_of(built.stdout.lines().next().unwrap());

    // Signing needs a push: a rebase into a file only is refused before anything is read.
    let refused = env.run(&[
        "rebase",
        &target,
        "--base",
        &new,
        "--output",
        keys.path().join("x.tar").to_str().unwrap(),
        "--sign-key",
        key_arg,
    ]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("add --push REF"),
        "{}",
        refused.stderr
    );

    let run = env
        .run(&[
            "rebase",
            &target,
            "--base",
            &new,
            "--push",
            &target,
            "--sign-key",
            key_arg,
            "--json",
        ])
        .ok();
    let out: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let digest = out["digest"].as_str().unwrap();
    assert_ne!(digest, built);
    let (ok, err) = verifies_like_cosign(&reg, "team/mocks", "1", &public, None);
    assert!(ok, "the rebased index and both platforms: {err}");
    let provenance = out["attached"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "provenance")
        .unwrap_or_else(|| panic!("no provenance attached: {out}"));
    let m = raw_manifest(&format!(
        "{}/team/mocks@{}",
        reg.addr,
        provenance["digest"].as_str().unwrap()
    ));
    assert_eq!(m["subject"]["digest"], digest);
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.dsse.envelope.v1+json"
    );
}
