//! Path rules per field and engine, and referenced files outside the config directory, on
//! repository-shaped trees: a spec and a script at the repository root, the mock's config one,
//! two or three folders down.
use super::*;
use crate::mutate::outside::OutsideFile;
use std::fs;

fn write(dir: &Path, rel: &str, body: &str) {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, body).unwrap();
}

fn opts(engine: &str, outside: OutsidePolicy) -> ValidateOptions {
    ValidateOptions {
        recursive: true,
        engine: EngineFlags {
            engine: Some(engine.into()),
            ..Default::default()
        },
        outside,
        ..Default::default()
    }
}

fn check(dir: &Path, engine: &str) -> Report {
    validate_dir(dir, &opts(engine, OutsidePolicy::default())).unwrap()
}

fn errors(report: &Report) -> Vec<String> {
    report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.to_string())
        .collect()
}

fn paths(report: &Report) -> Vec<&str> {
    report.outside.iter().map(|f| f.path.as_str()).collect()
}

/// A repository: `openapi.yaml` and `hooks.groovy` at its root, the mock `depth` folders down.
fn repo(depth: usize, config: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(tmp.path()).unwrap();
    write(&root, "openapi.yaml", "openapi: 3.0.0\n");
    write(&root, "hooks.groovy", "respond()\n");
    let dir = (0..depth).fold(root.clone(), |d, i| d.join(format!("level{i}")));
    write(&dir, "mock-config.yaml", config);
    (tmp, dir)
}

#[test]
fn a_spec_at_the_repository_root_ships_where_the_jvm_engine_reads_it() {
    for (depth, landing) in [
        (1, "/opt/imposter/openapi.yaml"),
        (2, "/opt/openapi.yaml"),
        (3, "/openapi.yaml"),
    ] {
        let up = "../".repeat(depth);
        let (tmp, dir) = repo(
            depth,
            &format!("plugin: openapi\nspecFile: {up}openapi.yaml\n"),
        );
        let report = check(&dir, "core");
        assert!(report.is_ok(), "{:#?}", report.findings);
        assert_eq!(
            report.outside,
            [OutsideFile {
                reference: format!("{up}openapi.yaml"),
                config: "mock-config.yaml".into(),
                key: "specFile".into(),
                source: fs::canonicalize(tmp.path()).unwrap().join("openapi.yaml"),
                path: landing.into(),
                executable: false,
            }]
        );
    }
}

#[test]
fn a_groovy_script_beside_the_spec_ships_with_it_on_the_jvm_engine() {
    let (_tmp, dir) = repo(
        2,
        "plugin: openapi\nspecFile: ../../openapi.yaml\nresources:\n  - path: /a\n    response:\n      scriptFile: ../../hooks.groovy\n",
    );
    let report = check(&dir, "core");
    assert!(report.is_ok(), "{:#?}", report.findings);
    assert_eq!(paths(&report), ["/opt/hooks.groovy", "/opt/openapi.yaml"]);
}

#[test]
fn a_response_file_outside_is_refused_by_both_engines() {
    let (_tmp, dir) = repo(
        2,
        "plugin: rest\nresources:\n  - path: /a\n    response:\n      file: ../../openapi.yaml\n",
    );
    let jvm = check(&dir, "core");
    let e = errors(&jvm);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("mock-config.yaml: resources[0].response.file"),
        "{e:?}"
    );
    assert!(
        e[0].contains("the JVM engine refuses response files outside the config file's own folder"),
        "{e:?}"
    );
    assert!(jvm.outside.is_empty());
    let go = check(&dir, "go");
    let e = errors(&go);
    assert!(
        e[0].contains("the Go engine refuses response files outside its config directory"),
        "{e:?}"
    );
    assert!(
        !e[0].contains("JVM engine"),
        "the JVM engine refuses it too: {e:?}"
    );
}

#[test]
fn on_the_go_engine_a_script_outside_is_refused_with_the_fix_and_the_spec_ships() {
    let (_tmp, dir) = repo(
        2,
        "plugin: openapi\nspecFile: ../../openapi.yaml\nresources:\n  - path: /a\n    steps:\n      - type: script\n        file: ../../hooks.js\n",
    );
    write(&dir.join("../.."), "hooks.js", "respond()\n");
    let report = check(&dir, "go");
    let e = errors(&report);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("resources[0].steps[0].file"), "{e:?}");
    assert!(
        e[0].contains("the Go engine refuses scripts outside its config directory"),
        "{e:?}"
    );
    assert!(e[0].contains("move the file into"), "{e:?}");
    assert!(
        e[0].contains("or use the JVM engine (--engine core)"),
        "{e:?}"
    );
    // imposter-go joins specFile onto the config dir without a check: it reads it from there.
    assert_eq!(paths(&report), ["/opt/openapi.yaml"]);
}

#[test]
fn go_reads_response_files_anywhere_inside_its_config_dir_the_jvm_only_beside_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "shared/ok.json", "{}");
    write(
        tmp.path(),
        "pets/pets-config.yaml",
        "plugin: rest\nresources:\n  - path: /p\n    response:\n      file: ../shared/ok.json\n",
    );
    let go = check(tmp.path(), "go");
    assert!(go.is_ok(), "{:#?}", go.findings);
    let jvm = check(tmp.path(), "core");
    assert!(
        errors(&jvm)[0].contains("leaves the folder of this config file"),
        "{:?}",
        errors(&jvm)
    );
}

