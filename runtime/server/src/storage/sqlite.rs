//! [`SqliteStorage`]: the embedded SQLite database of
//! `dmctl server --db PATH`, one table per row type of [`Storage`].

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use dm_core::multipart::Part;
use dm_core::{Alert, Command, Status, StatusCode};
use rusqlite::{params, Connection, OptionalExtension};

use super::{
    command_from_parts, corrupt, kind_from, kind_key, AdminRole, AdminToken, DeviceRow, Entry,
    EntryState, NotificationConfig, Registration, RegistrationKind, Resource, Storage,
    StorageError, StoredAlert, UiSession,
};
use super::{migrate, secret_aad, KEY_CHECK_AAD};
use super::{BootstrapCommit, BootstrapProfile, Credentials, PasswordHashes, SecretsKey};

/// Version 1: the schema every version before migrations made with
/// `CREATE TABLE IF NOT EXISTS` at each open, kept word for word. On such
/// a database (no `schema_migrations` yet) it changes nothing, and so the
/// database is adopted at version 1 as it is. Later steps alter tables.
const SCHEMA_V1: &str = "
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
-- Admin API bearer tokens: the SHA-256 of each token only, never the token.
CREATE TABLE IF NOT EXISTS admin_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    role TEXT NOT NULL,
    hash BLOB NOT NULL UNIQUE,
    created INTEGER NOT NULL
);
-- Device credentials (spec 9.2.1): password hashes, never the password.
CREATE TABLE IF NOT EXISTS credentials (
    dev_id TEXT PRIMARY KEY,
    user TEXT,
    phc TEXT,
    ha1_md5 TEXT,
    ha1_sha256 TEXT,
    cert_sha256 BLOB
);
-- Devices admitted without credentials under `--enroll flag`.
CREATE TABLE IF NOT EXISTS unauthenticated (dev_id TEXT PRIMARY KEY);
-- Bootstrap profiles (spec 8.3, 8.4): a JSON object; no secret in it.
CREATE TABLE IF NOT EXISTS bootstrap_profiles (dev_id TEXT PRIMARY KEY, profile TEXT NOT NULL);
-- 'key_check': a value sealed with the secrets key. Its presence says the
-- noti_secret column holds sealed values; opening it checks the key.
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
";

/// The SQLite schema, step by step (see `migrate`).
const MIGRATIONS: &[migrate::Migration] = &[migrate::Migration {
    version: 1,
    name: "devices, queues, results, repository, registrations, UI, tokens, credentials, bootstrap profiles, meta",
    sql: SCHEMA_V1,
}];

/// Brings the database to the newest schema of `migrations`, all pending
/// steps in one transaction; returns the version it is at. `IMMEDIATE`:
/// a second process opening the same file waits, then finds them done.
fn migrate(conn: &mut Connection, migrations: &[migrate::Migration]) -> Result<u32, StorageError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute_batch(migrate::MIGRATIONS_TABLE)?;
    let current: u32 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    let mut version = current;
    for m in migrate::pending(current, migrations)? {
        tx.execute_batch(m.sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied) VALUES (?1, ?2, ?3)",
            params![m.version, m.name, migrate::now()],
        )?;
        version = m.version;
    }
    tx.commit()?;
    Ok(version)
}

/// The embedded SQLite database of `dmctl server --db PATH`. Every method
/// is one statement or transaction, committed before it returns, so a
/// status the server acknowledged survives a crash or a restart.
#[derive(Debug)]
pub struct SqliteStorage {
    conn: Mutex<Connection>,
    /// Seals `devices.noti_secret`; `None` for commands that need no
    /// secret (`dmctl server token`).
    key: Option<SecretsKey>,
}

/// Creates `path` with mode 0600 when missing, and takes group and other
/// permissions from an existing one.
fn restrict_to_owner(path: &Path) -> Result<(), StorageError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let io = |e: std::io::Error| StorageError::File(format!("{}: {e}", path.display()));
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

impl SqliteStorage {
    /// Opens (creating when missing) the database at `path`, readable by
    /// the server's user only: it holds notification secrets and credential
    /// hashes (issue "DM Server you can expose", item 8). SQLite gives its
    /// `-wal` and `-shm` files the database file's mode. Secrets are sealed
    /// with the key in `<path>.key`, made at first open.
    pub fn open(path: &Path) -> Result<SqliteStorage, StorageError> {
        SqliteStorage::open_with_key_file(path, None).map(|(s, _)| s)
    }

