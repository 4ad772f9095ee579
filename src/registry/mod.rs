//! Registry source and sink over oci-client, with what it lacks wrapped around it: retries with
//! capped, jittered backoff; mount with fallback to upload; streamed cross-registry copies;
//! children-first manifest pushes and tags moved last.
pub mod credentials;

use crate::error::{Error, Result};
use crate::oci::blob::{self, BlobSource, ByteStream, Source};
use crate::oci::digest;
use crate::oci::image::{check_manifest, media, Descriptor, Doc, Image, Root};
use crate::oci::reference::RegistryRef;
use futures_util::future::BoxFuture;
use futures_util::{StreamExt, TryStreamExt};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::RegistryOperation;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// `--insecure-registry HOST[:PORT]`: plain HTTP for these.
    pub insecure: Vec<String>,
    /// Attempts after the first, for transient failures.
    pub retries: u32,
    /// Blobs copied at once.
    pub concurrency: usize,
    pub connect_timeout: Duration,
    /// Longest silence on an open transfer before it counts as dead.
    pub idle_timeout: Duration,
    /// Base of the exponential backoff.
    pub backoff: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        // Knobs for tests (and the desperate): a fault test must not wait out production delays.
        let ms = |var: &str, default: u64| {
            Duration::from_millis(
                std::env::var(var)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(default),
            )
        };
        Self {
            insecure: Vec::new(),
            retries: 4,
            concurrency: 4,
            connect_timeout: ms("MOCKIMG_CONNECT_TIMEOUT_MS", 10_000),
            idle_timeout: ms("MOCKIMG_IDLE_TIMEOUT_MS", 60_000),
            backoff: ms("MOCKIMG_RETRY_BASE_MS", 400),
        }
    }
}

