//! Local bases crafted to hurt: blobs that are devices, FIFOs or huge sparse files, and
//! descriptors whose sizes lie. Each run must fail fast, with one clear line naming the blob,
//! within a time limit and (where memory is the point) a bound on the process's peak memory.
mod common;
use common::fixtures::{sha256, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST};
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

/// Peak resident memory a failing read may reach: far below the gigabytes the hostile files
/// offer, far above what mockimg needs to refuse them.
const MAX_RSS_KB: i64 = 200 * 1024;
/// Every case fails in well under a second; the limit leaves room for a loaded machine.
const LIMIT: Duration = Duration::from_secs(30);

/// A one-platform OCI layout (tag `t`): a gzip layer, its config and manifest.
struct Layout {
    dir: tempfile::TempDir,
    layer: String,
    config: String,
    manifest: String,
}

impl Layout {
    fn new() -> Layout {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("blobs/sha256")).unwrap();
        std::fs::write(d.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        b.append_data(&mut h, "etc/hello", &b"hello"[..]).unwrap();
        let raw = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        let gz = gz.finish().unwrap();
        let config = json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256(&raw)]},
        });
        let config = serde_json::to_vec(&config).unwrap();
        let manifest = json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(&config), "size": config.len()},
            "layers": [{"mediaType": OCI_LAYER, "digest": sha256(&gz), "size": gz.len()}],
        });
        let manifest = serde_json::to_vec(&manifest).unwrap();
        let l = Layout {
            layer: put(d, &gz),
            config: put(d, &config),
            manifest: put(d, &manifest),
            dir,
        };
        l.set_index(
            json!({"mediaType": OCI_MANIFEST, "digest": l.manifest, "size": manifest.len()}),
        );
        l
    }

    /// Rewrites the config through `edit` (and the manifest and index that point at it).
    fn edit_config(&mut self, edit: impl FnOnce(&mut Value)) {
        let d = self.dir.path();
        let mut cfg: Value =
            serde_json::from_slice(&std::fs::read(self.blob(&self.config)).unwrap()).unwrap();
        edit(&mut cfg);
        let cfg = serde_json::to_vec(&cfg).unwrap();
        let mut m: Value =
            serde_json::from_slice(&std::fs::read(self.blob(&self.manifest)).unwrap()).unwrap();
        self.config = put(d, &cfg);
        m["config"] = json!({"mediaType": OCI_CONFIG, "digest": self.config, "size": cfg.len()});
        let m = serde_json::to_vec(&m).unwrap();
        self.manifest = put(d, &m);
        self.set_index(
            json!({"mediaType": OCI_MANIFEST, "digest": self.manifest, "size": m.len()}),
        );
    }

    fn set_index(&self, entry: Value) {
        let mut entry = entry;
        entry["annotations"] = json!({"org.opencontainers.image.ref.name": "t"});
        let top = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]});
        std::fs::write(self.dir.path().join("index.json"), top.to_string()).unwrap();
    }

    fn blob(&self, digest: &str) -> PathBuf {
        self.dir.path().join("blobs/sha256").join(&digest[7..])
    }

    /// Replaces the blob with something else at its path.
    fn replace(&self, digest: &str, with: impl FnOnce(&Path)) -> &Self {
        let p = self.blob(digest);
        std::fs::remove_file(&p).unwrap();
        with(&p);
        self
    }

    fn base(&self) -> String {
        format!("oci:{}:t", self.dir.path().display())
    }
}

fn put(dir: &Path, data: &[u8]) -> String {
    let d = sha256(data);
    std::fs::write(dir.join("blobs/sha256").join(&d[7..]), data).unwrap();
    d
}

fn link_to_dev_zero(p: &Path) {
    std::os::unix::fs::symlink("/dev/zero", p).unwrap();
}

/// A 6 GB file that takes no disk: a hole.
fn sparse_6gb(p: &Path) {
    std::fs::File::create(p).unwrap().set_len(6 << 30).unwrap();
}

