//! Spec check of what mockimg writes: an OCI image layout (directory, or an archive tar holding
//! one) is validated against the OCI image-spec JSON schemas vendored in
//! `testdata/oci-image-spec/` (see the README there for their source), and for consistency:
//! every descriptor's size and digest match the blob, each config's `rootfs.diff_ids` match the
//! decompressed layers one to one, the non-empty history entries number exactly the layers, and
//! no Docker media type appears for a manifest, index or config inside the layout.
//!
//! `check_layout`/`check_archive` return every problem found (empty when the layout is clean);
//! `assert_layout`/`assert_archive` panic with the list.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

fn schema_dir() -> PathBuf {
    Path::new(super::REPO_ROOT).join("testdata/oci-image-spec")
}

/// Resolves every `$ref` to the vendored file of the same name: nothing is fetched.
struct Vendored;

impl jsonschema::Retrieve for Vendored {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let s = uri.as_str();
        let s = s.split('#').next().unwrap_or(s);
        let name = s.rsplit('/').next().unwrap_or(s);
        let text = std::fs::read_to_string(schema_dir().join(name))
            .map_err(|e| format!("schema {name} (for {s}) not vendored: {e}"))?;
        Ok(serde_json::from_str(&text)?)
    }
}

struct Schemas {
    layout: jsonschema::Validator,
    index: jsonschema::Validator,
    manifest: jsonschema::Validator,
    config: jsonschema::Validator,
}

fn validator(file: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(schema_dir().join(file)).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(true)
        .with_retriever(Vendored)
        .build(&schema)
        .unwrap_or_else(|e| panic!("vendored schema {file} does not compile: {e}"))
}

fn schemas() -> &'static Schemas {
    static S: std::sync::OnceLock<Schemas> = std::sync::OnceLock::new();
    S.get_or_init(|| Schemas {
        layout: validator("image-layout-schema.json"),
        index: validator("image-index-schema.json"),
        manifest: validator("image-manifest-schema.json"),
        config: validator("config-schema.json"),
    })
}

struct Checker<'a> {
    root: &'a Path,
    problems: Vec<String>,
    seen: BTreeSet<String>,
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

