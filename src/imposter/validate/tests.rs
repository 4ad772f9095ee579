//! validate_dir end to end, on small config trees written by each test.
use super::*;
use crate::imposter::project::PROJECT_FILE;
use std::fs;

fn write(dir: &Path, rel: &str, body: &str) {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, body).unwrap();
}

fn validate(dir: &Path) -> Report {
    validate_dir(dir, &ValidateOptions::default()).unwrap()
}

fn validate_recursive(dir: &Path) -> Report {
    validate_dir(
        dir,
        &ValidateOptions {
            recursive: true,
            ..Default::default()
        },
    )
    .unwrap()
}

/// The single finding of the report, which must have exactly one.
fn only(report: &Report) -> &Finding {
    assert_eq!(report.findings.len(), 1, "findings: {:#?}", report.findings);
    &report.findings[0]
}

fn assert_clean(report: &Report) {
    assert!(
        report.findings.is_empty(),
        "findings: {:#?}",
        report.findings
    );
    assert!(report.is_ok());
}

fn assert_error(report: &Report, file: &str, key: &str, needle: &str) {
    let found = report.findings.iter().any(|f| {
        f.severity == Severity::Error
            && f.file == file
            && f.key == key
            && f.message.contains(needle)
    });
    assert!(
        found,
        "no error {file} {key} containing {needle:?} in {:#?}",
        report.findings
    );
    assert!(!report.is_ok());
}

