//! Media-type families and foreign layers end to end (issue 14, items 4 and 6): a hand-made OCI
//! layout base with a non-distributable layer pushed to a real registry, and a Docker schema2
//! base whose family the registry keeps while files get OCI, unless `--format` says otherwise.
mod common;
use common::fixtures::{self, sha256, Item, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST};
use common::*;
use flate2::{Compression, GzBuilder};
use serde_json::{json, Value};
use std::path::Path;

const FOREIGN: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
const FOREIGN_URL: &str = "https://example.invalid/layer.tar.gz";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

fn put(dir: &Path, data: &[u8]) -> (String, u64) {
    let d = sha256(data);
    let p = dir.join("blobs/sha256").join(&d[7..]);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
    (d, data.len() as u64)
}

/// A gzipped tar of one file; returns (gzip bytes, diff_id).
fn layer(path: &str, body: &[u8]) -> (Vec<u8>, String) {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_mtime(1_700_000_000);
    h.set_mode(0o644);
    h.set_size(body.len() as u64);
    b.append_data(&mut h, path, body).unwrap();
    let raw = b.into_inner().unwrap();
    let diff_id = sha256(&raw);
    let mut gz = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::new(6));
    std::io::Write::write_all(&mut gz, &raw).unwrap();
    (gz.finish().unwrap(), diff_id)
}

/// A single-image OCI layout at `dir` (tag "1") whose first layer is non-distributable (with
/// `urls` when given; its blob in the layout when `blob_present`) and whose second is normal.
/// Returns the foreign layer's digest.
fn foreign_layout(dir: &Path, urls: Option<&[&str]>, blob_present: bool) -> String {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let (fgz, fdiff) = layer("etc/foreign.txt", b"licensed base content\n");
    let fdigest = sha256(&fgz);
    if blob_present {
        put(dir, &fgz);
    }
    let (ngz, ndiff) = layer("etc/normal.txt", b"ordinary layer\n");
    let (nd, ns) = put(dir, &ngz);
    let mut fdesc = json!({"mediaType": FOREIGN, "digest": fdigest, "size": fgz.len()});
    if let Some(u) = urls {
        fdesc["urls"] = json!(u);
    }
    let cfg = json!({
        "created": "2024-01-01T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {"User": "2048", "Cmd": ["/opt/imposter/bin/imposter"]},
        "rootfs": {"type": "layers", "diff_ids": [fdiff, ndiff]},
        "history": [
            {"created": "2024-01-01T00:00:00Z", "created_by": "foreign layer"},
            {"created": "2024-01-01T00:00:00Z", "created_by": "normal layer"}
        ],
    });
    let (cd, cs) = put(dir, &serde_json::to_vec(&cfg).unwrap());
    let m = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": cd, "size": cs},
        "layers": [fdesc, {"mediaType": OCI_LAYER, "digest": nd, "size": ns}],
    });
    let (md, ms) = put(dir, &serde_json::to_vec(&m).unwrap());
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": md, "size": ms,
            "annotations": {"org.opencontainers.image.ref.name": "1"}}]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    fdigest
}

fn push_foreign_base(blob_present: bool) {
    let reg = Registry::start_allowing_foreign_urls();
    let dir = tempfile::tempdir().unwrap();
    let fdigest = foreign_layout(dir.path(), Some(&[FOREIGN_URL]), blob_present);
    let base = format!("oci:{}:1", dir.path().display());
    let target = reg.reference("foreign:1");
    let ex = examples("rest");
    let run = Env::new()
        .run(&[
            "build",
            ex.to_str().unwrap(),
            "--base",
            &base,
            "--push",
            &target,
        ])
        .ok();
    let log = format!("{}{}", run.stdout, run.stderr);
    assert!(
        log.lines()
            .any(|l| l.contains(&fdigest) && l.contains("foreign") && l.contains(FOREIGN_URL)),
        "log does not name the foreign layer and its URL:\n{log}"
    );
    // By hex alone: upload URLs carry the digest percent-encoded (`sha256%3A…`).
    let uploads: Vec<String> = reg
        .requests()
        .into_iter()
        .filter(|r| (r.starts_with("POST ") || r.starts_with("PUT ")) && r.contains(&fdigest[7..]))
        .collect();
    assert!(
        uploads.is_empty(),
        "the foreign blob was sent to the registry: {uploads:#?}"
    );
    let m = raw_manifest(&target);
    let layers = m["layers"].as_array().unwrap();
    let f = layers
        .iter()
        .find(|l| l["digest"] == json!(fdigest))
        .unwrap_or_else(|| panic!("foreign descriptor dropped from {m:#}"));
    assert_eq!(f["mediaType"], json!(FOREIGN), "{m:#}");
    assert_eq!(f["urls"], json!([FOREIGN_URL]), "{m:#}");
    assert_eq!(
        layers.len(),
        3,
        "base's two layers plus the mock layer: {m:#}"
    );
}

#[test]
fn foreign_layer_with_blob_in_layout_is_kept_as_descriptor_and_never_uploaded() {
    push_foreign_base(true);
}

