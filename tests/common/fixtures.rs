//! Engine-like base images, built deterministically by the tests (no network): OCI layouts that
//! the harness then pushes into the test registry with skopeo, an independent client.
use flate2::{Compression, GzBuilder};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::Path;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

pub fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// Every regular file of a tar archive: entry name → bytes (the fixtures are small).
pub fn read_tar(path: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    use std::io::Read;
    let mut ar = tar::Archive::new(std::fs::File::open(path).unwrap());
    let mut out = std::collections::BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.header().entry_type().is_file() {
            let name = e.path().unwrap().display().to_string();
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            out.insert(name, v);
        }
    }
    out
}

/// A file in a base layer.
pub enum Item {
    Dir(&'static str),
    File(String, Vec<u8>, u32),
    Link(&'static str, &'static str),
}

pub struct Platform {
    pub arch: &'static str,
    pub variant: Option<&'static str>,
    pub layers: Vec<Vec<Item>>,
}

pub struct Base {
    pub platforms: Vec<Platform>,
    pub user: &'static str,
    pub cmd: Vec<&'static str>,
    pub entrypoint: Option<Vec<&'static str>>,
    /// `config.Env`.
    pub env: Vec<&'static str>,
    /// `config.WorkingDir`, when the image sets one.
    pub workdir: Option<&'static str>,
    /// `config.ExposedPorts`, e.g. `8080/tcp`.
    pub ports: Vec<&'static str>,
    /// Adds a buildx-style attestation manifest to the index, as Imposter's own images have.
    pub attestation: bool,
    /// Single image (first platform) instead of an index.
    pub single: bool,
}

fn tar_gz(items: &[Item]) -> (Vec<u8>, String) {
    let mut b = tar::Builder::new(Vec::new());
    for it in items {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match it {
            Item::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            Item::File(p, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, &data[..]).unwrap();
            }
            Item::Link(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
        }
    }
    let raw = b.into_inner().unwrap();
    let diff_id = sha256(&raw);
    let mut gz = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), Compression::new(6));
    std::io::Write::write_all(&mut gz, &raw).unwrap();
    (gz.finish().unwrap(), diff_id)
}

fn put(dir: &Path, data: &[u8]) -> (String, u64) {
    let d = sha256(data);
    let p = dir.join("blobs/sha256").join(&d[7..]);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
    (d, data.len() as u64)
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// Writes `base` as an OCI layout at `dir` with tag `tag`; returns the root digest.
pub fn write_layout(dir: &Path, base: &Base, tag: &str) -> String {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut entries = Vec::new();
    for p in &base.platforms {
        let mut diff_ids = Vec::new();
        let mut layers = Vec::new();
        let mut history = Vec::new();
        for (i, items) in p.layers.iter().enumerate() {
            let (gz, diff_id) = tar_gz(items);
            let (d, s) = put(dir, &gz);
            layers.push(json!({"mediaType": OCI_LAYER, "digest": d, "size": s}));
            diff_ids.push(diff_id);
            history.push(json!({"created": "2024-01-01T00:00:00Z", "created_by": format!("fixture layer {i}")}));
        }
        let ports: serde_json::Map<String, Value> = base
            .ports
            .iter()
            .map(|p| (p.to_string(), json!({})))
            .collect();
        let mut cfg = json!({
            "created": "2024-01-01T00:00:00Z",
            "architecture": p.arch,
            "os": "linux",
            "config": {
                "User": base.user,
                "Env": base.env,
                "Cmd": base.cmd,
                "ExposedPorts": ports,
                "Labels": {"org.opencontainers.image.title": "engine-like test base"}
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        });
        if let Some(v) = p.variant {
            cfg["variant"] = json!(v);
        }
        if let Some(e) = &base.entrypoint {
            cfg["config"]["Entrypoint"] = json!(e);
        }
        if let Some(w) = base.workdir {
            cfg["config"]["WorkingDir"] = json!(w);
        }
        if base.cmd.is_empty() {
            cfg["config"].as_object_mut().unwrap().remove("Cmd");
        }
        let (cd, cs) = put(dir, &bytes(&cfg));
        let m = json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": cd, "size": cs},
            "layers": layers,
        });
        let (md, ms) = put(dir, &bytes(&m));
        let mut plat = json!({"os": "linux", "architecture": p.arch});
        if let Some(v) = p.variant {
            plat["variant"] = json!(v);
        }
        entries
            .push(json!({"mediaType": OCI_MANIFEST, "digest": md, "size": ms, "platform": plat}));
    }
    let root = if base.single {
        let mut e = entries[0].clone();
        e.as_object_mut().unwrap().remove("platform");
        e
    } else {
        if base.attestation {
            let (sd, ss) = put(dir, br#"{"_type":"https://in-toto.io/Statement/v0.1"}"#);
            let (cd, cs) = put(dir, br#"{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#);
            let m = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": cd, "size": cs},
                "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": sd, "size": ss}]});
            let (md, ms) = put(dir, &bytes(&m));
            entries.push(json!({"mediaType": OCI_MANIFEST, "digest": md, "size": ms,
                "platform": {"os": "unknown", "architecture": "unknown"},
                "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": entries[0]["digest"]}}));
        }
        let idx = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries});
        let (d, s) = put(dir, &bytes(&idx));
        json!({"mediaType": OCI_INDEX, "digest": d, "size": s})
    };
    let mut r = root.clone();
    r["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    let top = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [r]});
    std::fs::write(dir.join("index.json"), bytes(&top)).unwrap();
    root["digest"].as_str().unwrap().to_string()
}

