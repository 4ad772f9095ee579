//! Issue 5: faults injected between mockimg and the real registry by a proxy. Transient faults
//! are retried and the pushed image is complete; persistent ones fail in one line, and no tag
//! moves and no file is left behind.
mod common;
use common::proxy::{self, Fault, Proxy};
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A registry with the engine-like base seeded as `imposter:4.9.3`, and a proxy in front of it.
fn setup() -> (Registry, Proxy) {
    let reg = Registry::start();
    seed_engine(&reg, true);
    let p = Proxy::start(&reg.addr);
    (reg, p)
}

fn sha256_hex(b: &[u8]) -> String {
    fixtures::sha256(b)
}

/// The digest a registry serves for `reference`, read directly (not through the proxy).
fn served_digest(reference: &str) -> String {
    let o = Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            "--raw",
            &format!("docker://{reference}"),
        ])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "skopeo inspect {reference}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    sha256_hex(&o.stdout)
}

/// Every platform's every blob is present and hashes right: skopeo verifies while copying.
fn assert_complete(reference: &str) {
    let d = tempfile::tempdir().unwrap();
    skopeo(&[
        "copy",
        "--quiet",
        "--all",
        "--src-tls-verify=false",
        &format!("docker://{reference}"),
        &format!("oci:{}:x", d.path().join("l").display()),
    ]);
}

fn build_push(env: &Env, base: &str, target: &str, config: &str) -> Run {
    env.run(&["build", config, "--base", base, "--push", target])
}

fn one_line_error(run: &Run) -> String {
    let lines: Vec<&str> = run.stderr.lines().filter(|l| !l.is_empty()).collect();
    let last = lines.last().copied().unwrap_or("");
    assert!(
        last.starts_with("error: "),
        "last stderr line is the error: {}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("error: ").count(),
        1,
        "one error line: {}",
        run.stderr
    );
    last.to_string()
}

#[test]
fn transient_status_codes_are_retried_and_the_push_is_complete() {
    let (reg, p) = setup();
    let env = Env::new();
    let base = p.reference("imposter:4.9.3");
    // The digest a clean push through the same proxy gives (the base name is part of it).
    let clean = build_push(&env, &base, &p.reference("clean/mocks:1"), "examples/rest").ok();
    let want = digest_of(&clean.stdout);

    let cases: Vec<(&str, &str, Fault)> = vec![
        ("GET", "/manifests/", proxy::status(503)),
        ("GET", "/blobs/sha256:", proxy::status(500)),
        // A push to the base's registry mounts without asking first; the HEAD left is the
        // one that finds an unchanged image on the target.
        ("HEAD", "/manifests/", proxy::status(502)),
        ("POST", "/blobs/uploads/", proxy::status(503)),
        ("PUT", "/blobs/uploads/", proxy::status(500)),
        ("PUT", "/manifests/", proxy::status_retry_after(429)),
        ("PUT", "/manifests/", proxy::status(429)),
        ("HEAD", "/manifests/", proxy::status_retry_after(503)),
    ];
    for (i, (method, path, fault)) in cases.into_iter().enumerate() {
        p.clear_rules();
        p.rule(method, path, 2, fault.clone());
        let before = p.injected().len();
        let repo = format!("t{i}/mocks:1");
        let run = build_push(&env, &base, &p.reference(&repo), "examples/rest");
        assert_eq!(
            run.code, 0,
            "{method} {path} {fault:?} twice must be retried: {}",
            run.stderr
        );
        assert_eq!(
            p.injected().len() - before,
            2,
            "{method} {path} {fault:?} was injected twice"
        );
        assert_eq!(digest_of(&run.stdout), want, "{method} {path} {fault:?}");
        assert_eq!(served_digest(&reg.reference(&repo)), want);
        assert_complete(&reg.reference(&repo));
    }
}

