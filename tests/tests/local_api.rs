//! Local applications (`appid:`, spec 10, 12.3) through the local API:
//! the same checks as a DM Server, rights granted in DACMO, and the
//! DEFAULT-triggered HGET when an application asks for an MOID it does not
//! find (5.3.10). Also the API's Unix socket.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use common::{uri, Repository};
use dm_agent::service::{self as agent, AgentOptions};
use dm_agent::{Device, LocalError};
use dm_core::{Command, MoDataItem, ServerUri, StatusCode};
use dm_server::{self as server, CommandResult, ServerConfig, ServerHandle};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const DEV_ID: &str = "IMEI:490154203237518";
const DMACC: &str = "urn:oma:mo:oma-dm-dmacc:1.2";
const DACMO: &str = "urn:oma:mo:oma-dm-dacmo:1.0";
const APP: &str = "com.example.reader";

struct World {
    tmp: tempfile::TempDir,
    a: ServerHandle,
    repo: Repository,
    bootstrap: std::path::PathBuf,
}

async fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let a = server::start(ServerConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        default_commands: Vec::new(),
        log_errors: false,
    })
    .await
    .unwrap();
    let bootstrap = tmp.path().join("bootstrap.json");
    let body = serde_json::json!([common::dmacc_item("A", &a.dm_url(), &["*"])]);
    std::fs::write(&bootstrap, body.to_string()).unwrap();
    World {
        tmp,
        a,
        repo: Repository::start().await,
        bootstrap,
    }
}

fn leaf(items: &[MoDataItem]) -> serde_json::Value {
    items[0].mo_data.values().next().unwrap().clone()
}

impl World {
    fn device(&self) -> Device {
        let opts = AgentOptions {
            bootstrap: Some(self.bootstrap.clone()),
            dev_id: Some(DEV_ID.into()),
            timeout: Duration::from_secs(10),
            ..AgentOptions::new(self.tmp.path().join("state"))
        };
        let mut device = agent::open_device(&opts).unwrap();
        agent::apply_bootstrap(&mut device, &self.bootstrap).unwrap();
        device
    }

    async fn session(&self, commands: Vec<Command>) -> Vec<CommandResult> {
        let mut device = self.device();
        common::session(&self.a, "A", DEV_ID, &mut device, commands).await
    }

    /// A's HGET of `data` into the DACMO node `target`.
    fn hget(&self, name: &str, target: &str, data: serde_json::Value) -> Command {
        self.repo.hget(name, target, data)
    }
}

#[tokio::test]
async fn applications_get_what_dacmo_grants_them_and_nothing_else() {
    let w = world().await;
    let name = "urn:oma:mo:oma-dm-dmacc:1.2/A/Name";
    let mut device = w.device();
    let dev_id = device
        .local_get(APP, &uri("urn:oma:mo:oma-dm-devinfo:1.2//DevID"))
        .unwrap();
    assert_eq!(leaf(&dev_id), DEV_ID, "DevInfo: `*` Read for everyone");
    assert_eq!(
        device.local_get(APP, &uri(name)),
        Err(LocalError(StatusCode::FORBIDDEN)),
        "A's account is A's"
    );
    assert_eq!(
        device.local_get(APP, &uri("urn:oma:mo:oma-dm-dmacc:1.2/*/Name")),
        Err(LocalError(StatusCode::NOT_FOUND)),
        "a wildcard finds nothing it may see"
    );
    assert_eq!(
        device.local_replace(APP, &uri(name), &"app".into()),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        device.local_replace(
            APP,
            &uri("urn:oma:mo:oma-dm-devinfo:1.2//DevID"),
            &"x".into()
        ),
        StatusCode::COMMAND_NOT_ALLOWED,
        "the DDF check comes first (405)"
    );
    drop(device);

    // A grants the application Read on its account, in DACMO.
    let results = w
        .session(vec![w.hget(
            "grant-app",
            &format!("{DACMO}/{DMACC}/A/1/Permissions/app"),
            serde_json::json!({ "MAID": format!("appid:{APP}"), "AR": 1 }),
        )])
        .await;
    assert_eq!(results[0].status.code, StatusCode::OK);
    let mut device = w.device();
    assert_eq!(
        leaf(&device.local_get(APP, &uri(name)).unwrap()),
        "server A"
    );
    let whole = device
        .local_get(APP, &uri("urn:oma:mo:oma-dm-dmacc:1.2/A/"))
        .unwrap();
    let text = serde_json::to_string(&whole).unwrap();
    assert!(
        text.contains("SrvURI") && !text.contains("Perm") && !text.contains("MOID"),
        "no-Get nodes never reach an application either: {text}"
    );
    assert_eq!(
        device.local_get("com.example.other", &uri(name)),
        Err(LocalError(StatusCode::FORBIDDEN)),
        "the grant names one application"
    );
    assert_eq!(
        device.local_replace(APP, &uri(name), &"app".into()),
        StatusCode::FORBIDDEN,
        "Read only"
    );
    assert_eq!(
        device.local_get("", &uri(name)),
        Err(LocalError(StatusCode::BAD_REQUEST))
    );
}

