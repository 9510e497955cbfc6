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
//! {"op":"changed","app":"...","uri":"..."}  -> {"status":200} (changed on the device)
//! ```
//!
//! Who may use which app id: the peer's credentials (`SO_PEERCRED`) give
//! the uid of the connecting process, and [`AppBindings`] say which app ids
//! each uid may claim. Without a bindings file (`--local-api-apps FILE`)
//! the socket file has mode 0600 and only the agent's own uid and root may
//! claim any app id: the processes of the agent's user are trusted alike.
//! With one, the socket has mode 0666 and a uid may claim only the app ids
//! the file binds to it, root and the agent's uid included; a request
//! claiming another is refused with status 403 and the reason, and a uid
//! bound to none is told so and disconnected. The file is JSON, app id to
//! uids:
//!
//! ```text
//! {"com.example.reader": [10023], "com.example.updater": [10024, 0]}
//! ```
//!
//! Limits: at most [`DEFAULT_MAX_CLIENTS`] connections at once (`--local-
//! api-max-clients`); one past it is answered 503 and closed. When the
//! process runs out of file descriptors (EMFILE, ENFILE) the accept loop
//! pauses [`ACCEPT_BACKOFF`] and tries again: it never ends the agent.
//! Refusals are logged at a bounded rate. [`serve`] removes a stale socket
//! at its path but nothing else: a regular file, a directory or a symbolic
//! link there is a start error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dm_core::{Change, ClientUri, MoDataItem, NodeData, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;

use crate::access::{self, Principal};
use crate::client::{Device, SessionCtx};
use crate::commands::ReadNode;
use crate::rate_log::{RateLog, SUMMARY_INTERVAL};
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
        // One transaction, one durable record, as a server's command.
        let (instance, path) = (target.instance, target.path.into_owned());
        self.begin();
        let code = self.write(&ctx, instance, vec![Change::Put { path, data }]);
        self.finish_command(code, false)
    }

    /// Application `app` reports that the nodes `uri` addresses changed on
    /// the device (issue 18 item 4): each instance it may read gets a new
    /// cache validator (11.1) and its SUB subscribers their HPUT (5.3.11),
    /// without a server asking. 404 when it may read none of them.
    pub async fn local_changed(&mut self, app: &str, uri: &ClientUri) -> StatusCode {
        if check_app(app).is_err() {
            return StatusCode::BAD_REQUEST;
        }
        let ctx = app_ctx(app);
        // What the application may read of it: the instances named.
        let keys: Vec<(&'static str, String)> = match self.read_nodes(&ctx, uri) {
            Ok(items) if !items.is_empty() => items
                .iter()
                .map(|item| {
                    let (moid, miid) = item.instance_key();
                    (moid, miid.to_owned())
                })
                .collect(),
            Ok(_) => return StatusCode::NOT_FOUND,
            Err(code) => return code,
        };
        let mut instances: Vec<usize> = Vec::new();
        for (moid, miid) in &keys {
            if let Some(i) = self.registry().find(moid, miid) {
                if !instances.contains(&i) {
                    instances.push(i);
                }
            }
        }
        for i in instances {
            self.registry_mut().touch(i);
            self.mark_changed(i);
        }
        self.notify_subscribers().await;
        StatusCode::OK
    }

    /// Executes the nodes `uri` addresses for application `app` (5.3.5).
    pub fn local_exec(&mut self, app: &str, uri: &ClientUri) -> StatusCode {
        if check_app(app).is_err() {
            return StatusCode::BAD_REQUEST;
        }
        self.begin();
        let code = self.cmd_exec(&app_ctx(app), uri, None).code;
        self.finish_command(code, false)
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
        self.begin();
        let Some(mut status) = self.fetch_default(&ctx, moid).await else {
            self.abort();
            return Err(LocalError(StatusCode::NOT_FOUND));
        };
        status.code = self.finish_command(status.code, true);
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
    Changed {
        app: String,
        uri: String,
    },
}

impl Request {
    fn app(&self) -> &str {
        match self {
            Request::Get { app, .. }
            | Request::Replace { app, .. }
            | Request::Exec { app, .. }
            | Request::Moid { app, .. }
            | Request::Changed { app, .. } => app,
        }
    }
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

/// Which app ids each uid may claim (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AppBindings {
    /// No bindings file: the agent's own uid and root claim any app id,
    /// no other uid any.
    #[default]
    AgentUserOnly,
    /// `--local-api-apps FILE`: app id to the uids that may claim it.
    File {
        path: PathBuf,
        apps: BTreeMap<String, Vec<u32>>,
    },
}

