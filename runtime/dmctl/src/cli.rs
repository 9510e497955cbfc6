//! The `dmctl` command line: the demo, the device agent and the reference
//! DM Server. Subcommands and exit statuses follow docs/architecture.md "Command
//! line". It lives in the library so that the end-to-end tests can build
//! the very same entry point as a binary of their own.

#[cfg(feature = "server")]
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use dm_agent::service::{self as agent, AgentOptions};
use dm_agent::Limits;
#[cfg(feature = "server")]
use dm_core::{ClientUri, Command};
#[cfg(feature = "server")]
use dm_server::{self as server, ServerConfig};

/// Exit status when a session was aborted (HTTP error, timeout, bad package).
const EXIT_ABORTED: u8 = 3;
/// Exit status for bad usage or configuration (clap uses it too).
const EXIT_USAGE: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "dmctl",
    version,
    about = "OMA DM 2.0 device agent, reference DM Server and demo"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Start a DM Server and a device on loopback, run one DM Session and
    /// print every package exchanged.
    #[cfg(feature = "server")]
    Demo,
    /// Run the device agent (DM Client).
    // Boxed: its many flags would make every `Cmd` as large.
    Client(Box<ClientArgs>),
    /// Run the reference DM Server.
    #[cfg(feature = "server")]
    Server(Box<ServerArgs>),
    /// Build a DM Notification (Package#0) and send it over UDP, print it
    /// as hex, or decode one.
    #[cfg(feature = "server")]
    Notify(crate::notify::NotifyArgs),
    /// Host one MO plugin dylib for the agent, over stdin/stdout (started
    /// by `dmctl client` for each isolated plugin; not for people).
    #[command(hide = true)]
    PluginHost {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
struct ClientArgs {
    /// Directory holding the device's MO data (created when missing).
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
    /// Factory bootstrap (application/dmmo+json array) applied first.
    #[arg(long, value_name = "FILE")]
    bootstrap: Option<PathBuf>,
    /// DevInfo/DevID (default: derived from the machine, kept in --state).
    #[arg(long, value_name = "ID")]
    dev_id: Option<String>,
    /// One client-initiated session with each server, then exit.
    #[arg(long)]
    once: bool,
    /// Only talk to the server with this SrvID.
    #[arg(long, value_name = "ID")]
    server_id: Option<String>,
    /// Load every MO plugin dylib in DIR at start.
    #[arg(long, value_name = "DIR")]
    plugins: Option<PathBuf>,
    /// Program run for SHOW as `CMD -- URI` (it must accept `--`), only
    /// for an http(s) ServerURI.
    #[arg(long, value_name = "CMD")]
    show_cmd: Option<String>,
    /// Receive DM Notifications (Package#0) as UDP datagrams on ADDR.
    #[arg(long, value_name = "ADDR")]
    notify_udp: Option<String>,
    /// Drop notifications whose TIMESTAMP is further than this from now.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    max_notification_age: u64,
    /// Seconds to wait for each HTTP response.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,
    #[command(flatten)]
    limits: LimitArgs,
    /// Serve the local API for on-device applications (JSON lines, see
    /// `dm_agent::local_api`) on a Unix socket at PATH until stopped:
    /// after the sessions, and beside --notify-udp / --bootstrap-listen.
    /// Not with --once.
    /// A socket left at PATH is replaced; anything else there is a start
    /// error and is left alone.
    #[arg(long, value_name = "PATH", conflicts_with = "once")]
    local_api: Option<PathBuf>,
    /// JSON object binding each app id to the uids that may claim it,
    /// e.g. {"com.example.a": [10023]}; the uid is the peer's credentials.
    /// The socket is then open to every local user (mode 0666) and root
    /// too has only what the file binds. Without it: mode 0600, and the
    /// agent's uid and root claim any app id.
    #[arg(long, value_name = "FILE", requires = "local_api")]
    local_api_apps: Option<PathBuf>,
    /// Local API connections served at once; more are answered 503 and
    /// closed.
    #[arg(long, value_name = "N", requires = "local_api",
          default_value_t = dm_agent::local_api::DEFAULT_MAX_CLIENTS,
          value_parser = clap::value_parser!(u32).range(1..))]
    local_api_max_clients: u32,
    /// PEM file of the roots https:// servers are verified against
    /// (default: the host's certificate store).
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// The device's certificate (PEM or DER): its identity at bootstrap
    /// servers and on the --bootstrap-listen endpoint.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key of --tls-cert (PEM or DER).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Client-initiated bootstrap: GET an application/dmmo+json bootstrap
    /// from this https:// URL first.
    #[arg(long, value_name = "URL")]
    bootstrap_url: Option<String>,
    /// Server-initiated bootstrap: take one over HTTPS on ADDR, only from
    /// a bootstrap server named by an account's Auth/Bootstrap.
    #[arg(long, value_name = "ADDR")]
    bootstrap_listen: Option<String>,
    /// Let sessions, HGET/HPUT/HPOST and SUB notifications use plain
    /// http:// to any host, not only loopback: unencrypted (spec 9.2.2
    /// asks for TLS). Credentials are never sent over http:// either way.
    #[arg(long)]
    allow_plain_http: bool,
    /// Let HGET, HPUT, HPOST, SUB notifications and DEFAULT fetches reach
    /// Data Repositories in this loopback, link-local or private range
    /// (10.0.0.0/8, fd00::/8, one address) or at this host name, whatever
    /// range the DM Server is in. Repeatable.
    #[arg(long, value_name = "CIDR_OR_HOST")]
    repository_allow: Vec<dm_agent::AllowEntry>,
}

