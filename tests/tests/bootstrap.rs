//! Every bootstrap path (spec 8, 9.3), each followed by a session with
//! BootstrapComplete: client-initiated (`--bootstrap-url`, HTTPS GET,
//! mutual TLS), server-initiated (`--bootstrap-listen`, mutual TLS with
//! the bootstrap server named by `Auth/Bootstrap`), and refusals: wrong
//! bootstrap credentials, and a bootstrap that would change another
//! server's account (factory included), which leaves the state untouched.
#![allow(clippy::unwrap_used)]

mod common;
mod tls_support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dm_agent::service::{self as agent, AgentOptions};
use dm_core::package::alert_type;
use dm_server::ServerHandle;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tls_support::{b64, client_config, Ca, Front, FrontOptions, Issued};

const DEV_ID: &str = "IMEI:353456789012345";

fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn got_bootstrap_complete(server: &ServerHandle) -> bool {
    server.device(DEV_ID).is_some_and(|d| {
        d.ended >= 1
            && d.alerts
                .iter()
                .any(|a| a.alert_type == alert_type::BOOTSTRAP_COMPLETE)
    })
}

/// The accounts (SrvID, SrvURI) kept in a state directory.
fn accounts_in(state: &Path) -> Vec<(String, String)> {
    let opts = AgentOptions {
        dev_id: Some(DEV_ID.into()),
        timeout: Duration::from_secs(5),
        ..AgentOptions::new(state.to_owned())
    };
    let device = agent::open_device(&opts).unwrap();
    let mut v: Vec<_> = device
        .accounts()
        .into_iter()
        .map(|a| (a.server_id, a.server_uri))
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_initiated_bootstrap_is_fetched_over_mutual_tls_then_announced() {
    let tmp = tempfile::tempdir().unwrap();
    let dm = common::start_server(Vec::new()).await;
    let ca = Ca::new("DM test CA");
    let device_ca = Ca::new("device CA");
    let device_id = device_ca.issue(&["device.example"]);
    let bs = Front::start(
        &ca.issue(&["127.0.0.1"]),
        FrontOptions {
            client_ca: Some(device_ca.der()),
            ..Default::default()
        },
    )
    .await;
    let item = common::dmacc_item("A", &dm.dm_url(), &["*"]);
    bs.route(
        "/bootstrap",
        200,
        "application/dmmo+json",
        serde_json::json!([item]).to_string(),
    );
    let ca_file = write(tmp.path(), "ca.pem", ca.pem().as_bytes());
    let cert = write(tmp.path(), "dev.pem", device_id.cert_pem.as_bytes());
    let key = write(tmp.path(), "dev.key", device_id.key_pem.as_bytes());
    let state = tmp.path().join("state");
    let run = |url: String| {
        let mut cmd = tokio::process::Command::new(common::dmctl());
        cmd.args(["client", "--once", "--timeout", "10", "--dev-id", DEV_ID])
            .arg("--state")
            .arg(&state)
            .arg("--ca")
            .arg(&ca_file)
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .args(["--bootstrap-url", &url])
            .kill_on_drop(true);
        cmd
    };
    let out = run(bs.url("/bootstrap")).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let seen = bs.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].client_certs, 1, "the device authenticated itself");
    assert_eq!(seen[0].header("omadm-devid"), Some(DEV_ID));
    assert!(got_bootstrap_complete(&dm));
    assert_eq!(accounts_in(&state), vec![("A".into(), dm.dm_url())]);

    // A plain http:// bootstrap URL is refused (9.3.1.1); the account
    // already there still gets its session.
    let out = run(format!("http://{}/bootstrap", dm.addr()))
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("secure transport"), "{stderr}");
    assert_eq!(dm.device(DEV_ID).unwrap().ended, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_initiated_bootstrap_that_cannot_be_fetched_is_a_configuration_error() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new("DM test CA");
    let bs = Front::start(&ca.issue(&["127.0.0.1"]), FrontOptions::default()).await;
    // Untrusted: no --ca, the host's store does not hold the test CA.
    let out = tokio::process::Command::new(common::dmctl())
        .args(["client", "--once", "--timeout", "5", "--dev-id", DEV_ID])
        .arg("--state")
        .arg(tmp.path().join("state"))
        .args(["--bootstrap-url", &bs.url("/bootstrap")])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("client-initiated bootstrap"), "{stderr}");
    assert!(bs.seen().is_empty());
}

