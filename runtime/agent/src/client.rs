//! The DM Client side of a DM Session (spec 5.2): Package#1, then for each
//! Package#2 the commands in order and a Package#3, until END.

use std::time::Duration;

use bytes::Bytes;
use dm_core::multipart::ResponseWriter;
use dm_core::package::{alert_type, header, media_type};
use dm_core::{
    Alert, Command, MoInfo, Package1, Package2, Package3, PackageError, Status, StatusCode,
};
use hyper::Method;

use crate::access::{self, Principal};
use crate::http::{status_of, Exchange, HttpClient, HttpError, Observer, PlainHttp};
use crate::store::{AgentState, StateDir};
use crate::tls::{TransportAuth, TrustAnchors};
use crate::tree::{Owner, Registry};

/// Why a session ended without END. Each aborts the session without retry
/// (spec 5.6).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("DM Server {uri} answered HTTP {status}")]
    HttpStatus { uri: String, status: u16 },
    #[error(
        "DM Server {uri} sent Content-Type `{content_type}`, expected {}",
        media_type::PACKAGE2
    )]
    UnexpectedContentType { uri: String, content_type: String },
    #[error("DM Server {uri} sent a malformed Package#2: {source}")]
    BadPackage { uri: String, source: PackageError },
    #[error("session still running after {0} Package#2; aborted")]
    TooManyPackages(usize),
    #[error("DM Server {uri} sent a Package#2 of {bytes} bytes, over the limit of {limit} (--max-package-size); aborted")]
    PackageTooLarge {
        uri: String,
        bytes: usize,
        limit: usize,
    },
    #[error("DM Server {uri} sent {commands} commands in one Package#2, over the limit of {limit} (--max-commands); aborted")]
    TooManyCommands {
        uri: String,
        commands: usize,
        limit: usize,
    },
    #[error("session still running after {0} s (--session-deadline); aborted")]
    Deadline(u64),
    #[error("no DM Server account with SrvID `{0}`")]
    NoAccount(String),
    #[error("transport security for server {server}: {source}")]
    Tls {
        server: String,
        source: crate::tls::TlsError,
    },
}

/// Why the session is started; decides the alert of Package#1 (5.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiation {
    ClientInitiated,
    BootstrapComplete,
    ServerInitiated { notification_id: Option<u16> },
}

impl Initiation {
    fn alert(self) -> Alert {
        match self {
            Initiation::ClientInitiated => Alert::new(alert_type::CLIENT_INITIATED_MGMT),
            Initiation::BootstrapComplete => Alert::new(alert_type::BOOTSTRAP_COMPLETE),
            Initiation::ServerInitiated { notification_id } => {
                Alert::server_initiated(notification_id)
            }
        }
    }
}

/// What a session did, for the caller's report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionReport {
    /// Every command executed, with its status, in order.
    pub commands: Vec<(&'static str, StatusCode)>,
    /// Number of Package#2 received.
    pub packages: usize,
}

/// Settings of a device.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// DevInfo/DevID, sent as `OMADM-DevID` on every package.
    pub dev_id: String,
    /// Time limit for each HTTP request.
    pub timeout: Duration,
    /// Roots that https:// servers are verified against (spec 9.2).
    pub trust: TrustAnchors,
    /// Where plain http:// may go (spec 9.2.2): loopback only by default.
    pub plain_http: PlainHttp,
    /// Loopback, link-local and private addresses a Data Repository may
    /// be at whatever range its DM Server is in (`--repository-allow`).
    pub repository_allow: Vec<crate::repository::AllowEntry>,
    /// What one server can make the agent do (`crate::Limits`).
    pub limits: crate::Limits,
}

impl DeviceConfig {
    pub fn new(dev_id: impl Into<String>) -> DeviceConfig {
        DeviceConfig {
            dev_id: dev_id.into(),
            timeout: Duration::from_secs(30),
            trust: TrustAnchors::system(),
            plain_http: PlainHttp::default(),
            repository_allow: Vec::new(),
            limits: crate::Limits::default(),
        }
    }
}

