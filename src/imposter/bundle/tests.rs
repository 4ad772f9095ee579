//! Bundles built end to end from small engine archives the tests write.
use super::jvm::{escaping_link, is_under_config, unsafe_entry_name};
use super::*;
use crate::sink::lambda_zip::zip_time;
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::Cursor;
use std::io::{Read, Write};
use std::os::unix::fs::symlink;
use std::os::unix::fs::PermissionsExt;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

fn config_tree() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    fs::create_dir_all(p.join("responses/nested")).unwrap();
    fs::write(p.join("a-config.yaml"), "plugin: rest\n").unwrap();
    fs::write(p.join("responses/one.json"), "{\"one\":1}").unwrap();
    fs::write(p.join("responses/nested/two.json"), "[2]").unwrap();
    fs::write(p.join("run.sh"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(p.join("run.sh"), fs::Permissions::from_mode(0o700)).unwrap();
    symlink("responses/one.json", p.join("alias.json")).unwrap();
    fs::create_dir_all(p.join(".git")).unwrap();
    fs::write(p.join(".git/HEAD"), "ref").unwrap();
    d
}

/// A JVM-style engine zip written with the zip crate: stored and deflated files, a
/// directory, a symlink, a `config/` tree that must be dropped, odd modes and times.
fn engine_zip(dir: &Path) -> PathBuf {
    let path = dir.join("engine.zip");
    let mut z = ZipWriter::new(File::create(&path).unwrap());
    let t = DateTime::from_date_and_time(2024, 5, 6, 7, 8, 10).unwrap();
    let o = SimpleFileOptions::default().last_modified_time(t);
    z.add_directory("lib/", o.unix_permissions(0o750)).unwrap();
    z.start_file("lib/a.jar", o.compression_method(CompressionMethod::Stored))
        .unwrap();
    z.write_all(&[7u8; 3000]).unwrap();
    z.start_file(
        "lib/b.txt",
        o.compression_method(CompressionMethod::Deflated)
            .compression_level(Some(9))
            .unix_permissions(0o600),
    )
    .unwrap();
    z.write_all("hello engine ".repeat(500).as_bytes()).unwrap();
    z.add_directory("config/", o).unwrap();
    z.start_file("config/old-config.yaml", o).unwrap();
    z.write_all(b"plugin: old\n").unwrap();
    z.start_file("bin/run", o.unix_permissions(0o755)).unwrap();
    z.write_all(b"#!/bin/sh\nexec java\n").unwrap();
    z.add_symlink("bin/link", "run", o).unwrap();
    z.finish().unwrap();
    path
}

fn tar_gz(dir: &Path, files: &[(&str, &[u8])]) -> PathBuf {
    let path = dir.join("engine.tar.gz");
    let gz = flate2::write::GzEncoder::new(File::create(&path).unwrap(), Default::default());
    let mut t = tar::Builder::new(gz);
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        h.set_entry_type(tar::EntryType::Regular);
        t.append_data(&mut h, name, *data).unwrap();
    }
    t.into_inner().unwrap().finish().unwrap();
    path
}

fn elf(len: usize) -> Vec<u8> {
    let mut v = b"\x7fELF".to_vec();
    v.extend((0..len).map(|i| (i * 31 % 251) as u8));
    v
}

fn opts(config: &Path, engine: EngineArchive, output: PathBuf) -> BundleOptions {
    BundleOptions {
        config_dir: config.to_path_buf(),
        engine,
        output,
        force: false,
        walk: crate::imposter::walk_options(Vec::new()),
        mtime: 1_700_000_000,
        outside: Vec::new(),
    }
}

fn read_zip(path: &Path) -> ZipArchive<File> {
    ZipArchive::new(File::open(path).unwrap()).unwrap()
}

fn names(z: &mut ZipArchive<File>) -> Vec<String> {
    (0..z.len())
        .map(|i| z.by_index_raw(i).unwrap().name().to_owned())
        .collect()
}

fn content(z: &mut ZipArchive<File>, name: &str) -> Vec<u8> {
    let mut v = Vec::new();
    z.by_name(name).unwrap().read_to_end(&mut v).unwrap();
    v
}

