//! Unit tests of `append.rs`, kept beside it.
use super::*;
use crate::oci::digest;

fn cfg(arch: &str) -> Doc {
    Doc::new(
        media::OCI_CONFIG,
        serde_json::to_vec(&json!({
            "architecture": arch, "os": "linux", "created": "2024-01-01T00:00:00Z",
            "config": {"User": "2048", "Cmd": ["imposter"], "Labels": {"z": "1", "a": "2"}},
            "rootfs": {"type": "layers", "diff_ids": [digest::sha256(b"base")]},
            "history": [{"created_by": "base"}],
            "x-unknown": {"keep": true}
        }))
        .unwrap(),
    )
}

fn image(mt: &str, arch: &str) -> Image {
    let config = cfg(arch);
    let m = json!({
        "schemaVersion": 2, "mediaType": mt,
        "config": {"mediaType": if media::is_docker(mt) {media::DOCKER_CONFIG} else {media::OCI_CONFIG}, "digest": config.digest(), "size": config.size()},
        "layers": [{"mediaType": media::OCI_LAYER_GZIP, "digest": digest::sha256(b"gz"), "size": 2}]
    });
    Image {
        manifest: Doc::new(mt, serde_json::to_vec(&m).unwrap()),
        config,
        index_entry: None,
    }
}

fn index() -> Root {
    let a = image(media::OCI_MANIFEST, "amd64");
    let b = image(media::OCI_MANIFEST, "arm64");
    let att = digest::sha256(b"att");
    let idx = json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": [
        {"mediaType": media::OCI_MANIFEST, "digest": a.manifest.digest(), "size": a.manifest.size(), "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": media::OCI_MANIFEST, "digest": b.manifest.digest(), "size": b.manifest.size(), "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}, "annotations": {"keep": "me"}},
        {"mediaType": media::OCI_MANIFEST, "digest": att, "size": 10, "platform": {"os": "unknown", "architecture": "unknown"}, "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}
    ]});
    let index = Doc::new(media::OCI_INDEX, serde_json::to_vec(&idx).unwrap());
    let entries = idx["manifests"].as_array().unwrap();
    let a = Image {
        index_entry: Some(Descriptor::from_json(&entries[0], "t").unwrap()),
        ..a
    };
    let b = Image {
        index_entry: Some(Descriptor::from_json(&entries[1], "t").unwrap()),
        ..b
    };
    Root::Index {
        index,
        images: vec![a, b],
    }
}

fn layer() -> LayerInfo {
    LayerInfo {
        digest: digest::sha256(b"layer"),
        diff_id: digest::sha256(b"tar"),
        size: 5,
    }
}

fn opts() -> AppendOptions {
    AppendOptions {
        config_path: "/opt/imposter/config".into(),
        engine_config_dir: "/opt/imposter/config".into(),
        ..Default::default()
    }
}

