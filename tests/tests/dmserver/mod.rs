//! Helpers for the tests that run `dmctl server` as a process and drive it
//! only through its admin API.
#![allow(dead_code)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// A running `dmctl server` process.
pub struct DmServer {
    pub child: Child,
    /// `http://ADDR/dm`.
    pub dm_url: String,
    /// `host:port` of the admin API.
    pub admin: String,
    /// `http://ADDR` of the DM listener.
    pub base: String,
    /// An operator token of the admin API.
    pub token: String,
    /// Every line the server wrote on stderr after its start.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// `https://ADDR/bootstrap`, with `--bootstrap-listen`.
    pub bootstrap_url: Option<String>,
}

impl DmServer {
    /// Starts `dmctl server` on ephemeral loopback ports, reading the
    /// addresses it prints. With a database, an operator token is made
    /// first with `dmctl server token create`; without one, the server
    /// prints the token it makes at its first start.
    pub async fn start(dmctl: &Path, db: Option<&Path>) -> DmServer {
        DmServer::start_with(dmctl, db, &[]).await
    }

    /// [`DmServer::start`] with more arguments.
    pub async fn start_with(dmctl: &Path, db: Option<&Path>, extra: &[&str]) -> DmServer {
        let mut token = match db {
            Some(db) => Some(create_token(dmctl, db, "operator").await),
            None => None,
        };
        let mut cmd = Command::new(dmctl);
        cmd.args([
            "server",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
        ]);
        if let Some(db) = db {
            cmd.arg("--db").arg(db);
        }
        cmd.args(extra);
        let mut child = cmd
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let mut dm_url = None;
        let mut admin = None;
        let mut bootstrap_url = None;
        while dm_url.is_none() || admin.is_none() || token.is_none() {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .expect("server start")
                .unwrap()
                .expect("server output");
            if let Some(u) = line.strip_prefix("dmctl server: DM sessions at ") {
                dm_url = Some(u.trim().to_owned());
            }
            if let Some(u) = line.strip_prefix("dmctl server: admin API at http://") {
                admin = Some(u.trim().trim_end_matches("/api/devices").to_owned());
            }
            if let Some(u) = line.strip_prefix("dmctl server: bootstrap server at ") {
                bootstrap_url = u.split_whitespace().next().map(str::to_owned);
            }
            if let Some(t) = line.strip_prefix(FIRST_TOKEN) {
                assert!(db.is_none(), "a token was made before the start: {line}");
                token = Some(t.trim().to_owned());
            }
        }
        // Keep draining the log so the server never blocks on a full pipe.
        let log: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[server] {line}");
                sink.lock().unwrap().push(line);
            }
        });
        let dm_url = dm_url.unwrap();
        let base = dm_url.trim_end_matches("/dm").to_owned();
        DmServer {
            child,
            dm_url,
            admin: admin.unwrap(),
            base,
            token: token.unwrap(),
            log,
            bootstrap_url,
        }
    }

    /// The server's log once a line holds `needle` (the log is read by
    /// another task: a line comes a little after the request); panics
    /// after 10 s with what was logged.
    pub async fn logged(&self, needle: &str) -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let logged = self.log.lock().unwrap().clone();
            if logged.iter().any(|l| l.contains(needle)) {
                return logged;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "`{needle}` not logged: {logged:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `Authorization: Bearer` with the operator token.
    pub fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    /// One admin API request; returns the status and the JSON body.
    pub async fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let auth = self.auth();
        let (status, bytes) = http(
            &self.admin,
            method,
            path,
            &[
                ("Content-Type", "application/json"),
                ("Authorization", auth.as_str()),
            ],
            body.as_bytes(),
        )
        .await;
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {bytes:?}"));
        (status, json)
    }

    /// An admin request that must succeed.
    pub async fn ok(&self, method: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
        let body = (!body.is_null()).then_some(body);
        let (status, json) = self.api(method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {json}"
        );
        json
    }

    /// Queues a command given in its Package#2 form.
    pub async fn enqueue(&self, dev: &str, command: serde_json::Value) -> u64 {
        let json = self
            .ok("POST", &format!("/api/devices/{dev}/commands"), command)
            .await;
        json["id"].as_u64().unwrap()
    }
}

/// What `dmctl server` prints before the token it makes at a first start.
pub const FIRST_TOKEN: &str = "dmctl server: admin token (operator, shown once): ";

/// `dmctl server token create --role ROLE --db DB`: the token it prints.
pub async fn create_token(dmctl: &Path, db: &Path, role: &str) -> String {
    let out = Command::new(dmctl)
        .args(["server", "token", "create", "--role", role, "--db"])
        .arg(db)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A minimal HTTP/1.1 request over a fresh connection.
pub async fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let (status, _, body) = http_full(addr, method, path, headers, body).await;
    (status, body)
}

/// [`http`], also returning the response head (lower case).
pub async fn http_full(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    // Read the head, then Content-Length bytes (some servers, like
    // chromedriver, keep the connection open despite `Connection: close`).
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(e) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break e + 4;
        }
        let n = stream.read(&mut chunk).await.unwrap();
        if n == 0 {
            break buf.len();
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head_text = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let status = head_text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let length = head_text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == "content-length").then(|| v.trim().parse::<usize>().ok())?
    });
    match length {
        Some(len) => {
            while buf.len() < end + len {
                let n = stream.read(&mut chunk).await.unwrap();
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            buf.truncate(end + len);
        }
        None => {
            stream.read_to_end(&mut buf).await.unwrap();
        }
    }
    let mut body = buf[end.min(buf.len())..].to_vec();
    if head_text.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, head_text, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(pos) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..pos])
                .split(';')
                .next()
                .unwrap_or("")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = pos + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
}

/// A free UDP port on loopback (bound, read, released).
pub fn free_udp_addr() -> String {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().to_string()
}

/// Runs `dmctl client` to its end and returns (exit code, stderr).
pub async fn run_client(dmctl: &Path, args: &[&str]) -> (i32, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new(dmctl).arg("client").args(args).output(),
    )
    .await
    .expect("client finished")
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
