//! Credentials stay with their registry: the environment's go to push targets only, `login`
//! stores what `build`/`push` then use, Podman's auth file is read. Each registry has its own
//! token server, which records which user (or "anonymous"/"rejected") asked it for a token.
mod common;
use common::*;
use std::io::Write;
use std::process::Stdio;

fn login(env: &Env, host: &str, user: &str, password: &str) -> Run {
    let mut c = env.command(env!("CARGO_BIN_EXE_mockimg"));
    c.args(["login", host, "-u", user, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    Run::from(child.wait_with_output().unwrap())
}

fn who_asked(ts: &token::TokenServer) -> Vec<String> {
    ts.requests
        .lock()
        .unwrap()
        .iter()
        .map(|(w, _)| w.clone())
        .collect()
}

#[test]
fn environment_credentials_reach_the_push_registry_and_never_the_base_registry() {
    let (base_reg, base_ts) = Registry::start_with_token("publisher", "base-pass");
    let base = seed(
        &base_reg,
        &fixtures::engine_like(false),
        "imposter:4.9.3",
        false,
        Some("publisher:base-pass"),
    );
    let (target_reg, target_ts) = Registry::start_with_token("ci", "ci-job-token");
    let env = Env::new()
        .set("MOCKIMG_REGISTRY_USERNAME", "ci")
        .set("MOCKIMG_REGISTRY_PASSWORD", "ci-job-token");
    let target = target_reg.reference("team/mocks:1");
    base_ts.requests.lock().unwrap().clear();
    let run = env
        .build("examples/rest")
        .base(&base)
        .push(&target)
        .run()
        .ok();
    let base_users = who_asked(&base_ts);
    assert!(
        !base_users.is_empty(),
        "the base registry was asked for a token"
    );
    assert!(
        base_users.iter().all(|w| w == "anonymous"),
        "the CI token went to the base registry: {base_users:?}"
    );
    let target_users = who_asked(&target_ts);
    assert!(
        target_users.iter().any(|w| w == "ci") && !target_users.iter().any(|w| w == "rejected"),
        "{target_users:?}"
    );
    for out in [&run.stdout, &run.stderr] {
        assert!(!out.contains("ci-job-token"), "secret printed");
    }

    // MOCKIMG_REGISTRY names the one host they are for: then even the push target gets none.
    let elsewhere = env.set("MOCKIMG_REGISTRY", "registry.example").run(&[
        "build",
        "examples/rest",
        "--base",
        &base,
        "--push",
        &target,
    ]);
    assert_eq!(elsewhere.code, 1, "{}", elsewhere.stderr);
    assert!(
        elsewhere.stderr.contains("mockimg login"),
        "{}",
        elsewhere.stderr
    );
}

#[test]
fn login_checks_and_stores_credentials_that_push_then_uses_and_logout_removes() {
    let (reg, ts) = Registry::start_with_token("ci", "right-pass");
    let base = seed_engine_with(&reg, "ci:right-pass");
    let env = Env::new();
    let config = env.home.path().join(".docker/config.json");

    let bad = login(&env, &reg.addr, "ci", "wrong-pass");
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    assert!(
        bad.stderr.contains(&reg.addr) && bad.stderr.contains("refused"),
        "{}",
        bad.stderr
    );
    assert!(!bad.stderr.contains("wrong-pass"), "secret printed");
    assert!(!config.exists(), "refused credentials were stored");
    assert!(who_asked(&ts).contains(&"rejected".to_string()));

    let good = login(&env, &reg.addr, "ci", "right-pass").ok();
    assert!(!good.stderr.contains("right-pass") && !good.stdout.contains("right-pass"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert!(v["auths"][&reg.addr]["auth"].is_string(), "{v}");

    let target = reg.reference("team/mocks:login");
    env.build("examples/rest")
        .base(&base)
        .push(&target)
        .run()
        .ok();
    skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        "ci:right-pass",
        &format!("docker://{target}"),
    ]);

    env.run(&["logout", &reg.addr]).ok();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert!(v["auths"].get(&reg.addr).is_none(), "{v}");
    let denied = env.build("examples/rest").base(&base).push(&target).run();
    assert_eq!(denied.code, 1, "{}", denied.stderr);
    assert!(denied.stderr.contains("mockimg login"), "{}", denied.stderr);
}

#[test]
fn podman_auth_file_is_read() {
    let (reg, ts) = Registry::start_with_token("ci", "podman-pass");
    let base = seed_engine_with(&reg, "ci:podman-pass");
    let runtime = tempfile::tempdir().unwrap();
    let dir = runtime.path().join("containers");
    std::fs::create_dir_all(&dir).unwrap();
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("ci:podman-pass");
    std::fs::write(
        dir.join("auth.json"),
        serde_json::json!({"auths": {reg.addr.clone(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let env = Env::new().set("XDG_RUNTIME_DIR", runtime.path().to_str().unwrap());
    env.build("examples/rest")
        .base(&base)
        .push(&reg.reference("team/mocks:podman"))
        .run()
        .ok();
    assert!(who_asked(&ts).contains(&"ci".to_string()));
}

fn seed_engine_with(reg: &Registry, creds: &str) -> String {
    seed(
        reg,
        &fixtures::engine_like(false),
        "imposter:4.9.3",
        false,
        Some(creds),
    )
}

fn auths_of(file: &std::path::Path) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let mut k: Vec<String> = v["auths"].as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn logout_removes_every_key_the_lookup_would_use_for_the_host() {
    let env = Env::new();
    let dir = env.home.path().join(".docker");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.json");
    let e = serde_json::json!({"auth": "dTpw"});
    std::fs::write(
        &config,
        serde_json::json!({"auths": {
            "r.example:5000": e, "http://r.example:5000": e, "https://r.example:5000": e,
            "https://r.example:5000/v1/": e, "other.example": e,
            "https://index.docker.io/v1/": e, "docker.io": e, "registry-1.docker.io": e,
        }})
        .to_string(),
    )
    .unwrap();
    let run = env.run(&["logout", "r.example:5000"]).ok();
    assert!(run.stderr.contains("removed"), "{}", run.stderr);
    assert_eq!(
        auths_of(&config),
        [
            "docker.io",
            "https://index.docker.io/v1/",
            "other.example",
            "registry-1.docker.io"
        ]
    );
    env.run(&["logout", "docker.io"]).ok();
    assert_eq!(auths_of(&config), ["other.example"]);
}

#[test]
fn login_writes_through_a_symlinked_config_json() {
    let reg = Registry::start();
    let env = Env::new();
    let dotfiles = env.home.path().join("dotfiles");
    std::fs::create_dir_all(&dotfiles).unwrap();
    std::fs::write(
        dotfiles.join("docker.json"),
        r#"{"auths": {"other.example": {"auth": "dTpw"}}}"#,
    )
    .unwrap();
    let dir = env.home.path().join(".docker");
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("config.json");
    std::os::unix::fs::symlink("../dotfiles/docker.json", &link).unwrap();
    login(&env, &reg.addr, "ci", "pw").ok();
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        auths_of(&dotfiles.join("docker.json")),
        [reg.addr.clone(), "other.example".into()]
    );
    env.run(&["logout", &reg.addr]).ok();
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(auths_of(&dotfiles.join("docker.json")), ["other.example"]);
}

#[test]
fn login_names_the_podman_file_whose_stale_entry_wins() {
    let reg = Registry::start();
    let runtime = tempfile::tempdir().unwrap();
    let podman = runtime.path().join("containers/auth.json");
    std::fs::create_dir_all(podman.parent().unwrap()).unwrap();
    use base64::Engine as _;
    let stale = base64::engine::general_purpose::STANDARD.encode("old:stale-pass");
    std::fs::write(
        &podman,
        serde_json::json!({"auths": {reg.addr.clone(): {"auth": stale}}}).to_string(),
    )
    .unwrap();
    let env = Env::new().set("XDG_RUNTIME_DIR", runtime.path().to_str().unwrap());
    let run = login(&env, &reg.addr, "ci", "new-pass").ok();
    let notes: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains(podman.to_str().unwrap()))
        .collect();
    assert_eq!(notes.len(), 1, "{}", run.stderr);
    assert!(notes[0].contains(&reg.addr), "{}", notes[0]);
    for secret in ["new-pass", "stale-pass", &stale] {
        assert!(
            !run.stderr.contains(secret),
            "secret printed: {}",
            run.stderr
        );
    }
    // Without a competing file, nothing is said about other files.
    let plain = Env::new();
    let run = login(&plain, &reg.addr, "ci", "new-pass").ok();
    assert!(!run.stderr.contains("auth.json"), "{}", run.stderr);
}

#[test]
fn a_symlinked_oci_layout_fails_up_front_once() {
    let env = Env::new();
    let d = tempfile::tempdir().unwrap();
    let real = d.path().join("real");
    std::fs::create_dir_all(&real).unwrap();
    let link = d.path().join("layout");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let run = env
        .build("examples/rest")
        .base("oci:testdata/engine-base:4.9.3")
        .oci_layout(&link)
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("symlink"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    assert!(errors[0].starts_with("error: ") && errors[0].contains(link.to_str().unwrap()));
    // Up front: nothing was built or copied, the link and its directory are untouched.
    assert!(!run.stderr.contains("copied"), "{}", run.stderr);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_dir(&real).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 2);
}