/// Files every engine-like base has: an "engine" script, a passwd entry for uid 2048, and a
/// pre-existing config dir with a file that `--replace` must hide.
pub fn engine_files(arch: &'static str) -> Vec<Item> {
    vec![
        Item::Dir("etc/"),
        Item::File("etc/passwd".into(), b"root:x:0:0:root:/root:/bin/sh\nimposter:x:2048:2048::/opt/imposter:/bin/sh\n".to_vec(), 0o644),
        Item::Dir("opt/"),
        Item::Dir("opt/imposter/"),
        Item::Dir("opt/imposter/bin/"),
        Item::File("opt/imposter/bin/imposter".into(), format!("#!/bin/sh\n# engine-like stub for {arch}\nexec busybox httpd -f -p 8080 -h /opt/imposter/config\n").into_bytes(), 0o755),
        Item::Dir("opt/imposter/config/"),
        Item::File("opt/imposter/config/base-default.txt".into(), b"shipped by the base image\n".to_vec(), 0o644),
    ]
}

/// The standard PATH of the images the engines build on.
pub const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The run settings of the JVM engine's core image at v4.9.3: ENTRYPOINT, IMPOSTER_PLUGIN_DIR and
/// user `imposter` (uid 2048) from imposter-jvm-engine@v4.9.3:distro/base/Dockerfile:5-6,10-12,
/// 35,37,39-40, CMD from distro/core/Dockerfile:7. The `-all` image differs in CMD only
/// (distro/all/Dockerfile:7), distroless in its user, `nonroot` (distro/distroless/Dockerfile:29,35).
pub const JVM_ENTRYPOINT: [&str; 4] = [
    "java",
    "-classpath",
    "/opt/imposter/lib/*",
    "io.gatehill.imposter.cmd.ImposterLauncher",
];
pub const JVM_CORE_CMD: [&str; 4] = [
    "--plugin=openapi",
    "--plugin=rest",
    "--plugin=soap",
    "--configDir=/opt/imposter/config",
];
pub const JVM_ALL_CMD: [&str; 2] = ["--configDir", "/opt/imposter/config"];
pub const JVM_ENV: [&str; 5] = [
    PATH_ENV,
    "IMPOSTER_VERSION=4.9.3",
    "IMPOSTER_ENGINE=unpacked",
    "IMPOSTER_JVM_DISTRODIR=/opt/imposter",
    "IMPOSTER_PLUGIN_DIR=/opt/imposter/plugins",
];

/// The Go engine's images at v5.21.3: `FROM scratch`, no user, no CMD
/// (imposter-go@v5.21.3:distro/core/Dockerfile:17-25; -all adds IMPOSTER_EXTERNAL_PLUGINS,
/// distro/all/Dockerfile:40).
pub const GO_ENTRYPOINT: [&str; 1] = ["/imposter-go"];
pub const GO_ENV: [&str; 2] = [
    "IMPOSTER_CONFIG_DIR=/opt/imposter/config",
    "IMPOSTER_PLUGIN_DIR=/opt/imposter/plugins",
];

