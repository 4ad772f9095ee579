//! A minimal Docker token server (the bearer-token flow of the distribution spec) for the real
//! registry's `auth: token` mode: it signs ES256 JWTs with a throwaway key whose self-signed
//! certificate is the registry's root bundle. It records every scope it was asked for.
use base64::Engine as _;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

pub const ISSUER: &str = "mockimg-test-issuer";
pub const SERVICE: &str = "mockimg-test-registry";

/// (user or "anonymous"/"rejected", scopes requested) per token request.
pub type TokenLog = Arc<Mutex<Vec<(String, Vec<String>)>>>;

pub struct TokenServer {
    pub realm: String,
    pub cert_pem: String,
    pub requests: TokenLog,
    /// Repositories this server refuses any token for (403 to the whole request, as some
    /// token servers answer a scope they will not grant).
    pub refuse: Arc<Mutex<Vec<String>>>,
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl TokenServer {
    pub fn start(user: &str, password: &str) -> TokenServer {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["token-issuer".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let cert_der = cert.der().to_vec();
        let rng = ring::rand::SystemRandom::new();
        let signer = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
            &rng,
        )
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let requests: TokenLog = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let refuse: Arc<Mutex<Vec<String>>> = Arc::default();
        let refused = refuse.clone();
        let expected = format!("{user}:{password}");
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                let mut auth = None;
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h
                        .strip_prefix("Authorization: Basic ")
                        .or_else(|| h.strip_prefix("authorization: Basic "))
                    {
                        auth = base64::engine::general_purpose::STANDARD
                            .decode(v.trim())
                            .ok()
                            .and_then(|b| String::from_utf8(b).ok());
                    }
                }
                let target = line.split_whitespace().nth(1).unwrap_or("");
                let query = target.split_once('?').map(|x| x.1).unwrap_or("");
                let scopes: Vec<String> = query
                    .split('&')
                    .filter_map(|kv| kv.strip_prefix("scope="))
                    .map(|v| {
                        v.replace("%3A", ":")
                            .replace("%2C", ",")
                            .replace("%2F", "/")
                    })
                    .collect();
                let who = match &auth {
                    Some(a) if a == &expected => expected.split(':').next().unwrap().to_string(),
                    Some(_) => {
                        log.lock().unwrap().push(("rejected".into(), scopes));
                        let _ = s.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                        continue;
                    }
                    None => "anonymous".to_string(),
                };
                let denied = refused.lock().unwrap().clone();
                if scopes.iter().any(|sc| {
                    denied
                        .iter()
                        .any(|r| sc.starts_with(&format!("repository:{r}:")))
                }) {
                    log.lock().unwrap().push(("denied".into(), scopes));
                    let _ = s.write_all(
                        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    continue;
                }
                log.lock().unwrap().push((who.clone(), scopes.clone()));
                let access: Vec<serde_json::Value> = scopes
                    .iter()
                    .filter_map(|sc| {
                        let mut p = sc.splitn(3, ':');
                        let (ty, name, actions) = (p.next()?, p.next()?, p.next()?);
                        let granted: Vec<&str> = actions
                            .split(',')
                            .filter(|a| who != "anonymous" || *a == "pull")
                            .collect();
                        Some(serde_json::json!({"type": ty, "name": name, "actions": granted}))
                    })
                    .collect();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [base64::engine::general_purpose::STANDARD.encode(&cert_der)]});
                let claims = serde_json::json!({"iss": ISSUER, "sub": who, "aud": SERVICE, "exp": now + 600, "nbf": now - 60, "iat": now, "jti": format!("{now}-{}", scopes.len()), "access": access});
                let signing_input = format!(
                    "{}.{}",
                    b64url(header.to_string().as_bytes()),
                    b64url(claims.to_string().as_bytes())
                );
                let sig = signer.sign(&rng, signing_input.as_bytes()).unwrap();
                let token = format!("{signing_input}.{}", b64url(sig.as_ref()));
                let body =
                    serde_json::json!({"token": token, "access_token": token, "expires_in": 600})
                        .to_string();
                let _ = s.write_all(
                    format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes(),
                );
            }
        });
        TokenServer {
            realm,
            cert_pem: cert.pem(),
            requests,
            refuse,
        }
    }
}
