//! Validation of an Imposter configuration directory before it is bundled.
//!
//! [`validate_dir`] finds the Imposter config files in a directory (names ending in
//! `-config.yaml`, `-config.yml` or `-config.json`), parses each one, checks its
//! `plugin:` key, and checks that every local file it references (response files,
//! scripts, OpenAPI specs, WSDLs, store preload files, ...) exists *inside* the config
//! directory, so that the file really ends up in the image.
//!
//! Problems with the config are returned as [`Finding`]s in a [`Report`]; only I/O
//! problems with the directory itself are a [`ValidateError`].

use std::cmp::Ordering;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use serde_norway::Value;

/// File-name suffixes that make a file an Imposter config file.
pub const CONFIG_SUFFIXES: [&str; 3] = ["-config.yaml", "-config.yml", "-config.json"];

/// Name of the project file the Imposter CLI reads from the config directory.
pub const IMPOSTER_YAML: &str = ".imposter.yaml";

/// Plugin names Imposter ships or documents.
pub const KNOWN_PLUGINS: [&str; 12] = [
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

/// Directories never searched for config files.
const SKIPPED_DIRS: [&str; 2] = [".git", ".imposter"];

/// Keys whose values are user data, never config, so they are not searched for file
/// references.
const DATA_KEYS: [&str; 2] = ["content", "preloadData"];

/// How [`validate_dir`] looks for config files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidateOptions {
    /// Also look for config files in subdirectories (like Imposter's
    /// `IMPOSTER_CONFIG_SCAN_RECURSIVE=true`). `.imposter.yaml` can turn this on too.
    pub recursive: bool,
}

/// How bad a [`Finding`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Severity {
    /// Imposter would fail to start, or the image would miss a file.
    Error,
    /// Probably a mistake, but the image can still be built.
    Warning,
}

impl Severity {
    fn rank(&self) -> u8 {
        match self {
            Severity::Error => 0,
            Severity::Warning => 1,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem found in the config directory.
#[derive(Debug, Clone)]
pub struct Finding {
    pub severity: Severity,
    /// Path of the config file, relative to the config directory, `/`-separated;
    /// empty when the finding is about the directory as a whole.
    pub file: String,
    /// Where in the file, e.g. `resources[2].response.file`; empty if not applicable.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Finding {
    fn error(file: &str, key: &str, message: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Error,
            file: file.to_string(),
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn warning(file: &str, key: &str, message: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Warning,
            ..Finding::error(file, key, message)
        }
    }
}

impl Finding {
    /// The finding without its severity: `file: key: message`.
    pub fn detail(&self) -> String {
        let s = self.to_string();
        let prefix = format!("{}: ", self.severity);
        s.strip_prefix(&prefix).map(str::to_string).unwrap_or(s)
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.severity)?;
        if !self.file.is_empty() {
            write!(f, "{}: ", self.file)?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// The result of [`validate_dir`].
#[derive(Debug, Default)]
pub struct Report {
    /// Sorted by file, then key.
    pub findings: Vec<Finding>,
    /// The config files that were checked, relative to the config directory, sorted.
    pub config_files: Vec<String>,
}

impl Report {
    /// Number of [`Severity::Error`] findings.
    pub fn errors(&self) -> usize {
        self.count(Severity::Error)
    }

    /// Number of [`Severity::Warning`] findings.
    pub fn warnings(&self) -> usize {
        self.count(Severity::Warning)
    }

    /// True when there are no errors (warnings are allowed).
    pub fn is_ok(&self) -> bool {
        self.errors() == 0
    }

    fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }
}

/// The config directory itself cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("config directory '{}' does not exist — check the path, or create the directory and put your *-config.yaml files in it", path.display())]
    NotFound { path: PathBuf },
    #[error("'{}' is not a directory — pass the directory that contains your *-config.yaml files, not a file", path.display())]
    NotADirectory { path: PathBuf },
    #[error("cannot read '{}': {source} — check that it exists and that you have permission to read it", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("malformed '{}': {message} — fix the file or delete it", path.display())]
    ImposterYaml { path: PathBuf, message: String },
}

/// Settings from `.imposter.yaml`, as the Imposter CLI writes it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ImposterYaml {
    /// Engine version, e.g. `4.9.3`.
    pub version: Option<String>,
    /// Engine type, e.g. `docker`, `jvm`, `golang`.
    pub engine: Option<String>,
    /// `recursive:` or `scanRecursive:`.
    pub recursive: Option<bool>,
}

/// Reads `.imposter.yaml` from `dir`. `Ok(None)` when there is no such file.
pub fn read_imposter_yaml(dir: &Path) -> Result<Option<ImposterYaml>, ValidateError> {
    let path = dir.join(IMPOSTER_YAML);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ValidateError::Io { path, source }),
    };
    let bad = |message: String| ValidateError::ImposterYaml {
        path: path.clone(),
        message,
    };
    let value: Value =
        serde_norway::from_str(&text).map_err(|e| bad(format!("invalid YAML: {e}")))?;
    let map = match untag(&value) {
        Value::Null => return Ok(Some(ImposterYaml::default())),
        Value::Mapping(map) => map,
        other => {
            return Err(bad(format!(
                "expected `key: value` lines, found {}",
                kind_of(other)
            )))
        }
    };
    let mut out = ImposterYaml::default();
    for (key, value) in map {
        let value = untag(value);
        match key.as_str() {
            Some("version") => {
                out.version = match value {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    other => {
                        return Err(bad(format!(
                            "`version` must be a version such as 4.9.3, found {}",
                            kind_of(other)
                        )))
                    }
                }
            }
            Some("engine") => {
                out.engine = match value {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    other => {
                        return Err(bad(format!(
                            "`engine` must be an engine name such as docker or jvm, found {}",
                            kind_of(other)
                        )))
                    }
                }
            }
            Some(name @ ("recursive" | "scanRecursive")) => {
                let flag = match value {
                    Value::Null => None,
                    Value::Bool(b) => Some(*b),
                    Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
                    Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
                    other => {
                        return Err(bad(format!(
                            "`{name}` must be true or false, found {}",
                            describe(other)
                        )))
                    }
                };
                // Either key turning recursion on wins.
                if flag.is_some() && out.recursive != Some(true) {
                    out.recursive = flag;
                }
            }
            _ => {}
        }
    }
    Ok(Some(out))
}

