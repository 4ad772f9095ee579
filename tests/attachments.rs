//! Attachments: every pushed image carries an SPDX SBOM and a SLSA provenance as OCI 1.1
//! referrers. The real registry (distribution, no referrers API) gets them under the referrers
//! tag `sha256-<hex>`, read back here over the registry API; the SBOM passes the SPDX
//! project's own validator and lists exactly the config layer's files; a signed provenance is a
//! DSSE envelope openssl verifies over the PAE bytes. (The referrers-API path is proven in
//! `tests/protocol/referrers.rs`, where a registry answers `OCI-Subject`.)
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const EPOCH: &str = "1700000000";

fn venv_tool(name: &str) -> PathBuf {
    let venv = std::env::var_os("MOCKIMG_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv"));
    let bin = venv.join("bin").join(name);
    assert!(
        bin.is_file(),
        "{name} is missing: expected {} — run scripts/test (it installs spdx-tools into \
         target/venv), or: target/venv/bin/pip install spdx-tools && export \
         MOCKIMG_TEST_VENV=$PWD/target/venv",
        bin.display()
    );
    bin
}

/// Whether `repo:tag` exists, over the registry API.
fn has_tag(reg: &Registry, repo: &str, tag: &str) -> bool {
    let o = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-I",
            "-H",
            "Accept: application/vnd.oci.image.index.v1+json",
            &format!("http://{}/v2/{repo}/manifests/{tag}", reg.addr),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout) == "200"
}

/// The referrers tag's index of `digest` in `repo`.
fn referrers(reg: &Registry, repo: &str, digest: &str) -> serde_json::Value {
    raw_manifest(&reg.reference(&format!("{repo}:{}", digest.replace(':', "-"))))
}

/// The referrer of `artifact_type` listed for `digest`: (manifest, its one layer's bytes).
fn referrer(
    reg: &Registry,
    repo: &str,
    digest: &str,
    artifact_type: &str,
) -> (serde_json::Value, Vec<u8>) {
    let index = referrers(reg, repo, digest);
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["artifactType"] == artifact_type)
        .unwrap_or_else(|| panic!("no {artifact_type} referrer of {digest}: {index}"))
        .clone();
    let m = raw_manifest(&format!(
        "{}/{repo}@{}",
        reg.addr,
        entry["digest"].as_str().unwrap()
    ));
    assert_eq!(m["subject"]["digest"], digest, "{m}");
    assert_eq!(m["artifactType"], artifact_type);
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(
        reg.blob(repo, m["config"]["digest"].as_str().unwrap()),
        b"{}"
    );
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    let doc = reg.blob(repo, layers[0]["digest"].as_str().unwrap());
    (m, doc)
}

fn build(env: &Env, base: &str, target: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "build",
        "examples/rest",
        "--base",
        base,
        "--push",
        target,
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = env.run(&args).ok();
    serde_json::from_str(out.stdout.trim()).unwrap()
}

