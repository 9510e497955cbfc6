//! The local API: applications running on the device read and change the
//! DM Tree as Management Authorities of their own (`appid:<id>`, spec 10,
//! 12.3), through the same checks as a DM Server: the DDF access type
//! (405) and the DACMO rules (403, `appid:` and `*` MAIDs); nodes without
//! Get or without Read never reach them. An instance an application
//! creates is its own (10: "The creator (i.e., the DM Server, an
//! application running locally on the Device) ... gets the exclusive full
//! permissions").
//!
//! When an application asks for an MOID of which it sees no instance and
//! a DM Server registered a DEFAULT ServerURI for it, the device performs
//! HGET against that ServerURI, with no status to any server (5.3.10); the
//! instances it creates belong to the asking application.
//!
//! [`serve`] offers the API on a Unix socket as JSON lines (one request,
//! one answer per line):
//!
//! ```text
//! {"op":"get","app":"com.example.a","uri":"urn:oma:mo:oma-dm-devinfo:1.2//DevID"}
//!   -> {"status":200,"data":[{"ClientURI":"...","MOData":{"DevID":"IMEI:..."}}]}
//! {"op":"replace","app":"...","uri":"...","value":<MOData of the node>} -> {"status":200}
//! {"op":"exec","app":"...","uri":"..."}                                -> {"status":200}
//! {"op":"moid","app":"...","moid":"urn:oma:mo:..."} -> {"status":200,"uris":["..."]}
//! ```
//!
//! Who may connect: the socket file is created with mode 0600, so only
//! processes of the device agent's own user reach it; the `app` id is the
//! one those processes claim. A platform with stronger application
//! identity binds it to the peer's credentials before calling the Rust API.

use std::path::Path;
use std::sync::Arc;

use dm_core::{Change, ClientUri, MoDataItem, NodeData, ServerUri, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;

use crate::access::{self, Principal};
use crate::client::{Device, SessionCtx};
use crate::commands::ReadNode;
use crate::tree::Owner;

/// What the local API answers when a request cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("local API request refused: {0}")]
pub struct LocalError(pub StatusCode);

fn app_ctx(app: &str) -> SessionCtx {
    SessionCtx {
        principal: Principal::App(app.to_owned()),
        server_accept: None,
        owner: Owner::App(app.to_owned()),
    }
}

/// An application id: what follows `appid:` in a MAID (12.3 leaves its
/// format to the platform; it must at least be a non-empty single line).
fn check_app(app: &str) -> Result<(), LocalError> {
    if app.is_empty() || app.chars().any(char::is_control) {
        return Err(LocalError(StatusCode::BAD_REQUEST));
    }
    Ok(())
}

impl Device {
    /// Reads every node `uri` addresses for application `app`, as GET
    /// does (5.3.6): the MO data items, without the nodes it may not read.
    pub fn local_get(&self, app: &str, uri: &ClientUri) -> Result<Vec<MoDataItem>, LocalError> {
        check_app(app)?;
        self.read_nodes(&app_ctx(app), uri)
            .map(|items| items.into_iter().map(ReadNode::into_item).collect())
            .map_err(LocalError)
    }

    /// Stores `value` (the MOData of the node, as in 7.2.1.4) at `uri` for
    /// application `app`, as HGET with a ClientURI does (5.3.1).
    pub fn local_replace(&mut self, app: &str, uri: &ClientUri, value: &Json) -> StatusCode {
        if check_app(app).is_err() {
            return StatusCode::BAD_REQUEST;
        }
        if uri.has_wildcard() {
            return StatusCode::BAD_REQUEST;
        }
        let ctx = app_ctx(app);
        let target = match self.write_target(&ctx, uri) {
            Ok(t) => t,
            Err(code) => return code,
        };
        let Some(schema) = self
            .registry()
            .schema_at(target.instance, target.path.names())
        else {
            return StatusCode::NOT_FOUND;
        };
        let Ok(data) = NodeData::from_json(value, schema) else {
            return StatusCode::UNSUPPORTED_MEDIA_TYPE;
        };
        self.write(
            &ctx,
            target.instance,
            vec![Change::Put {
                path: target.path.into_owned(),
                data,
            }],
        )
    }

    /// Executes the nodes `uri` addresses for application `app` (5.3.5).
    pub fn local_exec(&mut self, app: &str, uri: &ClientUri) -> StatusCode {
        if check_app(app).is_err() {
            return StatusCode::BAD_REQUEST;
        }
        self.cmd_exec(&app_ctx(app), uri, None).code
    }

    /// The ClientURIs of the instances of `moid` application `app` may
    /// use. When it sees none and a DEFAULT ServerURI is registered for
    /// the MOID, HGET from there first (5.3.10); 404 when there is neither.
    pub async fn local_request_moid(
        &mut self,
        app: &str,
        moid: &str,
    ) -> Result<Vec<String>, LocalError> {
        check_app(app)?;
        let ctx = app_ctx(app);
        let visible = self.visible_instances(&ctx, moid);
        if !visible.is_empty() {
            return Ok(visible);
        }
        let Some(server_uri) = self
            .agent_state()
            .defaults
            .iter()
            .find(|(m, _)| m == moid)
            .map(|(_, uri)| ServerUri::new(uri.clone()))
        else {
            return Err(LocalError(StatusCode::NOT_FOUND));
        };
        let status = self.cmd_hget(&ctx, &server_uri, None).await;
        // A change reaches subscribers whatever made it (5.3.11).
        self.notify_subscribers().await;
        if !status.code.is_success() {
            return Err(LocalError(status.code));
        }
        let visible = self.visible_instances(&ctx, moid);
        if visible.is_empty() {
            // The DEFAULT source served data of other MOIDs only.
            return Err(LocalError(StatusCode::NOT_FOUND));
        }
        Ok(visible)
    }

    fn visible_instances(&self, ctx: &SessionCtx, moid: &str) -> Vec<String> {
        self.registry()
            .instances()
            .filter(|(_, i)| i.mo().schema().moid == moid)
            .filter(|(n, _)| access::can_see(&ctx.principal, self.registry(), *n))
            .map(|(_, i)| ClientUri::for_node::<&str>(moid, i.miid(), &[]))
            .collect()
    }
}

/// One request on the socket.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Request {
    Get {
        app: String,
        uri: String,
    },
    Replace {
        app: String,
        uri: String,
        value: Json,
    },
    Exec {
        app: String,
        uri: String,
    },
    Moid {
        app: String,
        moid: String,
    },
}

