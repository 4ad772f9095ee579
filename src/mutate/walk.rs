//! The one walk of a config directory, shared by the image layer, `validate` and the Lambda
//! bundle, so that what validation checks is exactly what ends up in the image or zip.
//!
//! A walk reports three things: the entries that go in, the paths a filter left out (and which
//! filter), and the entries that cannot go into an image at all. Deciding what is an error is the
//! caller's job: [`collect`] (layer, bundle) fails on the first problem, while `validate` only
//! uses the walk to find configs and to tell a reference that a filter dropped.
//!
//! `--exclude` is mockimg's own filter on what goes into the image. `.imposterignore` is not a
//! filter here: the engine only uses it to skip directories while *discovering* config files
//! and still serves files from them, so it is read by `imposter::ignore`, not by the walk.
use crate::error::{Error, Result};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// VCS data never belongs in an image, at any depth.
const ALWAYS_EXCLUDED_ANYWHERE: &[&str] = &[".git"];
/// The Imposter CLI's own project files (and its `.imposter` directory), at the top of the
/// config directory: they describe how to run the engine, they are not config.
const ALWAYS_EXCLUDED_TOP: &[&str] = &crate::imposter::project::PROJECT_FILES;

/// What the user asked to leave out of the image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalkOptions {
    /// Extra gitignore-style patterns (`--exclude`).
    pub excludes: Vec<String>,
}

/// What a walked path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryKind {
    /// A directory (walked into).
    Dir,
    /// A regular file.
    File {
        /// Size when walked; writers re-read it from the open file.
        size: u64,
        /// Any execute bit set: the copy keeps it executable.
        executable: bool,
    },
    /// A symlink whose target text stays inside the tree (checked lexically).
    Symlink {
        /// The link's target, as stored in the link.
        target: PathBuf,
    },
}

/// One thing in the config tree.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Path relative to the config directory.
    pub rel: PathBuf,
    /// Path on disk.
    pub source: PathBuf,
    /// What it is.
    pub kind: EntryKind,
}

/// Why the walk left a path out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Excluded {
    /// A name mockimg never copies (`.git`, the Imposter CLI's project file).
    Always(&'static str),
    /// An `--exclude` pattern.
    Exclude(String),
}

impl fmt::Display for Excluded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Excluded::Always(name) => write!(f, "a fixed rule (mockimg never copies '{name}')"),
            Excluded::Exclude(p) => write!(f, "--exclude pattern '{p}'"),
        }
    }
}

/// An entry that cannot go into an image.
#[derive(Debug)]
pub(crate) struct Problem {
    /// Path relative to the config directory.
    pub rel: PathBuf,
    /// Path on disk.
    pub source: PathBuf,
    /// What is wrong with it.
    pub kind: ProblemKind,
}

/// What is wrong with a [`Problem`] entry.
#[derive(Debug)]
pub(crate) enum ProblemKind {
    /// A directory that cannot be listed.
    Unreadable(io::Error),
    /// A symlink whose target text leaves the config directory.
    LinkOutside(PathBuf),
    /// A socket, fifo or device.
    Special(&'static str),
}

impl Problem {
    /// The error a build reports for this entry.
    pub(crate) fn into_error(self) -> Error {
        match self.kind {
            ProblemKind::Unreadable(e) => Error::io("reading directory", self.source, e),
            ProblemKind::LinkOutside(target) => Error::path(
                self.source,
                format!(
                    "symlink points outside the config directory (to {}) — copy the file in instead",
                    target.display()
                ),
            ),
            ProblemKind::Special(what) => Error::path(
                self.source,
                format!("is {what}, which cannot go into an image — remove it or --exclude it"),
            ),
        }
    }
}

/// The result of [`walk`]. Everything is sorted by path bytes, so parents come first.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    /// What goes into the image.
    pub entries: Vec<Entry>,
    /// What a filter left out; an excluded directory is listed, its content is not walked.
    pub excluded: Vec<(PathBuf, Excluded)>,
    /// Entries that cannot go into an image.
    pub problems: Vec<Problem>,
}

impl Walk {
    /// Why `rel` (relative to the config directory) is not in the image, if a filter left it
    /// or one of its parent directories out: the excluded path and the reason.
    pub(crate) fn exclusion(&self, rel: &Path) -> Option<(&Path, &Excluded)> {
        rel.ancestors()
            .filter(|a| !a.as_os_str().is_empty())
            .find_map(|a| {
                self.excluded
                    .binary_search_by(|(p, _)| by_bytes(p, a))
                    .ok()
                    .map(|i| (self.excluded[i].0.as_path(), &self.excluded[i].1))
            })
    }
}

/// `--exclude` as one gitignore matcher rooted at the config directory.
struct Filters {
    excludes: Gitignore,
}

impl Filters {
    fn load(dir: &Path, opts: &WalkOptions) -> Result<Filters> {
        let mut b = GitignoreBuilder::new(dir);
        for p in &opts.excludes {
            b.add_line(None, p)
                .map_err(|e| Error::Usage(format!("--exclude {p:?}: invalid pattern: {e}")))?;
        }
        let excludes = b
            .build()
            .map_err(|e| Error::Usage(format!("invalid ignore pattern: {e}")))?;
        Ok(Filters { excludes })
    }

