//! Issue 12: the image runs the way the engine and the Imposter CLI expect — engine names,
//! project files, environment, recursion, --config-path, warnings under --quiet/--strict, and
//! what an offline build says. (The runtime proofs are in tests/docker.rs.)
mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

const BASE: &str = "oci:testdata/engine-base:4.9.3";

fn write(dir: &Path, rel: &str, body: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

/// The image config (`config` object) of the amd64 image of the layout `dir`, via `inspect`.
fn image_env(env: &Env, layout: &Path) -> Vec<String> {
    let r = env
        .run(&["inspect", &format!("oci:{}:t", layout.display()), "--json"])
        .ok();
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    v["images"][0]["env"]
        .as_array()
        .map(|a| a.iter().map(|e| e.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn every_engine_name_is_accepted_and_an_unknown_one_is_a_usage_error_listing_them() {
    let env = Env::new();
    for name in [
        "docker",
        "docker-all",
        "docker-distroless",
        "jvm",
        "native",
        "golang",
        "core",
        "all",
        "distroless",
        "go",
        "unpacked",
    ] {
        let r = env.run(&["validate", "examples/rest", "--engine", name]);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
    }
    let r = env.run(&["validate", "examples/rest", "--engine", "podman"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("docker-distroless") && r.stderr.contains("golang"),
        "{}",
        r.stderr
    );

    let d = tempfile::tempdir().unwrap();
    write(d.path(), "mock-config.yaml", "plugin: rest\n");
    write(d.path(), "imposter-project.yaml", "engine: podman\n");
    for cmd in ["validate", "build"] {
        let r = env.run(&[cmd, d.path().to_str().unwrap()]);
        assert_eq!(r.code, 2, "{cmd}: {}", r.stderr);
        assert!(r.stderr.contains("project file"), "{}", r.stderr);
    }
}

#[test]
fn env_recursion_and_config_path_go_into_the_image_config() {
    let env = Env::new();
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "root-config.yaml", "plugin: rest\n");
    write(
        d.path(),
        "users/users-config.yaml",
        "plugin: rest\nresponse:\n  file: users.json\n",
    );
    write(d.path(), "users/users.json", "[]");
    write(
        d.path(),
        "imposter-project.yaml",
        "engine: docker\nenv:\n  IMPOSTER_LOG_LEVEL: INFO\n  FROM_FILE: yes\n",
    );
    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("layout");
    let dir = d.path().to_str().unwrap();
    // Without recursion the subdirectory config is warned about, and nothing is set for it.
    let r = env
        .run(&[
            "build",
            dir,
            "--base",
            BASE,
            "--oci-layout",
            layout.to_str().unwrap(),
            "--tag",
            "t:t",
        ])
        .ok();
    assert!(
        r.stderr
            .contains("not loaded by the engine without IMPOSTER_CONFIG_SCAN_RECURSIVE=true"),
        "{}",
        r.stderr
    );
    let e = image_env(&env, &layout);
    assert!(e.contains(&"IMPOSTER_LOG_LEVEL=INFO".to_string()), "{e:?}");
    assert!(
        !e.iter()
            .any(|v| v.starts_with("IMPOSTER_CONFIG_SCAN_RECURSIVE")),
        "{e:?}"
    );

    let layout2 = out.path().join("layout2");
    let r = env
        .run(&[
            "build",
            dir,
            "--base",
            BASE,
            "--oci-layout",
            layout2.to_str().unwrap(),
            "--tag",
            "t:t",
            "--recursive",
            "--env",
            "IMPOSTER_LOG_LEVEL=DEBUG",
            "--env",
            "EXTRA=a=b",
            "--config-path",
            "/mocks",
        ])
        .ok();
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
    let e = image_env(&env, &layout2);
    for want in [
        "IMPOSTER_LOG_LEVEL=DEBUG",
        "FROM_FILE=yes",
        "EXTRA=a=b",
        "IMPOSTER_CONFIG_SCAN_RECURSIVE=true",
    ] {
        assert!(e.contains(&want.to_string()), "{want}: {e:?}");
    }
    // The base is the JVM core image's shape: --configDir is rewritten and no variable is set,
    // since the launcher would add it to --configDir's dirs and load the config twice.
    assert!(
        !e.iter().any(|v| v.starts_with("IMPOSTER_CONFIG_DIR=")),
        "{e:?}"
    );
    assert_eq!(
        e.iter()
            .filter(|v| v.starts_with("IMPOSTER_LOG_LEVEL="))
            .count(),
        1
    );

    let bad = env.run(&["build", dir, "--base", BASE, "--env", "NOEQUALS"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

#[test]
fn quiet_silences_warnings_and_strict_makes_them_errors() {
    let env = Env::new();
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "wiremock-config.yaml", "plugin: wiremock\n");
    let dir = d.path().to_str().unwrap();
    let r = env.run(&["validate", dir]);
    assert_eq!(r.code, 0);
    assert!(
        r.stderr.contains(
            "warning: wiremock-config.yaml: plugin: plugin 'wiremock' is not in the core (JVM) image"
        ),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("use --engine docker-all"), "{}", r.stderr);
    let q = env.run(&["validate", dir, "--quiet"]);
    assert_eq!((q.code, q.stderr.as_str()), (0, ""));
    let s = env.run(&["validate", dir, "--strict"]);
    assert_eq!(s.code, 1, "{}", s.stderr);
    assert!(
        s.stderr.contains("error:") && s.stderr.contains("wiremock"),
        "{}",
        s.stderr
    );
    let out = d.path().join("x.tar");
    let b = env.run(&[
        "build",
        dir,
        "--base",
        BASE,
        "--output",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    assert_eq!(b.stderr, "");
    let b = env.run(&[
        "build",
        dir,
        "--base",
        BASE,
        "--output",
        out.to_str().unwrap(),
        "--strict",
    ]);
    assert_eq!(b.code, 1, "{}", b.stderr);
    assert!(
        env.run(&["validate", dir, "--engine", "docker-all", "--strict"])
            .code
            == 0
    );
}

#[test]
fn a_moving_version_warns_and_json_records_the_resolved_base() {
    let env = Env::new();
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "mock-config.yaml", "plugin: rest\n");
    write(d.path(), "imposter-project.yaml", "version: latest\n");
    let r = env.run(&["validate", d.path().to_str().unwrap()]);
    assert!(
        r.stderr
            .contains("docker.io/outofcoffee/imposter:latest is a moving tag"),
        "{}",
        r.stderr
    );
    assert_eq!(
        env.run(&["validate", d.path().to_str().unwrap(), "--strict"])
            .code,
        1
    );

    let out = d.path().join("x.tar");
    let r = env
        .build("examples/rest")
        .base(BASE)
        .output(&out)
        .args(["--json"])
        .run()
        .ok();
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["base"]["reference"], BASE);
    assert!(
        v["base"]["digest"].as_str().unwrap().starts_with("sha256:"),
        "{v}"
    );
}

#[test]
fn an_unreachable_base_is_named_in_full_with_the_offline_fix_and_not_retried() {
    let env = Env::new();
    let out = tempfile::tempdir().unwrap();
    let base = "registry.mockimg-test.invalid/outofcoffee/imposter-distroless:4.2.0";
    let r = env
        .build("examples/rest")
        .base(base)
        .output(&out.path().join("x.tar"))
        .args(["-v"])
        .run();
    assert_eq!(r.code, 1, "{}", r.stderr);
    let last = r.stderr.lines().last().unwrap();
    assert!(last.contains(base), "{last}");
    assert!(
        last.contains("--base oci-archive:imposter-distroless-4.2.0.tar"),
        "{last}"
    );
    let attempts = r
        .stderr
        .lines()
        .filter(|l| l.contains("GET https://registry.mockimg-test.invalid/v2/"))
        .count();
    assert_eq!(attempts, 1, "{}", r.stderr);
}

#[test]
fn project_files_never_ship_and_imposterignore_does_not_filter() {
    let env = Env::new();
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "mock-config.yaml",
        "plugin: rest\nresponse:\n  file: node_modules/x.json\n",
    );
    write(d.path(), "node_modules/x.json", "{}");
    for name in [
        "imposter-project.yaml",
        ".imposter.yml",
        ".imposter.json",
        ".imposter",
    ] {
        write(d.path(), name, "engine: docker\n");
    }
    let out = d.path().join("x.tar");
    let r = env
        .run(&[
            "build",
            d.path().to_str().unwrap(),
            "--base",
            BASE,
            "--output",
            out.to_str().unwrap(),
            "--json",
        ])
        .ok();
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        v["layer"]["files"], 2,
        "mock-config.yaml and node_modules/x.json: {v}"
    );
}

/// `--config-path` points each engine at the config exactly once: the JVM image's `--configDir`
/// argument alone (its launcher adds IMPOSTER_CONFIG_DIR's dirs to it), the Go image's
/// `IMPOSTER_CONFIG_DIR` alone (it has no arguments). Both bases carry the real images' run
/// settings (tests/common/fixtures.rs).
#[test]
fn config_path_sets_only_the_argument_on_the_jvm_shape_and_only_the_variable_on_the_go_shape() {
    let env = Env::new();
    let work = tempfile::tempdir().unwrap();
    let go_base = work.path().join("go-base");
    fixtures::write_layout(&go_base, &fixtures::go_like(), "5.21.3-beta");
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "mock-config.yaml", "plugin: rest\n");
    let dir = d.path().to_str().unwrap();
    let inspect = |layout: &Path| -> Value {
        let r = env
            .run(&["inspect", &format!("oci:{}:t", layout.display()), "--json"])
            .ok();
        serde_json::from_str::<Value>(&r.stdout).unwrap()["images"][0].clone()
    };
    for (base, engine) in [
        (BASE.to_string(), "docker"),
        (format!("oci:{}:5.21.3-beta", go_base.display()), "go"),
    ] {
        let out = work.path().join(format!("out-{engine}"));
        env.run(&[
            "build",
            dir,
            "--base",
            &base,
            "--engine",
            engine,
            "--oci-layout",
            out.to_str().unwrap(),
            "--tag",
            "t:t",
            "--config-path",
            "/mocks",
        ])
        .ok();
        let img = inspect(&out);
        let vars: Vec<&str> = img["env"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .filter(|v| v.starts_with("IMPOSTER_CONFIG_DIR="))
            .collect();
        let args = format!("{} {}", img["entrypoint"], img["cmd"]);
        if engine == "docker" {
            assert!(vars.is_empty(), "{vars:?}");
            assert!(args.contains("--configDir=/mocks"), "{args}");
        } else {
            assert_eq!(vars, ["IMPOSTER_CONFIG_DIR=/mocks"]);
            assert!(!args.contains("--configDir"), "{args}");
            assert_eq!(img["entrypoint"], serde_json::json!(["/imposter-go"]));
        }
    }
}
