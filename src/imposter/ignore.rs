//! `.imposterignore` as each engine reads it: a list the config *discovery* skips. It filters
//! nothing else — the engine still serves response files from skipped directories, so they ship
//! in the image like any other file.
//!
//! The two engines read and match it differently:
//! * JVM (imposter-jvm-engine@v4.9.3:core/config/src/main/java/io/gatehill/imposter/config/util/ConfigUtil.kt):
//!   lines are kept as written, only blank and `#` lines dropped (:182-183); a file with no
//!   entries falls back to the default list (:168-176); an entry skips a file *or* directory
//!   whose name equals it exactly, at every level of the scan (:230).
//! * Go (imposter-go@v5.21.3:internal/config/config.go): lines are trimmed, blank and `#` lines
//!   dropped, and an empty file means an empty list (:273-296); an entry skips any walked path
//!   that *contains* it, and the walk starts at the config directory itself (:88-99, :300-306),
//!   so `config` skips `/opt/imposter/config` and the engine loads nothing, and `old` skips
//!   `bold-config.yaml`.
//!
//! Without the file both skip the same default list.
use super::engine::{Generation, ENGINE_CONFIG_DIR};
use std::io;
use std::path::Path;

/// The file in the config directory that lists what to skip.
pub(crate) const IMPOSTERIGNORE: &str = ".imposterignore";

/// What the engine skips when the config directory has no `.imposterignore`
/// (imposter-jvm-engine@v4.9.3:core/config/src/main/resources/.imposterignore:3-6,
/// imposter-go@v5.21.3:internal/config/config.go:274).
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
    /// Where the engine finds the config directory (the Go engine matches against it too).
    pub root: String,
}

/// A `.imposterignore` larger than this is not one.
const MAX_FILE: u64 = 1 << 20;

impl IgnoreRules {
    /// Reads `dir/.imposterignore` as `generation` reads it, or the default list.
    pub(crate) fn load(dir: &Path, generation: Generation) -> io::Result<IgnoreRules> {
        let text = match crate::mutate::walk::read_small_text(&dir.join(IMPOSTERIGNORE), MAX_FILE) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let from_text = |text: &str| -> Vec<String> {
            text.lines()
                .map(|l| match generation {
                    Generation::Jvm => l,
                    Generation::Go => l.trim(),
                })
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .map(str::to_string)
                .collect()
        };
        let defaults = || DEFAULT_IGNORED.iter().map(|s| s.to_string()).collect();
        let (entries, from_file) = match text {
            None => (defaults(), false),
            Some(t) => {
                let entries = from_text(&t);
                if entries.is_empty() && generation == Generation::Jvm {
                    (defaults(), false)
                } else {
                    (entries, true)
                }
            }
        };
        Ok(IgnoreRules {
            entries,
            from_file,
            generation,
            root: ENGINE_CONFIG_DIR.to_string(),
        })
    }

