//! The device agent behind `dmctl client` (docs/architecture.md "Command line"):
//! state directory, factory bootstrap, plugins, one session per server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dm_core::NodeData;

use crate::bootstrap;
use crate::client::{Device, DeviceConfig, Initiation, SessionError, SessionReport};
use crate::http::Observer;
use crate::local_api::LocalApiConfig;
use crate::plugins::{PluginError, PluginInstance};
use crate::rate_log::RateLog;
use crate::store::{machine_dev_id, StateDir, StateError};
use crate::tls::Identity;
use crate::tree::{Factory, Owner, Registry};

mod pushed_bootstrap;

pub use pushed_bootstrap::run_bootstrap_listener;
use pushed_bootstrap::{bootstrap_endpoint, on_bootstrap_connection};

/// What `dmctl client` was asked to do.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub state: PathBuf,
    pub bootstrap: Option<PathBuf>,
    pub dev_id: Option<String>,
    pub server_id: Option<String>,
    /// Directory of MO plugin dylibs to load at start.
    pub plugins: Option<PathBuf>,
    /// How those plugins are hosted (isolated by default).
    pub plugin_options: crate::plugins::PluginOptions,
    /// Program SHOW starts (`--show-cmd`).
    pub show_cmd: Option<String>,
    pub timeout: Duration,
    /// Oldest TIMESTAMP accepted in a notification, in seconds (5.2.1.2
    /// leaves the window to the implementation).
    pub max_notification_age: u64,
    /// Trust anchors and the bootstrap paths over the network (spec 8.3,
    /// 8.4, 9).
    pub security: SecurityOptions,
    /// What one server can make the agent do (`--max-*`,
    /// `--session-deadline`).
    pub limits: crate::Limits,
}

impl AgentOptions {
    /// The options of `dmctl client --state DIR` with nothing else given:
    /// the defaults of the command line (30 s HTTP timeout, notifications
    /// up to 300 s old).
    pub fn new(state: impl Into<PathBuf>) -> AgentOptions {
        AgentOptions {
            state: state.into(),
            bootstrap: None,
            dev_id: None,
            server_id: None,
            plugins: None,
            plugin_options: crate::plugins::PluginOptions::default(),
            show_cmd: None,
            timeout: Duration::from_secs(30),
            max_notification_age: 300,
            security: SecurityOptions::default(),
            limits: crate::Limits::default(),
        }
    }
}

/// Transport security and network bootstrap settings of the agent.
#[derive(Debug, Clone, Default)]
pub struct SecurityOptions {
    /// PEM roots that https:// servers are verified against; none: the
    /// host's certificate store (`--ca`).
    pub ca: Option<PathBuf>,
    /// The device's own certificate and key (PEM or DER): its identity at
    /// a bootstrap server (`--tls-cert`, `--tls-key`).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Client-initiated bootstrap: where to GET it (spec 8.3).
    pub bootstrap_url: Option<String>,
    /// Server-initiated bootstrap: the HTTPS address to take it on (8.4).
    pub bootstrap_listen: Option<String>,
    /// Where plain http:// may go (9.2.2; `--allow-plain-http`: anywhere).
    pub plain_http: crate::http::PlainHttp,
    /// Loopback, link-local and private Data Repository addresses allowed
    /// whatever range the DM Server is in (`--repository-allow`).
    pub repository_allow: Vec<crate::repository::AllowEntry>,
}

/// A configuration problem: the agent cannot start (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("bootstrap {}: {reason}", path.display())]
    Bootstrap { path: PathBuf, reason: String },
    #[error("no DM Server account: bootstrap one with --bootstrap FILE")]
    NoAccounts,
    #[error("no DM Server account with SrvID `{0}`")]
    UnknownServer(String),
    #[error("notifications: {0}")]
    Notify(String),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("client-initiated bootstrap from {url}: {reason}")]
    BootstrapFetch { url: String, reason: String },
    #[error("server-initiated bootstrap: {0}")]
    BootstrapListen(String),
    #[error(
        "--dev-id `{given}` differs from the DevID `{recorded}` recorded in {}: a device keeps \
         its DevID (its servers know it by it); start without --dev-id, or with another --state",
        path.display()
    )]
    DevIdChanged {
        given: String,
        recorded: String,
        path: PathBuf,
    },
    #[error(transparent)]
    LocalApi(#[from] crate::local_api::ServeError),
}

