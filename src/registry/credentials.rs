//! Registry credentials: `MOCKIMG_REGISTRY_USERNAME`/`_PASSWORD`, then the first of
//! `REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json`, `~/.docker/config.json` that knows the
//! registry (inline `auths`, `credHelpers`, `credsStore`). Secrets never reach a log or an error.
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

/// Environment variable with the username for every registry; wins over any config file.
pub(crate) const ENV_USER: &str = "MOCKIMG_REGISTRY_USERNAME";
/// Environment variable with the password that goes with [`ENV_USER`].
pub(crate) const ENV_PASS: &str = "MOCKIMG_REGISTRY_PASSWORD";

/// The credentials for `registry`, from the first place that has some; `None` means anonymous.
/// A config file that exists but is broken is an error naming it, not a silent anonymous pull.
pub(crate) fn lookup(registry: &str) -> Result<Option<Credentials>> {
    if let (Ok(u), Ok(p)) = (std::env::var(ENV_USER), std::env::var(ENV_PASS)) {
        return Ok(Some(Credentials {
            username: u,
            password: p,
            origin: format!("{ENV_USER}/{ENV_PASS}"),
        }));
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

fn config_files() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        v.push(PathBuf::from(f));
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        v.push(PathBuf::from(d).join("config.json"));
    } else if let Some(h) = std::env::var_os("HOME") {
        v.push(PathBuf::from(h).join(".docker/config.json"));
    }
    v
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
            if let Some(a) = entry.get("auth").and_then(Value::as_str) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(a.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        Error::path(file, format!("auths[{k:?}].auth is not base64 of user:password — run 'docker login {registry}' again"))
                    })?;
                let (u, p) = decoded.split_once(':').ok_or_else(|| {
                    Error::path(
                        file,
                        format!(
                            "auths[{k:?}].auth lacks a ':' — run 'docker login {registry}' again"
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
        assert!(e.to_string().contains("docker login r.example"), "{e}");
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
