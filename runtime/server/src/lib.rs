//! The reference DM Server (spec 5.2, server side; Appendix B.2): answers
//! Package#1 and Package#3 with Package#2 built from a per-device command
//! queue, records what each device reports, serves a Data Repository and
//! the SHOW Web Server Component on the same address, and offers an admin
//! API (HTTP + JSON) on its own address.
//!
//! Everything it knows lives behind [`Storage`]: [`MemoryStorage`] for
//! tests, [`SqliteStorage`] for `dmctl server --db PATH`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use dm_core::multipart::{Part, ResponseBody};
use dm_core::notification::{self, ConnectionType, Notification};
use dm_core::package::{header, media_type};
use dm_core::{
    Alert, ClientUri, Command, InstanceSelector, MoInfo, NodeSelector, Package1, Package2,
    ServerUri, Status,
};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode as HttpStatus};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Largest request body the server reads (a Package#1/#3, an admin
/// request, a repository upload), 16 MiB; past it the request is answered
/// 413 without being read further.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

mod admin;
mod repository;
mod show;
mod storage;

pub(crate) use storage::command_from_parts;
pub use storage::{
    DeviceRow, Entry, EntryState, MemoryStorage, NotificationConfig, Registration,
    RegistrationKind, Resource, SqliteStorage, Storage, StorageError, StoredAlert, UiSession,
};

/// The path the server takes DM packages on.
pub const DM_PATH: &str = "/dm";
/// The Data Repository: `/repo/<DevID>/<path>`.
pub const REPO_PATH: &str = "/repo/";
/// The SHOW Web Server Component: `/ui?uiid=N`.
pub const UI_PATH: &str = "/ui";

/// Settings of the reference server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Commands queued for a device whenever it opens a session with an
    /// empty queue.
    pub default_commands: Vec<Command>,
    /// Log one `tracing` warning per rejected request.
    pub log_errors: bool,
}

/// What [`start_with`] adds to a [`ServerConfig`].
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Where the server keeps its state (default: in memory).
    pub storage: Option<Arc<dyn Storage>>,
    /// Address of the admin API (none when not given).
    pub admin: Option<SocketAddr>,
}

/// A command sent to a device and what came back for it.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandResult {
    pub command: Command,
    pub status: Status,
    /// The GET data part of Appendix F, when there is one.
    pub data: Option<Part>,
    /// The queue entry's id.
    pub id: u64,
    /// The final status of an asynchronous EXEC, once its Generic Alert
    /// came (spec 5.4.1).
    pub async_status: Option<u16>,
}

/// What the server knows about one device.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceRecord {
    pub dev_id: String,
    /// The MOS array of the last Package#1 that had one.
    pub mos: Option<Vec<MoInfo>>,
    /// Every alert received, in order (never answered, spec 5.4).
    pub alerts: Vec<Alert>,
    /// Commands waiting for the next Package#2.
    pub queue: Vec<Command>,
    /// Results of every command sent, in order.
    pub results: Vec<CommandResult>,
    /// Sessions started (Package#1 received).
    pub sessions: usize,
    /// Sessions that ended with END.
    pub ended: usize,
    /// POSIX seconds of the last Package#1.
    pub last_session: Option<u64>,
}

/// Why an operation of the server failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("no device `{0}`")]
    NoDevice(String),
    #[error("device `{0}` has no registration {1}")]
    NoRegistration(String, u64),
    #[error("{0}")]
    BadRequest(String),
    #[error("cannot send the notification: {0}")]
    Send(#[from] std::io::Error),
}

/// A notification request of the admin API: the options of Package#0
/// (spec 5.2.1.2, Table 1) other than those the server fills in itself
/// (SERVER-ID and SHA256-DIGEST from the device's configuration,
/// NOTIFICATION-ID increasing per device).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotifyRequest {
    pub req_mos: bool,
    /// Add a TIMESTAMP of now.
    pub timestamp: bool,
    pub preferred_con_types: Vec<ConnectionType>,
    /// Send to this address instead of the configured one.
    pub to: Option<String>,
}

