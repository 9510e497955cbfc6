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
