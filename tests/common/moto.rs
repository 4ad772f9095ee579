//! A real S3 (and Lambda, IAM) for the publish tests: `moto_server` from PyPI on an ephemeral
//! loopback port, one per test, killed on drop. `scripts/test` installs it into a virtualenv and
//! names it in `MOCKIMG_TEST_MOTO_SERVER`. The helpers talk to it with plain HTTP/1.0 requests:
//! moto does not check signatures unless told to, so a request only needs an `Authorization`
//! header whose credential scope names the service, which is how moto routes it.
use super::{free_port, Env};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Access key id and secret the tests give mockimg; the secret must never be printed.
pub const ACCESS_KEY: &str = "AKIAMOCKIMGTEST00001";
/// The secret that must never appear in mockimg's output.
pub const SECRET_KEY: &str = "mockimg-test-secret-3f9a7c1e0b";
/// The region every test uses.
pub const REGION: &str = "us-east-1";

/// One `moto_server` process with its log.
pub struct Moto {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The `moto_server` that `scripts/test` installed; a clear failure, never a skip, without it.
fn moto_server() -> PathBuf {
    let p = std::env::var_os("MOCKIMG_TEST_MOTO_SERVER").map(PathBuf::from);
    match p {
        Some(p) if p.is_file() => p,
        _ => panic!(
            "MOCKIMG_TEST_MOTO_SERVER does not name a moto_server executable: run the tests \
             through scripts/test, which installs moto[server] into target/venv/ and sets it \
             (or: python3 -m venv target/venv && target/venv/bin/pip install 'moto[server]' && \
             MOCKIMG_TEST_MOTO_SERVER=$PWD/target/venv/bin/moto_server cargo test --test publish)"
        ),
    }
}

/// A parsed HTTP response.
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

impl Moto {
    /// Signatures unchecked: any credentials work.
    pub fn start() -> Moto {
        Self::start_inner(false)
    }

    /// Requests are authenticated against moto's IAM, so unknown keys are refused (403).
    pub fn start_with_auth() -> Moto {
        Self::start_inner(true)
    }

    fn start_inner(auth: bool) -> Moto {
        // As for the registry: a port another test took meanwhile makes this server exit, and
        // it starts again on another one rather than the test using someone else's server.
        for _ in 0..5 {
            if let Some(m) = Self::try_start(auth) {
                return m;
            }
        }
        panic!("no moto_server could bind a free loopback port in five tries");
    }

    fn try_start(auth: bool) -> Option<Moto> {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = dir.path().join("moto.log");
        let out = std::fs::File::create(&log).unwrap();
        let mut c = Command::new(moto_server());
        c.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        if auth {
            c.env("INITIAL_NO_AUTH_ACTION_COUNT", "0");
        }
        let child = c.spawn().expect("starting moto_server");
        let mut m = Moto {
            addr: format!("127.0.0.1:{port}"),
            child,
            log,
            _dir: dir,
        };
        m.wait_ready().then_some(m)
    }