    fn decide(&self, abs: &Path, is_dir: bool) -> Option<Excluded> {
        match self.excludes.matched(abs, is_dir) {
            Match::Ignore(g) => Some(Excluded::Exclude(g.original().to_string())),
            _ => None,
        }
    }
}

/// Walks `dir` and sorts what it finds; only a missing or unusable root, or an unreadable
/// entry, is an error. See [`collect`] for the strict form.
pub(crate) fn walk(dir: &Path, opts: &WalkOptions) -> Result<Walk> {
    let meta = fs::metadata(dir).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::path(
            dir,
            "config directory does not exist — pass the directory holding your *-config.yaml files",
        ),
        _ => Error::io("reading config directory", dir, e),
    })?;
    if !meta.is_dir() {
        return Err(Error::path(
            dir,
            "is a file, not a directory — pass the directory that holds it",
        ));
    }
    let filters = Filters::load(dir, opts)?;
    let mut out = Walk::default();
    // The root itself must be listable; below it an unreadable directory is a Problem.
    let names = list(dir).map_err(|e| Error::io("reading directory", dir, e))?;
    visit(dir, Path::new(""), names, &filters, &mut out)?;
    out.entries.sort_by(|a, b| by_bytes(&a.rel, &b.rel));
    out.excluded.sort_by(|a, b| by_bytes(&a.0, &b.0));
    out.problems.sort_by(|a, b| by_bytes(&a.rel, &b.rel));
    Ok(out)
}

/// Walks `dir` for a writer: every entry that goes in, sorted by path bytes (parents first), or
/// the first entry that cannot go into an image as an error.
pub(crate) fn collect(dir: &Path, opts: &WalkOptions) -> Result<Vec<Entry>> {
    let w = walk(dir, opts)?;
    match w.problems.into_iter().next() {
        Some(p) => Err(p.into_error()),
        None => Ok(w.entries),
    }
}

fn by_bytes(a: &Path, b: &Path) -> std::cmp::Ordering {
    a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes())
}

fn list(dir: &Path) -> io::Result<Vec<std::ffi::OsString>> {
    fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect()
}

fn visit(
    root: &Path,
    rel: &Path,
    names: Vec<std::ffi::OsString>,
    filters: &Filters,
    out: &mut Walk,
) -> Result<()> {
    let top = rel.as_os_str().is_empty();
    for name in names {
        let child_rel = rel.join(&name);
        let child = root.join(&child_rel);
        let n = name.to_string_lossy();
        let always = ALWAYS_EXCLUDED_ANYWHERE
            .iter()
            .chain(if top { ALWAYS_EXCLUDED_TOP } else { &[] })
            .find(|x| **x == n);
        if let Some(x) = always {
            out.excluded.push((child_rel, Excluded::Always(x)));
            continue;
        }
        let meta =
            fs::symlink_metadata(&child).map_err(|e| Error::io("reading metadata", &child, e))?;
        let ft = meta.file_type();
        if let Some(why) = filters.decide(&child, ft.is_dir()) {
            out.excluded.push((child_rel, why));
            continue;
        }
        let problem = |kind| Problem {
            rel: child_rel.clone(),
            source: child.clone(),
            kind,
        };
        let kind = if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_file() {
            EntryKind::File {
                size: meta.len(),
                executable: meta.permissions().mode() & 0o111 != 0,
            }
        } else if ft.is_symlink() {
            let target =
                fs::read_link(&child).map_err(|e| Error::io("reading symlink", &child, e))?;
            if !link_stays_inside(&child_rel, &target) {
                out.problems.push(problem(ProblemKind::LinkOutside(target)));
                continue;
            }
            EntryKind::Symlink { target }
        } else {
            let what = if ft.is_socket() {
                "a socket"
            } else if ft.is_fifo() {
                "a fifo"
            } else {
                "a device"
            };
            out.problems.push(problem(ProblemKind::Special(what)));
            continue;
        };
        let is_dir = kind == EntryKind::Dir;
        out.entries.push(Entry {
            rel: child_rel.clone(),
            source: child.clone(),
            kind,
        });
        if is_dir {
            match list(&child) {
                Ok(names) => visit(root, &child_rel, names, filters, out)?,
                Err(e) => out.problems.push(Problem {
                    rel: child_rel,
                    source: child,
                    kind: ProblemKind::Unreadable(e),
                }),
            }
        }
    }
    Ok(())
}

/// Resolves `.` and `..` without touching the file system. `None` when a `..` would climb above
/// the start of a relative path (or above `/`), or for a Windows prefix.
pub(crate) fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    let mut depth = 0usize;
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                depth = depth.checked_sub(1)?;
                out.pop();
            }
            Component::Normal(s) => {
                depth += 1;
                out.push(s);
            }
            Component::RootDir => out.push(c),
            Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// True when a relative `target`, resolved from the link's own directory, stays in the tree.
