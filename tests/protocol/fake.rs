//! A scripted registry in the test process: the distribution API over `std::net::TcpListener`,
//! blobs and manifests in memory (a manifest answered with its `ETag`, a PUT with `If-Match`
//! refused with 412 when the manifest moved), every request logged. A test changes its behaviour with a
//! hook that may answer a request in its place (a 401, a 202, a redirect, an endless body);
//! what the hook leaves alone the registry answers as the spec says (chunks in order, or 416). One request per connection
//! (`Connection: close`), so no request body has to be found the end of beyond its
//! `Content-Length`.
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// One request as the registry saw it.
#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
    pub fn query(&self, key: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == key).then(|| v.replace("%3A", ":").replace("%2F", "/"))
        })
    }
}

/// An answer: status, headers, and a body that is either bytes or endless.
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

pub enum Body {
    Bytes(Vec<u8>),
    /// Chunk after chunk of `{`, never ending (until the client hangs up).
    Endless,
}

impl Resp {
    pub fn new(status: u16) -> Resp {
        Resp {
            status,
            headers: Vec::new(),
            body: Body::Bytes(Vec::new()),
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Resp {
        self.headers.push((k.into(), v.into()));
        self
    }
    pub fn body(mut self, b: impl Into<Vec<u8>>) -> Resp {
        self.body = Body::Bytes(b.into());
        self
    }
}

/// What the registry holds and what it saw.
#[derive(Default)]
pub struct State {
    pub blobs: HashMap<String, Vec<u8>>,
    /// (repository, tag) → manifest digest; manifests themselves are in `blobs`.
    pub tags: HashMap<(String, String), String>,
    uploads: HashMap<String, Vec<u8>>,
    /// Every request, with the status it got.
    pub log: Vec<(Req, u16)>,
    /// Send bodies with `Transfer-Encoding: chunked` and no `Content-Length`.
    pub chunked: bool,
    /// Require `Authorization: Bearer <one of these>`; empty: an open registry.
    pub valid_tokens: Vec<String>,
    /// Tokens handed out so far, by the token endpoint at `/token`.
    pub issued: usize,
    /// Upload sessions opened so far: ids are never reused, even with several sessions open at
    /// once (a push runs uploads of new blobs and copies of base blobs side by side).
    opened: usize,
}

impl State {
    /// Opens an upload session `id`, as a hook answering a POST in the registry's place must.
    pub fn open_upload(&mut self, id: &str) {
        self.uploads.insert(id.to_string(), Vec::new());
    }

    /// How many bytes upload session `id` holds.
    pub fn upload_len(&self, id: &str) -> Option<usize> {
        self.uploads.get(id).map(Vec::len)
    }

    /// Drops what upload session `id` holds past `len` bytes, as a registry that lost the end
    /// of what it was sent.
    pub fn truncate_upload(&mut self, id: &str, len: usize) {
        if let Some(b) = self.uploads.get_mut(id) {
            b.truncate(len);
        }
    }
}

type Hook = dyn Fn(&Req, &mut State) -> Option<Resp> + Send + Sync;

pub struct Fake {
    pub addr: String,
    pub state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl Fake {
    /// An open registry; `hook` answers in the registry's place when it returns `Some`.
    pub fn start(hook: impl Fn(&Req, &mut State) -> Option<Resp> + Send + Sync + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let hook: Arc<Hook> = Arc::new(hook);
        {
            let (state, stop, addr) = (state.clone(), stop.clone(), addr.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let (state, hook, addr) = (state.clone(), hook.clone(), addr.clone());
                    std::thread::spawn(move || serve(conn, &state, &*hook, &addr));
                }
            });
        }
        Fake { addr, state, stop }
    }

    /// Loads every blob of an OCI layout and tags its root as `repo:tag`.
    pub fn load_layout(&self, dir: &Path, repo: &str, tag: &str, root: &str) {
        let mut st = self.state.lock().unwrap();
        for e in std::fs::read_dir(dir.join("blobs/sha256")).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            st.blobs
                .insert(format!("sha256:{name}"), std::fs::read(e.path()).unwrap());
        }
        st.tags.insert((repo.into(), tag.into()), root.to_string());
    }

