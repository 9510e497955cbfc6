//! The JSON packages of spec 7.2.1: Package#1, Package#2, Package#3, MO
//! serialization and the Generic Alert.
//!
//! Parsing validates: a Package#2 becomes typed [`Command`]s with the
//! parameter counts of spec 5.3, and a command that is malformed or unknown
//! is kept as a [`CommandError`] in its place so the client can still answer
//! it with a status, in order.
//!
//! Package#2 has one parser, the serde visitor of `raw`, and one fast path
//! in front of it: `simple`, a byte scan of the shape every server sends,
//! held to the visitor's result by a test on mutated packages. The scan is
//! kept for the session goal (a device session within 2x of bare hyper):
//! without it a session of `cargo bench -p dmctl --bench session` takes
//! 88 k more instructions, +13 % (callgrind, 2026-12-04), against a goal
//! measured at 1.4-2.2x depending on the host's load.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::status::StatusCode;
use crate::uri::{ClientUri, ServerUri, UriError};
use crate::value::write_json_str;

/// Media types of spec 7 and Appendix F.
pub mod media_type {
    pub const PACKAGE1: &str = "application/vnd.oma.dm.initiation+json";
    pub const PACKAGE2: &str = "application/vnd.oma.dm.request+json";
    pub const PACKAGE3: &str = "application/vnd.oma.dm.response+json";
    pub const MO_DATA: &str = "application/dmmo+json";
    pub const MULTIPART: &str = "multipart/form-data";
    /// Plain JSON: the Data of the alerts this project sends (5.4).
    pub const JSON: &str = "application/json";

    /// The media type of a Content-Type value, lower case, without its
    /// parameters, to compare with the constants above.
    pub fn essence(content_type: &str) -> String {
        content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }
}

/// HTTP header names defined by the spec (5.2.2, 5.5).
pub mod header {
    pub const DEV_ID: &str = "OMADM-DevID";
    pub const ACCEPT: &str = "OMADM-Accept";
}

/// Alert types of Appendix D.
pub mod alert_type {
    pub const SERVER_INITIATED_MGMT: &str = "urn:oma:at:dm:2.0:ServerInitiatedMgmt";
    pub const CLIENT_INITIATED_MGMT: &str = "urn:oma:at:dm:2.0:ClientInitiatedMgmt";
    pub const BOOTSTRAP_COMPLETE: &str = "urn:oma:at:dm:2.0:BootstrapComplete";
}

/// A package that could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("{what}: invalid JSON at line {line}, column {column}: {message}")]
    Json {
        what: &'static str,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{what}: {reason}")]
    Shape { what: &'static str, reason: String },
}

impl PackageError {
    fn json(what: &'static str, e: serde_json::Error) -> PackageError {
        PackageError::Json {
            what,
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        }
    }

    fn shape(what: &'static str, reason: impl Into<String>) -> PackageError {
        PackageError::Shape {
            what,
            reason: reason.into(),
        }
    }
}

/// A Generic Alert (spec 5.4, 7.2.1.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    #[serde(rename = "AlertType")]
    pub alert_type: String,
    #[serde(rename = "SourceURI", default, skip_serializing_if = "Option::is_none")]
    pub source_uri: Option<String>,
    #[serde(rename = "TargetURI", default, skip_serializing_if = "Option::is_none")]
    pub target_uri: Option<String>,
    #[serde(rename = "Mark", default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<String>,
    #[serde(rename = "DataType", default, skip_serializing_if = "Option::is_none")]
    pub data_type: Option<String>,
    #[serde(rename = "Data", default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Json>,
}

impl Alert {
    /// An alert of the given type with no other property.
    pub fn new(alert_type: impl Into<String>) -> Alert {
        Alert {
            alert_type: alert_type.into(),
            source_uri: None,
            target_uri: None,
            mark: None,
            data_type: None,
            data: None,
        }
    }

    /// This alert with `data` of media type `data_type`: the two go
    /// together, DataType "MUST be present if the Data property exists"
    /// (5.4), and Data is an object (the schema of 7.2.1.5).
    pub fn with_data(mut self, data_type: impl Into<String>, data: Json) -> Alert {
        self.data_type = Some(data_type.into());
        self.data = Some(data);
        self
    }

    /// The alert of a session started by a DM Notification (5.2.2): its
    /// Data carries the notification's NOTIFICATION-ID, as the JSON object
    /// `{"NOTIFICATION-ID": n}` of type `application/json`.
    pub fn server_initiated(notification_id: Option<u16>) -> Alert {
        let alert = Alert::new(alert_type::SERVER_INITIATED_MGMT);
        match notification_id {
            Some(id) => {
                alert.with_data(media_type::JSON, serde_json::json!({ NOTIFICATION_ID: id }))
            }
            None => alert,
        }
    }

