//! A spec that lives outside the mock's folder ships where the engine looks for it: repository-
//! shaped trees built into images and read back with skopeo and umoci; the engines' refusals.
mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const BASE: &str = "oci:testdata/engine-base:4.9.3";
const SPEC: &str = "openapi: 3.0.0\ninfo: {title: pets, version: '1'}\npaths: {}\n";
const HOOK: &str = "respond().withStatusCode(201)\n";

fn write(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

/// A repository with its spec and a Groovy script (executable) at the root, and the mock's
/// config directory `depth` folders down holding `config`.
fn repository(depth: usize, config: &str) -> (tempfile::TempDir, PathBuf) {
    let repo = tempfile::tempdir().unwrap();
    write(&repo.path().join("openapi.yaml"), SPEC);
    let hook = repo.path().join("hooks.groovy");
    write(&hook, HOOK);
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = (0..depth).fold(repo.path().to_path_buf(), |d, i| {
        d.join(format!("mocks{i}"))
    });
    write(&dir.join("pets-config.yaml"), config);
    (repo, dir)
}

fn spec_config(depth: usize) -> String {
    let up = "../".repeat(depth);
    format!(
        "plugin: openapi\nspecFile: {up}openapi.yaml\nresources:\n  - path: /pets\n    method: POST\n    response:\n      scriptFile: {up}hooks.groovy\n"
    )
}

fn build(dir: &Path, extra: &[&str]) -> Run {
    let layout = tempfile::tempdir().unwrap();
    let out = layout.path().join("layout");
    let mut args = vec![
        "build",
        dir.to_str().unwrap(),
        "--base",
        BASE,
        "--oci-layout",
        out.to_str().unwrap(),
        "--tag",
        "team/pets:1",
        "--json",
    ];
    args.extend(extra);
    Env::new().run(&args)
}

#[test]
fn a_spec_and_script_at_the_repository_root_land_where_the_jvm_engine_resolves_them() {
    let (repo, dir) = repository(2, &spec_config(2));
    let layout = tempfile::tempdir().unwrap();
    let out = layout.path().join("layout");
    let run = Env::new()
        .run(&[
            "build",
            dir.to_str().unwrap(),
            "--base",
            BASE,
            "--oci-layout",
            out.to_str().unwrap(),
            "--tag",
            "team/pets:1",
            "--json",
        ])
        .ok();
    let json: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let outside = json["outside"].as_array().unwrap();
    let real = std::fs::canonicalize(repo.path()).unwrap();
    assert_eq!(outside.len(), 2, "{json}");
    assert_eq!(outside[0]["reference"], "../../hooks.groovy");
    assert_eq!(outside[0]["path"], "/opt/hooks.groovy");
    assert_eq!(
        outside[0]["source"],
        real.join("hooks.groovy").display().to_string()
    );
    assert_eq!(outside[1]["reference"], "../../openapi.yaml");
    assert_eq!(outside[1]["path"], "/opt/openapi.yaml");
    assert!(
        run.stderr.contains(
            "2 files from outside the config directory (/opt/hooks.groovy, /opt/openapi.yaml)"
        ),
        "{}",
        run.stderr
    );
    ocicheck::assert_layout(&out);

    // Read back by independent tools: skopeo copies it, umoci unpacks it.
    let (_keep, rootfs) = unpack_from(&format!("oci:{}:1", out.display()), "amd64", false);
    assert_eq!(
        std::fs::read_to_string(rootfs.join("opt/openapi.yaml")).unwrap(),
        SPEC
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("opt/hooks.groovy")).unwrap(),
        HOOK
    );
    let mode = std::fs::metadata(rootfs.join("opt/hooks.groovy"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "the exec bit is kept: {mode:o}");
    let config = rootfs.join("opt/imposter/config");
    assert!(config.join("pets-config.yaml").is_file());
    // The reference, followed from the config directory in the image, reaches the spec.
    assert_eq!(
        std::fs::read_to_string(config.join("../../openapi.yaml")).unwrap(),
        SPEC
    );
    // Only the referenced files, never their folders' other content.
    assert!(!rootfs.join("opt/mocks0").exists());
}

#[test]
fn configs_one_and_three_folders_down_resolve_to_their_own_paths() {
    for (depth, spec, hook) in [
        (
            1,
            "/opt/imposter/openapi.yaml",
            "/opt/imposter/hooks.groovy",
        ),
        (3, "/openapi.yaml", "/hooks.groovy"),
    ] {
        let (_repo, dir) = repository(depth, &spec_config(depth));
        let run = build(&dir, &[]).ok();
        let json: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
        let paths: Vec<&str> = json["outside"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap())
            .collect();
        assert_eq!(paths, [hook, spec], "depth {depth}");
    }
    // Four folders up from /opt/imposter/config is above the image's root: refused.
    let (_repo, dir) = repository(4, &spec_config(4));
    let run = build(&dir, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("climbs above / from /opt/imposter/config"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_response_file_outside_is_refused_naming_config_field_and_fix() {
    let (_repo, dir) = repository(
        1,
        "plugin: rest\nresources:\n  - path: /pets\n    response:\n      file: ../openapi.yaml\n",
    );
    let run = build(&dir, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("pets-config.yaml: resources[0].response.file: '../openapi.yaml' resolves outside the config directory"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("the JVM engine refuses response files"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("move the file into"), "{}", run.stderr);
}

#[test]
fn the_same_tree_for_the_go_engine_is_refused_with_the_fix() {
    let (_repo, dir) = repository(2, &spec_config(2));
    // No --base: validation refuses the tree before any base is looked for.
    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("layout");
    let run = Env::new().run(&[
        "build",
        dir.to_str().unwrap(),
        "--engine",
        "go",
        "--oci-layout",
        layout.to_str().unwrap(),
    ]);
    assert!(!layout.exists(), "nothing written");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("resources[0].response.scriptFile: '../../hooks.groovy' resolves outside the config directory"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "the Go engine refuses scripts outside its config directory — move the file into"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("or use the JVM engine (--engine core)"),
        "{}",
        run.stderr
    );
}

#[test]
fn no_outside_files_publish_and_bundle_refuse_outside_references() {
    let (_repo, dir) = repository(1, "plugin: openapi\nspecFile: ../openapi.yaml\n");
    let run = build(&dir, &["--no-outside-files"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("specFile: '../openapi.yaml' resolves outside the config directory")
            && run
                .stderr
                .contains("--no-outside-files keeps the image to the config directory"),
        "{}",
        run.stderr
    );
    let bucket = tempfile::tempdir().unwrap();
    let to = format!("file://{}", bucket.path().join("mocks").display());
    let run = Env::new().run(&["publish", dir.to_str().unwrap(), "--to", &to]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("a bucket prefix has no outside"),
        "{}",
        run.stderr
    );
    assert!(!bucket.path().join("mocks").exists(), "nothing uploaded");
    let zip = bucket.path().join("bundle.zip");
    let run = Env::new().run(&[
        "bundle",
        dir.to_str().unwrap(),
        "--target",
        "awslambda",
        "--engine-zip",
        "no-such-engine.zip",
        "-o",
        zip.to_str().unwrap(),
        "--no-outside-files",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("--no-outside-files keeps the zip to the config directory"),
        "{}",
        run.stderr
    );
    assert!(!zip.exists());
    let validate = Env::new().run(&["validate", dir.to_str().unwrap()]).ok();
    assert!(
        validate
            .stderr
            .contains("ships at /opt/imposter/openapi.yaml"),
        "{}",
        validate.stderr
    );
}

#[test]
fn a_config_without_outside_references_builds_the_same_layer_with_or_without_the_flag() {
    let with = build(Path::new("examples/rest"), &[]).ok();
    let without = build(Path::new("examples/rest"), &["--no-outside-files"]).ok();
    let a: serde_json::Value = serde_json::from_str(with.stdout.trim()).unwrap();
    let b: serde_json::Value = serde_json::from_str(without.stdout.trim()).unwrap();
    assert_eq!(a["layer"]["digest"], b["layer"]["digest"]);
    assert!(a.get("outside").is_none(), "{a}");
}

fn python(code: &str) -> String {
    let o = std::process::Command::new("python3")
        .arg("-c")
        .arg(code)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn bundle(dir: &Path, engine: &Path, zip: &Path) -> Run {
    Env::new().run(&[
        "bundle",
        dir.to_str().unwrap(),
        "--target",
        "awslambda",
        "--engine-zip",
        engine.to_str().unwrap(),
        "-o",
        zip.to_str().unwrap(),
        "--json",
    ])
}

#[test]
fn a_lambda_zip_holds_outside_files_at_its_root_where_var_task_config_reaches_them() {
    let work = tempfile::tempdir().unwrap();
    let engine = work.path().join("imposter-awslambda.zip");
    python(&format!(
        "import zipfile\nz=zipfile.ZipFile({:?},'w')\nz.writestr('lib/imposter.jar', b'jar')\nz.close()",
        engine.display()
    ));
    let (_repo, dir) = repository(1, &spec_config(1));
    let zip = work.path().join("bundle.zip");
    let run = bundle(&dir, &engine, &zip).ok();
    let json: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let paths: Vec<&str> = json["outside"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/var/task/hooks.groovy", "/var/task/openapi.yaml"]);
    // Read back with Python's zipfile: bytes and the exec bit.
    let out = python(&format!(
        "import zipfile\nz=zipfile.ZipFile({:?})\nprint(z.read('openapi.yaml').decode(), end='')\nprint(oct((z.getinfo('hooks.groovy').external_attr >> 16) & 0o777))\nprint(sorted(z.namelist()))",
        zip.display()
    ));
    assert!(out.starts_with(SPEC), "{out}");
    assert!(out.contains("0o755"), "{out}");
    assert!(out.contains("'config/pets-config.yaml'"), "{out}");

    // From two folders down the reference climbs out of /var/task: refused, nothing written.
    let (_repo2, deep) = repository(2, &spec_config(2));
    let zip2 = work.path().join("deep.zip");
    let run = bundle(&deep, &engine, &zip2);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("climbs above /var/task"),
        "{}",
        run.stderr
    );
    assert!(!zip2.exists());

    // A name the engine's archive already holds is refused.
    let (repo3, clash) = repository(1, "plugin: openapi\nspecFile: ../lib/imposter.jar\n");
    write(&repo3.path().join("lib/imposter.jar"), "not a jar");
    let zip3 = work.path().join("clash.zip");
    let run = bundle(&clash, &engine, &zip3);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("which the engine's archive cannot share"),
        "{}",
        run.stderr
    );
    assert!(!zip3.exists());
}
