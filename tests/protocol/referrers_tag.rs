//! The referrers tag (`sha256-<hex>`) and the referrers API at their edges, which the real
//! registry of the integration tier does not show: another writer of the tag between our read
//! and our write, a tag listing a referrer the registry no longer holds, someone's image index
//! under the tag, a paged referrers API, a referrers "API" that answers with something else,
//! one attachment of two refused, and a carried referrer written by another tool.
use super::{fake, run, with_base};
use crate::common::Env;
use fake::Resp;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const SPDX: &str = "application/spdx+json";
const IN_TOTO: &str = "application/vnd.in-toto+json";

/// `(repository, tag, subject digest)` of a request for a referrers tag.
fn referrers_tag(req: &fake::Req) -> Option<(String, String, String)> {
    let rest = req.path().strip_prefix("/v2/")?;
    let (repo, tag) = rest.split_once("/manifests/")?;
    let hex = tag.strip_prefix("sha256-")?;
    Some((repo.into(), tag.into(), format!("sha256:{hex}")))
}

/// Stores a referrer of `subject` another tool wrote (artifact type `kind`), returning its
/// referrers-index entry.
fn foreign(st: &mut fake::State, subject: &str, kind: &str) -> Value {
    let m = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": kind,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                   "digest": fake::sha256(b"{}"), "size": 2},
        "layers": [],
        "subject": {"mediaType": INDEX, "digest": subject, "size": 1},
    });
    let bytes = serde_json::to_vec(&m).unwrap();
    let d = fake::sha256(&bytes);
    st.blobs.insert(d.clone(), bytes.clone());
    json!({"mediaType": MANIFEST, "digest": d, "size": bytes.len(), "artifactType": kind})
}

/// Tags `repo:tag` with the index listing `entries`.
fn put_index(st: &mut fake::State, repo: &str, tag: &str, entries: Vec<Value>) {
    let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries});
    let bytes = serde_json::to_vec(&index).unwrap();
    let d = fake::sha256(&bytes);
    st.blobs.insert(d.clone(), bytes);
    st.tags.insert((repo.into(), tag.into()), d);
}

/// The entries of the referrers tag of `subject` in `team/mocks`.
fn tag_entries(reg: &fake::Fake, subject: &str) -> Vec<Value> {
    let st = reg.state.lock().unwrap();
    let d = &st.tags[&("team/mocks".to_string(), subject.replacen(':', "-", 1))];
    let v: Value = serde_json::from_slice(&st.blobs[d]).unwrap();
    v["manifests"].as_array().unwrap().clone()
}

fn listed(entries: &[Value], digest: &str) -> bool {
    entries.iter().any(|e| e["digest"] == digest)
}

fn build(reg: &fake::Fake) -> crate::common::Run {
    run(
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
    )
}

fn ok_json(out: &crate::common::Run) -> Value {
    assert_eq!(out.code, 0, "{}", out.stderr);
    serde_json::from_str(out.stdout.trim()).unwrap()
}

