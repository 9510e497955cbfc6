//! TLS on the reference server (spec 9.2): `dmctl server --tls-cert
//! --tls-key [--client-ca [--client-cert MODE]]` serves DM sessions, the
//! Data Repository and the SHOW pages over TLS 1.2/1.3 only, and asks TLS
//! clients for a certificate from --client-ca; `dmctl client` (its `--ca`,
//! its account's `Auth/Trsp` certificate) is the other end.
#![allow(clippy::unwrap_used)]

mod common;
mod tls_support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dm_core::ServerUri;
use dm_server::{ClientAuth, EnrollPolicy, Resource, ServerConfig, ServerOptions, TlsConfig};
use tls_support::{b64, Ca, Issued};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

const DEV_ID: &str = "IMEI:490154203237518";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The PKI of one test: a server CA with a certificate for 127.0.0.1, a
/// client CA, their files.
struct Pki {
    tmp: tempfile::TempDir,
    ca: Ca,
    client_ca: Ca,
    cert: PathBuf,
    key: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        let tmp = tempfile::tempdir().unwrap();
        let ca = Ca::new("DM server CA");
        let id = ca.issue(&["127.0.0.1", "localhost"]);
        // The chain as operators deploy it: leaf, then the issuer.
        let cert = write(
            tmp.path(),
            "server.crt",
            &format!("{}{}", id.cert_pem, ca.pem()),
        );
        let key = write(tmp.path(), "server.key", &id.key_pem);
        Pki {
            tmp,
            ca,
            client_ca: Ca::new("DM client CA"),
            cert,
            key,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn ca_file(&self) -> String {
        write(self.tmp.path(), "ca.pem", &self.ca.pem())
            .to_string_lossy()
            .into_owned()
    }

    fn client_ca_file(&self) -> PathBuf {
        write(self.tmp.path(), "clients.pem", &self.client_ca.pem())
    }

    /// A factory bootstrap for account `A` at `url` in directory `name`,
    /// `Auth/Trsp` holding `identity`'s PEM certificate and key.
    fn bootstrap(&self, name: &str, url: &str, identity: Option<&Issued>) -> PathBuf {
        let mut item = common::dmacc_item("A", url, &["*"]);
        if let Some(id) = identity {
            item["MOData"]["A"]["Auth"]["Trsp"] = serde_json::json!({
                "Data": b64(id.cert_pem.as_bytes()),
                "Secret": b64(id.key_pem.as_bytes()),
            });
        }
        let dir = self.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        write(
            &dir,
            "bootstrap.json",
            &serde_json::json!([item]).to_string(),
        )
    }

    /// `dmctl client --once --ca CA` with `bootstrap`; exit code, stderr.
    async fn client(&self, state: &str, bootstrap: &Path) -> (i32, String) {
        let state = self.path(state);
        let out = tokio::time::timeout(
            Duration::from_secs(60),
            Command::new(common::dmctl())
                .args(["client", "--once", "--timeout", "10", "--dev-id", DEV_ID])
                .arg("--state")
                .arg(state)
                .arg("--bootstrap")
                .arg(bootstrap)
                .args(["--ca", &self.ca_file()])
                .output(),
        )
        .await
        .expect("the client ends")
        .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// A `dmctl server` process and the lines it wrote on stderr.
struct Server {
    _child: Child,
    url: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `dmctl server --listen 127.0.0.1:0 ARGS` and reads the
    /// ServerURI it prints.
    async fn start(args: &[&std::ffi::OsStr]) -> Server {
        let mut child = Command::new(common::dmctl())
            .args(["server", "--listen", "127.0.0.1:0"])
            // These devices have no credentials: TLS is what is tested
            // here, device authentication in server_auth.rs.
            .args(["--enroll", "flag"])
            .args(args)
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log: Arc<Mutex<Vec<String>>> = Default::default();
        let url = loop {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .expect("server start")
                .unwrap()
                .expect("server output");
            log.lock().unwrap().push(line.clone());
            if let Some(u) = line.strip_prefix("dmctl server: DM sessions at ") {
                break u.trim().to_owned();
            }
        };
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        Server {
            _child: child,
            url,
            log,
        }
    }

    fn port(&self) -> u16 {
        self.url
            .rsplit_once(':')
            .and_then(|(_, rest)| rest.trim_end_matches("/dm").parse().ok())
            .unwrap()
    }

    /// Waits up to 10 s for a log line containing `text`.
    async fn logged(&self, text: &str) -> bool {
        for _ in 0..100 {
            if self.log.lock().unwrap().iter().any(|l| l.contains(text)) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}

fn os(p: &Path) -> &std::ffi::OsStr {
    p.as_os_str()
}

/// What a plain-HTTP request to `port` gets back (until the peer closes).
async fn plain_http(port: u16) -> Vec<u8> {
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tcp.write_all(b"POST /dm HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut out))
        .await
        .expect("the server closes the connection");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dmctl_client_runs_a_session_with_dmctl_server_over_tls_only() {
    let pki = Pki::new();
    let server = Server::start(&[
        "--tls-cert".as_ref(),
        os(&pki.cert),
        "--tls-key".as_ref(),
        os(&pki.key),
    ])
    .await;
    assert_eq!(
        server.url,
        format!("https://127.0.0.1:{}/dm", server.port())
    );
    // GET DevInfo (the server's default command), then END.
    let boot = pki.bootstrap("b", &server.url, None);
    let (code, stderr) = pki.client("s1", &boot).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("ended with END after"), "{stderr}");

    // Plain HTTP on the same port: no HTTP answer, a logged refusal.
    let answer = plain_http(server.port()).await;
    assert!(!answer.windows(5).any(|w| w == b"HTTP/"), "{answer:?}");
    assert!(server.logged("TLS handshake failed").await);
    // The device pointed at http:// on that port gets no session either.
    let plain_url = format!("http://127.0.0.1:{}/dm", server.port());
    let boot = pki.bootstrap("p", &plain_url, None);
    let (code, stderr) = pki.client("s2", &boot).await;
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("aborted"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_client_certificate_comes_from_the_client_ca() {
    let pki = Pki::new();
    let clients = pki.client_ca_file();
    let server = Server::start(&[
        "--tls-cert".as_ref(),
        os(&pki.cert),
        "--tls-key".as_ref(),
        os(&pki.key),
        "--client-ca".as_ref(),
        os(&clients),
    ])
    .await;
    assert!(server.logged("must present a certificate").await);

    // Auth/Trsp holds a certificate from the client CA: served.
    let device = pki.client_ca.issue(&["device.example"]);
    let boot = pki.bootstrap("good", &server.url, Some(&device));
    let (code, stderr) = pki.client("s1", &boot).await;
    assert_eq!(code, 0, "{stderr}");

    // No certificate: refused at the handshake. (The server's log says
    // why; what the client reads may be the alert or a reset.)
    let boot = pki.bootstrap("none", &server.url, None);
    let (code, stderr) = pki.client("s2", &boot).await;
    assert_eq!(code, 3, "{stderr}");
    assert!(
        server
            .logged("TLS handshake failed: peer sent no certificates")
            .await
    );

    // A certificate from another CA: refused too.
    let stranger = Ca::new("stranger CA").issue(&["device.example"]);
    let boot = pki.bootstrap("stranger", &server.url, Some(&stranger));
    let (code, stderr) = pki.client("s3", &boot).await;
    assert_eq!(code, 3, "{stderr}");
    assert!(server.logged("UnknownIssuer").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_optional_client_certificate_is_still_verified_when_presented() {
    let pki = Pki::new();
    let clients = pki.client_ca_file();
    let server = Server::start(&[
        "--tls-cert".as_ref(),
        os(&pki.cert),
        "--tls-key".as_ref(),
        os(&pki.key),
        "--client-ca".as_ref(),
        os(&clients),
        "--client-cert".as_ref(),
        "optional".as_ref(),
    ])
    .await;
    let boot = pki.bootstrap("none", &server.url, None);
    let (code, stderr) = pki.client("s1", &boot).await;
    assert_eq!(code, 0, "{stderr}");
    let stranger = Ca::new("stranger CA").issue(&["device.example"]);
    let boot = pki.bootstrap("stranger", &server.url, Some(&stranger));
    let (code, stderr) = pki.client("s2", &boot).await;
    assert_eq!(code, 3, "{stderr}");
    assert!(server.logged("UnknownIssuer").await);
}

/// `dmctl server ARGS` that must fail to start: its exit code and stderr.
async fn start_error(args: &[&std::ffi::OsStr]) -> (i32, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new(common::dmctl())
            .args(["server", "--listen", "127.0.0.1:0"])
            .args(args)
            .output(),
    )
    .await
    .expect("the server exits")
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tls_files_are_start_errors_naming_the_file() {
    let pki = Pki::new();
    let garbage = write(pki.tmp.path(), "garbage.pem", "not PEM at all");
    let other_key = write(
        pki.tmp.path(),
        "other.key",
        &pki.ca.issue(&["127.0.0.1"]).key_pem,
    );
    let missing = pki.path("missing.pem");
    let cases: [(&[&Path], &str); 4] = [
        (&[&garbage, &pki.key, &pki.cert], "garbage.pem"),
        (&[&pki.cert, &garbage, &pki.cert], "garbage.pem"),
        (&[&pki.cert, &other_key, &pki.cert], "other.key"),
        (&[&pki.cert, &pki.key, &missing], "missing.pem"),
    ];
    for (files, named) in cases {
        let (code, stderr) = start_error(&[
            "--tls-cert".as_ref(),
            os(files[0]),
            "--tls-key".as_ref(),
            os(files[1]),
            "--client-ca".as_ref(),
            os(files[2]),
        ])
        .await;
        assert_eq!(code, 2, "{files:?}: {stderr}");
        assert!(stderr.contains(named), "{files:?}: {stderr}");
        assert!(!stderr.contains("DM sessions at"), "{stderr}");
    }
    // A certificate without its key is a usage error.
    let (code, stderr) = start_error(&["--tls-cert".as_ref(), os(&pki.cert)]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--tls-key"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_repository_is_served_over_the_same_tls() {
    let pki = Pki::new();
    let clients = pki.client_ca_file();
    let tls =
        TlsConfig::from_files(&pki.cert, &pki.key, Some((&clients, ClientAuth::Required))).unwrap();
    let server = dm_server::start_with(
        ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            default_commands: Vec::new(),
            log_errors: false,
        },
        ServerOptions {
            tls: Some(tls),
            enroll: Some(EnrollPolicy::Flag),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    server
        .storage()
        .put_resource(
            DEV_ID,
            "name",
            &Resource {
                content_type: "text/plain".into(),
                body: b"Over TLS".to_vec(),
                origin: "admin".into(),
                updated: 0,
            },
        )
        .unwrap();
    let repo_url = server.repo_url(DEV_ID, "name");
    assert!(repo_url.starts_with("https://127.0.0.1:"), "{repo_url}");
    server.enqueue(
        DEV_ID,
        dm_core::Command::Hget {
            server_uri: ServerUri::new(repo_url),
            client_uri: Some(common::uri("urn:oma:mo:oma-dm-dmacc:1.2/A/Name")),
        },
    );

    // Without a client certificate nothing reaches the server.
    let boot = pki.bootstrap("none", &server.dm_url(), None);
    let (code, stderr) = pki.client("s1", &boot).await;
    assert_eq!(code, 3, "{stderr}");
    assert!(server.device(DEV_ID).is_none_or(|d| d.sessions == 0));

    // With one: the session, and the HGET from the repository on the same
    // TLS listener (the same client certificate), succeed.
    let device = pki.client_ca.issue(&["device.example"]);
    let boot = pki.bootstrap("good", &server.dm_url(), Some(&device));
    let (code, stderr) = pki.client("s2", &boot).await;
    assert_eq!(code, 0, "{stderr}");
    let record = server.device(DEV_ID).unwrap();
    assert_eq!(record.ended, 1);
    let hget = record
        .results
        .iter()
        .find(|r| matches!(r.command, dm_core::Command::Hget { .. }))
        .unwrap();
    assert_eq!(hget.status.code.as_u16(), 200, "{:?}", hget.status);
    server.shutdown().await;
}

/// One request to the admin API over TLS (trusting `pki`'s CA): status.
async fn admin_over_tls(pki: &Pki, addr: std::net::SocketAddr, headers: &str) -> u16 {
    let config = tls_support::client_config(&pki.ca, None);
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let head =
        format!("GET /api/devices HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\r\n");
    tls.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_speaks_tls_with_the_servers_certificate_when_asked() {
    let pki = Pki::new();
    let tls = TlsConfig::from_files(&pki.cert, &pki.key, None).unwrap();
    let server = dm_server::start_with(
        ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            default_commands: Vec::new(),
            log_errors: false,
        },
        ServerOptions {
            tls: Some(tls),
            admin: Some("127.0.0.1:0".parse().unwrap()),
            admin_tls: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let admin = server.admin_addr().unwrap();
    let (_, token) =
        dm_server::create_admin_token(server.storage().as_ref(), dm_server::AdminRole::Read)
            .unwrap();
    let bearer = format!("Authorization: Bearer {token}\r\n");
    assert_eq!(admin_over_tls(&pki, admin, &bearer).await, 200);
    assert_eq!(admin_over_tls(&pki, admin, "").await, 401);
    // Its own origin is https:// now; the http:// one is another origin.
    let same = format!("{bearer}Origin: https://{admin}\r\n");
    assert_eq!(admin_over_tls(&pki, admin, &same).await, 200);
    let other = format!("{bearer}Origin: http://{admin}\r\n");
    assert_eq!(admin_over_tls(&pki, admin, &other).await, 403);
    // Plain HTTP gets no answer there: a token never crosses in clear.
    let plain = plain_http(admin.port()).await;
    assert!(!plain.starts_with(b"HTTP/1.1"), "{plain:?}");
    server.shutdown().await;

    // Without TLS for the DM listener there is no certificate to use.
    let refused = dm_server::start_with(
        ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            default_commands: Vec::new(),
            log_errors: false,
        },
        ServerOptions {
            admin: Some("127.0.0.1:0".parse().unwrap()),
            admin_tls: true,
            ..Default::default()
        },
    )
    .await;
    assert!(refused.is_err());
}
