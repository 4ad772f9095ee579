//! Issue 5: bad input. Each case: the exit code (2 for usage, 1 otherwise), one `error: …` line
//! naming the thing, and nothing written.
mod common;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

const BASE: &str = "oci:testdata/engine-base:4.9.3";

/// Checks the failure and returns its error line.
fn fails(run: &Run, code: i32, names: &[&str]) -> String {
    assert_eq!(
        run.code, code,
        "exit code\nstdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {}", run.stderr);
    let line = errors[0];
    assert_eq!(
        run.stderr.lines().rfind(|l| !l.trim().is_empty()),
        Some(line),
        "the error is the last thing said: {}",
        run.stderr
    );
    for n in names {
        assert!(line.contains(n), "{line:?} names {n:?}");
    }
    assert!(run.stdout.is_empty(), "nothing on stdout: {}", run.stdout);
    line.to_string()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A scratch directory to write `out.tar` into; empty afterwards when nothing was written.
struct Out(tempfile::TempDir);
impl Out {
    fn new() -> Out {
        Out(tempfile::tempdir().unwrap())
    }
    fn tar(&self) -> String {
        self.0.path().join("out.tar").display().to_string()
    }
    fn assert_empty(&self) {
        assert!(
            entries(self.0.path()).is_empty(),
            "nothing written: {:?}",
            entries(self.0.path())
        );
    }
}

fn build_out(env: &Env, config: &str, base: &str, out: &Out, extra: &[&str]) -> Run {
    let tar = out.tar();
    let mut args = vec!["build", config, "--base", base, "--output", &tar];
    args.extend_from_slice(extra);
    env.run(&args)
}

#[test]
fn config_dir_missing_or_a_file() {
    let env = Env::new();
    let out = Out::new();
    let missing = out.0.path().join("no-such-config");
    let run = build_out(&env, missing.to_str().unwrap(), BASE, &out, &[]);
    fails(&run, 1, &["no-such-config", "does not exist"]);
    out.assert_empty();

    let file = tempfile::NamedTempFile::new().unwrap();
    let run = build_out(&env, file.path().to_str().unwrap(), BASE, &out, &[]);
    fails(
        &run,
        1,
        &[&file.path().display().to_string(), "not a directory"],
    );
    out.assert_empty();
}

#[test]
fn empty_config_dir() {
    let env = Env::new();
    let out = Out::new();
    let empty = tempfile::tempdir().unwrap();
    let run = build_out(&env, empty.path().to_str().unwrap(), BASE, &out, &[]);
    // One finding: told on the one error line.
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.stderr.matches("error: ").count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("no Imposter config files")
            && run.stderr.contains(&empty.path().display().to_string()),
        "{}",
        run.stderr
    );
    let last = run.stderr.lines().last().unwrap_or("");
    assert!(last.starts_with("error: "), "{}", run.stderr);
    out.assert_empty();
}

fn euid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn unreadable_config_dir() {
    // Root reads through mode 000, so as root the tool runs as `nobody` for this case: the point
    // is what the tool says when the OS refuses, not whether root can be refused.
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let root = euid() == 0;
    let scratch = tempfile::tempdir().unwrap();
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let cfg = scratch.path().join("locked");
    std::fs::create_dir(&cfg).unwrap();
    std::fs::write(cfg.join("hello-config.yaml"), "plugin: rest\n").unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o000)).unwrap();
    let out = scratch.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
    let home = scratch.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o777)).unwrap();

    let mut c = Command::new(env!("CARGO_BIN_EXE_mockimg"));
    c.args(["build", cfg.to_str().unwrap(), "--base", BASE, "--output"])
        .arg(out.join("out.tar"))
        .arg("--no-cache")
        .current_dir(REPO_ROOT)
        .env_clear()
        .env("HOME", &home)
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    if root {
        c.uid(65534).gid(65534);
    }
    let o = c.output().unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    fails(&run, 1, &["locked", "ermission denied"]);
    assert!(entries(&out).is_empty(), "{:?}", entries(&out));
}