/// A DM Client: the MO instances of the device and the means to run
/// sessions with DM Servers.
pub struct Device {
    config: DeviceConfig,
    registry: Registry,
    http: HttpClient,
    observer: Option<Observer>,
    pending_alerts: Vec<PendingAlert>,
    /// Where instances and the agent's state are kept (none: in memory).
    store: Option<StateDir>,
    agent: AgentState,
    /// The Web Browser Component for SHOW (`--show-cmd`).
    show_cmd: Option<String>,
    /// Instances changed since subscribers were last told.
    changed: Vec<usize>,
    /// The HTTP client of each server's sessions, kept while its account
    /// and ServerURI stay the same so that sessions reuse the connection
    /// pool and TLS configuration: server ID -> (account change clock,
    /// ServerURI, client).
    session_clients: std::collections::HashMap<String, (u64, String, HttpClient)>,
    /// The size of the last Package#3 sent (at most [`RESPONSE_ROOM`]): the
    /// next one's writer starts with that much room.
    response_size: usize,
    /// The open transaction of the running command (`persist`).
    txn: Option<crate::persist::Txn>,
    /// Why the last command was refused (`Device::refuse`).
    refusal: std::sync::Mutex<Option<String>>,
    /// What MO code reported from its own threads: finished EXECs and
    /// changes on the device (`crate::live`).
    inbox: std::sync::Arc<crate::live::Inbox>,
}

/// The most a response writer reserves up front.
const RESPONSE_ROOM: usize = 1 << 20;

/// What a command runs with: for whom, and what the server said it reads.
#[derive(Debug, Clone)]
pub(crate) struct SessionCtx {
    pub principal: Principal,
    /// `OMADM-Accept` of the server's last Package#2 (5.5).
    pub server_accept: Option<String>,
    /// Owner of instances created for a local principal (bootstrap).
    pub owner: Owner,
}

impl SessionCtx {
    pub(crate) fn local(owner: Owner) -> SessionCtx {
        SessionCtx {
            principal: Principal::Local,
            server_accept: None,
            owner,
        }
    }

    /// The context of the server with `server_id` (its DMAcc account);
    /// `None` asks for the device's own context. `None` back when no
    /// account has that SrvID: never the device's rights in its place.
    pub(crate) fn for_server_id(device: &Device, server_id: Option<&str>) -> Option<SessionCtx> {
        let Some(id) = server_id else {
            return Some(SessionCtx::local(Owner::Device));
        };
        access::accounts(&device.registry)
            .into_iter()
            .find(|a| a.server_id == id)
            .map(SessionCtx::server)
    }

    /// The context of the server whose DMAcc account is the instance
    /// `miid`, if it still exists.
    pub(crate) fn for_account(device: &Device, miid: &str) -> Option<SessionCtx> {
        access::accounts(&device.registry)
            .into_iter()
            .find(|a| a.miid == miid)
            .map(SessionCtx::server)
    }

    fn server(account: access::ServerAccount) -> SessionCtx {
        SessionCtx {
            principal: Principal::Server(account),
            server_accept: None,
            owner: Owner::Device,
        }
    }
}

/// A Generic Alert waiting for a session with the server that asked for it
/// (EXEC with a ServerURI, spec 5.3.5 and 5.4.1).
#[derive(Debug, Clone, PartialEq)]
pub struct PendingAlert {
    /// Where to open the session that carries the alert.
    pub server_uri: String,
    /// The DMAcc instance (MIID) of the server that asked: the session
    /// runs as that account, with its rights only, whatever URI it goes to.
    pub account: String,
    pub alert: Alert,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("config", &self.config)
            .field("registry", &self.registry)
            .finish()
    }
}

impl Device {
    pub fn new(config: DeviceConfig, registry: Registry) -> Device {
        let http = HttpClient::with_tls(config.timeout, &config.trust, None)
            .unwrap_or_else(|_| HttpClient::new(config.timeout))
            .with_plain_http(config.plain_http);
        Device {
            config,
            registry,
            http,
            observer: None,
            pending_alerts: Vec::new(),
            store: None,
            agent: AgentState::default(),
            show_cmd: None,
            changed: Vec::new(),
            session_clients: Default::default(),
            txn: None,
            refusal: std::sync::Mutex::new(None),
            response_size: 0,
            inbox: Default::default(),
        }
    }

    /// What one server can make the agent do.
    pub(crate) fn limits(&self) -> &crate::Limits {
        &self.config.limits
    }

