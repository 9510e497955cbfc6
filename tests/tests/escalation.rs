//! A DM Server trying to take rights it was never given (issue "Device
//! agent: close the access-control holes", items 1 and 2): every session a
//! server causes runs with that server's rights, and no account can take
//! another's SrvID or widen its Perm list. Servers: A (Perm `*`), B (Perm
//! DMAcc and DevInfo), C (Perm DevInfo and DCMO), and X, which no account
//! names. The device loads the DCMO plugin, whose nodes C may execute.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{codes, get, Repository};
use dm_agent::service::{self as agent, AgentOptions};
use dm_agent::{Device, Initiation};
use dm_core::{Command, ServerUri};
use dm_server::{CommandResult, ServerHandle};

const DEV_ID: &str = "IMEI:490154203237518";
const DMACC: &str = "urn:oma:mo:oma-dm-dmacc:1.2";
const DEVINFO: &str = "urn:oma:mo:oma-dm-devinfo:1.2";
const DCMO: &str = "urn:oma:mo:oma-dcmo:1.0";

struct World {
    tmp: tempfile::TempDir,
    servers: Vec<(&'static str, ServerHandle)>,
    repo: Repository,
    bootstrap: std::path::PathBuf,
    plugins: std::path::PathBuf,
}

async fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let mut servers = Vec::new();
    for id in ["A", "B", "C", "X"] {
        servers.push((id, common::start_server(Vec::new()).await));
    }
    let url = |id: &str| servers.iter().find(|(s, _)| *s == id).unwrap().1.dm_url();
    let bootstrap = tmp.path().join("bootstrap.json");
    let body = serde_json::json!([
        common::dmacc_item("A", &url("A"), &["*"]),
        common::dmacc_item("B", &url("B"), &[DMACC, DEVINFO]),
        common::dmacc_item("C", &url("C"), &[DEVINFO, DCMO]),
    ]);
    std::fs::write(&bootstrap, body.to_string()).unwrap();
    let plugins = common::plugins_in(tmp.path(), &["mo-dcmo"]);
    World {
        tmp,
        servers,
        repo: Repository::start().await,
        bootstrap,
        plugins,
    }
}

impl World {
    fn server(&self, id: &str) -> &ServerHandle {
        &self.servers.iter().find(|(s, _)| *s == id).unwrap().1
    }

    /// The device, opened from its state directory.
    fn device(&self) -> Device {
        let opts = AgentOptions {
            bootstrap: Some(self.bootstrap.clone()),
            dev_id: Some(DEV_ID.into()),
            plugins: Some(self.plugins.clone()),
            plugin_options: common::plugin_options(),
            timeout: Duration::from_secs(10),
            ..AgentOptions::new(self.tmp.path().join("state"))
        };
        let mut device = agent::open_device(&opts).unwrap();
        agent::apply_bootstrap(&mut device, &self.bootstrap).unwrap();
        device
    }

    /// The results `id`'s server got from `commands` in one session of
    /// `device` run as `id`; alerts are left pending.
    async fn run(&self, device: &mut Device, id: &str, commands: Vec<Command>) -> Vec<u16> {
        let server = self.server(id);
        let before = server.device(DEV_ID).map_or(0, |r| r.results.len());
        for c in commands {
            server.enqueue(DEV_ID, c);
        }
        device
            .run_session_as(id, Initiation::ClientInitiated, true, Vec::new())
            .await
            .unwrap();
        codes(&server.device(DEV_ID).unwrap().results[before..])
    }

    fn results(&self, id: &str) -> Vec<CommandResult> {
        self.server(id)
            .device(DEV_ID)
            .map(|r| r.results)
            .unwrap_or_default()
    }
}

fn exec_with_report(node: &str, report_to: String) -> Command {
    Command::Exec {
        client_uri: common::uri(node),
        server_uri: Some(ServerUri::new(report_to)),
    }
}

/// An HGET without ClientURI of a new DMAcc instance `miid` (5.3.1: the
/// client stores it where the item says).
fn hget_account(repo: &Repository, miid: &str, data: serde_json::Value) -> Command {
    let item =
        serde_json::json!([{ "ClientURI": format!("{DMACC}/{miid}/"), "MOData": { miid: data } }]);
    let path = format!("/account-{miid}");
    repo.route(&path, 200, "application/dmmo+json", item.to_string());
    Command::Hget {
        server_uri: ServerUri::new(repo.url(&path)),
        client_uri: None,
    }
}

fn text(r: &CommandResult) -> String {
    common::body(r)
}

#[tokio::test]
async fn an_exec_report_to_another_origin_is_refused_and_nothing_runs() {
    let w = world().await;
    let mut device = w.device();
    // X's URI: another port, so another origin than C's SrvURI.
    let exec = exec_with_report(
        &format!("{DCMO}/USB/Operations/Disable"),
        w.server("X").dm_url(),
    );
    let got = w
        .run(
            &mut device,
            "C",
            vec![exec, get(&format!("{DCMO}/USB/Enabled"))],
        )
        .await;
    assert_eq!(got, [403, 200]);
    assert_eq!(text(&w.results("C")[1]), "true", "the EXEC did not run");
    // No session reaches X: no alert waits, and X never hears of the device.
    assert!(device.take_pending_alerts().is_empty());
    agent::deliver_alerts(&mut device).await;
    assert!(w.server("X").device(DEV_ID).is_none());
}