/// The agent's limits (docs/architecture.md "Limits"); defaults in
/// `dm_agent::Limits`.
#[derive(clap::Args, Debug)]
struct LimitArgs {
    /// Largest Package#2 taken, in bytes; a larger one ends the session.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().package_bytes)]
    max_package_size: usize,
    /// Most commands in one Package#2; more end the session.
    #[arg(long, value_name = "N", default_value_t = Limits::default().commands_per_package)]
    max_commands: usize,
    /// Package#3 size past which further commands answer 503.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().response_bytes)]
    max_response_size: usize,
    /// Most Package#2s in one session.
    #[arg(long, value_name = "N", default_value_t = Limits::default().packages_per_session)]
    max_packages: usize,
    /// Longest whole session, in seconds.
    #[arg(long, value_name = "SECONDS",
          default_value_t = Limits::default().session_deadline.as_secs())]
    session_deadline: u64,
    /// DEFAULT and SUB registrations one server may hold, each.
    #[arg(long, value_name = "N",
          default_value_t = Limits::default().registrations_per_server)]
    max_registrations: usize,
    /// Instances one server may own.
    #[arg(long, value_name = "N", default_value_t = Limits::default().instances_per_server)]
    max_instances: usize,
    /// Seconds an EXEC an MO started may take to finish; past them its
    /// Generic Alert reports 500.
    #[arg(long, value_name = "SECONDS",
          default_value_t = Limits::default().exec_timeout.as_secs())]
    exec_timeout: u64,
    /// With --once: seconds to wait for the EXECs started in its sessions
    /// to finish (those still running are reported by a later run).
    #[arg(long, value_name = "SECONDS",
          default_value_t = Limits::default().once_exec_wait.as_secs())]
    exec_wait: u64,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits {
            package_bytes: self.max_package_size,
            commands_per_package: self.max_commands,
            response_bytes: self.max_response_size,
            packages_per_session: self.max_packages,
            session_deadline: Duration::from_secs(self.session_deadline),
            registrations_per_server: self.max_registrations,
            instances_per_server: self.max_instances,
            exec_timeout: Duration::from_secs(self.exec_timeout),
            once_exec_wait: Duration::from_secs(self.exec_wait),
        }
    }
}