    /// Where MO code reports finished EXECs and device changes.
    pub(crate) fn inbox(&self) -> &std::sync::Arc<crate::live::Inbox> {
        &self.inbox
    }

    /// Keeps instances and agent state in `store` from now on.
    pub fn with_store(mut self, store: StateDir, agent: AgentState) -> Device {
        self.store = Some(store);
        self.agent = agent;
        self
    }

    /// The program SHOW starts, as `CMD -- URI` (an http(s) URI only).
    pub fn set_show_cmd(&mut self, cmd: Option<String>) {
        self.show_cmd = cmd;
    }

    /// The registry, for changes made by the device itself.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The agent's persistent state.
    pub fn agent_state(&self) -> &AgentState {
        &self.agent
    }

    pub(crate) fn agent_state_mut(&mut self) -> &mut AgentState {
        // The open transaction keeps the state as it found it (`persist`).
        if let Some(txn) = &mut self.txn {
            if txn.agent.is_none() {
                txn.agent = Some(self.agent.clone());
            }
        }
        &mut self.agent
    }

    /// The device's configuration.
    pub(crate) fn config(&self) -> &DeviceConfig {
        &self.config
    }

    /// The HTTP client of the running session (the device's own outside
    /// one): transfers and notifications go through it.
    pub(crate) fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The state directory instances and agent state are kept in, if any.
    pub(crate) fn store(&self) -> Option<&StateDir> {
        self.store.as_ref()
    }

    /// The program SHOW starts (`--show-cmd`), if any.
    pub(crate) fn show_cmd(&self) -> Option<&str> {
        self.show_cmd.as_deref()
    }

    /// The open transaction, if a command is running in one.
    pub(crate) fn txn_slot(&mut self) -> &mut Option<crate::persist::Txn> {
        &mut self.txn
    }

    pub(crate) fn set_refusal(&self, reason: String) {
        *self.refusal.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
    }

    /// Why the last refused command was refused, forgotten.
    pub fn take_refusal(&self) -> Option<String> {
        self.refusal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// True while a command runs in a transaction.
    pub(crate) fn in_txn(&self) -> bool {
        self.txn.is_some()
    }

    pub(crate) fn pending_alert_count(&self) -> usize {
        self.pending_alerts.len()
    }

    /// Forgets the alerts queued after the first `n` (a command taken back).
    pub(crate) fn truncate_alerts(&mut self, n: usize) {
        self.pending_alerts.truncate(n);
    }

    pub(crate) fn changed_count(&self) -> usize {
        self.changed.len()
    }

    /// Forgets the changes recorded after the first `n`.
    pub(crate) fn truncate_changed(&mut self, n: usize) {
        self.changed.truncate(n);
    }

    /// Keeps an asynchronous EXEC's alert until a session carries it.
    pub(crate) fn queue_alert(&mut self, alert: PendingAlert) {
        self.pending_alerts.push(alert);
    }

    /// Records that the instance at `index` changed, for subscribers.
    pub(crate) fn mark_changed(&mut self, index: usize) {
        self.changed.push(index);
    }

    /// The instances changed since subscribers were last told, forgotten.
    pub(crate) fn take_changed(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.changed)
    }

    /// Every DM Server account (DMAcc instances).
    pub fn accounts(&self) -> Vec<access::ServerAccount> {
        access::accounts(&self.registry)
    }

    /// The device's MO instances.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Takes the alerts of asynchronous EXECs that still wait for a session.
    pub fn take_pending_alerts(&mut self) -> Vec<PendingAlert> {
        std::mem::take(&mut self.pending_alerts)
    }

    /// Calls `observer` with every HTTP exchange of every session.
    pub fn observe(&mut self, observer: Observer) {
        self.observer = Some(observer);
    }

    pub fn dev_id(&self) -> &str {
        &self.config.dev_id
    }

    /// Runs one DM Session with the DM Server at `server_uri`, with no
    /// access restriction (a test harness or a local tool). Sessions with a
    /// bootstrapped server go through [`Device::run_session_as`].
    pub async fn run_session(
        &mut self,
        server_uri: &str,
        initiation: Initiation,
        send_mos: bool,
    ) -> Result<SessionReport, SessionError> {
        self.run_session_with_alerts(server_uri, initiation, send_mos, Vec::new())
            .await
    }

