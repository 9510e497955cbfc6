//! Plain HTTP (spec 9.2.2: "A session SHALL NOT take place over mechanism
//! weaker than TLS"): `dmctl client` uses http:// only to loopback hosts
//! unless `--allow-plain-http` is given, and never sends credentials over
//! http://, not even to loopback.
//!
//! The "other host" is this machine's own non-loopback address when it has
//! one (a listener there counts connections, so a refusal is seen to make
//! none); without one, TEST-NET-1 (192.0.2.1, RFC 5737) stands in and the
//! policy's error and its speed are what the tests check.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dm_core::{Command, ServerUri};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

const DEV_ID: &str = "IMEI:990000862471854";
/// What the policy's refusal says (`HttpError::PlainHttpRefused`).
const REFUSED: &str = "refused plain http://";

/// An address of this machine that is not loopback, if it has one: the
/// source address of a route to TEST-NET-1 (a UDP connect sends nothing).
fn non_loopback_ip() -> Option<IpAddr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// A plain-HTTP endpoint on another host than loopback.
struct Elsewhere {
    /// `http://ADDR` without a path.
    base: String,
    /// Connections accepted; `None` for the TEST-NET stand-in.
    connections: Option<Arc<AtomicUsize>>,
}

impl Elsewhere {
    /// Answers every connection with `response` (a raw HTTP response).
    async fn start(response: String) -> Elsewhere {
        let Some(ip) = non_loopback_ip() else {
            return Elsewhere {
                base: "http://192.0.2.1:9".into(),
                connections: None,
            };
        };
        let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        let response: Arc<str> = response.into();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                seen.fetch_add(1, Ordering::SeqCst);
                let response = response.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 8192];
                    // One request with a small body: read until the
                    // client has sent its head and body, then answer.
                    let _ = tokio::time::timeout(Duration::from_millis(300), async {
                        use tokio::io::AsyncReadExt;
                        while let Ok(n) = stream.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                        }
                    })
                    .await;
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Elsewhere {
            base: format!("http://{addr}"),
            connections: Some(count),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn connections(&self) -> Option<usize> {
        self.connections.as_ref().map(|c| c.load(Ordering::SeqCst))
    }
}

/// A factory bootstrap with account `A` at `server_uri`, with the HTTP
/// user name and password of `trsp` in Auth/Trsp when given.
fn bootstrap(dir: &Path, server_uri: &str, trsp: Option<(&str, &str)>) -> PathBuf {
    let mut item = common::dmacc_item("A", server_uri, &["*"]);
    if let Some((user, password)) = trsp {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        item["MOData"]["A"]["Auth"]["Trsp"] =
            serde_json::json!({ "Data": b64(user), "Secret": b64(password) });
    }
    let path = dir.join("bootstrap.json");
    std::fs::write(&path, serde_json::json!([item]).to_string()).unwrap();
    path
}