/// The state shared by every connection of one server.
#[derive(Debug)]
pub(crate) struct Core {
    storage: Arc<dyn Storage>,
    default_commands: Vec<Command>,
    log_errors: bool,
    errors: Mutex<Vec<String>>,
    /// `http://ADDR` of the DM listener: base of repository and UI URLs.
    base_url: String,
    /// Serializes the read-modify-write of session handling. Storage calls
    /// are short; the HTTP work around them runs concurrently.
    session_lock: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// POSIX seconds now; 0 if the clock is before 1970.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A running server. Dropping it does not stop it; call [`shutdown`].
///
/// [`shutdown`]: ServerHandle::shutdown
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    admin: Option<SocketAddr>,
    core: Arc<Core>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the admin API, when it runs.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// The ServerURI devices open sessions with.
    pub fn dm_url(&self) -> String {
        format!("http://{}{DM_PATH}", self.addr)
    }

    /// `http://ADDR`: what the repository and UI URLs start with.
    pub fn base_url(&self) -> &str {
        &self.core.base_url
    }

    /// The URL of a Data Repository resource of a device.
    pub fn repo_url(&self, dev_id: &str, path: &str) -> String {
        self.core.repo_url(dev_id, path)
    }

    /// The storage behind the server.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.core.storage
    }

    /// Queues a command for the device's next Package#2. A storage
    /// failure is logged; [`try_enqueue`](Self::try_enqueue) returns it.
    pub fn enqueue(&self, dev_id: &str, command: Command) {
        if let Err(e) = self.try_enqueue(dev_id, command) {
            self.core
                .log(format!("{dev_id}: cannot queue a command: {e}"));
        }
    }

    /// Queues a command; returns its entry id.
    pub fn try_enqueue(&self, dev_id: &str, command: Command) -> Result<u64, ServerError> {
        self.core.enqueue(dev_id, &command)
    }

    /// A snapshot of what the server knows about a device.
    pub fn device(&self, dev_id: &str) -> Option<DeviceRecord> {
        self.core.record(dev_id).ok().flatten()
    }

    /// Sets how the device is notified (its DMAcc `Auth/Noti` and address).
    pub fn configure_notification(
        &self,
        dev_id: &str,
        config: NotificationConfig,
    ) -> Result<(), ServerError> {
        self.core.configure_notification(dev_id, config)
    }

    /// Sends a Package#0 to the device; returns the NOTIFICATION-ID used.
    pub async fn notify(&self, dev_id: &str, request: &NotifyRequest) -> Result<u16, ServerError> {
        self.core.notify(dev_id, request).await
    }

    /// Sends DEFAULT or SUB and records the registration.
    pub fn register(
        &self,
        dev_id: &str,
        kind: RegistrationKind,
        server_uri: &str,
    ) -> Result<u64, ServerError> {
        self.core.register(dev_id, kind, server_uri)
    }

    /// Drops a registration; a SUB gets its UNSUB queued.
    pub fn unregister(&self, dev_id: &str, id: u64) -> Result<(), ServerError> {
        self.core.unregister(dev_id, id)
    }

    /// Opens a SHOW UI session and queues the SHOW that points at it.
    pub fn show(&self, dev_id: &str, prompt: &str) -> Result<u64, ServerError> {
        self.core.show(dev_id, prompt)
    }

    /// Requests the server rejected, with the reason.
    pub fn errors(&self) -> Vec<String> {
        lock(&self.core.errors).clone()
    }

    /// Stops accepting connections and waits for the accept loops to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Binds the listener and serves until shut down, state in memory.
pub async fn start(config: ServerConfig) -> std::io::Result<ServerHandle> {
    start_with(config, ServerOptions::default()).await
}

