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

/// Whether the entries of an index under a referrers tag are an image's platforms (someone
/// pushed a multi-platform image under that name) rather than referrers: an entry with a
/// `platform` and no `artifactType` is an image manifest of an image index.
pub(crate) fn holds_an_image(entries: &[Value]) -> bool {
    entries
        .iter()
        .any(|e| e.get("platform").is_some() && e.get("artifactType").is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_entries_without_an_artifact_type_are_an_image_not_referrers() {
        let image = serde_json::json!([{"digest": "sha256:a", "platform": {"os": "linux"}}]);
        let referrers = serde_json::json!([{"digest": "sha256:b", "artifactType": "a/b"}]);
        assert!(holds_an_image(image.as_array().unwrap()));
        assert!(!holds_an_image(referrers.as_array().unwrap()));
    }

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
