//! Hostile config trees and `file://` targets: links that chain out of the config directory,
//! link loops, links to fifos and devices, whiteout names, and links inside a publish target.
//! Every run of the binary is a child with a time limit well below the suite's (killed and
//! failed when it is exceeded), and where memory is the point its peak RSS is bounded.
mod common;
use common::*;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const BASE: &str = "oci:testdata/engine-base:4.9.3";
/// Each run of the binary must finish within this; a hang is killed and fails the test.
const LIMIT: Duration = Duration::from_secs(20);
/// Peak RSS bound for runs that used to read a device forever.
const MAX_RSS_KIB: i64 = 256 * 1024;

struct Limited {
    run: Run,
    /// Peak resident set of the child, KiB.
    max_rss_kib: i64,
}

/// Runs mockimg with `args` as a child; kills it and fails if it runs past [`LIMIT`]. The
/// child's rusage comes from `wait4` on its own pid (which reaps it, hence the allow).
#[allow(clippy::zombie_processes)]
fn run_limited(env: &Env, args: &[&str]) -> Limited {
    let mut c = env.command(env!("CARGO_BIN_EXE_mockimg"));
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = c.spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let expired = rx.recv_timeout(LIMIT).is_err();
        if expired {
            // SAFETY: the child is not reaped yet (waitid below uses WNOWAIT), so the pid is
            // still ours even if it has just exited.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        expired
    });
    // Wait for the exit without reaping, so the watchdog can never signal a reused pid.
    // SAFETY: plain syscalls on a zeroed siginfo/rusage owned here.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        )
    };
    assert_eq!(r, 0, "waitid: {}", std::io::Error::last_os_error());
    let elapsed = started.elapsed();
    let _ = tx.send(());
    let killed = watchdog.join().unwrap();
    let mut status = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    let run = Run {
        code: if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        },
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    assert!(
        !killed,
        "mockimg {args:?} still running after {LIMIT:?} (killed)\nstderr: {}",
        run.stderr
    );
    assert!(elapsed < LIMIT);
    Limited {
        run,
        max_rss_kib: ru.ru_maxrss,
    }
}

