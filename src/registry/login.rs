//! `mockimg login` and `logout`: check credentials against the registry the way `docker login`
//! does, then keep them in the file the credential lookup reads, so a daemonless CI runner needs
//! no Docker CLI. The file is written whole, mode 0600, through the one atomic writer.
use super::auth::Challenge;
use super::credentials;
use super::failure::Failure;
use super::{Registry, RegistryOptions};
use crate::atomic::AtomicFile;
use crate::error::{Error, Result};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Checks `username`/`password` against `host`, then stores them; returns the file written.
pub async fn login(
    host: &str,
    username: &str,
    password: &str,
    opts: &RegistryOptions,
) -> Result<PathBuf> {
    if username.is_empty() || password.is_empty() {
        return Err(Error::Usage(
            "login needs a username (-u) and a password (--password-stdin)".into(),
        ));
    }
    let reg = Registry::connect(host, opts)?;
    reg.check_login(username, password).await?;
    let file = credentials::login_file()?;
    store(&file, host, username, password)?;
    if let Some(other) = credentials::shadowing_file(host, &file) {
        tracing::warn!(
            "{host}: builds will use the credentials in {}, which is read before {} — remove its entry for {host} (podman logout {host}) to use these",
            other.display(),
            file.display()
        );
    }
    Ok(file)
}

/// Removes the stored credentials for `host`; `Ok(false)` when there were none.
pub fn logout(host: &str) -> Result<(PathBuf, bool)> {
    let file = credentials::login_file()?;
    let Some(mut v) = read(&file)? else {
        return Ok((file, false));
    };
    // Every key lookup would take for this host: `http://HOST`, `https://HOST/v1/`, Docker
    // Hub's aliases; leaving one would keep the login alive.
    let removed = v
        .get_mut("auths")
        .and_then(Value::as_object_mut)
        .map(|a| {
            let before = a.len();
            a.retain(|k, _| !credentials::key_is_for(k, host));
            a.len() != before
        })
        .unwrap_or(false);
    if removed {
        write(&file, &v)?;
    }
    if let Some(other) = credentials::shadowing_file(host, &file) {
        tracing::warn!(
            "{host}: {} still holds credentials for it, and builds will use them",
            other.display()
        );
    }
    Ok((file, removed))
}

/// Adds or replaces `auths[host]`, keeping everything else in the file (helpers, other hosts).
fn store(file: &Path, host: &str, username: &str, password: &str) -> Result<()> {
    let mut v = read(file)?.unwrap_or_else(|| json!({}));
    let obj = v
        .as_object_mut()
        .ok_or_else(|| Error::path(file, "is not a JSON object — fix or remove it"))?;
    let auths = obj
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    auths
        .as_object_mut()
        .expect("made an object above")
        .insert(host.to_string(), json!({ "auth": auth }));
    write(file, &v)
}

fn read(file: &Path) -> Result<Option<Value>> {
    match std::fs::read(file) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
            Error::path(
                file,
                format!("is not valid JSON ({e}) — fix it or point DOCKER_CONFIG elsewhere"),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("reading", file, e)),
    }
}

/// Where a write to `file` must go so a symlinked `config.json` (dotfiles managers link it)
/// stays a link: the file at the end of its links.
fn through_links(file: &Path) -> Result<PathBuf> {
    let mut p = file.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target =
                    std::fs::read_link(&p).map_err(|e| Error::io("reading link", &p, e))?;
                p = crate::atomic::parent_of(&p).join(target);
            }
            _ => return Ok(p),
        }
    }
    Err(Error::path(
        file,
        "is a loop of symlinks — fix or remove it",
    ))
}