    /// As [`Device::run_session`], with Generic Alerts in Package#1 (5.4).
    pub async fn run_session_with_alerts(
        &mut self,
        server_uri: &str,
        initiation: Initiation,
        send_mos: bool,
        alerts: Vec<Alert>,
    ) -> Result<SessionReport, SessionError> {
        let ctx = SessionCtx::local(Owner::Device);
        self.session(ctx, server_uri, initiation, send_mos, alerts)
            .await
    }

    /// Runs one DM Session for the server with DMAcc SrvID `server_id`:
    /// every command is checked against its rights, MOS lists only what its
    /// Perm list covers.
    pub async fn run_session_as(
        &mut self,
        server_id: &str,
        initiation: Initiation,
        send_mos: bool,
        alerts: Vec<Alert>,
    ) -> Result<SessionReport, SessionError> {
        let Some(ctx) = SessionCtx::for_server_id(self, Some(server_id)) else {
            return Err(SessionError::NoAccount(server_id.to_owned()));
        };
        let uri = match &ctx.principal {
            Principal::Server(a) => a.server_uri.clone(),
            _ => return Err(SessionError::NoAccount(server_id.to_owned())),
        };
        self.session(ctx, &uri, initiation, send_mos, alerts).await
    }

    /// Runs one DM Session at `server_uri` as the server whose DMAcc
    /// account is the instance `miid` (its rights, its credentials): how a
    /// session a server caused elsewhere than its SrvURI runs (the Generic
    /// Alert of an asynchronous EXEC, 5.4.1).
    pub async fn run_session_for_account(
        &mut self,
        miid: &str,
        server_uri: &str,
        initiation: Initiation,
        alerts: Vec<Alert>,
    ) -> Result<SessionReport, SessionError> {
        let Some(ctx) = SessionCtx::for_account(self, miid) else {
            return Err(SessionError::NoAccount(miid.to_owned()));
        };
        self.session(ctx, server_uri, initiation, false, alerts)
            .await
    }

    /// Runs a session over an HTTP client holding the server's `Auth/Trsp`
    /// credentials (spec 9.2.1), so that HGET, HPUT, HPOST and SUB of the
    /// session use them too.
    async fn session(
        &mut self,
        ctx: SessionCtx,
        server_uri: &str,
        initiation: Initiation,
        send_mos: bool,
        alerts: Vec<Alert>,
    ) -> Result<SessionReport, SessionError> {
        let http = match &ctx.principal {
            Principal::Server(a) => self.cached_session_http(&a.server_id, server_uri)?,
            // Sessions run for servers; other principals use no credentials.
            Principal::Local | Principal::App(_) => self.http.clone(),
        };
        let default = std::mem::replace(&mut self.http, http);
        let deadline = self.config.limits.session_deadline;
        let result = tokio::time::timeout(
            deadline,
            self.session_with(ctx, server_uri, initiation, send_mos, alerts),
        )
        .await
        .unwrap_or_else(|_| {
            // Cut off in the middle of a command: it is taken back whole.
            self.abort();
            Err(SessionError::Deadline(deadline.as_secs()))
        });
        self.http = default;
        result
    }

    /// [`Device::session_http`], reused while the server's DMAcc account
    /// (its change clock) and the ServerURI are unchanged.
    fn cached_session_http(
        &mut self,
        server_id: &str,
        server_uri: &str,
    ) -> Result<HttpClient, SessionError> {
        let stamp = self
            .registry
            .instances()
            .map(|(_, i)| i)
            .filter(|i| i.mo().schema().moid == access::DMACC_MOID)
            .find(|i| {
                matches!(i.mo().get(&["SrvID"]),
                    Ok(dm_core::NodeData::Leaf(dm_core::Value::Chr(s))) if s == server_id)
            })
            .map_or(0, |i| i.changes());
        if let Some((at, uri, http)) = self.session_clients.get(server_id) {
            if *at == stamp && uri == server_uri {
                return Ok(http.clone());
            }
        }
        let http = self.session_http(server_id, server_uri)?;
        self.session_clients.insert(
            server_id.to_owned(),
            (stamp, server_uri.to_owned(), http.clone()),
        );
        Ok(http)
    }

