//! A fault-injecting HTTP/1.1 proxy on a loopback port, in front of the real registry. Every
//! exchange is forced to `Connection: close`, so one client connection carries one request and the
//! proxy never has to find where a keep-alive request body ends.
//!
//! Rules match (method, path substring) and fire on the first `times` matching requests; every
//! request is recorded so tests can assert that a fault really was injected.
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Answer with this status instead of forwarding; `retry_after` adds `Retry-After: 1`.
    Status { code: u16, retry_after: bool },
    /// Take the request head and the start of its body, then reset the connection (RST).
    ResetRequest,
    /// Forward; send the response head and half the body, then reset the connection (RST).
    ResetResponse,
    /// Forward; send the response head and half the body, then close cleanly (FIN).
    Truncate,
    /// Forward; flip one byte in the middle of the response body.
    FlipByte,
    /// Forward; send the head and half the body, then hold the connection open until the client
    /// goes away or [`Proxy::release`] is called.
    Stall,
    /// Forward; once the upstream has answered, send nothing back and hold the connection open
    /// until the client goes away or [`Proxy::release`] is called: a request the server took
    /// whose answer never comes.
    Hold,
    /// Answer `307` with `Location: <this base URL><same path>`, as registries do to send blob
    /// downloads to object storage on another host.
    Redirect(String),
}

pub fn status(code: u16) -> Fault {
    Fault::Status {
        code,
        retry_after: false,
    }
}

pub fn status_retry_after(code: u16) -> Fault {
    Fault::Status {
        code,
        retry_after: true,
    }
}

struct Rule {
    method: String,
    path: String,
    times: usize,
    fault: Fault,
    hits: AtomicUsize,
}

/// One request the proxy saw, and the fault it got (if any).
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub fault: Option<Fault>,
    /// Whether the request carried an `Authorization` header.
    pub authorized: bool,
    /// When its head arrived, from the proxy's start.
    pub at: Duration,
}

struct Inner {
    upstream: String,
    /// Sent upstream in place of the client's `Authorization` (a stand-in object store that
    /// holds its own access).
    upstream_auth: Option<String>,
    rules: Mutex<Vec<Arc<Rule>>>,
    seen: Mutex<Vec<Seen>>,
    stop: AtomicBool,
    released: AtomicBool,
    /// Request-body bytes forwarded upstream, response bytes sent back (forwarded exchanges
    /// without a fault).
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    /// Milliseconds every request waits before it is handled: one simulated round trip.
    delay_ms: AtomicU64,
    started: Instant,
}

pub struct Proxy {
    pub addr: String,
    inner: Arc<Inner>,
}

impl Proxy {
    /// Starts a proxy for `upstream` (`HOST:PORT`) on 127.0.0.1, on an ephemeral port.
    pub fn start(upstream: &str) -> Proxy {
        Self::start_inner(upstream, None)
    }

    /// A proxy that authenticates upstream itself with `authorization` (a full header value),
    /// whatever the client sends: a stand-in for blob storage on another host.
    pub fn start_with_upstream_auth(upstream: &str, authorization: &str) -> Proxy {
        Self::start_inner(upstream, Some(authorization.to_string()))
    }

    fn start_inner(upstream: &str, upstream_auth: Option<String>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let inner = Arc::new(Inner {
            upstream: upstream.to_string(),
            upstream_auth,
            rules: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            released: AtomicBool::new(false),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
            delay_ms: AtomicU64::new(0),
            started: Instant::now(),
        });
        let i = inner.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if i.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(c) = conn {
                    let i = i.clone();
                    std::thread::spawn(move || {
                        let _ = handle(&i, c);
                    });
                }
            }
        });
        Proxy { addr, inner }
    }

    /// Injects `fault` into the first `times` requests with this method (`*` for any) whose
    /// path contains `path`. Earlier rules win.
    pub fn rule(&self, method: &str, path: &str, times: usize, fault: Fault) -> &Proxy {
        self.inner.rules.lock().unwrap().push(Arc::new(Rule {
            method: method.to_string(),
            path: path.to_string(),
            times,
            fault,
            hits: AtomicUsize::new(0),
        }));
        self
    }

    /// Forgets all rules (recorded requests are kept).
    pub fn clear_rules(&self) {
        self.inner.rules.lock().unwrap().clear();
    }

    /// Requests that were given a fault.
    pub fn injected(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.fault.is_some())
            .collect()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.seen.lock().unwrap().clone()
    }

    /// `METHOD PATH` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.seen()
            .iter()
            .map(|s| format!("{} {}", s.method, s.path))
            .collect()
    }

    pub fn count(&self, method: &str, path: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| (method == "*" || s.method == method) && s.path.contains(path))
            .count()
    }

    /// Polls until a matching request has been seen; false at the deadline.
    pub fn wait_for(&self, method: &str, path: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.count(method, path) > 0 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Makes every later request wait `d` before it is handled, as a distant registry would.
    pub fn set_delay(&self, d: Duration) {
        self.inner
            .delay_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }

    /// Request-body bytes the proxy has forwarded to the registry (what the registry received).
    pub fn bytes_up(&self) -> u64 {
        self.inner.bytes_up.load(Ordering::SeqCst)
    }

    /// Response bytes (heads and bodies) the proxy has sent back to clients.
    pub fn bytes_down(&self) -> u64 {
        self.inner.bytes_down.load(Ordering::SeqCst)
    }

    /// Lets stalled responses go (they are closed, not completed).
    pub fn release(&self) {
        self.inner.released.store(true, Ordering::SeqCst);
    }

    pub fn reference(&self, repo_tag: &str) -> String {
        format!("{}/{}", self.addr, repo_tag)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        self.release();
        // Wakes the accept loop so it sees the stop flag.
        let _ = TcpStream::connect(&self.addr);
    }
}

