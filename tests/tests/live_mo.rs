//! MO code that owns what it manages (issue 18): an EXEC it finishes later
//! reaches the server as a Generic Alert with the final status in a new
//! session (spec 5.4.1), also after a restart of the agent, and times out
//! with 500 when never finished; a write the device refuses half way is
//! taken back on the device too; a change on the device changes the cache
//! validator and reaches a SUB subscriber without the server asking.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use dm_agent::service as agent;
use dm_agent::{standard_registry, Device, DeviceConfig, Initiation, StateDir};
use dm_core::{
    ChangeReporter, Command, Completion, ExecOutcome, ExecReport, ExecRequest, MoError, MoHooks,
    StatusCode,
};
use dm_server::ServerHandle;

const DEV_ID: &str = "IMEI:490154203237518";
const PUMP: &str = "urn:example:mo:pump:1.0";

/// What the pumps' hardware holds (the "device"), the EXECs they were
/// asked to run, and their change reporters, shared with the test. Each
/// test uses its own pump names.
static HARDWARE: Mutex<BTreeMap<String, i64>> = Mutex::new(BTreeMap::new());
static STARTED: Mutex<Vec<(String, Completion)>> = Mutex::new(Vec::new());
static REPORTERS: Mutex<Vec<(String, ChangeReporter)>> = Mutex::new(Vec::new());

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A pump: its level is carried to the hardware at commit; 13 jams the
/// valve half way (the hardware takes it, then the commit fails).
#[derive(Debug, Clone, PartialEq, dm_core::ManagementObject)]
#[dm(
    moid = "urn:example:mo:pump:1.0",
    access = "Get",
    occurrence = "ZeroOrMore",
    scope = "Permanent"
)]
struct Pump {
    #[dm(name = "Name", format = "chr", access = "Get")]
    name: String,
    #[dm(name = "Level", format = "int", access = "Get Replace")]
    level: i64,
    #[dm(name = "Start", format = "null", access = "Exec")]
    start: (),
}

impl MoHooks for Pump {
    fn exec(&mut self, path: &[&str], request: &ExecRequest) -> Result<ExecOutcome, MoError> {
        match (path, &request.completion) {
            (["Start"], Some(c)) => {
                lock(&STARTED).push((self.name.clone(), c.clone()));
                Ok(ExecOutcome::Started)
            }
            (["Start"], None) => Ok(ExecOutcome::Done),
            _ => Err(MoError::NotExecutable(path.join("/"))),
        }
    }

    fn commit(&mut self) -> Result<(), MoError> {
        lock(&HARDWARE).insert(self.name.clone(), self.level);
        if self.level == 13 {
            return Err(MoError::Failed("the valve jammed".into()));
        }
        Ok(())
    }

    fn resume_exec(&mut self, path: &[&str], completion: Completion) {
        if path == ["Start"] {
            lock(&STARTED).push((self.name.clone(), completion));
        }
    }

    fn attach(&mut self, reporter: ChangeReporter) {
        lock(&REPORTERS).push((self.name.clone(), reporter));
    }
}

fn pump(name: &str, level: i64) -> Box<Pump> {
    lock(&HARDWARE).insert(name.to_owned(), level);
    Box::new(Pump {
        name: name.to_owned(),
        level,
        start: (),
    })
}

fn started(name: &str) -> Option<Completion> {
    lock(&STARTED)
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, c)| c.clone())
}

/// A device with account `A` at `server` and the pumps `names`, kept in
/// `state` when given.
fn device(server: &ServerHandle, names: &[&str], state: Option<&std::path::Path>) -> Device {
    let mut registry = standard_registry(DEV_ID);
    for n in names {
        registry.insert(*n, pump(n, 1));
    }
    let mut config = DeviceConfig::new(DEV_ID);
    config.timeout = Duration::from_secs(10);
    config.limits.exec_timeout = Duration::from_secs(2);
    let mut device = Device::new(config, registry);
    if let Some(dir) = state {
        let store = StateDir::open(dir).unwrap();
        let (saved, agent_state) = store.load_state().unwrap();
        device = device.with_store(store, agent_state);
        for s in &saved {
            device.restore(s).unwrap();
        }
    }
    let bootstrap = serde_json::json!([common::dmacc_item("A", &server.dm_url(), &["*"])]);
    dm_agent::bootstrap::apply(
        &mut device,
        bootstrap.to_string().as_bytes(),
        dm_agent::bootstrap::Source::Factory,
    )
    .unwrap();
    device.sync_access_control();
    device.resume();
    device
}

async fn session(device: &mut Device) {
    device
        .run_session_as("A", Initiation::ClientInitiated, false, Vec::new())
        .await
        .unwrap();
}

fn exec(server: &ServerHandle, name: &str) {
    server.enqueue(
        DEV_ID,
        Command::Exec {
            client_uri: format!("{PUMP}/{name}/Start").parse().unwrap(),
            server_uri: Some(dm_core::ServerUri::new(server.dm_url())),
        },
    );
}

