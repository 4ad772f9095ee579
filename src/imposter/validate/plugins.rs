//! Plugin names: the short form and the legacy class-name form, placeholders the engine fills
//! in, and whether the chosen engine has a plugin (and which image does, for the hint). The
//! names come from the one engine table, `engine::ENGINES` (with `PLUGINS_IN_NO_IMAGE`).
use crate::imposter::engine::{
    known_plugins, EngineFacts, Generation, ENGINES, GO_STORE_DRIVERS, PLUGINS_IN_NO_IMAGE,
};

/// Prefix of the legacy fully qualified plugin class names,
/// e.g. `io.gatehill.imposter.plugin.openapi.OpenApiPluginImpl`. Only the JVM engine maps them
/// (the Go engine matches the short names exactly: imposter-go@v5.21.3:plugin/plugin.go:51-70).
const LEGACY_PLUGIN_PREFIX: &str = "io.gatehill.imposter.plugin.";

/// The plugin names Imposter knows, for messages.
pub(super) fn known_list() -> String {
    known_plugins().collect::<Vec<_>>().join(", ")
}

/// A value the engine fills in at start-up (`${env.EXAMPLE_PLUGIN}`): not checkable here.
pub(super) fn is_placeholder(value: &str) -> bool {
    value.contains("${")
}

/// The short name of a plugin Imposter knows, from its short or legacy class-name form.
pub(super) fn short_name(plugin: &str) -> Option<&'static str> {
    if let Some(known) = known_plugins().find(|k| *k == plugin) {
        return Some(known);
    }
    let rest = plugin.strip_prefix(LEGACY_PLUGIN_PREFIX)?;
    let (package, class) = rest.split_once('.')?;
    if class.is_empty() {
        return None;
    }
    let package = package.to_ascii_lowercase();
    known_plugins().find(|known| {
        known.replace('-', "") == package || known.split('-').next() == Some(&package)
    })
}

/// A legacy class name (`io.gatehill.imposter.plugin.…`) on the Go engine, which does not know
/// them and stops with "plugin not found": the message, naming the short name to write.
pub(super) fn legacy_name_on_go(engine: &EngineFacts, plugin: &str, short: &str) -> Option<String> {
    (engine.generation == Generation::Go && plugin != short).then(|| {
        format!(
            "the Go engine knows plugins by their short names only and stops on '{plugin}' — \
             write `plugin: {short}`"
        )
    })
}

/// When `engine` lacks `plugin` (a short name): the message, naming an image that has it (the
/// same generation first), or saying that none does.
pub(super) fn missing_from(engine: &EngineFacts, plugin: &str) -> Option<String> {
    if engine.has_plugin(plugin) {
        return None;
    }
    if engine.generation == Generation::Go && GO_STORE_DRIVERS.contains(&plugin) {
        return Some(format!(
            "'{plugin}' is not a plugin on the Go engine: its stores are built in — set \
             IMPOSTER_STORE_DRIVER={plugin} (--env, or `env:` in the project file) instead"
        ));
    }
    let other = ENGINES
        .iter()
        .filter(|f| f.has_plugin(plugin))
        .min_by_key(|f| f.generation != engine.generation);
    let hint = match other {
        Some(f) => format!("use {} ({} image)", f.flags(), f.label),
        None => {
            let why = if PLUGINS_IN_NO_IMAGE.contains(&plugin) {
                "no engine image ships it"
            } else {
                "no engine image ships it (none of the JVM or Go images)"
            };
            format!(
                "{why}: install it into IMPOSTER_PLUGIN_DIR (/opt/imposter/plugins) with a \
                 --base that adds it"
            )
        }
    };
    Some(format!(
        "plugin '{plugin}' is not in the {} image ({}); {hint}",
        engine.label, engine.repository
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imposter::engine::{facts, Flavour, Generation};

    #[test]
    fn short_and_legacy_plugin_names_are_known() {
        for name in known_plugins() {
            assert_eq!(short_name(name), Some(name));
        }
        for (legacy, short) in [
            (
                "io.gatehill.imposter.plugin.openapi.OpenApiPluginImpl",
                "openapi",
            ),
            ("io.gatehill.imposter.plugin.rest.RestPluginImpl", "rest"),
            ("io.gatehill.imposter.plugin.soap.SoapPluginImpl", "soap"),
            ("io.gatehill.imposter.plugin.hbase.HBasePluginImpl", "hbase"),
        ] {
            assert_eq!(short_name(legacy), Some(short), "{legacy}");
        }
        assert_eq!(short_name("store-redis"), Some("store-redis"));
        assert_eq!(
            short_name("io.gatehill.imposter.plugin.nope.NopePluginImpl"),
            None
        );
        assert_eq!(short_name("io.gatehill.imposter.plugin.rest"), None);
        assert_eq!(short_name("REST"), None);
        assert_eq!(short_name(""), None);
        assert!(is_placeholder("${env.EXAMPLE_PLUGIN}"));
        assert!(!is_placeholder("rest"));
    }

    #[test]
    fn a_missing_plugin_names_an_image_that_has_it_or_says_none_does() {
        let core = facts(Flavour::Core, Generation::Jvm).unwrap();
        let go = facts(Flavour::Core, Generation::Go).unwrap();
        assert_eq!(missing_from(core, "rest"), None);
        assert_eq!(missing_from(core, "js-graal"), None, "every JVM image");
        let m = missing_from(core, "wiremock").unwrap();
        assert!(
            m.starts_with("plugin 'wiremock' is not in the core (JVM) image"),
            "{m}"
        );
        assert!(m.contains("use --engine docker-all"), "{m}");
        let m = missing_from(core, "websocket").unwrap();
        assert!(m.contains("use --engine golang"), "{m}");
        let m = missing_from(go, "grpc").unwrap();
        assert!(
            m.contains("--engine docker-all --engine-version 5.21.3-beta"),
            "{m}"
        );
        let m = missing_from(go, "fake-data").unwrap();
        assert!(m.contains("all (Go)"), "same generation first: {m}");
        for (engine, plugin) in [(core, "hbase"), (go, "js-nashorn")] {
            let m = missing_from(engine, plugin).unwrap();
            assert!(
                m.contains("no engine image ships it: install it into IMPOSTER_PLUGIN_DIR"),
                "{m}"
            );
        }
        let m = missing_from(go, "store-redis").unwrap();
        assert!(m.contains("IMPOSTER_STORE_DRIVER=store-redis"), "{m}");
    }

    #[test]
    fn legacy_class_names_are_refused_on_go_only() {
        let jvm = facts(Flavour::Core, Generation::Jvm).unwrap();
        let go = facts(Flavour::Core, Generation::Go).unwrap();
        let legacy = "io.gatehill.imposter.plugin.rest.RestPluginImpl";
        assert_eq!(legacy_name_on_go(jvm, legacy, "rest"), None);
        assert_eq!(legacy_name_on_go(go, "rest", "rest"), None);
        let m = legacy_name_on_go(go, legacy, "rest").unwrap();
        assert!(m.contains("write `plugin: rest`"), "{m}");
    }
}
