//! Issue 3: air-gapped export/import. Archives and layouts written by mockimg are read back by
//! independent tools (skopeo, umoci, docker load), bases come from files, and the blob cache keeps
//! a second export off the network.
mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

fn blob_name(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.strip_prefix("sha256:").unwrap())
}

fn json_of(files: &BTreeMap<String, Vec<u8>>, name: &str) -> Value {
    serde_json::from_slice(files.get(name).unwrap_or_else(|| panic!("{name} missing"))).unwrap()
}

/// A layer's uncompressed tar: docker-archives may hold layers either way.
fn gunzip(b: &[u8]) -> Vec<u8> {
    if !b.starts_with(&[0x1f, 0x8b]) {
        return b.to_vec();
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The architecture name images use for the machine running the tests.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("no fixture platform for {other}"),
    }
}

/// Layer digests of every platform of a registry image (read with skopeo).
fn layer_digests(reference: &str) -> Vec<String> {
    let idx = raw_manifest(reference);
    let repo = reference.rsplit_once(':').unwrap().0;
    let mut out = Vec::new();
    for e in idx["manifests"].as_array().unwrap() {
        let m = raw_manifest(&format!("{repo}@{}", e["digest"].as_str().unwrap()));
        for l in m["layers"].as_array().unwrap() {
            out.push(l["digest"].as_str().unwrap().to_string());
        }
    }
    out
}

/// How many times the registry served one of `digests` as a blob download.
fn blob_gets(reg: &Registry, from: usize, repo: &str, digests: &[String]) -> usize {
    reg.requests()[from..]
        .iter()
        .filter(|r| {
            digests
                .iter()
                .any(|d| *r == &format!("GET /v2/{repo}/blobs/{d}"))
        })
        .count()
}

/// Every file in the cache is stored under its own digest: nothing unverified ever lands there.
/// Returns the digests it holds.
fn cache_contents(dir: &Path) -> Vec<String> {
    let blobs = dir.join("blobs/sha256");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&blobs).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let bytes = std::fs::read(e.path()).unwrap();
        assert_eq!(
            fixtures::sha256(&bytes),
            format!("sha256:{name}"),
            "cache file {name} does not hold the blob its name says (or is a stray temp file)"
        );
        out.push(format!("sha256:{name}"));
    }
    out.sort();
    out
}

/// The one error line of a failed run (progress lines may precede it).
fn error_line(r: &Run) -> String {
    assert_eq!(r.code, 1, "{}", r.stderr);
    error_line_any(r)
}

fn error_line_any(r: &Run) -> String {
    let errors: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {}", r.stderr);
    assert_eq!(
        r.stderr.trim_end().lines().last(),
        Some(errors[0]),
        "nothing after the error: {}",
        r.stderr
    );
    errors[0].to_string()
}

