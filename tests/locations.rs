//! A base goes to a registry once: mock images pushed to new repositories of a registry that
//! holds the base in another repository mount its layers (from where the blob-location record
//! saw them, a `--mount-from` hint, or the base's own name) instead of downloading them from the
//! base's registry and uploading them again. Bytes are counted by proxies in front of both
//! registries: what registry B received, and what was downloaded from registry A.
mod common;
use common::proxy::Proxy;
use common::*;

/// Registry A holding a base with ~2 MB of incompressible layer bytes, registry B, and a
/// counting proxy in front of each (every mockimg request goes through them).
struct World {
    _a: Registry,
    b: Registry,
    pa: Proxy,
    pb: Proxy,
    /// The base as mockimg names it (through proxy A).
    base: String,
    /// Sum of the base's layer sizes.
    base_bytes: u64,
}

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn world() -> World {
    use fixtures::{Base, Item, Platform};
    let a = Registry::start();
    let b = Registry::start();
    let heavy = |arch: &'static str, seed: u64| Platform {
        arch,
        variant: None,
        layers: vec![
            fixtures::engine_files(arch),
            vec![
                Item::Dir("opt/imposter/lib/"),
                Item::File(
                    "opt/imposter/lib/engine.jar".into(),
                    noise(1 << 20, seed),
                    0o644,
                ),
            ],
        ],
    };
    let base = Base {
        platforms: vec![heavy("amd64", 1), heavy("arm64", 2)],
        attestation: false,
        single: false,
        ..fixtures::engine_like(false)
    };
    let direct = seed(&a, &base, "engine/imposter:1", false, None);
    let base_bytes = layer_bytes(&direct);
    assert!(base_bytes > 2_000_000, "{base_bytes}");
    let pa = Proxy::start(&a.addr);
    let pb = Proxy::start(&b.addr);
    World {
        base: pa.reference("engine/imposter:1"),
        _a: a,
        b,
        pa,
        pb,
        base_bytes,
    }
}

/// Sum of the layer sizes of every platform of `reference`.
fn layer_bytes(reference: &str) -> u64 {
    let idx = raw_manifest(reference);
    let repo = reference.rsplit_once(':').unwrap().0;
    idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let man = raw_manifest(&format!("{repo}@{}", m["digest"].as_str().unwrap()));
            man["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["size"].as_u64().unwrap())
                .sum::<u64>()
        })
        .sum()
}

/// Copies the base into B's repository `repo` with skopeo (an independent client, so the
/// record knows nothing of it).
fn put_base_in_b(w: &World, repo: &str) {
    skopeo(&[
        "copy",
        "--quiet",
        "--all",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{}", w.base),
        &format!("docker://{}", w.b.reference(&format!("{repo}:1"))),
    ]);
}

/// Bytes moved by one push: received by B, downloaded from A, and the push's own counts.
struct Moved {
    to_b: u64,
    from_a: u64,
    json: serde_json::Value,
}

fn push(w: &World, env: &Env, config: &str, repo: &str, extra: &[&str]) -> Moved {
    let (up0, down0) = (w.pb.bytes_up(), w.pa.bytes_down());
    let target = w.pb.reference(&format!("{repo}:1"));
    let mut args = vec![
        "build", config, "--base", &w.base, "--push", &target, "--json",
    ];
    args.extend(extra);
    let run = env.run(&args).ok();
    let json: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    // The result is complete: skopeo reads every platform's every blob from B directly.
    let d = tempfile::tempdir().unwrap();
    skopeo(&[
        "copy",
        "--quiet",
        "--all",
        "--src-tls-verify=false",
        &format!("docker://{}", w.b.reference(&format!("{repo}:1"))),
        &format!("oci:{}:x", d.path().join("l").display()),
    ]);
    Moved {
        to_b: w.pb.bytes_up() - up0,
        from_a: w.pa.bytes_down() - down0,
        json,
    }
}

/// "About nothing": the config layer, configs and manifests, well under 5% of the base.
fn assert_no_base_bytes(w: &World, m: &Moved, what: &str) {
    let small = w.base_bytes / 20;
    assert!(
        m.to_b < small,
        "{what}: B received {} bytes (base {}): {}",
        m.to_b,
        w.base_bytes,
        m.json
    );
    assert!(
        m.from_a < small,
        "{what}: {} bytes downloaded from A (base {}): {}",
        m.from_a,
        w.base_bytes,
        m.json
    );
    assert!(
        m.json["push"]["mounted"].as_u64().unwrap() >= 4,
        "{what}: base layers mounted: {}",
        m.json
    );
}

fn record(env: &Env) -> String {
    std::fs::read_to_string(env.cache_dir().join("blob-locations")).unwrap_or_default()
}

#[test]
fn three_new_repositories_get_the_base_once_then_mount_it() {
    let w = world();
    // An earlier push by another client put the base in B/mirror/x: nothing points at it.
    put_base_in_b(&w, "mirror/x");
    let env = Env::new();
    let first = push(&w, &env, "examples/rest", "team/one", &[]);
    assert!(
        first.to_b as f64 <= 1.1 * w.base_bytes as f64,
        "one copy of the base at most: {} bytes for a {}-byte base",
        first.to_b,
        w.base_bytes
    );
    assert!(first.to_b >= w.base_bytes, "the base was copied once");
    for repo in ["team/two", "team/three"] {
        let m = push(&w, &env, "examples/rest", repo, &[]);
        assert_no_base_bytes(&w, &m, repo);
    }
    // The record says where: B's repositories, and A's, where the base was pulled from.
    let rec = record(&env);
    assert!(rec.contains(&format!("{}/team/one\n", w.pb.addr)), "{rec}");
    assert!(
        rec.contains(&format!("{}/engine/imposter\n", w.pa.addr)),
        "{rec}"
    );
}