    /// Waits until this server has bound its port ("Running on …" in its own log) and answers;
    /// false when it exited because the port was taken.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        let running = format!("Running on http://{}", self.addr);
        while Instant::now() < deadline {
            if let Some(st) = self.child.try_wait().unwrap() {
                let log = self.log();
                assert!(
                    log.contains("in use"),
                    "moto_server exited ({st}); log:\n{log}"
                );
                return false;
            }
            if self.log().contains(&running) {
                if let Ok(r) = self.try_request("GET", "/moto-api/", "s3", &[], &[]) {
                    if r.status == 200 {
                        return true;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto_server did not start; log:\n{}", self.log());
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `env` with the AWS settings that point mockimg at this server (or at `endpoint`, e.g. a
    /// proxy in front of it). Nothing from the machine's own AWS setup leaks in.
    pub fn env_for(&self, env: Env, endpoint: &str) -> Env {
        env.set("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .set("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .set("AWS_REGION", REGION)
            .set("AWS_ENDPOINT_URL", endpoint)
            .set("AWS_EC2_METADATA_DISABLED", "true")
            .set("AWS_CONFIG_FILE", "/dev/null")
            .set("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    }

    /// [`Moto::env_for`] this server itself.
    pub fn env(&self, env: Env) -> Env {
        let e = self.endpoint();
        self.env_for(env, &e)
    }

    fn try_request(
        &self,
        method: &str,
        path: &str,
        service: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        let mut s = TcpStream::connect(&self.addr)?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut req = format!(
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nContent-Length: {}\r\nAuthorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=00\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes())?;
        s.write_all(body)?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| std::io::Error::other("no HTTP head"))?;
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other("no status"))?;
        Ok(Response {
            status,
            head,
            body: raw[split + 4..].to_vec(),
        })
    }

    /// One request to `service` (`s3`, `iam`, `lambda`), answered in full.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        service: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.try_request(method, path, service, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\nmoto log:\n{}", self.log()))
    }

    /// Creates `bucket` (path-style `PUT /bucket`).
    pub fn create_bucket(&self, bucket: &str) {
        let r = self.request("PUT", &format!("/{bucket}"), "s3", &[], &[]);
        assert_eq!(r.status, 200, "create bucket: {}", r.text());
    }

    /// Puts an object, as someone other than mockimg would.
    pub fn put(&self, bucket: &str, key: &str, body: &[u8]) {
        let r = self.request("PUT", &format!("/{bucket}/{key}"), "s3", &[], body);
        assert_eq!(r.status, 200, "put {key}: {}", r.text());
    }

    /// The object's bytes and Content-Type, or `None` if it does not exist.
    pub fn get(&self, bucket: &str, key: &str) -> Option<(Vec<u8>, String)> {
        let r = self.request("GET", &format!("/{bucket}/{key}"), "s3", &[], &[]);
        match r.status {
            200 => Some((r.body.clone(), r.header("content-type").unwrap_or_default())),
            404 => None,
            s => panic!("get {key}: {s} {}", r.text()),
        }
    }

    /// Every key in the bucket, sorted.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let r = self.request("GET", &format!("/{bucket}?list-type=2"), "s3", &[], &[]);
        assert_eq!(r.status, 200, "list: {}", r.text());
        let text = r.text();
        let mut keys: Vec<String> = text
            .split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(|s| s.replace("&amp;", "&"))
            .collect();
        keys.sort();
        keys
    }

    /// Creates an IAM role Lambda may assume; returns its ARN.
    pub fn create_role(&self, name: &str) -> String {
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        let body = format!(
            "Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument={}",
            urlencode(policy)
        );
        let r = self.request(
            "POST",
            "/",
            "iam",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        );
        assert_eq!(r.status, 200, "create role: {}", r.text());
        let t = r.text();
        t.split("<Arn>")
            .nth(1)
            .and_then(|s| s.split("</Arn>").next())
            .expect("role ARN")
            .to_string()
    }

    /// Creates a Lambda function with `runtime` and these environment variables.
    pub fn create_function(&self, name: &str, runtime: &str, vars: serde_json::Value) {
        use base64::Engine as _;
        let role = self.create_role(&format!("{name}-role"));
        let code = base64::engine::general_purpose::STANDARD.encode(tiny_zip());
        let body = serde_json::json!({
            "FunctionName": name,
            "Runtime": runtime,
            "Role": role,
            "Handler": "io.gatehill.imposter.awslambda.HandlerV2",
            "Code": {"ZipFile": code},
            "Environment": {"Variables": vars},
        });
        let r = self.request(
            "POST",
            "/2015-03-31/functions",
            "lambda",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        );
        assert_eq!(r.status, 201, "create function: {}", r.text());
    }

    /// The function's environment variables.
    pub fn function_env(&self, name: &str) -> serde_json::Value {
        let r = self.request(
            "GET",
            &format!("/2015-03-31/functions/{name}/configuration"),
            "lambda",
            &[],
            &[],
        );
        assert_eq!(r.status, 200, "get function: {}", r.text());
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        v["Environment"]["Variables"].clone()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A one-file zip, enough for moto to accept a function's code.
fn tiny_zip() -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    w.start_file("handler.txt", opts).unwrap();
    w.write_all(b"stand-in for the engine\n").unwrap();
    w.finish().unwrap().into_inner()
}