fn find(buf: &[u8], pat: &[u8]) -> Option<usize> {
    buf.windows(pat.len()).position(|w| w == pat)
}

/// Reads until the end of an HTTP head; returns (head, bytes read past it).
fn read_head(s: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            return Ok(Some((head, buf[end + 4..].to_vec())));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        // A TLS handshake (mockimg asks whether a loopback port speaks TLS): answer as a plain
        // HTTP server does, at once, instead of waiting for a head that never comes.
        if buf[0] == 0x16 {
            s.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")?;
            return Ok(None);
        }
    }
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// The same head with any `Connection`/`Keep-Alive` header replaced by `Connection: close`.
fn force_close(head: &str) -> String {
    let mut out = String::new();
    for l in head.trim_end_matches("\r\n").split("\r\n") {
        let name = l.split(':').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        out.push_str(l);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

fn with_authorization(head: &str, value: &str) -> String {
    let mut out = String::new();
    for l in head.trim_end_matches("\r\n").split("\r\n") {
        let name = l.split(':').next().unwrap_or("").trim();
        if !name.eq_ignore_ascii_case("authorization") {
            out.push_str(l);
            out.push_str("\r\n");
        }
    }
    out.push_str(&format!("Authorization: {value}\r\n\r\n"));
    out
}

/// Closes with RST instead of FIN: `SO_LINGER` 0 on the last descriptor of the socket.
fn reset(s: TcpStream) {
    let sock = tokio::net::TcpSocket::from_std_stream(s);
    let _ = sock.set_zero_linger();
    drop(sock);
}

/// Answers without reading the whole request, then drains what the client still sends until it
/// closes: closing with unread data would turn the reply into a reset.
fn reply_and_linger(mut c: TcpStream, code: u16, retry_after: bool) -> std::io::Result<()> {
    let body = if code == 429 {
        r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"injected: slow down"}]}"#
    } else {
        r#"{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}"#
    };
    let mut head = format!(
        "HTTP/1.1 {code} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if retry_after {
        head.push_str("Retry-After: 1\r\n");
    }
    head.push_str("\r\n");
    c.write_all(head.as_bytes())?;
    c.write_all(body.as_bytes())?;
    c.flush()?;
    let _ = c.shutdown(Shutdown::Write);
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut sink = [0u8; 65536];
    while matches!(c.read(&mut sink), Ok(n) if n > 0) {}
    Ok(())
}

