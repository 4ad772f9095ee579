//! Issue 7: every command in README.md's `sh` blocks runs, and the CI and Kubernetes examples in
//! docs/ use flags that exist. Commands run through a real bash with the built binary first on
//! PATH, in a scratch directory laid out like a user's project; registry hosts are rewritten to
//! local test registries, and docker.io engine bases to the same repositories seeded locally.
mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn readme() -> String {
    std::fs::read_to_string(Path::new(REPO_ROOT).join("README.md")).unwrap()
}

/// The commands of each ```sh block: comments dropped, `\` continuations joined.
fn sh_blocks(md: &str) -> Vec<Vec<String>> {
    let mut blocks = Vec::new();
    let mut cur: Option<Vec<String>> = None;
    let mut pending = String::new();
    for line in md.lines() {
        let t = line.trim_end();
        match &mut cur {
            None if t.trim_start() == "```sh" => cur = Some(Vec::new()),
            None => {}
            Some(_) if t.trim_start() == "```" => blocks.push(cur.take().unwrap()),
            Some(cmds) => {
                let t = t.trim_start();
                if t.starts_with('#') || (t.is_empty() && pending.is_empty()) {
                    continue;
                }
                let code = match t.find(" #") {
                    Some(i) => t[..i].trim_end(),
                    None => t,
                };
                match code.strip_suffix('\\') {
                    Some(head) => pending.push_str(head),
                    None => {
                        pending.push_str(code);
                        cmds.push(std::mem::take(&mut pending).trim().to_string());
                    }
                }
            }
        }
    }
    assert!(cur.is_none(), "unclosed ```sh block in README.md");
    blocks
}

/// A scratch project directory: the repository's examples and test data where the README's
/// first command expects them, the REST example as `config/`, an engine archive and a Lambda
/// engine zip under the names the tour uses.
fn project() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let root = Path::new(REPO_ROOT);
    for name in ["examples", "testdata"] {
        std::os::unix::fs::symlink(root.join(name), d.path().join(name)).unwrap();
    }
    std::os::unix::fs::symlink(root.join("examples/rest"), d.path().join("config")).unwrap();
    let archive = d.path().join("imposter-4.9.3.tar");
    skopeo(&[
        "copy",
        "--quiet",
        "--all",
        &format!("oci:{REPO_ROOT}/testdata/engine-base:4.9.3"),
        &format!("oci-archive:{}:4.9.3", archive.display()),
    ]);
    let zip = d.path().join("imposter-awslambda.zip");
    let o = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, zipfile\n\
             with zipfile.ZipFile(sys.argv[1], 'w') as z:\n\
             \x20   z.writestr('lib/imposter-core.jar', bytes(range(256)) * 64)\n",
        )
        .arg(&zip)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    d
}

fn shell(env: &Env, cwd: &Path, cmd: &str) -> Run {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_mockimg")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = env.command("bash");
    c.args(["-euo", "pipefail", "-c", cmd])
        .current_dir(cwd)
        .env("PATH", path);
    Run::from(c.output().unwrap())
}

/// The value after `flag` in a command line, if any.
fn flag_value<'a>(cmd: &'a str, flag: &str) -> Option<&'a str> {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    words
        .iter()
        .position(|w| *w == flag)
        .and_then(|i| words.get(i + 1).copied())
}

/// Rewrites a README command to run here: registry hosts to the test registries, and a build
/// without `--base` (which would pull from docker.io) onto the same engine repository seeded in
/// the local registry.
fn localise(cmd: &str, public: &Registry, internal: &Registry) -> String {
    let mut c = cmd
        .replace("registry.example.com", &public.addr)
        .replace("registry.internal", &internal.addr);
    if c.contains("mockimg build") && !c.contains("--base") {
        let repo = match flag_value(&c, "--engine") {
            None | Some("core") => "imposter",
            Some("all") => "imposter-all",
            Some("distroless") => "imposter-distroless",
            Some(other) => panic!("README uses an engine this test doesn't seed: {other}"),
        };
        let version =
            flag_value(&c, "--engine-version").unwrap_or(mockimg::imposter::DEFAULT_ENGINE_VERSION);
        c.push_str(&format!(
            " --base {}/outofcoffee/{repo}:{version}",
            public.addr
        ));
    }
    c
}

