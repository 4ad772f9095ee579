//! Authentication: oci-client's token handshake for pulls and pushes, and our own answer to a
//! `WWW-Authenticate` challenge where oci-client asks for too narrow a scope (mounts).
use super::Registry;
use crate::error::Result;
use crate::oci::reference::RegistryRef;
use oci_client::RegistryOperation;

impl Registry {
    /// Gets oci-client a token for `op` on `r`'s repository (or learns that none is needed).
    pub(crate) async fn authenticate(&self, r: &RegistryRef, op: RegistryOperation) -> Result<()> {
        let what = match op {
            RegistryOperation::Push => format!("authenticating to push {}", r.repo_name()),
            RegistryOperation::Pull => format!("authenticating to pull {}", r.repo_name()),
        };
        self.retry(&what, || async {
            let res = self.oci().await?.auth(&r.to_oci(), &self.auth, op).await;
            self.log_http("GET", "/v2/", &res, "200");
            res.map(|_| ()).map_err(|e| self.error(&what, e))
        })
        .await
    }

    /// An `Authorization` value answering a `WWW-Authenticate` challenge: Basic with our
    /// credentials, or a Bearer token fetched from the realm for exactly `scopes`. `None` when
    /// there is no answer; the caller then does without.
    pub(super) async fn authorization_for(
        &self,
        challenge: &str,
        scopes: &[String],
    ) -> Option<String> {
        use base64::Engine as _;
        let basic = self.creds.as_ref().map(|c| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", c.username, c.password))
            )
        });
        let challenge = Challenge::parse(challenge)?;
        if challenge.scheme.eq_ignore_ascii_case("basic") {
            return basic;
        }
        if !challenge.scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let realm = challenge.param("realm")?;
        let mut q: Vec<(&str, &str)> = Vec::new();
        if let Some(svc) = challenge.param("service") {
            q.push(("service", svc));
        }
        for s in scopes {
            q.push(("scope", s));
        }
        let mut req = self.http()?.get(realm).query(&q);
        if let Some(b) = &basic {
            req = req.header(reqwest::header::AUTHORIZATION, b);
        }
        let res = req.send().await.ok()?;
        // The URL carries only service and scopes; credentials travel in the header.
        tracing::debug!(target: "mockimg::http", "GET {} {}", res.url(), res.status().as_u16());
        if !res.status().is_success() {
            tracing::debug!("token request for a mount answered {}", res.status());
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&res.bytes().await.ok()?).ok()?;
        let t = v.get("token").or_else(|| v.get("access_token"))?.as_str()?;
        Some(format!("Bearer {t}"))
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

/// The token scopes a mount of a blob from `from` into `target` needs: push (and pull) on the
/// target, and pull on the source, which oci-client leaves out (oci-client issue #235).
pub(super) fn mount_scopes(target: &RegistryRef, from: &RegistryRef) -> Vec<String> {
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