#[test]
fn malformed_references_are_usage_errors() {
    let env = Env::new();
    let out = Out::new();
    for bad in [
        "UPPER/case:1",
        "127.0.0.1:5000/repo:tag:tag",
        "repo@sha256:abc",
        "repo@sha256:ZZZZ",
        "repo@md5:0123456789abcdef0123456789abcdef",
        "",
    ] {
        let run = build_out(&env, "examples/rest", bad, &out, &[]);
        fails(&run, 2, &["--base", bad]);
        out.assert_empty();
        let run = build_out(&env, "examples/rest", BASE, &out, &["--push", bad]);
        fails(&run, 2, &["--push", bad]);
        out.assert_empty();
    }
}

#[test]
fn unknown_platform_and_missing_output_dir() {
    let env = Env::new();
    let out = Out::new();
    let run = build_out(
        &env,
        "examples/rest",
        BASE,
        &out,
        &["--platform", "linux/s390x"],
    );
    // The base is fine; the request does not fit it: a usage error.
    fails(&run, 2, &["linux/s390x", "linux/amd64"]);
    out.assert_empty();
    let run = build_out(
        &env,
        "examples/rest",
        BASE,
        &out,
        &["--platform", "nonsense"],
    );
    fails(&run, 2, &["nonsense"]);
    out.assert_empty();

    let missing = out.0.path().join("not-there/out.tar");
    let run = env.build("examples/rest").base(BASE).output(&missing).run();
    fails(&run, 1, &["not-there", "does not exist"]);
    out.assert_empty();
}

// ---- hand-written OCI layouts ----

fn sha(b: &[u8]) -> String {
    fixtures::sha256(b)
}

/// An OCI layout holding `blobs`, whose index.json is `index` (raw bytes).
fn layout(dir: &Path, index: &[u8], blobs: &[&[u8]]) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    for b in blobs {
        std::fs::write(dir.join("blobs/sha256").join(&sha(b)[7..]), b).unwrap();
    }
    std::fs::write(dir.join("index.json"), index).unwrap();
}

fn desc(mt: &str, b: &[u8]) -> Value {
    json!({"mediaType": mt, "digest": sha(b), "size": b.len()})
}

fn index_of(entry: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [entry]})).unwrap()
}

fn tagged(mut d: Value) -> Value {
    d["annotations"] = json!({"org.opencontainers.image.ref.name": "t"});
    d
}

fn good_config() -> Vec<u8> {
    serde_json::to_vec(
        &json!({"architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": []}}),
    )
    .unwrap()
}

/// A helm-chart-like artifact: an image manifest whose config is not an image config.
fn helm_chart() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let cfg = br#"{"name":"mocks","version":"0.1.0","apiVersion":"v2"}"#.to_vec();
    let chart = b"not really a chart, but bytes".to_vec();
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": fixtures::OCI_MANIFEST,
        "config": desc("application/vnd.cncf.helm.config.v1+json", &cfg),
        "layers": [desc("application/vnd.cncf.helm.chart.content.v1.tar+gzip", &chart)],
    }))
    .unwrap();
    (m, cfg, chart)
}

#[test]
fn base_that_is_not_an_image() {
    let env = Env::new();
    let out = Out::new();
    let d = tempfile::tempdir().unwrap();
    let (m, cfg, chart) = helm_chart();
    layout(
        d.path(),
        &index_of(tagged(desc(fixtures::OCI_MANIFEST, &m))),
        &[&m, &cfg, &chart],
    );
    let base = format!("oci:{}:t", d.path().display());
    let run = build_out(&env, "examples/rest", &base, &out, &[]);
    fails(
        &run,
        1,
        &[
            "not a container image",
            "application/vnd.cncf.helm.config.v1+json",
        ],
    );
    out.assert_empty();

    // The same artifact in a registry (pushed with skopeo, an independent client).
    let reg = Registry::start();
    skopeo(&[
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        &format!("oci:{}:t", d.path().display()),
        &format!("docker://{}", reg.reference("charts/mocks:0.1.0")),
    ]);
    let run = build_out(
        &env,
        "examples/rest",
        &reg.reference("charts/mocks:0.1.0"),
        &out,
        &[],
    );
    fails(
        &run,
        1,
        &["not a container image", "charts/mocks", &reg.addr],
    );
    out.assert_empty();
}

