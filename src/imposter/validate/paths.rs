//! The checks on references that leave the config directory: refused where the engine
//! refuses them (its rules per field are in `fields`), else shipped or refused by the policy.
use super::checks::Checker;
use super::fields::{engine_word, Field, OutsidePolicy, Scope};
use super::report::Finding;
use crate::imposter::engine::Generation;
use crate::mutate::outside::{self, OutsideFile};
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

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
