//! Load test of the reference DM Server: `dmctl server` (SQLite storage,
//! admin API) as its own process on loopback, 1,000 simulated devices
//! (the runtime's DM Client, standard MOs, one DMAcc account each) each
//! running one short session (Package#1, a Package#2 with one GET queued
//! through the admin API, Package#3, END), 100 at a time; then each a
//! second one (a new device process: a new connection, the server's state
//! of the first kept). Prints sessions per second, the 50th and 99th
//! percentile session time and the server's peak resident memory (VmHWM:
//! once the credentials and commands are set, then of each round alone);
//! fails on any failed session or rejected request.
//!
//! One server per mode, each from a new database (spec 9.2.1):
//! - `plain`: http://, no credentials (the server flags the devices);
//! - `basic`: TLS, each device's `Auth/Trsp` a user and password set
//!   through the admin API, HTTP Basic on every package;
//! - `digest`: the same over TLS with `--http-auth digest` (the device's
//!   first Basic is refused, it answers the Digest challenge);
//! - `cert`: TLS, each device its own client certificate, bound to its
//!   DevID through the admin API (`--client-ca`, `--client-cert required`);
//! - `bootstrap`: as `basic`, but no password is set by the operator: each
//!   device has a bootstrap profile (admin API) binding its own client
//!   certificate, fetches its DMAcc account from the server's bootstrap
//!   listener over mutual TLS (spec 8.3; the agent's `bootstrap::fetch` and
//!   `bootstrap::apply`), and its sessions use the generated password it
//!   got (HTTP Basic). The 1,000 fetches, 100 at a time, are timed apart.
//!
//! The certificates are made here (rcgen); the devices trust only the
//! bench's CA. Bounded: 2 x 1,000 sessions, 120 s at most per round.
//!
//! Run: `cargo bench -p dmctl --bench server_load` (every mode), or name
//! modes: `cargo bench -p dmctl --bench server_load -- plain basic` (a
//! mode named twice runs twice, each run on its own new database).
//! `DM_LOAD_DMCTL=<path>` runs another `dmctl` build as the server (to
//! compare two builds with the same bench).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use dm_agent::bootstrap::{self, Source};
use dm_agent::{standard_registry, Device, DeviceConfig, Identity, Initiation, TrustAnchors};
use dm_core::{NodeData, Value};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

const DEVICES: usize = 1_000;
const CONCURRENCY: usize = 100;
const LIMIT: Duration = Duration::from_secs(120);
/// Admin requests in flight while setting credentials: each password is
/// hashed with Argon2id on the server, so more would only queue.
const SETUP_CONCURRENCY: usize = 4;
/// The DMAcc SrvID of the bench's server on every device.
const SERVER_ID: &str = "load";

fn dev_id(i: usize) -> String {
    format!("IMEI:{:015}", 350_000_000_000_000u64 + i as u64)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// VmHWM of a process, in KiB.
fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resets a process's VmHWM to its VmRSS (Linux 4.0+), so that the next
/// reading is the peak of what follows.
fn reset_peak(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    Basic,
    Digest,
    Certificate,
    Bootstrap,
}

impl Mode {
    const ALL: [Mode; 5] = [
        Mode::Plain,
        Mode::Basic,
        Mode::Digest,
        Mode::Certificate,
        Mode::Bootstrap,
    ];

    fn name(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::Basic => "basic",
            Mode::Digest => "digest",
            Mode::Certificate => "cert",
            Mode::Bootstrap => "bootstrap",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Mode::Plain => "plain HTTP, no credentials",
            Mode::Basic => "TLS + HTTP Basic",
            Mode::Digest => "TLS + HTTP Digest",
            Mode::Certificate => "TLS + client certificate",
            Mode::Bootstrap => "TLS + bootstrapped Basic",
        }
    }
}

/// A certificate with its key, as PEM, and the certificate's DER.
struct Issued {
    cert_pem: String,
    cert_der: Vec<u8>,
    key_pem: String,
}

