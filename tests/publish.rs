//! `mockimg publish` against a real S3 implementation (moto, started per test on a loopback
//! port), a fault proxy in front of it, moto's Lambda, and a `file://` directory.
mod common;
use common::moto::{Moto, SECRET_KEY};
use common::proxy::{self, Proxy};
use common::*;
use std::path::Path;

const BUCKET: &str = "mocks";
const RECORD: &str = ".mockimg-publish.json";

/// The REST example plus a script, a text file and a symlink: every kind the sync handles.
fn config_tree() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let src = examples("rest");
    for (rel, bytes) in files(&src) {
        let to = d.path().join(&rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, bytes).unwrap();
    }
    std::fs::write(d.path().join("notes.txt"), "not config\n").unwrap();
    std::fs::create_dir_all(d.path().join("scripts")).unwrap();
    std::fs::write(
        d.path().join("scripts/route.groovy"),
        "respond().withStatusCode(200)\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("pets.json", d.path().join("responses/alias.json")).unwrap();
    d
}

fn s3_to(prefix: &str) -> String {
    format!("s3://{BUCKET}/{prefix}")
}

fn publish(env: &Env, dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["publish", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    env.run(&args)
}

fn json(run: Run) -> serde_json::Value {
    let run = run.ok();
    serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: stdout {:?} stderr {:?}", run.stdout, run.stderr))
}

fn counts(v: &serde_json::Value) -> (u64, u64, u64) {
    (
        v["uploaded"].as_u64().unwrap(),
        v["unchanged"].as_u64().unwrap(),
        v["deleted"].as_u64().unwrap(),
    )
}

fn record(m: &Moto, prefix: &str) -> serde_json::Value {
    let (b, _) = m
        .get(BUCKET, &format!("{prefix}/{RECORD}"))
        .expect("publish record");
    serde_json::from_slice(&b).unwrap()
}

#[test]
fn first_publish_uploads_every_file_byte_for_byte_with_a_record() {
    let m = Moto::start();
    m.create_bucket(BUCKET);
    let d = config_tree();
    let env = m.env(Env::new());
    let v = json(publish(
        &env,
        d.path(),
        &["--to", &s3_to("team/rest"), "--json"],
    ));
    let local = files(d.path());
    assert_eq!(counts(&v), (local.len() as u64 + 1, 0, 0), "{v}");
    assert_eq!(v["to"], "s3://mocks/team/rest");
    let mut want: Vec<String> = local.keys().map(|k| format!("team/rest/{k}")).collect();
    want.push(format!("team/rest/{RECORD}"));
    want.push("team/rest/responses/alias.json".into());
    want.sort();
    assert_eq!(m.keys(BUCKET), want);
    for (rel, bytes) in &local {
        let (got, _) = m.get(BUCKET, &format!("team/rest/{rel}")).unwrap();
        assert_eq!(&got, bytes, "{rel}");
    }
    let (alias, _) = m.get(BUCKET, "team/rest/responses/alias.json").unwrap();
    assert_eq!(
        alias, local["responses/pets.json"],
        "a symlink goes up as its target's bytes"
    );
    let (_, ct) = m.get(BUCKET, "team/rest/hello-config.yaml").unwrap();
    assert_eq!(ct, "application/yaml");
    let (_, ct) = m.get(BUCKET, "team/rest/responses/pets.json").unwrap();
    assert_eq!(ct, "application/json");
    let rec = record(&m, "team/rest");
    assert_eq!(rec["digest"], v["digest"]);
    assert_eq!(rec["engine"], "docker");
    assert_eq!(rec["version"], "4.9.3");
    assert_eq!(
        rec["files"]["responses/pets.json"],
        fixtures::sha256(&local["responses/pets.json"]).trim_start_matches("sha256:")
    );
}

#[test]
fn unchanged_republish_uploads_nothing() {
    let m = Moto::start();
    m.create_bucket(BUCKET);
    let d = config_tree();
    let env = m.env(Env::new());
    let first = json(publish(&env, d.path(), &["--to", &s3_to("p"), "--json"]));
    let again = publish(&env, d.path(), &["--to", &s3_to("p")]).ok();
    let n = files(d.path()).len() + 1;
    assert!(
        again.stderr.contains(&format!(
            "published {n} files to s3://mocks/p: 0 uploaded, {n} unchanged, 0 deleted"
        )),
        "{}",
        again.stderr
    );
    assert_eq!(again.stdout.trim(), first["digest"].as_str().unwrap());
}

#[test]
fn change_add_and_remove_are_synced_exactly() {
    let m = Moto::start();
    m.create_bucket(BUCKET);
    let d = config_tree();
    let env = m.env(Env::new());
    let first = json(publish(&env, d.path(), &["--to", &s3_to("p"), "--json"]));
    std::fs::write(d.path().join("responses/pets.json"), "[]\n").unwrap();
    std::fs::write(d.path().join("responses/new.json"), "{\"n\":1}\n").unwrap();
    std::fs::remove_file(d.path().join("notes.txt")).unwrap();
    let v = json(publish(&env, d.path(), &["--to", &s3_to("p"), "--json"]));
    // pets.json and the alias pointing at it changed; new.json is new.
    assert_eq!(counts(&v).0, 3, "{v}");
    assert_eq!(counts(&v).2, 1, "{v}");
    assert_ne!(v["digest"], first["digest"]);
    assert_eq!(m.get(BUCKET, "p/responses/pets.json").unwrap().0, b"[]\n");
    assert!(m.get(BUCKET, "p/responses/new.json").is_some());
    assert!(m.get(BUCKET, "p/notes.txt").is_none());
    let rec = record(&m, "p");
    assert_eq!(rec["digest"], v["digest"]);
    assert!(rec["files"].get("notes.txt").is_none());
}

#[test]
fn foreign_objects_are_kept_and_removed_only_with_delete() {
    let m = Moto::start();
    m.create_bucket(BUCKET);
    m.put(BUCKET, "p/theirs.json", b"{}");
    m.put(BUCKET, "other/keep.json", b"{}");
    let d = config_tree();
    let env = m.env(Env::new());
    json(publish(&env, d.path(), &["--to", &s3_to("p"), "--json"]));
    assert!(m.get(BUCKET, "p/theirs.json").is_some());
    let v = json(publish(
        &env,
        d.path(),
        &["--to", &s3_to("p"), "--delete", "--json"],
    ));
    assert_eq!(counts(&v).2, 1, "{v}");
    assert!(m.get(BUCKET, "p/theirs.json").is_none());
    assert!(
        m.get(BUCKET, "other/keep.json").is_some(),
        "outside the prefix"
    );
    assert!(m.get(BUCKET, &format!("p/{RECORD}")).is_some());
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let m = Moto::start();
    m.create_bucket(BUCKET);
    m.put(BUCKET, "p/theirs.json", b"{}");
    let d = config_tree();
    let env = m.env(Env::new());
    let r = publish(
        &env,
        d.path(),
        &["--to", &s3_to("p"), "--delete", "--dry-run"],
    )
    .ok();
    assert!(
        r.stdout.contains("upload hello-config.yaml"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("delete theirs.json"), "{}", r.stdout);
    assert!(r.stderr.contains("would publish"), "{}", r.stderr);
    assert_eq!(m.keys(BUCKET), ["p/theirs.json"]);
}

#[test]
fn invalid_config_uploads_nothing() {
    let m = Moto::start();
    m.create_bucket(BUCKET);
    let d = config_tree();
    std::fs::write(
        d.path().join("broken-config.yaml"),
        "plugin: rest\nresources:\n  - path: /x\n    response:\n      file: missing.json\n",
    )
    .unwrap();
    let env = m.env(Env::new());
    let r = publish(&env, d.path(), &["--to", &s3_to("p")]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("missing.json"), "{}", r.stderr);
    assert!(m.keys(BUCKET).is_empty());
}

#[test]
fn missing_bucket_is_one_line_naming_the_bucket_and_the_fix() {
    let m = Moto::start();
    let d = config_tree();
    let env = m.env(Env::new());
    let r = publish(&env, d.path(), &["--to", "s3://no-such-bucket/p"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", r.stderr);
    assert!(lines[0].contains("s3://no-such-bucket"), "{}", r.stderr);
    assert!(
        lines[0].contains("does not exist")
            && lines[0].contains("create it (aws s3 mb s3://no-such-bucket)"),
        "{}",
        r.stderr
    );
}

#[test]
fn wrong_credentials_fail_clearly_without_printing_the_secret() {
    let m = Moto::start_with_auth();
    let d = config_tree();
    let env = m.env(Env::new());
    let r = publish(&env, d.path(), &["--to", &s3_to("p"), "-vv"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("access denied"), "{}", r.stderr);
    assert!(r.stderr.contains("AWS_ACCESS_KEY_ID"), "{}", r.stderr);
    assert!(!r.stderr.contains(SECRET_KEY) && !r.stdout.contains(SECRET_KEY));
}

#[test]
fn a_503_on_an_upload_is_retried() {
    let m = Moto::start();
    m.create_bucket(BUCKET);
    let p = Proxy::start(&m.addr);
    p.rule("PUT", "/mocks/p/hello-config.yaml", 2, proxy::status(503));
    let d = config_tree();
    let env = m.env_for(Env::new(), &format!("http://{}", p.addr));
    let v = json(publish(&env, d.path(), &["--to", &s3_to("p"), "--json"]));
    assert_eq!(p.injected().len(), 2, "{:?}", p.requests());
    assert_eq!(counts(&v).2, 0);
    assert_eq!(
        m.get(BUCKET, "p/hello-config.yaml").unwrap().0,
        files(d.path())["hello-config.yaml"]
    );
}

#[test]
fn lambda_function_gets_config_dir_and_revision_and_keeps_other_variables() {
    let m = Moto::start();
    m.create_bucket(BUCKET);
    m.create_function(
        "petstore-mock",
        "java21",
        serde_json::json!({"JAVA_TOOL_OPTIONS": "-Xmx512m", "IMPOSTER_LOG_LEVEL": "DEBUG"}),
    );
    let d = config_tree();
    let env = m.env(Env::new());
    let v = json(publish(
        &env,
        d.path(),
        &[
            "--to",
            &s3_to("p"),
            "--lambda-function",
            "petstore-mock",
            "--json",
        ],
    ));
    let vars = m.function_env("petstore-mock");
    assert_eq!(vars["IMPOSTER_CONFIG_DIR"], "s3://mocks/p");
    assert_eq!(vars["MOCKIMG_CONFIG_REVISION"], v["digest"]);
    assert_eq!(vars["JAVA_TOOL_OPTIONS"], "-Xmx512m");
    assert_eq!(vars["IMPOSTER_LOG_LEVEL"], "DEBUG");

    m.create_function("py-fn", "python3.12", serde_json::json!({}));
    let r = publish(
        &env,
        d.path(),
        &["--to", &s3_to("p"), "--lambda-function", "py-fn"],
    )
    .ok();
    assert!(r.stderr.contains("python3.12 does not fit"), "{}", r.stderr);
}

#[test]
fn digest_equals_the_image_layer_diff_id() {
    let m = Moto::start();
    m.create_bucket(BUCKET);
    let d = config_tree();
    let env = m.env(Env::new());
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("img.tar");
    let built = json(env.run(&[
        "build",
        d.path().to_str().unwrap(),
        "--base",
        "oci:testdata/engine-base:4.9.3",
        "--output",
        tar.to_str().unwrap(),
        "--json",
    ]));
    let v = json(publish(&env, d.path(), &["--to", &s3_to("p"), "--json"]));
    assert_eq!(v["digest"], built["layer"]["diff_id"]);
}

#[test]
fn file_target_mirrors_the_tree() {
    let d = config_tree();
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("published");
    let to = format!("file://{}", target.display());
    let env = Env::new();
    let v = json(publish(&env, d.path(), &["--to", &to, "--json"]));
    assert_eq!(v["to"], to);
    let mut want = files(d.path());
    want.insert(
        "responses/alias.json".into(),
        want["responses/pets.json"].clone(),
    );
    let mut got = files(&target);
    let rec = got.remove(RECORD).expect("record");
    assert_eq!(got, want);
    let rec: serde_json::Value = serde_json::from_slice(&rec).unwrap();
    assert_eq!(rec["digest"], v["digest"]);
    let again = json(publish(&env, d.path(), &["--to", &to, "--json"]));
    assert_eq!(counts(&again).0, 0);
}

#[test]
fn lambda_flag_needs_an_s3_target() {
    let d = config_tree();
    let r = Env::new().run(&[
        "publish",
        d.path().to_str().unwrap(),
        "--to",
        "file:///tmp/x",
        "--lambda-function",
        "f",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("s3://"), "{}", r.stderr);
}

#[test]
fn lambda_publish_for_the_go_engine_is_refused_before_anything_is_uploaded() {
    let m = Moto::start();
    m.create_bucket(BUCKET);
    m.create_function("go-fn", "provided.al2023", serde_json::json!({}));
    m.create_function("java-fn", "java21", serde_json::json!({}));
    let d = config_tree();
    let env = m.env(Env::new());
    // Validated for the Go engine: a usage error, whatever the function runs.
    let r = publish(
        &env,
        d.path(),
        &[
            "--to",
            &s3_to("p"),
            "--lambda-function",
            "java-fn",
            "--engine",
            "go",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("reads no S3 config") && r.stderr.contains("mockimg bundle"),
        "{}",
        r.stderr
    );
    // A custom runtime runs the Go engine: refused after reading the function.
    let r = publish(
        &env,
        d.path(),
        &["--to", &s3_to("p"), "--lambda-function", "go-fn"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("provided.al2023") && r.stderr.contains("mockimg bundle"),
        "{}",
        r.stderr
    );
    assert!(
        m.keys(BUCKET).is_empty(),
        "nothing uploaded: {:?}",
        m.keys(BUCKET)
    );
    assert_eq!(m.function_env("go-fn").get("IMPOSTER_CONFIG_DIR"), None);
}