fn handle(inner: &Inner, mut client: TcpStream) -> std::io::Result<()> {
    let Some((head, early_body)) = read_head(&mut client)? else {
        return Ok(());
    };
    let mut first = head.lines().next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let fault = {
        let rules = inner.rules.lock().unwrap();
        rules
            .iter()
            .find(|r| {
                (r.method == "*" || r.method == method)
                    && path.contains(&r.path)
                    && r.hits
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |h| {
                            (h < r.times).then_some(h + 1)
                        })
                        .is_ok()
            })
            .map(|r| r.fault.clone())
    };
    inner.seen.lock().unwrap().push(Seen {
        method: method.clone(),
        path: path.clone(),
        fault: fault.clone(),
        authorized: header(&head, "authorization").is_some(),
        at: inner.started.elapsed(),
    });
    let delay = inner.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        // The simulated distance, not synchronisation: nothing waits for it to pass.
        std::thread::sleep(Duration::from_millis(delay));
    }
    let has_body = header(&head, "content-length").is_some_and(|l| l != "0")
        || header(&head, "transfer-encoding").is_some();

    match fault {
        Some(Fault::Status { code, retry_after }) => {
            return reply_and_linger(client, code, retry_after)
        }
        Some(Fault::Redirect(base)) => {
            let reply = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {base}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            client.write_all(reply.as_bytes())?;
            return Ok(());
        }
        Some(Fault::ResetRequest) => {
            if has_body && early_body.is_empty() {
                // Wait for the start of the body so the reset lands mid-upload.
                client.set_read_timeout(Some(Duration::from_secs(2)))?;
                let mut b = [0u8; 1024];
                let _ = client.read(&mut b);
            }
            reset(client);
            return Ok(());
        }
        _ => {}
    }

    let mut up = match TcpStream::connect(&inner.upstream) {
        Ok(u) => u,
        Err(_) => return reply_and_linger(client, 502, false),
    };
    let head = match &inner.upstream_auth {
        Some(a) => with_authorization(&head, a),
        None => head,
    };
    up.write_all(force_close(&head).as_bytes())?;
    up.write_all(&early_body)?;
    // Request bodies are copied on their own thread; the response is read on this one.
    let body_copier = if has_body {
        let (mut c, mut u) = (client.try_clone()?, up.try_clone()?);
        Some(std::thread::spawn(move || {
            std::io::copy(&mut c, &mut u).unwrap_or(0)
        }))
    } else {
        None
    };

    let Some((rhead, mut rbody)) = read_head(&mut up)? else {
        return Ok(());
    };
    let body_len = if method == "HEAD" {
        0
    } else {
        header(&rhead, "content-length")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(0)
    };
    if fault == Some(Fault::Hold) {
        return stall(inner, client);
    }
    client.write_all(force_close(&rhead).as_bytes())?;
    let half = body_len / 2;
    match fault {
        Some(Fault::Truncate) | Some(Fault::ResetResponse) | Some(Fault::Stall) if body_len > 0 => {
            while rbody.len() < half {
                let mut b = vec![0u8; 65536];
                let n = up.read(&mut b)?;
                if n == 0 {
                    break;
                }
                rbody.extend_from_slice(&b[..n]);
            }
            client.write_all(&rbody[..half.min(rbody.len())])?;
            client.flush()?;
            match fault {
                Some(Fault::Truncate) => {
                    let _ = client.shutdown(Shutdown::Both);
                }
                Some(Fault::ResetResponse) => {
                    if let Some(t) = body_copier {
                        let _ = client.shutdown(Shutdown::Read);
                        let _ = t.join();
                    }
                    reset(client);
                }
                _ => stall(inner, client)?,
            }
            return Ok(());
        }
        Some(Fault::FlipByte) if body_len > 0 => {
            let mut sent = 0usize;
            let mut chunk = std::mem::take(&mut rbody);
            loop {
                if !chunk.is_empty() {
                    if (sent..sent + chunk.len()).contains(&half) {
                        chunk[half - sent] ^= 0x5a;
                    }
                    client.write_all(&chunk)?;
                    sent += chunk.len();
                }
                let mut b = vec![0u8; 65536];
                let n = up.read(&mut b)?;
                if n == 0 {
                    break;
                }
                chunk = b[..n].to_vec();
            }
        }
        _ => {
            client.write_all(&rbody)?;
            let n = std::io::copy(&mut up, &mut client)?;
            inner
                .bytes_down
                .fetch_add((rhead.len() + rbody.len()) as u64 + n, Ordering::SeqCst);
        }
    }
    client.flush()?;
    let _ = client.shutdown(Shutdown::Write);
    if let Some(t) = body_copier {
        let n = t.join().unwrap_or(0);
        inner
            .bytes_up
            .fetch_add(early_body.len() as u64 + n, Ordering::SeqCst);
    }
    Ok(())
}

/// Holds a half-sent response until the client gives up or goes away, or the test releases it.
fn stall(inner: &Inner, mut c: TcpStream) -> std::io::Result<()> {
    c.set_read_timeout(Some(Duration::from_millis(100)))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut b = [0u8; 1024];
    while Instant::now() < deadline && !inner.released.load(Ordering::SeqCst) {
        match c.read(&mut b) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    Ok(())
}
