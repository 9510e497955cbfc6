//! Where the reference DM Server keeps what it knows: devices, their
//! command queues and results, alerts, Data Repository resources, DEFAULT
//! and SUB registrations and SHOW UI sessions.
//!
//! [`Storage`] is row-level on purpose: each method maps to one statement
//! (or one short transaction) of a relational database, so a networked
//! database shared by several server instances can implement it as well
//! as the embedded SQLite of [`SqliteStorage`]. [`MemoryStorage`] serves
//! tests and benches that need no durability. [`PostgresStorage`] keeps
//! the same rows in a PostgreSQL database (`dmctl server --db
//! postgres://...`). Both databases carry a versioned schema
//! (`schema_migrations`, see `migrate`), upgraded at open.
//!
//! This module holds the trait, its row types and what every backend
//! shares; each backend lives in its own submodule.

use dm_core::multipart::Part;
use dm_core::{Alert, Command, CommandError, MoInfo, Status};

mod memory;
mod migrate;
#[cfg(any(test, feature = "pg-test"))]
pub mod pg_test;
mod postgres;
mod secrets;
mod sqlite;

pub use memory::MemoryStorage;
pub use postgres::{PostgresStorage, POSTGRES_CONNECTIONS};
use secrets::SecretsKey;
pub use sqlite::SqliteStorage;

/// Associated data of the key check value, and the prefix of a device's
/// secret's (followed by its DevID): a value only opens in its own row.
/// The same in every backend, so sealed values mean the same everywhere.
const KEY_CHECK_AAD: &[u8] = b"dm-server meta.key_check";
const NOTI_SECRET_AAD: &[u8] = b"dm-server devices.noti_secret ";

fn secret_aad(dev_id: &str) -> Vec<u8> {
    [NOTI_SECRET_AAD, dev_id.as_bytes()].concat()
}

/// What `--db` names: a SQLite file, or a PostgreSQL database by its URL
/// (`postgres://` or `postgresql://`, libpq's URL form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Database {
    /// Reads a `--db` value: a PostgreSQL URL by its scheme, else a path.
    pub fn from_arg(arg: &std::path::Path) -> Database {
        match arg.to_str() {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Database::Postgres(url.to_owned())
            }
            _ => Database::Sqlite(arg.to_path_buf()),
        }
    }

    /// For messages: the file, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => path.display().to_string(),
            Database::Postgres(url) => postgres::redact(url),
        }
    }
}

/// Why the storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {}", postgres::message(.0))]
    Postgres(#[from] ::postgres::Error),
    /// The PostgreSQL URL does not parse (its text is not repeated: it
    /// may hold a password).
    #[error("PostgreSQL URL: {0}")]
    PostgresUrl(String),
    /// The connections to PostgreSQL are gone (a worker thread ended).
    #[error("PostgreSQL connection pool: {0}")]
    Pool(&'static str),
    /// A PostgreSQL database is opened without `--secrets-key`: unlike a
    /// SQLite file, it has no directory beside it to keep a key in.
    #[error(
        "a PostgreSQL database needs --secrets-key FILE (32 raw bytes or 64 hex digits, \
         e.g. `head -c 32 /dev/urandom > FILE`): there is no file beside the database \
         to keep the key that seals notification secrets in"
    )]
    SecretsKeyRequired,
    /// The database was upgraded by a newer server than this one.
    #[error(
        "the database schema is version {found}, newer than this server knows ({known}): \
         run the newer server, or restore a backup made before the upgrade"
    )]
    SchemaTooNew { found: u32, known: u32 },
    #[error("stored {what} is corrupt: {reason}")]
    Corrupt { what: &'static str, reason: String },
    /// The database file could not be made or restricted.
    #[error("database file {0}")]
    File(String),
    /// The secrets key file is unreadable, malformed, or not the key this
    /// database's secrets were sealed with.
    #[error("secrets key {file}: {reason}")]
    SecretsKey { file: String, reason: String },
    /// A stored secret does not open with the key given at start: another
    /// key, or a value moved from another device's row.
    #[error(
        "the notification secret of device {dev_id} does not decrypt with the secrets key {file}"
    )]
    Secret { dev_id: String, file: String },
    /// The database was opened without its secrets key (e.g. by `dmctl
    /// server token`), and a secret was read or written.
    #[error("this database was opened without its secrets key")]
    NoSecretsKey,
}

