//! Plugin names: the short form and the legacy class-name form, placeholders the engine fills
//! in, and whether the chosen engine has a plugin (and which engine does, for the hint).
use crate::imposter::engine::{EngineFacts, ENGINES};

/// Plugin names a config's `plugin:` may take.
pub(super) const KNOWN_PLUGINS: [&str; 12] = [
    "rest",
    "openapi",
    "soap",
    "hbase",
    "sfdc",
    "wiremock",
    "websocket",
    "grpc",
    "oidc-server",
    "swaggerui",
    "wsdlweb",
    "fake-data",
];

/// Prefix of the legacy fully qualified plugin class names,
/// e.g. `io.gatehill.imposter.plugin.openapi.OpenApiPluginImpl`.
const LEGACY_PLUGIN_PREFIX: &str = "io.gatehill.imposter.plugin.";

/// A value the engine fills in at start-up (`${env.EXAMPLE_PLUGIN}`): not checkable here.
pub(super) fn is_placeholder(value: &str) -> bool {
    value.contains("${")
}

/// The short name of a plugin Imposter knows, from its short or legacy class-name form; any
/// plugin an engine image lists counts too (the project file's `plugins:` names e.g. stores).
pub(super) fn short_name(plugin: &str) -> Option<&'static str> {
    let engine_plugins = ENGINES.iter().flat_map(|f| f.plugins.iter().copied());
    if let Some(known) = KNOWN_PLUGINS
        .iter()
        .copied()
        .chain(engine_plugins)
        .find(|k| *k == plugin)
    {
        return Some(known);
    }
    let rest = plugin.strip_prefix(LEGACY_PLUGIN_PREFIX)?;
    let (package, class) = rest.split_once('.')?;
    if class.is_empty() {
        return None;
    }
    let package = package.to_ascii_lowercase();
    KNOWN_PLUGINS.iter().copied().find(|known| {
        known.replace('-', "") == package || known.split('-').next() == Some(&package)
    })
}

/// When `engine` lacks `plugin` (a short name): the message, naming an engine that has it
/// (the same generation first).
pub(super) fn missing_from(engine: &EngineFacts, plugin: &str) -> Option<String> {
    if engine.has_plugin(plugin) {
        return None;
    }
    let other = ENGINES
        .iter()
        .filter(|f| f.has_plugin(plugin))
        .min_by_key(|f| f.generation != engine.generation);
    let hint = match other {
        Some(f) => format!("use {} ({} image)", f.flags(), f.label),
        None => "no engine image ships it: use a --base that adds it".to_string(),
    };
    Some(format!(
        "plugin '{plugin}' is not in the {} image ({}); {hint}",
        engine.label, engine.repository
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imposter::engine::{Flavour, Generation};

    #[test]
    fn known_and_legacy_plugin_names() {
        for name in KNOWN_PLUGINS {
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
    fn a_missing_plugin_names_an_engine_that_has_it() {
        let core = crate::imposter::engine::facts(Flavour::Core, Generation::Jvm).unwrap();
        let go = crate::imposter::engine::facts(Flavour::Core, Generation::Go).unwrap();
        assert_eq!(missing_from(core, "rest"), None);
        let m = missing_from(core, "hbase").unwrap();
        assert!(
            m.starts_with("plugin 'hbase' is not in the core (JVM) image"),
            "{m}"
        );
        assert!(m.contains("use --engine docker-all"), "{m}");
        let m = missing_from(core, "websocket").unwrap();
        assert!(m.contains("use --engine golang"), "{m}");
        let m = missing_from(go, "grpc").unwrap();
        assert!(
            m.contains("--engine docker-all --engine-version 5.21.3"),
            "{m}"
        );
        let m = missing_from(go, "fake-data").unwrap();
        assert!(m.contains("all (Go)"), "same generation first: {m}");
    }
}