/// A certificate authority made for the run.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let mut params =
            CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("{e}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap_or_else(|e| panic!("{e}"));
        Ca { cert, key }
    }

    /// A certificate for `name` (a DNS name or an IP address).
    fn issue(&self, name: &str) -> Issued {
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let mut params =
            CertificateParams::new(vec![name.to_owned()]).unwrap_or_else(|e| panic!("{e}"));
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .unwrap_or_else(|e| panic!("{e}"));
        Issued {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// The run's PKI, as the server's files and the devices' trust anchors.
struct Pki {
    dir: PathBuf,
    client_ca: Ca,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_ca_file: PathBuf,
    trust: TrustAnchors,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
            p
        };
        let ca = Ca::new("load bench server CA");
        let client_ca = Ca::new("load bench device CA");
        let server = ca.issue("127.0.0.1");
        let ca_file = write("ca.pem", &ca.cert.pem());
        Pki {
            dir: dir.to_owned(),
            server_cert: write(
                "server.crt",
                &format!("{}{}", server.cert_pem, ca.cert.pem()),
            ),
            server_key: write("server.key", &server.key_pem),
            client_ca_file: write("clients.pem", &client_ca.cert.pem()),
            trust: TrustAnchors::from_pem_file(&ca_file).unwrap_or_else(|e| panic!("{e}")),
            client_ca,
        }
    }
}

/// The `dmctl server` of one mode, its URLs and operator token.
struct Server {
    child: Child,
    dm_url: String,
    /// `https://ADDR/bootstrap`, in the bootstrap mode.
    bootstrap_url: Option<String>,
    admin: String,
    token: String,
    /// Requests the server rejected, but for those the mode expects.
    rejected: Arc<AtomicUsize>,
    /// The rejections the mode expects (Digest: the device's first Basic).
    expected: Arc<AtomicUsize>,
}

impl Server {
    /// The `n`th run of the bench (each its own new database: a mode
    /// named twice runs twice).
    fn start(mode: Mode, pki: &Pki, n: usize) -> Server {
        let dmctl =
            std::env::var_os("DM_LOAD_DMCTL").unwrap_or_else(|| env!("CARGO_BIN_EXE_dmctl").into());
        let mut cmd = Process::new(dmctl);
        cmd.args(["server", "--listen", "127.0.0.1:0"])
            .args(["--admin", "127.0.0.1:0", "--db"])
            .arg(pki.dir.join(format!("{}-{n}.sqlite", mode.name())));
        if mode != Mode::Plain {
            cmd.arg("--tls-cert")
                .arg(&pki.server_cert)
                .arg("--tls-key")
                .arg(&pki.server_key)
                .args(["--enroll", "refuse"]);
        }
        match mode {
            Mode::Plain => {}
            Mode::Basic => {
                cmd.args(["--http-auth", "basic"]);
            }
            Mode::Bootstrap => {
                cmd.args(["--http-auth", "basic"])
                    .args(["--bootstrap-listen", "127.0.0.1:0"]);
            }
            Mode::Digest => {
                cmd.args(["--http-auth", "digest"]);
            }
            Mode::Certificate => {
                cmd.arg("--client-ca")
                    .arg(&pki.client_ca_file)
                    .args(["--client-cert", "required"]);
            }
        }
        let mut child = cmd
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
        let mut lines = std::io::BufReader::new(stderr).lines();
        let (mut dm_url, mut admin, mut token) = (None, None, None);
        let mut bootstrap_url = None;
        while dm_url.is_none()
            || admin.is_none()
            || token.is_none()
            || (mode == Mode::Bootstrap && bootstrap_url.is_none())
        {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("server exited"))
                .unwrap_or_else(|e| panic!("{e}"));
            if let Some(u) = line.strip_prefix("dmctl server: DM sessions at ") {
                dm_url = Some(u.trim().to_owned());
            }
            if let Some(u) = line.strip_prefix("dmctl server: bootstrap server at ") {
                bootstrap_url = Some(u.trim().trim_end_matches("(mutual TLS)").trim().to_owned());
            }
            if let Some(u) = line.strip_prefix("dmctl server: admin API at ") {
                admin = Some(u.trim().trim_end_matches("/api/devices").to_owned());
            }
            // The operator token a start on a new database makes.
            if let Some(t) = line.strip_prefix("dmctl server: admin token (operator, shown once): ")
            {
                token = Some(format!("Bearer {}", t.trim()));
            }
        }
        // Keep the pipe drained; rejected requests are logged there as
        // `dm-server: <status> <reason>`.
        let rejected = Arc::new(AtomicUsize::new(0));
        let expected = Arc::new(AtomicUsize::new(0));
        let (r, x) = (rejected.clone(), expected.clone());
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let Some(rest) = line.strip_prefix("dm-server: ") else {
                    continue;
                };
                if !rest.starts_with(['4', '5']) {
                    continue; // "credentials of ... set" and the like
                }
                if mode == Mode::Digest && rest.ends_with("HTTP Basic is not accepted") {
                    x.fetch_add(1, Ordering::Relaxed);
                } else if r.fetch_add(1, Ordering::Relaxed) < 10 {
                    eprintln!("[server] {line}");
                }
            }
        });
        Server {
            child,
            dm_url: dm_url.unwrap_or_default(),
            bootstrap_url,
            admin: admin.unwrap_or_default(),
            token: token.unwrap_or_default(),
            rejected,
            expected,
        }
    }
}