impl Checker<'_> {
    fn fail(&mut self, msg: String) {
        self.problems.push(msg);
    }

    fn schema(&mut self, which: &jsonschema::Validator, what: &str, v: &Value) {
        let errs: Vec<String> = which
            .iter_errors(v)
            .map(|e| format!("{what}: schema: {e} at {}", e.instance_path()))
            .collect();
        self.problems.extend(errs);
    }

    /// The blob a descriptor names, after checking its size and digest; None when absent
    /// (reported, unless the descriptor has `urls`: a foreign layer need not be in the layout).
    fn blob(&mut self, what: &str, desc: &Value) -> Option<Vec<u8>> {
        let digest = desc["digest"].as_str().unwrap_or_default();
        let Some((alg, hex)) = digest.split_once(':') else {
            self.fail(format!(
                "{what}: digest {digest:?} is not algorithm:encoded"
            ));
            return None;
        };
        if alg != "sha256" {
            self.fail(format!("{what}: unsupported digest algorithm {alg}"));
            return None;
        }
        let path = self.root.join("blobs").join(alg).join(hex);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(_) if desc.get("urls").is_some() => return None,
            Err(e) => {
                self.fail(format!("{what}: blob {digest} missing: {e}"));
                return None;
            }
        };
        let actual = sha256_hex(&bytes);
        if actual != hex {
            self.fail(format!("{what}: blob {digest} has digest sha256:{actual}"));
        }
        match desc["size"].as_u64() {
            Some(n) if n == bytes.len() as u64 => {}
            other => self.fail(format!(
                "{what}: descriptor size {other:?} but blob {digest} is {} bytes",
                bytes.len()
            )),
        }
        Some(bytes)
    }

    fn json_blob(&mut self, what: &str, desc: &Value) -> Option<Value> {
        let bytes = self.blob(what, desc)?;
        match serde_json::from_slice(&bytes) {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(format!("{what}: not JSON: {e}"));
                None
            }
        }
    }

    fn media_type_is_oci(&mut self, what: &str, desc: &Value) {
        let mt = desc["mediaType"].as_str().unwrap_or_default();
        if mt.starts_with("application/vnd.docker.") {
            self.fail(format!(
                "{what}: Docker media type {mt} inside an OCI layout"
            ));
        }
    }

    fn index(&mut self, what: &str, index: &Value) {
        self.schema(&schemas().index, what, index);
        if let Some(mt) = index.get("mediaType") {
            if mt != OCI_INDEX {
                self.fail(format!("{what}: index mediaType {mt}"));
            }
        }
        for (i, d) in index["manifests"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let w = format!("{what} manifests[{i}] {}", d["digest"]);
            self.media_type_is_oci(&w, d);
            self.descriptor(&w, d);
        }
    }

    fn descriptor(&mut self, what: &str, d: &Value) {
        let digest = d["digest"].as_str().unwrap_or_default().to_string();
        let mt = d["mediaType"].as_str().unwrap_or_default().to_string();
        if !self.seen.insert(format!("{mt} {digest}")) {
            return;
        }
        let Some(v) = self.json_blob(what, d) else {
            return;
        };
        match mt.as_str() {
            OCI_INDEX => self.index(what, &v),
            OCI_MANIFEST => self.manifest(what, &v),
            other => self.fail(format!(
                "{what}: unexpected media type {other:?} in an index"
            )),
        }
    }

    fn manifest(&mut self, what: &str, m: &Value) {
        self.schema(&schemas().manifest, what, m);
        match m.get("mediaType") {
            Some(mt) if mt == OCI_MANIFEST => {}
            other => self.fail(format!("{what}: manifest mediaType {other:?}")),
        }
        let cfg_desc = m["config"].clone();
        self.media_type_is_oci(&format!("{what} config"), &cfg_desc);
        let layers = m["layers"].as_array().cloned().unwrap_or_default();
        let mut diff_ids = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            let w = format!("{what} layers[{i}] {}", l["digest"]);
            let mt = l["mediaType"].as_str().unwrap_or_default();
            if mt.starts_with("application/vnd.docker.") {
                self.fail(format!(
                    "{w}: Docker layer media type {mt} in an OCI manifest"
                ));
            }
            let Some(bytes) = self.blob(&w, l) else {
                diff_ids.push(None);
                continue;
            };
            let raw = if mt.ends_with("+gzip") || mt.ends_with(".gzip") {
                let mut out = Vec::new();
                match flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut out) {
                    Ok(_) => Some(out),
                    Err(e) => {
                        self.fail(format!("{w}: gzip: {e}"));
                        None
                    }
                }
            } else if mt.ends_with("+zstd") {
                None // no zstd decoder in the harness: diff_id not recomputed
            } else {
                Some(bytes)
            };
            diff_ids.push(raw.map(|r| format!("sha256:{}", sha256_hex(&r))));
        }
        if cfg_desc["mediaType"] != OCI_CONFIG {
            return; // an artifact: its config is not an image config
        }
        let Some(cfg) = self.json_blob(&format!("{what} config"), &cfg_desc) else {
            return;
        };
        let w = format!("{what} config {}", cfg_desc["digest"]);
        self.schema(&schemas().config, &w, &cfg);
        if cfg["architecture"] == "unknown" && cfg["os"] == "unknown" {
            return; // an attestation manifest (BuildKit's): not a runnable image
        }
        let listed: Vec<&str> = cfg["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if listed.len() != layers.len() {
            self.fail(format!(
                "{w}: {} diff_ids for {} layers",
                listed.len(),
                layers.len()
            ));
        }
        for (i, (want, got)) in listed.iter().zip(&diff_ids).enumerate() {
            if let Some(got) = got {
                if want != got {
                    self.fail(format!("{w}: diff_ids[{i}] {want} but the layer is {got}"));
                }
            }
        }
        match cfg.get("history").and_then(Value::as_array) {
            Some(h) => {
                let non_empty = h
                    .iter()
                    .filter(|e| e.get("empty_layer").and_then(Value::as_bool) != Some(true))
                    .count();
                if non_empty != layers.len() {
                    self.fail(format!(
                        "{w}: {non_empty} non-empty history entries for {} layers",
                        layers.len()
                    ));
                }
            }
            None => self.fail(format!("{w}: no history for {} layers", layers.len())),
        }
    }
}

/// Every spec problem of the OCI layout at `root`.
pub fn check_layout(root: &Path) -> Vec<String> {
    let mut c = Checker {
        root,
        problems: Vec::new(),
        seen: BTreeSet::new(),
    };
    let read = |name: &str| -> Result<Value, String> {
        let b = std::fs::read(root.join(name)).map_err(|e| format!("{name}: {e}"))?;
        serde_json::from_slice(&b).map_err(|e| format!("{name}: not JSON: {e}"))
    };
    match read("oci-layout") {
        Ok(v) => c.schema(&schemas().layout, "oci-layout", &v),
        Err(e) => c.fail(e),
    }
    match read("index.json") {
        Ok(v) => c.index("index.json", &v),
        Err(e) => c.fail(e),
    }
    c.problems
}

/// Every spec problem of the OCI layout inside the archive tar at `tar`.
pub fn check_archive(tar: &Path) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let f = std::fs::File::open(tar).unwrap_or_else(|e| panic!("{}: {e}", tar.display()));
    tar::Archive::new(f)
        .unpack(dir.path())
        .unwrap_or_else(|e| panic!("unpacking {}: {e}", tar.display()));
    check_layout(dir.path())
}

#[track_caller]
pub fn assert_layout(root: &Path) {
    let p = check_layout(root);
    assert!(
        p.is_empty(),
        "{} is not spec-clean:\n{}",
        root.display(),
        p.join("\n")
    );
}

#[track_caller]
pub fn assert_archive(tar: &Path) {
    let p = check_archive(tar);
    assert!(
        p.is_empty(),
        "{} is not spec-clean:\n{}",
        tar.display(),
        p.join("\n")
    );
}
