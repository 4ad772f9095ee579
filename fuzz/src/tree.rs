//! The `config_tree` harness: a small config tree built from the input in a sandbox, walked by
//! the one config-tree walker (`mockimg::mutate::config_files`, what build, validate, bundle and
//! publish read).
//!
//! Input: records `KIND NAME \0 DATA` joined by `SEP`. KIND `f` a file holding DATA, `d` a
//! directory, `l` a symlink with target DATA (a leading `@/` becomes the sandbox's absolute
//! path), `p` a fifo, `s` a socket, `x` an `--exclude` pattern (NAME; no DATA). NAME is a path
//! below the config dir: `.` and `..` components, absolute names and more than 8 levels are
//! skipped, missing parent directories are made. The sandbox holds the config dir `root/`, a
//! sentinel file `secret.txt` and `outside/` (a file and a fifo) beside it, for links to reach.
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// A walk slower than this is a hang (libFuzzer's own `-timeout` is 10 s too).
const WALK_LIMIT: Duration = Duration::from_secs(8);

fn sanitize(name: &[u8]) -> Option<PathBuf> {
    let s = std::str::from_utf8(name).ok()?;
    let p = Path::new(s);
    let ok = !s.is_empty()
        && s.len() <= 200
        && p.components().count() <= 8
        && p.components().all(|c| matches!(c, Component::Normal(_)));
    ok.then(|| p.to_path_buf())
}

fn mkfifo(at: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(at.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated path.
    unsafe { libc::mkfifo(c.as_ptr(), 0o644) == 0 }
}

/// Builds the tree, walks it on a thread with a time limit, and checks that every file the
/// walk hands out is a regular file inside the config dir, never the sandbox's own files.
pub fn config_tree(data: &[u8]) -> String {
    let sandbox = tempfile::tempdir().expect("temp dir");
    let sb = std::fs::canonicalize(sandbox.path()).expect("canonical sandbox");
    let root = sb.join("root");
    std::fs::create_dir_all(sb.join("outside")).expect("outside dir");
    std::fs::create_dir(&root).expect("root dir");
    std::fs::write(sb.join("secret.txt"), b"host secret").expect("sentinel");
    std::fs::write(sb.join("outside/data.json"), b"outside").expect("outside file");
    assert!(mkfifo(&sb.join("outside/pipe")), "mkfifo");
    let mut excludes = Vec::new();
    let mut sockets = Vec::new();
    for rec in super::split_sep(data) {
        let Some((&kind, rest)) = rec.split_first() else {
            continue;
        };
        let (name, body) = match rest.iter().position(|&b| b == 0) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        if kind == b'x' {
            if let Ok(p) = std::str::from_utf8(name) {
                excludes.push(p.to_string());
            }
            continue;
        }
        let Some(rel) = sanitize(name) else { continue };
        let at = root.join(&rel);
        if let Some(parent) = at.parent() {
            if std::fs::create_dir_all(parent).is_err() {
                continue;
            }
        }
        // A name already taken, or a parent that is not a directory: the record is skipped.
        let _ = match kind {
            b'f' => std::fs::write(&at, body),
            b'd' => std::fs::create_dir(&at),
            b'l' => {
                let Ok(t) = std::str::from_utf8(body) else {
                    continue;
                };
                if t.contains('\0') || t.is_empty() {
                    continue;
                }
                let target = match t.strip_prefix("@/") {
                    Some(r) => sb.join(r),
                    None => PathBuf::from(t),
                };
                std::os::unix::fs::symlink(target, &at)
            }
            b'p' => {
                mkfifo(&at);
                Ok(())
            }
            b's' => std::os::unix::net::UnixListener::bind(&at).map(|l| sockets.push(l)),
            _ => Ok(()),
        };
    }
    let forbidden: Vec<(u64, u64)> = ["secret.txt", "outside/data.json", "outside/pipe"]
        .iter()
        .map(|f| {
            let m = std::fs::metadata(sb.join(f)).expect("sandbox file");
            (m.dev(), m.ino())
        })
        .collect();

    let (tx, rx) = std::sync::mpsc::channel();
    let (walk_root, opts) = (
        root.clone(),
        mockimg::imposter::walk_options(excludes.clone()),
    );
    std::thread::spawn(move || {
        let _ = tx.send(mockimg::mutate::config_files(&walk_root, &opts));
    });
    let result = rx
        .recv_timeout(WALK_LIMIT)
        .unwrap_or_else(|_| panic!("the walk did not finish within {WALK_LIMIT:?}"));
    let outcome = match result {
        Ok(files) => {
            for (rel, disk) in &files {
                assert!(
                    rel.components().all(|c| matches!(c, Component::Normal(_))),
                    "tree path {rel:?} is not a plain relative path"
                );
                assert!(
                    !rel.components()
                        .any(|c| c.as_os_str().as_encoded_bytes().starts_with(b".wh.")),
                    "whiteout name {rel:?} handed out"
                );
                let meta = std::fs::symlink_metadata(disk)
                    .unwrap_or_else(|e| panic!("{rel:?}: {disk:?} handed out but unreadable: {e}"));
                assert!(meta.is_file(), "{rel:?}: {disk:?} is not a regular file");
                let real = std::fs::canonicalize(disk).expect("canonical");
                assert!(
                    real.starts_with(&root),
                    "{rel:?}: {disk:?} resolves to {real:?}, outside the config dir"
                );
                assert!(
                    !forbidden.contains(&(meta.dev(), meta.ino())),
                    "{rel:?}: {disk:?} is a sandbox file outside the config dir"
                );
            }
            format!("ok {} files", files.len())
        }
        Err(e) => format!("error: {e}"),
    };
    drop(sockets);
    // Stable outcomes for the regression tests: the sandbox's name varies.
    outcome.replace(&sb.display().to_string(), "SANDBOX")
}