/// What goes into one device's `Auth/Trsp` (and the server's record).
enum Trsp {
    None,
    Password { user: String, password: String },
    Certificate(Issued),
}

impl Trsp {
    fn of(mode: Mode, i: usize, pki: &Pki) -> Trsp {
        match mode {
            Mode::Plain => Trsp::None,
            Mode::Basic | Mode::Digest => Trsp::Password {
                user: format!("dev{i}"),
                password: format!("load-bench-password-{i}"),
            },
            // The bootstrap mode's factory certificate, which asks for the
            // account; the server needs no CA for it, its profile pins it.
            Mode::Certificate | Mode::Bootstrap => {
                Trsp::Certificate(pki.client_ca.issue(&format!("dev{i}.load")))
            }
        }
    }

    /// The `Auth/Trsp` the bootstrap gave the account `SERVER_ID` of
    /// `device` (user and generated password).
    fn bootstrapped(device: &Device) -> Trsp {
        let account = device
            .accounts()
            .into_iter()
            .find(|a| a.server_id == SERVER_ID)
            .unwrap_or_else(|| panic!("no account {SERVER_ID} after the bootstrap"));
        let registry = device.registry();
        let mo = registry
            .find(dm_agent::DMACC_MOID, &account.miid)
            .and_then(|i| registry.instance(i))
            .unwrap_or_else(|| panic!("no DMAcc instance {}", account.miid))
            .mo();
        let text = |leaf: &str| match mo.get(&["Auth", "Trsp", leaf]) {
            Ok(NodeData::Leaf(Value::Bin(b) | Value::B64(b))) => {
                String::from_utf8(b).unwrap_or_else(|e| panic!("{e}"))
            }
            other => panic!("Auth/Trsp/{leaf}: {other:?}"),
        };
        Trsp::Password {
            user: text("Data"),
            password: text("Secret"),
        }
    }

    /// The body of `PUT /api/devices/{dev}/credentials` (the bootstrap
    /// mode: of `PUT /api/devices/{dev}/bootstrap`).
    fn admin_body(&self, mode: Mode) -> Option<serde_json::Value> {
        match self {
            Trsp::Certificate(id) if mode == Mode::Bootstrap => Some(serde_json::json!({
                "server_id": SERVER_ID,
                "certificate_sha256": dm_core::notification::hex(
                    &dm_server::certificate_sha256(&id.cert_der)
                ),
            })),
            Trsp::None => None,
            Trsp::Password { user, password } => {
                Some(serde_json::json!({ "user": user, "password": password }))
            }
            Trsp::Certificate(id) => Some(serde_json::json!({
                "certificate_sha256": dm_core::notification::hex(
                    &dm_server::certificate_sha256(&id.cert_der)
                ),
            })),
        }
    }

