//! `dmctl demo`: the reference DM Server and a device in one process on
//! loopback, one DM Session, and a readable transcript of every package.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use dm_core::{ClientUri, Command, MoDataItem};

use crate::client::{Device, DeviceConfig, Initiation};
use crate::http::{Exchange, Message};
use crate::server::{self, ServerConfig};

/// The DevID the demo device reports.
pub const DEMO_DEV_ID: &str = "UUID:00000000-0000-4000-8000-00000000d2d0";

/// Why the demo failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("could not start the DM Server: {0}")]
    Server(#[from] std::io::Error),
    #[error("the DM Session failed: {0}")]
    Session(#[from] crate::SessionError),
    #[error("the server has no record of the demo device")]
    NoRecord,
}

fn get(uri: &str) -> Option<Command> {
    let client_uri: ClientUri = uri.parse().ok()?;
    Some(Command::Get { client_uri })
}

/// The commands the demo server sends: reads of DevInfo in the ClientURI
/// forms of spec 6.1, and one MO the device does not have.
pub fn demo_commands() -> Vec<Command> {
    [
        "urn:oma:mo:oma-dm-devinfo:1.2//",
        "urn:oma:mo:oma-dm-devinfo:1.2//DevID",
        "urn:oma:mo:oma-dm-devinfo:1.2/*/Man",
        "urn:oma:mo:oma-dm-devinfo:1.2/devinfo/?lv=1",
        "urn:oma:mo:oma-dm-devinfo:1.2/(x)/Mod?nv=(x)/DmV:2.0",
        "urn:oma:mo:oma-dcmo:1.0//",
    ]
    .into_iter()
    .filter_map(get)
    .collect()
}

/// Runs the demo, writing the transcript to `out`.
pub async fn run(out: &mut (dyn Write + Send)) -> Result<(), DemoError> {
    let server = server::start(ServerConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        default_commands: demo_commands(),
        log_errors: true,
    })
    .await?;
    let _ = writeln!(out, "DM Server listening on {}", server.dm_url());
    let _ = writeln!(out, "Device {DEMO_DEV_ID} with MOs: {}\n", mo_list());

    let exchanges: Arc<Mutex<Vec<Exchange>>> = Arc::default();
    let mut device = Device::new(
        DeviceConfig::new(DEMO_DEV_ID),
        crate::standard_registry(DEMO_DEV_ID),
    );
    let sink = exchanges.clone();
    device.observe(Arc::new(move |e: &Exchange| {
        sink.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(e.clone());
    }));
    let result = device
        .run_session(&server.dm_url(), Initiation::ClientInitiated, true)
        .await;
    let record = server.device(DEMO_DEV_ID);
    server.shutdown().await;

    let exchanges = std::mem::take(&mut *exchanges.lock().unwrap_or_else(|p| p.into_inner()));
    for (i, e) in exchanges.iter().enumerate() {
        let _ = writeln!(out, "==> device -> server  (HTTP exchange {})", i + 1);
        write_message(out, &e.request);
        let _ = writeln!(out, "<== server -> device");
        write_message(out, &e.response);
    }
    result?;
    let record = record.ok_or(DemoError::NoRecord)?;
    let _ = writeln!(
        out,
        "Summary: {} session(s), {} ended with END",
        record.sessions, record.ended
    );
    let _ = writeln!(out, "  #    {:<62} status", "command");
    for (i, r) in record.results.iter().enumerate() {
        let cmd = r.command.to_json();
        let text = cmd
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let _ = writeln!(out, "  {:<4} {:<62} {}", i, text, r.status.code);
    }
    if let Some(dev_id) = record
        .results
        .iter()
        .filter_map(|r| r.data.as_ref())
        .find_map(|p| MoDataItem::parse_list(&p.body).ok())
        .and_then(|items| {
            items
                .first()
                .and_then(|i| i.mo_data.values().next())
                .and_then(|v| v.get("DevID"))
                .and_then(|v| v.as_str().map(str::to_owned))
        })
    {
        let _ = writeln!(out, "\nThe server read DevInfo/DevID = {dev_id}");
    }
    Ok(())
}

fn mo_list() -> String {
    let registry = crate::standard_registry(DEMO_DEV_ID);
    let mos: Vec<String> = registry
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

/// Prints one HTTP message: the start line, the headers that matter to DM,
/// and the body (JSON pretty-printed, other text as it is).
fn write_message(out: &mut (dyn Write + Send), m: &Message) {
    let _ = writeln!(out, "{}", m.start_line);
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
