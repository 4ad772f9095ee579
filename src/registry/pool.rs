//! One client per registry host, kept for the whole process.
use super::{credentials, Registry, RegistryOptions};
use crate::error::Result;
use crate::oci::reference::{host_of, is_loopback_host};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
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
        let plain = is_loopback_host(host_of(host))
            || opts
                .insecure
                .iter()
                .any(|i| i == host || i == host_of(host));
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
        let creds = credentials::lookup(host, &opts.push_hosts)?;
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
            http: OnceLock::new(),
            scheme: if plain { "http" } else { "https" },
            creds,
            mount_tokens: Default::default(),
        }))
    }

    /// The client for our own requests (mounts, token fetches), made on first use; `None` when
    /// it cannot be made, and the caller falls back to what oci-client does.
    pub(super) fn http(&self) -> Option<&reqwest::Client> {
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

    /// `scheme://host`, for URLs we build ourselves.
    pub(super) fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.host)
    }
}
