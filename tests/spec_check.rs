//! The OCI spec check (`common::ocicheck`) itself: it passes a clean hand-made layout, fails each
//! kind of breakage it exists to catch, and mockimg's output over a base without history passes.
mod common;
use common::fixtures::{self, sha256};
use common::*;
use serde_json::{json, Value};
use std::path::Path;

fn offline(env: Env) -> Env {
    env.set("HTTPS_PROXY", "http://127.0.0.1:9")
        .set("HTTP_PROXY", "http://127.0.0.1:9")
        .set("ALL_PROXY", "http://127.0.0.1:9")
        .set("NO_PROXY", "")
}

fn blob_path(dir: &Path, digest: &str) -> std::path::PathBuf {
    dir.join("blobs/sha256").join(&digest[7..])
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn put(dir: &Path, v: &Value) -> (String, u64) {
    let b = serde_json::to_vec(v).unwrap();
    let d = sha256(&b);
    std::fs::write(blob_path(dir, &d), &b).unwrap();
    (d, b.len() as u64)
}

/// A single-manifest engine-like layout at `dir` (index.json → manifest → config).
fn single_layout(dir: &Path) {
    let mut base = fixtures::engine_like(false);
    base.single = true;
    fixtures::write_layout(dir, &base, "1");
}

/// Rewrites the manifest and config of a `single_layout`, re-describing both so that only the
/// edits (not stale digests) can make the layout wrong.
fn edit(dir: &Path, manifest: impl FnOnce(&mut Value), config: impl FnOnce(&mut Value)) {
    let mut index = read_json(&dir.join("index.json"));
    let mdesc = index["manifests"][0].clone();
    let mut m = read_json(&blob_path(dir, mdesc["digest"].as_str().unwrap()));
    let mut cfg = read_json(&blob_path(dir, m["config"]["digest"].as_str().unwrap()));
    config(&mut cfg);
    let (cd, cs) = put(dir, &cfg);
    m["config"]["digest"] = json!(cd);
    m["config"]["size"] = json!(cs);
    manifest(&mut m);
    let (md, ms) = put(dir, &m);
    index["manifests"][0]["digest"] = json!(md);
    index["manifests"][0]["size"] = json!(ms);
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

fn assert_rejected(dir: &Path, needle: &str) {
    let problems = ocicheck::check_layout(dir);
    assert!(
        problems.iter().any(|p| p.contains(needle)),
        "expected a problem containing {needle:?}, got {problems:#?}"
    );
}

#[test]
fn spec_check_passes_a_clean_multi_platform_layout_with_attestation() {
    let dir = tempfile::tempdir().unwrap();
    fixtures::write_layout(dir.path(), &fixtures::engine_like(true), "1");
    ocicheck::assert_layout(dir.path());
}

#[test]
fn spec_check_rejects_a_wrong_descriptor_size() {
    let dir = tempfile::tempdir().unwrap();
    single_layout(dir.path());
    let p = dir.path().join("index.json");
    let mut index = read_json(&p);
    let size = index["manifests"][0]["size"].as_u64().unwrap();
    index["manifests"][0]["size"] = json!(size + 1);
    std::fs::write(&p, serde_json::to_vec(&index).unwrap()).unwrap();
    assert_rejected(dir.path(), "descriptor size");
}

#[test]
fn spec_check_rejects_a_wrong_blob_digest() {
    let dir = tempfile::tempdir().unwrap();
    single_layout(dir.path());
    let index = read_json(&dir.path().join("index.json"));
    let m = blob_path(
        dir.path(),
        index["manifests"][0]["digest"].as_str().unwrap(),
    );
    let mut bytes = std::fs::read(&m).unwrap();
    bytes.push(b'\n');
    std::fs::write(&m, bytes).unwrap();
    assert_rejected(dir.path(), "has digest");
}

#[test]
fn spec_check_rejects_a_missing_or_wrong_diff_id() {
    let dir = tempfile::tempdir().unwrap();
    single_layout(dir.path());
    edit(
        dir.path(),
        |_| {},
        |c| {
            c["rootfs"]["diff_ids"].as_array_mut().unwrap().pop();
        },
    );
    assert_rejected(dir.path(), "1 diff_ids for 2 layers");

    let dir = tempfile::tempdir().unwrap();
    single_layout(dir.path());
    edit(
        dir.path(),
        |_| {},
        |c| c["rootfs"]["diff_ids"][0] = json!(sha256(b"not the layer")),
    );
    assert_rejected(dir.path(), "diff_ids[0]");
}

#[test]
fn spec_check_rejects_history_that_does_not_match_the_layers() {
    for (label, history, needle) in [
        ("absent", None, "no history"),
        (
            "empty",
            Some(json!([])),
            "0 non-empty history entries for 2 layers",
        ),
        (
            "all empty_layer",
            Some(json!([{"created_by": "a", "empty_layer": true}, {"created_by": "b"}])),
            "1 non-empty history entries for 2 layers",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        single_layout(dir.path());
        edit(
            dir.path(),
            |_| {},
            |c| match &history {
                None => {
                    c.as_object_mut().unwrap().remove("history");
                }
                Some(h) => c["history"] = h.clone(),
            },
        );
        let problems = ocicheck::check_layout(dir.path());
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "{label}: {problems:#?}"
        );
    }
}

#[test]
fn spec_check_rejects_docker_media_types_in_a_layout() {
    let dir = tempfile::tempdir().unwrap();
    single_layout(dir.path());
    edit(
        dir.path(),
        |m| {
            m["config"]["mediaType"] = json!("application/vnd.docker.container.image.v1+json");
            m["layers"][0]["mediaType"] =
                json!("application/vnd.docker.image.rootfs.diff.tar.gzip");
        },
        |_| {},
    );
    assert_rejected(
        dir.path(),
        "Docker media type application/vnd.docker.container",
    );
    assert_rejected(dir.path(), "Docker layer media type");
}

#[test]
fn spec_check_rejects_what_the_schemas_forbid() {
    let dir = tempfile::tempdir().unwrap();
    single_layout(dir.path());
    std::fs::write(
        dir.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"2.0.0"}"#,
    )
    .unwrap();
    edit(
        dir.path(),
        |m| m["schemaVersion"] = json!(1),
        |c| c["rootfs"]["type"] = json!("tarballs"),
    );
    assert_rejected(dir.path(), "oci-layout: schema");
    assert_rejected(dir.path(), "at /schemaVersion");
    assert_rejected(dir.path(), "at /rootfs/type");
}

#[test]
fn image_over_a_base_without_history_is_spec_clean() {
    let env = offline(Env::new());
    for (label, history) in [("absent", None), ("empty", Some(json!([])))] {
        let work = tempfile::tempdir().unwrap();
        let base = work.path().join("base");
        single_layout(&base);
        edit(
            &base,
            |_| {},
            |c| match &history {
                None => {
                    c.as_object_mut().unwrap().remove("history");
                }
                Some(h) => c["history"] = h.clone(),
            },
        );
        let layout = work.path().join("out");
        let tar = work.path().join("out.tar");
        env.run(&[
            "build",
            "examples/rest",
            "--base",
            &format!("oci:{}:1", base.display()),
            "--oci-layout",
            layout.to_str().unwrap(),
            "--output",
            tar.to_str().unwrap(),
            "--tag",
            "team/mocks:1",
        ])
        .ok();
        let problems = ocicheck::check_layout(&layout);
        assert!(problems.is_empty(), "{label}: layout: {problems:#?}");
        let problems = ocicheck::check_archive(&tar);
        assert!(problems.is_empty(), "{label}: archive: {problems:#?}");
    }
}