fn raw(
    z: &mut ZipArchive<File>,
    name: &str,
) -> (u32, u64, CompressionMethod, Option<u32>, DateTime, Vec<u8>) {
    let i = z.index_for_name(name).unwrap();
    let mut f = z.by_index_raw(i).unwrap();
    let meta = (
        f.crc32(),
        f.compressed_size(),
        f.compression(),
        f.unix_mode(),
        f.last_modified().unwrap(),
    );
    let mut v = Vec::new();
    f.read_to_end(&mut v).unwrap();
    (meta.0, meta.1, meta.2, meta.3, meta.4, v)
}

fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".mockimg-"))
        .collect()
}

#[test]
fn jvm_layout_raw_copy_and_modes() {
    let cfg = config_tree();
    let work = tempfile::tempdir().unwrap();
    let engine = engine_zip(work.path());
    let out = work.path().join("lambda.zip");
    let s = bundle(&opts(
        cfg.path(),
        EngineArchive::JvmZip(engine.clone()),
        out.clone(),
    ))
    .unwrap();
    let mut z = read_zip(&out);
    assert_eq!(
        names(&mut z),
        [
            "lib/",
            "lib/a.jar",
            "lib/b.txt",
            "bin/run",
            "bin/link",
            "config/",
            "config/a-config.yaml",
            "config/alias.json",
            "config/responses/",
            "config/responses/nested/",
            "config/responses/nested/two.json",
            "config/responses/one.json",
            "config/run.sh",
        ]
    );
    assert_eq!(s.entries, 13);
    assert_eq!(s.config_files, 5);
    assert_eq!(s.size, fs::metadata(&out).unwrap().len());
    assert_eq!(
        s.sha256,
        hex::encode(Sha256::digest(fs::read(&out).unwrap()))
    );

    let mut src = read_zip(&engine);
    for n in ["lib/a.jar", "lib/b.txt", "bin/run"] {
        assert_eq!(raw(&mut src, n), raw(&mut z, n), "{n} copied unchanged");
    }
    assert_eq!(
        z.by_name("lib/b.txt").unwrap().compression(),
        CompressionMethod::Deflated
    );
    assert_eq!(z.by_name("lib/b.txt").unwrap().unix_mode(), Some(0o100600));
    assert_eq!(z.by_name("lib/").unwrap().unix_mode(), Some(0o040750));
    assert!(z.by_name("bin/link").unwrap().is_symlink());
    assert_eq!(content(&mut z, "bin/link"), b"run");

    let t = zip_time(1_700_000_000);
    for (name, mode) in [
        ("config/", 0o040755),
        ("config/responses/nested/", 0o040755),
        ("config/a-config.yaml", 0o100644),
        ("config/run.sh", 0o100755),
        ("config/alias.json", 0o100644),
    ] {
        let f = z.by_name(name).unwrap();
        assert_eq!(f.unix_mode(), Some(mode), "{name}");
        assert_eq!(f.last_modified(), Some(t), "{name}");
        assert!(
            f.extra_data().is_none_or(|d| d.is_empty()),
            "{name} has extra data"
        );
    }
    assert_eq!(content(&mut z, "config/alias.json"), b"{\"one\":1}");
    assert_eq!(content(&mut z, "config/responses/nested/two.json"), b"[2]");
    assert_eq!(
        z.by_name("config/a-config.yaml").unwrap().compression(),
        CompressionMethod::Deflated
    );
    assert!(leftovers(work.path()).is_empty());
}

#[test]
fn deterministic_and_sensitive_to_inputs() {
    let cfg = config_tree();
    let work = tempfile::tempdir().unwrap();
    let engine = EngineArchive::JvmZip(engine_zip(work.path()));
    let run = |name: &str, mtime: u64| {
        let mut o = opts(cfg.path(), engine.clone(), work.path().join(name));
        o.mtime = mtime;
        let s = bundle(&o).unwrap();
        (s.sha256, fs::read(work.path().join(name)).unwrap())
    };
    let a = run("a.zip", 1_700_000_000);
    let b = run("b.zip", 1_700_000_000);
    assert_eq!(a, b);
    let c = run("c.zip", 1_800_000_000);
    assert_ne!(a.0, c.0);
    fs::write(cfg.path().join("responses/one.json"), "{\"one\":2}").unwrap();
    let d = run("d.zip", 1_700_000_000);
    assert_ne!(a.0, d.0);
}

