//! The temp files and directories mockimg writes beside its outputs (`.mockimg-<pid>-…`,
//! `.mockimg-layout-<pid>-…`): every live one is known, so a signal can remove them even while
//! a blocking thread still writes, and the ones a killed run left behind are removed by the
//! next run into the same directory — only those whose process is gone, never a concurrent
//! run's.
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

/// The temp names this process gives files (`.mockimg-<pid>-`), unique to it.
pub(crate) fn file_prefix() -> String {
    format!(".mockimg-{}-", std::process::id())
}

/// The temp names this process gives new layout directories.
pub(crate) fn dir_prefix() -> String {
    format!(".mockimg-layout-{}-", std::process::id())
}

fn live() -> &'static Mutex<HashSet<PathBuf>> {
    static LIVE: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    LIVE.get_or_init(Default::default)
}

/// When this process started being able to write temp files; a stale one is older.
fn started() -> SystemTime {
    static START: OnceLock<SystemTime> = OnceLock::new();
    *START.get_or_init(SystemTime::now)
}

/// A temp path this process is writing; forgotten when dropped (committed or removed).
#[derive(Debug)]
pub(crate) struct Live {
    path: PathBuf,
    dir: bool,
}

impl Live {
    /// Remembers the temp file `path` until the returned value is dropped.
    pub(crate) fn new(path: &Path) -> Live {
        Live::remember(path, false)
    }

    /// Remembers the temp directory `path` for the rest of the process. A blocking writer
    /// still running after a cancellation (`create_dir_all` on a path inside it) can bring a
    /// removed directory back, and [`remove_all`] must still know its name then. A file cannot
    /// come back that way: a writer holding it open writes to the unlinked inode.
    pub(crate) fn dir(path: &Path) -> Live {
        Live::remember(path, true)
    }

    fn remember(path: &Path, dir: bool) -> Live {
        started();
        if let Ok(mut l) = live().lock() {
            l.insert(path.to_path_buf());
        }
        Live {
            path: path.to_path_buf(),
            dir,
        }
    }
}

impl Drop for Live {
    /// Forgets a file once it is gone (renamed into place or removed); one still there (a
    /// removal that raced a blocking writer) stays known, for [`remove_all`], as does every
    /// directory.
    fn drop(&mut self) {
        if self.dir || std::fs::symlink_metadata(&self.path).is_ok() {
            return;
        }
        if let Ok(mut l) = live().lock() {
            l.remove(&self.path);
        }
    }
}

/// Directories this process makes temp files in. A temp file exists for a moment before its
/// [`Live`] knows it (the name is chosen by the create call), and a signal can come right then;
/// its name carries our pid, so [`remove_all`] finds it by listing these directories.
fn watched() -> &'static Mutex<HashSet<PathBuf>> {
    static DIRS: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    DIRS.get_or_init(Default::default)
}

/// Removes every temp file and directory this process is writing: called on SIGINT/SIGTERM,
/// when the job is cancelled, and once more after the runtime has shut down (every blocking
/// writer finished), just before the process exits.
pub(crate) fn remove_all() {
    let paths: Vec<PathBuf> = match live().lock() {
        Ok(l) => l.iter().cloned().collect(),
        Err(_) => return,
    };
    for p in paths {
        remove(&p);
    }
    let dirs: Vec<PathBuf> = match watched().lock() {
        Ok(d) => d.iter().cloned().collect(),
        Err(_) => return,
    };
    let ours = [file_prefix(), dir_prefix()];
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            if name
                .to_str()
                .is_some_and(|n| ours.iter().any(|p| n.starts_with(p.as_str())))
            {
                remove(&e.path());
            }
        }
    }
}

fn remove(p: &Path) {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            // A writer that has not noticed the cancellation yet may add a file meanwhile.
            for _ in 0..3 {
                if std::fs::remove_dir_all(p).is_ok() {
                    break;
                }
            }
        }
        Ok(_) => {
            let _ = std::fs::remove_file(p);
        }
        Err(_) => {}
    }
}

/// Watches `dir` for this process's own temp files (see [`remove_all`]), and removes what
/// earlier mockimg runs left in it when killed: names with our pattern whose
/// process no longer runs and which were last written before this process started. Done once
/// per directory per process; failures are ignored (someone else may be cleaning too).
pub(crate) fn clean_stale(dir: &Path) {
    static DONE: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    let start = started();
    // Every caller is about to create a temp file in `dir`: watch it before the file exists.
    if let Ok(mut w) = watched().lock() {
        w.insert(dir.to_path_buf());
    }
    if let Ok(mut d) = DONE.get_or_init(Default::default).lock() {
        if !d.insert(dir.to_path_buf()) {
            return;
        }
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(owner_pid) else {
            continue;
        };
        if pid == std::process::id() || process_alive(pid) {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < start);
        if old {
            tracing::debug!(
                "removing {} left by mockimg process {pid}",
                e.path().display()
            );
            remove(&e.path());
        }
    }
}

