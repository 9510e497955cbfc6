//! Where the reference DM Server keeps what it knows: devices, their
//! command queues and results, alerts, Data Repository resources, DEFAULT
//! and SUB registrations and SHOW UI sessions.
//!
//! [`Storage`] is row-level on purpose: each method maps to one statement
//! (or one short transaction) of a relational database, so a networked
//! database shared by several server instances can implement it as well
//! as the embedded SQLite of [`SqliteStorage`]. [`MemoryStorage`] serves
//! tests and benches that need no durability.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use dm_core::multipart::Part;
use dm_core::{Alert, Command, MoInfo, Package2, Status, StatusCode};
use rusqlite::{params, Connection, OptionalExtension};

/// Why the storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored {what} is corrupt: {reason}")]
    Corrupt { what: &'static str, reason: String },
}

fn corrupt(what: &'static str, reason: impl ToString) -> StorageError {
    StorageError::Corrupt {
        what,
        reason: reason.to_string(),
    }
}

/// How the server reaches one device's notification receiver and signs
/// its Package#0 (spec 5.2.1): the device's DMAcc `Auth/Noti` credentials.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct NotificationConfig {
    /// SERVER-ID option: the SrvID of this server in the device's DMAcc.
    pub server_id: String,
    /// `Auth/Noti/Secret`, decoded bytes. Never logged or reported.
    pub secret: Option<Vec<u8>>,
    /// `Auth/Noti/Data`, decoded bytes.
    pub auth_data: Vec<u8>,
    /// Where the device receives UDP notifications (spec E.3).
    pub udp: Option<String>,
}

impl std::fmt::Debug for NotificationConfig {
    // The secret never reaches a log, not even through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationConfig")
            .field("server_id", &self.server_id)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("auth_data", &self.auth_data)
            .field("udp", &self.udp)
            .finish()
    }
}

/// One device as the server knows it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeviceRow {
    pub dev_id: String,
    /// The MOS array of the last Package#1 that had one.
    pub mos: Option<Vec<MoInfo>>,
    /// Sessions started (Package#1 received).
    pub sessions: u64,
    /// Sessions that ended with END.
    pub ended: u64,
    /// POSIX seconds of the last Package#1.
    pub last_session: Option<u64>,
    pub notification: Option<NotificationConfig>,
    /// The NOTIFICATION-ID of the last Package#0 sent (spec 5.2.1.2).
    pub last_notification_id: Option<u16>,
}

/// Where a command of a device's queue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryState {
    /// Waiting for the next Package#2.
    Queued,
    /// In a Package#2, its status not yet back.
    Sent,
    /// Status received.
    Done,
    /// EXEC answered 202: the result comes in a Generic Alert (5.4.1).
    AsyncPending,
    /// The session it was sent in ended without its status.
    Lost,
}

impl EntryState {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Queued => "queued",
            EntryState::Sent => "sent",
            EntryState::Done => "done",
            EntryState::AsyncPending => "async-pending",
            EntryState::Lost => "lost",
        }
    }

    /// The position in [`Memory`]'s per-device index.
    fn ordinal(self) -> usize {
        self as usize
    }

    fn parse(s: &str) -> Result<EntryState, StorageError> {
        Ok(match s {
            "queued" => EntryState::Queued,
            "sent" => EntryState::Sent,
            "done" => EntryState::Done,
            "async-pending" => EntryState::AsyncPending,
            "lost" => EntryState::Lost,
            other => return Err(corrupt("entry state", other)),
        })
    }
}

/// One command for a device and, once known, its result.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Increasing over the whole server: the queue order.
    pub id: u64,
    pub dev_id: String,
    pub command: Command,
    pub state: EntryState,
    pub status: Option<Status>,
    /// The GET data part of Appendix F.
    pub data: Option<Part>,
    /// The final status an asynchronous EXEC reported (5.4.1).
    pub async_status: Option<u16>,
    /// The alert that carried it.
    pub async_alert: Option<u64>,
}

/// A Generic Alert as received (never answered, spec 5.4).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAlert {
    pub id: u64,
    pub dev_id: String,
    pub alert: Alert,
    /// The asynchronous EXEC it reports, matched by SourceURI.
    pub entry: Option<u64>,
    /// POSIX seconds.
    pub received: u64,
}

