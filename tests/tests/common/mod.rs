//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use dm_agent::{Device, Initiation};
use dm_core::{ClientUri, Command, ServerUri};
use dm_server::{self as server, CommandResult, ServerConfig, ServerHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The `dmctl` entry point (`dmctl::cli::main`), built as this
/// package's `dmctl-e2e` binary.
pub fn dmctl() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dmctl-e2e"))
}

/// Builds the plugin dylibs (the DCMO example and the loader's fixtures)
/// once per test process and returns the directory cargo put them in.
/// `cargo test` builds cdylib-only crates as test harnesses, not as
/// libraries, so the tests ask cargo for them; a nested cargo run on the
/// same target directory is safe once the test binaries are built.
pub fn plugin_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let out = std::process::Command::new(env!("CARGO"))
            .args([
                "build",
                "-p",
                "mo-dcmo",
                "-p",
                "plugin-crash",
                "-p",
                "plugin-abi1",
                "-p",
                "plugin-dup",
                "-p",
                "plugin-evil",
                "-p",
                "plugin-later",
                "-p",
                "mo-fumo",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run cargo");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // target/<profile>/deps/<test> -> target/<profile>
        let exe = std::env::current_exe().expect("test executable");
        exe.parent()
            .and_then(Path::parent)
            .expect("target dir")
            .to_owned()
    })
}

/// The file name of a plugin library built by cargo (`libmo_dcmo.so`).
pub fn plugin_file(crate_name: &str) -> PathBuf {
    let name = format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        crate_name.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    );
    plugin_dir().join(name)
}

/// A fresh directory holding copies of the named plugins, with the modes
/// the loader accepts (writable by the owner only, whatever the umask).
pub fn plugins_in(dir: &Path, crates: &[&str]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let out = dir.join("plugins");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755)).unwrap();
    for c in crates {
        let src = plugin_file(c);
        let dst = out.join(src.file_name().unwrap());
        std::fs::copy(&src, &dst).unwrap();
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    out
}

/// How the tests host isolated plugins: with the dmctl entry point (the
/// test binary itself is no `dmctl plugin-host`), and a short call timeout
/// so that a hanging plugin costs a second, not five.
pub fn plugin_options() -> dm_agent::plugins::PluginOptions {
    dm_agent::plugins::PluginOptions {
        host_program: Some(dmctl()),
        call_timeout: std::time::Duration::from_millis(1000),
    }
}

/// A DM "server" that answers every request with the same raw HTTP
/// response: for testing what the device does with bad answers.
pub async fn canned_server(response: String) -> SocketAddr {
    let response: std::sync::Arc<str> = response.into();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                read_request(&mut stream).await;
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

async fn read_request(stream: &mut tokio::net::TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Ok(n) = stream.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return;
            }
        }
    }
}

