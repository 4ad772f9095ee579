//! Which config files the engine would load, found in the same walk that fills the image, so a
//! config the filters leave out is not checked as if it were there.
use super::report::Finding;
use crate::imposter::ignore::IgnoreRules;
use crate::mutate::walk::Walk;
use std::path::Path;

/// File-name suffixes that make a file an Imposter config file.
pub(super) const CONFIG_SUFFIXES: [&str; 3] = ["-config.yaml", "-config.yml", "-config.json"];

/// True if `name` (a bare file name) is an Imposter config file name.
pub(super) fn is_config_file_name(name: &str) -> bool {
    CONFIG_SUFFIXES.iter().any(|suffix| name.ends_with(suffix))
}

/// The config files of a walk, relative to the config directory and `/`-separated.
#[derive(Default)]
pub(super) struct Discovery {
    /// At the top level.
    pub(super) top: Vec<String>,
    /// In subdirectories, in directory-tree order (the first one is the one a hint names).
    pub(super) nested: Vec<String>,
    /// Config files the engine skips, with the `.imposterignore` entry.
    pub(super) ignored: Vec<(String, String)>,
    /// Subdirectories that cannot be listed, and entries that cannot go into an image (links
    /// resolving outside, dangling or looping, special files, whiteout names): what `build`
    /// refuses, so always errors.
    pub(super) problems: Vec<Finding>,
}

/// Sorts the walk's config files into top-level and nested ones. Symlinked directories are
/// not followed; a symlink named like a config is one unless it points at a directory. An entry
/// the walk refused (a link leaving the tree, say) is reported as what it is, not loaded.
pub(super) fn discover(walk: &Walk, ignore: &IgnoreRules) -> Discovery {
    let mut found = Discovery::default();
    let mut nested = Vec::new();
    for e in &walk.entries {
        let rel = &e.rel;
        let Some(name) = rel.file_name().map(|n| n.to_string_lossy()) else {
            continue;
        };
        if e.content().is_none() || !is_config_file_name(&name) {
            continue;
        }
        let parent = rel.parent().unwrap_or(Path::new(""));
        if let Some(entry) = ignore.skips(&rel_string(rel)) {
            found.ignored.push((rel_string(rel), entry.to_string()));
            continue;
        }
        if parent.as_os_str().is_empty() {
            found.top.push(rel_string(rel));
        } else {
            nested.push(rel.clone());
        }
    }
    // Path order compares component by component: the order a depth-first scan meets them.
    nested.sort();
    found.nested = nested.iter().map(|p| rel_string(p)).collect();
    for p in &walk.problems {
        found
            .problems
            .push(Finding::error(&rel_string(&p.rel), "", p.kind.message()));
    }
    found
}

/// A relative path as the report shows it: `/`-separated.
pub(super) fn rel_string(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
