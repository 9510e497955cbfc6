//! Device authentication on the reference server (spec 9.2.1; B.2
//! DM-SEC-001-S, DM-SEC-002-S): the credentials kept for a DevID decide
//! whether its packages are taken: HTTP Basic over TLS, HTTP Digest (MD5,
//! SHA-256, nonces not replayable) and client certificates bound to the
//! DevID. `dmctl client` (its account's `Auth/Trsp`) is the device; a
//! refused device gets no command and changes nothing on the server.
#![allow(clippy::unwrap_used)]

mod common;
mod tls_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use dm_core::Command;
use dm_server::{
    certificate_sha256, ClientAuth, Credentials, DeviceRecord, EnrollPolicy, HttpAuth,
    PasswordHashes, ServerConfig, ServerHandle, ServerOptions, TlsConfig, REALM,
};
use md5::Md5;
use sha2::Digest as _;
use tls_support::{b64, Ca, Issued};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DEV_ID: &str = "IMEI:490154203237518";
const OTHER: &str = "IMEI:356938035643809";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A server CA and its certificate for 127.0.0.1, a client CA.
struct Pki {
    tmp: tempfile::TempDir,
    ca: Ca,
    client_ca: Ca,
}

/// What goes into the account's `Auth/Trsp`.
enum Trsp<'a> {
    Password(&'a str, &'a str),
    Certificate(&'a Issued),
}

impl Pki {
    fn new() -> Pki {
        Pki {
            tmp: tempfile::tempdir().unwrap(),
            ca: Ca::new("DM server CA"),
            client_ca: Ca::new("DM client CA"),
        }
    }

    fn tls(&self, client_certificates: bool) -> TlsConfig {
        let id = self.ca.issue(&["127.0.0.1"]);
        let cert = write(
            self.tmp.path(),
            "server.crt",
            &format!("{}{}", id.cert_pem, self.ca.pem()),
        );
        let key = write(self.tmp.path(), "server.key", &id.key_pem);
        let clients = write(self.tmp.path(), "clients.pem", &self.client_ca.pem());
        let client_ca = client_certificates.then_some((clients.as_path(), ClientAuth::Optional));
        TlsConfig::from_files(&cert, &key, client_ca).unwrap()
    }

