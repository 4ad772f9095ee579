//! Where blobs were seen: a small record beside the blob cache of which registry repositories
//! hold which blob, so a push to a new repository can mount a blob from another repository of
//! the same registry instead of copying it (what containers/image's blob-info cache does).
//! Beside it, [`MountFrom`]: the repositories the user says may hold them (`--mount-from`).
//! Both ends of the client read and add to these hints, so they live below both.
//!
//! The record is one text file, `DIR/blob-locations`, one line per fact, oldest first:
//! `sha256:<hex> registry/repository` (seen there) or `sha256:<hex> -registry/repository` (a
//! mount from there was refused). A process reads it once and appends what it learnt in one
//! `O_APPEND` write at the end, so processes sharing the cache never overwrite each other's
//! lines; past `MAX_LINES` lines it is rewritten (temp file, then rename) with the newest
//! `MAX_ENTRIES` facts, so it stays small. Everything about it is a hint: a missing, unreadable
//! or damaged record (a torn line, garbage) is read as far as its lines make sense and never
//! fails a build, and a location that turns out wrong costs one refused mount.
use crate::atomic::{AtomicFile, PRIVATE};
use crate::error::{Error, Result};
use crate::oci::reference::RegistryRef;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The record's file name inside the cache directory.
pub const FILE: &str = "blob-locations";
/// Lines past which the file is rewritten with only the newest facts.
const MAX_LINES: usize = 4096;
/// Facts (digest, location) kept when the file is rewritten; the oldest go first.
const MAX_ENTRIES: usize = 2048;
/// Repositories remembered per blob, newest kept.
const PER_DIGEST: usize = 8;
/// A file larger than this is not a record mockimg wrote: read its start, rewrite it on save.
const MAX_BYTES: u64 = 4 << 20;
/// The longest line read (a digest, a host and a repository name of at most 255 characters).
const MAX_LINE: usize = 600;

/// A registry and a repository in it.
type Loc = (String, String);

/// The record of where blobs were seen (see the module docs). Shared by one run's pulls and
/// pushes; [`Locations::save`] writes what the run learnt.
#[derive(Default)]
pub struct Locations {
    /// The record file; `None` keeps what is learnt in memory only (`--no-cache`).
    path: Option<PathBuf>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Digest → (order of the fact, location), oldest first.
    seen: HashMap<String, Vec<(u64, Loc)>>,
    /// The next fact's order.
    next: u64,
    /// Lines in the file as read, and whether it must be rewritten (too long, too large).
    lines: usize,
    rewrite: bool,
    /// Whether the file as read ended mid-line (a torn write): the next append starts a line.
    torn: bool,
    /// Lines this run learnt, not written yet.
    pending: Vec<String>,
}

// Only the path: registry connections are pooled by their options' `Debug` text, which must
// not change as facts are learnt.
impl std::fmt::Debug for Locations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locations")
            .field("path", &self.path)
            .finish()
    }
}

