//! The reference OMA DM 2.0 DM Server (spec 5.2, server side; Appendix
//! B.2). It answers Package#1 and Package#3 with Package#2 built from a
//! per-device command queue, records what each device reports, serves a
//! Data Repository and the SHOW Web Server Component on the same address
//! (over TLS only when given a [`TlsConfig`], spec 9.2),
//! sends DM Notifications, and offers an admin API (HTTP + JSON) on its
//! own address. Start one with [`start`] or [`start_with`].
//!
//! Everything it knows lives behind [`Storage`]: [`MemoryStorage`] for
//! tests, [`SqliteStorage`] for `dmctl server --db PATH`, [`PostgresStorage`]
//! for `dmctl server --db postgres://...`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use dm_core::multipart::Part;
use dm_core::notification::ConnectionType;
use dm_core::{Alert, Command, MoInfo, Status};

mod admin;
mod auth;
mod bootstrap;
mod http;
mod limits;
mod notify;
mod psk;
mod registrations;
mod repository;
mod server;
mod session;
mod session_log;
mod show;
mod signing;
mod state;
mod storage;
mod tls;

pub use admin::token::{create_admin_token, AdminTokenError, TOKEN_PREFIX};
pub use auth::{
    certificate_sha256, parse_fingerprint, CredentialError, EnrollPolicy, HttpAuth, MAX_NONCES,
    NONCE_LIFETIME, REALM,
};
pub use bootstrap::{BootstrapOptions, BOOTSTRAP_PATH, PUSH_TIMEOUT};
pub use limits::{
    Limits, ACCEPT_BACKOFF, BODY_BUDGET, BODY_TIMEOUT, ERROR_HISTORY, HEADER_TIMEOUT, LOG_EVERY,
    MAX_CONNECTIONS, MAX_LOGGED_INPUT, REPO_QUOTA_BYTES, REPO_QUOTA_ENTRIES,
};
pub use notify::send_notification;
pub use psk::{PskConfig, PskDevId};
#[cfg(feature = "psk")]
pub use psk::{
    PskError, MAX_PSK_DEV_ID, MAX_PSK_IDENTITY, MAX_PSK_KEY, MAX_PSK_LINES, MIN_PSK_KEY,
    PSK_CIPHERS,
};
pub use server::{start, start_with, ServerHandle};
pub use session_log::MAX_SESSIONS_COUNTED;
/// A PostgreSQL for tests: `DM_TEST_POSTGRES_URL` or a throwaway cluster.
#[cfg(feature = "pg-test")]
pub use storage::pg_test;
pub use storage::{
    AdminRole, AdminToken, DeviceRow, Entry, EntryState, MemoryStorage, NotificationConfig,
    Registration, RegistrationKind, Resource, SqliteStorage, Storage, StorageError, StoredAlert,
    UiSession,
};
pub use storage::{BootstrapProfile, Credentials, PasswordHashes};
pub use storage::{Database, PostgresStorage, POSTGRES_CONNECTIONS};
pub use tls::{ClientAuth, PeerCertificates, TlsConfig, TlsError, HANDSHAKE_TIMEOUT};

/// Largest request body the server reads (a Package#1/#3, an admin
/// request, a repository upload), 16 MiB; past it the request is answered
/// 413 without being read further.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

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
    /// Address of the admin API (none when not given). Every request
    /// needs a bearer token made by [`create_admin_token`]; without any,
    /// every request is refused.
    pub admin: Option<SocketAddr>,
    /// Serve the admin API over TLS with `tls`'s certificate (no client
    /// certificates: its callers hold bearer tokens), so that a token
    /// crossing a network is never in clear.
    pub admin_tls: bool,
    /// Host names the admin API answers to besides its own address, a
    /// loopback address and `localhost` (the Host header; no other name is
    /// taken, against DNS rebinding).
    pub admin_hosts: Vec<String>,
    /// Serve the DM listener (DM endpoint, Data Repository, SHOW pages)
    /// over TLS only (spec 9.2); none: plain HTTP.
    pub tls: Option<TlsConfig>,
    /// A second DM listener speaking PSK-TLS (spec 9.2.2), with the `psk`
    /// feature; without it no [`PskConfig`] can be made.
    pub psk: Option<PskConfig>,
    /// A device without credentials (spec 9.2.1): refused or admitted
    /// and flagged; none: refused with `tls`, flagged without.
    pub enroll: Option<EnrollPolicy>,
    /// The HTTP authentication schemes the DM endpoint takes (Basic only
    /// ever over TLS).
    pub http_auth: HttpAuth,
    /// Connection cap, timeouts, error history, repository quotas.
    pub limits: Limits,
    /// The DM listener's URL as devices reach it (`https://dm.example`),
    /// base of the SrvURI a bootstrap provisions and of the repository and
    /// SHOW URLs; none: the scheme and the bound address.
    pub public_url: Option<String>,
    /// Run the bootstrap server (spec 8.3, 8.4): needs `tls`, whose
    /// certificate it presents.
    pub bootstrap: Option<BootstrapOptions>,
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
    /// Admitted without credentials (`--enroll flag`, spec 9.2.1): its
    /// DevID is only what it claimed.
    pub unauthenticated: bool,
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

/// POSIX seconds now; 0 if the clock is before 1970.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