    /// `dmctl client --once` as `dev_id` against `url`, with a fresh state
    /// named `name`; its exit code and stderr.
    async fn client(&self, name: &str, dev_id: &str, url: &str, trsp: Trsp<'_>) -> (i32, String) {
        let mut item = common::dmacc_item("A", url, &["*"]);
        item["MOData"]["A"]["Auth"]["Trsp"] = match trsp {
            Trsp::Password(user, password) => serde_json::json!({
                "Data": b64(user.as_bytes()), "Secret": b64(password.as_bytes()),
            }),
            Trsp::Certificate(id) => serde_json::json!({
                "Data": b64(id.cert_pem.as_bytes()), "Secret": b64(id.key_pem.as_bytes()),
            }),
        };
        let dir = self.tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let boot = write(
            &dir,
            "bootstrap.json",
            &serde_json::json!([item]).to_string(),
        );
        let ca = write(self.tmp.path(), "ca.pem", &self.ca.pem());
        let out = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::process::Command::new(common::dmctl())
                .args(["client", "--once", "--timeout", "10", "--dev-id", dev_id])
                .arg("--state")
                .arg(dir.join("state"))
                .arg("--bootstrap")
                .arg(&boot)
                .arg("--ca")
                .arg(&ca)
                .kill_on_drop(true)
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

async fn server(tls: Option<TlsConfig>, http_auth: HttpAuth) -> ServerHandle {
    dm_server::start_with(
        ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            default_commands: Vec::new(),
            log_errors: false,
        },
        ServerOptions {
            tls,
            http_auth,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

fn password(server: &ServerHandle, dev_id: &str, user: &str, pw: &str) {
    server
        .storage()
        .put_credentials(
            dev_id,
            &Credentials {
                password: Some(PasswordHashes::new(user, pw).unwrap()),
                certificate_sha256: None,
            },
        )
        .unwrap();
}

fn devid_get() -> Command {
    common::get("urn:oma:mo:oma-dm-devinfo:1.2//DevID")
}

/// The device's record with its queued GET: what a refused session must
/// leave exactly as it was.
fn queued(server: &ServerHandle, dev_id: &str) -> DeviceRecord {
    server.enqueue(dev_id, devid_get());
    let r = server.device(dev_id).unwrap();
    assert_eq!(r.queue, vec![devid_get()]);
    r
}

/// The GET came back: its result is the device's DevID.
fn delivered(server: &ServerHandle, dev_id: &str) {
    let r = server.device(dev_id).unwrap();
    assert!(r.queue.is_empty(), "{r:?}");
    let got = r
        .results
        .iter()
        .find(|x| x.command == devid_get())
        .unwrap_or_else(|| panic!("no result: {r:?}"));
    assert_eq!(got.status.code.as_u16(), 200);
    assert_eq!(common::body(got), dev_id);
    assert!(!r.unauthenticated);
}

fn logged(server: &ServerHandle, text: &str) -> bool {
    server.errors().iter().any(|e| e.contains(text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_over_tls_serves_the_right_password_only() {
    let pki = Pki::new();
    let server = server(Some(pki.tls(false)), HttpAuth::default()).await;
    let url = server.dm_url();
    password(&server, DEV_ID, "dev", "s3cret pw");
    let before = queued(&server, DEV_ID);

    // A wrong password (Basic up front, then the Digest the 401 offers).
    let (code, stderr) = pki
        .client("wrong", DEV_ID, &url, Trsp::Password("dev", "guess"))
        .await;
    assert_ne!(code, 0, "{stderr}");
    assert_eq!(server.device(DEV_ID).unwrap(), before);
    assert!(logged(
        &server,
        "401 IMEI:490154203237518: wrong HTTP Basic"
    ));
    assert!(!server.errors().iter().any(|e| e.contains("guess")));

    // The right user with another device's DevID: no credentials there,
    // refused (the default with TLS), and no record made for it.
    let (code, stderr) = pki
        .client("stranger", OTHER, &url, Trsp::Password("dev", "s3cret pw"))
        .await;
    assert_ne!(code, 0, "{stderr}");
    assert!(server.device(OTHER).is_none());
    assert!(logged(&server, "no credentials for this DevID"));

    // The right password: the session runs and the queued GET is answered.
    let (code, stderr) = pki
        .client("right", DEV_ID, &url, Trsp::Password("dev", "s3cret pw"))
        .await;
    assert_eq!(code, 0, "{stderr}");
    delivered(&server, DEV_ID);
    assert!(!server.errors().iter().any(|e| e.contains("s3cret")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_authenticates_every_package_of_the_session() {
    let pki = Pki::new();
    // Digest only: the client's Basic is refused and it answers the
    // challenge (SHA-256, offered first), then Package#3 up front (nc=2).
    let digest_only = HttpAuth {
        basic: false,
        digest: true,
    };
    let server = server(Some(pki.tls(false)), digest_only).await;
    let url = server.dm_url();
    password(&server, DEV_ID, "dev", "pw");
    let before = queued(&server, DEV_ID);

    let (code, stderr) = pki
        .client("wrong", DEV_ID, &url, Trsp::Password("dev", "nope"))
        .await;
    assert_ne!(code, 0, "{stderr}");
    assert_eq!(server.device(DEV_ID).unwrap(), before);
    assert!(logged(&server, "Digest wrong credentials"));

    let (code, stderr) = pki
        .client("right", DEV_ID, &url, Trsp::Password("dev", "pw"))
        .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(logged(&server, "HTTP Basic is not accepted"));
    delivered(&server, DEV_ID);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_serves_only_the_dev_id_it_is_bound_to() {
    let pki = Pki::new();
    let server = server(Some(pki.tls(true)), HttpAuth::default()).await;
    let url = server.dm_url();
    let mine = pki.client_ca.issue(&["device-a.example"]);
    let theirs = pki.client_ca.issue(&["device-b.example"]);
    for (dev_id, cert) in [(DEV_ID, &mine), (OTHER, &theirs)] {
        server
            .storage()
            .put_credentials(
                dev_id,
                &Credentials {
                    password: None,
                    certificate_sha256: Some(certificate_sha256(&cert.cert_der)),
                },
            )
            .unwrap();
    }
    let before = queued(&server, DEV_ID);

    // Another device's certificate (valid, same CA) with this DevID: 403.
    let (code, stderr) = pki
        .client("theirs", DEV_ID, &url, Trsp::Certificate(&theirs))
        .await;
    assert_ne!(code, 0, "{stderr}");
    assert_eq!(server.device(DEV_ID).unwrap(), before);
    assert!(logged(
        &server,
        "403 IMEI:490154203237518: the client certificate"
    ));

    // No certificate, only a password: 403 too.
    let (code, stderr) = pki
        .client("none", DEV_ID, &url, Trsp::Password("dev", "pw"))
        .await;
    assert_ne!(code, 0, "{stderr}");
    assert_eq!(server.device(DEV_ID).unwrap(), before);

    let (code, stderr) = pki
        .client("mine", DEV_ID, &url, Trsp::Certificate(&mine))
        .await;
    assert_eq!(code, 0, "{stderr}");
    delivered(&server, DEV_ID);
}

/// One HTTP/1.1 request on its own connection: status, headers, body.
async fn post(
    addr: &str,
    dev_id: &str,
    authorization: Option<&str>,
) -> (u16, Vec<(String, String)>, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST /dm HTTP/1.1\r\nHost: {addr}\r\nOMADM-DevID: {dev_id}\r\n\
         Content-Type: application/vnd.oma.dm.initiation+json\r\n{auth}\
         Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_md5_answers_once_and_basic_never_over_plain_http() {
    use base64::Engine as _;
    let server = server(None, HttpAuth::default()).await;
    let addr = server.addr().to_string();
    password(&server, DEV_ID, "dev", "pw");
    let before = queued(&server, DEV_ID);

    // No credentials: 401, Digest SHA-256 then MD5, no Basic in the clear.
    let (status, headers, _) = post(&addr, DEV_ID, None).await;
    assert_eq!(status, 401);
    let challenges: Vec<&str> = headers
        .iter()
        .filter(|(k, _)| k == "www-authenticate")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(challenges.len(), 2, "{challenges:?}");
    assert!(
        challenges[0].contains("algorithm=SHA-256"),
        "{challenges:?}"
    );
    let md5 = challenges[1];
    assert!(md5.contains("algorithm=MD5") && md5.contains("qop=\"auth\""));
    let nonce = md5
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();

    // The right password over HTTP Basic on plain HTTP: refused.
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("dev:pw")
    );
    let (status, _, _) = post(&addr, DEV_ID, Some(&basic)).await;
    assert_eq!(status, 401);
    assert_eq!(server.device(DEV_ID).unwrap(), before);
    assert!(logged(&server, "HTTP Basic over plain HTTP"));

    // RFC 2617 MD5 with qop=auth, nc=1: Package#2 brings the GET.
    let ha1 = md5_hex(&format!("dev:{REALM}:pw"));
    let ha2 = md5_hex("POST:/dm");
    let response = md5_hex(&format!("{ha1}:{nonce}:00000001:abcd:auth:{ha2}"));
    let digest = format!(
        "Digest username=\"dev\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"/dm\", \
         algorithm=MD5, qop=auth, nc=00000001, cnonce=\"abcd\", response=\"{response}\""
    );
    let (status, _, body) = post(&addr, DEV_ID, Some(&digest)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("DevID"), "{body}");
    let after_first = server.device(DEV_ID).unwrap();

    // The same nonce and nc again: a replay, refused, nothing changed.
    let (status, _, _) = post(&addr, DEV_ID, Some(&digest)).await;
    assert_eq!(status, 401);
    assert!(logged(&server, "nonce count replayed"));
    assert_eq!(server.device(DEV_ID).unwrap(), after_first);

    // Without TLS an unknown device is served (the default `flag`), and
    // its record says it is unauthenticated.
    let (status, _, _) = post(&addr, OTHER, None).await;
    assert_eq!(status, 200);
    assert!(server.device(OTHER).unwrap().unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_refuse_without_tls_and_flag_with_it() {
    let pki = Pki::new();
    // `flag` with TLS: a device with no credentials is served, flagged.
    let server = dm_server::start_with(
        ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            default_commands: Vec::new(),
            log_errors: false,
        },
        ServerOptions {
            tls: Some(pki.tls(false)),
            enroll: Some(EnrollPolicy::Flag),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    queued(&server, OTHER);
    let (code, stderr) = pki
        .client("flagged", OTHER, &server.dm_url(), Trsp::Password("x", "y"))
        .await;
    assert_eq!(code, 0, "{stderr}");
    let r = server.device(OTHER).unwrap();
    assert!(r.unauthenticated && r.queue.is_empty(), "{r:?}");

    // `refuse` without TLS: refused, no record.
    let plain = dm_server::start_with(
        ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            default_commands: Vec::new(),
            log_errors: false,
        },
        ServerOptions {
            enroll: Some(EnrollPolicy::Refuse),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let (status, _, _) = post(&plain.addr().to_string(), OTHER, None).await;
    assert_eq!(status, 401);
    assert!(plain.device(OTHER).is_none());
}

/// One admin API request: status and body.
async fn admin(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> (u16, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head[9..12].parse().unwrap(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sets_credentials_through_the_admin_api() {
    use dm_server::{create_admin_token, AdminRole};
    let pki = Pki::new();
    let server = dm_server::start_with(
        ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            default_commands: Vec::new(),
            log_errors: false,
        },
        ServerOptions {
            tls: Some(pki.tls(false)),
            admin: Some("127.0.0.1:0".parse().unwrap()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let api = server.admin_addr().unwrap();
    let (_, read) = create_admin_token(server.storage().as_ref(), AdminRole::Read).unwrap();
    let (_, operator) = create_admin_token(server.storage().as_ref(), AdminRole::Operator).unwrap();
    let path = format!("/api/devices/{DEV_ID}/credentials");
    let body = r#"{"user": "dev", "password": "from the operator"}"#;

    // A read-only token may not; a body without a secret is refused.
    assert_eq!(admin(api, "PUT", &path, &read, body).await.0, 403);
    let (status, _) = admin(api, "PUT", &path, &operator, r#"{"user": "dev"}"#).await;
    assert_eq!(status, 400);
    assert!(server.storage().credentials(DEV_ID).unwrap().is_none());

    let (status, answer) = admin(api, "PUT", &path, &operator, body).await;
    assert_eq!(status, 200, "{answer}");
    assert!(!answer.contains("from the operator"), "{answer}");
    let stored = server.storage().credentials(DEV_ID).unwrap().unwrap();
    assert!(stored.password.unwrap().phc.starts_with("$argon2id$"));

    let before = queued(&server, DEV_ID);
    let url = server.dm_url();
    let (code, stderr) = pki
        .client("wrong", DEV_ID, &url, Trsp::Password("dev", "guess"))
        .await;
    assert_ne!(code, 0, "{stderr}");
    assert_eq!(server.device(DEV_ID).unwrap(), before);
    let (code, stderr) = pki
        .client(
            "right",
            DEV_ID,
            &url,
            Trsp::Password("dev", "from the operator"),
        )
        .await;
    assert_eq!(code, 0, "{stderr}");
    delivered(&server, DEV_ID);
    let (status, device) = admin(api, "GET", &format!("/api/devices/{DEV_ID}"), &read, "").await;
    assert_eq!(status, 200);
    assert!(device.contains("\"unauthenticated\":false"), "{device}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_with_credentials_reaches_its_repository_without_a_signature() {
    let pki = Pki::new();
    let server = server(Some(pki.tls(false)), HttpAuth::default()).await;
    let url = server.dm_url();
    password(&server, DEV_ID, "dev", "pw");
    // A parameter in the query: the server cannot sign what the device
    // fills in, so only the device's own credentials open this URL.
    let server_uri = dm_core::ServerUri::new(format!(
        "{}/repo/[DevID]/devinfo.json?v=[DevID]",
        server.base_url()
    ));
    server.enqueue(
        DEV_ID,
        Command::Hput {
            server_uri,
            client_uris: vec![common::uri("urn:oma:mo:oma-dm-devinfo:1.2//")],
        },
    );
    let (code, stderr) = pki
        .client("right", DEV_ID, &url, Trsp::Password("dev", "pw"))
        .await;
    assert_eq!(code, 0, "{stderr}");
    let r = server.device(DEV_ID).unwrap();
    assert_eq!(common::codes(&r.results), [200], "{:?}", server.errors());
    let stored = server
        .storage()
        .resource(DEV_ID, "devinfo.json")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&stored.body).contains(DEV_ID));
}