#[test]
fn no_outside_files_restores_the_refusal() {
    let (_tmp, dir) = repo(1, "plugin: openapi\nspecFile: ../openapi.yaml\n");
    let refuse =
        OutsidePolicy::Refuse("--no-outside-files keeps the image to the config directory".into());
    let report = validate_dir(&dir, &opts("core", refuse)).unwrap();
    let e = errors(&report);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("specFile: '../openapi.yaml' resolves outside the config directory"),
        "{e:?}"
    );
    assert!(e[0].contains("--no-outside-files"), "{e:?}");
    assert!(report.outside.is_empty());
}

#[test]
fn a_reference_that_climbs_above_the_image_root_is_refused() {
    let (_tmp, dir) = repo(3, "plugin: openapi\nspecFile: ../../../openapi.yaml\n");
    let shallow = OutsidePolicy::image("/config");
    let report = validate_dir(&dir, &opts("core", shallow)).unwrap();
    let e = errors(&report);
    assert!(
        e[0].contains("climbs above / from /config, so the file has no place in the image"),
        "{e:?}"
    );
}

#[test]
fn a_missing_outside_file_names_the_config_and_field() {
    let (_tmp, dir) = repo(1, "plugin: openapi\nspecFile: ../missing.yaml\n");
    let e = errors(&check(&dir, "core"));
    assert!(
        e[0].starts_with(
            "error: mock-config.yaml: specFile: file '../missing.yaml' does not exist"
        ),
        "{e:?}"
    );
}

#[test]
fn an_outside_directory_is_never_shipped() {
    let (_tmp, dir) = repo(1, "plugin: soap\nwsdlFile: ../\n");
    let e = errors(&check(&dir, "core"));
    assert!(e[0].contains("is a directory"), "{e:?}");
}

#[cfg(unix)]
#[test]
fn symlinks_are_resolved_once_and_may_not_leave_the_folder_the_reference_names() {
    use std::os::unix::fs::symlink;
    let (tmp, dir) = repo(2, "plugin: openapi\nspecFile: ../../api.yaml\n");
    let root = fs::canonicalize(tmp.path()).unwrap();
    // A link to a file in the repository ships as that file's bytes.
    symlink(root.join("openapi.yaml"), root.join("api.yaml")).unwrap();
    let report = check(&dir, "core");
    assert!(report.is_ok(), "{:#?}", report.findings);
    assert_eq!(report.outside[0].source, root.join("openapi.yaml"));
    assert_eq!(report.outside[0].path, "/opt/api.yaml");
    // A link that leaves the repository (the folder `../../` names) is refused.
    let elsewhere = tempfile::tempdir().unwrap();
    write(elsewhere.path(), "secret.yaml", "x");
    fs::remove_file(root.join("api.yaml")).unwrap();
    symlink(elsewhere.path().join("secret.yaml"), root.join("api.yaml")).unwrap();
    let e = errors(&check(&dir, "core"));
    assert!(e[0].contains("the folder the reference names"), "{e:?}");
}

#[test]
fn response_files_are_never_urls_and_go_fetches_no_s3_spec() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "a-config.yaml",
        "plugin: rest\nresources:\n  - path: /a\n    response:\n      file: https://example.com/a.json\n",
    );
    let e = errors(&check(tmp.path(), "core"));
    assert!(
        e[0].contains("reads response files from disk only"),
        "{e:?}"
    );
    write(
        tmp.path(),
        "a-config.yaml",
        "plugin: openapi\nspecFile: s3://bucket/spec.yaml\n",
    );
    assert!(check(tmp.path(), "core").is_ok());
    let e = errors(&check(tmp.path(), "go"));
    assert!(
        e[0].contains("the Go engine reads OpenAPI specs from http(s) URLs or from disk"),
        "{e:?}"
    );
}

#[test]
fn grpc_proto_files_resolve_from_the_root_config_dir() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "protos/store.proto", "syntax = \"proto3\";\n");
    write(
        tmp.path(),
        "grpc/grpc-config.yaml",
        "plugin: grpc\nprotoFiles:\n  - protos/store.proto\n",
    );
    let report = check(tmp.path(), "go");
    assert!(errors(&report).is_empty(), "{:#?}", report.findings);
}

#[test]
fn a_static_dir_may_leave_its_folder_on_the_jvm_engine() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "static/index.html", "<p>hi</p>");
    write(
        tmp.path(),
        "site/site-config.yaml",
        "plugin: rest\nresources:\n  - path: /www/*\n    response:\n      dir: ../static\n",
    );
    let jvm = check(tmp.path(), "core");
    assert!(jvm.is_ok(), "{:#?}", jvm.findings);
    let go = check(tmp.path(), "go");
    assert!(go.is_ok(), "{:#?}", go.findings);
}

#[test]
fn an_outside_wsdl_ships_with_a_warning_about_the_schemas_beside_it() {
    let (_tmp, dir) = repo(1, "plugin: soap\nwsdlFile: ../service.wsdl\n");
    write(&dir.join(".."), "service.wsdl", "<definitions/>");
    write(&dir.join(".."), "types.xsd", "<schema/>");
    let report = check(&dir, "core");
    assert!(report.is_ok(), "{:#?}", report.findings);
    assert_eq!(paths(&report), ["/opt/imposter/service.wsdl"]);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.severity == Severity::Warning
                && f.message.contains("types.xsd")
                && f.message.contains("stay behind")),
        "{:#?}",
        report.findings
    );
}
