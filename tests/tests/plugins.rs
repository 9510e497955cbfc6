//! MO plugins loaded from dylibs: refused ones are named, the rest serve
//! GET and EXEC through the C ABI, and a panic in a plugin is a 500.
#![allow(clippy::unwrap_used)]

mod common;

use common::uri;

use dm_agent::plugins::{load_dir, PluginError};
use dm_agent::{service as agent, standard_registry, Device, DeviceConfig, Initiation, Registry};
use dm_core::{Command, ServerUri, StatusCode};

const DEV_ID: &str = "IMEI:356938035643809";
const DCMO: &str = "urn:oma:mo:oma-dcmo:1.0";

fn registry_with(crates: &[&str]) -> (tempfile::TempDir, Registry) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::plugins_in(tmp.path(), crates);
    let mut registry = standard_registry(DEV_ID);
    let errors = agent::register_plugins(&mut registry, &dir);
    assert!(errors.is_empty(), "{errors:?}");
    (tmp, registry)
}

/// A library that is certainly not an MO plugin: the C math library.
fn libm() -> Option<std::path::PathBuf> {
    [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "/lib64/libm.so.6",
        "/usr/lib/libm.so.6",
        "/lib/aarch64-linux-gnu/libm.so.6",
    ]
    .iter()
    .map(std::path::PathBuf::from)
    .find(|p| p.exists())
}

#[test]
fn loader_refuses_what_it_does_not_know_and_keeps_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::plugins_in(
        tmp.path(),
        &["mo-dcmo", "plugin-crash", "plugin-abi2", "plugin-dup"],
    );
    std::fs::write(dir.join("garbage.so"), b"not an ELF file").unwrap();
    let libm = libm();
    if let Some(libm) = &libm {
        std::fs::copy(libm, dir.join("libnotaplugin.so")).unwrap();
    }
    let (plugins, errors) = load_dir(&dir, &[]);
    let mut moids: Vec<&str> = plugins.iter().map(|p| p.moid.as_str()).collect();
    moids.sort();
    assert_eq!(moids, ["urn:example:mo:crash:1.0", DCMO]);
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        errors
            .iter()
            .any(|e| matches!(e, PluginError::AbiMismatch { found: 2, .. })),
        "{shown:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| matches!(e, PluginError::DuplicateMoid { moid, .. } if moid == DCMO)),
        "{shown:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| matches!(e, PluginError::Load { path, .. } if path.ends_with("garbage.so"))),
        "{shown:?}"
    );
    if libm.is_some() {
        assert!(
            errors
                .iter()
                .any(|e| matches!(e, PluginError::NotAPlugin { .. })),
            "{shown:?}"
        );
    }
    for e in &shown {
        assert!(
            e.contains(&dir.display().to_string()),
            "error names the file: {e}"
        );
    }
    // The version information of the table is read.
    let dcmo = plugins.iter().find(|p| p.moid == DCMO).unwrap();
    assert_eq!(dcmo.core_version, dm_core::plugin::CORE_VERSION);
    assert!(
        dcmo.rustc_version.starts_with("rustc "),
        "{}",
        dcmo.rustc_version
    );
}