/// How one session went.
#[derive(Debug)]
pub struct SessionOutcome {
    pub server_id: String,
    pub result: Result<SessionReport, SessionError>,
}

/// Builds the device from its state directory: compiled-in MOs, plugins,
/// then the instances saved by earlier runs.
pub fn open_device(opts: &AgentOptions) -> Result<Device, AgentError> {
    let store = StateDir::open(&opts.state)?;
    let (saved_instances, agent_state) = store.load_state()?;
    // The first start records the DevID it uses; later ones keep it, and
    // one with another --dev-id is refused: servers know the device by the
    // OMADM-DevID of its sessions (spec 5.2.2, 12.1) and keep its queue
    // under it.
    let dev_id = store.dev_id(|| opts.dev_id.clone().unwrap_or_else(machine_dev_id))?;
    if let Some(given) = opts.dev_id.as_ref().filter(|given| **given != dev_id) {
        return Err(AgentError::DevIdChanged {
            given: given.clone(),
            recorded: dev_id,
            path: opts.state.join("dev-id"),
        });
    }
    let mut registry = crate::standard_registry(&dev_id);
    if let Some(dir) = &opts.plugins {
        // A refused plugin is reported; the device starts with the rest.
        for e in register_plugins(&mut registry, dir, &opts.plugin_options) {
            tracing::warn!("dmctl client: plugin refused: {e}");
        }
    }
    let mut config = DeviceConfig::new(dev_id);
    config.timeout = opts.timeout;
    config.limits = opts.limits;
    config.plain_http = opts.security.plain_http;
    config.repository_allow = opts.security.repository_allow.clone();
    if let Some(ca) = &opts.security.ca {
        config.trust = crate::tls::TrustAnchors::from_pem_file(ca)?;
    }
    let mut device = Device::new(config, registry).with_store(store.clone(), agent_state);
    device.set_show_cmd(opts.show_cmd.clone());
    for saved in saved_instances {
        if let Err(e) = device.restore(&saved) {
            // Data this build cannot read (an MO no longer compiled in):
            // kept on disk, reported, not fatal.
            tracing::warn!(
                "dmctl client: saved instance {}/{} not restored: {e}",
                saved.moid,
                saved.miid
            );
        }
    }
    for e in device.sync_access_control() {
        tracing::warn!("dmctl client: access control: {e}");
    }
    // EXECs started before the agent stopped: their MOs get their handles.
    device.resume();
    Ok(device)
}

/// Applies the bootstrap (if any), then runs one client-initiated session
/// with each account (or only `server_id`), then delivers the Generic
/// Alerts of asynchronous EXECs (5.4.1). A session to a freshly
/// bootstrapped server carries BootstrapComplete and MOS (spec 8, 5.2.2);
/// the flag is cleared only once that session ended with END.
pub async fn run_once(
    opts: &AgentOptions,
    observer: Option<Observer>,
) -> Result<Vec<SessionOutcome>, AgentError> {
    let mut device = prepare(opts, observer).await?;
    let accounts = device.accounts();
    if accounts.is_empty() {
        return Err(AgentError::NoAccounts);
    }
    if let Some(id) = &opts.server_id {
        if !accounts.iter().any(|a| &a.server_id == id) {
            return Err(AgentError::UnknownServer(id.clone()));
        }
    }
    let mut outcomes = Vec::new();
    for account in &accounts {
        if opts
            .server_id
            .as_ref()
            .is_some_and(|id| *id != account.server_id)
        {
            continue;
        }
        let pending = device
            .agent_state()
            .bootstrap_pending
            .contains(&account.server_id);
        let initiation = if pending {
            Initiation::BootstrapComplete
        } else {
            Initiation::ClientInitiated
        };
        let result = device
            .run_session_as(&account.server_id, initiation, pending, Vec::new())
            .await;
        if result.is_ok() && pending {
            device
                .agent_state_mut()
                .bootstrap_pending
                .retain(|s| *s != account.server_id);
            if !device.save_agent().is_success() {
                tracing::error!(
                    "dmctl client: could not save the agent state in {}",
                    opts.state.display()
                );
            }
        }
        outcomes.push(SessionOutcome {
            server_id: account.server_id.clone(),
            result,
        });
    }
    outcomes.extend(deliver_reports(&mut device, Some(opts.limits.once_exec_wait)).await);
    Ok(outcomes)
}

