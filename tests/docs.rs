//! Issue 17: the files under docs/ (and the release workflow) are what users copy into their CI
//! and clusters, so each is checked offline against the schema of the system that runs it:
//! GitHub workflows and GitLab CI with `check-jsonschema`'s vendored schemas, Kubernetes
//! manifests with `kubernetes-validate`'s bundled OpenAPI schemas. A file added under docs/ that
//! no check covers fails the suite.
//!
//! The tools come from the virtualenv `scripts/test` creates (`MOCKIMG_TEST_VENV`, else
//! `target/venv`); when one is missing the tests fail, they never skip. Every run has its HTTP(S)
//! proxy pointed at a closed loopback port, so a tool that reached for the network would fail.
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The Kubernetes API version the manifests are validated against.
const KUBERNETES_VERSION: &str = "1.33";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Check {
    GithubWorkflow,
    GitlabCi,
    Kubernetes,
    /// Checked here: every cite is `repo@tag:path:line` at a pinned tag, every test exists.
    EngineFacts,
}

/// Every file under docs/ and the check that covers it.
const DOCS: &[(&str, Check)] = &[
    ("docs/github-actions.yml", Check::GithubWorkflow),
    ("docs/gitlab-ci.yml", Check::GitlabCi),
    ("docs/kubernetes.yaml", Check::Kubernetes),
    ("docs/engine-facts.md", Check::EngineFacts),
];

/// The files a check covers: the docs/ entries, plus every workflow in .github/workflows.
fn files(check: Check) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = DOCS
        .iter()
        .filter(|(_, c)| *c == check)
        .map(|(p, _)| Path::new(ROOT).join(p))
        .collect();
    if check == Check::GithubWorkflow {
        let dir = Path::new(ROOT).join(".github/workflows");
        let mut wf: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
            .collect();
        wf.sort();
        assert!(
            wf.iter().any(|p| p.ends_with("release.yml")),
            "no .github/workflows/release.yml"
        );
        v.extend(wf);
    }
    assert!(!v.is_empty(), "no file for {check:?}");
    v
}

/// A tool from the test virtualenv; a clear failure when it is not there.
fn tool(name: &str) -> PathBuf {
    let venv = match std::env::var_os("MOCKIMG_TEST_VENV") {
        Some(v) => PathBuf::from(v),
        None => Path::new(ROOT).join("target/venv"),
    };
    let bin = venv.join("bin").join(name);
    assert!(
        bin.is_file(),
        "{name} is missing: expected {} (MOCKIMG_TEST_VENV={:?}). Run scripts/test, which creates \
         target/venv and installs check-jsonschema and kubernetes-validate into it, or: \
         python3 -m venv target/venv && target/venv/bin/pip install check-jsonschema \
         kubernetes-validate && export MOCKIMG_TEST_VENV=$PWD/target/venv",
        bin.display(),
        std::env::var_os("MOCKIMG_TEST_VENV"),
    );
    bin
}

struct Out {
    ok: bool,
    text: String,
}

/// Runs a tool with no way out to the network: any proxied request goes to a closed port.
fn run(name: &str, args: &[&str], files: &[PathBuf]) -> Out {
    let trap = "http://127.0.0.1:9";
    let o = Command::new(tool(name))
        .args(args)
        .args(files)
        .env("HTTP_PROXY", trap)
        .env("HTTPS_PROXY", trap)
        .env("http_proxy", trap)
        .env("https_proxy", trap)
        .env("ALL_PROXY", trap)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .unwrap_or_else(|e| panic!("running {name}: {e}"));
    Out {
        ok: o.status.success(),
        text: format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    }
}