#[test]
fn go_engine_bootstrap_from_top_level_imposter() {
    let cfg = config_tree();
    let work = tempfile::tempdir().unwrap();
    let bin = elf(100_000);
    let tgz = tar_gz(
        work.path(),
        &[
            ("LICENSE", b"Apache"),
            ("docs/bootstrap", b"#!/bin/sh\n"),
            ("imposter", &bin),
            ("README.md", b"# go"),
        ],
    );
    let out = work.path().join("go.zip");
    let s = bundle(&opts(cfg.path(), EngineArchive::GoTarGz(tgz), out.clone())).unwrap();
    let mut z = read_zip(&out);
    let n = names(&mut z);
    assert_eq!(n[..3], ["bootstrap", "config/", "config/a-config.yaml"]);
    // bootstrap, config/ and the 7 entries of the tree.
    assert_eq!(s.entries, 9);
    assert_eq!(content(&mut z, "bootstrap"), bin);
    let f = z.by_name("bootstrap").unwrap();
    assert_eq!(f.unix_mode(), Some(0o100755));
    assert_eq!(f.compression(), CompressionMethod::Deflated);
    assert_eq!(f.last_modified(), Some(zip_time(1_700_000_000)));
}

#[test]
fn go_engine_nested_binary_and_failures() {
    let cfg = config_tree();
    let work = tempfile::tempdir().unwrap();
    let bin = elf(10);
    // A non-ELF shallower candidate loses to a nested ELF one.
    let tgz = tar_gz(
        work.path(),
        &[
            ("bootstrap", b"#!/bin/sh\n"),
            ("imposter_1.2/bin/imposter", &bin),
        ],
    );
    let out = work.path().join("go.zip");
    bundle(&opts(cfg.path(), EngineArchive::GoTarGz(tgz), out.clone())).unwrap();
    assert_eq!(content(&mut read_zip(&out), "bootstrap"), bin);

    let out2 = work.path().join("go2.zip");
    let none = tar_gz(work.path(), &[("README.md", b"x"), ("imposterx", &bin)]);
    let err = bundle(&opts(
        cfg.path(),
        EngineArchive::GoTarGz(none.clone()),
        out2.clone(),
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("no `imposter-go` executable") && err.contains("engine.tar.gz"),
        "{err}"
    );

    let mac = tar_gz(work.path(), &[("imposter", b"\xcf\xfa\xed\xfe mach-o")]);
    let err = bundle(&opts(cfg.path(), EngineArchive::GoTarGz(mac), out2.clone()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a Linux (ELF) executable"), "{err}");

    let full = tar_gz(work.path(), &[("imposter", &elf(200_000))]);
    let bytes = fs::read(&full).unwrap();
    fs::write(&full, &bytes[..bytes.len() / 2]).unwrap();
    let err = bundle(&opts(
        cfg.path(),
        EngineArchive::GoTarGz(full),
        out2.clone(),
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("engine.tar.gz") && err.contains("tar.gz archive"),
        "{err}"
    );

    fs::write(&none, b"not gzip at all").unwrap();
    let err = bundle(&opts(
        cfg.path(),
        EngineArchive::GoTarGz(none),
        out2.clone(),
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("not a readable .tar.gz"), "{err}");
    assert!(!out2.exists());
    assert!(leftovers(work.path()).is_empty());
}

#[test]
fn refuses_overwrite_without_force() {
    let cfg = config_tree();
    let work = tempfile::tempdir().unwrap();
    let engine = EngineArchive::JvmZip(engine_zip(work.path()));
    let out = work.path().join("lambda.zip");
    fs::write(&out, "precious").unwrap();
    let mut o = opts(cfg.path(), engine, out.clone());
    let err = bundle(&o).unwrap_err();
    assert!(err.is_usage());
    let msg = err.to_string();
    assert!(
        msg.contains("lambda.zip") && msg.contains("--force"),
        "{msg}"
    );
    assert_eq!(fs::read(&out).unwrap(), b"precious");
    o.force = true;
    bundle(&o).unwrap();
    assert_eq!(&fs::read(&out).unwrap()[..4], b"PK\x03\x04");
    assert_eq!(
        fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o644
    );
}

#[test]
fn output_path_errors() {
    let cfg = config_tree();
    let work = tempfile::tempdir().unwrap();
    let engine = EngineArchive::JvmZip(engine_zip(work.path()));
    let err = bundle(&opts(
        cfg.path(),
        engine.clone(),
        work.path().join("nope/x.zip"),
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("nope") && err.contains("does not exist"),
        "{err}"
    );
    let mut o = opts(cfg.path(), engine.clone(), work.path().to_path_buf());
    o.force = true;
    let err = bundle(&o).unwrap_err().to_string();
    assert!(err.contains("is a directory"), "{err}");
    let err = bundle(&opts(
        cfg.path(),
        EngineArchive::JvmZip(work.path().join("missing.zip")),
        work.path().join("x.zip"),
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("missing.zip") && err.contains("does not exist"),
        "{err}"
    );
    assert!(!work.path().join("x.zip").exists());
}

#[test]
fn bad_engine_zips_leave_nothing_behind() {
    let cfg = config_tree();
    let work = tempfile::tempdir().unwrap();
    let good = fs::read(engine_zip(work.path())).unwrap();
    let out = work.path().join("out.zip");
    let bad = work.path().join("bad.zip");
    let try_bundle = |bytes: &[u8]| {
        fs::write(&bad, bytes).unwrap();
        let r = bundle(&opts(
            cfg.path(),
            EngineArchive::JvmZip(bad.clone()),
            out.clone(),
        ));
        assert!(!out.exists());
        assert!(leftovers(work.path()).is_empty());
        r.unwrap_err().to_string()
    };
    let err = try_bundle(b"this is not a zip file at all");
    assert!(
        err.contains("bad.zip") && err.contains("not a readable zip"),
        "{err}"
    );
    let err = try_bundle(&good[..good.len() / 2]);
    assert!(err.contains("bad.zip"), "{err}");
    // Flip a byte inside the stored lib/a.jar data (3000 × 7): CRC check fails.
    let mut corrupt = good.clone();
    let at = corrupt
        .windows(64)
        .position(|w| w.iter().all(|&b| b == 7))
        .unwrap()
        + 10;
    corrupt[at] = 8;
    let err = try_bundle(&corrupt);
    assert!(
        err.contains("lib/a.jar") && err.contains("corrupt"),
        "{err}"
    );
    let mut empty = ZipWriter::new(Cursor::new(Vec::new()));
    empty.set_comment("");
    let err = try_bundle(&empty.finish().unwrap().into_inner());
    assert!(err.contains("no entries"), "{err}");
}

#[test]
fn unsafe_engine_names_rejected() {
    let cfg = config_tree();
    let work = tempfile::tempdir().unwrap();
    for evil in ["../escape.txt", "/etc/passwd", "lib/../../x", "C:\\win.ini"] {
        let path = work.path().join("evil.zip");
        let mut z = ZipWriter::new(File::create(&path).unwrap());
        z.start_file("ok.txt", SimpleFileOptions::default())
            .unwrap();
        z.start_file(evil, SimpleFileOptions::default()).unwrap();
        z.write_all(b"x").unwrap();
        z.finish().unwrap();
        let out = work.path().join("out.zip");
        let err = bundle(&opts(cfg.path(), EngineArchive::JvmZip(path), out.clone()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("absolute or `..` path") && err.contains("evil.zip"),
            "{evil}: {err}"
        );
        assert!(!out.exists());
    }
    assert!(!unsafe_entry_name("lib/a..b.jar"));
    assert!(is_under_config("config/"));
    assert!(is_under_config("./config/x.yaml"));
    assert!(is_under_config("config"));
    assert!(!is_under_config("configs/x"));
    assert!(!is_under_config("lib/config/x"));
}

#[test]
fn engine_links_pointing_outside_the_zip_are_refused() {
    let cfg = config_tree();
    let work = tempfile::tempdir().unwrap();
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let cases: [Case; 4] = [
        (&[("lib/link", "/etc/passwd")], &[], "lib/link"),
        (&[("lnk", "../../../../tmp")], &["lnk/pwned.txt"], "lnk"),
        // Each hop stays inside; followed, `b` climbs out through `a -> .`.
        (&[("a", "."), ("b", "a/a/../..")], &[], "\"b\""),
        // A link that stays inside is kept, but nothing may be stored through it.
        (&[("lnk", "lib")], &["lib/x", "lnk/pwned.txt"], "beneath"),
    ];
    for (links, files, named) in cases {
        let path = work.path().join("evil.zip");
        let mut z = ZipWriter::new(File::create(&path).unwrap());
        z.start_file("ok.txt", SimpleFileOptions::default())
            .unwrap();
        for (name, target) in links {
            z.add_symlink(*name, *target, SimpleFileOptions::default())
                .unwrap();
        }
        for f in files {
            z.start_file(*f, SimpleFileOptions::default()).unwrap();
            z.write_all(b"x").unwrap();
        }
        z.finish().unwrap();
        let out = work.path().join("out.zip");
        let err = bundle(&opts(cfg.path(), EngineArchive::JvmZip(path), out.clone()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("evil.zip") && err.contains(named) && err.contains("refusing"),
            "{links:?}: {err}"
        );
        assert!(!out.exists());
        assert!(leftovers(work.path()).is_empty());
    }
    let ok = |links: &[(&str, &str)]| {
        let l: Vec<(String, String)> = links
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        escaping_link(&l, &[]).is_none()
    };
    assert!(ok(&[("bin/link", "run"), ("lib/up", "../bin/run")]));
    assert!(ok(&[("a", "."), ("b", "a/a/x")]));
    assert!(!ok(&[("l1", "l2"), ("l2", "l1/x")]), "a loop is refused");
    assert!(!ok(&[("x", "C:\\win")]));
}

#[test]
fn symlinks_to_dirs_rejected_and_own_output_skipped() {
    let cfg = config_tree();
    let work = tempfile::tempdir().unwrap();
    let engine = EngineArchive::JvmZip(engine_zip(work.path()));
    // Output inside the config dir: a second, forced run must not bundle the first zip.
    let out = cfg.path().join("lambda.zip");
    let mut o = opts(cfg.path(), engine.clone(), out.clone());
    let first = bundle(&o).unwrap();
    o.force = true;
    let second = bundle(&o).unwrap();
    assert_eq!(first.sha256, second.sha256);
    assert!(!names(&mut read_zip(&out))
        .iter()
        .any(|n| n.ends_with("lambda.zip")));

    symlink("responses", cfg.path().join("dirlink")).unwrap();
    let err = bundle(&opts(cfg.path(), engine, work.path().join("x.zip")))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dirlink") && err.contains("directory"),
        "{err}"
    );
    assert!(!work.path().join("x.zip").exists());
}

#[test]
fn empty_config_dir_still_has_config_root() {
    let cfg = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let tgz = tar_gz(work.path(), &[("imposter", &elf(8))]);
    let out = work.path().join("o.zip");
    let s = bundle(&opts(cfg.path(), EngineArchive::GoTarGz(tgz), out.clone())).unwrap();
    assert_eq!(names(&mut read_zip(&out)), ["bootstrap", "config/"]);
    assert_eq!((s.entries, s.config_files), (2, 0));
}

#[test]
fn links_resolving_outside_or_to_a_fifo_are_refused_and_nothing_is_written() {
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("secret.txt"), "host secret").unwrap();
    let cfg = host.path().join("c");
    std::fs::create_dir_all(cfg.join("sub/sub2")).unwrap();
    std::fs::write(cfg.join("a-config.yaml"), "plugin: rest\n").unwrap();
    symlink("../..", cfg.join("sub/sub2/s")).unwrap();
    symlink("sub/sub2/s/../secret.txt", cfg.join("leak.txt")).unwrap();
    let work = tempfile::tempdir().unwrap();
    let engine = EngineArchive::JvmZip(engine_zip(work.path()));
    let out = work.path().join("x.zip");
    let err = bundle(&opts(&cfg, engine.clone(), out.clone()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("leak.txt") && err.contains("resolves outside"),
        "{err}"
    );
    assert!(!out.exists());

    let cfg = tempfile::tempdir().unwrap();
    let st = std::process::Command::new("mkfifo")
        .arg(cfg.path().join("pipe"))
        .status()
        .unwrap();
    assert!(st.success());
    symlink("pipe", cfg.path().join("data.json")).unwrap();
    let mut o = opts(cfg.path(), engine, out.clone());
    o.walk.excludes = vec!["pipe".into()];
    let err = bundle(&o).unwrap_err().to_string();
    assert!(err.contains("data.json") && err.contains("fifo"), "{err}");
    assert!(!out.exists());
}