/// A Data Repository resource (spec 5.3.1-5.3.3, 5.3.11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub content_type: String,
    pub body: Vec<u8>,
    /// How it got there: `admin`, `PUT` (HPUT, SUB) or `POST` (HPOST).
    pub origin: String,
    /// POSIX seconds.
    pub updated: u64,
}

/// What a DEFAULT or SUB registration is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationKind {
    /// DEFAULT (5.3.10): one ServerURI per MOID.
    Default { moid: String },
    /// SUB (5.3.11): changes under the ClientURI go to the ServerURI.
    Sub { client_uri: String },
}

/// A DEFAULT or SUB the server sent to a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub id: u64,
    pub dev_id: String,
    pub kind: RegistrationKind,
    pub server_uri: String,
}

/// A SHOW UI session of the Web Server Component (5.3.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiSession {
    pub uiid: u64,
    pub dev_id: String,
    pub prompt: String,
    /// The user's answer, once given.
    pub choice: Option<String>,
}

/// The server's persistent state, row by row.
pub trait Storage: Send + Sync + std::fmt::Debug {
    fn device(&self, dev_id: &str) -> Result<Option<DeviceRow>, StorageError>;
    fn devices(&self) -> Result<Vec<DeviceRow>, StorageError>;
    /// Inserts or replaces the device row.
    fn put_device(&self, row: &DeviceRow) -> Result<(), StorageError>;

    /// Appends a command to the device's queue; returns its id.
    fn add_entry(&self, dev_id: &str, command: &Command) -> Result<u64, StorageError>;
    /// The device's entries in the given states (all when empty), by id.
    fn entries(&self, dev_id: &str, states: &[EntryState]) -> Result<Vec<Entry>, StorageError>;
    /// Replaces an entry (state, status, data, async result). By value: an
    /// in-memory store keeps it as it is.
    fn put_entry(&self, entry: Entry) -> Result<(), StorageError>;

    fn add_alert(
        &self,
        dev_id: &str,
        alert: &Alert,
        entry: Option<u64>,
        received: u64,
    ) -> Result<u64, StorageError>;
    fn alerts(&self, dev_id: &str) -> Result<Vec<StoredAlert>, StorageError>;

    fn resource(&self, dev_id: &str, path: &str) -> Result<Option<Resource>, StorageError>;
    fn put_resource(&self, dev_id: &str, path: &str, r: &Resource) -> Result<(), StorageError>;
    fn delete_resource(&self, dev_id: &str, path: &str) -> Result<bool, StorageError>;
    /// Paths of the device's resources, sorted.
    fn resources(&self, dev_id: &str) -> Result<Vec<String>, StorageError>;

    /// Adds a registration, replacing one of the same kind and key.
    fn put_registration(
        &self,
        dev_id: &str,
        kind: &RegistrationKind,
        server_uri: &str,
    ) -> Result<u64, StorageError>;
    fn registrations(&self, dev_id: &str) -> Result<Vec<Registration>, StorageError>;
    fn delete_registration(&self, dev_id: &str, id: u64) -> Result<bool, StorageError>;

    fn add_ui_session(&self, dev_id: &str, prompt: &str) -> Result<u64, StorageError>;
    fn ui_session(&self, uiid: u64) -> Result<Option<UiSession>, StorageError>;
    /// Records the user's choice; false when there is no such session.
    fn set_ui_choice(&self, uiid: u64, choice: &str) -> Result<bool, StorageError>;
}

/// Parses one command from its Package#2 JSON array form.
pub fn command_from_json(json: &serde_json::Value) -> Result<Command, String> {
    let package = serde_json::json!({ "CMD": [json] });
    let bytes = serde_json::to_vec(&package).map_err(|e| e.to_string())?;
    let mut p2 = Package2::parse(&bytes).map_err(|e| e.to_string())?;
    match p2.commands.pop() {
        Some(Ok(c)) => Ok(c),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("no command".into()),
    }
}

fn status_code(code: u16) -> Result<StatusCode, StorageError> {
    StatusCode::from_u16(code).ok_or_else(|| corrupt("status", code))
}

fn kind_key(kind: &RegistrationKind) -> (&'static str, &str) {
    match kind {
        RegistrationKind::Default { moid } => ("DEFAULT", moid),
        RegistrationKind::Sub { client_uri } => ("SUB", client_uri),
    }
}

fn kind_from(kind: &str, key: String) -> Result<RegistrationKind, StorageError> {
    match kind {
        "DEFAULT" => Ok(RegistrationKind::Default { moid: key }),
        "SUB" => Ok(RegistrationKind::Sub { client_uri: key }),
        other => Err(corrupt("registration kind", other)),
    }
}