fn validate(check: Check, files: &[PathBuf]) -> Out {
    match check {
        Check::GithubWorkflow => run(
            "check-jsonschema",
            &["--builtin-schema", "vendor.github-workflows"],
            files,
        ),
        Check::GitlabCi => run(
            "check-jsonschema",
            &["--builtin-schema", "vendor.gitlab-ci"],
            files,
        ),
        Check::Kubernetes => run(
            "kubernetes-validate",
            &["--strict", "-k", KUBERNETES_VERSION],
            files,
        ),
        Check::EngineFacts => {
            let problems: Vec<String> = files
                .iter()
                .flat_map(|f| {
                    let text = std::fs::read_to_string(f).unwrap();
                    engine_facts_problems(&text)
                        .into_iter()
                        .map(move |p| format!("{}: {p}", f.display()))
                })
                .collect();
            Out {
                ok: problems.is_empty(),
                text: problems.join("\n"),
            }
        }
    }
}

/// The upstream repositories and the tags (or branch) the facts are read at.
const PINNED: &[(&str, &[&str])] = &[
    ("imposter-jvm-engine", &["v4.9.3"]),
    ("imposter-go", &["v5.21.3"]),
    ("imposter-cli", &["v1.10.0", "main"]),
];

/// Every test function name in src/ and tests/.
fn test_names() -> std::collections::BTreeSet<String> {
    fn walk(dir: &Path, out: &mut std::collections::BTreeSet<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                let lines: Vec<&str> = text.lines().collect();
                for (i, l) in lines.iter().enumerate() {
                    let Some(rest) = l
                        .trim_start()
                        .strip_prefix("fn ")
                        .or_else(|| l.trim_start().strip_prefix("async fn "))
                    else {
                        continue;
                    };
                    let is_test = lines[..i].iter().rev().take(3).any(|a| {
                        a.trim_start().starts_with("#[test]") || a.contains("#[tokio::test")
                    });
                    if is_test {
                        out.insert(rest.split('(').next().unwrap().trim().to_string());
                    }
                }
            }
        }
    }
    let mut out = std::collections::BTreeSet::new();
    walk(&Path::new(ROOT).join("src"), &mut out);
    walk(&Path::new(ROOT).join("tests"), &mut out);
    out
}

/// A cite `repo@tag:path:lines` with a pinned repo and tag and lines like `12`, `12-15`,
/// `12,15-16`.
fn cite_problem(cite: &str) -> Option<String> {
    let Some((repo, rest)) = cite.split_once('@') else {
        return Some(format!("'{cite}' is not repo@tag:path:line"));
    };
    let Some((_, tags)) = PINNED.iter().find(|(r, _)| *r == repo) else {
        return Some(format!("'{cite}': {repo} is not a pinned repository"));
    };
    let mut parts = rest.splitn(2, ':');
    let tag = parts.next().unwrap_or_default();
    if !tags.contains(&tag) {
        return Some(format!(
            "'{cite}': {tag} is not the pinned version of {repo}"
        ));
    }
    let Some((path, lines)) = parts.next().and_then(|r| r.rsplit_once(':')) else {
        return Some(format!("'{cite}' has no :path:line"));
    };
    let lines_ok = !lines.is_empty()
        && lines.split(',').all(|r| {
            r.split('-').count() <= 2
                && r.split('-')
                    .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        });
    if path.is_empty() || path.starts_with('/') || !lines_ok {
        return Some(format!("'{cite}': path or line numbers malformed"));
    }
    None
}