/// Why a peer may not claim an app id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("uid {uid} may not use the local API: without --local-api-apps only the agent's uid ({agent}) and root may")]
    NotAgentUser { uid: u32, agent: u32 },
    #[error("uid {uid} is bound to no app id in {}", file.display())]
    Unbound { uid: u32, file: PathBuf },
    #[error("app id `{}` is not bound to uid {uid} in {}", app.escape_debug(), file.display())]
    NotBound {
        app: String,
        uid: u32,
        file: PathBuf,
    },
}

impl Refused {
    /// A short label for the bounded-rate log.
    fn reason(&self) -> &'static str {
        match self {
            Refused::NotAgentUser { .. } => "uid not the agent's",
            Refused::Unbound { .. } => "uid bound to no app",
            Refused::NotBound { .. } => "app id not bound to uid",
        }
    }
}

/// Why a bindings file cannot be used: the agent does not start.
#[derive(Debug, thiserror::Error)]
pub enum AppsFileError {
    #[error("local API apps file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("local API apps file {}: not a JSON object of app id to uid list: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("local API apps file {}: app id `{}` is empty or holds a control character", path.display(), app.escape_debug())]
    BadApp { path: PathBuf, app: String },
}

impl AppBindings {
    /// Reads a bindings file: a JSON object of app id to a list of uids.
    pub fn from_file(path: &Path) -> Result<AppBindings, AppsFileError> {
        let bytes = std::fs::read(path).map_err(|source| AppsFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        AppBindings::from_json(path, &bytes)
    }

    fn from_json(path: &Path, bytes: &[u8]) -> Result<AppBindings, AppsFileError> {
        let apps: BTreeMap<String, Vec<u32>> =
            serde_json::from_slice(bytes).map_err(|source| AppsFileError::Parse {
                path: path.to_owned(),
                source,
            })?;
        if let Some(app) = apps.keys().find(|a| check_app(a).is_err()) {
            return Err(AppsFileError::BadApp {
                path: path.to_owned(),
                app: app.clone(),
            });
        }
        Ok(AppBindings::File {
            path: path.to_owned(),
            apps,
        })
    }

    /// Whether `uid` may claim any app id at all (`agent` is the agent's
    /// own uid).
    pub fn admit(&self, uid: u32, agent: u32) -> Result<(), Refused> {
        match self {
            AppBindings::AgentUserOnly if uid == agent || uid == 0 => Ok(()),
            AppBindings::AgentUserOnly => Err(Refused::NotAgentUser { uid, agent }),
            AppBindings::File { path, apps } => {
                if apps.values().any(|uids| uids.contains(&uid)) {
                    Ok(())
                } else {
                    Err(Refused::Unbound {
                        uid,
                        file: path.clone(),
                    })
                }
            }
        }
    }

    /// Whether `uid` may claim `app`.
    pub fn check(&self, uid: u32, agent: u32, app: &str) -> Result<(), Refused> {
        match self {
            AppBindings::AgentUserOnly => self.admit(uid, agent),
            AppBindings::File { path, apps } => {
                if apps.get(app).is_some_and(|uids| uids.contains(&uid)) {
                    Ok(())
                } else {
                    Err(Refused::NotBound {
                        app: app.to_owned(),
                        uid,
                        file: path.clone(),
                    })
                }
            }
        }
    }

    /// The socket's mode: with a bindings file any local user may
    /// connect, the bindings decide; without one, the agent's user only.
    fn socket_mode(&self) -> u32 {
        match self {
            AppBindings::AgentUserOnly => 0o600,
            AppBindings::File { .. } => 0o666,
        }
    }
}

/// Concurrent connections served by default (`--local-api-max-clients`).
pub const DEFAULT_MAX_CLIENTS: u32 = 64;

/// How long the accept loop pauses when the process is out of file
/// descriptors, before trying again.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Longest request line read (a bound against a peer that never sends a
/// newline, not a protocol limit).
const MAX_LINE: u64 = 1024 * 1024;

/// Where and for whom the local API is served.
#[derive(Debug, Clone)]
pub struct LocalApiConfig {
    /// The Unix socket's path (`--local-api PATH`).
    pub path: PathBuf,
    pub apps: AppBindings,
    /// Connections served at once; more are answered 503 and closed.
    pub max_clients: u32,
}

impl LocalApiConfig {
    /// The socket at `path` with the defaults: no bindings file, at most
    /// [`DEFAULT_MAX_CLIENTS`] clients.
    pub fn new(path: impl Into<PathBuf>) -> LocalApiConfig {
        LocalApiConfig {
            path: path.into(),
            apps: AppBindings::default(),
            max_clients: DEFAULT_MAX_CLIENTS,
        }
    }
}

/// Why the local API cannot be served: the agent does not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("local API socket {}: something other than a socket is there; not removed, choose another path", path.display())]
    NotASocket { path: PathBuf },
    #[error("local API socket {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Checks that nothing but a (stale) socket is at `path`: the check done
/// at start, before any session, and again by [`serve`].
pub fn check_socket_path(path: &Path) -> Result<(), ServeError> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(ServeError::Io {
            path: path.to_owned(),
            source,
        }),
        Ok(meta) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::FileTypeExt;
                if meta.file_type().is_socket() {
                    return Ok(());
                }
            }
            let _ = meta;
            Err(ServeError::NotASocket {
                path: path.to_owned(),
            })
        }
    }
}