#[test]
fn manifests_and_indexes_that_are_broken() {
    let env = Env::new();
    let out = Out::new();
    let cfg = good_config();
    let no_config = serde_json::to_vec(&json!({"schemaVersion": 2,
        "mediaType": fixtures::OCI_MANIFEST, "layers": []}))
    .unwrap();
    let bad_layers = serde_json::to_vec(&json!({"schemaVersion": 2,
        "mediaType": fixtures::OCI_MANIFEST, "config": desc(fixtures::OCI_CONFIG, &cfg),
        "layers": [{"mediaType": fixtures::OCI_LAYER}]}))
    .unwrap();
    let not_json = b"{this is not json".to_vec();
    let idx_no_manifests =
        serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": fixtures::OCI_INDEX})).unwrap();
    // (case, index.json, blobs, what the error names)
    type Case<'a> = (&'a str, Vec<u8>, Vec<Vec<u8>>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "index.json not JSON",
            b"[[[".to_vec(),
            vec![],
            vec!["index.json", "not valid JSON"],
        ),
        (
            "index.json without manifests",
            br#"{"schemaVersion":2}"#.to_vec(),
            vec![],
            vec!["index.json", "manifests"],
        ),
        (
            "entry without digest",
            index_of(json!({"mediaType": fixtures::OCI_MANIFEST, "size": 3})),
            vec![],
            vec!["index.json", "digest"],
        ),
        (
            "manifest not JSON",
            index_of(desc(fixtures::OCI_MANIFEST, &not_json)),
            vec![not_json.clone()],
            vec!["not valid JSON"],
        ),
        (
            "manifest without config",
            index_of(desc(fixtures::OCI_MANIFEST, &no_config)),
            vec![no_config.clone()],
            vec!["lacks config"],
        ),
        (
            "layer descriptor without digest",
            index_of(desc(fixtures::OCI_MANIFEST, &bad_layers)),
            vec![bad_layers.clone(), cfg.clone()],
            vec!["digest"],
        ),
        (
            "nested index without manifests",
            index_of(desc(fixtures::OCI_INDEX, &idx_no_manifests)),
            vec![idx_no_manifests.clone()],
            vec!["manifests"],
        ),
    ];
    for (name, index, blobs, names) in cases {
        let d = tempfile::tempdir().unwrap();
        let refs: Vec<&[u8]> = blobs.iter().map(|b| b.as_slice()).collect();
        layout(d.path(), &index, &refs);
        let base = format!("oci:{}", d.path().display());
        let run = build_out(&env, "examples/rest", &base, &out, &[]);
        let mut all = names.clone();
        let dir = d.path().display().to_string();
        all.push(&dir);
        eprintln!("{name}: {}", run.stderr.trim());
        fails(&run, 1, &all);
        out.assert_empty();
    }
}

#[test]
fn digest_pins_that_do_not_match() {
    let env = Env::new();
    let out = Out::new();
    // Registry: a pin nobody pushed.
    let reg = Registry::start();
    seed_engine(&reg, false);
    let wrong = format!("sha256:{}", "0".repeat(64));
    let pinned = reg.reference(&format!("imposter@{wrong}"));
    let run = build_out(&env, "examples/rest", &pinned, &out, &[]);
    fails(&run, 1, &[&reg.addr, &wrong]);
    out.assert_empty();

    // Layout: index.json names a digest the blob does not hash to.
    let d = tempfile::tempdir().unwrap();
    let root = fixtures::write_layout(d.path(), &fixtures::engine_like(false), "t");
    let blob = d.path().join("blobs/sha256").join(&root[7..]);
    let mut bytes = std::fs::read(&blob).unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    bytes = serde_json::to_vec_pretty(&v).unwrap(); // same JSON, other bytes
    std::fs::write(&blob, &bytes).unwrap();
    let run = build_out(
        &env,
        "examples/rest",
        &format!("oci:{}:t", d.path().display()),
        &out,
        &[],
    );
    fails(&run, 1, &["digest mismatch", &root]);
    out.assert_empty();
}