    /// The NOTIFICATION-ID a ServerInitiatedMgmt alert carries: read from
    /// the object form [`Alert::server_initiated`] writes, and from a bare
    /// number (`"Data": 7`, as this project wrote it before, and as other
    /// clients may).
    pub fn notification_id(&self) -> Option<u16> {
        if self.alert_type != alert_type::SERVER_INITIATED_MGMT {
            return None;
        }
        let n = match self.data.as_ref()? {
            Json::Object(o) => o.get(NOTIFICATION_ID)?.as_u64()?,
            other => other.as_u64()?,
        };
        u16::try_from(n).ok()
    }
}

/// The member of a ServerInitiatedMgmt alert's Data naming the
/// notification (the option's name in 5.2.1.2).
const NOTIFICATION_ID: &str = "NOTIFICATION-ID";

/// One entry of the MOS array of Package#1 (spec 5.2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoInfo {
    #[serde(rename = "DDF", default, skip_serializing_if = "Option::is_none")]
    pub ddf: Option<String>,
    #[serde(rename = "MOID", default, skip_serializing_if = "Option::is_none")]
    pub moid: Option<String>,
    #[serde(rename = "MIID")]
    pub miids: Vec<String>,
}

/// Package#1: session initiation by the DM Client (spec 5.2.2, 7.2.1.1).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Package1 {
    #[serde(rename = "MOS", default, skip_serializing_if = "Option::is_none")]
    pub mos: Option<Vec<MoInfo>>,
    #[serde(rename = "Alert", default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<Alert>,
}

impl Package1 {
    pub fn parse(bytes: &[u8]) -> Result<Package1, PackageError> {
        serde_json::from_slice(bytes).map_err(|e| PackageError::json("Package#1", e))
    }

    pub fn to_vec(&self) -> Vec<u8> {
        // Serializing plain data to a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// A DM command of Package#2 with its parameters (spec 5.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Hget {
        server_uri: ServerUri,
        client_uri: Option<ClientUri>,
    },
    Hput {
        server_uri: ServerUri,
        /// OneOrMore (spec 5.3.2): a command built with none is written,
        /// but a receiver refuses it as malformed (400), as this parser does.
        client_uris: Vec<ClientUri>,
    },
    Hpost {
        server_uri: ServerUri,
        /// OneOrMore (spec 5.3.3), as for [`Command::Hput`].
        client_uris: Vec<ClientUri>,
    },
    Delete {
        client_uri: ClientUri,
    },
    Exec {
        client_uri: ClientUri,
        server_uri: Option<ServerUri>,
    },
    Get {
        client_uri: ClientUri,
    },
    Show {
        server_uri: ServerUri,
    },
    Cont {
        server_uri: ServerUri,
    },
    End,
    Default {
        server_uri: ServerUri,
        moid: String,
    },
    Sub {
        server_uri: ServerUri,
        client_uri: ClientUri,
    },
    Unsub {
        client_uri: ClientUri,
    },
}