/// A connection to one registry host.
pub struct Registry {
    pub host: String,
    client: oci_client::Client,
    auth: RegistryAuth,
    opts: RegistryOptions,
    has_credentials: bool,
    /// Our own HTTP client for cross-repository mounts (see [`Registry::mount`]), made on the
    /// first mount.
    http: std::sync::OnceLock<std::result::Result<reqwest::Client, String>>,
    scheme: &'static str,
    creds: Option<credentials::Credentials>,
    mount_tokens: tokio::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl Registry {
    /// A connection to `host`, shared by everything in this process that talks to it: building
    /// an HTTP client loads the system's root certificates, which costs more than a small push.
    pub fn connect(host: &str, opts: &RegistryOptions) -> Result<Arc<Self>> {
        static CONNECTIONS: std::sync::OnceLock<
            std::sync::Mutex<std::collections::HashMap<String, Arc<Registry>>>,
        > = std::sync::OnceLock::new();
        let key = format!("{host} {opts:?}");
        let conns = CONNECTIONS.get_or_init(Default::default);
        if let Some(r) = conns.lock().expect("not poisoned").get(&key) {
            return Ok(r.clone());
        }
        let r = Self::connect_new(host, opts)?;
        conns.lock().expect("not poisoned").insert(key, r.clone());
        Ok(r)
    }

    fn connect_new(host: &str, opts: &RegistryOptions) -> Result<Arc<Self>> {
        let plain = crate::oci::reference::is_loopback_host(crate::oci::reference::host_of(host))
            || opts
                .insecure
                .iter()
                .any(|i| i == host || i == crate::oci::reference::host_of(host));
        let config = ClientConfig {
            protocol: if plain {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            // One streamed PUT per blob: no chunk-size minimums to trip over (ECR wants 5 MiB).
            use_monolithic_push: true,
            connect_timeout: Some(opts.connect_timeout),
            read_timeout: Some(opts.idle_timeout),
            accept_invalid_certificates: !plain && opts.insecure.iter().any(|i| i == host),
            platform_resolver: None,
            ..Default::default()
        };
        let creds = credentials::lookup(host)?;
        let auth = match &creds {
            Some(c) => RegistryAuth::Basic(c.username.clone(), c.password.clone()),
            None => RegistryAuth::Anonymous,
        };
        tracing::debug!(registry = host, plain_http = plain, credentials = ?creds.as_ref().map(|c| &c.origin), "connecting");
        Ok(Arc::new(Registry {
            host: host.to_string(),
            client: oci_client::Client::new(config),
            auth,
            opts: opts.clone(),
            has_credentials: creds.is_some(),
            http: std::sync::OnceLock::new(),
            scheme: if plain { "http" } else { "https" },
            creds,
            mount_tokens: Default::default(),
        }))
    }

    /// `-v`: one line per registry request with method, URL and status. Never headers or bodies,
    /// so never credentials or tokens.
    fn log_http<T>(
        &self,
        method: &str,
        path: &str,
        res: &std::result::Result<T, OciDistributionError>,
        ok_status: &str,
    ) {
        use OciDistributionError as E;
        let status = match res {
            Ok(_) => ok_status.to_string(),
            Err(E::ServerError { code, .. }) => code.to_string(),
            Err(E::UnauthorizedError { .. } | E::AuthenticationFailure(_)) => "401".into(),
            Err(E::ImageManifestNotFoundError(_)) => "404".into(),
            Err(E::RegistryError { envelope, .. }) => {
                let codes: Vec<String> = envelope
                    .errors
                    .iter()
                    .map(|x| format!("{:?}", x.code))
                    .collect();
                format!("error {}", codes.join(","))
            }
            Err(E::RequestError(r)) => match r.status() {
                Some(s) => s.as_u16().to_string(),
                None => format!("no response ({})", root_cause(r)),
            },
            Err(e) => format!("failed ({})", first_line(&e.to_string())),
        };
        tracing::debug!(target: "mockimg::http", "{method} {}://{}{path} {status}", self.scheme, self.host);
    }

    fn error(&self, op: &str, e: OciDistributionError) -> Error {
        use OciDistributionError as E;
        let auth_hint = || {
            if self.has_credentials {
                format!("401 unauthorized — the stored credentials were refused; run 'docker login {}' again or fix {}/{}", self.host, credentials::ENV_USER, credentials::ENV_PASS)
            } else {
                format!(
                    "401 unauthorized — run 'docker login {}' or set {}/{}",
                    self.host,
                    credentials::ENV_USER,
                    credentials::ENV_PASS
                )
            }
        };
        let denied = || {
            format!(
                "403 denied — the credentials for {} lack permission for this repository",
                self.host
            )
        };
        let (message, retryable) = match &e {
            E::UnauthorizedError { .. } | E::AuthenticationFailure(_) => (auth_hint(), false),
            E::ServerError { code: 401, .. } => (auth_hint(), false),
            E::RequestError(r) if r.status().is_some_and(|s| s.as_u16() == 401) => {
                (auth_hint(), false)
            }
            E::RequestError(r) if r.status().is_some_and(|s| s.as_u16() == 403) => {
                (denied(), false)
            }
            E::ServerError { code: 403, .. } => (
                format!(
                    "403 denied — the credentials for {} lack permission for this repository",
                    self.host
                ),
                false,
            ),
            E::ServerError { code, message, .. } => (
                format!("HTTP {code}: {}", error_body(message)),
                *code >= 500 || *code == 429 || *code == 408 || upload_went_bad(message),
            ),
            E::RegistryError { envelope, .. } => {
                let codes: Vec<String> = envelope
                    .errors
                    .iter()
                    .map(|x| format!("{:?}: {}", x.code, x.message))
                    .collect();
                let joined = codes.join("; ");
                if joined.contains("Unauthorized") {
                    (auth_hint(), false)
                } else {
                    let retry = joined.contains("Toomanyrequests") || upload_went_bad(&joined);
                    (joined, retry)
                }
            }
            E::RequestError(r) => {
                let status = r.status().map(|s| s.as_u16());
                let retry = r.is_connect()
                    || r.is_timeout()
                    || r.is_body()
                    || r.is_request()
                    || r.is_decode()
                    || status.is_some_and(|s| s >= 500 || s == 429);
                let msg = if r.is_connect() {
                    format!("cannot connect ({})", root_cause(r))
                } else if r.is_timeout() {
                    format!(
                        "timed out: no answer within {:.1} s",
                        self.opts.idle_timeout.as_secs_f64()
                    )
                } else if let Some(s) = r.status() {
                    format!("HTTP {s}")
                } else {
                    root_cause(r)
                };
                (msg, retry)
            }
            E::IoError(io) => (io.to_string(), true),
            E::DigestError(d) => (format!("content digest mismatch: {d}"), true),
            E::ImageManifestNotFoundError(m) => (format!("manifest not found: {m}"), false),
            other => (first_line(&other.to_string()), false),
        };
        // Refused access is about the repository, not the blob or manifest that hit it first.
        let access = message.starts_with("401 ") || message.starts_with("403 ");
        Error::Registry {
            registry: self.host.clone(),
            operation: if access {
                access_op(op)
            } else {
                op.to_string()
            },
            message,
            retryable,
        }
    }

    /// Runs `f` until it succeeds, fails permanently, or retries run out.
    async fn retry<T, F, Fut>(&self, op: &str, mut f: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut attempt = 0u32;
        loop {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && attempt < self.opts.retries => {
                    let cap = Duration::from_secs(10);
                    let exp = self
                        .opts
                        .backoff
                        .saturating_mul(1 << attempt.min(10))
                        .min(cap);
                    // Full jitter in [exp/2, exp): spreads retries of concurrent blobs apart.
                    let jitter = rand::random::<f64>() * 0.5 + 0.5;
                    let wait = exp.mul_f64(jitter);
                    attempt += 1;
                    // `e` names the operation already when it is a registry error.
                    let what = match &e {
                        Error::Registry { .. } => e.to_string(),
                        other => format!("{op}: {other}"),
                    };
                    tracing::warn!(
                        "{what}; retry {attempt}/{} in {:?}",
                        self.opts.retries,
                        wait
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    return Err(match e {
                        Error::Registry { .. } => e,
                        other => Error::Registry {
                            registry: self.host.clone(),
                            operation: op.to_string(),
                            message: other.to_string(),
                            retryable: false,
                        },
                    })
                }
            }
        }
    }

    async fn authenticate(&self, r: &RegistryRef, op: RegistryOperation) -> Result<()> {
        let what = match op {
            RegistryOperation::Push => format!("authenticating to push {}", r.repo_name()),
            RegistryOperation::Pull => format!("authenticating to pull {}", r.repo_name()),
        };
        self.retry(&what, || async {
            let res = self.client.auth(&r.to_oci(), &self.auth, op).await;
            self.log_http("GET", "/v2/", &res, "200");
            res.map(|_| ()).map_err(|e| self.error(&what, e))
        })
        .await
    }

    /// Fetches a manifest or index as raw bytes; a digest-pinned reference must match its pin.
    pub async fn manifest(&self, r: &RegistryRef) -> Result<Doc> {
        let op = format!("fetching manifest {r}");
        let (bytes, _) = self
            .retry(&op, || async {
                let res = self
                    .client
                    .pull_manifest_raw(&r.to_oci(), &self.auth, media::ACCEPTED)
                    .await;
                let path = format!("/v2/{}/manifests/{}", r.repository, r.tag_or_digest());
                self.log_http("GET", &path, &res, "200");
                res.map_err(|e| self.error(&op, e))
            })
            .await?;
        if let Some(pin) = &r.digest {
            let got = digest::sha256(&bytes);
            if &got != pin {
                return Err(Error::DigestMismatch {
                    what: format!("manifest {r}"),
                    expected: pin.clone(),
                    actual: got,
                });
            }
        }
        let mt = check_manifest(&bytes, None, &format!("manifest {r}"))?;
        Ok(Doc::new(mt, bytes))
    }

    /// Reads an image or index and its configs; layers stay in the registry until a sink asks.
    pub async fn pull(self: &Arc<Self>, r: &RegistryRef) -> Result<Source> {
        self.authenticate(r, RegistryOperation::Pull).await?;
        let doc = self.manifest(r).await?;
        let blobs = Arc::new(RegistryBlobs {
            registry: self.clone(),
            repo: r.clone(),
        });
        let root = if media::is_index(&doc.media_type) {
            let v = doc.json(&format!("index {r}"))?;
            let mut images = Vec::new();
            for (i, e) in v["manifests"].as_array().into_iter().flatten().enumerate() {
                let d = Descriptor::from_json(e, &format!("index {r} manifests[{i}]"))?;
                if d.is_attestation() || !media::is_manifest(&d.media_type) {
                    continue;
                }
                let child = self.manifest(&r.with_digest(&d.digest)).await?;
                images.push(image_with_config(self, child, Some(d), blobs.as_ref(), r).await?);
            }
            Root::Index { index: doc, images }
        } else {
            Root::Image(image_with_config(self, doc, None, blobs.as_ref(), r).await?)
        };
        Ok(Source {
            root,
            blobs,
            name: r.to_string(),
        })
    }

    async fn blob_exists(&self, target: &RegistryRef, digest: &str) -> Result<bool> {
        let op = format!("checking blob {digest} in {}", target.repo_name());
        self.retry(&op, || async {
            let res = self.client.blob_exists(&target.to_oci(), digest).await;
            let path = format!("/v2/{}/blobs/{digest}", target.repository);
            let ok = if matches!(res, Ok(false)) {
                "404"
            } else {
                "200"
            };
            self.log_http("HEAD", &path, &res, ok);
            res.map_err(|e| self.error(&op, e))
        })
        .await
    }

    /// The client for our own requests (mounts, token fetches), made on first use.
    fn http(&self) -> Option<&reqwest::Client> {
        let insecure_tls =
            self.scheme == "https" && self.opts.insecure.iter().any(|i| i == &self.host);
        let made = self.http.get_or_init(|| {
            reqwest::Client::builder()
                .connect_timeout(self.opts.connect_timeout)
                .read_timeout(self.opts.idle_timeout)
                .redirect(reqwest::redirect::Policy::none())
                .danger_accept_invalid_certs(insecure_tls)
                .build()
                .map_err(|e| e.to_string())
        });
        match made {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::debug!("no HTTP client for mounts: {e}");
                None
            }
        }
    }

    /// Cross-repository mount; `Ok(false)` when the registry declines (202) or refuses, so the
    /// caller uploads instead. Done with our own request rather than oci-client's `mount_blob`:
    /// a bearer token for a mount needs `pull` on the source repository as well as `push` on the
    /// target, and oci-client only asks for the latter (oci-client issue #235).
    async fn mount(&self, target: &RegistryRef, from: &RegistryRef, digest: &str) -> Result<bool> {
        let Some(http) = self.http() else {
            return Ok(false);
        };
        let url = format!(
            "{}://{}/v2/{}/blobs/uploads/?mount={}&from={}",
            self.scheme, self.host, target.repository, digest, from.repository
        );
        let key = format!("{}|{}", target.repository, from.repository);
        let mut auth = self.mount_tokens.lock().await.get(&key).cloned();
        for _ in 0..2 {
            let mut req = http.post(&url).header("Content-Length", "0");
            if let Some(a) = &auth {
                req = req.header(reqwest::header::AUTHORIZATION, a);
            }
            let res = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!("mount of {digest} failed: {}", root_cause(&e));
                    return Ok(false);
                }
            };
            tracing::debug!(target: "mockimg::http", "POST {url} {}", res.status().as_u16());
            match res.status().as_u16() {
                201 => return Ok(true),
                202 => {
                    // Declined: close the upload session it opened instead of leaving it dangling.
                    if let Some(loc) = res
                        .headers()
                        .get(reqwest::header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                    {
                        let loc = if loc.starts_with('/') {
                            format!("{}://{}{}", self.scheme, self.host, loc)
                        } else {
                            loc.to_string()
                        };
                        let mut del = http.delete(loc);
                        if let Some(a) = &auth {
                            del = del.header(reqwest::header::AUTHORIZATION, a);
                        }
                        if let Ok(r) = del.send().await {
                            tracing::debug!(target: "mockimg::http", "DELETE {} {}", r.url(), r.status().as_u16());
                        }
                    }
                    return Ok(false);
                }
                401 if auth.is_none() => {
                    let challenge = res
                        .headers()
                        .get(reqwest::header::WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let Some(a) = self
                        .authorization_for(
                            &challenge,
                            &[
                                format!("repository:{}:pull,push", target.repository),
                                format!("repository:{}:pull", from.repository),
                            ],
                        )
                        .await
                    else {
                        return Ok(false);
                    };
                    self.mount_tokens
                        .lock()
                        .await
                        .insert(key.clone(), a.clone());
                    auth = Some(a);
                }
                s => {
                    tracing::debug!(
                        "mount of {digest} from {} refused with {s}",
                        from.repo_name()
                    );
                    return Ok(false);
                }
            }
        }
        Ok(false)
    }

    /// An `Authorization` value answering a `WWW-Authenticate` challenge: Basic with our
    /// credentials, or a Bearer token fetched from the realm for exactly `scopes`.
    async fn authorization_for(&self, challenge: &str, scopes: &[String]) -> Option<String> {
        use base64::Engine as _;
        let basic = self.creds.as_ref().map(|c| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", c.username, c.password))
            )
        });
        let (scheme, params) = parse_challenge(challenge)?;
        if scheme.eq_ignore_ascii_case("basic") {
            return basic;
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let realm = params.iter().find(|(k, _)| k == "realm")?.1.clone();
        let mut q: Vec<(&str, &str)> = Vec::new();
        if let Some((_, svc)) = params.iter().find(|(k, _)| k == "service") {
            q.push(("service", svc));
        }
        for s in scopes {
            q.push(("scope", s));
        }
        let mut req = self.http()?.get(&realm).query(&q);
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

    async fn upload(
        &self,
        target: &RegistryRef,
        desc: &Descriptor,
        src: &dyn BlobSource,
    ) -> Result<()> {
        let op = format!("uploading blob {} to {}", desc.digest, target.repo_name());
        self.retry(&op, || async {
            // Each attempt restarts from the source: a broken stream is never resumed.
            let body: ByteStream = match src.in_memory(&desc.digest) {
                Some(b) => futures_util::stream::once(async move { Ok(b) }).boxed(),
                None => src.open(desc).await?,
            };
            let body = blob::verified(body, desc, format!("blob {}", desc.digest))
                .map_err(OciDistributionError::IoError);
            let res = self
                .client
                .push_blob_stream(&target.to_oci(), body, &desc.digest, Some(desc.size))
                .await;
            let path = format!("/v2/{}/blobs/uploads/", target.repository);
            if res.is_ok() {
                self.log_http("POST", &path, &res, "202");
            }
            let put = format!("{path}<session>?digest={}", desc.digest);
            self.log_http(
                if res.is_ok() { "PUT" } else { "POST+PUT" },
                &put,
                &res,
                "201",
            );
            if let Err(e) = &res {
                if body_was_corrupt(e) {
                    src.distrust(&desc.digest);
                }
            }
            res.map(|_| ()).map_err(|e| self.error(&op, e))
        })
        .await
    }

    async fn put_manifest(&self, target: &RegistryRef, doc: &Doc) -> Result<()> {
        let op = format!("pushing manifest {target}");
        let ct: reqwest::header::HeaderValue = doc
            .media_type
            .parse()
            .map_err(|_| Error::invalid("manifest", "media type is not a valid header"))?;
        self.retry(&op, || async {
            let res = self
                .client
                .push_manifest_raw(&target.to_oci(), doc.bytes.clone(), ct.clone())
                .await;
            let path = format!(
                "/v2/{}/manifests/{}",
                target.repository,
                target.tag_or_digest()
            );
            self.log_http("PUT", &path, &res, "201");
            res.map(|_| ()).map_err(|e| self.error(&op, e))
        })
        .await
    }
}

/// `Bearer realm="…",service="…",scope="…"` → ("Bearer", [(key, value)]).
fn parse_challenge(h: &str) -> Option<(String, Vec<(String, String)>)> {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let mut params = Vec::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (k, after) = rest.split_once('=')?;
        let after = after.trim_start();
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
    Some((scheme.to_string(), params))
}

/// `pushing to HOST/REPO` or `pulling HOST/REPO` from an operation such as `checking blob D in
/// HOST/REPO` (every operation string ends with the repository or reference it is about).
fn access_op(op: &str) -> String {
    let repo = op.rsplit(' ').next().unwrap_or(op);
    let pushing = [
        "checking blob",
        "uploading blob",
        "pushing manifest",
        "authenticating to push",
    ];
    if pushing.iter().any(|p| op.starts_with(p)) {
        format!("pushing to {repo}")
    } else {
        format!("pulling {repo}")
    }
}

/// The registry refused what arrived of an upload (bytes that did not hash to the digest, a lost
/// session): the upload is started again from the source, which may well be fine.
fn upload_went_bad(message: &str) -> bool {
    [
        "DIGEST_INVALID",
        "DigestInvalid",
        "SIZE_INVALID",
        "SizeInvalid",
        "BLOB_UPLOAD_INVALID",
        "BlobUploadInvalid",
        "BLOB_UPLOAD_UNKNOWN",
        "BlobUploadUnknown",
    ]
    .iter()
    .any(|c| message.contains(c))
}

/// A registry error body, as the `CODE: message` of its OCI error envelope when it is one (a
/// 5xx with a JSON body is not parsed by oci-client), else its first line.
fn error_body(body: &str) -> String {
    let parsed: Option<Vec<String>> = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let errs = v.get("errors")?.as_array()?;
            Some(
                errs.iter()
                    .map(|e| {
                        let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
                        let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
                        first_line(&format!("{code}: {msg}"))
                    })
                    .collect(),
            )
        });
    match parsed {
        Some(v) if !v.is_empty() => v.join("; "),
        _ => first_line(body),
    }
}