/// Every table holding rows of one device, by `dev_id` (both SQL
/// backends; `delete_device`).
const DEVICE_TABLES: [&str; 9] = [
    "devices",
    "entries",
    "alerts",
    "resources",
    "registrations",
    "ui_sessions",
    "credentials",
    "unauthenticated",
    "bootstrap_profiles",
];

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

    /// The position in the memory backend's per-device index.
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

/// What an admin API bearer token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRole {
    /// GET (and HEAD) routes only: list devices, read results, alerts,
    /// registrations, repository content and SHOW answers.
    Read,
    /// Every route: queue commands, notify, register, fill the repository.
    Operator,
}

impl AdminRole {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminRole::Read => "read",
            AdminRole::Operator => "operator",
        }
    }

    fn parse(s: &str) -> Result<AdminRole, StorageError> {
        match s {
            "read" => Ok(AdminRole::Read),
            "operator" => Ok(AdminRole::Operator),
            other => Err(corrupt("admin token role", other)),
        }
    }
}

/// An admin API token as stored: the SHA-256 of the token, never the
/// token itself (README "Admin API").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminToken {
    pub id: u64,
    pub role: AdminRole,
    pub hash: [u8; 32],
    /// POSIX seconds.
    pub created: u64,
}

/// How one device proves it is the DevID it names (spec 9.2.1): a
/// password, a client certificate, or both. Never the password itself.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    /// The user name the device sends (its DMAcc `Auth/Trsp/Data`) and
    /// the hashes of its password.
    pub password: Option<PasswordHashes>,
    /// SHA-256 of the DER client certificate bound to the DevID.
    pub certificate_sha256: Option<[u8; 32]>,
}

/// A device password as stored: an Argon2id PHC string for HTTP Basic and
/// the RFC 2617/7616 `HA1` (`H(user:realm:password)`) for HTTP Digest, which
/// has to compute the response from it. Neither gives the password back.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHashes {
    pub user: String,
    /// `$argon2id$...`.
    pub phc: String,
    /// Lowercase hex, MD5 and SHA-256, under the server's Digest realm.
    pub ha1_md5: String,
    pub ha1_sha256: String,
}

impl std::fmt::Debug for Credentials {
    // The hashes are password equivalents for Digest: never in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.password.as_ref().map(|p| &p.user))
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("certificate_sha256", &self.certificate_sha256.is_some())
            .finish()
    }
}

impl std::fmt::Debug for PasswordHashes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHashes")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// What the bootstrap server (spec 8.3, 8.4) knows of one device: the
/// DMAcc account it provisions and who may fetch it. No secret: the
/// credentials a bootstrap generates go to [`Credentials`] (hashed) and
/// to the device's [`NotificationConfig`] (sealed), never here.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapProfile {
    /// `SrvID` of the account (12.2), also its MIID.
    pub server_id: String,
    /// `Name` of the account.
    pub name: String,
    /// `SrvURI`; none: this server's own DM endpoint.
    pub server_uri: Option<String>,
    /// The `Perm/<x>/MOID` list (spec 10): what the device lets this
    /// server manage.
    pub perm: Vec<String>,
    /// SHA-256 of the certificate the device presents to the bootstrap
    /// server before any bootstrap (its factory identity, 9.3.2).
    pub device_certificate_sha256: Option<[u8; 32]>,
    /// SHA-256 of the `Auth/Bootstrap/ClientPubKey` certificate the last
    /// bootstrap gave the device: its identity for the next one.
    pub issued_certificate_sha256: Option<[u8; 32]>,
    /// `https://HOST:PORT` of the device's server-initiated bootstrap
    /// endpoint (its `--bootstrap-listen`), for a push (8.4).
    pub push_url: Option<String>,
    /// Where the device takes UDP notifications (E.3), kept in its
    /// notification configuration.
    pub notify_udp: Option<String>,
    /// Bootstraps the device received, and when the last one was (POSIX
    /// seconds).
    pub bootstraps: u64,
    pub last_bootstrap: Option<u64>,
}

impl BootstrapProfile {
    /// Does `sha256` name a certificate this device may bootstrap with?
    pub fn accepts_certificate(&self, sha256: &[u8; 32]) -> bool {
        use subtle::ConstantTimeEq;
        [
            self.device_certificate_sha256,
            self.issued_certificate_sha256,
        ]
        .iter()
        .flatten()
        .any(|f| bool::from(f.ct_eq(sha256)))
    }
}

/// What one bootstrap changes on the server, written together by
/// [`Storage::commit_bootstrap`].
#[derive(Debug, Clone)]
pub struct BootstrapCommit {
    pub credentials: Credentials,
    /// The device row with its new notification configuration.
    pub device: DeviceRow,
    pub profile: BootstrapProfile,
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