/// A client-initiated bootstrap from a server an account names and pins
/// (12.2 Auth/Bootstrap/ServerURI and ServerPubKey): a server at that
/// address whose certificate `--ca` trusts but that carries another key is
/// refused, and nothing changes; the server holding the pinned key is
/// accepted, its certificate needing no `--ca` root, and the device shows
/// it the account's ClientPubKey.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_initiated_bootstrap_server_is_authenticated_by_its_pinned_key() {
    let tmp = tempfile::tempdir().unwrap();
    let old = common::start_server(Vec::new()).await;
    let moved = common::start_server(Vec::new()).await;
    let ca = Ca::new("DM test CA");
    // Both for 127.0.0.1; only the impostor's issuer is in --ca.
    let impostor = ca.issue(&["127.0.0.1"]);
    let pinned = Ca::new("bootstrap operator CA").issue(&["127.0.0.1"]);
    let device_ca = Ca::new("device CA");
    let device_id = device_ca.issue(&["device.example"]);
    let bs = Front::start(
        &impostor,
        FrontOptions {
            client_ca: Some(device_ca.der()),
            ..Default::default()
        },
    )
    .await;
    let mut a = common::dmacc_item("A", &old.dm_url(), &["*"]);
    a["MOData"]["A"]["Auth"]["Bootstrap"] = serde_json::json!({
        "ServerURI": format!("https://127.0.0.1:{}", bs.addr.port()),
        "SecMode": b64(&[1]),
        "ClientPubKey": b64(&device_id.cert_der),
        "ServerPubKey": b64(&pinned.cert_der),
        "ClientSecretKey": b64(&device_id.key_der),
    });
    let factory = write(
        tmp.path(),
        "factory.json",
        serde_json::json!([a]).to_string().as_bytes(),
    );
    // The bootstrap server moves A to another DM Server.
    let a_moved = common::dmacc_item("A", &moved.dm_url(), &["*"]);
    bs.route(
        "/bootstrap",
        200,
        "application/dmmo+json",
        serde_json::json!([a_moved]).to_string(),
    );
    let ca_file = write(tmp.path(), "ca.pem", ca.pem().as_bytes());
    let state = tmp.path().join("state");
    let run = || {
        let mut cmd = tokio::process::Command::new(common::dmctl());
        cmd.args(["client", "--once", "--timeout", "10", "--dev-id", DEV_ID])
            .arg("--state")
            .arg(&state)
            .arg("--ca")
            .arg(&ca_file)
            .arg("--bootstrap")
            .arg(&factory)
            .args(["--bootstrap-url", &bs.url("/bootstrap")])
            .kill_on_drop(true);
        cmd
    };

    let out = run().output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A exists: the device goes on with it after the refusal.
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("ServerPubKey"), "{stderr}");
    assert!(bs.seen().is_empty(), "{:?}", bs.seen());
    assert_eq!(accounts_in(&state), vec![("A".into(), old.dm_url())]);
    assert!(got_bootstrap_complete(&old));
    assert!(moved.device(DEV_ID).is_none());

    bs.serve_certificate(&pinned);
    let out = run().output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let seen = bs.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].client_certs, 1, "A's ClientPubKey, no --tls-cert");
    assert_eq!(accounts_in(&state), vec![("A".into(), moved.dm_url())]);
    assert!(got_bootstrap_complete(&moved), "{stderr}");
}

/// The parties of a server-initiated bootstrap.
struct Push {
    tmp: tempfile::TempDir,
    ca: Ca,
    device: Issued,
    bootstrap_server: Issued,
    port: u16,
}