// ---------------------------------------------------------------- memory

#[derive(Debug, Default)]
struct Memory {
    devices: BTreeMap<String, DeviceRow>,
    entries: BTreeMap<u64, Entry>,
    /// Entry ids by device and state, in id order: a session asks for the
    /// few queued or sent entries of one device among all entries ever
    /// kept, so a scan would grow with the server's history.
    /// Looked up by `&str` (no key to allocate): each session moves every
    /// one of its commands through two or three states.
    entry_index: std::collections::HashMap<String, [std::collections::BTreeSet<u64>; 5]>,
    /// Alert ids by device.
    alert_index: BTreeMap<String, Vec<u64>>,
    alerts: BTreeMap<u64, StoredAlert>,
    resources: BTreeMap<(String, String), Resource>,
    registrations: BTreeMap<u64, Registration>,
    ui: BTreeMap<u64, UiSession>,
    next_id: u64,
}

impl Memory {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Stores `entry`, moving it in the index when its state changed.
    fn put_entry(&mut self, entry: Entry) {
        if let Some(old) = self.entries.get(&entry.id) {
            if let Some(states) = self.entry_index.get_mut(old.dev_id.as_str()) {
                states[old.state.ordinal()].remove(&entry.id);
            }
        }
        let states = match self.entry_index.get_mut(entry.dev_id.as_str()) {
            Some(states) => states,
            None => self.entry_index.entry(entry.dev_id.clone()).or_default(),
        };
        states[entry.state.ordinal()].insert(entry.id);
        self.entries.insert(entry.id, entry);
    }
}

/// Everything in memory, gone with the process.
#[derive(Debug, Default)]
pub struct MemoryStorage(Mutex<Memory>);