/// Removes the socket at `path` when the API stops; whatever else is
/// there now is left alone.
pub fn remove_socket(path: &Path) {
    if std::fs::symlink_metadata(path).is_ok() && check_socket_path(path).is_ok() {
        let _ = std::fs::remove_file(path);
    }
}

async fn answer(device: &Mutex<Device>, peer: &Peer, line: &str) -> Answer {
    let request: Request = match serde_json::from_str(line) {
        Ok(r) => r,
        Err(e) => return Answer::error(StatusCode::BAD_REQUEST, format!("bad request: {e}")),
    };
    if let Err(refused) = peer.bindings.check(peer.uid, peer.agent_uid, request.app()) {
        peer.log(&refused);
        return Answer::error(StatusCode::FORBIDDEN, refused.to_string());
    }
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
        Request::Changed { app, uri } => match parse(&uri) {
            Ok(uri) => Answer::status(device.lock().await.local_changed(&app, &uri).await),
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

/// The connecting process and what it may claim.
struct Peer {
    uid: u32,
    agent_uid: u32,
    bindings: Arc<AppBindings>,
    log: Arc<std::sync::Mutex<RateLog>>,
}

impl Peer {
    fn log(&self, refused: &Refused) {
        log_limited(&self.log, refused.reason(), || {
            format!("dmctl client: local API: {refused}")
        });
    }
}

fn log_limited(
    log: &std::sync::Mutex<RateLog>,
    reason: &'static str,
    detail: impl FnOnce() -> String,
) {
    let lines = match log.lock() {
        Ok(mut log) => log.record(Instant::now(), reason, detail),
        Err(_) => return,
    };
    for line in lines {
        tracing::warn!("{line}");
    }
}

/// Serves the local API on a Unix socket at `config.path` (replacing a
/// stale socket there, nothing else) until the task is dropped; each
/// connection is served in its own task, requests of all connections in
/// turn on the device. Errors only when the socket cannot be set up; once
/// it is, accepting never fails for good.
#[cfg(unix)]
pub async fn serve(device: Arc<Mutex<Device>>, config: &LocalApiConfig) -> Result<(), ServeError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let path = &config.path;
    let fail = |source| ServeError::Io {
        path: path.clone(),
        source,
    };
    check_socket_path(path)?;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
        _ => {}
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(fail)?;
    let mode = config.apps.socket_mode();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(fail)?;
    // The socket file is the agent's effective uid's: no libc needed.
    let agent_uid = std::fs::metadata(path).map_err(fail)?.uid();
    let bindings = Arc::new(config.apps.clone());
    let log = Arc::new(std::sync::Mutex::new(RateLog::new("local API refusals")));
    let permits = usize::try_from(config.max_clients).unwrap_or(usize::MAX);
    let slots = Arc::new(tokio::sync::Semaphore::new(
        permits.min(tokio::sync::Semaphore::MAX_PERMITS),
    ));
    let mut summary = tokio::time::interval(SUMMARY_INTERVAL);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = summary.tick() => {
                let line = log.lock().ok().and_then(|mut l| l.flush(Instant::now()));
                if let Some(line) = line {
                    tracing::warn!("dmctl client: local API: {line}");
                }
                continue;
            }
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE, ENFILE (out of descriptors), ENOBUFS, ENOMEM or
                // a connection that went away: none is the socket's end.
                // Pause so that other connections close, then go on.
                log_limited(&log, "accept failed", || {
                    format!(
                        "dmctl client: local API: accept failed ({e}); pausing {} ms",
                        ACCEPT_BACKOFF.as_millis()
                    )
                });
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            let max = config.max_clients;
            log_limited(&log, "too many clients", || {
                format!("dmctl client: local API: more than {max} clients at once; refusing")
            });
            let a = Answer::error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("too many local API clients (at most {max} at once)"),
            );
            // Never waits on the peer: a fresh socket's buffer takes it.
            let _ = stream.try_write(&answer_bytes(&a));
            continue;
        };
        let peer = match stream.peer_cred() {
            Ok(cred) => Peer {
                uid: cred.uid(),
                agent_uid,
                bindings: bindings.clone(),
                log: log.clone(),
            },
            Err(e) => {
                log_limited(&log, "no peer credentials", || {
                    format!("dmctl client: local API: no peer credentials ({e}); refusing")
                });
                continue;
            }
        };
        let device = device.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let (read, mut write) = stream.into_split();
            if let Err(refused) = peer.bindings.admit(peer.uid, peer.agent_uid) {
                peer.log(&refused);
                let a = Answer::error(StatusCode::FORBIDDEN, refused.to_string());
                let _ = write.write_all(&answer_bytes(&a)).await;
                return;
            }
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
                    let _ = write.write_all(&answer_bytes(&a)).await;
                    return;
                }
                let a = answer(&device, &peer, line.trim_end()).await;
                if write.write_all(&answer_bytes(&a)).await.is_err() {
                    return;
                }
            }
        });
    }
}

