//! `dmctl server --db postgres://...` as a process: it refuses to start
//! without `--secrets-key`, serves a device session from a queue kept in
//! PostgreSQL, and a restart keeps what was queued and reported. Against
//! `DM_TEST_POSTGRES_URL` or a throwaway cluster (`dm_server::pg_test`);
//! skipped with one line when PostgreSQL is not installed, except under
//! `CI=true`.
#![allow(clippy::unwrap_used)]

mod common;
mod dmserver;

use std::path::Path;

use dmserver::{run_client, DmServer};
use serde_json::{json, Value};

const DEV: &str = "IMEI:490154203237519";
const DEVINFO: &str = "urn:oma:mo:oma-dm-devinfo:1.2";

async fn session(dmctl: &Path, dir: &Path, bootstrap: &Path) {
    let state = dir.join("state");
    let (code, stderr) = run_client(
        dmctl,
        &[
            "--once",
            "--dev-id",
            DEV,
            "--state",
            state.to_str().unwrap(),
            "--bootstrap",
            bootstrap.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
}

/// The device's entries as the admin API lists them: (state, data text).
async fn results(s: &DmServer) -> Vec<(String, Value)> {
    let listed = s
        .ok("GET", &format!("/api/devices/{DEV}/results"), Value::Null)
        .await;
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["state"].as_str().unwrap().to_owned(),
                r["data"]["text"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_serves_sessions_and_a_restart_keeps_the_queue() {
    let Some(pg) = dm_server::pg_test::TestPostgres::start() else {
        return;
    };
    let url = pg.database("e2e");
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("secrets.key");
    std::fs::write(&key, format!("{}\n", "3c".repeat(32))).unwrap();
    let key_args = ["--secrets-key", key.to_str().unwrap()];
    let dmctl = common::dmctl();

    // No key: a start error saying what to give, before anything listens.
    let out = tokio::process::Command::new(&dmctl)
        .args(["server", "--listen", "127.0.0.1:0", "--db", &url])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--secrets-key"), "{stderr}");

    let s = DmServer::start_with(&dmctl, Some(Path::new(&url)), &key_args).await;
    let bootstrap = common::bootstrap_file(tmp.path(), "A", &s.dm_url);
    s.enqueue(DEV, json!(["GET", format!("{DEVINFO}//DevID")]))
        .await;
    session(&dmctl, tmp.path(), &bootstrap).await;
    let first = results(&s).await;
    assert_eq!(first, [("done".to_owned(), json!(DEV))]);
    // Queued now, delivered only after the restart.
    s.enqueue(DEV, json!(["GET", format!("{DEVINFO}//Man")]))
        .await;
    s.stop().await;

    let s = DmServer::start_with(&dmctl, Some(Path::new(&url)), &key_args).await;
    let kept = results(&s).await;
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(kept[0], first[0]);
    assert_eq!(kept[1].0, "queued");
    // The device's server URL is the new instance's: same database.
    let bootstrap = common::bootstrap_file(tmp.path(), "A", &s.dm_url);
    std::fs::remove_dir_all(tmp.path().join("state")).unwrap();
    session(&dmctl, tmp.path(), &bootstrap).await;
    let after = results(&s).await;
    assert_eq!(after[1].0, "done", "{after:?}");
    assert!(after[1].1.is_string(), "{after:?}");
    let dev = s
        .ok("GET", &format!("/api/devices/{DEV}"), Value::Null)
        .await;
    assert_eq!(dev["sessions"], 2, "{dev}");
    s.stop().await;
}
