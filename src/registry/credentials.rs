//! Registry credentials, scoped to their registry as Docker and crane scope them:
//! `MOCKIMG_REGISTRY_USERNAME`/`_PASSWORD` apply only to the push targets (or to the one host
//! named by `MOCKIMG_REGISTRY`), so a CI job's token never reaches the base image's registry; then
//! the first of `REGISTRY_AUTH_FILE`, Podman's `auth.json` (`$XDG_RUNTIME_DIR/containers/`,
//! `~/.config/containers/`), `$DOCKER_CONFIG/config.json` or `~/.docker/config.json` that knows
//! the registry (inline `auths` with `auth`, `username`/`password` or `identitytoken`,
//! `credHelpers`, `credsStore`). Secrets never reach a log or an error.
use crate::error::{Error, Result};
use base64::Engine as _;
use serde_json::Value;
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A username and password for one registry. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) username: String,
    pub(crate) password: String,
    /// Where they came from, safe to print.
    pub(crate) origin: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Credentials({} from {}, password hidden)",
            self.username, self.origin
        )
    }
}

/// Environment variable with the username for the push targets; wins over any config file there.
pub const ENV_USER: &str = "MOCKIMG_REGISTRY_USERNAME";
/// Environment variable with the password that goes with [`ENV_USER`].
pub const ENV_PASS: &str = "MOCKIMG_REGISTRY_PASSWORD";
/// Environment variable naming the one registry the environment credentials are for.
pub const ENV_HOST: &str = "MOCKIMG_REGISTRY";

/// The credentials given in the environment ([`ENV_USER`], [`ENV_PASS`], [`ENV_HOST`]), read by
/// the caller and handed in through [`super::RegistryOptions`]. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvCredentials {
    /// [`ENV_USER`].
    pub username: String,
    /// [`ENV_PASS`].
    pub password: String,
    /// [`ENV_HOST`]: the one registry they are for; unset or empty, every push target.
    pub registry: Option<String>,
}

impl fmt::Debug for EnvCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "EnvCredentials({} for {}, password hidden)",
            self.username,
            self.registry.as_deref().unwrap_or("the push targets")
        )
    }
}

/// Whether the environment credentials belong to `registry`: the host `MOCKIMG_REGISTRY` names,
/// else any push target. A pull-only registry (the base's) never gets them: Docker Hub's token
/// server would otherwise receive the CI job's token for another registry, and refuse it.
fn env_applies_to(named: Option<&str>, registry: &str, push_hosts: &[String]) -> bool {
    match named.filter(|h| !h.is_empty()) {
        Some(h) => same_host(h, registry),
        None => push_hosts.iter().any(|h| same_host(h, registry)),
    }
}

/// The name lookup is asked under for a host as users write it: Docker Hub's aliases are
/// `docker.io`.
pub(crate) fn canonical_host(host: &str) -> String {
    if same_host(host, crate::oci::reference::DOCKER_HUB) {
        crate::oci::reference::DOCKER_HUB.to_string()
    } else {
        host.to_string()
    }
}

/// Whether `key` of a credentials file is one lookup would take for `host`.
pub(crate) fn key_is_for(key: &str, host: &str) -> bool {
    keys_for(&canonical_host(host)).iter().any(|k| k == key) || same_host(key, host)
}

/// Host names as users write them: `https://ghcr.io/`, `index.docker.io` and `docker.io` agree.
pub(crate) fn same_host(a: &str, b: &str) -> bool {
    let norm = |h: &str| {
        let h = h
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let h = h.split('/').next().unwrap_or(h);
        match h {
            "index.docker.io" | "registry-1.docker.io" => crate::oci::reference::DOCKER_HUB,
            other => other,
        }
        .to_ascii_lowercase()
    };
    norm(a) == norm(b)
}

