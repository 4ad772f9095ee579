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
    assert!(!p.is_deprecated_name());

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
fn every_project_file_name_is_read_and_the_current_name_wins() {
    for name in PROJECT_FILES {
        let tmp = tempfile::tempdir().unwrap();
        let body = if name.ends_with(".json") {
            r#"{"engine": "golang", "version": "5.21.3"}"#
        } else {
            "engine: golang\nversion: 5.21.3\n"
        };
        write(tmp.path(), name, body);
        let p = read(tmp.path()).unwrap().unwrap();
        assert_eq!(p.engine.as_deref(), Some("golang"), "{name}");
        assert_eq!(p.file_name, name);
        assert_eq!(p.is_deprecated_name(), name.starts_with(".imposter"));
    }
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), ".imposter.yaml", "engine: docker\n");
    write(tmp.path(), "imposter-project.yml", "engine: docker-all\n");
    let p = read(tmp.path()).unwrap().unwrap();
    assert_eq!(p.engine.as_deref(), Some("docker-all"));
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