impl Locations {
    /// The record in `cache_dir`, read now. Never fails: a record that is missing or cannot be
    /// read is an empty one.
    pub fn open(cache_dir: &Path) -> Locations {
        let path = cache_dir.join(FILE);
        let mut state = State::default();
        match read_capped(&path) {
            Ok((text, whole)) => {
                state.torn = !text.is_empty() && !text.ends_with('\n');
                state.rewrite = !whole;
                for line in text.lines() {
                    state.lines += 1;
                    if let Some((digest, loc, refused)) = parse_line(line) {
                        state.apply(digest, loc, refused);
                    }
                }
                state.rewrite |= state.lines > MAX_LINES;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::debug!("blob location record {} not read: {e}", path.display()),
        }
        Locations {
            path: Some(path),
            state: Mutex::new(state),
        }
    }

    /// A record kept in memory for this run only.
    pub fn in_memory() -> Locations {
        Locations::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves facts that are still facts.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Repositories of `registry` where `digest` was seen, newest first.
    pub fn repositories(&self, digest: &str, registry: &str) -> Vec<String> {
        let st = self.state();
        let Some(v) = st.seen.get(digest) else {
            return Vec::new();
        };
        v.iter()
            .rev()
            .filter(|(_, (r, _))| r == registry)
            .map(|(_, (_, repo))| repo.clone())
            .collect()
    }

    /// Whether `digest` was seen in `r`'s repository.
    pub fn holds(&self, digest: &str, r: &RegistryRef) -> bool {
        self.repositories(digest, &r.registry)
            .iter()
            .any(|repo| repo == &r.repository)
    }

    /// `digest` is in `r`'s repository (pulled from there, pushed or mounted there).
    pub fn learn(&self, digest: &str, r: &RegistryRef) {
        self.note(digest, r, false);
    }

    /// A mount of `digest` from `r`'s repository was refused: do not offer it again.
    pub fn forget(&self, digest: &str, r: &RegistryRef) {
        self.note(digest, r, true);
    }

    fn note(&self, digest: &str, r: &RegistryRef, refused: bool) {
        let loc = (r.registry.clone(), r.repository.clone());
        let line = format_line(digest, &loc, refused);
        // Only what parses back is written (a digest mockimg cannot name, a name with spaces).
        if parse_line(line.trim_end()).is_none() {
            return;
        }
        let mut st = self.state();
        if st.pending.contains(&line) {
            return;
        }
        st.apply(digest.to_string(), loc, refused);
        st.pending.push(line);
    }

    /// Writes what this run learnt: appended in one write, or the whole record rewritten with
    /// the newest facts when it has grown past its bound. Failures are logged, never returned:
    /// the record only ever saves requests.
    pub fn save(&self) {
        let Some(path) = &self.path else { return };
        let mut st = self.state();
        if st.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut st.pending);
        let res = if st.rewrite || st.lines + pending.len() > MAX_LINES {
            rewrite(path, &pending)
        } else {
            append(path, &pending, st.torn)
        };
        match res {
            Ok(()) => {
                st.lines += pending.len();
                st.torn = false;
            }
            Err(e) => tracing::debug!(
                "blob location record {} not written: {e}; later pushes may copy blobs they could mount",
                path.display()
            ),
        }
    }
}

impl State {
    fn apply(&mut self, digest: String, loc: Loc, refused: bool) {
        let order = self.next;
        self.next += 1;
        let v = self.seen.entry(digest).or_default();
        v.retain(|(_, l)| l != &loc);
        if !refused {
            v.push((order, loc));
            if v.len() > PER_DIGEST {
                v.remove(0);
            }
        }
    }