/// Credentials files are secrets: 0600 in a 0700 directory when mockimg creates it.
fn write(file: &Path, v: &Value) -> Result<()> {
    let file = &through_links(file)?;
    let dir = crate::atomic::parent_of(file);
    if !dir.exists() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io("creating", dir, e))?;
    }
    let mut f = AtomicFile::create(file)?;
    let tmp = f.temp_path().to_path_buf();
    let mut bytes = serde_json::to_vec_pretty(v).expect("a Value always serialises");
    bytes.push(b'\n');
    f.write_all(&bytes)
        .map_err(|e| Error::io("writing", tmp, e))?;
    f.commit(0o600)
}

impl Registry {
    /// Answers the registry's challenge for `/v2/` with these credentials, as `docker login`
    /// does: Basic directly, Bearer by asking the token server for a token without scopes.
    async fn check_login(&self, username: &str, password: &str) -> Result<()> {
        let refused = |status: u16| {
            Error::Registry {
            registry: self.host.clone(),
            operation: "logging in".into(),
            message: format!(
                "{status} — the registry refused username {username:?} with this password; check both (a token may need the right scopes)"
            ),
            cause: Failure {
                status: Some(status),
                ..Default::default()
            },
        }
        };
        let unreachable = |e: reqwest::Error| Error::Registry {
            registry: self.host.clone(),
            operation: "logging in".into(),
            message: format!(
                "cannot connect ({}) — check the host name and port",
                super::failure::root_cause(&e)
            ),
            cause: Failure {
                io: super::failure::transport_kind(&e),
                ..Default::default()
            },
        };
        let http = self.http_or_why().map_err(|why| {
            Error::Usage(format!(
                "no HTTP client could be made for {}: {why}",
                self.host
            ))
        })?;
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
        );
        let url = format!("{}/v2/", self.base_url().await?);
        let res = http.get(&url).send().await.map_err(unreachable)?;
        tracing::debug!(target: "mockimg::http", "GET {url} {}", res.status().as_u16());
        if res.status().is_success() {
            return Ok(());
        }
        if res.status().as_u16() != 401 {
            return Err(refused(res.status().as_u16()));
        }
        let challenge = res
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .and_then(Challenge::parse)
            .ok_or_else(|| refused(401))?;
        let res = if challenge.scheme.eq_ignore_ascii_case("bearer") {
            let realm = challenge.param("realm").ok_or_else(|| refused(401))?;
            let mut q = vec![("account", username)];
            if let Some(svc) = challenge.param("service") {
                q.push(("service", svc));
            }
            http.get(realm)
                .query(&q)
                .header(reqwest::header::AUTHORIZATION, &basic)
                .send()
                .await
                .map_err(unreachable)?
        } else {
            http.get(&url)
                .header(reqwest::header::AUTHORIZATION, &basic)
                .send()
                .await
                .map_err(unreachable)?
        };
        tracing::debug!(target: "mockimg::http", "GET {} {}", res.url().path(), res.status().as_u16());
        if res.status().is_success() {
            Ok(())
        } else {
            Err(refused(res.status().as_u16()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn store_keeps_other_entries_and_writes_0600() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("docker/config.json");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(
            &file,
            r#"{"credHelpers": {"gcr.io": "gcloud"}, "auths": {"other.example": {"auth": "eDp5"}}}"#,
        )
        .unwrap();
        store(&file, "r.example:5000", "ci", "s3cret").unwrap();
        let v: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(v["credHelpers"]["gcr.io"], "gcloud");
        assert_eq!(v["auths"]["other.example"]["auth"], "eDp5");
        assert_eq!(v["auths"]["r.example:5000"]["auth"], "Y2k6czNjcmV0");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_new_directory_is_private() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("new/config.json");
        store(&file, "r.example", "u", "p").unwrap();
        let mode = std::fs::metadata(file.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn a_broken_file_is_named_not_overwritten() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("config.json");
        std::fs::write(&file, "{not json").unwrap();
        let e = store(&file, "r.example", "u", "p").unwrap_err();
        assert!(e.to_string().contains("config.json"), "{e}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "{not json");
    }
}