/// A Go-engine-like base: the Go image's run settings over the synthetic layers.
pub fn go_like() -> Base {
    Base {
        user: "",
        cmd: Vec::new(),
        entrypoint: Some(GO_ENTRYPOINT.to_vec()),
        env: GO_ENV.to_vec(),
        ports: Vec::new(),
        ..engine_like(false)
    }
}

/// The small two-platform engine-like base (not runnable), as shipped in `testdata/`: the JVM
/// core image's run settings (see [`JVM_ENTRYPOINT`]) over synthetic layers.
pub fn engine_like(attestation: bool) -> Base {
    Base {
        platforms: vec![
            Platform {
                arch: "amd64",
                variant: None,
                layers: vec![
                    engine_files("amd64"),
                    vec![
                        Item::Dir("opt/imposter/plugins/"),
                        Item::File(
                            "opt/imposter/plugins/rest.jar".into(),
                            vec![7u8; 4096],
                            0o644,
                        ),
                    ],
                ],
            },
            Platform {
                arch: "arm64",
                variant: Some("v8"),
                layers: vec![
                    engine_files("arm64"),
                    vec![
                        Item::Dir("opt/imposter/plugins/"),
                        Item::File(
                            "opt/imposter/plugins/rest.jar".into(),
                            vec![8u8; 4096],
                            0o644,
                        ),
                    ],
                ],
            },
        ],
        user: "imposter",
        cmd: JVM_CORE_CMD.to_vec(),
        entrypoint: Some(JVM_ENTRYPOINT.to_vec()),
        env: JVM_ENV.to_vec(),
        workdir: None,
        ports: vec!["8080/tcp", "8443/tcp"],
        attestation,
        single: false,
    }
}

/// A runnable base: Debian's static busybox serving /opt/imposter/config over HTTP on 8080 as
/// uid 2048, like the real engine serves mocks. amd64 gets the real binary; arm64 a stand-in so
/// the index is multi-platform.
pub fn busybox_base(single: bool) -> Base {
    let bb = std::fs::read("/bin/busybox").expect("busybox-static is installed by scripts/test");
    assert!(
        !has_elf_interpreter(&bb),
        "/bin/busybox is dynamically linked and cannot run in a base without libc; install Debian's busybox-static"
    );
    let mut amd = vec![
        Item::Dir("bin/"),
        Item::File("bin/busybox".into(), bb, 0o755),
        Item::Link("bin/sh", "busybox"),
        Item::Dir("tmp/"),
    ];
    amd.extend(engine_files("amd64"));
    Base {
        platforms: vec![
            Platform {
                arch: "amd64",
                variant: None,
                layers: vec![amd],
            },
            Platform {
                arch: "arm64",
                variant: Some("v8"),
                layers: vec![engine_files("arm64")],
            },
        ],
        user: "2048",
        cmd: vec![
            "/bin/busybox",
            "httpd",
            "-f",
            "-v",
            "-p",
            "8080",
            "-h",
            "/opt/imposter/config",
        ],
        entrypoint: None,
        env: vec![PATH_ENV, "IMPOSTER_CONFIG_DIR=/opt/imposter/config"],
        workdir: Some("/opt/imposter"),
        ports: vec!["8080/tcp"],
        attestation: !single,
        single,
    }
}

/// Whether an ELF64 little-endian binary asks for a program interpreter (PT_INTERP), i.e. is
/// dynamically linked.
fn has_elf_interpreter(elf: &[u8]) -> bool {
    assert!(
        elf.starts_with(b"\x7fELF\x02\x01"),
        "/bin/busybox is not a 64-bit little-endian ELF binary"
    );
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) == 3
    })
}

/// The runnable busybox base as a release `version`: its first layer of every platform carries
/// `etc/imposter-release`, so each release has its own layers and digest, as real patches do.
pub fn release(single: bool, version: &str) -> Base {
    let mut b = busybox_base(single);
    for p in &mut b.platforms {
        p.layers[0].push(Item::File(
            "etc/imposter-release".into(),
            format!("{version}\n").into_bytes(),
            0o644,
        ));
    }
    b
}