/// The config layer (the top layer of the first platform) of the image `digest`, unpacked:
/// path inside the image → bytes.
fn config_layer_files(
    reg: &Registry,
    repo: &str,
    digest: &str,
) -> std::collections::BTreeMap<String, Vec<u8>> {
    let index = raw_manifest(&format!("{}/{repo}@{digest}", reg.addr));
    let first = index["manifests"][0]["digest"].as_str().unwrap();
    let m = raw_manifest(&format!("{}/{repo}@{first}", reg.addr));
    let layer = m["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let d = tempfile::tempdir().unwrap();
    let tgz = d.path().join("layer.tgz");
    std::fs::write(&tgz, reg.blob(repo, &layer)).unwrap();
    let out = d.path().join("x");
    std::fs::create_dir(&out).unwrap();
    let o = Command::new("tar")
        .arg("-xzf")
        .arg(&tgz)
        .arg("-C")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    files(&out)
        .into_iter()
        .map(|(k, v)| (format!("/{k}"), v))
        .collect()
}

#[test]
fn a_pushed_image_carries_a_valid_spdx_sbom_of_its_config_layer_under_the_referrers_tag() {
    let reg = Registry::start();
    let base = seed_engine(&reg, false);
    let env = Env::new().set("SOURCE_DATE_EPOCH", EPOCH);
    let out = build(&env, &base, &reg.reference("team/mocks:1"), &[]);
    let digest = out["digest"].as_str().unwrap();
    let tag = digest.replace(':', "-");
    assert!(has_tag(&reg, "team/mocks", &tag));
    let index = referrers(&reg, "team/mocks", digest);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{index}");
    for a in out["attached"].as_array().unwrap() {
        assert_eq!(a["via"], format!("referrers tag {tag}"), "{a}");
    }

    let (m, sbom) = referrer(&reg, "team/mocks", digest, "application/spdx+json");
    assert_eq!(m["layers"][0]["mediaType"], "application/spdx+json");
    // The SPDX project's validator accepts it.
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("sbom.spdx.json");
    std::fs::write(&file, &sbom).unwrap();
    let o = Command::new(venv_tool("pyspdxtools"))
        .arg("-i")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "pyspdxtools refused the SBOM: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );

    // Its files are exactly the config layer's: path, sha256 and size.
    let sbom: serde_json::Value = serde_json::from_slice(&sbom).unwrap();
    let listed: std::collections::BTreeMap<String, (String, u64)> = sbom["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let path = f["fileName"]
                .as_str()
                .unwrap()
                .trim_start_matches('.')
                .to_string();
            let sha = f["checksums"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["algorithm"] == "SHA256")
                .unwrap()["checksumValue"]
                .as_str()
                .unwrap()
                .to_string();
            let size = f["comment"]
                .as_str()
                .unwrap()
                .trim_start_matches("size: ")
                .trim_end_matches(" bytes")
                .parse()
                .unwrap();
            (path, (sha, size))
        })
        .collect();
    let in_layer: std::collections::BTreeMap<String, (String, u64)> =
        config_layer_files(&reg, "team/mocks", digest)
            .into_iter()
            .map(|(p, b)| {
                let sha = fixtures::sha256(&b)
                    .trim_start_matches("sha256:")
                    .to_string();
                (p, (sha, b.len() as u64))
            })
            .collect();
    assert!(!in_layer.is_empty());
    assert_eq!(listed, in_layer);
    // The image holds the config layer, which alone is analysed and holds every file.
    let package = |id: &str| {
        sbom["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["SPDXID"] == id)
            .unwrap_or_else(|| panic!("no package {id}"))
            .clone()
    };
    let related = |from: &str, kind: &str| -> Vec<String> {
        sbom["relationships"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["spdxElementId"] == from && r["relationshipType"] == kind)
            .map(|r| r["relatedSpdxElement"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(package("SPDXRef-Package-image")["filesAnalyzed"], false);
    let layer_pkg = package("SPDXRef-Package-config-layer");
    assert_eq!(layer_pkg["filesAnalyzed"], true);
    assert_eq!(layer_pkg["versionInfo"], out["layer"]["digest"]);
    assert_eq!(
        related("SPDXRef-Package-image", "CONTAINS"),
        ["SPDXRef-Package-config-layer"]
    );
    assert_eq!(
        related("SPDXRef-Package-config-layer", "CONTAINS").len(),
        in_layer.len()
    );
    // Its namespace is the project's, not spdx.org's.
    assert!(sbom["documentNamespace"]
        .as_str()
        .unwrap()
        .starts_with("https://github.com/mockimg/mockimg/spdxdocs/"));
    // The base is a dependency, named with its digest; the time is SOURCE_DATE_EPOCH's.
    let base_digest = out["base"]["digest"].as_str().unwrap();
    let base_pkg = &package("SPDXRef-Package-base");
    assert_eq!(base_pkg["versionInfo"], base_digest);
    assert_eq!(
        base_pkg["name"],
        format!("{}/imposter", reg.addr),
        "{base_pkg}"
    );
    assert!(sbom["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["relationshipType"] == "DEPENDS_ON"
            && r["relatedSpdxElement"] == base_pkg["SPDXID"]));
    assert_eq!(sbom["creationInfo"]["created"], "2023-11-14T22:13:20Z");
}

#[test]
fn the_provenance_names_the_pushed_digest_the_builder_and_the_base_and_layer_it_was_built_from() {
    let reg = Registry::start();
    let base = seed_engine(&reg, false);
    // A GitHub Actions run: its source, revision and run URL are stated.
    let env = Env::new()
        .set("GITHUB_ACTIONS", "true")
        .set("GITHUB_SERVER_URL", "https://github.com")
        .set("GITHUB_REPOSITORY", "team/mocks")
        .set("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
        .set("GITHUB_RUN_ID", "42");
    let other = reg.reference("team/other:1");
    let out = build(
        &env,
        &base,
        &reg.reference("team/mocks:1"),
        &["--push", &other, "--compression-level", "9"],
    );
    let digest = out["digest"].as_str().unwrap();
    // Each repository gets its own, naming it.
    let (_, elsewhere) = referrer(&reg, "team/other", digest, "application/vnd.in-toto+json");
    let elsewhere: serde_json::Value = serde_json::from_slice(&elsewhere).unwrap();
    assert_eq!(
        elsewhere["subject"][0]["name"],
        format!("{}/team/other", reg.addr)
    );
    let (m, statement) = referrer(&reg, "team/mocks", digest, "application/vnd.in-toto+json");
    assert_eq!(m["layers"][0]["mediaType"], "application/vnd.in-toto+json");
    let s: serde_json::Value = serde_json::from_slice(&statement).unwrap();
    assert_eq!(s["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(s["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(s["subject"][0]["name"], format!("{}/team/mocks", reg.addr));
    assert_eq!(
        format!(
            "sha256:{}",
            s["subject"][0]["digest"]["sha256"].as_str().unwrap()
        ),
        digest
    );
    let p = &s["predicate"];
    // One builder id for every release; the version apart.
    assert_eq!(
        p["runDetails"]["builder"]["id"],
        "https://github.com/mockimg/mockimg"
    );
    assert_eq!(
        p["runDetails"]["builder"]["version"]["mockimg"],
        env!("CARGO_PKG_VERSION")
    );
    let deps = p["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    let has = |d: &str| {
        deps.iter()
            .any(|x| x["digest"]["sha256"] == d.trim_start_matches("sha256:"))
    };
    assert!(has(out["base"]["digest"].as_str().unwrap()), "{deps:?}");
    // The config layer is what the build made, not what it read: a byproduct.
    let layer = out["layer"]["digest"].as_str().unwrap();
    assert!(!has(layer), "{deps:?}");
    assert_eq!(
        p["runDetails"]["byproducts"][0]["digest"]["sha256"],
        layer.trim_start_matches("sha256:")
    );
    // The config it read, by the digest of its files' `sha256sum` lines, sorted by path.
    // (A BTreeMap: sorted by path.)
    let files = config_layer_files(&reg, "team/mocks", digest);
    let lines: String = files
        .iter()
        .map(|(path, b)| {
            format!(
                "{}  {path}\n",
                fixtures::sha256(b).trim_start_matches("sha256:")
            )
        })
        .collect();
    let config = deps.iter().find(|x| x["name"] == "config").unwrap();
    assert_eq!(
        config["digest"]["sha256"],
        fixtures::sha256(lines.as_bytes()).trim_start_matches("sha256:")
    );
    // The base as the user gave it is a parameter; the resolved one a dependency.
    let params = &p["buildDefinition"]["externalParameters"];
    assert_eq!(params["base"], base, "{params}");
    assert_eq!(params["gzipLevel"], 9, "{params}");
    assert!(deps
        .iter()
        .any(|x| x["digest"]["gitCommit"] == "0123456789abcdef0123456789abcdef01234567"));
    assert_eq!(
        p["runDetails"]["metadata"]["invocationId"],
        "https://github.com/team/mocks/actions/runs/42"
    );
    assert!(
        p["runDetails"]["metadata"].get("startedOn").is_none(),
        "never a time"
    );
    assert!(
        params.get("sourceDateEpoch").is_none(),
        "no SOURCE_DATE_EPOCH set"
    );
}

/// A cosign-style key pair made by `mockimg generate-key` in `dir`.
fn generate_key(dir: &Path, pw: &str) -> (PathBuf, PathBuf) {
    let prefix = dir.join("cosign");
    Env::new()
        .set("COSIGN_PASSWORD", pw)
        .run(&["generate-key", "--output-prefix", prefix.to_str().unwrap()])
        .ok();
    (dir.join("cosign.key"), dir.join("cosign.pub"))
}

#[test]
fn with_a_signing_key_the_provenance_is_a_dsse_envelope_openssl_verifies_over_the_pae() {
    let reg = Registry::start();
    let base = seed_engine(&reg, false);
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = generate_key(keys.path(), "pw");
    let env = Env::new().set("COSIGN_PASSWORD", "pw");
    let out = build(
        &env,
        &base,
        &reg.reference("team/mocks:1"),
        &["--sign-key", key.to_str().unwrap()],
    );
    let digest = out["digest"].as_str().unwrap();
    let (m, envelope) = referrer(&reg, "team/mocks", digest, "application/vnd.in-toto+json");
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.dsse.envelope.v1+json"
    );
    let e: serde_json::Value = serde_json::from_slice(&envelope).unwrap();
    let payload_type = e["payloadType"].as_str().unwrap();
    assert_eq!(payload_type, "application/vnd.in-toto+json");
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = b64.decode(e["payload"].as_str().unwrap()).unwrap();
    let statement: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        format!(
            "sha256:{}",
            statement["subject"][0]["digest"]["sha256"]
                .as_str()
                .unwrap()
        ),
        digest
    );
    // PAE per the DSSE spec, built here independently of mockimg.
    let mut pae = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    pae.extend_from_slice(&payload);
    let d = tempfile::tempdir().unwrap();
    let (pae_path, sig_path, bad_path) = (
        d.path().join("pae"),
        d.path().join("sig"),
        d.path().join("bad"),
    );
    std::fs::write(&pae_path, &pae).unwrap();
    std::fs::write(&bad_path, &payload).unwrap();
    let sigs = e["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 1);
    std::fs::write(
        &sig_path,
        b64.decode(sigs[0]["sig"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let verify = |msg: &Path| {
        Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(&public)
            .arg("-signature")
            .arg(&sig_path)
            .arg(msg)
            .output()
            .unwrap()
    };
    let o = verify(&pae_path);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    // Over the bare payload (no PAE) the same signature must not verify.
    assert!(!verify(&bad_path).status.success());
}

#[test]
fn the_same_inputs_attach_the_same_documents_and_a_rebuild_adds_no_referrer() {
    let reg = Registry::start();
    let base = seed_engine(&reg, false);
    let env = Env::new();
    let target = reg.reference("team/mocks:1");
    let first = build(&env, &base, &target, &[]);
    let before = reg.requests().len();
    let second = build(&env, &base, &target, &[]);
    // The rebuild finds the image and its attachments in place and writes nothing.
    let again = reg.requests()[before..].to_vec();
    assert!(
        !again
            .iter()
            .any(|r| r.starts_with("PUT ") || r.starts_with("POST ")),
        "{again:#?}"
    );
    let digests = |o: &serde_json::Value| -> Vec<String> {
        o["attached"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["digest"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(digests(&first).len(), 2);
    assert_eq!(digests(&first), digests(&second));
    let digest = first["digest"].as_str().unwrap();
    assert_eq!(
        referrers(&reg, "team/mocks", digest)["manifests"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Without SOURCE_DATE_EPOCH the SBOM's time is the image's, never the clock's.
    let (_, sbom) = referrer(&reg, "team/mocks", digest, "application/spdx+json");
    let sbom: serde_json::Value = serde_json::from_slice(&sbom).unwrap();
    let index = raw_manifest(&format!("{}/team/mocks@{digest}", reg.addr));
    let m = raw_manifest(&format!(
        "{}/team/mocks@{}",
        reg.addr,
        index["manifests"][0]["digest"].as_str().unwrap()
    ));
    let config: serde_json::Value =
        serde_json::from_slice(&reg.blob("team/mocks", m["config"]["digest"].as_str().unwrap()))
            .unwrap();
    let created = config["created"].as_str().unwrap();
    assert!(
        created.starts_with(
            sbom["creationInfo"]["created"]
                .as_str()
                .unwrap()
                .trim_end_matches('Z')
        ),
        "SBOM {} vs image {created}",
        sbom["creationInfo"]["created"]
    );
}

#[test]
fn no_sbom_and_no_provenance_attach_nothing() {
    let reg = Registry::start();
    let base = seed_engine(&reg, false);
    let env = Env::new();
    let out = build(
        &env,
        &base,
        &reg.reference("team/none:1"),
        &["--no-sbom", "--no-provenance"],
    );
    let digest = out["digest"].as_str().unwrap();
    assert!(out.get("attached").is_none(), "{out}");
    assert!(!has_tag(&reg, "team/none", &digest.replace(':', "-")));

    let out = build(&env, &base, &reg.reference("team/prov:1"), &["--no-sbom"]);
    let digest = out["digest"].as_str().unwrap();
    let index = referrers(&reg, "team/prov", digest);
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["artifactType"], "application/vnd.in-toto+json");
}

#[test]
fn a_referrers_tag_holding_someone_elses_image_fails_the_run_naming_what_is_missing() {
    let reg = Registry::start();
    let base = seed_engine(&reg, false);
    let env = Env::new();
    let target = reg.reference("team/mocks:1");
    let out = build(&env, &base, &target, &["--no-sbom", "--no-provenance"]);
    let tag = out["digest"].as_str().unwrap().replace(':', "-");
    // An image (one platform's manifest, not a referrers index) already sits under the tag.
    skopeo(&[
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{base}"),
        &format!("docker://{}", reg.reference(&format!("team/mocks:{tag}"))),
    ]);
    let run = env.run(&["build", "examples/rest", "--base", &base, "--push", &target]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let last = run.stderr.lines().last().unwrap();
    assert!(
        last.contains("attaching the sbom (application/spdx+json) and provenance")
            && last.contains("the image was pushed without them")
            && last.contains(&format!(
                "the referrers tag holds {}",
                "application/vnd.oci.image.manifest.v1+json"
            ))
            && last.contains(&tag),
        "{last}"
    );
}

#[test]
fn tests_run_mockimg_without_any_variable_the_ci_reader_looks_at() {
    // Inside GitHub Actions or GitLab CI a stray GITHUB_RUN_ATTEMPT or CI_JOB_URL would put a
    // run URL into every provenance and break the digests these tests pin: `Env::command`
    // strips every variable of the CI reader, which this reads from its source.
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/imposter/ci.rs"))
        .unwrap();
    let read: Vec<&str> = src
        .split("var(\"")
        .skip(1)
        .map(|rest| &rest[..rest.find('"').unwrap()])
        .collect();
    assert!(read.contains(&"GITHUB_RUN_ATTEMPT"), "{read:?}");
    assert!(read.contains(&"CI_JOB_URL"), "{read:?}");
    for v in read {
        assert!(is_ci_variable(v), "{v} reaches mockimg in tests");
    }
}