    /// Opens the database at `path` with the secrets key in `key_file`
    /// (32 raw bytes or 64 hex digits), or in `<path>.key`, made when
    /// missing; the second value names that file when it was just made.
    /// Plaintext secrets an earlier version stored are sealed in place
    /// here; a key other than the one the database was sealed with is a
    /// [`StorageError::SecretsKey`] naming the key file.
    pub fn open_with_key_file(
        path: &Path,
        key_file: Option<&Path>,
    ) -> Result<(SqliteStorage, Option<PathBuf>), StorageError> {
        let (key, made) = match key_file {
            Some(file) => (SecretsKey::load(file)?, None),
            None => {
                let file = SecretsKey::beside(path);
                let (key, created) = SecretsKey::load_or_create(&file)?;
                (key, created.then_some(file))
            }
        };
        restrict_to_owner(path)?;
        let storage = SqliteStorage::init(Connection::open(path)?, Some(key))?;
        Ok((storage, made))
    }

    /// Opens the database at `path` for what needs no secret (admin
    /// tokens): reading or writing a notification secret then fails with
    /// [`StorageError::NoSecretsKey`].
    pub fn open_without_secrets(path: &Path) -> Result<SqliteStorage, StorageError> {
        restrict_to_owner(path)?;
        SqliteStorage::init(Connection::open(path)?, None)
    }

    /// A private database in memory (same SQL, no file).
    pub fn in_memory() -> Result<SqliteStorage, StorageError> {
        SqliteStorage::init(
            Connection::open_in_memory()?,
            Some(SecretsKey::ephemeral()?),
        )
    }

    fn init(mut conn: Connection, key: Option<SecretsKey>) -> Result<SqliteStorage, StorageError> {
        // WAL: readers do not block the writer; NORMAL sync is durable
        // across process crashes, which is what a restart test checks.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        migrate(&mut conn, MIGRATIONS)?;
        let storage = SqliteStorage {
            conn: Mutex::new(conn),
            key,
        };
        storage.check_or_seal()?;
        Ok(storage)
    }

    /// With a key: checks it against the database's key check value, or,
    /// on a database without one (new, or written by a version that kept
    /// secrets in the clear), seals every stored secret and writes it, in
    /// one transaction.
    fn check_or_seal(&self) -> Result<(), StorageError> {
        let Some(key) = &self.key else {
            return Ok(());
        };
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let check: Option<Vec<u8>> = tx
            .query_row("SELECT value FROM meta WHERE name = 'key_check'", [], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(check) = check {
            return match key.open(KEY_CHECK_AAD, &check) {
                Some(_) => Ok(()),
                None => Err(StorageError::SecretsKey {
                    file: key.source().to_owned(),
                    reason: "not the key this database's secrets were sealed with".into(),
                }),
            };
        }
        let plain: Vec<(String, Vec<u8>)> = {
            let mut stmt = tx
                .prepare("SELECT dev_id, noti_secret FROM devices WHERE noti_secret IS NOT NULL")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            rows
        };
        let migrated = !plain.is_empty();
        for (dev_id, secret) in plain {
            tx.execute(
                "UPDATE devices SET noti_secret = ?2 WHERE dev_id = ?1",
                params![dev_id, key.seal(&secret_aad(&dev_id), &secret)?],
            )?;
        }
        tx.execute(
            "INSERT INTO meta VALUES ('key_check', ?1)",
            [key.seal(KEY_CHECK_AAD, b"")?],
        )?;
        tx.commit()?;
        if migrated {
            // The plaintext may linger in the WAL and in freed pages:
            // checkpoint, then rewrite the whole file without them.
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;")?;
        }
        Ok(())
    }

    /// Writes a device row on `conn` (a connection or a transaction).
    fn write_device(&self, conn: &Connection, row: &DeviceRow) -> Result<(), StorageError> {
        let mos = match &row.mos {
            Some(m) => Some(serde_json::to_string(m).map_err(|e| corrupt("MOS", e))?),
            None => None,
        };
        let n = row.notification.as_ref();
        // Sealed before it reaches SQLite: no page of the file or its WAL
        // ever holds the secret.
        let secret = match n.and_then(|n| n.secret.as_ref()) {
            Some(s) => Some(self.key()?.seal(&secret_aad(&row.dev_id), s)?),
            None => None,
        };
        conn.execute(
            "INSERT OR REPLACE INTO devices VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                row.dev_id,
                mos,
                to_i64(row.sessions),
                to_i64(row.ended),
                row.last_session.map(to_i64),
                n.map(|n| n.server_id.clone()),
                secret,
                n.map(|n| n.auth_data.clone()),
                n.and_then(|n| n.udp.clone()),
                n.is_some(),
                row.last_notification_id,
            ],
        )?;
        Ok(())
    }