impl Command {
    /// The command name as written in Package#2.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Hget { .. } => "HGET",
            Command::Hput { .. } => "HPUT",
            Command::Hpost { .. } => "HPOST",
            Command::Delete { .. } => "DELETE",
            Command::Exec { .. } => "EXEC",
            Command::Get { .. } => "GET",
            Command::Show { .. } => "SHOW",
            Command::Cont { .. } => "CONT",
            Command::End => "END",
            Command::Default { .. } => "DEFAULT",
            Command::Sub { .. } => "SUB",
            Command::Unsub { .. } => "UNSUB",
        }
    }

    /// The command as the JSON array of Package#2: name, then parameters
    /// (the tree of its [`Serialize`] form).
    pub fn to_json(&self) -> Json {
        // Strings only: serializing into a `Value` cannot fail.
        serde_json::to_value(self).unwrap_or(Json::Null)
    }

    /// Calls `f` with each parameter after the name, in Package#2 order,
    /// up to the first error.
    fn each_param<E>(
        &self,
        mut f: impl FnMut(&dyn std::fmt::Display) -> Result<(), E>,
    ) -> Result<(), E> {
        match self {
            Command::Hget {
                server_uri,
                client_uri,
            } => {
                f(server_uri)?;
                client_uri.iter().try_for_each(|c| f(c))
            }
            Command::Hput {
                server_uri,
                client_uris,
            }
            | Command::Hpost {
                server_uri,
                client_uris,
            } => {
                f(server_uri)?;
                client_uris.iter().try_for_each(|c| f(c))
            }
            Command::Delete { client_uri }
            | Command::Get { client_uri }
            | Command::Unsub { client_uri } => f(client_uri),
            Command::Exec {
                client_uri,
                server_uri,
            } => {
                f(client_uri)?;
                server_uri.iter().try_for_each(|s| f(s))
            }
            Command::Show { server_uri } | Command::Cont { server_uri } => f(server_uri),
            Command::End => Ok(()),
            Command::Default { server_uri, moid } => {
                f(server_uri)?;
                f(moid)
            }
            Command::Sub {
                server_uri,
                client_uri,
            } => {
                f(server_uri)?;
                f(client_uri)
            }
        }
    }

    /// Builds a command from its Package#2 array form (spec 7.2.1.2): the
    /// command name and the strings after it, checked as a received
    /// command is (arity, ClientURI syntax). `Package2::parse` uses it for
    /// every command it reads; storage and tools use it to rebuild a
    /// command kept as its parts.
    pub fn from_parts<S: AsRef<str>>(name: &str, params: &[S]) -> Result<Command, CommandError> {
        let arity = |min: usize, max: Option<usize>| {
            let ok = params.len() >= min && max.is_none_or(|m| params.len() <= m);
            if ok {
                Ok(())
            } else {
                Err(CommandError::Arity {
                    name: name.to_owned(),
                    found: params.len(),
                })
            }
        };
        let client = |i: usize| -> Result<ClientUri, CommandError> {
            params[i]
                .as_ref()
                .parse()
                .map_err(|source| CommandError::BadClientUri {
                    name: name.to_owned(),
                    source,
                })
        };
        let server = |i: usize| ServerUri::new(params[i].as_ref());
        Ok(match name {
            "HGET" => {
                arity(1, Some(2))?;
                Command::Hget {
                    server_uri: server(0),
                    client_uri: (params.len() == 2).then(|| client(1)).transpose()?,
                }
            }
            "HPUT" | "HPOST" => {
                arity(2, None)?;
                let server_uri = server(0);
                let client_uris = (1..params.len()).map(client).collect::<Result<_, _>>()?;
                if name == "HPUT" {
                    Command::Hput {
                        server_uri,
                        client_uris,
                    }
                } else {
                    Command::Hpost {
                        server_uri,
                        client_uris,
                    }
                }
            }
            "DELETE" => {
                arity(1, Some(1))?;
                Command::Delete {
                    client_uri: client(0)?,
                }
            }
            "EXEC" => {
                arity(1, Some(2))?;
                Command::Exec {
                    client_uri: client(0)?,
                    server_uri: (params.len() == 2).then(|| server(1)),
                }
            }
            "GET" => {
                arity(1, Some(1))?;
                Command::Get {
                    client_uri: client(0)?,
                }
            }
            "SHOW" => {
                arity(1, Some(1))?;
                Command::Show {
                    server_uri: server(0),
                }
            }
            "CONT" => {
                arity(1, Some(1))?;
                Command::Cont {
                    server_uri: server(0),
                }
            }
            "END" => {
                arity(0, Some(0))?;
                Command::End
            }
            "DEFAULT" => {
                arity(2, Some(2))?;
                Command::Default {
                    server_uri: server(0),
                    moid: params[1].as_ref().to_owned(),
                }
            }
            "SUB" => {
                arity(2, Some(2))?;
                Command::Sub {
                    server_uri: server(0),
                    client_uri: client(1)?,
                }
            }
            "UNSUB" => {
                arity(1, Some(1))?;
                Command::Unsub {
                    client_uri: client(0)?,
                }
            }
            _ => {
                return Err(CommandError::Unknown {
                    name: name.to_owned(),
                })
            }
        })
    }
}

/// A command of Package#2 that cannot be executed as written. Each maps to
/// the status the client answers it with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("empty command array")]
    Empty,
    #[error("parameter {index} is not a string")]
    NotAString { index: usize },
    #[error("unknown command `{name}`")]
    Unknown { name: String },
    #[error("{name} does not take {found} parameter(s)")]
    Arity { name: String, found: usize },
    #[error("{name}: {source}")]
    BadClientUri { name: String, source: UriError },
}

impl CommandError {
    /// 501 for a command this client does not know (Appendix C), 400 for
    /// malformed syntax.
    pub fn status(&self) -> StatusCode {
        match self {
            CommandError::Unknown { .. } => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// The Package#2 array form (spec 7.2.1.2): `["NAME", param, ...]`, each
/// parameter written as its `Display` gives it. The one writer of a
/// command: [`Command::to_json`] and [`Package2::to_vec`] go through it.
impl Serialize for Command {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq as _;
        let mut seq = serializer.serialize_seq(None)?;
        seq.serialize_element(self.name())?;
        self.each_param(|p| seq.serialize_element(&Displayed(p)))?;
        seq.end()
    }
}

/// A parameter serialized as the string its `Display` writes (without an
/// intermediate `String` when the serializer writes text).
struct Displayed<'a>(&'a dyn std::fmt::Display);

impl Serialize for Displayed<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

/// `{"CMD": [...]}` with the well-formed commands; one kept as a
/// [`CommandError`] has no array form and is left out.
impl Serialize for Package2 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        struct Commands<'a>(&'a [Result<Command, CommandError>]);
        impl Serialize for Commands<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.iter().filter_map(|c| c.as_ref().ok()))
            }
        }
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("CMD", &Commands(&self.commands))?;
        map.end()
    }
}

/// Package#2: the ordered DM commands (spec 5.2.3, 7.2.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Package2 {
    pub commands: Vec<Result<Command, CommandError>>,
}

impl Package2 {
    /// Builds a Package#2 from well-formed commands.
    pub fn new(commands: impl IntoIterator<Item = Command>) -> Package2 {
        Package2 {
            commands: commands.into_iter().map(Ok).collect(),
        }
    }