/// Whether an upload failed because our own verification rejected the body it was sending.
fn body_was_corrupt(e: &OciDistributionError) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::InvalidData {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(300).collect()
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

async fn image_with_config(
    reg: &Registry,
    manifest: Doc,
    entry: Option<Descriptor>,
    blobs: &dyn BlobSource,
    r: &RegistryRef,
) -> Result<Image> {
    let tmp = Image {
        manifest,
        config: Doc::new("", Vec::new()),
        index_entry: entry,
    };
    let cd = tmp.config_descriptor()?;
    let what = format!("config of {r}");
    // A config that arrives corrupted is fetched again, like any other transient failure.
    let op = format!("fetching config {} of {r}", cd.digest);
    let bytes = reg.retry(&op, || blob::read_all(blobs, &cd, &what)).await?;
    Ok(Image {
        config: Doc::new(cd.media_type, bytes),
        ..tmp
    })
}

/// Blobs of one repository, fetched on demand.
pub struct RegistryBlobs {
    pub registry: Arc<Registry>,
    pub repo: RegistryRef,
}

impl BlobSource for RegistryBlobs {
    fn open<'a>(&'a self, desc: &'a Descriptor) -> BoxFuture<'a, Result<ByteStream>> {
        Box::pin(async move {
            let reg = &self.registry;
            let op = format!(
                "downloading blob {} from {}",
                desc.digest,
                self.repo.repo_name()
            );
            let first = reg.open_blob(&self.repo, desc, &op).await?;
            Ok(restarting(
                reg.clone(),
                self.repo.clone(),
                desc.clone(),
                op,
                first,
            ))
        })
    }
    fn registry(&self) -> Option<&RegistryRef> {
        Some(&self.repo)
    }
}

impl Registry {
    async fn open_blob(
        &self,
        repo: &RegistryRef,
        desc: &Descriptor,
        op: &str,
    ) -> Result<ByteStream> {
        self.retry(op, || async {
            let res = self
                .client
                .pull_blob_stream(&repo.to_oci(), desc.digest.as_str())
                .await;
            let path = format!("/v2/{}/blobs/{}", repo.repository, desc.digest);
            self.log_http("GET", &path, &res, "200");
            let s = res.map_err(|e| self.error(op, e))?;
            Ok(s.stream)
        })
        .await
    }
}

/// A download that survives a connection cut mid-body: the blob is fetched again from its first
/// byte (never resumed with a range) and what was already passed on is skipped. Consumers verify
/// the whole stream against the digest, so bytes that differ between attempts are still caught.
fn restarting(
    reg: Arc<Registry>,
    repo: RegistryRef,
    desc: Descriptor,
    op: String,
    first: ByteStream,
) -> ByteStream {
    struct St {
        reg: Arc<Registry>,
        repo: RegistryRef,
        desc: Descriptor,
        op: String,
        inner: Option<ByteStream>,
        delivered: u64,
        skip: u64,
        restarts: u32,
        done: bool,
    }
    fn fail(st: &St, msg: String) -> std::io::Error {
        std::io::Error::other(format!("{}: {}: {msg}", st.reg.host, st.op))
    }
    let st = St {
        reg,
        repo,
        desc,
        op,
        inner: Some(first),
        delivered: 0,
        skip: 0,
        restarts: 0,
        done: false,
    };
    futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            let Some(inner) = st.inner.as_mut() else {
                match st.reg.open_blob(&st.repo, &st.desc, &st.op).await {
                    Ok(s) => {
                        st.inner = Some(s);
                        st.skip = st.delivered;
                        continue;
                    }
                    Err(e) => {
                        st.done = true;
                        let e = std::io::Error::other(e.to_string());
                        return Some((Err(e), st));
                    }
                }
            };
            match inner.next().await {
                Some(Ok(mut b)) => {
                    if st.skip > 0 {
                        let n = st.skip.min(b.len() as u64);
                        b = b.slice(n as usize..);
                        st.skip -= n;
                        if b.is_empty() {
                            continue;
                        }
                    }
                    st.delivered += b.len() as u64;
                    return Some((Ok(b), st));
                }
                None if st.skip > 0 => {
                    st.done = true;
                    let e = fail(&st, "the blob came back shorter on a retry".into());
                    return Some((Err(e), st));
                }
                None => return None,
                // Once every byte is out, a failure is about the content (oci-client checks the
                // digest at the end), and fetching again cannot take back what was passed on.
                Some(Err(e))
                    if st.restarts < st.reg.opts.retries && st.delivered < st.desc.size =>
                {
                    st.restarts += 1;
                    let wait = st.reg.opts.backoff.saturating_mul(1 << st.restarts.min(5));
                    tracing::warn!(
                        "{}: cut after {} bytes ({}); fetching again from the start, retry {}/{}",
                        st.op,
                        st.delivered,
                        root_cause(&e),
                        st.restarts,
                        st.reg.opts.retries
                    );
                    tokio::time::sleep(wait.min(Duration::from_secs(10))).await;
                    st.inner = None;
                }
                Some(Err(e)) => {
                    st.done = true;
                    let msg = format!(
                        "failed after {} of {} bytes: {} ({} retries used)",
                        st.delivered,
                        st.desc.size,
                        root_cause(&e),
                        st.restarts
                    );
                    let mut e = fail(&st, msg);
                    if st.delivered >= st.desc.size {
                        // Every byte arrived and they were wrong: corruption, which readers
                        // retry from the source (see blob::io_to_error).
                        e = std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string());
                    }
                    return Some((Err(e), st));
                }
            }
        }
    })
    .boxed()
}