/// The `(sc, data)` of the Generic Alerts the server got for `name`.
fn alerts_for(server: &ServerHandle, name: &str) -> Vec<serde_json::Value> {
    let source = format!("{PUMP}/{name}/Start");
    server
        .device(DEV_ID)
        .map(|d| {
            d.alerts
                .iter()
                .filter(|a| a.source_uri.as_deref() == Some(source.as_str()))
                .map(|a| serde_json::to_value(a).unwrap())
                .collect()
        })
        .unwrap_or_default()
}

fn async_status_of(server: &ServerHandle, name: &str) -> Option<u16> {
    let source = format!("{PUMP}/{name}/Start");
    server
        .device(DEV_ID)?
        .results
        .iter()
        .find(|r| {
            matches!(&r.command, Command::Exec { client_uri, .. } if client_uri.to_string() == source)
        })
        .and_then(|r| r.async_status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_finished_later_reports_its_final_status_in_a_new_session() {
    let server = common::start_server(Vec::new()).await;
    let mut device = device(&server, &["fill"], None);
    exec(&server, "fill");
    session(&mut device).await;
    let results = server.device(DEV_ID).unwrap().results;
    let result = results.last().unwrap();
    assert_eq!(result.status.code, StatusCode::ACCEPTED, "202 in Package#3");
    assert!(
        alerts_for(&server, "fill").is_empty(),
        "no alert before the end"
    );
    assert_eq!(device.pending_exec_count(), 1);

    // The operation ends on another thread, a while later.
    let completion = started("fill").unwrap();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        completion.finish(ExecReport {
            status: StatusCode::OK,
            data: Some(("application/json".into(), serde_json::json!({"litres": 5}))),
        });
    });
    let sessions = agent::deliver_reports(&mut device, Some(Duration::from_secs(10))).await;
    assert_eq!(sessions.len(), 1, "one session carries the alert");
    let alerts = alerts_for(&server, "fill");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let text = alerts[0].to_string();
    assert!(
        text.contains("\"sc\":200") && text.contains("litres"),
        "{text}"
    );
    assert_eq!(async_status_of(&server, "fill"), Some(200));
    assert_eq!(device.pending_exec_count(), 0);
    // A second finish changes nothing.
    assert!(!started("fill")
        .unwrap()
        .finish(ExecReport::status(StatusCode::OK)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_never_finished_ends_with_500_at_its_deadline() {
    let server = common::start_server(Vec::new()).await;
    let mut device = device(&server, &["drain"], None);
    exec(&server, "drain");
    session(&mut device).await;
    assert!(started("drain").is_some());
    agent::deliver_reports(&mut device, Some(Duration::from_secs(10))).await;
    let alerts = alerts_for(&server, "drain");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].to_string().contains("\"sc\":500"), "{alerts:?}");
    assert_eq!(async_status_of(&server, "drain"), Some(500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_exec_survives_a_restart_of_the_agent() {
    let server = common::start_server(Vec::new()).await;
    let tmp = tempfile::tempdir().unwrap();
    let mut first = device(&server, &["flash"], Some(tmp.path()));
    exec(&server, "flash");
    session(&mut first).await;
    assert_eq!(first.pending_exec_count(), 1);
    let before = started("flash").unwrap();
    drop(first); // the agent stops in the middle of the operation

    let mut second = device(&server, &["flash"], Some(tmp.path()));
    assert_eq!(
        second.pending_exec_count(),
        1,
        "kept in the state directory"
    );
    let resumed = started("flash").unwrap();
    assert_ne!(resumed, before, "a new handle, given at the start");
    assert_eq!(resumed.id(), before.id());
    resumed.finish(ExecReport::status(StatusCode::OK));
    agent::deliver_reports(&mut second, Some(Duration::from_secs(10))).await;
    assert_eq!(async_status_of(&server, "flash"), Some(200));
    assert_eq!(second.pending_exec_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_device_refuses_half_way_is_taken_back_on_every_device() {
    let server = common::start_server(Vec::new()).await;
    let tmp = tempfile::tempdir().unwrap();
    let mut device = device(&server, &["north", "south"], Some(tmp.path()));
    let level = |name: &str| lock(&HARDWARE).get(name).copied();
    let item = |name: &str, level: i64| {
        serde_json::json!({
            "ClientURI": format!("{PUMP}/{name}/"),
            "MOData": { name: { "Name": name, "Level": level, "Start": null } },
        })
    };
    // Both change; the second pump's valve jams after taking 13.
    let both = serde_json::json!([item("north", 20), item("south", 13)]).to_string();
    let refused = dm_agent::bootstrap::apply(
        &mut device,
        both.as_bytes(),
        dm_agent::bootstrap::Source::Factory,
    );
    assert!(
        matches!(refused, Err(dm_agent::bootstrap::BootstrapError::Device(_))),
        "{refused:?}"
    );
    assert_eq!(
        level("north"),
        Some(1),
        "the first pump's hardware went back"
    );
    assert_eq!(level("south"), Some(1), "the jammed one too");
    let tree_level = |device: &Device, name: &str| {
        let index = device.registry().find(PUMP, name).unwrap();
        device
            .registry()
            .instance(index)
            .unwrap()
            .mo()
            .get(&["Level"])
            .unwrap()
    };
    assert_eq!(
        tree_level(&device, "north"),
        dm_core::NodeData::Leaf(dm_core::Value::Int(1))
    );
    // A write the device takes stands.
    let ok = serde_json::json!([item("north", 20)]).to_string();
    dm_agent::bootstrap::apply(
        &mut device,
        ok.as_bytes(),
        dm_agent::bootstrap::Source::Factory,
    )
    .unwrap();
    assert_eq!(level("north"), Some(20));
    assert_eq!(
        tree_level(&device, "north"),
        dm_core::NodeData::Leaf(dm_core::Value::Int(20))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_the_device_reaches_the_subscriber_and_the_cache_validator() {
    let server = common::start_server(Vec::new()).await;
    let mut device = device(&server, &["west"], None);
    let uri = format!("{PUMP}/west/Level");
    server.enqueue(
        DEV_ID,
        Command::Sub {
            client_uri: uri.parse().unwrap(),
            server_uri: dm_core::ServerUri::new(format!(
                "{}/repo/{DEV_ID}/west-level",
                server.base_url()
            )),
        },
    );
    server.enqueue(
        DEV_ID,
        Command::Get {
            client_uri: format!("{PUMP}/west/").parse().unwrap(),
        },
    );
    session(&mut device).await;
    let index = device.registry().find(PUMP, "west").unwrap();
    let cv_before = device
        .registry()
        .instance(index)
        .unwrap()
        .cache_validator()
        .clone();
    assert!(server
        .storage()
        .resource(DEV_ID, "west-level")
        .unwrap()
        .is_none());

    // The level changes on the device: the MO says so.
    let reporter = lock(&REPORTERS)
        .iter()
        .rev()
        .find(|(n, _)| n == "west")
        .map(|(_, r)| r.clone())
        .unwrap();
    let index = device.registry().find(PUMP, "west").unwrap();
    if let Some(mo) = device.registry_mut().mo_mut(index) {
        mo.apply(&[dm_core::Change::Put {
            path: vec!["Level".into()],
            data: dm_core::NodeData::Leaf(dm_core::Value::Int(7)),
        }])
        .unwrap();
    }
    reporter.changed(&["Level"]);
    agent::deliver_reports(&mut device, None).await;
    let cv_after = device
        .registry()
        .instance(index)
        .unwrap()
        .cache_validator()
        .clone();
    assert_ne!(cv_before, cv_after, "a new cache validator");
    let sent = server
        .storage()
        .resource(DEV_ID, "west-level")
        .unwrap()
        .expect("the subscriber got its HPUT");
    assert!(
        String::from_utf8_lossy(&sent.body).contains('7'),
        "{sent:?}"
    );
}

/// The data parts of a GET's result (Appendix F), as text.
fn data_of(server: &ServerHandle, uri: &str) -> String {
    server
        .device(DEV_ID)
        .unwrap()
        .results
        .iter()
        .rev()
        .find(
            |r| matches!(&r.command, Command::Get { client_uri } if client_uri.to_string() == uri),
        )
        .map(common::body)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_leaf_answers_the_hosts_value_of_now() {
    const NETIF: &str = "urn:omadm-rs:mo:netif:1.0";
    let server = common::start_server(Vec::new()).await;
    let mut device = device(&server, &[], None);
    let rx = format!("{NETIF}//Interfaces/lo/RxBytes");
    let get = |uri: &str| Command::Get {
        client_uri: uri.parse().unwrap(),
    };
    server.enqueue(DEV_ID, get(&rx));
    session(&mut device).await;
    let first = data_of(&server, &rx);
    let read = |text: &str| -> i64 {
        text.chars()
            .filter(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap_or(-1)
    };
    assert!(read(&first) > 0, "{first}");
    // The session itself moved bytes over loopback: the next GET sees it.
    server.enqueue(DEV_ID, get(&rx));
    session(&mut device).await;
    let second = data_of(&server, &rx);
    assert!(read(&second) > read(&first), "{first} then {second}");
    // Every interface, listed from the host, by wildcard.
    let states = format!("{NETIF}//Interfaces/*/OperState");
    server.enqueue(DEV_ID, get(&states));
    session(&mut device).await;
    let all = data_of(&server, &states);
    assert!(all.contains("/Interfaces/lo/OperState"), "{all}");
    // No cache validator: a cv never answers 304 for data the device owns.
    let root = format!("{NETIF}//?cv=anything");
    server.enqueue(DEV_ID, get(&root));
    session(&mut device).await;
    let results = server.device(DEV_ID).unwrap().results;
    assert_eq!(results.last().unwrap().status.code, StatusCode::OK);
}
