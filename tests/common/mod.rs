//! Test harness: the real CNCF distribution registry on an ephemeral loopback port, the mockimg
//! binary, and independent readers (skopeo, umoci). Each test file includes this module.
#![allow(dead_code)]
pub mod cmdline;
pub mod containerd;
pub mod fixtures;
pub mod moto;
pub mod ocicheck;
pub mod proxy;
pub mod tls;
pub mod token;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const REPO_ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `docker-registry` process with its own storage; killed on drop.
pub struct Registry {
    pub addr: String,
    child: Child,
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

impl Registry {
    pub fn start() -> Registry {
        Self::start_inner(None)
    }

    /// Accepting manifests whose foreign (non-distributable) layers point at http(s) URLs:
    /// distribution refuses every such URL unless `validation.manifests.urls.allow` lists it.
    pub fn start_allowing_foreign_urls() -> Registry {
        Self::start_full(
            None,
            None,
            "validation:\n  manifests:\n    urls:\n      allow:\n        - '^https?://'\n",
        )
    }

    /// With htpasswd basic auth for `user`/`password`.
    pub fn start_with_auth(user: &str, password: &str) -> Registry {
        Self::start_inner(Some((user, password)))
    }

    /// With the bearer-token flow: a token server that knows `user`/`password` (anonymous gets
    /// pull only).
    pub fn start_with_token(user: &str, password: &str) -> (Registry, token::TokenServer) {
        let ts = token::TokenServer::start(user, password);
        let reg = Self::start_cfg(None, Some(&ts));
        (reg, ts)
    }

    fn start_inner(auth: Option<(&str, &str)>) -> Registry {
        Self::start_cfg(auth, None)
    }

    /// Over HTTPS with `server` as its certificate; with `client_ca`, it requires client
    /// certificates signed by that CA (mTLS).
    pub fn start_tls(server: &tls::Pair, client_ca: Option<&tls::TestCa>) -> Registry {
        Self::start_tls_pem(server, client_ca.map(|ca| ca.pem()).as_deref())
    }

    /// [`Registry::start_tls`] with the client CA given as PEM (one made by another tool).
    pub fn start_tls_pem(server: &tls::Pair, client_ca_pem: Option<&str>) -> Registry {
        let files = tempfile::tempdir().unwrap();
        let (cert, key) = (
            files.path().join("server.crt"),
            files.path().join("server.key"),
        );
        std::fs::write(&cert, &server.cert).unwrap();
        std::fs::write(&key, &server.key).unwrap();
        let mut yaml = format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            cert.display(),
            key.display()
        );
        if let Some(pem) = client_ca_pem {
            let p = files.path().join("client-ca.crt");
            std::fs::write(&p, pem).unwrap();
            yaml.push_str(&format!("    clientcas:\n      - {}\n", p.display()));
        }
        let reg = Self::start_full(None, None, &yaml);
        std::fs::rename(files.keep(), reg.dir.path().join("tls")).ok();
        reg
    }

    fn start_cfg(auth: Option<(&str, &str)>, ts: Option<&token::TokenServer>) -> Registry {
        Self::start_full(auth, ts, "")
    }

    /// `http_extra` is YAML appended after `http:`'s address: keys indented two spaces belong
    /// to `http:`, keys at column 0 are top-level sections.
    fn start_full(
        auth: Option<(&str, &str)>,
        ts: Option<&token::TokenServer>,
        http_extra: &str,
    ) -> Registry {
        // free_port's port is free only until another test takes it: a registry that lost the
        // race exits (address in use), and this one starts again on another port, rather than
        // the test talking to someone else's registry on that port.
        for _ in 0..5 {
            if let Some(reg) = Self::try_start(auth, ts, http_extra) {
                return reg;
            }
        }
        panic!("no registry could bind a free loopback port in five tries");
    }