/// Binds the DM listener (and the admin API when asked) over `storage`.
pub async fn start_with(
    config: ServerConfig,
    options: ServerOptions,
) -> std::io::Result<ServerHandle> {
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let admin_listener = match options.admin {
        Some(a) => Some(TcpListener::bind(a).await?),
        None => None,
    };
    let admin = admin_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    let core = Arc::new(Core {
        storage: options
            .storage
            .unwrap_or_else(|| Arc::new(MemoryStorage::new())),
        default_commands: config.default_commands,
        log_errors: config.log_errors,
        errors: Mutex::new(Vec::new()),
        base_url: format!("http://{addr}"),
        session_lock: Mutex::new(()),
    });
    let (stop, stopped) = watch::channel(false);
    let mut tasks = vec![tokio::spawn(accept_loop(
        listener,
        core.clone(),
        stopped.clone(),
        handle,
    ))];
    if let Some(l) = admin_listener {
        tasks.push(tokio::spawn(accept_loop(
            l,
            core.clone(),
            stopped,
            admin::handle,
        )));
    }
    Ok(ServerHandle {
        addr,
        admin,
        core,
        stop,
        tasks,
    })
}

async fn accept_loop<F, Fut>(
    listener: TcpListener,
    core: Arc<Core>,
    mut stopped: watch::Receiver<bool>,
    handler: F,
) where
    F: Fn(Arc<Core>, Request<Incoming>) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let core = core.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handler(core.clone(), req));
                    // A connection error concerns that peer only.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            _ = stopped.changed() => break,
        }
    }
}

pub(crate) fn reply(
    status: HttpStatus,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

pub(crate) fn header_str<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Reads a body up to [`MAX_BODY`].
pub(crate) async fn read_body(body: Incoming) -> Result<Bytes, String> {
    Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| format!("unreadable body: {e}"))
}

/// Decodes `%XX` escapes (and `+` as space when `form`).
pub(crate) fn percent_decode(s: &str, form: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if form => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// `%XX`-encodes what may not stand in a path segment.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:@!$'()*,;=".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `name=value` pairs of a query string or form body.
pub(crate) fn form_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((percent_decode(k, true)?, percent_decode(v, true)?))
        })
        .collect()
}

/// The log line of a rejected request, control characters escaped.
fn log_line(reason: &str) -> String {
    format!("dm-server: {}", reason.escape_debug())
}

impl Core {
    /// Records a rejected request; with `log_errors`, also a `tracing`
    /// warning. The reason carries bytes the peer chose (a path, a
    /// percent-decoded DevID): control characters are escaped so that a
    /// `%0A` cannot forge a second log line.
    pub(crate) fn log(&self, reason: String) {
        if self.log_errors {
            tracing::warn!("{}", log_line(&reason));
        }
        lock(&self.errors).push(reason);
    }

    fn reject(&self, status: HttpStatus, reason: String) -> Response<Full<Bytes>> {
        self.log(format!("{} {reason}", status.as_u16()));
        reply(status, "text/plain", reason.into_bytes())
    }

    pub(crate) fn repo_url(&self, dev_id: &str, path: &str) -> String {
        format!(
            "{}{REPO_PATH}{}/{}",
            self.base_url,
            percent_encode(dev_id),
            path.trim_start_matches('/')
        )
    }

    pub(crate) fn enqueue(&self, dev_id: &str, command: &Command) -> Result<u64, ServerError> {
        let _guard = lock(&self.session_lock);
        self.ensure_device(dev_id)?;
        Ok(self.storage.add_entry(dev_id, command)?)
    }

    /// The device row, created when missing.
    fn ensure_device(&self, dev_id: &str) -> Result<DeviceRow, StorageError> {
        if let Some(d) = self.storage.device(dev_id)? {
            return Ok(d);
        }
        let d = DeviceRow {
            dev_id: dev_id.to_owned(),
            ..DeviceRow::default()
        };
        self.storage.put_device(&d)?;
        Ok(d)
    }

    pub(crate) fn record(&self, dev_id: &str) -> Result<Option<DeviceRecord>, StorageError> {
        let Some(row) = self.storage.device(dev_id)? else {
            return Ok(None);
        };
        let entries = self.storage.entries(dev_id, &[])?;
        let alerts = self.storage.alerts(dev_id)?;
        Ok(Some(DeviceRecord {
            dev_id: row.dev_id,
            mos: row.mos,
            alerts: alerts.into_iter().map(|a| a.alert).collect(),
            queue: entries
                .iter()
                .filter(|e| e.state == EntryState::Queued)
                .map(|e| e.command.clone())
                .collect(),
            results: entries
                .into_iter()
                .filter_map(|e| {
                    Some(CommandResult {
                        status: e.status?,
                        command: e.command,
                        data: e.data,
                        id: e.id,
                        async_status: e.async_status,
                    })
                })
                .collect(),
            sessions: usize::try_from(row.sessions).unwrap_or(usize::MAX),
            ended: usize::try_from(row.ended).unwrap_or(usize::MAX),
            last_session: row.last_session,
        }))
    }