#[test]
fn foreign_layer_without_blob_in_layout_is_kept_as_descriptor_and_never_uploaded() {
    push_foreign_base(false);
}

#[test]
fn foreign_layer_without_urls_fails_in_one_line_naming_the_layer() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let fdigest = foreign_layout(dir.path(), None, true);
    let base = format!("oci:{}:1", dir.path().display());
    let target = reg.reference("foreign:1");
    let ex = examples("rest");
    let run = Env::new().run(&[
        "build",
        ex.to_str().unwrap(),
        "--base",
        &base,
        "--push",
        &target,
    ]);
    assert_eq!(
        run.code, 1,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    let err = run.stderr.trim();
    assert_eq!(err.lines().count(), 1, "not one line:\n{err}");
    assert!(
        err.contains(&fdigest) && err.contains("urls"),
        "error does not name the layer: {err}"
    );
    assert!(
        !reg.requests().iter().any(|r| r.starts_with("PUT ")),
        "something was pushed: {:#?}",
        reg.requests()
    );
}

/// A single-image fixture base pushed as Docker schema2.
fn seed_docker(reg: &Registry) -> String {
    let base = fixtures::Base {
        platforms: vec![fixtures::Platform {
            arch: "amd64",
            variant: None,
            layers: vec![fixtures::engine_files("amd64"), vec![Item::Dir("tmp/")]],
        }],
        attestation: false,
        single: true,
        ..fixtures::engine_like(false)
    };
    let r = seed(reg, &base, "base:docker", true, None);
    assert_eq!(raw_manifest(&r)["mediaType"], json!(DOCKER_MANIFEST));
    r
}

fn build(args: &[&str]) {
    let ex = examples("rest");
    let mut all = vec!["build", ex.to_str().unwrap()];
    all.extend(args);
    Env::new().run(&all).ok();
}

fn assert_family(m: &Value, manifest: &str, config: &str, layer_prefix: &str) {
    assert_eq!(m["mediaType"], json!(manifest), "{m:#}");
    assert_eq!(m["config"]["mediaType"], json!(config), "{m:#}");
    for l in m["layers"].as_array().unwrap() {
        let mt = l["mediaType"].as_str().unwrap();
        assert!(mt.starts_with(layer_prefix), "layer {mt} in {m:#}");
    }
}

fn assert_docker(m: &Value) {
    assert_family(
        m,
        DOCKER_MANIFEST,
        DOCKER_CONFIG,
        "application/vnd.docker.image.rootfs.",
    );
}

fn assert_oci(m: &Value) {
    assert_family(
        m,
        OCI_MANIFEST,
        OCI_CONFIG,
        "application/vnd.oci.image.layer.",
    );
}

#[test]
fn docker_base_keeps_docker_types_in_registry_and_oci_in_archive() {
    let reg = Registry::start();
    let base = seed_docker(&reg);
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("out.tar");
    let target = reg.reference("fmt:docker");
    build(&[
        "--base",
        &base,
        "--push",
        &target,
        "--output",
        tar.to_str().unwrap(),
    ]);
    assert_docker(&raw_manifest(&target));
    ocicheck::assert_archive(&tar);
    let m = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}", tar.display()),
    ]);
    assert_oci(&serde_json::from_str(&m).unwrap());
}

#[test]
fn format_docker_pushes_docker_types_from_an_oci_base() {
    let reg = Registry::start();
    let mut b = fixtures::engine_like(false);
    b.single = true;
    let base = seed(&reg, &b, "base:oci", false, None);
    assert_eq!(raw_manifest(&base)["mediaType"], json!(OCI_MANIFEST));
    let target = reg.reference("fmt:forced-docker");
    build(&["--base", &base, "--push", &target, "--format", "docker"]);
    assert_docker(&raw_manifest(&target));
}

#[test]
fn format_oci_pushes_oci_types_from_a_docker_base() {
    let reg = Registry::start();
    let base = seed_docker(&reg);
    let target = reg.reference("fmt:forced-oci");
    build(&["--base", &base, "--push", &target, "--format", "oci"]);
    assert_oci(&raw_manifest(&target));
}

#[test]
fn manifest_refused_for_its_foreign_layer_url_is_not_retried() {
    // Distribution's default refuses every foreign URL, as 500 with `UNKNOWN` codes ahead of
    // `MANIFEST_BLOB_UNKNOWN`: a refusal, final however it is sent.
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    foreign_layout(dir.path(), Some(&[FOREIGN_URL]), true);
    let base = format!("oci:{}:1", dir.path().display());
    let target = reg.reference("foreign:1");
    let ex = examples("rest");
    let run = Env::new().run(&[
        "build",
        ex.to_str().unwrap(),
        "--base",
        &base,
        "--push",
        &target,
    ]);
    assert_eq!(
        run.code, 1,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    assert!(
        run.stderr.contains("MANIFEST_BLOB_UNKNOWN"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("retry"), "{}", run.stderr);
    let puts = reg
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("PUT /v2/foreign/manifests/"))
        .count();
    assert_eq!(puts, 1, "{:#?}", reg.requests());
}