#[tokio::test]
async fn get_and_exec_reach_the_dcmo_plugin_through_the_c_abi() {
    let (_tmp, registry) = registry_with(&["mo-dcmo"]);
    let server = common::start_server(Vec::new()).await;
    for c in [
        Command::Get {
            client_uri: uri("urn:oma:mo:oma-dcmo:1.0/Camera/Enabled"),
        },
        Command::Exec {
            client_uri: uri(
                "urn:oma:mo:oma-dcmo:1.0/(x)/Operations/Disable?nv=(x)/Property:Camera",
            ),
            server_uri: None,
        },
        Command::Get {
            client_uri: uri("urn:oma:mo:oma-dcmo:1.0/Camera/Enabled"),
        },
        Command::Get {
            client_uri: uri("urn:oma:mo:oma-dcmo:1.0/*/Property"),
        },
        Command::Exec {
            client_uri: uri("urn:oma:mo:oma-dcmo:1.0/USB/Enabled"),
            server_uri: None,
        },
    ] {
        server.enqueue(DEV_ID, c);
    }
    let mut device = Device::new(DeviceConfig::new(DEV_ID), registry);
    device
        .run_session(&server.dm_url(), Initiation::ClientInitiated, true)
        .await
        .unwrap();
    let rec = server.device(DEV_ID).unwrap();
    let mos = rec.mos.unwrap();
    let dcmo = mos
        .iter()
        .find(|m| m.moid.as_deref() == Some(DCMO))
        .expect("DCMO in MOS");
    assert_eq!(dcmo.miids, ["Camera", "USB"]);
    let codes: Vec<u16> = rec.results.iter().map(|r| r.status.code.as_u16()).collect();
    assert_eq!(
        codes,
        [200, 200, 200, 200, 405],
        "EXEC on a node without Exec is 405"
    );
    assert_eq!(rec.results[0].data.as_ref().unwrap().body, b"true");
    assert_eq!(rec.results[2].data.as_ref().unwrap().body, b"false");
    let both = String::from_utf8(rec.results[3].data.as_ref().unwrap().body.clone()).unwrap();
    assert!(
        both.contains("\"Camera\"") && both.contains("\"USB\""),
        "{both}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_panicking_plugin_answers_500_and_keeps_serving() {
    let (_tmp, registry) = registry_with(&["plugin-crash"]);
    let server = common::start_server(Vec::new()).await;
    for c in [
        Command::Exec {
            client_uri: uri("urn:example:mo:crash:1.0//Boom"),
            server_uri: None,
        },
        Command::Exec {
            client_uri: uri("urn:example:mo:crash:1.0//Tick"),
            server_uri: None,
        },
        Command::Get {
            client_uri: uri("urn:example:mo:crash:1.0//Count"),
        },
    ] {
        server.enqueue(DEV_ID, c);
    }
    let mut device = Device::new(DeviceConfig::new(DEV_ID), registry);
    device
        .run_session(&server.dm_url(), Initiation::ClientInitiated, false)
        .await
        .unwrap();
    let rec = server.device(DEV_ID).unwrap();
    let codes: Vec<StatusCode> = rec.results.iter().map(|r| r.status.code).collect();
    assert_eq!(
        codes,
        [StatusCode::INTERNAL_ERROR, StatusCode::OK, StatusCode::OK]
    );
    assert_eq!(rec.results[2].data.as_ref().unwrap().body, b"1");
    server.shutdown().await;
}

#[tokio::test]
async fn dmctl_client_loads_plugins_and_reports_async_exec_in_a_new_session() {
    let server = common::start_server(Vec::new()).await;
    let tmp = tempfile::tempdir().unwrap();
    let plugins = common::plugins_in(tmp.path(), &["mo-dcmo", "plugin-abi2"]);
    let bootstrap = common::bootstrap_file(tmp.path(), "srv", &server.dm_url());
    server.enqueue(
        DEV_ID,
        Command::Exec {
            client_uri: uri("urn:oma:mo:oma-dcmo:1.0/USB/Operations/Disable"),
            server_uri: Some(ServerUri::new(server.dm_url())),
        },
    );
    let out = tokio::process::Command::new(common::dmctl())
        .args(["client", "--once", "--dev-id", DEV_ID, "--state"])
        .arg(tmp.path().join("state"))
        .arg("--bootstrap")
        .arg(&bootstrap)
        .arg("--plugins")
        .arg(&plugins)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("ABI 2.x"),
        "the refused plugin is named: {stderr}"
    );
    let rec = server.device(DEV_ID).unwrap();
    assert_eq!(
        rec.sessions, 2,
        "the session, then one to deliver the alert"
    );
    assert_eq!(rec.results[0].status.code, StatusCode::ACCEPTED);
    let mos = rec.mos.unwrap();
    assert!(
        mos.iter().any(|m| m.moid.as_deref() == Some(DCMO)),
        "{mos:?}"
    );
    let alert = rec
        .alerts
        .iter()
        .find(|a| a.alert_type == "urn:oma:at:dcmo:1.0:OperationComplete")
        .expect("alert");
    assert_eq!(
        alert.source_uri.as_deref(),
        Some("urn:oma:mo:oma-dcmo:1.0/USB/Operations/Disable")
    );
    assert_eq!(alert.data.as_ref().unwrap()["sc"], 200);
    server.shutdown().await;
}
