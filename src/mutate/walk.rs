//! The one walk of a config directory, shared by the image layer, `validate`, the Lambda bundle
//! and `publish`, so that what validation checks is exactly what ends up in the image, zip or
//! bucket.
//!
//! A walk reports four things: the entries that go in, the files reached through a symlinked
//! directory, the paths a filter left out (and which filter), and the entries that cannot go in
//! at all. Deciding what is an error is the caller's job: [`collect`] (layer, bundle, publish)
//! fails on the first problem, while `validate` reports every problem as a finding.
//!
//! Symlinks are resolved here, once: every link is canonicalized and compared with the
//! canonical root, so a chain through other links (or through an excluded link) that ends
//! outside the tree is refused, as are dangling links, loops, links to sockets, fifos and
//! devices, and directory links that lead back into a directory on their own path. Readers open
//! the resolved path the walk hands out ([`Entry::content`], [`Walk::linked`]) with
//! [`open_regular`], which never follows a link and never blocks on a special file.
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
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

mod resolve;

/// VCS data never belongs in an image, at any depth.
const ALWAYS_EXCLUDED_ANYWHERE: &[&str] = &[".git"];
/// The prefix image layers use for whiteouts: a config file named so would delete base content.
const WHITEOUT_PREFIX: &[u8] = b".wh.";

/// What the walk leaves out: the user's patterns, and names the caller knows never ship.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalkOptions {
    /// Extra gitignore-style patterns (`--exclude`).
    pub excludes: Vec<String>,
    /// Names left out at the top of the tree whatever the patterns say: files that describe
    /// how to run the engine rather than config (the Imposter tooling's project files, handed
    /// in by the engine layer's `walk_options`). The walk itself knows no engine.
    pub never_at_top: &'static [&'static str],
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
    /// A symlink whose target text stays inside the tree and whose resolution does too.
    Symlink {
        /// The link's target, as stored in the link (what the image keeps).
        target: PathBuf,
        /// What it resolves to on disk.
        resolved: Resolved,
    },
}

/// Where a symlink ends up: a canonical path (no links in it) inside the config directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// A regular file.
    File {
        /// The canonical path to read.
        path: PathBuf,
        /// Any execute bit set.
        executable: bool,
    },
    /// A directory; its files are in [`Walk::linked`] under the link's path.
    Dir {
        /// The canonical directory.
        path: PathBuf,
    },
}

/// One thing in the config tree.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Path relative to the config directory.
    pub rel: PathBuf,
    /// Path on disk (for [`Walk::linked`] files: the resolved path, with no links in it).
    pub source: PathBuf,
    /// What it is.
    pub kind: EntryKind,
}

impl Entry {
    /// The file whose bytes this entry stands for and whether it is executable: the file
    /// itself, or the file a symlink resolves to; `None` for directories and links to them.
    pub(crate) fn content(&self) -> Option<(&Path, bool)> {
        match &self.kind {
            EntryKind::File { executable, .. } => Some((&self.source, *executable)),
            EntryKind::Symlink {
                resolved: Resolved::File { path, executable },
                ..
            } => Some((path, *executable)),
            _ => None,
        }
    }
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
    /// A symlink that resolves (through other links) outside the config directory.
    ResolvesOutside(PathBuf),
    /// A symlink to nothing.
    Dangling,
    /// A symlink that cannot be resolved for another reason.
    Unresolvable(io::Error),
    /// Symlinks that loop, or a directory link back into a directory on its own path.
    Loop,
    /// Directory links that expand to more than the walk follows.
    TooManyLinked,
    /// A socket, fifo or device.
    Special(&'static str),
    /// A symlink to a socket, fifo or device.
    LinkToSpecial(&'static str),
    /// A name starting with `.wh.`, which a layer reads as a whiteout.
    Whiteout,
}

impl ProblemKind {
    /// What is wrong and the fix, as one line (without the path).
    pub(crate) fn message(&self) -> String {
        match self {
            ProblemKind::Unreadable(e) => {
                format!("cannot read this directory: {e} — fix its permissions or remove it")
            }
            ProblemKind::LinkOutside(target) => format!(
                "symlink points outside the config directory (to {}) — copy the file in instead",
                target.display()
            ),
            ProblemKind::ResolvesOutside(real) => format!(
                "symlink resolves outside the config directory (to {}) — copy the file in instead, or --exclude the link",
                real.display()
            ),
            ProblemKind::Dangling => {
                "symlink target does not exist — fix the link or --exclude it".into()
            }
            ProblemKind::Unresolvable(e) => {
                format!("cannot resolve this symlink: {e} — fix the link or --exclude it")
            }
            ProblemKind::Loop => "symlink loops back to a directory on its own path — remove the link or --exclude it".into(),
            ProblemKind::TooManyLinked => format!(
                "symlinked directories expand to more than {} entries (or {} links deep) — replace the links with real directories or --exclude them",
                resolve::MAX_LINKED,
                resolve::MAX_LINK_DEPTH
            ),
            ProblemKind::Special(what) => {
                format!("is {what}, which cannot go into an image — remove it or --exclude it")
            }
            ProblemKind::LinkToSpecial(what) => format!(
                "symlink points to {what}, which cannot go into an image — remove it or --exclude it"
            ),
            ProblemKind::Whiteout => "name starts with '.wh.', which an image layer reads as a whiteout deleting the base's files — rename it or --exclude it".into(),
        }
    }
}

impl Problem {
    /// The error a build reports for this entry.
    pub(crate) fn into_error(self) -> Error {
        match self.kind {
            ProblemKind::Unreadable(e) => Error::io("reading directory", self.source, e),
            // The link as the user sees it (inside the config dir), not where it resolves.
            kind => Error::path(self.source, kind.message()),
        }
    }
}

/// The result of [`walk`]. Everything is sorted by path bytes, so parents come first.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    /// What goes into the image.
    pub entries: Vec<Entry>,
    /// The regular files reached through symlinked directories, under the link's path (as an
    /// engine reading the directory sees them): `source` is the resolved file, `kind` a
    /// [`EntryKind::File`]. Not in the image (the link is); `publish` uploads them.
    pub linked: Vec<Entry>,
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

    /// The entry at `rel`, if it goes into the image.
    pub(crate) fn entry(&self, rel: &Path) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| by_bytes(&e.rel, rel))
            .ok()
            .map(|i| &self.entries[i])
    }
}