    /// The HTTP client of a session with `server_id`.
    fn session_http(&self, server_id: &str, server_uri: &str) -> Result<HttpClient, SessionError> {
        let tls = |source| SessionError::Tls {
            server: server_id.to_owned(),
            source,
        };
        let auth = TransportAuth::of_account(&self.registry, server_id).map_err(tls)?;
        let identity = match &auth {
            TransportAuth::Certificate(id) => Some(id),
            _ => None,
        };
        let http = HttpClient::with_tls(self.config.timeout, &self.config.trust, identity)
            .map_err(tls)?
            .with_plain_http(self.config.plain_http);
        match &auth {
            TransportAuth::Basic { user, password } => {
                http.with_password(server_uri, user, password).map_err(tls)
            }
            _ => Ok(http),
        }
    }

    async fn session_with(
        &mut self,
        mut ctx: SessionCtx,
        server_uri: &str,
        initiation: Initiation,
        send_mos: bool,
        alerts: Vec<Alert>,
    ) -> Result<SessionReport, SessionError> {
        // spec 12.4: SessionInfo describes this session.
        self.refresh_session_info(server_uri).await;
        let mut all_alerts = vec![initiation.alert()];
        all_alerts.extend(alerts);
        let package1 = Package1 {
            mos: send_mos.then(|| self.mos(&ctx.principal)),
            alerts: all_alerts,
        };
        let mut uri = server_uri.to_owned();
        let mut exchange = self
            .post(&uri, media_type::PACKAGE1, package1.to_vec())
            .await?;
        let mut report = SessionReport::default();
        loop {
            let package2 = self.read_package2(&uri, &exchange)?;
            ctx.server_accept = exchange.response.header(header::ACCEPT).map(str::to_owned);
            report.packages += 1;
            let max_packages = self.config.limits.packages_per_session;
            if report.packages > max_packages {
                return Err(SessionError::TooManyPackages(max_packages));
            }
            let limit = self.config.limits.commands_per_package;
            if package2.commands.len() > limit {
                return Err(SessionError::TooManyCommands {
                    uri,
                    commands: package2.commands.len(),
                    limit,
                });
            }
            // One status per command: sized once, never grown.
            let mut package3 = Package3 {
                statuses: Vec::with_capacity(package2.commands.len()),
                ..Package3::default()
            };
            report.commands.reserve(package2.commands.len());
            let mut response =
                ResponseWriter::with_capacity(self.response_size, package2.commands.len());
            let mut end = false;
            for (index, entry) in package2.commands.iter().enumerate() {
                let status = match entry {
                    Err(e) => Status::new(e.status()),
                    Ok(Command::End) => {
                        end = true;
                        report.commands.push(("END", StatusCode::OK));
                        continue;
                    }
                    // The response is full: nothing more runs (Limits).
                    Ok(_) if response.data_len() >= self.config.limits.response_bytes => {
                        Status::new(StatusCode::SERVICE_UNAVAILABLE)
                    }
                    Ok(command) => {
                        // One transaction per command (`persist`).
                        self.begin();
                        let mut status = self
                            .execute(&ctx, index, command, &mut uri, &mut response)
                            .await;
                        let may_be_full = matches!(command, Command::Hget { .. });
                        let code = self.finish_command(status.code, may_be_full);
                        if code != status.code {
                            // Taken back: none of the stored URIs stands.
                            status = Status::new(code);
                        }
                        status
                    }
                };
                let name = match entry {
                    Ok(c) => c.name(),
                    Err(_) => "(malformed)",
                };
                report.commands.push((name, status.code));
                package3.statuses.push(status);
                // A change reaches subscribers when it happens (5.3.11).
                self.notify_subscribers().await;
            }
            if end {
                // spec 5.3.9: no Package#3 after END.
                return Ok(report);
            }
            let (content_type, body) = response.finish(&package3);
            self.response_size = body.len().min(RESPONSE_ROOM);
            // Sent from the buffer the parts were written in.
            let (buf, start) = body.into_parts();
            let body = Bytes::from(buf).slice(start..);
            // This round's packages are freed once Package#3 is on its way,
            // while the server works on it, instead of after its answer.
            let spent = (exchange, package2, package3);
            let (next, ()) = tokio::join!(self.post(&uri, &content_type, body), async move {
                drop(spent);
            });
            exchange = next?;
        }
    }

    pub(crate) fn uri_params(&self) -> dm_core::ServerUriParams {
        dm_core::ServerUriParams {
            dev_id: self.config.dev_id.clone(),
            ..Default::default()
        }
    }

