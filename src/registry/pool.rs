//! One client per registry host, kept for the whole process, and the scheme it speaks.
//!
//! HTTPS always, with two exceptions that are tried over HTTPS first all the same: a registry
//! named by `--insecure-registry` (certificates not checked) and a loopback registry (checked).
//! Either is reached over plain HTTP only when its port answers a TLS handshake with something
//! that is not TLS — never after a TLS failure, which is reported instead. That costs a plain
//! HTTP registry one handshake attempt per process: the answer is kept per host.
use super::{credentials, tls, Registry, RegistryOptions};
use crate::error::Result;
use crate::oci::reference::{host_of, is_loopback_host};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

impl Registry {
    /// A connection to `host`, shared by everything in this process that talks to it: building
    /// an HTTP client loads the system's root certificates, which costs more than a small push.
    pub fn connect(host: &str, opts: &RegistryOptions) -> Result<Arc<Self>> {
        static CONNECTIONS: OnceLock<Mutex<HashMap<String, Arc<Registry>>>> = OnceLock::new();
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
        let trust = tls::Trust::for_host(
            host,
            opts.cert_dir.as_deref(),
            &opts.certs_d,
            !is_insecure(host, opts),
        )?;
        let creds = credentials::lookup(host, &opts.push_hosts, opts.env_credentials.as_ref())?;
        tracing::debug!(registry = host, credentials = ?creds.as_ref().map(|c| &c.origin), "connecting");
        Ok(Arc::new(Registry {
            host: host.to_string(),
            trust,
            opts: opts.clone(),
            has_credentials: creds.is_some(),
            http: OnceLock::new(),
            creds,
            probe: Default::default(),
            monolithic: super::api::MONOLITHIC_UNKNOWN.into(),
            chunking: Default::default(),
            tokens: Default::default(),
        }))
    }

    /// `https`, or `http` for an insecure or loopback registry that does not speak TLS.
    pub(super) async fn scheme_to_use(&self) -> &'static str {
        let host = self.host.as_str();
        if !is_loopback_host(host_of(host)) && !is_insecure(host, &self.opts) {
            return "https";
        }
        static SCHEMES: OnceLock<Mutex<HashMap<String, &'static str>>> = OnceLock::new();
        let known = SCHEMES.get_or_init(Default::default);
        if let Some(s) = known.lock().expect("not poisoned").get(host) {
            return s;
        }
        match probe(host, &self.opts).await {
            Some(s) => {
                tracing::debug!(
                    registry = host,
                    scheme = s,
                    "scheme settled by a TLS handshake"
                );
                known
                    .lock()
                    .expect("not poisoned")
                    .insert(host.to_string(), s);
                s
            }
            // Nothing answered: nothing to learn, and the request itself will say so. Loopback
            // stays on its old default (plain HTTP), anything else on HTTPS.
            None if is_loopback_host(host_of(host)) => "http",
            None => "https",
        }
    }

    /// The client for every registry and token request, made on first use with this host's
    /// trust; why not (naming the file at fault) when it cannot be made.
    pub(super) fn http_or_why(&self) -> Result<&reqwest::Client, &str> {
        self.made_http().as_ref().map_err(String::as_str)
    }

    fn made_http(&self) -> &Result<reqwest::Client, String> {
        self.http.get_or_init(|| {
            self.trust
                .client_builder()
                .map_err(|e| e.to_string())?
                .connect_timeout(self.opts.connect_timeout)
                .read_timeout(self.opts.idle_timeout)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| self.trust.build_failure(&e))
        })
    }

    /// The trust this host's clients were built with.
    pub(crate) fn trust(&self) -> &tls::Trust {
        &self.trust
    }
}

fn is_insecure(host: &str, opts: &RegistryOptions) -> bool {
    opts.insecure
        .iter()
        .any(|i| i == host || i == host_of(host))
}

/// One TLS handshake, certificates unchecked (this asks whether the port speaks TLS, not
/// whether to trust it): `https` when it does, `http` when the answer is not TLS, `None` when
/// nothing answered.
async fn probe(host: &str, opts: &RegistryOptions) -> Option<&'static str> {
    let client = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .connect_timeout(opts.connect_timeout)
        // A port that takes the connection and never answers must not stall a process for
        // longer than a silent registry would anyway.
        .timeout(opts.connect_timeout.min(opts.idle_timeout))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .ok()?;
    match client.get(format!("https://{host}/v2/")).send().await {
        Ok(_) => Some("https"),
        Err(e) if tls::is_not_tls(&e) => Some("http"),
        Err(e) if e.is_timeout() || tls::nothing_answered(&e) => {
            tracing::debug!(
                registry = host,
                "TLS handshake attempt failed: {}",
                super::failure::root_cause(&e)
            );
            None
        }
        // It answered in TLS, then refused us (a client certificate it wanted, say): a TLS
        // registry, and the real request will say why.
        Err(_) => Some("https"),
    }
}
