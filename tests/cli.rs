//! Issue 7: the command line as people and CI jobs meet it — version, help, completions, exit
//! codes, `--json`, `--digest-file`, progress output, `-v` request logs, error lines and CI
//! annotations — against the real binary and the real registry.
mod common;
use common::*;
use std::process::Command;

const BASE: &str = "oci:testdata/engine-base:4.9.3";

/// The `error:` lines of a run's stderr.
fn error_lines(run: &Run) -> Vec<String> {
    run.stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .map(str::to_string)
        .collect()
}

#[test]
fn version_names_the_default_engine() {
    let env = Env::new();
    for flag in ["--version", "-V"] {
        let run = env.run(&[flag]).ok();
        assert_eq!(
            run.stdout.trim(),
            format!(
                "mockimg {} (default engine: outofcoffee/imposter:{})",
                env!("CARGO_PKG_VERSION"),
                mockimg::imposter::DEFAULT_ENGINE_VERSION
            ),
            "{flag}"
        );
    }
}

#[test]
fn help_has_examples_for_every_subcommand() {
    let env = Env::new();
    let top = env.run(&["--help"]).ok();
    assert!(top.stdout.contains("Examples:"), "{}", top.stdout);
    for sub in [
        "build",
        "push",
        "inspect",
        "validate",
        "bundle",
        "publish",
        "rebase",
        "completions",
    ] {
        assert!(top.stdout.contains(sub), "--help lists {sub}");
        let run = env.run(&[sub, "--help"]).ok();
        let examples = run
            .stdout
            .split_once("Examples:")
            .unwrap_or_else(|| panic!("{sub} --help has no examples:\n{}", run.stdout))
            .1;
        assert!(
            examples
                .lines()
                .any(|l| l.contains(&format!("mockimg {sub} "))),
            "{sub} --help examples don't run {sub}:\n{examples}"
        );
    }
}

#[test]
fn completions_for_bash_zsh_fish() {
    let env = Env::new();
    let bash = env.run(&["completions", "bash"]).ok();
    // Loads in a real bash and registers a completion for the command.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("mockimg.bash");
    std::fs::write(&script, &bash.stdout).unwrap();
    let o = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -e; source '{}'; complete -p mockimg",
            script.display()
        ))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("mockimg"));
    for flag in ["--push", "--digest-file", "--no-ci-annotations"] {
        assert!(bash.stdout.contains(flag), "bash completion lacks {flag}");
    }

    let zsh = env.run(&["completions", "zsh"]).ok();
    assert!(zsh.stdout.starts_with("#compdef mockimg"), "{}", zsh.stdout);
    assert!(zsh.stdout.contains("--oci-layout"));
    let fish = env.run(&["completions", "fish"]).ok();
    assert!(fish.stdout.contains("complete -c mockimg"));
    assert!(fish.stdout.contains("-l insecure-registry"));

    let bad = env.run(&["completions", "tcsh"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

#[test]
fn usage_errors_exit_2_failures_exit_1() {
    let env = Env::new();
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("m.tar");
    let tar = tar.to_str().unwrap();
    let usage: Vec<Vec<&str>> = vec![
        vec!["build", "--no-such-flag"],
        vec!["frobnicate"],
        vec!["push", "mocks.tar"],
        vec![
            "build",
            "examples/rest",
            "--base",
            BASE,
            "--output",
            tar,
            "--label",
            "novalue",
        ],
        vec![
            "build",
            "examples/rest",
            "--base",
            BASE,
            "--push",
            "Registry.Example.com/UPPER/case",
        ],
        vec!["build", "examples/rest", "--base", "nope:"],
        vec!["build", "examples/rest", "--compression-level", "11"],
    ];
    for args in usage {
        let run = env.run(&args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        assert!(
            run.stderr.trim_start().starts_with("error:"),
            "{args:?}: {}",
            run.stderr
        );
    }
    assert!(!std::path::Path::new(tar).exists(), "nothing written");

    // Not a usage error: the base archive is simply missing.
    let run = env
        .build("examples/rest")
        .base("oci-archive:/nonexistent/imposter.tar")
        .args(["--output", tar])
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let errors = error_lines(&run);
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    assert!(
        errors[0].contains("/nonexistent/imposter.tar"),
        "{errors:?}"
    );
}

#[test]
fn json_on_stdout_only_and_digest_file() {
    let env = Env::new();
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("mocks.tar");
    let digest_file = out.path().join("digest.txt");
    let run = env
        .build("examples/rest")
        .base(BASE)
        .output(&tar)
        .tag("team/mocks:1.4")
        .args(["--json", "--digest-file", digest_file.to_str().unwrap()])
        .run()
        .ok();
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let digest = v["digest"].as_str().unwrap();
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{v}");
    // Every recorded name, with --output only too (issue 14).
    assert_eq!(
        v["references"],
        serde_json::json!([format!("docker.io/team/mocks@{digest}")])
    );
    assert_eq!(
        v["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64/v8"])
    );
    for k in ["digest", "diff_id"] {
        assert!(v["layer"][k].as_str().unwrap().starts_with("sha256:"));
    }
    assert!(v["layer"]["size"].as_u64().unwrap() > 0);
    assert_eq!(v["layer"]["files"], 3);
    assert!(v.get("push").is_none(), "{v}");
    // The summary still goes to stderr, as one plain line.
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with("wrote 2 platforms to ") && l.contains("1 new layer")),
        "{}",
        run.stderr
    );

    // The digest is the one an independent tool computes for the written index.
    let raw = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}:1.4", tar.display()),
    ]);
    assert_eq!(fixtures::sha256(raw.as_bytes()), digest);
    assert_eq!(
        std::fs::read_to_string(&digest_file).unwrap(),
        format!("{digest}\n")
    );

    // Without --json: the digest alone on stdout; --quiet: nothing on stderr.
    let plain = env
        .build("examples/rest")
        .base(BASE)
        .output(&tar)
        .args(["--quiet"])
        .run()
        .ok();
    assert_eq!(plain.stdout, format!("{digest}\n"));
    assert_eq!(plain.stderr, "");
}

