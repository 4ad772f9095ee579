use super::*;

fn choose_with(
    base: Option<&str>,
    engine: Option<&str>,
    version: Option<&str>,
    project: Option<&ProjectFile>,
) -> Result<EngineChoice> {
    let flags = EngineFlags {
        base: base.map(str::to_string),
        engine: engine.map(str::to_string),
        version: version.map(str::to_string),
    };
    choose(&flags, project)
}

/// (engine name, version, base it picks, facts label)
const NAMES: [(&str, Option<&str>, &str, &str); 15] = [
    ("docker", None, "imposter:4.9.3", "core (JVM)"),
    ("core", None, "imposter:4.9.3", "core (JVM)"),
    ("jvm", None, "imposter:4.9.3", "core (JVM)"),
    ("unpacked", None, "imposter:4.9.3", "core (JVM)"),
    ("docker-all", None, "imposter-all:4.9.3", "all (JVM)"),
    ("all", None, "imposter-all:4.9.3", "all (JVM)"),
    (
        "docker-distroless",
        Some("4.2.0"),
        "imposter-distroless:4.2.0",
        "distroless (JVM)",
    ),
    (
        "distroless",
        None,
        "imposter-distroless:4.9.3",
        "distroless (JVM)",
    ),
    ("golang", None, "imposter:5.21.3-beta", "core (Go)"),
    ("native", None, "imposter:5.21.3-beta", "core (Go)"),
    ("go", Some("5.0.1"), "imposter:5.0.1-beta", "core (Go)"),
    (
        "docker",
        Some("5.21.3"),
        "imposter:5.21.3-beta",
        "core (Go)",
    ),
    (
        "docker-all",
        Some("5.21.3-beta"),
        "imposter-all:5.21.3-beta",
        "all (Go)",
    ),
    ("all", Some("latest"), "imposter-all:latest", "all (JVM)"),
    ("docker", Some("4.2.0"), "imposter:4.2.0", "core (JVM)"),
];

#[test]
fn every_engine_name_picks_its_repository_generation_and_pinned_version() {
    assert_eq!(DEFAULT_ENGINE_VERSION, "4.9.3", "update the table below");
    for (name, version, base, label) in NAMES {
        let c = choose_with(None, Some(name), version, None).unwrap();
        assert_eq!(
            c.base.to_string(),
            format!("docker.io/outofcoffee/{base}"),
            "{name}"
        );
        assert_eq!(c.facts.label, label, "{name} {version:?}");
        assert_eq!(c.floating, version == Some("latest"), "{name}");
        let resolved = c.notes.iter().any(|n| n.contains("images are tagged"));
        assert_eq!(
            resolved,
            version == Some("5.21.3") || version == Some("5.0.1"),
            "{name}"
        );
        // The project file's `engine:` accepts the same names.
        let p = ProjectFile {
            engine: Some(name.into()),
            version: version.map(str::to_string),
            ..Default::default()
        };
        let from_file = choose_with(None, None, None, Some(&p)).unwrap();
        assert_eq!(from_file.base, c.base, "{name} from the file");
    }
    for name in ENGINE_NAMES {
        assert!(parse_name(name).is_some(), "{name}");
    }
}

#[test]
fn unknown_engine_is_a_usage_error_listing_the_names() {
    let e = choose_with(None, Some("podman"), None, None).unwrap_err();
    assert!(e.is_usage());
    for name in ENGINE_NAMES {
        assert!(e.to_string().contains(name), "{e}");
    }
    let p = ProjectFile {
        engine: Some("golang-nope".into()),
        ..Default::default()
    };
    let e = choose_with(None, None, None, Some(&p)).unwrap_err();
    assert!(
        e.is_usage() && e.to_string().contains("project file"),
        "{e}"
    );
}

#[test]
fn engine_and_version_of_different_generations_are_refused() {
    for (engine, version) in [
        ("golang", "4.9.3"),
        ("jvm", "5.21.3"),
        ("docker-distroless", "5.21.3"),
    ] {
        let e = choose_with(None, Some(engine), Some(version), None).unwrap_err();
        assert!(e.is_usage(), "{engine} {version}: {e}");
    }
}