    /// The schema version of the database (`schema_migrations`).
    pub fn schema_version(&self) -> Result<u32, StorageError> {
        Ok(self.conn().query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )?)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn key(&self) -> Result<&SecretsKey, StorageError> {
        self.key.as_ref().ok_or(StorageError::NoSecretsKey)
    }

    /// Parses the MOS column and opens the sealed secret of a row
    /// [`device_from_row`] read.
    fn finish(&self, (mut d, mos): (DeviceRow, Option<String>)) -> Result<DeviceRow, StorageError> {
        if let Some(sealed) = d.notification.as_mut().and_then(|n| n.secret.as_mut()) {
            let key = self.key()?;
            *sealed =
                key.open(&secret_aad(&d.dev_id), sealed)
                    .ok_or_else(|| StorageError::Secret {
                        dev_id: d.dev_id.clone(),
                        file: key.source().to_owned(),
                    })?;
        }
        with_mos((d, mos))
    }
}

fn write_credentials(conn: &Connection, dev_id: &str, c: &Credentials) -> Result<(), StorageError> {
    let p = c.password.as_ref();
    conn.execute(
        "INSERT OR REPLACE INTO credentials VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            dev_id,
            p.map(|p| &p.user),
            p.map(|p| &p.phc),
            p.map(|p| &p.ha1_md5),
            p.map(|p| &p.ha1_sha256),
            c.certificate_sha256.map(|f| f.to_vec()),
        ],
    )?;
    Ok(())
}

