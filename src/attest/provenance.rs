//! The provenance: an in-toto Statement v1 (in-toto/attestation `spec/v1`) whose predicate is
//! SLSA provenance v1 (slsa.dev/spec/v1.0/provenance): the builder (mockimg and its version),
//! what was built from (the base digest, the config layer, the CI source and revision), and the
//! image as its subject. No clock is read: the one time it states is `SOURCE_DATE_EPOCH`.
use super::Facts;
use crate::oci::image::Doc;
use serde_json::{json, Map, Value};

/// The statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The predicate type.
pub const SLSA_PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// What a mockimg build is (the SLSA `buildType`), described in README.md's "Attachments"
/// section: its external parameters are the base, the config path and the CI source, its
/// dependencies the base, the config layer and the source commit.
pub const BUILD_TYPE: &str =
    "https://github.com/mockimg/mockimg/blob/main/README.md#attachments-sbom-and-provenance";

/// The builder's id: this program at this version.
pub fn builder_id() -> String {
    format!(
        "https://github.com/mockimg/mockimg@v{}",
        env!("CARGO_PKG_VERSION")
    )
}

/// The statement for the image `subject` known as `name`.
pub fn statement(facts: &Facts, subject: &Doc, name: &str) -> Vec<u8> {
    let digest = subject.digest();
    let hex = |d: &str| d.trim_start_matches("sha256:").to_string();
    let (base_name, base_digest) = facts
        .base
        .split_once('@')
        .unwrap_or((facts.base.as_str(), ""));
    let mut external = Map::new();
    external.insert("base".into(), json!(facts.base));
    external.insert("configPath".into(), json!(facts.config_path));
    let mut deps = vec![
        json!({
            "name": "base",
            "uri": format!("oci://{base_name}@{base_digest}"),
            "digest": {"sha256": hex(base_digest)},
        }),
        json!({
            "name": "config-layer",
            "digest": {"sha256": hex(&facts.layer_digest)},
            "annotations": {"diffID": facts.layer_diff_id},
        }),
    ];
    let mut metadata = Map::new();
    if let Some(ci) = &facts.ci {
        if let Some(repo) = &ci.repository {
            let mut source = Map::new();
            source.insert("repository".into(), json!(repo));
            if let Some(rev) = &ci.revision {
                source.insert("revision".into(), json!(rev));
            }
            external.insert("source".into(), Value::Object(source));
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
    if let Some(t) = &facts.source_date_epoch {
        metadata.insert("startedOn".into(), json!(t));
    }
    let mut run_details = Map::new();
    run_details.insert(
        "builder".into(),
        json!({
            "id": builder_id(),
            "version": {"mockimg": env!("CARGO_PKG_VERSION")},
        }),
    );
    if !metadata.is_empty() {
        run_details.insert("metadata".into(), Value::Object(metadata));
    }
    let v = json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": hex(&digest)}}],
        "predicateType": SLSA_PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "resolvedDependencies": deps,
            },
            "runDetails": run_details,
        },
    });
    serde_json::to_vec(&v).expect("JSON values serialise")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::CiRun;

    fn facts(ci: Option<CiRun>) -> Facts {
        Facts {
            layer_digest: format!("sha256:{}", "cd".repeat(32)),
            base: format!("docker.io/outofcoffee/imposter@sha256:{}", "ab".repeat(32)),
            config_path: "/opt/imposter/config".into(),
            ci,
            ..Facts::default()
        }
    }

    #[test]
    fn the_statement_names_the_image_the_builder_and_what_it_was_built_from() {
        let subject = Doc::new(crate::oci::media::OCI_INDEX, &b"{}"[..]);
        let v: Value =
            serde_json::from_slice(&statement(&facts(None), &subject, "r.example/m")).unwrap();
        assert_eq!(v["_type"], STATEMENT_TYPE);
        assert_eq!(v["subject"][0]["name"], "r.example/m");
        assert_eq!(
            v["subject"][0]["digest"]["sha256"],
            subject.digest().trim_start_matches("sha256:")
        );
        let p = &v["predicate"];
        assert_eq!(p["runDetails"]["builder"]["id"], builder_id());
        assert_eq!(
            p["buildDefinition"]["resolvedDependencies"][0]["digest"]["sha256"],
            "ab".repeat(32)
        );
        assert_eq!(
            p["buildDefinition"]["resolvedDependencies"][1]["digest"]["sha256"],
            "cd".repeat(32)
        );
        assert!(
            p["runDetails"].get("metadata").is_none(),
            "no time without SOURCE_DATE_EPOCH"
        );
    }

    #[test]
    fn in_ci_the_source_revision_and_run_are_stated() {
        let ci = CiRun {
            repository: Some("https://github.com/o/r".into()),
            revision: Some("abc123".into()),
            run_url: Some("https://github.com/o/r/actions/runs/7".into()),
        };
        let subject = Doc::new(crate::oci::media::OCI_INDEX, &b"{}"[..]);
        let v: Value =
            serde_json::from_slice(&statement(&facts(Some(ci)), &subject, "r.example/m")).unwrap();
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
