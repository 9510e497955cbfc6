//! The DM Client side of a DM Session (spec 5.2): Package#1, then for each
//! Package#2 the commands in order and a Package#3, until END.

use std::time::Duration;

use dm_core::multipart::{Part, ResponseBody};
use dm_core::package::{alert_type, header, media_type};
use dm_core::{
    AccessType, Alert, ClientUri, Command, ExecOutcome, ExecRequest, Format, MoDataItem, MoInfo,
    NodeData, Package1, Package2, PackageError, ServerUri, Status, StatusCode,
};
use hyper::Method;
use serde_json::{Map, Value as Json};

use crate::http::{status_of, Exchange, HttpClient, HttpError, Observer};
use crate::tree::{Instance, Registry, Resolved};

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
                let mut a = Alert::new(alert_type::SERVER_INITIATED_MGMT);
                a.data = notification_id.map(Json::from);
                a
            }
        }
    }
}

/// What a session did, for the caller's report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionReport {
    /// Every command executed, with its status, in order.
    pub commands: Vec<(String, StatusCode)>,
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
    /// Guard against a server that never sends END.
    pub max_packages: usize,
}

impl DeviceConfig {
    pub fn new(dev_id: impl Into<String>) -> DeviceConfig {
        DeviceConfig {
            dev_id: dev_id.into(),
            timeout: Duration::from_secs(30),
            max_packages: 1000,
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
}

/// A Generic Alert waiting for a session with the server that asked for it
/// (EXEC with a ServerURI, spec 5.3.5 and 5.4.1).
#[derive(Debug, Clone, PartialEq)]
pub struct PendingAlert {
    /// Where to open the session that carries the alert.
    pub server_uri: String,
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
        let http = HttpClient::new(config.timeout);
        Device {
            config,
            registry,
            http,
            observer: None,
            pending_alerts: Vec::new(),
        }
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

    /// Runs one DM Session with the DM Server at `server_uri`.
    pub async fn run_session(
        &mut self,
        server_uri: &str,
        initiation: Initiation,
        send_mos: bool,
    ) -> Result<SessionReport, SessionError> {
        self.run_session_with_alerts(server_uri, initiation, send_mos, Vec::new())
            .await
    }

    /// Runs one DM Session whose Package#1 also carries `alerts` (Generic
    /// Alerts for this server, spec 5.4).
    pub async fn run_session_with_alerts(
        &mut self,
        server_uri: &str,
        initiation: Initiation,
        send_mos: bool,
        alerts: Vec<Alert>,
    ) -> Result<SessionReport, SessionError> {
        let mut all_alerts = vec![initiation.alert()];
        all_alerts.extend(alerts);
        let package1 = Package1 {
            mos: send_mos.then(|| self.mos()),
            alerts: all_alerts,
        };
        let mut uri = server_uri.to_owned();
        let mut exchange = self
            .post(&uri, media_type::PACKAGE1, package1.to_vec())
            .await?;
        let mut report = SessionReport::default();
        loop {
            let package2 = self.read_package2(&uri, &exchange)?;
            report.packages += 1;
            if report.packages > self.config.max_packages {
                return Err(SessionError::TooManyPackages(self.config.max_packages));
            }
            let mut response = ResponseBody {
                package: Default::default(),
                data: Vec::new(),
            };
            let mut end = false;
            for (index, entry) in package2.commands.iter().enumerate() {
                let (status, part) = match entry {
                    Err(e) => (Status::new(e.status()), None),
                    Ok(Command::End) => {
                        end = true;
                        report.commands.push(("END".into(), StatusCode::OK));
                        continue;
                    }
                    Ok(Command::Cont { server_uri }) => {
                        // spec 5.3.8: the rest of the session goes there.
                        uri = server_uri.resolve(&self.uri_params());
                        (Status::new(StatusCode::OK), None)
                    }
                    Ok(Command::Get { client_uri }) => self.get(index, client_uri),
                    Ok(Command::Exec {
                        client_uri,
                        server_uri,
                    }) => (self.exec(client_uri, server_uri.as_ref()), None),
                    // Not in this build yet: the spec's answer for a feature
                    // the recipient does not support (Appendix C).
                    Ok(_) => (Status::new(StatusCode::NOT_IMPLEMENTED), None),
                };
                let name = match entry {
                    Ok(c) => c.name().to_owned(),
                    Err(_) => "(malformed)".to_owned(),
                };
                report.commands.push((name, status.code));
                response.package.statuses.push(status);
                response.data.extend(part);
            }
            if end {
                // spec 5.3.9: no Package#3 after END.
                return Ok(report);
            }
            let (content_type, body) = response.encode();
            exchange = self.post(&uri, &content_type, body).await?;
        }
    }

    fn uri_params(&self) -> dm_core::ServerUriParams {
        dm_core::ServerUriParams {
            dev_id: self.config.dev_id.clone(),
            ..Default::default()
        }
    }

    fn mos(&self) -> Vec<MoInfo> {
        self.registry
            .mos()
            .into_iter()
            .map(|(schema, miids)| MoInfo {
                ddf: Some(schema.ddf_url.to_owned()).filter(|u| !u.is_empty()),
                moid: Some(schema.moid.to_owned()),
                miids: miids.into_iter().map(str::to_owned).collect(),
            })
            .collect()
    }

    async fn post(
        &self,
        uri: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Exchange, SessionError> {
        let headers = [
            ("Content-Type", content_type.to_owned()),
            ("Accept", media_type::PACKAGE2.to_owned()),
            (header::DEV_ID, self.config.dev_id.clone()),
        ];
        let exchange = self.http.call(Method::POST, uri, &headers, body).await?;
        if let Some(o) = &self.observer {
            o(&exchange);
        }
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
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !essence.is_empty() && !essence.eq_ignore_ascii_case(media_type::PACKAGE2) {
            return Err(SessionError::UnexpectedContentType {
                uri: uri.to_owned(),
                content_type: content_type.to_owned(),
            });
        }
        Package2::parse(&exchange.response.body).map_err(|source| SessionError::BadPackage {
            uri: uri.to_owned(),
            source,
        })
    }

    /// GET (spec 5.3.6, Appendix F): the data of every node the ClientURI
    /// resolves to, in the part named after the command's index.
    fn get(&self, index: usize, uri: &ClientUri) -> (Status, Option<Part>) {
        let resolved = match self.registry.resolve(uri) {
            Ok(r) => r,
            Err(code) => return (Status::new(code), None),
        };
        // Every node touched must allow Get (spec 6.3.1.1).
        let mut nodes = Vec::with_capacity(resolved.len());
        for r in &resolved {
            match self.registry.schema_of(r) {
                Some(s) if s.access.contains(AccessType::GET) => nodes.push((r, s)),
                _ => return (Status::new(StatusCode::COMMAND_NOT_ALLOWED), None),
            }
        }
        let mut items = Vec::with_capacity(nodes.len());
        for (r, schema) in &nodes {
            match self.read(r, schema, uri.query().level) {
                Ok((instance, data)) => items.push((instance, *r, data)),
                Err(code) => return (Status::new(code), None),
            }
        }
        if items
            .iter()
            .all(|(_, _, d)| matches!(d, NodeData::Leaf(v) if v.format() == Format::Null))
        {
            return (Status::new(StatusCode::NO_CONTENT), None);
        }
        let name = index.to_string();
        let part = match items.as_slice() {
            // Appendix F: a single leaf may travel as its bare value; a
            // wildcard always answers with a list of MO data (6.1.2).
            [(_, _, NodeData::Leaf(v))] if !uri.has_wildcard() => {
                let (content_type, body) = v.to_bare();
                Part {
                    name: Some(name),
                    content_type: content_type.to_owned(),
                    body,
                }
            }
            _ => {
                let list: Vec<MoDataItem> = items
                    .iter()
                    .map(|(instance, r, d)| mo_data_item(instance, r, d))
                    .collect();
                Part {
                    name: Some(name),
                    content_type: media_type::MO_DATA.to_owned(),
                    body: serde_json::to_vec(&list).unwrap_or_default(),
                }
            }
        };
        (Status::new(StatusCode::OK), Some(part))
    }

    /// EXEC (spec 5.3.5): every node the ClientURI resolves to must allow
    /// Exec (405 otherwise). With a ServerURI the result is reported
    /// asynchronously: 202 now, a Generic Alert in a new session (5.4.1).
    fn exec(&mut self, uri: &ClientUri, server_uri: Option<&ServerUri>) -> Status {
        let resolved = match self.registry.resolve(uri) {
            Ok(r) => r,
            Err(code) => return Status::new(code),
        };
        if resolved.iter().any(|r| {
            !self
                .registry
                .schema_of(r)
                .is_some_and(|s| s.access.contains(AccessType::EXEC))
        }) {
            return Status::new(StatusCode::COMMAND_NOT_ALLOWED);
        }
        let request = ExecRequest {
            asynchronous: server_uri.is_some(),
        };
        let mut code = StatusCode::OK;
        for r in &resolved {
            let path: Vec<&str> = r.path.iter().map(String::as_str).collect();
            let Some(instance) = self.registry.instance_mut(r.instance) else {
                return Status::new(StatusCode::NOT_FOUND);
            };
            let moid = instance.mo.schema().moid;
            let result = instance.mo.exec(&path, &request);
            let node_uri = ClientUri::for_node(moid, &instance.miid, &path);
            let outcome = match &result {
                Ok(ExecOutcome::Done) => StatusCode::OK,
                Ok(ExecOutcome::Started) => StatusCode::ACCEPTED,
                Err(e) => e.status(),
            };
            match server_uri {
                Some(target) => {
                    let mut alert = Alert::new(operation_complete_alert(moid));
                    alert.source_uri = Some(node_uri);
                    alert.data_type = Some("application/json".into());
                    alert.data = Some(serde_json::json!({ "sc": outcome.as_u16() }));
                    self.pending_alerts.push(PendingAlert {
                        server_uri: target.resolve(&self.uri_params()),
                        alert,
                    });
                    code = StatusCode::ACCEPTED;
                }
                None if !outcome.is_success() => return Status::new(outcome),
                None if outcome == StatusCode::ACCEPTED => code = outcome,
                None => {}
            }
        }
        Status::new(code)
    }

    fn read(
        &self,
        r: &Resolved,
        schema: &dm_core::NodeSchema,
        level: Option<u32>,
    ) -> Result<(&Instance, NodeData), StatusCode> {
        let instance = self
            .registry
            .instance(r.instance)
            .ok_or(StatusCode::NOT_FOUND)?;
        let path: Vec<&str> = r.path.iter().map(String::as_str).collect();
        let mut data = instance.mo.get(&path).map_err(|_| StatusCode::NOT_FOUND)?;
        data.retain_readable(schema);
        if let Some(n) = level {
            truncate(&mut data, n);
        }
        Ok((instance, data))
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

/// One element of MO serialization for a resolved node (spec 7.2.1.4).
fn mo_data_item(instance: &Instance, r: &Resolved, data: &NodeData) -> MoDataItem {
    let schema = instance.mo.schema();
    let path: Vec<&str> = r.path.iter().map(String::as_str).collect();
    // ARCHITECTURE "MOData naming": the addressed node's name, the MIID at
    // an instance root.
    let member = path
        .last()
        .copied()
        .unwrap_or(instance.miid.as_str())
        .to_owned();
    let mut mo_data = Map::new();
    mo_data.insert(member, data.to_json());
    MoDataItem {
        ddf: Some(schema.ddf_url.to_owned()).filter(|u| !u.is_empty()),
        client_uri: ClientUri::for_node(schema.moid, &instance.miid, &path),
        cv: None,
        mo_data,
    }
}

/// Keeps `level` sublevels of children (the `lv` query field, 6.1.1.3);
/// deeper interior nodes are sent as `{}` (7.2.1.4: "If the child nodes are
/// not transferred, the empty JSON object").
fn truncate(data: &mut NodeData, level: u32) {
    if let NodeData::Interior(children) = data {
        if level == 0 {
            children.clear();
            return;
        }
        for (_, c) in children.iter_mut() {
            if let NodeData::Interior(_) = c {
                truncate(c, level - 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dm_core::Value;

    #[test]
    fn lv_keeps_n_sublevels() {
        let leaf = || NodeData::Leaf(Value::Int(1));
        let mut d = NodeData::Interior(vec![
            ("a".into(), leaf()),
            ("b".into(), NodeData::Interior(vec![("c".into(), leaf())])),
        ]);
        truncate(&mut d, 1);
        assert_eq!(d.to_json().to_string(), r#"{"a":1,"b":{}}"#);
    }

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
        assert_eq!(a.data, Some(Json::from(7)));
        assert_eq!(
            Initiation::BootstrapComplete.alert().alert_type,
            alert_type::BOOTSTRAP_COMPLETE
        );
    }
}