#[test]
fn flags_beat_the_project_file_and_base_beats_both() {
    let y = ProjectFile {
        version: Some("4.1.0".into()),
        engine: Some("docker-all".into()),
        ..Default::default()
    };
    let b = |base, engine, version| {
        choose_with(base, engine, version, Some(&y))
            .unwrap()
            .base
            .to_string()
    };
    assert_eq!(
        b(None, None, None),
        "docker.io/outofcoffee/imposter-all:4.1.0"
    );
    assert_eq!(
        b(None, Some("core"), None),
        "docker.io/outofcoffee/imposter:4.1.0"
    );
    assert_eq!(
        b(None, None, Some("4.2.0")),
        "docker.io/outofcoffee/imposter-all:4.2.0"
    );
    assert_eq!(b(Some("oci:x:1"), Some("all"), Some("9")), "oci:x:1");
    assert_eq!(
        resolve_base(None, None, None, None).unwrap().to_string(),
        format!("docker.io/outofcoffee/imposter:{DEFAULT_ENGINE_VERSION}")
    );
    let e = resolve_base(None, None, Some("bad:tag"), None).unwrap_err();
    assert!(e.is_usage() && e.to_string().contains("bad:tag"), "{e}");
}

#[test]
fn a_base_says_which_engine_it_holds_by_repository_and_tag() {
    let f = |base: &str, engine: Option<&str>| choose_with(Some(base), engine, None, None).unwrap();
    assert_eq!(
        f("outofcoffee/imposter-all:4.9.3", None).facts.label,
        "all (JVM)"
    );
    assert_eq!(
        f("outofcoffee/imposter:5.21.3", None).facts.label,
        "core (Go)"
    );
    assert_eq!(f("oci:dir:5.2.0", None).facts.label, "core (Go)");
    assert_eq!(f("oci:dir", Some("golang")).facts.label, "core (Go)");
    assert_eq!(
        f("oci:dir", Some("docker-distroless")).facts.label,
        "distroless (JVM)"
    );
    assert!(f("outofcoffee/imposter", None).floating);
    assert!(f("outofcoffee/imposter:latest", None).floating);
    assert!(!f("outofcoffee/imposter:4.9.3", None).floating);
    assert!(
        !f("oci:dir:latest", None).floating,
        "a local copy does not move"
    );
}

#[test]
fn go_versions_resolve_to_the_beta_tags_that_exist_and_say_so() {
    let c = choose_with(None, Some("golang"), Some("5.21.3"), None).unwrap();
    assert_eq!(
        c.base.to_string(),
        "docker.io/outofcoffee/imposter:5.21.3-beta"
    );
    assert!(
        c.notes.iter().any(|n| n.contains("tagged 5.21.3-beta")),
        "{:?}",
        c.notes
    );
    let p = ProjectFile {
        version: Some("5.21.3".into()),
        ..Default::default()
    };
    let c = choose_with(None, None, None, Some(&p)).unwrap();
    assert_eq!(
        c.base.to_string(),
        "docker.io/outofcoffee/imposter:5.21.3-beta"
    );
    assert_eq!(c.notes.len(), 1, "a project file's version is resolved too");
    let c = choose_with(None, Some("go"), None, None).unwrap();
    assert!(c.notes.is_empty(), "the pinned default is a real tag");
    let c = choose_with(None, None, Some("4.9.3"), None).unwrap();
    assert!(c.notes.is_empty(), "JVM tags are plain versions");
}

#[test]
fn cli_only_engine_names_map_to_an_image_with_a_note() {
    for name in ["golang", "native"] {
        let c = choose_with(None, Some(name), None, None).unwrap();
        assert_eq!(c.facts.label, "core (Go)");
        assert!(
            c.notes[0].contains("downloaded imposter-go binary"),
            "{:?}",
            c.notes
        );
    }
    let c = choose_with(None, Some("awslambda"), None, None).unwrap();
    assert_eq!(c.facts.label, "core (JVM)");
    assert!(c.notes[0].contains("mockimg bundle"), "{:?}", c.notes);
    let c = choose_with(None, Some("awslambda"), Some("5.21.3"), None).unwrap();
    assert_eq!(c.facts.label, "core (Go)");
    assert_eq!(
        c.base.to_string(),
        "docker.io/outofcoffee/imposter:5.21.3-beta"
    );
}