/// The run failed with exit code 1 and one `error:` line naming every one of `names`.
fn refused(l: &Limited, names: &[&str]) -> String {
    let run = &l.run;
    assert_eq!(
        run.code, 1,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {}", run.stderr);
    for n in names {
        assert!(errors[0].contains(n), "{:?} names {n:?}", errors[0]);
    }
    errors[0].to_string()
}

/// `HOST/c` holding a valid config, with `HOST/secret.txt` beside it.
fn host() -> (tempfile::TempDir, std::path::PathBuf) {
    let h = tempfile::tempdir().unwrap();
    std::fs::write(h.path().join("secret.txt"), "host secret\n").unwrap();
    let c = h.path().join("c");
    std::fs::create_dir(&c).unwrap();
    std::fs::write(c.join("a-config.yaml"), "plugin: rest\n").unwrap();
    (h, c)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn publish_to(env: &Env, c: &Path, to: &Path, extra: &[&str]) -> Limited {
    let to = format!("file://{}", to.display());
    let mut args = vec!["publish", s(c), "--to", &to];
    args.extend_from_slice(extra);
    run_limited(env, &args)
}

fn build_to(env: &Env, c: &Path, out: &Path, extra: &[&str]) -> Limited {
    let mut args = vec!["build", s(c), "--base", BASE, "--output", s(out)];
    args.extend_from_slice(extra);
    run_limited(env, &args)
}

/// The files below `dir` (none when it was never created).
fn files_in(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    if dir.exists() {
        files(dir)
    } else {
        Default::default()
    }
}

/// Every file below `dir`, as text, so a test can say the host's secret is in none of them.
fn contents(dir: &Path) -> String {
    files_in(dir)
        .into_values()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect()
}

#[test]
fn publish_refuses_a_link_chain_that_resolves_outside_the_config_dir() {
    let (h, c) = host();
    std::fs::create_dir_all(c.join("sub/sub2")).unwrap();
    symlink("../..", c.join("sub/sub2/s")).unwrap();
    symlink("sub/sub2/s/../secret.txt", c.join("leak.txt")).unwrap();
    let env = Env::new();
    let pub_dir = h.path().join("pub");
    let l = publish_to(&env, &c, &pub_dir, &["--no-validate"]);
    refused(&l, &["leak.txt", "resolves outside the config directory"]);
    assert!(!contents(&pub_dir).contains("host secret"));
    // Validation (the default before publish) lists it among its findings.
    let l = publish_to(&env, &c, &pub_dir, &[]);
    assert_eq!(l.run.code, 1, "{}", l.run.stderr);
    assert!(
        l.run
            .stderr
            .contains("leak.txt: symlink resolves outside the config directory"),
        "{}",
        l.run.stderr
    );
    let out = h.path().join("out.tar");
    refused(&build_to(&env, &c, &out, &["--no-validate"]), &["leak.txt"]);
    assert!(!out.exists());
}

#[test]
fn publish_refuses_a_link_through_an_excluded_link_to_the_host() {
    let (h, c) = host();
    symlink(h.path(), c.join("inner")).unwrap();
    symlink("inner/secret.txt", c.join("x.json")).unwrap();
    let env = Env::new();
    let pub_dir = h.path().join("pub");
    for extra in [
        &["--exclude", "inner", "--no-validate"][..],
        &["--exclude", "inner"],
    ] {
        let l = publish_to(&env, &c, &pub_dir, extra);
        refused(&l, &["x.json", "outside the config directory"]);
    }
    assert!(!contents(&pub_dir).contains("host secret"));
}

#[test]
fn links_to_the_config_dir_itself_end_quickly_with_an_error() {
    let (h, c) = host();
    symlink(".", c.join("a")).unwrap();
    symlink(".", c.join("b")).unwrap();
    let env = Env::new();
    let pub_dir = h.path().join("pub");
    let l = publish_to(&env, &c, &pub_dir, &["--no-validate"]);
    refused(&l, &["loops back"]);
    assert!(files_in(&pub_dir).is_empty());
    let l = run_limited(&env, &["validate", s(&c)]);
    assert_eq!(l.run.code, 1, "{}", l.run.stderr);
    assert!(l.run.stderr.contains("loops back"), "{}", l.run.stderr);
}

#[test]
fn a_link_to_an_excluded_fifo_is_refused_by_validate_build_and_publish_without_hanging() {
    let (h, c) = host();
    let st = std::process::Command::new("mkfifo")
        .arg(c.join("pipe"))
        .status()
        .unwrap();
    assert!(st.success());
    symlink("pipe", c.join("data.json")).unwrap();
    let env = Env::new();
    let ex = ["--exclude", "pipe"];
    let l = run_limited(&env, &["validate", s(&c), "--exclude", "pipe"]);
    assert_eq!(l.run.code, 1, "{}", l.run.stderr);
    assert!(
        l.run.stderr.contains("data.json") && l.run.stderr.contains("fifo"),
        "{}",
        l.run.stderr
    );
    // --strict refuses it as build does (it was silently accepted).
    let l = run_limited(&env, &["validate", s(&c), "--exclude", "pipe", "--strict"]);
    assert_eq!(l.run.code, 1, "{}", l.run.stderr);
    let out = h.path().join("out.tar");
    for extra in [&ex[..], &["--exclude", "pipe", "--no-validate"]] {
        refused(&build_to(&env, &c, &out, extra), &["data.json", "fifo"]);
    }
    assert!(!out.exists());
    let pub_dir = h.path().join("pub");
    let l = publish_to(&env, &c, &pub_dir, &["--exclude", "pipe", "--no-validate"]);
    refused(&l, &["data.json", "fifo"]);
}

#[test]
fn a_link_to_a_character_device_is_refused_without_reading_it() {
    let (h, c) = host();
    symlink("/dev", c.join("dev")).unwrap();
    symlink("dev/zero", c.join("zero.json")).unwrap();
    let env = Env::new();
    let out = h.path().join("out.tar");
    let l = build_to(&env, &c, &out, &["--exclude", "dev", "--no-validate"]);
    refused(&l, &["zero.json", "outside the config directory"]);
    assert!(
        l.max_rss_kib < MAX_RSS_KIB,
        "peak RSS {} KiB",
        l.max_rss_kib
    );
    let pub_dir = h.path().join("pub");
    let l = publish_to(&env, &c, &pub_dir, &["--exclude", "dev", "--no-validate"]);
    refused(&l, &["zero.json"]);
    assert!(
        l.max_rss_kib < MAX_RSS_KIB,
        "peak RSS {} KiB",
        l.max_rss_kib
    );
}

#[test]
fn config_files_named_like_whiteouts_are_refused() {
    let (h, c) = host();
    std::fs::create_dir(c.join("responses")).unwrap();
    std::fs::write(c.join(".wh.README.txt"), "").unwrap();
    let env = Env::new();
    let out = h.path().join("out.tar");
    refused(
        &build_to(&env, &c, &out, &["--no-validate"]),
        &[".wh.README.txt", "whiteout", "rename it or --exclude it"],
    );
    std::fs::remove_file(c.join(".wh.README.txt")).unwrap();
    std::fs::write(c.join("responses/.wh..wh..opq"), "").unwrap();
    let l = run_limited(&env, &["validate", s(&c)]);
    assert_eq!(l.run.code, 1, "{}", l.run.stderr);
    assert!(
        l.run.stderr.contains("responses/.wh..wh..opq") && l.run.stderr.contains("whiteout"),
        "{}",
        l.run.stderr
    );
    refused(&build_to(&env, &c, &out, &[]), &["error"]);
    assert!(!out.exists());
}

#[test]
fn publish_never_deletes_through_a_link_inside_a_file_target() {
    let (h, c) = host();
    let outside = h.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("important.txt"), "keep me\n").unwrap();
    let pub_dir = h.path().join("pub");
    std::fs::create_dir(&pub_dir).unwrap();
    symlink(&outside, pub_dir.join("ext")).unwrap();
    // A stale record that claims ext/important.txt was published here.
    let sha = hex_sha256(b"keep me\n");
    std::fs::write(
        pub_dir.join(".mockimg-publish.json"),
        serde_json::json!({"digest": "sha256:00", "engine": "docker", "version": "4.9.3",
            "files": {"ext/important.txt": sha}})
        .to_string(),
    )
    .unwrap();
    let env = Env::new();
    for extra in [&[][..], &["--delete"], &["--dry-run"]] {
        let l = publish_to(&env, &c, &pub_dir, extra);
        refused(&l, &["ext", "is a symlink", "never"]);
    }
    assert_eq!(
        std::fs::read_to_string(outside.join("important.txt")).unwrap(),
        "keep me\n"
    );
}

#[test]
fn publish_never_uploads_through_a_linked_subdirectory_of_a_file_target() {
    let (h, c) = host();
    std::fs::create_dir(c.join("responses")).unwrap();
    std::fs::write(c.join("responses/x.json"), "{}").unwrap();
    let outside = h.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let pub_dir = h.path().join("pub");
    std::fs::create_dir(&pub_dir).unwrap();
    symlink(&outside, pub_dir.join("responses")).unwrap();
    let env = Env::new();
    let l = publish_to(&env, &c, &pub_dir, &[]);
    refused(&l, &["responses", "is a symlink"]);
    assert!(files(&outside).is_empty(), "{:?}", files(&outside).keys());
    assert!(!pub_dir.join(".mockimg-publish.json").exists());
}

fn hex_sha256(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[test]
fn a_fifo_or_device_as_project_file_or_imposterignore_is_never_read() {
    let (h, c) = host();
    let st = std::process::Command::new("mkfifo")
        .arg(c.join("imposter-project.yaml"))
        .status()
        .unwrap();
    assert!(st.success());
    let env = Env::new();
    let l = run_limited(&env, &["validate", s(&c)]);
    assert_eq!(l.run.code, 1, "{}", l.run.stderr);
    assert!(
        l.run.stderr.contains("imposter-project.yaml")
            && l.run.stderr.contains("not a regular file"),
        "{}",
        l.run.stderr
    );
    std::fs::remove_file(c.join("imposter-project.yaml")).unwrap();
    symlink("/dev/zero", c.join(".imposterignore")).unwrap();
    let l = run_limited(&env, &["validate", s(&c)]);
    assert_eq!(l.run.code, 1, "{}", l.run.stderr);
    assert!(
        l.max_rss_kib < MAX_RSS_KIB,
        "peak RSS {} KiB",
        l.max_rss_kib
    );
    let out = h.path().join("out.tar");
    let l = build_to(&env, &c, &out, &["--no-validate"]);
    refused(&l, &[".imposterignore"]);
    assert!(
        l.max_rss_kib < MAX_RSS_KIB,
        "peak RSS {} KiB",
        l.max_rss_kib
    );
}
