//! The firmware update of issue 18, end to end through `dmctl server` and
//! `dmctl client` as processes: the FUMO-style MO (mo-plugins/fumo) as an
//! isolated dylib plugin takes `DownloadAndUpdate` with a ServerURI, the
//! Package#3 says 202, the agent is killed (SIGKILL) between download and
//! install, and the next start installs the package and sends the
//! Generic Alert with the final status, which the server matches to the
//! EXEC.
#![allow(clippy::unwrap_used)]

mod common;
mod dmserver;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use dmserver::DmServer;
use serde_json::json;

const DEV: &str = "IMEI:490154203237518";
const FUMO: &str = "urn:oma:mo:oma-fumo:1.0";

fn client(
    state: &Path,
    boot: &Path,
    plugins: &Path,
    work: &Path,
    wait: &str,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(common::dmctl());
    cmd.args(["client", "--once", "--timeout", "10", "--dev-id", DEV])
        .arg("--state")
        .arg(state)
        .arg("--bootstrap")
        .arg(boot)
        .arg("--plugins")
        .arg(plugins)
        .args(["--exec-wait", wait])
        .env("DM_FUMO_DIR", work)
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

fn fumo_state(work: &Path) -> Option<i64> {
    let text = std::fs::read(work.join("progress.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&text).ok()?;
    v["state"].as_i64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firmware_update_survives_a_kill_and_reports_its_final_status() {
    let tmp = tempfile::tempdir().unwrap();
    let dmctl = common::dmctl();
    let s = DmServer::start(&dmctl, None).await;
    let plugins = common::plugins_in(tmp.path(), &["mo-fumo"]);
    let work = tmp.path().join("fumo");
    std::fs::create_dir_all(&work).unwrap();
    // The package, and a URL the device may GET it with (signed, 24 h).
    let (status, reply) = dmserver::http(
        &s.admin,
        "PUT",
        &format!("/api/devices/{DEV}/repository/fw.bin"),
        &[
            ("Content-Type", "application/octet-stream"),
            ("Authorization", s.auth().as_str()),
        ],
        b"firmware v2",
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
    let put: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    let pkg_url = put["download_url"].as_str().unwrap().to_owned();
    assert!(pkg_url.contains("sig="), "{pkg_url}");
    // The server writes PkgURL (HGET of a bare value), then runs the
    // update with a ServerURI: asynchronous reporting (5.4.1).
    let (status, _) = dmserver::http(
        &s.admin,
        "PUT",
        &format!("/api/devices/{DEV}/repository/pkgurl.txt"),
        &[
            ("Content-Type", "text/plain"),
            ("Authorization", s.auth().as_str()),
        ],
        pkg_url.as_bytes(),
    )
    .await;
    assert_eq!(status, 200);
    s.enqueue(
        DEV,
        json!([
            "HGET",
            "/repo/[DevID]/pkgurl.txt",
            format!("{FUMO}/fumo/DownloadAndUpdate/PkgURL")
        ]),
    )
    .await;
    let exec = s
        .enqueue(
            DEV,
            json!(["EXEC", format!("{FUMO}/fumo/DownloadAndUpdate"), "/dm"]),
        )
        .await;
    // The device holds a downloaded package until told (state 50).
    std::fs::write(work.join("hold-update"), b"").unwrap();
    let boot = common::bootstrap_file(tmp.path(), "A", &s.dm_url);
    let state = tmp.path().join("state");

    let mut first = client(&state, &boot, &plugins, &work, "60")
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while fumo_state(&work) != Some(50) {
        assert!(Instant::now() < deadline, "state {:?}", fumo_state(&work));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let result = s
        .ok(
            "GET",
            &format!("/api/devices/{DEV}/results/{exec}"),
            json!(null),
        )
        .await;
    assert_eq!(result["status"]["sc"], 202, "{result}");
    assert_eq!(result["state"], "async-pending", "{result}");
    // Killed between download and install: nothing is reported yet.
    first.start_kill().unwrap();
    let _ = first.wait().await;
    assert!(!work.join("firmware.bin").exists());

    // Started again, once the device may install: it goes on from where
    // it stood, and the alert carries the final status.
    std::fs::remove_file(work.join("hold-update")).unwrap();
    let out = client(&state, &boot, &plugins, &work, "60")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        std::fs::read(work.join("firmware.bin")).unwrap(),
        b"firmware v2"
    );
    assert_eq!(fumo_state(&work), Some(100), "Update Successful");
    let result = s
        .ok(
            "GET",
            &format!("/api/devices/{DEV}/results/{exec}"),
            json!(null),
        )
        .await;
    assert_eq!(result["async_status"], 200, "{result}");
    assert_eq!(result["state"], "done", "{result}");
    let alerts = s
        .ok("GET", &format!("/api/devices/{DEV}/alerts"), json!(null))
        .await
        .to_string();
    assert!(
        alerts.contains("urn:oma:at:fumo:1.0:OperationComplete"),
        "{alerts}"
    );
    assert!(alerts.contains("\"result\":200"), "{alerts}");
    s.stop().await;
}