impl MemoryStorage {
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }

    fn lock(&self) -> MutexGuard<'_, Memory> {
        // Plain data: a panic elsewhere leaves nothing half-written here.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Storage for MemoryStorage {
    fn device(&self, dev_id: &str) -> Result<Option<DeviceRow>, StorageError> {
        Ok(self.lock().devices.get(dev_id).cloned())
    }

    fn devices(&self) -> Result<Vec<DeviceRow>, StorageError> {
        Ok(self.lock().devices.values().cloned().collect())
    }

    fn put_device(&self, row: &DeviceRow) -> Result<(), StorageError> {
        self.lock().devices.insert(row.dev_id.clone(), row.clone());
        Ok(())
    }

    fn add_entry(&self, dev_id: &str, command: &Command) -> Result<u64, StorageError> {
        let mut m = self.lock();
        let id = m.id();
        m.put_entry(Entry {
            id,
            dev_id: dev_id.to_owned(),
            command: command.clone(),
            state: EntryState::Queued,
            status: None,
            data: None,
            async_status: None,
            async_alert: None,
        });
        Ok(id)
    }

    fn entries(&self, dev_id: &str, states: &[EntryState]) -> Result<Vec<Entry>, StorageError> {
        const ALL: [EntryState; 5] = [
            EntryState::Queued,
            EntryState::Sent,
            EntryState::Done,
            EntryState::AsyncPending,
            EntryState::Lost,
        ];
        let states = if states.is_empty() { &ALL[..] } else { states };
        let m = self.lock();
        let mut ids: Vec<u64> = states
            .iter()
            .filter_map(|s| Some(&m.entry_index.get(dev_id)?[s.ordinal()]))
            .flatten()
            .copied()
            .collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids
            .iter()
            .filter_map(|id| m.entries.get(id).cloned())
            .collect())
    }

    fn put_entry(&self, entry: Entry) -> Result<(), StorageError> {
        self.lock().put_entry(entry);
        Ok(())
    }

    fn add_alert(
        &self,
        dev_id: &str,
        alert: &Alert,
        entry: Option<u64>,
        received: u64,
    ) -> Result<u64, StorageError> {
        let mut m = self.lock();
        let id = m.id();
        m.alert_index.entry(dev_id.to_owned()).or_default().push(id);
        m.alerts.insert(
            id,
            StoredAlert {
                id,
                dev_id: dev_id.to_owned(),
                alert: alert.clone(),
                entry,
                received,
            },
        );
        Ok(id)
    }

    fn alerts(&self, dev_id: &str) -> Result<Vec<StoredAlert>, StorageError> {
        let m = self.lock();
        Ok(m.alert_index
            .get(dev_id)
            .into_iter()
            .flatten()
            .filter_map(|id| m.alerts.get(id).cloned())
            .collect())
    }

    fn resource(&self, dev_id: &str, path: &str) -> Result<Option<Resource>, StorageError> {
        Ok(self
            .lock()
            .resources
            .get(&(dev_id.to_owned(), path.to_owned()))
            .cloned())
    }

    fn put_resource(&self, dev_id: &str, path: &str, r: &Resource) -> Result<(), StorageError> {
        self.lock()
            .resources
            .insert((dev_id.to_owned(), path.to_owned()), r.clone());
        Ok(())
    }

    fn delete_resource(&self, dev_id: &str, path: &str) -> Result<bool, StorageError> {
        Ok(self
            .lock()
            .resources
            .remove(&(dev_id.to_owned(), path.to_owned()))
            .is_some())
    }

    fn resources(&self, dev_id: &str) -> Result<Vec<String>, StorageError> {
        Ok(self
            .lock()
            .resources
            .keys()
            .filter(|(d, _)| d == dev_id)
            .map(|(_, p)| p.clone())
            .collect())
    }

    fn put_registration(
        &self,
        dev_id: &str,
        kind: &RegistrationKind,
        server_uri: &str,
    ) -> Result<u64, StorageError> {
        let mut m = self.lock();
        m.registrations
            .retain(|_, r| !(r.dev_id == dev_id && kind_key(&r.kind) == kind_key(kind)));
        let id = m.id();
        m.registrations.insert(
            id,
            Registration {
                id,
                dev_id: dev_id.to_owned(),
                kind: kind.clone(),
                server_uri: server_uri.to_owned(),
            },
        );
        Ok(id)
    }

    fn registrations(&self, dev_id: &str) -> Result<Vec<Registration>, StorageError> {
        Ok(self
            .lock()
            .registrations
            .values()
            .filter(|r| r.dev_id == dev_id)
            .cloned()
            .collect())
    }

    fn delete_registration(&self, dev_id: &str, id: u64) -> Result<bool, StorageError> {
        let mut m = self.lock();
        if m.registrations.get(&id).is_some_and(|r| r.dev_id == dev_id) {
            m.registrations.remove(&id);
            return Ok(true);
        }
        Ok(false)
    }

    fn add_ui_session(&self, dev_id: &str, prompt: &str) -> Result<u64, StorageError> {
        let mut m = self.lock();
        let uiid = m.id();
        m.ui.insert(
            uiid,
            UiSession {
                uiid,
                dev_id: dev_id.to_owned(),
                prompt: prompt.to_owned(),
                choice: None,
            },
        );
        Ok(uiid)
    }

    fn ui_session(&self, uiid: u64) -> Result<Option<UiSession>, StorageError> {
        Ok(self.lock().ui.get(&uiid).cloned())
    }

    fn set_ui_choice(&self, uiid: u64, choice: &str) -> Result<bool, StorageError> {
        Ok(match self.lock().ui.get_mut(&uiid) {
            Some(s) => {
                s.choice = Some(choice.to_owned());
                true
            }
            None => false,
        })
    }
}

// ---------------------------------------------------------------- SQLite

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS devices (
    dev_id TEXT PRIMARY KEY,
    mos TEXT,
    sessions INTEGER NOT NULL,
    ended INTEGER NOT NULL,
    last_session INTEGER,
    noti_server_id TEXT,
    noti_secret BLOB,
    noti_auth_data BLOB,
    noti_udp TEXT,
    has_noti INTEGER NOT NULL,
    last_notification_id INTEGER
);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dev_id TEXT NOT NULL,
    command TEXT NOT NULL,
    state TEXT NOT NULL,
    sc INTEGER,
    uris TEXT,
    data_name TEXT,
    data_type TEXT,
    data_body BLOB,
    async_sc INTEGER,
    async_alert INTEGER
);
CREATE INDEX IF NOT EXISTS entries_dev ON entries (dev_id, state);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dev_id TEXT NOT NULL,
    alert TEXT NOT NULL,
    entry INTEGER,
    received INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_dev ON alerts (dev_id);