#[test]
fn resets_and_truncation_are_retried_from_the_source() {
    let (reg, p) = setup();
    let env = Env::new();
    let base_via_proxy = p.reference("imposter:4.9.3");
    let base_direct = reg.reference("imposter:4.9.3");
    let clean = build_push(
        &env,
        &base_direct,
        &reg.reference("clean/direct:1"),
        "examples/rest",
    )
    .ok();
    let want_direct = digest_of(&clean.stdout);
    let clean = build_push(
        &env,
        &base_via_proxy,
        &p.reference("clean/proxied:1"),
        "examples/rest",
    )
    .ok();
    let want_proxied = digest_of(&clean.stdout);

    let layer = format!("/blobs/{}", base_layers(&reg)[0]);
    let other = Registry::start();
    // (base through the proxy?, push through the proxy?, rule)
    let cases: Vec<(bool, bool, &str, &str, Fault)> = vec![
        // Base from one registry, pushed to "another" (the proxy): the new blobs are uploaded
        // (the base's are mounted: the proxy serves the same storage under the base's name), and
        // the upload is cut mid-body.
        (false, true, "PUT", "/blobs/uploads/", Fault::ResetRequest),
        // Base read through the proxy, pushed directly: the first blob read is an image config.
        (true, false, "GET", "/blobs/sha256:", Fault::ResetResponse),
        (true, false, "GET", "/blobs/sha256:", Fault::Truncate),
        (true, false, "GET", "/blobs/sha256:", Fault::FlipByte),
        // ... and a layer download that feeds an upload to a registry of its own (one that
        // holds no copy of the base to mount from).
        (true, false, "GET", &layer, Fault::ResetResponse),
        (true, false, "GET", &layer, Fault::Truncate),
        (true, false, "GET", &layer, Fault::FlipByte),
        (true, false, "GET", "/manifests/", Fault::ResetResponse),
        (true, false, "GET", "/manifests/", Fault::Truncate),
        (true, false, "GET", "/manifests/", Fault::FlipByte),
        // (Pushed to the base's registry, blobs are mounted without a HEAD first: the HEAD
        // left is the one that looks for the image on the target.)
        (true, true, "HEAD", "/manifests/", Fault::ResetRequest),
        (true, true, "PUT", "/manifests/", Fault::ResetRequest),
    ];
    for (i, (base_p, push_p, method, path, fault)) in cases.into_iter().enumerate() {
        p.clear_rules();
        p.rule(method, path, 1, fault.clone());
        let before = p.injected().len();
        let repo = format!("r{i}/mocks:1");
        let base = if base_p {
            &base_via_proxy
        } else {
            &base_direct
        };
        let copies = path == layer;
        let (target, check) = if copies {
            (other.reference(&repo), other.reference(&repo))
        } else if push_p {
            (p.reference(&repo), reg.reference(&repo))
        } else {
            (reg.reference(&repo), reg.reference(&repo))
        };
        // A copy case starts with an empty location record: an earlier case's push to the
        // other registry would be mounted from.
        let fresh = Env::new();
        let run = build_push(
            if copies { &fresh } else { &env },
            base,
            &target,
            "examples/rest",
        );
        assert_eq!(
            run.code, 0,
            "{method} {path} {fault:?} once must be retried: {}",
            run.stderr
        );
        assert_eq!(
            p.injected().len() - before,
            1,
            "{method} {path} {fault:?} was injected"
        );
        let want = if base_p { &want_proxied } else { &want_direct };
        assert_eq!(&digest_of(&run.stdout), want, "{method} {path} {fault:?}");
        assert_eq!(&served_digest(&check), want);
        assert_complete(&check);
    }
}

