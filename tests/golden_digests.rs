//! Image digests are part of the contract: the same config and base give the same bytes, across
//! refactors too. A change here must be deliberate (and said in the commit), never a side effect.
mod common;
use common::*;

/// (example, image digest) for the README's offline command on the shipped engine-like base.
const GOLDEN: [(&str, &str); 3] = [
    (
        "rest",
        "sha256:f14cba38db58272770905b6a69421430ce920736a13b52bf884ac643f7765fc4",
    ),
    (
        "openapi",
        "sha256:9beee94bf7ebf8876504f52b7a07273d3d9afa78add6652125137e8499bbba6a",
    ),
    (
        "soap",
        "sha256:89be99b019836461401aa8f2fb113a22878dd894af7b529af9bffb7202d9ee6e",
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
    assert_eq!(
        fixtures::sha256(&bytes),
        "sha256:ecb0c76ab6b43a4934d9d01d5f15fb633a0f1675fde896a464fe66d25ebc9afc"
    );
}