/// An HTTP response carrying `body` as a Package#2.
pub fn package2_response(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oma.dm.request+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The reference DM Server on a free loopback port, quiet, sending
/// `default_commands` to a device whose queue is empty.
pub async fn start_server(default_commands: Vec<dm_core::Command>) -> ServerHandle {
    server::start(ServerConfig {
        listen: SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
        default_commands,
        log_errors: false,
    })
    .await
    .unwrap()
}

/// A ClientURI the test knows to be well formed.
pub fn uri(s: &str) -> ClientUri {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

pub fn get(s: &str) -> Command {
    Command::Get { client_uri: uri(s) }
}

pub fn delete(s: &str) -> Command {
    Command::Delete { client_uri: uri(s) }
}

/// The status codes of `results`, in command order.
pub fn codes(results: &[CommandResult]) -> Vec<u16> {
    results.iter().map(|r| r.status.code.as_u16()).collect()
}

/// The GET data of one result, as text.
pub fn body(r: &CommandResult) -> String {
    String::from_utf8(r.data.as_ref().expect("GET data").body.clone()).unwrap()
}

/// One client-initiated session of `device` with the server `server_id`
/// (served by `server`) running `commands`, then the Generic Alerts of
/// asynchronous EXECs; returns the results of this session's commands.
pub async fn session(
    server: &ServerHandle,
    server_id: &str,
    dev_id: &str,
    device: &mut Device,
    commands: Vec<Command>,
) -> Vec<CommandResult> {
    let before = server.device(dev_id).map_or(0, |r| r.results.len());
    for c in commands {
        server.enqueue(dev_id, c);
    }
    device
        .run_session_as(server_id, Initiation::ClientInitiated, true, Vec::new())
        .await
        .unwrap();
    dm_agent::service::deliver_alerts(device).await;
    server.device(dev_id).unwrap().results[before..].to_vec()
}

/// A DMAcc instance for a bootstrap (spec 12.2), its Perm list `moids`.
pub fn dmacc_item(server_id: &str, server_uri: &str, moids: &[&str]) -> serde_json::Value {
    let perm: serde_json::Map<String, serde_json::Value> = moids
        .iter()
        .enumerate()
        .map(|(i, m)| (format!("p{i}"), serde_json::json!({ "MOID": m })))
        .collect();
    serde_json::json!({
        "ClientURI": format!("urn:oma:mo:oma-dm-dmacc:1.2/{server_id}/"),
        "MOData": { server_id: {
            "SrvID": server_id, "SrvURI": server_uri, "Name": format!("server {server_id}"),
            "Perm": perm,
            "Auth": { "Noti": { "Type": 0, "Data": "YXV0aA==", "Secret": "c2VjcmV0" } }
        } }
    })
}

/// A factory bootstrap file with one DMAcc account.
pub fn bootstrap_file(dir: &Path, server_id: &str, server_uri: &str) -> PathBuf {
    let path = dir.join("bootstrap.json");
    let body = serde_json::json!([dmacc_item(server_id, server_uri, &["*"])]);
    std::fs::write(&path, body.to_string()).unwrap();
    path
}

/// One request a [`Repository`] received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Route = (u16, String, Vec<u8>, Vec<(String, String)>);

/// A Data Repository for tests: answers each path with a configured
/// response (404 otherwise) and records every request.
#[derive(Clone)]
pub struct Repository {
    pub addr: SocketAddr,
    routes: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Route>>>,
    requests: std::sync::Arc<std::sync::Mutex<Vec<Recorded>>>,
    /// Connections accepted, with or without a request on them.
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Repository {
    /// An HGET of `data` (the MOData of the node at `target`) served from
    /// this repository at `/name` into `target`.
    pub fn hget(&self, name: &str, target: &str, data: serde_json::Value) -> Command {
        let member = target.rsplit('/').next().unwrap().to_owned();
        let item = serde_json::json!([{ "ClientURI": target, "MOData": { member: data } }]);
        let path = format!("/{name}");
        self.route(&path, 200, "application/dmmo+json", item.to_string());
        Command::Hget {
            server_uri: ServerUri::new(self.url(&path)),
            client_uri: Some(uri(target)),
        }
    }

    pub async fn start() -> Repository {
        Repository::start_at(std::net::Ipv4Addr::LOCALHOST.into()).await
    }

    /// A repository on a free port of `ip` (an address of this host).
    pub async fn start_at(ip: std::net::IpAddr) -> Repository {
        let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await.unwrap();
        let repo = Repository {
            addr: listener.local_addr().unwrap(),
            routes: Default::default(),
            requests: Default::default(),
            connections: Default::default(),
        };
        let r = repo.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                r.connections
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let r = r.clone();
                tokio::spawn(async move { r.serve(stream).await });
            }
        });
        repo
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn route(&self, path: &str, status: u16, content_type: &str, body: impl Into<Vec<u8>>) {
        self.route_with(path, status, content_type, body, &[]);
    }

    pub fn route_with(
        &self,
        path: &str,
        status: u16,
        content_type: &str,
        body: impl Into<Vec<u8>>,
        headers: &[(&str, &str)],
    ) {
        let headers = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.routes.lock().unwrap().insert(
            path.to_owned(),
            (status, content_type.to_owned(), body.into(), headers),
        );
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// How many connections were accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn serve(&self, mut stream: tokio::net::TcpStream) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let (head_end, length) = loop {
            let Ok(n) = stream.read(&mut chunk).await else {
                return;
            };
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + length {
                    break (end, length);
                }
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.lines();
        let mut first = lines.next().unwrap_or("").split_whitespace();
        let method = first.next().unwrap_or("").to_owned();
        let path = first.next().unwrap_or("").to_owned();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let body = buf[head_end + 4..head_end + 4 + length].to_vec();
        self.requests.lock().unwrap().push(Recorded {
            method,
            path: path.clone(),
            headers,
            body,
        });
        let bare_path = path.split('?').next().unwrap_or("").to_owned();
        let route = self.routes.lock().unwrap().get(&bare_path).cloned();
        let (status, content_type, body, extra) = route.unwrap_or((
            404,
            "text/plain".into(),
            b"no such resource".to_vec(),
            Vec::new(),
        ));
        let mut response = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (k, v) in extra {
            response.push_str(&format!("{k}: {v}\r\n"));
        }
        response.push_str("\r\n");
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.write_all(&body).await;
        let _ = stream.shutdown().await;
    }
}