#[tokio::test]
async fn asking_for_a_missing_moid_triggers_the_default_hget() {
    let w = world().await;
    let served = serde_json::json!([{
        "ClientURI": format!("{DMACC}//"),
        "MOData": { "appacc": {
            "SrvID": "P", "SrvURI": "http://127.0.0.1:9/dm", "Name": "provisioned",
            "Perm": { "p": { "MOID": "urn:oma:mo:oma-dm-devinfo:1.2" } }
        } }
    }]);
    w.repo.route(
        "/defaults",
        200,
        "application/dmmo+json",
        served.to_string(),
    );
    w.repo.route("/broken", 500, "text/plain", "");
    let results = w
        .session(vec![
            Command::Default {
                server_uri: ServerUri::new(w.repo.url("/defaults")),
                moid: DMACC.into(),
            },
            Command::Default {
                server_uri: ServerUri::new(w.repo.url("/broken")),
                moid: "urn:oma:mo:oma-scomo:1.0".into(),
            },
        ])
        .await;
    assert_eq!(results.len(), 2);

    let mut device = w.device();
    assert_eq!(
        device
            .local_request_moid(APP, "urn:oma:mo:oma-lawmo:1.0")
            .await,
        Err(LocalError(StatusCode::NOT_FOUND)),
        "no instance and no DEFAULT"
    );
    assert_eq!(
        device
            .local_request_moid(APP, "urn:oma:mo:oma-scomo:1.0")
            .await,
        Err(LocalError(StatusCode::SERVER_URI_ERROR)),
        "the DEFAULT ServerURI failed (419, as HGET)"
    );
    // The application sees no DMAcc instance (A's is A's): HGET from the
    // DEFAULT ServerURI, into an instance that belongs to the application.
    let uris = device.local_request_moid(APP, DMACC).await.unwrap();
    assert_eq!(uris, [format!("{DMACC}/appacc/")]);
    let got = device
        .local_get(APP, &uri(&format!("{DMACC}/appacc/Name")))
        .unwrap();
    assert_eq!(leaf(&got), "provisioned");
    // Asked again (after a restart): found, no second fetch.
    drop(device);
    let mut device = w.device();
    let again = device.local_request_moid(APP, DMACC).await.unwrap();
    assert_eq!(again, uris);
    let fetches = w
        .repo
        .requests()
        .iter()
        .filter(|r| r.path == "/defaults")
        .count();
    assert_eq!(fetches, 1);
    drop(device);
    // The instance is the application's alone; DACMO says so.
    let results = w
        .session(vec![
            Command::Get {
                client_uri: uri(&format!("{DMACC}/appacc/Name")),
            },
            Command::Get {
                client_uri: uri(&format!("{DACMO}/{DMACC}/appacc/1/Permissions/1/MAID")),
            },
        ])
        .await;
    assert_eq!(results[0].status.code, StatusCode::FORBIDDEN);
    assert_eq!(results[1].status.code, StatusCode::FORBIDDEN);
}

