//! CONT (spec 5.3.8): the DM Server moves a session to another ServerURI,
//! and the device sends every further Package#3 there, with the same
//! rights as before. Two scripted DM Server endpoints on their own
//! listeners and paths, so the one a package reaches tells them apart.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use dm_core::multipart::ResponseBody;
use dm_core::package::media_type;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

const DEV_ID: &str = "IMEI:357805023984942";
const DEVINFO: &str = "urn:oma:mo:oma-dm-devinfo:1.2";
const DMACC: &str = "urn:oma:mo:oma-dm-dmacc:1.2";

/// One request an endpoint received.
#[derive(Clone)]
struct Seen {
    path: String,
    content_type: String,
    body: Vec<u8>,
}

impl std::fmt::Debug for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seen")
            .field("path", &self.path)
            .field("content_type", &self.content_type)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

impl Seen {
    /// The Package#3 (and its GET data) this request carried.
    fn response(&self) -> ResponseBody {
        ResponseBody::decode(&self.content_type, &self.body)
            .unwrap_or_else(|e| panic!("not a Package#3 ({e}): {self:?}"))
    }
}

/// A DM Server endpoint that answers POSTs to `path` with its scripted
/// Package#2 bodies in turn, and anything else (another path, a request
/// after the script) with END, so that a device that went to the wrong
/// place still finishes its session; every request is recorded.
#[derive(Clone)]
struct Endpoint {
    addr: SocketAddr,
    path: &'static str,
    script: Arc<Mutex<VecDeque<String>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Endpoint {
    async fn start(path: &'static str) -> Endpoint {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = Endpoint {
            addr: listener.local_addr().unwrap(),
            path,
            script: Arc::default(),
            seen: Arc::default(),
        };
        let e = endpoint.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let e = e.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let e = e.clone();
                        async move { Ok::<_, hyper::Error>(e.answer(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        endpoint
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}{}", self.addr.port(), self.path)
    }

    /// Adds a Package#2 (its `CMD` array) to the script.
    fn then(&self, commands: serde_json::Value) {
        let body = serde_json::json!({ "CMD": commands }).to_string();
        self.script.lock().unwrap().push_back(body);
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    async fn answer(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_owned();
        let content_type = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = req.into_body().collect().await.unwrap().to_bytes().to_vec();
        self.seen.lock().unwrap().push(Seen {
            path: path.clone(),
            content_type,
            body,
        });
        let scripted = (path == self.path)
            .then(|| self.script.lock().unwrap().pop_front())
            .flatten();
        let package2 = scripted.unwrap_or_else(|| r#"{"CMD":[["END"]]}"#.to_owned());
        Response::builder()
            .status(200)
            .header("Content-Type", media_type::PACKAGE2)
            .body(Full::new(Bytes::from(package2)))
            .unwrap()
    }
}

/// The status codes of a Package#3.
fn codes(r: &ResponseBody) -> Vec<u16> {
    r.package.statuses.iter().map(|s| s.code.as_u16()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cont_moves_the_session_to_its_server_uri_with_the_same_rights() {
    let first = Endpoint::start("/dm").await;
    let second = Endpoint::start("/dm/continued").await;
    // A may manage DevInfo only; B's account is outside A's Perm list.
    let outside = format!("{DMACC}/B/SrvURI");
    first.then(serde_json::json!([
        ["GET", format!("{DEVINFO}//DevID")],
        ["GET", outside],
        ["CONT", second.url()],
    ]));
    second.then(serde_json::json!([
        ["GET", outside],
        ["GET", format!("{DEVINFO}//Mod")],
    ]));
    second.then(serde_json::json!([["END"]]));

    let tmp = tempfile::tempdir().unwrap();
    let bootstrap = tmp.path().join("bootstrap.json");
    let accounts = serde_json::json!([
        common::dmacc_item("A", &first.url(), &[DEVINFO]),
        common::dmacc_item("B", "http://127.0.0.1:9/dm", &["*"]),
    ]);
    std::fs::write(&bootstrap, accounts.to_string()).unwrap();
    let out = tokio::process::Command::new(common::dmctl())
        .args(["client", "--once", "--timeout", "10", "--dev-id", DEV_ID])
        .args(["--server-id", "A"])
        .arg("--state")
        .arg(tmp.path().join("state"))
        .arg("--bootstrap")
        .arg(&bootstrap)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    // The first endpoint got Package#1 and nothing after the CONT.
    let at_first = first.seen();
    assert_eq!(at_first.len(), 1, "{at_first:?}");
    assert_eq!(
        media_type::essence(&at_first[0].content_type),
        media_type::PACKAGE1
    );

    // Every further package went to the CONT target, at its path: the
    // statuses of the first Package#2 (CONT's own included), then those of
    // the commands the target sent, then END ended the session there.
    let at_second = second.seen();
    assert_eq!(at_second.len(), 2, "{at_second:?}");
    assert!(at_second.iter().all(|s| s.path == "/dm/continued"));
    let moved = at_second[0].response();
    assert_eq!(codes(&moved)[0], 200);
    assert_eq!(codes(&moved)[2], 200, "CONT");
    assert_eq!(moved.data.len(), 1, "{moved:?}");
    assert_eq!(moved.data[0].body, DEV_ID.as_bytes());
    let continued = at_second[1].response();
    assert_eq!(codes(&continued).len(), 2, "{continued:?}");
    assert_eq!(codes(&continued)[1], 200, "DevInfo Mod at the target");
    assert!(second.script.lock().unwrap().is_empty(), "END was sent");

    // Still A's rights there: the node outside A's Perm list is refused
    // at the target as it was at the first endpoint, and none of its data
    // travels.
    let refused_before = codes(&moved)[1];
    let refused_after = codes(&continued)[0];
    assert_eq!(refused_before, 403);
    assert_eq!(refused_after, refused_before);
    assert_eq!(continued.data.len(), 1, "only Mod's value: {continued:?}");
    assert!(!String::from_utf8_lossy(&at_second[1].body).contains("127.0.0.1:9"));
}