    /// The account's `Auth` node (spec 12.2; our encoding of `Trsp` is
    /// `dm_agent::TransportAuth`'s).
    fn dmacc_auth(&self) -> serde_json::Value {
        let trsp = match self {
            Trsp::None => return serde_json::json!({}),
            Trsp::Password { user, password } => serde_json::json!({
                "Data": b64(user.as_bytes()), "Secret": b64(password.as_bytes()),
            }),
            Trsp::Certificate(id) => serde_json::json!({
                "Data": b64(id.cert_pem.as_bytes()), "Secret": b64(id.key_pem.as_bytes()),
            }),
        };
        serde_json::json!({ "Trsp": trsp })
    }
}

/// A device with one DMAcc account for `url`, as a factory bootstrap
/// makes it, trusting only the bench's CA.
fn device(i: usize, url: &str, trsp: &Trsp, trust: &TrustAnchors) -> Device {
    let id = dev_id(i);
    let mut config = DeviceConfig::new(&id);
    config.trust = trust.clone();
    let mut device = Device::new(config, standard_registry(&id));
    let item = serde_json::json!([{
        "ClientURI": format!("urn:oma:mo:oma-dm-dmacc:1.2/{SERVER_ID}/"),
        "MOData": { SERVER_ID: {
            "SrvID": SERVER_ID, "SrvURI": url, "Name": SERVER_ID,
            "Perm": { "p0": { "MOID": "*" } },
            "Auth": trsp.dmacc_auth(),
        } }
    }]);
    bootstrap::apply(&mut device, item.to_string().as_bytes(), Source::Factory)
        .unwrap_or_else(|e| panic!("{e}"));
    device
}

/// One admin API request; panics unless it answers `want`.
async fn admin_request(
    client: &Client<HttpConnector, Full<Bytes>>,
    method: hyper::Method,
    url: String,
    token: &str,
    body: Vec<u8>,
    want: u16,
) {
    let req = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("Authorization", token)
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|e| panic!("{e}"));
    let resp = client.request(req).await.unwrap_or_else(|e| panic!("{e}"));
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.map(|b| b.to_bytes());
    assert_eq!(status, want, "{body:?}");
}