#[cfg(feature = "server")]
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct ServerArgs {
    #[command(subcommand)]
    command: Option<ServerCmd>,
    /// Address to take DM sessions on, e.g. 127.0.0.1:8080 (path /dm);
    /// the Data Repository (/repo/DEVID/PATH) and SHOW pages (/ui) too.
    // An Option only so that `dmctl server token ...` goes without it.
    #[arg(long, value_name = "ADDR", required = true)]
    listen: Option<SocketAddr>,
    /// Database keeping devices, queues, results and repository data
    /// across restarts: a SQLite file (PATH), or a PostgreSQL database
    /// (postgres://USER[:PASSWORD]@HOST[:PORT]/DBNAME, with --secrets-key).
    /// Default: in memory.
    #[arg(long, value_name = "PATH|URL")]
    db: Option<PathBuf>,
    /// Key sealing the notification secrets in --db: 32 raw bytes or 64
    /// hex digits (`head -c 32 /dev/urandom > FILE`). Default for a SQLite
    /// PATH: PATH.key, made at first start; required with a PostgreSQL URL.
    #[arg(long, value_name = "FILE", requires = "db")]
    secrets_key: Option<PathBuf>,
    /// Address of the admin API (HTTP + JSON, bearer tokens), loopback
    /// unless --admin-public. Without it, each session only reads DevInfo.
    #[arg(long, value_name = "ADDR")]
    admin: Option<SocketAddr>,
    /// Let --admin be a non-loopback address: its tokens then cross the
    /// network, in clear unless --admin-tls.
    #[arg(long, requires = "admin")]
    admin_public: bool,
    /// Serve the admin API over TLS with --tls-cert's certificate (bearer
    /// tokens still required; no client certificates asked).
    #[arg(long, requires_all = ["admin", "tls_cert"])]
    admin_tls: bool,
    /// A host name the admin API answers to (its Host header) besides its
    /// address, loopback and `localhost`. Repeatable.
    #[arg(long = "admin-host", value_name = "NAME", requires = "admin")]
    admin_hosts: Vec<String>,
    #[command(flatten)]
    tls: ServerTlsArgs,
    #[command(flatten)]
    bootstrap: ServerBootstrapArgs,
    // Boxed: `Cmd`'s variants stay of a size (clippy::large_enum_variant).
    #[cfg(feature = "psk")]
    #[command(flatten)]
    psk: Box<ServerPskArgs>,
    #[command(flatten)]
    auth: ServerAuthArgs,
    #[command(flatten)]
    limits: ServerLimitArgs,
}

/// What keeps the server bounded under abuse (defaults: dm_server's named
/// constants, e.g. [`server::MAX_CONNECTIONS`]).
#[cfg(feature = "server")]
#[derive(clap::Args, Debug)]
struct ServerLimitArgs {
    /// Connections served at once on each listener; past it a new
    /// connection is closed as soon as it is accepted.
    #[arg(long, value_name = "N", default_value_t = server::MAX_CONNECTIONS,
          value_parser = at_least_one)]
    max_connections: usize,
    /// Seconds a connection has to send a complete request head, from
    /// when it opens or its previous response ends (so also the idle
    /// keep-alive timeout).
    #[arg(long, value_name = "SECS", default_value_t = server::HEADER_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout: u64,
    /// Seconds a request has to send its whole body.
    #[arg(long, value_name = "SECS", default_value_t = server::BODY_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    body_timeout: u64,
    /// Body bytes one device may keep in the Data Repository.
    #[arg(long, value_name = "BYTES", default_value_t = server::REPO_QUOTA_BYTES)]
    repo_quota: u64,
    /// Resources one device may keep in the Data Repository.
    #[arg(long, value_name = "N", default_value_t = server::REPO_QUOTA_ENTRIES)]
    repo_quota_entries: u64,
}

