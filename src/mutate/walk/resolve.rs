//! The walk itself: real directories are descended, every symlink is resolved once (canonical
//! path against the canonical root, then the target's metadata), and a symlinked directory is
//! expanded into [`Walk::linked`] with the canonical directories of the current path kept on a
//! stack, so a link back into one of them is a loop, not a recursion.
use super::{
    is_executable, special_kind, Entry, EntryKind, Excluded, Filters, Problem, ProblemKind,
    Resolved, Walk, ALWAYS_EXCLUDED_ANYWHERE, WHITEOUT_PREFIX,
};
use crate::error::{Error, Result};
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Entries visited through symlinked directories, in all: links to directories that hold
/// links to directories can expand exponentially without any loop.
pub(super) const MAX_LINKED: usize = 20_000;
/// Directory links followed on one path, as the kernel's own limit on links in a lookup.
pub(super) const MAX_LINK_DEPTH: usize = 40;

/// Where a directory being listed sits: in the tree itself, or reached through `links`
/// directory symlinks.
#[derive(Clone, Copy)]
struct Place<'p> {
    /// Path relative to the config directory, as an engine reading it sees it.
    rel: &'p Path,
    /// The directory on disk (canonical when reached through a link).
    disk: &'p Path,
    /// Directory links followed to get here (0: a real directory of the tree).
    links: usize,
}

pub(super) struct Walker<'a> {
    /// The config directory as given (filters match against paths below it).
    root: &'a Path,
    /// The config directory, canonical: everything a link resolves to must be under it.
    real_root: PathBuf,
    filters: Filters,
    /// Entries visited through directory links so far.
    expanded: usize,
    /// Set once the expansion budget ran out (reported once).
    exhausted: bool,
    pub(super) out: Walk,
}

