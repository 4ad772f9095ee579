//! validate_dir as the chosen engine sees the directory: its plugins, its discovery rules
//! (recursion, `.imposterignore`), the project file, and references as the engine resolves them.
//! The trees follow Imposter's documentation examples.
use super::*;
use std::fs;

fn write(dir: &Path, rel: &str, body: &str) {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, body).unwrap();
}

fn on(engine: Option<&str>, version: Option<&str>) -> ValidateOptions {
    ValidateOptions {
        engine: EngineFlags {
            engine: engine.map(str::to_string),
            version: version.map(str::to_string),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn run(dir: &Path, opts: &ValidateOptions) -> Report {
    validate_dir(dir, opts).unwrap()
}

fn messages(r: &Report, severity: Severity) -> Vec<String> {
    r.findings
        .iter()
        .filter(|f| f.severity == severity)
        .map(|f| f.to_string())
        .collect()
}

#[test]
fn a_plugin_the_engine_lacks_is_a_warning_naming_an_engine_that_has_it() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "hbase-config.yaml",
        "plugin: wiremock\nresponse:\n  file: rows.json\n",
    );
    write(tmp.path(), "rows.json", "[]");
    let core = run(tmp.path(), &on(None, None));
    let w = messages(&core, Severity::Warning);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("'wiremock' is not in the core (JVM) image"),
        "{w:?}"
    );
    assert!(w[0].contains("use --engine docker-all"), "{w:?}");
    assert!(run(tmp.path(), &on(Some("docker-all"), None))
        .findings
        .is_empty());

    // hbase is commented out of every image: the hint says none has it.
    write(
        tmp.path(),
        "hbase-config.yaml",
        "plugin: hbase\ntableName: exampleTable\n",
    );
    let w = messages(
        &run(tmp.path(), &on(Some("docker-all"), None)),
        Severity::Warning,
    );
    assert!(
        w[0].contains("no engine image ships it: install it into IMPOSTER_PLUGIN_DIR"),
        "{w:?}"
    );

    write(tmp.path(), "hbase-config.yaml", "plugin: websocket\n");
    assert!(run(tmp.path(), &on(Some("go"), None)).findings.is_empty());
    let jvm = messages(
        &run(tmp.path(), &on(Some("docker"), None)),
        Severity::Warning,
    );
    assert!(jvm[0].contains("use --engine golang"), "{jvm:?}");
}

#[test]
fn a_placeholder_plugin_is_not_unknown() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "env-config.yaml",
        "plugin: ${env.EXAMPLE_PLUGIN}\n",
    );
    assert!(run(tmp.path(), &on(None, None)).findings.is_empty());
}

#[test]
fn the_project_files_plugins_and_name_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "mock-config.yaml", "plugin: rest\n");
    write(
        tmp.path(),
        ".imposter.yaml",
        "engine: docker\nplugins:\n  - store-redis\n  - js-graal\n  - nonsense\n  - ${env.P}\n",
    );
    let r = run(tmp.path(), &on(None, None));
    let w = messages(&r, Severity::Warning);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w
        .iter()
        .any(|m| m.contains("plugins[0]: plugin 'store-redis' is not in the core")));
    assert!(w
        .iter()
        .any(|m| m.contains("plugins[2]: unknown plugin 'nonsense'")));
    fs::rename(
        tmp.path().join(".imposter.yaml"),
        tmp.path().join("imposter-project.yaml"),
    )
    .unwrap();
    fs::write(
        tmp.path().join("imposter-project.yaml"),
        "engine: docker-all\nplugins: [store-redis, js-graal]\n",
    )
    .unwrap();
    assert!(run(tmp.path(), &on(None, None)).findings.is_empty());
}

#[test]
fn an_unknown_engine_in_the_project_file_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "mock-config.yaml", "plugin: rest\n");
    write(tmp.path(), "imposter-project.yaml", "engine: podman\n");
    let e = crate::error::Error::from(validate_dir(tmp.path(), &on(None, None)).unwrap_err());
    assert!(
        e.is_usage() && e.to_string().contains("docker-distroless"),
        "{e}"
    );
}

