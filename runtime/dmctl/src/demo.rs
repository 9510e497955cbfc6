//! `dmctl demo`: the reference DM Server (with its Data Repository and
//! SHOW pages) and a device in one process on loopback. The device is
//! bootstrapped, then one session uses every DM command, a second one
//! delivers the asynchronous EXEC result, a notification starts a third;
//! the transcript of every HTTP exchange is printed, then a summary of
//! command -> status.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use dm_core::{ClientUri, Command, ServerUri, StatusCode};

use dm_agent::{Device, DeviceConfig, Exchange, Initiation, Message, StateDir};
use dm_server::{
    self as server, NotificationConfig, NotifyRequest, RegistrationKind, Resource, ServerConfig,
    ServerError, ServerOptions,
};

/// The DevID the demo device reports.
pub const DEMO_DEV_ID: &str = "UUID:00000000-0000-4000-8000-00000000d2d0";
/// The SrvID of the demo server in the device's DMAcc.
const SERVER_ID: &str = "demo-server";
const DEVINFO: &str = "urn:oma:mo:oma-dm-devinfo:1.2";
const DMACC: &str = "urn:oma:mo:oma-dm-dmacc:1.2";
const DCMO: &str = "urn:oma:mo:oma-dcmo:1.0";
const FUMO: &str = "urn:oma:mo:oma-fumo:1.0";

