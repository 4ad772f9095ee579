//! containerd (Debian's 1.6 `ctr`, a client nobody here wrote) takes what mockimg makes: an index
//! pulled with every platform from the registry mockimg pushed to, a Docker-typed push, and the
//! `--output` archive imported under every name it carries; and the config reads back from the
//! unpacked image. Each test starts its own containerd (tests/common/containerd.rs).
mod common;
use common::containerd::Containerd;
use common::*;
use serde_json::Value;

/// Every file of `examples/NAME` is in the image under /opt/imposter/config, byte for byte (the
/// base's own files stay beside them), and the base's engine is there too.
fn assert_config_in(root: &std::path::Path, example: &str) {
    let want = files(&examples(example));
    assert!(!want.is_empty());
    let got = files(&root.join("opt/imposter/config"));
    for (path, bytes) in &want {
        assert_eq!(got.get(path), Some(bytes), "{path} differs or is missing");
    }
    assert!(
        root.join("opt/imposter/bin/imposter").is_file(),
        "base files kept"
    );
}

fn build(args: &[&str]) -> String {
    let mut all = vec!["build", "examples/rest", "--json"];
    all.extend_from_slice(args);
    let run = Env::new().run(&all).ok();
    let o: Value = serde_json::from_str(&run.stdout).unwrap();
    o["digest"].as_str().unwrap().to_string()
}

/// `ctr images check`'s row for `name`: complete, every blob present.
fn assert_complete(ctrd: &Containerd, name: &str) {
    let out = ctrd.ctr(&["images", "check"]);
    let row = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("{name} not listed:\n{out}"));
    assert!(row.contains("complete"), "{row}");
    // "complete (N/N)": every blob the image needs is in the content store.
    let counts = row
        .split("complete (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap();
    let (have, need) = counts.split_once('/').unwrap();
    assert_eq!(have, need, "{row}");
}

#[test]
fn pushed_index_pulls_with_every_platform_checks_complete_and_mounts_its_config() {
    let reg = Registry::start();
    let base = seed_engine(&reg, true);
    let target = reg.reference("team/mocks:ctr");
    let digest = build(&["--base", &base, "--push", &target]);

    let ctrd = Containerd::start();
    let out = ctrd.ctr(&[
        "images",
        "pull",
        "--plain-http",
        "--all-platforms",
        "--snapshotter",
        "native",
        &target,
    ]);
    assert!(
        out.contains("linux/amd64") && out.contains("linux/arm64"),
        "{out}"
    );
    assert_eq!(ctrd.image_names(), std::slice::from_ref(&target));
    let row = ctrd.ctr(&["images", "ls"]);
    assert!(row.contains(&digest), "{row}");
    assert!(
        row.contains("application/vnd.oci.image.index.v1+json"),
        "{row}"
    );
    assert_complete(&ctrd, &target);
    let m = ctrd.mount(&target);
    assert_config_in(&m.at, "rest");
    // The base's files are there too, under the config layer.
    assert!(m.path("opt/imposter/plugins/rest.jar").is_file());
}

#[test]
fn docker_typed_push_pulls_and_mounts() {
    let reg = Registry::start();
    let base = seed_engine(&reg, false);
    let target = reg.reference("team/mocks:ctr-docker");
    let digest = build(&["--base", &base, "--push", &target, "--format", "docker"]);
    assert_eq!(
        raw_manifest(&target)["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let ctrd = Containerd::start();
    ctrd.ctr(&[
        "images",
        "pull",
        "--plain-http",
        "--all-platforms",
        "--snapshotter",
        "native",
        &target,
    ]);
    let row = ctrd.ctr(&["images", "ls"]);
    assert!(row.contains(&digest), "{row}");
    assert_complete(&ctrd, &target);
    let m = ctrd.mount(&target);
    assert_config_in(&m.at, "rest");
}

#[test]
fn archive_with_names_sharing_a_tag_imports_under_every_name() {
    let reg = Registry::start();
    let base = seed_engine(&reg, false);
    let out = tempfile::tempdir().unwrap();
    let archive = out.path().join("m.tar");
    let pushed = reg.reference("mocks/app:1");
    let digest = build(&[
        "--base",
        &base,
        "--push",
        &pushed,
        "--tag",
        "team/a:1",
        "--tag",
        "other/c:1",
        "--output",
        archive.to_str().unwrap(),
    ]);
    let ctrd = Containerd::start();
    ctrd.ctr(&[
        "images",
        "import",
        "--all-platforms",
        "--snapshotter",
        "native",
        archive.to_str().unwrap(),
    ]);
    let mut want = vec![
        pushed.clone(),
        "docker.io/other/c:1".to_string(),
        "docker.io/team/a:1".to_string(),
    ];
    want.sort();
    assert_eq!(ctrd.image_names(), want);
    let ls = ctrd.ctr(&["images", "ls"]);
    for name in &want {
        let row = ls
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("{name} not listed:\n{ls}"));
        assert!(row.contains(&digest), "{row}");
        assert_complete(&ctrd, name);
    }
    let m = ctrd.mount("docker.io/other/c:1");
    assert_config_in(&m.at, "rest");
}
