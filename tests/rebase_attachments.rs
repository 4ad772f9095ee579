//! `mockimg rebase` attaches what a fresh build attaches: a rebased image's SBOM and provenance
//! are the very documents (same digests) a fresh `mockimg build` of the same config on the new
//! base gives it — pushed to the real registry under the referrers tag, or written into an
//! archive beside the image — and `--no-sbom --no-provenance` attaches nothing. (Signing a
//! rebased image: tests/signing.rs.)
mod common;
use common::*;
use serde_json::Value;
use std::process::Command;

/// Build options a rebase carries over (read back from the image), so the attachments must
/// come out the same: a label, an env variable, --config-path (which the documents name).
const OPTIONS: &[&str] = &[
    "--label",
    "team=mocks",
    "--env",
    "IMPOSTER_LOG_LEVEL=DEBUG",
    "--config-path",
    "/srv/mocks",
];

/// The digest skopeo sees for a registry reference.
fn skopeo_digest(reference: &str) -> String {
    let raw = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{reference}"),
    ]);
    fixtures::sha256(raw.as_bytes())
}

/// The archive `build --output` wrote moves too: read from the file, written to a file, equal to
/// a fresh `build --output` on the patched base — its SBOM and provenance included — and
/// spec-clean.
#[test]
fn an_exported_archive_rebases_into_the_fresh_export_image_and_sbom() {
    let reg = Registry::start();
    let (old, new) = seed_releases(&reg, false, false);
    let env = Env::new();
    let d = tempfile::tempdir().unwrap();
    let export = |base: &str, file: &str| {
        let path = d.path().join(file);
        let run = env
            .run(&[
                "build",
                "examples/rest",
                "--base",
                base,
                "--label",
                "team=mocks",
                "--output",
                &path.display().to_string(),
                "--json",
            ])
            .ok();
        (path, json_of(&run))
    };
    let (old_tar, built) = export(&old, "old.tar");
    let (_, fresh) = export(&new, "fresh.tar");
    let out = d.path().join("rebased.tar");
    let run = env
        .run(&[
            "rebase",
            &format!("oci-archive:{}", old_tar.display()),
            "--base",
            &new,
            "--output",
            &out.display().to_string(),
            "--json",
        ])
        .ok();
    let rebased = json_of(&run);
    assert_eq!(rebased["digest"], fresh["digest"], "{}", run.stderr);
    ocicheck::assert_archive(&out);
    // skopeo reads the same image out of the file.
    let raw = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}", out.display()),
    ]);
    assert_eq!(fixtures::sha256(raw.as_bytes()), fresh["digest"]);
    // The fresh export's SBOM, byte for byte, and a provenance of its own (see above); none
    // of the old image's came along.
    let attached = attached_digests(&rebased);
    assert_eq!(attached.len(), 2, "{rebased}");
    assert_eq!(of_kind(&rebased, "sbom"), of_kind(&fresh, "sbom"));
    assert_ne!(
        of_kind(&rebased, "provenance"),
        of_kind(&fresh, "provenance")
    );
    let names: Vec<String> = tar_names(&out);
    for a in &attached {
        assert!(
            names.contains(&format!("blobs/sha256/{}", &a["sha256:".len()..])),
            "{a} is not in the archive"
        );
    }
    for a in attached_digests(&built) {
        assert!(
            !names.contains(&format!("blobs/sha256/{}", &a["sha256:".len()..])),
            "the old image's {a} came along"
        );
    }
}

fn json_of(run: &Run) -> Value {
    serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr))
}

