//! Crash consistency of the state directory: `dmctl client` is killed
//! (SIGKILL) at random moments while it stores one HGET after another;
//! after each kill the state must read back whole, and hold a value that
//! was really written, never a mix or a torn file.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::Repository;
use dm_agent::service::{self as agent, AgentOptions};
use dm_core::{Command, NodeData, ServerUri, Value};
use dm_server::{self as server, ServerConfig};

const WRITES: usize = 60;
const ROUNDS: usize = 100;

/// A small deterministic generator, so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_client_leaves_a_state_that_existed() {
    let repo = Repository::start().await;
    for i in 0..WRITES {
        repo.route(&format!("/v{i}"), 200, "text/plain", format!("value-{i}"));
    }
    let name = "urn:oma:mo:oma-dm-dmacc:1.2/A/Name";
    let commands = (0..WRITES)
        .map(|i| Command::Hget {
            server_uri: ServerUri::new(repo.url(&format!("/v{i}"))),
            client_uri: Some(name.parse().unwrap()),
        })
        .collect();
    let server = server::start(ServerConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        default_commands: commands,
        log_errors: false,
    })
    .await
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let bootstrap = common::bootstrap_file(tmp.path(), "A", &server.dm_url());
    let state = tmp.path().join("state");
    let valid: Vec<String> = std::iter::once("server A".to_owned())
        .chain((0..WRITES).map(|i| format!("value-{i}")))
        .collect();
    let mut rng = Lcg(0x5eed);
    // How long one uninterrupted run takes on this machine now: kills are
    // spread over that span, so they land inside runs however loaded the
    // machine is. The calibration run uses its own state directory.
    let calibration = tmp.path().join("calibration");
    let t = Instant::now();
    let status = tokio::process::Command::new(common::dmctl())
        .args(["client", "--once", "--state"])
        .arg(&calibration)
        .arg("--bootstrap")
        .arg(&bootstrap)
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let span = u64::try_from(t.elapsed().as_micros()).unwrap().max(5_000);
    let started = Instant::now();
    let mut killed_mid_run = 0;
    let mut distinct: std::collections::HashSet<String> = std::collections::HashSet::new();
    for round in 0..ROUNDS {
        let mut child = tokio::process::Command::new(common::dmctl())
            .args(["client", "--once", "--state"])
            .arg(&state)
            .arg("--bootstrap")
            .arg(&bootstrap)
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_micros(rng.next() % span)).await;
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        // SIGKILL: no destructor, no flush, as a power cut would.
        let _ = child.start_kill();
        let _ = child.wait().await;

        let opts = AgentOptions {
            timeout: Duration::from_secs(5),
            ..AgentOptions::new(state.clone())
        };
        let device = agent::open_device(&opts)
            .unwrap_or_else(|e| panic!("round {round}: state unreadable: {e}"));
        let Some(account) = device.accounts().into_iter().find(|a| a.server_id == "A") else {
            // Killed before the bootstrap was stored: nothing was written.
            assert!(device.accounts().is_empty(), "round {round}");
            continue;
        };
        let (_, instance) = device
            .registry()
            .instances()
            .find(|(_, i)| i.miid() == account.miid)
            .unwrap();
        match instance.mo().get(&["Name"]) {
            Ok(NodeData::Leaf(Value::Chr(v))) => {
                assert!(
                    valid.contains(&v),
                    "round {round}: Name {v:?} was never written"
                );
                distinct.insert(v);
            }
            other => panic!("round {round}: Name is {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "bounded in time"
        );
    }
    assert!(
        killed_mid_run > ROUNDS / 4,
        "most kills must land during a run ({killed_mid_run})"
    );
    assert!(
        distinct.len() > 3,
        "kills landed at many points of the run: {distinct:?}"
    );
    server.shutdown().await;
}

/// One HGET that creates many accounts, killed at random points: after
/// each kill the state holds all of them or none (one record per
/// command, docs/architecture.md "Persistence").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_hget_of_many_accounts_is_all_or_nothing() {
    const ACCOUNTS: usize = 1_500;
    const KILLS: usize = 12;
    let repo = Repository::start().await;
    let items: Vec<serde_json::Value> = (0..ACCOUNTS)
        .map(|i| {
            let id = format!("s{i}");
            serde_json::json!({
                "ClientURI": format!("urn:oma:mo:oma-dm-dmacc:1.2/{id}/"),
                "MOData": { id.clone(): {
                    "SrvID": id, "SrvURI": "http://127.0.0.1:9/dm", "Name": "many",
                    "Perm": { "p": { "MOID": "urn:oma:mo:oma-dm-devinfo:1.2" } }
                } }
            })
        })
        .collect();
    repo.route(
        "/many",
        200,
        "application/dmmo+json",
        serde_json::to_vec(&items).unwrap(),
    );
    let server = server::start(ServerConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        default_commands: vec![Command::Hget {
            server_uri: ServerUri::new(repo.url("/many")),
            client_uri: None,
        }],
        log_errors: false,
    })
    .await
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let bootstrap = common::bootstrap_file(tmp.path(), "A", &server.dm_url());
    let run = |state: std::path::PathBuf| {
        tokio::process::Command::new(common::dmctl())
            .args(["client", "--once", "--state"])
            .arg(state)
            .arg("--bootstrap")
            .arg(&bootstrap)
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let t = Instant::now();
    let status = run(tmp.path().join("calibration")).wait().await.unwrap();
    assert!(status.success());
    let span = u64::try_from(t.elapsed().as_micros()).unwrap().max(5_000);
    let mut rng = Lcg(0xacc0);
    let mut seen = std::collections::BTreeSet::new();
    let mut killed_mid_run = 0;
    for round in 0..KILLS {
        // A fresh state each round: the kill lands in the first HGET.
        let state = tmp.path().join(format!("state{round}"));
        let mut child = run(state.clone());
        // In the later part of a run, where the HGET stores its accounts.
        tokio::time::sleep(Duration::from_micros(span / 3 + rng.next() % span)).await;
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        let _ = child.start_kill();
        let _ = child.wait().await;
        let opts = AgentOptions {
            timeout: Duration::from_secs(5),
            ..AgentOptions::new(state)
        };
        let device = agent::open_device(&opts)
            .unwrap_or_else(|e| panic!("round {round}: state unreadable: {e}"));
        let created = device
            .accounts()
            .iter()
            .filter(|a| a.server_id != "A")
            .count();
        assert!(
            created == 0 || created == ACCOUNTS,
            "round {round}: {created} of {ACCOUNTS} accounts"
        );
        seen.insert(created);
    }
    server.shutdown().await;
    assert!(killed_mid_run > 0, "no kill landed during a run");
    eprintln!("accounts after the kills: {seen:?} ({killed_mid_run} killed mid-run)");
}