/// What a push did, for the summary line and `--json`.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct PushStats {
    pub uploaded: usize,
    pub uploaded_bytes: u64,
    pub mounted: usize,
    pub existing: usize,
}

/// Pushes `src` to every target. Blobs and digest-addressed manifests go to each repository
/// first; tags are written only after every repository has everything, so a failure part-way
/// never moves a tag.
pub async fn push(
    src: &Source,
    targets: &[RegistryRef],
    opts: &RegistryOptions,
) -> Result<PushStats> {
    let mut conns: Vec<(String, Arc<Registry>)> = Vec::new();
    let mut stats = PushStats::default();
    let mut done_repos: Vec<String> = Vec::new();
    for t in targets {
        let reg = match conns.iter().find(|(h, _)| h == &t.registry) {
            Some((_, r)) => r.clone(),
            None => {
                let r = Registry::connect(&t.registry, opts)?;
                conns.push((t.registry.clone(), r.clone()));
                r
            }
        };
        if done_repos.contains(&t.repo_name()) {
            continue;
        }
        done_repos.push(t.repo_name());
        reg.authenticate(t, RegistryOperation::Push).await?;
        let s = push_blobs(&reg, t, src).await?;
        stats.uploaded += s.uploaded;
        stats.uploaded_bytes += s.uploaded_bytes;
        stats.mounted += s.mounted;
        stats.existing += s.existing;
        for img in src.root.images() {
            if matches!(src.root, Root::Index { .. }) {
                reg.put_manifest(&t.with_digest(&img.manifest.digest()), &img.manifest)
                    .await?;
            }
        }
        reg.put_manifest(&t.with_digest(&src.root.digest()), src.root.doc())
            .await?;
    }
    for t in targets {
        if let Some(tag) = &t.tag {
            let reg = &conns
                .iter()
                .find(|(h, _)| h == &t.registry)
                .expect("connected")
                .1;
            let tagged = RegistryRef {
                tag: Some(tag.clone()),
                digest: None,
                ..t.clone()
            };
            reg.put_manifest(&tagged, src.root.doc()).await?;
        }
    }
    Ok(stats)
}

