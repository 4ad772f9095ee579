//! Registry source and sink over oci-client, with what it lacks wrapped around it: retries with
//! capped, jittered backoff; mount with fallback to upload; streamed cross-registry copies;
//! children-first manifest pushes and tags moved last.
use crate::blob::{self, BlobSource, ByteStream, Source};
use crate::credentials;
use crate::digest;
use crate::error::{Error, Result};
use crate::image::{check_manifest, media, Descriptor, Doc, Image, Root};
use crate::reference::RegistryRef;
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
        let backoff_ms = std::env::var("MOCKIMG_RETRY_BASE_MS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(400);
        Self {
            insecure: Vec::new(),
            retries: 4,
            concurrency: 4,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            backoff: Duration::from_millis(backoff_ms),
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
}

impl Registry {
    pub fn connect(host: &str, opts: &RegistryOptions) -> Result<Arc<Self>> {
        let plain = crate::reference::is_loopback_host(crate::reference::host_of(host))
            || opts
                .insecure
                .iter()
                .any(|i| i == host || i == crate::reference::host_of(host));
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
        }))
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
        let (message, retryable) = match &e {
            E::UnauthorizedError { .. } | E::AuthenticationFailure(_) => (auth_hint(), false),
            E::ServerError { code: 401, .. } => (auth_hint(), false),
            E::ServerError { code: 403, .. } => (
                format!(
                    "403 denied — the credentials for {} lack permission for this repository",
                    self.host
                ),
                false,
            ),
            E::ServerError { code, message, .. } => (
                format!("HTTP {code}: {}", first_line(message)),
                *code >= 500 || *code == 429 || *code == 408,
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
                    let retry = joined.contains("Toomanyrequests");
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
                    "timed out".to_string()
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
        Error::Registry {
            registry: self.host.clone(),
            operation: op.to_string(),
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
                    tracing::warn!(
                        "{op}: {e}; retry {attempt}/{} in {:?}",
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
            self.client
                .auth(&r.to_oci(), &self.auth, op)
                .await
                .map(|_| ())
                .map_err(|e| self.error(&what, e))
        })
        .await
    }

    /// Fetches a manifest or index as raw bytes; a digest-pinned reference must match its pin.
    pub async fn manifest(&self, r: &RegistryRef) -> Result<Doc> {
        let op = format!("fetching manifest {r}");
        let (bytes, _) = self
            .retry(&op, || async {
                self.client
                    .pull_manifest_raw(&r.to_oci(), &self.auth, media::ACCEPTED)
                    .await
                    .map_err(|e| self.error(&op, e))
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
                images.push(image_with_config(child, Some(d), blobs.as_ref(), r).await?);
            }
            Root::Index { index: doc, images }
        } else {
            Root::Image(image_with_config(doc, None, blobs.as_ref(), r).await?)
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
            self.client
                .blob_exists(&target.to_oci(), digest)
                .await
                .map_err(|e| self.error(&op, e))
        })
        .await
    }

    /// Cross-repository mount; `Ok(false)` when the registry declines (202) so we upload instead.
    async fn mount(&self, target: &RegistryRef, from: &RegistryRef, digest: &str) -> Result<bool> {
        match self
            .client
            .mount_blob(&target.to_oci(), &from.to_oci(), digest)
            .await
        {
            Ok(()) => Ok(true),
            Err(e) => {
                tracing::debug!("mount of {digest} from {} refused: {e}", from.repo_name());
                Ok(false)
            }
        }
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
            self.client
                .push_blob_stream(&target.to_oci(), body, &desc.digest, Some(desc.size))
                .await
                .map(|_| ())
                .map_err(|e| self.error(&op, e))
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
            self.client
                .push_manifest_raw(&target.to_oci(), doc.bytes.clone(), ct.clone())
                .await
                .map(|_| ())
                .map_err(|e| self.error(&op, e))
        })
        .await
    }
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
    let bytes = blob::read_all(blobs, &cd, &format!("config of {r}")).await?;
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
            reg.retry(&op, || async {
                let s = reg
                    .client
                    .pull_blob_stream(&self.repo.to_oci(), desc.digest.as_str())
                    .await
                    .map_err(|e| reg.error(&op, e))?;
                Ok(s.stream)
            })
            .await
        })
    }
    fn registry(&self) -> Option<&RegistryRef> {
        Some(&self.repo)
    }
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
