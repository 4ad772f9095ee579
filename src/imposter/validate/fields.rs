//! Where each engine lets each file reference point, read in the engines' code (see
//! `docs/engine-facts.md`, "Paths in config files"), and what mockimg does with a reference
//! that leaves the config directory.
use crate::imposter::engine::Generation;

/// "JVM" or "Go", for messages.
pub(super) fn engine_word(gen: Generation) -> &'static str {
    match gen {
        Generation::Jvm => "JVM",
        Generation::Go => "Go",
    }
}

/// A config key that names a file or directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    /// `response.file` (and its alias `staticFile`).
    ResponseFile,
    /// `response.dir`.
    ResponseDir,
    /// `scriptFile`, and a step's `file`.
    Script,
    /// `system.stores.*.preloadFile`.
    PreloadFile,
    /// `specFile`.
    SpecFile,
    /// `wsdlFile`.
    WsdlFile,
    /// gRPC `protoFiles[]` (Go engine only).
    ProtoFile,
}

/// How far a reference may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// Inside the config file's own folder.
    ConfigFileDir,
    /// Inside the config directory the engine was started with.
    Root,
    /// Anywhere: the engine joins and reads the path without a check.
    Anywhere,
}

impl Field {
    /// True when the reference names a directory.
    pub(super) fn is_dir(self) -> bool {
        self == Field::ResponseDir
    }

    /// Resolved from the root config directory instead of the config file's folder: gRPC
    /// `protoFiles` (imposter-go@v5.21.3 `external/plugins/grpc/proto.go:27-31` joins them onto
    /// the root `ConfigDir`, never prefixed with the config file's folder).
    pub(super) fn resolved_from_root(self) -> bool {
        self == Field::ProtoFile
    }

    /// URL schemes the engine fetches for this field; any other value is a local path. The
    /// prefixes are matched case-sensitively, as the engines do.
    pub(super) fn url_schemes(self, engine: Generation) -> &'static [&'static str] {
        match (self, engine) {
            // imposter-jvm-engine@v4.9.3 SpecificationLoaderService.kt:147-155
            (Field::SpecFile, Generation::Jvm) => &["http://", "https://", "s3://"],
            // imposter-go@v5.21.3 plugin/openapi/specloader.go:16-17,27-29
            (Field::SpecFile, Generation::Go) => &["http://", "https://"],
            _ => &[],
        }
    }

    /// Where the engine reads this field from.
    ///
    /// JVM (`config.dir` is the config file's folder, `ConfigUtil.kt:298`): `FileUtil.kt:96-105`
    /// `validatePath` refuses escapes from it, and is called only for response files
    /// (`ResponseFileServiceImpl.kt:135,156`) and preload files (`StoreServiceImpl.kt:123`);
    /// specs (`SpecificationLoaderService.kt:168`), scripts (`ScriptUtil.kt:86`) and WSDLs
    /// (`SoapPluginImpl.kt:120`) are joined onto the folder and read unchecked, and so is a
    /// static `dir` (`HandlerServiceImpl.kt:224`), though mockimg never ships a directory from
    /// outside.
    ///
    /// Go (`ConfigDir` is the root, `internal/config/config.go:116`; references are prefixed
    /// with the config file's folder, `prefix.go:7-30`, `config.go:171,176,185`):
    /// `pkg/utils/files.go:12-22` `ValidatePath` keeps response files and dirs
    /// (`internal/response/response.go:144`), script steps (including the legacy `scriptFile`,
    /// `legacy.go:187-192`; `internal/steps/script/script.go:39`) and preload files
    /// (`internal/store/store.go:100`) inside the root; the spec (`specloader.go:20-22`) and
    /// WSDL (`plugin/soap/plugin.go:21-24`) are read unchecked. Proto files are kept to the root
    /// (the compiler resolves them against it as import path, `proto.go:41-45`).
    pub(super) fn scope(self, engine: Generation) -> Scope {
        match (self, engine) {
            (Field::SpecFile | Field::WsdlFile, _) => Scope::Anywhere,
            (Field::Script, Generation::Jvm) => Scope::Anywhere,
            // A static dir is served from `File(config.dir, dir)` by a Vert.x StaticHandler with
            // root file-system access (VertxWebServerFactoryImpl.kt:173-175): no check. mockimg
            // ships no directory from outside, so one outside the config directory is refused.
            (Field::ResponseDir, Generation::Jvm) => Scope::Anywhere,
            (Field::ResponseFile | Field::PreloadFile, Generation::Jvm) => Scope::ConfigFileDir,
            (Field::ProtoFile, _) => Scope::Root,
            (_, Generation::Go) => Scope::Root,
        }
    }

    /// Words for messages: "response files", "scripts", ...
    pub(super) fn plural(self) -> &'static str {
        match self {
            Field::ResponseFile => "response files",
            Field::ResponseDir => "response directories",
            Field::Script => "scripts",
            Field::PreloadFile => "store preload files",
            Field::SpecFile => "OpenAPI specs",
            Field::WsdlFile => "WSDL files",
            Field::ProtoFile => "proto files",
        }
    }
}

/// What to do with a referenced file that lies outside the config directory, where the engine
/// would read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutsidePolicy {
    /// Ship it in the config layer at the path the engine resolves it to, with the config
    /// directory at this absolute path in the image.
    Ship {
        /// `--config-path` (for a Lambda zip, `/var/task/config`).
        config_path: String,
        /// The directory a file may not climb out of: `/` in an image, `/var/task` (the zip's
        /// root) in a Lambda zip.
        floor: String,
        /// Where it ships, for messages: "the image", "the Lambda zip".
        into: String,
    },
    /// Refuse it, for this reason (e.g. "--no-outside-files keeps the image to the config
    /// directory").
    Refuse(String),
}

impl Default for OutsidePolicy {
    fn default() -> Self {
        OutsidePolicy::image(crate::mutate::layer::DEFAULT_CONFIG_PATH)
    }
}

impl OutsidePolicy {
    /// Ship into an image whose config directory is at `config_path`.
    pub fn image(config_path: &str) -> Self {
        OutsidePolicy::Ship {
            config_path: config_path.to_string(),
            floor: "/".to_string(),
            into: "the image".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_response_and_preload_files_are_kept_to_the_folder_on_the_jvm() {
        use Field::*;
        let jvm = Generation::Jvm;
        assert_eq!(ResponseFile.scope(jvm), Scope::ConfigFileDir);
        assert_eq!(PreloadFile.scope(jvm), Scope::ConfigFileDir);
        for f in [SpecFile, WsdlFile, Script, ResponseDir] {
            assert_eq!(f.scope(jvm), Scope::Anywhere, "{f:?}");
        }
        let go = Generation::Go;
        for f in [ResponseFile, ResponseDir, PreloadFile, Script, ProtoFile] {
            assert_eq!(f.scope(go), Scope::Root, "{f:?}");
        }
        assert_eq!(SpecFile.scope(go), Scope::Anywhere);
        assert!(SpecFile.url_schemes(jvm).contains(&"s3://"));
        assert!(!SpecFile.url_schemes(go).contains(&"s3://"));
        assert!(ResponseFile.url_schemes(jvm).is_empty());
    }
}