    pub fn reference(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.addr)
    }

    /// Every request seen so far, as `METHOD path status`.
    pub fn requests(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .log
            .iter()
            .map(|(r, s)| format!("{} {} {s}", r.method, r.path()))
            .collect()
    }

    pub fn seen(&self) -> Vec<(Req, u16)> {
        self.state.lock().unwrap().log.clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect(&self.addr);
    }
}

fn read_request(conn: &TcpStream) -> Option<Req> {
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut req = Req {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    let len: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    req.body = vec![0; len];
    r.read_exact(&mut req.body).ok()?;
    Some(req)
}

fn serve(mut conn: TcpStream, state: &Mutex<State>, hook: &Hook, addr: &str) {
    // A TLS handshake (mockimg asks a loopback registry whether it speaks TLS) gets what a plain
    // HTTP server says to one.
    let mut first = [0u8; 1];
    if conn.peek(&mut first).is_ok_and(|n| n == 1) && first[0] == 0x16 {
        let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
        return;
    }
    let Some(req) = read_request(&conn) else {
        return;
    };
    let (resp, chunked) = {
        let mut st = state.lock().unwrap();
        let resp = hook(&req, &mut st).unwrap_or_else(|| registry(&req, &mut st, addr));
        st.log.push((req.clone(), resp.status));
        (resp, st.chunked)
    };
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", resp.status);
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match resp.body {
        Body::Bytes(b) if req.method == "HEAD" => {
            head.push_str(&format!("Content-Length: {}\r\n\r\n", b.len()));
            let _ = conn.write_all(head.as_bytes());
        }
        Body::Bytes(b) if chunked => {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
            let mut out = head.into_bytes();
            // Small chunks, so a reader has to put them together.
            for c in b.chunks(100) {
                out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                out.extend_from_slice(c);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            let _ = conn.write_all(&out);
        }
        Body::Bytes(b) => {
            head.push_str(&format!("Content-Length: {}\r\n\r\n", b.len()));
            let mut out = head.into_bytes();
            out.extend_from_slice(&b);
            let _ = conn.write_all(&out);
        }
        Body::Endless => {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
            if conn.write_all(head.as_bytes()).is_err() {
                return;
            }
            let chunk = vec![b'{'; 64 << 10];
            let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
            framed.extend_from_slice(&chunk);
            framed.extend_from_slice(b"\r\n");
            while conn.write_all(&framed).is_ok() {}
        }
    }
}

fn error(status: u16, code: &str) -> Resp {
    Resp::new(status)
        .header("Content-Type", "application/json")
        .body(format!(
            r#"{{"errors":[{{"code":"{code}","message":"fake"}}]}}"#
        ))
}

fn media_type(doc: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(doc)
        .ok()
        .and_then(|v| v["mediaType"].as_str().map(str::to_string))
        .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".into())
}

/// The distribution API, as far as mockimg uses it.
fn registry(req: &Req, st: &mut State, addr: &str) -> Resp {
    let path = req.path().to_string();
    if path == "/token" {
        st.issued += 1;
        let t = format!("tok-{}", st.issued);
        st.valid_tokens.push(t.clone());
        return Resp::new(200).body(format!(r#"{{"token":"{t}","expires_in":300}}"#));
    }
    if !st.valid_tokens.is_empty() {
        let ok = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .is_some_and(|t| st.valid_tokens.iter().any(|v| v == t));
        if !ok {
            return error(401, "UNAUTHORIZED").header(
                "WWW-Authenticate",
                &format!(r#"Bearer realm="http://{addr}/token",service="fake""#),
            );
        }
    }
    if path == "/v2/" {
        return Resp::new(200);
    }
    let m = req.method.as_str();
    if let Some((repo, r)) = split(&path, "/manifests/") {
        let digest = if r.starts_with("sha256:") {
            Some(r.clone())
        } else {
            st.tags.get(&(repo.clone(), r.clone())).cloned()
        };
        return match m {
            "GET" | "HEAD" => match digest.and_then(|d| st.blobs.get(&d).map(|b| (d, b))) {
                Some((d, b)) => Resp::new(200)
                    .header("Content-Type", &media_type(b))
                    .header("Docker-Content-Digest", &d)
                    .header("ETag", &format!("\"{d}\""))
                    .body(b.clone()),
                None => error(404, "MANIFEST_UNKNOWN"),
            },
            // A conditional PUT (`If-Match`) of a tag that moved since: refused.
            "PUT"
                if req.header("if-match").is_some_and(|m| {
                    digest.as_ref().map(|d| format!("\"{d}\"")).as_deref() != Some(m)
                }) =>
            {
                error(412, "PRECONDITION_FAILED")
            }
            "PUT" => {
                let d = sha256(&req.body);
                st.blobs.insert(d.clone(), req.body.clone());
                if !r.starts_with("sha256:") {
                    st.tags.insert((repo, r), d.clone());
                }
                Resp::new(201).header("Docker-Content-Digest", &d)
            }
            _ => Resp::new(405),
        };
    }
    if let Some((repo, rest)) = split(&path, "/blobs/uploads/") {
        if m == "POST" {
            if let Some(d) = req.query("mount") {
                if st.blobs.contains_key(&d) {
                    return Resp::new(201);
                }
            } else if let Some(d) = req.query("digest").filter(|_| !req.body.is_empty()) {
                return store(st, &d, req.body.clone());
            }
            st.opened += 1;
            let id = format!("u{}", st.opened);
            st.uploads.insert(id.clone(), Vec::new());
            return Resp::new(202).header("Location", &format!("/v2/{repo}/blobs/uploads/{id}"));
        }
        let Some(buf) = st.uploads.get_mut(&rest) else {
            return error(404, "BLOB_UPLOAD_UNKNOWN");
        };
        let location = format!("/v2/{repo}/blobs/uploads/{rest}");
        // As CNCF distribution writes it: `0-0` for an empty session too.
        let range = |len: usize| format!("0-{}", len.max(1) - 1);
        if m == "GET" {
            return Resp::new(204)
                .header("Location", &location)
                .header("Range", &range(buf.len()));
        }
        // A chunk must start where the session ends.
        let start = req
            .header("content-range")
            .and_then(|r| r.split_once('-'))
            .map(|(a, _)| a.parse::<usize>().unwrap_or(usize::MAX));
        if start.is_some_and(|a| a != buf.len()) {
            return Resp::new(416)
                .header("Location", &location)
                .header("Range", &range(buf.len()));
        }
        buf.extend_from_slice(&req.body);
        if m == "PATCH" {
            return Resp::new(202)
                .header("Location", &location)
                .header("Range", &range(buf.len()));
        }
        let data = st.uploads.remove(&rest).unwrap();
        return match req.query("digest") {
            Some(d) => store(st, &d, data),
            None => error(400, "DIGEST_INVALID"),
        };
    }
    if let Some((_, d)) = split(&path, "/blobs/") {
        return match st.blobs.get(&d) {
            Some(b) => Resp::new(200)
                .header("Content-Type", "application/octet-stream")
                .header("Docker-Content-Digest", &d)
                .body(b.clone()),
            None => error(404, "BLOB_UNKNOWN"),
        };
    }
    Resp::new(404)
}

fn store(st: &mut State, digest: &str, data: Vec<u8>) -> Resp {
    if sha256(&data) != digest {
        return error(400, "DIGEST_INVALID");
    }
    st.blobs.insert(digest.to_string(), data);
    Resp::new(201).header("Docker-Content-Digest", digest)
}

/// `/v2/NAME{sep}REST` → (NAME, REST).
fn split(path: &str, sep: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/v2/")?;
    let i = rest.find(sep)?;
    Some((rest[..i].to_string(), rest[i + sep.len()..].to_string()))
}
