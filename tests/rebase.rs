//! `mockimg rebase`: an image mockimg built, moved onto a patched base (one changed layer, as a
//! security release is), is byte for byte the image a fresh build on that base gives — for a
//! two-platform index, a single image and a Docker-typed base — reusing the config layer without
//! uploading it again; read back with skopeo and umoci, and run in Docker. (What it attaches:
//! tests/rebase_attachments.rs.)
mod common;
use common::fixtures::{self, Item};
use common::*;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn run_digest(run: &Run) -> String {
    digest_of(run.stdout.lines().next().expect("a digest line"))
}

/// The options a rebase must carry over: labels, annotations, env, --config-path,
/// --recursive, --replace and SOURCE_DATE_EPOCH.
const OPTIONS: &[&str] = &[
    "--label",
    "team=mocks",
    "--annotation",
    "org.example.owner=payments",
    "--env",
    "IMPOSTER_LOG_LEVEL=DEBUG",
    "--config-path",
    "/srv/mocks",
    "--recursive",
    "--replace",
];

fn build(env: &Env, base: &str, target: &str, extra: &[&str]) -> String {
    let mut args = vec!["build", "examples/rest", "--base", base, "--push", target];
    args.extend(extra);
    run_digest(&env.run(&args).ok())
}

/// The last layer of `reference`'s first image: the config layer.
fn config_layer(reference: &str) -> String {
    let raw = raw_manifest(reference);
    let m = match raw.get("manifests") {
        Some(ms) => {
            let d = ms[0]["digest"].as_str().unwrap();
            let repo = reference.rsplit_once(':').unwrap().0;
            raw_manifest(&format!("{repo}@{d}"))
        }
        None => raw,
    };
    m["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Requests that sent `digest`'s bytes (a monolithic POST or a PUT/PATCH of a session); a mount
/// names the digest too, but sends nothing.
fn uploads_of(reg: &Registry, since: usize, digest: &str) -> Vec<String> {
    reg.requests()[since..]
        .iter()
        // The hex alone: a session PUT names the digest URL-encoded (`sha256%3A…`).
        .filter(|r| r.contains(&digest["sha256:".len()..]) && !r.contains("mount="))
        .filter(|r| r.starts_with("PUT ") || r.starts_with("POST ") || r.starts_with("PATCH "))
        .cloned()
        .collect()
}

fn rebase_equals_a_fresh_build(single: bool, docker: bool, options: &[&str]) {
    let reg = Registry::start();
    let (old, new) = seed_releases(&reg, single, docker);
    let epoch = Env::new().set("SOURCE_DATE_EPOCH", "1700000000");
    let env = Env::new();
    let image = reg.reference("team/mocks:1.4");
    let built = build(&epoch, &old, &image, options);
    let fresh = build(&epoch, &new, &reg.reference("team/fresh:1.4"), options);
    assert_ne!(built, fresh, "the patch changes the image");

    let layer = config_layer(&image);
    let before = reg.requests().len();
    let mut args = vec![
        "rebase",
        image.as_str(),
        "--base",
        new.as_str(),
        "--push",
        image.as_str(),
        "--json",
    ];
    if docker {
        // Docker schema2 carries no annotations: the base is named by hand.
        let refused = env.run(&["rebase", &image, "--base", &new, "--push", &image]);
        assert_eq!(refused.code, 2, "{}", refused.stderr);
        assert!(refused.stderr.contains("--old-base"), "{}", refused.stderr);
        args.extend(["--old-base", old.as_str()]);
    }
    let run = env.run(&args).ok();
    let out: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(
        out["digest"],
        fresh.as_str(),
        "rebase == fresh build\n{}",
        run.stderr
    );
    assert_eq!(
        out["image"],
        format!("docker://{image}").trim_start_matches("docker://")
    );
    assert!(
        out["old_base"]
            .as_str()
            .unwrap()
            .contains("engine/imposter@sha256:"),
        "{out}"
    );
    assert_eq!(
        out["new_base"],
        format!(
            "{}/engine/imposter@{}",
            reg.addr,
            digest_of(&skopeo_digest(&new))
        )
    );
    assert_eq!(
        out["references"],
        serde_json::json!([format!("{}/team/mocks@{fresh}", reg.addr)])
    );
    assert_eq!(
        uploads_of(&reg, before, &layer),
        Vec::<String>::new(),
        "the config layer went up again: {:#?}",
        &reg.requests()[before..]
    );
    // An independent client reads the tag as the fresh build's image.
    assert_eq!(skopeo_digest(&image), fresh);
    assert_eq!(
        raw_manifest(&image),
        raw_manifest(&reg.reference("team/fresh:1.4"))
    );
    let (_d, rootfs) = unpack(&image, "amd64");
    assert_eq!(
        std::fs::read(rootfs.join("etc/imposter-release")).unwrap(),
        b"4.9.10\n"
    );
    let dir = match options.iter().position(|o| *o == "--config-path") {
        Some(i) => options[i + 1].trim_start_matches('/').to_string(),
        None => "opt/imposter/config".into(),
    };
    let config = files(&rootfs.join(dir));
    assert_eq!(
        files(&examples("rest"))
            .into_iter()
            .filter(|(p, b)| config.get(p) != Some(b))
            .count(),
        0,
        "the config layer came along"
    );
}

/// The digest skopeo sees for a registry reference.
fn skopeo_digest(reference: &str) -> String {
    let raw = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{reference}"),
    ]);
    fixtures::sha256(raw.as_bytes())
}

