//! Request counts of a push, read from the registry's own access log (not timed: the latency
//! figures live in `scripts/bench`). Upper bounds that the old client broke, so that a change
//! that brings back a probe per request, a HEAD before every mount or a rewrite of an unchanged
//! image shows here.
mod common;
use common::*;

fn count(log: &[String], method: &str, contains: &str) -> usize {
    log.iter()
        .filter(|r| r.starts_with(&format!("{method} ")) && r.contains(contains))
        .count()
}

/// The digest the registry serves for `reference`, read by skopeo.
fn served_digest(reference: &str) -> String {
    let raw = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            "--raw",
            &format!("docker://{reference}"),
        ])
        .output()
        .unwrap();
    assert!(raw.status.success(), "skopeo inspect {reference}");
    fixtures::sha256(&raw.stdout)
}

/// skopeo copies every platform: every blob and manifest the tag needs is there.
fn assert_complete(reference: &str) {
    let d = tempfile::tempdir().unwrap();
    skopeo(&[
        "copy",
        "--quiet",
        "--all",
        "--src-tls-verify=false",
        &format!("docker://{reference}"),
        &format!("oci:{}:x", d.path().join("l").display()),
    ]);
}

#[test]
fn a_cold_push_probes_once_mounts_without_asking_and_puts_the_index_once() {
    let reg = Registry::start();
    let env = Env::new();
    let base = seed_engine(&reg, false);
    let before = reg.requests().len();
    let target = reg.reference("team/mocks:1");
    let run = env
        .run(&["build", "examples/rest", "--base", &base, "--push", &target])
        .ok();
    let want = digest_of(&run.stdout);
    let log = reg.requests()[before..].to_vec();

    assert_eq!(count(&log, "GET", "/v2/ "), 0, "{log:#?}");
    assert!(
        log.iter().filter(|r| r.as_str() == "GET /v2/").count() <= 1,
        "one auth probe per registry per process: {log:#?}"
    );
    assert_eq!(
        count(&log, "HEAD", "/blobs/"),
        0,
        "a mount needs no HEAD first: {log:#?}"
    );
    let mounts = count(&log, "POST", "mount=");
    assert!(mounts >= 2, "base layers mounted: {log:#?}");
    // The index goes up once, by tag; the registry keeps it by digest too.
    assert_eq!(count(&log, "PUT", "/manifests/1"), 1, "{log:#?}");
    assert_eq!(count(&log, "PUT", &format!("/manifests/{want}")), 0);
    assert!(log.len() <= 30, "{} requests: {log:#?}", log.len());
    assert_eq!(served_digest(&target), want);
    assert_complete(&target);

    // Unchanged rebuild: the tag points at the image already; nothing is written.
    let before = reg.requests().len();
    let again = env
        .run(&["build", "examples/rest", "--base", &base, "--push", &target])
        .ok();
    assert_eq!(digest_of(&again.stdout), want);
    let log = reg.requests()[before..].to_vec();
    assert!(
        !log.iter()
            .any(|r| r.starts_with("PUT ") || r.starts_with("POST ")),
        "nothing written: {log:#?}"
    );
    assert!(log.len() <= 8, "{} requests: {log:#?}", log.len());
    assert_eq!(served_digest(&target), want);
}