#[test]
fn push_json_and_plain_progress_off_a_terminal() {
    let reg = Registry::start();
    let env = Env::new();
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("mocks.tar");
    // The push counts (and shows progress for) the image's blobs; the attachments an archive
    // carries are tests/attached_files.rs's, so this one is written without them.
    env.build("examples/rest")
        .base(BASE)
        .output(&tar)
        .args(["--quiet", "--no-sbom", "--no-provenance"])
        .run()
        .ok();

    let target = reg.reference("air/mocks:1");
    let run = env
        .run(&["push", tar.to_str().unwrap(), &target, "--json"])
        .ok();
    let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let digest = v["digest"].as_str().unwrap().to_string();
    assert_eq!(
        v["references"],
        serde_json::json!([format!("{}/air/mocks@{digest}", reg.addr)])
    );
    // The count matches the uploads the registry itself saw.
    let uploaded = v["push"]["uploaded"].as_u64().unwrap();
    let puts = reg
        .requests()
        .iter()
        .filter(|r| r.starts_with("PUT /v2/air/mocks/blobs/uploads/"))
        .count();
    assert!(uploaded > 0);
    assert_eq!(uploaded as usize, puts, "{v}");
    assert_eq!(v["push"]["mounted"], 0);

    // Off a terminal: plain lines, no escape sequences or carriage returns.
    assert!(
        !run.stderr.contains('\x1b') && !run.stderr.contains('\r'),
        "{:?}",
        run.stderr
    );
    let upload_lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("uploaded sha256:"))
        .collect();
    assert_eq!(upload_lines.len() as u64, uploaded, "{}", run.stderr);
    assert!(upload_lines.iter().all(|l| l.contains("/s")));
    let summary = run.stderr.lines().last().unwrap();
    assert!(
        summary.starts_with(&format!("pushed 2 platforms, {uploaded} blobs uploaded ("))
            && summary.ends_with(" s"),
        "{summary}"
    );
    assert_eq!(
        raw_manifest(&target)["manifests"].as_array().unwrap().len(),
        2
    );

    // --quiet: no progress lines, no summary.
    let quiet = env
        .run(&[
            "push",
            tar.to_str().unwrap(),
            &reg.reference("air/quiet:1"),
            "-q",
        ])
        .ok();
    assert_eq!(quiet.stderr, "");
    assert_eq!(
        quiet.stdout.trim(),
        format!("{}/air/quiet@{digest}", reg.addr)
    );
}

