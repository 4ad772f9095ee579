//! The provenance: an in-toto Statement v1 (in-toto/attestation `spec/v1`) whose predicate is
//! SLSA provenance v1 (slsa.dev/spec/v1.0/provenance): the builder (mockimg, its version apart
//! from its id), the parameters that shape the image, what was built from (the base by digest,
//! the config files by digest, the CI source and revision), the config layer made as a
//! byproduct, and the image as its subject. No clock is read and no time is stated: SLSA's
//! `startedOn` is when the build ran, which `SOURCE_DATE_EPOCH` is not; that value is a
//! parameter (`sourceDateEpoch`), as it changes the image's bytes.
use super::Facts;
use crate::oci::image::Doc;
use serde_json::{json, Map, Value};

/// The statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The predicate type.
pub const SLSA_PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// The builder's id: this program, whatever its version (`runDetails.builder.version` says
/// which), so a policy pinning the builder holds across releases.
pub const BUILDER_ID: &str = "https://github.com/mockimg/mockimg";

/// What a mockimg build is (the SLSA `buildType`): README.md's "Attachments" section at this
/// version's tag, which describes the parameters and dependencies this version writes.
pub fn build_type() -> String {
    format!(
        "https://github.com/mockimg/mockimg/blob/v{}/README.md#attachments-sbom-and-provenance",
        env!("CARGO_PKG_VERSION")
    )
}

/// The statement for the image `subject` known as `name` (`None`: no pushed name, and the
/// subject is named by its digest).
pub fn statement(facts: &Facts, subject: &Doc, name: Option<&str>) -> Vec<u8> {
    let digest = subject.digest();
    let hex = |d: &str| d.trim_start_matches("sha256:").to_string();
    let (base_name, base_digest) = facts.base_parts();
    let external = external_parameters(facts);
    let mut base = Map::new();
    base.insert("name".into(), json!("base"));
    if let Some(n) = base_name {
        base.insert("uri".into(), json!(format!("oci://{n}@{base_digest}")));
    }
    base.insert("digest".into(), json!({"sha256": hex(base_digest)}));
    let mut deps = vec![
        Value::Object(base),
        json!({
            "name": "config",
            "digest": {"sha256": facts.config_files_digest()},
            "annotations": {"digestOf": "sha256sum lines (hex, two spaces, path in the image) of the layer's files, sorted by path"},
        }),
    ];
    let mut metadata = Map::new();
    if let Some(ci) = &facts.ci {
        if let Some(repo) = &ci.repository {
            let mut dep = Map::new();
            dep.insert(
                "uri".into(),
                json!(match &ci.revision {
                    Some(rev) => format!("git+{repo}@{rev}"),
                    None => format!("git+{repo}"),
                }),
            );
            if let Some(rev) = &ci.revision {
                dep.insert("digest".into(), json!({"gitCommit": rev}));
            }
            deps.push(Value::Object(dep));
        }
        if let Some(run) = &ci.run_url {
            metadata.insert("invocationId".into(), json!(run));
        }
    }
    let mut run_details = Map::new();
    run_details.insert(
        "builder".into(),
        json!({
            "id": BUILDER_ID,
            "version": {"mockimg": env!("CARGO_PKG_VERSION")},
        }),
    );
    if !metadata.is_empty() {
        run_details.insert("metadata".into(), Value::Object(metadata));
    }
    // The config layer is what the build made, not what it read.
    run_details.insert(
        "byproducts".into(),
        json!([{
            "name": "config-layer",
            "digest": {"sha256": hex(&facts.layer_digest)},
            "annotations": {"diffID": facts.layer_diff_id},
        }]),
    );
    let subject_name = match name {
        Some(n) => n.to_string(),
        None => digest.clone(),
    };
    let v = json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject_name, "digest": {"sha256": hex(&digest)}}],
        "predicateType": SLSA_PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": build_type(),
                "externalParameters": external,
                "resolvedDependencies": deps,
            },
            "runDetails": run_details,
        },
    });
    serde_json::to_vec(&v).expect("JSON values serialise")
}