fn fifo(p: &Path) {
    let st = std::process::Command::new("mkfifo")
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Runs `mockimg args` as a child, killed after [`LIMIT`]; returns the run and its peak RSS
/// in KiB (from the kernel's accounting of the reaped child).
fn run_bounded(env: &Env, args: &[&str]) -> (Run, i64) {
    let out = tempfile::tempdir().unwrap();
    let (o, e) = (out.path().join("out"), out.path().join("err"));
    let mut c = env.command(env!("CARGO_BIN_EXE_mockimg"));
    c.args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap());
    // Reaped by wait4 below, which also reports its peak memory (std's wait does not).
    #[allow(clippy::zombie_processes)]
    let child = c.spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut status = 0;
        // SAFETY: plain wait4 on our own child, with valid out-pointers.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        assert_eq!(r, pid);
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        };
        let _ = tx.send((code, usage.ru_maxrss));
    });
    let (code, rss) = match rx.recv_timeout(LIMIT) {
        Ok(x) => x,
        Err(_) => {
            // SAFETY: signalling our own child by its pid.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("mockimg {args:?} still running after {LIMIT:?}");
        }
    };
    let run = Run {
        code,
        stdout: std::fs::read_to_string(o).unwrap(),
        stderr: std::fs::read_to_string(e).unwrap(),
    };
    (run, rss)
}

/// Builds onto `base` into a fresh `--output`; asserts a failure naming `names`, nothing
/// written, and the memory bound.
fn build_fails(base: &str, names: &[&str]) -> String {
    let env = Env::new();
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("out.tar");
    let cfg = examples("rest");
    let (run, rss) = run_bounded(
        &env,
        &[
            "build",
            cfg.to_str().unwrap(),
            "--base",
            base,
            "--output",
            tar.to_str().unwrap(),
            "--no-validate",
        ],
    );
    assert_eq!(
        run.code, 1,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("an error line: {}", run.stderr))
        .to_string();
    for n in names {
        assert!(line.contains(n), "{line:?} names {n:?}");
    }
    assert!(rss < MAX_RSS_KB, "peak RSS {rss} KiB: {line}");
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "nothing written"
    );
    line
}

#[test]
fn a_layout_blob_linked_to_dev_zero_is_refused_not_read() {
    let l = Layout::new();
    l.replace(&l.manifest.clone(), link_to_dev_zero);
    build_fails(&l.base(), &[&l.manifest[7..], "not a regular file"]);
    let l = Layout::new();
    l.replace(&l.config.clone(), link_to_dev_zero);
    build_fails(&l.base(), &[&l.config[7..], "not a regular file"]);
    let l = Layout::new();
    l.replace(&l.layer.clone(), link_to_dev_zero);
    build_fails(&l.base(), &[&l.layer[7..], "not a regular file"]);
    let l = Layout::new();
    std::fs::remove_file(l.dir.path().join("index.json")).unwrap();
    link_to_dev_zero(&l.dir.path().join("index.json"));
    build_fails(&l.base(), &["index.json", "not a regular file"]);
}

#[test]
fn a_sparse_6gb_layout_blob_is_refused_by_its_size() {
    let l = Layout::new();
    l.replace(&l.config.clone(), sparse_6gb);
    build_fails(&l.base(), &[&l.config[7..], "6442450944 bytes"]);
    let l = Layout::new();
    l.replace(&l.manifest.clone(), sparse_6gb);
    build_fails(&l.base(), &[&l.manifest[7..], "6442450944 bytes"]);
    let l = Layout::new();
    l.replace(&l.layer.clone(), sparse_6gb);
    build_fails(&l.base(), &[&l.layer[7..], "6442450944 bytes"]);
    // A descriptor that itself claims 6 GB for a manifest is refused before any read.
    let l = Layout::new();
    l.replace(&l.manifest.clone(), sparse_6gb);
    l.set_index(json!({"mediaType": OCI_MANIFEST, "digest": l.manifest, "size": 6u64 << 30}));
    build_fails(
        &l.base(),
        &[&l.manifest[7..], "6442450944 bytes", "refusing"],
    );
}

#[test]
fn a_fifo_in_a_layout_fails_without_blocking() {
    for which in 0..3 {
        let l = Layout::new();
        let d = [&l.manifest, &l.config, &l.layer][which].clone();
        l.replace(&d, fifo);
        build_fails(&l.base(), &[&d[7..], "not a regular file"]);
    }
}

#[test]
fn a_docker_archive_that_is_a_fifo_or_device_fails_fast() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("saved.tar");
    fifo(&p);
    build_fails(
        &format!("docker-archive:{}", p.display()),
        &["saved.tar", "not a regular file"],
    );
    let p = d.path().join("zero.tar");
    link_to_dev_zero(&p);
    build_fails(
        &format!("oci-archive:{}", p.display()),
        &["zero.tar", "not a regular file"],
    );
}

