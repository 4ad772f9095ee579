//! Attachments in file outputs: `--output` (one tar that is an OCI layout and a docker-archive)
//! and `--oci-layout` hold the SBOM and provenance as blobs beside the image, found by their
//! `subject` and listed nowhere in `index.json` (whose one image `docker load`, `ctr import`
//! and `skopeo copy oci-archive:FILE` take; tests/docker.rs, containerd.rs and export.rs prove
//! they still do); `mockimg inspect` lists them and `mockimg push` carries them to a registry.
mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::Path;

fn json(b: &[u8]) -> serde_json::Value {
    serde_json::from_slice(b).unwrap()
}

/// The referrer manifests among `files` (name → bytes of a layout) naming `subject`.
fn referrers_in(files: &BTreeMap<String, Vec<u8>>, subject: &str) -> BTreeMap<String, String> {
    files
        .iter()
        .filter(|(n, _)| n.starts_with("blobs/sha256/"))
        .filter_map(|(n, b)| {
            let v: serde_json::Value = serde_json::from_slice(b).ok()?;
            (v["subject"]["digest"] == subject).then(|| {
                (
                    format!("sha256:{}", n.trim_start_matches("blobs/sha256/")),
                    v["artifactType"].as_str().unwrap().to_string(),
                )
            })
        })
        .collect()
}