    /// Adds an admin API token given by its hash; returns its id.
    fn add_admin_token(
        &self,
        role: AdminRole,
        hash: &[u8; 32],
        created: u64,
    ) -> Result<u64, StorageError>;
    /// Every admin API token, by id.
    fn admin_tokens(&self) -> Result<Vec<AdminToken>, StorageError>;
    /// Revokes a token; false when there is no such token.
    fn delete_admin_token(&self, id: u64) -> Result<bool, StorageError>;

    /// The device's credentials (spec 9.2.1); none: an unknown device.
    fn credentials(&self, dev_id: &str) -> Result<Option<Credentials>, StorageError>;
    /// Sets (replaces) the device's credentials.
    fn put_credentials(&self, dev_id: &str, c: &Credentials) -> Result<(), StorageError>;
    /// Marks the device as admitted without credentials (`--enroll
    /// flag`), or clears the mark once it authenticates.
    fn set_unauthenticated(&self, dev_id: &str, flag: bool) -> Result<(), StorageError>;
    fn is_unauthenticated(&self, dev_id: &str) -> Result<bool, StorageError>;

    /// The device's bootstrap profile; none: the bootstrap server does not
    /// know it.
    fn bootstrap_profile(&self, dev_id: &str) -> Result<Option<BootstrapProfile>, StorageError>;
    /// Sets (replaces) the device's bootstrap profile.
    fn put_bootstrap_profile(&self, dev_id: &str, p: &BootstrapProfile)
        -> Result<(), StorageError>;
    /// Every device that has a bootstrap profile, sorted.
    fn bootstrap_profiles(&self) -> Result<Vec<String>, StorageError>;
    /// Takes a command out of the device's queue, while it is still
    /// queued (not yet sent); false when it is not (any more).
    fn delete_queued_entry(&self, dev_id: &str, id: u64) -> Result<bool, StorageError>;
    /// Forgets the device: its row, queue and results, alerts, repository
    /// data, registrations, SHOW sessions, credentials and bootstrap
    /// profile, all in one transaction. False when nothing was kept.
    fn delete_device(&self, dev_id: &str) -> Result<bool, StorageError>;
    /// A bootstrap served: the device's new credentials, notification
    /// configuration and profile, all or nothing (a crash leaves the old
    /// credentials working, never half of the new ones).
    fn commit_bootstrap(&self, dev_id: &str, c: &BootstrapCommit) -> Result<(), StorageError>;
}