#[test]
fn top_commands_run_as_written() {
    let blocks = sh_blocks(&readme());
    let top = &blocks[0];
    assert_eq!(top.len(), 2, "{top:?}");
    let build = &top[0];
    assert!(
        build.starts_with("cargo run --release -- build "),
        "{build}"
    );
    // The same command with the test's binary standing in for `cargo run --release --`.
    let cmd = build.replacen("cargo run --release --", "mockimg", 1);
    let cwd = project();
    let env = Env::new();
    let run = shell(&env, cwd.path(), &cmd);
    assert_eq!(run.code, 0, "{cmd}\n{}", run.stderr);
    let tar = cwd.path().join("mocks.tar");
    assert!(
        tar.is_file(),
        "mocks.tar not written in the working directory"
    );
    let digest = run.stdout.trim();
    // Both an OCI archive and a docker-archive, as the README says.
    let raw = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}:1.4", tar.display()),
    ]);
    assert_eq!(fixtures::sha256(raw.as_bytes()), digest);
    let docker = skopeo(&[
        "inspect",
        "--raw",
        &format!("docker-archive:{}", tar.display()),
    ]);
    assert!(docker.contains("\"layers\""), "{docker}");
    assert!(
        run.stderr.contains("wrote 2 platforms to mocks.tar"),
        "{}",
        run.stderr
    );

    // The second is this very test suite; it exists and is runnable.
    assert_eq!(top[1], "scripts/test");
    let script = Path::new(REPO_ROOT).join("scripts/test");
    use std::os::unix::fs::PermissionsExt;
    assert!(script.metadata().unwrap().permissions().mode() & 0o111 != 0);
}

#[test]
fn every_other_readme_command_runs() {
    let public = Registry::start();
    let internal = Registry::start();
    for repo in ["imposter", "imposter-all", "imposter-distroless"] {
        skopeo(&[
            "copy",
            "--quiet",
            "--all",
            "--dest-tls-verify=false",
            &format!("oci:{REPO_ROOT}/testdata/engine-base:4.9.3"),
            &format!(
                "docker://{}/outofcoffee/{repo}:{}",
                public.addr,
                mockimg::imposter::DEFAULT_ENGINE_VERSION
            ),
        ]);
    }
    let cwd = project();
    let env = Env::new();
    let blocks = sh_blocks(&readme());
    let cmds: Vec<&String> = blocks[1..].iter().flatten().collect();
    assert!(cmds.len() >= 8, "{cmds:?}");
    let mut ran: BTreeMap<String, usize> = BTreeMap::new();
    for cmd in &cmds {
        let local = localise(cmd, &public, &internal);
        let run = shell(&env, cwd.path(), &local);
        assert_eq!(
            run.code, 0,
            "README command failed: {cmd}\nran: {local}\n{}",
            run.stderr
        );
        if cmd.contains("--json") {
            let v: serde_json::Value = serde_json::from_str(run.stdout.trim())
                .unwrap_or_else(|e| panic!("{cmd}: stdout is not one JSON object ({e})"));
            assert!(v["digest"].is_string(), "{v}");
        }
        let sub = cmd
            .split_whitespace()
            .skip_while(|w| *w != "mockimg")
            .nth(1)
            .unwrap_or("")
            .to_string();
        *ran.entry(sub).or_default() += 1;
    }
    // The tour covers the whole job.
    for sub in ["build", "push", "inspect", "bundle", "validate"] {
        assert!(
            ran.contains_key(sub),
            "the tour never runs mockimg {sub}: {ran:?}"
        );
    }

    // What the tour says happened, did.
    let d = cwd.path();
    for f in ["mocks.tar", "bundle.zip", "digest.txt"] {
        assert!(d.join(f).is_file(), "{f} not written");
    }
    let exported = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}:1.4", d.join("mocks.tar").display()),
    ]);
    assert_eq!(
        raw_manifest(&internal.reference("team/mocks:1.4")),
        serde_json::from_str::<serde_json::Value>(&exported).unwrap(),
        "the air-gapped push carries the exported image unchanged"
    );
    let last = std::fs::read_to_string(d.join("digest.txt")).unwrap();
    let pushed = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{}", public.reference("team/mocks:1.4")),
    ]);
    assert_eq!(last.trim(), fixtures::sha256(pushed.as_bytes()));
    assert!(raw_manifest(&public.reference("team/mocks:latest"))["manifests"].is_array());
}

