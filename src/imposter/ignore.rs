//! `.imposterignore` as the engine reads it: a list of directories the config *discovery* skips.
//! It filters nothing else — the engine still serves response files from those directories, so
//! they ship in the image like any other file.
//!
//! The two engines match differently: the JVM engine skips a directory whose name equals a line
//! exactly; the Go engine skips any path that contains a line. Without the file both skip the
//! same default list.
use super::engine::Generation;
use std::io;
use std::path::Path;

/// The file in the config directory that lists the directories to skip.
pub(crate) const IMPOSTERIGNORE: &str = ".imposterignore";

/// What the engine skips when the config directory has no `.imposterignore`.
pub(crate) const DEFAULT_IGNORED: [&str; 4] = [".git", ".idea", ".svn", "node_modules"];

/// The skip list and how the engine matches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IgnoreRules {
    /// The entries: the file's lines (blank lines and `#` comments dropped), or the defaults.
    pub entries: Vec<String>,
    /// Whether they came from a `.imposterignore` file.
    pub from_file: bool,
    /// Exact names (JVM) or path substrings (Go).
    pub generation: Generation,
}

/// A `.imposterignore` larger than this is not one.
const MAX_FILE: u64 = 1 << 20;

impl IgnoreRules {
    /// Reads `dir/.imposterignore`, or the default list when there is none.
    pub(crate) fn load(dir: &Path, generation: Generation) -> io::Result<IgnoreRules> {
        let (entries, from_file) =
            match crate::mutate::walk::read_small_text(&dir.join(IMPOSTERIGNORE), MAX_FILE) {
                Ok(text) => (
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(str::to_string)
                        .collect(),
                    true,
                ),
                Err(e) if e.kind() == io::ErrorKind::NotFound => (
                    DEFAULT_IGNORED.iter().map(|s| s.to_string()).collect(),
                    false,
                ),
                Err(e) => return Err(e),
            };
        Ok(IgnoreRules {
            entries,
            from_file,
            generation,
        })
    }

    /// The entry that makes the engine skip configs in directory `rel_dir` (relative to the
    /// config directory, `/`-separated; empty for the top, which is never skipped).
    pub(crate) fn skips(&self, rel_dir: &str) -> Option<&str> {
        if rel_dir.is_empty() {
            return None;
        }
        self.entries
            .iter()
            .find(|e| match self.generation {
                Generation::Jvm => rel_dir.split('/').any(|name| name == e.as_str()),
                Generation::Go => rel_dir.contains(e.as_str()),
            })
            .map(String::as_str)
    }

    /// Lines the JVM engine can never match because they are patterns, not directory names.
    pub(crate) fn patterns_the_jvm_engine_ignores(&self) -> Vec<&str> {
        if !self.from_file || self.generation != Generation::Jvm {
            return Vec::new();
        }
        self.entries
            .iter()
            .filter(|e| e.contains(['/', '*', '?', '[', '!']))
            .map(String::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn rules(lines: Option<&str>, generation: Generation) -> IgnoreRules {
        let d = tempfile::tempdir().unwrap();
        if let Some(l) = lines {
            fs::write(d.path().join(IMPOSTERIGNORE), l).unwrap();
        }
        IgnoreRules::load(d.path(), generation).unwrap()
    }

    #[test]
    fn the_default_list_applies_without_a_file() {
        let r = rules(None, Generation::Jvm);
        assert!(!r.from_file);
        assert_eq!(r.skips("node_modules"), Some("node_modules"));
        assert_eq!(r.skips("a/.idea/b"), Some(".idea"));
        assert_eq!(r.skips("mocks"), None);
        assert_eq!(r.skips(""), None, "the top is always scanned");
    }

    #[test]
    fn a_file_replaces_the_default_list() {
        let r = rules(Some("# old stuff\n\narchive\n"), Generation::Jvm);
        assert_eq!(r.entries, ["archive"]);
        assert_eq!(r.skips("node_modules"), None);
        assert_eq!(r.skips("v1/archive"), Some("archive"));
    }

    #[test]
    fn jvm_matches_exact_names_and_go_matches_substrings() {
        let jvm = rules(Some("old\n"), Generation::Jvm);
        let go = rules(Some("old\n"), Generation::Go);
        for (dir, jvm_skips, go_skips) in [
            ("old", true, true),
            ("a/old", true, true),
            ("older", false, true),
            ("a/bold/x", false, true),
            ("new", false, false),
        ] {
            assert_eq!(jvm.skips(dir).is_some(), jvm_skips, "jvm {dir}");
            assert_eq!(go.skips(dir).is_some(), go_skips, "go {dir}");
        }
        let globby = rules(Some("*.bak\nlegacy/v1\nold\n"), Generation::Jvm);
        assert_eq!(
            globby.patterns_the_jvm_engine_ignores(),
            ["*.bak", "legacy/v1"]
        );
    }
}