/// The digests of the `attached` records of a `--json` outcome, sorted.
fn attached_digests(o: &Value) -> Vec<String> {
    let mut v: Vec<String> = o["attached"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["digest"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v.dedup();
    v
}

/// The names of the regular files of a tar.
fn tar_names(path: &std::path::Path) -> Vec<String> {
    let mut ar = tar::Archive::new(std::fs::File::open(path).unwrap());
    ar.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

/// The referrers `repo` lists for `digest` under its referrers tag: artifactType → manifest
/// digest (the real registry has no referrers API).
fn referrers(reg: &Registry, repo: &str, digest: &str) -> Vec<(String, String)> {
    let index = raw_manifest(&reg.reference(&format!("{repo}:{}", digest.replace(':', "-"))));
    let mut v: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["artifactType"].as_str().unwrap().to_string(),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// A GitHub Actions run: the provenance states it, so the rebase must read it as build does.
fn in_ci(env: Env) -> Env {
    env.set("GITHUB_ACTIONS", "true")
        .set("GITHUB_SERVER_URL", "https://github.com")
        .set("GITHUB_REPOSITORY", "team/mocks")
        .set("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
        .set("GITHUB_RUN_ID", "42")
}

fn build_json(env: &Env, base: &str, target: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "build",
        "examples/rest",
        "--base",
        base,
        "--push",
        target,
        "--json",
    ];
    args.extend(extra);
    json_of(&env.run(&args).ok())
}

/// The proof that a rebased image passes the policies a fresh build passes: its SBOM is the very
/// document (same digest) a fresh build of the same config on the new base attaches, and its
/// provenance agrees with the fresh build's on every statement it makes.
#[test]
fn a_rebased_image_carries_the_sbom_a_fresh_build_on_the_new_base_attaches_and_a_provenance_that_agrees(
) {
    let reg = Registry::start();
    let (old, new) = seed_releases(&reg, false, false);
    // The build ran in CI with SOURCE_DATE_EPOCH; the rebase runs in another CI job without it
    // (the time is recovered from the image).
    let epoch = in_ci(Env::new()).set("SOURCE_DATE_EPOCH", "1700000000");
    let env = in_ci(Env::new());
    let image = reg.reference("team/mocks:1.4");
    let built = build_json(&epoch, &old, &image, OPTIONS);
    let run = env
        .run(&["rebase", &image, "--base", &new, "--push", &image, "--json"])
        .ok();
    let rebased = json_of(&run);
    let digest = rebased["digest"].as_str().unwrap().to_string();
    assert_ne!(built["digest"], digest.as_str());
    let attached = attached_digests(&rebased);
    assert_eq!(attached.len(), 2, "{rebased}");
    for a in rebased["attached"].as_array().unwrap() {
        assert_eq!(a["subject"], digest.as_str(), "{a}");
        assert_eq!(a["repository"], format!("{}/team/mocks", reg.addr), "{a}");
    }
    let listed = referrers(&reg, "team/mocks", &digest);
    let mut listed_digests: Vec<String> = listed.iter().map(|(_, d)| d.clone()).collect();
    listed_digests.sort();
    assert_eq!(listed_digests, attached, "{listed:?}");

    // The SBOM names the new base, by digest, and the config layer's files.
    let (_, sbom_manifest) = listed
        .iter()
        .find(|(t, _)| t == "application/spdx+json")
        .expect("an SBOM");
    let m = raw_manifest(&format!("{}/team/mocks@{sbom_manifest}", reg.addr));
    let sbom: Value =
        serde_json::from_slice(&reg.blob("team/mocks", m["layers"][0]["digest"].as_str().unwrap()))
            .unwrap();
    let base_package = sbom["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["SPDXID"] == "SPDXRef-Package-base")
        .expect("a base package");
    assert_eq!(
        base_package["versionInfo"],
        digest_of(&skopeo_digest(&new)),
        "{sbom}"
    );
    assert_eq!(
        sbom["files"].as_array().unwrap().len(),
        files(&examples("rest")).len()
    );
    assert_eq!(sbom["creationInfo"]["created"], "2023-11-14T22:13:20Z");

    // A fresh build of the same config on the new base, into the same repository: the same
    // image and the same SBOM. Its provenance states what the rebase could not know (the
    // layer's excludes, gzip level, replace), so it is another document, agreeing on
    // everything the rebase states.
    let fresh = build_json(&epoch, &new, &reg.reference("team/mocks:fresh"), OPTIONS);
    assert_eq!(fresh["digest"], digest.as_str());
    assert_eq!(of_kind(&fresh, "sbom"), of_kind(&rebased, "sbom"));
    let statement = |o: &Value| -> Value {
        let m = raw_manifest(&format!(
            "{}/team/mocks@{}",
            reg.addr,
            of_kind(o, "provenance")
        ));
        serde_json::from_slice(&reg.blob("team/mocks", m["layers"][0]["digest"].as_str().unwrap()))
            .unwrap()
    };
    let (r, f) = (statement(&rebased), statement(&fresh));
    assert_eq!(r["subject"], f["subject"]);
    let (rb, fb) = (
        &r["predicate"]["buildDefinition"],
        &f["predicate"]["buildDefinition"],
    );
    assert_eq!(
        rb["resolvedDependencies"], fb["resolvedDependencies"],
        "{r}\n{f}"
    );
    assert_eq!(
        r["predicate"]["runDetails"]["byproducts"],
        f["predicate"]["runDetails"]["byproducts"]
    );
    for (k, v) in rb["externalParameters"].as_object().unwrap() {
        assert_eq!(
            &fb["externalParameters"][k], v,
            "externalParameters.{k}: {r}\n{f}"
        );
    }
    for k in ["excludes", "gzipLevel", "replace"] {
        assert!(
            rb["externalParameters"].get(k).is_none(),
            "a rebase does not know {k}: {r}"
        );
    }
}

/// The digest of the one attachment of `kind` in a `--json` outcome.
fn of_kind(o: &Value, kind: &str) -> String {
    let found: Vec<&str> = o["attached"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == kind)
        .map(|a| a["digest"].as_str().unwrap())
        .collect();
    assert!(!found.is_empty(), "no {kind} in {o}");
    assert!(found.iter().all(|d| *d == found[0]), "{o}");
    found[0].to_string()
}

#[test]
fn no_sbom_and_no_provenance_on_rebase_attach_nothing() {
    let reg = Registry::start();
    let (old, new) = seed_releases(&reg, true, false);
    let env = Env::new();
    let image = reg.reference("team/mocks:2");
    build_json(&env, &old, &image, &[]);
    let before = reg.requests().len();
    let run = env
        .run(&[
            "rebase",
            &image,
            "--base",
            &new,
            "--push",
            &image,
            "--no-sbom",
            "--no-provenance",
            "--json",
        ])
        .ok();
    let rebased = json_of(&run);
    assert!(rebased.get("attached").is_none(), "{rebased}");
    let tag = rebased["digest"].as_str().unwrap().replace(':', "-");
    let writes: Vec<String> = reg.requests()[before..]
        .iter()
        .filter(|r| r.starts_with("PUT ") && r.contains(&tag))
        .cloned()
        .collect();
    assert_eq!(writes, Vec::<String>::new());
    let o = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-I",
            &format!("http://{}/v2/team/mocks/manifests/{tag}", reg.addr),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "404",
        "no referrers tag"
    );
}