/// Takes what MO code reported ([`Device::take_inbox`]): changes go to
/// their subscribers, finished EXECs to their servers. With `wait`, goes
/// on until every pending EXEC has finished or `wait` has passed (those
/// left stay pending, kept in the state directory).
pub async fn deliver_reports(
    device: &mut Device,
    wait: Option<std::time::Duration>,
) -> Vec<SessionOutcome> {
    let until = wait.map(|w| std::time::Instant::now() + w);
    let mut outcomes = Vec::new();
    loop {
        device.take_inbox();
        device.notify_subscribers().await;
        outcomes.extend(deliver_alerts(device).await);
        let Some(until) = until else { break };
        let left = until.saturating_duration_since(std::time::Instant::now());
        if device.pending_exec_count() == 0 || left.is_zero() {
            break;
        }
        // Woken by a report, or by the next deadline (a timeout to send).
        let inbox = std::sync::Arc::clone(device.inbox());
        let _ = tokio::time::timeout(left.min(until_deadline(device)), inbox.wait()).await;
    }
    outcomes
}

/// How long until the earliest pending EXEC's deadline (a day at most).
fn until_deadline(device: &Device) -> std::time::Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let secs = device
        .next_exec_deadline()
        .map_or(86_400, |d| d.saturating_sub(now).min(86_400));
    // A deadline of this very second is due now: wake a moment after it.
    std::time::Duration::from_secs(secs) + std::time::Duration::from_millis(100)
}

/// Results of asynchronous EXECs go out in new sessions, one per account
/// and target ServerURI (spec 5.4.1), each run as the server that issued
/// the EXEC (`PendingAlert::account`): with its rights, never the
/// device's. An alert whose account is gone by then is dropped.
pub async fn deliver_alerts(device: &mut Device) -> Vec<SessionOutcome> {
    device.take_inbox();
    let pending = device.take_pending_alerts();
    let mut targets: Vec<(&str, &str)> = Vec::new();
    for p in &pending {
        let key = (p.account.as_str(), p.server_uri.as_str());
        if !targets.contains(&key) {
            targets.push(key);
        }
    }
    let mut outcomes = Vec::new();
    for (account, target) in targets {
        let alerts = pending
            .iter()
            .filter(|p| p.account == account && p.server_uri == target)
            .map(|p| p.alert.clone())
            .collect();
        let server_id = device
            .accounts()
            .into_iter()
            .find(|a| a.miid == account)
            .map_or_else(|| target.to_owned(), |a| a.server_id);
        let result = device
            .run_session_for_account(account, target, Initiation::ClientInitiated, alerts)
            .await;
        outcomes.push(SessionOutcome { server_id, result });
    }
    outcomes
}

/// Why a notification was dropped (logged; never the secret).
#[derive(Debug, thiserror::Error)]
pub enum Dropped {
    #[error("not a DM Notification: {0}")]
    Malformed(#[from] dm_core::notification::DecodeError),
    #[error("SERVER-ID `{}` names no account", .0.escape_debug())]
    UnknownServer(String),
    #[error("no SERVER-ID and {0} accounts: cannot tell which server sent it")]
    Ambiguous(usize),
    #[error("server {0}: SHA256-DIGEST missing or wrong")]
    BadDigest(String),
    #[error("server {0}: a digest but no Auth/Noti credentials to check it with")]
    NoCredentials(String),
    #[error("server {0}: NOTIFICATION-ID {1} already seen")]
    Duplicate(String, u16),
    #[error("server {0}: {1}")]
    TooOld(String, crate::replay::Replay),
    #[error("server {0}: TIMESTAMP {1} outside the accepted window")]
    Stale(String, u64),
}

impl Dropped {
    /// A short label per kind, for the bounded-rate log.
    pub fn reason(&self) -> &'static str {
        match self {
            Dropped::Malformed(_) => "malformed",
            Dropped::UnknownServer(_) => "unknown server",
            Dropped::Ambiguous(_) => "ambiguous server",
            Dropped::BadDigest(_) => "bad digest",
            Dropped::NoCredentials(_) => "no credentials",
            Dropped::Duplicate(..) => "duplicate",
            Dropped::TooOld(..) => "too old",
            Dropped::Stale(..) => "stale",
        }
    }
}

