//! Issue 2: build + push against the real registry, checked with skopeo and umoci.
mod common;
use common::*;

fn assert_config_at(rootfs: &std::path::Path, config: &std::path::Path) {
    let want = files(config);
    let got = files(&rootfs.join("opt/imposter/config"));
    for (path, bytes) in &want {
        assert_eq!(
            got.get(path),
            Some(bytes),
            "{path} differs or is missing in the image"
        );
    }
}

#[test]
fn multi_platform_oci_base_builds_and_pushes() {
    let reg = Registry::start();
    let env = Env::new();
    let base = seed_engine(&reg, true);
    let base_index = raw_manifest(&base);
    assert_eq!(
        base_index["manifests"].as_array().unwrap().len(),
        3,
        "seeded with attestation"
    );
    let log_before = reg.requests().len();

    let t1 = reg.reference("team/mocks:1.4");
    let t2 = reg.reference("team/mocks:latest");
    let run = env
        .build("examples/rest")
        .base(&base)
        .push(&t1)
        .push(&t2)
        // The uploads counted below are the image's; attachments are tests/attachments.rs's.
        .args(["--no-sbom", "--no-provenance"])
        .run()
        .ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    assert!(lines[0].starts_with(&format!("{}/team/mocks@sha256:", reg.addr)));
    assert_eq!(digest_of(lines[0]), digest_of(lines[1]));
    let digest = digest_of(lines[0]);

    // The pushed index: both platforms, attestation dropped, media types consistent.
    let idx = raw_manifest(&t1);
    assert_eq!(idx["mediaType"], fixtures::OCI_INDEX);
    let entries = idx["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| e["platform"]["os"] == "linux"));
    assert_eq!(entries[1]["platform"]["variant"], "v8");
    assert_eq!(raw_manifest(&t2), idx);
    assert_eq!(
        fixtures::sha256(&serde_json::to_vec(&idx).unwrap()).len(),
        digest.len()
    );

    for (arch, entry) in [("amd64", &entries[0]), ("arm64", &entries[1])] {
        let m = raw_manifest(&format!(
            "{}/team/mocks@{}",
            reg.addr,
            entry["digest"].as_str().unwrap()
        ));
        let layers = m["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 3);
        assert!(layers.iter().all(|l| l["mediaType"] == fixtures::OCI_LAYER));
        assert!(m["annotations"]["org.opencontainers.image.base.digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"));
        let cfg: serde_json::Value = serde_json::from_str(&skopeo(&[
            "inspect",
            "--tls-verify=false",
            "--config",
            "--raw",
            &format!(
                "docker://{}/team/mocks@{}",
                reg.addr,
                entry["digest"].as_str().unwrap()
            ),
        ]))
        .unwrap();
        assert_eq!(
            cfg["rootfs"]["diff_ids"].as_array().unwrap().len(),
            layers.len()
        );
        assert_eq!(cfg["config"]["User"], "imposter");
        assert_eq!(cfg["architecture"], arch);
        let hist = cfg["history"].as_array().unwrap();
        assert!(hist.last().unwrap()["created_by"]
            .as_str()
            .unwrap()
            .contains("/opt/imposter/config"));

        let (_keep, rootfs) = unpack(&t1, arch);
        assert_config_at(&rootfs, &examples("rest"));
        assert!(
            rootfs.join("opt/imposter/bin/imposter").is_file(),
            "base files kept"
        );
        assert!(
            rootfs
                .join("opt/imposter/config/base-default.txt")
                .is_file(),
            "merged, not replaced"
        );
    }

    // No base layer went over the wire: base blobs were mounted from the base repository.
    let requests: Vec<String> = reg.requests()[log_before..].to_vec();
    let uploads: Vec<&String> = requests
        .iter()
        .filter(|r| r.starts_with("PUT /v2/team/mocks/blobs/uploads/"))
        .collect();
    let base_layers: Vec<String> = entries_layers(&reg, "imposter", &base_index);
    for l in &base_layers {
        assert!(
            !uploads.iter().any(|u| u.contains(&l.replace(':', "%3A"))),
            "base layer {l} was uploaded"
        );
    }
    let mounts = requests
        .iter()
        .filter(|r| r.starts_with("POST /v2/team/mocks/blobs/uploads/") && r.contains("mount="))
        .count();
    assert_eq!(
        mounts,
        base_layers.len(),
        "every base layer mounted: {requests:#?}"
    );
    // 1 config layer + 2 configs
    assert_eq!(uploads.len(), 3, "{uploads:#?}");
    assert!(
        !requests
            .iter()
            .any(|r| r.starts_with("GET /v2/imposter/blobs/")
                && base_layers.iter().any(|l| r.contains(l))),
        "no base layer downloaded"
    );

    // skopeo reads every reference
    skopeo(&["inspect", "--tls-verify=false", &format!("docker://{t1}")]);
    skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{}/team/mocks@{digest}", reg.addr),
    ]);

    // Rebuild of the same input: same digest, and nothing but HEADs for blobs.
    let before = reg.requests().len();
    let again = env
        .build("examples/rest")
        .base(&base)
        .push(&reg.reference("team/mocks:again"))
        .args(["--json", "--no-sbom", "--no-provenance"])
        .run()
        .ok();
    let j: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(j["digest"], digest);
    assert_eq!(
        j["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64/v8"])
    );
    assert!(j["layer"]["digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    let req2 = reg.requests()[before..].to_vec();
    assert!(
        !req2
            .iter()
            .any(|r| r.starts_with("PUT /v2/team/mocks/blobs")
                || r.starts_with("POST /v2/team/mocks/blobs")),
        "{req2:#?}"
    );
}

fn entries_layers(reg: &Registry, repo: &str, index: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for e in index["manifests"].as_array().unwrap() {
        if e["platform"]["os"] == "unknown" {
            continue;
        }
        let m = raw_manifest(&format!(
            "{}/{repo}@{}",
            reg.addr,
            e["digest"].as_str().unwrap()
        ));
        for l in m["layers"].as_array().unwrap() {
            out.push(l["digest"].as_str().unwrap().to_string());
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn docker_schema2_base_gives_docker_image_and_digest_tracks_content() {
    let reg = Registry::start();
    let env = Env::new();
    let base = seed(
        &reg,
        &fixtures::Base {
            single: true,
            ..fixtures::engine_like(false)
        },
        "imposter:docker",
        true,
        None,
    );
    assert_eq!(
        raw_manifest(&base)["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );

    let cfg = tempfile::tempdir().unwrap();
    for (k, v) in files(&examples("rest")) {
        let p = cfg.path().join(&k);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, v).unwrap();
    }
    let dir = cfg.path().to_str().unwrap();
    let target = reg.reference("team/docker-mocks:1");
    let a = env
        .run(&["build", dir, "--base", &base, "--push", &target])
        .ok();
    let b = env
        .run(&[
            "build",
            dir,
            "--base",
            &base,
            "--push",
            &reg.reference("team/docker-mocks:2"),
        ])
        .ok();
    assert_eq!(
        digest_of(&a.stdout),
        digest_of(&b.stdout),
        "same input, same digest"
    );

    let m = raw_manifest(&target);
    assert_eq!(
        m["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let layers = m["layers"].as_array().unwrap();
    assert!(
        layers
            .iter()
            .all(|l| l["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"),
        "{m}"
    );
    assert!(m.get("annotations").is_none());
    let (_keep, rootfs) = unpack(&target, "amd64");
    assert_config_at(&rootfs, cfg.path());

    // One byte changed: a different digest.
    let f = cfg.path().join("responses/pets.json");
    let mut bytes = std::fs::read(&f).unwrap();
    bytes.push(b'\n');
    std::fs::write(&f, bytes).unwrap();
    let c = env
        .run(&[
            "build",
            dir,
            "--base",
            &base,
            "--push",
            &reg.reference("team/docker-mocks:3"),
        ])
        .ok();
    assert_ne!(digest_of(&a.stdout), digest_of(&c.stdout));

    // SOURCE_DATE_EPOCH pins `created` and changes the digest deterministically.
    let e1 = Env::new().set("SOURCE_DATE_EPOCH", "1700000000");
    let d1 = e1
        .run(&[
            "build",
            dir,
            "--base",
            &base,
            "--push",
            &reg.reference("team/docker-mocks:4"),
        ])
        .ok();
    let d2 = e1
        .run(&[
            "build",
            dir,
            "--base",
            &base,
            "--push",
            &reg.reference("team/docker-mocks:5"),
        ])
        .ok();
    assert_eq!(digest_of(&d1.stdout), digest_of(&d2.stdout));
    assert_ne!(digest_of(&d1.stdout), digest_of(&c.stdout));
    let cfgj: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--config",
        "--raw",
        &format!("docker://{}", reg.reference("team/docker-mocks:4")),
    ]))
    .unwrap();
    assert_eq!(cfgj["created"], "2023-11-14T22:13:20Z");
}

#[test]
fn push_to_a_second_registry_streams_base_layers() {
    let reg = Registry::start();
    let reg2 = Registry::start();
    let env = Env::new();
    let base = seed_engine(&reg, false);
    let target = reg2.reference("mocks:1");
    let run = env
        .build("examples/rest")
        .base(&base)
        .push(&target)
        .args(["--platform", "linux/arm64"])
        .run()
        .ok();
    let d = digest_of(&run.stdout);
    let idx = raw_manifest(&target);
    assert_eq!(idx["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(idx["manifests"][0]["platform"]["architecture"], "arm64");
    assert_eq!(
        fixtures::sha256(
            skopeo(&[
                "inspect",
                "--tls-verify=false",
                "--raw",
                &format!("docker://{target}")
            ])
            .as_bytes()
        ),
        d
    );
    let (_keep, rootfs) = unpack(&target, "arm64");
    assert_config_at(&rootfs, &examples("rest"));
    assert!(rootfs.join("opt/imposter/plugins/rest.jar").is_file());

    let bad = env
        .build("examples/rest")
        .base(&base)
        .push(&target)
        .args(["--platform", "linux/s390x"])
        .run();
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("linux/s390x") && bad.stderr.contains("linux/amd64"),
        "{}",
        bad.stderr
    );
    assert_eq!(bad.stderr.trim().lines().count(), 1, "{}", bad.stderr);
}

#[test]
fn basic_auth_registry_with_docker_config_credentials() {
    let password = "pa55-w0rd-never-printed";
    let reg = Registry::start_with_auth("ci", password);
    let base = seed(
        &reg,
        &fixtures::engine_like(false),
        "imposter:4.9.3",
        false,
        Some(&format!("ci:{password}")),
    );
    let env = Env::new();
    env.docker_login(&reg.addr, "ci", password);
    let target = reg.reference("team/mocks:auth");
    let ok = env
        .build("examples/rest")
        .base(&base)
        .push(&target)
        .args(["-v"])
        .run()
        .ok();
    let idx: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        "--creds",
        &format!("ci:{password}"),
        &format!("docker://{target}"),
    ]))
    .unwrap();
    assert_eq!(idx["manifests"].as_array().unwrap().len(), 2);

    let wrong = Env::new();
    wrong.docker_login(&reg.addr, "ci", "wrong-secret-value");
    let bad = wrong.build("examples/rest").base(&base).push(&target).run();
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains(&reg.addr), "{}", bad.stderr);
    assert!(bad.stderr.contains("unauthorized"), "{}", bad.stderr);
    let anon = Env::new().run(&["build", "examples/rest", "--base", &base, "--push", &target]);
    assert_eq!(anon.code, 1);
    assert!(anon.stderr.contains("docker login"), "{}", anon.stderr);

    let envvars = Env::new()
        .set("MOCKIMG_REGISTRY_USERNAME", "ci")
        .set("MOCKIMG_REGISTRY_PASSWORD", password);
    let via_env = envvars
        .build("examples/rest")
        .base(&base)
        .push(&reg.reference("team/mocks:env"))
        .args(["--json", "-v"])
        .run()
        .ok();
    for out in [
        &ok.stdout,
        &ok.stderr,
        &bad.stdout,
        &bad.stderr,
        &via_env.stdout,
        &via_env.stderr,
        &anon.stderr,
    ] {
        assert!(
            !out.contains(password) && !out.contains("wrong-secret-value"),
            "a secret was printed"
        );
    }
}