fn answer_bytes(answer: &Answer) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(answer).unwrap_or_else(|_| b"{\"status\":500}".to_vec());
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(json: &str) -> AppBindings {
        AppBindings::from_json(Path::new("apps.json"), json.as_bytes()).unwrap()
    }

    #[test]
    fn without_a_file_the_agents_uid_and_root_claim_any_app_id() {
        let b = AppBindings::AgentUserOnly;
        assert_eq!(b.check(1000, 1000, "com.a"), Ok(()));
        assert_eq!(b.check(0, 1000, "com.b"), Ok(()));
        assert_eq!(
            b.check(1001, 1000, "com.a"),
            Err(Refused::NotAgentUser {
                uid: 1001,
                agent: 1000
            })
        );
        assert!(b.admit(1001, 1000).is_err());
    }

    #[test]
    fn with_a_file_a_uid_claims_only_the_app_ids_bound_to_it() {
        let b = file(r#"{"com.a": [1001], "com.b": [1002, 1003]}"#);
        assert_eq!(b.check(1001, 1000, "com.a"), Ok(()));
        assert_eq!(b.check(1003, 1000, "com.b"), Ok(()));
        let refused = b.check(1001, 1000, "com.b").unwrap_err();
        assert_eq!(
            refused.to_string(),
            "app id `com.b` is not bound to uid 1001 in apps.json"
        );
        // The agent's uid and root have only what the file gives them.
        assert!(b.check(1000, 1000, "com.a").is_err());
        assert!(b.check(0, 1000, "com.a").is_err());
        assert!(b.admit(1002, 1000).is_ok());
        assert_eq!(
            b.admit(1000, 1000),
            Err(Refused::Unbound {
                uid: 1000,
                file: "apps.json".into()
            })
        );
    }

    #[test]
    fn a_bad_apps_file_names_its_fault() {
        let bad = |json: &str| AppBindings::from_json(Path::new("apps.json"), json.as_bytes());
        assert!(matches!(bad("[1, 2]"), Err(AppsFileError::Parse { .. })));
        assert!(matches!(
            bad(r#"{"com.a": [-1]}"#),
            Err(AppsFileError::Parse { .. })
        ));
        assert!(matches!(
            bad(r#"{"": [1]}"#),
            Err(AppsFileError::BadApp { .. })
        ));
        assert!(matches!(
            AppBindings::from_file(Path::new("/nonexistent/apps.json")),
            Err(AppsFileError::Read { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn only_a_socket_may_be_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        std::fs::write(&file, "keep").unwrap();
        assert!(matches!(
            check_socket_path(&file),
            Err(ServeError::NotASocket { .. })
        ));
        assert!(matches!(
            check_socket_path(tmp.path()),
            Err(ServeError::NotASocket { .. })
        ));
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink("/nonexistent", &link).unwrap();
        assert!(check_socket_path(&link).is_err());
        assert!(check_socket_path(&tmp.path().join("none")).is_ok());
        let sock = tmp.path().join("sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert!(check_socket_path(&sock).is_ok());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
    }
}