#[test]
fn valid_rest_config_is_ok() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(
        d,
        "rest-config.yaml",
        r#"---
plugin: rest
system:
  stores:
    users:
      preloadFile: data/users.json
      preloadData:
        file: not-a-reference.json
resources:
  - method: GET
    path: /hello
    response:
      content: "file: nothing.json"
  - method: GET
    path: /users/{id}
    response:
      file: responses/user.json
      statusCode: 200
  - method: GET
    path: /static/*
    response:
      dir: www
  - method: POST
    path: /scripted
    steps:
      - type: remote
        url: http://example.com
      - type: script
        file: scripts/step.js
    response:
      scriptFile: scripts/respond.groovy
interceptors:
  - path: /*
    continue: true
    response:
      headers:
        X-Mock: "true"
"#,
    );
    write(d, "data/users.json", "[]");
    write(d, "responses/user.json", "{}");
    write(d, "www/index.html", "<p>hi</p>");
    write(d, "scripts/step.js", "");
    write(d, "scripts/respond.groovy", "");
    let report = validate(d);
    assert_clean(&report);
    assert_eq!(report.config_files, vec!["rest-config.yaml"]);
}

#[test]
fn valid_openapi_config_is_ok() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "petstore-config.yaml",
        "plugin: openapi\nspecFile: specs/petstore.yaml\n",
    );
    write(tmp.path(), "specs/petstore.yaml", "openapi: 3.0.3\n");
    let report = validate(tmp.path());
    assert_clean(&report);
    assert_eq!(report.config_files, vec!["petstore-config.yaml"]);
}

#[test]
fn valid_soap_config_is_ok() {
    let tmp = tempfile::tempdir().unwrap();
    write(
            tmp.path(),
            "soap-config.yml",
            "plugin: soap\nwsdlFile: service.wsdl\nresources:\n  - operation: getPetById\n    response:\n      file: pet.xml\n",
        );
    write(tmp.path(), "service.wsdl", "<definitions/>");
    write(tmp.path(), "pet.xml", "<pet/>");
    let report = validate(tmp.path());
    assert_clean(&report);
    assert_eq!(report.config_files, vec!["soap-config.yml"]);
}

#[test]
fn no_config_files_is_error() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "config.yaml", "plugin: rest\n");
    write(tmp.path(), "rest-config.yaml.bak", "plugin: rest\n");
    let report = validate(tmp.path());
    let finding = only(&report);
    assert_eq!(finding.severity, Severity::Error);
    assert_eq!(finding.file, "");
    assert!(finding.message.contains("no Imposter config files"));
    assert!(finding.message.contains(&tmp.path().display().to_string()));
    assert!(!finding.message.contains("--recursive"));
    assert!(report.config_files.is_empty());
    assert!(!report.is_ok());
}

#[test]
fn nested_config_needs_recursive() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "mocks/api/api-config.yaml", "plugin: rest\n");
    let report = validate(tmp.path());
    let finding = only(&report);
    assert_eq!(finding.severity, Severity::Error);
    assert!(finding.message.contains("--recursive"), "{finding}");
    assert!(finding.message.contains("mocks/api/api-config.yaml"));

    let report = validate_recursive(tmp.path());
    assert_clean(&report);
    assert_eq!(report.config_files, vec!["mocks/api/api-config.yaml"]);

    // With a top-level config, nested ones are only a warning.
    write(tmp.path(), "top-config.yaml", "plugin: rest\n");
    let report = validate(tmp.path());
    let finding = only(&report);
    assert_eq!(finding.severity, Severity::Warning);
    assert!(
        finding.message.contains("mocks/api/api-config.yaml"),
        "{finding}"
    );
    assert!(report.is_ok());
    assert_eq!(report.config_files, vec!["top-config.yaml"]);
    assert_clean(&validate_recursive(tmp.path()));
}

#[test]
fn imposter_yaml_recursive_enables_scan() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "sub/a-config.yaml", "plugin: rest\n");
    write(tmp.path(), "b-config.json", r#"{"plugin": "rest"}"#);
    write(
        tmp.path(),
        PROJECT_FILE,
        "version: 4.9.3\nrecursive: true\n",
    );
    let report = validate(tmp.path());
    assert_clean(&report);
    assert_eq!(
        report.config_files,
        vec!["b-config.json", "sub/a-config.yaml"]
    );
}

#[test]
fn recursive_scan_skips_git_and_imposter_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "a-config.yaml", "plugin: rest\n");
    write(tmp.path(), ".git/x-config.yaml", "not: [valid");
    write(tmp.path(), ".imposter/y-config.yaml", "plugin: rest\n");
    let report = validate_recursive(tmp.path());
    assert_clean(&report);
    assert_eq!(report.config_files, vec!["a-config.yaml"]);
}

#[test]
fn malformed_yaml_is_error_with_line() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "bad-config.yaml",
        "plugin: rest\nresources:\n  - path: /a\n    method: [GET\n",
    );
    let report = validate(tmp.path());
    let finding = only(&report);
    assert_eq!(finding.severity, Severity::Error);
    assert_eq!(finding.file, "bad-config.yaml");
    assert!(finding.message.starts_with("invalid YAML"), "{finding}");
    assert!(finding.message.contains("line "), "{finding}");
}

#[test]
fn malformed_json_is_error_with_line() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "bad-config.json",
        "{\n  \"plugin\": \"rest\",\n}\n",
    );
    let report = validate(tmp.path());
    let finding = only(&report);
    assert!(finding.message.starts_with("invalid JSON"), "{finding}");
    assert!(finding.message.contains("line 3"), "{finding}");
}

#[test]
fn json_config_is_checked() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "api-config.json",
        r#"{"plugin": "rest", "resources": [
                {"path": "/a", "response": {"file": "a.json"}},
                {"path": "/b", "response": {"file": "b.json"}}
            ]}"#,
    );
    write(tmp.path(), "a.json", "{}");
    let report = validate(tmp.path());
    let finding = only(&report);
    assert_eq!(finding.file, "api-config.json");
    assert_eq!(finding.key, "resources[1].response.file");
    assert!(finding.message.contains("'b.json' does not exist"));
}

#[test]
fn missing_plugin_is_error() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "x-config.yaml", "resources: []\n");
    let report = validate(tmp.path());
    let finding = only(&report);
    assert_eq!(finding.severity, Severity::Error);
    assert_eq!(finding.key, "plugin");
    assert!(finding.message.contains("missing `plugin:`"));
    assert!(finding.message.contains("plugin: rest"));
}

#[test]
fn empty_or_non_mapping_config_is_error() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "a-config.yaml", "# nothing here\n");
    write(tmp.path(), "b-config.yaml", "- plugin: rest\n");
    let report = validate(tmp.path());
    assert_eq!(report.errors(), 2, "{:#?}", report.findings);
    assert_error(&report, "a-config.yaml", "", "empty");
    assert_error(&report, "b-config.yaml", "", "found a list");
}

#[test]
fn unknown_plugin_is_warning() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "x-config.yaml", "plugin: restful\n");
    let report = validate(tmp.path());
    let finding = only(&report);
    assert_eq!(finding.severity, Severity::Warning);
    assert_eq!(finding.key, "plugin");
    assert!(finding.message.contains("'restful'"));
    assert!(report.is_ok());
    assert_eq!(report.warnings(), 1);
    assert_eq!(report.errors(), 0);
}

#[test]
fn non_string_plugin_is_error() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "x-config.yaml", "plugin: [rest]\n");
    assert_error(
        &validate(tmp.path()),
        "x-config.yaml",
        "plugin",
        "found a list",
    );
}

#[test]
fn legacy_plugin_class_name_is_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "x-config.yaml",
        "plugin: io.gatehill.imposter.plugin.openapi.OpenApiPluginImpl\nspecFile: s.yaml\n",
    );
    write(tmp.path(), "s.yaml", "openapi: 3.0.0\n");
    assert_clean(&validate(tmp.path()));
}

#[test]
fn missing_response_file_in_resources() {
    let tmp = tempfile::tempdir().unwrap();
    write(
            tmp.path(),
            "rest-config.yaml",
            "plugin: rest\nresources:\n  - path: /a\n    response:\n      file: responses/a.json\n  - path: /b\n    response:\n      file: responses/missing.json\n",
        );
    write(tmp.path(), "responses/a.json", "{}");
    let report = validate(tmp.path());
    let finding = only(&report);
    assert_eq!(finding.severity, Severity::Error);
    assert_eq!(finding.file, "rest-config.yaml");
    assert_eq!(finding.key, "resources[1].response.file");
    assert_eq!(
        finding.to_string(),
        "error: rest-config.yaml: resources[1].response.file: file 'responses/missing.json' \
             does not exist in the config directory — create it or fix the path"
    );
}

#[test]
fn old_static_file_keys_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "old-config.yaml",
        "plugin: rest\nstaticFile: root.json\nresponse:\n  staticFile: resp.json\n",
    );
    let report = validate(tmp.path());
    assert_eq!(report.errors(), 2, "{:#?}", report.findings);
    assert_error(
        &report,
        "old-config.yaml",
        "staticFile",
        "'root.json' does not exist",
    );
    assert_error(
        &report,
        "old-config.yaml",
        "response.staticFile",
        "'resp.json'",
    );
}

#[test]
fn missing_interceptor_and_script_files() {
    let tmp = tempfile::tempdir().unwrap();
    write(
            tmp.path(),
            "i-config.yaml",
            "plugin: rest\ninterceptors:\n  - path: /x\n    response:\n      file: intercept.json\n    scriptFile: check.js\nresources:\n  - path: /y\n    scriptFile: res.js\n",
        );
    let report = validate(tmp.path());
    assert_eq!(report.errors(), 3, "{:#?}", report.findings);
    assert_error(
        &report,
        "i-config.yaml",
        "interceptors[0].response.file",
        "intercept.json",
    );
    assert_error(
        &report,
        "i-config.yaml",
        "interceptors[0].scriptFile",
        "check.js",
    );
    assert_error(
        &report,
        "i-config.yaml",
        "resources[0].scriptFile",
        "res.js",
    );
}

#[test]
fn file_keys_outside_response_or_steps_are_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    write(
            tmp.path(),
            "x-config.yaml",
            "plugin: rest\nresources:\n  - path: /a\n    file: not-a-ref.json\n    dir: nowhere\n    response:\n      content: ok\n",
        );
    assert_clean(&validate(tmp.path()));
}

#[test]
fn response_dir_must_be_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "x-config.yaml",
        "plugin: rest\nresources:\n  - path: /static/*\n    response:\n      dir: www\n",
    );
    write(tmp.path(), "www", "i am a file");
    let report = validate(tmp.path());
    let finding = only(&report);
    assert_eq!(finding.key, "resources[0].response.dir");
    assert!(finding.message.contains("must be a directory"), "{finding}");

    fs::remove_file(tmp.path().join("www")).unwrap();
    let report = validate(tmp.path());
    assert!(only(&report)
        .message
        .contains("directory 'www' does not exist"));

    fs::create_dir(tmp.path().join("www")).unwrap();
    assert_clean(&validate(tmp.path()));
}

#[test]
fn response_file_that_is_a_directory_is_error() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "x-config.yaml",
        "plugin: rest\nresponse:\n  file: responses\n",
    );
    fs::create_dir(tmp.path().join("responses")).unwrap();
    let report = validate(tmp.path());
    assert!(only(&report).message.contains("is a directory"));
}

#[test]
fn missing_spec_file() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "api-config.yaml",
        "plugin: openapi\nspecFile: openapi.yaml\n",
    );
    let report = validate(tmp.path());
    let finding = only(&report);
    assert_eq!(finding.key, "specFile");
    assert!(finding.message.contains("'openapi.yaml' does not exist"));
}

#[test]
fn url_spec_file_is_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "a-config.yaml",
        "plugin: openapi\nspecFile: https://example.com/openapi.yaml\n",
    );
    write(
        tmp.path(),
        "b-config.yaml",
        "plugin: openapi\nspecFile: http://example.com/spec.json\n",
    );
    let report = validate(tmp.path());
    assert_clean(&report);
    assert_eq!(report.config_files.len(), 2);
    // The engines compare the scheme as written: `HTTP://` is a local file name to them.
    write(
        tmp.path(),
        "c-config.yaml",
        "plugin: openapi\nspecFile: HTTP://example.com/spec.json\n",
    );
    assert_error(
        &validate(tmp.path()),
        "c-config.yaml",
        "specFile",
        "lower case",
    );
}

#[test]
fn missing_wsdl_file() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "soap-config.yaml",
        "plugin: soap\nwsdlFile: ./services/pet.wsdl\n",
    );
    let report = validate(tmp.path());
    let finding = only(&report);
    assert_eq!(finding.key, "wsdlFile");
    assert!(finding
        .message
        .contains("'./services/pet.wsdl' does not exist"));
    assert!(finding.message.contains("(looked for 'services/pet.wsdl')"));
}

#[test]
fn missing_step_file() {
    let tmp = tempfile::tempdir().unwrap();
    write(
            tmp.path(),
            "s-config.yaml",
            "plugin: rest\nresources:\n  - path: /s\n    steps:\n      - type: remote\n        url: http://example.com\n      - type: script\n        file: scripts/missing.js\n",
        );
    let report = validate(tmp.path());
    let finding = only(&report);
    assert_eq!(finding.key, "resources[0].steps[1].file");
    assert!(finding.message.contains("scripts/missing.js"));
}

#[test]
fn missing_preload_file() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "p-config.yaml",
        "plugin: rest\nsystem:\n  stores:\n    users:\n      preloadFile: users.json\n",
    );
    let report = validate(tmp.path());
    let finding = only(&report);
    assert_eq!(finding.key, "system.stores.users.preloadFile");
    assert!(finding.message.contains("'users.json' does not exist"));
}

#[test]
fn missing_proto_files() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "g-config.yaml",
        "plugin: grpc\nconfig:\n  protoFiles:\n    - ok.proto\n    - missing.proto\n",
    );
    write(tmp.path(), "ok.proto", "syntax = \"proto3\";");
    let opts = ValidateOptions {
        engine: EngineFlags {
            engine: Some("docker-all".into()),
            version: Some("5.21.3-beta".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let report = validate_dir(tmp.path(), &opts).unwrap();
    assert_eq!(only(&report).key, "config.protoFiles[1]");
}

#[test]
fn non_string_and_empty_references_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "x-config.yaml",
        "plugin: soap\nwsdlFile: 42\nresponse:\n  file:\n",
    );
    let report = validate(tmp.path());
    assert_eq!(report.errors(), 2, "{:#?}", report.findings);
    assert_error(&report, "x-config.yaml", "wsdlFile", "found '42'");
    assert_error(&report, "x-config.yaml", "response.file", "is empty");
}

#[test]
fn template_placeholders_are_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    write(
            tmp.path(),
            "t-config.yaml",
            "plugin: rest\nresources:\n  - path: /users/{id}\n    response:\n      file: \"users/${context.request.pathParams.id}.json\"\n",
        );
    assert_clean(&validate(tmp.path()));
}

#[test]
fn parent_dir_escape_is_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("config");
    write(
        &dir,
        "x-config.yaml",
        "plugin: rest\nresponse:\n  file: ../outside.json\n",
    );
    // The file exists, but outside the config directory.
    write(tmp.path(), "outside.json", "{}");
    let report = validate(&dir);
    let finding = only(&report);
    assert_eq!(finding.key, "response.file");
    assert!(
        finding
            .message
            .contains("JVM engine refuses response files outside the config file's own folder"),
        "{finding}"
    );
    assert!(finding.message.contains(&dir.display().to_string()));
}

#[test]
fn parent_dir_inside_config_dir_is_fine() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "a-config.yaml",
        "plugin: rest\nresponse:\n  file: sub/../shared/x.json\n",
    );
    write(tmp.path(), "shared/x.json", "{}");
    fs::create_dir(tmp.path().join("sub")).unwrap();
    assert_clean(&validate(tmp.path()));
}

#[test]
fn absolute_path_escape_is_error() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("abs.json");
    write(tmp.path(), "abs.json", "{}");
    write(
        tmp.path(),
        "x-config.yaml",
        &format!("plugin: rest\nresponse:\n  file: {}\n", target.display()),
    );
    let report = validate(tmp.path());
    let finding = only(&report);
    assert!(finding.message.contains("absolute path"), "{finding}");
    assert!(finding.message.contains("escapes the config directory"));
}

#[cfg(unix)]
#[test]
fn symlink_escape_is_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("config");
    write(tmp.path(), "secret/data.json", "{}");
    write(
            &dir,
            "x-config.yaml",
            "plugin: rest\nresources:\n  - response:\n      file: linked/data.json\n  - response:\n      file: ok.json\n",
        );
    std::os::unix::fs::symlink(tmp.path().join("secret"), dir.join("linked")).unwrap();
    std::os::unix::fs::symlink(dir.join("real.json"), dir.join("ok.json")).unwrap();
    write(&dir, "real.json", "{}");
    let report = validate(&dir);
    assert_error(
        &report,
        "x-config.yaml",
        "resources[0].response.file",
        "escapes the config directory",
    );
    // The links themselves are what build refuses: absolute link text cannot go in an image,
    // even when (ok.json) it resolves inside the tree.
    assert_error(&report, "linked", "", "symlink points outside");
    assert_error(&report, "ok.json", "", "symlink points outside");
    assert_eq!(report.findings.len(), 3, "{:#?}", report.findings);
}

#[cfg(unix)]
#[test]
fn symlinked_config_file_outside_is_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("config");
    fs::create_dir(&dir).unwrap();
    write(tmp.path(), "elsewhere-config.yaml", "plugin: rest\n");
    std::os::unix::fs::symlink(
        tmp.path().join("elsewhere-config.yaml"),
        dir.join("x-config.yaml"),
    )
    .unwrap();
    let report = validate(&dir);
    assert_error(&report, "x-config.yaml", "", "symlink");
}

#[test]
fn references_resolve_relative_to_their_config_file() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "api/v1/v1-config.yaml",
        "plugin: rest\nresponse:\n  file: data.json\n",
    );
    write(
        tmp.path(),
        "api/v2/v2-config.yaml",
        "plugin: rest\nresponse:\n  file: data.json\n",
    );
    write(tmp.path(), "api/v1/data.json", "{}");
    // v2's data.json exists only at the top, which is the wrong place.
    write(tmp.path(), "data.json", "{}");
    let report = validate_recursive(tmp.path());
    let finding = only(&report);
    assert_eq!(finding.file, "api/v2/v2-config.yaml");
    assert!(
        finding.message.contains("(looked for 'api/v2/data.json')"),
        "{finding}"
    );
}

#[test]
fn findings_are_sorted_by_file_then_key() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = String::from("plugin: rest\nresources:\n");
    for i in 0..12 {
        config.push_str(&format!("  - response:\n      file: missing-{i}.json\n"));
    }
    write(tmp.path(), "b-config.yaml", &config);
    write(tmp.path(), "a-config.yaml", "specFile: nope.yaml\n");
    let report = validate(tmp.path());
    let got: Vec<(String, String)> = report
        .findings
        .iter()
        .map(|f| (f.file.clone(), f.key.clone()))
        .collect();
    let mut want = vec![
        ("a-config.yaml".to_string(), "plugin".to_string()),
        ("a-config.yaml".to_string(), "specFile".to_string()),
    ];
    for i in 0..12 {
        want.push((
            "b-config.yaml".to_string(),
            format!("resources[{i}].response.file"),
        ));
    }
    assert_eq!(got, want);
}

#[test]
fn multi_document_yaml_is_checked_per_document() {
    let tmp = tempfile::tempdir().unwrap();
    write(
            tmp.path(),
            "m-config.yaml",
            "---\nplugin: rest\nresponse:\n  file: a.json\n---\nplugin: rest\nresponse:\n  file: b.json\n",
        );
    write(tmp.path(), "a.json", "{}");
    let report = validate(tmp.path());
    let finding = only(&report);
    assert_eq!(finding.key, "document[1].response.file");
}

#[test]
fn directory_problems_are_validate_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let err = validate_dir(&missing, &ValidateOptions::default()).unwrap_err();
    assert!(matches!(err, ValidateError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains(&missing.display().to_string()));

    write(tmp.path(), "file-config.yaml", "plugin: rest\n");
    let file = tmp.path().join("file-config.yaml");
    let err = validate_dir(&file, &ValidateOptions::default()).unwrap_err();
    assert!(
        matches!(err, ValidateError::NotADirectory { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("file-config.yaml"));
}

#[test]
fn malformed_project_file_is_a_validate_error() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "a-config.yaml", "plugin: rest\n");
    write(tmp.path(), PROJECT_FILE, "version: [4.9.3\n");
    let err = validate_dir(tmp.path(), &ValidateOptions::default()).unwrap_err();
    assert!(matches!(err, ValidateError::Project(_)), "{err:?}");
    assert!(err.to_string().contains(PROJECT_FILE), "{err}");
}

#[test]
fn bundled_examples_validate() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let report = validate_recursive(&examples);
    assert_clean(&report);
    assert_eq!(
        report.config_files,
        vec![
            "openapi/petstore-config.yaml",
            "rest/hello-config.yaml",
            "soap/soap-config.yaml",
        ]
    );
    // Without --recursive the top level has no config files.
    assert!(!validate(&examples).is_ok());
    for sub in ["rest", "openapi", "soap"] {
        let report = validate(&examples.join(sub));
        assert_clean(&report);
        assert_eq!(report.config_files.len(), 1, "{sub}");
    }
}

fn validate_excluding(dir: &Path, excludes: &[&str]) -> Report {
    let opts = ValidateOptions {
        recursive: false,
        walk: crate::imposter::walk_options(excludes.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    };
    validate_dir(dir, &opts).unwrap()
}

#[test]
fn referenced_file_left_out_by_exclude_is_error_naming_config_file_and_pattern() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "api-config.yaml",
        "plugin: rest\nresources:\n  - path: /a\n    response:\n      file: responses/a.json\n",
    );
    write(tmp.path(), "responses/a.json", "{}");
    assert_clean(&validate(tmp.path()));

    let report = validate_excluding(tmp.path(), &["*.json"]);
    let finding = only(&report);
    assert_eq!(finding.severity, Severity::Error);
    assert_eq!(finding.file, "api-config.yaml");
    assert_eq!(finding.key, "resources[0].response.file");
    assert!(finding.message.contains("'responses/a.json'"), "{finding}");
    assert!(
        finding.message.contains("--exclude pattern '*.json'"),
        "{finding}"
    );
}

#[test]
fn referenced_file_under_an_imposterignored_directory_still_ships() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "api-config.yaml",
        "plugin: openapi\nspecFile: specs/v1/api.yaml\n",
    );
    write(tmp.path(), "specs/v1/api.yaml", "openapi: 3.0.3\n");
    write(tmp.path(), ".imposterignore", "specs\n");
    assert_clean(&validate(tmp.path()));
}

#[cfg(unix)]
#[test]
fn symlink_to_an_excluded_file_is_error() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "x-config.yaml",
        "plugin: rest\nresponse:\n  file: alias.json\n",
    );
    write(tmp.path(), "private/real.json", "{}");
    std::os::unix::fs::symlink("private/real.json", tmp.path().join("alias.json")).unwrap();
    assert_clean(&validate(tmp.path()));
    let report = validate_excluding(tmp.path(), &["private"]);
    let finding = only(&report);
    assert_eq!(finding.key, "response.file");
    assert!(
        finding.message.contains("'private' is left out"),
        "{finding}"
    );
}

#[test]
fn excluded_config_files_are_not_loaded_so_not_checked() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "a-config.yaml", "plugin: rest\n");
    write(tmp.path(), "draft-config.yaml", "resources: [\n");
    let report = validate_excluding(tmp.path(), &["draft-*"]);
    assert_clean(&report);
    assert_eq!(report.config_files, vec!["a-config.yaml"]);
}

#[test]
fn a_bad_exclude_pattern_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "a-config.yaml", "plugin: rest\n");
    let opts = ValidateOptions {
        walk: crate::imposter::walk_options(vec!["{a,b".into()]),
        ..Default::default()
    };
    let err = crate::error::Error::from(validate_dir(tmp.path(), &opts).unwrap_err());
    assert!(err.is_usage(), "{err}");
}

#[test]
fn references_inside_merged_mappings_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "m-config.yaml",
        "x-base: &base\n  plugin: rest\nx-ok: &ok\n  file: missing.json\n<<: *base\nresources:\n  - path: /a\n    response:\n      <<: *ok\n      statusCode: 200\n",
    );
    let report = validate(tmp.path());
    let finding = only(&report);
    assert_eq!(finding.key, "resources[0].response.file");
    assert!(finding.message.contains("'missing.json' does not exist"));
}

#[cfg(unix)]
#[test]
fn what_build_refuses_in_the_tree_is_a_validate_error() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "a-config.yaml", "plugin: rest\n");
    write(tmp.path(), ".wh.README.txt", "");
    let st = std::process::Command::new("mkfifo")
        .arg(tmp.path().join("pipe"))
        .status()
        .unwrap();
    assert!(st.success());
    std::os::unix::fs::symlink("pipe", tmp.path().join("pipe.json")).unwrap();
    std::os::unix::fs::symlink(".", tmp.path().join("again")).unwrap();
    // Not recursive, and the fifo itself excluded: still refused, as build refuses it.
    let report = validate_excluding(tmp.path(), &["pipe"]);
    assert_error(&report, ".wh.README.txt", "", "whiteout");
    assert_error(&report, "pipe.json", "", "fifo");
    assert_error(&report, "again", "", "loops");
    assert_eq!(report.findings.len(), 3, "{:#?}", report.findings);
}