#[test]
fn persistent_faults_fail_in_one_line_and_no_tag_moves() {
    let (reg, p) = setup();
    let env = Env::new();
    let base = p.reference("imposter:4.9.3");
    let tag = "team/mocks:1";
    let other_tag = "team/other:1";
    let v1 = build_push(&env, &base, &p.reference(tag), "examples/rest").ok();
    let v1 = digest_of(&v1.stdout);
    build_push(&env, &base, &p.reference(other_tag), "examples/rest").ok();
    assert_eq!(served_digest(&reg.reference(tag)), v1);

    // Each fails every time it is tried; `what` must appear in the error line.
    let cases: Vec<(&str, &str, Fault, &str)> = vec![
        (
            "PUT",
            "/blobs/uploads/",
            proxy::status(503),
            "uploading blob sha256:",
        ),
        (
            "HEAD",
            "/v2/team/mocks/manifests/1",
            proxy::status(500),
            "checking manifest 1 in",
        ),
        (
            "PUT",
            "/blobs/uploads/",
            Fault::ResetRequest,
            "uploading blob sha256:",
        ),
        // The digest-addressed manifests go in, then the first tag write fails for good.
        (
            "PUT",
            "/v2/team/mocks/manifests/1",
            proxy::status_retry_after(429),
            "pushing manifest",
        ),
        // Two targets: the second repository fails, so the first tag must not move either.
        (
            "PUT",
            "/v2/team/other/manifests/sha256:",
            proxy::status(502),
            "pushing manifest",
        ),
    ];
    for (method, path, fault, what) in cases {
        p.clear_rules();
        p.rule(method, path, 1000, fault.clone());
        let before = p.injected().len();
        let run = env
            .build("examples/soap")
            .base(&base)
            .push(&p.reference(tag))
            .push(&p.reference(other_tag))
            .args(["--retries", "2"])
            .run();
        assert_eq!(run.code, 1, "{fault:?}: {}", run.stderr);
        let line = one_line_error(&run);
        eprintln!("{fault:?}: {line}");
        assert!(line.contains(&p.addr), "names the registry: {line}");
        assert!(line.contains(what), "names the operation: {line}");
        // Blobs and platform manifests go up concurrently, so count the tries of the one the
        // error names.
        let key = match (line.find("blob sha256:"), line.find("@sha256:")) {
            (Some(i), _) => line[i + 5..i + 5 + 71].to_string(),
            (None, Some(i)) => format!("/manifests/{}", &line[i + 1..i + 1 + 71]),
            _ => path.to_string(),
        };
        let tries = p.injected()[before..]
            .iter()
            .filter(|s| s.path.contains(&key) || s.path.contains(&key.replace(':', "%3A")))
            .count();
        assert_eq!(tries, 3, "first try + 2 retries, then give up: {line}");
        assert!(
            run.stdout.is_empty(),
            "nothing claimed pushed: {}",
            run.stdout
        );
        assert_eq!(
            served_digest(&reg.reference(tag)),
            v1,
            "{fault:?}: the tag still points at the old image"
        );
        assert_eq!(served_digest(&reg.reference(other_tag)), v1);
    }
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Every file in the blob cache is named by the digest of its bytes (no temp files either).
fn assert_cache_verified(cache: &Path) {
    let blobs = cache.join("blobs/sha256");
    if !blobs.exists() {
        return;
    }
    for name in leftovers(&blobs) {
        let bytes = std::fs::read(blobs.join(&name)).unwrap();
        assert_eq!(
            sha256_hex(&bytes),
            format!("sha256:{name}"),
            "cache holds an unverified file {name}"
        );
    }
}

/// The gzip layers of the seeded base (not configs), read directly.
fn base_layers(reg: &Registry) -> Vec<String> {
    let idx = raw_manifest(&reg.reference("imposter:4.9.3"));
    let mut out = Vec::new();
    for e in idx["manifests"].as_array().unwrap() {
        if e["platform"]["os"] == "unknown" {
            continue;
        }
        let m =
            raw_manifest(&reg.reference(&format!("imposter@{}", e["digest"].as_str().unwrap())));
        for l in m["layers"].as_array().unwrap() {
            out.push(l["digest"].as_str().unwrap().to_string());
        }
    }
    out
}

#[test]
fn corrupt_base_layer_download_fails_the_export_and_leaves_nothing() {
    let (reg, p) = setup();
    let env = Env::new();
    let base = p.reference("imposter:4.9.3");
    let layer = base_layers(&reg)[0].clone();
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("mocks.tar");

    for fault in [Fault::FlipByte, Fault::Truncate, Fault::ResetResponse] {
        p.clear_rules();
        p.rule("GET", &format!("/blobs/{layer}"), 1000, fault.clone());
        let before = p.injected().len();
        let run = env
            .build("examples/rest")
            .base(&base)
            .output(&out)
            .args(["--retries", "1"])
            .run();
        assert_eq!(run.code, 1, "{fault:?}: {}", run.stderr);
        let line = one_line_error(&run);
        eprintln!("{fault:?}: {line}");
        assert!(line.contains(&layer), "{fault:?} names the blob: {line}");
        assert!(p.injected().len() > before, "{fault:?} injected");
        assert!(
            leftovers(out_dir.path()).is_empty(),
            "{fault:?}: no output and no temp file: {:?}",
            leftovers(out_dir.path())
        );
        assert_cache_verified(&env.cache_dir());
        assert!(
            !env.cache_dir()
                .join("blobs/sha256")
                .join(&layer[7..])
                .exists(),
            "{fault:?}: the bad layer is not cached"
        );
    }

    // Cut once: the download is fetched again from the start and the export succeeds.
    for fault in [Fault::Truncate, Fault::ResetResponse] {
        p.clear_rules();
        p.rule("GET", &format!("/blobs/{layer}"), 1, fault.clone());
        let before = p.injected().len();
        let run = env
            .build("examples/rest")
            .base(&base)
            .output(&out)
            .args(["--no-cache"])
            .run();
        assert_eq!(run.code, 0, "{fault:?} once: {}", run.stderr);
        assert_eq!(p.injected().len() - before, 1, "{fault:?} injected");
        assert_eq!(leftovers(out_dir.path()), vec!["mocks.tar".to_string()]);
        let (_keep, rootfs) =
            unpack_from(&format!("oci-archive:{}", out.display()), "amd64", false);
        assert!(rootfs.join("opt/imposter/bin/imposter").is_file());
        std::fs::remove_file(&out).unwrap();
    }
    // A flipped byte is only known once the blob has been streamed into the archive: its bytes
    // are cut off again and the blob fetched anew, so a one-time corruption still gives a good
    // archive, and the bad copy never reaches the cache.
    p.clear_rules();
    p.rule("GET", &format!("/blobs/{layer}"), 1, Fault::FlipByte);
    let before = p.injected().len();
    let run = env.build("examples/rest").base(&base).output(&out).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(p.injected().len() - before, 1, "the flip was injected");
    assert!(run.stderr.contains("fetching it again"), "{}", run.stderr);
    assert_eq!(leftovers(out_dir.path()), vec!["mocks.tar".to_string()]);
    assert_cache_verified(&env.cache_dir());
    let (_keep, rootfs) = unpack_from(&format!("oci-archive:{}", out.display()), "amd64", false);
    assert!(rootfs.join("opt/imposter/bin/imposter").is_file());
    std::fs::remove_file(&out).unwrap();
    std::fs::remove_dir_all(env.cache_dir()).unwrap();

    // A corruption that does not go away fails the export, leaving nothing behind.
    p.clear_rules();
    p.rule("GET", &format!("/blobs/{layer}"), 100, Fault::FlipByte);
    let run = env.build("examples/rest").base(&base).output(&out).run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(one_line_error(&run).contains(&layer));
    assert!(leftovers(out_dir.path()).is_empty());
    assert_cache_verified(&env.cache_dir());

    // Once the fault is gone the same export works, and the layer is cached, verified.
    p.clear_rules();
    env.build("examples/rest")
        .base(&base)
        .output(&out)
        .run()
        .ok();
    assert!(out.is_file());
    assert_cache_verified(&env.cache_dir());
    assert!(env
        .cache_dir()
        .join("blobs/sha256")
        .join(&layer[7..])
        .is_file());
    let (_keep, rootfs) = unpack_from(&format!("oci-archive:{}", out.display()), "amd64", false);
    assert!(rootfs
        .join("opt/imposter/config/hello-config.yaml")
        .is_file());
}

#[test]
fn registry_that_is_down_fails_fast_and_clearly() {
    // A port that is bound but not listening: connection refused, and held so that no other
    // test's server can take it meanwhile.
    let held = tokio::net::TcpSocket::new_v4().unwrap();
    held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = held.local_addr().unwrap().port();
    let env = Env::new().set("MOCKIMG_RETRY_BASE_MS", "400");
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("mocks.tar");
    let base = format!("127.0.0.1:{port}/imposter:4.9.3");
    let started = Instant::now();
    let run = env.build("examples/rest").base(&base).output(&out).run();
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = one_line_error(&run);
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    assert!(line.contains("cannot connect"), "{line}");
    assert!(took < Duration::from_secs(30), "no hang: took {took:?}");
    assert!(leftovers(out_dir.path()).is_empty());

    // The same for a push target that is down.
    let reg = Registry::start();
    let seeded = seed_engine(&reg, false);
    let started = Instant::now();
    let run = build_push(
        &env,
        &seeded,
        &format!("127.0.0.1:{port}/team/mocks:1"),
        "examples/rest",
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = one_line_error(&run);
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    assert!(line.contains("cannot connect"), "{line}");
    assert!(started.elapsed() < Duration::from_secs(30));
    drop(held);
}

#[test]
fn sigint_during_export_leaves_no_partial_output() {
    let (reg, p) = setup();
    let env = Env::new();
    let layer = base_layers(&reg)[0].clone();
    p.rule("GET", &format!("/blobs/{layer}"), 1000, Fault::Stall);
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("mocks.tar");
    let mut c = Command::new(env!("CARGO_BIN_EXE_mockimg"));
    c.args([
        "build",
        "examples/rest",
        "--base",
        &p.reference("imposter:4.9.3"),
        "--output",
        out.to_str().unwrap(),
    ])
    .current_dir(REPO_ROOT)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in &env.vars {
        c.env(k, v);
    }
    let child = c.spawn().unwrap();
    assert!(
        p.wait_for("GET", &format!("/blobs/{layer}"), Duration::from_secs(30)),
        "the export reached the stalled download"
    );
    // The temp file exists while the download hangs: that is what the interrupt must remove.
    let deadline = Instant::now() + Duration::from_secs(10);
    while leftovers(out_dir.path()).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        leftovers(out_dir.path()).len(),
        1,
        "a temp file is being written"
    );
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = wait_with_deadline(child, Duration::from_secs(30));
    p.release();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(130),
        "128 + SIGINT, as shells expect: {stderr}"
    );
    assert!(
        stderr.contains("error: ") && stderr.contains("interrupted"),
        "{stderr}"
    );
    assert!(
        leftovers(out_dir.path()).is_empty(),
        "no output and no temp file: {:?}",
        leftovers(out_dir.path())
    );
    assert_cache_verified(&env.cache_dir());
}