fn write_profile(
    conn: &Connection,
    dev_id: &str,
    p: &BootstrapProfile,
) -> Result<(), StorageError> {
    let text = serde_json::to_string(p).map_err(|e| corrupt("bootstrap profile", e))?;
    conn.execute(
        "INSERT OR REPLACE INTO bootstrap_profiles VALUES (?1, ?2)",
        params![dev_id, text],
    )?;
    Ok(())
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

/// The `command` column: the command's Package#2 array as JSON text,
/// `["GET", "urn:..."]`, as every version of this schema wrote it.
fn command_from_row(text: &str) -> Result<Command, StorageError> {
    let parts: Vec<String> = serde_json::from_str(text).map_err(|e| corrupt("command", e))?;
    command_from_parts(&parts).map_err(|e| corrupt("command", e))
}

fn entry_from_raw(raw: RawEntry) -> Result<Entry, StorageError> {
    let (id, dev_id, command, state, sc, uris, (dname, dtype, dbody), async_sc, async_alert) = raw;
    let command = command_from_row(&command)?;
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
        drop(conn);
        row.map(|r| self.finish(r)).transpose()
    }

    fn devices(&self) -> Result<Vec<DeviceRow>, StorageError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT * FROM devices ORDER BY dev_id")?;
        let rows = stmt
            .query_map([], device_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        drop(conn);
        rows.into_iter().map(|r| self.finish(r)).collect()
    }

    fn put_device(&self, row: &DeviceRow) -> Result<(), StorageError> {
        self.write_device(&self.conn(), row)
    }

    fn add_entry(&self, dev_id: &str, command: &Command) -> Result<u64, StorageError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO entries (dev_id, command, state) VALUES (?1, ?2, ?3)",
            params![
                dev_id,
                serde_json::to_string(command).map_err(|e| corrupt("command", e))?,
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

    fn add_admin_token(
        &self,
        role: AdminRole,
        hash: &[u8; 32],
        created: u64,
    ) -> Result<u64, StorageError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO admin_tokens (role, hash, created) VALUES (?1, ?2, ?3)",
            params![role.as_str(), &hash[..], to_i64(created)],
        )?;
        Ok(to_u64(conn.last_insert_rowid()))
    }

    fn admin_tokens(&self) -> Result<Vec<AdminToken>, StorageError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT id, role, hash, created FROM admin_tokens ORDER BY id")?;
        let raws = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        raws.into_iter()
            .map(|(id, role, hash, created)| {
                Ok(AdminToken {
                    id: to_u64(id),
                    role: AdminRole::parse(&role)?,
                    hash: hash
                        .try_into()
                        .map_err(|h: Vec<u8>| corrupt("admin token hash", h.len()))?,
                    created: to_u64(created),
                })
            })
            .collect()
    }

    fn delete_admin_token(&self, id: u64) -> Result<bool, StorageError> {
        Ok(self
            .conn()
            .execute("DELETE FROM admin_tokens WHERE id = ?1", [to_i64(id)])?
            > 0)
    }

    fn credentials(&self, dev_id: &str) -> Result<Option<Credentials>, StorageError> {
        type Raw = (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<Vec<u8>>,
        );
        let raw: Option<Raw> = self
            .conn()
            .query_row(
                "SELECT user, phc, ha1_md5, ha1_sha256, cert_sha256 FROM credentials \
                 WHERE dev_id = ?1",
                [dev_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        let Some((user, phc, md5, sha256, cert)) = raw else {
            return Ok(None);
        };
        let password = match (user, phc, md5, sha256) {
            (Some(user), Some(phc), Some(ha1_md5), Some(ha1_sha256)) => Some(PasswordHashes {
                user,
                phc,
                ha1_md5,
                ha1_sha256,
            }),
            (None, None, None, None) => None,
            _ => return Err(corrupt("credentials", "a password hash is missing")),
        };
        let certificate_sha256 = cert
            .map(|c| <[u8; 32]>::try_from(c).map_err(|_| corrupt("credentials", "fingerprint")))
            .transpose()?;
        Ok(Some(Credentials {
            password,
            certificate_sha256,
        }))
    }

    fn put_credentials(&self, dev_id: &str, c: &Credentials) -> Result<(), StorageError> {
        write_credentials(&self.conn(), dev_id, c)
    }

    fn set_unauthenticated(&self, dev_id: &str, flag: bool) -> Result<(), StorageError> {
        let sql = if flag {
            "INSERT OR IGNORE INTO unauthenticated VALUES (?1)"
        } else {
            "DELETE FROM unauthenticated WHERE dev_id = ?1"
        };
        self.conn().execute(sql, [dev_id])?;
        Ok(())
    }

    fn is_unauthenticated(&self, dev_id: &str) -> Result<bool, StorageError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM unauthenticated WHERE dev_id = ?1",
                [dev_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn bootstrap_profile(&self, dev_id: &str) -> Result<Option<BootstrapProfile>, StorageError> {
        let text: Option<String> = self
            .conn()
            .query_row(
                "SELECT profile FROM bootstrap_profiles WHERE dev_id = ?1",
                [dev_id],
                |r| r.get(0),
            )
            .optional()?;
        text.map(|t| serde_json::from_str(&t).map_err(|e| corrupt("bootstrap profile", e)))
            .transpose()
    }

    fn put_bootstrap_profile(
        &self,
        dev_id: &str,
        p: &BootstrapProfile,
    ) -> Result<(), StorageError> {
        write_profile(&self.conn(), dev_id, p)
    }

    fn bootstrap_profiles(&self) -> Result<Vec<String>, StorageError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT dev_id FROM bootstrap_profiles ORDER BY dev_id")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<String>, _>>()?)
    }

    fn delete_queued_entry(&self, dev_id: &str, id: u64) -> Result<bool, StorageError> {
        Ok(self.conn().execute(
            "DELETE FROM entries WHERE dev_id = ?1 AND id = ?2 AND state = ?3",
            params![dev_id, to_i64(id), EntryState::Queued.as_str()],
        )? > 0)
    }

    fn delete_device(&self, dev_id: &str) -> Result<bool, StorageError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut deleted = 0;
        for table in super::DEVICE_TABLES {
            deleted += tx.execute(&format!("DELETE FROM {table} WHERE dev_id = ?1"), [dev_id])?;
        }
        tx.commit()?;
        Ok(deleted > 0)
    }

    fn commit_bootstrap(&self, dev_id: &str, c: &BootstrapCommit) -> Result<(), StorageError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        write_credentials(&tx, dev_id, &c.credentials)?;
        self.write_device(&tx, &c.device)?;
        write_profile(&tx, dev_id, &c.profile)?;
        tx.commit()?;
        Ok(())
    }
}