fn attached(out: &Value) -> Vec<String> {
    out["attached"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_writer_replacing_the_referrers_tag_between_our_read_and_write_keeps_its_entries() {
    let swapped = Arc::new(AtomicBool::new(false));
    let theirs = Arc::new(std::sync::Mutex::new(None::<String>));
    let (reg, _) = {
        let (swapped, theirs) = (swapped.clone(), theirs.clone());
        with_base(move |req, st| {
            let (repo, tag, subject) = referrers_tag(req)?;
            let key = (repo.clone(), tag.clone());
            // An earlier run's referrer is listed already …
            if req.method == "HEAD" && !st.tags.contains_key(&key) {
                let earlier = foreign(st, &subject, "application/vnd.example.earlier");
                put_index(st, &repo, &tag, vec![earlier]);
            }
            // … and as we write, another push of the same image writes its own entry. The fake
            // then answers our PUT as the registry does (412 when it was conditional).
            if req.method == "PUT" && !swapped.swap(true, Ordering::SeqCst) {
                let d = &st.tags[&key];
                let v: Value = serde_json::from_slice(&st.blobs[d]).unwrap();
                let mut entries = v["manifests"].as_array().unwrap().clone();
                let other = foreign(st, &subject, "application/vnd.example.other-run");
                *theirs.lock().unwrap() = Some(other["digest"].as_str().unwrap().to_string());
                entries.push(other);
                put_index(st, &repo, &tag, entries);
            }
            None
        })
    };
    let out = ok_json(&build(&reg));
    let subject = out["digest"].as_str().unwrap();
    let entries = tag_entries(&reg, subject);
    let theirs = theirs
        .lock()
        .unwrap()
        .clone()
        .expect("the other writer wrote");
    assert!(listed(&entries, &theirs), "their entry lost: {entries:#?}");
    for d in attached(&out) {
        assert!(listed(&entries, &d), "ours lost: {entries:#?}");
    }
    assert_eq!(entries.len(), 4, "{entries:#?}");
    // Our write named what it had read.
    let seen = reg.seen();
    let conditional = seen
        .iter()
        .filter(|(r, _)| r.method == "PUT" && referrers_tag(r).is_some())
        .map(|(r, s)| (r.header("if-match").is_some(), *s))
        .collect::<Vec<_>>();
    assert_eq!(conditional, [(true, 412), (true, 201)]);
}

#[test]
fn a_registry_ignoring_if_match_has_our_entries_written_again_when_another_push_took_them_out() {
    let ours_put = Arc::new(AtomicBool::new(false));
    let swapped = Arc::new(AtomicBool::new(false));
    let (reg, _) = {
        let (ours_put, swapped) = (ours_put.clone(), swapped.clone());
        with_base(move |req, st| {
            let (repo, tag, subject) = referrers_tag(req)?;
            // Every PUT of the tag stored as it comes, whatever it is conditional on.
            if req.method == "PUT" {
                let d = fake::sha256(&req.body);
                st.blobs.insert(d.clone(), req.body.clone());
                st.tags.insert((repo, tag), d.clone());
                ours_put.store(true, Ordering::SeqCst);
                return Some(Resp::new(201).header("Docker-Content-Digest", &d));
            }
            // Another push that read the tag before our write writes after it: our entries
            // are gone from what our read-back finds.
            if ours_put.load(Ordering::SeqCst) && !swapped.swap(true, Ordering::SeqCst) {
                let other = foreign(st, &subject, "application/vnd.example.other-run");
                put_index(st, &repo, &tag, vec![other]);
            }
            None
        })
    };
    let out = ok_json(&build(&reg));
    let entries = tag_entries(&reg, out["digest"].as_str().unwrap());
    assert_eq!(entries.len(), 3, "{entries:#?}");
    assert!(entries
        .iter()
        .any(|e| e["artifactType"] == "application/vnd.example.other-run"));
    for d in attached(&out) {
        assert!(listed(&entries, &d), "ours lost: {entries:#?}");
    }
}

#[test]
fn a_referrers_tag_listing_a_deleted_referrer_is_written_without_it_and_the_push_succeeds() {
    let gone = fake::sha256(b"a referrer deleted since");
    let (reg, _) = {
        let gone = gone.clone();
        with_base(move |req, st| {
            let (repo, tag, subject) = referrers_tag(req)?;
            if req.method == "HEAD" && !st.tags.contains_key(&(repo.clone(), tag.clone())) {
                let kept = foreign(st, &subject, "application/vnd.example.kept");
                let stale = json!({"mediaType": MANIFEST, "digest": gone, "size": 300,
                                   "artifactType": "application/vnd.example.deleted"});
                put_index(st, &repo, &tag, vec![stale, kept]);
            }
            // As distribution checks an index: every manifest it lists must be held.
            if req.method == "PUT" {
                let v: Value = serde_json::from_slice(&req.body).ok()?;
                let unknown = v["manifests"]
                    .as_array()?
                    .iter()
                    .any(|e| !st.blobs.contains_key(e["digest"].as_str().unwrap_or("")));
                return unknown.then(|| {
                    Resp::new(400)
                        .header("Content-Type", "application/json")
                        .body(r#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#)
                });
            }
            None
        })
    };
    let out = build(&reg);
    let json = ok_json(&out);
    let entries = tag_entries(&reg, json["digest"].as_str().unwrap());
    assert!(!listed(&entries, &gone), "{entries:#?}");
    assert!(entries
        .iter()
        .any(|e| e["artifactType"] == "application/vnd.example.kept"));
    for d in attached(&json) {
        assert!(listed(&entries, &d), "{entries:#?}");
    }
    assert!(
        out.stderr.contains(&gone) && out.stderr.contains("no longer holds"),
        "the dropped entry is named: {}",
        out.stderr
    );
}

#[test]
fn someones_image_index_under_the_referrers_tag_is_refused_naming_the_tag_without_push_again() {
    let (reg, _) = with_base(|req, st| {
        let (repo, tag, _) = referrers_tag(req)?;
        if req.method == "HEAD" && !st.tags.contains_key(&(repo.clone(), tag.clone())) {
            let platform = json!({"mediaType": MANIFEST, "digest": fake::sha256(b"amd64"),
                                  "size": 500, "platform": {"os": "linux", "architecture": "amd64"}});
            put_index(st, &repo, &tag, vec![platform]);
        }
        None
    });
    let out = build(&reg);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let last = out.stderr.lines().last().unwrap();
    assert!(
        last.contains("team/mocks:sha256-")
            && last.contains("holds an image index")
            && last.contains("move that image off the tag"),
        "{last}"
    );
    assert!(!last.contains("push again"), "{last}");
}

/// The referrers API, `per_page` entries a page linked by `Link`, over the manifests the fake
/// stored that name the subject.
fn paged_api(per_page: usize) -> impl Fn(&fake::Req, &mut fake::State) -> Option<Resp> {
    move |req, st| {
        if req.method == "GET" && req.path().contains("/referrers/") {
            let subject = req.path().rsplit('/').next()?.to_string();
            let mut entries: Vec<Value> = st
                .blobs
                .iter()
                .filter_map(|(d, b)| {
                    let v: Value = serde_json::from_slice(b).ok()?;
                    (v["subject"]["digest"] == subject.as_str()).then(|| {
                        json!({"mediaType": v["mediaType"], "digest": d, "size": b.len(),
                               "artifactType": v["artifactType"]})
                    })
                })
                .collect();
            entries.sort_by(|a, b| a["digest"].as_str().cmp(&b["digest"].as_str()));
            let page: usize = req.query("page").and_then(|p| p.parse().ok()).unwrap_or(0);
            let chunk: Vec<Value> = entries
                .iter()
                .skip(page * per_page)
                .take(per_page)
                .cloned()
                .collect();
            let mut resp = Resp::new(200).header("Content-Type", INDEX);
            if (page + 1) * per_page < entries.len() {
                resp = resp.header(
                    "Link",
                    &format!("<{}?page={}>; rel=\"next\"", req.path(), page + 1),
                );
            }
            let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": chunk});
            return Some(resp.body(index.to_string()));
        }
        if req.method != "PUT" || !req.path().contains("/manifests/sha256:") {
            return None;
        }
        let v: Value = serde_json::from_slice(&req.body).ok()?;
        let subject = v.get("subject")?["digest"].as_str()?.to_string();
        let d = fake::sha256(&req.body);
        st.blobs.insert(d.clone(), req.body.clone());
        Some(
            Resp::new(201)
                .header("Docker-Content-Digest", &d)
                .header("OCI-Subject", &subject),
        )
    }
}

fn writes_since(reg: &fake::Fake, before: usize) -> Vec<String> {
    reg.requests()[before..]
        .iter()
        .filter(|r| r.starts_with("PUT ") || r.starts_with("POST "))
        .cloned()
        .collect()
}

#[test]
fn every_page_of_the_referrers_api_is_read_so_a_listed_attachment_is_not_pushed_again() {
    let (reg, _) = with_base(paged_api(1));
    let first = ok_json(&build(&reg));
    assert_eq!(attached(&first).len(), 2, "{first}");
    let before = reg.requests().len();
    let again = ok_json(&build(&reg));
    for a in again["attached"].as_array().unwrap() {
        assert_eq!(a["via"], "referrers API", "{a}");
    }
    let writes = writes_since(&reg, before);
    assert!(writes.is_empty(), "{writes:#?}");
    // The second page was asked for.
    assert!(reg
        .seen()
        .iter()
        .any(|(r, _)| r.target.contains("/referrers/") && r.target.contains("page=1")));
}

#[test]
fn a_referrers_answer_that_is_not_an_oci_index_is_read_as_no_referrers_api() {
    // A registry (or a proxy in front of it) answering any path with a page of its own.
    let (reg, _) = with_base(|req, _| {
        (req.method == "GET" && req.path().contains("/referrers/")).then(|| {
            Resp::new(200)
                .header("Content-Type", "text/html")
                .body("<html>welcome</html>")
        })
    });
    let first = ok_json(&build(&reg));
    let tag = first["digest"].as_str().unwrap().replace(':', "-");
    let before = reg.requests().len();
    let again = ok_json(&build(&reg));
    for a in again["attached"].as_array().unwrap() {
        assert_eq!(a["via"], format!("referrers tag {tag}"), "{a}");
    }
    let writes = writes_since(&reg, before);
    assert!(writes.is_empty(), "{writes:#?}");
}

#[test]
fn a_refused_sbom_leaves_the_provenance_listed_in_the_referrers_tag_and_names_only_the_sbom() {
    let (reg, _) = with_base(|req, _| {
        let refused = req.method == "PUT"
            && serde_json::from_slice::<Value>(&req.body).is_ok_and(|v| v["artifactType"] == SPDX);
        refused.then(|| {
            Resp::new(403)
                .header("Content-Type", "application/json")
                .body(r#"{"errors":[{"code":"DENIED","message":"no sboms here"}]}"#)
        })
    });
    let out = build(&reg);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let last = out.stderr.lines().last().unwrap();
    assert!(
        last.contains("attaching the sbom (application/spdx+json) to")
            && !last.contains("provenance (")
            && last.contains("the image was pushed without its sbom"),
        "{last}"
    );
    let st = reg.state.lock().unwrap();
    let (_, d) = st
        .tags
        .iter()
        .find(|((r, t), _)| r == "team/mocks" && t.starts_with("sha256-"))
        .expect("the referrers tag was written");
    let v: Value = serde_json::from_slice(&st.blobs[d]).unwrap();
    let types: Vec<&Value> = v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["artifactType"])
        .collect();
    assert_eq!(types, [IN_TOTO], "{v}");
}

#[test]
fn mockimg_push_carries_a_referrer_without_artifact_type_listed_by_its_config_media_type() {
    let (reg, _) = with_base(|_, _| None);
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let built = env
        .build("examples/rest")
        .base(&reg.reference("imposter:4.9.3"))
        .oci_layout(&layout)
        .args(["--json"])
        .run();
    let built = ok_json(&built);
    let subject = built["digest"].as_str().unwrap();
    // A signature another tool put beside the image: no `artifactType`, a config of its own.
    let config = br#"{"tool":"other"}"#;
    let config_type = "application/vnd.example.signature.config.v1+json";
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": config_type, "digest": fake::sha256(config), "size": config.len()},
        "layers": [],
        "subject": {"mediaType": INDEX, "digest": subject, "size": 1},
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    for b in [&config[..], &manifest[..]] {
        let hex = fake::sha256(b).replace("sha256:", "");
        std::fs::write(layout.join("blobs/sha256").join(hex), b).unwrap();
    }
    let out = env.run(&[
        "push",
        &format!("oci:{}", layout.display()),
        &reg.reference("team/mocks:1"),
        "--json",
    ]);
    let pushed = ok_json(&out);
    let entries = tag_entries(&reg, pushed["digest"].as_str().unwrap_or(subject));
    let theirs = entries
        .iter()
        .find(|e| e["digest"] == fake::sha256(&manifest).as_str())
        .unwrap_or_else(|| panic!("not listed: {entries:#?}"));
    assert_eq!(theirs["artifactType"], config_type);
    assert_eq!(entries.len(), 3, "{entries:#?}");
}

#[test]
fn mockimg_push_of_a_refused_sbom_says_to_leave_it_out_with_no_sbom_and_that_pushes_the_rest() {
    let (reg, _) = with_base(|req, _| {
        let refused = req.method == "PUT"
            && serde_json::from_slice::<Value>(&req.body).is_ok_and(|v| v["artifactType"] == SPDX);
        refused.then(|| {
            Resp::new(403)
                .header("Content-Type", "application/json")
                .body(r#"{"errors":[{"code":"DENIED","message":"no sboms here"}]}"#)
        })
    });
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    ok_json(
        &env.build("examples/rest")
            .base(&reg.reference("imposter:4.9.3"))
            .oci_layout(&layout)
            .args(["--json"])
            .run(),
    );
    let source = format!("oci:{}", layout.display());
    let target = reg.reference("team/mocks:1");
    let out = env.run(&["push", &source, &target]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let last = out.stderr.lines().last().unwrap();
    assert!(
        last.contains(
            "the image was pushed without its sbom (push again, or leave it out with --no-sbom)"
        ),
        "{last}"
    );
    // Its advice works: the provenance alone goes along.
    let again = ok_json(&env.run(&["push", &source, &target, "--no-sbom", "--json"]));
    let kinds: Vec<&Value> = again["attached"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["artifactType"])
        .collect();
    assert_eq!(kinds, [IN_TOTO], "{again}");
}

#[test]
fn a_refused_shared_empty_config_names_every_attachment_it_leaves_out() {
    // The empty config (`{}`) is every attachment's: refusing it leaves all of them out.
    let empty = fake::sha256(b"{}");
    let (reg, _) = with_base(move |req, _| {
        (req.path().ends_with(&format!("/blobs/{empty}"))
            || req.query("digest").as_deref() == Some(empty.as_str()))
        .then(|| {
            Resp::new(403)
                .header("Content-Type", "application/json")
                .body(r#"{"errors":[{"code":"DENIED","message":"no"}]}"#)
        })
    });
    let out = build(&reg);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let last = out.stderr.lines().last().unwrap();
    assert!(
        last.contains(&format!(
            "attaching the sbom ({SPDX}) and provenance ({IN_TOTO})"
        )) && last.contains("the image was pushed without them"),
        "{last}"
    );
    assert!(
        super::complete(&reg, "team/mocks", "1"),
        "the image is in place"
    );
}
