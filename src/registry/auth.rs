//! Authorization: the `Authorization` value for a scope set (one probe per process with
//! credentials, one token per scope set until it expires), the answer to a `WWW-Authenticate`
//! challenge (Basic, or a Bearer token for exactly the scopes a request needs, mounts included),
//! and the scopes themselves.
use super::failure::{ErrorCode, Failure};
use super::transport::Action;
use super::Registry;
use crate::error::Result;
use crate::oci::reference::RegistryRef;
use reqwest::header::WWW_AUTHENTICATE;
use reqwest::StatusCode;
use std::time::{Duration, Instant};

/// A token is renewed this long before the registry says it expires, so that it does not run
/// out between being picked and being used.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);

/// What the token server grants when it does not say (the distribution spec's default).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// What the auth probe learnt about a registry: the challenge it sends, or that it needs none.
pub(crate) type Probe = Option<String>;

/// One cached `Authorization` value and when to stop using it.
pub(crate) struct Token {
    value: Option<String>,
    until: Instant,
}

impl Registry {
    /// Makes sure requests for `action` on `r`'s repository are authorised (the probe and the
    /// token are cached, so this costs round trips only the first time), so that refused access
    /// is reported before any work.
    pub(crate) async fn authenticate(&self, r: &RegistryRef, action: Action) -> Result<()> {
        self.authorization(action, &scopes_for(r, action))
            .await
            .map(|_| ())
    }

    /// `GET /v2/` once per registry per process: its `WWW-Authenticate` (if any) says how every
    /// later request is authorised.
    async fn probe(&self) -> Result<&Probe> {
        self.probe
            .get_or_try_init(|| async {
                let op = "checking the registry API (/v2/)";
                self.retry(op, || async {
                    let url = format!("{}/v2/", self.base_url().await?);
                    let res =
                        self.client(op)?.get(&url).send().await.map_err(|e| {
                            self.transport_error(op, (Action::Pull, &self.host), &e)
                        })?;
                    tracing::debug!(target: "mockimg::http", "GET {url} {}", res.status().as_u16());
                    let status = res.status();
                    if status == StatusCode::UNAUTHORIZED {
                        Ok(res
                            .headers()
                            .get(WWW_AUTHENTICATE)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string))
                    } else if status.is_server_error() || status.as_u16() == 429 {
                        let after = super::transport::retry_after(status, res.headers());
                        let body = res.bytes().await.unwrap_or_default();
                        let (mut cause, detail) = Failure::of_answer(status.as_u16(), &body);
                        cause.retry_after =
                            after.map(|d| u16::try_from(d.as_secs()).unwrap_or(u16::MAX));
                        Err(self.failed(op, None, cause, detail))
                    } else {
                        Ok(None)
                    }
                })
                .await
            })
            .await
    }

    /// The `Authorization` value for requests needing `scopes`: none for an open registry,
    /// Basic, or a bearer token fetched once per scope set and reused until it expires.
    pub(crate) async fn authorization(
        &self,
        action: Action,
        scopes: &[String],
    ) -> Result<Option<String>> {
        let key = scopes.join(" ");
        if let Some(t) = self.tokens.lock().await.get(&key) {
            if Instant::now() < t.until {
                return Ok(t.value.clone());
            }
        }
        // Without credentials there is nothing to send before a registry asks: requests go
        // anonymous, and the first 401 brings the challenge (see `transport::send`), which saves
        // the probe's round trip on an open registry. With credentials, one probe per process,
        // so that they go with the first request (a registry may answer 404 rather than 401 to
        // a stranger).
        let challenge = match self.probe.get() {
            Some(p) => p.clone(),
            None if self.creds.is_some() => self.probe().await?.clone(),
            None => None,
        };
        let Some(challenge) = challenge else {
            return Ok(None);
        };
        let repo = format!("{}/{}", self.host, scope_repo(scopes));
        let what = format!(
            "authenticating to {} {repo}",
            if action == Action::Push {
                "push"
            } else {
                "pull"
            }
        );
        let (value, life) = self
            .retry(&what, || {
                self.authorization_for(&challenge, scopes, &what, (action, &repo))
            })
            .await?;
        // A token server grants what it may of what was asked; a push token without push
        // (no credentials, or credentials for another account) fails here, before any work,
        // rather than after an unchanged image was found and nothing was written.
        if let Some(token) = value.as_deref().and_then(|v| v.strip_prefix("Bearer ")) {
            if scopes
                .iter()
                .filter(|s| s.ends_with(",push"))
                .any(|scope| granted(token, scope) == Some(false))
            {
                let cause = Failure::status(401);
                return Err(self.failed(&what, Some((action, &repo)), cause, String::new()));
            }
        }
        let until = Instant::now()
            + life
                .saturating_sub(TOKEN_MARGIN)
                .max(Duration::from_secs(1));
        self.tokens.lock().await.insert(
            key,
            Token {
                value: value.clone(),
                until,
            },
        );
        Ok(value)
    }

    pub(super) async fn forget_token(&self, scopes: &[String]) {
        self.tokens.lock().await.remove(&scopes.join(" "));
    }

    /// An `Authorization` value answering a `WWW-Authenticate` challenge, and how long it lasts:
    /// Basic with our credentials, or a Bearer token fetched from the realm for exactly
    /// `scopes`. `None` when the challenge asks for nothing we can give; the request then goes
    /// without, and the registry's answer says what is wrong.
    async fn authorization_for(
        &self,
        challenge: &str,
        scopes: &[String],
        op: &str,
        access: (Action, &str),
    ) -> Result<(Option<String>, Duration)> {
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
        let mut req = self.client(op)?.get(realm).query(&q);
        if let Some(b) = &basic {
            req = req.header(reqwest::header::AUTHORIZATION, b);
        }
        let res = req
            .send()
            .await
            .map_err(|e| self.transport_error(op, access, &e))?;
        // The URL carries only service and scopes; credentials travel in the header.
        tracing::debug!(target: "mockimg::http", "GET {} {}", res.url(), res.status().as_u16());
        let status = res.status();
        let body = res
            .bytes()
            .await
            .map_err(|e| self.transport_error(op, access, &e))?;
        if status.is_server_error() || status.as_u16() == 429 {
            let (cause, detail) = Failure::of_answer(status.as_u16(), &body);
            return Err(self.failed(op, Some(access), cause, detail));
        }
        if !status.is_success() {
            // The token server refused us: unauthorized, whatever status it chose.
            let cause = Failure::code(ErrorCode::Unauthorized);
            let detail = String::from_utf8_lossy(&body).into_owned();
            return Err(self.failed(op, Some(access), cause, detail));
        }
        let unreadable = |why: String| {
            self.failed(
                op,
                None,
                Failure::default(),
                format!("the token server's answer is unreadable: {why}"),
            )
        };
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| unreadable(e.to_string()))?;
        let t = v
            .get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .ok_or_else(|| unreadable("no token in the answer".into()))?;
        let life = v
            .get("expires_in")
            .and_then(|e| e.as_u64())
            .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
        Ok((Some(format!("Bearer {t}")), life))
    }
}

