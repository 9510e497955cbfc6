//! A DevInfo session end to end: the reference server asks, the device
//! answers from the MO generated out of ddf/devinfo.ddf, over loopback.
// Test helpers may panic on their own setup failures.
#![allow(clippy::unwrap_used)]

mod common;

use common::get;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command as Process;

use dm_agent::{standard_registry, Device, DeviceConfig, Initiation, SessionError};
use dm_core::package::alert_type;
use dm_core::{Command, MoDataItem, StatusCode};
use dm_server::{self as server, ServerConfig, ServerHandle};

const DEV_ID: &str = "IMEI:493005100592800";

async fn server_with(commands: Vec<Command>) -> ServerHandle {
    server::start(ServerConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        default_commands: commands,
        log_errors: false,
    })
    .await
    .unwrap()
}

fn device() -> Device {
    Device::new(DeviceConfig::new(DEV_ID), standard_registry(DEV_ID))
}

#[tokio::test]
async fn server_reads_devinfo_from_the_device() {
    let server = server_with(vec![
        get("urn:oma:mo:oma-dm-devinfo:1.2//"),
        get("urn:oma:mo:oma-dm-devinfo:1.2//DevID"),
        get("urn:oma:mo:oma-dm-devinfo:1.2//NoSuchNode"),
    ])
    .await;
    let report = device()
        .run_session(&server.dm_url(), Initiation::ClientInitiated, true)
        .await
        .unwrap();
    assert_eq!(report.packages, 2, "one Package#2 of GETs, then END");

    let rec = server.device(DEV_ID).unwrap();
    assert_eq!((rec.sessions, rec.ended), (1, 1));
    assert_eq!(rec.alerts[0].alert_type, alert_type::CLIENT_INITIATED_MGMT);
    let mos = rec.mos.unwrap();
    assert_eq!(
        mos[0].moid.as_deref(),
        Some("urn:oma:mo:oma-dm-devinfo:1.2")
    );

    let codes: Vec<StatusCode> = rec.results.iter().map(|r| r.status.code).collect();
    assert_eq!(
        codes,
        [StatusCode::OK, StatusCode::OK, StatusCode::NOT_FOUND]
    );

    // The whole instance as MO serialization (7.2.1.4), named by its MIID.
    let part = rec.results[0].data.as_ref().unwrap();
    assert_eq!(part.content_type, "application/dmmo+json");
    let items = MoDataItem::parse_list(&part.body).unwrap();
    assert_eq!(
        items[0].client_uri,
        "urn:oma:mo:oma-dm-devinfo:1.2/devinfo/"
    );
    let devinfo = &items[0].mo_data["devinfo"];
    assert_eq!(devinfo["DevID"], DEV_ID);
    assert_eq!(devinfo["DmV"], "2.0");
    for leaf in ["Man", "Mod", "Lang", "DevType", "OEM", "FwV", "SwV", "HwV"] {
        assert!(devinfo[leaf].is_string(), "{leaf} missing in {devinfo}");
    }

    // A single leaf as its bare value (Appendix F).
    let part = rec.results[1].data.as_ref().unwrap();
    assert_eq!(
        (part.content_type.as_str(), part.body.as_slice()),
        ("text/plain", DEV_ID.as_bytes())
    );
    assert!(rec.results[2].data.is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_package2_aborts_the_session() {
    let addr = common::canned_server(common::package2_response("{\"CMD\": [[\"GET\",")).await;
    let err = device()
        .run_session(
            &format!("http://{addr}/dm"),
            Initiation::ClientInitiated,
            false,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SessionError::BadPackage { .. }), "{err}");
    assert!(err.to_string().contains("malformed Package#2"), "{err}");
}

#[tokio::test]
async fn http_error_aborts_the_session_without_retry() {
    let addr = common::canned_server(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
    )
    .await;
    let err = device()
        .run_session(
            &format!("http://{addr}/dm"),
            Initiation::ClientInitiated,
            false,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, SessionError::HttpStatus { status: 503, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn unknown_and_malformed_commands_get_their_statuses_in_order() {
    let body = r#"{"CMD": [["FROB"], ["GET", "not a uri"], ["GET", "urn:oma:mo:oma-dm-devinfo:1.2//Lang"], ["END"]]}"#;
    let addr = common::canned_server(common::package2_response(body)).await;
    let report = device()
        .run_session(
            &format!("http://{addr}/dm"),
            Initiation::ClientInitiated,
            false,
        )
        .await
        .unwrap();
    let codes: Vec<u16> = report.commands.iter().map(|(_, c)| c.as_u16()).collect();
    assert_eq!(codes, [501, 400, 200, 200]);
}

#[tokio::test]
async fn dmctl_client_runs_bootstrap_complete_then_client_initiated() {
    let server = server_with(vec![get("urn:oma:mo:oma-dm-devinfo:1.2//DevID")]).await;
    let tmp = tempfile::tempdir().unwrap();
    let bootstrap = common::bootstrap_file(tmp.path(), "ref-server", &server.dm_url());
    let state = tmp.path().join("state");
    for _ in 0..2 {
        // Async, so that the in-process server keeps serving meanwhile.
        let out = tokio::process::Command::new(common::dmctl())
            .args(["client", "--once", "--dev-id", DEV_ID, "--state"])
            .arg(&state)
            .arg("--bootstrap")
            .arg(&bootstrap)
            .output()
            .await
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rec = server.device(DEV_ID).unwrap();
    let alerts: Vec<&str> = rec.alerts.iter().map(|a| a.alert_type.as_str()).collect();
    // The bootstrap is applied again on the second start but changes nothing.
    assert_eq!(
        alerts,
        [
            alert_type::BOOTSTRAP_COMPLETE,
            alert_type::CLIENT_INITIATED_MGMT
        ]
    );
    assert_eq!(rec.results.len(), 2);
    assert_eq!(
        rec.results[1].data.as_ref().unwrap().body,
        DEV_ID.as_bytes()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn dmctl_client_exits_3_on_a_malformed_package2() {
    let addr = common::canned_server(common::package2_response("[1, 2")).await;
    let tmp = tempfile::tempdir().unwrap();
    let bootstrap = common::bootstrap_file(tmp.path(), "bad", &format!("http://{addr}/dm"));
    let out = tokio::process::Command::new(common::dmctl())
        .args(["client", "--once", "--state"])
        .arg(tmp.path().join("state"))
        .arg("--bootstrap")
        .arg(&bootstrap)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("malformed Package#2"), "{stderr}");
}

#[test]
fn dmctl_client_exits_2_on_bad_usage_and_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let no_state = Process::new(common::dmctl())
        .args(["client", "--once"])
        .output()
        .unwrap();
    assert_eq!(no_state.status.code(), Some(2));
    let no_account = Process::new(common::dmctl())
        .args(["client", "--once", "--state"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(no_account.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_account.stderr).contains("no DM Server account"));
    let bad_bootstrap = tmp.path().join("b.json");
    std::fs::write(&bad_bootstrap, "{").unwrap();
    let out = Process::new(common::dmctl())
        .args(["client", "--once", "--state"])
        .arg(tmp.path())
        .arg("--bootstrap")
        .arg(&bad_bootstrap)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("b.json"));
}

#[test]
fn dmctl_demo_prints_a_transcript_and_exits_0() {
    let out = Process::new(common::dmctl()).arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "Content-Type: application/vnd.oma.dm.initiation+json",
        "OMADM-DevID: UUID:",
        "multipart/form-data; boundary=",
        "\"END\"",
        "3 session(s), 3 ended with END",
        "404 Not Found",
        "SHOW page answered: confirm",
        "Repository got backup-name by PUT",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    // The summary: command -> status, every command of the session.
    let summary = &stdout[stdout.find("Summary").expect("a summary")..];
    let statuses: Vec<String> = summary
        .lines()
        .filter(|l| l.starts_with("  ") && l.trim_start().starts_with(char::is_numeric))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let code = words
                .iter()
                .find(|w| w.len() == 3 && w.parse::<u16>().is_ok())
                .copied()
                .unwrap_or("-");
            format!("{} {code}", words[1])
        })
        .collect();
    assert_eq!(
        statuses,
        [
            "GET 200",
            "GET 200",
            "GET 404",
            "HGET 200",
            "HGET 200",
            "HPUT 200",
            "HPOST 200",
            "EXEC 200",
            "EXEC 202",
            "HGET 200",
            "EXEC 202",
            "SHOW 200",
            "DEFAULT 200",
            "SUB 200",
            "HGET 200",
            "UNSUB 200",
            "CONT 200",
            "DELETE 200",
            "END -",
            "GET 200"
        ],
        "{summary}"
    );
    assert!(
        summary.contains("202 Accepted, then 200 OK (Generic Alert)"),
        "{summary}"
    );
}