    /// The entry that makes the engine skip the config file `rel` (relative to the config
    /// directory, `/`-separated).
    pub(crate) fn skips(&self, rel: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| match self.generation {
                Generation::Jvm => rel.split('/').any(|name| name == e.as_str()),
                Generation::Go => format!("{}/{rel}", self.root).contains(e.as_str()),
            })
            .map(String::as_str)
    }

    /// Whether `entry` skips `rel` only as a substring (the Go engine), not as a whole name.
    pub(crate) fn is_substring_match(&self, rel: &str, entry: &str) -> bool {
        self.generation == Generation::Go && !rel.split('/').any(|name| name == entry)
    }

    /// The entry that makes the Go engine skip the config directory itself, so it loads
    /// nothing: one contained in its path.
    pub(crate) fn skips_everything(&self) -> Option<&str> {
        if self.generation != Generation::Go {
            return None;
        }
        self.entries
            .iter()
            .find(|e| self.root.contains(e.as_str()))
            .map(String::as_str)
    }

    /// Lines the JVM engine can never match because they are patterns or carry spaces it keeps,
    /// not names.
    pub(crate) fn patterns_the_jvm_engine_ignores(&self) -> Vec<&str> {
        if !self.from_file || self.generation != Generation::Jvm {
            return Vec::new();
        }
        self.entries
            .iter()
            .filter(|e| e.contains(['/', '*', '?', '[', '!']) || e.trim() != e.as_str())
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
        for g in [Generation::Jvm, Generation::Go] {
            let r = rules(None, g);
            assert!(!r.from_file);
            assert_eq!(r.skips("node_modules/a-config.yaml"), Some("node_modules"));
            assert_eq!(r.skips("a/.idea/b/x-config.yaml"), Some(".idea"));
            assert_eq!(r.skips("mocks/x-config.yaml"), None);
        }
    }

    #[test]
    fn a_file_replaces_the_default_list() {
        let r = rules(Some("# old stuff\n\narchive\n"), Generation::Jvm);
        assert_eq!(r.entries, ["archive"]);
        assert_eq!(r.skips("node_modules/x-config.yaml"), None);
        assert_eq!(r.skips("v1/archive/x-config.yaml"), Some("archive"));
    }

    #[test]
    fn an_empty_file_means_the_defaults_on_the_jvm_and_nothing_on_go() {
        let jvm = rules(Some("# nothing\n\n"), Generation::Jvm);
        assert!(!jvm.from_file);
        assert_eq!(
            jvm.skips("node_modules/x-config.yaml"),
            Some("node_modules")
        );
        let go = rules(Some("# nothing\n\n"), Generation::Go);
        assert!(go.entries.is_empty());
        assert_eq!(go.skips("node_modules/x-config.yaml"), None);
    }

    #[test]
    fn the_jvm_keeps_spaces_and_go_trims_them() {
        let jvm = rules(Some("old \n"), Generation::Jvm);
        assert_eq!(jvm.skips("old/x-config.yaml"), None);
        assert_eq!(jvm.patterns_the_jvm_engine_ignores(), ["old "]);
        let go = rules(Some("  old \n"), Generation::Go);
        assert_eq!(go.skips("old/x-config.yaml"), Some("old"));
    }

    #[test]
    fn jvm_matches_exact_file_and_directory_names_and_go_matches_substrings_of_the_path() {
        let jvm = rules(Some("old\nlegacy-config.yaml\n"), Generation::Jvm);
        let go = rules(Some("old\n"), Generation::Go);
        for (file, jvm_skips, go_skips) in [
            ("old/x-config.yaml", true, true),
            ("a/old/x-config.yaml", true, true),
            ("older/x-config.yaml", false, true),
            ("a/bold/x-config.yaml", false, true),
            ("bold-config.yaml", false, true),
            ("legacy-config.yaml", true, false),
            ("new/x-config.yaml", false, false),
        ] {
            assert_eq!(jvm.skips(file).is_some(), jvm_skips, "jvm {file}");
            assert_eq!(go.skips(file).is_some(), go_skips, "go {file}");
        }
        assert!(go.is_substring_match("bold-config.yaml", "old"));
        assert!(!go.is_substring_match("old/x-config.yaml", "old"));
        let globby = rules(Some("*.bak\nlegacy/v1\nold\n"), Generation::Jvm);
        assert_eq!(
            globby.patterns_the_jvm_engine_ignores(),
            ["*.bak", "legacy/v1"]
        );
    }

    #[test]
    fn a_go_entry_inside_the_config_dirs_own_path_skips_everything() {
        for entry in ["config", "imposter", "opt", "/opt/imp"] {
            let go = rules(Some(&format!("{entry}\n")), Generation::Go);
            assert_eq!(go.skips_everything(), Some(entry), "{entry}");
            assert!(go.skips("x-config.yaml").is_some());
        }
        assert_eq!(
            rules(Some("config\n"), Generation::Jvm).skips_everything(),
            None
        );
        assert_eq!(
            rules(Some("mocks\n"), Generation::Go).skips_everything(),
            None
        );
    }
}
