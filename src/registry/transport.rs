//! The transport: one call, [`Registry::send`], that takes a [`Request`] and gives back the
//! registry's response, whatever its status, or the failure of the transport itself. It owns
//! what every request shares: the base URL and scheme, the `Authorization` header (one token per
//! scope set, the challenge learnt from the first 401; see `auth.rs`), a 401 answered once with
//! a fresh token, credentials kept from any host but this registry, and `-v` logging. What a
//! request means is the API's business (`api/`).
use super::failure::{root_cause, Failure};
use super::Registry;
use crate::error::{Error, Result};
use bytes::Bytes;
use reqwest::header::{HeaderMap, AUTHORIZATION, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use std::time::{Duration, Instant};

/// A `Retry-After` longer than this is not waited out whole: the usual backoff takes over.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Which way a request goes: the direction refused access is reported in ("pulling …",
/// "pushing to …").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Reading from the repository.
    Pull,
    /// Writing to the repository.
    Push,
}

impl Action {
    /// The words refused access is reported in, before the repository.
    pub(crate) fn verb(self) -> &'static str {
        match self {
            Action::Pull => "pulling",
            Action::Push => "pushing to",
        }
    }
}

/// A request body: bytes can be sent again (after a 401 or a redirect), a stream cannot.
pub(crate) enum Body {
    /// No body.
    Empty,
    /// A body held in memory.
    Bytes(Bytes),
    /// A streamed body of this many bytes.
    Stream(reqwest::Body, u64),
}

/// One request to a registry, as the API builds it.
pub(crate) struct Request<'a> {
    /// Pull or push: refused access is reported as "pulling REPO" or "pushing to REPO".
    pub(crate) action: Action,
    /// What refused access names: `HOST/REPO`, or the reference asked for.
    pub(crate) repo: &'a str,
    /// What is being done, for messages ("fetching manifest HOST/REPO:TAG").
    pub(crate) op: &'a str,
    /// The token scopes the request is authorised for (`repository:NAME:pull,push`, …).
    pub(crate) scopes: &'a [String],
    /// The HTTP method.
    pub(crate) method: Method,
    /// `/v2/…` on this registry, or a full URL the registry gave (an upload session, a
    /// redirect).
    pub(crate) path: &'a str,
    /// Headers besides `Authorization`.
    pub(crate) headers: HeaderMap,
    /// The body.
    pub(crate) body: Body,
}

/// Who asks, of a [`Request`]: kept after the request is sent, to word its failure or to send
/// a follow-up (a redirect, an upload's second step).
#[derive(Clone, Copy)]
pub(crate) struct Ask<'a> {
    /// As [`Request::action`].
    pub(crate) action: Action,
    /// As [`Request::repo`].
    pub(crate) repo: &'a str,
    /// As [`Request::op`].
    pub(crate) op: &'a str,
    /// As [`Request::scopes`].
    pub(crate) scopes: &'a [String],
}

impl<'a> Request<'a> {
    /// Who asks.
    pub(crate) fn ask(&self) -> Ask<'a> {
        Ask {
            action: self.action,
            repo: self.repo,
            op: self.op,
            scopes: self.scopes,
        }
    }
}

impl<'a> Ask<'a> {
    /// A request by the same asker.
    pub(crate) fn request(
        self,
        method: Method,
        path: &'a str,
        headers: HeaderMap,
        body: Body,
    ) -> Request<'a> {
        Request {
            action: self.action,
            repo: self.repo,
            op: self.op,
            scopes: self.scopes,
            method,
            path,
            headers,
            body,
        }
    }
}

impl Registry {
    /// `scheme://host`, settling the scheme first (once per host per process).
    pub(crate) async fn base_url(&self) -> Result<String> {
        Ok(format!("{}://{}", self.scheme_to_use().await, self.host))
    }

    pub(super) fn client(&self, op: &str) -> Result<&reqwest::Client> {
        self.http_or_why().map_err(|why| Error::Registry {
            registry: self.host.clone(),
            operation: op.to_string(),
            message: format!("cannot set up the HTTP client: {why}"),
            cause: Default::default(),
        })
    }

