//! The bootstrap server of `dmctl server` (spec 8.3, 8.4, 9.3; B.2
//! DM-BOOT-001-S-M): a device it knows fetches its account over mutual TLS
//! (client-initiated) or gets it pushed (server-initiated); each bootstrap
//! carries fresh credentials that the server stores too, so the device's
//! next DM session authenticates with them, and a re-bootstrap rotates
//! them. No bootstrap file is written by hand: the server makes them all.
//! A device the profile does not bind gets nothing and changes nothing.
#![allow(clippy::unwrap_used)]

mod common;
mod dmserver;
mod tls_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dm_agent::service::{self as agent, AgentOptions};
use dm_core::{NodeData, Value};
use dmserver::{http, DmServer};
use serde_json::json;
use sha2::Digest as _;
use tls_support::{b64, client_config, Ca, Issued};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DEV: &str = "IMEI:490154203237518";
const OTHER: &str = "IMEI:356938035643809";
const DMACC: &str = "urn:oma:mo:oma-dm-dmacc:1.2";
const DEVINFO: &str = "urn:oma:mo:oma-dm-devinfo:1.2";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(der: &[u8]) -> String {
    hex(&sha2::Sha256::digest(der))
}

/// The server's CA and certificate for 127.0.0.1, a device CA and two
/// devices' factory certificates, as files.
struct Pki {
    tmp: tempfile::TempDir,
    ca: Ca,
    server_cert: PathBuf,
    server_key: PathBuf,
    ca_file: PathBuf,
    device: Issued,
    other: Issued,
}

impl Pki {
    fn new() -> Pki {
        let tmp = tempfile::tempdir().unwrap();
        let ca = Ca::new("DM server CA");
        let id = ca.issue(&["127.0.0.1"]);
        let server_cert = write(
            tmp.path(),
            "server.crt",
            &format!("{}{}", id.cert_pem, ca.pem()),
        );
        let server_key = write(tmp.path(), "server.key", &id.key_pem);
        let ca_file = write(tmp.path(), "ca.pem", &ca.pem());
        let device_ca = Ca::new("factory CA");
        Pki {
            device: device_ca.issue(&["device.example"]),
            other: device_ca.issue(&["other.example"]),
            tmp,
            ca,
            server_cert,
            server_key,
            ca_file,
        }
    }

    async fn server(&self) -> DmServer {
        let db = self.tmp.path().join("server.db");
        let args = [
            "--tls-cert",
            self.server_cert.to_str().unwrap(),
            "--tls-key",
            self.server_key.to_str().unwrap(),
            "--bootstrap-listen",
            "127.0.0.1:0",
        ];
        DmServer::start_with(&common::dmctl(), Some(&db), &args).await
    }

    /// The device's factory certificate and key as files.
    fn identity_files(&self, who: &Issued, name: &str) -> (PathBuf, PathBuf) {
        (
            write(self.tmp.path(), &format!("{name}.crt"), &who.cert_pem),
            write(self.tmp.path(), &format!("{name}.key"), &who.key_pem),
        )
    }
}

/// `Auth/Trsp` (user, password) of the account `server_id` in a state
/// directory.
fn trsp_of(state: &Path, server_id: &str) -> (String, String) {
    let opts = AgentOptions {
        dev_id: Some(DEV.into()),
        timeout: Duration::from_secs(5),
        ..AgentOptions::new(state.to_owned())
    };
    let device = agent::open_device(&opts).unwrap();
    let account = device
        .accounts()
        .into_iter()
        .find(|a| a.server_id == server_id)
        .unwrap();
    let index = device.registry().find(DMACC, &account.miid).unwrap();
    let mo = device.registry().instance(index).unwrap().mo();
    let text = |leaf: &str| match mo.get(&["Auth", "Trsp", leaf]).unwrap() {
        NodeData::Leaf(Value::Bin(b) | Value::B64(b)) => String::from_utf8(b).unwrap(),
        other => panic!("Auth/Trsp/{leaf}: {other:?}"),
    };
    (text("Data"), text("Secret"))
}

