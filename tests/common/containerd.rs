//! A containerd of the test's own — root, state, config and socket under one temp dir — driven
//! with `ctr` (Debian's `containerd` package; scripts/test installs it). Plugins that cannot
//! start outside a full host (CRI, the storage-backend snapshotters, tracing) are disabled;
//! tests use the `native` snapshotter, which needs no kernel support beyond bind mounts.
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The namespace every test image goes into.
pub const NAMESPACE: &str = "mockimg-test";

/// A running containerd; killed (and its directories removed) on drop.
pub struct Containerd {
    child: Child,
    dir: tempfile::TempDir,
    socket: PathBuf,
    mounts: std::cell::Cell<usize>,
}

impl Containerd {
    pub fn start() -> Containerd {
        // Under /tmp: a unix socket path must stay under 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("mockimg-ctrd-")
            .tempdir_in("/tmp")
            .unwrap();
        let p = dir.path();
        let socket = p.join("containerd.sock");
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
"#,
            root = p.join("root").display(),
            state = p.join("state").display(),
            sock = socket.display(),
        );
        let cfg = p.join("config.toml");
        std::fs::write(&cfg, config).unwrap();
        let log = std::fs::File::create(p.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd is installed (scripts/test installs Debian's containerd)");
        let mut c = Containerd {
            child,
            dir,
            socket,
            mounts: Default::default(),
        };
        c.wait_ready();
        c
    }

    /// Polls until the daemon answers `ctr version` on its socket (its gRPC server is up), and
    /// fails at once if it exits.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("containerd exited ({status}); log:\n{}", self.log());
            }
            if self.socket.exists() && self.ctr_output(&["version"]).status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("containerd did not answer in 30 s; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// A scratch directory inside this daemon's temp dir (removed with it).
    pub fn scratch(&self, name: &str) -> PathBuf {
        let d = self.dir.path().join("scratch").join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    pub fn ctr_output(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            .arg("--namespace")
            .arg(NAMESPACE)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("ctr is installed with containerd")
    }

    /// Runs `ctr ARGS`, asserting it succeeds; its stdout.
    pub fn ctr(&self, args: &[&str]) -> String {
        let o = self.ctr_output(args);
        assert!(
            o.status.success(),
            "ctr {} failed: {}\n{}\ncontainerd log:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            self.log()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The image names `ctr images ls` lists.
    pub fn image_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .ctr(&["images", "ls", "-q"])
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    }

    /// Unpacks `image` (host platform) with the native snapshotter and mounts its root file
    /// system read-only at a new directory; unmounted and its snapshot removed on drop.
    pub fn mount(&self, image: &str) -> Mounted<'_> {
        let n = self.mounts.get();
        self.mounts.set(n + 1);
        let at = self.scratch(&format!("mnt-{n}"));
        self.ctr(&[
            "images",
            "mount",
            "--snapshotter",
            "native",
            image,
            at.to_str().unwrap(),
        ]);
        Mounted { ctrd: self, at }
    }
}

/// A mounted image root file system.
pub struct Mounted<'a> {
    ctrd: &'a Containerd,
    pub at: PathBuf,
}

impl Mounted<'_> {
    pub fn path(&self, rel: &str) -> PathBuf {
        self.at.join(rel)
    }
}

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let o = self
            .ctrd
            .ctr_output(&["images", "unmount", "--rm", self.at.to_str().unwrap()]);
        if !o.status.success() {
            eprintln!(
                "cleanup: ctr images unmount {}: {}",
                self.at.display(),
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A mount left behind by a failed unmount would keep the temp dir from going.
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") {
            let root = self.dir.path().to_string_lossy().into_owned();
            let mut ours: Vec<&str> = mounts
                .lines()
                .filter_map(|l| l.split(' ').nth(1))
                .filter(|m| m.starts_with(&root))
                .collect();
            ours.sort_by_key(|m| std::cmp::Reverse(m.len()));
            for m in ours {
                let _ = Command::new("umount").arg(m).status();
            }
        }
    }
}
