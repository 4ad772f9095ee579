//! The plugin names Imposter knows, in the short form and the legacy class-name form.

/// Plugin names Imposter ships or documents.
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

/// True if `plugin` names a plugin Imposter knows, in short or legacy class-name form.
pub(super) fn is_known_plugin(plugin: &str) -> bool {
    if KNOWN_PLUGINS.contains(&plugin) {
        return true;
    }
    let Some(rest) = plugin.strip_prefix(LEGACY_PLUGIN_PREFIX) else {
        return false;
    };
    let Some((package, class)) = rest.split_once('.') else {
        return false;
    };
    if class.is_empty() {
        return false;
    }
    let package = package.to_ascii_lowercase();
    KNOWN_PLUGINS
        .iter()
        .any(|known| known.replace('-', "") == package || known.split('-').next() == Some(&package))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_legacy_plugin_names() {
        for name in KNOWN_PLUGINS {
            assert!(is_known_plugin(name), "{name}");
        }
        for legacy in [
            "io.gatehill.imposter.plugin.openapi.OpenApiPluginImpl",
            "io.gatehill.imposter.plugin.rest.RestPluginImpl",
            "io.gatehill.imposter.plugin.soap.SoapPluginImpl",
            "io.gatehill.imposter.plugin.hbase.HBasePluginImpl",
        ] {
            assert!(is_known_plugin(legacy), "{legacy}");
        }
        assert!(!is_known_plugin(
            "io.gatehill.imposter.plugin.nope.NopePluginImpl"
        ));
        assert!(!is_known_plugin("io.gatehill.imposter.plugin.rest"));
        assert!(!is_known_plugin("REST"));
        assert!(!is_known_plugin(""));
    }
}
