//! The words of a failed registry request: one line naming the registry, what was being done
//! and, for refused access or a refused certificate, the fix. The failure itself, as data, and
//! the retry decision are `failure.rs`'s.
use super::failure::Failure;
use super::transport::Action;
use super::Registry;
use crate::error::Error;

impl Registry {
    /// The crate error for `cause` while doing `op`; `detail` says what happened when no fix
    /// applies. Refused access names the repository and the direction (`access`), not the blob
    /// or manifest that met it first.
    pub(crate) fn failed(
        &self,
        op: &str,
        access: Option<(Action, &str)>,
        cause: Failure,
        detail: String,
    ) -> Error {
        let host = &self.host;
        let (user, pass) = (super::credentials::ENV_USER, super::credentials::ENV_PASS);
        let refused = cause.is_unauthorized() || cause.status == Some(403);
        let message = if let Some(t) = &cause.tls {
            self.trust().message(t)
        } else if cause.is_unauthorized() {
            if self.has_credentials {
                format!("401 unauthorized — the stored credentials were refused; run 'mockimg login {host}' (or 'docker login {host}') again or fix {user}/{pass}")
            } else {
                format!("401 unauthorized — run 'mockimg login {host}' (or 'docker login {host}') or set {user}/{pass} for a push target")
            }
        } else if cause.status == Some(403) {
            format!("403 denied — the credentials for {host} lack permission for this repository")
        } else {
            detail
        };
        let operation = match access {
            Some((action, repo)) if refused => format!("{} {repo}", action.verb()),
            _ => op.to_string(),
        };
        Error::Registry {
            registry: self.host.clone(),
            operation,
            message,
            cause,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RegistryOptions;

    #[test]
    fn refused_access_names_the_repository_and_the_direction() {
        let reg = Registry::connect("127.0.0.1:9", &RegistryOptions::default()).unwrap();
        let op = "checking blob sha256:ab in 127.0.0.1:9/team/mocks";
        let push = reg.failed(
            op,
            Some((Action::Push, "127.0.0.1:9/team/mocks")),
            Failure::status(401),
            "HTTP 401".into(),
        );
        assert!(
            push.to_string()
                .starts_with("pushing to 127.0.0.1:9/team/mocks: 401 unauthorized — run 'mockimg login 127.0.0.1:9'"),
            "{push}"
        );
        let pull = reg.failed(
            "fetching manifest 127.0.0.1:9/base:1",
            Some((Action::Pull, "127.0.0.1:9/base:1")),
            Failure::status(403),
            String::new(),
        );
        assert!(
            pull.to_string()
                .starts_with("pulling 127.0.0.1:9/base:1: 403 denied"),
            "{pull}"
        );
        // Anything else keeps the operation and says what happened.
        let other = reg.failed(
            op,
            Some((Action::Push, "127.0.0.1:9/team/mocks")),
            Failure::status(500),
            "HTTP 500: oops".into(),
        );
        assert_eq!(other.to_string(), format!("{op}: HTTP 500: oops"));
        assert!(other.is_retryable());
    }
}