fn dir_names(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The shipped engine-like base: two platforms plus an attestation manifest.
fn shipped_base() -> String {
    format!("oci:{REPO_ROOT}/testdata/engine-base:4.9.3")
}

/// Environment for runs that must not touch any network: an outgoing connection would go to a
/// dead proxy and fail the run.
fn offline(env: Env) -> Env {
    env.set("HTTPS_PROXY", "http://127.0.0.1:9")
        .set("HTTP_PROXY", "http://127.0.0.1:9")
        .set("ALL_PROXY", "http://127.0.0.1:9")
        .set("NO_PROXY", "")
}

fn assert_config_at(rootfs: &Path) {
    assert_example_at(rootfs, "rest");
}

fn assert_example_at(rootfs: &Path, example: &str) {
    let want = files(&examples(example));
    assert!(!want.is_empty());
    let got = files(&rootfs.join("opt/imposter/config"));
    for (path, bytes) in &want {
        assert_eq!(got.get(path), Some(bytes), "{path} differs or is missing");
    }
    assert!(
        rootfs.join("opt/imposter/bin/imposter").is_file(),
        "base files kept"
    );
}

/// Checks that the docker-archive view of `files` is consistent: `manifest.json` names a config
/// whose diff_ids are the hashes of its (uncompressed) layers. Returns (config digest, entry).
fn check_docker_view(files: &BTreeMap<String, Vec<u8>>) -> (String, Value) {
    let m = json_of(files, "manifest.json");
    let entries = m.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{m}");
    let e = &entries[0];
    let config_name = e["Config"].as_str().unwrap();
    let config_bytes = &files[config_name];
    let config_digest = fixtures::sha256(config_bytes);
    assert_eq!(blob_name(&config_digest), config_name);
    let config: Value = serde_json::from_slice(config_bytes).unwrap();
    let diff_ids: Vec<&str> = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    let layers: Vec<&str> = e["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(layers.len(), diff_ids.len(), "{e}");
    for (l, want) in layers.iter().zip(&diff_ids) {
        let data = files.get(*l).unwrap_or_else(|| panic!("layer {l} missing"));
        assert_eq!(
            blob_name(&fixtures::sha256(data)),
            *l,
            "layer file under its digest"
        );
        assert_eq!(fixtures::sha256(&gunzip(data)), *want, "diff_id of {l}");
    }
    (config_digest, e.clone())
}

#[test]
fn archive_is_oci_and_docker_archive_for_every_reader() {
    let reg = Registry::start();
    let env = Env::new();
    let base = seed_engine(&reg, true);
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("mocks.tar");
    let name = format!("mockimg-export-test/t{}", std::process::id());
    let tag1 = format!("{name}:1.4");
    env.build("examples/rest")
        .base(&base)
        .output(&tar)
        .tag(&tag1)
        .tag("team/other:9")
        .run()
        .ok();
    assert_eq!(dir_names(out.path()), ["mocks.tar"], "no temp file left");
    ocicheck::assert_archive(&tar);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&tar).unwrap().permissions().mode() & 0o777,
        0o644
    );

    // skopeo reads it both ways; with two names the OCI view is asked for one of them.
    let oci_ref = format!("oci-archive:{}:1.4", tar.display());
    let docker_ref = format!("docker-archive:{}", tar.display());
    let raw: Value = serde_json::from_str(&skopeo(&["inspect", "--raw", &oci_ref])).unwrap();
    assert_eq!(raw["mediaType"], fixtures::OCI_INDEX);
    assert_eq!(raw["manifests"].as_array().unwrap().len(), 2);
    let di: Value = serde_json::from_str(&skopeo(&["inspect", &docker_ref])).unwrap();
    assert_eq!(di["Architecture"], host_arch());
    assert_eq!(di["Layers"].as_array().unwrap().len(), 3);

    // The raw tar: an OCI layout naming the image, and a docker view of the host platform.
    let files = fixtures::read_tar(&tar);
    assert_eq!(json_of(&files, "oci-layout")["imageLayoutVersion"], "1.0.0");
    let index = json_of(&files, "index.json");
    let entries = index["manifests"].as_array().unwrap();
    let refs: Vec<&str> = entries
        .iter()
        .map(|e| {
            e["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(refs, ["1.4", "9"], "every --tag, in order");
    assert_eq!(entries[0]["digest"], entries[1]["digest"]);
    let top = &entries[0];
    assert_eq!(
        top["annotations"]["io.containerd.image.name"],
        format!("docker.io/{tag1}")
    );
    for (n, bytes) in &files {
        if let Some(hex) = n.strip_prefix("blobs/sha256/") {
            assert_eq!(fixtures::sha256(bytes), format!("sha256:{hex}"), "{n}");
        }
    }
    let (config_digest, entry) = check_docker_view(&files);
    assert_eq!(
        entry["RepoTags"],
        serde_json::json!([tag1, "team/other:9"]),
        "every --tag, in order"
    );
    let host_entry = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == host_arch())
        .unwrap();
    let host_manifest = json_of(&files, &blob_name(host_entry["digest"].as_str().unwrap()));
    assert_eq!(host_manifest["config"]["digest"], config_digest.as_str());
    // skopeo's docker-archive reader names layers by diff_id: the same layers, uncompressed.
    assert_eq!(
        di["Layers"],
        json_of(&files, &blob_name(&config_digest))["rootfs"]["diff_ids"]
    );

    // umoci sees the config in every platform.
    for arch in ["amd64", "arm64"] {
        let (_keep, rootfs) = unpack_from(&oci_ref, arch, false);
        assert_config_at(&rootfs);
        let stub = std::fs::read_to_string(rootfs.join("opt/imposter/bin/imposter")).unwrap();
        assert!(stub.contains(arch), "platform {arch} unpacked its own base");
    }

    // docker load takes the same file, under every name.
    let _cleanup = DockerImages(vec![tag1.clone(), "team/other:9".into()]);
    docker(&["load", "-i", tar.to_str().unwrap()]);
    let insp: Value = serde_json::from_str(&docker(&["image", "inspect", &tag1])).unwrap();
    assert_eq!(insp[0]["Id"], config_digest.as_str());
    let other: Value =
        serde_json::from_str(&docker(&["image", "inspect", "team/other:9"])).unwrap();
    assert_eq!(other[0]["Id"], insp[0]["Id"]);
    let cfg = json_of(&files, &blob_name(&config_digest));
    assert_eq!(insp[0]["RootFS"]["Layers"], cfg["rootfs"]["diff_ids"]);

    // One --platform: the docker view is that platform, whatever the host.
    let single = out.path().join("arm.tar");
    env.build("examples/rest")
        .base(&base)
        .args(["--platform", "linux/arm64"])
        .output(&single)
        .push(&reg.reference("team/arm:1"))
        .run()
        .ok();
    let files = fixtures::read_tar(&single);
    let (cd, entry) = check_docker_view(&files);
    assert_eq!(json_of(&files, &blob_name(&cd))["architecture"], "arm64");
    assert_eq!(
        entry["RepoTags"],
        serde_json::json!([format!("{}/team/arm:1", reg.addr)]),
        "--push names the image"
    );
    let di: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        &format!("docker-archive:{}", single.display()),
    ]))
    .unwrap();
    assert_eq!(di["Architecture"], "arm64");
}

#[test]
fn exported_archive_and_layout_push_to_the_same_digest_as_a_direct_push() {
    let reg = Registry::start();
    let env = Env::new();
    let base = seed_engine(&reg, true);
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("mocks.tar");
    let layout = out.path().join("layout");
    let direct = reg.reference("team/direct:1");
    let run = env
        .build("examples/rest")
        .base(&base)
        .push(&direct)
        .run()
        .ok();
    let want = digest_of(&run.stdout);
    env.build("examples/rest")
        .base(&base)
        .output(&tar)
        .oci_layout(&layout)
        .tag("team/mocks:dev")
        .run()
        .ok();

    let from_tar = reg.reference("team/fromtar:1");
    let run = env.run(&["push", tar.to_str().unwrap(), &from_tar]).ok();
    assert_eq!(digest_of(&run.stdout), want, "{}", run.stdout);
    let from_layout = reg.reference("team/fromlayout:1");
    let run = env
        .run(&[
            "push",
            &format!("oci:{}:dev", layout.display()),
            &from_layout,
        ])
        .ok();
    assert_eq!(digest_of(&run.stdout), want);
    let run = env
        .run(&[
            "push",
            &format!("oci-archive:{}", tar.display()),
            &reg.reference("team/fromtar:2"),
        ])
        .ok();
    assert_eq!(digest_of(&run.stdout), want);

    // Pushing the same archive again finds the image there and writes nothing: the tag already
    // points at it.
    let before = reg.requests().len();
    let run = env.run(&["push", tar.to_str().unwrap(), &from_tar]).ok();
    assert_eq!(digest_of(&run.stdout), want);
    let again = reg.requests()[before..].to_vec();
    assert!(
        !again.iter().any(|r| r.contains("/blobs/uploads/")),
        "{again:#?}"
    );
    assert!(!again.iter().any(|r| r.starts_with("PUT ")), "{again:#?}");
    assert!(again
        .iter()
        .any(|r| r.starts_with("HEAD /v2/team/fromtar/manifests/1")));

    // What the registry holds is byte-identical, read by skopeo.
    let want_index = raw_manifest(&direct);
    assert_eq!(raw_manifest(&from_tar), want_index);
    assert_eq!(raw_manifest(&from_layout), want_index);
    assert_eq!(
        fixtures::sha256(
            skopeo(&[
                "inspect",
                "--tls-verify=false",
                "--raw",
                &format!("docker://{from_tar}")
            ])
            .as_bytes()
        ),
        want
    );
    let (_keep, rootfs) = unpack(&from_tar, "arm64");
    assert_config_at(&rootfs);

    // A missing archive is named, with what to give instead.
    let missing = out.path().join("nope.tar");
    let e = error_line(&env.run(&["push", missing.to_str().unwrap(), &from_tar]));
    assert!(
        e.contains("nope.tar") && e.contains("does not exist"),
        "{e}"
    );
}

