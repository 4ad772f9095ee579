//! The protocol tier: registry protocol edges scripted against an in-process registry
//! (`fake.rs`), with no external tool (no docker-registry, skopeo, umoci, Docker or moto). The
//! base images come from the fixture builder as OCI layouts loaded into the fake, or from the
//! committed `testdata/` layout.
mod chunked;
#[path = "../common/mod.rs"]
mod common;
mod fake;
mod referrers;
mod referrers_tag;

use common::{fixtures, Env, Run};
use fake::{Body, Fake, Resp};
use std::time::{Duration, Instant};

/// A fake registry holding the two-platform engine-like base at `imposter:4.9.3`.
fn with_base(
    hook: impl Fn(&fake::Req, &mut fake::State) -> Option<Resp> + Send + Sync + 'static,
) -> (Fake, String) {
    with_image(fixtures::engine_like(false), hook)
}

fn with_image(
    base: fixtures::Base,
    hook: impl Fn(&fake::Req, &mut fake::State) -> Option<Resp> + Send + Sync + 'static,
) -> (Fake, String) {
    let reg = Fake::start(hook);
    let dir = tempfile::tempdir().unwrap();
    let root = fixtures::write_layout(dir.path(), &base, "seed");
    reg.load_layout(dir.path(), "imposter", "4.9.3", &root);
    (reg, root)
}

fn run(env: &Env, args: &[&str]) -> Run {
    env.run(args)
}

/// Every blob the manifests under `repo:tag` name is in the fake registry.
fn complete(reg: &Fake, repo: &str, tag: &str) -> bool {
    let st = reg.state.lock().unwrap();
    let Some(root) = st.tags.get(&(repo.to_string(), tag.to_string())) else {
        return false;
    };
    let mut todo = vec![root.clone()];
    while let Some(d) = todo.pop() {
        let Some(b) = st.blobs.get(&d) else {
            return false;
        };
        let v: serde_json::Value = match serde_json::from_slice(b) {
            Ok(v) => v,
            Err(_) => continue,
        };
        for key in ["manifests", "layers"] {
            for e in v[key].as_array().into_iter().flatten() {
                todo.push(e["digest"].as_str().unwrap().to_string());
            }
        }
        if let Some(c) = v["config"]["digest"].as_str() {
            todo.push(c.to_string());
        }
    }
    true
}

#[test]
fn a_token_refused_mid_pull_is_renewed_once_and_the_request_repeated() {
    // One platform, so that one request at a time meets the revoked token.
    let single = fixtures::Base {
        single: true,
        ..fixtures::engine_like(false)
    };
    let (reg, _) = with_image(single, |req, st| {
        // After the manifest came, every token issued so far stops working: the config's
        // request meets a 401, as with a token revoked or expired early.
        if req.method == "GET" && req.path().contains("/blobs/") && st.issued == 1 {
            st.valid_tokens.retain(|t| t == "none");
        }
        None
    });
    reg.state.lock().unwrap().valid_tokens = vec!["none".into()];
    let out = run(&Env::new(), &["inspect", &reg.reference("imposter:4.9.3")]).ok();
    assert!(out.stdout.contains("amd64"), "{}", out.stdout);
    let st = reg.state.lock().unwrap();
    assert_eq!(
        st.issued,
        2,
        "one token, then one renewal: {:#?}",
        reg_log(&st)
    );
    // The refused request was repeated with the new token and answered.
    let refused: Vec<_> = st
        .log
        .iter()
        .filter(|(r, s)| *s == 401 && r.header("authorization").is_some())
        .collect();
    assert_eq!(refused.len(), 1, "{:#?}", reg_log(&st));
    let again = st
        .log
        .iter()
        .find(|(r, s)| *s == 200 && r.target == refused[0].0.target)
        .expect("the refused request repeated");
    assert_eq!(again.0.header("authorization"), Some("Bearer tok-2"));
}

fn reg_log(st: &fake::State) -> Vec<String> {
    st.log
        .iter()
        .map(|(r, s)| format!("{} {} {s}", r.method, r.target))
        .collect()
}