/// What is wrong with the fact tables of docs/engine-facts.md: rows whose upstream column is
/// not a list of cites, or whose test column names a test that does not exist.
fn engine_facts_problems(text: &str) -> Vec<String> {
    let tests = test_names();
    let mut problems = Vec::new();
    let mut rows = 0;
    // Only the `| fact | upstream | test |` tables; other tables (the paths section's) have
    // their own shape.
    let mut in_facts = false;
    for line in text.lines() {
        if !line.trim_start().starts_with('|') {
            in_facts = false;
            continue;
        }
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split(" | ")
            .map(str::trim)
            .collect();
        if cells == ["fact", "upstream", "test"] {
            in_facts = true;
            continue;
        }
        if !in_facts || cells[0].starts_with("---") {
            continue;
        }
        if cells.len() != 3 {
            problems.push(format!("row without 3 cells: {line}"));
            continue;
        }
        rows += 1;
        for cite in cells[1].split(';').map(str::trim) {
            problems.extend(cite_problem(cite));
        }
        if cells[2] == "none" {
            continue;
        }
        let names: Vec<&str> = cells[2]
            .split(',')
            .map(|n| n.trim().trim_matches('`'))
            .collect();
        for n in names {
            if !tests.contains(n) {
                problems.push(format!("test {n} does not exist (row: {})", cells[0]));
            }
        }
    }
    if rows < 20 {
        problems.push(format!("only {rows} fact rows found"));
    }
    problems
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml_docs(rel: &str) -> Vec<serde_json::Value> {
    serde_norway::Deserializer::from_str(&read(rel))
        .map(|d| {
            <serde_json::Value as serde::Deserialize>::deserialize(d)
                .unwrap_or_else(|e| panic!("{rel}: {e}"))
        })
        .collect()
}

#[test]
fn github_workflows_match_the_workflow_schema() {
    let f = files(Check::GithubWorkflow);
    let out = validate(Check::GithubWorkflow, &f);
    assert!(out.ok, "{f:?}\n{}", out.text);
}

#[test]
fn gitlab_ci_matches_the_gitlab_schema() {
    let f = files(Check::GitlabCi);
    let out = validate(Check::GitlabCi, &f);
    assert!(out.ok, "{f:?}\n{}", out.text);
}

#[test]
fn kubernetes_manifests_match_the_api_schemas() {
    let f = files(Check::Kubernetes);
    let out = validate(Check::Kubernetes, &f);
    assert!(out.ok, "{f:?}\n{}", out.text);
    // Each resource was checked, not skipped as an unknown kind.
    for d in f.iter().flat_map(|p| {
        let rel = p.strip_prefix(ROOT).unwrap().to_str().unwrap().to_string();
        yaml_docs(&rel)
    }) {
        let res = format!(
            "{}/{}",
            d["kind"].as_str().unwrap().to_lowercase(),
            d["metadata"]["name"].as_str().unwrap()
        );
        assert!(
            out.text.contains(&format!("passed for resource {res} ")),
            "{res} not validated:\n{}",
            out.text
        );
    }
}

/// Every fact in docs/engine-facts.md cites the engines' code at the pinned versions as
/// `repo@tag:path:line` and names test functions that exist.
#[test]
fn engine_facts_cite_pinned_code_and_existing_tests() {
    let f = files(Check::EngineFacts);
    let out = validate(Check::EngineFacts, &f);
    assert!(out.ok, "{}", out.text);
}

/// The checks are not vacuous: each rejects a broken copy of the file it passes.
#[test]
fn each_check_rejects_a_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    for (rel, check, from, to) in [
        (
            "docs/github-actions.yml",
            Check::GithubWorkflow,
            "runs-on:",
            "runs_on:",
        ),
        (
            "docs/gitlab-ci.yml",
            Check::GitlabCi,
            "\n  script:",
            "\n  scripts:",
        ),
        (
            "docs/kubernetes.yaml",
            Check::Kubernetes,
            "runAsNonRoot:",
            "runAsNonroot:",
        ),
        (
            "docs/engine-facts.md",
            Check::EngineFacts,
            "`the_major_beta_tag_moves_like_latest`",
            "`the_major_beta_tag_moves`",
        ),
        (
            "docs/engine-facts.md",
            Check::EngineFacts,
            "imposter-go@v5.21.3:.goreleaser.yml:1,26-31",
            "imposter-go@v5.21.2:.goreleaser.yml",
        ),
    ] {
        let text = read(rel);
        assert!(text.contains(from), "{rel} has no {from}");
        let broken = dir.path().join(Path::new(rel).file_name().unwrap());
        std::fs::write(&broken, text.replacen(from, to, 1)).unwrap();
        let out = validate(check, &[broken]);
        assert!(
            !out.ok,
            "{check:?} accepted {rel} with {from} -> {to}:\n{}",
            out.text
        );
    }
}

