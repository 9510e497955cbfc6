//! GET of one leaf through a compiled-in MO and through the dylib plugin
//! ABI, side by side. Run:
//! `cargo build --release -p mo-dcmo && cargo bench -p dm-agent --bench plugin_get`.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use dm_agent::plugins::{Plugin, PluginInstance};
use dm_core::ManagementObject;

const N: u32 = 200_000;

fn per_call(f: &mut dyn FnMut()) -> f64 {
    for _ in 0..1000 {
        f();
    }
    let t = Instant::now();
    for _ in 0..N {
        f();
    }
    t.elapsed().as_nanos() as f64 / f64::from(N)
}

fn dylib() -> Option<PathBuf> {
    let name = format!(
        "{}mo_dcmo{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let exe = std::env::current_exe().ok()?;
    let target = exe.parent()?.parent()?.parent()?.to_owned();
    ["release", "debug"]
        .iter()
        .map(|p| target.join(p).join(&name))
        .find(|p| p.exists())
}

fn main() {
    let camera = mo_dcmo::Dcmo::camera();
    let compiled = per_call(&mut || {
        black_box(camera.get(black_box(&["Enabled"])).ok());
    });
    println!("compiled-in GET Enabled: {compiled:.0} ns/call");
    let Some(path) = dylib() else {
        println!("dylib GET: skipped, build it first: cargo build --release -p mo-dcmo");
        return;
    };
    let plugin = std::sync::Arc::new(Plugin::load(&path).unwrap_or_else(|e| panic!("{e}")));
    let instance = PluginInstance::new(plugin, "Camera");
    let through_abi = per_call(&mut || {
        black_box(instance.get(black_box(&["Enabled"])).ok());
    });
    println!(
        "dylib GET Enabled ({}): {through_abi:.0} ns/call",
        path.display()
    );
    println!("ratio: {:.1}x", through_abi / compiled);
}