/// Checks one datagram as spec 5.2.1 and 9.1 ask: the account it is for,
/// its digest against that account's Auth/Noti credentials, duplicates of
/// its NOTIFICATION-ID, the age of its TIMESTAMP. Returns the SrvID and
/// the notification when it is to be acted on; an accepted one is
/// remembered in the agent state, in its server's window of
/// NOTIFICATION-IDs ([`crate::replay`]): an ID seen or older than the
/// window is dropped, however many notifications other servers sent.
pub fn accept_notification(
    device: &mut Device,
    datagram: &[u8],
    now: u64,
    max_age: u64,
) -> Result<(String, dm_core::Notification), Dropped> {
    use dm_core::notification::{verify, VerifyError};
    let notification = dm_core::Notification::decode(datagram)?;
    let accounts = device.accounts();
    let account = match &notification.server_id {
        Some(id) => accounts
            .iter()
            .find(|a| a.server_id == *id)
            .ok_or_else(|| Dropped::UnknownServer(id.clone()))?,
        None if accounts.len() == 1 => &accounts[0],
        None => return Err(Dropped::Ambiguous(accounts.len())),
    };
    let server_id = account.server_id.clone();
    match &account.noti_secret {
        Some(secret) => {
            let data = account.noti_data.clone().unwrap_or_default();
            verify(datagram, secret, &data).map_err(|e| match e {
                VerifyError::Decode(d) => Dropped::Malformed(d),
                VerifyError::NoDigest | VerifyError::Mismatch => {
                    Dropped::BadDigest(server_id.clone())
                }
            })?;
        }
        // A digest the device cannot check is not trusted (5.2.1.2).
        None if notification.digest.is_some() => return Err(Dropped::NoCredentials(server_id)),
        None => {}
    }
    if !notification.is_fresh(now, max_age) {
        return Err(Dropped::Stale(
            server_id,
            notification.timestamp.unwrap_or(0),
        ));
    }
    if let Some(id) = notification.notification_id {
        let state = device.agent_state_mut();
        // The list of earlier versions, oldest first, seeds the windows.
        for (server, seen) in std::mem::take(&mut state.seen_notifications) {
            let _ = crate::replay::accept(&mut state.notification_windows, &server, seen);
        }
        match crate::replay::accept(&mut state.notification_windows, &server_id, id) {
            Ok(()) => {}
            Err(crate::replay::Replay::Seen(id)) => return Err(Dropped::Duplicate(server_id, id)),
            Err(too_old) => return Err(Dropped::TooOld(server_id, too_old)),
        }
        device.save_agent();
    }
    Ok((server_id, notification))
}

/// Waits for Package#0 datagrams on `addr` (Appendix E.3) and runs a
/// server-initiated session for each valid one: ServerInitiatedMgmt with
/// the NOTIFICATION-ID, MOS when REQ-MOS asks for it, BootstrapComplete
/// too when that server's bootstrap is still unannounced. With `once`,
/// returns after the first such session.
pub async fn run_notified(
    opts: &AgentOptions,
    addr: &str,
    once: bool,
    observer: Option<Observer>,
) -> Result<Vec<SessionOutcome>, AgentError> {
    run_listeners(opts, Some(addr), None, None, once, observer).await
}