/// One round: every device's session, 100 at a time.
struct Round {
    ok: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

impl Round {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

/// The figures of one mode.
struct Figures {
    mode: Mode,
    credentials: Duration,
    queued: Duration,
    /// Each device's first session, then its second (a new connection,
    /// the server's state of the first kept).
    rounds: [Round; 2],
    /// VmHWM after the credentials and the queue were set (from the start).
    setup_kib: Option<u64>,
    /// VmHWM of each round (reset before it).
    peak_kib: [Option<u64>; 2],
    expected_rejections: usize,
    /// The bootstrap mode: the 1,000 fetches and the server's VmHWM of
    /// them (reset before).
    bootstraps: Option<(Round, Option<u64>)>,
}

impl Figures {
    /// The server's peak over both rounds of sessions.
    fn session_mib(&self) -> f64 {
        mib(self.peak_kib[0].max(self.peak_kib[1]))
    }
}

fn mib(kib: Option<u64>) -> f64 {
    kib.unwrap_or(0) as f64 / 1024.0
}

/// Queues one GET for every device through the admin API, sequentially.
async fn queue_gets(client: &Client<HttpConnector, Full<Bytes>>, admin: &str, token: &str) {
    for i in 0..DEVICES {
        let url = format!("{admin}/api/devices/{}/commands", dev_id(i));
        let get = br#"["GET", "urn:oma:mo:oma-dm-devinfo:1.2//DevID"]"#.to_vec();
        admin_request(client, hyper::Method::POST, url, token, get, 201).await;
    }
}

/// The percentiles of `times` and its count, over `elapsed`.
fn round_of(mut times: Vec<Duration>, elapsed: Duration) -> Round {
    times.sort();
    let at = |q: f64| {
        let i = ((times.len() as f64 * q) as usize).min(times.len().saturating_sub(1));
        times.get(i).copied().unwrap_or_default()
    };
    Round {
        ok: times.len(),
        elapsed,
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// Client-initiated bootstrap of every device (spec 8.3), [`CONCURRENCY`]
/// at a time, within [`LIMIT`]: a GET to the bootstrap listener over
/// mutual TLS with the device's factory certificate, the account applied
/// as the agent does. The devices come back bootstrapped, in order.
async fn bootstraps(url: &str, trsps: &[Trsp], trust: &TrustAnchors) -> (Round, Vec<Device>) {
    // Made before the clock starts, as the sessions' devices are: each
    // device with no account, its identity read.
    let devices: Vec<(usize, Device, Identity)> = trsps
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let Trsp::Certificate(id) = t else {
                panic!("the bootstrap mode's devices have certificates")
            };
            let identity =
                Identity::from_bytes("device", id.cert_pem.as_bytes(), id.key_pem.as_bytes())
                    .unwrap_or_else(|e| panic!("{e}"));
            let mut config = DeviceConfig::new(dev_id(i));
            config.trust = trust.clone();
            let device = Device::new(config, standard_registry(&dev_id(i)));
            (i, device, identity)
        })
        .collect();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    for (i, mut device, identity) in devices {
        let permit = semaphore
            .clone()
            .acquire_owned()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (url, trust) = (url.to_owned(), trust.clone());
        tasks.spawn(async move {
            let began = Instant::now();
            let pins = bootstrap::server_pins(&device, &url);
            let fetched = bootstrap::fetch(
                &url,
                &dev_id(i),
                &trust,
                &pins,
                Some(&identity),
                Duration::from_secs(30),
            )
            .await
            .map_err(|e| e.to_string())?;
            let source = Source::Fetched {
                url: &url,
                server_key: fetched.server_key.as_deref(),
            };
            let applied =
                bootstrap::apply(&mut device, &fetched.body, source).map_err(|e| e.to_string())?;
            let took = began.elapsed();
            drop(permit);
            if applied.servers != [SERVER_ID] {
                return Err(format!("bootstrap for {:?}", applied.servers));
            }
            Ok((i, device, took))
        });
    }
    let mut failed = 0;
    let mut times = Vec::with_capacity(DEVICES);
    let mut done = Vec::with_capacity(DEVICES);
    let outcome = tokio::time::timeout(LIMIT, async {
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok(Ok((i, device, took))) => {
                    times.push(took);
                    done.push((i, device));
                }
                Ok(Err(e)) => {
                    if failed < 10 {
                        eprintln!("failed bootstrap: {e}");
                    }
                    failed += 1;
                }
                Err(e) => {
                    eprintln!("task: {e}");
                    failed += 1;
                }
            }
        }
    })
    .await;
    let elapsed = started.elapsed();
    assert!(outcome.is_ok(), "bootstrap: not done within {LIMIT:?}");
    assert_eq!(failed, 0, "bootstrap: every fetch must succeed");
    done.sort_by_key(|(i, _)| *i);
    (
        round_of(times, elapsed),
        done.into_iter().map(|(_, d)| d).collect(),
    )
}