impl<'a> Walker<'a> {
    pub(super) fn new(root: &'a Path, real_root: PathBuf, filters: Filters) -> Walker<'a> {
        Walker {
            root,
            real_root,
            filters,
            expanded: 0,
            exhausted: false,
            out: Walk::default(),
        }
    }

    pub(super) fn visit_root(&mut self, names: Vec<OsString>) -> Result<()> {
        let mut stack = vec![self.real_root.clone()];
        let place = Place {
            rel: Path::new(""),
            disk: self.root,
            links: 0,
        };
        self.visit(place, names, &mut stack)
    }

    fn problem(&mut self, rel: PathBuf, source: PathBuf, kind: ProblemKind) {
        self.out.problems.push(Problem { rel, source, kind });
    }

    /// Lists each of `names` in the directory at `at`. `stack` holds the canonical directories
    /// of the current path, `at`'s included.
    fn visit(
        &mut self,
        at: Place<'_>,
        names: Vec<OsString>,
        stack: &mut Vec<PathBuf>,
    ) -> Result<()> {
        let top = at.rel.as_os_str().is_empty();
        for name in names {
            let rel = at.rel.join(&name);
            let disk = at.disk.join(&name);
            let n = name.to_string_lossy();
            let always = ALWAYS_EXCLUDED_ANYWHERE
                .iter()
                .chain(if top { self.filters.top } else { &[] })
                .find(|x| **x == n);
            if let Some(x) = always {
                self.out.excluded.push((rel, Excluded::Always(x)));
                continue;
            }
            let meta =
                fs::symlink_metadata(&disk).map_err(|e| Error::io("reading metadata", &disk, e))?;
            let ft = meta.file_type();
            if let Some(why) = self.filters.decide(&self.root.join(&rel), ft.is_dir()) {
                self.out.excluded.push((rel, why));
                continue;
            }
            if at.links > 0 {
                if self.exhausted {
                    return Ok(());
                }
                self.expanded += 1;
                if self.expanded > MAX_LINKED {
                    self.exhausted = true;
                    self.problem(rel, disk, ProblemKind::TooManyLinked);
                    return Ok(());
                }
            }
            if name.as_bytes().starts_with(WHITEOUT_PREFIX) {
                self.problem(rel, disk, ProblemKind::Whiteout);
                continue;
            }
            if ft.is_dir() {
                if at.links == 0 {
                    self.out.entries.push(Entry {
                        rel: rel.clone(),
                        source: disk.clone(),
                        kind: EntryKind::Dir,
                    });
                }
                // A real directory below a canonical one is canonical; in the tree itself it is
                // the root's canonical path joined with the relative one.
                let real = if at.links == 0 {
                    self.real_root.join(&rel)
                } else {
                    disk.clone()
                };
                let child = Place {
                    rel: &rel,
                    disk: &disk,
                    links: at.links,
                };
                self.descend(child, real, stack)?;
            } else if ft.is_file() {
                let kind = EntryKind::File {
                    size: meta.len(),
                    executable: is_executable(&meta),
                };
                let e = Entry {
                    rel,
                    source: disk,
                    kind,
                };
                if at.links == 0 {
                    self.out.entries.push(e);
                } else {
                    self.out.linked.push(e);
                }
            } else if ft.is_symlink() {
                self.link(at, rel, disk, stack)?;
            } else {
                self.problem(rel, disk, ProblemKind::Special(special_kind(ft)));
            }
        }
        Ok(())
    }

    /// Lists the directory `at` (canonically `real`) and visits it with `real` on the stack.
    fn descend(&mut self, at: Place<'_>, real: PathBuf, stack: &mut Vec<PathBuf>) -> Result<()> {
        match super::list(at.disk) {
            Ok(names) => {
                stack.push(real);
                let r = self.visit(at, names, stack);
                stack.pop();
                r
            }
            Err(e) => {
                self.problem(
                    at.rel.to_path_buf(),
                    at.disk.to_path_buf(),
                    ProblemKind::Unreadable(e),
                );
                Ok(())
            }
        }
    }

    /// A symlink at `rel` (on disk `disk`) in the directory `at`.
    fn link(
        &mut self,
        at: Place<'_>,
        rel: PathBuf,
        disk: PathBuf,
        stack: &mut Vec<PathBuf>,
    ) -> Result<()> {
        let target = fs::read_link(&disk).map_err(|e| Error::io("reading symlink", &disk, e))?;
        // The image keeps the link's text, so the text must stay inside on its own; links met
        // through a directory link are not in the image, only their resolution matters.
        if at.links == 0 && !super::link_stays_inside(&rel, &target) {
            self.problem(rel, disk, ProblemKind::LinkOutside(target));
            return Ok(());
        }
        let resolved = match self.resolve(&disk, stack) {
            Ok(r) => r,
            Err(kind) => {
                self.problem(rel, disk, kind);
                return Ok(());
            }
        };
        match (&resolved, at.links) {
            (Resolved::Dir { .. }, n) if n >= MAX_LINK_DEPTH => {
                self.problem(rel, disk, ProblemKind::TooManyLinked);
                return Ok(());
            }
            (Resolved::File { path, executable }, n) if n > 0 => {
                let size = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                self.out.linked.push(Entry {
                    rel,
                    source: path.clone(),
                    kind: EntryKind::File {
                        size,
                        executable: *executable,
                    },
                });
                return Ok(());
            }
            _ => {}
        }
        if at.links == 0 {
            self.out.entries.push(Entry {
                rel: rel.clone(),
                source: disk,
                kind: EntryKind::Symlink {
                    target,
                    resolved: resolved.clone(),
                },
            });
        }
        if let Resolved::Dir { path } = resolved {
            let child = Place {
                rel: &rel,
                disk: &path,
                links: at.links + 1,
            };
            self.descend(child, path.clone(), stack)?;
        }
        Ok(())
    }

    /// Where the link at `disk` ends up, or why it cannot go in.
    fn resolve(&self, disk: &Path, stack: &[PathBuf]) -> Result<Resolved, ProblemKind> {
        let real = fs::canonicalize(disk).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ProblemKind::Dangling,
            _ if e.raw_os_error() == Some(libc::ELOOP) => ProblemKind::Loop,
            _ => ProblemKind::Unresolvable(e),
        })?;
        if !real.starts_with(&self.real_root) {
            return Err(ProblemKind::ResolvesOutside(real));
        }
        // Canonical, so this names the target itself; nothing is opened.
        let meta = fs::symlink_metadata(&real).map_err(ProblemKind::Unresolvable)?;
        let ft = meta.file_type();
        if ft.is_file() {
            Ok(Resolved::File {
                executable: is_executable(&meta),
                path: real,
            })
        } else if ft.is_dir() {
            if stack.contains(&real) {
                return Err(ProblemKind::Loop);
            }
            Ok(Resolved::Dir { path: real })
        } else {
            Err(ProblemKind::LinkToSpecial(special_kind(ft)))
        }
    }
}