#[test]
fn every_file_under_docs_is_checked() {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p.strip_prefix(ROOT).unwrap().to_str().unwrap().to_string());
            }
        }
    }
    let mut found = Vec::new();
    walk(&Path::new(ROOT).join("docs"), &mut found);
    found.sort();
    for f in &found {
        assert!(
            DOCS.iter().any(|(p, _)| p == f),
            "{f} is covered by no check: add it to DOCS in tests/docs.rs with the validator for \
             its kind (or a new one)"
        );
    }
    for (p, _) in DOCS {
        assert!(
            found.iter().any(|f| f == p),
            "{p} is listed in DOCS but missing"
        );
    }
}

/// Every `uses:` names a full commit SHA followed by a `# vX.Y.Z` comment.
#[test]
fn github_actions_are_pinned_by_commit() {
    for f in files(Check::GithubWorkflow) {
        let text = std::fs::read_to_string(&f).unwrap();
        let mut n = 0;
        for l in text.lines() {
            let t = l.trim_start().trim_start_matches("- ");
            let Some(rest) = t.strip_prefix("uses: ") else {
                continue;
            };
            let (action, comment) = rest.split_once(" # ").unwrap_or((rest, ""));
            let sha = action.rsplit_once('@').map(|(_, s)| s).unwrap_or("");
            assert!(
                sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
                "{}: not pinned by commit: {l}",
                f.display()
            );
            assert!(
                comment.starts_with('v'),
                "{}: no version comment: {l}",
                f.display()
            );
            n += 1;
        }
        assert!(n > 0, "{}: no actions found", f.display());
    }
}

/// What issue 17 asked of the CI examples, beyond their schemas.
#[test]
fn ci_examples_install_a_pinned_release_and_log_in_per_host() {
    let archive = "mockimg-$MOCKIMG_VERSION-x86_64-unknown-linux-musl";
    let url =
        "https://github.com/mockimg/mockimg/releases/download/v$MOCKIMG_VERSION/$archive.tar.gz";
    for rel in ["docs/github-actions.yml", "docs/gitlab-ci.yml"] {
        let text = read(rel);
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            !code.contains("cargo install"),
            "{rel}: builds mockimg from source"
        );
        assert!(
            text.contains("cargo install --git https://github.com/mockimg/mockimg --tag v"),
            "{rel}: no fallback note"
        );
        assert!(
            code.contains(archive) && code.contains(url),
            "{rel}: release URL"
        );
        assert!(
            code.contains("$MOCKIMG_SHA256  $archive.tar.gz\" | sha256sum"),
            "{rel}: checksum"
        );
        // The job token reaches the registry through `login`, scoped to one host; never through
        // the environment, which applies to the push targets of every build.
        assert!(!code.contains("MOCKIMG_REGISTRY_PASSWORD"), "{rel}");
        assert!(code.contains("--password-stdin"), "{rel}");
        // The base is pinned by digest.
        assert!(
            code.contains("IMPOSTER_BASE: docker.io/outofcoffee/imposter:4.9.3@sha256:")
                && code.contains("--base \"$IMPOSTER_BASE\""),
            "{rel}: base not pinned by digest"
        );
    }

    let gh = &yaml_docs("docs/github-actions.yml")[0];
    assert!(
        gh["concurrency"]["group"].is_string(),
        "no concurrency group"
    );
    let perms = gh["permissions"].as_object().unwrap();
    let mut names: Vec<(&str, &str)> = perms
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("attestations", "write"),
            ("contents", "read"),
            ("id-token", "write"),
            ("packages", "write")
        ]
    );
    let steps = gh["jobs"]["publish"]["steps"].as_array().unwrap();
    let login = steps
        .iter()
        .find_map(|s| s["run"].as_str().filter(|r| r.contains("mockimg login")))
        .expect("no login step");
    assert!(login.contains("mockimg login ghcr.io -u \"$GITHUB_ACTOR\" --password-stdin"));
    let attest = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/attest-build-provenance@"))
        })
        .expect("no provenance attestation");
    assert_eq!(
        attest["with"]["subject-digest"],
        "${{ steps.build.outputs.digest }}"
    );
    let build = steps.iter().find(|s| s["id"] == "build").unwrap();
    let run = build["run"].as_str().unwrap();
    assert!(run.contains("--digest-file digest.txt") && run.contains("digest=$(cat digest.txt)"));

    let gl = &yaml_docs("docs/gitlab-ci.yml")[0]["publish-mocks"];
    assert!(gl["resource_group"].is_string(), "no resource_group");
    assert!(
        gl.get("cache").is_none(),
        "a cache the push-only job never reads"
    );
    let before = serde_json::to_string(&gl["before_script"]).unwrap();
    assert!(
        before.contains(
            "mockimg login \\\"$CI_REGISTRY\\\" -u \\\"$CI_REGISTRY_USER\\\" --password-stdin"
        ),
        "{before}"
    );
}