#[test]
fn second_export_downloads_no_layer_and_no_cache_does() {
    let reg = Registry::start();
    let env = Env::new();
    let base = seed_engine(&reg, false);
    let layers = layer_digests(&base);
    assert_eq!(layers.len(), 4);
    let out = tempfile::tempdir().unwrap();
    let export = |name: &str, extra: &[&str]| -> (PathBuf, usize) {
        let before = reg.requests().len();
        let p = out.path().join(name);
        let mut args = vec![
            "build",
            "examples/rest",
            "--base",
            &base,
            "--output",
            p.to_str().unwrap(),
        ];
        args.extend(extra);
        env.run(&args).ok();
        (p.clone(), blob_gets(&reg, before, "imposter", &layers))
    };

    let (first, gets) = export("first.tar", &[]);
    assert_eq!(
        gets,
        layers.len(),
        "first export downloads every layer once"
    );
    let cached = cache_contents(&env.cache_dir());
    for l in &layers {
        assert!(cached.contains(l), "{l} cached");
    }

    let (second, gets) = export("second.tar", &[]);
    assert_eq!(gets, 0, "second export is served from the cache");
    assert_eq!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&second).unwrap()
    );

    let (third, gets) = export("third.tar", &["--no-cache"]);
    assert_eq!(gets, layers.len(), "--no-cache downloads again");
    assert_eq!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&third).unwrap()
    );

    // --cache-dir wins over the environment, and fills the directory it names.
    let own = out.path().join("own-cache");
    let (_, gets) = export("fourth.tar", &["--cache-dir", own.to_str().unwrap()]);
    assert_eq!(gets, layers.len(), "a fresh cache dir starts empty");
    let (_, gets) = export("fifth.tar", &["--cache-dir", own.to_str().unwrap()]);
    assert_eq!(gets, 0);
    assert_eq!(cache_contents(&own), cache_contents(&env.cache_dir()));

    // Without MOCKIMG_CACHE_DIR the cache is $XDG_CACHE_HOME/mockimg, else ~/.cache/mockimg.
    let xdg = out.path().join("xdg");
    let xdg_env = Env::new()
        .set("MOCKIMG_CACHE_DIR", "")
        .set("XDG_CACHE_HOME", xdg.to_str().unwrap());
    let home_env = Env::new()
        .set("MOCKIMG_CACHE_DIR", "")
        .set("XDG_CACHE_HOME", "");
    for (e, dir) in [
        (&xdg_env, xdg.join("mockimg")),
        (&home_env, home_env.home.path().join(".cache/mockimg")),
    ] {
        let p = out.path().join("default-cache.tar");
        e.build("examples/rest").base(&base).output(&p).run().ok();
        assert_eq!(cache_contents(&dir), cached, "{}", dir.display());
    }

    // A cached blob damaged on disk (same size) is dropped and fetched again, not served.
    let victim = env.cache_dir().join(blob_name(&layers[1]));
    let mut b = std::fs::read(&victim).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0xff;
    std::fs::write(&victim, b).unwrap();
    let before = reg.requests().len();
    let (healed, gets) = export("healed.tar", &[]);
    assert_eq!(gets, 1, "only the damaged layer is downloaded again");
    assert_eq!(blob_gets(&reg, before, "imposter", &layers[1..2]), 1);
    assert_eq!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&healed).unwrap()
    );
    assert_eq!(cache_contents(&env.cache_dir()), cached, "cache repaired");

    // A cache that cannot be written is skipped, not fatal.
    let not_a_dir = out.path().join("plain-file");
    std::fs::write(&not_a_dir, b"x").unwrap();
    let (p, gets) = export(
        "uncached.tar",
        &["--cache-dir", not_a_dir.to_str().unwrap()],
    );
    assert_eq!(gets, layers.len());
    assert_eq!(std::fs::read(&first).unwrap(), std::fs::read(&p).unwrap());

    // A push-only build never reads base layers, so it neither downloads nor caches them.
    let before = reg.requests().len();
    let empty = out.path().join("unused-cache");
    env.build("examples/rest")
        .base(&base)
        .args(["--cache-dir", empty.to_str().unwrap()])
        .push(&reg.reference("team/mocks:1"))
        .run()
        .ok();
    assert_eq!(blob_gets(&reg, before, "imposter", &layers), 0);
    assert!(
        !empty.join("blobs/sha256").exists() || dir_names(&empty.join("blobs/sha256")).is_empty()
    );
}

/// (inode, mtime) of every blob in a layout.
fn blob_stamps(layout: &Path) -> BTreeMap<String, (u64, std::time::SystemTime)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                (m.ino(), m.modified().unwrap()),
            )
        })
        .collect()
}