/// True if `name` (a bare file name) is an Imposter config file name.
pub fn is_config_file_name(name: &str) -> bool {
    CONFIG_SUFFIXES.iter().any(|suffix| name.ends_with(suffix))
}

/// True if `plugin` names a plugin Imposter knows, in short or legacy class-name form.
pub fn is_known_plugin(plugin: &str) -> bool {
    if KNOWN_PLUGINS.contains(&plugin) {
        return true;
    }
    // Legacy form: io.gatehill.imposter.plugin.<package>.<Class>
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

/// Validates the Imposter config directory `dir`.
///
/// Returns `Err` only when `dir` itself is missing, not a directory or unreadable, or its
/// `.imposter.yaml` is malformed; everything else is reported as a [`Finding`].
pub fn validate_dir(dir: &Path, opts: &ValidateOptions) -> Result<Report, ValidateError> {
    let meta = fs::metadata(dir).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => ValidateError::NotFound {
            path: dir.to_path_buf(),
        },
        _ => ValidateError::Io {
            path: dir.to_path_buf(),
            source,
        },
    })?;
    if !meta.is_dir() {
        return Err(ValidateError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    let root = fs::canonicalize(dir).map_err(|source| ValidateError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let imposter = read_imposter_yaml(dir)?;
    let recursive = opts.recursive || imposter.and_then(|i| i.recursive) == Some(true);

    let mut discovery = Discovery::default();
    scan(&root, "", recursive, &mut discovery).map_err(|source| ValidateError::Io {
        path: dir.to_path_buf(),
        source,
    })?;

    let mut report = Report {
        findings: discovery.problems,
        config_files: discovery.top,
    };
    if recursive {
        report.config_files.append(&mut discovery.nested);
    }
    report.config_files.sort_by(|a, b| natural_cmp(a, b));

    if report.config_files.is_empty() {
        let mut message = format!(
            "no Imposter config files (*-config.yaml|yml|json) found in '{}' — add one, e.g. \
             'mock-config.yaml' starting with `plugin: rest`, or pass the directory that holds them",
            dir.display()
        );
        if let Some(nested) = discovery.nested.first() {
            message.push_str(&format!(
                "; a config file exists in a subdirectory ('{nested}'): pass --recursive or set \
                 `recursive: true` in {IMPOSTER_YAML} to include subdirectories"
            ));
        }
        report.findings.push(Finding::error("", "", message));
    } else if let (false, Some(nested)) = (recursive, discovery.nested.first()) {
        report.findings.push(Finding::warning(
            "",
            "",
            format!(
                "config files in subdirectories (e.g. '{nested}') are not loaded — pass \
                 --recursive or set `recursive: true` in {IMPOSTER_YAML} if Imposter should load them"
            ),
        ));
    }

    for file in &report.config_files {
        let mut checker = Checker {
            root: &root,
            dir_display: dir,
            file,
            findings: &mut report.findings,
        };
        checker.check_config();
    }

    report.findings.sort_by(|a, b| {
        natural_cmp(&a.file, &b.file)
            .then_with(|| natural_cmp(&a.key, &b.key))
            .then_with(|| a.severity.rank().cmp(&b.severity.rank()))
            .then_with(|| a.message.cmp(&b.message))
    });
    Ok(report)
}

#[derive(Default)]
struct Discovery {
    /// Config files at the top level.
    top: Vec<String>,
    /// Config files in subdirectories (only the first one unless recursive).
    nested: Vec<String>,
    /// Unreadable subdirectories (recursive scans only).
    problems: Vec<Finding>,
}

/// Collects config files under `abs` (whose path relative to the root is `rel`).
/// Symlinked directories are not followed. Without `recursive`, subdirectories are
/// only searched until one nested config file is found, to hint at `--recursive`.
fn scan(abs: &Path, rel: &str, recursive: bool, found: &mut Discovery) -> io::Result<()> {
    let mut entries = fs::read_dir(abs)?.collect::<io::Result<Vec<_>>>()?;
    entries.sort_by_key(|e| e.file_name());
    // Without `recursive`, one nested config file is enough for the hint.
    let enough = |found: &Discovery| !recursive && !found.nested.is_empty();
    for entry in entries {
        if !rel.is_empty() && enough(found) {
            return Ok(());
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let child_rel = join_rel(rel, &name);
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            if SKIPPED_DIRS.contains(&name.as_str()) || enough(found) {
                continue;
            }
            if let Err(e) = scan(&entry.path(), &child_rel, recursive, found) {
                if recursive {
                    found.problems.push(Finding::error(
                        &child_rel,
                        "",
                        format!(
                            "cannot read this directory: {e} — fix its permissions or remove it"
                        ),
                    ));
                }
            }
        } else if is_config_file_name(&name) {
            // A symlink named like a config file but pointing at a directory is not one.
            if fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            if rel.is_empty() {
                found.top.push(child_rel);
            } else {
                found.nested.push(child_rel);
            }
        }
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// Inside a `response` mapping.
    Response,
    /// Inside an element of a `steps` list.
    Step,
    Other,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RefKind {
    File,
    /// A file, or an http(s) URL which is not checked.
    Spec,
    Dir,
}

struct Checker<'a> {
    /// Canonical config directory.
    root: &'a Path,
    /// The config directory as the user gave it, for messages.
    dir_display: &'a Path,
    /// The config file being checked, relative to `root`.
    file: &'a str,
    findings: &'a mut Vec<Finding>,
}

impl Checker<'_> {
    fn error(&mut self, key: &str, message: impl Into<String>) {
        self.findings.push(Finding::error(self.file, key, message));
    }

    fn check_config(&mut self) {
        let path = self.root.join(self.file);
        match fs::canonicalize(&path) {
            Ok(real) if !real.starts_with(self.root) => {
                let message = format!(
                    "this config file is a symlink to '{}', outside the config directory — copy \
                     the file into '{}' instead of linking to it",
                    real.display(),
                    self.dir_display.display()
                );
                self.error("", message);
                return;
            }
            Ok(_) => {}
            Err(e) => {
                self.error(
                    "",
                    format!("cannot read this config file: {e} — fix the file or its permissions"),
                );
                return;
            }
        }
        let text = match fs::read(&path) {
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
                    KNOWN_PLUGINS.join(", ")
                ),
            ),
            Some(Value::String(plugin)) => {
                if !is_known_plugin(plugin) {
                    let message = format!(
                        "unknown plugin '{plugin}' — check for a typo (known plugins: {}); \
                         Imposter only starts if a plugin with this name is installed",
                        KNOWN_PLUGINS.join(", ")
                    );
                    self.findings
                        .push(Finding::warning(self.file, &plugin_key, message));
                }
            }
            Some(other) => self.error(
                &plugin_key,
                format!(
                    "`plugin` must be a plugin name such as `rest`, found {}",
                    describe(other)
                ),
            ),
        }
        self.walk(doc, prefix, Ctx::Other);
    }

    /// Looks for file references at any depth.
    fn walk(&mut self, value: &Value, key: &str, ctx: Ctx) {
        match untag(value) {
            Value::Mapping(map) => {
                for (k, child) in map {
                    let name = key_name(k);
                    let child_key = join_key(key, &name);
                    let reference = match (name.as_str(), ctx) {
                        ("file", Ctx::Response | Ctx::Step) => Some(RefKind::File),
                        ("dir", Ctx::Response) => Some(RefKind::Dir),
                        ("staticFile" | "scriptFile" | "wsdlFile" | "preloadFile", _) => {
                            Some(RefKind::File)
                        }
                        ("specFile", _) => Some(RefKind::Spec),
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
                        self.walk(child, &child_key, child_ctx);
                    }
                }
            }
            // List elements keep the context of the list: `steps[i]` are steps.
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.walk(item, &format!("{key}[{i}]"), ctx);
                }
            }
            _ => {}
        }
    }

    fn check_ref_list(&mut self, value: &Value, key: &str) {
        match untag(value) {
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.check_ref(item, &format!("{key}[{i}]"), RefKind::File);
                }
            }
            other => self.check_ref(other, key, RefKind::File),
        }
    }

    fn check_ref(&mut self, value: &Value, key: &str, kind: RefKind) {
        let what = if kind == RefKind::Dir {
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
        if raw.contains("${") {
            return;
        }
        if kind == RefKind::Spec && is_url(raw) {
            return;
        }
        self.check_path(raw, key, kind);
    }

    fn check_path(&mut self, raw: &str, key: &str, kind: RefKind) {
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
        let joined = config_dir.join(raw);
        let lexical = normalize(&joined);
        if !lexical.starts_with(self.root) {
            self.error(
                key,
                format!("'{raw}' escapes the config directory — move the file inside '{dir}'"),
            );
            return;
        }
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
            }
        }
        let rel = rel_string(self.root, &lexical);
        let looked = if rel == raw {
            String::new()
        } else {
            format!(" (looked for '{rel}')")
        };
        let noun = if kind == RefKind::Dir {
            "directory"
        } else {
            "file"
        };
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
            Ok(meta) if kind == RefKind::Dir && !meta.is_dir() => self.error(
                key,
                format!(
                    "'{raw}' is a file, but `dir` must be a directory — point it at a directory, \
                     or use `file:` to serve a single file"
                ),
            ),
            Ok(meta) if kind != RefKind::Dir && meta.is_dir() => self.error(
                key,
                format!("'{raw}' is a directory, but a file is expected — point it at a file"),
            ),
            Ok(_) => {}
        }
    }
}

