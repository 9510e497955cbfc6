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
        let config = dm_agent::local_api::LocalApiConfig::new(path);
        async move { dm_agent::local_api::serve(device, &config).await }
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
    let mut child = w.dmctl_local_api(&socket, &[], extra);
    let answer = get_dev_id(&socket, APP).await;
    assert_eq!(answer["status"], 200);
    assert_eq!(answer["data"][0]["MOData"]["DevID"], DEV_ID);
    let _ = child.start_kill();
    let _ = child.wait().await;
}

impl World {
    /// `dmctl client --local-api SOCKET` (after `prefix`, e.g. `prlimit`)
    /// with `extra` arguments, stderr piped.
    fn dmctl_local_api(
        &self,
        socket: &std::path::Path,
        prefix: &[&str],
        extra: &[&str],
    ) -> tokio::process::Child {
        let mut command = match prefix.split_first() {
            Some((program, args)) => {
                let mut c = tokio::process::Command::new(program);
                c.args(args).arg(common::dmctl());
                c
            }
            None => tokio::process::Command::new(common::dmctl()),
        };
        command
            .args(["client", "--state"])
            .arg(self.tmp.path().join("state"))
            .arg("--bootstrap")
            .arg(&self.bootstrap)
            .args(["--dev-id", DEV_ID, "--local-api"])
            .arg(socket)
            .args(extra)
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }
}