/// `dmctl client --once` with `args`: exit code, stderr, time taken.
async fn client(state: &Path, boot: &Path, args: &[&str]) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let out = tokio::process::Command::new(common::dmctl())
        .args(["client", "--once", "--timeout", "10", "--dev-id", DEV_ID])
        .arg("--state")
        .arg(state)
        .arg("--bootstrap")
        .arg(boot)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_to_another_host_over_http_is_refused_before_connecting() {
    let tmp = tempfile::tempdir().unwrap();
    let dms = Elsewhere::start(common::package2_response(r#"{"CMD":[["END"]]}"#)).await;
    let srv_uri = dms.url("/dm");
    let boot = bootstrap(tmp.path(), &srv_uri, None);

    let (code, stderr, took) = client(&tmp.path().join("s1"), &boot, &[]).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains(REFUSED), "{stderr}");
    assert!(stderr.contains(&srv_uri), "names the URI: {stderr}");
    assert!(stderr.contains("--allow-plain-http"), "{stderr}");
    // No connect attempt to wait out (the time limit is 10 s).
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(dms.connections().unwrap_or(0), 0);

    // Opted in: warned once at start, then the session goes out.
    let (code, stderr, _) = client(&tmp.path().join("s2"), &boot, &["--allow-plain-http"]).await;
    assert!(!stderr.contains(REFUSED), "{stderr}");
    assert_eq!(stderr.matches("unencrypted").count(), 1, "{stderr}");
    match dms.connections() {
        // The session reached the server and ended with END.
        Some(n) => {
            assert_eq!(code, Some(0), "{stderr}");
            assert!(n >= 1);
        }
        // TEST-NET: tried, and failed on the network, not on the policy.
        None => assert_eq!(code, Some(3), "{stderr}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_session_over_http_still_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let server = common::start_server(vec![common::get("urn:oma:mo:oma-dm-devinfo:1.2//")]).await;
    let boot = bootstrap(tmp.path(), &server.dm_url(), None);
    let (code, stderr, _) = client(&tmp.path().join("s"), &boot, &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("unencrypted"), "{stderr}");
    assert_eq!(server.device(DEV_ID).unwrap().ended, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hget_from_another_host_over_http_is_a_server_uri_error() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Elsewhere::start(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\
         Connection: close\r\n\r\nRenamed"
            .into(),
    )
    .await;
    let server = common::start_server(Vec::new()).await;
    server.enqueue(
        DEV_ID,
        Command::Hget {
            server_uri: ServerUri::new(repo.url("/name")),
            client_uri: Some(common::uri("urn:oma:mo:oma-dm-dmacc:1.2/A/Name")),
        },
    );
    let boot = bootstrap(tmp.path(), &server.dm_url(), None);
    let (code, stderr, _) = client(&tmp.path().join("s"), &boot, &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let record = server.device(DEV_ID).unwrap();
    let hget = record
        .results
        .iter()
        .find(|r| matches!(r.command, Command::Hget { .. }))
        .unwrap();
    // Appendix C: 419 ServerURI Error.
    assert_eq!(hget.status.code.as_u16(), 419, "{:?}", hget.status);
    assert_eq!(repo.connections().unwrap_or(0), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cont_to_another_host_over_http_ends_the_session_there() {
    let tmp = tempfile::tempdir().unwrap();
    let next = Elsewhere::start(common::package2_response(r#"{"CMD":[["END"]]}"#)).await;
    let server = common::start_server(Vec::new()).await;
    let target = next.url("/dm");
    server.enqueue(
        DEV_ID,
        Command::Cont {
            server_uri: ServerUri::new(target.clone()),
        },
    );
    let boot = bootstrap(tmp.path(), &server.dm_url(), None);
    let (code, stderr, _) = client(&tmp.path().join("s"), &boot, &[]).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains(REFUSED), "{stderr}");
    assert!(stderr.contains(&target), "{stderr}");
    // No Package#3 went to the CONT target, and the session did not end.
    assert_eq!(next.connections().unwrap_or(0), 0);
    assert_eq!(server.device(DEV_ID).unwrap().ended, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_challenge_over_plain_http_gets_no_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    // A loopback DM Server over plain http:// that asks for Digest.
    let dms = common::Repository::start().await;
    dms.route_with(
        "/dm",
        401,
        "text/plain",
        "",
        &[(
            "WWW-Authenticate",
            "Digest realm=\"dm\", nonce=\"6a3f9c\", qop=\"auth\", algorithm=SHA-256",
        )],
    );
    let boot = bootstrap(tmp.path(), &dms.url("/dm"), Some(("alice", "s3cret")));
    // Not even with --allow-plain-http: it lifts the host rule only.
    for (i, args) in [&[][..], &["--allow-plain-http"][..]]
        .into_iter()
        .enumerate()
    {
        let before = dms.requests().len();
        let (code, stderr, _) = client(&tmp.path().join(format!("s{i}")), &boot, args).await;
        assert_eq!(code, Some(3), "{stderr}");
        assert!(stderr.contains("Digest"), "{stderr}");
        assert!(stderr.contains("only over https"), "{stderr}");
        let requests = dms.requests()[before..].to_vec();
        assert_eq!(requests.len(), 1, "Package#1 only, not again: {requests:?}");
        assert!(requests[0].header("authorization").is_none());
    }
}