    /// Package#1 (spec 5.2.2): a new session.
    fn on_package1(&self, dev_id: &str, body: &[u8]) -> Result<Package2, ServerError> {
        let p1 = Package1::parse(body).map_err(|e| ServerError::BadRequest(e.to_string()))?;
        let _guard = lock(&self.session_lock);
        let mut row = self.ensure_device(dev_id)?;
        row.sessions += 1;
        row.last_session = Some(now());
        if p1.mos.is_some() {
            row.mos = p1.mos;
        }
        self.storage.put_device(&row)?;
        // A new session forgets whatever an aborted one left in flight.
        for mut e in self.storage.entries(dev_id, &[EntryState::Sent])? {
            e.state = EntryState::Lost;
            self.storage.put_entry(e)?;
        }
        self.store_alerts(dev_id, &p1.alerts)?;
        if self.default_commands.is_empty() {
            return self.next_package2(dev_id);
        }
        if self
            .storage
            .entries(dev_id, &[EntryState::Queued])?
            .is_empty()
        {
            for c in &self.default_commands {
                self.storage.add_entry(dev_id, c)?;
            }
        }
        self.next_package2(dev_id)
    }

    /// Package#3 (spec 5.2.4): statuses matched to the commands sent, in
    /// order; GET data by part name (Appendix F); alerts stored.
    fn on_package3(
        &self,
        dev_id: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Package2, ServerError> {
        let response = ResponseBody::decode(content_type, body)
            .map_err(|e| ServerError::BadRequest(e.to_string()))?;
        let _guard = lock(&self.session_lock);
        let sent = self.storage.entries(dev_id, &[EntryState::Sent])?;
        if sent.is_empty() {
            return Err(ServerError::BadRequest(
                "Package#3 outside a session".into(),
            ));
        }
        if response.package.statuses.len() != sent.len() {
            // The package cannot be matched: the commands are lost, not
            // answered with somebody else's statuses.
            for mut e in sent.iter().cloned() {
                e.state = EntryState::Lost;
                self.storage.put_entry(e)?;
            }
            return Err(ServerError::BadRequest(format!(
                "Package#3 has {} statuses for {} commands",
                response.package.statuses.len(),
                sent.len()
            )));
        }
        let mut data: HashMap<String, Part> = response
            .data
            .into_iter()
            .filter_map(|p| p.name.clone().map(|n| (n, p)))
            .collect();
        for (i, (mut entry, status)) in sent.into_iter().zip(response.package.statuses).enumerate()
        {
            let asynchronous = matches!(
                entry.command,
                Command::Exec {
                    server_uri: Some(_),
                    ..
                }
            ) && status.code == dm_core::StatusCode::ACCEPTED;
            entry.state = if asynchronous {
                EntryState::AsyncPending
            } else {
                EntryState::Done
            };
            entry.status = Some(status);
            entry.data = data.remove(&i.to_string());
            self.storage.put_entry(entry)?;
        }
        self.store_alerts(dev_id, &response.package.alerts)?;
        self.next_package2(dev_id)
    }

    /// Stores Generic Alerts; one reporting an asynchronous EXEC (5.4.1)
    /// is matched to it by SourceURI and its `sc` becomes the final status.
    fn store_alerts(&self, dev_id: &str, alerts: &[Alert]) -> Result<(), StorageError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let mut pending = self.storage.entries(dev_id, &[EntryState::AsyncPending])?;
        for alert in alerts {
            let matched = alert.source_uri.as_deref().and_then(|src| {
                pending
                    .iter()
                    .position(|e| exec_matches(&e.command, src))
                    .map(|i| pending.remove(i))
            });
            let id =
                self.storage
                    .add_alert(dev_id, alert, matched.as_ref().map(|e| e.id), now())?;
            if let Some(mut e) = matched {
                e.state = EntryState::Done;
                e.async_alert = Some(id);
                e.async_status = alert
                    .data
                    .as_ref()
                    .and_then(|d| d.get("sc"))
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|v| u16::try_from(v).ok());
                self.storage.put_entry(e)?;
            }
        }
        Ok(())
    }

    /// Every queued command up to the first END, or END alone when it is
    /// next or nothing is queued (spec 5.3.9: no statuses come back for a
    /// package with END, so END never travels with other commands).
    fn next_package2(&self, dev_id: &str) -> Result<Package2, ServerError> {
        let queued = self.storage.entries(dev_id, &[EntryState::Queued])?;
        if queued.is_empty() || matches!(queued[0].command, Command::End) {
            if let Some(mut end) = queued.into_iter().next() {
                end.state = EntryState::Done;
                end.status = Some(Status::new(dm_core::StatusCode::OK));
                self.storage.put_entry(end)?;
            }
            if let Some(mut row) = self.storage.device(dev_id)? {
                row.ended += 1;
                self.storage.put_device(&row)?;
            }
            return Ok(Package2::new([Command::End]));
        }
        let mut commands = Vec::new();
        for mut e in queued {
            if matches!(e.command, Command::End) {
                break;
            }
            e.state = EntryState::Sent;
            commands.push(e.command.clone());
            self.storage.put_entry(e)?;
        }
        Ok(Package2::new(commands))
    }

    pub(crate) fn configure_notification(
        &self,
        dev_id: &str,
        config: NotificationConfig,
    ) -> Result<(), ServerError> {
        let _guard = lock(&self.session_lock);
        let mut row = self.ensure_device(dev_id)?;
        row.notification = Some(config);
        self.storage.put_device(&row)?;
        Ok(())
    }

    /// Builds, signs and sends a Package#0 (spec 5.2.1, 7.1) with the
    /// encoder `dmctl notify` uses.
    pub(crate) async fn notify(
        &self,
        dev_id: &str,
        request: &NotifyRequest,
    ) -> Result<u16, ServerError> {
        let (bytes, to, id) = {
            let _guard = lock(&self.session_lock);
            let mut row = self
                .storage
                .device(dev_id)?
                .ok_or_else(|| ServerError::NoDevice(dev_id.to_owned()))?;
            let config = row.notification.clone().ok_or_else(|| {
                ServerError::BadRequest(format!("{dev_id}: no notification configuration"))
            })?;
            let to = request.to.clone().or(config.udp.clone()).ok_or_else(|| {
                ServerError::BadRequest(format!("{dev_id}: no UDP address to notify"))
            })?;
            // NOTIFICATION-ID increases per device (wrapping), so the
            // device's duplicate check never drops a new one.
            let id = row.last_notification_id.map_or(1, |n| n.wrapping_add(1));
            let n = Notification {
                server_id: Some(config.server_id.clone()),
                preferred_con_types: (!request.preferred_con_types.is_empty())
                    .then(|| request.preferred_con_types.clone()),
                notification_id: Some(id),
                digest: None,
                timestamp: request.timestamp.then(now),
                req_mos: request.req_mos,
                unknown: Vec::new(),
            };
            let encoded = match &config.secret {
                Some(secret) => notification::encode_signed(&n, secret, &config.auth_data),
                None => n.encode(),
            }
            .map_err(|e| ServerError::BadRequest(e.to_string()))?;
            row.last_notification_id = Some(id);
            self.storage.put_device(&row)?;
            (encoded, to, id)
        };
        send_notification(&to, &bytes).await?;
        Ok(id)
    }

    pub(crate) fn register(
        &self,
        dev_id: &str,
        kind: RegistrationKind,
        server_uri: &str,
    ) -> Result<u64, ServerError> {
        let server_uri = ServerUri::new(server_uri);
        let command = match &kind {
            RegistrationKind::Default { moid } => Command::Default {
                server_uri: server_uri.clone(),
                moid: moid.clone(),
            },
            RegistrationKind::Sub { client_uri } => Command::Sub {
                server_uri: server_uri.clone(),
                client_uri: client_uri
                    .parse()
                    .map_err(|e: dm_core::UriError| ServerError::BadRequest(e.to_string()))?,
            },
        };
        let _guard = lock(&self.session_lock);
        self.ensure_device(dev_id)?;
        self.storage.add_entry(dev_id, &command)?;
        Ok(self
            .storage
            .put_registration(dev_id, &kind, server_uri.as_str())?)
    }

    pub(crate) fn unregister(&self, dev_id: &str, id: u64) -> Result<(), ServerError> {
        let _guard = lock(&self.session_lock);
        let Some(reg) = self
            .storage
            .registrations(dev_id)?
            .into_iter()
            .find(|r| r.id == id)
        else {
            return Err(ServerError::NoRegistration(dev_id.to_owned(), id));
        };
        if let RegistrationKind::Sub { client_uri } = &reg.kind {
            // spec 5.3.12: the same ClientURI as the SUB.
            let client_uri: ClientUri = client_uri
                .parse()
                .map_err(|e: dm_core::UriError| ServerError::BadRequest(e.to_string()))?;
            self.storage
                .add_entry(dev_id, &Command::Unsub { client_uri })?;
        }
        self.storage.delete_registration(dev_id, id)?;
        Ok(())
    }

    pub(crate) fn show(&self, dev_id: &str, prompt: &str) -> Result<u64, ServerError> {
        let _guard = lock(&self.session_lock);
        self.ensure_device(dev_id)?;
        let uiid = self.storage.add_ui_session(dev_id, prompt)?;
        let server_uri = ServerUri::new(format!("{}{UI_PATH}?uiid={uiid}", self.base_url));
        self.storage
            .add_entry(dev_id, &Command::Show { server_uri })?;
        Ok(uiid)
    }
}