async fn push_blobs(reg: &Arc<Registry>, target: &RegistryRef, src: &Source) -> Result<PushStats> {
    let uploaded = AtomicUsize::new(0);
    let uploaded_bytes = AtomicU64::new(0);
    let mounted = AtomicUsize::new(0);
    let existing = AtomicUsize::new(0);
    let blobs = src.root.blobs()?;
    let from = src.blobs.registry().cloned();
    futures_util::stream::iter(blobs.iter().map(|d| {
        let (uploaded, uploaded_bytes, mounted, existing) =
            (&uploaded, &uploaded_bytes, &mounted, &existing);
        let from = from.as_ref();
        async move {
            if reg.blob_exists(target, &d.digest).await? {
                existing.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            let local = src.blobs.in_memory(&d.digest).is_some();
            if let Some(f) = from.filter(|f| !local && f.same_registry(target)) {
                if reg.mount(target, f, &d.digest).await? {
                    mounted.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
            }
            reg.upload(target, d, src.blobs.as_ref()).await?;
            uploaded.fetch_add(1, Ordering::Relaxed);
            uploaded_bytes.fetch_add(d.size, Ordering::Relaxed);
            Ok::<(), Error>(())
        }
    }))
    .buffer_unordered(reg.opts.concurrency.max(1))
    .try_collect::<Vec<()>>()
    .await?;
    Ok(PushStats {
        uploaded: uploaded.into_inner(),
        uploaded_bytes: uploaded_bytes.into_inner(),
        mounted: mounted.into_inner(),
        existing: existing.into_inner(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(s, "Bearer");
        assert_eq!(p[0], ("realm".into(), "https://auth.example/token".into()));
        assert_eq!(p[1], ("service".into(), "registry.example".into()));
        assert_eq!(p[2], ("scope".into(), "repository:a/b:pull,push".into()));
        let (s, p) = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!((s.as_str(), p.len()), ("Basic", 1));
    }
}