/// The pid in a temp name this module gives out; `None` for any other name (older mockimg
/// versions' `.mockimg-XXXXXX` included: whose they are cannot be told).
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name
        .strip_prefix(".mockimg-layout-")
        .or_else(|| name.strip_prefix(".mockimg-"))?;
    let (pid, tail) = rest.split_once('-')?;
    if tail.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether a process with this pid exists (one of another user counts: EPERM).
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    if pid <= 0 {
        return true;
    }
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_own_pattern_names_an_owner() {
        assert_eq!(owner_pid(".mockimg-123-abc"), Some(123));
        assert_eq!(owner_pid(".mockimg-layout-77-x"), Some(77));
        assert_eq!(
            owner_pid(".mockimg-abcdef"),
            None,
            "an older version's name"
        );
        assert_eq!(owner_pid(".mockimg-publish.json"), None);
        assert_eq!(owner_pid(".mockimg-12-"), None);
        assert_eq!(owner_pid("mockimg-12-x"), None);
    }

    #[test]
    fn a_temp_directory_recreated_after_its_owner_dropped_is_still_removed() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join(format!("{}recreated", dir_prefix()));
        let file = d.path().join(format!("{}done", file_prefix()));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(&file, b"x").unwrap();
        let (live_dir, live_file) = (Live::dir(&dir), Live::new(&file));
        // The job is cancelled: its temp directory and file go, their owners are dropped.
        std::fs::remove_dir(&dir).unwrap();
        std::fs::remove_file(&file).unwrap();
        drop((live_dir, live_file));
        // A blocking writer of that job, still running, creates a path inside the directory.
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        remove_all();
        assert!(!dir.exists(), "the recreated temp directory is removed");
        assert!(
            !live().lock().unwrap().contains(&file),
            "a file that is gone is forgotten"
        );
    }

    #[test]
    fn a_temp_file_not_yet_known_by_name_is_removed_from_its_watched_directory() {
        let d = tempfile::tempdir().unwrap();
        clean_stale(d.path());
        // Created, but the signal came before its Live was made.
        let unknown = d.path().join(format!("{}justmade", file_prefix()));
        let unknown_dir = d.path().join(format!("{}justmade", dir_prefix()));
        std::fs::write(&unknown, b"x").unwrap();
        std::fs::create_dir_all(unknown_dir.join("blobs")).unwrap();
        // Another process's temp file and an unrelated file stay.
        let other = d.path().join(".mockimg-1-other");
        let output = d.path().join("mocks.tar");
        std::fs::write(&other, b"x").unwrap();
        std::fs::write(&output, b"x").unwrap();
        remove_all();
        assert!(!unknown.exists() && !unknown_dir.exists());
        assert!(other.exists() && output.exists());
    }

    #[test]
    fn stale_temps_of_dead_processes_go_live_ones_stay() {
        let d = tempfile::tempdir().unwrap();
        // A child that has exited and been reaped: its pid is (for now) free.
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let dead = c.id();
        c.wait().unwrap();
        let ours = d.path().join(format!("{}x", file_prefix()));
        let stale = d.path().join(format!(".mockimg-{dead}-old"));
        let stale_dir = d.path().join(format!(".mockimg-layout-{dead}-old"));
        let alive = d.path().join(".mockimg-1-init"); // pid 1 always runs
        let foreign = d.path().join(".mockimg-abcdef");
        for f in [&ours, &stale, &alive, &foreign] {
            std::fs::write(f, b"x").unwrap();
        }
        std::fs::create_dir_all(stale_dir.join("blobs")).unwrap();
        // Written before this process's start as this module sees it.
        let past = SystemTime::now() - std::time::Duration::from_secs(3600);
        for f in [&stale, &alive, &foreign] {
            std::fs::File::options()
                .write(true)
                .open(f)
                .unwrap()
                .set_modified(past)
                .unwrap();
        }
        std::fs::File::open(&stale_dir)
            .unwrap()
            .set_modified(past)
            .unwrap();
        started();
        clean_stale(d.path());
        assert!(!stale.exists() && !stale_dir.exists());
        assert!(ours.exists() && alive.exists() && foreign.exists());
    }
}
