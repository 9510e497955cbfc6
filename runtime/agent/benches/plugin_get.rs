//! GET of one leaf through a compiled-in MO, through the dylib plugin ABI
//! in the agent's process (a trusted plugin), and through the same ABI in
//! a plugin host process (an isolated plugin, the default), side by side.
//! Run:
//! `cargo build --release -p mo-dcmo -p dmctl && cargo bench -p dm-agent --bench plugin_get`.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use dm_agent::plugins::{Plugin, PluginInstance, PluginOptions};
use dm_core::ManagementObject;

const N: u32 = 200_000;
/// Fewer for the isolated call: each is a round trip through a pipe.
const N_ISOLATED: u32 = 20_000;

fn per_call(n: u32, f: &mut dyn FnMut()) -> f64 {
    for _ in 0..1000 {
        f();
    }
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_nanos() as f64 / f64::from(n)
}

/// A file cargo built in this target directory, release first.
fn built(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let target = exe.parent()?.parent()?.parent()?.to_owned();
    ["release", "debug"]
        .iter()
        .map(|p| target.join(p).join(name))
        .find(|p| p.exists())
}

fn main() {
    let camera = mo_dcmo::Dcmo::camera();
    let compiled = per_call(N, &mut || {
        black_box(camera.get(black_box(&["Enabled"])).ok());
    });
    println!("compiled-in GET Enabled: {compiled:.0} ns/call");
    let name = format!(
        "{}mo_dcmo{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let Some(path) = built(&name) else {
        println!("dylib GET: skipped, build it first: cargo build --release -p mo-dcmo");
        return;
    };
    let plugin = std::sync::Arc::new(Plugin::load(&path).unwrap_or_else(|e| panic!("{e}")));
    let instance = PluginInstance::new(plugin, "Camera");
    let through_abi = per_call(N, &mut || {
        black_box(instance.get(black_box(&["Enabled"])).ok());
    });
    println!(
        "dylib GET Enabled, in-process ({}): {through_abi:.0} ns/call",
        path.display()
    );
    println!("ratio: {:.1}x compiled in", through_abi / compiled);
    let Some(dmctl) = built("dmctl") else {
        println!("isolated GET: skipped, build the host first: cargo build --release -p dmctl");
        return;
    };
    let options = PluginOptions {
        host_program: Some(dmctl),
        ..PluginOptions::default()
    };
    let plugin = std::sync::Arc::new(
        Plugin::load_isolated(&path, &options).unwrap_or_else(|e| panic!("{e}")),
    );
    let instance = PluginInstance::new(plugin, "Camera");
    let isolated = per_call(N_ISOLATED, &mut || {
        black_box(instance.get(black_box(&["Enabled"])).ok());
    });
    println!("dylib GET Enabled, isolated (plugin host process): {isolated:.0} ns/call");
    println!(
        "ratio: {:.1}x in-process dylib, {:.1}x compiled in",
        isolated / through_abi,
        isolated / compiled
    );
}
