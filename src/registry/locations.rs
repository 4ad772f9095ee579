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
mod tests {
    use super::*;

    fn d(n: u32) -> String {
        format!("sha256:{n:064x}")
    }

    fn r(s: &str) -> RegistryRef {
        RegistryRef::parse(s).unwrap()
    }

    #[test]
    fn what_one_run_learns_the_next_run_reads() {
        let dir = tempfile::tempdir().unwrap();
        let l = Locations::open(dir.path());
        l.learn(&d(1), &r("reg.example:5000/team/a"));
        l.learn(&d(1), &r("reg.example:5000/team/b"));
        l.learn(&d(1), &r("other.example/x"));
        l.save();
        let again = Locations::open(dir.path());
        assert_eq!(
            again.repositories(&d(1), "reg.example:5000"),
            ["team/b", "team/a"],
            "newest first, this registry only"
        );
        assert!(again.holds(&d(1), &r("other.example/x:tag")));
        assert!(again.repositories(&d(2), "reg.example:5000").is_empty());
    }

    #[test]
    fn a_refused_location_is_forgotten_across_runs() {
        let dir = tempfile::tempdir().unwrap();
        let l = Locations::open(dir.path());
        l.learn(&d(1), &r("reg.example/team/a"));
        l.save();
        let l = Locations::open(dir.path());
        l.forget(&d(1), &r("reg.example/team/a"));
        assert!(l.repositories(&d(1), "reg.example").is_empty());
        l.save();
        assert!(Locations::open(dir.path())
            .repositories(&d(1), "reg.example")
            .is_empty());
    }

    #[test]
    fn a_missing_or_unreadable_record_is_empty_and_saving_into_a_missing_dir_creates_it() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("not/yet");
        let l = Locations::open(&cache);
        assert!(l.repositories(&d(1), "reg.example").is_empty());
        l.learn(&d(1), &r("reg.example/team/a"));
        l.save();
        assert_eq!(
            Locations::open(&cache).repositories(&d(1), "reg.example"),
            ["team/a"]
        );
        // The record's name taken by a directory: read as empty, not written, no panic.
        let odd = dir.path().join("odd");
        std::fs::create_dir_all(odd.join(FILE)).unwrap();
        let l = Locations::open(&odd);
        l.learn(&d(1), &r("reg.example/team/a"));
        l.save();
        assert!(
            l.holds(&d(1), &r("reg.example/team/a")),
            "still known in memory"
        );
    }

    #[test]
    fn damaged_lines_are_skipped_and_the_good_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut text: Vec<u8> = Vec::new();
        text.extend_from_slice(b"\xff\xfe garbage \x00\n");
        text.extend_from_slice(format!("{} reg.example/team/good\n", d(1)).as_bytes());
        text.extend_from_slice(b"sha256:abc reg.example/team/short-digest\n");
        text.extend_from_slice(format!("{} reg.example/Team/Upper\n", d(1)).as_bytes());
        text.extend_from_slice(format!("{} reg.example/team/a:tag\n", d(1)).as_bytes());
        text.extend_from_slice(format!("{} team-without-host\n", d(1)).as_bytes());
        // A write torn by a crash: no newline at the end.
        text.extend_from_slice(format!("{} reg.example/team/to", d(1)).as_bytes());
        std::fs::write(dir.path().join(FILE), &text).unwrap();
        let l = Locations::open(dir.path());
        assert_eq!(
            l.repositories(&d(1), "reg.example"),
            ["team/to", "team/good"]
        );
        // The next append starts on a line of its own, so the torn line spoils nothing more.
        l.learn(&d(2), &r("reg.example/team/next"));
        l.save();
        let again = Locations::open(dir.path());
        assert_eq!(again.repositories(&d(2), "reg.example"), ["team/next"]);
        assert_eq!(
            again.repositories(&d(1), "reg.example"),
            ["team/to", "team/good"]
        );
    }

    #[test]
    fn the_record_stays_bounded_and_keeps_the_newest_facts() {
        let dir = tempfile::tempdir().unwrap();
        for round in 0..3u32 {
            let l = Locations::open(dir.path());
            for i in 0..2000u32 {
                l.learn(&d(round * 2000 + i), &r("reg.example/team/a"));
            }
            l.save();
        }
        let text = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert!(
            text.lines().count() <= MAX_LINES,
            "{} lines",
            text.lines().count()
        );
        let l = Locations::open(dir.path());
        assert!(l.holds(&d(5999), &r("reg.example/team/a")), "newest kept");
        assert!(!l.holds(&d(0), &r("reg.example/team/a")), "oldest evicted");
        // Per blob, only the newest few repositories.
        let l = Locations::open(dir.path());
        for i in 0..20u32 {
            l.learn(&d(7), &r(&format!("reg.example/team/r{i}")));
        }
        assert_eq!(l.repositories(&d(7), "reg.example").len(), PER_DIGEST);
        assert_eq!(l.repositories(&d(7), "reg.example")[0], "team/r19");
    }

    #[test]
    fn a_huge_file_is_read_in_part_and_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = format!("{} reg.example/team/good\n", d(1)).into_bytes();
        text.resize(MAX_BYTES as usize + 10, b'x');
        std::fs::write(dir.path().join(FILE), &text).unwrap();
        let l = Locations::open(dir.path());
        assert!(l.holds(&d(1), &r("reg.example/team/good")));
        l.learn(&d(2), &r("reg.example/team/new"));
        l.save();
        let len = std::fs::metadata(dir.path().join(FILE)).unwrap().len();
        assert!(len < 1000, "rewritten small: {len} bytes");
        let again = Locations::open(dir.path());
        assert!(again.holds(&d(1), &r("reg.example/team/good")));
        assert!(again.holds(&d(2), &r("reg.example/team/new")));
    }

    #[test]
    fn concurrent_writers_lose_no_line_and_leave_no_damage() {
        let dir = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..8u32)
            .map(|t| {
                let p = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    for i in 0..20u32 {
                        // Each "process" reads, learns and appends on its own.
                        let l = Locations::open(&p);
                        l.learn(&d(t * 100 + i), &r(&format!("reg.example/t{t}")));
                        l.save();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        // A reader can catch another process's append half-way (reads do not wait for writes)
        // and take it for a torn line: its own append then starts with a newline, which leaves
        // an empty line and damages nothing.
        let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 160, "{text}");
        assert!(lines.iter().all(|l| parse_line(l).is_some()), "{text}");
        let l = Locations::open(dir.path());
        for t in 0..8u32 {
            for i in 0..20u32 {
                assert!(l.holds(&d(t * 100 + i), &r(&format!("reg.example/t{t}"))));
            }
        }
    }

    #[test]
    fn mount_from_takes_a_repository_with_or_without_its_registry() {
        let m = MountFrom::parse("team/engine").unwrap();
        assert_eq!((m.registry, m.repository.as_str()), (None, "team/engine"));
        let m = MountFrom::parse("localhost:5000/team/engine:4.9.3").unwrap();
        assert_eq!(m.registry.as_deref(), Some("localhost:5000"));
        assert_eq!(m.repository, "team/engine");
        let e = MountFrom::parse("Team/Engine").unwrap_err().to_string();
        assert!(e.contains("--mount-from") && e.contains("lowercase"), "{e}");
    }
}