/// Rebuilds a command from its Package#2 array form (spec 7.2.1.2),
/// `["NAME", "param", ...]`: how the backends keep a queued command and
/// how the admin API takes one. Checked as a received command is.
pub(crate) fn command_from_parts(parts: &[String]) -> Result<Command, CommandError> {
    let (name, params) = parts.split_first().ok_or(CommandError::Empty)?;
    Command::from_parts(name, params)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use dm_core::StatusCode;

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

        assert!(s.admin_tokens().unwrap().is_empty());
        let read = s.add_admin_token(AdminRole::Read, &[1; 32], 10).unwrap();
        let op = s
            .add_admin_token(AdminRole::Operator, &[2; 32], 11)
            .unwrap();
        assert_eq!(
            s.admin_tokens().unwrap(),
            vec![
                AdminToken {
                    id: read,
                    role: AdminRole::Read,
                    hash: [1; 32],
                    created: 10
                },
                AdminToken {
                    id: op,
                    role: AdminRole::Operator,
                    hash: [2; 32],
                    created: 11
                },
            ]
        );
        assert!(s.delete_admin_token(read).unwrap());
        assert!(!s.delete_admin_token(read).unwrap());
        assert_eq!(s.admin_tokens().unwrap().len(), 1);

        assert_eq!(s.credentials("IMEI:1").unwrap(), None);
        let c = Credentials {
            password: Some(PasswordHashes {
                user: "dev".into(),
                phc: "$argon2id$x".into(),
                ha1_md5: "aa".into(),
                ha1_sha256: "bb".into(),
            }),
            certificate_sha256: Some([3; 32]),
        };
        s.put_credentials("IMEI:1", &c).unwrap();
        assert_eq!(s.credentials("IMEI:1").unwrap(), Some(c.clone()));
        let cert_only = Credentials {
            password: None,
            certificate_sha256: Some([4; 32]),
        };
        s.put_credentials("IMEI:1", &cert_only).unwrap();
        assert_eq!(s.credentials("IMEI:1").unwrap(), Some(cert_only));
        assert!(!s.is_unauthenticated("IMEI:1").unwrap());
        s.set_unauthenticated("IMEI:1", true).unwrap();
        assert!(s.is_unauthenticated("IMEI:1").unwrap());
        s.set_unauthenticated("IMEI:1", false).unwrap();
        assert!(!s.is_unauthenticated("IMEI:1").unwrap());

        assert_eq!(s.bootstrap_profile("IMEI:1").unwrap(), None);
        let profile = BootstrapProfile {
            server_id: "ACME".into(),
            name: "acme".into(),
            perm: vec!["*".into()],
            device_certificate_sha256: Some([3; 32]),
            push_url: Some("https://192.0.2.1:4433/".into()),
            ..BootstrapProfile::default()
        };
        s.put_bootstrap_profile("IMEI:1", &profile).unwrap();
        assert_eq!(
            s.bootstrap_profile("IMEI:1").unwrap(),
            Some(profile.clone())
        );
        assert_eq!(s.bootstrap_profiles().unwrap(), vec!["IMEI:1".to_owned()]);
        // One bootstrap: credentials, notification and profile together.
        let mut device = s.device("IMEI:1").unwrap().unwrap();
        device.notification = Some(NotificationConfig {
            server_id: "ACME".into(),
            secret: Some(b"fresh".to_vec()),
            auth_data: b"data".to_vec(),
            udp: None,
        });
        let commit = BootstrapCommit {
            credentials: c.clone(),
            device: device.clone(),
            profile: BootstrapProfile {
                issued_certificate_sha256: Some([4; 32]),
                bootstraps: 1,
                last_bootstrap: Some(9),
                ..profile
            },
        };
        s.commit_bootstrap("IMEI:1", &commit).unwrap();
        assert_eq!(s.credentials("IMEI:1").unwrap(), Some(c));
        assert_eq!(s.device("IMEI:1").unwrap().unwrap(), device);
        let kept = s.bootstrap_profile("IMEI:1").unwrap().unwrap();
        assert_eq!(kept, commit.profile);
        assert!(kept.accepts_certificate(&[3; 32]) && kept.accepts_certificate(&[4; 32]));
        assert!(!kept.accepts_certificate(&[5; 32]));
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

    /// Two devices' queues stay apart, and a state filter of several
    /// states keeps the queue order.
    fn queues_are_per_device_and_filtered(s: &dyn Storage) {
        let a1 = s.add_entry("a", &Command::End).unwrap();
        let b1 = s.add_entry("b", &Command::End).unwrap();
        let a2 = s.add_entry("a", &get("urn:oma:mo:x:1.0//y")).unwrap();
        let a3 = s.add_entry("a", &get("urn:oma:mo:x:1.0//z")).unwrap();
        let ids = |dev, states: &[EntryState]| -> Vec<u64> {
            s.entries(dev, states)
                .unwrap()
                .iter()
                .map(|e| e.id)
                .collect()
        };
        assert_eq!(ids("a", &[]), [a1, a2, a3]);
        assert_eq!(ids("b", &[]), [b1]);
        let mut e = s.entries("a", &[]).unwrap();
        e[0].state = EntryState::Sent;
        e[2].state = EntryState::Lost;
        s.put_entry(e[0].clone()).unwrap();
        s.put_entry(e[2].clone()).unwrap();
        assert_eq!(ids("a", &[EntryState::Lost, EntryState::Sent]), [a1, a3]);
        assert_eq!(ids("a", &[EntryState::Queued]), [a2]);
        assert!(ids("c", &[]).is_empty());
        // Rows come back sorted by their key.
        for d in ["z", "m", "a"] {
            s.put_device(&DeviceRow {
                dev_id: d.into(),
                ..DeviceRow::default()
            })
            .unwrap();
            s.put_bootstrap_profile(d, &BootstrapProfile::default())
                .unwrap();
        }
        let devs: Vec<String> = s.devices().unwrap().into_iter().map(|d| d.dev_id).collect();
        assert_eq!(devs, ["a", "m", "z"]);
        assert_eq!(s.bootstrap_profiles().unwrap(), ["a", "m", "z"]);
        assert_eq!(s.device("none").unwrap(), None);
    }

    /// A queued command can be taken back, a sent one cannot; a device is
    /// forgotten whole, and only that device.
    fn deletes_a_queued_command_and_a_whole_device(s: &dyn Storage) {
        let queued = s.add_entry("a", &Command::End).unwrap();
        let sent = s.add_entry("a", &get("urn:oma:mo:x:1.0//y")).unwrap();
        let other = s.add_entry("b", &Command::End).unwrap();
        let mut e = s.entries("a", &[]).unwrap();
        e[1].state = EntryState::Sent;
        s.put_entry(e[1].clone()).unwrap();
        assert!(!s.delete_queued_entry("a", sent).unwrap(), "already sent");
        assert!(
            !s.delete_queued_entry("b", queued).unwrap(),
            "another device's"
        );
        assert!(s.delete_queued_entry("a", queued).unwrap());
        assert!(!s.delete_queued_entry("a", queued).unwrap(), "once");
        let ids: Vec<u64> = s.entries("a", &[]).unwrap().iter().map(|e| e.id).collect();
        assert_eq!(ids, [sent]);

        for d in ["a", "b"] {
            s.put_device(&DeviceRow {
                dev_id: d.into(),
                ..DeviceRow::default()
            })
            .unwrap();
            s.put_resource(
                d,
                "p",
                &Resource {
                    content_type: "text/plain".into(),
                    body: b"x".to_vec(),
                    origin: "admin".into(),
                    updated: 1,
                },
            )
            .unwrap();
            s.put_bootstrap_profile(d, &BootstrapProfile::default())
                .unwrap();
            s.set_unauthenticated(d, true).unwrap();
            s.add_alert(d, &Alert::new("urn:x"), None, 1).unwrap();
            s.add_ui_session(d, "ok?").unwrap();
        }
        assert!(s.delete_device("a").unwrap());
        assert_eq!(s.device("a").unwrap(), None);
        assert!(s.entries("a", &[]).unwrap().is_empty());
        assert!(s.alerts("a").unwrap().is_empty());
        assert!(s.resources("a").unwrap().is_empty());
        assert_eq!(s.bootstrap_profile("a").unwrap(), None);
        assert!(!s.is_unauthenticated("a").unwrap());
        assert!(!s.delete_device("a").unwrap(), "nothing left");
        // The other device keeps everything.
        assert!(s.device("b").unwrap().is_some());
        assert_eq!(s.entries("b", &[]).unwrap()[0].id, other);
        assert_eq!(s.resources("b").unwrap(), ["p"]);
        assert_eq!(s.alerts("b").unwrap().len(), 1);
    }

    /// A test of the suite, by name.
    type SuiteTest = (&'static str, fn(&dyn Storage));

    /// The storage suite: every backend runs each of these on a fresh,
    /// empty storage.
    const SUITE: &[SuiteTest] = &[
        ("keeps rows", exercise),
        (
            "queues are per device and filtered",
            queues_are_per_device_and_filtered,
        ),
        (
            "deletes a queued command and a whole device",
            deletes_a_queued_command_and_a_whole_device,
        ),
    ];

    fn run_suite(fresh: &mut dyn FnMut() -> Box<dyn Storage>) {
        for (name, test) in SUITE {
            eprintln!("storage suite: {name}");
            test(fresh().as_ref());
        }
    }

    #[test]
    fn memory_storage_suite() {
        run_suite(&mut || Box::new(MemoryStorage::new()));
    }

    #[test]
    fn sqlite_storage_suite() {
        run_suite(&mut || Box::new(SqliteStorage::in_memory().unwrap()));
    }

    #[test]
    fn postgres_storage_suite() {
        let Some(pg) = pg_test::TestPostgres::start() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("secrets.key");
        std::fs::write(&key, "42".repeat(32)).unwrap();
        run_suite(&mut || {
            Box::new(PostgresStorage::connect(&pg.database("suite"), Some(&key)).unwrap())
        });
    }

    #[test]
    fn db_arguments_name_a_file_or_a_postgres_url() {
        use std::path::Path;
        assert_eq!(
            Database::from_arg(Path::new("postgres://dm@h/dm")),
            Database::Postgres("postgres://dm@h/dm".into())
        );
        assert_eq!(
            Database::from_arg(Path::new("postgresql://dm@h/dm")),
            Database::Postgres("postgresql://dm@h/dm".into())
        );
        // A relative file that happens to start with "postgres" is a file.
        assert_eq!(
            Database::from_arg(Path::new("postgres.sqlite")),
            Database::Sqlite("postgres.sqlite".into())
        );
        let pg = Database::from_arg(Path::new("postgres://dm:hunter2@h/dm"));
        assert_eq!(pg.describe(), "postgres://dm:***@h/dm");
    }
}