#[test]
fn oci_layout_gains_tags_without_rewriting_blobs() {
    let env = offline(Env::new());
    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("layout");
    let base = shipped_base();
    let build = |tag: &str, config: &str| {
        let mut args = vec![
            "build",
            config,
            "--base",
            &base,
            "--oci-layout",
            layout.to_str().unwrap(),
        ];
        // "A+B" gives two --tag flags: a layout records every one of them.
        for t in tag.split('+') {
            args.extend(["--tag", t]);
        }
        env.run(&args).ok().stdout.trim().to_string()
    };
    let d1 = build("team/mocks:a", "examples/rest");
    let stamps = blob_stamps(&layout);
    let d2 = build("team/mocks:b", "examples/rest");
    assert_eq!(d1, d2, "same build, same digest");
    assert_eq!(blob_stamps(&layout), stamps, "no blob rewritten or added");

    let d3 = build("team/mocks:soap+team/mocks:soap-latest", "examples/soap");
    assert_ne!(d3, d1);
    let after = blob_stamps(&layout);
    ocicheck::assert_layout(&layout);
    for (name, stamp) in &stamps {
        assert_eq!(after.get(name), Some(stamp), "{name} untouched");
    }
    assert!(
        after.len() > stamps.len(),
        "the new image's blobs were added"
    );

    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let tags: BTreeMap<String, String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        tags,
        BTreeMap::from([
            ("a".to_string(), d1.clone()),
            ("b".to_string(), d1.clone()),
            ("soap".to_string(), d3.clone()),
            ("soap-latest".to_string(), d3.clone())
        ])
    );
    // Re-tagging "a" moves it rather than listing it twice.
    let d4 = build("team/mocks:a", "examples/soap");
    assert_eq!(d4, d3);
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 4);

    for (tag, digest) in [("a", &d3), ("b", &d1)] {
        let raw = skopeo(&[
            "inspect",
            "--raw",
            &format!("oci:{}:{tag}", layout.display()),
        ]);
        assert_eq!(&fixtures::sha256(raw.as_bytes()), digest);
    }
    let (_keep, rootfs) = unpack_from(&format!("oci:{}:b", layout.display()), "amd64", false);
    assert_config_at(&rootfs);
    // Readable by other users, like the archive.
    use std::os::unix::fs::PermissionsExt;
    for n in dir_names(&layout.join("blobs/sha256")) {
        let mode = std::fs::metadata(layout.join("blobs/sha256").join(&n))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644, "{n}");
    }
    let mode = std::fs::metadata(layout.join("index.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);

    // Adding the same image untagged keeps its tags and lists it once.
    env.build("examples/rest")
        .base(&base)
        .oci_layout(&layout)
        .run()
        .ok();
    let again: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(again, index, "index unchanged");

    let leftovers: Vec<String> = dir_names(&layout)
        .into_iter()
        .filter(|n| !["blobs", "index.json", "oci-layout"].contains(&n.as_str()))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn bases_from_files_build_offline_to_files_and_registries() {
    let reg = Registry::start();
    let env = Env::new();
    let work = tempfile::tempdir().unwrap();
    let oci_archive = work.path().join("base-oci.tar");
    skopeo(&[
        "copy",
        "--quiet",
        "--all",
        &shipped_base(),
        &format!("oci-archive:{}:4.9.3", oci_archive.display()),
    ]);
    let docker_archive = work.path().join("base-docker.tar");
    skopeo(&[
        "--override-arch",
        "amd64",
        "copy",
        "--quiet",
        &shipped_base(),
        &format!("docker-archive:{}:engine:4.9.3", docker_archive.display()),
    ]);

    let bases = [
        ("oci", shipped_base(), 2),
        (
            "ociarchive",
            format!("oci-archive:{}:4.9.3", oci_archive.display()),
            2,
        ),
        (
            "ociarchive-untagged",
            format!("oci-archive:{}", oci_archive.display()),
            2,
        ),
        (
            "dockerarchive",
            format!("docker-archive:{}", docker_archive.display()),
            1,
        ),
        (
            "dockerarchive-named",
            format!("docker-archive:{}:engine:4.9.3", docker_archive.display()),
            1,
        ),
        // mockimg's own output read as a docker-archive: gzip layers, not plain tars.
        (
            "own-output",
            format!(
                "docker-archive:{}",
                work.path().join("oci-out.tar").display()
            ),
            1,
        ),
    ];
    let offline_env = offline(Env::new());
    for (label, base, platforms) in bases {
        let tar = work.path().join(format!("{label}-out.tar"));
        let run = offline_env
            .build("examples/rest")
            .base(&base)
            .output(&tar)
            .args(["--json"])
            .run()
            .ok();
        let o: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(
            o["platforms"].as_array().unwrap().len(),
            platforms,
            "{label}"
        );
        let file_digest = o["digest"].as_str().unwrap().to_string();
        ocicheck::assert_archive(&tar);
        let raw = skopeo(&[
            "inspect",
            "--raw",
            &format!("oci-archive:{}", tar.display()),
        ]);
        assert_eq!(fixtures::sha256(raw.as_bytes()), file_digest, "{label}");
        skopeo(&["inspect", &format!("docker-archive:{}", tar.display())]);
        check_docker_view(&fixtures::read_tar(&tar));
        let (_keep, rootfs) =
            unpack_from(&format!("oci-archive:{}", tar.display()), "amd64", false);
        assert_config_at(&rootfs);

        // To a registry: nothing is downloaded from anywhere, every base blob is uploaded.
        let before = reg.requests().len();
        let target = reg.reference(&format!("team/{label}:1"));
        let run = env
            .build("examples/rest")
            .base(&base)
            .push(&target)
            .run()
            .ok();
        assert_eq!(digest_of(&run.stdout), file_digest, "{label}: same image");
        let reqs = reg.requests()[before..].to_vec();
        assert!(
            !reqs
                .iter()
                .any(|r| r.starts_with("GET ") && r.contains("/blobs/")),
            "{label}: {reqs:#?}"
        );
        let (_keep, rootfs) = unpack(&target, "amd64");
        assert_config_at(&rootfs);
    }
    assert!(
        !env.cache_dir().join("blobs/sha256").exists()
            || dir_names(&env.cache_dir().join("blobs/sha256")).is_empty(),
        "local bases are not copied into the cache"
    );
}

#[test]
fn failures_leave_nothing_behind() {
    let env = offline(Env::new());
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let tar = out.join("mocks.tar");

    // A layout that lacks one of its layer blobs.
    let layout = work.path().join("incomplete");
    let root = fixtures::write_layout(&layout, &fixtures::engine_like(false), "4.9.3");
    let files = |dir: &Path| -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(dir.join("blobs/sha256"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    format!("sha256:{}", e.file_name().to_string_lossy()),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect()
    };
    let idx: Value = serde_json::from_slice(&files(&layout)[&root]).unwrap();
    let amd = idx["manifests"][0]["digest"].as_str().unwrap();
    let m: Value = serde_json::from_slice(&files(&layout)[amd]).unwrap();
    let victim = m["layers"][1]["digest"].as_str().unwrap().to_string();
    std::fs::remove_file(layout.join(blob_name(&victim))).unwrap();
    let base = format!("oci:{}:4.9.3", layout.display());
    let layout_out = work.path().join("layout-out");
    for sink in [
        vec!["--output", tar.to_str().unwrap()],
        vec!["--oci-layout", layout_out.to_str().unwrap()],
    ] {
        let mut args = vec!["build", "examples/rest", "--base", &base];
        args.extend(sink);
        let e = error_line(&env.run(&args));
        assert!(e.contains(&victim), "names the blob: {e}");
        assert!(e.contains("incomplete"), "names the layout: {e}");
    }
    assert!(dir_names(&out).is_empty(), "no output, no temp file");
    assert!(
        !layout_out.exists(),
        "a layout the failed build created is removed"
    );
    let empty_dir = work.path().join("empty");
    std::fs::create_dir(&empty_dir).unwrap();
    let e = error_line(
        &env.build("examples/rest")
            .base(&base)
            .oci_layout(&empty_dir)
            .run(),
    );
    assert!(e.contains(&victim), "{e}");
    assert!(
        dir_names(&empty_dir).is_empty(),
        "an empty directory stays empty"
    );

    // A directory that is something else is not turned into a layout.
    let e = error_line(
        &env.build("examples/rest")
            .base(&shipped_base())
            .oci_layout(&examples("soap"))
            .run(),
    );
    assert!(e.contains("not an OCI image layout"), "{e}");
    assert!(!examples("soap").join("oci-layout").exists());
    assert!(!examples("soap").join("blobs").exists());
    // An existing layout (here sharing all but the missing layer with the incomplete base)
    // keeps what it had: no index change, no temp file.
    let existing = work.path().join("existing");
    let mut other = fixtures::engine_like(false);
    other.platforms[0].layers[1] = vec![fixtures::Item::File(
        "other.txt".into(),
        b"other".to_vec(),
        0o644,
    )];
    let other_dir = work.path().join("other");
    fixtures::write_layout(&other_dir, &other, "1");
    env.build("examples/soap")
        .base(&format!("oci:{}:1", other_dir.display()))
        .oci_layout(&existing)
        .tag("x:soap")
        .run()
        .ok();
    let before = files(&existing);
    let index_before = std::fs::read(existing.join("index.json")).unwrap();
    let e = error_line(
        &env.build("examples/rest")
            .base(&base)
            .oci_layout(&existing)
            .tag("x:rest")
            .run(),
    );
    assert!(e.contains(&victim), "{e}");
    assert_eq!(
        std::fs::read(existing.join("index.json")).unwrap(),
        index_before
    );
    for (digest, bytes) in files(&existing) {
        assert_eq!(fixtures::sha256(&bytes), digest, "only verified blobs");
    }
    assert!(!files(&existing).contains_key(&victim));
    for (digest, bytes) in &before {
        assert_eq!(files(&existing).get(digest), Some(bytes), "{digest} kept");
    }
    assert_eq!(
        dir_names(&existing),
        ["blobs", "index.json", "oci-layout"],
        "no temp file"
    );

    // A layer whose bytes were altered (same size): a digest error naming it, nothing written.
    let corrupt = work.path().join("corrupt");
    let root = fixtures::write_layout(&corrupt, &fixtures::engine_like(false), "4.9.3");
    let idx: Value = serde_json::from_slice(&files(&corrupt)[&root]).unwrap();
    let amd = idx["manifests"][0]["digest"].as_str().unwrap();
    let m: Value = serde_json::from_slice(&files(&corrupt)[amd]).unwrap();
    let bad = m["layers"][0]["digest"].as_str().unwrap().to_string();
    let p = corrupt.join(blob_name(&bad));
    let mut b = std::fs::read(&p).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0xff;
    std::fs::write(&p, b).unwrap();
    let r = env
        .build("examples/rest")
        .base(&format!("oci:{}:4.9.3", corrupt.display()))
        .output(&tar)
        .run();
    let e = error_line(&r);
    assert!(e.contains(&bad), "{e}");
    assert!(dir_names(&out).is_empty(), "no output, no temp file");
    if env.cache_dir().join("blobs/sha256").exists() {
        assert!(!cache_contents(&env.cache_dir()).contains(&bad));
    }

    // A docker-archive whose (uncompressed) layer was altered: caught while copying it.
    let da = work.path().join("docker.tar");
    skopeo(&[
        "--override-arch",
        "amd64",
        "copy",
        "--quiet",
        &shipped_base(),
        &format!("docker-archive:{}:engine:4.9.3", da.display()),
    ]);
    let manifest: Value =
        serde_json::from_slice(&fixtures::read_tar(&da)["manifest.json"]).unwrap();
    let layer_entry = manifest[0]["Layers"][1].as_str().unwrap().to_string();
    let cfg: Value =
        serde_json::from_slice(&fixtures::read_tar(&da)[manifest[0]["Config"].as_str().unwrap()])
            .unwrap();
    let diff_id = cfg["rootfs"]["diff_ids"][1].as_str().unwrap().to_string();
    let offset = {
        let mut ar = tar::Archive::new(std::fs::File::open(&da).unwrap());
        let e = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap().to_str() == Some(layer_entry.as_str()))
            .unwrap();
        (e.raw_file_position() + e.size() / 2) as usize
    };
    let mut bytes = std::fs::read(&da).unwrap();
    bytes[offset] ^= 0xff;
    std::fs::write(&da, bytes).unwrap();
    for sink in [
        vec!["--output", tar.to_str().unwrap()],
        vec!["--oci-layout", layout_out.to_str().unwrap()],
    ] {
        let base = format!("docker-archive:{}", da.display());
        let mut args = vec!["build", "examples/rest", "--base", &base];
        args.extend(sink);
        let e = error_line(&env.run(&args));
        assert!(e.contains(&diff_id) && e.contains("mismatch"), "{e}");
    }
    assert!(dir_names(&out).is_empty(), "no output, no temp file");
    assert!(!layout_out.exists());

    // --output into a directory that does not exist.
    let nowhere = work.path().join("missing/dir/mocks.tar");
    let r = env
        .build("examples/rest")
        .base(&shipped_base())
        .output(&nowhere)
        .run();
    let e = error_line(&r);
    assert!(
        e.contains("missing/dir") && e.contains("does not exist"),
        "{e}"
    );
    assert!(!work.path().join("missing").exists());

    // --output naming an existing directory.
    let e = error_line(
        &env.build("examples/rest")
            .base(&shipped_base())
            .output(&out)
            .run(),
    );
    assert!(e.contains("is a directory"), "{e}");
    assert!(dir_names(&out).is_empty(), "no temp file");
}

#[test]
fn corrupt_registry_blob_never_enters_the_cache() {
    let reg = Registry::start();
    let env = Env::new();
    let base = seed_engine(&reg, false);
    let layers = layer_digests(&base);
    // The registry's filesystem storage serves what is on disk without checking it.
    let bad = &layers[0];
    let hex = bad.strip_prefix("sha256:").unwrap();
    let data = reg
        .dir
        .path()
        .join("data/docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    let mut b = std::fs::read(&data).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0xff;
    std::fs::write(&data, b).unwrap();

    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("mocks.tar");
    let r = env.build("examples/rest").base(&base).output(&tar).run();
    let e = error_line(&r);
    assert!(e.contains(bad.as_str()), "{e}");
    assert!(dir_names(out.path()).is_empty(), "no output, no temp file");
    let cached = cache_contents(&env.cache_dir());
    assert!(!cached.contains(bad), "the corrupt blob was not cached");
}

#[test]
fn inspect_reads_registries_archives_and_layouts() {
    let reg = Registry::start();
    let env = Env::new();
    let base = seed_engine(&reg, true);
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("mocks.tar");
    let layout = out.path().join("layout");
    let pushed = reg.reference("team/mocks:1.4");
    let run = env
        .build("examples/rest")
        .base(&base)
        .push(&pushed)
        .output(&tar)
        .oci_layout(&layout)
        .run()
        .ok();
    let digest = digest_of(&run.stdout);
    let index = raw_manifest(&pushed);

    let refs = [
        pushed.clone(),
        format!("oci-archive:{}", tar.display()),
        tar.display().to_string(),
        format!("oci:{}:1.4", layout.display()),
    ];
    for r in &refs {
        let j = env.run(&["inspect", r, "--json"]).ok();
        let j: Value = serde_json::from_str(&j.stdout).unwrap();
        assert_eq!(j["digest"], digest.as_str(), "{r}");
        assert_eq!(j["media_type"], fixtures::OCI_INDEX, "{r}");
        let imgs = j["images"].as_array().unwrap();
        let platforms: Vec<&str> = imgs
            .iter()
            .map(|i| i["platform"].as_str().unwrap())
            .collect();
        assert_eq!(platforms, ["linux/amd64", "linux/arm64/v8"], "{r}");
        let plain = env.run(&["inspect", r]).ok().stdout;
        assert!(plain.contains(&digest), "{r}: {plain}");
        for (img, entry) in imgs.iter().zip(index["manifests"].as_array().unwrap()) {
            assert_eq!(img["digest"], entry["digest"], "{r}");
            let m = raw_manifest(&format!(
                "{}/team/mocks@{}",
                reg.addr,
                entry["digest"].as_str().unwrap()
            ));
            let want: Vec<Value> = m["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    serde_json::json!({"digest": l["digest"], "size": l["size"], "media_type": l["mediaType"]})
                })
                .collect();
            assert_eq!(img["layers"], Value::Array(want), "{r}");
            // The JVM core image's run settings (tests/common/fixtures.rs cites the Dockerfiles).
            assert_eq!(img["user"], "imposter");
            assert_eq!(img["cmd"], serde_json::json!(fixtures::JVM_CORE_CMD));
            assert_eq!(
                img["entrypoint"],
                serde_json::json!(fixtures::JVM_ENTRYPOINT)
            );
            assert!(img["env"].as_array().unwrap().contains(&serde_json::json!(
                "IMPOSTER_PLUGIN_DIR=/opt/imposter/plugins"
            )));
            assert!(plain.contains(&format!("platform: {}", img["platform"].as_str().unwrap())));
            for l in m["layers"].as_array().unwrap() {
                assert!(
                    plain.contains(l["digest"].as_str().unwrap()),
                    "{r}: {plain}"
                );
            }
        }
        assert!(
            plain.contains(&format!(
                "entrypoint: {}  cmd: {}  user: imposter  workdir: -",
                serde_json::json!(fixtures::JVM_ENTRYPOINT),
                serde_json::json!(fixtures::JVM_CORE_CMD)
            )),
            "{plain}"
        );
        assert!(plain.contains("IMPOSTER_PLUGIN_DIR"), "{plain}");
    }

    // A docker-archive (single image, synthesised Docker manifest).
    let da = out.path().join("docker.tar");
    skopeo(&[
        "--override-arch",
        "arm64",
        "copy",
        "--quiet",
        &format!("oci-archive:{}", tar.display()),
        &format!("docker-archive:{}:team/mocks:1.4", da.display()),
    ]);
    let j = env
        .run(&[
            "inspect",
            &format!("docker-archive:{}", da.display()),
            "--json",
        ])
        .ok();
    let j: Value = serde_json::from_str(&j.stdout).unwrap();
    let imgs = j["images"].as_array().unwrap();
    assert_eq!(imgs.len(), 1);
    assert_eq!(imgs[0]["platform"], "linux/arm64/v8");
    assert_eq!(imgs[0]["layers"].as_array().unwrap().len(), 3);

    let r = env.run(&["inspect", &format!("oci:{}:nope", layout.display())]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("nope") && r.stderr.contains("1.4"),
        "{}",
        r.stderr
    );
}

fn docker(args: &[&str]) -> String {
    let o = std::process::Command::new("docker")
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Removes the named docker images when the test ends, passed or not.
struct DockerImages(Vec<String>);
impl Drop for DockerImages {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = std::process::Command::new("docker")
                .args(["rmi", "-f", n])
                .output();
        }
    }
}

#[test]
fn docker_save_output_is_a_base() {
    let env = offline(Env::new());
    let out = tempfile::tempdir().unwrap();
    let id = std::process::id();
    let amd = format!("mockimg-export-test/save-amd{id}:1");
    let arm = format!("mockimg-export-test/save-arm{id}:1");
    let _cleanup = DockerImages(vec![amd.clone(), arm.clone()]);
    for (name, platform, file) in [
        (&amd, "linux/amd64", "amd.tar"),
        (&arm, "linux/arm64", "arm.tar"),
    ] {
        let p = out.path().join(file);
        env.build("examples/rest")
            .base(&shipped_base())
            .args(["--platform", platform])
            .output(&p)
            .tag(name)
            .run()
            .ok();
        docker(&["load", "-i", p.to_str().unwrap()]);
    }
    let one = out.path().join("one.tar");
    let two = out.path().join("two.tar");
    docker(&["save", "-o", one.to_str().unwrap(), &amd]);
    docker(&["save", "-o", two.to_str().unwrap(), &amd, &arm]);
    let amd_files = fixtures::read_tar(&out.path().join("amd.tar"));
    let (amd_cd, _) = check_docker_view(&amd_files);
    let amd_ids = json_of(&amd_files, &blob_name(&amd_cd))["rootfs"]["diff_ids"].clone();

    // docker's own archive as a base: its layers are kept and one is added.
    let rebuilt = out.path().join("rebuilt.tar");
    env.build("examples/soap")
        .base(&format!("docker-archive:{}", one.display()))
        .output(&rebuilt)
        .run()
        .ok();
    let rfiles = fixtures::read_tar(&rebuilt);
    let (cd, _) = check_docker_view(&rfiles);
    let ids = json_of(&rfiles, &blob_name(&cd))["rootfs"]["diff_ids"].clone();
    let (base_ids, new_ids) = (amd_ids.as_array().unwrap(), ids.as_array().unwrap());
    assert_eq!(new_ids.len(), base_ids.len() + 1);
    assert_eq!(
        &new_ids[..base_ids.len()],
        &base_ids[..],
        "docker's layers kept"
    );
    let (_keep, rootfs) = unpack_from(
        &format!("oci-archive:{}", rebuilt.display()),
        "amd64",
        false,
    );
    assert_example_at(&rootfs, "soap");

    // A bare path: read as OCI when docker wrote an index.json (Docker 25+), else docker-archive.
    let j = env.run(&["inspect", one.to_str().unwrap(), "--json"]).ok();
    let j: Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(j["images"][0]["layers"].as_array().unwrap().len(), 3);
    assert_eq!(j["images"][0]["user"], "imposter");
    let transport = if fixtures::read_tar(&one).contains_key("index.json") {
        "oci-archive:"
    } else {
        "docker-archive:"
    };
    assert!(
        j["reference"].as_str().unwrap().starts_with(transport),
        "{}",
        j["reference"]
    );

    // Two images in one archive: the name picks one; without it, a usage error lists them.
    let r = env.run(&["inspect", &format!("docker-archive:{}", two.display())]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let e = error_line_any(&r);
    assert!(
        e.contains("2 images") && e.contains(&amd) && e.contains(&arm),
        "{e}"
    );
    let j = env
        .run(&[
            "inspect",
            &format!("docker-archive:{}:{arm}", two.display()),
            "--json",
        ])
        .ok();
    let j: Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(j["images"][0]["platform"], "linux/arm64/v8");
    let j = env
        .run(&[
            "inspect",
            &format!("docker-archive:{}:docker.io/{amd}", two.display()),
            "--json",
        ])
        .ok();
    let j: Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(j["images"][0]["platform"], "linux/amd64");
    let r = env.run(&[
        "inspect",
        &format!("docker-archive:{}:nope:1", two.display()),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(error_line_any(&r).contains("nope:1"), "{}", r.stderr);
}

#[test]
fn docker_schema2_registry_base_exports_and_pushes_back() {
    let reg = Registry::start();
    let env = Env::new();
    let mut single = fixtures::engine_like(false);
    single.single = true;
    let base = seed(&reg, &single, "imposter:single", true, None);
    assert_eq!(
        raw_manifest(&base)["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("mocks.tar");
    let layout = out.path().join("layout");
    let before = reg.requests().len();
    let layers: Vec<String> = raw_manifest(&base)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    let run = env
        .build("examples/rest")
        .base(&base)
        .output(&tar)
        .oci_layout(&layout)
        .tag("team/mocks:1")
        .run()
        .ok();
    let digest = run.stdout.trim().to_string();
    ocicheck::assert_archive(&tar);
    ocicheck::assert_layout(&layout);
    // Two file sinks, one download: the second sink reads the cache the first one filled.
    assert_eq!(blob_gets(&reg, before, "imposter", &layers), layers.len());

    let oci_ref = format!("oci-archive:{}", tar.display());
    let raw = skopeo(&["inspect", "--raw", &oci_ref]);
    assert_eq!(fixtures::sha256(raw.as_bytes()), digest);
    // An OCI archive holds OCI media types (issue 14): the Docker base is re-described, its
    // config and layer bytes unchanged.
    let m: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(m["mediaType"], fixtures::OCI_MANIFEST);
    assert_eq!(m["config"]["mediaType"], fixtures::OCI_CONFIG);
    for l in m["layers"].as_array().unwrap() {
        assert_eq!(l["mediaType"], fixtures::OCI_LAYER, "{l}");
    }
    let kept: Vec<&str> = m["layers"].as_array().unwrap()[..layers.len()]
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    assert_eq!(kept, layers, "base layers are the same blobs");
    check_docker_view(&fixtures::read_tar(&tar));
    let (_keep, rootfs) = unpack_from(&oci_ref, "amd64", false);
    assert_config_at(&rootfs);

    let target = reg.reference("team/back:1");
    let run = env
        .run(&["push", &format!("oci:{}:1", layout.display()), &target])
        .ok();
    assert_eq!(digest_of(&run.stdout), digest);
    let pushed = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{target}"),
    ]);
    assert_eq!(
        pushed, raw,
        "the registry holds the exported manifest byte for byte"
    );
    let (_keep, rootfs) = unpack(&target, "amd64");
    assert_config_at(&rootfs);
}

#[test]
fn layout_missing_a_whole_platform_builds_the_platforms_it_has() {
    let env = offline(Env::new());
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("partial");
    let root = fixtures::write_layout(&layout, &fixtures::engine_like(true), "4.9.3");
    let idx: Value =
        serde_json::from_slice(&std::fs::read(layout.join(blob_name(&root))).unwrap()).unwrap();
    let entries = idx["manifests"].as_array().unwrap().clone();
    let arm = entries[1]["digest"].as_str().unwrap();
    assert_eq!(entries[1]["platform"]["architecture"], "arm64");
    // What docker save of a one-platform pull looks like: the index, one platform's blobs.
    std::fs::remove_file(layout.join(blob_name(arm))).unwrap();
    let base = format!("oci:{}:4.9.3", layout.display());
    let tar = work.path().join("mocks.tar");
    let run = env
        .build("examples/rest")
        .base(&base)
        .output(&tar)
        .args(["--json"])
        .run()
        .ok();
    assert!(
        run.stderr.contains("leaving out platform linux/arm64/v8"),
        "{}",
        run.stderr
    );
    let o: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(o["platforms"], serde_json::json!(["linux/amd64"]));
    let raw: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}", tar.display()),
    ]))
    .unwrap();
    assert_eq!(raw["manifests"].as_array().unwrap().len(), 1);
    let (_keep, rootfs) = unpack_from(&format!("oci-archive:{}", tar.display()), "amd64", false);
    assert_config_at(&rootfs);

    // Asking for the platform that is not there is a usage error naming what there is.
    let r = env
        .build("examples/rest")
        .base(&base)
        .args(["--platform", "linux/arm64"])
        .output(&tar)
        .run();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(error_line_any(&r).contains("linux/amd64"), "{}", r.stderr);

    // With no platform left there is nothing to build on.
    let amd = entries[0]["digest"].as_str().unwrap();
    std::fs::remove_file(layout.join(blob_name(amd))).unwrap();
    let e = error_line(&env.run(&["inspect", &base]));
    assert!(e.contains("holds none of the images"), "{e}");
}

