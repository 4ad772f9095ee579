//! Our own requests on the hot path of a pull or push, so that round trips are ours to count:
//! at most one auth probe (`GET /v2/`) per registry per process (none without credentials: the
//! first 401 carries the challenge), one token per scope set kept until it expires, and response
//! headers (`Retry-After`, `Location`, `Docker-Content-Digest`) in view.
//!
//! oci-client asks `GET /v2/` again before every request for which it holds no token, and an
//! anonymous registry never gives it one, so on such a registry every request cost two.
use super::error::root_cause;
use super::Registry;
use crate::error::{Error, Result};
use bytes::Bytes;
use oci_client::errors::{OciDistributionError, OciEnvelope};
use reqwest::header::{HeaderMap, AUTHORIZATION, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use std::time::{Duration, Instant};

/// A `Retry-After` longer than this is not waited out whole: the usual backoff takes over.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A token is renewed this long before the registry says it expires, so that it does not run
/// out between being picked and being used.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);

/// What the token server grants when it does not say (the distribution spec's default).
pub(super) const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// A request body: bytes can be sent again (after a 401 or a redirect), a stream cannot.
pub(crate) enum Body {
    /// No body.
    Empty,
    /// A body held in memory.
    Bytes(Bytes),
    /// A streamed body of this many bytes.
    Stream(reqwest::Body, u64),
}

/// What the auth probe learnt about a registry: the challenge it sends, or that it needs none.
pub(crate) type Probe = Option<String>;

/// One cached `Authorization` value and when to stop using it.
pub(crate) struct Token {
    value: Option<String>,
    until: Instant,
}

impl Registry {
    /// `GET /v2/` once per registry per process: its `WWW-Authenticate` (if any) says how every
    /// later request is authorised.
    async fn probe(&self) -> Result<&Probe> {
        self.probe
            .get_or_try_init(|| async {
                let op = "checking the registry API (/v2/)";
                self.retry(op, || async {
                    let url = format!("{}/v2/", self.base_url().await?);
                    let res = self
                        .client(op)?
                        .get(&url)
                        .send()
                        .await
                        .map_err(|e| self.error(op, OciDistributionError::RequestError(e)))?;
                    tracing::debug!(target: "mockimg::http", "GET {url} {}", res.status().as_u16());
                    if res.status() == StatusCode::UNAUTHORIZED {
                        Ok(res
                            .headers()
                            .get(WWW_AUTHENTICATE)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string))
                    } else if res.status().is_server_error() || res.status().as_u16() == 429 {
                        Err(self.status_error(op, res).await)
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
    pub(crate) async fn authorization(&self, scopes: &[String]) -> Result<Option<String>> {
        let key = scopes.join(" ");
        if let Some(t) = self.tokens.lock().await.get(&key) {
            if Instant::now() < t.until {
                return Ok(t.value.clone());
            }
        }
        // Without credentials there is nothing to send before a registry asks: requests go
        // anonymous, and the first 401 brings the challenge (see `send`), which saves the probe's
        // round trip on an open registry. With credentials, one probe per process, so that they
        // go with the first request (a registry may answer 404 rather than 401 to a stranger).
        let challenge = match self.probe.get() {
            Some(p) => p.clone(),
            None if self.creds.is_some() => self.probe().await?.clone(),
            None => None,
        };
        let Some(challenge) = challenge else {
            return Ok(None);
        };
        let what = auth_op(&self.host, scopes);
        let (value, life) = self
            .retry(&what, || async {
                self.authorization_for(&challenge, scopes)
                    .await
                    .map_err(|e| self.error(&what, e))
            })
            .await?;
        // A token server grants what it may of what was asked; a push token without push
        // (no credentials, or credentials for another account) fails here, before any work,
        // rather than after an unchanged image was found and nothing was written.
        if let Some(token) = value.as_deref().and_then(|v| v.strip_prefix("Bearer ")) {
            for scope in scopes.iter().filter(|s| s.ends_with(",push")) {
                if granted(token, scope) == Some(false) {
                    return Err(self.error(
                        &what,
                        OciDistributionError::UnauthorizedError { url: scope.clone() },
                    ));
                }
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

    async fn forget_token(&self, scopes: &[String]) {
        self.tokens.lock().await.remove(&scopes.join(" "));
    }

    /// `scheme://host`, settling the scheme first (once per host per process).
    pub(crate) async fn base_url(&self) -> Result<String> {
        Ok(format!("{}://{}", self.scheme_to_use().await, self.host))
    }

    fn client(&self, op: &str) -> Result<&reqwest::Client> {
        self.http_or_why().map_err(|why| Error::Registry {
            registry: self.host.clone(),
            operation: op.to_string(),
            message: format!("cannot set up the HTTP client: {why}"),
            cause: Default::default(),
        })
    }

    /// One request to this registry (`path` starts with `/v2/`, or is a full URL the registry
    /// gave us), authorised for `scopes`. Any status comes back as a response; a transport
    /// failure as an error. A 401 renews the token and tries once more when the body allows.
    pub(crate) async fn send(
        &self,
        op: &str,
        scopes: &[String],
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Body,
    ) -> Result<reqwest::Response> {
        let url = if path.starts_with('/') {
            format!("{}{path}", self.base_url().await?)
        } else {
            path.to_string()
        };
        let client = self.client(op)?;
        let mut body = Some(body);
        for attempt in 0..2 {
            let auth = self.authorization(scopes).await?;
            let mut req = client
                .request(method.clone(), &url)
                .headers(headers.clone());
            // Credentials go to this registry only, never to a host a Location points at.
            if let Some(a) = auth.as_ref().filter(|_| self.same_host(&url)) {
                req = req.header(AUTHORIZATION, a);
            }
            let again = match body.take().expect("one body per attempt") {
                Body::Empty => {
                    req = req.header("Content-Length", "0");
                    Some(Body::Empty)
                }
                Body::Bytes(b) => {
                    req = req.body(b.clone());
                    Some(Body::Bytes(b))
                }
                Body::Stream(s, len) => {
                    req = req.header("Content-Length", len).body(s);
                    None
                }
            };
            let started = Instant::now();
            let res = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    // `-v` shows every attempt, answered or not.
                    tracing::debug!(
                        target: "mockimg::http",
                        "{method} {} no response ({})",
                        strip_query_secrets(&url),
                        root_cause(&e)
                    );
                    return Err(self.error(op, OciDistributionError::RequestError(e)));
                }
            };
            tracing::debug!(
                target: "mockimg::http",
                "{method} {} {}",
                strip_query_secrets(&url),
                res.status().as_u16()
            );
            tracing::trace!("… answered in {} ms", started.elapsed().as_millis());
            if res.status() == StatusCode::UNAUTHORIZED && attempt == 0 {
                let learnt = match res.headers().get(WWW_AUTHENTICATE) {
                    Some(h) if self.probe.get().is_none() => {
                        // The challenge the probe would have fetched, for free.
                        let _ = self.probe.set(h.to_str().ok().map(str::to_string));
                        true
                    }
                    _ => false,
                };
                if let Some(b) = again.filter(|_| learnt || auth.is_some()) {
                    // A token for the challenge just learnt, or a fresh one in place of one
                    // revoked or expired early.
                    self.forget_token(scopes).await;
                    body = Some(b);
                    continue;
                }
            }
            return Ok(res);
        }
        unreachable!("the loop returns on its second pass")
    }

    fn same_host(&self, url: &str) -> bool {
        reqwest::Url::parse(url).is_ok_and(|u| {
            let hp = match u.port() {
                Some(p) => format!("{}:{p}", u.host_str().unwrap_or("")),
                None => u.host_str().unwrap_or("").to_string(),
            };
            hp == self.host
        })
    }

    /// The crate error for an unexpected answer, read like oci-client reads one (so that error
    /// codes, messages and retry decisions stay the same), with `Retry-After` kept.
    pub(crate) async fn status_error(&self, op: &str, res: reqwest::Response) -> Error {
        let status = res.status();
        let url = strip_query_secrets(res.url().as_str());
        let retry_after = retry_after(status, res.headers());
        let body = res.bytes().await.unwrap_or_default();
        let e = oci_error(status, &body, &url);
        match self.error(op, e) {
            Error::Registry {
                registry,
                operation,
                message,
                mut cause,
            } => {
                cause.retry_after =
                    retry_after.map(|d| u16::try_from(d.as_secs()).unwrap_or(u16::MAX));
                Error::Registry {
                    registry,
                    operation,
                    message,
                    cause,
                }
            }
            other => other,
        }
    }

    /// Follows the `Location` of a redirect (blob storage on another host), without our
    /// credentials when it leaves this registry.
    pub(crate) async fn follow(
        &self,
        op: &str,
        scopes: &[String],
        mut res: reqwest::Response,
    ) -> Result<reqwest::Response> {
        for _ in 0..5 {
            if !res.status().is_redirection() {
                return Ok(res);
            }
            let Some(loc) = res.headers().get(LOCATION).and_then(|v| v.to_str().ok()) else {
                return Ok(res);
            };
            let next = res
                .url()
                .join(loc)
                .map_err(|e| self.invalid_answer(op, &e.to_string()))?;
            res = self
                .send(
                    op,
                    scopes,
                    Method::GET,
                    next.as_str(),
                    HeaderMap::new(),
                    Body::Empty,
                )
                .await?;
        }
        Err(self.invalid_answer(op, "too many redirects"))
    }

    pub(crate) fn invalid_answer(&self, op: &str, msg: &str) -> Error {
        self.error(
            op,
            OciDistributionError::GenericError(Some(msg.to_string())),
        )
    }

    /// An absolute URL for a `Location` the registry answered with.
    pub(crate) fn location(&self, op: &str, res: &reqwest::Response) -> Result<reqwest::Url> {
        let loc = res
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.invalid_answer(op, "the upload session has no Location"))?;
        res.url()
            .join(loc)
            .map_err(|e| self.invalid_answer(op, &root_cause(&e)))
    }
}

/// `authenticating to push HOST/REPO` (or `to pull`) for the first scope: the wording
/// `error::access_op` reads refused access from.
fn auth_op(host: &str, scopes: &[String]) -> String {
    let first = scopes.first().map(String::as_str).unwrap_or("");
    let mut parts = first.splitn(3, ':');
    let (_, repo, actions) = (parts.next(), parts.next(), parts.next());
    let verb = if actions.is_some_and(|a| a.contains("push")) {
        "push"
    } else {
        "pull"
    };
    format!("authenticating to {verb} {host}/{}", repo.unwrap_or(""))
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

/// An answer as oci-client would have reported it.
fn oci_error(status: StatusCode, body: &[u8], url: &str) -> OciDistributionError {
    match status {
        StatusCode::UNAUTHORIZED => OciDistributionError::UnauthorizedError {
            url: url.to_string(),
        },
        s if s.is_client_error() => match serde_json::from_slice::<OciEnvelope>(body) {
            Ok(envelope) => OciDistributionError::RegistryError {
                envelope,
                url: url.to_string(),
            },
            Err(_) => OciDistributionError::ServerError {
                code: s.as_u16(),
                url: url.to_string(),
                message: String::from_utf8_lossy(body).into_owned(),
            },
        },
        s => OciDistributionError::ServerError {
            code: s.as_u16(),
            url: url.to_string(),
            message: String::from_utf8_lossy(body).into_owned(),
        },
    }
}

/// The wait a 429 or 503 asks for, in seconds; other statuses ask for none. (An HTTP date is
/// read as no hint: registries send seconds, and the usual backoff covers the rest.)
pub(crate) fn retry_after(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    v.parse::<u64>().ok().map(Duration::from_secs)
}

/// Upload session URLs may carry state in their query (`_state=…`); logs keep the path and
/// only the parameters that are ours (`digest`, `mount`, `from`).
fn strip_query_secrets(url: &str) -> String {
    let Some((path, q)) = url.split_once('?') else {
        return url.to_string();
    };
    let kept: Vec<&str> = q
        .split('&')
        .filter(|kv| {
            ["digest=", "mount=", "from="]
                .iter()
                .any(|k| kv.starts_with(k))
        })
        .collect();
    if kept.is_empty() {
        path.to_string()
    } else {
        // Digests read as digests: `sha256:…`, not `sha256%3A…`.
        format!("{path}?{}", kept.join("&").replace("%3A", ":"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn with_retry_after(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn retry_after_in_seconds_is_read_on_429_and_503() {
        let h = with_retry_after("7");
        assert_eq!(
            retry_after(StatusCode::TOO_MANY_REQUESTS, &h),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(StatusCode::SERVICE_UNAVAILABLE, &h),
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn retry_after_is_ignored_on_other_statuses_and_when_unreadable() {
        assert_eq!(
            retry_after(StatusCode::INTERNAL_SERVER_ERROR, &with_retry_after("7")),
            None
        );
        assert_eq!(
            retry_after(StatusCode::TOO_MANY_REQUESTS, &with_retry_after("soon")),
            None
        );
        assert_eq!(
            retry_after(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new()),
            None
        );
    }

    #[test]
    fn a_4xx_with_an_error_body_keeps_its_code() {
        let e = oci_error(
            StatusCode::NOT_FOUND,
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"no"}]}"#,
            "u",
        );
        assert!(matches!(e, OciDistributionError::RegistryError { .. }));
        let e = oci_error(StatusCode::SERVICE_UNAVAILABLE, b"down", "u");
        assert!(matches!(
            e,
            OciDistributionError::ServerError { code: 503, .. }
        ));
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
    fn token_failures_name_the_repository_and_the_direction() {
        let push = vec!["repository:team/mocks:pull,push".to_string()];
        assert_eq!(
            auth_op("r:5000", &push),
            "authenticating to push r:5000/team/mocks"
        );
        let pull = vec!["repository:imposter:pull".to_string()];
        assert_eq!(auth_op("r", &pull), "authenticating to pull r/imposter");
    }

    #[test]
    fn upload_state_is_kept_out_of_logs() {
        assert_eq!(
            strip_query_secrets("http://r/v2/a/blobs/uploads/x?_state=abc&digest=d"),
            "http://r/v2/a/blobs/uploads/x?digest=d"
        );
        assert_eq!(
            strip_query_secrets("http://r/v2/a/blobs/uploads/x?_state=abc"),
            "http://r/v2/a/blobs/uploads/x"
        );
        assert_eq!(strip_query_secrets("http://r/v2/"), "http://r/v2/");
    }
}