#[test]
fn rebasing_an_index_gives_the_fresh_build_digest_and_reuses_the_config_layer() {
    rebase_equals_a_fresh_build(false, false, OPTIONS);
}

#[test]
fn rebasing_a_single_oci_image_gives_the_fresh_build_digest() {
    rebase_equals_a_fresh_build(true, false, OPTIONS);
}

#[test]
fn rebasing_an_image_on_a_docker_schema2_base_gives_the_fresh_build_digest() {
    rebase_equals_a_fresh_build(true, true, &["--label", "team=mocks", "--env", "A=1"]);
}

#[test]
fn both_platforms_unpack_with_umoci_and_other_repositories_get_the_layer_mounted() {
    let reg = Registry::start();
    let (old, new) = seed_releases(&reg, false, false);
    let env = Env::new();
    let image = reg.reference("team/mocks:2");
    build(&env, &old, &image, &[]);
    let layer = config_layer(&image);
    // Into another repository too: the config layer is mounted from the image's, not sent.
    let copy = reg.reference("team/copy:2");
    let before = reg.requests().len();
    env.run(&[
        "rebase", &image, "--base", &new, "--push", &image, "--push", &copy,
    ])
    .ok();
    assert_eq!(uploads_of(&reg, before, &layer), Vec::<String>::new());
    assert!(
        reg.requests()[before..]
            .iter()
            .any(|r| r.contains("/v2/team/copy/blobs/uploads/?mount=") && r.contains(&layer)),
        "{:#?}",
        &reg.requests()[before..]
    );
    assert_eq!(skopeo_digest(&copy), skopeo_digest(&image));
    for arch in ["amd64", "arm64"] {
        let (_d, rootfs) = unpack(&image, arch);
        let script = std::fs::read_to_string(rootfs.join("opt/imposter/bin/imposter")).unwrap();
        assert!(script.contains(arch), "{arch}: {script}");
        assert_eq!(
            std::fs::read(rootfs.join("etc/imposter-release")).unwrap(),
            b"4.9.10\n",
            "{arch}"
        );
        let config = files(&rootfs.join("opt/imposter/config"));
        for (path, bytes) in files(&examples("rest")) {
            assert_eq!(config.get(&path), Some(&bytes), "{arch}: {path}");
        }
    }
}

/// Tags `engine/imposter:TAG` for each release tag, each its own image (so its own digest),
/// `latest` pointing at 4.10.0.
fn seed_tag_list(reg: &Registry) {
    for v in ["4.9.2", "4.9.3", "4.9.10", "4.10.0", "5.21.3-beta"] {
        let base = fixtures::engine_like(false);
        let mut b = base;
        for p in &mut b.platforms {
            p.layers[0].push(Item::File(
                "etc/imposter-release".into(),
                v.as_bytes().to_vec(),
                0o644,
            ));
        }
        seed(reg, &b, &format!("engine/imposter:{v}"), false, None);
    }
    skopeo(&[
        "copy",
        "--quiet",
        "--all",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{}", reg.reference("engine/imposter:4.10.0")),
        &format!("docker://{}", reg.reference("engine/imposter:latest")),
    ]);
}

