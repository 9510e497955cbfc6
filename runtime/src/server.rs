//! The reference DM Server (spec 5.2, server side): answers Package#1 and
//! Package#3 with Package#2 built from a per-device command queue, and
//! records what each device reports.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use dm_core::multipart::{Part, ResponseBody};
use dm_core::package::{header, media_type};
use dm_core::{Alert, Command, MoInfo, Package1, Package2, Status};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode as HttpStatus};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::http::MAX_BODY;

/// The path the server takes DM packages on.
pub const DM_PATH: &str = "/dm";

/// Settings of the reference server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Commands queued for a device whenever it opens a session with an
    /// empty queue.
    pub default_commands: Vec<Command>,
    /// Print one line per rejected request on stderr.
    pub log_errors: bool,
}

/// A command sent to a device and what came back for it.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandResult {
    pub command: Command,
    pub status: Status,
    /// The GET data part of Appendix F, when there is one.
    pub data: Option<Part>,
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
    pub queue: VecDeque<Command>,
    /// Results of every command sent, in order.
    pub results: Vec<CommandResult>,
    /// Sessions started (Package#1 received).
    pub sessions: usize,
    /// Sessions that ended with END.
    pub ended: usize,
    in_flight: Vec<Command>,
}

#[derive(Debug, Default)]
struct State {
    devices: HashMap<String, DeviceRecord>,
    default_commands: Vec<Command>,
    errors: Vec<String>,
    log_errors: bool,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    // A panic while holding the lock leaves plain data behind; keep serving.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running server. Dropping it does not stop it; call [`shutdown`].
///
/// [`shutdown`]: ServerHandle::shutdown
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    state: Shared,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The ServerURI devices open sessions with.
    pub fn dm_url(&self) -> String {
        format!("http://{}{DM_PATH}", self.addr)
    }

    /// Queues a command for the device's next Package#2.
    pub fn enqueue(&self, dev_id: &str, command: Command) {
        let mut s = lock(&self.state);
        let rec = s.devices.entry(dev_id.to_owned()).or_default();
        rec.dev_id = dev_id.to_owned();
        rec.queue.push_back(command);
    }

    /// A snapshot of what the server knows about a device.
    pub fn device(&self, dev_id: &str) -> Option<DeviceRecord> {
        lock(&self.state).devices.get(dev_id).cloned()
    }

    /// Requests the server rejected, with the reason.
    pub fn errors(&self) -> Vec<String> {
        lock(&self.state).errors.clone()
    }

    /// Stops accepting connections and waits for the accept loop to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Binds the listener and serves until shut down.
pub async fn start(config: ServerConfig) -> std::io::Result<ServerHandle> {
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let state: Shared = Arc::new(Mutex::new(State {
        default_commands: config.default_commands,
        log_errors: config.log_errors,
        ..State::default()
    }));
    let (stop, mut stopped) = watch::channel(false);
    let loop_state = state.clone();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let state = loop_state.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| handle(state.clone(), req));
                        // A connection error concerns that peer only.
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
                _ = stopped.changed() => break,
            }
        }
    });
    Ok(ServerHandle {
        addr,
        state,
        stop,
        task,
    })
}

fn reply(status: HttpStatus, content_type: &str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn reject(state: &Shared, status: HttpStatus, reason: String) -> Response<Full<Bytes>> {
    let mut s = lock(state);
    if s.log_errors {
        eprintln!("dm-server: {} {reason}", status.as_u16());
    }
    s.errors.push(reason.clone());
    reply(status, "text/plain", reason.into_bytes())
}

async fn handle(
    state: Shared,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() != DM_PATH {
        return Ok(reject(
            &state,
            HttpStatus::NOT_FOUND,
            format!("no DM endpoint at {}", req.uri().path()),
        ));
    }
    if req.method() != Method::POST {
        return Ok(reject(
            &state,
            HttpStatus::METHOD_NOT_ALLOWED,
            "DM packages are POSTed".into(),
        ));
    }
    let dev_id = req
        .headers()
        .get(header::DEV_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let content_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Ok(reject(
                &state,
                HttpStatus::BAD_REQUEST,
                format!("unreadable body: {e}"),
            ))
        }
    };
    let Some(dev_id) = dev_id else {
        return Ok(reject(
            &state,
            HttpStatus::BAD_REQUEST,
            format!("no {} header", header::DEV_ID),
        ));
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let result = match essence.as_str() {
        media_type::PACKAGE1 => on_package1(&state, &dev_id, &body),
        media_type::PACKAGE3 | media_type::MULTIPART => {
            on_package3(&state, &dev_id, &content_type, &body)
        }
        _ => {
            return Ok(reject(
                &state,
                HttpStatus::UNSUPPORTED_MEDIA_TYPE,
                format!("{dev_id}: Content-Type `{content_type}` is not a DM package"),
            ))
        }
    };
    Ok(match result {
        Ok(p2) => reply(HttpStatus::OK, media_type::PACKAGE2, p2.to_vec()),
        Err(reason) => reject(
            &state,
            HttpStatus::BAD_REQUEST,
            format!("{dev_id}: {reason}"),
        ),
    })
}

fn on_package1(state: &Shared, dev_id: &str, body: &[u8]) -> Result<Package2, String> {
    let p1 = Package1::parse(body).map_err(|e| e.to_string())?;
    let mut s = lock(state);
    let defaults = s.default_commands.clone();
    let rec = s.devices.entry(dev_id.to_owned()).or_default();
    rec.dev_id = dev_id.to_owned();
    rec.sessions += 1;
    if p1.mos.is_some() {
        rec.mos = p1.mos;
    }
    rec.alerts.extend(p1.alerts);
    // A new session forgets whatever an aborted one left in flight.
    rec.in_flight.clear();
    if rec.queue.is_empty() {
        rec.queue.extend(defaults);
    }
    Ok(next_package2(rec))
}

fn on_package3(
    state: &Shared,
    dev_id: &str,
    content_type: &str,
    body: &[u8],
) -> Result<Package2, String> {
    let response = ResponseBody::decode(content_type, body).map_err(|e| e.to_string())?;
    let mut s = lock(state);
    let rec = s
        .devices
        .get_mut(dev_id)
        .filter(|r| !r.in_flight.is_empty())
        .ok_or_else(|| "Package#3 outside a session".to_owned())?;
    let sent = std::mem::take(&mut rec.in_flight);
    if response.package.statuses.len() != sent.len() {
        return Err(format!(
            "Package#3 has {} statuses for {} commands",
            response.package.statuses.len(),
            sent.len()
        ));
    }
    let mut data: HashMap<String, Part> = response
        .data
        .into_iter()
        .filter_map(|p| p.name.clone().map(|n| (n, p)))
        .collect();
    for (i, (command, status)) in sent.into_iter().zip(response.package.statuses).enumerate() {
        rec.results.push(CommandResult {
            command,
            status,
            data: data.remove(&i.to_string()),
        });
    }
    rec.alerts.extend(response.package.alerts);
    Ok(next_package2(rec))
}

/// Everything queued, or END when the queue is empty.
fn next_package2(rec: &mut DeviceRecord) -> Package2 {
    if rec.queue.is_empty() {
        rec.ended += 1;
        return Package2::new([Command::End]);
    }
    rec.in_flight = rec.queue.drain(..).collect();
    Package2::new(rec.in_flight.iter().cloned())
}
