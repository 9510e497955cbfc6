//! MO plugins loaded from dylibs (ABI 2): refused ones are named, the rest
//! serve GET and EXEC from a host process of their own, a panic in a
//! plugin is a 500, and a plugin that crashes, aborts, hangs or answers
//! garbage costs its own nodes a 500 while the agent and a good plugin
//! beside it go on. EXECs finished later and changes reported from a
//! plugin's own threads reach the agent.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::uri;

use dm_agent::plugins::{load_dir, Plugin, PluginError, PluginInstance};
use dm_agent::{service as agent, standard_registry, Device, DeviceConfig, Initiation, Registry};
use dm_core::{Command, ExecRequest, ManagementObject, ServerUri, StatusCode};

const DEV_ID: &str = "IMEI:356938035643809";
const DCMO: &str = "urn:oma:mo:oma-dcmo:1.0";

fn registry_with(crates: &[&str]) -> (tempfile::TempDir, Registry) {
    registry_with_trusted(crates, &[])
}

/// As [`registry_with`], the plugins of `trusted` marked trusted
/// (loaded into this process).
fn registry_with_trusted(crates: &[&str], trusted: &[&str]) -> (tempfile::TempDir, Registry) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::plugins_in(tmp.path(), crates);
    for c in trusted {
        let file = dir.join(common::plugin_file(c).file_name().unwrap());
        let marker = dm_agent::plugins::trusted_marker(&file);
        std::fs::write(&marker, b"").unwrap();
        std::fs::set_permissions(&marker, PermissionsExt::from_mode(0o644)).unwrap();
    }
    let mut registry = standard_registry(DEV_ID);
    let errors = agent::register_plugins(&mut registry, &dir, &common::plugin_options());
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
        &["mo-dcmo", "plugin-crash", "plugin-abi1", "plugin-dup"],
    );
    std::fs::write(dir.join("garbage.so"), b"not an ELF file").unwrap();
    std::fs::set_permissions(dir.join("garbage.so"), PermissionsExt::from_mode(0o644)).unwrap();
    let libm = libm();
    if let Some(libm) = &libm {
        let dst = dir.join("libnotaplugin.so");
        std::fs::copy(libm, &dst).unwrap();
        std::fs::set_permissions(&dst, PermissionsExt::from_mode(0o755)).unwrap();
    }
    let (plugins, errors) = load_dir(&dir, &[], &common::plugin_options());
    let moids: Vec<&str> = plugins.iter().map(|p| p.moid.as_str()).collect();
    // DCMO is claimed twice (mo-dcmo and plugin-dup): neither is loaded,
    // whatever the order of their file names.
    assert_eq!(moids, ["urn:example:mo:crash:1.0"]);
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        errors
            .iter()
            .any(|e| matches!(e, PluginError::AbiMismatch { found: 1, path } if path.ends_with("libplugin_abi1.so"))),
        "{shown:?}"
    );
    assert!(
        shown
            .iter()
            .any(|e| e.contains("plugin ABI 1.x, this device speaks 2.x")),
        "{shown:?}"
    );
    let dup = errors
        .iter()
        .find_map(|e| match e {
            PluginError::DuplicateMoid { moid, paths } if moid == DCMO => Some(paths),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{shown:?}"));
    assert_eq!(
        dup,
        &[dir.join("libmo_dcmo.so"), dir.join("libplugin_dup.so")],
        "both named"
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
    // The version information of the table is read (in the host process).
    let crash = &plugins[0];
    assert!(crash.is_isolated(), "isolated by default");
    assert_eq!(crash.core_version, dm_core::plugin::CORE_VERSION);
    assert!(
        crash.rustc_version.starts_with("rustc "),
        "{}",
        crash.rustc_version
    );
}

#[test]
fn a_plugin_marked_trusted_is_loaded_in_process() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::plugins_in(tmp.path(), &["plugin-crash", "mo-dcmo"]);
    let marker = dm_agent::plugins::trusted_marker(&dir.join("libmo_dcmo.so"));
    std::fs::write(&marker, b"").unwrap();
    std::fs::set_permissions(&marker, PermissionsExt::from_mode(0o644)).unwrap();
    let (plugins, errors) = load_dir(&dir, &[], &common::plugin_options());
    assert!(errors.is_empty(), "{errors:?}");
    let isolated: Vec<(&str, bool)> = plugins
        .iter()
        .map(|p| (p.moid.as_str(), p.is_isolated()))
        .collect();
    assert_eq!(
        isolated,
        [(DCMO, false), ("urn:example:mo:crash:1.0", true)]
    );
}

#[test]
fn plugin_files_and_folders_writable_by_others_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::plugins_in(tmp.path(), &["plugin-crash", "mo-dcmo"]);
    let file = dir.join("libmo_dcmo.so");
    std::fs::set_permissions(&file, PermissionsExt::from_mode(0o775)).unwrap();
    let (plugins, errors) = load_dir(&dir, &[], &common::plugin_options());
    let moids: Vec<&str> = plugins.iter().map(|p| p.moid.as_str()).collect();
    assert_eq!(moids, ["urn:example:mo:crash:1.0"], "the rest loads");
    assert!(
        matches!(&errors[..], [PluginError::Insecure { path, mode: 0o775 }] if *path == file),
        "{errors:?}"
    );
    assert!(errors[0]
        .to_string()
        .contains("writable by group or others"));

    // A folder others may write loads nothing at all.
    std::fs::set_permissions(&file, PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&dir, PermissionsExt::from_mode(0o777)).unwrap();
    let (plugins, errors) = load_dir(&dir, &[], &common::plugin_options());
    assert!(plugins.is_empty());
    assert!(
        matches!(&errors[..], [PluginError::Insecure { path, .. }] if *path == dir),
        "{errors:?}"
    );
}