#[test]
fn a_repository_the_record_knows_is_mounted_from_the_first_time() {
    let w = world();
    let env = Env::new();
    // An earlier mockimg push (another mock) put the base in B/mirror/x.
    push(&w, &env, "examples/soap", "mirror/x", &[]);
    for repo in ["team/one", "team/two", "team/three"] {
        let m = push(&w, &env, "examples/rest", repo, &[]);
        assert_no_base_bytes(&w, &m, repo);
    }
}

#[test]
fn mount_from_serves_a_job_without_a_cache() {
    let w = world();
    put_base_in_b(&w, "mirror/x");
    // Each CI job starts with an empty cache directory.
    let host_repo = format!("{}/mirror/x", w.pb.addr);
    for (repo, hint) in [("team/one", host_repo.as_str()), ("team/two", "mirror/x")] {
        let m = push(
            &w,
            &Env::new(),
            "examples/rest",
            repo,
            &["--mount-from", hint],
        );
        assert_no_base_bytes(&w, &m, hint);
    }
    // A hint for another registry is not used there.
    let m = push(
        &w,
        &Env::new(),
        "examples/rest",
        "team/three",
        &["--mount-from", "elsewhere.example/mirror/x"],
    );
    assert!(m.to_b >= w.base_bytes, "copied: {}", m.json);
    // A bad hint is a usage error, before anything is pushed.
    let run = Env::new().run(&[
        "build",
        "examples/rest",
        "--base",
        &w.base,
        "--push",
        &w.pb.reference("team/four:1"),
        "--mount-from",
        "Mirror/X",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--mount-from"), "{}", run.stderr);
}

#[test]
fn the_base_under_its_own_name_on_the_target_is_mounted() {
    let w = world();
    // A mirror of the base registry keeps the repository name.
    put_base_in_b(&w, "engine/imposter");
    let m = push(&w, &Env::new(), "examples/rest", "team/one", &[]);
    assert_no_base_bytes(&w, &m, "mirror name");
}

#[test]
fn a_pushed_archive_mounts_from_where_its_base_was_pulled() {
    let w = world();
    let env = Env::new();
    let tar = env.home.path().join("mocks.tar");
    env.run(&[
        "build",
        "examples/rest",
        "--base",
        &w.base,
        "--output",
        tar.to_str().unwrap(),
    ])
    .ok();
    // Pushed to the base's registry (A), the archive's base layers come from A's repository.
    let up0 = w.pa.bytes_up();
    let run = env
        .run(&[
            "push",
            tar.to_str().unwrap(),
            &w.pa.reference("team/archived:1"),
            "--json",
        ])
        .ok();
    let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let sent = w.pa.bytes_up() - up0;
    assert!(sent < w.base_bytes / 20, "{sent} bytes sent: {v}");
    assert!(v["push"]["mounted"].as_u64().unwrap() >= 4, "{v}");
}

#[test]
fn a_corrupt_or_missing_record_is_ignored() {
    let w = world();
    let env = Env::new();
    let file = env.cache_dir().join("blob-locations");
    std::fs::create_dir_all(env.cache_dir()).unwrap();
    // Garbage: binary noise, a record line cut short, names mockimg never writes.
    let mut junk = noise(3000, 9);
    junk.extend_from_slice(b"\nsha256:12 nowhere\nsha256:");
    std::fs::write(&file, &junk).unwrap();
    let first = push(&w, &env, "examples/rest", "team/one", &[]);
    assert!(first.to_b >= w.base_bytes, "nothing to mount from: copied");
    // What the push learnt was added after the garbage and is used.
    let m = push(&w, &env, "examples/rest", "team/two", &[]);
    assert_no_base_bytes(&w, &m, "after a corrupt record");

    // Missing: removed between runs; the push copies and writes a new one.
    std::fs::remove_file(&file).unwrap();
    let m = push(&w, &env, "examples/soap", "team/three", &[]);
    assert!(m.to_b >= w.base_bytes, "copied: {}", m.json);
    assert!(record(&env).contains("/team/three\n"));

    // A cache directory that cannot be created: the push works, nothing is remembered.
    let ro = Env::new().set("MOCKIMG_CACHE_DIR", "/proc/mockimg-no-such-dir");
    let m = push(&w, &ro, "examples/rest", "team/four", &[]);
    assert!(m.json["push"].is_object());
}

#[test]
fn concurrent_pushes_share_one_record() {
    let w = world();
    put_base_in_b(&w, "mirror/x");
    let env = Env::new();
    let children: Vec<_> = (0..4)
        .map(|i| {
            let mut c = env.command(env!("CARGO_BIN_EXE_mockimg"));
            c.args([
                "build",
                "examples/rest",
                "--base",
                &w.base,
                "--push",
                &w.pb.reference(&format!("team/c{i}:1")),
                "--quiet",
            ]);
            c.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let rec = record(&env);
    for line in rec.lines() {
        let (digest, loc) = line.split_once(' ').unwrap();
        assert!(
            digest.len() == 71 && digest.starts_with("sha256:") && !loc.contains(' '),
            "a whole line: {line:?}"
        );
    }
    for i in 0..4 {
        assert!(
            rec.contains(&format!("{}/team/c{i}\n", w.pb.addr)),
            "c{i}: {rec}"
        );
    }
    let m = push(&w, &env, "examples/rest", "team/after", &[]);
    assert_no_base_bytes(&w, &m, "after concurrent pushes");
}