/// One request over TLS (trusting the test CA, presenting `identity`):
/// the status.
async fn tls_request(
    pki: &Pki,
    url: &str,
    identity: Option<&Issued>,
    method: &str,
    headers: &[(&str, &str)],
) -> u16 {
    let uri: hyper::Uri = url.parse().unwrap();
    let addr = format!("{}:{}", uri.host().unwrap(), uri.port_u16().unwrap());
    let config = client_config(&pki.ca, identity);
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = match tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
    {
        Ok(t) => t,
        Err(_) => return 0,
    };
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n",
        uri.path()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    if tls.write_all(head.as_bytes()).await.is_err() {
        return 0;
    }
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

async fn alerts_text(s: &DmServer, dev: &str) -> String {
    s.ok("GET", &format!("/api/devices/{dev}/alerts"), json!(null))
        .await
        .to_string()
}

async fn profile(s: &DmServer, dev: &str) -> serde_json::Value {
    s.ok("GET", &format!("/api/devices/{dev}/bootstrap"), json!(null))
        .await
}

/// A free TCP port on loopback.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn wait_listening(port: u16) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on {port}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_bootstrapped_by_the_server_runs_authenticated_sessions_and_a_push_rotates_its_credentials(
) {
    let pki = Pki::new();
    let s = pki.server().await;
    let bootstrap_url = s.bootstrap_url.clone().expect("the bootstrap server runs");
    assert!(
        bootstrap_url.starts_with("https://127.0.0.1:"),
        "{bootstrap_url}"
    );
    let port = free_port();
    let push_url = format!("https://127.0.0.1:{port}/");
    let set = s
        .ok(
            "PUT",
            &format!("/api/devices/{DEV}/bootstrap"),
            json!({
                "server_id": "ACME",
                "perm": [DEVINFO],
                "certificate_sha256": sha256_hex(&pki.device.cert_der),
                "push_url": push_url,
            }),
        )
        .await;
    assert_eq!(set["server_uri"], s.dm_url.as_str(), "{set}");
    assert_eq!(set["bootstrap_url"], bootstrap_url.as_str(), "{set}");
    s.enqueue(DEV, json!(["GET", format!("{DEVINFO}//DevID")]))
        .await;

    // Client-initiated (8.3): the factory certificate asks; the account
    // comes with credentials the server checks at the next session.
    let state = pki.tmp.path().join("state");
    let (cert, key) = pki.identity_files(&pki.device, "device");
    let (code, log) = dmserver::run_client(
        &common::dmctl(),
        &[
            "--once",
            "--timeout",
            "10",
            "--dev-id",
            DEV,
            "--state",
            state.to_str().unwrap(),
            "--ca",
            pki.ca_file.to_str().unwrap(),
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--bootstrap-url",
            &bootstrap_url,
        ],
    )
    .await;
    assert_eq!(code, 0, "{log}");
    let results = s
        .ok("GET", &format!("/api/devices/{DEV}/results"), json!(null))
        .await;
    assert_eq!(results[0]["status"]["sc"], 200, "{results}");
    assert!(results[0]["data"].to_string().contains(DEV), "{results}");
    let device = s
        .ok("GET", &format!("/api/devices/{DEV}"), json!(null))
        .await;
    assert_eq!(device["unauthenticated"], false, "{device}");
    assert_eq!(
        alerts_text(&s, DEV)
            .await
            .matches("BootstrapComplete")
            .count(),
        1
    );
    let (user, first) = trsp_of(&state, "ACME");
    assert_eq!(user, "IMEI-490154203237518");
    assert!(first.len() >= 32, "a generated password");
    let after_fetch = profile(&s, DEV).await;
    assert_eq!(after_fetch["bootstraps"], 1);
    let issued = after_fetch["issued_certificate_sha256"].clone();
    assert!(issued.is_string(), "{after_fetch}");
    // The first password opens a session; nothing else does.
    let basic = |pw: &str| format!("Basic {}", b64(format!("{user}:{pw}").as_bytes()));
    let dm = |auth: String| {
        let pki = &pki;
        let url = s.dm_url.clone();
        async move {
            tls_request(
                pki,
                &url,
                None,
                "POST",
                &[
                    ("OMADM-DevID", DEV),
                    ("Authorization", auth.as_str()),
                    ("Content-Type", "application/vnd.oma.dm.initiation+json"),
                ],
            )
            .await
        }
    };
    assert_ne!(dm(basic(&first)).await, 401);
    assert_eq!(dm(basic("not-the-password")).await, 401);

    // Server-initiated (8.4): the device waits with no certificate of its
    // own: the identity the first bootstrap issued is what it presents,
    // and the server's certificate, pinned by that bootstrap, is what it
    // takes a push from.
    let mut waiting = tokio::process::Command::new(common::dmctl())
        .args(["client", "--once", "--timeout", "10", "--dev-id", DEV])
        .arg("--state")
        .arg(&state)
        .arg("--ca")
        .arg(&pki.ca_file)
        .args(["--bootstrap-listen", &format!("127.0.0.1:{port}")])
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_listening(port).await;
    let pushed = s
        .ok(
            "POST",
            &format!("/api/devices/{DEV}/bootstrap/push"),
            json!(null),
        )
        .await;
    assert_eq!(pushed["bootstraps"], 2, "{pushed}");
    assert!(!pushed.to_string().contains(&first), "no secret answered");
    let status = tokio::time::timeout(Duration::from_secs(60), waiting.wait())
        .await
        .unwrap()
        .unwrap();
    let mut stderr = String::new();
    waiting
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(
        alerts_text(&s, DEV)
            .await
            .matches("BootstrapComplete")
            .count(),
        2
    );
    let (_, second) = trsp_of(&state, "ACME");
    assert_ne!(second, first, "a re-bootstrap rotates the password");
    assert_ne!(profile(&s, DEV).await["issued_certificate_sha256"], issued);
    assert_eq!(dm(basic(&first)).await, 401, "the old password is gone");
    assert_ne!(dm(basic(&second)).await, 401);
    // Nothing secret on disk or in the log.
    let db = std::fs::read(pki.tmp.path().join("server.db")).unwrap();
    for secret in [&first, &second] {
        assert!(!db.windows(secret.len()).any(|w| w == secret.as_bytes()));
        assert!(!s
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(secret.as_str())));
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_server_gives_nothing_to_a_device_its_profile_does_not_bind() {
    let pki = Pki::new();
    let s = pki.server().await;
    let url = s.bootstrap_url.clone().unwrap();
    let fingerprint = sha256_hex(&pki.device.cert_der);
    s.ok(
        "PUT",
        &format!("/api/devices/{DEV}/bootstrap"),
        json!({ "certificate_sha256": fingerprint }),
    )
    .await;
    let get = |identity: Option<&'static str>, dev: &'static str| {
        let pki = &pki;
        let url = url.clone();
        async move {
            let who = match identity {
                Some("device") => Some(&pki.device),
                Some(_) => Some(&pki.other),
                None => None,
            };
            tls_request(pki, &url, who, "GET", &[("OMADM-DevID", dev)]).await
        }
    };
    // Another device's certificate, no profile, no certificate at all.
    assert_eq!(get(Some("other"), DEV).await, 403);
    assert_eq!(get(Some("device"), OTHER).await, 403);
    assert_eq!(get(None, DEV).await, 0, "the handshake wants a certificate");
    assert_eq!(profile(&s, DEV).await["bootstraps"], 0);
    let (status, _) = s
        .api("GET", &format!("/api/devices/{OTHER}/bootstrap"), None)
        .await;
    assert_eq!(status, 404);
    // The bound certificate gets it, once per request.
    assert_eq!(get(Some("device"), DEV).await, 200);
    assert_eq!(profile(&s, DEV).await["bootstraps"], 1);

    // Profiles are checked before they are kept.
    for (body, why) in [
        (
            json!({ "server_uri": "http://127.0.0.1/dm" }),
            "SrvURI over plain HTTP",
        ),
        (
            json!({ "push_url": "http://127.0.0.1:1/" }),
            "a push over plain HTTP",
        ),
        (json!({ "server_id": "a/b" }), "a SrvID that is no MIID"),
        (json!({ "perm": [] }), "an empty Perm"),
        (json!({ "perm": ["devinfo"] }), "a Perm that is no MOID"),
        (json!({ "certificate_sha256": "00" }), "a short fingerprint"),
        (json!({ "secret": "x" }), "an unknown field"),
    ] {
        let (status, reply) = s
            .api("PUT", &format!("/api/devices/{DEV}/bootstrap"), Some(body))
            .await;
        assert_eq!(status, 400, "{why}: {reply}");
    }
    assert_eq!(
        profile(&s, DEV).await["certificate_sha256"],
        fingerprint.as_str()
    );
    // No push address: nothing to push to.
    let (status, _) = s
        .api("POST", &format!("/api/devices/{DEV}/bootstrap/push"), None)
        .await;
    assert_eq!(status, 409);
    // A push to an endpoint whose certificate the profile does not bind
    // is refused before anything is sent, and nothing changes.
    let impostor = tls_support::Front::start(&pki.other, Default::default()).await;
    s.ok(
        "PUT",
        &format!("/api/devices/{DEV}/bootstrap"),
        json!({ "certificate_sha256": fingerprint, "push_url": impostor.url("/") }),
    )
    .await;
    let (status, reply) = s
        .api("POST", &format!("/api/devices/{DEV}/bootstrap/push"), None)
        .await;
    assert_eq!(status, 502, "{reply}");
    assert!(impostor.seen().is_empty());
    assert_eq!(profile(&s, DEV).await["bootstraps"], 1);
    // A read-only token reads profiles, never sets or pushes them.
    let db = pki.tmp.path().join("server.db");
    let reader = dmserver::create_token(&common::dmctl(), &db, "read").await;
    let auth = format!("Bearer {reader}");
    let headers = [
        ("Content-Type", "application/json"),
        ("Authorization", auth.as_str()),
    ];
    let path = format!("/api/devices/{DEV}/bootstrap");
    assert_eq!(http(&s.admin, "GET", &path, &headers, b"").await.0, 200);
    assert_eq!(http(&s.admin, "PUT", &path, &headers, b"{}").await.0, 403);
    let push = format!("{path}/push");
    assert_eq!(http(&s.admin, "POST", &push, &headers, b"").await.0, 403);
    s.stop().await;
}

#[tokio::test]
async fn the_bootstrap_server_needs_tls() {
    let out = tokio::process::Command::new(common::dmctl())
        .args(["server", "--listen", "127.0.0.1:0"])
        .args(["--bootstrap-listen", "127.0.0.1:0"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--tls-cert"), "{stderr}");
}