fn status_code(code: u16) -> Result<StatusCode, StorageError> {
    StatusCode::from_u16(code).ok_or_else(|| corrupt("status", code))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_database_file_is_the_servers_alone() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("dm.sqlite");
        // A file left readable by everyone is narrowed too.
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _storage = SqliteStorage::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let fresh = tmp.path().join("fresh.sqlite");
        let _storage = SqliteStorage::open(&fresh).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    const SECRET: &[u8] = b"noti-secret-7f3a9c";

    fn with_secret(dev_id: &str) -> DeviceRow {
        DeviceRow {
            dev_id: dev_id.into(),
            notification: Some(NotificationConfig {
                server_id: "srv".into(),
                secret: Some(SECRET.to_vec()),
                auth_data: b"nonce".to_vec(),
                udp: None,
            }),
            ..DeviceRow::default()
        }
    }

    fn file_holds(path: &Path, needle: &[u8]) -> bool {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        [path.to_path_buf(), wal.into()].iter().any(|p| {
            std::fs::read(p)
                .map(|b| b.windows(needle.len()).any(|w| w == needle))
                .unwrap_or(false)
        })
    }

    #[test]
    fn notification_secrets_are_sealed_on_disk_and_open_with_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dm.sqlite");
        {
            let s = SqliteStorage::open(&path).unwrap();
            s.put_device(&with_secret("dev-a")).unwrap();
            assert!(path.with_extension("sqlite.key").exists());
            // Neither the database nor its WAL holds the secret's bytes,
            // while the connection is open (WAL not checkpointed) ...
            assert!(!file_holds(&path, SECRET));
            let got = s.device("dev-a").unwrap().unwrap();
            assert_eq!(got.notification.unwrap().secret.unwrap(), SECRET);
        }
        // ... nor after it closed; the same key (`<db>.key`) opens it again.
        assert!(!file_holds(&path, SECRET));
        let s = SqliteStorage::open(&path).unwrap();
        let got = s.devices().unwrap();
        assert_eq!(
            got[0].notification.as_ref().unwrap().secret.as_deref(),
            Some(SECRET)
        );
    }

    #[test]
    fn a_wrong_secrets_key_is_a_start_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dm.sqlite");
        SqliteStorage::open(&path)
            .unwrap()
            .put_device(&with_secret("d"))
            .unwrap();
        let other = dir.path().join("other.key");
        std::fs::write(&other, [9u8; 32]).unwrap();
        let err = SqliteStorage::open_with_key_file(&path, Some(&other)).unwrap_err();
        match &err {
            StorageError::SecretsKey { file, .. } => assert!(file.ends_with("other.key")),
            e => panic!("{e:?}"),
        }
        assert!(err.to_string().contains("other.key"), "{err}");
        // The right key still opens it: the failed start changed nothing.
        let s = SqliteStorage::open(&path).unwrap();
        assert!(s.device("d").unwrap().is_some());
    }

    #[test]
    fn a_secret_copied_to_another_devices_row_does_not_open() {
        let s = SqliteStorage::in_memory().unwrap();
        s.put_device(&with_secret("victim")).unwrap();
        s.put_device(&with_secret("attacker")).unwrap();
        s.conn()
            .execute(
                "UPDATE devices SET noti_secret = \
                 (SELECT noti_secret FROM devices WHERE dev_id = 'victim') \
                 WHERE dev_id = 'attacker'",
                [],
            )
            .unwrap();
        assert!(s.device("victim").unwrap().is_some());
        assert!(matches!(
            s.device("attacker"),
            Err(StorageError::Secret { dev_id, .. }) if dev_id == "attacker"
        ));
    }

    #[test]
    fn plaintext_secrets_of_an_older_database_are_sealed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dm.sqlite");
        {
            // What an earlier version wrote: the schema without `meta`,
            // the secret in the clear.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA_V1.split("-- 'key_check'").next().unwrap())
                .unwrap();
            conn.execute(
                "INSERT INTO devices (dev_id, sessions, ended, noti_server_id, noti_secret, \
                 noti_auth_data, has_noti) VALUES ('old', 0, 0, 'srv', ?1, x'', 1)",
                [SECRET],
            )
            .unwrap();
        }
        assert!(file_holds(&path, SECRET));
        let s = SqliteStorage::open(&path).unwrap();
        let got = s.device("old").unwrap().unwrap();
        assert_eq!(got.notification.unwrap().secret.unwrap(), SECRET);
        // Gone from the files at once, not only at the next checkpoint.
        assert!(!file_holds(&path, SECRET));
        drop(s);
        assert!(!file_holds(&path, SECRET));
        // Opened without the key (admin tokens), secrets are out of reach.
        let s = SqliteStorage::open_without_secrets(&path).unwrap();
        assert!(matches!(s.device("old"), Err(StorageError::NoSecretsKey)));
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
    fn rows_written_as_json_arrays_load_as_commands() {
        // The text earlier versions wrote: the Package#2 array form.
        let s = SqliteStorage::in_memory().unwrap();
        s.conn()
            .execute(
                "INSERT INTO entries (dev_id, command, state) VALUES
                 ('d', '[\"GET\",\"urn:oma:mo:oma-dm-devinfo:1.2//DevID\"]', 'queued'),
                 ('d', '[\"EXEC\",\"urn:oma:mo:oma-dcmo:1.0/c/Operations/Enable\",\"http://x/dm\"]', 'queued'),
                 ('d', '[\"END\"]', 'queued')",
                [],
            )
            .unwrap();
        let commands: Vec<Command> = s
            .entries("d", &[])
            .unwrap()
            .into_iter()
            .map(|e| e.command)
            .collect();
        assert_eq!(
            commands,
            vec![
                Command::Get {
                    client_uri: "urn:oma:mo:oma-dm-devinfo:1.2//DevID".parse().unwrap()
                },
                Command::Exec {
                    client_uri: "urn:oma:mo:oma-dcmo:1.0/c/Operations/Enable"
                        .parse()
                        .unwrap(),
                    server_uri: Some(dm_core::ServerUri::new("http://x/dm")),
                },
                Command::End,
            ]
        );
        // And what this version writes reads back the same.
        let id = s.add_entry("e", &commands[1]).unwrap();
        let stored: String = s
            .conn()
            .query_row(
                "SELECT command FROM entries WHERE id = ?1",
                [to_i64(id)],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            stored,
            r#"["EXEC","urn:oma:mo:oma-dcmo:1.0/c/Operations/Enable","http://x/dm"]"#
        );
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
        // JSON, but not a command: unknown name, wrong arity, a number,
        // an empty array, a bad ClientURI.
        for text in [
            r#"["FROB"]"#,
            r#"["GET"]"#,
            r#"["GET", 7]"#,
            "[]",
            r#"["GET", "not a uri"]"#,
            r#"{"GET": "x"}"#,
        ] {
            let s = SqliteStorage::in_memory().unwrap();
            s.conn()
                .execute(
                    "INSERT INTO entries (dev_id, command, state) VALUES ('d', ?1, 'queued')",
                    [text],
                )
                .unwrap();
            let got = s.entries("d", &[]);
            assert!(
                matches!(
                    got,
                    Err(StorageError::Corrupt {
                        what: "command",
                        ..
                    })
                ),
                "{text}: {got:?}"
            );
        }
    }

    #[test]
    fn migrations_are_numbered_in_order() {
        migrate::assert_well_numbered(MIGRATIONS);
    }

    /// A copy of a database the server wrote before schema migrations
    /// existed (tests/fixtures/before-migrations.sqlite, made by that
    /// version's `SqliteStorage` with one row of every table) and its key.
    fn database_before_migrations(dir: &Path) -> (PathBuf, PathBuf) {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let (db, key) = (dir.join("dm.sqlite"), dir.join("dm.key"));
        std::fs::copy(fixtures.join("before-migrations.sqlite"), &db).unwrap();
        std::fs::copy(fixtures.join("before-migrations.sqlite.key"), &key).unwrap();
        (db, key)
    }

    #[test]
    fn a_database_from_before_migrations_is_adopted_without_loss() {
        let dir = tempfile::tempdir().unwrap();
        let (db, key) = database_before_migrations(dir.path());
        let no_table: Option<String> = Connection::open(&db)
            .unwrap()
            .query_row(
                "SELECT name FROM sqlite_master WHERE name = 'schema_migrations'",
                [],
                |r| r.get(0),
            )
            .optional()
            .unwrap();
        assert_eq!(no_table, None, "the fixture predates migrations");
        for round in 0..2 {
            let (s, _) = SqliteStorage::open_with_key_file(&db, Some(&key)).unwrap();
            assert_eq!(s.schema_version().unwrap(), migrate::latest(MIGRATIONS));
            let d = s.device("IMEI:1").unwrap().unwrap();
            assert_eq!((d.sessions, d.ended), (3, 2));
            assert_eq!(d.last_session, Some(1_700_000_000));
            assert_eq!(d.last_notification_id, Some(7));
            assert_eq!(d.mos.unwrap()[0].miids, ["devinfo"]);
            let n = d.notification.unwrap();
            assert_eq!(n.secret.as_deref(), Some(&b"noti-secret"[..]));
            assert_eq!(n.udp.as_deref(), Some("127.0.0.1:9"));
            let e = s.entries("IMEI:1", &[]).unwrap();
            // The fixture's two, and the one the first round added.
            assert_eq!(e.len(), 2 + round);
            assert_eq!(e[0].state, EntryState::Done);
            assert_eq!(e[0].data.as_ref().unwrap().body, b"IMEI:1");
            assert_eq!(e[1].command, Command::End);
            let alerts = s.alerts("IMEI:1").unwrap();
            assert_eq!(alerts[0].entry, Some(e[0].id));
            assert_eq!(s.resource("IMEI:1", "a/b").unwrap().unwrap().body, b"v");
            assert_eq!(s.registrations("IMEI:1").unwrap()[0].server_uri, "http://b");
            assert_eq!(s.ui_session(1).unwrap().unwrap().prompt, "Update?");
            assert_eq!(s.admin_tokens().unwrap()[0].hash, [2; 32]);
            let c = s.credentials("IMEI:1").unwrap().unwrap();
            assert_eq!(c.password.unwrap().user, "dev");
            assert_eq!(c.certificate_sha256, Some([3; 32]));
            assert!(s.is_unauthenticated("IMEI:2").unwrap());
            let p = s.bootstrap_profile("IMEI:1").unwrap().unwrap();
            assert_eq!((p.server_id.as_str(), p.bootstraps), ("ACME", 1));
            // New rows go on from the old ones.
            assert!(s.add_entry("IMEI:1", &Command::End).unwrap() > e[1].id);
        }
    }

    #[test]
    fn a_database_newer_than_the_server_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dm.sqlite");
        drop(SqliteStorage::open(&path).unwrap());
        let next = migrate::latest(MIGRATIONS) + 1;
        Connection::open(&path)
            .unwrap()
            .execute(
                "INSERT INTO schema_migrations VALUES (?1, 'from a newer server', 0)",
                [next],
            )
            .unwrap();
        let err = SqliteStorage::open(&path).unwrap_err();
        assert!(
            matches!(err, StorageError::SchemaTooNew { found, known }
                if found == next && known == next - 1),
            "{err:?}"
        );
        assert!(err.to_string().contains("newer"), "{err}");
    }

    #[test]
    fn pending_steps_apply_in_order_and_a_failing_one_applies_none() {
        const STEPS: &[migrate::Migration] = &[
            migrate::Migration {
                version: 1,
                name: "v1",
                sql: SCHEMA_V1,
            },
            migrate::Migration {
                version: 2,
                name: "a column",
                sql: "ALTER TABLE devices ADD COLUMN note TEXT",
            },
            migrate::Migration {
                version: 3,
                name: "uses step 2",
                sql: "UPDATE devices SET note = 'x'",
            },
        ];
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn, &STEPS[..1]).unwrap(), 1);
        conn.execute(
            "INSERT INTO devices (dev_id, sessions, ended, has_noti) VALUES ('d', 0, 0, 0)",
            [],
        )
        .unwrap();
        // Step 3 fails before step 2 exists: reordered, nothing applies.
        let swapped = [STEPS[0], STEPS[2], STEPS[1]];
        assert!(migrate(&mut conn, &swapped).is_err());
        let version: u32 = conn
            .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(version, 1);
        assert_eq!(migrate(&mut conn, STEPS).unwrap(), 3);
        let note: String = conn
            .query_row("SELECT note FROM devices", [], |r| r.get(0))
            .unwrap();
        assert_eq!(note, "x");
        // Applied steps are not applied again.
        assert_eq!(migrate(&mut conn, STEPS).unwrap(), 3);
    }
}