/// Parses a config file into its YAML documents (a JSON file is one document).
fn parse_config(file: &str, text: &str) -> Result<Vec<Value>, String> {
    if file.ends_with(".json") {
        let json: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| format!("invalid JSON: {e} — fix the syntax there"))?;
        let value = serde_norway::to_value(&json)
            .map_err(|e| format!("cannot read the JSON: {e} — simplify the file"))?;
        return Ok(vec![value]);
    }
    match serde_norway::from_str::<Value>(text) {
        Ok(value) => Ok(vec![value]),
        Err(e) if e.to_string().contains("more than one document") => {
            let mut docs = Vec::new();
            for (first_line, chunk) in split_documents(text) {
                let value = serde_norway::from_str::<Value>(&chunk).map_err(|e| {
                    format!(
                        "invalid YAML in the document starting at line {first_line} (line numbers \
                         count from there): {e} — fix the syntax there"
                    )
                })?;
                if !value.is_null() {
                    docs.push(value);
                }
            }
            if docs.is_empty() {
                docs.push(Value::Null);
            }
            Ok(docs)
        }
        Err(e) => Err(format!("invalid YAML: {e} — fix the syntax there")),
    }
}

/// Splits a multi-document YAML stream at `---` / `...` marker lines. Returns each
/// document with the (1-based) file line it starts on.
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        let marker = ["---", "..."].into_iter().find_map(|m| {
            let rest = line.strip_prefix(m)?;
            (rest.is_empty() || rest.starts_with([' ', '\t'])).then_some(rest)
        });
        match marker {
            Some(rest) => {
                docs.push((start, std::mem::take(&mut current)));
                start = i + 1;
                if !line.starts_with("...") {
                    current.push_str(rest);
                }
                current.push('\n');
            }
            None => {
                current.push_str(line);
                current.push('\n');
            }
        }
    }
    docs.push((start, current));
    docs
}

