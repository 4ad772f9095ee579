//! Issue 4: validation gates builds and bundles; ignore rules shape the layer; Lambda bundles
//! from the CLI, read back with Python's zipfile as an independent reader.
mod common;
use common::*;
use std::path::Path;
use std::process::Command;

fn copy_tree(from: &Path, to: &Path) {
    for (k, v) in files(from) {
        let p = to.join(&k);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, v).unwrap();
    }
}

/// Entry names of the config layer (the last layer) of a `--output` archive.
fn layer_entries(archive: &Path) -> Vec<String> {
    let d = tempfile::tempdir().unwrap();
    let st = Command::new("tar")
        .arg("xf")
        .arg(archive)
        .arg("-C")
        .arg(d.path())
        .status()
        .unwrap();
    assert!(st.success());
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.path().join("manifest.json")).unwrap()).unwrap();
    let last = m[0]["Layers"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    let out = Command::new("tar")
        .arg("tzf")
        .arg(d.path().join(last))
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn validate_command_accepts_examples_and_rejects_broken_config() {
    let env = Env::new();
    for ex in ["rest", "openapi", "soap"] {
        let r = env.run(&["validate", &format!("examples/{ex}")]);
        assert_eq!(r.code, 0, "{ex}: {}", r.stderr);
    }
    env.run(&["validate", "examples", "--recursive"]).ok();
    let top = env.run(&["validate", "examples"]);
    assert_eq!(
        top.code, 1,
        "no top-level config without --recursive: {}",
        top.stderr
    );

    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("api-config.yaml"),
        "plugin: rest\nresources:\n  - path: /x\n    response:\n      file: missing.json\n",
    )
    .unwrap();
    let r = env.run(&["validate", d.path().to_str().unwrap(), "--json"]);
    assert_eq!(r.code, 1);
    let j: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(j["ok"], false);
    assert!(
        j["findings"][0]["key"]
            .as_str()
            .unwrap()
            .contains("response.file"),
        "{j}"
    );

    // build runs validation first: nothing is written when it fails, --no-validate skips it.
    let out = d.path().join("out.tar");
    let b = env.run(&[
        "build",
        d.path().to_str().unwrap(),
        "--base",
        "oci:testdata/engine-base:4.9.3",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(b.code, 1);
    assert!(b.stderr.contains("missing.json"), "{}", b.stderr);
    assert!(
        b.stderr
            .lines()
            .last()
            .unwrap()
            .starts_with("error: config validation failed"),
        "{}",
        b.stderr
    );
    assert!(!out.exists());
    env.run(&[
        "build",
        d.path().to_str().unwrap(),
        "--base",
        "oci:testdata/engine-base:4.9.3",
        "--output",
        out.to_str().unwrap(),
        "--no-validate",
    ])
    .ok();
    assert!(out.exists());
}

#[test]
fn ignore_rules_and_symlinks_shape_the_layer() {
    let env = Env::new();
    let d = tempfile::tempdir().unwrap();
    copy_tree(&examples("rest"), d.path());
    let p = d.path();
    std::fs::create_dir_all(p.join(".git")).unwrap();
    std::fs::write(p.join(".git/HEAD"), "ref: main").unwrap();
    std::fs::write(p.join(".imposter.yaml"), "version: 4.9.3\nengine: core\n").unwrap();
    std::fs::write(p.join("imposter-project.yml"), "engine: docker\n").unwrap();
    std::fs::write(p.join(".env"), "IMPOSTER_LOG_LEVEL=DEBUG\n").unwrap();
    std::fs::write(p.join(".imposterignore"), "*.bak\n").unwrap();
    std::fs::write(p.join("old.bak"), "x").unwrap();
    std::fs::create_dir_all(p.join("drafts")).unwrap();
    std::fs::write(p.join("drafts/wip.json"), "{}").unwrap();
    std::os::unix::fs::symlink("responses/pets.json", p.join("alias.json")).unwrap();
    let out = p.join("../mockimg-layer-test.tar");
    let _ = std::fs::remove_file(&out);
    env.run(&[
        "build",
        p.to_str().unwrap(),
        "--base",
        "oci:testdata/engine-base:4.9.3",
        "--output",
        out.to_str().unwrap(),
        "--exclude",
        "drafts/",
    ])
    .ok();
    let names = layer_entries(&out);
    std::fs::remove_file(&out).unwrap();
    assert_eq!(
        &names[..3],
        ["opt/", "opt/imposter/", "opt/imposter/config/"]
    );
    let has = |n: &str| {
        names
            .iter()
            .any(|x| x == &format!("opt/imposter/config/{n}"))
    };
    // .imposterignore only stops the engine's config discovery: it leaves files in.
    assert!(
        has(".env")
            && has(".imposterignore")
            && has("old.bak")
            && has("alias.json")
            && has("responses/pets.json"),
        "{names:#?}"
    );
    assert!(
        !has(".imposter.yaml")
            && !has("imposter-project.yml")
            && !has("drafts/")
            && !names.iter().any(|n| n.contains(".git")),
        "{names:#?}"
    );

    std::os::unix::fs::symlink("/etc/passwd", p.join("escape.json")).unwrap();
    let bad = env.run(&[
        "build",
        p.to_str().unwrap(),
        "--base",
        "oci:testdata/engine-base:4.9.3",
        "--output",
        out.to_str().unwrap(),
        "--no-validate",
    ]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("escape.json") && bad.stderr.contains("outside the config directory"),
        "{}",
        bad.stderr
    );
    assert!(!out.exists());
}

#[test]
fn lambda_bundle_from_the_cli() {
    let env = Env::new();
    let d = tempfile::tempdir().unwrap();
    let engine = d.path().join("imposter-awslambda.zip");
    let py = format!(
        "import zipfile\nz=zipfile.ZipFile({:?},'w',zipfile.ZIP_DEFLATED)\nz.writestr('lib/imposter.jar', b'jar'*1000)\nz.writestr('io/Handler.class', b'cls')\nz.close()",
        engine.display()
    );
    assert!(Command::new("python3")
        .arg("-c")
        .arg(&py)
        .status()
        .unwrap()
        .success());
    let out = d.path().join("bundle.zip");
    let args = [
        "bundle",
        "examples/rest",
        "--target",
        "awslambda",
        "--engine-zip",
        engine.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    let first = env.run(&args).ok();
    assert!(
        first
            .stderr
            .contains("runtime java11 and handler io.gatehill.imposter.awslambda.HandlerV2"),
        "bundle says how to create the function: {}",
        first.stderr
    );
    let sum1 = std::fs::read(&out).unwrap();
    let again = env.run(&args);
    assert_eq!(again.code, 2, "refuses to overwrite: {}", again.stderr);
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    let mut forced = args.to_vec();
    forced.push("--force");
    env.run(&forced).ok();
    assert_eq!(std::fs::read(&out).unwrap(), sum1, "deterministic");
    let py = format!(
        "import zipfile,sys\nz=zipfile.ZipFile({:?})\nprint('\\n'.join(z.namelist()))\nsys.stdout.flush()\nassert z.read('lib/imposter.jar')==b'jar'*1000\nassert z.read('config/responses/pets.json')==open('examples/rest/responses/pets.json','rb').read()",
        out.display()
    );
    let o = Command::new("python3")
        .arg("-c")
        .arg(&py)
        .current_dir(REPO_ROOT)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let names = String::from_utf8(o.stdout).unwrap();
    assert!(
        names.contains("config/hello-config.yaml") && names.contains("io/Handler.class"),
        "{names}"
    );
}

#[test]
fn build_and_validate_refuse_a_referenced_file_exclude_leaves_out_but_not_imposterignore() {
    let env = Env::new();
    let d = tempfile::tempdir().unwrap();
    copy_tree(&examples("rest"), d.path());
    let dir = d.path().to_str().unwrap();
    let out = d.path().join("never.tar");
    let r = env.run(&[
        "build",
        dir,
        "--base",
        "oci:testdata/engine-base:4.9.3",
        "--output",
        out.to_str().unwrap(),
        "--exclude",
        "user-*.json",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    for needle in [
        "hello-config.yaml",
        "responses/user-1.json",
        "--exclude pattern 'user-*.json'",
    ] {
        assert!(r.stderr.contains(needle), "{needle}: {}", r.stderr);
    }
    assert!(!out.exists());

    // .imposterignore is not a filter: a referenced file under an ignored directory ships.
    std::fs::write(d.path().join(".imposterignore"), "responses\n").unwrap();
    let r = env.run(&["validate", dir]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    env.run(&[
        "build",
        dir,
        "--base",
        "oci:testdata/engine-base:4.9.3",
        "--output",
        out.to_str().unwrap(),
    ])
    .ok();
    let names = layer_entries(&out);
    assert!(
        names.contains(&"opt/imposter/config/responses/user-1.json".to_string()),
        "{names:#?}"
    );
}