/// The credentials for `registry`, from the first place that has some; `None` means anonymous.
/// `push_hosts` are the registries this run pushes to, `env` the environment's credentials
/// (see [`ENV_USER`]). A config file that exists but is broken is an error naming it, not a
/// silent anonymous pull.
pub(crate) fn lookup(
    registry: &str,
    push_hosts: &[String],
    env: Option<&EnvCredentials>,
) -> Result<Option<Credentials>> {
    if let Some(e) = env {
        if env_applies_to(e.registry.as_deref(), registry, push_hosts) {
            return Ok(Some(Credentials {
                username: e.username.clone(),
                password: e.password.clone(),
                origin: format!("{ENV_USER}/{ENV_PASS}"),
            }));
        }
    }
    for file in config_files() {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let v: Value = serde_json::from_str(&text).map_err(|e| {
            Error::path(
                &file,
                format!("is not valid JSON ({e}) — fix it or point DOCKER_CONFIG elsewhere"),
            )
        })?;
        if let Some(c) = from_config(&v, registry, &file)? {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// Whether a parsed credentials file has an inline entry or a helper for `registry`.
fn has_entry(v: &Value, registry: &str) -> bool {
    let keys = keys_for(registry);
    ["auths", "credHelpers"].iter().any(|k| {
        v.get(k)
            .and_then(Value::as_object)
            .is_some_and(|m| m.keys().any(|key| keys.contains(key)))
    })
}

/// The file whose entry for `registry` lookup takes, if it is not `written` (the file `login`
/// just wrote, or `logout` just cleaned): a stale Podman `auth.json` entry wins over Docker's
/// config, and the user should know which file is used. Inline entries and helpers only;
/// a `credsStore` fallback does not count.
pub(crate) fn shadowing_file(registry: &str, written: &std::path::Path) -> Option<PathBuf> {
    let registry = canonical_host(registry);
    let registry = registry.as_str();
    for file in config_files() {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if has_entry(&v, registry) {
            return (file != written).then_some(file);
        }
    }
    None
}

fn config_files() -> Vec<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let mut v = Vec::new();
    if let Some(f) = var("REGISTRY_AUTH_FILE") {
        v.push(PathBuf::from(f));
    }
    // Podman's and skopeo's defaults, so `podman login` works as `docker login` does.
    if let Some(d) = var("XDG_RUNTIME_DIR") {
        v.push(PathBuf::from(d).join("containers/auth.json"));
    }
    if let Some(h) = var("HOME") {
        v.push(PathBuf::from(h).join(".config/containers/auth.json"));
    }
    v.extend(docker_config_file());
    v
}

/// The file `mockimg login` writes: `REGISTRY_AUTH_FILE` when set, else Docker's config.
pub(crate) fn login_file() -> Result<PathBuf> {
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(f));
    }
    docker_config_file().ok_or_else(|| {
        Error::Usage("no HOME, DOCKER_CONFIG or REGISTRY_AUTH_FILE to store credentials in".into())
    })
}

fn docker_config_file() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// The keys a registry may be stored under; Docker Hub has its historical name.
fn keys_for(registry: &str) -> Vec<String> {
    let mut k = vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
        format!("https://{registry}/v1/"),
        format!("https://{registry}/v2/"),
    ];
    if registry == crate::oci::reference::DOCKER_HUB {
        k.push("https://index.docker.io/v1/".into());
        k.push("index.docker.io".into());
        k.push("https://index.docker.io".into());
        k.push("registry-1.docker.io".into());
        k.push("https://registry-1.docker.io".into());
    }
    k
}

/// The credentials a docker config (`file`, parsed as `v`) holds for `registry`: a credential
/// helper for it, then inline `auths`, then the default `credsStore`.
fn from_config(v: &Value, registry: &str, file: &std::path::Path) -> Result<Option<Credentials>> {
    let keys = keys_for(registry);
    if let Some(helpers) = v.get("credHelpers").and_then(Value::as_object) {
        for k in &keys {
            if let Some(h) = helpers.get(k).and_then(Value::as_str) {
                return helper(h, registry);
            }
        }
    }
    if let Some(auths) = v.get("auths").and_then(Value::as_object) {
        for k in &keys {
            let Some(entry) = auths.get(k) else { continue };
            // `docker login` to Azure Container Registry stores a refresh token; ACR's token
            // endpoint takes it as the password of the all-zero user.
            if let Some(t) = entry.get("identitytoken").and_then(Value::as_str) {
                let user = entry
                    .get("username")
                    .and_then(Value::as_str)
                    .filter(|u| !u.is_empty())
                    .unwrap_or("00000000-0000-0000-0000-000000000000");
                return Ok(Some(Credentials {
                    username: user.into(),
                    password: t.into(),
                    origin: file.display().to_string(),
                }));
            }
            if let Some(a) = entry.get("auth").and_then(Value::as_str) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(a.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        Error::path(file, format!("auths[{k:?}].auth is not base64 of user:password — run 'mockimg login {registry}' again"))
                    })?;
                let (u, p) = decoded.split_once(':').ok_or_else(|| {
                    Error::path(
                        file,
                        format!(
                            "auths[{k:?}].auth lacks a ':' — run 'mockimg login {registry}' again"
                        ),
                    )
                })?;
                return Ok(Some(Credentials {
                    username: u.into(),
                    password: p.into(),
                    origin: file.display().to_string(),
                }));
            }
            if let (Some(u), Some(p)) = (
                entry.get("username").and_then(Value::as_str),
                entry.get("password").and_then(Value::as_str),
            ) {
                return Ok(Some(Credentials {
                    username: u.into(),
                    password: p.into(),
                    origin: file.display().to_string(),
                }));
            }
        }
    }
    if let Some(store) = v.get("credsStore").and_then(Value::as_str) {
        return helper(store, registry);
    }
    Ok(None)
}

