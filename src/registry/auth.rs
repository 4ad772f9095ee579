//! Authentication: oci-client's token handshake for pulls and pushes, and our own answer to a
//! `WWW-Authenticate` challenge where oci-client asks for too narrow a scope (mounts).
use super::Registry;
use crate::error::Result;
use crate::oci::reference::RegistryRef;
use oci_client::errors::OciDistributionError;
use oci_client::RegistryOperation;
use std::time::Duration;

impl Registry {
    /// Makes sure requests for `op` on `r`'s repository are authorised (the probe and the token
    /// are cached, so this costs round trips only the first time), so that refused access is
    /// reported before any work.
    pub(crate) async fn authenticate(&self, r: &RegistryRef, op: RegistryOperation) -> Result<()> {
        self.authorization(&scopes_for(r, op)).await.map(|_| ())
    }

    /// An `Authorization` value answering a `WWW-Authenticate` challenge, and how long it lasts:
    /// Basic with our credentials, or a Bearer token fetched from the realm for exactly
    /// `scopes`. `None` when the challenge asks for nothing we can give; the request then goes
    /// without, and the registry's answer says what is wrong.
    pub(super) async fn authorization_for(
        &self,
        challenge: &str,
        scopes: &[String],
    ) -> std::result::Result<(Option<String>, Duration), OciDistributionError> {
        use base64::Engine as _;
        let forever = Duration::from_secs(u64::from(u32::MAX));
        let basic = self.creds.as_ref().map(|c| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", c.username, c.password))
            )
        });
        let Some(challenge) = Challenge::parse(challenge) else {
            return Ok((basic, forever));
        };
        if challenge.scheme.eq_ignore_ascii_case("basic") {
            return Ok((basic, forever));
        }
        let Some(realm) = challenge
            .param("realm")
            .filter(|_| challenge.scheme.eq_ignore_ascii_case("bearer"))
        else {
            return Ok((None, forever));
        };
        let mut q: Vec<(&str, &str)> = Vec::new();
        if let Some(svc) = challenge.param("service") {
            q.push(("service", svc));
        }
        for s in scopes {
            q.push(("scope", s));
        }
        let http = self.http_or_why().map_err(|why| {
            OciDistributionError::GenericError(Some(format!("no HTTP client: {why}")))
        })?;
        let mut req = http.get(realm).query(&q);
        if let Some(b) = &basic {
            req = req.header(reqwest::header::AUTHORIZATION, b);
        }
        let res = req.send().await?;
        // The URL carries only service and scopes; credentials travel in the header.
        tracing::debug!(target: "mockimg::http", "GET {} {}", res.url(), res.status().as_u16());
        let status = res.status();
        let body = res.bytes().await?;
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(OciDistributionError::ServerError {
                code: status.as_u16(),
                url: realm.to_string(),
                message: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        if !status.is_success() {
            // What oci-client reported for a refusing token server: read as unauthorized.
            return Err(OciDistributionError::AuthenticationFailure(
                String::from_utf8_lossy(&body).into_owned(),
            ));
        }
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| OciDistributionError::RegistryTokenDecodeError(e.to_string()))?;
        let t = v
            .get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .ok_or_else(|| {
                OciDistributionError::RegistryTokenDecodeError("no token in the answer".into())
            })?;
        let life = v
            .get("expires_in")
            .and_then(|e| e.as_u64())
            .map_or(super::http::DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
        Ok((Some(format!("Bearer {t}")), life))
    }
}

/// The scopes one pull or push of `r` needs.
pub(crate) fn scopes_for(r: &RegistryRef, op: RegistryOperation) -> Vec<String> {
    match op {
        RegistryOperation::Pull => vec![format!("repository:{}:pull", r.repository)],
        RegistryOperation::Push => vec![format!("repository:{}:pull,push", r.repository)],
    }
}

/// A parsed `WWW-Authenticate` header: `Bearer realm="…",service="…",scope="…"`.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Challenge {
    /// `Bearer`, `Basic`, … as sent.
    pub(super) scheme: String,
    /// Parameters in order, keys lowercased, values unquoted.
    params: Vec<(String, String)>,
}

impl Challenge {
    /// `None` for a header that is not a challenge (a key without `=`, an unclosed quote).
    pub(super) fn parse(h: &str) -> Option<Self> {
        let h = h.trim();
        let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
        let mut params = Vec::new();
        let mut rest = rest.trim();
        while !rest.is_empty() {
            let (k, after) = rest.split_once('=')?;
            let after = after.trim_start();
            // A quoted value may hold commas (`scope="repository:a:pull,push"`).
            let (v, tail) = if let Some(q) = after.strip_prefix('"') {
                let end = q.find('"')?;
                (&q[..end], &q[end + 1..])
            } else {
                after.split_once(',').unwrap_or((after, ""))
            };
            params.push((
                k.trim().trim_start_matches(',').trim().to_lowercase(),
                v.to_string(),
            ));
            rest = tail.trim_start_matches([',', ' ']);
        }
        Some(Challenge {
            scheme: scheme.to_string(),
            params,
        })
    }

    pub(super) fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The token scopes a push to `target` with mounts from `from` needs: push (and pull) on the
/// target, and pull on the source, which oci-client leaves out (oci-client issue #235). One
/// scope set for the whole push, so one token.
pub(crate) fn mount_scopes(target: &RegistryRef, from: &RegistryRef) -> Vec<String> {
    vec![
        format!("repository:{}:pull,push", target.repository),
        format!("repository:{}:pull", from.repository),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(c.param("realm"), Some("https://auth.example/token"));
        assert_eq!(c.param("service"), Some("registry.example"));
        assert_eq!(c.param("scope"), Some("repository:a/b:pull,push"));
        assert_eq!(c.params.len(), 3);
    }

    #[test]
    fn parses_basic_challenge() {
        let c = Challenge::parse(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(c.scheme, "Basic");
        assert_eq!(c.params, vec![("realm".into(), "Registry Realm".into())]);
        let bare = Challenge::parse("Basic").unwrap();
        assert!(bare.params.is_empty());
    }

    #[test]
    fn challenge_keeps_commas_inside_quotes_and_reads_unquoted_values() {
        let c = Challenge::parse(
            r#"Bearer Realm="https://a/t?x=1,y=2", service=reg,scope="repository:x:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.param("realm"), Some("https://a/t?x=1,y=2"));
        assert_eq!(c.param("service"), Some("reg"));
        assert_eq!(c.param("scope"), Some("repository:x:pull,push"));
    }

    #[test]
    fn malformed_challenge_is_none() {
        assert_eq!(Challenge::parse(r#"Bearer realm="unclosed"#), None);
        assert_eq!(Challenge::parse("Bearer realm"), None);
    }

    #[test]
    fn mount_asks_for_pull_on_the_source_and_push_on_the_target() {
        let target = RegistryRef::parse("r.example/team/mocks:1").unwrap();
        let from = RegistryRef::parse("r.example/outofcoffee/imposter:4").unwrap();
        assert_eq!(
            mount_scopes(&target, &from),
            vec![
                "repository:team/mocks:pull,push".to_string(),
                "repository:outofcoffee/imposter:pull".to_string(),
            ]
        );
    }
}