#[test]
fn a_declined_mount_uploads_into_the_session_its_202_opened() {
    let (reg, _) = with_base(|req, st| {
        (req.method == "POST" && req.query("mount").is_some()).then(|| {
            let id = format!("m{}", st.log.len());
            st.open_upload(&id);
            Resp::new(202).header("Location", &format!("/v2/team/mocks/blobs/uploads/{id}"))
        })
    });
    let target = reg.reference("team/mocks:1");
    let base = reg.reference("imposter:4.9.3");
    let out = run(
        &Env::new(),
        &["build", "examples/rest", "--base", &base, "--push", &target],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(complete(&reg, "team/mocks", "1"), "{:#?}", reg.requests());
    let seen = reg.seen();
    let mounts: Vec<_> = seen
        .iter()
        .filter(|(r, _)| r.method == "POST" && r.query("mount").is_some())
        .collect();
    assert!(!mounts.is_empty(), "{:#?}", reg.requests());
    for (m, status) in &mounts {
        assert_eq!(*status, 202);
        let digest = m.query("mount").unwrap();
        // The blob went into a session a mount opened, and no new session was asked for.
        let put = seen.iter().find(|(r, _)| {
            r.method == "PUT"
                && r.path().contains("/blobs/uploads/m")
                && r.query("digest").as_deref() == Some(digest.as_str())
        });
        assert!(
            put.is_some_and(|(_, s)| *s == 201),
            "{digest}: {:#?}",
            reg.requests()
        );
        assert!(
            !seen.iter().any(|(r, _)| r.method == "POST"
                && r.query("mount").is_none()
                && r.query("digest").as_deref() == Some(digest.as_str())),
            "{digest} was uploaded again from scratch"
        );
    }
}

#[test]
fn retry_after_is_waited_out_before_the_next_try() {
    let (reg, _) = with_base(|req, st| {
        let throttled = st.log.iter().any(|(_, s)| *s == 429);
        (req.path().contains("/manifests/4.9.3") && !throttled)
            .then(|| Resp::new(429).header("Retry-After", "2"))
    });
    let started = Instant::now();
    // Backoff of 20 ms: only the registry's Retry-After makes this take two seconds.
    run(&Env::new(), &["inspect", &reg.reference("imposter:4.9.3")]).ok();
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(2), "{took:?}");
    let log = reg.requests();
    let i = log.iter().position(|l| l.ends_with(" 429")).unwrap();
    assert!(log[i + 1].ends_with(" 200"), "{log:#?}");
}

