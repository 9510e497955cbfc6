//! Server-initiated sessions (spec 5.2.1, 9.1, E.3): `dmctl client --once
//! --notify-udp ADDR` waits for the first valid Package#0, drops forged,
//! replayed and stale ones, and runs the session the valid one asks for.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use dm_core::notification::encode_signed;
use dm_core::package::alert_type;
use dm_core::Notification;

const DEV_ID: &str = "IMEI:353456789012345";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A signed notification for server `A` (the bootstrap's Auth/Noti holds
/// Secret "secret" and Data "auth").
fn signed(id: u16, secret: &[u8], timestamp: u64, req_mos: bool) -> Vec<u8> {
    let n = Notification {
        server_id: Some("A".into()),
        notification_id: Some(id),
        timestamp: Some(timestamp),
        req_mos,
        ..Notification::new()
    };
    encode_signed(&n, secret, b"auth").unwrap()
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `dmctl client --once --notify-udp`, sends `datagrams` in turn
/// (each repeated until the client is listening), and waits for its exit.
async fn client_with(
    state: &std::path::Path,
    bootstrap: &std::path::Path,
    datagrams: &[Vec<u8>],
) -> (Option<i32>, String) {
    let port = free_udp_port();
    let mut child = tokio::process::Command::new(common::dmctl())
        .args([
            "client",
            "--once",
            "--dev-id",
            DEV_ID,
            "--notify-udp",
            &format!("127.0.0.1:{port}"),
            "--state",
        ])
        .arg(state)
        .arg("--bootstrap")
        .arg(bootstrap)
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut i = 0;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        assert!(Instant::now() < deadline, "client did not finish");
        // Until the client has bound its socket the datagram is lost, so
        // each is sent a few times; duplicates are dropped by the client.
        let d = &datagrams[(i / 5).min(datagrams.len() - 1)];
        let _ = socket.send_to(d, ("127.0.0.1", port)).await;
        i += 1;
        tokio::time::sleep(Duration::from_millis(60)).await;
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use tokio::io::AsyncReadExt;
        let _ = e.read_to_string(&mut stderr).await;
    }
    (status, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_notification_starts_a_session_and_bad_ones_are_dropped() {
    let server = common::start_server(Vec::new()).await;
    let tmp = tempfile::tempdir().unwrap();
    let bootstrap = tmp.path().join("bootstrap.json");
    let item = common::dmacc_item("A", &server.dm_url(), &["*"]);
    std::fs::write(&bootstrap, serde_json::json!([item]).to_string()).unwrap();
    let state = tmp.path().join("state");

    // A forged digest, then a stale one, then a good one with REQ-MOS.
    let (code, stderr) = client_with(
        &state,
        &bootstrap,
        &[
            signed(1, b"wrong", now(), false),
            signed(2, b"secret", now() - 3600, false),
            signed(7, b"secret", now(), true),
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("SHA256-DIGEST missing or wrong"),
        "{stderr}"
    );
    assert!(stderr.contains("outside the accepted window"), "{stderr}");
    let rec = server.device(DEV_ID).unwrap();
    assert_eq!(rec.sessions, 1);
    let types: Vec<&str> = rec.alerts.iter().map(|a| a.alert_type.as_str()).collect();
    assert_eq!(
        types,
        [
            alert_type::SERVER_INITIATED_MGMT,
            alert_type::BOOTSTRAP_COMPLETE
        ]
    );
    // 5.2.2 and 7.2.1.5: the NOTIFICATION-ID in an object, with its DataType.
    assert_eq!(
        rec.alerts[0].data,
        Some(serde_json::json!({ "NOTIFICATION-ID": 7 }))
    );
    assert_eq!(rec.alerts[0].data_type.as_deref(), Some("application/json"));
    assert!(rec.mos.is_some(), "REQ-MOS asks for MOS in Package#1");

    // After a restart, the same NOTIFICATION-ID is a replay; a new one is not.
    let (code, stderr) = client_with(
        &state,
        &bootstrap,
        &[
            signed(7, b"secret", now(), false),
            signed(8, b"secret", now(), false),
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("NOTIFICATION-ID 7 already seen"),
        "{stderr}"
    );
    let rec = server.device(DEV_ID).unwrap();
    assert_eq!(rec.sessions, 2);
    let last = rec.alerts.last().unwrap();
    assert_eq!(last.alert_type, alert_type::SERVER_INITIATED_MGMT);
    assert_eq!(last.notification_id(), Some(8));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferred_con_type_is_reported_and_the_session_still_runs() {
    let server = common::start_server(Vec::new()).await;
    let tmp = tempfile::tempdir().unwrap();
    let bootstrap = tmp.path().join("bootstrap.json");
    let item = common::dmacc_item("A", &server.dm_url(), &["*"]);
    std::fs::write(&bootstrap, serde_json::json!([item]).to_string()).unwrap();
    // A bearer no host has: the device says so and goes on (5.2.1.2).
    let n = Notification {
        server_id: Some("A".into()),
        notification_id: Some(3),
        timestamp: Some(now()),
        preferred_con_types: Some(vec![dm_core::ConnectionType::Other(0x7F)]),
        ..Notification::new()
    };
    let datagram = encode_signed(&n, b"secret", b"auth").unwrap();
    let (code, stderr) = client_with(&tmp.path().join("state"), &bootstrap, &[datagram]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("none of the preferred bearers (0x7F) is up"),
        "{stderr}"
    );
    assert_eq!(server.device(DEV_ID).unwrap().ended, 1);
    server.shutdown().await;
}

/// A notification of `server` without TIMESTAMP, signed with the secret
/// `common::dmacc_item` gives every account.
fn untimed(server: &str, id: u16) -> Vec<u8> {
    let n = Notification {
        server_id: Some(server.into()),
        notification_id: Some(id),
        ..Notification::new()
    };
    encode_signed(&n, b"secret", b"auth").unwrap()
}

/// Without TIMESTAMP, a server's NOTIFICATION-IDs are the only defence
/// against a replay (5.2.1.2): each server has its own window, kept in
/// the state, so 300 notifications of B do not make A's old one new.
#[test]
fn a_replay_is_dropped_however_many_notifications_other_servers_send() {
    use dm_agent::service::{self as agent, AgentOptions, Dropped};
    let tmp = tempfile::tempdir().unwrap();
    let bootstrap = tmp.path().join("bootstrap.json");
    let items = ["A", "B"].map(|s| common::dmacc_item(s, "http://127.0.0.1:9/dm", &["*"]));
    std::fs::write(&bootstrap, serde_json::json!(items).to_string()).unwrap();
    let opts = AgentOptions {
        dev_id: Some(DEV_ID.into()),
        ..AgentOptions::new(tmp.path().join("state"))
    };
    let open = || {
        let mut device = agent::open_device(&opts).unwrap();
        agent::apply_bootstrap(&mut device, &bootstrap).unwrap();
        device
    };
    let accept = |device: &mut dm_agent::Device, datagram: &[u8]| {
        agent::accept_notification(device, datagram, now(), 300).map(|(server, _)| server)
    };

    let mut device = open();
    let captured = untimed("A", 5);
    assert_eq!(accept(&mut device, &captured).unwrap(), "A");
    for id in 1..=300 {
        assert_eq!(accept(&mut device, &untimed("B", id)).unwrap(), "B");
    }
    assert!(matches!(
        accept(&mut device, &captured),
        Err(Dropped::Duplicate(s, 5)) if s == "A"
    ));
    assert!(accept(&mut device, &untimed("A", 6)).is_ok());
    drop(device);

    // After a restart: still a replay; older than A's window is refused
    // too; a newer one passes.
    let mut device = open();
    assert!(matches!(
        accept(&mut device, &captured),
        Err(Dropped::Duplicate(s, 5)) if s == "A"
    ));
    assert!(accept(&mut device, &untimed("A", 200)).is_ok());
    let refused = accept(&mut device, &untimed("A", 100)).unwrap_err();
    assert!(
        matches!(refused, Dropped::TooOld(ref s, _) if s == "A"),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("NOTIFICATION-ID 100 older"),
        "{refused}"
    );
    assert!(matches!(
        accept(&mut device, &untimed("B", 300)),
        Err(Dropped::Duplicate(..))
    ));
    assert!(accept(&mut device, &untimed("B", 301)).is_ok());
}

/// 10,000 bad datagrams (malformed, forged, for no account) before the
/// valid one: the agent still runs its session, and stderr holds a line
/// per kind of drop, not one per datagram.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_datagrams_writes_a_few_lines() {
    use tokio::io::AsyncBufReadExt;
    let server = common::start_server(Vec::new()).await;
    let tmp = tempfile::tempdir().unwrap();
    let bootstrap = tmp.path().join("bootstrap.json");
    let item = common::dmacc_item("A", &server.dm_url(), &["*"]);
    std::fs::write(&bootstrap, serde_json::json!([item]).to_string()).unwrap();
    let port = free_udp_port();
    let mut child = tokio::process::Command::new(common::dmctl())
        .args(["client", "--once", "--dev-id", DEV_ID, "--notify-udp"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--state")
        .arg(tmp.path().join("state"))
        .arg("--bootstrap")
        .arg(&bootstrap)
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut lines = Vec::new();
    // The agent says when it listens.
    while let Some(line) = tokio::time::timeout(Duration::from_secs(20), stderr.next_line())
        .await
        .unwrap()
        .unwrap()
    {
        let listening = line.contains("waiting for DM Notifications");
        lines.push(line);
        if listening {
            break;
        }
    }
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let bad = [
        b"not a notification".to_vec(),
        signed(1, b"forged", now(), false),
        encode_signed(
            &Notification {
                server_id: Some("Z".into()),
                ..Notification::new()
            },
            b"secret",
            b"auth",
        )
        .unwrap(),
    ];
    for i in 0..10_000 {
        socket
            .send_to(&bad[i % bad.len()], ("127.0.0.1", port))
            .await
            .unwrap();
        if i % 100 == 99 {
            // Paced, so that the agent receives most of them.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "client did not finish");
        let _ = socket
            .send_to(&signed(7, b"secret", now(), false), ("127.0.0.1", port))
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    while let Some(line) = stderr.next_line().await.unwrap() {
        lines.push(line);
    }
    let all = lines.join("\n");
    assert_eq!(status.code(), Some(0), "{all}");
    assert_eq!(server.device(DEV_ID).unwrap().sessions, 1);
    let dropped = lines.iter().filter(|l| l.contains("dropped")).count();
    assert!(
        (3..=6).contains(&dropped),
        "{dropped} lines of drops:\n{all}"
    );
    assert!(lines.len() < 15, "{all}");
    assert!(all.contains("SERVER-ID `Z` names no account"), "{all}");
    server.shutdown().await;
}
