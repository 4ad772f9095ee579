//! Issue 8: the images mockimg makes run in the real Docker Engine — pulled from the registry
//! mockimg pushed to, or `docker load`ed from its archive — and serve their config over HTTP.
mod common;
use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn docker_out(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the docker client is installed (scripts/test checks `docker info`)")
}

fn docker(args: &[&str]) -> String {
    let o = docker_out(args);
    assert!(
        o.status.success(),
        "docker {} failed: {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Everything a test creates in the shared daemon, removed on drop — also when the test panics.
/// Names are registered before the command that creates them, so a half-done `run` or `pull`
/// is cleaned up too. Images are removed by name: parallel tests may hold the same image ID
/// under their own names, and untagging ours leaves theirs alone.
struct Daemon {
    prefix: String,
    containers: Vec<String>,
    images: Vec<String>,
}

impl Daemon {
    fn new(unique: &str) -> Daemon {
        Daemon {
            prefix: format!("mockimg-test-{unique}"),
            containers: Vec::new(),
            images: Vec::new(),
        }
    }

    fn pull(&mut self, image: &str) -> String {
        self.images.push(image.to_string());
        docker(&["pull", image])
    }

    fn load(&mut self, archive: &std::path::Path, tag: &str) -> String {
        self.images.push(tag.to_string());
        docker(&["load", "-i", &archive.display().to_string()])
    }

    /// Starts `image` detached with 8080 published on an ephemeral loopback port.
    fn run(&mut self, image: &str) -> Container {
        let name = format!("{}-{}", self.prefix, self.containers.len());
        self.containers.push(name.clone());
        docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "-p",
            "127.0.0.1:0:8080",
            image,
        ]);
        let port_line = docker(&["port", &name, "8080/tcp"]);
        let addr = port_line
            .lines()
            .find(|l| l.starts_with("127.0.0.1:"))
            .unwrap_or_else(|| panic!("no loopback port published: {port_line:?}"))
            .trim()
            .to_string();
        Container { name, addr }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        for c in &self.containers {
            let o = docker_out(&["rm", "-f", "-v", c]);
            if !o.status.success() {
                eprintln!(
                    "cleanup: docker rm -f {c}: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
            }
        }
        for i in &self.images {
            let o = docker_out(&["rmi", "-f", i]);
            if !o.status.success() {
                eprintln!(
                    "cleanup: docker rmi -f {i}: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
            }
        }
    }
}

struct Container {
    name: String,
    addr: String,
}

impl Container {
    fn logs(&self) -> String {
        let o = docker_out(&["logs", &self.name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    }

    fn state(&self) -> String {
        docker(&["inspect", "-f", "{{.State.Status}}", &self.name])
            .trim()
            .to_string()
    }

    /// Polls until the server inside answers: docker-proxy accepts on the published port before
    /// the container listens, so a connection alone proves nothing.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if get(&self.addr, "/").is_some() {
                return;
            }
            let state = self.state();
            assert_eq!(
                state,
                "running",
                "container {} stopped; logs:\n{}",
                self.name,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "container {} never answered HTTP on {}; logs:\n{}",
            self.name,
            self.addr,
            self.logs()
        );
    }

    fn get(&self, path: &str) -> (u16, Vec<u8>) {
        get(&self.addr, path).unwrap_or_else(|| {
            panic!(
                "GET {path} from {} failed; logs:\n{}",
                self.name,
                self.logs()
            )
        })
    }
}

/// One HTTP/1.0 GET; `None` when the connection fails or closes without a full status line.
fn get(addr: &str, path: &str) -> Option<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let target: String = path
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    s.write_all(format!("GET {target} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .lines()
        .next()?
        .strip_prefix("HTTP/1.")?
        .get(2..5)?
        .parse()
        .ok()?;
    let body = raw[split + 4..].to_vec();
    if let Some(len) = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
    }) {
        assert_eq!(body.len(), len, "truncated body for {path}");
    }
    Some((status, body))
}

/// The running image serves every file of `config` byte for byte, keeps the base's own config
/// file (merged, not replaced), runs as the engine's non-root uid, and 404s what isn't there.
fn assert_serves(c: &Container, config: &std::path::Path) {
    c.wait_ready();
    let want = files(config);
    assert!(!want.is_empty());
    for (path, bytes) in &want {
        let (status, body) = c.get(&format!("/{path}"));
        assert_eq!(status, 200, "GET /{path}; logs:\n{}", c.logs());
        assert_eq!(
            &body,
            bytes,
            "GET /{path} returned different bytes than {}",
            config.join(path).display()
        );
    }
    let (status, body) = c.get("/base-default.txt");
    assert_eq!(status, 200);
    assert_eq!(body, b"shipped by the base image\n");
    let (status, _) = c.get("/no-such-file.json");
    assert_eq!(status, 404);
    let uid = docker(&["exec", &c.name, "/bin/busybox", "id", "-u"]);
    assert_eq!(uid.trim(), "2048");
}

/// The base's amd64 config, read from the registry with skopeo (independent of mockimg).
fn base_config(base: &str) -> Value {
    serde_json::from_str(&skopeo(&[
        "--override-arch",
        "amd64",
        "inspect",
        "--tls-verify=false",
        "--config",
        "--raw",
        &format!("docker://{base}"),
    ]))
    .unwrap()
}

/// `docker image inspect` shows the base's runtime settings unchanged and exactly one layer more.
fn assert_inspect(image: &str, base_cfg: &Value) -> Value {
    let all: Value = serde_json::from_str(&docker(&["image", "inspect", image])).unwrap();
    let i = all[0].clone();
    let fixture = fixtures::busybox_base(false);
    let cfg = &i["Config"];
    assert_eq!(cfg["Cmd"], serde_json::json!(fixture.cmd));
    assert_eq!(cfg["Cmd"], base_cfg["config"]["Cmd"]);
    assert!(cfg["Entrypoint"].is_null(), "{}", cfg["Entrypoint"]);
    assert_eq!(cfg["User"], "2048");
    assert_eq!(cfg["WorkingDir"], "/opt/imposter");
    let env = cfg["Env"].as_array().unwrap();
    assert_eq!(cfg["Env"], base_cfg["config"]["Env"]);
    assert!(env
        .iter()
        .any(|e| e == "IMPOSTER_CONFIG_DIR=/opt/imposter/config"));
    assert_eq!(i["Os"], "linux");
    assert_eq!(i["Architecture"], "amd64");
    let base_layers = base_cfg["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(base_layers.len(), fixture.platforms[0].layers.len());
    let layers = i["RootFS"]["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), base_layers.len() + 1, "{layers:#?}");
    assert_eq!(&layers[..base_layers.len()], &base_layers[..]);
    i
}

/// Seeds the runnable base: a multi-platform OCI index, or a single Docker schema2 image.
fn seed_busybox(reg: &Registry, single: bool) -> String {
    let base = seed(
        reg,
        &fixtures::busybox_base(single),
        "engine/busybox:1",
        single,
        None,
    );
    let raw = raw_manifest(&base);
    if single {
        assert_eq!(
            raw["mediaType"],
            "application/vnd.docker.distribution.manifest.v2+json"
        );
    } else {
        assert_eq!(raw["mediaType"], fixtures::OCI_INDEX);
    }
    base
}

fn push_pull_run(single: bool) {
    let reg = Registry::start();
    let port = reg.addr.rsplit(':').next().unwrap().to_string();
    let mut daemon = Daemon::new(&format!("push-{port}"));
    let env = Env::new();
    let base = seed_busybox(&reg, single);

    let target = reg.reference(&format!("team/mocks:run-{port}"));
    let run = env
        .run(&["build", "examples/rest", "--base", &base, "--push", &target])
        .ok();
    let digest = digest_of(run.stdout.lines().next().expect("digest line"));
    assert!(digest.starts_with("sha256:"), "{}", run.stdout);

    let pulled = daemon.pull(&target);
    assert!(
        pulled.contains(&format!("Digest: {digest}")),
        "docker pulled another digest than mockimg pushed:\n{pulled}"
    );
    let info = assert_inspect(&target, &base_config(&base));
    let repo_digest = format!("{}/team/mocks@{digest}", reg.addr);
    assert!(
        info["RepoDigests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == &repo_digest),
        "{}",
        info["RepoDigests"]
    );
    // Docker's image ID is the config digest: the daemon runs exactly the config mockimg wrote.
    let cfg_raw = skopeo(&[
        "--override-arch",
        "amd64",
        "inspect",
        "--tls-verify=false",
        "--config",
        "--raw",
        &format!("docker://{target}"),
    ]);
    assert_eq!(info["Id"], fixtures::sha256(cfg_raw.as_bytes()));

    let c = daemon.run(&target);
    assert_serves(&c, &examples("rest"));
}

#[test]
fn image_pushed_over_an_oci_index_base_runs_in_docker() {
    push_pull_run(false);
}

#[test]
fn image_pushed_over_a_docker_schema2_base_runs_in_docker() {
    push_pull_run(true);
}

fn load_run(single: bool) {
    let reg = Registry::start();
    let port = reg.addr.rsplit(':').next().unwrap().to_string();
    let mut daemon = Daemon::new(&format!("load-{port}"));
    let env = Env::new();
    let base = seed_busybox(&reg, single);

    let out = tempfile::tempdir().unwrap();
    let archive = out.path().join("x.tar");
    let tag = format!("team/mocks:loaded-{port}");
    env.run(&[
        "build",
        "examples/rest",
        "--base",
        &base,
        "--output",
        &archive.display().to_string(),
        "--tag",
        &tag,
    ])
    .ok();
    ocicheck::assert_archive(&archive);

    let loaded = daemon.load(&archive, &tag);
    assert!(
        loaded.contains(&format!("Loaded image: {tag}")),
        "docker load did not restore the tag {tag}:\n{loaded}"
    );
    let info = assert_inspect(&tag, &base_config(&base));
    // Other tests may hold the same image ID under their own tags; ours must be among them.
    assert!(
        info["RepoTags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == tag.as_str()),
        "{}",
        info["RepoTags"]
    );

    let c = daemon.run(&tag);
    assert_serves(&c, &examples("rest"));
}

#[test]
fn archive_with_names_sharing_a_tag_loads_under_every_name_in_docker() {
    let reg = Registry::start();
    let port = reg.addr.rsplit(':').next().unwrap().to_string();
    let mut daemon = Daemon::new(&format!("names-{port}"));
    let base = seed_busybox(&reg, false);
    let out = tempfile::tempdir().unwrap();
    let archive = out.path().join("m.tar");
    let names = [
        reg.reference(&format!("mocks/app-{port}:1")),
        format!("team/a-{port}:1"),
        format!("other/c-{port}:1"),
    ];
    Env::new()
        .run(&[
            "build",
            "examples/rest",
            "--base",
            &base,
            "--push",
            &names[0],
            "--tag",
            &names[1],
            "--tag",
            &names[2],
            "--output",
            &archive.display().to_string(),
        ])
        .ok();
    daemon.images.extend(names.iter().cloned());
    let loaded = docker(&["load", "-i", &archive.display().to_string()]);
    let mut ids = Vec::new();
    for n in &names {
        assert!(
            loaded.contains(&format!("Loaded image: {n}")),
            "{n} not loaded:\n{loaded}"
        );
        ids.push(docker(&["image", "inspect", "--format", "{{.Id}}", n]));
    }
    assert!(ids.iter().all(|i| i == &ids[0]), "one image: {ids:?}");
}

#[test]
fn archive_over_an_oci_index_base_loads_and_runs_in_docker() {
    load_run(false);
}

#[test]
fn archive_over_a_docker_schema2_base_loads_and_runs_in_docker() {
    load_run(true);
}

/// Issue 12: `--env`, recursion and `--config-path` reach the running engine. The base stands
/// in for the JVM engine: its Cmd carries `--configDir=/opt/imposter/config`, and it prints that
/// argument, its environment and the files under the directory the argument names.
#[test]
fn env_recursion_and_config_path_reach_the_running_container() {
    let mut base = fixtures::busybox_base(true);
    base.cmd = vec![
        "/bin/busybox",
        "sh",
        "-c",
        "echo ARG=$0; /bin/busybox env; /bin/busybox find \"$(echo $0 | /bin/busybox cut -d= -f2)\" -type f",
        "--configDir=/opt/imposter/config",
    ];
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("base");
    fixtures::write_layout(&layout, &base, "1");
    let config = work.path().join("config");
    std::fs::create_dir_all(config.join("users")).unwrap();
    std::fs::write(config.join("root-config.yaml"), "plugin: rest\n").unwrap();
    std::fs::write(
        config.join("users/users-config.yaml"),
        "plugin: rest\nresponse:\n  file: users.json\n",
    )
    .unwrap();
    std::fs::write(config.join("users/users.json"), "[]").unwrap();

    let unique = work
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_lowercase()
        .replace(|c: char| !c.is_ascii_alphanumeric(), "");
    let mut daemon = Daemon::new(&format!("fidelity-{unique}"));
    let tag = format!("team/mocks:fidelity-{unique}");
    let archive = work.path().join("x.tar");
    Env::new()
        .run(&[
            "build",
            config.to_str().unwrap(),
            "--base",
            &format!("oci:{}:1", layout.display()),
            "--output",
            archive.to_str().unwrap(),
            "--tag",
            &tag,
            "--recursive",
            "--env",
            "IMPOSTER_LOG_LEVEL=DEBUG",
            "--config-path",
            "/mocks",
        ])
        .ok();
    ocicheck::assert_archive(&archive);
    daemon.load(&archive, &tag);
    let out = docker(&["run", "--rm", "--platform", "linux/amd64", &tag]);
    for want in [
        "ARG=--configDir=/mocks",
        "IMPOSTER_LOG_LEVEL=DEBUG",
        "IMPOSTER_CONFIG_SCAN_RECURSIVE=true",
        "/mocks/root-config.yaml",
        "/mocks/users/users-config.yaml",
        "/mocks/users/users.json",
    ] {
        assert!(out.lines().any(|l| l == want), "{want} missing:\n{out}");
    }
    // The JVM launcher adds IMPOSTER_CONFIG_DIR's dirs to --configDir's: only the argument.
    assert!(
        !out.lines().any(|l| l.starts_with("IMPOSTER_CONFIG_DIR=")),
        "the config would load twice:\n{out}"
    );
}

/// Issue 27: a spec outside the mock's folder (`specFile: ../../openapi.yaml` from a config two
/// folders down a repository) is in the running container where the engine resolves the
/// reference: through the image's config directory.
#[test]
fn a_spec_outside_the_config_dir_is_read_through_the_config_path_in_a_container() {
    let reg = Registry::start();
    let port = reg.addr.rsplit(':').next().unwrap().to_string();
    let mut daemon = Daemon::new(&format!("outside-{port}"));
    let env = Env::new();
    let base = seed_busybox(&reg, true);

    let repo = tempfile::tempdir().unwrap();
    let spec = b"openapi: 3.0.0\ninfo: {title: pets, version: '1'}\npaths: {}\n";
    std::fs::write(repo.path().join("openapi.yaml"), spec).unwrap();
    let dir = repo.path().join("services/pets");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("pets-config.yaml"),
        "plugin: openapi\nspecFile: ../../openapi.yaml\n",
    )
    .unwrap();

    let target = reg.reference(&format!("team/pets:outside-{port}"));
    env.run(&[
        "build",
        dir.to_str().unwrap(),
        "--base",
        &base,
        "--push",
        &target,
    ])
    .ok();
    daemon.pull(&target);
    let name = format!("{}-cat", daemon.prefix);
    daemon.containers.push(name.clone());
    let o = docker_out(&[
        "run",
        "--name",
        &name,
        "--entrypoint",
        "/bin/busybox",
        &target,
        "cat",
        "/opt/imposter/config/../../openapi.yaml",
    ]);
    assert!(
        o.status.success(),
        "cat failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.stdout, spec);
}