#[test]
fn a_failed_push_leaves_no_archive_or_layout_behind() {
    let env = offline(Env::new());
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("f.tar");
    let layout = out.path().join("layout");
    // Port 1: below the ephemeral range every test server binds in, so nobody listens there
    // (a port from free_port could be taken by another test's registry meanwhile).
    let unreachable = "127.0.0.1:1/team/mocks:1".to_string();
    let run = env
        .build("examples/rest")
        .base("oci:testdata/engine-base:4.9.3")
        .tag("team/mocks:2")
        .push(&unreachable)
        .output(&tar)
        .oci_layout(&layout)
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        dir_names(out.path()),
        Vec::<String>::new(),
        "nothing written, no temp file left"
    );
}

#[test]
fn every_name_is_recorded_in_command_line_order_even_when_tags_coincide() {
    let reg = Registry::start();
    let env = Env::new();
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("f.tar");
    let layout = out.path().join("layout");
    let pushed = reg.reference("team/pushed:2");
    let run = env
        .build("examples/rest")
        .base("oci:testdata/engine-base:4.9.3")
        .tag("team/first:1")
        .push(&pushed)
        .tag("team/third:3")
        .output(&tar)
        .oci_layout(&layout)
        .args(["--json"])
        .run()
        .ok();
    let o: Value = serde_json::from_str(&run.stdout).unwrap();
    let d = o["digest"].as_str().unwrap();
    assert_eq!(
        o["references"],
        serde_json::json!([
            format!("docker.io/team/first@{d}"),
            format!("{}/team/pushed@{d}", reg.addr),
            format!("docker.io/team/third@{d}"),
        ])
    );
    let files = fixtures::read_tar(&tar);
    let layout_index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    for index in [json_of(&files, "index.json"), layout_index] {
        let refs: Vec<&str> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(refs, ["1", "2", "3"]);
    }
    let manifest = json_of(&files, "manifest.json");
    assert_eq!(
        manifest[0]["RepoTags"],
        serde_json::json!([
            "team/first:1",
            format!("{}/team/pushed:2", reg.addr),
            "team/third:3"
        ])
    );
    skopeo(&["inspect", &format!("oci-archive:{}:2", tar.display())]);

    // Names whose tags coincide (team/a:1, other/c:1, REG/mocks/app:1) all name the one image:
    // one entry each, ref name "1" three times, every name in RepoTags.
    let shared = out.path().join("shared.tar");
    let shared_layout = out.path().join("shared");
    let app = reg.reference("mocks/app:1");
    let run = env
        .build("examples/rest")
        .base("oci:testdata/engine-base:4.9.3")
        .push(&app)
        .tag("team/a:1")
        .tag("other/c:1")
        .output(&shared)
        .oci_layout(&shared_layout)
        .args(["--json"])
        .run()
        .ok();
    let d = serde_json::from_str::<Value>(&run.stdout).unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let files = fixtures::read_tar(&shared);
    let layout_index: Value =
        serde_json::from_slice(&std::fs::read(shared_layout.join("index.json")).unwrap()).unwrap();
    for index in [json_of(&files, "index.json"), layout_index] {
        let entries: Vec<(&str, &str, &str)> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let a = &e["annotations"];
                (
                    a["io.containerd.image.name"].as_str().unwrap(),
                    a["org.opencontainers.image.ref.name"].as_str().unwrap(),
                    e["digest"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            [
                (app.as_str(), "1", d.as_str()),
                ("docker.io/team/a:1", "1", d.as_str()),
                ("docker.io/other/c:1", "1", d.as_str()),
            ]
        );
    }
    assert_eq!(
        json_of(&files, "manifest.json")[0]["RepoTags"],
        serde_json::json!([app, "team/a:1", "other/c:1"])
    );
    ocicheck::assert_archive(&shared);
    ocicheck::assert_layout(&shared_layout);
    // Read back by the shared tag, and with no tag at all (one image, whatever its names).
    let copied = out.path().join("copied");
    skopeo(&[
        "copy",
        "--quiet",
        "--all",
        &format!("oci-archive:{}:1", shared.display()),
        &format!("oci:{}:1", copied.display()),
    ]);
    let raw = skopeo(&["inspect", "--raw", &format!("oci:{}:1", copied.display())]);
    assert_eq!(fixtures::sha256(raw.as_bytes()), d);
    for (source, target) in [
        (shared.display().to_string(), "team/fromshared:1"),
        (
            format!("oci-archive:{}:1", shared.display()),
            "team/fromshared:2",
        ),
        (
            format!("oci:{}", shared_layout.display()),
            "team/fromshared:3",
        ),
    ] {
        let run = env
            .run(&["push", &source, &reg.reference(target), "--json"])
            .ok();
        let o: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(o["digest"], d.as_str(), "{source}");
    }
}