/// The pod passes the "restricted" Pod Security Standard and runs a digest, not a tag.
#[test]
fn kubernetes_example_is_restricted_and_pinned() {
    let docs = yaml_docs("docs/kubernetes.yaml");
    let dep = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let pod = &dep["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 2048);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    for c in pod["containers"].as_array().unwrap() {
        let sc = &c["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{c}");
        assert_eq!(
            sc["capabilities"]["drop"],
            serde_json::json!(["ALL"]),
            "{c}"
        );
        assert!(c["image"].as_str().unwrap().contains("@sha256:"), "{c}");
        for probe in ["readinessProbe", "livenessProbe"] {
            assert_eq!(c[probe]["httpGet"]["path"], "/system/status", "{probe}");
        }
        assert!(c["resources"]["requests"].is_object(), "{c}");
    }
    assert!(read("docs/kubernetes.yaml").contains("imagePullSecrets"));
}

/// `cargo binstall` finds the archives the release workflow uploads.
#[test]
fn binstall_metadata_names_the_release_assets() {
    let cargo = read("Cargo.toml");
    let table = cargo
        .split("[package.metadata.binstall]")
        .nth(1)
        .expect("no [package.metadata.binstall]");
    let value = |key: &str| {
        table
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no {key}"))
            .trim_matches('"')
            .to_string()
    };
    assert_eq!(
        value("pkg-url"),
        "{ repo }/releases/download/v{ version }/{ name }-{ version }-{ target }.tar.gz"
    );
    assert_eq!(
        value("bin-dir"),
        "{ name }-{ version }-{ target }/{ bin }{ binary-ext }"
    );
    assert_eq!(value("pkg-fmt"), "tgz");
    assert!(cargo.contains("repository = \"https://github.com/mockimg/mockimg\""));

    // The release packs mockimg-VERSION-TARGET/mockimg into mockimg-VERSION-TARGET.tar.gz for
    // the four Linux targets, and checks the tag against Cargo.toml's version.
    let release = read(".github/workflows/release.yml");
    assert!(release.contains("name=\"mockimg-$VERSION-$TARGET\""));
    assert!(release.contains("\"dist/$name.tar.gz\""));
    assert!(release.contains("cp \"target/$TARGET/release/mockimg\""));
    assert!(release.contains("if [ \"v$version\" != \"$GITHUB_REF_NAME\" ]"));
    let wf = &yaml_docs(".github/workflows/release.yml")[0];
    let mut targets: Vec<&str> = wf["jobs"]["build"]["strategy"]["matrix"]["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["target"].as_str().unwrap())
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        [
            "aarch64-unknown-linux-gnu",
            "aarch64-unknown-linux-musl",
            "x86_64-unknown-linux-gnu",
            "x86_64-unknown-linux-musl"
        ]
    );
    assert_eq!(wf["on"]["push"]["tags"], serde_json::json!(["v*"]));
}