/// Every device's session, [`CONCURRENCY`] at a time, within [`LIMIT`].
async fn sessions(mode: Mode, devices: Vec<Device>) -> Round {
    let semaphore = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    for mut device in devices {
        let permit = semaphore
            .clone()
            .acquire_owned()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        tasks.spawn(async move {
            let began = Instant::now();
            let result = device
                .run_session_as(SERVER_ID, Initiation::ClientInitiated, false, Vec::new())
                .await;
            let took = began.elapsed();
            drop(permit);
            result.map(|r| (r.commands.len(), took))
        });
    }
    let mut failed = 0;
    let mut times = Vec::with_capacity(DEVICES);
    let outcome = tokio::time::timeout(LIMIT, async {
        while let Some(r) = tasks.join_next().await {
            match r {
                // GET, then END.
                Ok(Ok((2, took))) => times.push(took),
                Ok(Ok((n, _))) => {
                    eprintln!("session with {n} commands");
                    failed += 1;
                }
                Ok(Err(e)) => {
                    if failed < 10 {
                        eprintln!("failed session: {e}");
                    }
                    failed += 1;
                }
                Err(e) => {
                    eprintln!("task: {e}");
                    failed += 1;
                }
            }
        }
    })
    .await;
    let elapsed = started.elapsed();
    assert!(
        outcome.is_ok(),
        "{}: not done within {LIMIT:?}",
        mode.name()
    );
    assert_eq!(failed, 0, "{}: every session must succeed", mode.name());
    round_of(times, elapsed)
}

async fn run(mode: Mode, pki: &Pki, n: usize) -> Figures {
    let mut server = Server::start(mode, pki, n);
    let admin = Arc::new(server.admin.clone());
    let token = Arc::new(server.token.clone());
    let client: Client<_, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();

    let mut trsps: Vec<Trsp> = (0..DEVICES).map(|i| Trsp::of(mode, i, pki)).collect();
    let bodies: Vec<Option<Vec<u8>>> = trsps
        .iter()
        .map(|t| t.admin_body(mode).map(|b| b.to_string().into_bytes()))
        .collect();
    let what = if mode == Mode::Bootstrap {
        "bootstrap"
    } else {
        "credentials"
    };
    let started = Instant::now();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(SETUP_CONCURRENCY));
    let mut puts = tokio::task::JoinSet::new();
    for (i, body) in bodies.into_iter().enumerate() {
        let Some(body) = body else { continue };
        let permit = semaphore
            .clone()
            .acquire_owned()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (client, admin, token) = (client.clone(), admin.clone(), token.clone());
        puts.spawn(async move {
            let url = format!("{admin}/api/devices/{}/{what}", dev_id(i));
            admin_request(&client, hyper::Method::PUT, url, &token, body, 200).await;
            drop(permit);
        });
    }
    while let Some(r) = puts.join_next().await {
        r.unwrap_or_else(|e| panic!("{e}"));
    }
    let credentials = started.elapsed();

    // The bootstrap mode: the first round's devices are the bootstrapped
    // ones (their BootstrapComplete owed); the second's are made afresh
    // with the account's generated credentials.
    let mut bootstrapped = None;
    let mut fetches = None;
    if let Some(url) = &server.bootstrap_url {
        reset_peak(server.child.id());
        let (round, devices) = bootstraps(url, &trsps, &pki.trust).await;
        fetches = Some((round, peak_kib(server.child.id())));
        trsps = devices.iter().map(Trsp::bootstrapped).collect();
        bootstrapped = Some(devices);
    }

    let mut rounds = Vec::new();
    let mut peaks = [None; 2];
    let mut queued = Duration::ZERO;
    let mut setup_kib = None;
    for peak in &mut peaks {
        let started = Instant::now();
        queue_gets(&client, &admin, &token).await;
        if rounds.is_empty() {
            queued = started.elapsed();
            setup_kib = peak_kib(server.child.id());
        }
        reset_peak(server.child.id());
        // Made before the clock starts: each device as it starts, its
        // factory state, no connection yet.
        let devices: Vec<Device> = match bootstrapped.take() {
            Some(devices) => devices,
            None => trsps
                .iter()
                .enumerate()
                .map(|(i, t)| device(i, &server.dm_url, t, &pki.trust))
                .collect(),
        };
        rounds.push(sessions(mode, devices).await);
        *peak = peak_kib(server.child.id());
    }
    let _ = server.child.kill();
    let _ = server.child.wait();
    let rejected = server.rejected.load(Ordering::Relaxed);
    assert_eq!(
        rejected,
        0,
        "{}: the server rejected {rejected} requests",
        mode.name()
    );
    let mut rounds = rounds.into_iter();
    let (Some(first), Some(second)) = (rounds.next(), rounds.next()) else {
        panic!("two rounds")
    };
    Figures {
        mode,
        credentials,
        queued,
        rounds: [first, second],
        setup_kib,
        peak_kib: peaks,
        expected_rejections: server.expected.load(Ordering::Relaxed),
        bootstraps: fetches,
    }
}