pub(crate) fn link_stays_inside(link_rel: &Path, target: &Path) -> bool {
    let parent = link_rel.parent().unwrap_or(Path::new(""));
    !target.is_absolute() && !parent.is_absolute() && normalize(&parent.join(target)).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        fs::create_dir_all(p.join("responses/nested")).unwrap();
        fs::write(p.join("a-config.yaml"), "plugin: rest\n").unwrap();
        fs::write(p.join("responses/one.json"), "{}").unwrap();
        fs::write(p.join("responses/nested/two.json"), "[]").unwrap();
        fs::write(p.join("run.sh"), "#!/bin/sh\n").unwrap();
        fs::create_dir_all(p.join(".git/objects")).unwrap();
        fs::write(p.join(".git/HEAD"), "ref").unwrap();
        fs::write(p.join(".imposter.yaml"), "version: 4.9.3\n").unwrap();
        d
    }

    fn rels(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| e.rel.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn excludes_name_their_pattern_and_imposterignore_filters_nothing() {
        let d = tree();
        fs::write(d.path().join(".imposterignore"), "*.sh\nresponses\n").unwrap();
        fs::write(d.path().join("imposter-project.yaml"), "engine: docker\n").unwrap();
        let w = walk(
            d.path(),
            &WalkOptions {
                excludes: vec!["nested/".into()],
            },
        )
        .unwrap();
        let r = rels(&w.entries);
        assert!(r.contains(&".imposterignore".to_string()));
        assert!(r.contains(&"run.sh".to_string()), "{r:?}");
        assert!(r.contains(&"responses/one.json".to_string()), "{r:?}");
        assert!(!r
            .iter()
            .any(|r| r.contains("nested") || r.contains("imposter-project")));
        // A file below an excluded directory names the directory and the pattern.
        assert_eq!(
            w.exclusion(Path::new("responses/nested/two.json")),
            Some((
                Path::new("responses/nested"),
                &Excluded::Exclude("nested/".into())
            ))
        );
        assert_eq!(
            w.exclusion(Path::new(".git/HEAD")).map(|x| x.1),
            Some(&Excluded::Always(".git"))
        );
        assert_eq!(
            w.exclusion(Path::new("imposter-project.yaml")).map(|x| x.1),
            Some(&Excluded::Always("imposter-project.yaml"))
        );
        assert_eq!(w.exclusion(Path::new("responses/one.json")), None);
    }

    #[test]
    fn an_exclude_negation_keeps_a_file() {
        let d = tree();
        let w = walk(
            d.path(),
            &WalkOptions {
                excludes: vec!["*.json".into(), "!one.json".into()],
            },
        )
        .unwrap();
        let r = rels(&w.entries);
        assert!(r.contains(&"responses/one.json".to_string()), "{r:?}");
        assert!(!r.contains(&"responses/nested/two.json".to_string()));
    }

    #[test]
    fn problems_are_reported_not_fatal_until_collect() {
        let d = tree();
        std::os::unix::fs::symlink("../../etc/passwd", d.path().join("responses/x")).unwrap();
        let w = walk(d.path(), &WalkOptions::default()).unwrap();
        assert_eq!(w.problems.len(), 1);
        assert!(matches!(w.problems[0].kind, ProblemKind::LinkOutside(_)));
        let err = collect(d.path(), &WalkOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("outside the config directory"), "{err}");
    }

    #[test]
    fn symlinks_inside_kept_outside_rejected() {
        let d = tree();
        std::os::unix::fs::symlink("one.json", d.path().join("responses/alias.json")).unwrap();
        let e = collect(d.path(), &WalkOptions::default()).unwrap();
        assert!(e
            .iter()
            .any(|e| matches!(e.kind, EntryKind::Symlink { .. })));
        std::os::unix::fs::symlink("../../etc/passwd", d.path().join("responses/x")).unwrap();
        let err = collect(d.path(), &WalkOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("outside the config directory"), "{err}");
    }

    #[test]
    fn fifo_rejected_and_file_as_dir_rejected() {
        let d = tree();
        let st = std::process::Command::new("mkfifo")
            .arg(d.path().join("pipe"))
            .status()
            .unwrap();
        assert!(st.success());
        let err = collect(d.path(), &WalkOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("fifo"), "{err}");
        let err = collect(&d.path().join("run.sh"), &WalkOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a directory"), "{err}");
    }

    #[test]
    fn normalize_resolves_dots_and_refuses_to_climb_out() {
        assert_eq!(normalize(Path::new("a/./b/../c")), Some("a/c".into()));
        assert_eq!(normalize(Path::new("/r/x/../y")), Some("/r/y".into()));
        assert_eq!(normalize(Path::new("a/../..")), None);
        assert_eq!(normalize(Path::new("/..")), None);
        assert_eq!(normalize(Path::new("")), Some(PathBuf::new()));
        assert!(link_stays_inside(Path::new("a/b/l"), Path::new("../c")));
        assert!(link_stays_inside(Path::new("l"), Path::new("./x")));
        assert!(!link_stays_inside(Path::new("a/l"), Path::new("../../x")));
        assert!(!link_stays_inside(Path::new("l"), Path::new("/etc/passwd")));
    }
}
