//! The checks on one config file: it parses, names a plugin the engine has, and every local file
//! it references exists in the config file's own folder and is not left out of the image by a
//! filter.
use super::discover::rel_string;
use super::fields::{engine_word, Field, OutsidePolicy, Scope};
use super::parse::parse_config;
use super::plugins::{is_placeholder, known_list, legacy_name_on_go, missing_from, short_name};
use super::report::Finding;
use crate::imposter::engine::EngineFacts;
use crate::imposter::yaml::{describe, kind_of, untag};
use crate::mutate::outside::OutsideFile;
use crate::mutate::walk::{self, normalize, Excluded, Walk};
use serde_norway::Value;
use std::fs;
use std::io;
use std::path::Path;

/// Keys whose values are user data, never config, so they are not searched for file
/// references.
const DATA_KEYS: [&str; 2] = ["content", "preloadData"];

/// Where in a config a key sits: `file` only means a file inside `response` or a step.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Response,
    Step,
    Other,
}

/// Checks one config file, adding what it finds to `findings`.
pub(super) struct Checker<'a> {
    /// Canonical config directory.
    pub(super) root: &'a Path,
    /// The config directory as the user gave it, for messages.
    pub(super) dir_display: &'a Path,
    /// What goes into the image, and what the filters left out.
    pub(super) walk: &'a Walk,
    /// The engine the image runs.
    pub(super) engine: &'static EngineFacts,
    /// The config file being checked, relative to `root`.
    pub(super) file: &'a str,
    pub(super) findings: &'a mut Vec<Finding>,
    /// What to do with a referenced file outside the config directory.
    pub(super) policy: &'a OutsidePolicy,
    /// The outside files to ship, as found.
    pub(super) outside: &'a mut Vec<OutsideFile>,
}

