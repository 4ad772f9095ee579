//! Credentials stay with the registry they belong to: a blob download redirected to another
//! host (as registries do to object storage) is followed without the registry's Authorization.
mod common;
use base64::Engine as _;
use common::proxy::{Fault, Proxy};
use common::*;

#[test]
fn redirected_blob_downloads_do_not_carry_registry_credentials() {
    let password = "redirect-s3cret";
    let reg = Registry::start_with_auth("ci", password);
    seed(
        &reg,
        &fixtures::engine_like(false),
        "imposter:4.9.3",
        false,
        Some(&format!("ci:{password}")),
    );
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("ci:{password}"))
    );
    // "Object storage" on another origin: it has its own access to the blobs.
    let storage = Proxy::start_with_upstream_auth(&reg.addr, &basic);
    let front = Proxy::start(&reg.addr);
    front.rule(
        "GET",
        "/blobs/sha256:",
        1000,
        Fault::Redirect(format!("http://{}", storage.addr)),
    );

    let env = Env::new();
    env.docker_login(&front.addr, "ci", password);
    let out = env.home.path().join("mocks.tar");
    let run = env
        .run(&[
            "build",
            "examples/rest",
            "--base",
            &front.reference("imposter:4.9.3"),
            "--output",
            out.to_str().unwrap(),
            "-v",
        ])
        .ok();
    assert!(out.is_file());
    assert!(!run.stderr.contains(password) && !run.stdout.contains(password));

    let redirected: Vec<_> = front
        .seen()
        .into_iter()
        .filter(|s| s.method == "GET" && s.path.contains("/blobs/"))
        .collect();
    assert!(
        !redirected.is_empty(),
        "blob downloads went through the registry first"
    );
    assert!(
        redirected.iter().all(|s| s.authorized),
        "the registry itself got credentials"
    );
    let fetched: Vec<_> = storage.seen();
    assert_eq!(
        fetched.len(),
        redirected.len(),
        "every redirect was followed"
    );
    assert!(
        fetched.iter().all(|s| !s.authorized),
        "no Authorization sent to another host: {fetched:?}"
    );

    // And the archive is right: the config is in it for the host platform.
    let (_keep, rootfs) = unpack_from(&format!("oci-archive:{}", out.display()), "amd64", false);
    assert!(rootfs
        .join("opt/imposter/config/hello-config.yaml")
        .is_file());
}
