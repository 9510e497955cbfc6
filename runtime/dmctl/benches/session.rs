//! A full DM Session over loopback (Package#1, a Package#2 of 100 mixed
//! commands, Package#3, END) next to bare hyper round trips carrying the
//! same bytes. Run: `cargo bench -p dmctl --bench session`.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dm_agent::{standard_registry, Device, DeviceConfig, Initiation, Message};
use dm_core::{ClientUri, Command};
use dm_server::{self as server, ServerConfig};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// Rounds timed; `DM_BENCH_ROUNDS` lowers it for profiling runs (callgrind).
fn rounds() -> usize {
    std::env::var("DM_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(500)
}
const WARM_UP: usize = 20;

/// Commands in the Package#2: 100, or `DM_BENCH_COMMANDS` (1 shows a
/// session's fixed cost).
fn command_count() -> usize {
    static COUNT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *COUNT.get_or_init(|| {
        std::env::var("DM_BENCH_COMMANDS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(100)
    })
}

/// The Package#2: 100 commands mixing the ClientURIs below. For profiling
/// one kind alone, `DM_BENCH_ONLY=<k>` makes all 100 a GET of `uris[k]`.
fn commands() -> Vec<Command> {
    let uris = [
        "urn:oma:mo:oma-dm-devinfo:1.2//DevID",
        "urn:oma:mo:oma-dm-devinfo:1.2//",
        "urn:oma:mo:oma-dm-devinfo:1.2/*/Mod",
        "urn:oma:mo:oma-dm-devinfo:1.2/(x)/FwV?nv=(x)/DmV:2.0",
        "urn:oma:mo:oma-sessioninfomo:1.0//CBT",
    ];
    let only: Option<usize> = std::env::var("DM_BENCH_ONLY")
        .ok()
        .and_then(|k| k.parse().ok())
        .filter(|k| *k < uris.len());
    (0..command_count())
        .map(|i| {
            let client_uri: ClientUri = uris[only.unwrap_or(i % uris.len())]
                .parse()
                .unwrap_or_else(|e| panic!("{e}"));
            match (only, i % 10) {
                (None, 7) => Command::Exec {
                    client_uri,
                    server_uri: None,
                },
                (None, 8) => Command::Delete { client_uri },
                _ => Command::Get { client_uri },
            }
        })
        .collect()
}

/// One client-initiated session of the 100 commands, then END, with the
/// DM Server of DMAcc account `server_id`: every command goes through that
/// server's access rights, as in `dmctl client`.
async fn session(device: &mut Device, server_id: &str) {
    let report = device
        .run_session_as(server_id, Initiation::ClientInitiated, false, Vec::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Each command's status, then END's.
    assert_eq!(report.commands.len(), command_count() + 1);
}

/// Gives the device DMAcc accounts `(SrvID, ServerURI)` whose Perm list
/// covers every MOID (spec 12.2), as a factory bootstrap file does.
fn bootstrap(device: &mut Device, accounts: &[(&str, &str)]) {
    let items: Vec<serde_json::Value> = accounts
        .iter()
        .map(|(id, uri)| {
            serde_json::json!({
                "ClientURI": format!("urn:oma:mo:oma-dm-dmacc:1.2/{id}/"),
                "MOData": { *id: {
                    "SrvID": id, "SrvURI": uri, "Name": id,
                    "Perm": { "p0": { "MOID": "*" } },
                } }
            })
        })
        .collect();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("bootstrap.json");
    std::fs::write(&file, serde_json::Value::from(items).to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    dm_agent::service::apply_bootstrap(device, &file).unwrap_or_else(|e| panic!("{e}"));
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = server::start(ServerConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        default_commands: commands(),
        log_errors: true,
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let mut device = Device::new(DeviceConfig::new("IMEI:1"), standard_registry("IMEI:1"));
    // Record one session's messages to replay their sizes over bare hyper.
    let seen: std::sync::Arc<std::sync::Mutex<Vec<(Message, Message)>>> = Default::default();
    let sink = seen.clone();
    device.observe(std::sync::Arc::new(move |e: &dm_agent::Exchange| {
        if let Ok(mut s) = sink.lock() {
            if s.len() < 2 {
                s.push((e.request.clone(), e.response.clone()));
            }
        }
    }));
    let reference = server.dm_url();
    bootstrap(&mut device, &[("reference", &reference)]);
    session(&mut device, "reference").await;
    let exchanges = seen.lock().map(|s| s.clone()).unwrap_or_default();

    // A scripted server that answers each request with the reference
    // server's recorded response to the same kind of package: the DM
    // device against it and a bare hyper client against it differ only in
    // the client, so their ratio is the device runtime's own cost.
    let scripted = scripted_server(&exchanges).await;
    bootstrap(
        &mut device,
        &[("reference", &reference), ("scripted", &scripted)],
    );
    let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http();
    // The bodies are held as `Bytes` (cloning one shares it); each request
    // is built inside the timed run, as the device builds its own.
    let script: Vec<(String, Bytes)> = exchanges
        .iter()
        .map(|(request, _)| {
            (
                request.header("content-type").unwrap_or("").to_owned(),
                request.body.clone(),
            )
        })
        .collect();
    let bare = |client: &hyper_util::client::legacy::Client<_, Full<Bytes>>| {
        let client = client.clone();
        let (script, target) = (&script, &scripted);
        async move {
            for (content_type, body) in script {
                let req = Request::post(target)
                    .header("content-type", content_type)
                    .body(Full::new(body.clone()))
                    .unwrap_or_else(|e| panic!("{e}"));
                let resp = client.request(req).await.unwrap_or_else(|e| panic!("{e}"));
                let _ = resp.into_body().collect().await;
            }
        }
    };

    // The three take turns, so that a slow moment of the (shared,
    // virtual) machine hits all of them alike.
    for _ in 0..WARM_UP {
        session(&mut device, "reference").await;
        session(&mut device, "scripted").await;
        bare(&client).await;
    }
    let rounds = rounds();
    let mut session_times = Vec::with_capacity(rounds);
    let mut device_times = Vec::with_capacity(rounds);
    let mut bare_times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        session(&mut device, "reference").await;
        session_times.push(t.elapsed());
        let t = Instant::now();
        session(&mut device, "scripted").await;
        device_times.push(t.elapsed());
        let work = bare(&client);
        let t = Instant::now();
        work.await;
        bare_times.push(t.elapsed());
    }
    server.shutdown().await;
    // Per-round ratios: each compares runs made moments apart.
    let ratio_of = |times: &[Duration]| {
        let mut r: Vec<f64> = times
            .iter()
            .zip(&bare_times)
            .map(|(t, b)| t.as_secs_f64() / b.as_secs_f64())
            .collect();
        r.sort_by(f64::total_cmp);
        r[r.len() / 2]
    };
    let (rs, rd) = (ratio_of(&session_times), ratio_of(&device_times));
    let (s, d, b) = (
        median(session_times),
        median(device_times),
        median(bare_times),
    );
    let sizes: Vec<String> = exchanges
        .iter()
        .map(|(q, r)| format!("{}B->{}B", q.body.len(), r.body.len()))
        .collect();
    println!("round trips: {}", sizes.join(", "));
    println!(
        "{rounds} rounds of {}-command sessions, medians (ratio: median of per-round ratios to bare):",
        command_count()
    );
    println!("  device + reference server: {s:?} ({rs:.2}x)");
    println!("  device + scripted server:  {d:?} ({rd:.2}x)");
    println!("  bare hyper + scripted server, same bytes: {b:?}");
}

/// Serves the recorded responses: the one whose request had the same
/// Content-Type (Package#1 and Package#3 differ), the recorded headers
/// included.
async fn scripted_server(exchanges: &[(Message, Message)]) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let script: Arc<Vec<(String, String, Bytes)>> = Arc::new(
        exchanges
            .iter()
            .map(|(q, r)| {
                (
                    q.header("content-type").unwrap_or("").to_owned(),
                    r.header("content-type").unwrap_or("").to_owned(),
                    r.body.clone(),
                )
            })
            .collect(),
    );
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let script = script.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let script = script.clone();
                    async move {
                        let asked = req
                            .headers()
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        let _ = req.into_body().collect().await;
                        let (_, content_type, body) = script
                            .iter()
                            .find(|(q, _, _)| *q == asked)
                            .unwrap_or_else(|| panic!("unscripted request {asked}"));
                        let mut resp = Response::new(Full::new(body.clone()));
                        if let Ok(v) = content_type.parse() {
                            resp.headers_mut().insert("content-type", v);
                        }
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}/dm")
}
