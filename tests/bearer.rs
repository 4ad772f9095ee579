//! The bearer-token flow against the real registry in `auth: token` mode: pull anonymously, push
//! with docker-config credentials, and cross-repository mounts that need pull on the source.
mod common;
use common::*;

#[test]
fn token_auth_push_mounts_base_layers() {
    let password = "t0ken-flow-secret";
    let (reg, ts) = Registry::start_with_token("ci", password);
    let base = seed(
        &reg,
        &fixtures::engine_like(false),
        "imposter:4.9.3",
        false,
        Some(&format!("ci:{password}")),
    );
    let env = Env::new();
    env.docker_login(&reg.addr, "ci", password);
    let target = reg.reference("team/mocks:bearer");
    let before = reg.requests_with_status().len();
    let run = env
        .build("examples/rest")
        .base(&base)
        .push(&target)
        .args(["-v"])
        .run()
        .ok();
    let d = digest_of(&run.stdout);
    let idx: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        "--creds",
        &format!("ci:{password}"),
        &format!("docker://{target}"),
    ]))
    .unwrap();
    assert_eq!(
        fixtures::sha256(&serde_json::to_vec(&idx).unwrap()).len(),
        d.len()
    );
    assert_eq!(idx["manifests"].as_array().unwrap().len(), 2);

    let log = reg.requests_with_status()[before..].to_vec();
    let mounted = log
        .iter()
        .filter(|(r, s)| {
            r.starts_with("POST /v2/team/mocks/blobs/uploads/") && r.contains("mount=") && *s == 201
        })
        .count();
    assert_eq!(
        mounted, 4,
        "every base layer mounted with a token that can pull the source: {log:#?}"
    );
    let base_gets = log
        .iter()
        .filter(|(r, _)| r.starts_with("GET /v2/imposter/blobs/"))
        .count();
    assert_eq!(
        base_gets, 2,
        "only the two configs are read from the base: {log:#?}"
    );
    let reqs = ts.requests.lock().unwrap().clone();
    assert!(reqs.iter().all(|(who, _)| who == "ci"), "{reqs:?}");
    for out in [&run.stdout, &run.stderr] {
        assert!(!out.contains(password), "secret printed");
    }

    // Anonymous: the token server grants pull only, so inspecting works and pushing fails clearly.
    let anon = Env::new();
    let i = anon.run(&["inspect", &base, "--json"]).ok();
    assert!(i.stdout.contains("linux/arm64"));
    let denied = anon
        .build("examples/rest")
        .base(&base)
        .push(&reg.reference("team/mocks:anon"))
        .run();
    assert_eq!(denied.code, 1, "{}", denied.stderr);
    assert!(denied.stderr.contains(&reg.addr), "{}", denied.stderr);
    assert!(denied.stderr.contains("docker login"), "{}", denied.stderr);
    assert_eq!(
        denied
            .stderr
            .trim()
            .lines()
            .filter(|l| l.starts_with("error:"))
            .count(),
        1,
        "{}",
        denied.stderr
    );
}

#[test]
fn a_refused_token_for_a_hinted_repository_falls_back_to_the_base_repository() {
    let password = "t0ken-flow-secret";
    let (reg, ts) = Registry::start_with_token("ci", password);
    let base = seed(
        &reg,
        &fixtures::engine_like(false),
        "imposter:4.9.3",
        false,
        Some(&format!("ci:{password}")),
    );
    ts.refuse.lock().unwrap().push("private/held".into());
    let env = Env::new();
    env.docker_login(&reg.addr, "ci", password);
    let target = reg.reference("team/hinted:1");
    let before = reg.requests_with_status().len();
    let run = env
        .build("examples/rest")
        .base(&base)
        .push(&target)
        .args(["--mount-from", "private/held", "--json"])
        .run()
        .ok();
    let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(v["push"]["mounted"], 4, "{v}");
    let tokens = ts.requests.lock().unwrap().clone();
    assert!(
        tokens
            .iter()
            .any(|(who, scopes)| who == "denied"
                && scopes.iter().any(|s| s.contains("private/held"))),
        "the wide token was asked for and refused: {tokens:?}"
    );
    let log = reg.requests_with_status()[before..].to_vec();
    assert!(
        !log.iter().any(|(r, _)| r.contains("from=private")),
        "no mount tried from a repository the token cannot read: {log:#?}"
    );
}