/// The sessions one datagram leads to, or `None` when it was dropped.
async fn on_notification(
    device: &mut Device,
    opts: &AgentOptions,
    datagram: &[u8],
    from: std::net::SocketAddr,
    drops: &mut RateLog,
) -> Option<Vec<SessionOutcome>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (server_id, notification) =
        match accept_notification(device, datagram, now, opts.max_notification_age) {
            Ok(n) => n,
            Err(e) => {
                // Anyone can send datagrams: one line per kind of drop and
                // one summary per interval, not one line per datagram.
                let lines = drops.record(std::time::Instant::now(), e.reason(), || {
                    format!("dmctl client: notification from {from} dropped: {e}")
                });
                for line in lines {
                    tracing::warn!("{line}");
                }
                return None;
            }
        };
    if opts
        .server_id
        .as_ref()
        .is_some_and(|only| *only != server_id)
    {
        tracing::info!("dmctl client: notification from server {server_id} ignored (--server-id)");
        return None;
    }
    if let Some(preferred) = &notification.preferred_con_types {
        // spec 5.2.1.2, as far as the host can tell (see bearer.rs).
        let available = crate::bearer::available();
        tracing::info!(
            "dmctl client: notification from server {server_id}: {}",
            crate::bearer::describe(preferred, &available)
        );
    }
    let pending = device.agent_state().bootstrap_pending.contains(&server_id);
    let extra = if pending {
        vec![dm_core::Alert::new(
            dm_core::package::alert_type::BOOTSTRAP_COMPLETE,
        )]
    } else {
        Vec::new()
    };
    let initiation = Initiation::ServerInitiated {
        notification_id: notification.notification_id,
    };
    let result = device
        .run_session_as(&server_id, initiation, notification.req_mos, extra)
        .await;
    if result.is_ok() && pending {
        device
            .agent_state_mut()
            .bootstrap_pending
            .retain(|s| *s != server_id);
        device.save_agent();
    }
    let mut outcomes = vec![SessionOutcome { server_id, result }];
    outcomes.extend(deliver_alerts(device).await);
    Some(outcomes)
}

/// The device's listeners in one loop, sharing the device: DM
/// Notifications on `notify` (UDP), server-initiated bootstraps on
/// `bootstrap` (HTTPS) and, on Unix, the local API for on-device
/// applications as `local_api` says (served by its own task; each
/// request and each event takes the device in turn). With `once`, returns
/// after the first event that led to sessions.
pub async fn run_listeners(
    opts: &AgentOptions,
    notify: Option<&str>,
    bootstrap_addr: Option<&str>,
    local_api: Option<&LocalApiConfig>,
    once: bool,
    observer: Option<Observer>,
) -> Result<Vec<SessionOutcome>, AgentError> {
    if let Some(config) = local_api {
        crate::local_api::check_socket_path(&config.path)?;
    }
    let device = prepare(opts, observer).await?;
    if notify.is_some() && device.accounts().is_empty() {
        return Err(AgentError::NoAccounts);
    }
    let endpoint = match bootstrap_addr {
        Some(addr) => Some(bootstrap_endpoint(opts, &device, addr).await?),
        None => None,
    };
    let device = std::sync::Arc::new(tokio::sync::Mutex::new(device));
    let _local = match local_api {
        #[cfg(unix)]
        Some(config) => Some(LocalApiTask::start(device.clone(), config.clone())),
        #[cfg(not(unix))]
        Some(_) => {
            return Err(AgentError::Notify(
                "the local API needs Unix sockets".into(),
            ))
        }
        None => None,
    };
    let socket = match notify {
        Some(addr) => {
            let socket = tokio::net::UdpSocket::bind(addr)
                .await
                .map_err(|e| AgentError::Notify(format!("cannot listen on {addr}: {e}")))?;
            if let Ok(local) = socket.local_addr() {
                tracing::info!("dmctl client: waiting for DM Notifications on udp {local}");
            }
            Some(socket)
        }
        None => None,
    };
    let inbox = std::sync::Arc::clone(device.lock().await.inbox());
    let mut buf = vec![0u8; 65_536];
    let mut drops = RateLog::new("notifications dropped");
    let mut summary = tokio::time::interval(crate::rate_log::SUMMARY_INTERVAL);
    loop {
        let deadline = until_deadline(&*device.lock().await);
        let outcomes = tokio::select! {
            // MO code reported (a finished EXEC, a change on the device),
            // or a pending EXEC's deadline passed.
            () = async {
                let _ = tokio::time::timeout(deadline, inbox.wait()).await;
            } => {
                let outcomes = deliver_reports(&mut *device.lock().await, None).await;
                (!outcomes.is_empty()).then_some(outcomes)
            }
            _ = summary.tick() => {
                if let Some(line) = drops.flush(std::time::Instant::now()) {
                    tracing::warn!("dmctl client: {line}");
                }
                None
            }
            received = async {
                match &socket {
                    Some(s) => s.recv_from(&mut buf).await,
                    None => std::future::pending().await,
                }
            } => {
                let (len, from) = received.map_err(|e| AgentError::Notify(e.to_string()))?;
                let datagram = buf[..len].to_vec();
                on_notification(&mut *device.lock().await, opts, &datagram, from, &mut drops).await
            }
            accepted = async {
                match &endpoint {
                    Some((listener, _)) => listener.accept().await,
                    None => std::future::pending().await,
                }
            } => {
                match (accepted, &endpoint) {
                    (Ok((tcp, peer)), Some((_, identity))) => {
                        let mut device = device.lock().await;
                        on_bootstrap_connection(&mut device, opts, identity, tcp, peer).await?
                    }
                    _ => None,
                }
            }
        };
        let Some(mut outcomes) = outcomes else {
            continue;
        };
        if once {
            let wait = Some(opts.limits.once_exec_wait);
            outcomes.extend(deliver_reports(&mut *device.lock().await, wait).await);
            return Ok(outcomes);
        }
        outcomes.iter().for_each(report);
    }
}