    /// Every fact, oldest first, the newest `MAX_ENTRIES` of them.
    fn newest(&self) -> Vec<String> {
        let mut all: Vec<(u64, &str, &Loc)> = self
            .seen
            .iter()
            .flat_map(|(d, v)| v.iter().map(move |(o, l)| (*o, d.as_str(), l)))
            .collect();
        all.sort_by_key(|(o, _, _)| *o);
        let skip = all.len().saturating_sub(MAX_ENTRIES);
        all[skip..]
            .iter()
            .map(|(_, d, l)| format_line(d, l, false))
            .collect()
    }
}

fn format_line(digest: &str, (registry, repo): &Loc, refused: bool) -> String {
    let mark = if refused { "-" } else { "" };
    format!("{digest} {mark}{registry}/{repo}\n")
}

/// `(digest, location, refused)` of one line, `None` for anything mockimg would not have written.
fn parse_line(line: &str) -> Option<(String, Loc, bool)> {
    if line.len() > MAX_LINE {
        return None;
    }
    let (digest, loc) = line.split_once(' ')?;
    if !crate::oci::digest::is_valid(digest) {
        return None;
    }
    let (refused, loc) = match loc.strip_prefix('-') {
        Some(l) => (true, l),
        None => (false, loc),
    };
    let (registry, repo) = loc.split_once('/')?;
    // The name must be one mockimg would write: normalised, no tag, no digest, nothing else.
    let r = RegistryRef::parse(loc).ok()?;
    if r.registry != registry || r.repository != repo || r.tag.is_some() || r.digest.is_some() {
        return None;
    }
    Some((digest.to_string(), (r.registry, r.repository), refused))
}

/// The file's text (lossily decoded: bytes that are not UTF-8 only spoil their own line), and
/// whether it was read whole.
fn read_capped(path: &Path) -> std::io::Result<(String, bool)> {
    let f = std::fs::File::open(path)?;
    let mut buf = Vec::new();
    f.take(MAX_BYTES + 1).read_to_end(&mut buf)?;
    let whole = buf.len() as u64 <= MAX_BYTES;
    buf.truncate(MAX_BYTES as usize);
    Ok((String::from_utf8_lossy(&buf).into_owned(), whole))
}

/// One `O_APPEND` write of every line: other processes' lines are never overwritten, and on a
/// local filesystem the lines of one write do not interleave with another process's.
fn append(path: &Path, lines: &[String], torn: bool) -> std::io::Result<()> {
    std::fs::create_dir_all(crate::atomic::parent_of(path))?;
    let mut buf = String::new();
    if torn {
        buf.push('\n');
    }
    buf.extend(lines.iter().map(String::as_str));
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)?;
    f.write_all(buf.as_bytes())
}

/// Reads the record again (other processes may have appended since this one read it), adds
/// `lines`, and replaces the file with the newest facts. Lines another process appends between
/// the read and the rename are lost: they are hints, and come back with its next push.
fn rewrite(path: &Path, lines: &[String]) -> std::io::Result<()> {
    std::fs::create_dir_all(crate::atomic::parent_of(path))?;
    let mut st = State::default();
    if let Ok((text, _)) = read_capped(path) {
        for l in text.lines().chain(lines.iter().map(|l| l.trim_end())) {
            if let Some((d, loc, refused)) = parse_line(l) {
                st.apply(d, loc, refused);
            }
        }
    } else {
        for l in lines {
            if let Some((d, loc, refused)) = parse_line(l.trim_end()) {
                st.apply(d, loc, refused);
            }
        }
    }
    let mut out = AtomicFile::create(path).map_err(std::io::Error::other)?;
    for l in st.newest() {
        out.write_all(l.as_bytes())?;
    }
    out.commit(PRIVATE).map_err(std::io::Error::other)
}

/// A `--mount-from` repository: on one registry (`HOST/REPO`), or on whichever registry a push
/// goes to (`REPO`). A tag or digest given with it is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountFrom {
    /// The registry it is on; `None`: every target registry.
    pub registry: Option<String>,
    /// The repository path.
    pub repository: String,
}

impl MountFrom {
    /// Parses `REPO` or `HOST[:PORT]/REPO` (docker's rule: a first component with a `.` or a
    /// `:`, or `localhost`, is a host).
    pub fn parse(s: &str) -> Result<MountFrom> {
        let first = s.split('/').next().unwrap_or("");
        let host_given = s.contains('/')
            && (first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.starts_with('['));
        let spelled = if host_given {
            s.to_string()
        } else {
            // Any host will do to check the path: it is not kept.
            format!("mount-from.invalid/{s}")
        };
        let r = RegistryRef::parse(&spelled).map_err(|e| {
            Error::Usage(format!(
                "--mount-from {s:?}: {e} — give a repository on the target registry, e.g. \
                 team/engine or registry.example.com/team/engine"
            ))
        })?;
        Ok(MountFrom {
            registry: host_given.then_some(r.registry),
            repository: r.repository,
        })
    }
}

#[cfg(test)]
#[path = "locations_tests.rs"]
mod tests;