/// Why the demo failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("could not start the DM Server: {0}")]
    Server(#[from] std::io::Error),
    #[error("the DM Session failed: {0}")]
    Session(#[from] dm_agent::SessionError),
    #[error("the server: {0}")]
    Api(#[from] ServerError),
    #[error("the device: {0}")]
    Device(String),
    #[error("the server has no record of the demo device")]
    NoRecord,
}

fn uri(s: &str) -> Result<ClientUri, DemoError> {
    s.parse()
        .map_err(|e: dm_core::UriError| DemoError::Device(format!("{s}: {e}")))
}

fn get(s: &str) -> Result<Command, DemoError> {
    Ok(Command::Get {
        client_uri: uri(s)?,
    })
}

/// A state directory of its own, removed at the end.
struct TempState(PathBuf);

impl Drop for TempState {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The device: standard MOs, DCMO compiled in, a
/// state directory (DEFAULT and SUB are kept there), SHOW runs `true`.
fn demo_device(state: &std::path::Path) -> Result<Device, DemoError> {
    let mut registry = dm_agent::standard_registry(DEMO_DEV_ID);
    for (miid, mo) in mo_dcmo::builtin_instances() {
        registry.insert(miid, Box::new(mo));
    }
    // A firmware update that finishes after the session (5.4.1).
    registry.insert("fumo", Box::new(mo_fumo::Fumo::in_dir(state.join("fumo"))));
    let store = StateDir::open(state).map_err(|e| DemoError::Device(e.to_string()))?;
    let agent = store
        .agent_state()
        .map_err(|e| DemoError::Device(e.to_string()))?;
    let mut device = Device::new(DeviceConfig::new(DEMO_DEV_ID), registry).with_store(store, agent);
    // The Web Browser Component: here a program that starts and returns;
    // the demo answers the page itself below.
    device.set_show_cmd(Some("true".into()));
    Ok(device)
}

/// Runs the demo, writing the transcript to `out`.
pub async fn run(out: &mut (dyn Write + Send)) -> Result<(), DemoError> {
    let server = server::start_with(
        ServerConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            default_commands: Vec::new(),
            log_errors: true,
        },
        ServerOptions::default(),
    )
    .await?;
    let result = demo(&server, out).await;
    server.shutdown().await;
    result
}

async fn demo(
    server: &server::ServerHandle,
    out: &mut (dyn Write + Send),
) -> Result<(), DemoError> {
    let dir = TempState(std::env::temp_dir().join(format!("dmctl-demo-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0)?;
    let _ = writeln!(out, "DM Server listening on {}", server.dm_url());
    let _ = writeln!(
        out,
        "Data Repository at {}/repo/, SHOW pages at {}/ui\n",
        server.base_url(),
        server.base_url()
    );

    // Factory bootstrap (8.2): one DMAcc account for the demo server, with
    // the Auth/Noti credentials its notifications are signed with.
    let bootstrap = serde_json::json!([{
        "ClientURI": format!("{DMACC}/{SERVER_ID}/"),
        "MOData": { SERVER_ID: {
            "SrvID": SERVER_ID, "SrvURI": server.dm_url(), "Name": "Demo DM Server",
            "Perm": { "all": { "MOID": "*" } },
            "Auth": { "Noti": { "Type": 0, "Data": "ZGVtbw==", "Secret": "ZGVtby1zZWNyZXQ=" } }
        } }
    }]);
    let bootstrap_file = dir.0.join("bootstrap.json");
    std::fs::write(&bootstrap_file, bootstrap.to_string())?;
    let mut device = demo_device(&dir.0.join("state"))?;
    dm_agent::service::apply_bootstrap(&mut device, &bootstrap_file)
        .map_err(|e| DemoError::Device(e.to_string()))?;
    let _ = writeln!(
        out,
        "Device {DEMO_DEV_ID}, bootstrapped for {SERVER_ID}, with MOs: {}\n",
        mo_list(&device)
    );

    let exchanges: Arc<Mutex<Vec<Exchange>>> = Arc::default();
    let sink = exchanges.clone();
    device.observe(Arc::new(move |e: &Exchange| {
        sink.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(e.clone());
    }));

    // What the repository holds for HGET: a new DMAcc instance, two names.
    let storage = server.storage();
    let put = |path: &str, content_type: &str, body: String| {
        storage.put_resource(
            DEMO_DEV_ID,
            path,
            &Resource {
                content_type: content_type.into(),
                body: body.into_bytes(),
                origin: "admin".into(),
                updated: server::now(),
            },
        )
    };
    let extra = serde_json::json!([{ "ClientURI": format!("{DMACC}//"), "MOData": { "backup": {
        "SrvID": "backup", "SrvURI": "http://127.0.0.1:9/dm", "Name": "Backup server",
        "Perm": { "p": { "MOID": DEVINFO } } } } }]);
    put(
        "backup.json",
        dm_core::package::media_type::MO_DATA,
        extra.to_string(),
    )
    .map_err(ServerError::from)?;
    put("name.txt", "text/plain", "Backup server (renamed)".into()).map_err(ServerError::from)?;
    // A firmware package, and PkgURL: its URL signed for the device's GET.
    put("fw.bin", "application/octet-stream", "firmware 2.0".into()).map_err(ServerError::from)?;
    let day = server::now() + 24 * 3600;
    let pkg_url = server.signed_repo_url_until("GET", DEMO_DEV_ID, "fw.bin", day);
    put("pkgurl.txt", "text/plain", pkg_url).map_err(ServerError::from)?;
    put("name2.txt", "text/plain", "Backup server (changed)".into()).map_err(ServerError::from)?;

    let repo = |p: &str| ServerUri::new(format!("{}/repo/[DevID]/{p}", server.base_url()));
    let name = format!("{DMACC}/backup/Name");
    let q = |c: Command| server.try_enqueue(DEMO_DEV_ID, c);
    q(get(&format!("{DEVINFO}/*/Man"))?)?;
    q(get(&format!("{DEVINFO}/(x)/DevID?nv=(x)/DmV:2.0"))?)?;
    q(get("urn:oma:mo:oma-scomo:1.0//")?)?;
    q(Command::Hget {
        server_uri: repo("backup.json"),
        client_uri: None,
    })?;
    q(Command::Hget {
        server_uri: repo("name.txt"),
        client_uri: Some(uri(&name)?),
    })?;
    q(Command::Hput {
        server_uri: repo("devinfo.json"),
        client_uris: vec![uri(&format!("{DEVINFO}//"))?],
    })?;
    q(Command::Hpost {
        server_uri: repo("devid.txt"),
        client_uris: vec![uri(&format!("{DEVINFO}//DevID"))?],
    })?;
    q(Command::Exec {
        client_uri: uri(&format!("{DCMO}/Camera/Operations/Disable"))?,
        server_uri: None,
    })?;
    q(Command::Exec {
        client_uri: uri(&format!("{DCMO}/USB/Operations/Disable"))?,
        server_uri: Some(ServerUri::new(server.dm_url())),
    })?;
    q(Command::Hget {
        server_uri: repo("pkgurl.txt"),
        client_uri: Some(uri(&format!("{FUMO}/fumo/DownloadAndUpdate/PkgURL"))?),
    })?;
    q(Command::Exec {
        client_uri: uri(&format!("{FUMO}/fumo/DownloadAndUpdate"))?,
        server_uri: Some(ServerUri::new(server.dm_url())),
    })?;
    let uiid = server.show(DEMO_DEV_ID, "Disable the USB port?")?;
    server.register(
        DEMO_DEV_ID,
        RegistrationKind::Default {
            moid: "urn:oma:mo:oma-mms:1.3".into(),
        },
        repo("mms.json").as_str(),
    )?;
    let sub = server.register(
        DEMO_DEV_ID,
        RegistrationKind::Sub {
            client_uri: name.clone(),
        },
        repo("backup-name").as_str(),
    )?;
    q(Command::Hget {
        server_uri: repo("name2.txt"),
        client_uri: Some(uri(&name)?),
    })?;
    server.unregister(DEMO_DEV_ID, sub)?;
    q(Command::Cont {
        server_uri: ServerUri::new(format!("{}/continued", server.dm_url())),
    })?;
    q(Command::Delete {
        client_uri: uri(&format!("{DMACC}/backup/"))?,
    })?;
    q(Command::End)?;

    // Session 1: BootstrapComplete with MOS, every command.
    device
        .run_session_as(SERVER_ID, Initiation::BootstrapComplete, true, Vec::new())
        .await?;
    // Session 2: the asynchronous EXECs' Generic Alerts (5.4.1), once the
    // firmware update has installed its package (within 20 s), in one
    // session: both go to the same server.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while device.take_inbox() || device.pending_exec_count() > 0 {
        if std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for o in dm_agent::service::deliver_alerts(&mut device).await {
        o.result?;
    }
    // The user answers the SHOW page (what a browser would POST).
    let answered = answer_show(server, uiid).await;
    // Session 3: started by a signed Package#0 over UDP (5.2.1, E.3).
    let socket = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    server.configure_notification(
        DEMO_DEV_ID,
        NotificationConfig {
            server_id: SERVER_ID.into(),
            secret: Some(b"demo-secret".to_vec()),
            auth_data: b"demo".to_vec(),
            udp: Some(socket.local_addr()?.to_string()),
        },
    )?;
    q(get(&format!("{DEVINFO}//FwV"))?)?;
    let notification_id = server
        .notify(
            DEMO_DEV_ID,
            &NotifyRequest {
                req_mos: true,
                timestamp: true,
                ..NotifyRequest::default()
            },
        )
        .await?;
    let mut buf = [0u8; 512];
    let (n, _) = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        socket.recv_from(&mut buf),
    )
    .await
    .map_err(|_| DemoError::Device("no notification arrived".into()))??;
    let (server_id, notification) =
        dm_agent::service::accept_notification(&mut device, &buf[..n], server::now(), 300)
            .map_err(|e| DemoError::Device(e.to_string()))?;
    device
        .run_session_as(
            &server_id,
            Initiation::ServerInitiated {
                notification_id: notification.notification_id,
            },
            notification.req_mos,
            Vec::new(),
        )
        .await?;

    let exchanges = std::mem::take(&mut *exchanges.lock().unwrap_or_else(|p| p.into_inner()));
    let mut session = 0;
    for e in &exchanges {
        if e.request.header("content-type") == Some(dm_core::package::media_type::PACKAGE1) {
            session += 1;
            let _ = writeln!(
                out,
                "################ DM Session {session} ################\n"
            );
        }
        // Signed repository URLs: the path is what a reader follows, the
        // `?exp=..&sig=..` is noise here (it stays in the Package#2 shown).
        let line = &e.request.start_line;
        let line = match line.split_once('?') {
            Some((path, query)) if query.contains("sig=") => path,
            _ => line,
        };
        let _ = writeln!(out, "==> device -> {line}");
        write_message(out, &e.request);
        let _ = writeln!(out, "<== {}", e.response.start_line);
        write_message(out, &e.response);
    }

    let record = server.device(DEMO_DEV_ID).ok_or(DemoError::NoRecord)?;
    let _ = writeln!(out, "################ Summary ################\n");
    let _ = writeln!(
        out,
        "{} session(s), {} ended with END; Package#0 NOTIFICATION-ID {notification_id} started the last one",
        record.sessions, record.ended
    );
    let _ = writeln!(out, "  #   {:<70} status", "command");
    for (i, r) in record.results.iter().enumerate() {
        let text = short(&r.command, server.base_url());
        if matches!(r.command, Command::End) {
            // spec 5.3.9: nothing comes back for END.
            let _ = writeln!(out, "  {:<3} {text:<70} (session ended)", i + 1);
            continue;
        }
        let asynchronous = r
            .async_status
            .and_then(StatusCode::from_u16)
            .map(|s| format!(", then {} {} (Generic Alert)", s.as_u16(), s.label()))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<3} {:<70} {} {}{asynchronous}",
            i + 1,
            text,
            r.status.code.as_u16(),
            r.status.code.label()
        );
    }
    let _ = writeln!(
        out,
        "\nSHOW page answered: {}",
        answered.unwrap_or_else(|| "no answer".into())
    );
    for path in storage.resources(DEMO_DEV_ID).map_err(ServerError::from)? {
        if let Ok(Some(r)) = storage.resource(DEMO_DEV_ID, &path) {
            if r.origin != "admin" {
                let _ = writeln!(
                    out,
                    "Repository got {path} by {} ({}, {} bytes)",
                    r.origin,
                    r.content_type,
                    r.body.len()
                );
            }
        }
    }
    Ok(())
}

/// Posts the user's choice to the SHOW page, as the browser's form does.
async fn answer_show(server: &server::ServerHandle, uiid: u64) -> Option<String> {
    let body = format!("uiid={uiid}&choice=confirm");
    // The form posts with the signature of the SHOW's link: only the
    // holder of that link (or the device) may answer.
    let record = server.device(DEMO_DEV_ID)?;
    let link = record
        .results
        .iter()
        .map(|r| &r.command)
        .chain(&record.queue)
        .find_map(|c| match c {
            Command::Show { server_uri } => Some(server_uri.as_str().to_owned()),
            _ => None,
        })?;
    let (_, query) = link.split_once('?')?;
    let url = format!("{}{}/choice?{query}", server.base_url(), server::UI_PATH);
    let request = hyper::Request::post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .ok()?;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let answer = tokio::time::timeout(std::time::Duration::from_secs(5), client.request(request));
    answer.await.ok()?.ok()?;
    server.storage().ui_session(uiid).ok()??.choice
}

/// A command as one line: name and parameters.
/// Addresses of this server are written as paths.
fn short(c: &Command, base: &str) -> String {
    let json = c.to_json();
    let text = json
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
        .replace(base, "");
    if text.chars().count() > 70 {
        let cut: String = text.chars().take(67).collect();
        format!("{cut}...")
    } else {
        text
    }
}

fn mo_list(device: &Device) -> String {
    let mos: Vec<String> = device
        .registry()
        .mos()
        .into_iter()
        .map(|(s, miids)| format!("{} ({})", s.moid, miids.join(", ")))
        .collect();
    if mos.is_empty() {
        "none".into()
    } else {
        mos.join("; ")
    }
}

/// Prints one HTTP message: the headers that matter to DM, and the body
/// (JSON pretty-printed, other text as it is).
fn write_message(out: &mut (dyn Write + Send), m: &Message) {
    for (k, v) in &m.headers {
        let k_lower = k.to_ascii_lowercase();
        if matches!(
            k_lower.as_str(),
            "content-type" | "accept" | "omadm-devid" | "omadm-accept"
        ) {
            let _ = writeln!(out, "{k}: {v}");
        }
    }
    let _ = writeln!(out);
    let content_type = m.header("content-type").unwrap_or("");
    if let Ok(parts) = dm_core::multipart::decode(content_type, &m.body) {
        for p in parts {
            let name = p
                .name
                .map(|n| format!("; name=\"{n}\""))
                .unwrap_or_default();
            let _ = writeln!(out, "  --- part: form-data{name}; {}", p.content_type);
            for line in pretty(&p.body).lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
        let _ = writeln!(out);
        return;
    }
    let body = pretty(&m.body);
    if !body.is_empty() {
        let _ = writeln!(out, "{}", body.trim_end());
    }
    let _ = writeln!(out);
}

/// JSON pretty-printed, other text as it is, binary as its size.
fn pretty(body: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(json) => serde_json::to_string_pretty(&json).unwrap_or_default(),
        Err(_) => match std::str::from_utf8(body) {
            Ok(text) => text.replace("\r\n", "\n"),
            Err(_) => format!("<{} bytes of binary data>", body.len()),
        },
    }
}