/// The repository of the first scope (`repository:NAME:actions`), which refused access names.
fn scope_repo(scopes: &[String]) -> &str {
    let first = scopes.first().map(String::as_str).unwrap_or("");
    first.split(':').nth(1).unwrap_or("")
}

/// The scopes one pull or push of `r` needs.
pub(crate) fn scopes_for(r: &RegistryRef, action: Action) -> Vec<String> {
    match action {
        Action::Pull => vec![format!("repository:{}:pull", r.repository)],
        Action::Push => vec![format!("repository:{}:pull,push", r.repository)],
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
/// target, and pull on the source (a token for push alone cannot read the blob it would mount).
/// One scope set for the whole push, so one token.
pub(crate) fn mount_scopes(target: &RegistryRef, from: &RegistryRef) -> Vec<String> {
    vec![
        format!("repository:{}:pull,push", target.repository),
        format!("repository:{}:pull", from.repository),
    ]
}

/// Whether a JWT bearer token grants every action of `scope` (`repository:NAME:a,b`), read from
/// its unverified `access` claim (the registry verifies; this only asks what it will say).
/// `None` for a token that is not a JWT with such a claim: then only the registry can tell.
pub(crate) fn granted(token: &str, scope: &str) -> Option<bool> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let access = claims.get("access")?.as_array()?;
    let mut parts = scope.splitn(3, ':');
    let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
    let entry = access.iter().find(|a| {
        a.get("type").and_then(|t| t.as_str()) == Some(kind)
            && a.get("name").and_then(|n| n.as_str()) == Some(name)
    });
    let Some(entry) = entry else {
        return Some(false);
    };
    let have: Vec<&str> = entry
        .get("actions")
        .and_then(|a| a.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    Some(
        actions
            .split(',')
            .all(|want| have.contains(&want) || have.contains(&"*")),
    )
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

    fn jwt(claims: serde_json::Value) -> String {
        use base64::Engine as _;
        let e = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.sig",
            e(br#"{"alg":"none"}"#),
            e(claims.to_string().as_bytes())
        )
    }

    #[test]
    fn a_token_without_push_is_seen_as_not_granting_push() {
        let t = jwt(serde_json::json!({"access": [
            {"type": "repository", "name": "team/mocks", "actions": ["pull"]}
        ]}));
        assert_eq!(granted(&t, "repository:team/mocks:pull,push"), Some(false));
        assert_eq!(granted(&t, "repository:team/mocks:pull"), Some(true));
        assert_eq!(granted(&t, "repository:other:pull"), Some(false));
    }

    #[test]
    fn a_token_with_push_or_a_wildcard_grants_it() {
        let t = jwt(serde_json::json!({"access": [
            {"type": "repository", "name": "a", "actions": ["pull", "push"]},
            {"type": "repository", "name": "b", "actions": ["*"]}
        ]}));
        assert_eq!(granted(&t, "repository:a:pull,push"), Some(true));
        assert_eq!(granted(&t, "repository:b:pull,push"), Some(true));
    }

    #[test]
    fn an_opaque_token_leaves_the_decision_to_the_registry() {
        assert_eq!(granted("opaque-token", "repository:a:pull,push"), None);
        assert_eq!(
            granted(&jwt(serde_json::json!({"sub": "x"})), "repository:a:push"),
            None
        );
    }

    #[test]
    fn refused_access_names_the_repository_of_the_first_scope() {
        let push = vec![
            "repository:team/mocks:pull,push".to_string(),
            "repository:base:pull".to_string(),
        ];
        assert_eq!(scope_repo(&push), "team/mocks");
        assert_eq!(scope_repo(&[]), "");
    }
}
