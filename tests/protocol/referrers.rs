//! Attachments on a registry with the referrers API: a manifest PUT carrying a `subject` is
//! answered with `OCI-Subject`, so mockimg leaves the referrers tag alone; one without it gets
//! the tag schema's index. (The real registry of the integration tier has no referrers API, so
//! this is where the API path is proven.)
use super::{fake, run, with_base};
use crate::common::Env;
use fake::Resp;

/// Referrer manifests the fake stored: (digest, manifest), those naming a `subject`.
fn referrers(reg: &fake::Fake) -> Vec<(String, serde_json::Value)> {
    let st = reg.state.lock().unwrap();
    st.blobs
        .iter()
        .filter_map(|(d, b)| {
            let v: serde_json::Value = serde_json::from_slice(b).ok()?;
            v.get("subject")?;
            v.get("artifactType")?;
            Some((d.clone(), v))
        })
        .collect()
}

fn build(reg: &fake::Fake) -> serde_json::Value {
    let out = run(
        &Env::new(),
        &[
            "build",
            "examples/rest",
            "--base",
            &reg.reference("imposter:4.9.3"),
            "--push",
            &reg.reference("team/mocks:1"),
            "--json",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    serde_json::from_str(out.stdout.trim()).unwrap()
}

#[test]
fn a_registry_answering_oci_subject_indexes_the_attachments_and_no_referrers_tag_is_written() {
    let (reg, _) = with_base(|req, st| {
        // The referrers API: GET lists the stored manifests naming the subject …
        if req.method == "GET" && req.path().contains("/referrers/") {
            let subject = req.path().rsplit('/').next()?.to_string();
            let mut entries: Vec<serde_json::Value> = st
                .blobs
                .iter()
                .filter_map(|(d, b)| {
                    let v: serde_json::Value = serde_json::from_slice(b).ok()?;
                    (v["subject"]["digest"] == subject.as_str() && v.get("artifactType").is_some())
                        .then(|| {
                            serde_json::json!({
                                "mediaType": v["mediaType"], "digest": d, "size": b.len(),
                                "artifactType": v["artifactType"],
                            })
                        })
                })
                .collect();
            entries.sort_by(|a, b| a["digest"].as_str().cmp(&b["digest"].as_str()));
            let index = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": entries,
            });
            return Some(
                Resp::new(200)
                    .header("Content-Type", "application/vnd.oci.image.index.v1+json")
                    .body(index.to_string()),
            );
        }
        // … and a manifest with a subject is stored and acknowledged.
        if req.method != "PUT" || !req.path().contains("/manifests/sha256:") {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&req.body).ok()?;
        let subject = v.get("subject")?["digest"].as_str()?.to_string();
        let d = fake::sha256(&req.body);
        st.blobs.insert(d.clone(), req.body.clone());
        Some(
            Resp::new(201)
                .header("Docker-Content-Digest", &d)
                .header("OCI-Subject", &subject),
        )
    });
    let out = build(&reg);
    let digest = out["digest"].as_str().unwrap();
    let attached = out["attached"].as_array().unwrap();
    assert_eq!(attached.len(), 2, "{out}");
    for a in attached {
        assert_eq!(a["via"], "referrers API", "{a}");
        assert_eq!(a["subject"], digest);
    }
    let stored = referrers(&reg);
    let mut types: Vec<&str> = stored
        .iter()
        .map(|(_, v)| v["artifactType"].as_str().unwrap())
        .collect();
    types.sort_unstable();
    assert_eq!(
        types,
        ["application/spdx+json", "application/vnd.in-toto+json"]
    );
    for (d, v) in &stored {
        assert_eq!(v["subject"]["digest"], digest);
        assert!(attached.iter().any(|a| a["digest"] == d.as_str()));
    }
    let tag = digest.replace(':', "-");
    assert!(
        !reg.requests().iter().any(|r| r.contains(&tag)),
        "the referrers tag was touched: {:#?}",
        reg.requests()
    );
    // Built again: the API lists both, so nothing is written.
    let before = reg.requests().len();
    let again = build(&reg);
    for a in again["attached"].as_array().unwrap() {
        assert_eq!(a["via"], "referrers API", "{a}");
    }
    let writes: Vec<String> = reg.requests()[before..]
        .iter()
        .filter(|r| r.starts_with("PUT ") || r.starts_with("POST "))
        .cloned()
        .collect();
    assert!(writes.is_empty(), "{writes:#?}");
}

#[test]
fn a_registry_without_oci_subject_gets_the_referrers_tag_index() {
    let (reg, _) = with_base(|_, _| None);
    let out = build(&reg);
    let digest = out["digest"].as_str().unwrap();
    let tag = digest.replace(':', "-");
    for a in out["attached"].as_array().unwrap() {
        assert_eq!(a["via"], format!("referrers tag {tag}"), "{a}");
    }
    let st = reg.state.lock().unwrap();
    let index = &st.blobs[&st.tags[&("team/mocks".to_string(), tag)]];
    let index: serde_json::Value = serde_json::from_slice(index).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{index}");
    assert_eq!(entries[0]["artifactType"], "application/spdx+json");
    assert_eq!(entries[1]["artifactType"], "application/vnd.in-toto+json");
}

#[test]
fn a_refused_attachment_fails_the_run_naming_it_and_the_image_stays_pushed() {
    // The registry refuses any manifest that names a subject (a policy against referrers).
    let (reg, _) = with_base(|req, _| {
        let refused = req.method == "PUT"
            && serde_json::from_slice::<serde_json::Value>(&req.body)
                .is_ok_and(|v| v.get("subject").is_some());
        refused.then(|| {
            Resp::new(403)
                .header("Content-Type", "application/json")
                .body(r#"{"errors":[{"code":"DENIED","message":"no referrers here"}]}"#)
        })
    });
    let out = run(
        &Env::new(),
        &[
            "build",
            "examples/rest",
            "--base",
            &reg.reference("imposter:4.9.3"),
            "--push",
            &reg.reference("team/mocks:1"),
        ],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let last = out.stderr.lines().last().unwrap();
    // Both manifests were refused: the line names both, not the first alone.
    assert!(
        last.contains(
            "attaching the sbom (application/spdx+json) and provenance \
             (application/vnd.in-toto+json)"
        ) && last.contains("the image was pushed without them"),
        "{last}"
    );
    assert!(
        super::complete(&reg, "team/mocks", "1"),
        "the image itself is in place"
    );
}