/// Whether an asynchronous EXEC's Generic Alert (SourceURI: the node that
/// ran, `MOID/MIID/path`) reports this command: same MOID, the command's
/// instance selects that MIID or any, and each path segment matches.
fn exec_matches(command: &Command, source_uri: &str) -> bool {
    let Command::Exec {
        client_uri,
        server_uri: Some(_),
    } = command
    else {
        return false;
    };
    let Some(rest) = source_uri
        .strip_prefix(client_uri.moid())
        .and_then(|r| r.strip_prefix('/'))
    else {
        return false;
    };
    let (miid, path) = rest.split_once('/').unwrap_or((rest, ""));
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let instance_ok = match client_uri.instance() {
        InstanceSelector::Miid(m) => m == miid,
        _ => true,
    };
    instance_ok
        && segments.len() == client_uri.path().len()
        && client_uri
            .path()
            .iter()
            .zip(&segments)
            .all(|(sel, seg)| match sel {
                NodeSelector::Name(n) => n == seg,
                NodeSelector::XName(_) | NodeSelector::All => true,
            })
}

async fn handle(
    core: Arc<Core>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    if path.starts_with(REPO_PATH) {
        return Ok(repository::handle(&core, req).await);
    }
    if path == UI_PATH || path.starts_with("/ui/") {
        return Ok(show::handle(&core, req).await);
    }
    // CONT (5.3.8) may move a session to any URI below /dm.
    if path != DM_PATH && !path.starts_with("/dm/") {
        return Ok(core.reject(HttpStatus::NOT_FOUND, format!("no DM endpoint at {path}")));
    }
    if req.method() != Method::POST {
        return Ok(core.reject(
            HttpStatus::METHOD_NOT_ALLOWED,
            "DM packages are POSTed".into(),
        ));
    }
    let dev_id = header_str(&req, header::DEV_ID).map(str::to_owned);
    let content_type = header_str(&req, hyper::header::CONTENT_TYPE.as_str())
        .unwrap_or("")
        .to_owned();
    let body = match read_body(req.into_body()).await {
        Ok(b) => b,
        Err(reason) => return Ok(core.reject(HttpStatus::BAD_REQUEST, reason)),
    };
    let Some(dev_id) = dev_id else {
        return Ok(core.reject(
            HttpStatus::BAD_REQUEST,
            format!("no {} header", header::DEV_ID),
        ));
    };
    let result = match media_type::essence(&content_type).as_str() {
        media_type::PACKAGE1 => core.on_package1(&dev_id, &body),
        media_type::PACKAGE3 | media_type::MULTIPART => {
            core.on_package3(&dev_id, &content_type, &body)
        }
        _ => {
            return Ok(core.reject(
                HttpStatus::UNSUPPORTED_MEDIA_TYPE,
                format!("{dev_id}: Content-Type `{content_type}` is not a DM package"),
            ))
        }
    };
    Ok(match result {
        // No OMADM-Accept here: the repository takes every format the
        // spec mandates (5.5), so there is nothing more to announce.
        Ok(p2) => reply(HttpStatus::OK, media_type::PACKAGE2, p2.to_vec()),
        Err(ServerError::BadRequest(reason)) => {
            core.reject(HttpStatus::BAD_REQUEST, format!("{dev_id}: {reason}"))
        }
        Err(e) => core.reject(HttpStatus::INTERNAL_SERVER_ERROR, format!("{dev_id}: {e}")),
    })
}