/// One answer on the socket.
#[derive(Debug, Serialize)]
struct Answer {
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Vec<MoDataItem>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uris: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Answer {
    fn status(code: StatusCode) -> Answer {
        Answer {
            status: code.as_u16(),
            data: None,
            uris: None,
            error: None,
        }
    }

    fn error(code: StatusCode, error: String) -> Answer {
        Answer {
            error: Some(error),
            ..Answer::status(code)
        }
    }
}

async fn answer(device: &Mutex<Device>, line: &str) -> Answer {
    let request: Request = match serde_json::from_str(line) {
        Ok(r) => r,
        Err(e) => return Answer::error(StatusCode::BAD_REQUEST, format!("bad request: {e}")),
    };
    let parse = |uri: &str| {
        uri.parse::<ClientUri>()
            .map_err(|e| Answer::error(StatusCode::BAD_REQUEST, e.to_string()))
    };
    match request {
        Request::Get { app, uri } => match parse(&uri) {
            Ok(uri) => match device.lock().await.local_get(&app, &uri) {
                Ok(items) => Answer {
                    data: Some(items),
                    ..Answer::status(StatusCode::OK)
                },
                Err(LocalError(code)) => Answer::status(code),
            },
            Err(a) => a,
        },
        Request::Replace { app, uri, value } => match parse(&uri) {
            Ok(uri) => Answer::status(device.lock().await.local_replace(&app, &uri, &value)),
            Err(a) => a,
        },
        Request::Exec { app, uri } => match parse(&uri) {
            Ok(uri) => Answer::status(device.lock().await.local_exec(&app, &uri)),
            Err(a) => a,
        },
        Request::Moid { app, moid } => {
            match device.lock().await.local_request_moid(&app, &moid).await {
                Ok(uris) => Answer {
                    uris: Some(uris),
                    ..Answer::status(StatusCode::OK)
                },
                Err(LocalError(code)) => Answer::status(code),
            }
        }
    }
}

/// Longest request line read (a bound against a peer that never sends a
/// newline, not a protocol limit).
const MAX_LINE: u64 = 1024 * 1024;

/// Serves the local API on a Unix socket at `path` (replacing a stale
/// socket file) until the task is dropped; each connection is served in
/// its own task, requests of all connections in turn on the device.
#[cfg(unix)]
pub async fn serve(device: Arc<Mutex<Device>>, path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    loop {
        let (stream, _) = listener.accept().await?;
        let device = device.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut reader = BufReader::new(read);
            loop {
                let mut line = String::new();
                let n = match (&mut reader).take(MAX_LINE).read_line(&mut line).await {
                    Ok(n) => n,
                    Err(_) => return,
                };
                if n == 0 {
                    return;
                }
                if !line.ends_with('\n') && n as u64 >= MAX_LINE {
                    let a = Answer::error(StatusCode::BAD_REQUEST, "request line too long".into());
                    let _ = write_answer(&mut write, &a).await;
                    return;
                }
                let a = answer(&device, line.trim_end()).await;
                if write_answer(&mut write, &a).await.is_err() {
                    return;
                }
            }
        });
    }
}

async fn write_answer(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    answer: &Answer,
) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(answer).unwrap_or_else(|_| b"{\"status\":500}".to_vec());
    bytes.push(b'\n');
    write.write_all(&bytes).await
}
