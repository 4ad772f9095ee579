//! Facts of OCI 1.1 referrers that both the reading and the writing ends need: where a registry
//! without the referrers API keeps them, and the artifact type a referrer is listed by.
use serde_json::Value;

/// The referrers tag of `subject_digest` (distribution-spec 1.1's fallback): `sha256-<hex>`.
pub(crate) fn referrers_tag(subject_digest: &str) -> String {
    subject_digest.replacen(':', "-", 1)
}

/// The artifact type of a referrer manifest `v` as the referrers API reports it
/// (distribution-spec 1.1): its `artifactType`, else its config's `mediaType` (a referrer
/// written by a tool that sets no `artifactType`).
pub(crate) fn artifact_type(v: &Value) -> Option<String> {
    [&v["artifactType"], &v["config"]["mediaType"]]
        .into_iter()
        .filter_map(Value::as_str)
        .find(|t| !t.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_artifact_type_falls_back_to_the_config_media_type() {
        let v = serde_json::json!({"artifactType": "a/b", "config": {"mediaType": "c/d"}});
        assert_eq!(artifact_type(&v).as_deref(), Some("a/b"));
        let v = serde_json::json!({"artifactType": "", "config": {"mediaType": "c/d"}});
        assert_eq!(artifact_type(&v).as_deref(), Some("c/d"));
        assert_eq!(artifact_type(&serde_json::json!({})), None);
        assert_eq!(referrers_tag("sha256:ab"), "sha256-ab");
    }
}