fn attached_digests(o: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = o["attached"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["digest"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn an_archive_and_a_layout_carry_the_attachments_and_mockimg_push_takes_them_along() {
    let reg = Registry::start();
    let env = Env::new().set("SOURCE_DATE_EPOCH", "1700000000");
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("mocks.tar");
    let layout = out.path().join("layout");
    let target = reg.reference("team/mocks:1");
    let run = env
        .build("examples/rest")
        .base(&format!(
            "oci:{}/testdata/engine-base:4.9.3",
            env!("CARGO_MANIFEST_DIR")
        ))
        .tag(&target)
        .output(&tar)
        .oci_layout(&layout)
        .args(["--json"])
        .run()
        .ok();
    let o: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let digest = o["digest"].as_str().unwrap().to_string();
    let written = attached_digests(&o);
    assert_eq!(written.len(), 2, "{o}");

    // Both files hold the two referrers as blobs; index.json lists only the image.
    let files = fixtures::read_tar(&tar);
    let index = json(&files["index.json"]);
    let entries = index["manifests"].as_array().unwrap();
    assert!(
        entries.iter().all(|e| e["digest"] == digest.as_str()),
        "index.json lists more than the image: {index}"
    );
    let in_tar = referrers_in(&files, &digest);
    assert_eq!(in_tar.keys().cloned().collect::<Vec<_>>(), written);
    let mut types: Vec<&String> = in_tar.values().collect();
    types.sort();
    assert_eq!(
        types,
        ["application/spdx+json", "application/vnd.in-toto+json"]
    );
    let layout_files = files_of(&layout);
    assert_eq!(referrers_in(&layout_files, &digest), in_tar);
    let index = json(&layout_files["index.json"]);
    assert!(index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["digest"] == digest.as_str()));
    // Every blob a referrer names is in the archive.
    for d in in_tar.keys() {
        let m = json(&files[&format!("blobs/sha256/{}", d.trim_start_matches("sha256:"))]);
        for b in std::iter::once(&m["config"]).chain(m["layers"].as_array().unwrap()) {
            let name = format!(
                "blobs/sha256/{}",
                b["digest"].as_str().unwrap().trim_start_matches("sha256:")
            );
            assert!(files.contains_key(&name), "{name} missing");
        }
    }
    // The base is a local layout and no name is pushed (`--tag` records one, which is no
    // claim the image is there): the documents make up no name, purl or URI for either.
    let doc_of = |artifact_type: &str| {
        let (d, _) = in_tar.iter().find(|(_, t)| *t == artifact_type).unwrap();
        let m = json(&files[&format!("blobs/sha256/{}", d.trim_start_matches("sha256:"))]);
        let layer = m["layers"][0]["digest"].as_str().unwrap();
        json(&files[&format!("blobs/sha256/{}", layer.trim_start_matches("sha256:"))])
    };
    let sbom = doc_of("application/spdx+json");
    for p in sbom["packages"].as_array().unwrap() {
        assert!(p.get("externalRefs").is_none(), "a made-up purl: {p}");
    }
    assert_eq!(sbom["packages"][0]["name"], "container image");
    assert_eq!(sbom["packages"][2]["name"], "base image");
    assert_eq!(sbom["name"], digest.as_str());
    let provenance = doc_of("application/vnd.in-toto+json");
    assert_eq!(provenance["subject"][0]["name"], digest.as_str());
    let build = &provenance["predicate"]["buildDefinition"];
    assert!(
        build["resolvedDependencies"][0].get("uri").is_none(),
        "{build}"
    );
    // The base's transport, never the build machine's path.
    assert_eq!(build["externalParameters"]["base"], "oci:");
    assert_eq!(build["externalParameters"]["sourceDateEpoch"], "1700000000");

    // `mockimg inspect` lists them, from the archive and the layout.
    for src in [
        format!("oci-archive:{}", tar.display()),
        format!("oci:{}:1", layout.display()),
    ] {
        let i = env.run(&["inspect", &src, "--json"]).ok();
        let i: serde_json::Value = serde_json::from_str(&i.stdout).unwrap();
        assert_eq!(attached_digests(&i), written, "{src}: {i}");
    }

    // `mockimg push` of the archive pushes them beside the image: the same bytes.
    let pushed = env
        .run(&["push", tar.to_str().unwrap(), &target, "--json"])
        .ok();
    let p: serde_json::Value = serde_json::from_str(pushed.stdout.trim()).unwrap();
    assert_eq!(p["digest"], digest.as_str());
    assert_eq!(attached_digests(&p), written, "{p}");
    let tag = digest.replace(':', "-");
    let index = raw_manifest(&reg.reference(&format!("team/mocks:{tag}")));
    let mut listed: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, written);
    // And inspect reads them back from the registry (through the referrers tag).
    let i = env.run(&["inspect", &target, "--json"]).ok();
    let i: serde_json::Value = serde_json::from_str(&i.stdout).unwrap();
    assert_eq!(attached_digests(&i), written, "{i}");
    // The plain listing names them too.
    let plain = env.run(&["inspect", &target]).ok();
    assert!(
        plain.stdout.contains("attached: application/spdx+json"),
        "{}",
        plain.stdout
    );

    // A layout pushes them the same way, to another repository.
    let other = reg.reference("team/other:1");
    let pushed = env
        .run(&[
            "push",
            &format!("oci:{}:1", layout.display()),
            &other,
            "--json",
        ])
        .ok();
    let p: serde_json::Value = serde_json::from_str(pushed.stdout.trim()).unwrap();
    assert_eq!(attached_digests(&p), written);
}

#[test]
fn without_attachments_the_archive_holds_only_the_image() {
    let env = Env::new();
    let out = tempfile::tempdir().unwrap();
    let (with, without) = (out.path().join("with.tar"), out.path().join("without.tar"));
    let base = format!(
        "oci:{}/testdata/engine-base:4.9.3",
        env!("CARGO_MANIFEST_DIR")
    );
    env.build("examples/rest")
        .base(&base)
        .output(&with)
        .run()
        .ok();
    env.build("examples/rest")
        .base(&base)
        .output(&without)
        .args(["--no-sbom", "--no-provenance"])
        .run()
        .ok();
    let (a, b) = (fixtures::read_tar(&with), fixtures::read_tar(&without));
    // The same image, and the attachments' blobs are the only difference.
    assert_eq!(a["index.json"], b["index.json"]);
    assert_eq!(a["manifest.json"], b["manifest.json"]);
    let extra: Vec<&String> = a.keys().filter(|k| !b.contains_key(*k)).collect();
    // Two manifests, two documents, one empty config.
    assert_eq!(extra.len(), 5, "{extra:?}");
    assert!(b.keys().all(|k| a.contains_key(k)));
}

/// Every regular file of a layout directory, relative name → bytes.
fn files_of(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files(dir)
}