/// Runs `docker-credential-NAME get` the way docker does: server URL on stdin, JSON on stdout.
fn helper(name: &str, registry: &str) -> Result<Option<Credentials>> {
    let prog = format!("docker-credential-{name}");
    let mut child = Command::new(&prog)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            Error::Usage(format!(
                "credential helper {prog} for {registry} could not run ({e}) — install it or remove it from your docker config"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(registry.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Usage(format!("credential helper {prog} failed: {e}")))?;
    if !out.status.success() {
        // Helpers exit non-zero for "credentials not found in native keychain".
        return Ok(None);
    }
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|_| {
        Error::Usage(format!(
            "credential helper {prog} printed something that is not JSON"
        ))
    })?;
    let user = v.get("Username").and_then(Value::as_str).unwrap_or("");
    let secret = v.get("Secret").and_then(Value::as_str).unwrap_or("");
    if secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: user.into(),
        password: secret.into(),
        origin: prog,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn environment_credentials_stay_with_the_push_targets() {
        let push = vec!["ghcr.io".to_string()];
        assert!(env_applies_to(None, "ghcr.io", &push));
        assert!(!env_applies_to(None, "docker.io", &push));
        assert!(!env_applies_to(None, "docker.io", &[]));
        // MOCKIMG_REGISTRY names the one host, whatever is pushed.
        assert!(env_applies_to(Some("https://ghcr.io/"), "ghcr.io", &[]));
        assert!(!env_applies_to(
            Some("ghcr.io"),
            "registry.example",
            &["registry.example".into()]
        ));
        assert!(env_applies_to(Some("index.docker.io"), "docker.io", &[]));
        assert!(env_applies_to(Some(""), "ghcr.io", &push));
    }

    #[test]
    fn identity_tokens_are_used_as_the_password_of_the_token_user() {
        let v = json!({"auths": {"myacr.azurecr.io": {"auth": "MDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwOg==", "identitytoken": "refresh-abc"}}});
        let c = from_config(&v, "myacr.azurecr.io", std::path::Path::new("auth.json"))
            .unwrap()
            .unwrap();
        assert_eq!(c.username, "00000000-0000-0000-0000-000000000000");
        assert_eq!(c.password, "refresh-abc");
    }

    #[test]
    fn inline_auths_and_hub_alias() {
        let auth = base64::engine::general_purpose::STANDARD.encode("bob:s3cret");
        let v = json!({"auths": {"https://index.docker.io/v1/": {"auth": auth}, "127.0.0.1:5000": {"username": "u", "password": "p"}}});
        let f = std::path::Path::new("config.json");
        let c = from_config(&v, "docker.io", f).unwrap().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("bob", "s3cret")
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        let c = from_config(&v, "127.0.0.1:5000", f).unwrap().unwrap();
        assert_eq!(c.password, "p");
        assert!(from_config(&v, "other.example", f).unwrap().is_none());
    }

    #[test]
    fn bad_auth_field_is_a_clear_error() {
        let v = json!({"auths": {"r.example": {"auth": "!!notbase64"}}});
        let e = from_config(&v, "r.example", std::path::Path::new("c.json")).unwrap_err();
        assert!(e.to_string().contains("mockimg login r.example"), "{e}");
    }

    #[test]
    fn missing_helper_is_a_clear_error() {
        let v = json!({"credHelpers": {"r.example": "nonexistent-zzz"}});
        let e = from_config(&v, "r.example", std::path::Path::new("c.json")).unwrap_err();
        assert!(
            e.to_string().contains("docker-credential-nonexistent-zzz"),
            "{e}"
        );
    }
}