#[test]
fn appends_to_every_platform_and_drops_attestations() {
    let out = append_layer(&index(), &layer(), &opts()).unwrap();
    let Root::Index { index, images } = &out else {
        panic!()
    };
    assert_eq!(images.len(), 2);
    let v = index.json("x").unwrap();
    let entries = v["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1]["annotations"]["keep"], "me");
    assert_eq!(entries[1]["platform"]["variant"], "v8");
    for (e, img) in entries.iter().zip(images) {
        assert_eq!(e["digest"], img.manifest.digest());
        let m = img.manifest_json().unwrap();
        assert_eq!(m["config"]["digest"], img.config.digest());
        let layers = img.layers().unwrap();
        assert_eq!(layers.len(), 2);
        assert_eq!(layers[1].media_type, media::OCI_LAYER_GZIP);
        let c = img.config.json("c").unwrap();
        assert_eq!(c["rootfs"]["diff_ids"][1], layer().diff_id);
        assert_eq!(c["history"].as_array().unwrap().len(), 2);
        assert_eq!(c["x-unknown"]["keep"], true);
        assert_eq!(c["config"]["User"], "2048");
        assert_eq!(c["created"], "2024-01-01T00:00:00Z");
        // key order of the base survives
        let keys: Vec<_> = c["config"]["Labels"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["z", "a"]);
        assert!(m["annotations"]["org.opencontainers.image.base.digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"));
    }
}

#[test]
fn platform_selection_and_errors() {
    let mut o = opts();
    o.platforms = vec![Platform::parse("linux/arm64").unwrap()];
    let out = append_layer(&index(), &layer(), &o).unwrap();
    assert_eq!(out.images().len(), 1);
    assert_eq!(out.images()[0].platform().unwrap().architecture, "arm64");
    o.platforms = vec![Platform::parse("linux/s390x").unwrap()];
    let e = append_layer(&index(), &layer(), &o).unwrap_err();
    assert!(e.is_usage());
    assert!(e.to_string().contains("linux/amd64"), "{e}");
}

#[test]
fn docker_base_gets_docker_layer_and_no_annotations() {
    let base = Root::Image(image(media::DOCKER_MANIFEST, "amd64"));
    let mut o = opts();
    o.created = Some("2025-01-01T00:00:00Z".into());
    o.labels.insert("team".into(), "mocks".into());
    let out = append_layer(&base, &layer(), &o).unwrap();
    let img = &out.images()[0];
    assert_eq!(
        img.layers().unwrap()[1].media_type,
        media::DOCKER_LAYER_GZIP
    );
    assert!(img.manifest_json().unwrap().get("annotations").is_none());
    let c = img.config.json("c").unwrap();
    assert_eq!(c["created"], "2025-01-01T00:00:00Z");
    assert_eq!(c["config"]["Labels"]["team"], "mocks");
    // same input, same bytes
    let again = append_layer(&base, &layer(), &o).unwrap();
    assert_eq!(again.digest(), out.digest());
}

#[test]
fn a_config_without_rootfs_gets_one_instead_of_a_panic() {
    let mut img = image(media::OCI_MANIFEST, "amd64");
    let m = json!({
        "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_CONFIG, "digest": digest::sha256(b"{}"), "size": 2},
        "layers": []
    });
    img.manifest = Doc::new(media::OCI_MANIFEST, serde_json::to_vec(&m).unwrap());
    img.config = Doc::new(media::OCI_CONFIG, b"{}".to_vec());
    let out = append_layer(&Root::Image(img), &layer(), &opts()).unwrap();
    let c = out.images()[0].config.json("c").unwrap();
    assert_eq!(c["rootfs"]["diff_ids"], json!([layer().diff_id]));
}

#[test]
fn malformed_documents_are_errors_not_panics() {
    let mut img = image(media::OCI_MANIFEST, "amd64");
    img.config = Doc::new(media::OCI_CONFIG, br#"{"rootfs": "flat"}"#.to_vec());
    let e = append_layer(&Root::Image(img.clone()), &layer(), &opts()).unwrap_err();
    assert!(e.to_string().contains("rootfs"), "{e}");
    let m =
        json!({"schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "config": "x", "layers": []});
    img.manifest = Doc::new(media::OCI_MANIFEST, serde_json::to_vec(&m).unwrap());
    img.config = cfg("amd64");
    let e = append_layer(&Root::Image(img), &layer(), &opts()).unwrap_err();
    assert!(e.to_string().contains("config"), "{e}");
}

#[test]
fn an_index_without_manifests_is_refused() {
    let index = Doc::new(
        media::OCI_INDEX,
        br#"{"schemaVersion":2,"manifests":[]}"#.to_vec(),
    );
    let root = Root::Index {
        index,
        images: vec![],
    };
    let e = append_layer(&root, &layer(), &opts()).unwrap_err();
    assert!(e.to_string().contains("no runnable image"), "{e}");
}

#[test]
fn a_base_without_history_gets_one_entry_per_layer() {
    for history in [
        None,
        Some(json!([])),
        Some(json!([{"created_by": "x", "empty_layer": true}])),
    ] {
        let mut img = image(media::OCI_MANIFEST, "amd64");
        let mut c = img.config.json("c").unwrap();
        match &history {
            Some(h) => c["history"] = h.clone(),
            None => {
                c.as_object_mut().unwrap().remove("history");
            }
        }
        img.config = Doc::new(media::OCI_CONFIG, serde_json::to_vec(&c).unwrap());
        let m = img.manifest_json().unwrap();
        let config_desc = json!({"mediaType": media::OCI_CONFIG, "digest": img.config.digest(), "size": img.config.size()});
        let mut m2 = m.clone();
        m2["config"] = config_desc;
        img.manifest = Doc::new(media::OCI_MANIFEST, serde_json::to_vec(&m2).unwrap());
        let out = append_layer(&Root::Image(img), &layer(), &opts()).unwrap();
        let c = out.images()[0].config.json("c").unwrap();
        let h = c["history"].as_array().unwrap();
        let non_empty = h
            .iter()
            .filter(|e| e.get("empty_layer") != Some(&json!(true)))
            .count();
        assert_eq!(
            non_empty,
            c["rootfs"]["diff_ids"].as_array().unwrap().len(),
            "{history:?}: {h:?}"
        );
        assert_eq!(h[0]["comment"], "base layer without history");
        assert_eq!(h[0]["created"], "2024-01-01T00:00:00Z");
    }
}