/// `externalParameters`: everything the user chose that changes the image's bytes.
fn external_parameters(facts: &Facts) -> Map<String, Value> {
    let mut external = Map::new();
    if let Some(p) = &facts.parameters {
        external.insert("base".into(), json!(p.base));
    }
    external.insert("configPath".into(), json!(facts.config_path));
    if let Some(p) = &facts.parameters {
        external.insert("engineConfigDir".into(), json!(p.engine_config_dir));
        // What a rebase cannot know (it reuses the layer) is left out rather than guessed.
        if let Some(r) = p.replace {
            external.insert("replace".into(), json!(r));
        }
        if let Some(x) = &p.excludes {
            external.insert("excludes".into(), json!(x));
        }
        if let Some(g) = p.gzip_level {
            external.insert("gzipLevel".into(), json!(g));
        }
        external.insert("platforms".into(), json!(p.platforms));
        if let Some(f) = &p.format {
            external.insert("format".into(), json!(f));
        }
        external.insert("labels".into(), json!(p.labels));
        external.insert("annotations".into(), json!(p.annotations));
        external.insert("env".into(), json!(p.env));
    }
    if let Some(t) = facts.source_date_epoch.as_deref().and_then(epoch_of) {
        // As the variable is set: seconds since the epoch, a decimal string.
        external.insert("sourceDateEpoch".into(), json!(t.to_string()));
    }
    if let Some(ci) = &facts.ci {
        if let Some(repo) = &ci.repository {
            let mut source = Map::new();
            source.insert("repository".into(), json!(repo));
            if let Some(rev) = &ci.revision {
                source.insert("revision".into(), json!(rev));
            }
            external.insert("source".into(), Value::Object(source));
        }
    }
    external
}

