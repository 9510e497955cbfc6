//! What large commands cost the device's state directory (issue "Device
//! agent under a hostile server, a full disk and a crash"): one HGET that
//! creates 20,000 DMAcc accounts, and one session of 10,000 DEFAULTs. For
//! each: the session's wall time, the bytes the process wrote to storage
//! (`write_bytes` of /proc/self/io, which fsync makes count) and to files
//! and sockets (`wchar`), and the state directory's size afterwards.
//!
//! Run: `cargo bench -p dmctl --bench state_writes` (`DM_BENCH_ACCOUNTS`
//! and `DM_BENCH_DEFAULTS` change the counts). The DEFAULTs come in one
//! Package#2, so the run raises the command limit to take them; the
//! registration limit stays at its default.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use dm_agent::service::{self as agent, AgentOptions};
use dm_agent::Initiation;
use dm_core::{Command, ServerUri};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (write_bytes, wchar) of this process so far.
fn io() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("write_bytes:"), field("wchar:"))
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => dir_size(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    })
}

/// A Data Repository that answers every request with `body`.
async fn repository(body: Vec<u8>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/dmmo+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (head, body) = (head.clone(), body.clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body).await;
            });
        }
    });
    addr
}

async fn measure(name: &str, commands: Vec<Command>, limits: dm_agent::Limits) {
    let server = dm_server::start(dm_server::ServerConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        default_commands: commands,
        log_errors: false,
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let tmp = std::env::temp_dir().join(format!("dm-state-writes-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap_or_else(|e| panic!("{e}"));
    let bootstrap = tmp.join("bootstrap.json");
    let account = serde_json::json!([{
        "ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2/A/",
        "MOData": { "A": { "SrvID": "A", "SrvURI": server.dm_url(), "Name": "bench",
                           "Perm": { "p": { "MOID": "*" } } } }
    }]);
    std::fs::write(&bootstrap, account.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let opts = AgentOptions {
        timeout: Duration::from_secs(600),
        dev_id: Some("IMEI:490154203237518".into()),
        limits,
        ..AgentOptions::new(tmp.join("state"))
    };
    let mut device = agent::open_device(&opts).unwrap_or_else(|e| panic!("{e}"));
    agent::apply_bootstrap(&mut device, &bootstrap).unwrap_or_else(|e| panic!("{e}"));
    let (wb, wc) = io();
    let t = Instant::now();
    let report = device
        .run_session_as("A", Initiation::ClientInitiated, false, Vec::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let elapsed = t.elapsed();
    let (wb2, wc2) = io();
    let failed = report
        .commands
        .iter()
        .filter(|(_, s)| !s.is_success())
        .count();
    println!(
        "{name}: {:.2} s, {} commands ({failed} failed), write_bytes {:.1} MB, wchar {:.1} MB, state {:.1} MB",
        elapsed.as_secs_f64(),
        report.commands.len(),
        (wb2 - wb) as f64 / 1e6,
        (wc2 - wc) as f64 / 1e6,
        dir_size(&tmp.join("state")) as f64 / 1e6,
    );
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&tmp);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let accounts = count("DM_BENCH_ACCOUNTS", 20_000);
    let items: Vec<serde_json::Value> = (0..accounts)
        .map(|i| {
            let id = format!("s{i}");
            serde_json::json!({
                "ClientURI": format!("urn:oma:mo:oma-dm-dmacc:1.2/{id}/"),
                "MOData": { id.clone(): {
                    "SrvID": id, "SrvURI": "https://dms.example/dm", "Name": "many",
                    "Perm": { "p": { "MOID": "urn:oma:mo:oma-dm-devinfo:1.2" } }
                } }
            })
        })
        .collect();
    let body = serde_json::to_vec(&items).unwrap_or_default();
    let repo = repository(body).await;
    measure(
        &format!("HGET creating {accounts} accounts"),
        vec![Command::Hget {
            server_uri: ServerUri::new(format!("http://{repo}/many")),
            client_uri: None,
        }],
        dm_agent::Limits::default(),
    )
    .await;
    let defaults = count("DM_BENCH_DEFAULTS", 10_000);
    measure(
        &format!("{defaults} DEFAULTs"),
        (0..defaults)
            .map(|i| Command::Default {
                server_uri: ServerUri::new(format!("https://repo.example/m{i}")),
                moid: format!("urn:example:mo:m{i}:1.0"),
            })
            .collect(),
        // The DEFAULTs in one Package#2, as the probe sent them; the other
        // limits (64 registrations per server) as they are.
        dm_agent::Limits {
            commands_per_package: defaults + 1,
            ..dm_agent::Limits::default()
        },
    )
    .await;
}