#[test]
fn the_major_beta_tag_moves_like_latest() {
    let c = choose_with(None, Some("golang"), Some("5-beta"), None).unwrap();
    assert!(c.floating, "5-beta is re-pushed by every 5.x release");
    let c = choose_with(None, Some("golang"), Some("5"), None).unwrap();
    assert_eq!(c.base.to_string(), "docker.io/outofcoffee/imposter:5-beta");
    assert!(c.floating);
    assert!(
        !choose_with(None, Some("golang"), Some("5.21.3"), None)
            .unwrap()
            .floating
    );
    assert!(
        choose_with(Some("outofcoffee/imposter-all:5-beta"), None, None, None)
            .unwrap()
            .floating
    );
}

#[test]
fn every_jvm_image_carries_the_server_plugins_and_all_adds_the_rest() {
    let jvm: Vec<_> = ENGINES
        .iter()
        .filter(|f| f.generation == Generation::Jvm)
        .collect();
    let core = facts(Flavour::Core, Generation::Jvm).unwrap();
    let all = facts(Flavour::All, Generation::Jvm).unwrap();
    for f in &jvm {
        for p in ["openapi", "rest", "soap", "js-graal", "store-inmem"] {
            assert!(f.has_plugin(p), "{p} in {}", f.label);
        }
    }
    assert_eq!(
        facts(Flavour::Distroless, Generation::Jvm).unwrap().plugins,
        core.plugins,
        "distroless copies distro/core's libraries"
    );
    assert!(core.plugins.iter().all(|p| all.has_plugin(p)));
    for p in [
        "sfdc",
        "wiremock",
        "store-dynamodb",
        "store-redis",
        "store-graphql",
        "fake-data",
    ] {
        assert!(all.has_plugin(p) && !core.has_plugin(p), "{p}");
    }
}

#[test]
fn go_images_have_their_own_plugins_and_no_jvm_only_ones() {
    let core = facts(Flavour::Core, Generation::Go).unwrap();
    let all = facts(Flavour::All, Generation::Go).unwrap();
    assert!(core.plugins.iter().all(|p| all.has_plugin(p)));
    assert!(core.has_plugin("websocket"));
    for p in ["grpc", "oidc-server", "swaggerui", "wsdlweb", "fake-data"] {
        assert!(all.has_plugin(p) && !core.has_plugin(p), "{p}");
    }
    for f in [core, all] {
        for p in ["js-graal", "store-inmem", "store-redis", "sfdc", "wiremock"] {
            assert!(!f.has_plugin(p), "{p} in {}", f.label);
        }
    }
}

#[test]
fn plugins_in_no_image_are_in_no_row_and_still_known() {
    for p in PLUGINS_IN_NO_IMAGE {
        assert!(ENGINES.iter().all(|f| !f.has_plugin(p)), "{p}");
        assert!(known_plugins().any(|k| k == *p), "{p}");
    }
    let all: Vec<_> = known_plugins().collect();
    let mut dedup = all.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(all.len(), dedup.len(), "each name once");
}

#[test]
fn engine_facts_rows() {
    let row = |l: &str| ENGINES.iter().find(|f| f.label == l).unwrap();
    assert_eq!(row("core (JVM)").user, "imposter");
    assert_eq!(row("distroless (JVM)").user, "nonroot");
    assert_eq!(row("core (Go)").user, "", "FROM scratch, no USER");
    assert!(ENGINES.iter().all(|f| f.config_dir == ENGINE_CONFIG_DIR));
    assert_eq!(
        row("all (Go)").flags(),
        "--engine docker-all --engine-version 5.21.3-beta"
    );
    assert_eq!(row("core (Go)").flags(), "--engine golang");
    assert_eq!(row("all (JVM)").flags(), "--engine docker-all");
    assert_eq!(generation_of_version("v5.0.0"), Some(Generation::Go));
    assert_eq!(generation_of_version("4.9.3-beta"), Some(Generation::Jvm));
    assert_eq!(generation_of_version("latest"), None);
}