#[test]
fn corrupted_layer_in_a_layout_base() {
    let env = Env::new();
    let out = Out::new();
    let d = tempfile::tempdir().unwrap();
    fixtures::write_layout(d.path(), &fixtures::engine_like(false), "t");
    // A layer (gzip) blob; one byte of it changes, its size does not.
    let blobs = d.path().join("blobs/sha256");
    let (name, mut bytes) = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let b = std::fs::read(e.path()).unwrap();
            (e.file_name().to_string_lossy().into_owned(), b)
        })
        .find(|(_, b)| b.starts_with(&[0x1f, 0x8b]))
        .unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(blobs.join(&name), &bytes).unwrap();
    let run = build_out(
        &env,
        "examples/rest",
        &format!("oci:{}:t", d.path().display()),
        &out,
        &[],
    );
    let line = fails(&run, 1, &[&name, "content mismatch"]);
    assert!(!line.contains("expected ,"), "{line}");
    out.assert_empty();
}

// ---- archives ----

/// A good archive of the shipped base, written by mockimg itself.
fn good_archive(env: &Env, dir: &Path) -> PathBuf {
    let p = dir.join("good.tar");
    env.build("examples/rest").base(BASE).output(&p).run().ok();
    p
}

#[test]
fn archives_that_are_truncated_not_tar_or_incomplete() {
    let env = Env::new();
    let out = Out::new();
    let d = tempfile::tempdir().unwrap();
    let good = std::fs::read(good_archive(&env, d.path())).unwrap();
    let reg = Registry::start();

    let truncated = d.path().join("a.tar");
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    let not_tar = d.path().join("b.tar");
    std::fs::write(&not_tar, b"PK\x03\x04 this is a zip, not a tar".repeat(40)).unwrap();
    let empty = d.path().join("c.tar");
    std::fs::write(&empty, b"").unwrap();

    // index.json kept, a layer blob dropped: the failure comes only when the layer is copied.
    let incomplete = d.path().join("d.tar");
    let mut ar = tar::Archive::new(&good[..]);
    let mut b = tar::Builder::new(Vec::new());
    let mut dropped = String::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        // Layers are the big gzip blobs; drop the first one seen.
        if dropped.is_empty() && path.starts_with("blobs/") && data.starts_with(&[0x1f, 0x8b]) {
            dropped = path;
            continue;
        }
        let mut h = e.header().clone();
        b.append_data(&mut h, &path, &data[..]).unwrap();
    }
    assert!(!dropped.is_empty());
    std::fs::write(&incomplete, b.into_inner().unwrap()).unwrap();
    let dropped_digest = format!("sha256:{}", dropped.rsplit('/').next().unwrap());

    let cases: Vec<(&Path, Vec<&str>)> = vec![
        (&truncated, vec!["is truncated"]),
        (&not_tar, vec!["is not a tar archive"]),
        (&empty, vec!["empty or not a tar"]),
        (&incomplete, vec!["lacks blob", &dropped_digest]),
    ];
    for (p, names) in cases {
        let mut all = names.clone();
        let shown = p.display().to_string();
        all.push(&shown);
        for base in [
            format!("oci-archive:{shown}"),
            format!("docker-archive:{shown}"),
        ] {
            if base.starts_with("docker-archive:") && p == incomplete.as_path() {
                continue; // its manifest.json still lists the layer; checked below
            }
            let run = build_out(&env, "examples/rest", &base, &out, &[]);
            eprintln!("{base}: {}", run.stderr.trim());
            fails(&run, 1, &all[..1]);
            assert!(run.stderr.contains(&shown), "{}", run.stderr);
            out.assert_empty();
        }
        // `mockimg push` of the same file fails the same way and creates no tag.
        let target = reg.reference("never/used:1");
        let run = env.run(&["push", &shown, &target]);
        fails(&run, 1, &all);
        let o = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--raw"])
            .arg(format!("docker://{target}"))
            .output()
            .unwrap();
        assert!(!o.status.success(), "no tag was pushed from {shown}");
    }
    let run = build_out(
        &env,
        "examples/rest",
        &format!("docker-archive:{}", incomplete.display()),
        &out,
        &[],
    );
    fails(&run, 1, &[&dropped]);
    out.assert_empty();
}

