//! Transport security of DM Sessions (spec 9.2): `https://` ServerURIs
//! verified against `--ca` roots, the client certificate and the HTTP
//! Basic and Digest credentials of the account's `Auth/Trsp` (12.2). The DM Server is the
//! plain reference server behind a TLS-terminating front made here.
#![allow(clippy::unwrap_used)]

mod common;
mod tls_support;

use std::path::{Path, PathBuf};

use dm_core::package::alert_type;
use dm_server::ServerHandle;
use tls_support::{b64, Ca, Front, FrontOptions, Issued};

const DEV_ID: &str = "IMEI:353456789012345";

async fn reference_server() -> ServerHandle {
    let devinfo = "urn:oma:mo:oma-dm-devinfo:1.2//".parse().unwrap();
    common::start_server(vec![dm_core::Command::Get {
        client_uri: devinfo,
    }])
    .await
}

/// A factory bootstrap with account `A` at `server_uri`, its Auth/Trsp
/// holding `trsp` (Data, Secret) when given.
fn bootstrap(dir: &Path, server_uri: &str, trsp: Option<(&[u8], &[u8])>) -> PathBuf {
    let mut item = common::dmacc_item("A", server_uri, &["*"]);
    if let Some((data, secret)) = trsp {
        item["MOData"]["A"]["Auth"]["Trsp"] =
            serde_json::json!({ "Data": b64(data), "Secret": b64(secret) });
    }
    let path = dir.join("bootstrap.json");
    std::fs::write(&path, serde_json::json!([item]).to_string()).unwrap();
    path
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs `dmctl client --once` with `args`; returns exit code and stderr.
async fn client(state: &Path, bootstrap: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = tokio::process::Command::new(common::dmctl())
        .args(["client", "--once", "--timeout", "10", "--dev-id", DEV_ID])
        .arg("--state")
        .arg(state)
        .arg("--bootstrap")
        .arg(bootstrap)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

struct World {
    tmp: tempfile::TempDir,
    ca: Ca,
    server: ServerHandle,
}

impl World {
    async fn new() -> World {
        World {
            tmp: tempfile::tempdir().unwrap(),
            ca: Ca::new("DM test CA"),
            server: reference_server().await,
        }
    }

    fn ca_file(&self) -> PathBuf {
        write(self.tmp.path(), "ca.pem", &self.ca.pem())
    }

    async fn front(&self, names: &[&str], mut opts: FrontOptions) -> Front {
        opts.upstream = Some(self.server.addr());
        Front::start(&self.ca.issue(names), opts).await
    }

    fn state(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn sessions_ended(&self) -> usize {
        self.server.device(DEV_ID).map_or(0, |d| d.ended)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_good_certificate_runs_the_session() {
    let w = World::new().await;
    let front = w
        .front(&["127.0.0.1", "localhost"], FrontOptions::default())
        .await;
    let boot = bootstrap(w.tmp.path(), &front.url("/dm"), None);
    let ca = w.ca_file();
    let (code, stderr) = client(&w.state("s"), &boot, &["--ca", ca.to_str().unwrap()]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let record = w.server.device(DEV_ID).unwrap();
    assert_eq!(record.ended, 1);
    assert!(record
        .alerts
        .iter()
        .any(|a| a.alert_type == alert_type::BOOTSTRAP_COMPLETE));
    // Package#1 and the Package#3 of the GET went through TLS.
    let seen = front.seen();
    assert!(seen.len() >= 2, "{seen:?}");
    assert!(seen.iter().all(|s| s.path == "/dm" && s.client_certs == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_1_2_server_with_the_spec_suite_is_accepted() {
    let w = World::new().await;
    let front = w
        .front(
            &["127.0.0.1"],
            FrontOptions {
                only_spec_suite: true,
                ..Default::default()
            },
        )
        .await;
    let boot = bootstrap(w.tmp.path(), &front.url("/dm"), None);
    let ca = w.ca_file();
    let (code, stderr) = client(&w.state("s"), &boot, &["--ca", ca.to_str().unwrap()]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(w.sessions_ended(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_host_name_is_refused() {
    let w = World::new().await;
    // Issued for "localhost" only; the ServerURI names 127.0.0.1.
    let front = w.front(&["localhost"], FrontOptions::default()).await;
    let boot = bootstrap(w.tmp.path(), &front.url("/dm"), None);
    let ca = w.ca_file();
    let (code, stderr) = client(&w.state("s"), &boot, &["--ca", ca.to_str().unwrap()]).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("certificate"), "{stderr}");
    assert!(front.seen().is_empty());
    assert_eq!(w.sessions_ended(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_an_untrusted_ca_is_refused() {
    let w = World::new().await;
    let front = w.front(&["127.0.0.1"], FrontOptions::default()).await;
    let boot = bootstrap(w.tmp.path(), &front.url("/dm"), None);
    // --ca names another CA.
    let other = write(w.tmp.path(), "other.pem", &Ca::new("other CA").pem());
    let (code, stderr) = client(&w.state("s1"), &boot, &["--ca", other.to_str().unwrap()]).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");
    // No --ca: the host's store does not hold the test CA either.
    let (code, stderr) = client(&w.state("s2"), &boot, &[]).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(front.seen().is_empty());
    assert_eq!(w.sessions_ended(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_ca_file_is_a_configuration_error() {
    let w = World::new().await;
    let boot = bootstrap(w.tmp.path(), "https://127.0.0.1:9/dm", None);
    let bad = write(w.tmp.path(), "bad.pem", "not a certificate");
    let (code, stderr) = client(&w.state("s"), &boot, &["--ca", bad.to_str().unwrap()]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("bad.pem"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_certificate_of_auth_trsp_is_presented() {
    let w = World::new().await;
    let client_ca = Ca::new("client CA");
    let front = w
        .front(
            &["127.0.0.1"],
            FrontOptions {
                client_ca: Some(client_ca.der()),
                ..Default::default()
            },
        )
        .await;
    let ca = w.ca_file();
    let ca = ca.to_str().unwrap();

    // Without Auth/Trsp the server refuses the handshake: session aborted.
    let plain_dir = w.tmp.path().join("plain");
    std::fs::create_dir_all(&plain_dir).unwrap();
    let boot = bootstrap(&plain_dir, &front.url("/dm"), None);
    let (code, stderr) = client(&w.state("s1"), &boot, &["--ca", ca]).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(front.seen().is_empty());

    // With a PEM certificate and key in Auth/Trsp it goes through.
    let id: Issued = client_ca.issue(&["device.example"]);
    let boot = bootstrap(
        w.tmp.path(),
        &front.url("/dm"),
        Some((id.cert_pem.as_bytes(), id.key_pem.as_bytes())),
    );
    let (code, stderr) = client(&w.state("s2"), &boot, &["--ca", ca]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");
    let seen = front.seen();
    assert!(!seen.is_empty() && seen.iter().all(|s| s.client_certs == 1));
    assert_eq!(w.sessions_ended(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_der_client_certificate_works_too() {
    let w = World::new().await;
    let client_ca = Ca::new("client CA");
    let front = w
        .front(
            &["127.0.0.1"],
            FrontOptions {
                client_ca: Some(client_ca.der()),
                ..Default::default()
            },
        )
        .await;
    let id = client_ca.issue(&["device.example"]);
    let boot = bootstrap(
        w.tmp.path(),
        &front.url("/dm"),
        Some((&id.cert_der, &id.key_der)),
    );
    let ca = w.ca_file();
    let (code, stderr) = client(&w.state("s"), &boot, &["--ca", ca.to_str().unwrap()]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(front.seen().iter().all(|s| s.client_certs == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_authentication_goes_on_every_package() {
    let w = World::new().await;
    let expected = format!("Basic {}", b64(b"alice:s3cret"));
    let front = w
        .front(
            &["127.0.0.1"],
            FrontOptions {
                authorization: Some(expected.clone()),
                ..Default::default()
            },
        )
        .await;
    let ca = w.ca_file();
    let ca = ca.to_str().unwrap();

    let boot = bootstrap(w.tmp.path(), &front.url("/dm"), Some((b"alice", b"s3cret")));
    let (code, stderr) = client(&w.state("s1"), &boot, &["--ca", ca]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
    let seen = front.seen();
    assert!(seen.len() >= 2, "{seen:?}");
    for s in &seen {
        assert_eq!(s.header("authorization"), Some(expected.as_str()));
    }
    assert_eq!(w.sessions_ended(), 1);

    // A wrong password: the server's 401 aborts the session.
    let wrong_dir = w.tmp.path().join("wrong");
    std::fs::create_dir_all(&wrong_dir).unwrap();
    let boot = bootstrap(&wrong_dir, &front.url("/dm"), Some((b"alice", b"guess")));
    let (code, stderr) = client(&w.state("s2"), &boot, &["--ca", ca]).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");
    assert!(!stderr.contains("guess"), "{stderr}");
    assert_eq!(w.sessions_ended(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_credentials_never_travel_over_plain_http() {
    let w = World::new().await;
    // A plain-HTTP DM Server that asks for HTTP Basic.
    let dms = common::Repository::start().await;
    dms.route_with(
        "/dm",
        401,
        "text/plain",
        "",
        &[("WWW-Authenticate", "Basic realm=\"dm\"")],
    );
    let boot = bootstrap(w.tmp.path(), &dms.url("/dm"), Some((b"alice", b"s3cret")));
    let (code, stderr) = client(&w.state("s"), &boot, &[]).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("only over https"), "{stderr}");
    let requests = dms.requests();
    assert!(!requests.is_empty());
    assert!(
        requests.iter().all(|r| r.header("authorization").is_none()),
        "{requests:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_http_server_asking_nothing_gets_no_credentials() {
    let w = World::new().await;
    let dms = common::Repository::start().await;
    dms.route(
        "/dm",
        200,
        dm_core::package::media_type::PACKAGE2,
        r#"{"CMD":[["END"]]}"#,
    );
    let boot = bootstrap(w.tmp.path(), &dms.url("/dm"), Some((b"alice", b"s3cret")));
    let (code, stderr) = client(&w.state("s"), &boot, &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let requests = dms.requests();
    assert_eq!(requests.len(), 1, "Package#1, answered with END");
    assert!(requests[0].header("authorization").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hget_fetches_from_an_https_data_repository() {
    let w = World::new().await;
    // The data repository is the HTTPS front with a fixed route; the DM
    // Server itself is plain HTTP.
    let repo = Front::start(&w.ca.issue(&["127.0.0.1"]), FrontOptions::default()).await;
    repo.route("/name", 200, "text/plain", "Renamed");
    w.server.enqueue(
        DEV_ID,
        dm_core::Command::Hget {
            server_uri: dm_core::ServerUri::new(repo.url("/name")),
            client_uri: Some("urn:oma:mo:oma-dm-dmacc:1.2/A/Name".parse().unwrap()),
        },
    );
    let boot = bootstrap(w.tmp.path(), &w.server.dm_url(), None);
    let ca = w.ca_file();
    let (code, stderr) = client(&w.state("s"), &boot, &["--ca", ca.to_str().unwrap()]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let record = w.server.device(DEV_ID).unwrap();
    let hget = record
        .results
        .iter()
        .find(|r| matches!(r.command, dm_core::Command::Hget { .. }))
        .unwrap();
    assert_eq!(hget.status.code.as_u16(), 200, "{:?}", hget.status);
    let seen = repo.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("GET", "/name")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_authentication_answers_the_servers_challenge() {
    // spec 9.2.1: the DM Client SHOULD support Digest (DM-SEC-002-C-O).
    let w = World::new().await;
    let front = w
        .front(
            &["127.0.0.1"],
            FrontOptions {
                digest: Some(("alice".into(), "s3cret".into())),
                ..Default::default()
            },
        )
        .await;
    let boot = bootstrap(w.tmp.path(), &front.url("/dm"), Some((b"alice", b"s3cret")));
    let ca = w.ca_file();
    let ca = ca.to_str().unwrap();
    let (code, stderr) = client(&w.state("s"), &boot, &["--ca", ca]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(w.sessions_ended(), 1);
    let seen = front.seen();
    let digests: Vec<&str> = seen
        .iter()
        .filter_map(|s| s.header("authorization"))
        .filter(|a| a.starts_with("Digest "))
        .collect();
    // Package#1 after the challenge, then Package#3 answered up front with
    // the next nonce count: one challenge per session, not per package.
    assert!(digests.len() >= 2, "{digests:?}");
    assert!(
        digests.iter().any(|a| a.contains("nc=00000002")),
        "{digests:?}"
    );
    assert_eq!(
        seen.iter().filter(|s| s.path == "/dm").count(),
        digests.len() + 1
    );
    assert!(!digests.iter().any(|a| a.contains("s3cret")));

    // A wrong password: answered once, then the 401 ends the session.
    let wrong_dir = w.tmp.path().join("wrong");
    std::fs::create_dir_all(&wrong_dir).unwrap();
    let boot = bootstrap(&wrong_dir, &front.url("/dm"), Some((b"alice", b"guess")));
    let before = front.seen().len();
    let (code, stderr) = client(&w.state("s2"), &boot, &["--ca", ca]).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");
    assert!(!stderr.contains("guess"), "{stderr}");
    assert_eq!(
        front.seen().len() - before,
        2,
        "one try, one answer to the challenge"
    );
}
