//! Request counts of a push, read from the registry's own access log (not timed: the latency
//! figures live in `scripts/bench`). Upper bounds that the old client broke, so that a change
//! that brings back a probe per request, a HEAD before every mount or a rewrite of an unchanged
//! image shows here. The image's own requests are counted: the builds leave attachments off
//! (`--no-sbom --no-provenance`), which are pushed after the image and tested in
//! tests/attachments.rs.
mod common;
use common::proxy::{Proxy, Seen};
use common::*;
use std::time::Duration;

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
        .run(&[
            "build",
            "examples/rest",
            "--base",
            &base,
            "--push",
            &target,
            "--no-sbom",
            "--no-provenance",
        ])
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
        .run(&[
            "build",
            "examples/rest",
            "--base",
            &base,
            "--push",
            &target,
            "--no-sbom",
            "--no-provenance",
        ])
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

/// Requests on the critical path, as a delaying proxy's log shows them: a request that starts a
/// full delay after the wave before it began starts a new wave (requests of one wave start
/// together, so work between requests can only make this read low, never high).
fn waves(mut seen: Vec<Seen>, delay: Duration) -> usize {
    seen.sort_by_key(|s| s.at);
    let mut waves = 0;
    let mut start: Option<Duration> = None;
    for s in &seen {
        if start.is_none_or(|w| s.at >= w + delay) {
            waves += 1;
            start = Some(s.at);
        }
    }
    waves
}

#[test]
fn a_cold_push_and_a_push_to_a_new_repository_of_a_registry_holding_the_base_take_eight_round_trips(
) {
    let a = Registry::start();
    let b = Registry::start();
    seed_engine(&a, false);
    let (pa, pb) = (Proxy::start(&a.addr), Proxy::start(&b.addr));
    let delay = Duration::from_millis(200);
    let env = Env::new();
    let base = pa.reference("imposter:4.9.3");
    let since = |p: &Proxy, n: usize| p.seen()[n..].to_vec();

    // Cold: a new repository on the base's registry.
    pa.set_delay(delay);
    let n = pa.seen().len();
    env.run(&[
        "build",
        "examples/rest",
        "--base",
        &base,
        "--push",
        &pa.reference("team/cold:1"),
        "--no-sbom",
        "--no-provenance",
    ])
    .ok();
    let log = since(&pa, n);
    assert!(waves(log.clone(), delay) <= 8, "{log:#?}");

    // Registry B got the base with an earlier push (another mock, repository team/x); a mock
    // pushed to a new repository there mounts it from team/x: the same eight.
    pa.set_delay(Duration::ZERO);
    env.run(&[
        "build",
        "examples/soap",
        "--base",
        &base,
        "--push",
        &pb.reference("team/x:1"),
    ])
    .ok();
    pa.set_delay(delay);
    pb.set_delay(delay);
    let (na, nb) = (pa.seen().len(), pb.seen().len());
    env.run(&[
        "build",
        "examples/rest",
        "--base",
        &base,
        "--push",
        &pb.reference("team/new:1"),
        "--no-sbom",
        "--no-provenance",
    ])
    .ok();
    let (la, lb) = (since(&pa, na), since(&pb, nb));
    let mut both = la.clone();
    both.extend(lb.clone());
    assert!(waves(both, delay) <= 8, "{la:#?}\n{lb:#?}");
    let mounts = lb
        .iter()
        .filter(|s| s.method == "POST" && s.path.contains("from=team/x"))
        .count();
    assert_eq!(mounts, 4, "every base layer mounted from team/x: {lb:#?}");
    // No base layer left registry A: only manifests and the two configs were read there.
    let blob_gets = la
        .iter()
        .filter(|s| s.method == "GET" && s.path.contains("/blobs/"))
        .count();
    assert_eq!(blob_gets, 2, "{la:#?}");
}