/// A tar whose entry names are written raw, bypassing the tar crate's own path checks.
fn evil_tar(names: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for n in names {
        let data = format!("written by a hostile archive as {n}\n").into_bytes();
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..n.len()].copy_from_slice(n.as_bytes());
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[test]
fn archive_entries_with_dotdot_or_absolute_paths_are_refused() {
    let env = Env::new();
    let out = Out::new();
    let d = tempfile::tempdir().unwrap();
    let inner = d.path().join("a/b");
    std::fs::create_dir_all(&inner).unwrap();
    let abs_target = d.path().join("abs-escape");
    let abs = abs_target.display().to_string();
    let cases = [
        vec!["index.json", "../escape"],
        vec!["../../escape", "index.json"],
        vec!["oci-layout", abs.as_str()],
        vec!["manifest.json", "blobs/../../../escape"],
    ];
    for (i, names) in cases.iter().enumerate() {
        let p = inner.join(format!("evil{i}.tar"));
        std::fs::write(&p, evil_tar(names)).unwrap();
        let shown = p.display().to_string();
        for base in [
            format!("oci-archive:{shown}"),
            format!("docker-archive:{shown}"),
        ] {
            let run = build_out(&env, "examples/rest", &base, &out, &[]);
            fails(&run, 1, &["unsafe entry path", &shown]);
            out.assert_empty();
        }
        let run = env.run(&["push", &shown, "127.0.0.1:9/never/used:1"]);
        fails(&run, 1, &["unsafe entry path"]);
        let run = env.run(&["inspect", &format!("oci-archive:{shown}")]);
        fails(&run, 1, &["unsafe entry path"]);
    }
    // Nothing appeared anywhere an extraction would have put it.
    for p in [
        d.path().join("escape"),
        d.path().join("a/escape"),
        inner.join("escape"),
        abs_target,
        Path::new(REPO_ROOT).join("../escape"),
        Path::new(REPO_ROOT).join("escape"),
    ] {
        assert!(!p.exists(), "{} was written", p.display());
    }
    assert_eq!(
        entries(&inner),
        (0..cases.len())
            .map(|i| format!("evil{i}.tar"))
            .collect::<Vec<_>>()
    );
}

// ---- awkward config file names ----

/// Extracts an archive written by --output and returns the config layer's file list
/// (`tar tzf`, an independent reader) and the extracted archive directory.
fn config_layer_listing(archive: &Path) -> (tempfile::TempDir, Vec<String>) {
    let x = tempfile::tempdir().unwrap();
    let st = Command::new("tar")
        .arg("xf")
        .arg(archive)
        .arg("-C")
        .arg(x.path())
        .status()
        .unwrap();
    assert!(st.success());
    let idx: Value =
        serde_json::from_slice(&std::fs::read(x.path().join("index.json")).unwrap()).unwrap();
    let blob = |d: &str| x.path().join("blobs/sha256").join(&d[7..]);
    let root: Value = serde_json::from_slice(
        &std::fs::read(blob(idx["manifests"][0]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let m: Value = serde_json::from_slice(
        &std::fs::read(blob(root["manifests"][0]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let layer = m["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let o = Command::new("tar")
        .arg("tzf")
        .arg(blob(&layer))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let names = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    (x, names)
}

#[test]
fn config_file_names_with_spaces_unicode_and_long_paths() {
    let env = Env::new();
    let cfg = tempfile::tempdir().unwrap();
    let hello = std::fs::read(examples("rest").join("hello-config.yaml")).unwrap();
    std::fs::write(cfg.path().join("hello-config.yaml"), &hello).unwrap();
    // Three 100-byte directory names and a 100-byte file name: a path of over 400 bytes.
    let long_rel: PathBuf = [
        "d".repeat(100),
        "e".repeat(100),
        "f".repeat(100),
        "g".repeat(96) + ".txt",
    ]
    .iter()
    .collect();
    let mut files: Vec<(PathBuf, Vec<u8>)> = vec![
        ("with space/a file.json".into(), b"{\"a\": 1}\n".to_vec()),
        (
            "ünïcödé/日本語.txt".into(),
            "こんにちは\n".as_bytes().to_vec(),
        ),
        ("emoji 🦀.txt".into(), b"crab\n".to_vec()),
        (long_rel.clone(), b"deep\n".to_vec()),
    ];
    files.push(("hello-config.yaml".into(), hello));
    for r in ["responses/user-1.json", "responses/pets.json"] {
        files.push((r.into(), std::fs::read(examples("rest").join(r)).unwrap()));
    }
    for (p, b) in &files {
        let full = cfg.path().join(p);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, b).unwrap();
    }
    assert!(long_rel.as_os_str().len() > 255);
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("mocks.tar");
    env.run(&[
        "build",
        cfg.path().to_str().unwrap(),
        "--base",
        BASE,
        "--output",
        tar.to_str().unwrap(),
    ])
    .ok();
    let (_x, listing) = config_layer_listing(&tar);
    for (p, _) in &files {
        let want = format!("opt/imposter/config/{}", p.display());
        assert!(listing.contains(&want), "{want} in {listing:#?}");
    }
    // umoci unpacks it and every byte is where it belongs.
    let (_keep, rootfs) = unpack_from(&format!("oci-archive:{}", tar.display()), "amd64", false);
    for (p, b) in &files {
        assert_eq!(
            &std::fs::read(rootfs.join("opt/imposter/config").join(p)).unwrap(),
            b,
            "{}",
            p.display()
        );
    }
}

#[test]
fn ten_thousand_config_files() {
    let env = Env::new();
    let cfg = tempfile::tempdir().unwrap();
    std::fs::copy(
        examples("rest").join("hello-config.yaml"),
        cfg.path().join("hello-config.yaml"),
    )
    .unwrap();
    for i in 0..10_000 {
        let dir = cfg.path().join(format!("responses/{:02}", i % 100));
        if i < 100 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        std::fs::write(dir.join(format!("r{i}.json")), format!("{{\"i\": {i}}}\n")).unwrap();
    }
    std::fs::create_dir_all(cfg.path().join("responses")).unwrap();
    std::fs::copy(
        examples("rest").join("responses/user-1.json"),
        cfg.path().join("responses/user-1.json"),
    )
    .unwrap();
    std::fs::copy(
        examples("rest").join("responses/pets.json"),
        cfg.path().join("responses/pets.json"),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("mocks.tar");
    let run = env
        .run(&[
            "build",
            cfg.path().to_str().unwrap(),
            "--base",
            BASE,
            "--output",
            tar.to_str().unwrap(),
            "--json",
        ])
        .ok();
    let j: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(j["layer"]["files"], 10_003, "{}", run.stdout);
    let (_x, listing) = config_layer_listing(&tar);
    let files: Vec<&String> = listing.iter().filter(|n| !n.ends_with('/')).collect();
    assert_eq!(files.len(), 10_003);
    for i in [0, 1, 4_999, 9_999] {
        let want = format!("opt/imposter/config/responses/{:02}/r{i}.json", i % 100);
        assert!(listing.contains(&want), "{want}");
    }
}