    /// Sends `req`: any status comes back as a response; a transport failure as an error. A 401
    /// renews the token and tries once more when the body allows.
    pub(crate) async fn send(&self, req: Request<'_>) -> Result<reqwest::Response> {
        let Request {
            action,
            repo,
            op,
            scopes,
            method,
            path,
            headers,
            body,
        } = req;
        let url = if path.starts_with('/') {
            format!("{}{path}", self.base_url().await?)
        } else {
            path.to_string()
        };
        let client = self.client(op)?;
        let mut body = Some(body);
        for attempt in 0..2 {
            let auth = self.authorization(action, scopes).await?;
            let mut rb = client
                .request(method.clone(), &url)
                .headers(headers.clone());
            // Credentials go to this registry only, never to a host a Location points at.
            if let Some(a) = auth.as_ref().filter(|_| self.same_host(&url)) {
                rb = rb.header(AUTHORIZATION, a);
            }
            let again = match body.take().expect("one body per attempt") {
                Body::Empty => {
                    rb = rb.header("Content-Length", "0");
                    Some(Body::Empty)
                }
                Body::Bytes(b) => {
                    rb = rb.body(b.clone());
                    Some(Body::Bytes(b))
                }
                Body::Stream(s, len) => {
                    rb = rb.header("Content-Length", len).body(s);
                    None
                }
            };
            let started = Instant::now();
            let res = match rb.send().await {
                Ok(r) => r,
                Err(e) => {
                    // `-v` shows every attempt, answered or not.
                    tracing::debug!(
                        target: "mockimg::http",
                        "{method} {} no response ({})",
                        strip_query_secrets(&url),
                        root_cause(&e)
                    );
                    return Err(self.transport_error(op, (action, repo), &e));
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

    /// The crate error for an answer that was not the one asked for, with `Retry-After` kept.
    pub(crate) async fn answer_error(&self, ask: Ask<'_>, res: reqwest::Response) -> Error {
        let status = res.status();
        let retry_after = retry_after(status, res.headers());
        let body = res.bytes().await.unwrap_or_default();
        let (mut cause, detail) = Failure::of_answer(status.as_u16(), &body);
        cause.retry_after = retry_after.map(|d| u16::try_from(d.as_secs()).unwrap_or(u16::MAX));
        self.failed(ask.op, Some((ask.action, ask.repo)), cause, detail)
    }

    /// The crate error for a request that got no (whole) answer.
    pub(crate) fn transport_error(
        &self,
        op: &str,
        access: (Action, &str),
        e: &reqwest::Error,
    ) -> Error {
        let detail = if e.is_connect() {
            format!("cannot connect ({})", root_cause(e))
        } else if e.is_timeout() {
            format!(
                "timed out: no answer within {:.1} s",
                self.opts.idle_timeout.as_secs_f64()
            )
        } else {
            match e.status() {
                Some(s) => format!("HTTP {s}"),
                None => root_cause(e),
            }
        };
        self.failed(op, Some(access), Failure::of_transport(e), detail)
    }

    /// An answer that breaks the protocol (no `Location`, a redirect loop): final.
    pub(crate) fn invalid_answer(&self, op: &str, msg: &str) -> Error {
        self.failed(op, None, Failure::default(), msg.to_string())
    }

    /// Follows the `Location` of a redirect (blob storage on another host), without our
    /// credentials when it leaves this registry.
    pub(crate) async fn follow(
        &self,
        ask: Ask<'_>,
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
                .map_err(|e| self.invalid_answer(ask.op, &e.to_string()))?;
            let next = next.to_string();
            res = self
                .send(ask.request(Method::GET, &next, HeaderMap::new(), Body::Empty))
                .await?;
        }
        Err(self.invalid_answer(ask.op, "too many redirects"))
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
pub(crate) fn strip_query_secrets(url: &str) -> String {
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