impl Checker<'_> {
    fn error(&mut self, key: &str, message: impl Into<String>) {
        self.findings.push(Finding::error(self.file, key, message));
    }

    pub(super) fn check_config(&mut self) {
        // The walk resolved the file (a link to its target, checked to stay inside); read
        // that, never following a link again.
        let Some((path, _)) = self
            .walk
            .entry(Path::new(self.file))
            .and_then(|e| e.content())
        else {
            self.error(
                "",
                "cannot read this config file — fix the file or its permissions",
            );
            return;
        };
        let read = walk::open_regular(path).and_then(|(mut f, _)| {
            let mut bytes = Vec::new();
            io::Read::read_to_end(&mut f, &mut bytes).map(|_| bytes)
        });
        let text = match read {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => {
                    self.error("", "this config file is not valid UTF-8 — save it as UTF-8");
                    return;
                }
            },
            Err(e) => {
                self.error(
                    "",
                    format!("cannot read this config file: {e} — fix the file or its permissions"),
                );
                return;
            }
        };
        let docs = match parse_config(self.file, &text) {
            Ok(docs) => docs,
            Err(message) => {
                self.error("", message);
                return;
            }
        };
        let multi = docs.len() > 1;
        for (i, doc) in docs.iter().enumerate() {
            let prefix = if multi {
                format!("document[{i}]")
            } else {
                String::new()
            };
            self.check_document(doc, &prefix);
        }
    }

    fn check_document(&mut self, doc: &Value, prefix: &str) {
        let Value::Mapping(map) = untag(doc) else {
            let message = if doc.is_null() {
                "this config file is empty — add at least a `plugin:` line, e.g. `plugin: rest`"
                    .to_string()
            } else {
                format!(
                    "expected a mapping of `key: value` pairs with a `plugin:` key, found {} — \
                     start the file with e.g. `plugin: rest`",
                    kind_of(doc)
                )
            };
            self.error(prefix, message);
            return;
        };
        let plugin_key = join_key(prefix, "plugin");
        match map.get("plugin").map(untag) {
            None => self.error(
                &plugin_key,
                format!(
                    "missing `plugin:` key — add e.g. `plugin: rest` (known plugins: {})",
                    known_list()
                ),
            ),
            // A placeholder is filled in by the engine at start-up.
            Some(Value::String(plugin)) if is_placeholder(plugin) => {}
            Some(Value::String(plugin)) => match short_name(plugin) {
                None => {
                    let message = format!(
                        "unknown plugin '{plugin}' — check for a typo (known plugins: {}); \
                         Imposter only starts if a plugin with this name is installed",
                        known_list()
                    );
                    self.findings
                        .push(Finding::warning(self.file, &plugin_key, message));
                }
                Some(short) => {
                    if let Some(message) = legacy_name_on_go(self.engine, plugin, short) {
                        self.error(&plugin_key, message);
                    } else if let Some(message) = missing_from(self.engine, short) {
                        self.findings
                            .push(Finding::warning(self.file, &plugin_key, message));
                    }
                }
            },
            Some(other) => self.error(
                &plugin_key,
                format!(
                    "`plugin` must be a plugin name such as `rest`, found {}",
                    describe(other)
                ),
            ),
        }
        self.visit(doc, prefix, Ctx::Other);
    }

    /// Looks for file references at any depth.
    fn visit(&mut self, value: &Value, key: &str, ctx: Ctx) {
        match untag(value) {
            Value::Mapping(map) => {
                for (k, child) in map {
                    let name = key_name(k);
                    let child_key = join_key(key, &name);
                    let reference = match (name.as_str(), ctx) {
                        ("file", Ctx::Response) | ("staticFile", _) => Some(Field::ResponseFile),
                        ("file", Ctx::Step) | ("scriptFile", _) => Some(Field::Script),
                        ("dir", Ctx::Response) => Some(Field::ResponseDir),
                        ("wsdlFile", _) => Some(Field::WsdlFile),
                        ("preloadFile", _) => Some(Field::PreloadFile),
                        ("specFile", _) => Some(Field::SpecFile),
                        _ => None,
                    };
                    if let Some(kind) = reference {
                        self.check_ref(child, &child_key, kind);
                    } else if name == "protoFiles" {
                        self.check_ref_list(child, &child_key);
                    } else if !DATA_KEYS.contains(&name.as_str()) {
                        let child_ctx = match name.as_str() {
                            "response" => Ctx::Response,
                            "steps" => Ctx::Step,
                            _ => Ctx::Other,
                        };
                        self.visit(child, &child_key, child_ctx);
                    }
                }
            }
            // List elements keep the context of the list: `steps[i]` are steps.
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.visit(item, &format!("{key}[{i}]"), ctx);
                }
            }
            _ => {}
        }
    }

    fn check_ref_list(&mut self, value: &Value, key: &str) {
        match untag(value) {
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.check_ref(item, &format!("{key}[{i}]"), Field::ProtoFile);
                }
            }
            other => self.check_ref(other, key, Field::ProtoFile),
        }
    }

    fn check_ref(&mut self, value: &Value, key: &str, kind: Field) {
        let what = if kind.is_dir() {
            "a directory path"
        } else {
            "a file path"
        };
        let raw = match untag(value) {
            Value::String(s) => s.as_str(),
            Value::Null => {
                self.error(
                    key,
                    format!(
                        "is empty — set it to {what} relative to the config file, or remove it"
                    ),
                );
                return;
            }
            other => {
                self.error(
                    key,
                    format!(
                        "expected {what} relative to the config file, found {}",
                        describe(other)
                    ),
                );
                return;
            }
        };
        if raw.trim().is_empty() {
            self.error(
                key,
                format!("is empty — set it to {what} relative to the config file, or remove it"),
            );
            return;
        }
        // Resolved at request time by Imposter: nothing to check here.
        if is_placeholder(raw) {
            return;
        }
        let gen = self.engine.generation;
        if let Some(scheme) = kind.url_schemes(gen).iter().find(|s| raw.starts_with(*s)) {
            if *scheme == "s3://" {
                self.findings.push(Finding::note(
                    self.file,
                    key,
                    format!(
                        "'{raw}' is fetched from S3 when the engine starts: the container \
                         needs AWS credentials and a region then"
                    ),
                ));
            }
            return;
        }
        if let Some(scheme) = remote_scheme(raw) {
            let accepted = kind.url_schemes(gen);
            if accepted.iter().any(|s| s.starts_with(scheme)) {
                // imposter-jvm-engine@v4.9.3 SpecificationLoaderService.kt:142-155 and
                // imposter-go@v5.21.3 specloader.go:27-29 compare the prefix as written.
                self.error(
                    key,
                    format!(
                        "'{raw}' is not read as a URL: the {} engine only recognises {} written \
                         in lower case, and looks for a local file of that name — write the \
                         scheme in lower case",
                        engine_word(gen),
                        accepted.join(", ")
                    ),
                );
                return;
            }
            let fix = if kind == Field::SpecFile {
                "use an http(s) URL, a local file, or the JVM engine (--engine core)"
            } else {
                "download it into the config directory and reference it by path"
            };
            self.error(
                key,
                format!(
                    "'{raw}' is a {scheme} URL, but the {} engine reads {} {} — {fix}",
                    engine_word(gen),
                    kind.plural(),
                    if kind == Field::SpecFile {
                        "from http(s) URLs or from disk"
                    } else {
                        "from disk only"
                    }
                ),
            );
            return;
        }
        self.check_path(raw, key, kind);
    }

    fn check_path(&mut self, raw: &str, key: &str, kind: Field) {
        let dir = self.dir_display.display().to_string();
        if Path::new(raw).is_absolute() {
            self.error(
                key,
                format!(
                    "'{raw}' is an absolute path, so it escapes the config directory — move the \
                     file inside '{dir}' and use a path relative to the config file"
                ),
            );
            return;
        }
        let config_path = self.root.join(self.file);
        let config_dir = config_path.parent().unwrap_or(self.root);
        let base = if kind.resolved_from_root() {
            self.root
        } else {
            config_dir
        };
        let folder = rel_string(config_dir.strip_prefix(self.root).unwrap_or(config_dir));
        let gen = self.engine.generation;
        let scope = kind.scope(gen);
        let joined = base.join(raw);
        let Some(lexical) = normalize(&joined) else {
            self.error(
                key,
                format!("'{raw}' escapes the file system root — move the file inside '{dir}'"),
            );
            return;
        };
        if !lexical.starts_with(self.root) {
            self.outside_ref(raw, key, kind, &joined, &lexical, base);
            return;
        }
        if scope == Scope::ConfigFileDir && !lexical.starts_with(config_dir) {
            // imposter-jvm-engine@v4.9.3 FileUtil.kt:96-105, against the config file's folder.
            self.error(
                key,
                format!(
                    "'{raw}' leaves the folder of this config file ('{folder}/'); the JVM engine \
                     refuses {} outside it — move the file into '{folder}/' (or the config file \
                     next to it)",
                    kind.plural()
                ),
            );
            return;
        }
        let mut real_path = None;
        for candidate in [&joined, &lexical] {
            if let Ok(real) = fs::canonicalize(candidate) {
                if !real.starts_with(self.root) {
                    self.error(
                        key,
                        format!(
                            "'{raw}' resolves through a symlink to '{}', so it escapes the config \
                             directory — move the file inside '{dir}' (copy it, don't link it)",
                            real.display()
                        ),
                    );
                    return;
                }
                real_path.get_or_insert(real);
            }
        }
        let rel = lexical.strip_prefix(self.root).unwrap_or(&lexical);
        let rel_str = rel_string(rel);
        let looked = if rel_str == raw {
            String::new()
        } else {
            format!(" (looked for '{rel_str}')")
        };
        let noun = if kind.is_dir() { "directory" } else { "file" };
        match fs::metadata(&lexical) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.error(
                key,
                format!(
                    "{noun} '{raw}' does not exist in the config directory{looked} — create it or \
                     fix the path"
                ),
            ),
            Err(e) => self.error(
                key,
                format!("cannot access '{raw}'{looked}: {e} — fix its permissions"),
            ),
            Ok(meta) if kind.is_dir() && !meta.is_dir() => self.error(
                key,
                format!(
                    "'{raw}' is a file, but `dir` must be a directory — point it at a directory, \
                     or use `file:` to serve a single file"
                ),
            ),
            Ok(meta) if !kind.is_dir() && meta.is_dir() => self.error(
                key,
                format!("'{raw}' is a directory, but a file is expected — point it at a file"),
            ),
            Ok(_) => {
                // The file is on disk; it must also be in the image. A symlink is followed to
                // what it points at, which must be there too.
                let real_rel = real_path
                    .as_deref()
                    .and_then(|r| r.strip_prefix(self.root).ok());
                let left_out = self
                    .walk
                    .exclusion(rel)
                    .or_else(|| real_rel.and_then(|r| self.walk.exclusion(r)));
                if let Some((path, why)) = left_out {
                    let message = excluded_message(noun, raw, &looked, &rel_string(path), why);
                    self.error(key, message);
                }
            }
        }
    }
}

fn excluded_message(noun: &str, raw: &str, looked: &str, path: &str, why: &Excluded) -> String {
    let fix = match why {
        Excluded::Always(_) => "move it elsewhere in the config directory",
        Excluded::Exclude(_) => "change the pattern or the reference",
    };
    format!("{noun} '{raw}'{looked} exists, but '{path}' is left out of the image by {why} — {fix}")
}

fn key_name(key: &Value) -> String {
    match untag(key) {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => "null".to_string(),
        _ => "?".to_string(),
    }
}

fn join_key(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// `http`, `https` or `s3` when the value is a URL the engine fetches itself.
fn remote_scheme(value: &str) -> Option<&'static str> {
    let lower = value.to_ascii_lowercase();
    ["https", "http", "s3"]
        .into_iter()
        .find(|s| lower.starts_with(&format!("{s}://")))
}
