//! SIGTERM (what CI cancellation and `timeout` send) stops an export like Ctrl-C: its temp
//! files are removed and the exit code says so; temp files a killed run left behind are removed
//! by the next run into the same directory. A stopped publish gives its bucket lock back.
mod common;
use common::moto::Moto;
use common::proxy::{Fault, Proxy};
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const BASE: &str = "oci:testdata/engine-base:4.9.3";

/// A config dir with `mb` MiB of incompressible data, so an export takes a while.
fn big_config(mb: usize) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::copy(
        examples("rest").join("hello-config.yaml"),
        d.path().join("hello-config.yaml"),
    )
    .unwrap();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut data = vec![0u8; mb << 20];
    for chunk in data.chunks_mut(8) {
        // xorshift: fast, and gzip cannot shrink it.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(d.path().join("payload.bin"), data).unwrap();
    d
}

fn temps(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".mockimg-"))
        .collect()
}

fn start(env: &Env, args: &[&str]) -> Child {
    let mut c = env.command(env!("CARGO_BIN_EXE_mockimg"));
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c.spawn().unwrap()
}

/// Polls `dir` until a `.mockimg-*` temp file appears (the export is writing); fails if the
/// child exits first or a minute passes.
fn wait_for_temp(child: &mut Child, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        if !temps(dir).is_empty() {
            return;
        }
        if let Some(st) = child.try_wait().unwrap() {
            panic!("mockimg exited ({st}) before writing its temp file");
        }
        assert!(Instant::now() < deadline, "no temp file after four minutes");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: signalling our own child by its pid.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, sig) }, 0);
}

fn wait_with_limit(child: Child) -> std::process::Output {
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output().unwrap());
    });
    rx.recv_timeout(Duration::from_secs(240))
        .unwrap_or_else(|_| {
            // SAFETY: killing our own child, which ignored TERM.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("mockimg did not stop within four minutes of SIGTERM")
        })
}

fn export_args<'a>(cfg: &'a Path, flag: &'a str, target: &'a Path) -> Vec<&'a str> {
    vec![
        "build",
        cfg.to_str().unwrap(),
        "--base",
        BASE,
        flag,
        target.to_str().unwrap(),
        "--no-validate",
    ]
}

fn terminated_export_leaves_nothing(flag: &str, target: fn(&Path) -> PathBuf) {
    let env = Env::new();
    let cfg = big_config(8);
    let out = tempfile::tempdir().unwrap();
    let target = target(out.path());
    let mut child = start(&env, &export_args(cfg.path(), flag, &target));
    wait_for_temp(&mut child, out.path());
    signal(&child, libc::SIGTERM);
    let o = wait_with_limit(child);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(143), "stderr: {stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(temps(out.path()), Vec::<String>::new());
    assert!(!target.exists());
}

#[test]
fn sigterm_during_an_archive_export_removes_its_temp_file() {
    terminated_export_leaves_nothing("--output", |d| d.join("mocks.tar"));
}

#[test]
fn sigterm_during_a_layout_export_removes_its_temp_directory() {
    terminated_export_leaves_nothing("--oci-layout", |d| d.join("layout"));
}

#[test]
fn the_next_run_removes_temp_files_a_killed_run_left() {
    let env = Env::new();
    let cfg = big_config(8);
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("mocks.tar");
    let mut child = start(&env, &export_args(cfg.path(), "--output", &tar));
    wait_for_temp(&mut child, out.path());
    signal(&child, libc::SIGKILL); // no chance to clean up
    let o = wait_with_limit(child);
    assert!(!o.status.success());
    let left = temps(out.path());
    assert_eq!(left.len(), 1, "{left:?}");
    // Another tool's file that merely looks similar, and one of a live mockimg (pid 1 stands
    // in for a concurrent run), are not ours to remove.
    std::fs::write(out.path().join(".mockimg-notes"), b"x").unwrap();
    std::fs::write(out.path().join(".mockimg-1-concurrent"), b"x").unwrap();
    let small = tempfile::tempdir().unwrap();
    std::fs::copy(
        examples("rest").join("hello-config.yaml"),
        small.path().join("hello-config.yaml"),
    )
    .unwrap();
    env.run(&export_args(small.path(), "--output", &tar)).ok();
    let mut now = temps(out.path());
    now.sort();
    assert_eq!(now, [".mockimg-1-concurrent", ".mockimg-notes"]);
    assert!(tar.is_file());
}

#[test]
fn sigterm_during_a_bundle_removes_its_temp_file() {
    use std::io::Write;
    let env = Env::new();
    let cfg = big_config(8);
    let out = tempfile::tempdir().unwrap();
    let engine = tempfile::tempdir().unwrap();
    let zip_path = engine.path().join("imposter-awslambda.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    z.start_file("lib/a.jar", zip::write::SimpleFileOptions::default())
        .unwrap();
    z.write_all(b"jar").unwrap();
    z.finish().unwrap();
    let bundle = out.path().join("bundle.zip");
    let mut child = start(
        &env,
        &[
            "bundle",
            cfg.path().to_str().unwrap(),
            "--engine-zip",
            zip_path.to_str().unwrap(),
            "--output",
            bundle.to_str().unwrap(),
            "--no-validate",
        ],
    );
    wait_for_temp(&mut child, out.path());
    signal(&child, libc::SIGTERM);
    let o = wait_with_limit(child);
    assert_eq!(
        o.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(temps(out.path()), Vec::<String>::new());
    assert!(!bundle.exists());
}

#[test]
fn sigterm_during_a_publish_gives_the_bucket_lock_back() {
    let m = Moto::start();
    m.create_bucket("mocks");
    // The upload of one file is taken by S3 but never answered: the publish is mid-sync, with
    // the lock held, when the signal comes.
    let p = Proxy::start(&m.addr);
    let stalled = "/mocks/p/hello-config.yaml";
    p.rule("PUT", stalled, 1, Fault::Hold);
    let env = m.env_for(Env::new(), &format!("http://{}", p.addr));
    let rest = examples("rest");
    let dir = rest.to_str().unwrap();
    let mut child = start(&env, &["publish", dir, "--to", "s3://mocks/p"]);
    let deadline = Instant::now() + Duration::from_secs(240);
    while p.count("PUT", stalled) == 0 {
        if child.try_wait().unwrap().is_some() {
            let o = child.wait_with_output().unwrap();
            panic!(
                "publish ended before its upload: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        assert!(Instant::now() < deadline, "{:?}", p.requests());
        std::thread::sleep(Duration::from_millis(10));
    }
    let lock = "p/.mockimg-publish.lock";
    assert!(
        m.get("mocks", lock).is_some(),
        "the lock is taken before any upload"
    );
    signal(&child, libc::SIGTERM);
    let o = wait_with_limit(child);
    p.release();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(143), "stderr: {stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(m.get("mocks", lock).is_none(), "the lock is given back");
    assert!(
        m.get("mocks", "p/.mockimg-publish.json").is_none(),
        "a stopped publish writes no record"
    );
    // So the next publish is not refused.
    env.run(&["publish", dir, "--to", "s3://mocks/p"]).ok();
    assert!(m.get("mocks", "p/.mockimg-publish.json").is_some());
}