    /// Parses a Package#2. The package is rejected only when it is not a
    /// JSON object whose `CMD` is an array of arrays; a single bad command
    /// is kept as an error in its place.
    ///
    /// The JSON is deserialized straight into commands, without building a
    /// `serde_json::Value` first (strings are borrowed from `bytes` when
    /// they hold no escape).
    pub fn parse(bytes: &[u8]) -> Result<Package2, PackageError> {
        match simple::parse(bytes) {
            Some(p) => Ok(p),
            None => Package2::parse_with_serde(bytes),
        }
    }

    /// [`Package2::parse`] for any input, with its errors.
    fn parse_with_serde(bytes: &[u8]) -> Result<Package2, PackageError> {
        const WHAT: &str = "Package#2";
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let visitor = raw::PackageVisitor {
            input_len: bytes.len(),
        };
        let parsed = serde::Deserializer::deserialize_any(&mut de, visitor)
            .and_then(|p| de.end().map(|()| p));
        match parsed {
            Ok(p) => Ok(p),
            // Our own shape complaints come back as data errors; syntax and
            // end-of-input errors are the JSON's.
            Err(e) if e.classify() == serde_json::error::Category::Data => {
                Err(PackageError::shape(WHAT, raw::shape_message(&e)))
            }
            Err(e) => Err(PackageError::json(WHAT, e)),
        }
    }

    /// The package's bytes (its [`Serialize`] form); the reference server
    /// builds one per Package#2.
    pub fn to_vec(&self) -> Vec<u8> {
        // Strings written to a vector: serialization cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

mod simple;

mod raw;

/// The status of one command in Package#3 (spec 7.2.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: StatusCode,
    /// ClientURIs the command produced (HGET without ClientURI).
    pub uris: Vec<String>,
}

impl Status {
    pub fn new(code: StatusCode) -> Status {
        Status {
            code,
            uris: Vec::new(),
        }
    }
}

/// Package#3: the client's response to a Package#2 (spec 5.2.4, 7.2.1.3).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Package3 {
    pub statuses: Vec<Status>,
    pub alerts: Vec<Alert>,
}

/// `n` in decimal, as `to_string` writes it, at the end of `buf` (20
/// digits hold any u64), without allocating or formatting machinery.
pub(crate) fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    while let Some(slot) = at.checked_sub(1).and_then(|i| buf.get_mut(i)) {
        *slot = b'0' + (n % 10) as u8;
        at -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[at..]
}

impl Package3 {
    /// The package's bytes, statuses as `{"sc": N, "URI": [...]}` objects
    /// as the JSON schema of 7.2.1.3 has them (`URI` and `Alert` only when
    /// not empty). The one writer of Package#3, written directly (see the
    /// module's head for why).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.statuses.len() * 12);
        out.extend_from_slice(b"{\"Status\":[");
        for (i, s) in self.statuses.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"sc\":");
            let code = s.code.as_u16();
            if (100..1000).contains(&code) {
                // Every status of Appendix C has three digits: written
                // without `decimal`'s loop, 0.01 M instructions a session.
                let digit = |n: u16| b'0' + (n % 10) as u8;
                out.extend_from_slice(&[digit(code / 100), digit(code / 10), digit(code)]);
            } else {
                out.extend_from_slice(decimal(code.into(), &mut [0; 20]));
            }
            if !s.uris.is_empty() {
                out.extend_from_slice(b",\"URI\":");
                // Writing strings to a Vec cannot fail.
                let _ = serde_json::to_writer(&mut out, &s.uris);
            }
            out.push(b'}');
        }
        out.push(b']');
        if !self.alerts.is_empty() {
            out.extend_from_slice(b",\"Alert\":");
            if serde_json::to_writer(&mut out, &self.alerts).is_err() {
                out.extend_from_slice(b"null");
            }
        }
        out.push(b'}');
        out
    }

    /// Parses a Package#3, accepting the status forms the spec's examples
    /// use: `{"sc": 200, "URI": [..]}` (7.2.1.3), a bare `200` (Appendix F),
    /// and a bare code followed by its URI strings (Appendix I.2).
    pub fn parse(bytes: &[u8]) -> Result<Package3, PackageError> {
        const WHAT: &str = "Package#3";
        let json: Json = serde_json::from_slice(bytes).map_err(|e| PackageError::json(WHAT, e))?;
        let obj = json
            .as_object()
            .ok_or_else(|| PackageError::shape(WHAT, "not a JSON object"))?;
        let list = obj
            .get("Status")
            .ok_or_else(|| PackageError::shape(WHAT, "missing the required `Status` member"))?
            .as_array()
            .ok_or_else(|| PackageError::shape(WHAT, "`Status` is not an array"))?;
        let code = |v: &Json, i: usize| {
            v.as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .and_then(StatusCode::from_u16)
                .ok_or_else(|| {
                    PackageError::shape(WHAT, format!("Status[{i}]: invalid status code {v}"))
                })
        };
        let mut statuses: Vec<Status> = Vec::with_capacity(list.len());
        for (i, item) in list.iter().enumerate() {
            match item {
                Json::Object(o) => {
                    let sc = o.get("sc").ok_or_else(|| {
                        PackageError::shape(WHAT, format!("Status[{i}] has no `sc`"))
                    })?;
                    let uris = match o.get("URI") {
                        None => Vec::new(),
                        Some(Json::Array(a)) => a
                            .iter()
                            .map(|u| u.as_str().map(str::to_owned))
                            .collect::<Option<_>>()
                            .ok_or_else(|| {
                                PackageError::shape(
                                    WHAT,
                                    format!("Status[{i}].URI holds a non-string"),
                                )
                            })?,
                        Some(_) => {
                            return Err(PackageError::shape(
                                WHAT,
                                format!("Status[{i}].URI is not an array"),
                            ))
                        }
                    };
                    statuses.push(Status {
                        code: code(sc, i)?,
                        uris,
                    });
                }
                Json::Number(_) => statuses.push(Status::new(code(item, i)?)),
                Json::String(uri) => match statuses.last_mut() {
                    Some(prev) => prev.uris.push(uri.clone()),
                    None => {
                        return Err(PackageError::shape(
                            WHAT,
                            "Status starts with a URI, not a code",
                        ))
                    }
                },
                _ => {
                    return Err(PackageError::shape(
                        WHAT,
                        format!("Status[{i}] is not a status"),
                    ))
                }
            }
        }
        let alerts = match obj.get("Alert") {
            None => Vec::new(),
            Some(a) => serde_json::from_value(a.clone()).map_err(|e| {
                PackageError::shape(WHAT, format!("`Alert` is not a list of alerts: {e}"))
            })?,
        };
        Ok(Package3 { statuses, alerts })
    }
}