/// The local API served beside the listeners; stopped, and its socket
/// file removed, when the listeners return.
#[cfg(unix)]
struct LocalApiTask {
    task: tokio::task::JoinHandle<()>,
    path: std::path::PathBuf,
}

#[cfg(unix)]
impl LocalApiTask {
    fn start(
        device: std::sync::Arc<tokio::sync::Mutex<Device>>,
        config: LocalApiConfig,
    ) -> LocalApiTask {
        let path = config.path.clone();
        let task = tokio::spawn(async move {
            tracing::info!("dmctl client: local API on {}", config.path.display());
            if let Err(e) = crate::local_api::serve(device, &config).await {
                tracing::error!("dmctl client: {e}");
            }
        });
        LocalApiTask { task, path }
    }
}

#[cfg(unix)]
impl Drop for LocalApiTask {
    fn drop(&mut self) {
        self.task.abort();
        crate::local_api::remove_socket(&self.path);
    }
}

/// One log line per session (`tracing`; `dmctl` writes it to stderr).
pub fn report(o: &SessionOutcome) {
    match &o.result {
        Ok(r) => tracing::info!(
            "dmctl client: session with {} ended with END after {} command(s)",
            o.server_id,
            r.commands.len()
        ),
        Err(e) => tracing::warn!("dmctl client: session with {} aborted: {e}", o.server_id),
    }
}

/// Applies a factory bootstrap file (spec 8.2, 8.5): an `application/
/// dmmo+json` array applied like HGET without ClientURI. A DMAcc instance
/// belongs to the server it describes; other items to the file's first
/// server. The same file applied again (every start) changes nothing; a
/// file that would change another server's account is refused whole.
pub fn apply_bootstrap(device: &mut Device, file: &Path) -> Result<(), AgentError> {
    let fail = |reason: String| AgentError::Bootstrap {
        path: file.to_owned(),
        reason,
    };
    let bytes = std::fs::read(file).map_err(|e| fail(e.to_string()))?;
    bootstrap::apply(device, &bytes, bootstrap::Source::Factory)
        .map(|_| ())
        .map_err(|e| fail(e.to_string()))
}

/// The device with its factory bootstrap and, with `--bootstrap-url`, the
/// client-initiated one (spec 8.3) applied. A bootstrap server that cannot
/// be reached or whose bootstrap is refused is reported; the device goes on
/// with the accounts it has, and fails only when it has none.
async fn prepare(opts: &AgentOptions, observer: Option<Observer>) -> Result<Device, AgentError> {
    let mut device = open_device(opts)?;
    if let Some(o) = observer {
        device.observe(o);
    }
    if let Some(file) = &opts.bootstrap {
        apply_bootstrap(&mut device, file)?;
    }
    if let Some(url) = &opts.security.bootstrap_url {
        if let Err(e) = fetch_bootstrap(&mut device, opts, url).await {
            if device.accounts().is_empty() {
                return Err(e);
            }
            tracing::warn!("dmctl client: {e}; going on with the accounts already bootstrapped");
        }
    }
    Ok(device)
}

/// The device's own certificate and key (`--tls-cert`, `--tls-key`).
fn device_identity(opts: &AgentOptions) -> Result<Option<Identity>, AgentError> {
    match (&opts.security.tls_cert, &opts.security.tls_key) {
        (Some(cert), Some(key)) => Ok(Some(Identity::from_files(cert, key)?)),
        _ => Ok(None),
    }
}

