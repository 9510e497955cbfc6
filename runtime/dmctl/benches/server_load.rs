//! Load test of the reference DM Server: `dmctl server` (SQLite storage,
//! admin API) as its own process on loopback, 1,000 simulated devices
//! (the runtime's DM Client, standard MOs) each running one short session
//! (Package#1, a Package#2 with one GET queued through the admin API,
//! Package#3, END), 100 at a time. Prints sessions per second and the
//! server's peak resident memory (VmHWM); fails on any failed session.
//! Bounded: 1,000 sessions, 120 s at most.
//!
//! Run: `cargo bench -p dmctl --bench server_load`.

use std::io::BufRead;
use std::process::{Command as Process, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dm_agent::{standard_registry, Device, DeviceConfig, Initiation};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const DEVICES: usize = 1_000;
const CONCURRENCY: usize = 100;
const LIMIT: Duration = Duration::from_secs(120);

fn dev_id(i: usize) -> String {
    format!("IMEI:{:015}", 350_000_000_000_000u64 + i as u64)
}

/// VmHWM of a process, in KiB.
fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let tmp = std::env::temp_dir().join(format!("dm-server-load-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap_or_else(|e| panic!("{e}"));
    let mut server = Process::new(env!("CARGO_BIN_EXE_dmctl"))
        .args([
            "server",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--db",
        ])
        .arg(tmp.join("load.sqlite"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = server.stderr.take().unwrap_or_else(|| panic!("no stderr"));
    let mut lines = std::io::BufReader::new(stderr).lines();
    let (mut dm_url, mut admin, mut token) = (None, None, None);
    while dm_url.is_none() || admin.is_none() || token.is_none() {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("server exited"))
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some(u) = line.strip_prefix("dmctl server: DM sessions at ") {
            dm_url = Some(u.trim().to_owned());
        }
        if let Some(u) = line.strip_prefix("dmctl server: admin API at ") {
            admin = Some(u.trim().trim_end_matches("/api/devices").to_owned());
        }
        // The operator token a start on a new database makes.
        if let Some(t) = line.strip_prefix("dmctl server: admin token (operator, shown once): ") {
            token = Some(format!("Bearer {}", t.trim()));
        }
    }
    let token = token.unwrap_or_default();
    // Keep the pipe drained; rejected requests would be printed there.
    let errors = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = errors.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            eprintln!("[server] {line}");
        }
    });
    let (dm_url, admin) = (
        dm_url.unwrap_or_default(),
        Arc::new(admin.unwrap_or_default()),
    );

    let client: Client<_, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let started = Instant::now();
    for i in 0..DEVICES {
        let req = hyper::Request::post(format!("{admin}/api/devices/{}/commands", dev_id(i)))
            .header("Authorization", &token)
            .header("Content-Type", "application/json")
            .body(Full::new(Bytes::from_static(
                br#"["GET", "urn:oma:mo:oma-dm-devinfo:1.2//DevID"]"#,
            )))
            .unwrap_or_else(|e| panic!("{e}"));
        let resp = client.request(req).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(resp.status(), 201);
        let _ = resp.into_body().collect().await;
    }
    let queued = started.elapsed();

    let semaphore = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    for i in 0..DEVICES {
        let permit = semaphore
            .clone()
            .acquire_owned()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let url = dm_url.clone();
        tasks.spawn(async move {
            let id = dev_id(i);
            let mut device = Device::new(DeviceConfig::new(&id), standard_registry(&id));
            let result = device
                .run_session(&url, Initiation::ClientInitiated, false)
                .await;
            drop(permit);
            result.map(|r| r.commands.len())
        });
    }
    let mut ok = 0;
    let mut failed = 0;
    let outcome = tokio::time::timeout(LIMIT, async {
        while let Some(r) = tasks.join_next().await {
            match r {
                // GET, then END.
                Ok(Ok(2)) => ok += 1,
                Ok(Ok(n)) => {
                    eprintln!("session with {n} commands");
                    failed += 1;
                }
                Ok(Err(e)) => {
                    eprintln!("failed session: {e}");
                    failed += 1;
                }
                Err(e) => {
                    eprintln!("task: {e}");
                    failed += 1;
                }
            }
        }
    })
    .await;
    let elapsed = started.elapsed();
    let peak = peak_kib(server.id());
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(outcome.is_ok(), "not done within {LIMIT:?}");

    println!("server_load: {DEVICES} devices, {CONCURRENCY} at a time, SQLite storage");
    println!("  queueing {DEVICES} GETs via the admin API: {queued:.2?}");
    println!(
        "  sessions: {ok} ok, {failed} failed in {elapsed:.2?} = {:.0} sessions/s",
        ok as f64 / elapsed.as_secs_f64()
    );
    match peak {
        Some(kib) => println!(
            "  server peak memory (VmHWM): {:.1} MiB",
            kib as f64 / 1024.0
        ),
        None => println!("  server peak memory: /proc not available"),
    }
    let logged = errors.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(failed, 0, "every session must succeed");
    assert_eq!(logged, 0, "the server rejected {logged} requests");
}
