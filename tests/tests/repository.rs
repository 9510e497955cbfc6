//! Data Repository addresses (docs/architecture.md "Data Repository
//! addresses"): HGET, HPUT, HPOST, SUB notifications and DEFAULT fetches
//! reach loopback, link-local and private addresses only when the DM
//! Server that named them is in that range too, or `--repository-allow`
//! names them; a refused address makes no connection and answers as an
//! unreachable one does (419).
//!
//! A server "elsewhere" listens on this machine's non-loopback address
//! (its class is public or private, never loopback), so a repository on
//! 127.0.0.1 is out of its range; a private repository needs a private
//! address of this machine (a container's 172.x, a ULA). A test whose
//! address this machine lacks says so and checks nothing.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use common::{codes, uri, Repository};
use dm_agent::service::{self as agent, AgentOptions, SecurityOptions};
use dm_agent::{AddressClass, Device, LocalError, PlainHttp};
use dm_core::{Command, ServerUri, StatusCode};
use dm_server::{ServerConfig, ServerHandle};

const DEV_ID: &str = "IMEI:356938035643809";
const DMACC: &str = "urn:oma:mo:oma-dm-dmacc:1.2";
const NAME: &str = "urn:oma:mo:oma-dm-dmacc:1.2/A/Name";

/// The address this machine sends from toward `to`, when that is not
/// loopback (a UDP connect picks the route and sends nothing).
fn source_toward(to: IpAddr) -> Option<IpAddr> {
    let any: IpAddr = match to {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind((any, 0)).ok()?;
    socket.connect((to, 9)).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// Destinations whose routes reveal this machine's addresses.
const PROBES: [&str; 6] = [
    "192.0.2.1",
    "10.255.255.1",
    "172.16.255.1",
    "192.168.255.1",
    "fd00::1",
    "2001:db8::1",
];

/// An address of this machine that is not loopback.
fn non_loopback_ip() -> Option<IpAddr> {
    PROBES
        .iter()
        .find_map(|p| source_toward(p.parse().unwrap()))
}

/// A private-range address of this machine (10/8, 172.16/12, 192.168/16,
/// 100.64/10, fc00::/7).
fn private_ip() -> Option<IpAddr> {
    PROBES
        .iter()
        .filter_map(|p| source_toward(p.parse().unwrap()))
        .find(|ip| dm_agent::classify(*ip) == AddressClass::Private)
}

/// The reference DM Server on a free port of `ip`.
async fn server_at(ip: IpAddr) -> ServerHandle {
    dm_server::start(ServerConfig {
        listen: SocketAddr::new(ip, 0),
        default_commands: Vec::new(),
        log_errors: false,
    })
    .await
    .unwrap()
}

/// A device with account `A` at `server`, its state under `tmp`.
struct World {
    tmp: tempfile::TempDir,
    server: ServerHandle,
    bootstrap: PathBuf,
}

impl World {
    fn new(server: ServerHandle) -> World {
        let tmp = tempfile::tempdir().unwrap();
        let bootstrap = tmp.path().join("bootstrap.json");
        let item = common::dmacc_item("A", &server.dm_url(), &["*"]);
        std::fs::write(&bootstrap, serde_json::json!([item]).to_string()).unwrap();
        World {
            tmp,
            server,
            bootstrap,
        }
    }

    /// The device with state `state`, `allow` its `--repository-allow`
    /// entries; plain http:// anywhere (the server may not be loopback).
    fn device(&self, state: &str, allow: &[&str]) -> Device {
        let opts = AgentOptions {
            bootstrap: Some(self.bootstrap.clone()),
            dev_id: Some(DEV_ID.into()),
            timeout: Duration::from_secs(10),
            security: SecurityOptions {
                plain_http: PlainHttp::Anywhere,
                repository_allow: allow.iter().map(|a| a.parse().unwrap()).collect(),
                ..SecurityOptions::default()
            },
            ..AgentOptions::new(self.tmp.path().join(state))
        };
        let mut device = agent::open_device(&opts).unwrap();
        agent::apply_bootstrap(&mut device, &self.bootstrap).unwrap();
        device
    }

    async fn session(&self, device: &mut Device, commands: Vec<Command>) -> Vec<u16> {
        codes(&common::session(&self.server, "A", DEV_ID, device, commands).await)
    }
}

fn hget(server_uri: String, target: Option<&str>) -> Command {
    Command::Hget {
        server_uri: ServerUri::new(server_uri),
        client_uri: target.map(uri),
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_elsewhere_reaches_no_loopback_repository_unless_allowed() {
    let Some(ip) = non_loopback_ip() else {
        eprintln!("skipped: this machine has no address but loopback");
        return;
    };
    let w = World::new(server_at(ip).await);
    // Open ports on loopback: data a loopback HGET would store (or fail
    // to recognise, 415), and places to send to.
    let local = Repository::start().await;
    local.route("/name", 200, "text/plain", "from loopback");
    local.route("/garbage", 200, "application/dmmo+json", "[{\"MOData\": 1");
    local.route("/put", 200, "text/plain", "");
    local.route("/sub", 200, "text/plain", "");
    // The server's own address: always reachable, and a change to notify.
    let own = Repository::start_at(ip).await;
    own.route("/name", 200, "text/plain", "from the server's host");
    let port = local.addr.port();
    let at = |host: &str, path: &str| format!("http://{host}:{port}{path}");
    let send = |host: &str, post: bool| {
        let server_uri = ServerUri::new(at(host, "/put"));
        let client_uris = vec![uri(NAME)];
        if post {
            Command::Hpost {
                server_uri,
                client_uris,
            }
        } else {
            Command::Hput {
                server_uri,
                client_uris,
            }
        }
    };
    let sub = Command::Sub {
        server_uri: ServerUri::new(at("localhost", "/sub")),
        client_uri: uri(NAME),
    };

    let mut device = w.device("s1", &[]);
    let statuses = w
        .session(
            &mut device,
            vec![
                sub.clone(),
                hget(at("127.0.0.1", "/name"), Some(NAME)),
                // A name that resolves to loopback is loopback.
                hget(at("localhost", "/name"), Some(NAME)),
                hget(at("[::ffff:127.0.0.1]", "/name"), Some(NAME)),
                hget(at("0.0.0.0", "/name"), Some(NAME)),
                // An open port with unrecognisable data and a closed one
                // answer alike.
                hget(at("127.0.0.1", "/garbage"), None),
                hget(format!("http://127.0.0.1:{}/garbage", closed_port()), None),
                send("127.0.0.1", false),
                send("localhost", true),
                // A change: the subscription's PUT would go now.
                hget(own.url("/name"), Some(NAME)),
            ],
        )
        .await;
    assert_eq!(
        statuses,
        [200, 419, 419, 419, 419, 419, 419, 419, 419, 200],
        "every loopback transfer is a ServerURI Error"
    );
    assert_eq!(local.connections(), 0, "{:?}", local.requests());
    assert_eq!(own.requests().len(), 1);

    // The operator allows loopback: the same commands go through, the
    // name by the range it resolves into.
    let mut device = w.device("s2", &["127.0.0.0/8"]);
    let statuses = w
        .session(
            &mut device,
            vec![
                sub,
                hget(at("127.0.0.1", "/name"), Some(NAME)),
                hget(at("localhost", "/name"), Some(NAME)),
                hget(at("127.0.0.1", "/garbage"), None),
                send("127.0.0.1", false),
                send("localhost", true),
            ],
        )
        .await;
    assert_eq!(statuses, [200, 200, 200, 415, 200, 200]);
    let seen: Vec<(String, String)> = local
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    for expected in [
        ("GET", "/name"),
        ("GET", "/garbage"),
        ("PUT", "/put"),
        ("POST", "/put"),
        ("PUT", "/sub"),
    ] {
        assert!(
            seen.iter()
                .any(|(m, p)| (m.as_str(), p.as_str()) == expected),
            "{expected:?} in {seen:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_server_reaches_no_private_repository_unless_allowed() {
    let Some(ip) = private_ip() else {
        eprintln!("skipped: this machine has no private-range address");
        return;
    };
    let w = World::new(common::start_server(Vec::new()).await);
    let private = Repository::start_at(ip).await;
    private.route("/name", 200, "text/plain", "from a private host");
    let fetch = || vec![hget(private.url("/name"), Some(NAME))];

    let mut device = w.device("s1", &[]);
    assert_eq!(w.session(&mut device, fetch()).await, [419]);
    assert_eq!(private.connections(), 0, "refused before connecting");

    // Named by the allow-list, as one address or as a range.
    let one = ip.to_string();
    let range = match ip {
        IpAddr::V4(_) => format!("{ip}/8"),
        IpAddr::V6(_) => format!("{ip}/7"),
    };
    for (i, entry) in [one, range].iter().enumerate() {
        let mut device = w.device(&format!("s{}", i + 2), &[entry]);
        assert_eq!(w.session(&mut device, fetch()).await, [200], "{entry}");
        assert_eq!(private.requests().len(), i + 1, "{entry}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_fetch_keeps_to_the_range_of_the_server_that_registered_it() {
    let Some(ip) = non_loopback_ip() else {
        eprintln!("skipped: this machine has no address but loopback");
        return;
    };
    let w = World::new(server_at(ip).await);
    let local = Repository::start().await;
    let served = serde_json::json!([{
        "ClientURI": format!("{DMACC}//"),
        "MOData": { "appacc": {
            "SrvID": "P", "SrvURI": "http://127.0.0.1:9/dm", "Name": "provisioned",
            "Perm": { "p": { "MOID": "urn:oma:mo:oma-dm-devinfo:1.2" } }
        } }
    }]);
    local.route(
        "/defaults",
        200,
        "application/dmmo+json",
        served.to_string(),
    );
    let mut device = w.device("s", &[]);
    let registered = w
        .session(
            &mut device,
            vec![Command::Default {
                server_uri: ServerUri::new(format!(
                    "http://localhost:{}/defaults",
                    local.addr.port()
                )),
                moid: DMACC.into(),
            }],
        )
        .await;
    assert_eq!(registered, [200]);
    // The application sees no DMAcc instance: the DEFAULT is fetched, as
    // the server that registered it may reach, which loopback is not.
    assert_eq!(
        device.local_request_moid("com.example.app", DMACC).await,
        Err(LocalError(StatusCode::SERVER_URI_ERROR))
    );
    assert_eq!(local.connections(), 0);
    drop(device);
    // The same registration, after a restart with loopback allowed.
    let mut device = w.device("s", &["localhost"]);
    let uris = device
        .local_request_moid("com.example.app", DMACC)
        .await
        .unwrap();
    assert_eq!(uris, [format!("{DMACC}/appacc/")]);
    assert_eq!(local.requests().len(), 1);
}

/// `dmctl client --once` against `boot` with `args`: exit code and stderr.
async fn client(state: &std::path::Path, boot: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = tokio::process::Command::new(common::dmctl())
        .args(["client", "--once", "--timeout", "10", "--dev-id", DEV_ID])
        .arg("--state")
        .arg(state)
        .arg("--bootstrap")
        .arg(boot)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repository_allow_flag_opens_a_range_to_dmctl_client() {
    let Some(ip) = non_loopback_ip() else {
        eprintln!("skipped: this machine has no address but loopback");
        return;
    };
    let w = World::new(server_at(ip).await);
    let local = Repository::start().await;
    local.route("/name", 200, "text/plain", "from loopback");
    let fetch = hget(local.url("/name"), Some(NAME));
    let hget_status = || {
        let record = w.server.device(DEV_ID).unwrap();
        let last = record.results.last().unwrap();
        assert!(matches!(last.command, Command::Hget { .. }));
        last.status.code.as_u16()
    };

    w.server.enqueue(DEV_ID, fetch.clone());
    let (code, stderr) = client(
        &w.tmp.path().join("s1"),
        &w.bootstrap,
        &["--allow-plain-http"],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(hget_status(), 419);
    assert_eq!(local.connections(), 0);
    // The reason is on stderr: the address, its range, the flag.
    assert!(
        stderr.contains("127.0.0.1")
            && stderr.contains("loopback")
            && stderr.contains("--repository-allow"),
        "{stderr}"
    );

    w.server.enqueue(DEV_ID, fetch);
    let args = ["--allow-plain-http", "--repository-allow", "127.0.0.1"];
    let (code, stderr) = client(&w.tmp.path().join("s2"), &w.bootstrap, &args).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(hget_status(), 200);
    assert_eq!(local.requests().len(), 1);

    // An entry that is neither a range nor a host name is bad usage.
    let args = ["--repository-allow", "10.0.0.0/99"];
    let (code, stderr) = client(&w.tmp.path().join("s3"), &w.bootstrap, &args).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("10.0.0.0/99"), "{stderr}");
}