#[test]
fn a_moving_version_is_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "mock-config.yaml", "plugin: rest\n");
    write(tmp.path(), "imposter-project.yaml", "version: latest\n");
    let w = messages(&run(tmp.path(), &on(None, None)), Severity::Warning);
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("imposter:latest is a moving tag"), "{w:?}");
    assert!(
        w[0].contains("neither reproducible nor air-gap-safe"),
        "{w:?}"
    );
}

#[test]
fn remote_specs_are_not_checked_locally_s3_is_noted_and_a_response_file_url_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "petstore-config.yaml",
        "plugin: openapi\nspecFile: https://raw.githubusercontent.com/OAI/OpenAPI-Specification/main/examples/v3.0/petstore.yaml\n",
    );
    write(
        tmp.path(),
        "s3-config.yaml",
        "plugin: openapi\nspecFile: s3://example-bucket/apis/petstore.yaml\nresources:\n  - path: /x\n    response:\n      file: s3://example-bucket/x.json\n",
    );
    let r = run(tmp.path(), &on(None, None));
    assert!(r.warnings() == 0, "{:#?}", r.findings);
    let notes = messages(&r, Severity::Note);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("AWS credentials"), "{notes:?}");
    // Response files are read from disk by both engines (ResponseFileServiceImpl.kt:134-143,
    // response.go:144-151): a URL there is a file that does not exist.
    let errors = messages(&r, Severity::Error);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("resources[0].response.file")
            && errors[0].contains("reads response files from disk only"),
        "{errors:?}"
    );
}

#[test]
fn a_path_may_not_leave_its_config_files_folder() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "orders/orders-config.yaml",
        "plugin: rest\nresources:\n  - path: /orders\n    response:\n      file: ../shared.json\n",
    );
    write(tmp.path(), "shared.json", "{}");
    write(
        tmp.path(),
        "top-config.yaml",
        "plugin: rest\nresponse:\n  file: orders/../shared.json\n",
    );
    let mut opts = on(None, None);
    opts.recursive = true;
    let r = run(tmp.path(), &opts);
    let e = messages(&r, Severity::Error);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("orders/orders-config.yaml"), "{e:?}");
    assert!(
        e[0].contains("'../shared.json' leaves the folder of this config file ('orders/')"),
        "{e:?}"
    );
}

fn recursive_tree() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "root-config.yaml", "plugin: rest\n");
    write(
        tmp.path(),
        "users/users-config.yaml",
        "plugin: rest\nresponse:\n  file: users.json\n",
    );
    write(tmp.path(), "users/users.json", "[]");
    write(tmp.path(), "orders/v1/orders-config.yaml", "plugin: rest\n");
    write(
        tmp.path(),
        "node_modules/pkg/pkg-config.yaml",
        "plugin: nope\n",
    );
    tmp
}

#[test]
fn recursion_comes_from_the_flag_the_project_env_or_an_env_flag() {
    let tmp = recursive_tree();
    let flat = run(tmp.path(), &on(None, None));
    assert_eq!(flat.config_files, ["root-config.yaml"]);
    let w = messages(&flat, Severity::Warning);
    assert!(
        w[0].contains("not loaded by the engine without IMPOSTER_CONFIG_SCAN_RECURSIVE=true"),
        "{w:?}"
    );

    let want = [
        "orders/v1/orders-config.yaml",
        "root-config.yaml",
        "users/users-config.yaml",
    ];
    let mut flag = on(None, None);
    flag.recursive = true;
    assert_eq!(run(tmp.path(), &flag).config_files, want);
    let mut env = on(None, None);
    env.env.insert(SCAN_RECURSIVE_ENV.into(), "true".into());
    assert_eq!(run(tmp.path(), &env).config_files, want);
    write(
        tmp.path(),
        "imposter-project.yaml",
        "env:\n  IMPOSTER_CONFIG_SCAN_RECURSIVE: \"true\"\n",
    );
    let from_file = run(tmp.path(), &on(None, None));
    assert_eq!(from_file.config_files, want);
    // node_modules is on the engine's default skip list: noted, not checked.
    let notes = messages(&from_file, Severity::Note);
    assert!(
        notes[0].contains("node_modules/pkg/pkg-config.yaml"),
        "{notes:?}"
    );
    assert!(notes[0].contains("default skip list"), "{notes:?}");
}