/// `--flag`s a `mockimg SUB` command line uses.
fn flags_of(cmd: &str) -> (String, Vec<String>) {
    let mut words = cmd.split_whitespace().skip_while(|w| *w != "mockimg");
    words.next();
    let sub = words.next().unwrap_or("").to_string();
    let flags = words
        .filter(|w| w.starts_with("--"))
        .map(|w| w.split('=').next().unwrap().to_string())
        .collect();
    (sub, flags)
}

#[test]
fn docs_examples_use_real_flags_and_valid_manifests() {
    let docs = Path::new(REPO_ROOT).join("docs");
    let files: Vec<PathBuf> = ["github-actions.yml", "gitlab-ci.yml", "kubernetes.yaml"]
        .iter()
        .map(|f| docs.join(f))
        .collect();
    let md = readme();
    for f in &files {
        let name = f.file_name().unwrap().to_str().unwrap();
        assert!(
            md.contains(&format!("(docs/{name})")),
            "README doesn't link docs/{name}"
        );
    }

    // Every mockimg command in the CI files (folded YAML lines joined) uses flags the binary has.
    let env = Env::new();
    let mut checked = 0;
    for f in &files[..2] {
        let text = std::fs::read_to_string(f).unwrap();
        let joined = text.replace("\\\n", " ");
        let mut lines: Vec<String> = Vec::new();
        for l in joined.lines() {
            let t = l.trim();
            // A `- >` folded scalar continues on the following, deeper-indented lines.
            if t.starts_with("--") && !lines.is_empty() {
                lines.last_mut().unwrap().push_str(&format!(" {t}"));
            } else {
                lines.push(t.to_string());
            }
        }
        let subs = [
            "build",
            "push",
            "inspect",
            "validate",
            "bundle",
            "completions",
        ];
        for l in lines
            .iter()
            .filter(|l| !l.starts_with('#') && subs.contains(&flags_of(l).0.as_str()))
        {
            let (sub, flags) = flags_of(l);
            let help = env.run(&[&sub, "--help"]).ok().stdout;
            for fl in flags {
                assert!(
                    help.contains(&format!("{fl} ")) || help.contains(&format!("{fl}\n")),
                    "{}: mockimg {sub} has no {fl}: {l}",
                    f.display()
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 4,
        "found only {checked} mockimg commands in the CI docs"
    );
    // No Docker daemon anywhere: no service containers (docker:dind), no docker commands.
    for f in &files[..2] {
        let text = std::fs::read_to_string(f).unwrap();
        let v: serde_json::Value = serde_norway::from_str(&text).unwrap();
        let mut stack = vec![&v];
        while let Some(x) = stack.pop() {
            match x {
                serde_json::Value::Object(m) => {
                    assert!(!m.contains_key("services"), "{}: services", f.display());
                    stack.extend(m.values());
                }
                serde_json::Value::Array(a) => stack.extend(a),
                serde_json::Value::String(s) => assert!(
                    !s.contains("dind") && !s.contains("docker "),
                    "{}: {s}",
                    f.display()
                ),
                _ => {}
            }
        }
    }

    // The Kubernetes manifest: a Deployment and a Service that selects its pods on the port the
    // engine listens on.
    let text = std::fs::read_to_string(&files[2]).unwrap();
    let docs: Vec<serde_json::Value> = serde_norway::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let kind = |k: &str| {
        docs.iter()
            .find(|d| d["kind"] == k)
            .unwrap_or_else(|| panic!("no {k}"))
    };
    let (dep, svc) = (kind("Deployment"), kind("Service"));
    let pod_labels = &dep["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&dep["spec"]["selector"]["matchLabels"], pod_labels);
    assert_eq!(&svc["spec"]["selector"], pod_labels);
    let c = &dep["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], c["ports"][0]["name"]);
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/system/status");
    assert!(c["image"].as_str().unwrap().contains("/team/mocks"));
}
