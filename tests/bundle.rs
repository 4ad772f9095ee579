//! Lambda bundles checked with readers that share no code with ours: Info-ZIP `unzip` and
//! Python's `zipfile`. Engine archives are made with Python too.
use mockimg::imposter::bundle::{bundle, BundleOptions, BundleSummary, EngineArchive};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const MTIME: u64 = 1_600_000_000; // 2020-09-13 12:26:40 UTC

/// Writes a JVM-style engine zip: stored and deflated files, directories, odd modes and times,
/// and a stale `config/` tree that the bundle must drop.
const MAKE_ENGINE_ZIP: &str = r##"
import sys, zipfile
def info(name, mode, dt=(2023, 1, 2, 3, 4, 6), ct=zipfile.ZIP_DEFLATED):
    i = zipfile.ZipInfo(name, date_time=dt)
    i.external_attr = mode << 16
    i.compress_type = ct
    i.create_system = 3
    return i
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr(info("META-INF/", 0o40755, ct=zipfile.ZIP_STORED), b"")
    z.writestr(info("META-INF/MANIFEST.MF", 0o100644), b"Manifest-Version: 1.0\n" * 20)
    z.writestr(info("lib/", 0o40755, ct=zipfile.ZIP_STORED), b"")
    z.writestr(info("lib/imposter-core.jar", 0o100644, ct=zipfile.ZIP_STORED), bytes(range(256)) * 200)
    z.writestr(info("lib/notes.txt", 0o100600, dt=(2021, 6, 7, 8, 9, 10)), b"level nine " * 1000, compresslevel=9)
    z.writestr(info("config/", 0o40755, ct=zipfile.ZIP_STORED), b"")
    z.writestr(info("config/stale-config.yaml", 0o100644), b"plugin: stale\n")
    z.writestr(info("io/gatehill/Handler.class", 0o100644), b"\xca\xfe\xba\xbe" + b"x" * 500)
"##;

/// Prints one JSON object per entry, in central-directory order, plus `testzip()`'s verdict.
const INSPECT_ZIP: &str = r##"
import sys, zipfile, struct, hashlib, json
out = {"entries": []}
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[1], "rb") as f:
    out["testzip"] = z.testzip()
    for i in z.infolist():
        f.seek(i.header_offset)
        h = f.read(30)
        n, m = struct.unpack("<HH", h[26:30])
        f.seek(i.header_offset + 30 + n + m)
        raw = f.read(i.compress_size)
        out["entries"].append({
            "name": i.filename,
            "crc": i.CRC,
            "compress_type": i.compress_type,
            "compress_size": i.compress_size,
            "file_size": i.file_size,
            "mode": i.external_attr >> 16,
            "date_time": list(i.date_time),
            "extra": i.extra.hex(),
            "local_extra_len": m,
            "raw_sha": hashlib.sha256(raw).hexdigest(),
            "data_sha": hashlib.sha256(z.read(i)).hexdigest(),
        })
print(json.dumps(out))
"##;

/// An archive laid out as goreleaser lays out imposter-go's releases
/// (imposter-go@v5.21.3:.goreleaser.yml:1,26-31): the `imposter-go` binary (the project name)
/// at the root beside goreleaser's default extra files that exist in the repository, README.md
/// and CHANGELOG.md (it has no LICENSE file).
const MAKE_GO_TGZ: &str = r##"
import sys, tarfile, io
with tarfile.open(sys.argv[1], "w:gz") as t:
    for name, data, mode in [
        ("README.md", b"# imposter-go\n", 0o644),
        ("CHANGELOG.md", b"# Changelog\n", 0o644),
        ("imposter-go", b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 400, 0o755),
    ]:
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        ti.mode = mode
        t.addfile(ti, io.BytesIO(data))
"##;

fn python(script: &str, args: &[&Path]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn inspect(zip: &Path) -> BTreeMap<String, Value> {
    let v: Value = serde_json::from_str(&python(INSPECT_ZIP, &[zip])).unwrap();
    assert_eq!(
        v["testzip"],
        Value::Null,
        "python testzip found a bad entry"
    );
    v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e.clone()))
        .collect()
}