#[test]
fn credentials_are_not_sent_to_the_host_a_redirect_names() {
    // Object storage on another port: another host to the client.
    let blobs = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
        String,
        Vec<u8>,
    >::new()));
    let held = blobs.clone();
    let storage = Fake::start(move |req, _| {
        let d = req.path().trim_start_matches("/storage/");
        Some(match held.lock().unwrap().get(d) {
            Some(b) => Resp::new(200).body(b.clone()),
            None => Resp::new(404),
        })
    });
    let storage_addr = storage.addr.clone();
    let (reg, _) = with_base(move |req, _| {
        (req.method == "GET" && req.path().contains("/blobs/sha256:")).then(|| {
            let d = req.path().rsplit('/').next().unwrap();
            Resp::new(307).header("Location", &format!("http://{storage_addr}/storage/{d}"))
        })
    });
    *blobs.lock().unwrap() = reg.state.lock().unwrap().blobs.clone();
    reg.state.lock().unwrap().valid_tokens = vec!["none".into()];
    let env = Env::new();
    env.docker_login(&reg.addr, "ci", "s3cret-password");
    let layout = tempfile::tempdir().unwrap();
    let out_dir = layout.path().join("out");
    let out = run(
        &env,
        &[
            "build",
            "examples/rest",
            "--base",
            &reg.reference("imposter:4.9.3"),
            "--oci-layout",
            out_dir.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let at_storage = storage.seen();
    assert!(!at_storage.is_empty(), "no download was redirected");
    for (r, s) in &at_storage {
        assert_eq!(*s, 200);
        assert_eq!(
            r.header("authorization"),
            None,
            "{} carried credentials",
            r.target
        );
    }
    // The registry itself did get them: the redirects came from authorised requests.
    assert!(reg
        .seen()
        .iter()
        .any(|(r, s)| *s == 307 && r.header("authorization") == Some("Bearer tok-1")));
}

#[test]
fn a_registry_that_declines_single_request_uploads_gets_post_then_put() {
    let reg = Fake::start(|req, st| {
        // A POST with the blob is answered as one without: a session, the body ignored.
        (req.method == "POST" && !req.body.is_empty()).then(|| {
            let id = format!("d{}", st.log.len());
            st.open_upload(&id);
            Resp::new(202).header("Location", &format!("/v2/team/mocks/blobs/uploads/{id}"))
        })
    });
    let target = reg.reference("team/mocks:1");
    let out = run(
        &Env::new(),
        &[
            "build",
            "examples/rest",
            "--base",
            "oci:testdata/engine-base:4.9.3",
            "--push",
            &target,
            "--jobs",
            "1",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(complete(&reg, "team/mocks", "1"), "{:#?}", reg.requests());
    let seen = reg.seen();
    let with_body = seen
        .iter()
        .filter(|(r, _)| r.method == "POST" && !r.body.is_empty())
        .count();
    // Tried once, then not again in this process.
    assert_eq!(with_body, 1, "{:#?}", reg.requests());
    let puts = seen
        .iter()
        .filter(|(r, s)| r.method == "PUT" && r.path().contains("/blobs/uploads/") && *s == 201)
        .count();
    let posts = seen.iter().filter(|(r, _)| r.method == "POST").count();
    assert_eq!(
        puts,
        posts,
        "every session got its blob: {:#?}",
        reg.requests()
    );
}

#[test]
fn a_registry_that_sends_every_body_chunked_is_read_and_written_whole() {
    let (reg, _) = with_base(|_, _| None);
    reg.state.lock().unwrap().chunked = true;
    let target = reg.reference("team/mocks:1");
    let layout = tempfile::tempdir().unwrap();
    let out_dir = layout.path().join("out");
    let out = run(
        &Env::new(),
        &[
            "build",
            "examples/rest",
            "--base",
            &reg.reference("imposter:4.9.3"),
            "--push",
            &target,
            "--oci-layout",
            out_dir.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(complete(&reg, "team/mocks", "1"), "{:#?}", reg.requests());
    // Manifests, configs and layers all came chunked, and the layout holds every layer.
    let layers = std::fs::read_dir(out_dir.join("blobs/sha256"))
        .unwrap()
        .count();
    assert!(layers >= 8, "{layers} blobs in the layout");
    let shown = run(&Env::new(), &["inspect", &target]).ok();
    assert!(shown.stdout.contains("arm64"), "{}", shown.stdout);
}

/// Peak resident memory of a child, in kB, polled from /proc until it exits (or `limit` runs
/// out, or it passes 1 GB: then it is killed, so that a regression does not take the machine's
/// memory with it).
fn run_measured(env: &Env, args: &[&str], limit: Duration) -> (Run, u64, Duration) {
    let mut c = env.command(env!("CARGO_BIN_EXE_mockimg"));
    c.args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let started = Instant::now();
    let mut child = c.spawn().unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status) {
            if let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kb);
            }
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > limit || peak > 1 << 20 {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = started.elapsed();
    (Run::from(child.wait_with_output().unwrap()), peak, took)
}

#[test]
fn an_endless_manifest_fails_fast_in_bounded_memory() {
    let (reg, _) = with_base(|req, _| {
        req.path().contains("/manifests/").then(|| Resp {
            status: 200,
            headers: vec![(
                "Content-Type".into(),
                "application/vnd.oci.image.index.v1+json".into(),
            )],
            body: Body::Endless,
        })
    });
    let (out, peak_kb, took) = run_measured(
        &Env::new(),
        &["inspect", &reg.reference("imposter:4.9.3")],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert!(
        out.stderr.contains("manifest") && out.stderr.contains("4 MiB"),
        "{}",
        out.stderr
    );
    // An unbounded read grows by hundreds of MB a second; the cap keeps it near the baseline.
    assert!(peak_kb < 150 * 1024, "peak RSS {peak_kb} kB");
    // Final: no retry reads it again.
    let gets = reg
        .requests()
        .iter()
        .filter(|l| l.starts_with("GET ") && l.contains("/manifests/"))
        .count();
    assert_eq!(gets, 1, "{:#?}", reg.requests());
}

#[test]
fn a_blob_longer_than_its_descriptor_is_refused_naming_its_digest() {
    let (reg, root) = with_base(|_, _| None);
    // The amd64 config, served with bytes its descriptor does not count.
    let config = {
        let st = reg.state.lock().unwrap();
        let index: serde_json::Value = serde_json::from_slice(&st.blobs[&root]).unwrap();
        let m = index["manifests"][0]["digest"].as_str().unwrap();
        let m: serde_json::Value = serde_json::from_slice(&st.blobs[m]).unwrap();
        m["config"]["digest"].as_str().unwrap().to_string()
    };
    {
        let mut st = reg.state.lock().unwrap();
        let padded = [st.blobs[&config].clone(), vec![b' '; 1 << 20]].concat();
        st.blobs.insert(config.clone(), padded);
    }
    // Announced by its Content-Length, then without one (chunked): refused either way.
    for chunked in [false, true] {
        reg.state.lock().unwrap().chunked = chunked;
        let out = run(&Env::new(), &["inspect", &reg.reference("imposter:4.9.3")]);
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(out.stderr.contains(&config), "{}", out.stderr);
        assert!(out.stderr.contains("descriptor"), "{}", out.stderr);
    }
}

#[tokio::test]
async fn tags_are_listed_across_every_page_the_link_header_names() {
    let reg = Fake::start(|req, _| {
        if !req.path().ends_with("/tags/list") {
            return None;
        }
        Some(match req.query("last").as_deref() {
            None => Resp::new(200)
                .header(
                    "Link",
                    r#"</v2/team/mocks/tags/list?n=2&last=b>; rel="next""#,
                )
                .body(r#"{"name":"team/mocks","tags":["a","b"]}"#),
            Some("b") => Resp::new(200)
                .header(
                    "Link",
                    r#"</v2/team/mocks/tags/list?n=2&last=d>; rel="next""#,
                )
                .body(r#"{"name":"team/mocks","tags":["c","d"]}"#),
            Some(_) => Resp::new(200).body(r#"{"name":"team/mocks","tags":["e"]}"#),
        })
    });
    let r = mockimg::oci::RegistryRef::parse(&reg.reference("team/mocks:1")).unwrap();
    let conn = mockimg::registry::Registry::connect(&r.registry, &Default::default()).unwrap();
    let tags = conn.tags_list(&r).await.unwrap();
    assert_eq!(tags, ["a", "b", "c", "d", "e"]);
    assert_eq!(
        conn.referrers(&r, "sha256:00").await.unwrap().map(|_| ()),
        None
    );
}
