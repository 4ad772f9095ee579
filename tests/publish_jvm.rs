//! `publish` to `s3://` for the JVM engine, against a real S3 implementation (moto): what the
//! engine's S3 loader would not load as published is refused (`--force` publishes anyway), and
//! two publishes to one prefix at once never leave it mixed.
mod common;
use common::moto::Moto;
use common::*;
use sha2::{Digest, Sha256};
use std::path::Path;

const BUCKET: &str = "mocks";
const RECORD: &str = ".mockimg-publish.json";

/// The REST example plus `extra` files under `data/`.
fn tree(extra: &[(&str, &[u8])]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (rel, bytes) in files(&examples("rest")) {
        let to = d.path().join(&rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, bytes).unwrap();
    }
    std::fs::create_dir_all(d.path().join("data")).unwrap();
    for (rel, bytes) in extra {
        std::fs::write(d.path().join("data").join(rel), bytes).unwrap();
    }
    d
}

fn publish(env: &Env, dir: &Path, to: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "publish",
        dir.to_str().unwrap(),
        "--to",
        to,
        "--engine",
        "docker",
    ];
    args.extend_from_slice(extra);
    env.run(&args)
}

fn one_line_refusal(r: &Run, parts: &[&str]) {
    assert_eq!(r.code, 1, "{}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.contains(" WARN ")).collect();
    assert_eq!(lines.len(), 1, "{}", r.stderr);
    for p in parts.iter().chain(&["JVM engine's S3 loader", "--force"]) {
        assert!(lines[0].contains(p), "{p}: {}", r.stderr);
    }
}

fn keys_under(m: &Moto, prefix: &str) -> Vec<String> {
    m.keys(BUCKET)
        .into_iter()
        .filter_map(|k| k.strip_prefix(&format!("{prefix}/")).map(str::to_string))
        .collect()
}

#[test]
fn a_sibling_prefix_sharing_the_string_is_refused_and_force_publishes() {
    let m = Moto::start();
    m.create_bucket(BUCKET);
    m.put(BUCKET, "team/pet-v2/a-config.yaml", b"plugin: rest\n");
    let env = m.env(Env::new());
    let d = tree(&[]);
    let r = publish(&env, d.path(), "s3://mocks/team/pet/", &[]);
    one_line_refusal(
        &r,
        &["s3://mocks/team/pet", "team/pet-v2/", "string prefix"],
    );
    assert!(keys_under(&m, "team/pet").is_empty(), "nothing uploaded");
    let r = publish(&env, d.path(), "s3://mocks/team/pet", &["--force"]).ok();
    assert!(r.stderr.contains("team/pet-v2/"), "warned: {}", r.stderr);
    assert!(keys_under(&m, "team/pet").contains(&RECORD.to_string()));
    // A key under a sibling prefix that does not start with the same string is no concern.
    let r = publish(&env, d.path(), "s3://mocks/team/pet-v2/x", &[]).ok();
    assert!(!r.stderr.contains("would not load"), "{}", r.stderr);
}

#[test]
fn more_than_a_thousand_objects_after_the_publish_are_refused_and_force_publishes() {
    let m = Moto::start();
    m.create_bucket(BUCKET);
    let names: Vec<String> = (0..1000).map(|i| format!("f{i:04}.txt")).collect();
    let extra: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    let d = tree(&extra);
    let env = m.env(Env::new());
    let r = publish(&env, d.path(), "s3://mocks/big", &[]);
    let total = files(d.path()).len() + 1;
    one_line_refusal(&r, &[&format!("would hold {total}"), "1000 objects"]);
    assert!(keys_under(&m, "big").is_empty(), "nothing uploaded");
    publish(&env, d.path(), "s3://mocks/big", &["--force"]).ok();
    assert!(m.get(BUCKET, &format!("big/{RECORD}")).is_some());
}

#[test]
fn a_file_that_is_not_utf8_is_refused_and_line_break_changes_are_warned() {
    let m = Moto::start();
    m.create_bucket(BUCKET);
    let env = m.env(Env::new());
    let d = tree(&[("logo.png", &[0x89, b'P', b'N', b'G', 0xff])]);
    let r = publish(&env, d.path(), "s3://mocks/bin", &[]);
    one_line_refusal(&r, &["data/logo.png", "UTF-8", "would be corrupted"]);
    assert!(keys_under(&m, "bin").is_empty(), "nothing uploaded");
    publish(&env, d.path(), "s3://mocks/bin", &["--force"]).ok();
    let (b, _) = m.get(BUCKET, "bin/data/logo.png").unwrap();
    assert_eq!(b, [0x89, b'P', b'N', b'G', 0xff]);

    let d = tree(&[
        ("dos.txt", b"a\r\nb"),
        ("unix.txt", b"a\nb\n"),
        ("same.txt", b"a\nb"),
    ]);
    let r = publish(&env, d.path(), "s3://mocks/text", &[]).ok();
    assert!(
        r.stderr.contains("data/dos.txt") && r.stderr.contains("CRLF"),
        "{}",
        r.stderr
    );
    let finals = r
        .stderr
        .lines()
        .find(|l| l.contains("final line break"))
        .unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(
        finals.contains("data/unix.txt") && !finals.contains("dos.txt"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("same.txt"), "{}", r.stderr);
}

#[test]
fn the_go_engine_and_file_targets_are_not_checked_for_the_jvm_loader() {
    let m = Moto::start();
    m.create_bucket(BUCKET);
    m.put(BUCKET, "team/pet-v2/a-config.yaml", b"plugin: rest\n");
    let env = m.env(Env::new());
    let d = tree(&[("logo.png", &[0xff])]);
    let mut args = vec![
        "publish",
        d.path().to_str().unwrap(),
        "--to",
        "s3://mocks/team/pet",
    ];
    args.extend(["--engine", "golang"]);
    env.run(&args).ok();
    let out = tempfile::tempdir().unwrap();
    let to = format!("file://{}", out.path().display());
    env.run(&["publish", d.path().to_str().unwrap(), "--to", &to])
        .ok();
}

/// Two trees that differ in every data file, so a mixed bucket shows.
fn racing_tree(tag: &str) -> tempfile::TempDir {
    let names: Vec<String> = (0..60).map(|i| format!("f{i:02}.json")).collect();
    let bodies: Vec<String> = names
        .iter()
        .map(|n| format!("{{\"{tag}\": \"{n}\"}}"))
        .collect();
    let extra: Vec<(&str, &[u8])> = names
        .iter()
        .zip(&bodies)
        .map(|(n, b)| (n.as_str(), b.as_bytes()))
        .collect();
    // Each tree also has a file the other lacks: the loser must not delete the winner's.
    let own = format!("only-{tag}.json");
    let mut extra = extra;
    extra.push((own.as_str(), b"{}"));
    tree(&extra)
}

#[test]
fn two_publishes_to_one_prefix_at_once_leave_exactly_the_winners_files() {
    let m = Moto::start();
    m.create_bucket(BUCKET);
    let env = m.env(Env::new());
    let (a, b) = (racing_tree("a"), racing_tree("b"));
    let to = "s3://mocks/race";
    let mut contested = 0;
    for round in 0..10 {
        let start = |d: &Path| {
            let mut c = env.command(env!("CARGO_BIN_EXE_mockimg"));
            c.args([
                "publish",
                d.to_str().unwrap(),
                "--to",
                to,
                "--engine",
                "docker",
            ]);
            c.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        // Alternate who starts first.
        let (first, second) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let (p1, p2) = (start(first.path()), start(second.path()));
        let runs = [
            Run::from(p1.wait_with_output().unwrap()),
            Run::from(p2.wait_with_output().unwrap()),
        ];
        let rec: serde_json::Value =
            serde_json::from_slice(&m.get(BUCKET, &format!("race/{RECORD}")).unwrap().0).unwrap();
        let digest = rec["digest"].as_str().unwrap();
        let winners: Vec<&Run> = runs.iter().filter(|r| r.code == 0).collect();
        assert!(!winners.is_empty(), "round {round}: no publish succeeded");
        if let Some(loser) = runs.iter().find(|r| r.code != 0) {
            contested += 1;
            assert_eq!(winners.len(), 1);
            assert_eq!(loser.code, 1, "round {round}: {}", loser.stderr);
            assert_eq!(winners[0].stdout.trim(), digest, "round {round}");
            assert!(
                loser.stderr.contains(digest) && loser.stderr.contains("changed nothing"),
                "round {round}: the loser names the winner's digest {digest}: {}",
                loser.stderr
            );
        }
        // The bucket holds exactly what the record lists, with the listed content, no lock.
        let mut want: Vec<String> = rec["files"].as_object().unwrap().keys().cloned().collect();
        want.push(RECORD.to_string());
        want.sort();
        assert_eq!(keys_under(&m, "race"), want, "round {round}");
        for (rel, sha) in rec["files"].as_object().unwrap() {
            let (body, _) = m.get(BUCKET, &format!("race/{rel}")).unwrap();
            assert_eq!(
                hex::encode(Sha256::digest(&body)),
                sha.as_str().unwrap(),
                "round {round}: race/{rel} is not the winner's"
            );
        }
    }
    eprintln!("{contested} of 10 rounds had two publishes at once");
    assert!(contested > 0, "no round had two publishes at once");
}

/// The JVM engine takes an S3-compatible endpoint from `IMPOSTER_S3_API_ENDPOINT`, not from the
/// `AWS_ENDPOINT_URL*` variables mockimg reads: the README's publish section says so.
#[test]
fn the_s3_endpoint_variable_is_named_in_the_readme() {
    let readme = std::fs::read_to_string(Path::new(REPO_ROOT).join("README.md")).unwrap();
    let section = readme
        .split("## External configuration (publish)")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("the publish section");
    assert!(
        section.contains("S3-compatible store with `IMPOSTER_S3_API_ENDPOINT`"),
        "{section}"
    );
}