impl Push {
    fn new() -> Push {
        let ca = Ca::new("DM test CA");
        let device = ca.issue(&["127.0.0.1"]);
        let bootstrap_server = ca.issue(&["bootstrap.example"]);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Push {
            tmp: tempfile::tempdir().unwrap(),
            ca,
            device,
            bootstrap_server,
            port,
        }
    }

    /// Factory accounts: `A` names the bootstrap server in Auth/Bootstrap
    /// (ServerPubKey as DER, 12.2.1.2); `Z` names none.
    fn factory(&self, dm_url: &str) -> PathBuf {
        let mut a = common::dmacc_item("A", dm_url, &["*"]);
        a["MOData"]["A"]["Auth"]["Bootstrap"] = serde_json::json!({
            "ServerURI": "https://bootstrap.example",
            "SecMode": b64(&[1]),
            "ClientPubKey": b64(&self.device.cert_der),
            "ServerPubKey": b64(&self.bootstrap_server.cert_der),
            "ClientSecretKey": b64(&self.device.key_der),
        });
        let z = common::dmacc_item("Z", dm_url, &["*"]);
        write(
            self.tmp.path(),
            "factory.json",
            serde_json::json!([a, z]).to_string().as_bytes(),
        )
    }

    fn state(&self) -> PathBuf {
        self.tmp.path().join("state")
    }

    /// The agent waiting for a pushed bootstrap; its certificate from
    /// `--tls-cert`/`--tls-key`, or (`identity_flags` false) from A's
    /// Auth/Bootstrap ClientPubKey and ClientSecretKey.
    fn spawn(&self, factory: &Path, identity_flags: bool) -> tokio::process::Child {
        self.spawn_with(factory, identity_flags, &["--once"])
    }

    fn spawn_with(
        &self,
        factory: &Path,
        identity_flags: bool,
        extra: &[&str],
    ) -> tokio::process::Child {
        let mut cmd = tokio::process::Command::new(common::dmctl());
        cmd.args(["client", "--timeout", "10", "--dev-id", DEV_ID])
            .args(extra)
            .arg("--state")
            .arg(self.state())
            .arg("--bootstrap")
            .arg(factory)
            .args(["--bootstrap-listen", &format!("127.0.0.1:{}", self.port)]);
        if identity_flags {
            let cert = write(self.tmp.path(), "dev.pem", self.device.cert_pem.as_bytes());
            let key = write(self.tmp.path(), "dev.key", self.device.key_pem.as_bytes());
            cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
        }
        cmd.stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }

