//! `mockimg login` and `logout`: the host as users type it, the password from stdin.
use super::args::{LoginArgs, LogoutArgs};
use super::exit::job_error;
use crate::error::Error;
use anyhow::Context as _;

/// A registry host as users type it (`https://ghcr.io/` works as `ghcr.io`).
fn login_host(host: &str) -> Result<String, Error> {
    let h = host
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    if h.is_empty() || h.contains('/') || h.contains('@') {
        return Err(Error::Usage(format!(
            "login: {host:?} is not a registry host — give HOST[:PORT], e.g. ghcr.io"
        )));
    }
    Ok(h.to_string())
}

pub(super) async fn run_login(a: LoginArgs) -> anyhow::Result<()> {
    let host = login_host(&a.host)?;
    let mut password = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut password)
        .context("reading the password from standard input")?;
    let password = password.trim_end_matches(['\n', '\r']);
    let file = crate::registry::login(&host, &a.username, password, &a.registry.options())
        .await
        .map_err(|e| job_error(e, || format!("logging in to {host}")))?;
    eprintln!(
        "logged in to {host} as {}; credentials stored in {}",
        a.username,
        file.display()
    );
    Ok(())
}

pub(super) fn run_logout(a: LogoutArgs) -> anyhow::Result<()> {
    let host = login_host(&a.host)?;
    let (file, removed) = crate::registry::logout(&host)?;
    if removed {
        eprintln!("removed the credentials for {host} from {}", file.display());
    } else {
        eprintln!("no credentials for {host} in {}", file.display());
    }
    Ok(())
}