/// One element of MO serialization, `application/dmmo+json` (spec 7.2.1.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MoDataItem {
    #[serde(rename = "DDF", default, skip_serializing_if = "Option::is_none")]
    pub ddf: Option<String>,
    #[serde(rename = "ClientURI")]
    pub client_uri: String,
    #[serde(rename = "CV", default, skip_serializing_if = "Option::is_none")]
    pub cv: Option<String>,
    /// One member named after the addressed node (docs/architecture.md "MOData
    /// naming"): the MIID at an instance root.
    #[serde(rename = "MOData")]
    pub mo_data: Map<String, Json>,
}

/// An MO data item (spec 7.2.1.4) borrowed from where its parts live:
/// what a device writes for every node it reads, without building a
/// [`MoDataItem`] (a JSON tree) first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MoDataRef<'a> {
    pub ddf: Option<&'a str>,
    pub client_uri: &'a str,
    pub cv: Option<&'a str>,
    /// The name of the one MOData member (docs/architecture.md "MOData naming").
    pub member: &'a str,
    pub data: MoDataValue<'a>,
}

/// The value of an MO data item's one MOData member.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MoDataValue<'a> {
    /// Data as read, written with [`crate::NodeData::write_json`].
    Node(&'a crate::NodeData),
    /// The value's JSON, already written (as a derived MO writes its
    /// instance root, `write_root_json` on `dyn ManagementObject`): copied
    /// as it is.
    Json(&'a [u8]),
}

impl MoDataRef<'_> {
    /// Appends the item's JSON: the bytes serde_json writes for the
    /// equivalent [`MoDataItem`].
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        if let Some(ddf) = self.ddf {
            out.extend_from_slice(b"\"DDF\":");
            write_json_str(out, ddf);
            out.push(b',');
        }
        out.extend_from_slice(b"\"ClientURI\":");
        write_json_str(out, self.client_uri);
        if let Some(cv) = self.cv {
            out.extend_from_slice(b",\"CV\":");
            write_json_str(out, cv);
        }
        out.extend_from_slice(b",\"MOData\":{");
        write_json_str(out, self.member);
        out.push(b':');
        match self.data {
            MoDataValue::Node(data) => data.write_json(out),
            MoDataValue::Json(json) => out.extend_from_slice(json),
        }
        out.extend_from_slice(b"}}");
    }
}