async fn fetch_bootstrap(
    device: &mut Device,
    opts: &AgentOptions,
    url: &str,
) -> Result<(), AgentError> {
    let fail = |reason: String| AgentError::BootstrapFetch {
        url: url.to_owned(),
        reason,
    };
    // `--tls-cert`/`--tls-key`, else the account's Auth/Bootstrap
    // ClientPubKey and ClientSecretKey (12.2).
    let identity = match device_identity(opts)? {
        Some(id) => Some(id),
        None => bootstrap::client_identity_for(device, url),
    };
    // An account naming this server pins its key (12.2 ServerPubKey).
    let pins = bootstrap::server_pins(device, url);
    let fetched = bootstrap::fetch(
        url,
        device.dev_id(),
        &device.config().trust,
        &pins,
        identity.as_ref(),
        opts.timeout,
    )
    .await
    .map_err(|e| fail(e.to_string()))?;
    let source = bootstrap::Source::Fetched {
        url,
        server_key: fetched.server_key.as_deref(),
    };
    let applied = bootstrap::apply(device, &fetched.body, source)
        .map_err(|e| fail(format!("refused: {e}")))?;
    if !applied.already_applied {
        tracing::info!(
            "dmctl client: bootstrap from {url} applied for server(s) {}",
            applied.servers.join(", ")
        );
    }
    Ok(())
}

/// A session with BootstrapComplete and MOS with each of `servers` whose
/// bootstrap is still unannounced (spec 8).
pub async fn bootstrap_sessions(device: &mut Device, servers: &[String]) -> Vec<SessionOutcome> {
    let mut outcomes = Vec::new();
    for server_id in servers {
        if !device.agent_state().bootstrap_pending.contains(server_id) {
            continue;
        }
        let result = device
            .run_session_as(server_id, Initiation::BootstrapComplete, true, Vec::new())
            .await;
        if result.is_ok() {
            device
                .agent_state_mut()
                .bootstrap_pending
                .retain(|s| s != server_id);
            device.save_agent();
        }
        outcomes.push(SessionOutcome {
            server_id: server_id.clone(),
            result,
        });
    }
    outcomes
}

/// Loads the plugins in `dir` (isolated unless marked trusted, see
/// [`crate::plugins`]), registers each of their instances and a factory
/// for new ones; returns what was refused.
pub fn register_plugins(
    registry: &mut Registry,
    dir: &Path,
    options: &crate::plugins::PluginOptions,
) -> Vec<PluginError> {
    let (plugins, mut errors) = crate::plugins::load_dir(dir, &registry.served_moids(), options);
    for plugin in plugins {
        match plugin.instances() {
            Ok(miids) => {
                for miid in miids {
                    let instance = PluginInstance::new(plugin.clone(), miid.clone());
                    registry.insert_owned(miid, Box::new(instance), Owner::Device, true);
                }
                let p = plugin.clone();
                registry.add_factory(Factory {
                    schema: plugin.schema,
                    create: Box::new(move |miid: &str, data: &NodeData| {
                        PluginInstance::create(p.clone(), miid, data)
                            .map(|i| Box::new(i) as Box<dyn dm_core::ManagementObject>)
                    }),
                    persistent: true,
                });
            }
            Err(e) => errors.push(PluginError::BadTable {
                path: plugin.path.clone(),
                reason: format!("instance list: {e}"),
            }),
        }
    }
    errors
}

/// Why `dmctl client --local-api` stopped.
#[derive(Debug, thiserror::Error)]
pub enum LocalApiError {
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error(transparent)]
    Socket(#[from] crate::local_api::ServeError),
}

/// `dmctl client --local-api PATH`: opens the device from its state
/// directory and serves the local API as `config` says until Ctrl-C.
#[cfg(unix)]
pub async fn run_local_api(
    opts: &AgentOptions,
    config: &LocalApiConfig,
) -> Result<(), LocalApiError> {
    let mut device = open_device(opts)?;
    if let Some(file) = &opts.bootstrap {
        apply_bootstrap(&mut device, file)?;
    }
    let device = std::sync::Arc::new(tokio::sync::Mutex::new(device));
    tracing::info!("dmctl client: local API on {}", config.path.display());
    let result = tokio::select! {
        r = crate::local_api::serve(device, config) => r,
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    crate::local_api::remove_socket(&config.path);
    result.map_err(LocalApiError::from)
}