/// Connects to the socket (waiting for it up to 10 s) and asks for DevID
/// as `app`; the first answer line.
async fn get_dev_id(socket: &std::path::Path, app: &str) -> serde_json::Value {
    let mut stream = None;
    for _ in 0..400 {
        if let Ok(s) = tokio::net::UnixStream::connect(socket).await {
            stream = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (read, mut write) = stream.expect("dmctl client serves the socket").into_split();
    let request =
        serde_json::json!({"op": "get", "app": app, "uri": "urn:oma:mo:oma-dm-devinfo:1.2//DevID"});
    // The agent may close first (a uid bound to nothing): the answer says why.
    let _ = write.write_all(format!("{request}\n").as_bytes()).await;
    let line = tokio::time::timeout(
        Duration::from_secs(10),
        BufReader::new(read).lines().next_line(),
    )
    .await
    .expect("an answer within 10 s")
    .unwrap()
    .expect("an answer line");
    serde_json::from_str(&line).unwrap()
}

/// The uid of this process: the owner of a file it creates.
#[cfg(unix)]
fn own_uid(dir: &std::path::Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    let probe = dir.join("uid-probe");
    std::fs::write(&probe, "").unwrap();
    std::fs::metadata(&probe).unwrap().uid()
}

/// The output of a start that must fail: within 20 s, else the agent is
/// killed and the test fails.
async fn exits(child: tokio::process::Child) -> std::process::Output {
    tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("the agent refused to start")
        .unwrap()
}

async fn stderr_of(mut child: tokio::process::Child) -> String {
    let _ = child.start_kill();
    let out = child.wait_with_output().await.unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `--local-api PATH` where a regular file is: a start error naming the
/// path, before any session, and the file is left as it was.
#[cfg(unix)]
#[tokio::test]
async fn a_file_at_the_socket_path_is_a_start_error_and_is_kept() {
    let w = world().await;
    let path = w.tmp.path().join("precious.txt");
    std::fs::write(&path, "do not delete").unwrap();
    for extra in [&[][..], &["--notify-udp", "127.0.0.1:0"][..]] {
        let child = w.dmctl_local_api(&path, &[], extra);
        let out = exits(child).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(&path.display().to_string()), "{stderr}");
        assert!(
            stderr.contains("not a socket") || stderr.contains("other than a socket"),
            "{stderr}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "do not delete");
    }
    assert_eq!(
        w.a.device(DEV_ID).map_or(0, |d| d.sessions),
        0,
        "no session ran"
    );
}

/// `--local-api-apps`: the peer's uid decides which app ids it may claim.
#[cfg(unix)]
#[tokio::test]
async fn an_app_id_is_served_only_to_the_uids_bound_to_it() {
    let w = world().await;
    let uid = own_uid(w.tmp.path());
    let apps = w.tmp.path().join("apps.json");
    let socket = w.tmp.path().join("dm.sock");
    let apps_arg = apps.to_str().unwrap();

    // This uid is bound to APP: APP is served, another app id is not.
    std::fs::write(&apps, serde_json::json!({ APP: [uid] }).to_string()).unwrap();
    let child = w.dmctl_local_api(&socket, &[], &["--local-api-apps", apps_arg]);
    let answer = get_dev_id(&socket, APP).await;
    assert_eq!(answer["status"], 200, "{answer}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o666, "every user may connect; the bindings decide");
    let answer = get_dev_id(&socket, "com.example.other").await;
    assert_eq!(answer["status"], 403, "{answer}");
    let reason = answer["error"].as_str().unwrap();
    assert!(
        reason.contains(&format!(
            "app id `com.example.other` is not bound to uid {uid}"
        )),
        "{reason}"
    );
    let stderr = stderr_of(child).await;
    assert!(stderr.contains("not bound to uid"), "{stderr}");

    // APP bound to another uid only: this one may claim nothing.
    std::fs::write(&apps, serde_json::json!({ APP: [uid + 1] }).to_string()).unwrap();
    let child = w.dmctl_local_api(&socket, &[], &["--local-api-apps", apps_arg]);
    let answer = get_dev_id(&socket, APP).await;
    assert_eq!(answer["status"], 403, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains(&format!("uid {uid} is bound to no app id")),
        "{answer}"
    );
    drop(child);

    // A file that is not an object of uid lists: a start error.
    std::fs::write(&apps, r#"{"com.example.a": "me"}"#).unwrap();
    let out = exits(w.dmctl_local_api(&socket, &[], &["--local-api-apps", apps_arg])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(apps_arg));
}

/// Raises this process's soft open-file limit so that it can hold the
/// clients itself (the agent's limit is what the tests lower).
fn raise_own_nofile(to: u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    if soft < to {
        let status = std::process::Command::new("prlimit")
            .args([
                "--pid",
                &std::process::id().to_string(),
                &format!("--nofile={to}:"),
            ])
            .status()
            .unwrap();
        assert!(
            status.success(),
            "cannot raise the test's open-file limit to {to}"
        );
    }
}

/// 1,100 local clients at once against an agent limited to 1,024 open
/// files: with the default cap (64) the rest are refused with 503; with a
/// cap above the limit the accept loop meets EMFILE and pauses. Either
/// way the agent lives on, answers once the clients are gone, and logs a
/// few lines, not one per client.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_clients_than_open_files_do_not_end_the_agent() {
    raise_own_nofile(4096);
    for (extra, refused_with_503) in [
        (&[][..], true),
        (&["--local-api-max-clients", "2000"][..], false),
    ] {
        let w = world().await;
        let socket = w.tmp.path().join("dm.sock");
        let mut child = w.dmctl_local_api(&socket, &["prlimit", "--nofile=1024:1024"], extra);
        assert_eq!(get_dev_id(&socket, APP).await["status"], 200);

        let mut clients = Vec::new();
        for _ in 0..1100 {
            if let Ok(c) = tokio::net::UnixStream::connect(&socket).await {
                clients.push(c);
            }
        }
        assert!(clients.len() > 1024, "{} clients connected", clients.len());
        if refused_with_503 {
            // The last ones are past the cap: told so, then closed.
            let last = clients.pop().unwrap();
            let mut line = String::new();
            let _ = tokio::time::timeout(
                Duration::from_secs(10),
                BufReader::new(last).read_line(&mut line),
            )
            .await
            .unwrap();
            assert!(line.contains("\"status\":503"), "{line}");
            assert!(line.contains("at most 64"), "{line}");
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(
            child.try_wait().unwrap().is_none(),
            "the agent ended: {}",
            stderr_of(child).await
        );
        drop(clients);
        let answer = get_dev_id(&socket, APP).await;
        assert_eq!(answer["status"], 200, "{answer}");
        assert!(child.try_wait().unwrap().is_none());
        let stderr = stderr_of(child).await;
        assert!(stderr.lines().count() < 12, "{stderr}");
    }
}

#[tokio::test]
async fn an_application_reports_a_change_on_the_device_to_the_subscribers() {
    let w = world().await;
    let lang = "urn:oma:mo:oma-dm-devinfo:1.2//Lang";
    let mut device = w.device();
    // A subscribes to Lang (5.3.11).
    let results = common::session(
        &w.a,
        "A",
        DEV_ID,
        &mut device,
        vec![Command::Sub {
            client_uri: uri(lang),
            server_uri: ServerUri::new(w.repo.url("/lang")),
        }],
    )
    .await;
    assert_eq!(results[0].status.code, StatusCode::OK);
    let puts = |repo: &Repository| {
        repo.requests()
            .iter()
            .filter(|r| r.method == "PUT" && r.path.ends_with("/lang"))
            .count()
    };
    assert_eq!(puts(&w.repo), 0);
    let index = device
        .registry()
        .find("urn:oma:mo:oma-dm-devinfo:1.2", "devinfo")
        .unwrap();
    let cv = |d: &Device| {
        d.registry()
            .instance(index)
            .unwrap()
            .cache_validator()
            .clone()
    };
    let before = cv(&device);
    // The application that changed the language on the device says so.
    assert_eq!(device.local_changed(APP, &uri(lang)).await, StatusCode::OK);
    assert_ne!(cv(&device), before, "a new cache validator (11.1)");
    assert_eq!(puts(&w.repo), 1, "the subscriber got its HPUT");
    // Only about what it may read, and a well-formed application id.
    assert_eq!(
        device
            .local_changed(APP, &uri("urn:oma:mo:oma-dm-dmacc:1.2/A/Name"))
            .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        device.local_changed("", &uri(lang)).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(puts(&w.repo), 1);
}