fn unzip_names(zip: &Path) -> Vec<String> {
    let out = Command::new("unzip").arg("-Z1").arg(zip).output().unwrap();
    assert!(out.status.success(), "unzip -Z1 failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn unzip_test(zip: &Path) {
    let out = Command::new("unzip").arg("-tq").arg(zip).output().unwrap();
    assert!(
        out.status.success(),
        "unzip -t: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn config_tree() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    fs::create_dir_all(p.join("responses/deep")).unwrap();
    fs::write(p.join("mock-config.yaml"), "plugin: rest\nresources: []\n").unwrap();
    fs::write(
        p.join("responses/pets.json"),
        "[{\"id\":1,\"name\":\"Fluffy\"}]",
    )
    .unwrap();
    fs::write(p.join("responses/deep/empty.txt"), "").unwrap();
    fs::write(p.join("hook.sh"), "#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(p.join("hook.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("responses/pets.json", p.join("pets-alias.json")).unwrap();
    fs::write(p.join(".imposter.yaml"), "engine: jvm\n").unwrap();
    d
}

const CONFIG_NAMES: &[&str] = &[
    "config/",
    "config/hook.sh",
    "config/mock-config.yaml",
    "config/pets-alias.json",
    "config/responses/",
    "config/responses/deep/",
    "config/responses/deep/empty.txt",
    "config/responses/pets.json",
];

fn run(
    config: &Path,
    engine: EngineArchive,
    output: &Path,
    force: bool,
) -> mockimg::error::Result<BundleSummary> {
    bundle(&BundleOptions {
        config_dir: config.to_path_buf(),
        engine,
        output: output.to_path_buf(),
        force,
        walk: mockimg::imposter::walk_options(Vec::new()),
        mtime: MTIME,
        outside: Vec::new(),
    })
}

fn jvm_engine(dir: &Path) -> PathBuf {
    let p = dir.join("imposter-awslambda.zip");
    python(MAKE_ENGINE_ZIP, &[&p]);
    p
}

/// Checks every config entry against the tree on disk.
fn check_config_entries(entries: &BTreeMap<String, Value>, config: &Path) {
    for name in CONFIG_NAMES {
        let e = &entries[*name];
        assert_eq!(
            e["date_time"],
            serde_json::json!([2020, 9, 13, 12, 26, 40]),
            "{name}"
        );
        assert_eq!(e["extra"], "", "{name} has extra fields");
        assert_eq!(e["local_extra_len"], 0, "{name} has local extra fields");
        let rel = name.strip_prefix("config/").unwrap();
        if name.ends_with('/') {
            assert_eq!(e["mode"], 0o40755, "{name}");
            continue;
        }
        let want_mode = if rel == "hook.sh" { 0o100755 } else { 0o100644 };
        assert_eq!(e["mode"], want_mode, "{name}");
        assert_eq!(e["compress_type"], 8, "{name} deflated");
        let on_disk = fs::read(config.join(rel)).unwrap();
        assert_eq!(e["data_sha"], sha256_hex(&on_disk), "{name} content");
    }
}

#[test]
fn jvm_bundle_read_back_with_unzip_and_python() {
    let cfg = config_tree();
    let work = tempfile::tempdir().unwrap();
    let engine = jvm_engine(work.path());
    let out = work.path().join("lambda.zip");
    let s = run(
        cfg.path(),
        EngineArchive::JvmZip(engine.clone()),
        &out,
        false,
    )
    .unwrap();

    let mut want: Vec<String> = [
        "META-INF/",
        "META-INF/MANIFEST.MF",
        "lib/",
        "lib/imposter-core.jar",
        "lib/notes.txt",
        "io/gatehill/Handler.class",
    ]
    .map(String::from)
    .to_vec();
    want.extend(CONFIG_NAMES.iter().map(|s| s.to_string()));
    assert_eq!(unzip_names(&out), want);
    unzip_test(&out);
    assert_eq!(s.entries, want.len());
    assert_eq!(s.config_files, 5);
    assert_eq!(s.size, fs::metadata(&out).unwrap().len());

    let src = inspect(&engine);
    let dst = inspect(&out);
    assert!(!dst.contains_key("config/stale-config.yaml"));
    for name in &want[..6] {
        let (a, b) = (&src[name], &dst[name]);
        for field in [
            "crc",
            "compress_type",
            "compress_size",
            "file_size",
            "raw_sha",
            "data_sha",
            "date_time",
            "mode",
        ] {
            assert_eq!(
                a[field], b[field],
                "{name}: {field} differs from the engine zip"
            );
        }
    }
    // The deflated engine entry kept its level-9 stream rather than being re-encoded.
    assert_eq!(dst["lib/notes.txt"]["compress_type"], 8);
    assert_eq!(dst["lib/notes.txt"]["mode"], 0o100600);
    check_config_entries(&dst, cfg.path());

    // Extract with unzip and compare the tree the Lambda runtime would see.
    let x = work.path().join("extract");
    let st = Command::new("unzip")
        .args(["-q", "-d"])
        .arg(&x)
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let task = x.join("config");
    assert_eq!(
        fs::read(task.join("pets-alias.json")).unwrap(),
        fs::read(cfg.path().join("responses/pets.json")).unwrap()
    );
    assert!(!fs::symlink_metadata(task.join("pets-alias.json"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        fs::metadata(task.join("hook.sh"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
    assert!(!task.join(".imposter.yaml").exists());
}

#[test]
fn a_goreleaser_archive_gives_an_executable_bootstrap() {
    let cfg = config_tree();
    let work = tempfile::tempdir().unwrap();
    let tgz = work.path().join("imposter-go_linux_amd64.tar.gz");
    python(MAKE_GO_TGZ, &[&tgz]);
    let out = work.path().join("go.zip");
    let s = run(cfg.path(), EngineArchive::GoTarGz(tgz), &out, false).unwrap();

    let mut want = vec!["bootstrap".to_string()];
    want.extend(CONFIG_NAMES.iter().map(|s| s.to_string()));
    assert_eq!(unzip_names(&out), want);
    unzip_test(&out);
    assert_eq!(s.entries, want.len());

    let dst = inspect(&out);
    let boot = &dst["bootstrap"];
    assert_eq!(boot["mode"], 0o100755);
    let mut binary = b"\x7fELF\x02\x01\x01".to_vec();
    binary.extend((0..400).flat_map(|_| 0..=255u8));
    assert_eq!(boot["data_sha"], sha256_hex(&binary));
    assert_eq!(boot["file_size"], binary.len());
    check_config_entries(&dst, cfg.path());
}

#[test]
fn same_input_gives_byte_identical_zip() {
    let cfg = config_tree();
    let work = tempfile::tempdir().unwrap();
    let engine = EngineArchive::JvmZip(jvm_engine(work.path()));
    let a = work.path().join("a.zip");
    let b = work.path().join("b.zip");
    let sa = run(cfg.path(), engine.clone(), &a, false).unwrap();
    let sb = run(cfg.path(), engine, &b, false).unwrap();
    assert_eq!(sa.sha256, sb.sha256);
    let out = Command::new("sha256sum").arg(&a).arg(&b).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let sums: Vec<&str> = text
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(sums, [sa.sha256.as_str(), sa.sha256.as_str()]);
    assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
}

#[test]
fn refuses_to_overwrite_without_force() {
    let cfg = config_tree();
    let work = tempfile::tempdir().unwrap();
    let engine = EngineArchive::JvmZip(jvm_engine(work.path()));
    let out = work.path().join("lambda.zip");
    fs::write(&out, "keep me").unwrap();
    let err = run(cfg.path(), engine.clone(), &out, false).unwrap_err();
    assert!(err.is_usage(), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("lambda.zip") && msg.contains("--force"),
        "{msg}"
    );
    assert_eq!(fs::read(&out).unwrap(), b"keep me");

    run(cfg.path(), engine, &out, true).unwrap();
    assert!(unzip_names(&out).contains(&"config/mock-config.yaml".to_string()));
}

#[test]
fn failures_leave_no_partial_file() {
    let cfg = config_tree();
    let work = tempfile::tempdir().unwrap();
    let listing = |dir: &Path| {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let out = work.path().join("lambda.zip");

    // A truncated download: the first half of a real engine zip.
    let engine = jvm_engine(work.path());
    let bytes = fs::read(&engine).unwrap();
    fs::write(&engine, &bytes[..bytes.len() / 2]).unwrap();
    let before = listing(work.path());
    let err = run(cfg.path(), EngineArchive::JvmZip(engine), &out, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("imposter-awslambda.zip"), "{err}");
    assert_eq!(listing(work.path()), before);

    // A Go archive without the engine binary.
    let tgz = work.path().join("imposter-go_linux_arm64.tar.gz");
    python(
        r#"
import sys, tarfile, io
with tarfile.open(sys.argv[1], "w:gz") as t:
    ti = tarfile.TarInfo("LICENSE"); ti.size = 3
    t.addfile(ti, io.BytesIO(b"MIT"))
"#,
        &[&tgz],
    );
    let before = listing(work.path());
    let err = run(cfg.path(), EngineArchive::GoTarGz(tgz), &out, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("imposter-go_linux_arm64.tar.gz") && err.contains("bootstrap"),
        "{err}"
    );
    assert_eq!(listing(work.path()), before);
    assert!(!out.exists());
}