    /// The MOS array (5.2.2): only MOIDs the server's Perm list covers,
    /// only the instances it has some right on.
    fn mos(&self, principal: &Principal) -> Vec<MoInfo> {
        let visible = |moid: &str, miid: &str| {
            self.registry
                .find(moid, miid)
                .is_some_and(|i| access::can_see(principal, &self.registry, i))
        };
        self.registry
            .mos()
            .into_iter()
            // Only MOIDs of the Perm list (5.2.2, issue text), DACMO
            // included: a server may still GET the rules of what it sees.
            .filter(|(schema, _)| match principal {
                Principal::Server(a) => a.covers(schema.moid),
                Principal::App(_) | Principal::Local => true,
            })
            .map(|(schema, miids)| MoInfo {
                ddf: schema.ddf_url.filter(|u| !u.is_empty()).map(str::to_owned),
                moid: Some(schema.moid.to_owned()),
                miids: miids
                    .into_iter()
                    .filter(|m| visible(schema.moid, m))
                    .map(str::to_owned)
                    .collect(),
            })
            .collect()
    }

    async fn post(
        &self,
        uri: &str,
        content_type: &str,
        body: impl Into<Bytes>,
    ) -> Result<Exchange, SessionError> {
        let headers = [
            ("Content-Type", content_type.to_owned()),
            ("Accept", media_type::PACKAGE2.to_owned()),
            (header::DEV_ID, self.config.dev_id.clone()),
        ];
        let exchange = self.http.call(Method::POST, uri, &headers, body).await?;
        self.observe_exchange(&exchange);
        let status = status_of(&exchange.response);
        if !(200..300).contains(&status) {
            return Err(SessionError::HttpStatus {
                uri: uri.to_owned(),
                status,
            });
        }
        Ok(exchange)
    }

    fn read_package2(&self, uri: &str, exchange: &Exchange) -> Result<Package2, SessionError> {
        let content_type = exchange.response.header("content-type").unwrap_or("");
        let essence = media_type::essence(content_type);
        if !essence.is_empty() && essence != media_type::PACKAGE2 {
            return Err(SessionError::UnexpectedContentType {
                uri: uri.to_owned(),
                content_type: content_type.to_owned(),
            });
        }
        let (bytes, limit) = (
            exchange.response.body.len(),
            self.config.limits.package_bytes,
        );
        if bytes > limit {
            return Err(SessionError::PackageTooLarge {
                uri: uri.to_owned(),
                bytes,
                limit,
            });
        }
        Package2::parse(&exchange.response.body).map_err(|source| SessionError::BadPackage {
            uri: uri.to_owned(),
            source,
        })
    }

    pub(crate) fn observe_exchange(&self, exchange: &Exchange) {
        if let Some(o) = &self.observer {
            o(exchange);
        }
    }
}

/// The AlertType that reports a finished operation of an MO, after the
/// convention of OMA's MOs (`urn:oma:at:dcmo:1.0:OperationComplete` for
/// `urn:oma:mo:oma-dcmo:1.0`, likewise SCOMO). The spec leaves the type of
/// an asynchronous EXEC result to each MO (5.4.1).
pub fn operation_complete_alert(moid: &str) -> String {
    let tail = moid.strip_prefix("urn:oma:mo:").unwrap_or(moid);
    let tail = tail.strip_prefix("oma-").unwrap_or(tail);
    format!("urn:oma:at:{tail}:OperationComplete")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_complete_alert_follows_the_oma_convention() {
        assert_eq!(
            operation_complete_alert("urn:oma:mo:oma-dcmo:1.0"),
            "urn:oma:at:dcmo:1.0:OperationComplete"
        );
    }

    #[test]
    fn package1_alert_follows_the_initiation() {
        let a = Initiation::ServerInitiated {
            notification_id: Some(7),
        }
        .alert();
        assert_eq!(a.alert_type, alert_type::SERVER_INITIATED_MGMT);
        assert_eq!(a.notification_id(), Some(7));
        assert_eq!(a.data_type.as_deref(), Some("application/json"));
        assert_eq!(
            Initiation::BootstrapComplete.alert().alert_type,
            alert_type::BOOTSTRAP_COMPLETE
        );
    }
}
