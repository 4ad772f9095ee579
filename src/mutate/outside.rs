//! Files a config references outside its config directory (a spec at the repository root), and
//! where they go in the config layer: at the path the engine resolves the reference to in the
//! image, e.g. `../../openapi.yaml` from a top-level config under `/opt/imposter/config` lands at
//! `/opt/openapi.yaml`. Validation decides which references may leave the directory
//! (`imposter::validate::paths`); this module only places them.
use serde::Serialize;
use std::path::{Component, Path, PathBuf};

/// One referenced file from outside the config directory, shipped in the config layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutsideFile {
    /// The reference as written in the config, e.g. `../../openapi.yaml`.
    pub reference: String,
    /// The config file holding the reference, relative to the config directory.
    pub config: String,
    /// The key holding the reference, e.g. `specFile`.
    pub key: String,
    /// The file on disk (symlinks resolved).
    pub source: PathBuf,
    /// Absolute path in the image (or, for a Lambda zip, from the zip's root).
    pub path: String,
    /// Any execute bit set on the source: the copy keeps it executable.
    #[serde(skip)]
    pub executable: bool,
}

/// Where `reference`, written in a config file at `config_dir_rel` (relative to the config
/// directory, `/`-separated components), lands when the config directory sits at
/// `config_path` (absolute): resolved lexically, as both engines do for a tree of real
/// directories (the JVM joins it onto the config file's folder, imposter-jvm-engine@v4.9.3
/// `SpecificationLoaderService.kt:168`, `ScriptUtil.kt:86`; the Go engine `filepath.Join`s it,
/// imposter-go@v5.21.3 `internal/config/config.go:171`, `plugin/openapi/specloader.go:21`).
/// `None` when it climbs above `/`.
pub(crate) fn image_path(
    config_path: &str,
    config_dir_rel: &Path,
    reference: &str,
) -> Option<String> {
    let mut parts: Vec<String> = config_path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let rel = config_dir_rel.join(reference);
    for c in rel.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// Why a set of outside files cannot all be placed: two different files at one path, or a file
/// where a directory must be (an ancestor of the config path or of another file).
pub(crate) fn conflicts(files: &[OutsideFile], config_path: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let config = Path::new(config_path);
    for (i, f) in files.iter().enumerate() {
        let p = Path::new(&f.path);
        if p.starts_with(config) {
            // `../config/x` from a config directory named otherwise: inside the config path in
            // the image, where the config tree goes.
            out.push((
                i,
                format!(
                    "would land at '{}', inside the config path {config_path} where the config \
                     directory goes",
                    f.path
                ),
            ));
            continue;
        }
        if config.starts_with(p) {
            out.push((
                i,
                format!(
                    "would land at '{}', which is a directory of the config path {config_path}",
                    f.path
                ),
            ));
            continue;
        }
        for g in &files[..i] {
            let q = Path::new(&g.path);
            if p == q && f.source != g.source {
                out.push((
                    i,
                    format!(
                        "lands at '{}', where '{}' ({}: {}) already goes",
                        f.path, g.reference, g.config, g.key
                    ),
                ));
            } else if p != q && (p.starts_with(q) || q.starts_with(p)) {
                out.push((
                    i,
                    format!(
                        "lands at '{}', which clashes with '{}' from '{}' ({}: {}): one would \
                         have to be a directory",
                        f.path, g.path, g.reference, g.config, g.key
                    ),
                ));
            }
        }
    }
    out
}

/// The files to write, one per image path, sorted by path, with every parent directory they
/// need that is not an ancestor of `config_path` (those the layer writes anyway).
pub(crate) fn plan(
    files: &[OutsideFile],
    config_path: &str,
) -> Vec<(PathBuf, Option<OutsideFile>)> {
    let config = Path::new(config_path);
    let mut items: std::collections::BTreeMap<PathBuf, Option<OutsideFile>> = Default::default();
    for f in files {
        let p = PathBuf::from(f.path.trim_start_matches('/'));
        for a in p.ancestors().skip(1) {
            if a.as_os_str().is_empty() || config.starts_with(Path::new("/").join(a)) {
                continue;
            }
            items.entry(a.to_path_buf()).or_insert(None);
        }
        items.entry(p).or_insert_with(|| Some(f.clone()));
    }
    items.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(reference: &str, path: &str, source: &str) -> OutsideFile {
        OutsideFile {
            reference: reference.into(),
            config: "a-config.yaml".into(),
            key: "specFile".into(),
            source: source.into(),
            path: path.into(),
            executable: false,
        }
    }

    #[test]
    fn a_reference_lands_where_the_engine_resolves_it() {
        let top = Path::new("");
        let c = "/opt/imposter/config";
        assert_eq!(
            image_path(c, top, "../../openapi.yaml").as_deref(),
            Some("/opt/openapi.yaml")
        );
        assert_eq!(
            image_path(c, Path::new("a/b"), "../../../openapi.yaml").as_deref(),
            Some("/opt/imposter/openapi.yaml")
        );
        assert_eq!(image_path(c, top, "../../../x").as_deref(), Some("/x"));
        assert_eq!(
            image_path(c, top, "../../../../x"),
            None,
            "above the image root"
        );
        assert_eq!(image_path("/config", top, "../../x"), None);
    }

    #[test]
    fn clashing_paths_are_found() {
        let c = "/opt/imposter/config";
        let same = [
            file("../a", "/opt/imposter/a", "/r/a"),
            file("../a", "/opt/imposter/a", "/r/a"),
        ];
        assert!(
            conflicts(&same, c).is_empty(),
            "one file referenced twice is fine"
        );
        let two = [
            file("../a", "/opt/imposter/a", "/r/a"),
            file("../../imposter/a", "/opt/imposter/a", "/s/a"),
        ];
        assert_eq!(conflicts(&two, c).len(), 1);
        let nested = [
            file("../a", "/opt/imposter/a", "/r/a"),
            file("../a/b", "/opt/imposter/a/b", "/r/a/b"),
        ];
        assert_eq!(conflicts(&nested, c).len(), 1);
        let ancestor = [file("../../imposter", "/opt/imposter", "/r/x")];
        assert_eq!(conflicts(&ancestor, c).len(), 1);
        let inside = [file("../config/x", "/opt/imposter/config/x", "/r/config/x")];
        assert!(conflicts(&inside, c)[0]
            .1
            .contains("inside the config path"));
    }

    #[test]
    fn the_plan_adds_parents_not_on_the_config_path() {
        let c = "/opt/imposter/config";
        let files = [
            file("../../../srv/x/spec.yaml", "/srv/x/spec.yaml", "/r/s"),
            file("../../o.yaml", "/opt/o.yaml", "/r/o"),
        ];
        let names: Vec<_> = plan(&files, c)
            .into_iter()
            .map(|(p, f)| (p.to_string_lossy().into_owned(), f.is_some()))
            .collect();
        assert_eq!(
            names,
            [
                ("opt/o.yaml".to_string(), true),
                ("srv".to_string(), false),
                ("srv/x".to_string(), false),
                ("srv/x/spec.yaml".to_string(), true),
            ]
        );
    }
}