CREATE TABLE IF NOT EXISTS resources (
    dev_id TEXT NOT NULL,
    path TEXT NOT NULL,
    content_type TEXT NOT NULL,
    body BLOB NOT NULL,
    origin TEXT NOT NULL,
    updated INTEGER NOT NULL,
    PRIMARY KEY (dev_id, path)
);
CREATE TABLE IF NOT EXISTS registrations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dev_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    server_uri TEXT NOT NULL,
    UNIQUE (dev_id, kind, key)
);
CREATE TABLE IF NOT EXISTS ui_sessions (
    uiid INTEGER PRIMARY KEY AUTOINCREMENT,
    dev_id TEXT NOT NULL,
    prompt TEXT NOT NULL,
    choice TEXT
);
";

/// The embedded SQLite database of `dmctl server --db PATH`. Every method
/// is one statement or transaction, committed before it returns, so a
/// status the server acknowledged survives a crash or a restart.
#[derive(Debug)]
pub struct SqliteStorage(Mutex<Connection>);

impl SqliteStorage {
    /// Opens (creating when missing) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStorage, StorageError> {
        SqliteStorage::init(Connection::open(path)?)
    }

    /// A private database in memory (same SQL, no file).
    pub fn in_memory() -> Result<SqliteStorage, StorageError> {
        SqliteStorage::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<SqliteStorage, StorageError> {
        // WAL: readers do not block the writer; NORMAL sync is durable
        // across process crashes, which is what a restart test checks.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteStorage(Mutex::new(conn)))
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn device_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(DeviceRow, Option<String>)> {
    let has_noti: bool = r.get(9)?;
    let notification = if has_noti {
        Some(NotificationConfig {
            server_id: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
            secret: r.get(6)?,
            auth_data: r.get::<_, Option<Vec<u8>>>(7)?.unwrap_or_default(),
            udp: r.get(8)?,
        })
    } else {
        None
    };
    Ok((
        DeviceRow {
            dev_id: r.get(0)?,
            mos: None,
            sessions: to_u64(r.get(2)?),
            ended: to_u64(r.get(3)?),
            last_session: r.get::<_, Option<i64>>(4)?.map(to_u64),
            notification,
            last_notification_id: r
                .get::<_, Option<i64>>(10)?
                .and_then(|v| u16::try_from(v).ok()),
        },
        r.get(1)?,
    ))
}

fn with_mos((mut d, mos): (DeviceRow, Option<String>)) -> Result<DeviceRow, StorageError> {
    d.mos = match mos {
        Some(text) => Some(serde_json::from_str(&text).map_err(|e| corrupt("MOS", e))?),
        None => None,
    };
    Ok(d)
}

type RawEntry = (
    i64,
    String,
    String,
    String,
    Option<i64>,
    Option<String>,
    (Option<String>, Option<String>, Option<Vec<u8>>),
    Option<i64>,
    Option<i64>,
);

fn entry_from_raw(raw: RawEntry) -> Result<Entry, StorageError> {
    let (id, dev_id, command, state, sc, uris, (dname, dtype, dbody), async_sc, async_alert) = raw;
    let json: serde_json::Value =
        serde_json::from_str(&command).map_err(|e| corrupt("command", e))?;
    let command = command_from_json(&json).map_err(|e| corrupt("command", e))?;
    let status = match sc {
        Some(code) => Some(Status {
            code: status_code(u16::try_from(code).map_err(|e| corrupt("status", e))?)?,
            uris: match uris {
                Some(u) => serde_json::from_str(&u).map_err(|e| corrupt("status URI", e))?,
                None => Vec::new(),
            },
        }),
        None => None,
    };
    let data = match (dtype, dbody) {
        (Some(content_type), Some(body)) => Some(Part {
            name: dname,
            content_type,
            body,
        }),
        _ => None,
    };
    Ok(Entry {
        id: to_u64(id),
        dev_id,
        command,
        state: EntryState::parse(&state)?,
        status,
        data,
        async_status: async_sc.and_then(|v| u16::try_from(v).ok()),
        async_alert: async_alert.map(to_u64),
    })
}

impl Storage for SqliteStorage {
    fn device(&self, dev_id: &str) -> Result<Option<DeviceRow>, StorageError> {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT * FROM devices WHERE dev_id = ?1",
                [dev_id],
                device_from_row,
            )
            .optional()?;
        row.map(with_mos).transpose()
    }

    fn devices(&self) -> Result<Vec<DeviceRow>, StorageError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT * FROM devices ORDER BY dev_id")?;
        let rows = stmt
            .query_map([], device_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(with_mos).collect()
    }

    fn put_device(&self, row: &DeviceRow) -> Result<(), StorageError> {
        let mos = match &row.mos {
            Some(m) => Some(serde_json::to_string(m).map_err(|e| corrupt("MOS", e))?),
            None => None,
        };
        let n = row.notification.as_ref();
        self.conn().execute(
            "INSERT OR REPLACE INTO devices VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                row.dev_id,
                mos,
                to_i64(row.sessions),
                to_i64(row.ended),
                row.last_session.map(to_i64),
                n.map(|n| n.server_id.clone()),
                n.and_then(|n| n.secret.clone()),
                n.map(|n| n.auth_data.clone()),
                n.and_then(|n| n.udp.clone()),
                n.is_some(),
                row.last_notification_id,
            ],
        )?;
        Ok(())
    }

    fn add_entry(&self, dev_id: &str, command: &Command) -> Result<u64, StorageError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO entries (dev_id, command, state) VALUES (?1, ?2, ?3)",
            params![
                dev_id,
                command.to_json().to_string(),
                EntryState::Queued.as_str()
            ],
        )?;
        Ok(to_u64(conn.last_insert_rowid()))
    }

    fn entries(&self, dev_id: &str, states: &[EntryState]) -> Result<Vec<Entry>, StorageError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, dev_id, command, state, sc, uris, data_name, data_type, data_body,
                    async_sc, async_alert
             FROM entries WHERE dev_id = ?1 ORDER BY id",
        )?;
        let raws = stmt
            .query_map([dev_id], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    (r.get(6)?, r.get(7)?, r.get(8)?),
                    r.get(9)?,
                    r.get(10)?,
                ))
            })?
            .collect::<Result<Vec<RawEntry>, _>>()?;
        let mut out = Vec::new();
        for raw in raws {
            if !states.is_empty() && !states.iter().any(|s| s.as_str() == raw.3) {
                continue;
            }
            out.push(entry_from_raw(raw)?);
        }
        Ok(out)
    }

    fn put_entry(&self, e: Entry) -> Result<(), StorageError> {
        let uris = e
            .status
            .as_ref()
            .map(|s| serde_json::to_string(&s.uris).unwrap_or_else(|_| "[]".into()));
        self.conn().execute(
            "UPDATE entries SET state = ?2, sc = ?3, uris = ?4, data_name = ?5, data_type = ?6,
                    data_body = ?7, async_sc = ?8, async_alert = ?9
             WHERE id = ?1",
            params![
                to_i64(e.id),
                e.state.as_str(),
                e.status.as_ref().map(|s| s.code.as_u16()),
                uris,
                e.data.as_ref().and_then(|d| d.name.clone()),
                e.data.as_ref().map(|d| d.content_type.clone()),
                e.data.as_ref().map(|d| d.body.clone()),
                e.async_status,
                e.async_alert.map(to_i64),
            ],
        )?;
        Ok(())
    }

    fn add_alert(
        &self,
        dev_id: &str,
        alert: &Alert,
        entry: Option<u64>,
        received: u64,
    ) -> Result<u64, StorageError> {
        let conn = self.conn();
        let text = serde_json::to_string(alert).map_err(|e| corrupt("alert", e))?;
        conn.execute(
            "INSERT INTO alerts (dev_id, alert, entry, received) VALUES (?1, ?2, ?3, ?4)",
            params![dev_id, text, entry.map(to_i64), to_i64(received)],
        )?;
        Ok(to_u64(conn.last_insert_rowid()))
    }

    fn alerts(&self, dev_id: &str) -> Result<Vec<StoredAlert>, StorageError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, dev_id, alert, entry, received FROM alerts WHERE dev_id = ?1 ORDER BY id",
        )?;
        let raws = stmt
            .query_map([dev_id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        raws.into_iter()
            .map(|(id, dev_id, alert, entry, received)| {
                Ok(StoredAlert {
                    id: to_u64(id),
                    dev_id,
                    alert: serde_json::from_str(&alert).map_err(|e| corrupt("alert", e))?,
                    entry: entry.map(to_u64),
                    received: to_u64(received),
                })
            })
            .collect()
    }

    fn resource(&self, dev_id: &str, path: &str) -> Result<Option<Resource>, StorageError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT content_type, body, origin, updated FROM resources
                 WHERE dev_id = ?1 AND path = ?2",
                [dev_id, path],
                |r| {
                    Ok(Resource {
                        content_type: r.get(0)?,
                        body: r.get(1)?,
                        origin: r.get(2)?,
                        updated: to_u64(r.get(3)?),
                    })
                },
            )
            .optional()?)
    }

    fn put_resource(&self, dev_id: &str, path: &str, r: &Resource) -> Result<(), StorageError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO resources VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                dev_id,
                path,
                r.content_type,
                r.body,
                r.origin,
                to_i64(r.updated)
            ],
        )?;
        Ok(())
    }

    fn delete_resource(&self, dev_id: &str, path: &str) -> Result<bool, StorageError> {
        Ok(self.conn().execute(
            "DELETE FROM resources WHERE dev_id = ?1 AND path = ?2",
            [dev_id, path],
        )? > 0)
    }

    fn resources(&self, dev_id: &str) -> Result<Vec<String>, StorageError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT path FROM resources WHERE dev_id = ?1 ORDER BY path")?;
        let paths = stmt
            .query_map([dev_id], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(paths)
    }

    fn put_registration(
        &self,
        dev_id: &str,
        kind: &RegistrationKind,
        server_uri: &str,
    ) -> Result<u64, StorageError> {
        let (k, key) = kind_key(kind);
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM registrations WHERE dev_id = ?1 AND kind = ?2 AND key = ?3",
            [dev_id, k, key],
        )?;
        tx.execute(
            "INSERT INTO registrations (dev_id, kind, key, server_uri) VALUES (?1, ?2, ?3, ?4)",
            [dev_id, k, key, server_uri],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(to_u64(id))
    }

    fn registrations(&self, dev_id: &str) -> Result<Vec<Registration>, StorageError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, kind, key, server_uri FROM registrations WHERE dev_id = ?1 ORDER BY id",
        )?;
        let raws = stmt
            .query_map([dev_id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        raws.into_iter()
            .map(|(id, kind, key, server_uri)| {
                Ok(Registration {
                    id: to_u64(id),
                    dev_id: dev_id.to_owned(),
                    kind: kind_from(&kind, key)?,
                    server_uri,
                })
            })
            .collect()
    }

    fn delete_registration(&self, dev_id: &str, id: u64) -> Result<bool, StorageError> {
        Ok(self.conn().execute(
            "DELETE FROM registrations WHERE dev_id = ?1 AND id = ?2",
            params![dev_id, to_i64(id)],
        )? > 0)
    }

    fn add_ui_session(&self, dev_id: &str, prompt: &str) -> Result<u64, StorageError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO ui_sessions (dev_id, prompt) VALUES (?1, ?2)",
            [dev_id, prompt],
        )?;
        Ok(to_u64(conn.last_insert_rowid()))
    }

    fn ui_session(&self, uiid: u64) -> Result<Option<UiSession>, StorageError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT uiid, dev_id, prompt, choice FROM ui_sessions WHERE uiid = ?1",
                [to_i64(uiid)],
                |r| {
                    Ok(UiSession {
                        uiid: to_u64(r.get(0)?),
                        dev_id: r.get(1)?,
                        prompt: r.get(2)?,
                        choice: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    fn set_ui_choice(&self, uiid: u64, choice: &str) -> Result<bool, StorageError> {
        Ok(self.conn().execute(
            "UPDATE ui_sessions SET choice = ?2 WHERE uiid = ?1",
            params![to_i64(uiid), choice],
        )? > 0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn get(uri: &str) -> Command {
        Command::Get {
            client_uri: uri.parse().unwrap(),
        }
    }

    /// The same sequence against a storage, checked the same way.
    fn exercise(s: &dyn Storage) {
        let mut d = DeviceRow {
            dev_id: "IMEI:1".into(),
            sessions: 2,
            mos: Some(vec![MoInfo {
                ddf: None,
                moid: Some("urn:oma:mo:oma-dm-devinfo:1.2".into()),
                miids: vec!["devinfo".into()],
            }]),
            ..DeviceRow::default()
        };
        s.put_device(&d).unwrap();
        d.notification = Some(NotificationConfig {
            server_id: "A".into(),
            secret: Some(b"s".to_vec()),
            auth_data: b"d".to_vec(),
            udp: Some("127.0.0.1:9".into()),
        });
        d.last_notification_id = Some(7);
        s.put_device(&d).unwrap();
        assert_eq!(s.device("IMEI:1").unwrap().unwrap(), d);
        assert_eq!(s.devices().unwrap().len(), 1);

        let a = s
            .add_entry("IMEI:1", &get("urn:oma:mo:oma-dm-devinfo:1.2//DevID"))
            .unwrap();
        let b = s.add_entry("IMEI:1", &Command::End).unwrap();
        assert!(b > a);
        let mut e = s.entries("IMEI:1", &[EntryState::Queued]).unwrap();
        assert_eq!(e.len(), 2);
        e[0].state = EntryState::Done;
        e[0].status = Some(Status {
            code: StatusCode::OK,
            uris: vec!["x/y/".into()],
        });
        e[0].data = Some(Part {
            name: Some("0".into()),
            content_type: "text/plain".into(),
            body: b"IMEI:1".to_vec(),
        });
        s.put_entry(e[0].clone()).unwrap();
        let done = s.entries("IMEI:1", &[EntryState::Done]).unwrap();
        assert_eq!(done, vec![e[0].clone()]);
        assert_eq!(s.entries("IMEI:1", &[]).unwrap().len(), 2);

        let mut alert = Alert::new("urn:oma:at:dcmo:1.0:OperationComplete");
        alert.source_uri = Some("urn:oma:mo:oma-dcmo:1.0/c/Camera".into());
        let id = s.add_alert("IMEI:1", &alert, Some(a), 5).unwrap();
        let alerts = s.alerts("IMEI:1").unwrap();
        assert_eq!(alerts[0].id, id);
        assert_eq!(alerts[0].alert, alert);
        assert_eq!(alerts[0].entry, Some(a));

        let r = Resource {
            content_type: "text/plain".into(),
            body: b"v".to_vec(),
            origin: "PUT".into(),
            updated: 3,
        };
        s.put_resource("IMEI:1", "a/b", &r).unwrap();
        assert_eq!(s.resource("IMEI:1", "a/b").unwrap(), Some(r));
        assert_eq!(s.resources("IMEI:1").unwrap(), vec!["a/b".to_owned()]);
        assert!(s.delete_resource("IMEI:1", "a/b").unwrap());
        assert!(!s.delete_resource("IMEI:1", "a/b").unwrap());

        let kind = RegistrationKind::Default {
            moid: "urn:x".into(),
        };
        s.put_registration("IMEI:1", &kind, "http://a").unwrap();
        let id = s.put_registration("IMEI:1", &kind, "http://b").unwrap();
        let regs = s.registrations("IMEI:1").unwrap();
        assert_eq!(regs.len(), 1, "one ServerURI per MOID (5.3.10)");
        assert_eq!(regs[0].server_uri, "http://b");
        assert!(!s.delete_registration("other", id).unwrap());
        assert!(s.delete_registration("IMEI:1", id).unwrap());

        let ui = s.add_ui_session("IMEI:1", "Update?").unwrap();
        assert!(s.set_ui_choice(ui, "confirm").unwrap());
        assert!(!s.set_ui_choice(ui + 1000, "confirm").unwrap());
        assert_eq!(
            s.ui_session(ui).unwrap().unwrap().choice.as_deref(),
            Some("confirm")
        );
    }

    #[test]
    fn debug_output_hides_the_notification_secret() {
        let c = NotificationConfig {
            server_id: "A".into(),
            secret: Some(b"top-secret".to_vec()),
            ..NotificationConfig::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("116"), "{shown}"); // b't'
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn memory_storage_keeps_rows() {
        exercise(&MemoryStorage::new());
    }

    #[test]
    fn sqlite_storage_keeps_rows() {
        exercise(&SqliteStorage::in_memory().unwrap());
    }

    #[test]
    fn sqlite_storage_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dm.sqlite");
        {
            let s = SqliteStorage::open(&path).unwrap();
            s.put_device(&DeviceRow {
                dev_id: "d".into(),
                sessions: 4,
                ..DeviceRow::default()
            })
            .unwrap();
            s.add_entry("d", &Command::End).unwrap();
        }
        let s = SqliteStorage::open(&path).unwrap();
        assert_eq!(s.device("d").unwrap().unwrap().sessions, 4);
        assert_eq!(s.entries("d", &[EntryState::Queued]).unwrap().len(), 1);
    }

    #[test]
    fn corrupt_rows_are_errors_not_panics() {
        let s = SqliteStorage::in_memory().unwrap();
        s.conn()
            .execute(
                "INSERT INTO entries (dev_id, command, state) VALUES ('d', 'not json', 'queued')",
                [],
            )
            .unwrap();
        assert!(matches!(
            s.entries("d", &[]),
            Err(StorageError::Corrupt { .. })
        ));
    }
}
