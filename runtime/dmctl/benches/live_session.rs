//! Sessions of 100 GETs of one MO's leaf (issue 18, "How we will judge
//! it"): the battery of docs/mo-author-guide.md (mo-plugins/battery), its
//! stored leaf (LowAlarm) and its live leaf (Level, read from a file at
//! every GET) compiled in, then the live leaf through the plugin ABI in
//! the agent's own process (a trusted plugin) and isolated in a plugin
//! host process. Each round is one client-initiated session with an
//! in-process DM Server on loopback.
//!
//! Run: `cargo bench -p dmctl --bench live_session` (builds the battery's
//! dylib in release first).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Instant;

use dm_agent::plugins::PluginOptions;
use dm_agent::{standard_registry, Device, DeviceConfig, Initiation};
use dm_core::Command;
use dm_server::{self as server, ServerConfig, ServerHandle};

const DEV_ID: &str = "IMEI:490154203237518";
const BATTERY: &str = "urn:omadm-rs:mo:battery:1.0";
const ROUNDS: usize = 300;
const WARM_UP: usize = 20;
const GETS: usize = 100;

/// The battery's dylib, built in release by cargo (once).
fn battery_dylib() -> PathBuf {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["build", "--release", "-p", "mo-battery"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("cargo: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // target/release/deps/live_session-<hash> -> target/release
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("target dir"))
        .to_owned();
    dir.join(format!(
        "{}mo_battery{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

/// The battery's device files.
fn battery_dir(root: &Path) -> PathBuf {
    let dir = root.join("bat0");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("capacity"), "81\n").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("status"), "Discharging\n").unwrap_or_else(|e| panic!("{e}"));
    dir
}

/// How the device holds the battery.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hosting {
    CompiledIn,
    InProcessDylib,
    Isolated,
}

fn device(server: &ServerHandle, root: &Path, hosting: Hosting, plugin: &Path) -> Device {
    let mut registry = standard_registry(DEV_ID);
    let dir = battery_dir(root);
    match hosting {
        Hosting::CompiledIn => registry.insert("bat0", Box::new(mo_battery::Battery::at(&dir))),
        Hosting::InProcessDylib | Hosting::Isolated => {
            // The plugin build reads its device from the environment.
            std::env::set_var("DM_BATTERY_DIR", &dir);
            let plugins = root.join("plugins");
            std::fs::create_dir_all(&plugins).unwrap_or_else(|e| panic!("{e}"));
            let name = plugin.file_name().unwrap_or_else(|| panic!("name"));
            std::fs::copy(plugin, plugins.join(name)).unwrap_or_else(|e| panic!("{e}"));
            if hosting == Hosting::InProcessDylib {
                let mut marker = name.to_owned();
                marker.push(dm_agent::plugins::TRUSTED_SUFFIX);
                std::fs::write(plugins.join(marker), b"").unwrap_or_else(|e| panic!("{e}"));
            }
            let options = PluginOptions {
                host_program: Some(PathBuf::from(env!("CARGO_BIN_EXE_dmctl"))),
                ..PluginOptions::default()
            };
            let errors = dm_agent::service::register_plugins(&mut registry, &plugins, &options);
            assert!(errors.is_empty(), "{errors:?}");
        }
    }
    let mut device = Device::new(DeviceConfig::new(DEV_ID), registry);
    let boot = serde_json::json!([{
        "ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2/A/",
        "MOData": { "A": { "SrvID": "A", "SrvURI": server.dm_url(), "Name": "bench",
            "Perm": { "p": { "MOID": "*" } } } }
    }]);
    dm_agent::bootstrap::apply(
        &mut device,
        boot.to_string().as_bytes(),
        dm_agent::bootstrap::Source::Factory,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    device.sync_access_control();
    device.resume();
    device
}

async fn round(server: &ServerHandle, device: &mut Device, leaf: &str) {
    let uri: dm_core::ClientUri = format!("{BATTERY}/bat0/{leaf}")
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..GETS {
        server.enqueue(
            DEV_ID,
            Command::Get {
                client_uri: uri.clone(),
            },
        );
    }
    let report = device
        .run_session_as("A", Initiation::ClientInitiated, false, Vec::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.commands.len(), GETS + 1);
}

/// Median session time, in microseconds.
async fn measure(server: &ServerHandle, device: &mut Device, leaf: &str) -> f64 {
    for _ in 0..WARM_UP {
        round(server, device, leaf).await;
    }
    let mut times = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        round(server, device, leaf).await;
        times.push(t.elapsed());
    }
    times.sort();
    times[ROUNDS / 2].as_secs_f64() * 1e6
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let plugin = battery_dylib();
    let server = server::start(ServerConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        default_commands: Vec::new(),
        log_errors: false,
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let tmp = std::env::temp_dir().join(format!("dm-live-bench-{}", std::process::id()));
    let mut rows = Vec::new();
    for (name, hosting, leaf) in [
        (
            "compiled in, stored leaf (LowAlarm)",
            Hosting::CompiledIn,
            "LowAlarm",
        ),
        (
            "compiled in, live leaf (Level)",
            Hosting::CompiledIn,
            "Level",
        ),
        (
            "in-process dylib, live leaf",
            Hosting::InProcessDylib,
            "Level",
        ),
        ("isolated dylib, live leaf", Hosting::Isolated, "Level"),
    ] {
        let root = tmp.join(name.replace([' ', ',', '(', ')'], "_"));
        let mut device = device(&server, &root, hosting, &plugin);
        let us = measure(&server, &mut device, leaf).await;
        rows.push((name, us));
        drop(device);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    server.shutdown().await;
    let base = rows[1].1;
    println!("Sessions of {GETS} GETs of one battery leaf, median of {ROUNDS} (after {WARM_UP}):");
    for (name, us) in &rows {
        println!(
            "  {name:<40} {us:>9.0} us/session  {:>5.2}x compiled-in live",
            us / base
        );
    }
}