impl MoDataItem {
    /// Parses an `application/dmmo+json` body: the spec's schema is an array,
    /// but its own examples also send a single object, so both are accepted.
    pub fn parse_list(bytes: &[u8]) -> Result<Vec<MoDataItem>, PackageError> {
        const WHAT: &str = "MO data";
        let json: Json = serde_json::from_slice(bytes).map_err(|e| PackageError::json(WHAT, e))?;
        let items = match json {
            Json::Array(items) => items,
            obj @ Json::Object(_) => vec![obj],
            _ => return Err(PackageError::shape(WHAT, "neither an array nor an object")),
        };
        items
            .into_iter()
            .map(|i| {
                serde_json::from_value(i).map_err(|e| PackageError::shape(WHAT, e.to_string()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_initiated_alert_data_is_an_object_with_its_type() {
        // 5.4: DataType with every Data; 7.2.1.5: Data is an object.
        let a = Alert::server_initiated(Some(7));
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "AlertType": "urn:oma:at:dm:2.0:ServerInitiatedMgmt",
                "DataType": "application/json",
                "Data": { "NOTIFICATION-ID": 7 }
            })
        );
        assert_eq!(a.notification_id(), Some(7));
        let bare = Alert::server_initiated(None);
        assert!(bare.data.is_none() && bare.data_type.is_none());
        assert_eq!(bare.notification_id(), None);
    }

    #[test]
    fn a_notification_id_is_read_from_both_data_forms() {
        let mut legacy = Alert::new(alert_type::SERVER_INITIATED_MGMT);
        legacy.data = Some(serde_json::json!(513));
        assert_eq!(legacy.notification_id(), Some(513));
        legacy.data = Some(serde_json::json!(70000));
        assert_eq!(legacy.notification_id(), None, "not a 16-bit ID");
        let other = Alert::new(alert_type::CLIENT_INITIATED_MGMT).with_data(
            media_type::JSON,
            serde_json::json!({ "NOTIFICATION-ID": 1 }),
        );
        assert_eq!(other.notification_id(), None, "only ServerInitiatedMgmt");
    }

    #[test]
    fn package2_example_of_7_2_1_2_parses() {
        // The spec's example, with the MOID versions of section 12.
        let body = br#"{
            "CMD": [
                ["HPOST", "https://DMcontent.DMserver.operator.com/[DevID]",
                 "urn:oma:mo:oma-dm-devinfo:1.2//", "urn:oma:mo:oma-sessioninfomo:1.0//"],
                ["HGET", "https://DMcontent.DMserver.operator.com/new_mo"],
                ["GET", "urn:oma:mo:oma-sessioninfomo:1.0//CBT"]
            ]
        }"#;
        let p = Package2::parse(body).unwrap();
        assert_eq!(p.commands.len(), 3);
        match &p.commands[0] {
            Ok(Command::Hpost {
                server_uri,
                client_uris,
            }) => {
                assert_eq!(
                    server_uri.as_str(),
                    "https://DMcontent.DMserver.operator.com/[DevID]"
                );
                assert_eq!(client_uris.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            &p.commands[1],
            Ok(Command::Hget {
                client_uri: None,
                ..
            })
        ));
        let again = Package2::parse(&p.to_vec()).unwrap();
        assert_eq!(again, p);
        // Written back in the array form of 7.2.1.2, compactly.
        assert_eq!(
            String::from_utf8(p.to_vec()).unwrap(),
            concat!(
                r#"{"CMD":[["HPOST","https://DMcontent.DMserver.operator.com/[DevID]","#,
                r#""urn:oma:mo:oma-dm-devinfo:1.2//","urn:oma:mo:oma-sessioninfomo:1.0//"],"#,
                r#"["HGET","https://DMcontent.DMserver.operator.com/new_mo"],"#,
                r#"["GET","urn:oma:mo:oma-sessioninfomo:1.0//CBT"]]}"#
            )
        );
        assert_eq!(
            p.commands[2].as_ref().map(Command::to_json).ok(),
            Some(serde_json::json!([
                "GET",
                "urn:oma:mo:oma-sessioninfomo:1.0//CBT"
            ]))
        );
    }

    #[test]
    fn bad_commands_keep_their_place_with_a_status() {
        let body =
            br#"{"CMD": [["FROB", "x"], ["GET"], ["GET", "no-slash"], [], ["END", 1], ["END"]]}"#;
        let p = Package2::parse(body).unwrap();
        let codes: Vec<u16> = p
            .commands
            .iter()
            .map(|c| c.as_ref().err().map_or(0, |e| e.status().as_u16()))
            .collect();
        assert_eq!(codes, [501, 400, 400, 400, 400, 0]);
    }

    #[test]
    fn malformed_package2_is_rejected_with_position() {
        match Package2::parse(b"{\"CMD\": [\n[\"GET\",]]}") {
            Err(PackageError::Json { line, .. }) => assert_eq!(line, 2),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Package2::parse(b"[]"),
            Err(PackageError::Shape { .. })
        ));
        assert!(matches!(
            Package2::parse(b"{}"),
            Err(PackageError::Shape { .. })
        ));
        assert!(matches!(
            Package2::parse(b"{\"CMD\": [\"GET\"]}"),
            Err(PackageError::Shape { .. })
        ));
    }

    #[test]
    fn package3_status_forms_of_the_spec_examples_are_read() {
        // 7.2.1.3 (objects), Appendix F (bare codes), Appendix I.2 (code then URI).
        let p = Package3::parse(
            br#"{"Status": [{"sc": 200}, {"sc": 200, "URI": ["urn:oma:mo:oma-mo:1.0/miid1/"]}, 404, 200, "urn:oma:mo:oma-dcmo:1.0/usb/"]}"#,
        )
        .unwrap();
        let codes: Vec<u16> = p.statuses.iter().map(|s| s.code.as_u16()).collect();
        assert_eq!(codes, [200, 200, 404, 200]);
        assert_eq!(p.statuses[3].uris, ["urn:oma:mo:oma-dcmo:1.0/usb/"]);
        let written = String::from_utf8(p.to_vec()).unwrap();
        assert!(
            written.starts_with(r#"{"Status":[{"sc":200},{"sc":200,"URI":["#),
            "{written}"
        );
        assert_eq!(Package3::parse(written.as_bytes()).unwrap(), p);
        assert!(Package3::parse(br#"{"Status": [201]}"#).is_err());
        assert!(Package3::parse(br#"{"Status": ["urn:a//"]}"#).is_err());
    }

    #[test]
    fn package3_bytes_are_its_json() {
        let mut alert = Alert::new(alert_type::CLIENT_INITIATED_MGMT);
        alert.data = Some(serde_json::json!({"DM1x": 1404, "q": "a\"b"}));
        let p = Package3 {
            statuses: vec![
                Status::new(StatusCode::OK),
                Status {
                    code: StatusCode::from_u16(1404).unwrap(),
                    uris: vec!["urn:a/\"x\"/".into(), "b".into()],
                },
            ],
            alerts: vec![alert],
        };
        // The JSON schema of 7.2.1.3: `sc` a number, `URI` only when there
        // is one, `Alert` only when there is one (5.4).
        assert_eq!(
            String::from_utf8(p.to_vec()).unwrap(),
            concat!(
                r#"{"Status":[{"sc":200},{"sc":1404,"URI":["urn:a/\"x\"/","b"]}],"#,
                r#""Alert":[{"AlertType":"urn:oma:at:dm:2.0:ClientInitiatedMgmt","#,
                r#""Data":{"DM1x":1404,"q":"a\"b"}}]}"#
            )
        );
        // Every code of Appendix C and the application range, as a number.
        for code in (0..=u16::MAX).filter_map(StatusCode::from_u16) {
            let p = Package3 {
                statuses: vec![Status::new(code)],
                alerts: Vec::new(),
            };
            let expected = format!(r#"{{"Status":[{{"sc":{}}}]}}"#, code.as_u16());
            assert_eq!(p.to_vec(), expected.into_bytes());
        }
        let empty = Package3::default();
        assert_eq!(empty.to_vec(), br#"{"Status":[]}"#);
    }

    #[test]
    fn the_simple_parser_agrees_with_serde_on_mutated_packages() {
        let uri = |s: &str| s.parse::<ClientUri>().unwrap();
        let built = Package2::new([
            Command::Get {
                client_uri: uri("urn:oma:mo:oma-dm-devinfo:1.2//DevID"),
            },
            Command::Exec {
                client_uri: uri("urn:x:1.0/(x)/A?nv=(x)/B:1"),
                server_uri: Some(ServerUri::new("https://s.example/a")),
            },
            Command::Hget {
                server_uri: ServerUri::new("https://s.example/r"),
                client_uri: None,
            },
            Command::End,
        ])
        .to_vec();
        let bases = [
            built,
            br#" { "CMD" : [ [ "GET" , "urn:x:1.0//A" ] , [ ] , ["NOPE"], ["GET"] ] } "#.to_vec(),
            br#"{"CMD":[]}"#.to_vec(),
        ];
        const ALPHABET: &[u8] = b"\"[]{},: \\\n\tGETCMDa0/\x01\xff";
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % n as u64).unwrap()
        };
        let mut accepted = 0;
        for base in &bases {
            for _ in 0..4000 {
                let mut m = base.clone();
                for _ in 0..1 + next(3) {
                    let at = next(m.len() + 1);
                    let b = ALPHABET[next(ALPHABET.len())];
                    match next(4) {
                        0 if at < m.len() => m[at] = b,
                        1 if at < m.len() => {
                            m.remove(at);
                        }
                        2 => m.insert(at, b),
                        _ => m.truncate(at),
                    }
                }
                if let Some(fast) = simple::parse(&m) {
                    accepted += 1;
                    let slow = Package2::parse_with_serde(&m);
                    assert_eq!(
                        slow.as_ref().ok(),
                        Some(&fast),
                        "{}",
                        String::from_utf8_lossy(&m)
                    );
                }
            }
            assert_eq!(simple::parse(base), Package2::parse_with_serde(base).ok());
        }
        assert!(
            accepted > 100,
            "only {accepted} mutants took the simple path"
        );
    }

    #[test]
    fn mutated_packages_parse_to_commands_that_write_back_the_same() {
        let uri = |s: &str| s.parse::<ClientUri>().unwrap();
        let built = Package2::new([
            Command::Get {
                client_uri: uri("urn:oma:mo:oma-dm-devinfo:1.2//DevID"),
            },
            Command::Exec {
                client_uri: uri("urn:x:1.0/(x)/A?nv=(x)/B:1"),
                server_uri: Some(ServerUri::new("https://s.example/a")),
            },
            Command::Hget {
                server_uri: ServerUri::new("https://s.example/r"),
                client_uri: None,
            },
            Command::End,
        ]);
        let bases = [
            built.to_vec(),
            br#" { "CMD" : [ [ "GET" , "urn:x:1.0//A" ] , [ ] , ["NOPE"], ["GET"] ] } "#.to_vec(),
            br#"{"CMD":[]}"#.to_vec(),
        ];
        assert_eq!(Package2::parse(&bases[0]).unwrap(), built);
        const ALPHABET: &[u8] = b"\"[]{},: \\\n\tGETCMDa0/\x01\xff";
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % n as u64).unwrap()
        };
        let mut accepted = 0;
        for base in &bases {
            for _ in 0..4000 {
                let mut m = base.clone();
                for _ in 0..1 + next(3) {
                    let at = next(m.len() + 1);
                    let b = ALPHABET[next(ALPHABET.len())];
                    match next(4) {
                        0 if at < m.len() => m[at] = b,
                        1 if at < m.len() => {
                            m.remove(at);
                        }
                        2 => m.insert(at, b),
                        _ => m.truncate(at),
                    }
                }
                // Any input: an answer, never a panic. What is accepted is
                // a package whose well-formed commands write and read back
                // as they are (spec 7.2.1.2).
                let Ok(p) = Package2::parse(&m) else {
                    continue;
                };
                accepted += 1;
                let good: Vec<_> = p.commands.iter().filter(|c| c.is_ok()).cloned().collect();
                assert_eq!(
                    Package2::parse(&p.to_vec())
                        .ok()
                        .map(|again| again.commands),
                    Some(good),
                    "{}",
                    String::from_utf8_lossy(&m)
                );
            }
        }
        assert!(accepted > 100, "only {accepted} mutants were accepted");
    }

    #[test]
    fn decimals_are_written_as_to_string_writes_them() {
        for n in [0u64, 7, 9, 10, 99, 100, 200, 1404, 9999, 10000, u64::MAX] {
            assert_eq!(decimal(n, &mut [0; 20]), n.to_string().as_bytes());
        }
    }

    #[test]
    fn package2_shape_errors_name_what_is_wrong() {
        let reason = |body: &[u8]| match Package2::parse(body) {
            Err(PackageError::Shape { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(reason(b"[]"), "not a JSON object");
        assert_eq!(reason(b"\"CMD\""), "not a JSON object");
        assert_eq!(
            reason(b"{\"cmd\": []}"),
            "missing the required `CMD` member"
        );
        assert_eq!(reason(b"{\"CMD\": {}}"), "`CMD` is not an array");
        assert_eq!(
            reason(b"{\"CMD\": [[\"END\"], 7]}"),
            "CMD[1] is not an array"
        );
        // Other members are ignored, escapes are read, a bad element keeps
        // its index (the name is element 0).
        let p = Package2::parse(
            br#"{"v": [1, {"a": null}], "CMD": [["G\u0045T", "urn:a//\u0041"], ["GET", "urn:a//", {"x": [1]}], ["END", null]]}"#,
        )
        .unwrap();
        assert_eq!(
            p.commands[0].as_ref().map(|c| c.to_json()),
            Ok(serde_json::json!(["GET", "urn:a//A"]))
        );
        assert_eq!(p.commands[1], Err(CommandError::NotAString { index: 2 }));
        assert_eq!(p.commands[2], Err(CommandError::NotAString { index: 1 }));
        // Trailing garbage and truncation are JSON errors.
        assert!(matches!(
            Package2::parse(b"{\"CMD\": []} x"),
            Err(PackageError::Json { .. })
        ));
        assert!(matches!(
            Package2::parse(b"{\"CMD\": [[\"END\"]"),
            Err(PackageError::Json { .. })
        ));
    }

    #[test]
    fn package1_round_trips_with_alerts_and_mos() {
        let p = Package1 {
            mos: Some(vec![MoInfo {
                ddf: Some("http://example/devinfo.ddf".into()),
                moid: Some("urn:oma:mo:oma-dm-devinfo:1.2".into()),
                miids: vec!["devinfo".into()],
            }]),
            alerts: vec![Alert::new(alert_type::CLIENT_INITIATED_MGMT)],
        };
        let text = String::from_utf8(p.to_vec()).unwrap();
        assert!(text.contains(r#""AlertType":"urn:oma:at:dm:2.0:ClientInitiatedMgmt""#));
        assert_eq!(Package1::parse(text.as_bytes()).unwrap(), p);
    }

    #[test]
    fn mo_data_accepts_array_and_single_object() {
        let one = br#"{"ClientURI": "urn:oma:mo:oma-dm-devinfo:1.2//DevID", "MOData": {"DevID": "IMEI:1"}}"#;
        let items = MoDataItem::parse_list(one).unwrap();
        assert_eq!(items[0].mo_data["DevID"], "IMEI:1");
        let list = format!("[{}]", std::str::from_utf8(one).unwrap());
        assert_eq!(MoDataItem::parse_list(list.as_bytes()).unwrap(), items);
        assert!(MoDataItem::parse_list(br#"[{"MOData": {}}]"#).is_err());
    }
}
