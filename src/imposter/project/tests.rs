use super::*;
use std::fs;

fn write(dir: &Path, name: &str, body: &str) {
    fs::write(dir.join(name), body).unwrap();
}

#[test]
fn project_file_is_parsed() {
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(read(tmp.path()).unwrap(), None);

    write(
        tmp.path(),
        PROJECT_FILE,
        "version: 4.9.3\nengine: docker\nsomethingElse: [1, 2]\nplugins: [store-redis, js-graal]\n\
         env:\n  IMPOSTER_LOG_LEVEL: DEBUG\n  PORT: 8080\n  FLAG: true\n",
    );
    let p = read(tmp.path()).unwrap().unwrap();
    assert_eq!(p.version.as_deref(), Some("4.9.3"));
    assert_eq!(p.engine.as_deref(), Some("docker"));
    assert_eq!(p.plugins, ["store-redis", "js-graal"]);
    assert_eq!(p.env["IMPOSTER_LOG_LEVEL"], "DEBUG");
    assert_eq!(p.env["PORT"], "8080");
    assert_eq!(p.env["FLAG"], "true");
    assert!(!p.read_by_cli);

    write(
        tmp.path(),
        PROJECT_FILE,
        "version: 4.2\nscanRecursive: true\n",
    );
    let parsed = read(tmp.path()).unwrap().unwrap();
    assert_eq!(parsed.version.as_deref(), Some("4.2"));
    assert_eq!(parsed.recursive, Some(true));

    write(tmp.path(), PROJECT_FILE, "");
    let empty = read(tmp.path()).unwrap().unwrap();
    assert_eq!(empty.file_name, PROJECT_FILE);
    assert_eq!(empty.engine, None);
}

#[test]
fn the_clis_dot_imposter_and_mockimgs_own_name_are_read() {
    for name in CLI_PROJECT_FILES
        .iter()
        .chain(&OWN_PROJECT_FILES)
        .filter(|n| !n.ends_with(".toml"))
    {
        let tmp = tempfile::tempdir().unwrap();
        let body = if name.ends_with(".json") {
            r#"{"engine": "golang", "version": "5.21.3"}"#
        } else {
            "engine: golang\nversion: 5.21.3\n"
        };
        write(tmp.path(), name, body);
        let p = read(tmp.path()).unwrap().unwrap();
        assert_eq!(p.engine.as_deref(), Some("golang"), "{name}");
        assert_eq!(p.file_name, *name);
        assert_eq!(p.read_by_cli, name.starts_with(".imposter"));
    }
}

#[test]
fn the_first_extension_in_json_toml_yaml_yml_order_is_the_one_read() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), ".imposter.yml", "engine: docker-all\n");
    write(tmp.path(), ".imposter.yaml", "engine: docker\n");
    assert_eq!(
        read(tmp.path()).unwrap().unwrap().file_name,
        ".imposter.yaml"
    );
    write(tmp.path(), ".imposter.json", r#"{"engine": "golang"}"#);
    let p = read(tmp.path()).unwrap().unwrap();
    assert_eq!(p.engine.as_deref(), Some("golang"), "json comes first");
    fs::remove_file(tmp.path().join(".imposter.json")).unwrap();
    write(tmp.path(), ".imposter.toml", "engine = \"docker\"\n");
    let e = read(tmp.path()).unwrap_err().to_string();
    assert!(
        e.contains(".imposter.toml") && e.contains("does not read TOML"),
        "{e}"
    );
}

#[test]
fn a_bare_dot_imposter_file_is_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), ".imposter", "engine: golang\n");
    assert_eq!(read(tmp.path()).unwrap(), None);
}

#[test]
fn both_project_files_merge_and_the_later_wins_key_by_key() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        ".imposter.yaml",
        "engine: docker\nversion: 4.9.3\nenv:\n  a: cli\n  B: cli\n",
    );
    write(
        tmp.path(),
        "imposter-project.yml",
        "engine: docker-all\nenv:\n  b: own\n",
    );
    let p = read(tmp.path()).unwrap().unwrap();
    assert_eq!(p.engine.as_deref(), Some("docker-all"));
    assert_eq!(
        p.version.as_deref(),
        Some("4.9.3"),
        "kept from the CLI's file"
    );
    assert_eq!(p.env["A"], "cli");
    assert_eq!(p.env["B"], "own");
    assert_eq!(p.file_name, "imposter-project.yml");
    assert!(p.read_by_cli);
}

#[test]
fn env_keys_are_upper_cased_as_the_cli_does() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        ".imposter.yaml",
        "env:\n  imposter_log_level: debug\n",
    );
    let p = read(tmp.path()).unwrap().unwrap();
    assert_eq!(
        p.env["IMPOSTER_LOG_LEVEL"], "debug",
        "values are kept as written"
    );
}

#[test]
fn an_imposter_directory_is_not_a_project_file() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join(".imposter")).unwrap();
    assert_eq!(read(tmp.path()).unwrap(), None);
}

#[test]
fn malformed_project_file_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), PROJECT_FILE, "version: [4.9.3\n");
    let err = read(tmp.path()).unwrap_err();
    assert!(matches!(err, ProjectError::Malformed { .. }), "{err:?}");
    assert!(err.to_string().contains(PROJECT_FILE), "{err}");

    for (body, want) in [
        ("recursive: maybe\n", "`recursive` must be true or false"),
        ("plugins: hbase\n", "`plugins` must be a list"),
        ("env: [A=1]\n", "`env` must be a mapping"),
        ("env:\n  A: [1]\n", "`env` must map variable names"),
    ] {
        write(tmp.path(), PROJECT_FILE, body);
        let err = read(tmp.path()).unwrap_err().to_string();
        assert!(err.contains(want), "{body}: {err}");
    }
}

#[test]
fn recursive_scan_comes_from_the_flag_the_project_file_or_the_environment() {
    let on = ProjectFile {
        recursive: Some(true),
        ..Default::default()
    };
    let off = ProjectFile {
        recursive: Some(false),
        ..Default::default()
    };
    let none = BTreeMap::new();
    assert!(!scan_recursive(false, None, &none));
    assert!(scan_recursive(true, None, &none));
    assert!(scan_recursive(false, Some(&on), &none));
    assert!(!scan_recursive(false, Some(&off), &none));
    assert!(scan_recursive(true, Some(&off), &none));
    let env = BTreeMap::from([(SCAN_RECURSIVE_ENV.to_string(), "TRUE".to_string())]);
    assert!(scan_recursive(false, None, &env));
}

#[test]
fn env_flags_override_the_project_file() {
    let p = ProjectFile {
        env: BTreeMap::from([("A".into(), "file".into()), ("B".into(), "file".into())]),
        ..Default::default()
    };
    let flags = BTreeMap::from([("B".to_string(), "flag".to_string())]);
    let env = merged_env(Some(&p), &flags);
    assert_eq!(env["A"], "file");
    assert_eq!(env["B"], "flag");
}