#[test]
fn progress_bars_on_a_terminal() {
    let reg = Registry::start();
    let env = Env::new();
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("mocks.tar");
    env.build("examples/rest")
        .base(BASE)
        .output(&tar)
        .args(["-q"])
        .run()
        .ok();
    // `script` gives the command a pseudo-terminal and copies everything drawn on it.
    let cmdline = format!(
        "'{}' push '{}' '{}'",
        env!("CARGO_BIN_EXE_mockimg"),
        tar.display(),
        reg.reference("tty/mocks:1")
    );
    let mut c = Command::new("script");
    c.args(["-qec", &cmdline, "/dev/null"])
        .current_dir(REPO_ROOT)
        .env("TERM", "xterm");
    for (k, v) in &env.vars {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    let drawn = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{drawn}");
    assert!(drawn.contains('\x1b'), "no bars drawn: {drawn:?}");
    assert!(drawn.contains("uploading sha256:"), "{drawn:?}");
    assert!(drawn.contains("total"), "{drawn:?}");
    // The plain per-blob lines are for logs, not terminals; the summary stays.
    assert!(!drawn.contains("uploaded sha256:"), "{drawn:?}");
    assert!(drawn.contains("pushed 2 platforms, "), "{drawn:?}");
}

#[test]
fn verbose_logs_every_registry_request_without_secrets() {
    let password = "s3cret-never-shown";
    let reg = Registry::start_with_auth("ci", password);
    let base = seed(
        &reg,
        &fixtures::engine_like(false),
        "imposter:4.9.3",
        false,
        Some(&format!("ci:{password}")),
    );
    let env = Env::new()
        .set("MOCKIMG_REGISTRY_USERNAME", "ci")
        .set("MOCKIMG_REGISTRY_PASSWORD", password);
    let before = reg.requests().len();
    let run = env
        .build("examples/rest")
        .base(&base)
        .push(&reg.reference("team/mocks:v"))
        .args(["-v"])
        .run()
        .ok();
    let requests = reg.requests()[before..].to_vec();
    let logged: Vec<&str> = run
        .stderr
        .lines()
        .filter_map(|l| l.split_once("mockimg::http: ").map(|(_, r)| r))
        .collect();
    assert!(!logged.is_empty(), "{}", run.stderr);
    // Every request the registry saw has its line: method, full URL, status.
    let mut checked = 0;
    for r in &requests {
        let (method, uri) = r.split_once(' ').unwrap();
        let url = format!("http://{}{}", reg.addr, uri);
        let found = if method == "PUT" && uri.contains("/blobs/uploads/") {
            // The upload session id is the registry's; the line names the digest.
            let digest = uri.rsplit("digest=").next().unwrap().replace("%3A", ":");
            logged
                .iter()
                .any(|l| l.starts_with("PUT ") && l.contains(&digest) && l.ends_with(" 201"))
        } else {
            logged
                .iter()
                .any(|l| l.starts_with(&format!("{method} {url} ")))
        };
        assert!(found, "no -v line for {r}: {logged:#?}");
        checked += 1;
    }
    assert!(checked >= 6, "{requests:#?}");
    assert!(logged
        .iter()
        .all(|l| l.rsplit(' ').next().unwrap().parse::<u16>().is_ok()));
    assert!(!run.stderr.contains(password));
    assert!(!run.stderr.to_lowercase().contains("authorization:"));

    // -vv adds how long each request took, still without secrets.
    let run = env
        .build("examples/rest")
        .base(&base)
        .push(&reg.reference("team/mocks:v"))
        .args(["-vv"])
        .run()
        .ok();
    assert!(run.stderr.contains("answered in "), "{}", run.stderr);
    assert!(!run.stderr.contains(password));
}

#[test]
fn unauthorized_push_reads_as_one_line_with_the_fix() {
    let reg = Registry::start_with_auth("ci", "right-password");
    let env = Env::new();
    let target = reg.reference("team/mocks:1.4");
    let run = env.build("examples/rest").base(BASE).push(&target).run();
    assert_eq!(run.code, 1);
    assert_eq!(
        error_lines(&run),
        vec![format!(
            "error: pushing to {0}/team/mocks: 401 unauthorized — run 'mockimg login {0}' (or 'docker login {0}') or set MOCKIMG_REGISTRY_USERNAME/MOCKIMG_REGISTRY_PASSWORD for a push target",
            reg.addr
        )],
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());

    // Wrong credentials: the same shape, saying they were refused. Environment credentials go
    // to push targets only, or to the host MOCKIMG_REGISTRY names (as here, for a pull).
    let wrong = Env::new()
        .set("MOCKIMG_REGISTRY", &reg.addr)
        .set("MOCKIMG_REGISTRY_USERNAME", "ci")
        .set("MOCKIMG_REGISTRY_PASSWORD", "wrong-password");
    let run = wrong.run(&["inspect", &reg.reference("team/mocks:1.4")]);
    assert_eq!(run.code, 1);
    let errors = error_lines(&run);
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    assert!(
        errors[0].starts_with(&format!(
            "error: pulling {}/team/mocks:1.4: 401 unauthorized — the stored credentials were refused",
            reg.addr
        )),
        "{errors:?}"
    );
    assert!(!run.stderr.contains("wrong-password"));
}

fn pushed_annotations(env: &Env, reg: &Registry, tag: &str, extra: &[&str]) -> serde_json::Value {
    let target = reg.reference(tag);
    let mut args = vec!["build", "examples/rest", "--base", BASE, "--push", &target];
    args.extend(extra);
    env.run(&args).ok();
    let idx = raw_manifest(&target);
    let first = idx["manifests"][0]["digest"].as_str().unwrap().to_string();
    let m = raw_manifest(&format!("{}@{first}", target.rsplit_once(':').unwrap().0));
    // Index and every image manifest carry the same CI annotations.
    assert_eq!(
        strip_base(&idx["annotations"]),
        strip_base(&m["annotations"]),
        "{idx}\n{m}"
    );
    strip_base(&m["annotations"])
}

/// Only the org.opencontainers.image.{source,revision,created} keys.
fn strip_base(v: &serde_json::Value) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for k in ["source", "revision", "created"] {
        let key = format!("org.opencontainers.image.{k}");
        if let Some(x) = v.get(&key) {
            out.insert(key, x.clone());
        }
    }
    serde_json::Value::Object(out)
}