#[test]
fn imposterignore_stops_discovery_by_exact_name_on_jvm_and_substring_on_go() {
    let tmp = recursive_tree();
    write(tmp.path(), ".imposterignore", "# legacy APIs\nv1\nuser\n");
    let mut jvm = on(None, None);
    jvm.recursive = true;
    let r = run(tmp.path(), &jvm);
    // The file replaces the default list, so node_modules is scanned (and its plugin unknown).
    assert_eq!(
        r.config_files,
        [
            "node_modules/pkg/pkg-config.yaml",
            "root-config.yaml",
            "users/users-config.yaml"
        ]
    );
    let mut go = on(Some("go"), None);
    go.recursive = true;
    let r = run(tmp.path(), &go);
    assert_eq!(
        r.config_files,
        ["node_modules/pkg/pkg-config.yaml", "root-config.yaml"]
    );
    let warnings = messages(&r, Severity::Warning);
    assert!(
        warnings
            .iter()
            .any(|n| n.contains("users/users-config.yaml") && n.contains("entry 'user'")),
        "a substring match surprises: {warnings:?}"
    );
}

#[test]
fn go_skips_a_top_level_config_whose_name_contains_an_entry() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "mock-config.yaml", "plugin: rest\n");
    write(tmp.path(), "bold-config.yaml", "plugin: rest\n");
    write(tmp.path(), ".imposterignore", "old\n");
    let r = run(tmp.path(), &on(Some("go"), None));
    assert_eq!(r.config_files, ["mock-config.yaml"]);
    let w = messages(&r, Severity::Warning);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("bold-config.yaml") && w[0].contains("'old'"),
        "{w:?}"
    );
    let jvm = run(tmp.path(), &on(None, None));
    assert_eq!(jvm.config_files, ["bold-config.yaml", "mock-config.yaml"]);
}

#[test]
fn a_go_entry_in_the_config_dirs_path_is_an_error_the_engine_loads_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "mock-config.yaml", "plugin: rest\n");
    for entry in ["config", "imposter", "opt"] {
        write(tmp.path(), ".imposterignore", &format!("{entry}\n"));
        let r = run(tmp.path(), &on(Some("go"), None));
        let e = messages(&r, Severity::Error);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains(&format!("entry '{entry}'")) && e[0].contains("loads nothing"),
            "{e:?}"
        );
        assert!(
            run(tmp.path(), &on(None, None)).is_ok(),
            "the JVM matches names"
        );
    }
}

#[test]
fn a_glob_in_imposterignore_is_a_warning_on_the_jvm_engine() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "mock-config.yaml", "plugin: rest\n");
    write(tmp.path(), ".imposterignore", "*.bak\narchive\n");
    let w = messages(&run(tmp.path(), &on(None, None)), Severity::Warning);
    assert_eq!(w.len(), 1);
    assert!(
        w[0].contains("'*.bak' is not a file or directory name"),
        "{w:?}"
    );
    assert!(run(tmp.path(), &on(Some("go"), None)).findings.is_empty());
}

#[test]
fn strict_makes_warnings_errors() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "mock-config.yaml", "plugin: hbase\n");
    let mut r = run(tmp.path(), &on(None, None));
    assert!(r.is_ok());
    r.make_warnings_errors();
    assert_eq!(r.errors(), 1);
}