    /// POSTs `body` as `identity`; the HTTP status and text, or why the
    /// connection failed. Retries while the device is not listening yet.
    async fn push(
        &self,
        identity: &Issued,
        body: &serde_json::Value,
    ) -> Result<(u16, String), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let tcp = loop {
            match tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await {
                Ok(s) => break s,
                Err(e) if Instant::now() > deadline => panic!("device not listening: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        let connector =
            tokio_rustls::TlsConnector::from(Arc::new(client_config(&self.ca, Some(identity))));
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let req = hyper::Request::post("/bootstrap")
            .header("Host", "127.0.0.1")
            .header("Content-Type", "application/dmmo+json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        // With TLS 1.3 a refused client certificate shows up here, at the
        // first read after the handshake.
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let text = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok((
            status,
            String::from_utf8_lossy(&text.to_bytes()).into_owned(),
        ))
    }
}

async fn exit_of(mut child: tokio::process::Child) -> (Option<i32>, String) {
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("client did not exit")
        .unwrap();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use tokio::io::AsyncReadExt;
        let _ = e.read_to_string(&mut stderr).await;
    }
    (status.code(), stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_initiated_bootstrap_over_mutual_tls_and_its_refusals() {
    let p = Push::new();
    let factory_server = common::start_server(Vec::new()).await;
    let new_server = common::start_server(Vec::new()).await;
    let factory = p.factory(&factory_server.dm_url());
    let child = p.spawn(&factory, true);

    // Wrong bootstrap credentials: a certificate from the same CA that no
    // account's Auth/Bootstrap names. The handshake fails.
    let intruder = p.ca.issue(&["intruder.example"]);
    let b = serde_json::json!([common::dmacc_item("B", &new_server.dm_url(), &["*"])]);
    let refused = p.push(&intruder, &b).await;
    assert!(refused.is_err(), "{refused:?}");

    // The right bootstrap server, but an item that would land on A's
    // account for server C: refused, 403.
    let mut onto_a = common::dmacc_item("C", &new_server.dm_url(), &["*"]);
    onto_a["ClientURI"] = serde_json::json!("urn:oma:mo:oma-dm-dmacc:1.2/A/");
    let (status, text) = p
        .push(&p.bootstrap_server, &serde_json::json!([onto_a]))
        .await
        .unwrap();
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("account of server A"), "{text}");

    // An update of Z, whose Auth/Bootstrap does not name this server.
    let z = common::dmacc_item("Z", "http://127.0.0.1:9/evil", &["*"]);
    let (status, text) = p
        .push(&p.bootstrap_server, &serde_json::json!([z]))
        .await
        .unwrap();
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("server Z"), "{text}");

    // A good one: a new account B, then its BootstrapComplete session.
    let (status, text) = p.push(&p.bootstrap_server, &b).await.unwrap();
    assert_eq!(status, 200, "{text}");
    let (code, stderr) = exit_of(child).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("refused: TLS"), "{stderr}");
    assert!(got_bootstrap_complete(&new_server), "{stderr}");
    // Nothing of the refused ones was written.
    let accounts = accounts_in(&p.state());
    assert_eq!(
        accounts,
        vec![
            ("A".into(), factory_server.dm_url()),
            ("B".into(), new_server.dm_url()),
            ("Z".into(), factory_server.dm_url()),
        ]
    );
    // The bootstrap keys never show up in the log.
    assert!(!stderr.contains("PRIVATE KEY"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_server_may_update_the_accounts_that_name_it() {
    let p = Push::new();
    let old = common::start_server(Vec::new()).await;
    let moved = common::start_server(Vec::new()).await;
    let factory = p.factory(&old.dm_url());
    // The device's certificate comes from A's Auth/Bootstrap this time.
    let child = p.spawn(&factory, false);
    // A re-bootstrap of A moves it to another server URI; the suggested
    // MIID differs, the account is updated where it is.
    let mut a = common::dmacc_item("A", &moved.dm_url(), &["*"]);
    a["ClientURI"] = serde_json::json!("urn:oma:mo:oma-dm-dmacc:1.2/elsewhere/");
    let (status, text) = p
        .push(&p.bootstrap_server, &serde_json::json!([a]))
        .await
        .unwrap();
    assert_eq!(status, 200, "{text}");
    let (code, stderr) = exit_of(child).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(got_bootstrap_complete(&moved));
    let accounts = accounts_in(&p.state());
    assert_eq!(
        accounts,
        vec![("A".into(), moved.dm_url()), ("Z".into(), old.dm_url())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_factory_bootstrap_that_would_change_another_servers_account_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dm = common::start_server(Vec::new()).await;
    let state = tmp.path().join("state");
    let first = common::bootstrap_file(tmp.path(), "A", &dm.dm_url());
    let run = |file: PathBuf| {
        let state = state.clone();
        async move {
            tokio::process::Command::new(common::dmctl())
                .args(["client", "--once", "--timeout", "10", "--dev-id", DEV_ID])
                .arg("--state")
                .arg(&state)
                .arg("--bootstrap")
                .arg(file)
                .output()
                .await
                .unwrap()
        }
    };
    let out = run(first).await;
    assert_eq!(out.status.code(), Some(0));
    let mut onto_a = common::dmacc_item("B", "http://127.0.0.1:9/dm", &["*"]);
    onto_a["ClientURI"] = serde_json::json!("urn:oma:mo:oma-dm-dmacc:1.2/A/");
    let second = write(
        tmp.path(),
        "second.json",
        serde_json::json!([onto_a]).to_string().as_bytes(),
    );
    let out = run(second).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("would change the account of server A"),
        "{stderr}"
    );
    assert_eq!(accounts_in(&state), vec![("A".into(), dm.dm_url())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_that_fails_half_way_is_taken_back_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let dm = common::start_server(Vec::new()).await;
    let state = tmp.path().join("state");
    let run = |file: PathBuf| {
        let state = state.clone();
        async move {
            tokio::process::Command::new(common::dmctl())
                .args(["client", "--once", "--timeout", "10", "--dev-id", DEV_ID])
                .arg("--state")
                .arg(&state)
                .arg("--bootstrap")
                .arg(file)
                .output()
                .await
                .unwrap()
        }
    };
    let out = run(common::bootstrap_file(tmp.path(), "A", &dm.dm_url())).await;
    assert_eq!(out.status.code(), Some(0));
    // A moved, B added, then C, which the DMAcc MO refuses (no SrvURI).
    let moved = common::dmacc_item("A", "http://127.0.0.1:9/moved", &["*"]);
    let b = common::dmacc_item("B", "http://127.0.0.1:9/b", &["*"]);
    let mut c = common::dmacc_item("C", "http://127.0.0.1:9/c", &["*"]);
    c["MOData"]["C"].as_object_mut().unwrap().remove("SrvURI");
    let second = write(
        tmp.path(),
        "second.json",
        serde_json::json!([moved, b, c]).to_string().as_bytes(),
    );
    let out = run(second).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("item 2"), "{stderr}");
    assert_eq!(accounts_in(&state), vec![("A".into(), dm.dm_url())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_agent_serves_notifications_and_pushed_bootstraps() {
    let p = Push::new();
    let first = common::start_server(Vec::new()).await;
    let second = common::start_server(Vec::new()).await;
    let factory = p.factory(&first.dm_url());
    let udp = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = p.spawn_with(
        &factory,
        true,
        &["--notify-udp", &format!("127.0.0.1:{udp}")],
    );
    // A pushed bootstrap for B, then a notification for A, to one agent.
    let b = serde_json::json!([common::dmacc_item("B", &second.dm_url(), &["*"])]);
    let (status, text) = p.push(&p.bootstrap_server, &b).await.unwrap();
    assert_eq!(status, 200, "{text}");
    let n = dm_core::Notification {
        server_id: Some("A".into()),
        notification_id: Some(42),
        ..dm_core::Notification::new()
    };
    let datagram = dm_core::notification::encode_signed(&n, b"secret", b"auth").unwrap();
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let notified = |s: &ServerHandle| {
        s.device(DEV_ID).is_some_and(|d| {
            d.alerts.iter().any(|a| {
                a.alert_type == alert_type::SERVER_INITIATED_MGMT && a.notification_id() == Some(42)
            })
        })
    };
    while !(notified(&first) && got_bootstrap_complete(&second)) {
        assert!(Instant::now() < deadline, "no notified session");
        let _ = socket.send_to(&datagram, ("127.0.0.1", udp)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
    // The first sessions (client-initiated, to A and Z) came before both.
    assert!(first.device(DEV_ID).unwrap().sessions >= 3);
}

#[test]
fn a_refused_bootstrap_item_names_its_node_and_rule() {
    // Issue "Device agent under a hostile server", item 8: a 415 alone
    // does not say that SrvURI is misspelt.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("typo.json");
    let mut item = common::dmacc_item("S", "https://dms.example/dm", &["*"]);
    let data = item["MOData"]["S"].as_object_mut().unwrap();
    let uri = data.remove("SrvURI").unwrap();
    data.insert("SrvUri".into(), uri);
    std::fs::write(&file, serde_json::json!([item]).to_string()).unwrap();
    let opts = dm_agent::service::AgentOptions::new(tmp.path().join("state"));
    let mut device = dm_agent::service::open_device(&opts).unwrap();
    let err = dm_agent::service::apply_bootstrap(&mut device, &file)
        .unwrap_err()
        .to_string();
    assert!(err.contains("415"), "{err}");
    assert!(err.contains("`SrvUri`"), "the node is named: {err}");
    assert!(device.accounts().is_empty());
}