#[test]
fn ci_annotations_from_github_actions_and_gitlab_ci() {
    let reg = Registry::start();
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let event = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        event.path(),
        r#"{"head_commit": {"timestamp": "2026-01-02T03:04:05+01:00"}}"#,
    )
    .unwrap();
    let github = Env::new()
        .set("GITHUB_ACTIONS", "true")
        .set("GITHUB_SERVER_URL", "https://github.com")
        .set("GITHUB_REPOSITORY", "team/mocks")
        .set("GITHUB_SHA", sha)
        .set("GITHUB_EVENT_PATH", event.path().to_str().unwrap());
    assert_eq!(
        pushed_annotations(&github, &reg, "gh/mocks:1", &[]),
        serde_json::json!({
            "org.opencontainers.image.source": "https://github.com/team/mocks",
            "org.opencontainers.image.revision": sha,
            "org.opencontainers.image.created": "2026-01-02T02:04:05Z",
        })
    );
    // SOURCE_DATE_EPOCH wins over the commit time; opting out leaves none of them.
    let github = github.set("SOURCE_DATE_EPOCH", "1700000000");
    assert_eq!(
        pushed_annotations(&github, &reg, "gh/mocks:2", &[])["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
    assert_eq!(
        pushed_annotations(&github, &reg, "gh/mocks:3", &["--no-ci-annotations"]),
        serde_json::json!({})
    );

    let gitlab = Env::new()
        .set("GITLAB_CI", "true")
        .set("CI_PROJECT_URL", "https://gitlab.example.com/team/mocks")
        .set("CI_COMMIT_SHA", sha)
        .set("CI_COMMIT_TIMESTAMP", "2026-03-04T05:06:07+00:00");
    assert_eq!(
        pushed_annotations(&gitlab, &reg, "gl/mocks:1", &[]),
        serde_json::json!({
            "org.opencontainers.image.source": "https://gitlab.example.com/team/mocks",
            "org.opencontainers.image.revision": sha,
            "org.opencontainers.image.created": "2026-03-04T05:06:07Z",
        })
    );
    // Outside CI: nothing added.
    assert_eq!(
        pushed_annotations(&Env::new(), &reg, "local/mocks:1", &[]),
        serde_json::json!({})
    );
}