/// Sends `bytes` as one datagram to the first address `to` resolves to,
/// from an ephemeral port of the same address family.
pub async fn send_notification(to: &str, bytes: &[u8]) -> std::io::Result<std::net::SocketAddr> {
    let addr = tokio::net::lookup_host(to).await?.next().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the address resolves to nothing",
        )
    })?;
    let local = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = tokio::net::UdpSocket::bind(local).await?;
    let sent = socket.send_to(bytes, addr).await?;
    if sent != bytes.len() {
        return Err(std::io::Error::other(format!(
            "only {sent} of {} bytes sent",
            bytes.len()
        )));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn exec(uri: &str) -> Command {
        Command::Exec {
            client_uri: uri.parse().unwrap(),
            server_uri: Some(ServerUri::new("http://x/dm")),
        }
    }

    #[test]
    fn async_exec_alerts_match_their_command_by_source_uri() {
        let src = "urn:oma:mo:oma-dcmo:1.0/cam/Operations/Enable";
        assert!(exec_matches(
            &exec("urn:oma:mo:oma-dcmo:1.0//Operations/Enable"),
            src
        ));
        assert!(exec_matches(
            &exec("urn:oma:mo:oma-dcmo:1.0/cam/Operations/Enable"),
            src
        ));
        assert!(exec_matches(
            &exec("urn:oma:mo:oma-dcmo:1.0/*/Operations/*"),
            src
        ));
        assert!(!exec_matches(
            &exec("urn:oma:mo:oma-dcmo:1.0/usb/Operations/Enable"),
            src
        ));
        assert!(!exec_matches(
            &exec("urn:oma:mo:oma-dcmo:1.0//Operations/Disable"),
            src
        ));
        assert!(!exec_matches(
            &exec("urn:oma:mo:oma-dcmo:1.0//Operations"),
            src
        ));
        let sync = Command::Exec {
            client_uri: "urn:oma:mo:oma-dcmo:1.0//Operations/Enable"
                .parse()
                .unwrap(),
            server_uri: None,
        };
        assert!(!exec_matches(&sync, src), "only asynchronous EXECs wait");
    }

    #[test]
    fn a_rejection_is_logged_on_one_line() {
        let reason = percent_decode("no device `IMEI:1%0Adm-server: 200 forged%0D`", false);
        let line = log_line(&reason.unwrap());
        assert!(!line.contains(['\n', '\r']), "{line}");
        assert_eq!(
            line,
            "dm-server: no device `IMEI:1\\ndm-server: 200 forged\\r`"
        );
    }

    #[test]
    fn percent_coding_round_trips() {
        let s = "UUID:1 2/ä";
        assert_eq!(percent_decode(&percent_encode(s), false).unwrap(), s);
        assert_eq!(percent_decode("%zz", false), None);
        assert_eq!(
            form_pairs("uiid=3&choice=a+b"),
            vec![("uiid".into(), "3".into()), ("choice".into(), "a b".into())]
        );
    }
}