fn print(f: &Figures) {
    println!(
        "server_load [{}] {}: {DEVICES} devices, {CONCURRENCY} at a time, SQLite storage",
        f.mode.name(),
        f.mode.label()
    );
    if f.mode == Mode::Bootstrap {
        println!(
            "  setting {DEVICES} bootstrap profiles via the admin API ({SETUP_CONCURRENCY} at a time): {:.2?}",
            f.credentials
        );
    } else if f.mode != Mode::Plain {
        println!(
            "  setting {DEVICES} credentials via the admin API ({SETUP_CONCURRENCY} at a time): {:.2?}",
            f.credentials
        );
    }
    if let Some((r, peak)) = &f.bootstraps {
        println!(
            "  bootstraps (GET over mutual TLS + apply): {} ok in {:.2?} = {:.0}/s (p50 {:.1?}, p99 {:.1?}); server VmHWM {:.1} MiB",
            r.ok,
            r.elapsed,
            r.rate(),
            r.p50,
            r.p99,
            mib(*peak)
        );
    }
    println!(
        "  queueing {DEVICES} GETs via the admin API: {:.2?}; server VmHWM so far {:.1} MiB",
        f.queued,
        mib(f.setup_kib)
    );
    for (r, (name, peak)) in f
        .rounds
        .iter()
        .zip([("first", f.peak_kib[0]), ("second", f.peak_kib[1])])
    {
        println!(
            "  {name} sessions: {} ok in {:.2?} = {:.0} sessions/s (p50 {:.1?}, p99 {:.1?}); server VmHWM {:.1} MiB",
            r.ok,
            r.elapsed,
            r.rate(),
            r.p50,
            r.p99,
            mib(peak)
        );
    }
    if f.expected_rejections > 0 {
        println!(
            "  Basic refused up front, answered with Digest: {}",
            f.expected_rejections
        );
    }
    if f.peak_kib[1].is_none() {
        println!("  server peak memory: /proc not available");
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; other words name modes.
    let named: Vec<Mode> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(|a| {
            Mode::ALL
                .into_iter()
                .find(|m| m.name() == a)
                .unwrap_or_else(|| {
                    panic!("unknown mode `{a}`: plain, basic, digest, cert or bootstrap")
                })
        })
        .collect();
    let modes = if named.is_empty() {
        Mode::ALL.to_vec()
    } else {
        named
    };
    let tmp = std::env::temp_dir().join(format!("dm-server-load-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap_or_else(|e| panic!("{e}"));
    let pki = Pki::new(&tmp);
    let mut all = Vec::new();
    for (n, mode) in modes.into_iter().enumerate() {
        let f = run(mode, &pki, n).await;
        print(&f);
        all.push(f);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    if let Some(plain) = all.iter().find(|f| f.mode == Mode::Plain) {
        println!("ratio to plain (time of the 1,000 first, second sessions; server VmHWM of the sessions):");
        for f in all.iter().filter(|f| f.mode != Mode::Plain) {
            println!(
                "  {:<26} {:.2}x, {:.2}x time; {:.2}x memory",
                f.mode.label(),
                plain.rounds[0].rate() / f.rounds[0].rate(),
                plain.rounds[1].rate() / f.rounds[1].rate(),
                f.session_mib() / plain.session_mib()
            );
        }
    }
}