#[test]
fn latest_patch_lists_the_tags_and_takes_the_highest_patch_of_the_same_minor() {
    let reg = Registry::start();
    seed_tag_list(&reg);
    let env = Env::new();
    let image = reg.reference("team/mocks:3");
    let built = build(&env, &reg.reference("engine/imposter:4.9.3"), &image, &[]);

    let dry = env
        .run(&[
            "rebase",
            &image,
            "--latest-patch",
            "--push",
            &image,
            "--dry-run",
        ])
        .ok();
    assert!(dry.stdout.contains(" → "), "{}", dry.stdout);
    let patched = skopeo_digest(&reg.reference("engine/imposter:4.9.10"));
    assert!(dry.stdout.contains(&patched), "{}", dry.stdout);
    assert!(dry.stdout.contains("would push"), "{}", dry.stdout);
    assert!(
        reg.requests()
            .iter()
            .any(|r| r.starts_with("GET /v2/engine/imposter/tags/list")),
        "the tags were listed: {:#?}",
        reg.requests()
    );
    assert_eq!(skopeo_digest(&image), built, "a dry run writes nothing");

    let fresh = build(
        &env,
        &reg.reference("engine/imposter:4.9.10"),
        &reg.reference("team/fresh:3"),
        &[],
    );
    let run = env
        .run(&["rebase", &image, "--latest-patch", "--push", &image])
        .ok();
    assert_eq!(run_digest(&run), fresh);
    assert!(run.stderr.contains("4.9.10"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("attached sbom and provenance (2 referrers)"),
        "{}",
        run.stderr
    );

    // Nothing left to do: exit 0, no push, no tag moved.
    let before = reg.requests().len();
    let again = env
        .run(&["rebase", &image, "--latest-patch", "--push", &image])
        .ok();
    assert!(
        again.stderr.contains("already on 4.9.10"),
        "{}",
        again.stderr
    );
    let writes: Vec<String> = reg.requests()[before..]
        .iter()
        .filter(|r| !r.starts_with("GET ") && !r.starts_with("HEAD "))
        .cloned()
        .collect();
    assert_eq!(writes, Vec::<String>::new());
    assert_eq!(skopeo_digest(&image), fresh);

    // --engine-version keeps the repository (the engine variant) and changes the release.
    let json = env
        .run(&[
            "rebase",
            &image,
            "--engine-version",
            "4.9.2",
            "--dry-run",
            "--json",
        ])
        .ok();
    let v: Value = serde_json::from_str(json.stdout.trim()).unwrap();
    let want = skopeo_digest(&reg.reference("engine/imposter:4.9.2"));
    assert_eq!(
        v["new_base"],
        format!("{}/engine/imposter@{want}", reg.addr)
    );
}

#[test]
fn an_image_mockimg_did_not_build_is_refused() {
    let reg = Registry::start();
    let (old, new) = seed_releases(&reg, false, false);
    let env = Env::new();
    let run = env.run(&[
        "rebase",
        &old,
        "--base",
        &new,
        "--push",
        &reg.reference("team/x:1"),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("not built by mockimg"),
        "{}",
        run.stderr
    );
    assert!(
        !reg.requests().iter().any(|r| r.contains("team/x")),
        "nothing pushed"
    );
}

#[test]
fn a_platform_the_new_base_lacks_is_an_error_naming_it() {
    let reg = Registry::start();
    let (old, _) = seed_releases(&reg, false, false);
    let mut amd_only = fixtures::release(false, "4.9.10");
    amd_only.platforms.truncate(1);
    let new = seed(&reg, &amd_only, "engine/imposter:4.9.10", false, None);
    let env = Env::new();
    let image = reg.reference("team/mocks:4");
    let built = build(&env, &old, &image, &[]);
    let run = env.run(&["rebase", &image, "--base", &new, "--push", &image]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("linux/arm64/v8"), "{}", run.stderr);
    assert_eq!(skopeo_digest(&image), built, "the tag did not move");
}

fn docker(args: &[&str]) -> String {
    let o = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the docker client is installed");
    assert!(
        o.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Removes the container and image on drop, also when the test fails.
struct Cleanup(Vec<Vec<String>>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for args in self.0.iter().rev() {
            let _ = Command::new("docker").args(args).output();
        }
    }
}

#[test]
fn a_rebased_image_runs_in_docker_on_the_patched_engine() {
    let reg = Registry::start();
    let (old, new) = seed_releases(&reg, false, false);
    let env = Env::new();
    let port = reg.addr.rsplit(':').next().unwrap().to_string();
    let image = reg.reference(&format!("team/mocks:run-{port}"));
    build(&env, &old, &image, &[]);
    env.run(&["rebase", &image, "--base", &new, "--push", &image])
        .ok();
    let name = format!("mockimg-test-rebase-{port}");
    let _cleanup = Cleanup(vec![
        vec!["rmi".into(), "-f".into(), image.clone()],
        vec!["rm".into(), "-f".into(), "-v".into(), name.clone()],
    ]);
    docker(&["pull", "--platform", "linux/amd64", &image]);
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "-p",
        "127.0.0.1:0:8080",
        &image,
    ]);
    let release = docker(&[
        "exec",
        &name,
        "/bin/busybox",
        "cat",
        "/etc/imposter-release",
    ]);
    assert_eq!(release, "4.9.10\n");
    let addr = docker(&["port", &name, "8080/tcp"])
        .lines()
        .find(|l| l.starts_with("127.0.0.1:"))
        .expect("a loopback port")
        .trim()
        .to_string();
    let (path, want) = files(&examples("rest")).into_iter().next().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(body) = http_get(&addr, &format!("/{path}")) {
            assert_eq!(body, want, "GET /{path}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the container never served /{path}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The body of a 200 answer to one HTTP/1.0 GET, `None` on anything else.
fn http_get(addr: &str, path: &str) -> Option<Vec<u8>> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    head.lines()
        .next()?
        .contains(" 200 ")
        .then(|| raw[split + 4..].to_vec())
}