    fn try_start(
        auth: Option<(&str, &str)>,
        ts: Option<&token::TokenServer>,
        http_extra: &str,
    ) -> Option<Registry> {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{http_extra}",
            dir.path().join("data").display()
        );
        if let Some((u, p)) = auth {
            let hash = bcrypt::hash(p, 4).unwrap();
            let hp = dir.path().join("htpasswd");
            std::fs::write(&hp, format!("{u}:{hash}\n")).unwrap();
            cfg.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: mockimg-test\n    path: {}\n",
                hp.display()
            ));
        }
        if let Some(t) = ts {
            let bundle = dir.path().join("token-ca.pem");
            std::fs::write(&bundle, &t.cert_pem).unwrap();
            cfg.push_str(&format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                t.realm,
                token::SERVICE,
                token::ISSUER,
                bundle.display()
            ));
        }
        let cfg_path = dir.path().join("config.yml");
        std::fs::write(&cfg_path, cfg).unwrap();
        let log = dir.path().join("registry.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg_path)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("docker-registry is installed by scripts/test");
        let mut reg = Registry {
            addr,
            child,
            dir,
            log,
        };
        if !reg.wait_listening() {
            return None;
        }
        reg.wait_ready();
        Some(reg)
    }

    /// Waits for this registry's own "listening on ADDR" log line (printed once it has bound
    /// the port); false when it exited because the port was taken meanwhile.
    fn wait_listening(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        let listening = format!("listening on {}", self.addr);
        while Instant::now() < deadline {
            if self.log().contains(&listening) {
                return true;
            }
            if self.child.try_wait().unwrap().is_some() {
                let log = self.log();
                assert!(
                    log.contains("address already in use"),
                    "registry exited at start; log:\n{log}"
                );
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("registry did not bind {}; log:\n{}", self.addr, self.log());
    }

    /// Polls until `/v2/` answers (a readiness check, not a fixed sleep).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(&self.addr) {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut buf = [0u8; 12];
                if s.read(&mut buf).is_ok_and(|n| n >= 12) && buf.starts_with(b"HTTP/1.") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("registry did not start; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A blob of `repo`, over the registry API with curl (an independent client), checked
    /// against its digest.
    pub fn blob(&self, repo: &str, digest: &str) -> Vec<u8> {
        let o = Command::new("curl")
            .args([
                "-sfL",
                &format!("http://{}/v2/{repo}/blobs/{digest}", self.addr),
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "GET blob {digest} of {repo} failed");
        assert_eq!(fixtures::sha256(&o.stdout), digest);
        o.stdout
    }

    /// Access-log request lines (`METHOD URI`) since the registry started.
    pub fn requests(&self) -> Vec<String> {
        self.requests_with_status()
            .into_iter()
            .map(|(r, _)| r)
            .collect()
    }

    /// Access-log `(METHOD URI, status)` pairs since the registry started.
    pub fn requests_with_status(&self) -> Vec<(String, u16)> {
        self.log()
            .lines()
            .filter_map(|l| {
                let start = l.find('"')? + 1;
                let rest = &l[start..];
                let end = rest.find(" HTTP/")?;
                let req = &rest[..end];
                let is_req = ["GET ", "HEAD ", "PUT ", "POST ", "PATCH ", "DELETE "]
                    .iter()
                    .any(|m| req.starts_with(m));
                let status = rest[end..]
                    .split('"')
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()?;
                is_req.then(|| (req.to_string(), status))
            })
            .collect()
    }

    pub fn reference(&self, repo_tag: &str) -> String {
        format!("{}/{}", self.addr, repo_tag)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "mockimg failed\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

/// An isolated environment for running mockimg: its own HOME (docker config) and cache.
pub struct Env {
    pub home: tempfile::TempDir,
    pub vars: Vec<(String, String)>,
}

impl Env {
    pub fn new() -> Env {
        let home = tempfile::tempdir().unwrap();
        Env {
            vars: vec![
                ("HOME".into(), home.path().display().to_string()),
                (
                    "MOCKIMG_CACHE_DIR".into(),
                    home.path().join("cache").display().to_string(),
                ),
                ("MOCKIMG_RETRY_BASE_MS".into(), "20".into()),
            ],
            home,
        }
    }

    pub fn set(mut self, k: &str, v: &str) -> Env {
        self.vars.retain(|(a, _)| a != k);
        self.vars.push((k.into(), v.into()));
        self
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.home.path().join("cache")
    }

    /// Writes `~/.docker/config.json` with inline credentials for `registry`.
    pub fn docker_login(&self, registry: &str, user: &str, password: &str) {
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let d = self.home.path().join(".docker");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("config.json"),
            serde_json::json!({"auths": {registry: {"auth": auth}}}).to_string(),
        )
        .unwrap();
    }

    /// A command with the environment every test runs mockimg in: no stray credentials,
    /// cache or CI variables from the machine, plus this Env's own.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.current_dir(REPO_ROOT).env_remove("SOURCE_DATE_EPOCH");
        for v in [
            "DOCKER_CONFIG",
            "REGISTRY_AUTH_FILE",
            "MOCKIMG_REGISTRY_USERNAME",
            "MOCKIMG_REGISTRY_PASSWORD",
            "XDG_CACHE_HOME",
            "XDG_RUNTIME_DIR",
            "MOCKIMG_REGISTRY",
        ] {
            c.env_remove(v);
        }
        // Every variable the CI reader (src/imposter/ci.rs) looks at: a test run inside GitHub
        // Actions or GitLab CI must see what a laptop sees, not a run URL or a commit.
        for (k, _) in std::env::vars_os() {
            if k.to_str().is_some_and(is_ci_variable) {
                c.env_remove(k);
            }
        }
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let mut c = self.command(env!("CARGO_BIN_EXE_mockimg"));
        c.args(args);
        Run::from(c.output().unwrap())
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

fn check(o: Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn skopeo(args: &[&str]) -> String {
    let o = Command::new("skopeo")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("skopeo is installed by scripts/test");
    check(o, &format!("skopeo {}", args.join(" ")))
}

/// `skopeo inspect --raw` of a registry reference, parsed.
pub fn raw_manifest(reference: &str) -> serde_json::Value {
    let out = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{reference}"),
    ]);
    serde_json::from_str(&out).unwrap()
}

/// Writes a fixture base as an OCI layout and pushes it with skopeo. `docker_v2s2` converts to
/// Docker schema2 media types (single images only).
pub fn seed(
    reg: &Registry,
    base: &fixtures::Base,
    repo_tag: &str,
    docker_v2s2: bool,
    creds: Option<&str>,
) -> String {
    let dir = tempfile::tempdir().unwrap();
    fixtures::write_layout(dir.path(), base, "seed");
    let src = format!("oci:{}:seed", dir.path().display());
    let dst = format!("docker://{}", reg.reference(repo_tag));
    let mut args = vec!["copy", "--quiet", "--dest-tls-verify=false"];
    if base.single {
        if docker_v2s2 {
            args.extend(["--format", "v2s2"]);
        }
    } else {
        args.push("--all");
    }
    if let Some(c) = creds {
        args.extend(["--dest-creds", c]);
    }
    args.extend([src.as_str(), dst.as_str()]);
    skopeo(&args);
    reg.reference(repo_tag)
}

/// The two-platform engine-like base at `REPO/imposter:4.9.3`, anonymous registry.
pub fn seed_engine(reg: &Registry, attestation: bool) -> String {
    seed(
        reg,
        &fixtures::engine_like(attestation),
        "imposter:4.9.3",
        false,
        None,
    )
}

/// Seeds the release `engine/imposter:4.9.3` and its patch `engine/imposter:4.9.10` (see
/// [`fixtures::release`]): what `mockimg rebase` moves images between.
pub fn seed_releases(reg: &Registry, single: bool, docker: bool) -> (String, String) {
    let old = seed(
        reg,
        &fixtures::release(single, "4.9.3"),
        "engine/imposter:4.9.3",
        docker,
        None,
    );
    let new = seed(
        reg,
        &fixtures::release(single, "4.9.10"),
        "engine/imposter:4.9.10",
        docker,
        None,
    );
    (old, new)
}

/// Copies one platform of a registry image into an OCI layout and unpacks it with umoci.
/// Returns the rootfs path (inside the returned tempdir).
pub fn unpack(reference: &str, arch: &str) -> (tempfile::TempDir, PathBuf) {
    unpack_from(&format!("docker://{reference}"), arch, true)
}

pub fn unpack_from(src: &str, arch: &str, tls_flag: bool) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let layout = format!("oci:{}:img", d.path().join("layout").display());
    let mut args = vec!["--override-arch", arch, "copy", "--quiet"];
    if tls_flag {
        args.push("--src-tls-verify=false");
    }
    args.extend([src, layout.as_str()]);
    skopeo(&args);
    let bundle = d.path().join("bundle");
    let o = Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:img", d.path().join("layout").display()))
        .arg(&bundle)
        .output()
        .expect("umoci is installed by scripts/test");
    check(o, "umoci unpack");
    let rootfs = bundle.join("rootfs");
    (d, rootfs)
}

/// Every regular file under `dir`, relative path → bytes.
pub fn files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    fn walk(root: &Path, d: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                walk(root, &p, out);
            } else if ft.is_file() {
                out.insert(
                    p.strip_prefix(root).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

pub fn examples(name: &str) -> PathBuf {
    Path::new(REPO_ROOT).join("examples").join(name)
}

/// The digest part of a `REPO@sha256:…` line.
pub fn digest_of(line: &str) -> String {
    line.trim().rsplit('@').next().unwrap().to_string()
}

/// Whether `name` is a CI system's variable, which tests keep away from mockimg: GitHub
/// Actions' `GITHUB_*`, GitLab's `GITLAB_*` and `CI_*`, and `CI` itself.
pub fn is_ci_variable(name: &str) -> bool {
    name == "CI"
        || ["GITHUB_", "GITLAB_", "CI_"]
            .iter()
            .any(|p| name.starts_with(p))
}