/// Waits until the watchdog has the plugin's host up again.
fn wait_up(plugin: &Plugin) {
    let start = Instant::now();
    while !plugin.is_up() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the watchdog did not restart the host"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn evil_and_good() -> (
    tempfile::TempDir,
    Arc<Plugin>,
    PluginInstance,
    PluginInstance,
) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::plugins_in(tmp.path(), &["plugin-evil", "mo-dcmo"]);
    let (plugins, errors) = load_dir(&dir, &[], &common::plugin_options());
    assert!(errors.is_empty(), "{errors:?}");
    let evil = plugins
        .iter()
        .find(|p| p.moid == "urn:example:mo:evil:1.0")
        .unwrap()
        .clone();
    let good = plugins.iter().find(|p| p.moid == DCMO).unwrap().clone();
    let e1 = PluginInstance::new(evil.clone(), "e1");
    let camera = PluginInstance::new(good, "Camera");
    (tmp, evil, e1, camera)
}

fn int(v: Result<dm_core::NodeData, dm_core::MoError>) -> i64 {
    match v.unwrap() {
        dm_core::NodeData::Leaf(dm_core::Value::Int(i)) => i,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_plugin_that_returns_garbage_or_crashes_costs_only_its_own_nodes() {
    let (_tmp, evil, e1, camera) = evil_and_good();
    assert_eq!(int(e1.get(&["Ok"])), 1);
    // In this very process: had any of these been loaded here, the test
    // would have died with it.
    for (node, kills_host) in [("Null", false), ("Huge", false), ("BadPtr", true)] {
        let restarts = evil.restarts();
        let err = e1.get(&[node]).unwrap_err();
        assert_eq!(err.status(), StatusCode::INTERNAL_ERROR, "{node}: {err}");
        assert!(
            camera.get(&["Enabled"]).is_ok(),
            "{node}: the good plugin answers"
        );
        wait_up(&evil);
        assert_eq!(int(e1.get(&["Ok"])), 1, "{node}: the plugin serves again");
        assert_eq!(
            evil.restarts() - restarts,
            u64::from(kills_host),
            "{node}: a null buffer or a huge length is refused in the host, a bad pointer ends it"
        );
    }
}

#[test]
fn the_watchdog_restarts_a_host_that_aborts() {
    let (_tmp, evil, mut e1, camera) = evil_and_good();
    let err = e1.exec(&["Abort"], &ExecRequest::default()).unwrap_err();
    assert_eq!(err.status(), StatusCode::INTERNAL_ERROR, "{err}");
    // Down until the watchdog has it back: 500, not a wait.
    assert!(camera.get(&["Enabled"]).is_ok());
    wait_up(&evil);
    assert_eq!(evil.restarts(), 1);
    assert_eq!(int(e1.get(&["Ok"])), 1);
}

#[tokio::test]
async fn a_hanging_plugin_costs_the_session_one_timeout_and_a_500() {
    let (_tmp, registry) = registry_with(&["plugin-evil", "mo-dcmo"]);
    let server = common::start_server(Vec::new()).await;
    for c in [
        Command::Get {
            client_uri: uri("urn:example:mo:evil:1.0/e1/Hang"),
        },
        Command::Get {
            client_uri: uri("urn:oma:mo:oma-dcmo:1.0/Camera/Enabled"),
        },
    ] {
        server.enqueue(DEV_ID, c);
    }
    let mut device = Device::new(DeviceConfig::new(DEV_ID), registry);
    let start = Instant::now();
    device
        .run_session(&server.dm_url(), Initiation::ClientInitiated, false)
        .await
        .unwrap();
    let took = start.elapsed();
    let timeout = common::plugin_options().call_timeout;
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(5),
        "{took:?}"
    );
    let rec = server.device(DEV_ID).unwrap();
    let codes: Vec<StatusCode> = rec.results.iter().map(|r| r.status.code).collect();
    assert_eq!(codes, [StatusCode::INTERNAL_ERROR, StatusCode::OK]);
    server.shutdown().await;
}

const LATER: &str = "urn:example:mo:later:1.0";

/// The `sc` of the Generic Alerts the server got from `node`.
fn alert_codes(server: &dm_server::ServerHandle, node: &str) -> Vec<serde_json::Value> {
    let source = format!("{LATER}/l1/{node}");
    server
        .device(DEV_ID)
        .map(|d| {
            d.alerts
                .iter()
                .filter(|a| a.source_uri.as_deref() == Some(source.as_str()))
                .map(|a| a.data.clone().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_exec_finished_from_its_own_thread_reaches_the_server_as_a_generic_alert() {
    exec_finished_later(&[]).await;
}

/// The same through the ABI's report callback in this process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_plugin_exec_finished_from_its_own_thread_reaches_the_server_too() {
    exec_finished_later(&["plugin-later"]).await;
}

async fn exec_finished_later(trusted: &[&str]) {
    let (_tmp, registry) = registry_with_trusted(&["plugin-later"], trusted);
    let server = common::start_server(Vec::new()).await;
    let mut config = DeviceConfig::new(DEV_ID);
    config.limits.exec_timeout = Duration::from_secs(2);
    let mut device = Device::new(config, registry);
    let bootstrap = serde_json::json!([common::dmacc_item("A", &server.dm_url(), &["*"])]);
    dm_agent::bootstrap::apply(
        &mut device,
        bootstrap.to_string().as_bytes(),
        dm_agent::bootstrap::Source::Factory,
    )
    .unwrap();
    device.sync_access_control();
    device.resume();
    for node in ["Run", "PanicLater"] {
        server.enqueue(
            DEV_ID,
            Command::Exec {
                client_uri: uri(&format!("{LATER}/l1/{node}")),
                server_uri: Some(ServerUri::new(server.dm_url())),
            },
        );
    }
    // A subscriber to Count (5.3.11), for the change reported below.
    server.enqueue(
        DEV_ID,
        Command::Sub {
            client_uri: uri(&format!("{LATER}/l1/Count")),
            server_uri: ServerUri::new(format!("{}/repo/{DEV_ID}/count", server.base_url())),
        },
    );
    device
        .run_session_as("A", Initiation::ClientInitiated, false, Vec::new())
        .await
        .unwrap();
    let codes: Vec<StatusCode> = server
        .device(DEV_ID)
        .unwrap()
        .results
        .iter()
        .map(|r| r.status.code)
        .collect();
    assert_eq!(
        codes,
        [StatusCode::ACCEPTED, StatusCode::ACCEPTED, StatusCode::OK]
    );
    assert!(alert_codes(&server, "Run").is_empty(), "not before the end");
    agent::deliver_reports(&mut device, Some(Duration::from_secs(10))).await;
    let run = alert_codes(&server, "Run");
    assert_eq!(run.len(), 1, "{run:?}");
    assert_eq!(run[0]["sc"], 200, "the final status, not 202: {run:?}");
    assert_eq!(run[0]["data"], "finished later");
    // The plugin's thread panicked instead of finishing: the EXEC ends at
    // its deadline, the agent goes on.
    let panicked = alert_codes(&server, "PanicLater");
    assert_eq!(panicked.len(), 1, "{panicked:?}");
    assert_eq!(panicked[0]["sc"], 500);
    assert_eq!(device.pending_exec_count(), 0);

    // A change reported from the plugin's own thread changes the cache
    // validator.
    let index = device.registry().find(LATER, "l1").unwrap();
    device
        .registry_mut()
        .mo_mut(index)
        .unwrap()
        .exec(&["Bump"], &ExecRequest::default())
        .unwrap();
    let before = device
        .registry()
        .instance(index)
        .unwrap()
        .cache_validator()
        .clone();
    let start = Instant::now();
    loop {
        device.take_inbox();
        let now = device
            .registry()
            .instance(index)
            .unwrap()
            .cache_validator()
            .clone();
        if now != before {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the change never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ...and reaches the subscriber, with the new value.
    assert!(server
        .storage()
        .resource(DEV_ID, "count")
        .unwrap()
        .is_none());
    agent::deliver_reports(&mut device, None).await;
    let sent = server
        .storage()
        .resource(DEV_ID, "count")
        .unwrap()
        .expect("the subscriber got its HPUT");
    assert!(
        String::from_utf8_lossy(&sent.body).contains('1'),
        "{sent:?}"
    );
    server.shutdown().await;
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
    let plugins = common::plugins_in(tmp.path(), &["mo-dcmo", "plugin-abi1"]);
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
        stderr.contains("ABI 1.x") && stderr.contains("libplugin_abi1.so"),
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