#[tokio::test]
async fn the_report_session_runs_with_the_issuers_rights_only() {
    let w = world().await;
    let mut device = w.device();
    // Same origin as C's SrvURI, another path: allowed; the report
    // session runs as C. Its far end then tries A's account (outside C's
    // Perm list), replacing A's SrvURI, and DevInfo (inside it).
    let c_url = w.server("C").dm_url();
    let exec = exec_with_report(
        &format!("{DCMO}/USB/Operations/Enable"),
        c_url.replace("/dm", "/dm?report=1"),
    );
    assert_eq!(w.run(&mut device, "C", vec![exec]).await, [202]);
    let before = w.results("C").len();
    let c = w.server("C");
    c.enqueue(DEV_ID, get(&format!("{DMACC}/A/SrvURI")));
    c.enqueue(
        DEV_ID,
        w.repo.hget(
            "steal",
            &format!("{DMACC}/A/SrvURI"),
            serde_json::json!("http://127.0.0.1:9/evil"),
        ),
    );
    c.enqueue(DEV_ID, get(&format!("{DEVINFO}//DevID")));
    let outcomes = agent::deliver_alerts(&mut device).await;
    assert_eq!(outcomes.len(), 1);
    assert!(outcomes[0].result.is_ok(), "{:?}", outcomes[0].result);
    let rec = c.device(DEV_ID).unwrap();
    assert!(
        rec.alerts
            .iter()
            .any(|a| a.source_uri.as_deref() == Some(&*format!("{DCMO}/USB/Operations/Enable"))),
        "{:?}",
        rec.alerts
    );
    let got = codes(&rec.results[before..]);
    // Outside C's rights: not found (never told it exists), not written.
    assert_ne!(got[0], 200, "{got:?}");
    assert!(rec.results[before].data.is_none());
    assert_eq!(got[1], 403, "{got:?}");
    assert_eq!(got[2], 200, "{got:?}");
    // A's account is as bootstrapped: A reads its own SrvURI.
    let a_url = w.server("A").dm_url();
    assert_eq!(
        w.run(&mut device, "A", vec![get(&format!("{DMACC}/A/SrvURI"))])
            .await,
        [200]
    );
    assert_eq!(text(w.results("A").last().unwrap()), a_url);
}

#[tokio::test]
async fn no_account_can_take_another_accounts_srvid() {
    let w = world().await;
    let mut device = w.device();
    let hget = |name: &str, target: &str, data: serde_json::Value| w.repo.hget(name, target, data);
    let got = w
        .run(
            &mut device,
            "B",
            vec![
                // B renames itself A.
                hget(
                    "rename",
                    &format!("{DMACC}/B/SrvID"),
                    serde_json::json!("A"),
                ),
                // B creates a second account named A.
                hget_account(
                    &w.repo,
                    "Twin",
                    serde_json::json!({"SrvID": "A", "SrvURI": "http://127.0.0.1:9/dm",
                        "Name": "twin", "Perm": {"p": {"MOID": DEVINFO}}}),
                ),
                get(&format!("{DMACC}/B/SrvID")),
                get(&format!("{DMACC}/Twin/SrvID")),
            ],
        )
        .await;
    assert_eq!(got, [403, 403, 200, 404]);
    assert_eq!(text(&w.results("B")[2]), "B");
    // The next session still runs as B: A's account stays out of reach.
    let got = w
        .run(&mut device, "B", vec![get(&format!("{DMACC}/A/SrvURI"))])
        .await;
    assert_ne!(got, [200]);
}

#[tokio::test]
async fn a_server_cannot_provision_moids_outside_its_own_perm_list() {
    let w = world().await;
    let mut device = w.device();
    let hget = |name: &str, target: &str, data: serde_json::Value| w.repo.hget(name, target, data);
    let got = w
        .run(
            &mut device,
            "B",
            vec![
                // Widening its own account.
                hget(
                    "widen",
                    &format!("{DMACC}/B/Perm/p9"),
                    serde_json::json!({"MOID": "*"}),
                ),
                // A proxy account for an MOID B may not manage.
                hget_account(
                    &w.repo,
                    "Proxy",
                    serde_json::json!({"SrvID": "P", "SrvURI": "http://127.0.0.1:9/dm",
                        "Name": "proxy", "Perm": {"p": {"MOID": DCMO}}}),
                ),
                // An account within B's own Perm list is fine.
                hget_account(
                    &w.repo,
                    "Helper",
                    serde_json::json!({"SrvID": "H", "SrvURI": "http://127.0.0.1:9/dm",
                        "Name": "helper", "Perm": {"p": {"MOID": DEVINFO}}}),
                ),
            ],
        )
        .await;
    assert_eq!(got, [403, 403, 200]);
    let ids: Vec<String> = device.accounts().into_iter().map(|a| a.server_id).collect();
    assert_eq!(ids, ["A", "B", "C", "H"]);
    let b = device
        .accounts()
        .into_iter()
        .find(|a| a.server_id == "B")
        .unwrap();
    assert_eq!(b.moids, [DMACC, DEVINFO]);
}

#[tokio::test]
async fn a_bootstrap_with_two_accounts_of_one_srvid_is_refused_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("twins.json");
    let mut twin = common::dmacc_item("S", "http://127.0.0.1:9/dm", &["*"]);
    twin["ClientURI"] = format!("{DMACC}/S2/").into();
    let data = twin["MOData"]["S"].take();
    twin["MOData"] = serde_json::json!({ "S2": data });
    let body = serde_json::json!([
        common::dmacc_item("S", "http://127.0.0.1:9/dm", &["*"]),
        twin
    ]);
    std::fs::write(&file, body.to_string()).unwrap();
    let opts = AgentOptions {
        dev_id: Some(DEV_ID.into()),
        ..AgentOptions::new(tmp.path().join("state"))
    };
    let mut device = agent::open_device(&opts).unwrap();
    let err = agent::apply_bootstrap(&mut device, &file).unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    assert!(device.accounts().is_empty(), "{:?}", device.accounts());
}