#[test]
fn descriptor_sizes_that_lie_are_refused() {
    // The index entry's size for the manifest is one byte short.
    let l = Layout::new();
    let size = std::fs::metadata(l.blob(&l.manifest)).unwrap().len();
    l.set_index(json!({"mediaType": OCI_MANIFEST, "digest": l.manifest, "size": size - 1}));
    build_fails(
        &l.base(),
        &[&l.manifest, &format!("descriptor says {}", size - 1)],
    );
    // The manifest's config descriptor says one byte more than the config holds.
    let l = Layout::new();
    let mut m: Value =
        serde_json::from_slice(&std::fs::read(l.blob(&l.manifest)).unwrap()).unwrap();
    let real = m["config"]["size"].as_u64().unwrap();
    m["config"]["size"] = json!(real + 1);
    let m = serde_json::to_vec(&m).unwrap();
    let md = put(l.dir.path(), &m);
    l.set_index(json!({"mediaType": OCI_MANIFEST, "digest": md, "size": m.len()}));
    build_fails(
        &l.base(),
        &[&l.config, &format!("descriptor says {}", real + 1)],
    );
}

#[test]
fn a_layout_layer_whose_diff_id_is_wrong_is_not_exported() {
    let mut l = Layout::new();
    let wrong = sha256(b"not the layer");
    l.edit_config(|c| c["rootfs"]["diff_ids"] = json!([wrong]));
    let line = build_fails(&l.base(), &[&l.layer, &wrong, "diff_id"]);
    assert!(!line.contains("content mismatch"), "{line}");
}

#[test]
fn a_docker_archive_gzip_layer_whose_diff_id_is_wrong_is_not_exported() {
    let l = Layout::new();
    let gz = std::fs::read(l.blob(&l.layer)).unwrap();
    let wrong = sha256(b"not the layer");
    let config = json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [wrong]},
    })
    .to_string();
    let manifest =
        json!([{"Config": "c.json", "RepoTags": ["saved:1"], "Layers": ["l/layer.tar.gz"]}])
            .to_string();
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("manifest.json", manifest.as_bytes()),
        ("c.json", config.as_bytes()),
        ("l/layer.tar.gz", &gz[..]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap();
    }
    let d = tempfile::tempdir().unwrap();
    let tar = d.path().join("saved.tar");
    std::fs::write(&tar, b.into_inner().unwrap()).unwrap();
    build_fails(
        &format!("docker-archive:{}", tar.display()),
        &[&l.layer, &wrong, "diff_id"],
    );
}

#[test]
fn a_corrupt_blob_already_in_a_target_layout_is_written_again() {
    let l = Layout::new();
    let env = Env::new();
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("layout");
    let export = |tag: &str| {
        let cfg = examples("rest");
        env.run(&[
            "build",
            cfg.to_str().unwrap(),
            "--base",
            &l.base(),
            "--oci-layout",
            target.to_str().unwrap(),
            "--tag",
            tag,
            "--no-validate",
        ])
        .ok()
    };
    export("team/mocks:one");
    let blob = target.join("blobs/sha256").join(&l.layer[7..]);
    let good = std::fs::read(&blob).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    std::fs::write(&blob, &bad).unwrap();
    let run = export("team/mocks:two");
    assert!(
        run.stderr.contains(&l.layer[7..]),
        "the rewrite is said: {}",
        run.stderr
    );
    assert_eq!(std::fs::read(&blob).unwrap(), good);
    ocicheck::assert_layout(&target);
}

#[test]
fn a_push_of_a_layer_whose_diff_id_is_wrong_fails_before_any_tag_moves() {
    let mut l = Layout::new();
    let wrong = sha256(b"not the layer");
    l.edit_config(|c| c["rootfs"]["diff_ids"] = json!([wrong]));
    let reg = Registry::start();
    let target = reg.reference("team/lying:1");
    let run = Env::new().run(&["push", &l.base(), &target]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&wrong) && run.stderr.contains("diff_id"),
        "{}",
        run.stderr
    );
    let o = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{target}"),
        ])
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "no tag may name an image whose layer lies: {}",
        String::from_utf8_lossy(&o.stdout)
    );
}