/// Seconds since the epoch of an RFC 3339 time.
fn epoch_of(t: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|d| d.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::{CiRun, FileEntry, Parameters};

    fn facts(ci: Option<CiRun>) -> Facts {
        Facts {
            files: vec![FileEntry {
                path: "/opt/imposter/config/a.json".into(),
                sha256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824".into(),
                sha1: String::new(),
                size: 5,
            }],
            layer_digest: format!("sha256:{}", "cd".repeat(32)),
            base: format!("docker.io/outofcoffee/imposter@sha256:{}", "ab".repeat(32)),
            config_path: "/opt/imposter/config".into(),
            ci,
            ..Facts::default()
        }
    }

    fn statement_of(facts: &Facts, name: Option<&str>) -> Value {
        let subject = Doc::new(crate::oci::media::OCI_INDEX, &b"{}"[..]);
        serde_json::from_slice(&statement(facts, &subject, name)).unwrap()
    }

    #[test]
    fn the_statement_names_the_image_the_builder_and_what_it_was_built_from() {
        let subject = Doc::new(crate::oci::media::OCI_INDEX, &b"{}"[..]);
        let v = statement_of(&facts(None), Some("r.example/m"));
        assert_eq!(v["_type"], STATEMENT_TYPE);
        assert_eq!(v["subject"][0]["name"], "r.example/m");
        assert_eq!(
            v["subject"][0]["digest"]["sha256"],
            subject.digest().trim_start_matches("sha256:")
        );
        let p = &v["predicate"];
        assert_eq!(p["runDetails"]["builder"]["id"], BUILDER_ID);
        assert_eq!(
            p["runDetails"]["builder"]["version"]["mockimg"],
            env!("CARGO_PKG_VERSION")
        );
        let build_type = p["buildDefinition"]["buildType"].as_str().unwrap();
        assert!(
            build_type.contains(&format!("/blob/v{}/", env!("CARGO_PKG_VERSION"))),
            "{build_type}"
        );
        let deps = &p["buildDefinition"]["resolvedDependencies"];
        assert_eq!(deps[0]["digest"]["sha256"], "ab".repeat(32));
        assert_eq!(
            deps[0]["uri"],
            format!(
                "oci://docker.io/outofcoffee/imposter@sha256:{}",
                "ab".repeat(32)
            )
        );
        // The config, by the digest of its `sha256sum` lines; the layer is an output.
        let line = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824  /opt/imposter/config/a.json\n";
        use sha2::Digest as _;
        assert_eq!(
            deps[1]["digest"]["sha256"],
            hex::encode(sha2::Sha256::digest(line.as_bytes()))
        );
        assert_eq!(deps.as_array().unwrap().len(), 2);
        assert_eq!(
            p["runDetails"]["byproducts"][0]["digest"]["sha256"],
            "cd".repeat(32)
        );
        assert!(
            p["runDetails"].get("metadata").is_none(),
            "no run, no metadata, and never a time"
        );
    }

    #[test]
    fn source_date_epoch_is_a_parameter_not_a_start_time() {
        let mut f = facts(None);
        f.source_date_epoch = Some("2024-01-01T00:00:00Z".into());
        let v = statement_of(&f, Some("r.example/m"));
        let p = &v["predicate"];
        assert_eq!(
            p["buildDefinition"]["externalParameters"]["sourceDateEpoch"],
            "1704067200"
        );
        assert!(p["runDetails"].get("metadata").is_none(), "{p}");
        assert!(!v.to_string().contains("startedOn"));
    }

    #[test]
    fn the_parameters_that_shape_the_image_are_external_parameters() {
        let mut f = facts(None);
        f.parameters = Some(Parameters {
            base: "outofcoffee/imposter:4".into(),
            platforms: vec!["linux/amd64".into()],
            format: Some("docker".into()),
            engine_config_dir: "/opt/imposter/config".into(),
            excludes: Some(vec!["*.md".into()]),
            gzip_level: Some(9),
            replace: Some(true),
            labels: [("a".to_string(), "1".to_string())].into(),
            annotations: [("b".to_string(), "2".to_string())].into(),
            env: [("C".to_string(), "3".to_string())].into(),
        });
        let v = statement_of(&f, Some("r.example/m"));
        let e = &v["predicate"]["buildDefinition"]["externalParameters"];
        assert_eq!(e["base"], "outofcoffee/imposter:4", "as the user gave it");
        assert_eq!(e["platforms"][0], "linux/amd64");
        assert_eq!(e["format"], "docker");
        assert_eq!(e["engineConfigDir"], "/opt/imposter/config");
        assert_eq!(e["excludes"][0], "*.md");
        assert_eq!(e["gzipLevel"], 9);
        assert_eq!(e["replace"], true);
        assert_eq!(e["labels"]["a"], "1");
        assert_eq!(e["annotations"]["b"], "2");
        assert_eq!(e["env"]["C"], "3");
    }

    #[test]
    fn a_local_base_and_an_unnamed_image_get_no_made_up_identity() {
        let mut f = facts(None);
        f.base = format!("@sha256:{}", "ab".repeat(32));
        let v = statement_of(&f, None);
        let base = &v["predicate"]["buildDefinition"]["resolvedDependencies"][0];
        assert!(base.get("uri").is_none(), "{base}");
        assert_eq!(base["digest"]["sha256"], "ab".repeat(32));
        let subject = Doc::new(crate::oci::media::OCI_INDEX, &b"{}"[..]);
        assert_eq!(v["subject"][0]["name"], subject.digest());
    }

    #[test]
    fn in_ci_the_source_revision_and_run_are_stated() {
        let ci = CiRun {
            repository: Some("https://github.com/o/r".into()),
            revision: Some("abc123".into()),
            run_url: Some("https://github.com/o/r/actions/runs/7".into()),
        };
        let v = statement_of(&facts(Some(ci)), Some("r.example/m"));
        let p = &v["predicate"];
        assert_eq!(
            p["buildDefinition"]["externalParameters"]["source"]["revision"],
            "abc123"
        );
        assert_eq!(
            p["buildDefinition"]["resolvedDependencies"][2]["uri"],
            "git+https://github.com/o/r@abc123"
        );
        assert_eq!(
            p["runDetails"]["metadata"]["invocationId"],
            "https://github.com/o/r/actions/runs/7"
        );
    }
}