#[cfg(unix)]
#[tokio::test]
async fn the_local_api_speaks_json_lines_on_a_unix_socket() {
    let w = world().await;
    let device = Arc::new(tokio::sync::Mutex::new(w.device()));
    let path = w.tmp.path().join("dm.sock");
    let served = tokio::spawn({
        let (device, path) = (device.clone(), path.clone());
        async move { dm_agent::local_api::serve(device, &path).await }
    });
    let mut stream = None;
    for _ in 0..100 {
        if let Ok(s) = tokio::net::UnixStream::connect(&path).await {
            stream = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stream = stream.expect("socket up");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let requests = [
        serde_json::json!({"op": "get", "app": APP, "uri": "urn:oma:mo:oma-dm-devinfo:1.2//DevID"})
            .to_string(),
        serde_json::json!({"op": "get", "app": APP, "uri": "urn:oma:mo:oma-dm-dmacc:1.2/A/Name"})
            .to_string(),
        "{not json".to_owned(),
        serde_json::json!({"op": "get", "app": APP, "uri": "no slash"}).to_string(),
        serde_json::json!({"op": "moid", "app": APP, "moid": "urn:oma:mo:oma-lawmo:1.0"})
            .to_string(),
        serde_json::json!({"op": "exec", "app": APP, "uri": "urn:oma:mo:oma-dm-devinfo:1.2//DevID"})
            .to_string(),
    ];
    // All requests in one write: answers come one per line, in order.
    let mut all = requests.join("\n");
    all.push('\n');
    write.write_all(all.as_bytes()).await.unwrap();
    let mut answers = Vec::new();
    for _ in &requests {
        let line = lines.next_line().await.unwrap().unwrap();
        answers.push(serde_json::from_str::<serde_json::Value>(&line).unwrap());
    }
    let statuses: Vec<u64> = answers
        .iter()
        .map(|a| a["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 403, 400, 400, 404, 405]);
    assert_eq!(answers[0]["data"][0]["MOData"]["DevID"], DEV_ID);
    assert!(answers[1].get("data").is_none());
    served.abort();
}

/// `dmctl client --local-api PATH`: sessions first, then the socket.
#[cfg(unix)]
#[tokio::test]
async fn dmctl_client_serves_the_local_api_socket() {
    local_api_answers_through_dmctl(&[]).await;
}

#[tokio::test]
async fn the_local_api_is_served_while_waiting_for_notifications() {
    local_api_answers_through_dmctl(&["--notify-udp", "127.0.0.1:0"]).await;
}

/// Starts `dmctl client --local-api` with `extra` arguments and reads
/// DevID through the socket.
async fn local_api_answers_through_dmctl(extra: &[&str]) {
    let w = world().await;
    let socket = w.tmp.path().join("dm.sock");
    let mut child = tokio::process::Command::new(common::dmctl())
        .args(["client", "--state"])
        .arg(w.tmp.path().join("state"))
        .arg("--bootstrap")
        .arg(&w.bootstrap)
        .args(["--dev-id", DEV_ID, "--local-api"])
        .arg(&socket)
        .args(extra)
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stream = None;
    for _ in 0..200 {
        if let Ok(s) = tokio::net::UnixStream::connect(&socket).await {
            stream = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (read, mut write) = stream.expect("dmctl client serves the socket").into_split();
    let request =
        serde_json::json!({"op": "get", "app": APP, "uri": "urn:oma:mo:oma-dm-devinfo:1.2//DevID"});
    write
        .write_all(format!("{request}\n").as_bytes())
        .await
        .unwrap();
    let line = BufReader::new(read)
        .lines()
        .next_line()
        .await
        .unwrap()
        .unwrap();
    let answer: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(answer["status"], 200);
    assert_eq!(answer["data"][0]["MOData"]["DevID"], DEV_ID);
    let _ = child.start_kill();
    let _ = child.wait().await;
}