/// A connection cap of 0 would refuse everyone.
#[cfg(feature = "server")]
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{s}` is not a number of 1 or more")),
    }
}

#[cfg(feature = "server")]
impl ServerLimitArgs {
    fn limits(&self) -> server::Limits {
        server::Limits {
            max_connections: self.max_connections,
            header_timeout: std::time::Duration::from_secs(self.header_timeout),
            body_timeout: std::time::Duration::from_secs(self.body_timeout),
            repo_quota_bytes: self.repo_quota,
            repo_quota_entries: self.repo_quota_entries,
            ..server::Limits::default()
        }
    }
}

/// The bootstrap server (spec 8.3, 8.4) and the URLs devices are given.
#[cfg(feature = "server")]
#[derive(clap::Args, Debug)]
struct ServerBootstrapArgs {
    /// The DM listener's URL as devices reach it (e.g.
    /// https://dm.example.com:8443): the SrvURI a bootstrap provisions
    /// (with /dm) and the base of repository and SHOW URLs. Default: the
    /// scheme and the bound --listen address.
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Run the bootstrap server on ADDR (HTTPS, mutual TLS, with
    /// --tls-cert): devices with a profile (PUT /api/devices/ID/bootstrap)
    /// fetch their account at https://ADDR/bootstrap, and the admin API
    /// can push it to them.
    #[arg(long, value_name = "ADDR", requires = "tls_cert")]
    bootstrap_listen: Option<SocketAddr>,
    /// The bootstrap server's URL as devices reach it (their
    /// Auth/Bootstrap/ServerURI). Default: https:// and the bound
    /// --bootstrap-listen address.
    #[arg(long, value_name = "URL", requires = "bootstrap_listen")]
    bootstrap_public_url: Option<String>,
}

/// TLS on the DM listener (spec 9.2).
#[cfg(feature = "server")]
#[derive(clap::Args, Debug)]
struct ServerTlsArgs {
    /// Serve --listen over TLS 1.2/1.3 only (DM sessions, /repo and /ui
    /// alike; no plain HTTP there) with this PEM certificate chain, the
    /// server's own certificate first.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (PKCS#8, SEC1 or PKCS#1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Ask TLS clients for a certificate and verify it against the CA
    /// certificates (PEM) in FILE.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    client_ca: Option<PathBuf>,
    /// With --client-ca: `required` (default) refuses a client without a
    /// certificate at the handshake; `optional` serves it too.
    #[arg(long, value_name = "MODE", value_enum, requires = "client_ca")]
    client_cert: Option<ClientCertMode>,
}

/// PSK-TLS on a second DM listener (spec 9.2.2), `psk` feature.
#[cfg(feature = "psk")]
#[derive(clap::Args, Debug)]
struct ServerPskArgs {
    /// Also take DM sessions (and /repo, /ui) over PSK-TLS (TLS 1.2, the
    /// PSK suites of spec 9.2.2) on ADDR, with the keys of --psk-file.
    #[arg(long, value_name = "ADDR", requires = "psk_file")]
    psk_listen: Option<SocketAddr>,
    /// The pre-shared keys, one device a line: `DevID identity hexkey`;
    /// readable by its owner only (chmod 600).
    #[arg(long, value_name = "FILE", requires = "psk_listen")]
    psk_file: Option<PathBuf>,
}

#[cfg(feature = "psk")]
impl ServerPskArgs {
    /// The PSK listener's settings, read and checked; none without
    /// --psk-listen.
    fn config(&self) -> Result<Option<server::PskConfig>, server::PskError> {
        match (self.psk_listen, &self.psk_file) {
            (Some(listen), Some(file)) => server::PskConfig::from_file(listen, file).map(Some),
            _ => Ok(None),
        }
    }
}

/// Device authentication on the DM endpoint (spec 9.2.1).
#[cfg(feature = "server")]
#[derive(clap::Args, Debug)]
struct ServerAuthArgs {
    /// A device the server has no credentials for: `refuse` it (401;
    /// default with --tls-cert) or `flag` it, serving it and marking its
    /// record unauthenticated (default without TLS).
    #[arg(long, value_name = "POLICY", value_enum)]
    enroll: Option<EnrollMode>,
    /// HTTP authentication schemes taken from devices with a password,
    /// comma-separated: `basic` (over TLS only) and `digest`.
    #[arg(
        long,
        value_name = "SCHEMES",
        value_enum,
        value_delimiter = ',',
        default_value = "basic,digest"
    )]
    http_auth: Vec<HttpAuthScheme>,
}

#[cfg(feature = "server")]
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum EnrollMode {
    Refuse,
    Flag,
}

#[cfg(feature = "server")]
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum HttpAuthScheme {
    Basic,
    Digest,
}

#[cfg(feature = "server")]
impl ServerAuthArgs {
    fn enroll(&self) -> Option<server::EnrollPolicy> {
        self.enroll.map(|m| match m {
            EnrollMode::Refuse => server::EnrollPolicy::Refuse,
            EnrollMode::Flag => server::EnrollPolicy::Flag,
        })
    }

    fn http_auth(&self) -> server::HttpAuth {
        server::HttpAuth {
            basic: self.http_auth.contains(&HttpAuthScheme::Basic),
            digest: self.http_auth.contains(&HttpAuthScheme::Digest),
        }
    }
}

#[cfg(feature = "server")]
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ClientCertMode {
    Required,
    Optional,
}

#[cfg(feature = "server")]
impl ServerTlsArgs {
    /// The TLS settings, read and checked; none without --tls-cert.
    fn config(&self) -> Result<Option<server::TlsConfig>, server::TlsError> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let mode = match self.client_cert {
            Some(ClientCertMode::Optional) => server::ClientAuth::Optional,
            Some(ClientCertMode::Required) | None => server::ClientAuth::Required,
        };
        let client_ca = self.client_ca.as_deref().map(|ca| (ca, mode));
        server::TlsConfig::from_files(cert, key, client_ca).map(Some)
    }
}

#[cfg(feature = "server")]
#[derive(Subcommand, Debug)]
enum ServerCmd {
    /// Bearer tokens of the admin API, in the server's database.
    #[command(subcommand)]
    Token(crate::admin::TokenCmd),
}

/// Runs `dmctl` with the process's arguments.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    // No async runtime: the host only answers the agent, one call at a time.
    if let Cmd::PluginHost { file } = &cli.command {
        let status = dm_agent::plugins::host_main(file);
        return ExitCode::from(u8::try_from(status).unwrap_or(1));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dmctl: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match cli.command {
            #[cfg(feature = "server")]
            Cmd::Demo => demo().await,
            Cmd::Client(args) => client(*args).await,
            #[cfg(feature = "server")]
            Cmd::Server(mut args) => match args.command.take() {
                Some(ServerCmd::Token(cmd)) => crate::admin::run_token(cmd),
                None => serve(*args).await,
            },
            #[cfg(feature = "server")]
            Cmd::Notify(args) => crate::notify::run(args).await,
            Cmd::PluginHost { .. } => ExitCode::FAILURE,
        }
    })
}

/// The libraries log through `tracing`; dmctl writes each event to stderr
/// as the bare message ("dmctl client: ..."), as it always has, so that
/// scripts reading stderr keep working.
///
/// The level is `RUST_LOG` when it names one (`error`, `warn`, `info`,
/// `debug`, `trace`, `off`), else `info`. Per-target directives are not
/// read: their parser (regex) would cost the device binary more than the
/// rest of the logging.
fn init_logging() {
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| {
            v.trim()
                .parse::<tracing_subscriber::filter::LevelFilter>()
                .ok()
        })
        .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .without_time()
        .with_target(false)
        .with_level(false)
        .finish();
    // Only fails when a subscriber is already set (a test harness that
    // calls `main` twice): the first one keeps logging.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

#[cfg(feature = "server")]
async fn demo() -> ExitCode {
    let mut out = std::io::stdout();
    match crate::demo::run(&mut out).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dmctl demo: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn client(args: ClientArgs) -> ExitCode {
    let plain_http = if args.allow_plain_http {
        tracing::warn!(
            "dmctl client: --allow-plain-http: sessions and data to http:// servers go out \
             unencrypted (spec 9.2.2 asks for TLS); credentials are still never sent over http://"
        );
        dm_agent::PlainHttp::Anywhere
    } else {
        dm_agent::PlainHttp::LoopbackOnly
    };
    // The local API's configuration is checked before any session: an
    // apps file that cannot be read, or a file at the socket's path.
    let local_api = match local_api_config(&args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("dmctl client: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let opts = AgentOptions {
        state: args.state,
        bootstrap: args.bootstrap,
        dev_id: args.dev_id,
        server_id: args.server_id,
        plugins: args.plugins,
        plugin_options: dm_agent::plugins::PluginOptions::default(),
        show_cmd: args.show_cmd,
        timeout: Duration::from_secs(args.timeout),
        max_notification_age: args.max_notification_age,
        limits: args.limits.limits(),
        security: agent::SecurityOptions {
            ca: args.ca,
            tls_cert: args.tls_cert,
            tls_key: args.tls_key,
            bootstrap_url: args.bootstrap_url,
            bootstrap_listen: args.bootstrap_listen,
            plain_http,
            repository_allow: args.repository_allow,
        },
    };
    // --once with a listener (--notify-udp, --bootstrap-listen): wait for
    // the first valid notification or applied bootstrap and run its
    // sessions. Without --once: a client-initiated session with each
    // server first, then serve the listeners until stopped; without a
    // listener there is nothing more to wait for.
    let notify = args.notify_udp.as_deref();
    let bootstrap = opts.security.bootstrap_listen.clone();
    let listening = notify.is_some() || bootstrap.is_some();
    let result = match (listening, args.once) {
        (true, true) => {
            agent::run_listeners(&opts, notify, bootstrap.as_deref(), None, true, None).await
        }
        (true, false) => match agent::run_once(&opts, None).await {
            Ok(outcomes) => {
                outcomes.iter().for_each(agent::report);
                let local = local_api.as_ref();
                agent::run_listeners(&opts, notify, bootstrap.as_deref(), local, false, None).await
            }
            // A device waiting for its first server-initiated bootstrap
            // has no account to open a session with yet.
            Err(agent::AgentError::NoAccounts) if notify.is_none() => {
                let local = local_api.as_ref();
                agent::run_listeners(&opts, None, bootstrap.as_deref(), local, false, None).await
            }
            Err(e) => Err(e),
        },
        (false, _) => agent::run_once(&opts, None).await,
    };
    #[cfg(unix)]
    if let (false, Some(config), Ok(outcomes)) = (listening, &local_api, &result) {
        outcomes.iter().for_each(agent::report);
        return match agent::run_local_api(&opts, config).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("dmctl client: {e}");
                ExitCode::from(EXIT_USAGE)
            }
        };
    }
    let outcomes = match result {
        Ok(o) => o,
        Err(e) => {
            eprintln!("dmctl client: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    outcomes.iter().for_each(agent::report);
    if outcomes.iter().any(|o| o.result.is_err()) {
        ExitCode::from(EXIT_ABORTED)
    } else {
        ExitCode::SUCCESS
    }
}

/// `--local-api PATH` with its apps file and client cap, checked.
fn local_api_config(
    args: &ClientArgs,
) -> Result<Option<dm_agent::local_api::LocalApiConfig>, Box<dyn std::error::Error>> {
    use dm_agent::local_api::{self, AppBindings, LocalApiConfig};
    let Some(path) = &args.local_api else {
        return Ok(None);
    };
    local_api::check_socket_path(path)?;
    let apps = match &args.local_api_apps {
        Some(file) => AppBindings::from_file(file)?,
        None => AppBindings::default(),
    };
    Ok(Some(LocalApiConfig {
        apps,
        max_clients: args.local_api_max_clients,
        ..LocalApiConfig::new(path)
    }))
}

/// Opens `--db`: a PostgreSQL URL with the secrets key in `key_file`
/// (required), or a SQLite file with it in `key_file` or in `<db>.key`
/// (made at first start, and said so: it sits beside the database).
#[cfg(feature = "server")]
fn open_db(
    db: &server::Database,
    key_file: Option<&std::path::Path>,
) -> Result<std::sync::Arc<dyn server::Storage>, server::StorageError> {
    let path = match db {
        server::Database::Postgres(url) => {
            let storage = server::PostgresStorage::connect(url, key_file)?;
            return Ok(std::sync::Arc::new(storage));
        }
        server::Database::Sqlite(path) => path,
    };
    let (storage, made) = server::SqliteStorage::open_with_key_file(path, key_file)?;
    if let Some(file) = made {
        eprintln!(
            "dmctl server: made the secrets key {} beside the database: copying the \
             database alone does not expose the notification secrets; to keep them \
             apart, move it and give --secrets-key FILE",
            file.display()
        );
    }
    Ok(std::sync::Arc::new(storage))
}

#[cfg(feature = "server")]
async fn serve(args: ServerArgs) -> ExitCode {
    // Checked before anything is opened or listens: a bad file is a start error.
    let tls = match args.tls.config() {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("dmctl server: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    #[cfg(feature = "psk")]
    let psk = match args.psk.config() {
        Ok(psk) => psk,
        Err(e) => {
            eprintln!("dmctl server: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    #[cfg(not(feature = "psk"))]
    let psk = None;
    let Some(listen) = args.listen else {
        eprintln!("dmctl server: --listen ADDR is required");
        return ExitCode::from(EXIT_USAGE);
    };
    if let Err(e) = crate::admin::check_admin_addr(args.admin, args.admin_public) {
        eprintln!("dmctl server: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let devinfo: Option<ClientUri> = "urn:oma:mo:oma-dm-devinfo:1.2//".parse().ok();
    let config = ServerConfig {
        listen,
        // With an admin API the operator decides what each session does.
        default_commands: match args.admin {
            Some(_) => Vec::new(),
            None => devinfo
                .map(|client_uri| Command::Get { client_uri })
                .into_iter()
                .collect(),
        },
        log_errors: true,
    };
    let storage: Option<std::sync::Arc<dyn server::Storage>> = match &args.db {
        Some(arg) => {
            let db = server::Database::from_arg(arg);
            match open_db(&db, args.secrets_key.as_deref()) {
                Ok(s) => Some(s),
                Err(e) => {
                    // `describe`: a URL's password stays out of the message.
                    eprintln!("dmctl server: cannot open {}: {e}", db.describe());
                    return ExitCode::from(EXIT_USAGE);
                }
            }
        }
        None => None,
    };
    let client_auth = tls.as_ref().and_then(server::TlsConfig::client_auth);
    let args_admin_tls = args.admin_tls;
    let options = server::ServerOptions {
        storage,
        admin: args.admin,
        admin_hosts: args.admin_hosts,
        admin_tls: args_admin_tls,
        tls,
        psk,
        enroll: args.auth.enroll(),
        http_auth: args.auth.http_auth(),
        limits: args.limits.limits(),
        public_url: args.bootstrap.public_url,
        bootstrap: args
            .bootstrap
            .bootstrap_listen
            .map(|listen| server::BootstrapOptions {
                listen,
                public_url: args.bootstrap.bootstrap_public_url,
            }),
    };
    let handle = match server::start_with(config, options).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("dmctl server: cannot listen on {listen}: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if handle.admin_addr().is_some() {
        // Shown once, here only; the storage keeps its hash.
        match crate::admin::first_token(handle.storage().as_ref()) {
            Ok(Some(token)) => {
                eprintln!("dmctl server: admin token (operator, shown once): {token}")
            }
            Ok(None) => {}
            Err(e) => {
                eprintln!("dmctl server: cannot make the first admin token: {e}");
                handle.shutdown().await;
                return ExitCode::FAILURE;
            }
        }
    }
    eprintln!("dmctl server: DM sessions at {}", handle.dm_url());
    if let Some(url) = handle.bootstrap_url() {
        eprintln!("dmctl server: bootstrap server at {url} (mutual TLS)");
    }
    if let Some(psk) = handle.psk_addr() {
        eprintln!("dmctl server: PSK-TLS DM sessions at https://{psk}/dm");
    }
    match client_auth {
        Some(server::ClientAuth::Required) => {
            eprintln!("dmctl server: TLS clients must present a certificate from --client-ca")
        }
        Some(server::ClientAuth::Optional) => eprintln!(
            "dmctl server: TLS client certificates from --client-ca verified when presented"
        ),
        None => {}
    }
    if let Some(admin) = handle.admin_addr() {
        let scheme = if args_admin_tls { "https" } else { "http" };
        eprintln!("dmctl server: admin API at {scheme}://{admin}/api/devices");
    }
    let _ = tokio::signal::ctrl_c().await;
    handle.shutdown().await;
    ExitCode::SUCCESS
}