/// `--exclude` as one gitignore matcher rooted at the config directory, and the names never
/// taken from the top.
struct Filters {
    excludes: Gitignore,
    top: &'static [&'static str],
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
        Ok(Filters {
            excludes,
            top: opts.never_at_top,
        })
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
    // The root itself must be listable; below it an unreadable directory is a Problem.
    let names = list(dir).map_err(|e| Error::io("reading directory", dir, e))?;
    let real_root =
        fs::canonicalize(dir).map_err(|e| Error::io("reading config directory", dir, e))?;
    let mut w = resolve::Walker::new(dir, real_root, filters);
    w.visit_root(names)?;
    let mut out = w.out;
    out.entries.sort_by(|a, b| by_bytes(&a.rel, &b.rel));
    out.linked.sort_by(|a, b| by_bytes(&a.rel, &b.rel));
    out.excluded.sort_by(|a, b| by_bytes(&a.0, &b.0));
    out.problems.sort_by(|a, b| by_bytes(&a.rel, &b.rel));
    Ok(out)
}

/// [`walk`] for a writer: the whole walk, or the first entry that cannot go into an image as
/// an error.
pub(crate) fn collect_walk(dir: &Path, opts: &WalkOptions) -> Result<Walk> {
    let mut w = walk(dir, opts)?;
    match std::mem::take(&mut w.problems).into_iter().next() {
        Some(p) => Err(p.into_error()),
        None => Ok(w),
    }
}

/// Walks `dir` for a writer: every entry that goes in, sorted by path bytes (parents first), or
/// the first entry that cannot go into an image as an error.
pub(crate) fn collect(dir: &Path, opts: &WalkOptions) -> Result<Vec<Entry>> {
    collect_walk(dir, opts).map(|w| w.entries)
}

/// The files a build, bundle or publish of `dir` reads, once the walk has resolved every
/// symlink: each as (path in the config tree, file read for it on disk), the files under
/// symlinked directories included, sorted by tree path. Fails as `build` does on the first
/// entry that cannot go into an image. For tools and the fuzz harness; the commands use the
/// walk directly.
pub fn config_files(dir: &Path, opts: &WalkOptions) -> Result<Vec<(PathBuf, PathBuf)>> {
    let w = collect_walk(dir, opts)?;
    let mut out: Vec<(PathBuf, PathBuf)> = w
        .entries
        .iter()
        .chain(&w.linked)
        .filter_map(|e| e.content().map(|(p, _)| (e.rel.clone(), p.to_path_buf())))
        .collect();
    out.sort_by(|a, b| by_bytes(&a.0, &b.0));
    Ok(out)
}

/// Opens a file the walk handed out for reading: never through a symlink (`O_NOFOLLOW`), never
/// blocking on a fifo (`O_NONBLOCK`), and only if it is (still) a regular file.
pub(crate) fn open_regular(path: &Path) -> io::Result<(fs::File, fs::Metadata)> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no longer a regular file (it changed since the config directory was walked)",
        ));
    }
    Ok((f, meta))
}

/// Reads a small text file of the config directory that is read before (or besides) the walk:
/// the project file, `.imposterignore`. Links are followed (they are read, not shipped), but
/// only to a regular file, opened without blocking, and at most `cap` bytes.
pub(crate) fn read_small_text(path: &Path, cap: u64) -> io::Result<String> {
    let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
    let not_regular = || invalid("not a regular file (a fifo, socket or device?)".into());
    if !fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(not_regular());
    }
    let mut text = String::new();
    io::Read::read_to_string(&mut io::Read::take(f, cap + 1), &mut text)?;
    if text.len() as u64 > cap {
        return Err(invalid(format!("larger than {cap} bytes")));
    }
    Ok(text)
}

fn by_bytes(a: &Path, b: &Path) -> std::cmp::Ordering {
    a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes())
}

fn list(dir: &Path) -> io::Result<Vec<std::ffi::OsString>> {
    fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect()
}

fn is_executable(meta: &fs::Metadata) -> bool {
    meta.permissions().mode() & 0o111 != 0
}

fn special_kind(ft: fs::FileType) -> &'static str {
    if ft.is_socket() {
        "a socket"
    } else if ft.is_fifo() {
        "a fifo"
    } else {
        "a device"
    }
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
mod tests;
