//! Inputs the fuzz targets (fuzz/, run by scripts/fuzz) found, replayed through the very harness
//! functions the fuzzer ran, so each fixed bug stays fixed under a plain `cargo test`.
//! tests/fuzz_inputs/TARGET/ holds the saved inputs byte for byte.
#[path = "../fuzz/src/lib.rs"]
mod harness;

use mockimg::oci::{ImageRef, RegistryRef};
use std::path::Path;

fn input(target: &str, name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_inputs")
        .join(target)
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every saved input of a target, sorted, so none is forgotten when a new one is added.
fn all_inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_inputs")
        .join(target);
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.expect("dir entry").path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("read input"))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn every_saved_reference_input_replays() {
    let all = all_inputs("reference");
    assert!(!all.is_empty());
    for (name, bytes) in all {
        let out = harness::reference(&bytes);
        assert!(!out.is_empty(), "{name}");
    }
}

/// `docker://oci-archive:\0\0\0\0\0\0A_b/c-d:1` was accepted with the registry
/// `oci-archive:\0\0\0\0\0\0A_b`, and printed as an `oci-archive:` path: the registry host was
/// barely checked. Fixed by validating HOST[:PORT].
#[test]
fn registry_host_with_nul_bytes_is_rejected() {
    let bytes = input("reference", "nul-registry-behind-docker-scheme");
    let out = harness::reference(&bytes);
    assert!(out.contains("is not a valid registry"), "{out}");
    let s = std::str::from_utf8(&bytes).unwrap();
    let e = ImageRef::parse(s).unwrap_err().to_string();
    assert!(e.contains("HOST[:PORT]"), "{e}");
}

/// The valid neighbour of that input: a registry named like a transport prints with its scheme,
/// so it reads back as a registry.
#[test]
fn registry_named_like_a_transport_round_trips() {
    let r = ImageRef::parse("docker://oci:5000/team/x:1").unwrap();
    assert!(matches!(&r, ImageRef::Registry(x) if x.registry == "oci:5000"));
    assert_eq!(r.to_string(), "docker://oci:5000/team/x:1");
    assert_eq!(ImageRef::parse(&r.to_string()).unwrap(), r);
    assert_eq!(
        harness::reference(b"docker://oci:5000/team/x:1"),
        "ok docker://oci:5000/team/x:1"
    );
    for ok in [
        "[::1]:5000/x",
        "localhost/x",
        "Registry.Example-1.com:443/a/b",
    ] {
        RegistryRef::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in [
        "a_b.com/x",
        "host:/x",
        "host:99999999/x",
        "[zz]/x",
        "-a.com/x",
    ] {
        let e = RegistryRef::parse(bad)
            .expect_err(&format!("{bad} should be rejected"))
            .to_string();
        assert!(
            e.contains(&format!("{bad:?}")),
            "{bad}: the error names it: {e}"
        );
    }
}

#[test]
fn every_saved_manifest_input_replays() {
    let all = all_inputs("manifest");
    assert!(!all.is_empty());
    for (name, bytes) in all {
        let out = harness::manifest(&bytes);
        assert!(!out.is_empty(), "{name}");
    }
}

/// The fixture engine's manifests, alone and under their index with `--platform`, append cleanly
/// (the harness checks every digest of the result); a byte flipped in the config is caught.
#[test]
fn engine_manifests_append_and_a_damaged_config_is_refused() {
    for name in ["engine-image-arm64", "engine-index-amd64"] {
        let out = harness::manifest(&input("manifest", name));
        assert!(out.starts_with("appended sha256:"), "{name}: {out}");
    }
    let mut b = input("manifest", "engine-image-arm64");
    let sep = b.windows(4).position(|w| w == harness::SEP).unwrap();
    b[sep + 4] = b'[';
    let out = harness::manifest(&b);
    assert!(out.contains("image config: not valid JSON"), "{out}");
}

#[test]
fn every_saved_archive_input_replays() {
    let all = all_inputs("archive");
    assert!(!all.is_empty());
    for (name, bytes) in all {
        let out = harness::archive(&bytes);
        assert!(!out.is_empty(), "{name}");
    }
}

/// Entries named `../secret` or `/etc/passwd` are refused by both readers, and a symlinked
/// `index.json` never makes the file beside the archive readable.
#[test]
fn hostile_entry_names_are_refused() {
    for name in ["dotdot-entry", "absolute-entry"] {
        let out = harness::archive(&input("archive", name));
        assert_eq!(out.matches("unsafe entry path").count(), 2, "{name}: {out}");
    }
    let out = harness::archive(&input("archive", "symlink-index-outside"));
    assert!(!out.contains("opened"), "{out}");
}

/// A minimal layout built by the harness opens under its tag and every blob reads back verified.
#[test]
fn linked_layout_opens_and_reads_every_blob() {
    let out = harness::archive(&input("archive", "linked-oci-layout"));
    assert!(
        out.starts_with("opened 1 image(s), read 2/2 blob(s); docker error:"),
        "{out}"
    );
}

#[test]
fn every_saved_config_tree_input_replays() {
    let all = all_inputs("config_tree");
    assert!(!all.is_empty());
    for (name, bytes) in all {
        let out = harness::config_tree(&bytes);
        assert!(!out.is_empty(), "{name}");
    }
}

/// The reproductions of hostile config trees: links that resolve outside (through a link to
/// the root, or through an excluded absolute link), link loops, links to special files,
/// whiteout names and exponentially many paths through directory links are all refused, in
/// time, naming the entry; links inside the tree resolve to the files they name.
#[test]
fn hostile_config_trees_are_refused_by_the_walker() {
    let cases = [
        (
            "link-chain-through-link-to-root",
            "leak.txt: symlink resolves outside",
        ),
        (
            "link-through-excluded-absolute-link",
            "x.json: symlink resolves outside",
        ),
        ("two-links-to-the-root", "a: symlink loops back"),
        (
            "link-to-excluded-fifo-and-socket",
            "pipe.json: symlink points to a fifo",
        ),
        ("whiteout-names", ".wh.README.txt: name starts with '.wh.'"),
        (
            "exponential-directory-links",
            "symlinked directories expand to more than",
        ),
    ];
    for (name, want) in cases {
        let out = harness::config_tree(&input("config_tree", name));
        assert!(
            out.starts_with("error: ") && out.contains(want),
            "{name}: {out}"
        );
        assert!(!out.contains('\n'), "{name}: one line: {out}");
    }
    let out = harness::config_tree(&input("config_tree", "linked-directories-inside"));
    // one.json, alias.json, and both again under `linked/` and `deeper/l2/`.
    assert_eq!(out, "ok 6 files");
}