fn untag(value: &Value) -> &Value {
    match value {
        Value::Tagged(tagged) => untag(&tagged.value),
        other => other,
    }
}

fn kind_of(value: &Value) -> &'static str {
    match untag(value) {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Like [`kind_of`], but shows scalar values.
fn describe(value: &Value) -> String {
    match untag(value) {
        Value::Bool(b) => format!("'{b}'"),
        Value::Number(n) => format!("'{n}'"),
        Value::String(s) => format!("'{s}'"),
        other => kind_of(other).to_string(),
    }
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

fn join_rel(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

fn is_url(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// Resolves `.` and `..` without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `path` relative to `root`, `/`-separated.
fn rel_string(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Compares strings with digit runs compared as numbers, so `resources[2]` sorts
/// before `resources[10]`.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let len_a = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let len_b = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let trim = |digits: &'_ [u8]| -> usize {
                    digits.iter().take_while(|&&c| c == b'0').count()
                };
                let num_a = &a[trim(&a[..len_a])..len_a];
                let num_b = &b[trim(&b[..len_b])..len_b];
                let order = num_a
                    .len()
                    .cmp(&num_b.len())
                    .then_with(|| num_a.cmp(num_b))
                    .then_with(|| len_a.cmp(&len_b));
                if order != Ordering::Equal {
                    return order;
                }
                a = &a[len_a..];
                b = &b[len_b..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, body: &str) {
        let path = dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, body).unwrap();
    }

    fn validate(dir: &Path) -> Report {
        validate_dir(dir, &ValidateOptions::default()).unwrap()
    }

    fn validate_recursive(dir: &Path) -> Report {
        validate_dir(dir, &ValidateOptions { recursive: true }).unwrap()
    }

    /// The single finding of the report, which must have exactly one.
    fn only(report: &Report) -> &Finding {
        assert_eq!(report.findings.len(), 1, "findings: {:#?}", report.findings);
        &report.findings[0]
    }

    fn assert_clean(report: &Report) {
        assert!(
            report.findings.is_empty(),
            "findings: {:#?}",
            report.findings
        );
        assert!(report.is_ok());
    }

    fn assert_error(report: &Report, file: &str, key: &str, needle: &str) {
        let found = report.findings.iter().any(|f| {
            f.severity == Severity::Error
                && f.file == file
                && f.key == key
                && f.message.contains(needle)
        });
        assert!(
            found,
            "no error {file} {key} containing {needle:?} in {:#?}",
            report.findings
        );
        assert!(!report.is_ok());
    }

    #[test]
    fn valid_rest_config_is_ok() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(
            d,
            "rest-config.yaml",
            r#"---
plugin: rest
system:
  stores:
    users:
      preloadFile: data/users.json
      preloadData:
        file: not-a-reference.json
resources:
  - method: GET
    path: /hello
    response:
      content: "file: nothing.json"
  - method: GET
    path: /users/{id}
    response:
      file: responses/user.json
      statusCode: 200
  - method: GET
    path: /static/*
    response:
      dir: www
  - method: POST
    path: /scripted
    steps:
      - type: remote
        url: http://example.com
      - type: script
        file: scripts/step.js
    response:
      scriptFile: scripts/respond.groovy
interceptors:
  - path: /*
    continue: true
    response:
      headers:
        X-Mock: "true"
"#,
        );
        write(d, "data/users.json", "[]");
        write(d, "responses/user.json", "{}");
        write(d, "www/index.html", "<p>hi</p>");
        write(d, "scripts/step.js", "");
        write(d, "scripts/respond.groovy", "");
        let report = validate(d);
        assert_clean(&report);
        assert_eq!(report.config_files, vec!["rest-config.yaml"]);
    }

    #[test]
    fn valid_openapi_config_is_ok() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "petstore-config.yaml",
            "plugin: openapi\nspecFile: specs/petstore.yaml\n",
        );
        write(tmp.path(), "specs/petstore.yaml", "openapi: 3.0.3\n");
        let report = validate(tmp.path());
        assert_clean(&report);
        assert_eq!(report.config_files, vec!["petstore-config.yaml"]);
    }

    #[test]
    fn valid_soap_config_is_ok() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "soap-config.yml",
            "plugin: soap\nwsdlFile: service.wsdl\nresources:\n  - operation: getPetById\n    response:\n      file: pet.xml\n",
        );
        write(tmp.path(), "service.wsdl", "<definitions/>");
        write(tmp.path(), "pet.xml", "<pet/>");
        let report = validate(tmp.path());
        assert_clean(&report);
        assert_eq!(report.config_files, vec!["soap-config.yml"]);
    }

    #[test]
    fn no_config_files_is_error() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "config.yaml", "plugin: rest\n");
        write(tmp.path(), "rest-config.yaml.bak", "plugin: rest\n");
        let report = validate(tmp.path());
        let finding = only(&report);
        assert_eq!(finding.severity, Severity::Error);
        assert_eq!(finding.file, "");
        assert!(finding.message.contains("no Imposter config files"));
        assert!(finding.message.contains(&tmp.path().display().to_string()));
        assert!(!finding.message.contains("--recursive"));
        assert!(report.config_files.is_empty());
        assert!(!report.is_ok());
    }

    #[test]
    fn nested_config_needs_recursive() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "mocks/api/api-config.yaml", "plugin: rest\n");
        let report = validate(tmp.path());
        let finding = only(&report);
        assert_eq!(finding.severity, Severity::Error);
        assert!(finding.message.contains("--recursive"), "{finding}");
        assert!(finding.message.contains("mocks/api/api-config.yaml"));

        let report = validate_recursive(tmp.path());
        assert_clean(&report);
        assert_eq!(report.config_files, vec!["mocks/api/api-config.yaml"]);

        // With a top-level config, nested ones are only a warning.
        write(tmp.path(), "top-config.yaml", "plugin: rest\n");
        let report = validate(tmp.path());
        let finding = only(&report);
        assert_eq!(finding.severity, Severity::Warning);
        assert!(
            finding.message.contains("mocks/api/api-config.yaml"),
            "{finding}"
        );
        assert!(report.is_ok());
        assert_eq!(report.config_files, vec!["top-config.yaml"]);
        assert_clean(&validate_recursive(tmp.path()));
    }

    #[test]
    fn imposter_yaml_recursive_enables_scan() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "sub/a-config.yaml", "plugin: rest\n");
        write(tmp.path(), "b-config.json", r#"{"plugin": "rest"}"#);
        write(
            tmp.path(),
            IMPOSTER_YAML,
            "version: 4.9.3\nrecursive: true\n",
        );
        let report = validate(tmp.path());
        assert_clean(&report);
        assert_eq!(
            report.config_files,
            vec!["b-config.json", "sub/a-config.yaml"]
        );
    }

    #[test]
    fn recursive_scan_skips_git_and_imposter_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "a-config.yaml", "plugin: rest\n");
        write(tmp.path(), ".git/x-config.yaml", "not: [valid");
        write(tmp.path(), ".imposter/y-config.yaml", "plugin: rest\n");
        let report = validate_recursive(tmp.path());
        assert_clean(&report);
        assert_eq!(report.config_files, vec!["a-config.yaml"]);
    }

    #[test]
    fn malformed_yaml_is_error_with_line() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "bad-config.yaml",
            "plugin: rest\nresources:\n  - path: /a\n    method: [GET\n",
        );
        let report = validate(tmp.path());
        let finding = only(&report);
        assert_eq!(finding.severity, Severity::Error);
        assert_eq!(finding.file, "bad-config.yaml");
        assert!(finding.message.starts_with("invalid YAML"), "{finding}");
        assert!(finding.message.contains("line "), "{finding}");
    }

    #[test]
    fn malformed_json_is_error_with_line() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "bad-config.json",
            "{\n  \"plugin\": \"rest\",\n}\n",
        );
        let report = validate(tmp.path());
        let finding = only(&report);
        assert!(finding.message.starts_with("invalid JSON"), "{finding}");
        assert!(finding.message.contains("line 3"), "{finding}");
    }

    #[test]
    fn json_config_is_checked() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "api-config.json",
            r#"{"plugin": "rest", "resources": [
                {"path": "/a", "response": {"file": "a.json"}},
                {"path": "/b", "response": {"file": "b.json"}}
            ]}"#,
        );
        write(tmp.path(), "a.json", "{}");
        let report = validate(tmp.path());
        let finding = only(&report);
        assert_eq!(finding.file, "api-config.json");
        assert_eq!(finding.key, "resources[1].response.file");
        assert!(finding.message.contains("'b.json' does not exist"));
    }

    #[test]
    fn missing_plugin_is_error() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "x-config.yaml", "resources: []\n");
        let report = validate(tmp.path());
        let finding = only(&report);
        assert_eq!(finding.severity, Severity::Error);
        assert_eq!(finding.key, "plugin");
        assert!(finding.message.contains("missing `plugin:`"));
        assert!(finding.message.contains("plugin: rest"));
    }

    #[test]
    fn empty_or_non_mapping_config_is_error() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "a-config.yaml", "# nothing here\n");
        write(tmp.path(), "b-config.yaml", "- plugin: rest\n");
        let report = validate(tmp.path());
        assert_eq!(report.errors(), 2, "{:#?}", report.findings);
        assert_error(&report, "a-config.yaml", "", "empty");
        assert_error(&report, "b-config.yaml", "", "found a list");
    }

    #[test]
    fn unknown_plugin_is_warning() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "x-config.yaml", "plugin: restful\n");
        let report = validate(tmp.path());
        let finding = only(&report);
        assert_eq!(finding.severity, Severity::Warning);
        assert_eq!(finding.key, "plugin");
        assert!(finding.message.contains("'restful'"));
        assert!(report.is_ok());
        assert_eq!(report.warnings(), 1);
        assert_eq!(report.errors(), 0);
    }

    #[test]
    fn non_string_plugin_is_error() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "x-config.yaml", "plugin: [rest]\n");
        assert_error(
            &validate(tmp.path()),
            "x-config.yaml",
            "plugin",
            "found a list",
        );
    }

    #[test]
    fn known_and_legacy_plugin_names() {
        for name in KNOWN_PLUGINS {
            assert!(is_known_plugin(name), "{name}");
        }
        assert!(is_known_plugin(
            "io.gatehill.imposter.plugin.openapi.OpenApiPluginImpl"
        ));
        assert!(is_known_plugin(
            "io.gatehill.imposter.plugin.rest.RestPluginImpl"
        ));
        assert!(is_known_plugin(
            "io.gatehill.imposter.plugin.soap.SoapPluginImpl"
        ));
        assert!(is_known_plugin(
            "io.gatehill.imposter.plugin.hbase.HBasePluginImpl"
        ));
        assert!(!is_known_plugin(
            "io.gatehill.imposter.plugin.nope.NopePluginImpl"
        ));
        assert!(!is_known_plugin("io.gatehill.imposter.plugin.rest"));
        assert!(!is_known_plugin("REST"));
        assert!(!is_known_plugin(""));

        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "x-config.yaml",
            "plugin: io.gatehill.imposter.plugin.openapi.OpenApiPluginImpl\nspecFile: s.yaml\n",
        );
        write(tmp.path(), "s.yaml", "openapi: 3.0.0\n");
        assert_clean(&validate(tmp.path()));
    }

    #[test]
    fn missing_response_file_in_resources() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "rest-config.yaml",
            "plugin: rest\nresources:\n  - path: /a\n    response:\n      file: responses/a.json\n  - path: /b\n    response:\n      file: responses/missing.json\n",
        );
        write(tmp.path(), "responses/a.json", "{}");
        let report = validate(tmp.path());
        let finding = only(&report);
        assert_eq!(finding.severity, Severity::Error);
        assert_eq!(finding.file, "rest-config.yaml");
        assert_eq!(finding.key, "resources[1].response.file");
        assert_eq!(
            finding.to_string(),
            "error: rest-config.yaml: resources[1].response.file: file 'responses/missing.json' \
             does not exist in the config directory — create it or fix the path"
        );
    }

    #[test]
    fn old_static_file_keys_are_checked() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "old-config.yaml",
            "plugin: rest\nstaticFile: root.json\nresponse:\n  staticFile: resp.json\n",
        );
        let report = validate(tmp.path());
        assert_eq!(report.errors(), 2, "{:#?}", report.findings);
        assert_error(
            &report,
            "old-config.yaml",
            "staticFile",
            "'root.json' does not exist",
        );
        assert_error(
            &report,
            "old-config.yaml",
            "response.staticFile",
            "'resp.json'",
        );
    }

    #[test]
    fn missing_interceptor_and_script_files() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "i-config.yaml",
            "plugin: rest\ninterceptors:\n  - path: /x\n    response:\n      file: intercept.json\n    scriptFile: check.js\nresources:\n  - path: /y\n    scriptFile: res.js\n",
        );
        let report = validate(tmp.path());
        assert_eq!(report.errors(), 3, "{:#?}", report.findings);
        assert_error(
            &report,
            "i-config.yaml",
            "interceptors[0].response.file",
            "intercept.json",
        );
        assert_error(
            &report,
            "i-config.yaml",
            "interceptors[0].scriptFile",
            "check.js",
        );
        assert_error(
            &report,
            "i-config.yaml",
            "resources[0].scriptFile",
            "res.js",
        );
    }

    #[test]
    fn file_keys_outside_response_or_steps_are_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "x-config.yaml",
            "plugin: rest\nresources:\n  - path: /a\n    file: not-a-ref.json\n    dir: nowhere\n    response:\n      content: ok\n",
        );
        assert_clean(&validate(tmp.path()));
    }

    #[test]
    fn response_dir_must_be_a_directory() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "x-config.yaml",
            "plugin: rest\nresources:\n  - path: /static/*\n    response:\n      dir: www\n",
        );
        write(tmp.path(), "www", "i am a file");
        let report = validate(tmp.path());
        let finding = only(&report);
        assert_eq!(finding.key, "resources[0].response.dir");
        assert!(finding.message.contains("must be a directory"), "{finding}");

        fs::remove_file(tmp.path().join("www")).unwrap();
        let report = validate(tmp.path());
        assert!(only(&report)
            .message
            .contains("directory 'www' does not exist"));

        fs::create_dir(tmp.path().join("www")).unwrap();
        assert_clean(&validate(tmp.path()));
    }

    #[test]
    fn response_file_that_is_a_directory_is_error() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "x-config.yaml",
            "plugin: rest\nresponse:\n  file: responses\n",
        );
        fs::create_dir(tmp.path().join("responses")).unwrap();
        let report = validate(tmp.path());
        assert!(only(&report).message.contains("is a directory"));
    }

    #[test]
    fn missing_spec_file() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "api-config.yaml",
            "plugin: openapi\nspecFile: openapi.yaml\n",
        );
        let report = validate(tmp.path());
        let finding = only(&report);
        assert_eq!(finding.key, "specFile");
        assert!(finding.message.contains("'openapi.yaml' does not exist"));
    }

    #[test]
    fn url_spec_file_is_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "a-config.yaml",
            "plugin: openapi\nspecFile: https://example.com/openapi.yaml\n",
        );
        write(
            tmp.path(),
            "b-config.yaml",
            "plugin: openapi\nspecFile: HTTP://example.com/spec.json\n",
        );
        let report = validate(tmp.path());
        assert_clean(&report);
        assert_eq!(report.config_files.len(), 2);
    }

    #[test]
    fn missing_wsdl_file() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "soap-config.yaml",
            "plugin: soap\nwsdlFile: ./services/pet.wsdl\n",
        );
        let report = validate(tmp.path());
        let finding = only(&report);
        assert_eq!(finding.key, "wsdlFile");
        assert!(finding
            .message
            .contains("'./services/pet.wsdl' does not exist"));
        assert!(finding.message.contains("(looked for 'services/pet.wsdl')"));
    }

    #[test]
    fn missing_step_file() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "s-config.yaml",
            "plugin: rest\nresources:\n  - path: /s\n    steps:\n      - type: remote\n        url: http://example.com\n      - type: script\n        file: scripts/missing.js\n",
        );
        let report = validate(tmp.path());
        let finding = only(&report);
        assert_eq!(finding.key, "resources[0].steps[1].file");
        assert!(finding.message.contains("scripts/missing.js"));
    }

    #[test]
    fn missing_preload_file() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "p-config.yaml",
            "plugin: rest\nsystem:\n  stores:\n    users:\n      preloadFile: users.json\n",
        );
        let report = validate(tmp.path());
        let finding = only(&report);
        assert_eq!(finding.key, "system.stores.users.preloadFile");
        assert!(finding.message.contains("'users.json' does not exist"));
    }

    #[test]
    fn missing_proto_files() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "g-config.yaml",
            "plugin: grpc\nconfig:\n  protoFiles:\n    - ok.proto\n    - missing.proto\n",
        );
        write(tmp.path(), "ok.proto", "syntax = \"proto3\";");
        let report = validate(tmp.path());
        assert_eq!(only(&report).key, "config.protoFiles[1]");
    }

    #[test]
    fn non_string_and_empty_references_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "x-config.yaml",
            "plugin: soap\nwsdlFile: 42\nresponse:\n  file:\n",
        );
        let report = validate(tmp.path());
        assert_eq!(report.errors(), 2, "{:#?}", report.findings);
        assert_error(&report, "x-config.yaml", "wsdlFile", "found '42'");
        assert_error(&report, "x-config.yaml", "response.file", "is empty");
    }

    #[test]
    fn template_placeholders_are_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "t-config.yaml",
            "plugin: rest\nresources:\n  - path: /users/{id}\n    response:\n      file: \"users/${context.request.pathParams.id}.json\"\n",
        );
        assert_clean(&validate(tmp.path()));
    }

    #[test]
    fn parent_dir_escape_is_error() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("config");
        write(
            &dir,
            "x-config.yaml",
            "plugin: rest\nresponse:\n  file: ../outside.json\n",
        );
        // The file exists, but outside the config directory.
        write(tmp.path(), "outside.json", "{}");
        let report = validate(&dir);
        let finding = only(&report);
        assert_eq!(finding.key, "response.file");
        assert!(
            finding.message.contains("escapes the config directory"),
            "{finding}"
        );
        assert!(finding.message.contains(&dir.display().to_string()));
    }

    #[test]
    fn parent_dir_inside_config_dir_is_fine() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "a-config.yaml",
            "plugin: rest\nresponse:\n  file: sub/../shared/x.json\n",
        );
        write(tmp.path(), "shared/x.json", "{}");
        fs::create_dir(tmp.path().join("sub")).unwrap();
        assert_clean(&validate(tmp.path()));
    }

    #[test]
    fn absolute_path_escape_is_error() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("abs.json");
        write(tmp.path(), "abs.json", "{}");
        write(
            tmp.path(),
            "x-config.yaml",
            &format!("plugin: rest\nresponse:\n  file: {}\n", target.display()),
        );
        let report = validate(tmp.path());
        let finding = only(&report);
        assert!(finding.message.contains("absolute path"), "{finding}");
        assert!(finding.message.contains("escapes the config directory"));
    }

    #[cfg(unix)]
    #[test]
    fn symlink_escape_is_error() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("config");
        write(tmp.path(), "secret/data.json", "{}");
        write(
            &dir,
            "x-config.yaml",
            "plugin: rest\nresources:\n  - response:\n      file: linked/data.json\n  - response:\n      file: ok.json\n",
        );
        std::os::unix::fs::symlink(tmp.path().join("secret"), dir.join("linked")).unwrap();
        std::os::unix::fs::symlink(dir.join("real.json"), dir.join("ok.json")).unwrap();
        write(&dir, "real.json", "{}");
        let report = validate(&dir);
        let finding = only(&report);
        assert_eq!(finding.key, "resources[0].response.file");
        assert!(finding.message.contains("symlink"), "{finding}");
        assert!(finding.message.contains("escapes the config directory"));
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_config_file_outside_is_error() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("config");
        fs::create_dir(&dir).unwrap();
        write(tmp.path(), "elsewhere-config.yaml", "plugin: rest\n");
        std::os::unix::fs::symlink(
            tmp.path().join("elsewhere-config.yaml"),
            dir.join("x-config.yaml"),
        )
        .unwrap();
        let report = validate(&dir);
        assert_error(&report, "x-config.yaml", "", "symlink");
    }

    #[test]
    fn references_resolve_relative_to_their_config_file() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "api/v1/v1-config.yaml",
            "plugin: rest\nresponse:\n  file: data.json\n",
        );
        write(
            tmp.path(),
            "api/v2/v2-config.yaml",
            "plugin: rest\nresponse:\n  file: data.json\n",
        );
        write(tmp.path(), "api/v1/data.json", "{}");
        // v2's data.json exists only at the top, which is the wrong place.
        write(tmp.path(), "data.json", "{}");
        let report = validate_recursive(tmp.path());
        let finding = only(&report);
        assert_eq!(finding.file, "api/v2/v2-config.yaml");
        assert!(
            finding.message.contains("(looked for 'api/v2/data.json')"),
            "{finding}"
        );
    }

    #[test]
    fn findings_are_sorted_by_file_then_key() {
        let tmp = tempfile::tempdir().unwrap();
        let mut config = String::from("plugin: rest\nresources:\n");
        for i in 0..12 {
            config.push_str(&format!("  - response:\n      file: missing-{i}.json\n"));
        }
        write(tmp.path(), "b-config.yaml", &config);
        write(tmp.path(), "a-config.yaml", "specFile: nope.yaml\n");
        let report = validate(tmp.path());
        let got: Vec<(String, String)> = report
            .findings
            .iter()
            .map(|f| (f.file.clone(), f.key.clone()))
            .collect();
        let mut want = vec![
            ("a-config.yaml".to_string(), "plugin".to_string()),
            ("a-config.yaml".to_string(), "specFile".to_string()),
        ];
        for i in 0..12 {
            want.push((
                "b-config.yaml".to_string(),
                format!("resources[{i}].response.file"),
            ));
        }
        assert_eq!(got, want);
    }

    #[test]
    fn multi_document_yaml_is_checked_per_document() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "m-config.yaml",
            "---\nplugin: rest\nresponse:\n  file: a.json\n---\nplugin: rest\nresponse:\n  file: b.json\n",
        );
        write(tmp.path(), "a.json", "{}");
        let report = validate(tmp.path());
        let finding = only(&report);
        assert_eq!(finding.key, "document[1].response.file");
    }

    #[test]
    fn natural_order() {
        assert_eq!(natural_cmp("a[2]", "a[10]"), Ordering::Less);
        assert_eq!(natural_cmp("a[10]", "a[2]"), Ordering::Greater);
        assert_eq!(natural_cmp("a", "a.b"), Ordering::Less);
        assert_eq!(natural_cmp("x1y", "x1y"), Ordering::Equal);
        assert_eq!(natural_cmp("b", "a[1]"), Ordering::Greater);
    }

    #[test]
    fn finding_display_formats() {
        let f = Finding::error("", "", "no config");
        assert_eq!(f.to_string(), "error: no config");
        let f = Finding::warning("a-config.yaml", "", "hmm");
        assert_eq!(f.to_string(), "warning: a-config.yaml: hmm");
        let f = Finding::error("a-config.yaml", "plugin", "missing");
        assert_eq!(f.to_string(), "error: a-config.yaml: plugin: missing");
    }

    #[test]
    fn directory_problems_are_validate_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("nope");
        let err = validate_dir(&missing, &ValidateOptions::default()).unwrap_err();
        assert!(matches!(err, ValidateError::NotFound { .. }), "{err:?}");
        assert!(err.to_string().contains(&missing.display().to_string()));

        write(tmp.path(), "file-config.yaml", "plugin: rest\n");
        let file = tmp.path().join("file-config.yaml");
        let err = validate_dir(&file, &ValidateOptions::default()).unwrap_err();
        assert!(
            matches!(err, ValidateError::NotADirectory { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("file-config.yaml"));
    }

    #[test]
    fn imposter_yaml_is_parsed() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(read_imposter_yaml(tmp.path()).unwrap(), None);

        write(
            tmp.path(),
            IMPOSTER_YAML,
            "version: 4.9.3\nengine: docker\nsomethingElse: [1, 2]\n",
        );
        assert_eq!(
            read_imposter_yaml(tmp.path()).unwrap(),
            Some(ImposterYaml {
                version: Some("4.9.3".into()),
                engine: Some("docker".into()),
                recursive: None,
            })
        );

        write(
            tmp.path(),
            IMPOSTER_YAML,
            "version: 4.2\nscanRecursive: true\n",
        );
        let parsed = read_imposter_yaml(tmp.path()).unwrap().unwrap();
        assert_eq!(parsed.version.as_deref(), Some("4.2"));
        assert_eq!(parsed.engine, None);
        assert_eq!(parsed.recursive, Some(true));

        write(tmp.path(), IMPOSTER_YAML, "recursive: false\n");
        let parsed = read_imposter_yaml(tmp.path()).unwrap().unwrap();
        assert_eq!(parsed.recursive, Some(false));

        write(tmp.path(), IMPOSTER_YAML, "");
        assert_eq!(
            read_imposter_yaml(tmp.path()).unwrap(),
            Some(ImposterYaml::default())
        );
    }

    #[test]
    fn malformed_imposter_yaml_is_error() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "a-config.yaml", "plugin: rest\n");
        write(tmp.path(), IMPOSTER_YAML, "version: [4.9.3\n");
        let err = read_imposter_yaml(tmp.path()).unwrap_err();
        assert!(matches!(err, ValidateError::ImposterYaml { .. }), "{err:?}");
        assert!(err.to_string().contains(IMPOSTER_YAML), "{err}");
        // validate_dir reports it too.
        let err = validate_dir(tmp.path(), &ValidateOptions::default()).unwrap_err();
        assert!(err.to_string().contains(IMPOSTER_YAML), "{err}");

        write(tmp.path(), IMPOSTER_YAML, "recursive: maybe\n");
        let err = read_imposter_yaml(tmp.path()).unwrap_err();
        assert!(
            err.to_string()
                .contains("`recursive` must be true or false"),
            "{err}"
        );
    }

    #[test]
    fn bundled_examples_validate() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let report = validate_recursive(&examples);
        assert_clean(&report);
        assert_eq!(
            report.config_files,
            vec![
                "openapi/petstore-config.yaml",
                "rest/hello-config.yaml",
                "soap/soap-config.yaml",
            ]
        );
        // Without --recursive the top level has no config files.
        assert!(!validate(&examples).is_ok());
        for sub in ["rest", "openapi", "soap"] {
            let report = validate(&examples.join(sub));
            assert_clean(&report);
            assert_eq!(report.config_files.len(), 1, "{sub}");
        }
    }
}
