//! Image digests are part of the contract: the same config and base give the same bytes, across
//! refactors too. A change here must be deliberate (and said in the commit), never a side effect.
mod common;
use common::*;

/// (example, image digest) for the README's offline command on the shipped engine-like base.
/// The base is a local layout, so no `org.opencontainers.image.base.name` is recorded (issue 14:
/// a path is not a name, and the base digest annotation says what the base was).
const GOLDEN: [(&str, &str); 3] = [
    (
        "rest",
        "sha256:b71c5d89dd37e68b61a52ea162ea5c36d5eb742c262d76e726ee4af1ecebf35c",
    ),
    (
        "openapi",
        "sha256:15fec80a4e4facf0a9019303fbb5f03cb0af9d0f80d0e81ef0388ae2b7eed9b3",
    ),
    (
        "soap",
        "sha256:8398cc252cbd8a6c417c51c1512770b8cd105f6d204d19e85867e030d63ded12",
    ),
];

fn digest(run: Run) -> String {
    let v: serde_json::Value = serde_json::from_str(&run.ok().stdout).unwrap();
    v["digest"].as_str().unwrap().to_string()
}

#[test]
fn readme_examples_keep_their_image_digests_in_archives_and_layouts() {
    let env = Env::new();
    let out = tempfile::tempdir().unwrap();
    for (example, want) in GOLDEN {
        let dir = format!("examples/{example}");
        let tar = out.path().join(format!("{example}.tar"));
        let run = env.run(&[
            "build",
            &dir,
            "--base",
            "oci:testdata/engine-base:4.9.3",
            "--output",
            tar.to_str().unwrap(),
            "--tag",
            "team/mocks:1.4",
            "--json",
        ]);
        assert_eq!(digest(run), want, "{example}: archive digest changed");
        ocicheck::assert_archive(&tar);
        let layout = out.path().join(format!("{example}-layout"));
        let run = env.run(&[
            "build",
            &dir,
            "--base",
            "oci:testdata/engine-base:4.9.3",
            "--oci-layout",
            layout.to_str().unwrap(),
            "--tag",
            "team/mocks:1.4",
            "--json",
        ]);
        assert_eq!(digest(run), want, "{example}: layout digest changed");
        ocicheck::assert_layout(&layout);
    }
}

#[test]
fn readme_example_archive_is_byte_identical() {
    let env = Env::new();
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("mocks.tar");
    env.run(&[
        "build",
        "examples/rest",
        "--base",
        "oci:testdata/engine-base:4.9.3",
        "--output",
        tar.to_str().unwrap(),
        "--tag",
        "team/mocks:1.4",
    ])
    .ok();
    let bytes = std::fs::read(&tar).unwrap();
    // The archive holds the image and its attachments (SBOM and provenance, which name
    // mockimg's version as their creator and builder): a release bump changes this digest; the
    // image digests the test above pins stay.
    assert_eq!(
        fixtures::sha256(&bytes),
        "sha256:690dda803ae2a6d848342d8c9e0c64eef88e530e170e112790345db55cfcd3c4"
    );
}

fn json_digest(env: &Env, base: &str) -> String {
    digest(env.run(&[
        "build",
        "examples/rest",
        "--base",
        base,
        "--json",
        "--quiet",
    ]))
}

#[test]
fn a_local_base_gives_one_digest_however_its_path_is_spelled() {
    let env = Env::new();
    let abs = format!("oci:{REPO_ROOT}/testdata/engine-base:4.9.3");
    let spellings = [
        "oci:testdata/engine-base:4.9.3",
        "oci:./testdata/engine-base:4.9.3",
        abs.as_str(),
    ];
    let digests: Vec<String> = spellings.iter().map(|b| json_digest(&env, b)).collect();
    assert_eq!(digests[0], GOLDEN[0].1);
    assert!(digests.iter().all(|d| d == &digests[0]), "{digests:?}");
}

#[test]
fn a_registry_base_gives_one_digest_by_tag_digest_or_both() {
    let reg = Registry::start();
    let base = seed_engine(&reg, false);
    let d = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        &format!("docker://{base}"),
    ]);
    let d = d.trim();
    let repo = base.rsplit_once(':').unwrap().0;
    let env = Env::new();
    let spellings = [base.clone(), format!("{repo}@{d}"), format!("{base}@{d}")];
    let digests: Vec<String> = spellings.iter().map(|b| json_digest(&env, b)).collect();
    assert!(
        digests.iter().all(|x| x == &digests[0]),
        "{spellings:?} gave {digests:?}"
    );
    // And the name it records is the registry name, never anything from this machine.
    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("l");
    env.run(&[
        "build",
        "examples/rest",
        "--base",
        &spellings[1],
        "--oci-layout",
        layout.to_str().unwrap(),
    ])
    .ok();
    let all = files(&layout);
    let text: String = all
        .values()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert!(
        text.contains(&format!(
            "\"org.opencontainers.image.base.name\":\"{repo}@{d}\""
        )),
        "{text}"
    );
}