fn wait_with_deadline(mut child: std::process::Child, limit: Duration) -> std::process::Output {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("mockimg did not exit within {limit:?} of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn registry_that_never_answers_times_out() {
    // Accepts connections (the kernel does, into the backlog) but never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let env = Env::new().set("MOCKIMG_IDLE_TIMEOUT_MS", "1000");
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("mocks.tar");
    let started = Instant::now();
    let run = env
        .build("examples/rest")
        .base(&format!("{addr}/imposter:4.9.3"))
        .output(&out)
        .args(["--retries", "1"])
        .run();
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = one_line_error(&run);
    assert!(line.contains(&addr) && line.contains("timed out"), "{line}");
    assert!(took < Duration::from_secs(30), "no hang: took {took:?}");
    assert!(leftovers(out_dir.path()).is_empty());

    // A download that stops halfway: the idle timeout ends it, and nothing is left behind.
    let (reg, p) = setup();
    let layer = base_layers(&reg)[0].clone();
    p.rule("GET", &format!("/blobs/{layer}"), 1000, Fault::Stall);
    let started = Instant::now();
    let run = env
        .build("examples/rest")
        .base(&p.reference("imposter:4.9.3"))
        .output(&out)
        .args(["--retries", "1"])
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = one_line_error(&run);
    assert!(line.contains(&layer), "{line}");
    assert_eq!(
        p.count("GET", &format!("/blobs/{layer}")),
        2,
        "fetched again once"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(leftovers(out_dir.path()).is_empty());
    assert_cache_verified(&env.cache_dir());
    p.release();
}
