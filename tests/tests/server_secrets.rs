//! Issue 19 item 8, secrets at rest: `dmctl server --db` keeps the
//! devices' notification secrets sealed with its secrets key.
#![allow(clippy::unwrap_used)]

mod common;
mod dmserver;

use std::time::Duration;

use dmserver::DmServer;
use serde_json::{json, Value};

const DEV: &str = "IMEI:490154203237518";

/// Every file SQLite keeps for `db` (the database, its WAL and index) and
/// the key beside it.
fn database_bytes(db: &std::path::Path) -> Vec<u8> {
    let name = db.file_name().unwrap().to_str().unwrap().to_owned();
    let mut all = Vec::new();
    for entry in std::fs::read_dir(db.parent().unwrap()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_str().unwrap().starts_with(&name) {
            all.extend(std::fs::read(entry.path()).unwrap());
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Issue 19 item 8: a device's notification secret, which the server must
/// use in the clear to sign Package#0 (spec 5.2.1), is sealed in the
/// database with the key made beside it at first start (`<db>.key`, 0600);
/// it is never returned, and the server does not start with another key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_secrets_are_sealed_in_the_database() {
    const SECRET: &[u8] = b"Zq7-noti-secret-Zq7";
    const SECRET_B64: &str = "WnE3LW5vdGktc2VjcmV0LVpxNw==";
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("server.sqlite");
    let key = tmp.path().join("server.sqlite.key");
    let dmctl = common::dmctl();
    let s = DmServer::start(&dmctl, Some(&db)).await;
    s.ok(
        "PUT",
        &format!("/api/devices/{DEV}/notification"),
        json!({"server_id": "A", "secret": SECRET_B64, "auth_data": "YXV0aA=="}),
    )
    .await;
    let device = s
        .ok("GET", &format!("/api/devices/{DEV}"), Value::Null)
        .await;
    assert_eq!(device["notification"]["signed"], true, "{device}");
    assert!(!device.to_string().contains(SECRET_B64), "{device}");
    // Stored (the WAL holds it while the server runs), yet not in the clear.
    assert!(!contains(&database_bytes(&db), SECRET));
    assert!(!s.log.lock().unwrap().iter().any(|l| l.contains(SECRET_B64)));
    s.stop().await;
    assert!(!contains(&database_bytes(&db), SECRET));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // Another key: a start error naming it, not a server that cannot sign.
    let other = tmp.path().join("other.key");
    std::fs::write(&other, [0x5au8; 32]).unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(&dmctl)
            .args(["server", "--listen", "127.0.0.1:0", "--db"])
            .arg(&db)
            .arg("--secrets-key")
            .arg(&other)
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("other.key"), "{stderr}");

    // The key beside the database still opens it: the failed start
    // changed nothing.
    let s = DmServer::start(&dmctl, Some(&db)).await;
    let device = s
        .ok("GET", &format!("/api/devices/{DEV}"), Value::Null)
        .await;
    assert_eq!(device["notification"]["signed"], true, "{device}");
    s.stop().await;
}
