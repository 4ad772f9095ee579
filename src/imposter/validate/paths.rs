//! Where each engine lets each file reference point, read in the engines' code (see
//! `docs/engine-facts.md`, "Paths in config files"), and what mockimg does with a reference
//! that leaves the config directory.
use super::checks::Checker;
use super::report::Finding;
use crate::imposter::engine::Generation;
use crate::mutate::outside::{self, OutsideFile};
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

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

impl Checker<'_> {
    fn err(&mut self, key: &str, message: String) {
        self.findings.push(Finding::error(self.file, key, message));
    }

    /// A reference whose lexical path (`lexical`, from `joined`) leaves the config directory:
    /// refused where the engine refuses it, else shipped or refused by the policy.
    pub(super) fn outside_ref(
        &mut self,
        raw: &str,
        key: &str,
        kind: Field,
        joined: &Path,
        lexical: &Path,
        base: &Path,
    ) {
        let dir = self.dir_display.display().to_string();
        let gen = self.engine.generation;
        let shown = lexical.display();
        match kind.scope(gen) {
            Scope::ConfigFileDir => {
                // imposter-jvm-engine@v4.9.3 FileUtil.kt:96-105 (ResponseFileServiceImpl.kt:135,
                // StoreServiceImpl.kt:123).
                let message = format!(
                    "'{raw}' resolves outside the config directory (to '{shown}'), and the JVM \
                     engine refuses {} outside the config file's own folder — move the file \
                     into '{dir}', next to the config file",
                    kind.plural()
                );
                return self.err(key, message);
            }
            Scope::Root => {
                // imposter-go@v5.21.3 pkg/utils/files.go:12-22.
                let jvm = if kind.scope(Generation::Jvm) == Scope::Anywhere {
                    ", or use the JVM engine (--engine core), which reads it from there"
                } else {
                    ""
                };
                let message = format!(
                    "'{raw}' resolves outside the config directory (to '{shown}'), and the {} \
                     engine refuses {} outside its config directory — move the file into \
                     '{dir}'{jvm}",
                    engine_word(gen),
                    kind.plural()
                );
                return self.err(key, message);
            }
            Scope::Anywhere if kind.is_dir() => {
                return self.err(
                    key,
                    format!(
                        "'{raw}' is a directory outside the config directory (at '{shown}'); \
                         mockimg ships referenced files from outside, never directories — move \
                         it into '{dir}'"
                    ),
                )
            }
            Scope::Anywhere => {}
        }
        let (config_path, floor, into) = match self.policy {
            OutsidePolicy::Refuse(reason) => {
                let message = format!(
                    "'{raw}' resolves outside the config directory (to '{shown}'): {reason} — \
                     move the file into '{dir}'"
                );
                return self.err(key, message);
            }
            OutsidePolicy::Ship {
                config_path,
                floor,
                into,
            } => (config_path.clone(), floor.clone(), into.clone()),
        };
        let rel_dir = base.strip_prefix(self.root).unwrap_or(Path::new(""));
        let landing = outside::image_path(&config_path, rel_dir, raw)
            .filter(|p| Path::new(p).starts_with(&floor) && Path::new(p) != Path::new(&floor));
        let Some(path) = landing else {
            let fix = if floor == "/" {
                " or use a deeper --config-path"
            } else {
                ""
            };
            return self.err(
                key,
                format!(
                    "'{raw}' climbs above {floor} from {config_path}, so the file has no place in \
                     {into} — move it into '{dir}'{fix}"
                ),
            );
        };
        // The folder the reference reaches up to: a symlink may not lead out of it.
        let anchor = self
            .root
            .ancestors()
            .find(|a| lexical.starts_with(a))
            .unwrap_or(Path::new("/"));
        // The engine resolves `..` after following links (the kernel does), so the file it
        // reads is the one `joined` reaches; it must be the one the lexical path names.
        let physical = match fs::canonicalize(joined) {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return self.err(
                    key,
                    format!(
                        "file '{raw}' does not exist (looked for '{shown}', outside the config \
                         directory) — create it or fix the path"
                    ),
                )
            }
            Err(e) => {
                return self.err(
                    key,
                    format!("cannot access '{raw}' (at '{shown}'): {e} — fix its permissions"),
                )
            }
        };
        if fs::canonicalize(lexical).ok().as_deref() != Some(physical.as_path()) {
            return self.err(
                key,
                format!(
                    "'{raw}' passes through a symlink before its `..`, so the engine would read \
                     '{}' rather than '{shown}' — reference the file without the symlink",
                    physical.display()
                ),
            );
        }
        if !physical.starts_with(anchor) {
            return self.err(
                key,
                format!(
                    "'{raw}' resolves through a symlink to '{}', outside '{}', the folder the \
                     reference names — copy the file there instead of linking it",
                    physical.display(),
                    anchor.display()
                ),
            );
        }
        let meta = match fs::metadata(&physical) {
            Ok(m) => m,
            Err(e) => {
                return self.err(
                    key,
                    format!("cannot access '{raw}' (at '{shown}'): {e} — fix its permissions"),
                )
            }
        };
        if !meta.is_file() {
            let what = if meta.is_dir() {
                "a directory"
            } else {
                "not a regular file"
            };
            return self.err(
                key,
                format!(
                    "'{raw}' (at '{shown}') is {what}, but a file is expected — point it at a file"
                ),
            );
        }
        self.findings.push(Finding::note(
            self.file,
            key,
            format!(
                "'{raw}' is outside the config directory: '{}' ships at {path} in {into}, \
                 where the engine looks for it",
                physical.display()
            ),
        ));
        if kind == Field::WsdlFile && gen == Generation::Jvm {
            self.warn_left_behind_schemas(raw, key, &physical);
        }
        self.outside.push(OutsideFile {
            reference: raw.to_string(),
            config: self.file.to_string(),
            key: key.to_string(),
            source: physical,
            path,
            executable: meta.permissions().mode() & 0o111 != 0,
        });
    }
}

impl Checker<'_> {
    /// The JVM engine's WSDL parser also reads every `*.xsd` in the WSDL's folder
    /// (imposter-jvm-engine@v4.9.3 `AbstractWsdlParser.kt:85`); from outside, only the WSDL ships.
    fn warn_left_behind_schemas(&mut self, raw: &str, key: &str, wsdl: &Path) {
        let Some(folder) = wsdl.parent() else { return };
        let mut xsds: Vec<String> = fs::read_dir(folder)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".xsd"))
            .collect();
        if xsds.is_empty() {
            return;
        }
        xsds.sort();
        self.findings.push(Finding::warning(
            self.file,
            key,
            format!(
                "'{raw}' ships alone, but the JVM engine also loads the schemas beside a WSDL \
                 ({}), which stay behind — move the WSDL and its schemas into the config directory",
                xsds.join(", ")
            ),
        ));
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
