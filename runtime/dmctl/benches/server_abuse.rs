//! The reference DM Server under abuse: `dmctl server` (in-memory
//! storage, default limits but for `--max-connections 4096`, so that the
//! idle phase holds all its connections) as its own process on loopback.
//! Three phases, each with a real device session (the runtime's DM Client,
//! standard MOs) run in the middle of it and required to succeed:
//!
//! 1. 20,000 rejected requests with 8 KiB paths (404), 16 keep-alive
//!    connections at a time;
//! 2. 3,000 idle connections held open, then left to the header timeout;
//! 3. 64 concurrent 16 MB bodies POSTed to the DM endpoint (read whole,
//!    then refused).
//!
//! Prints the server's resident memory (VmRSS) after each phase and its
//! peak (VmHWM). Bounded: 180 s at most.
//!
//! Run: `cargo bench -p dmctl --bench server_abuse`.

use std::io::BufRead;
use std::process::{Command as Process, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dm_agent::{standard_registry, Device, DeviceConfig, Initiation};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const REJECTED: usize = 20_000;
const FLOODERS: usize = 16;
const PATH_LEN: usize = 8 * 1024;
const IDLE: usize = 3_000;
const BODIES: usize = 64;
const BODY_LEN: usize = 16_000_000;
const LIMIT: Duration = Duration::from_secs(180);

/// VmRSS and VmHWM of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// One client-initiated session of a fresh device; panics if it fails.
async fn device_session(url: &str, n: usize) -> Duration {
    let id = format!("IMEI:{:015}", 351_000_000_000_000u64 + n as u64);
    let mut device = Device::new(DeviceConfig::new(&id), standard_registry(&id));
    let started = Instant::now();
    let report = device
        .run_session(url, Initiation::ClientInitiated, false)
        .await
        .unwrap_or_else(|e| panic!("device session during phase {n}: {e}"));
    assert!(!report.commands.is_empty(), "the DevInfo GET, then END");
    started.elapsed()
}

/// The status code of the next response; its body read and dropped.
async fn response(r: &mut BufReader<TcpStream>) -> std::io::Result<u16> {
    let mut status = 0;
    let mut length = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if let Some(code) = line.strip_prefix("HTTP/1.1 ") {
            status = code.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0u8; length];
    r.read_exact(&mut body).await?;
    Ok(status)
}

/// Phase 1: `REJECTED` requests with long paths, all answered 404.
async fn flood(addr: String) -> usize {
    let junk = "A".repeat(PATH_LEN);
    let mut tasks = tokio::task::JoinSet::new();
    for f in 0..FLOODERS {
        let (addr, junk) = (addr.clone(), junk.clone());
        tasks.spawn(async move {
            let stream = TcpStream::connect(&addr)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let mut r = BufReader::new(stream);
            let mut refused = 0;
            for i in 0..REJECTED / FLOODERS {
                let req = format!("GET /{f}-{i}-{junk} HTTP/1.1\r\nHost: x\r\n\r\n");
                r.get_mut()
                    .write_all(req.as_bytes())
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                if response(&mut r).await.unwrap_or_else(|e| panic!("{e}")) == 404 {
                    refused += 1;
                }
            }
            refused
        });
    }
    let mut refused = 0;
    while let Some(r) = tasks.join_next().await {
        refused += r.unwrap_or_else(|e| panic!("{e}"));
    }
    refused
}

/// Whether the server has closed `s` (EOF or reset), without waiting.
async fn is_closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    matches!(
        tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Phase 3: `BODIES` bodies of `BODY_LEN` at once; the statuses.
async fn bodies(addr: String) -> Vec<u16> {
    let body = Arc::new(vec![b'x'; BODY_LEN]);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..BODIES {
        let (addr, body) = (addr.clone(), body.clone());
        tasks.spawn(async move {
            let stream = TcpStream::connect(&addr).await.unwrap_or_else(|e| panic!("{e}"));
            let mut r = BufReader::new(stream);
            let head = format!(
                "POST /dm HTTP/1.1\r\nHost: x\r\nOMADM-DevID: IMEI:{i}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let w = r.get_mut();
            w.write_all(head.as_bytes()).await.unwrap_or_else(|e| panic!("{e}"));
            w.write_all(&body).await.unwrap_or_else(|e| panic!("{e}"));
            response(&mut r).await.unwrap_or(0)
        });
    }
    let mut statuses = Vec::new();
    while let Some(r) = tasks.join_next().await {
        statuses.push(r.unwrap_or_else(|e| panic!("{e}")));
    }
    statuses
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut server = Process::new(env!("CARGO_BIN_EXE_dmctl"))
        .args([
            "server",
            "--listen",
            "127.0.0.1:0",
            "--max-connections",
            "4096",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let pid = server.id();
    let stderr = server.stderr.take().unwrap_or_else(|| panic!("no stderr"));
    let mut lines = std::io::BufReader::new(stderr).lines();
    let dm_url = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("server exited"))
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some(u) = line.strip_prefix("dmctl server: DM sessions at ") {
            break u.trim().to_owned();
        }
    };
    // Keep the pipe drained: every rejection is logged there.
    let logged = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = logged.clone();
    std::thread::spawn(move || {
        for _ in lines.map_while(Result::ok) {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let addr = dm_url
        .trim_start_matches("http://")
        .trim_end_matches("/dm")
        .to_owned();

    let run = async {
        let before = device_session(&dm_url, 0).await;
        let start = memory_kib(pid);

        let started = Instant::now();
        let (refused, during_flood) = tokio::join!(flood(addr.clone()), async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            device_session(&dm_url, 1).await
        });
        let flood_time = started.elapsed();
        assert_eq!(refused, REJECTED, "every flood request answered 404");
        let after_flood = memory_kib(pid);

        let mut idle = Vec::with_capacity(IDLE);
        for _ in 0..IDLE {
            idle.push(
                TcpStream::connect(&addr)
                    .await
                    .unwrap_or_else(|e| panic!("{e}")),
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let during_idle = device_session(&dm_url, 2).await;
        let with_idle = memory_kib(pid);
        let mut open_then = 0;
        for s in &mut idle {
            open_then += usize::from(!is_closed(s).await);
        }
        // Past the header timeout (10 s by default) they are closed.
        tokio::time::sleep(dm_server::HEADER_TIMEOUT + Duration::from_secs(2)).await;
        let mut closed = 0;
        for s in &mut idle {
            closed += usize::from(is_closed(s).await);
        }
        drop(idle);
        let after_idle = memory_kib(pid);

        let (statuses, during_bodies) = tokio::join!(bodies(addr.clone()), async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            device_session(&dm_url, 3).await
        });
        let refused_bodies = statuses.iter().filter(|s| **s == 415).count();
        let after_bodies = memory_kib(pid);

        println!("server_abuse: dmctl server --listen 127.0.0.1:0 --max-connections 4096 (memory storage)");
        println!(
            "  at start, after one session ({before:.2?}): VmRSS {}",
            mib(start.0)
        );
        println!(
            "  {REJECTED} rejected requests, {PATH_LEN}-byte paths, {FLOODERS} connections: {refused} answered 404 in {flood_time:.2?}; VmRSS {}, VmHWM {}; a session meanwhile: {during_flood:.2?}",
            mib(after_flood.0),
            mib(after_flood.1)
        );
        println!(
            "  {IDLE} idle connections: {open_then} open after 1 s, VmRSS {}; a session meanwhile: {during_idle:.2?}; {closed} closed by the header timeout; VmRSS after {}",
            mib(with_idle.0),
            mib(after_idle.0)
        );
        println!(
            "  {BODIES} concurrent {BODY_LEN}-byte bodies: {refused_bodies} read and refused (415); VmRSS {}, VmHWM {}; a session meanwhile: {during_bodies:.2?}",
            mib(after_bodies.0),
            mib(after_bodies.1)
        );
        println!(
            "  log lines written: {}",
            logged.load(std::sync::atomic::Ordering::Relaxed)
        );
    };
    let outcome = tokio::time::timeout(LIMIT, run).await;
    let _ = server.kill();
    let _ = server.wait();
    assert!(outcome.is_ok(), "not done within {LIMIT:?}");
}
