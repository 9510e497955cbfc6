//! The reference DM Server stays bounded when peers misbehave (issue 19
//! item 9; README "Deploying the server"): its rejection history is a
//! ring of escaped, cut lines; a connection that sends nothing, or a body
//! that never ends, is closed; past the connection cap new connections
//! are closed while open ones are still served; a device's repository
//! uploads stop at its quota with nothing stored.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use dm_agent::{standard_registry, Device, DeviceConfig, Initiation};
use dm_server::{self as server, Limits, ServerConfig, ServerHandle, ServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DEV_ID: &str = "IMEI:490154203237518";

async fn server_with(limits: Limits) -> ServerHandle {
    server::start_with(
        ServerConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            default_commands: Vec::new(),
            log_errors: false,
        },
        ServerOptions {
            limits,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

/// Sends `head` (without the blank line) and `body` on `stream`; the
/// status code of the answer, read up to its end of headers.
async fn send(stream: &mut TcpStream, head: &str, body: &[u8]) -> u16 {
    stream
        .write_all(format!("{head}\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes())
        .await
        .unwrap();
    stream.write_all(body).await.unwrap();
    status_of(stream).await
}

/// The status code of the next answer on `stream` (its body skipped by
/// Content-Length).
async fn status_of(stream: &mut TcpStream) -> u16 {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.unwrap();
        assert_eq!(n, 1, "connection closed after {head:?}");
        head.push(byte[0]);
    }
    let text = String::from_utf8(head).unwrap();
    let length: usize = text
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    text[9..12].parse().unwrap()
}

/// One request on a new connection.
async fn request(addr: SocketAddr, head: &str, body: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    send(&mut stream, head, body).await
}

/// Whether the server closes `stream` within 10 s, reading what it sends.
async fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn the_rejection_history_keeps_its_bound_in_escaped_cut_lines() {
    let server = server_with(Limits {
        error_history: 50,
        ..Limits::default()
    })
    .await;
    let addr = server.addr();
    // A DevID with an escaped newline and a path of 10 kB, refused for
    // its media type: the reason carries both, decoded.
    let junk = "A".repeat(10_000);
    let mut stream = TcpStream::connect(addr).await.unwrap();
    for i in 0..150 {
        // Signed, as the server writes it into an HPUT: past the
        // repository's authorization, to the media type check.
        let url =
            server.signed_repo_url("PUT", "IMEI\ndm-server: 200 forged", &format!("{i}{junk}"));
        let target = url.strip_prefix(server.base_url()).unwrap();
        let head = format!("PUT {target} HTTP/1.1\r\nHost: x\r\nContent-Type: image/png");
        assert_eq!(send(&mut stream, &head, b"x").await, 415);
    }
    let errors = server.errors();
    assert_eq!(errors.len(), 50, "the last 50 of 150 rejections");
    assert!(errors[0].contains("forged: 100AAA"), "{}", errors[0]);
    for e in &errors {
        assert!(!e.contains(['\n', '\r']), "{e}");
        assert!(e.contains("IMEI\\ndm-server: 200 forged"), "{e}");
        assert!(e.len() <= server::MAX_LOGGED_INPUT + 32, "{}", e.len());
        assert!(e.ends_with("bytes more)"), "{e}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn silent_connections_and_endless_bodies_are_closed() {
    let server = server_with(Limits {
        header_timeout: Duration::from_millis(300),
        body_timeout: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    let addr = server.addr();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert!(closed(&mut silent).await, "a connection that sends nothing");

    // Half a request head, then nothing.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"POST /dm HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(closed(&mut slow).await, "a head that never ends");

    // A body announced at 100 bytes, 10 sent: refused, not waited for.
    let mut endless = TcpStream::connect(addr).await.unwrap();
    endless
        .write_all(
            format!(
                "POST /dm HTTP/1.1\r\nHost: x\r\nOMADM-DevID: {DEV_ID}\r\nContent-Length: 100\r\n\r\n0123456789"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), status_of(&mut endless))
        .await
        .expect("answered before the body ends");
    assert_eq!(status, 400);
    assert!(server
        .errors()
        .iter()
        .any(|e| e.contains("body not received within")));
    server.shutdown().await;
}

#[tokio::test]
async fn past_the_connection_cap_new_connections_are_closed_and_open_ones_served() {
    let server = server_with(Limits {
        max_connections: 4,
        ..Limits::default()
    })
    .await;
    let addr = server.addr();
    let url = server.signed_repo_url("GET", DEV_ID, "none");
    let target = url.strip_prefix(server.base_url()).unwrap();
    let probe = format!("GET {target} HTTP/1.1\r\nHost: x");
    let mut open = TcpStream::connect(addr).await.unwrap();
    assert_eq!(send(&mut open, &probe, b"").await, 404);
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    // Give the accept loop the time to take the three.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(addr).await.unwrap();
    assert!(closed(&mut extra).await, "the fifth connection");
    assert!(server
        .errors()
        .iter()
        .any(|e| e.contains("connection closed, 4 already open")));
    // The kept-alive connection is still served.
    assert_eq!(send(&mut open, &probe, b"").await, 404);

    // A slot freed, a device session runs through it.
    drop(idle.pop());
    drop(open);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut device = Device::new(DeviceConfig::new(DEV_ID), standard_registry(DEV_ID));
    server.enqueue(
        DEV_ID,
        dm_core::Command::Get {
            client_uri: "urn:oma:mo:oma-dm-devinfo:1.2//DevID".parse().unwrap(),
        },
    );
    device
        .run_session(&server.dm_url(), Initiation::ClientInitiated, true)
        .await
        .unwrap();
    let record = server.device(DEV_ID).unwrap();
    assert_eq!((record.ended, record.results.len()), (1, 1));
    server.shutdown().await;
}

#[tokio::test]
async fn repository_uploads_past_the_quota_are_refused_and_store_nothing() {
    let server = server_with(Limits {
        repo_quota_bytes: 1000,
        repo_quota_entries: 2,
        ..Limits::default()
    })
    .await;
    let addr = server.addr();
    let put = |path: &str| {
        let url = server.signed_repo_url("PUT", DEV_ID, path);
        let target = url.strip_prefix(server.base_url()).unwrap().to_owned();
        format!("PUT {target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nConnection: close")
    };
    assert_eq!(request(addr, &put("a"), &[1; 400]).await, 201);
    assert_eq!(request(addr, &put("b"), &[2; 400]).await, 201);
    // A third resource: past the entry quota.
    assert_eq!(request(addr, &put("c"), &[3; 10]).await, 507);
    // `a` replaced by 700 bytes: 1,100 in all, past the byte quota.
    assert_eq!(request(addr, &put("a"), &[4; 700]).await, 507);
    // Replaced by 500: 900 in all, taken.
    assert_eq!(request(addr, &put("b"), &[5; 500]).await, 200);
    // Larger than the whole quota: refused from its Content-Length.
    let mut big = TcpStream::connect(addr).await.unwrap();
    big.write_all(format!("{}\r\nContent-Length: 2000\r\n\r\n", put("d")).as_bytes())
        .await
        .unwrap();
    assert_eq!(status_of(&mut big).await, 413);

    let storage = server.storage();
    assert_eq!(storage.resources(DEV_ID).unwrap(), ["a", "b"]);
    assert_eq!(
        storage.resource(DEV_ID, "a").unwrap().unwrap().body,
        [1; 400]
    );
    assert_eq!(
        storage.resource(DEV_ID, "b").unwrap().unwrap().body,
        [5; 500]
    );
    // Another device has its own quota.
    let url = server.signed_repo_url("PUT", "IMEI:2", "c");
    let target = url.strip_prefix(server.base_url()).unwrap();
    let other = format!(
        "PUT {target} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nConnection: close"
    );
    assert_eq!(request(addr, &other, b"v").await, 201);
    server.shutdown().await;
}

#[tokio::test]
async fn bodies_wait_for_the_body_budget_and_give_it_back() {
    let server = server_with(Limits {
        // Taken as MAX_BODY: one largest body at a time.
        body_budget: 1,
        body_timeout: Duration::from_secs(1),
        ..Limits::default()
    })
    .await;
    let addr = server.addr();
    // Reserves the whole budget with its Content-Length, sends 10 bytes.
    let mut hog = TcpStream::connect(addr).await.unwrap();
    hog.write_all(
        format!(
            "POST /dm HTTP/1.1\r\nHost: x\r\nOMADM-DevID: {DEV_ID}\r\nContent-Length: {}\r\n\r\n0123456789",
            server::MAX_BODY
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let small = format!(
        "POST /dm HTTP/1.1\r\nHost: x\r\nOMADM-DevID: {DEV_ID}\r\nContent-Type: text/plain"
    );
    // Waits until the hog's body timeout gives the budget back, then is
    // read (and refused for its media type).
    let started = std::time::Instant::now();
    assert_eq!(request(addr, &small, b"x").await, 415);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(700), "{waited:?}");
    assert_eq!(status_of(&mut hog).await, 400);
    assert!(server.errors()[0].contains("body not received within 1s"));
    // With the budget free, no wait.
    let started = std::time::Instant::now();
    assert_eq!(request(addr, &small, b"x").await, 415);
    assert!(started.elapsed() < Duration::from_millis(500));
    server.shutdown().await;
}

/// CPU time (user + system, clock ticks) a process has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After the command name, in parentheses: field 3 on; utime and
    // stime are fields 14 and 15 (proc(5)).
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Kills the server process however the test ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn out_of_file_descriptors_the_accept_loop_backs_off() {
    use std::io::BufRead;
    use std::sync::{Arc, Mutex};
    // `dmctl server` with 32 file descriptors.
    let mut child = std::process::Command::new("sh")
        .args([
            "-c",
            "ulimit -n 32 && exec \"$0\" server --listen 127.0.0.1:0",
            env!("CARGO_BIN_EXE_dmctl-e2e"),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let (seen, stderr) = (lines.clone(), child.stderr.take().unwrap());
    let _server = Killed(child);
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            seen.lock().unwrap().push(line);
        }
    });
    let mut addr = None;
    for _ in 0..100 {
        addr = lines.lock().unwrap().iter().find_map(|l| {
            l.strip_prefix("dmctl server: DM sessions at http://")
                .and_then(|a| a.trim_end_matches("/dm").parse::<SocketAddr>().ok())
        });
        if addr.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let addr = addr.expect("the server's address");

    // More connections than descriptors: the rest wait in the backlog,
    // and every accept fails with EMFILE.
    let mut held = Vec::new();
    for _ in 0..64 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_ticks(pid) - before;
    // Spinning would use the whole 2 s (about 200 ticks at 100 Hz).
    assert!(used < 40, "{used} ticks of CPU in 2 s");
    let failures = lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("accept failed"))
        .count();
    assert!((1..=5).contains(&failures), "{failures} lines");

    // Descriptors back, the server serves again.
    drop(held);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let served = tokio::time::timeout(
        Duration::from_secs(10),
        request(
            addr,
            "GET /repo/IMEI:1/none HTTP/1.1\r\nHost: x\r\nConnection: close",
            b"",
        ),
    )
    .await;
    // An answer is what counts: the anonymous probe is refused (401).
    assert_eq!(served.expect("answered"), 401);
}
