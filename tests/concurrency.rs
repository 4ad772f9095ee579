//! Several mockimg processes at once against one registry and one cache: four pushes of
//! different tags into one repository and four exports to archives, all from one base, sharing
//! `MOCKIMG_CACHE_DIR`. A few rounds here; `scripts/stress` runs many.
mod common;
use common::*;
use serde_json::Value;
use std::process::{Child, Stdio};

const ROUNDS: usize = 3;

fn spawn(env: &Env, args: &[&str]) -> Child {
    let mut c = env.command(env!("CARGO_BIN_EXE_mockimg"));
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c.spawn().unwrap()
}

#[test]
fn concurrent_pushes_to_one_repository_and_exports_sharing_a_cache_all_succeed() {
    let reg = Registry::start();
    let base = seed_engine(&reg, false);
    let out = tempfile::tempdir().unwrap();
    for round in 0..ROUNDS {
        // Each round starts cold: an empty cache, and a repository none of the pushes made yet.
        let env = Env::new();
        let repo = format!("team/concurrent{round}");
        let mut children = Vec::new();
        for i in 0..4 {
            let target = reg.reference(&format!("{repo}:t{i}"));
            let archive = out.path().join(format!("r{round}-{i}.tar"));
            let push = ["build", "examples/rest", "--base", &base, "--push", &target];
            let export = [
                "build",
                "examples/rest",
                "--base",
                &base,
                "--output",
                archive.to_str().unwrap(),
            ];
            for args in [&push[..], &export[..]] {
                let mut a = args.to_vec();
                a.push("--json");
                children.push((a.join(" "), spawn(&env, &a)));
            }
        }
        let mut digests = std::collections::BTreeSet::new();
        for (what, child) in children {
            let run = Run::from(child.wait_with_output().unwrap());
            assert_eq!(
                run.code, 0,
                "round {round}: mockimg {what} failed:\n{}",
                run.stderr
            );
            let o: Value = serde_json::from_str(&run.stdout).unwrap();
            digests.insert(o["digest"].as_str().unwrap().to_string());
        }
        assert_eq!(digests.len(), 1, "one image, whoever made it: {digests:?}");
        let want = digests.into_iter().next().unwrap();
        for i in 0..4 {
            let raw = skopeo(&[
                "inspect",
                "--raw",
                "--tls-verify=false",
                &format!("docker://{}", reg.reference(&format!("{repo}:t{i}"))),
            ]);
            assert_eq!(fixtures::sha256(raw.as_bytes()), want);
            ocicheck::assert_archive(&out.path().join(format!("r{round}-{i}.tar")));
        }
    }
}
