//! Unit tests of `mod.rs`, kept beside it.
use super::*;

fn repo(name: &str) -> RegistryRef {
    RegistryRef::parse(&format!("docker.io/outofcoffee/{name}")).unwrap()
}

#[test]
fn engine_version_keeps_the_engine_generation_and_variant() {
    assert!(check_variant(&repo("imposter"), "4.9.10", Some("4.9.3")).is_ok());
    assert!(check_variant(&repo("imposter-all"), "5.21.4", None).is_ok());
    let e = check_variant(&repo("imposter"), "5.21.3", Some("4.9.3")).unwrap_err();
    assert!(
        e.is_usage() && e.to_string().contains("mockimg build"),
        "{e}"
    );
    let e = check_variant(&repo("imposter-distroless"), "5.21.3", None).unwrap_err();
    assert!(e.to_string().contains("distroless"), "{e}");
    let e = check_variant(&repo("imposter"), "latest", None).unwrap_err();
    assert!(e.to_string().contains("latest"), "{e}");
}

#[test]
fn the_jvm_engine_names_its_release_in_the_environment() {
    use crate::oci::image::{media, Doc, Image};
    let img = |env: serde_json::Value| {
        let cfg = serde_json::json!({"config": {"Env": env}});
        Root::Image(Image {
            manifest: Doc::new(media::OCI_MANIFEST, b"{}".to_vec()),
            config: Doc::new(media::OCI_CONFIG, serde_json::to_vec(&cfg).unwrap()),
            index_entry: None,
        })
    };
    assert_eq!(
        env_version(&img(serde_json::json!([
            "PATH=/bin",
            "IMPOSTER_VERSION=4.9.3"
        ])))
        .as_deref(),
        Some("4.9.3")
    );
    assert_eq!(env_version(&img(serde_json::json!(["PATH=/bin"]))), None);
}

#[test]
fn an_image_changed_after_its_build_fails_the_self_check() {
    use crate::mutate::append::LayerInfo;
    use crate::oci::digest;
    use crate::oci::image::{media, Doc, Image};
    let cfg = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["imposter"]},
        "rootfs": {"type": "layers", "diff_ids": [digest::sha256(b"base")]},
        "history": [{"created_by": "base"}]
    });
    let manifest = |config: &Doc| {
        let m = serde_json::json!({
            "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
            "config": {"mediaType": media::OCI_CONFIG, "digest": config.digest(), "size": config.size()},
            "layers": [{"mediaType": media::OCI_LAYER_GZIP, "digest": digest::sha256(b"gz"), "size": 2}]
        });
        Doc::new(media::OCI_MANIFEST, serde_json::to_vec(&m).unwrap())
    };
    let config = Doc::new(media::OCI_CONFIG, serde_json::to_vec(&cfg).unwrap());
    let base = Root::Image(Image {
        manifest: manifest(&config),
        config,
        index_entry: None,
    });
    let layer = LayerInfo {
        digest: digest::sha256(b"layer"),
        diff_id: digest::sha256(b"tar"),
        size: 5,
    };
    let base_ref = ImageRef::parse("registry.example.com/engine:4.9.3").unwrap();
    let opts = AppendOptions {
        config_path: "/opt/imposter/config".into(),
        engine_config_dir: "/opt/imposter/config".into(),
        base_name: base_ref.base_name(&base.digest()),
        ..Default::default()
    };
    let built = append::append_layer(&base, &layer, &opts).unwrap();
    let rec = recover::recover(&built, "img", &base).unwrap();
    self_check(&built, "img", &rec, &base_ref, &base).unwrap();

    // Someone changed the command after the build: not what a build gives, so refused.
    let mut c = built.images()[0].config.json("c").unwrap();
    c["config"]["Cmd"] = serde_json::json!(["sh"]);
    let config = Doc::new(media::OCI_CONFIG, serde_json::to_vec(&c).unwrap());
    let mut m = built.images()[0].manifest_json().unwrap();
    m["config"]["digest"] = serde_json::json!(config.digest());
    m["config"]["size"] = serde_json::json!(config.size());
    let changed = Root::Image(Image {
        manifest: Doc::new(media::OCI_MANIFEST, serde_json::to_vec(&m).unwrap()),
        config,
        index_entry: None,
    });
    let rec = recover::recover(&changed, "img", &base).unwrap();
    let e = self_check(&changed, "img", &rec, &base_ref, &base).unwrap_err();
    assert!(
        e.to_string().contains("changed after mockimg built it"),
        "{e}"
    );
}
