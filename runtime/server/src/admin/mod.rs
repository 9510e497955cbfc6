//! The admin API of the reference DM Server: HTTP + JSON on its own
//! address (`dmctl server --admin ADDR`). Operators list devices, queue
//! any of the twelve commands (spec 5.3), read statuses, GET data and
//! alerts, trigger notifications (5.2.1), manage DEFAULT and SUB
//! registrations, fill the Data Repository and read SHOW answers. Bad
//! requests get a 4xx with `{"error": "..."}`. README "Admin API" lists
//! the routes with curl examples.
//!
//! Every request passes [`guard`] first: Host and Origin must name the
//! admin listener (403), a bearer token must be one the storage knows
//! (401, `WWW-Authenticate: Bearer`), and a read-only token only reads
//! (403). A body must be `application/json` (415), except a repository
//! upload's, which is the resource in its own media type.
//!
//! Request bodies are serde types that refuse unknown fields, so a typo
//! is a 400 naming the field rather than an option silently dropped;
//! responses are serde types too, one per shape.

use std::convert::Infallible;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use dm_core::package::media_type;
use dm_core::{Command, ServerUri};
use http_body_util::Full;
use hyper::body::{Body, Incoming};
use hyper::header::{HeaderValue, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode as HttpStatus};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value as Json;

mod bootstrap;
mod guard;
mod json;
mod routes;
pub(crate) mod token;

pub(crate) use guard::AdminGuard;

use json::{
    AlertJson, BodyJson, CommandBody, ConfiguredJson, CredentialsBody, CredentialsJson,
    DeletedJson, DeviceJson, EntryJson, ErrorJson, NotificationBody, NotificationJson,
    NotifiedJson, NotifyBody, PathJson, QueuedJson, RegisteredJson, RegistrationBody,
    RegistrationJson, ResourceJson, ShowBody, ShowJson, StatusJson, UiJson,
};

use crate::http::{header_str, percent_decode, read_body, reply};
use crate::repository::check_upload;
use crate::state::Core;
use crate::storage::command_from_parts;
use crate::{
    now, DeviceRow, Entry, EntryState, RegistrationKind, Resource, ServerError, StorageError,
    StoredAlert,
};

type Reply = Response<Full<Bytes>>;
type ApiResult = Result<Reply, ApiError>;

/// A request the API refuses, with its HTTP status.
#[derive(Debug)]
struct ApiError(HttpStatus, String);

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> ApiError {
        ApiError(HttpStatus::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl From<ServerError> for ApiError {
    fn from(e: ServerError) -> ApiError {
        let status = match &e {
            ServerError::NoDevice(_) | ServerError::NoRegistration(..) => HttpStatus::NOT_FOUND,
            ServerError::BadRequest(_) => HttpStatus::BAD_REQUEST,
            ServerError::Send(_) => HttpStatus::BAD_GATEWAY,
            ServerError::Storage(_) => HttpStatus::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

fn bad(reason: impl Into<String>) -> ApiError {
    ApiError(HttpStatus::BAD_REQUEST, reason.into())
}

fn not_found(reason: impl Into<String>) -> ApiError {
    ApiError(HttpStatus::NOT_FOUND, reason.into())
}

/// A body must say it is JSON, on every route but the repository upload:
/// a browser sends a cross-site request without asking first only as a
/// form or `text/plain`, never as `application/json`. A request without a
/// body may leave it out.
fn require_json(req: &Request<Incoming>) -> Result<(), ApiError> {
    let unsupported = |reason: String| ApiError(HttpStatus::UNSUPPORTED_MEDIA_TYPE, reason);
    match header_str(req, "content-type") {
        Some(t) if media_type::essence(t) == media_type::JSON => Ok(()),
        Some(t) => Err(unsupported(format!(
            "the body must be application/json, not `{}`",
            t.escape_debug()
        ))),
        None if req.body().is_end_stream() => Ok(()),
        None => Err(unsupported(
            "a body needs Content-Type: application/json".into(),
        )),
    }
}

/// The body parsed as `T`; an empty body is `{}`. serde's message, which
/// names the missing, mistyped or unknown field, is the 400's reason.
async fn json_body<T: DeserializeOwned>(req: Request<Incoming>) -> Result<T, ApiError> {
    let body = read_body(req.into_body()).await.map_err(bad)?;
    parse_body(&body)
}

fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| bad(format!("bad request body: {e}")))
}

fn respond<T: Serialize + ?Sized>(status: HttpStatus, value: &T) -> Reply {
    match serde_json::to_vec(value) {
        Ok(body) => reply(status, "application/json", body),
        Err(e) => {
            let error = format!("cannot write the answer: {e}");
            let body = serde_json::to_vec(&ErrorJson { error: &error }).unwrap_or_default();
            reply(HttpStatus::INTERNAL_SERVER_ERROR, "application/json", body)
        }
    }
}

fn ok<T: Serialize + ?Sized>(value: &T) -> ApiResult {
    Ok(respond(HttpStatus::OK, value))
}

fn created<T: Serialize + ?Sized>(value: &T) -> ApiResult {
    Ok(respond(HttpStatus::CREATED, value))
}

// -------------------------------------------------------------- routes

pub(crate) async fn handle(core: Arc<Core>, req: Request<Incoming>) -> Result<Reply, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    if let Err(refusal) = core.admin_guard.check(core.storage.as_ref(), &req) {
        core.log(format!(
            "admin {method} {path}: {} {}",
            refusal.status.as_u16(),
            refusal.reason
        ));
        let mut reply = respond(
            refusal.status,
            &ErrorJson {
                error: &refusal.reason,
            },
        );
        if let Some(challenge) = refusal
            .challenge
            .and_then(|c| HeaderValue::try_from(c).ok())
        {
            reply.headers_mut().insert(WWW_AUTHENTICATE, challenge);
        }
        return Ok(reply);
    }
    Ok(match route(&core, req).await {
        Ok(r) => {
            // One line per action (a read is no action); never a token.
            if !matches!(method, Method::GET | Method::HEAD) {
                tracing::info!(
                    "dm-server: admin {method} {}: {}",
                    crate::limits::escape_truncated(&path, crate::MAX_LOGGED_INPUT),
                    r.status().as_u16()
                );
            }
            r
        }
        Err(ApiError(status, reason)) => {
            core.log(format!(
                "admin {method} {path}: {} {reason}",
                status.as_u16()
            ));
            let mut reply = respond(status, &ErrorJson { error: &reason });
            if status == HttpStatus::METHOD_NOT_ALLOWED {
                let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
                if let Ok(v) = HeaderValue::try_from(routes::allowed(&segments).join(", ")) {
                    reply.headers_mut().insert(hyper::header::ALLOW, v);
                }
            }
            reply
        }
    })
}

async fn route(core: &Core, req: Request<Incoming>) -> ApiResult {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    // The upload's body is the resource, in its own media type (checked by
    // `check_upload`); PUT is never sent cross-site without a preflight.
    let upload = method == Method::PUT
        && matches!(
            segments.as_slice(),
            ["api", "devices", _, "repository", _, ..]
        );
    if !upload {
        require_json(&req)?;
    }
    match segments.as_slice() {
        ["api"] if method == Method::GET => ok(&routes::listing()),
        ["api", "openapi.json"] if method == Method::GET => ok(&routes::openapi()),
        ["api", "devices"] if method == Method::GET => list_devices(core),
        ["api", "ui", uiid] if method == Method::GET => get_ui(core, uiid),
        ["api", "devices", dev, rest @ ..] => {
            let dev_id =
                percent_decode(dev, false).ok_or_else(|| bad("bad escapes in the DevID"))?;
            let rest: Vec<String> = rest
                .iter()
                .map(|s| percent_decode(s, false).ok_or_else(|| bad("bad escapes in the path")))
                .collect::<Result<_, _>>()?;
            let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
            device_route(core, &dev_id, &rest, method, req).await
        }
        _ => Err(no_route(&method, &path)),
    }
}

/// 405 when the path has routes, only not for this method; else 404.
fn no_route(method: &Method, path: &str) -> ApiError {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let allowed = routes::allowed(&segments);
    if allowed.is_empty() {
        return not_found(format!("no admin route {method} {path}"));
    }
    ApiError(
        HttpStatus::METHOD_NOT_ALLOWED,
        format!("{path} takes {}, not {method}", allowed.join(", ")),
    )
}

/// The routes under `/api/devices/<DevID>/`.
async fn device_route(
    core: &Core,
    dev_id: &str,
    rest: &[&str],
    method: Method,
    req: Request<Incoming>,
) -> ApiResult {
    match (&method, rest) {
        (&Method::GET, []) => get_device(core, dev_id),
        (&Method::POST, ["commands"]) => post_command(core, dev_id, req).await,
        (&Method::GET, ["results"]) => list_results(core, dev_id),
        (&Method::GET, ["results", id]) => get_result(core, dev_id, id),
        (&Method::GET, ["alerts"]) => list_alerts(core, dev_id),
        (&Method::PUT, ["notification"]) => {
            let body: NotificationBody = json_body(req).await?;
            core.configure_notification(dev_id, body.into_config()?)?;
            ok(&ConfiguredJson { configured: dev_id })
        }
        (&Method::POST, ["notify"]) => {
            let body: NotifyBody = json_body(req).await?;
            let notification_id = core.notify(dev_id, &body.into_request()?).await?;
            ok(&NotifiedJson { notification_id })
        }
        (&Method::GET, ["registrations"]) => list_registrations(core, dev_id),
        (&Method::POST, ["registrations"]) => post_registration(core, dev_id, req).await,
        (&Method::DELETE, ["registrations", id]) => {
            let id: u64 = id
                .parse()
                .map_err(|_| bad("the registration id is a number"))?;
            core.unregister(dev_id, id)?;
            ok(&DeletedJson { deleted: id })
        }
        (&Method::GET, ["repository"]) => list_repository(core, dev_id),
        (&Method::GET, ["repository", path @ ..]) if !path.is_empty() => {
            get_resource(core, dev_id, &path.join("/"))
        }
        (&Method::PUT, ["repository", path @ ..]) if !path.is_empty() => {
            put_resource(core, dev_id, &path.join("/"), req).await
        }
        (&Method::DELETE, ["repository", path @ ..]) if !path.is_empty() => {
            let path = path.join("/");
            if !core.storage.delete_resource(dev_id, &path)? {
                return Err(not_found(format!("no resource `{path}` for `{dev_id}`")));
            }
            ok(&DeletedJson { deleted: path })
        }
        (&Method::POST, ["show"]) => post_show(core, dev_id, req).await,
        (&Method::PUT, ["credentials"]) => put_credentials(core, dev_id, req).await,
        (&Method::PUT, ["bootstrap"]) => bootstrap::put_profile(core, dev_id, req).await,
        (&Method::GET, ["bootstrap"]) => bootstrap::get_profile(core, dev_id),
        (&Method::POST, ["bootstrap", "push"]) => bootstrap::push(core, dev_id).await,
        (&Method::DELETE, []) => delete_device(core, dev_id),
        (&Method::DELETE, ["commands", id]) => delete_command(core, dev_id, id),
        (m, r) => {
            let path = if r.is_empty() {
                format!("/api/devices/{dev_id}")
            } else {
                format!("/api/devices/{dev_id}/{}", r.join("/"))
            };
            Err(no_route(m, &path))
        }
    }
}

/// Sets the device's credentials (spec 9.2.1): the password only as
/// hashes, never kept nor returned.
async fn put_credentials(core: &Core, dev_id: &str, req: Request<Incoming>) -> ApiResult {
    let body: CredentialsBody = json_body(req).await?;
    let password = match (body.user.as_deref(), body.password.as_deref()) {
        (Some(user), Some(password)) => {
            Some(crate::PasswordHashes::new(user, password).map_err(|e| bad(e.to_string()))?)
        }
        (None, None) => None,
        _ => return Err(bad("`user` and `password` go together")),
    };
    let certificate_sha256 = body
        .certificate_sha256
        .as_deref()
        .map(crate::parse_fingerprint)
        .transpose()
        .map_err(|e| bad(e.to_string()))?;
    if password.is_none() && certificate_sha256.is_none() {
        return Err(bad(
            "give `user` and `password`, or `certificate_sha256`, or both",
        ));
    }
    let creds = crate::Credentials {
        password,
        certificate_sha256,
    };
    core.storage.put_credentials(dev_id, &creds)?;
    tracing::info!(
        "dm-server: credentials of {} set (password: {}, certificate: {})",
        dev_id.escape_debug(),
        creds.password.is_some(),
        creds.certificate_sha256.is_some()
    );
    ok(&CredentialsJson {
        dev_id,
        user: creds.password.as_ref().map(|p| p.user.as_str()),
        certificate_sha256: creds
            .certificate_sha256
            .map(|f| dm_core::notification::hex(&f)),
    })
}

fn require_device(core: &Core, dev_id: &str) -> Result<DeviceRow, ApiError> {
    core.storage
        .device(dev_id)?
        .ok_or_else(|| not_found(format!("no device `{dev_id}`")))
}

// ------------------------------------------------------------ handlers

fn list_devices(core: &Core) -> ApiResult {
    let devices = core.storage.devices()?;
    let counts = devices
        .iter()
        .map(|d| {
            Ok::<_, ApiError>((
                queue_counts(core, &d.dev_id)?,
                core.storage.is_unauthenticated(&d.dev_id)?,
            ))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let list: Vec<DeviceJson<'_>> = devices
        .iter()
        .zip(counts)
        .map(|(d, (counts, flag))| device_json(d, counts, flag))
        .collect();
    ok(&list)
}

fn get_device(core: &Core, dev_id: &str) -> ApiResult {
    let d = require_device(core, dev_id)?;
    let counts = queue_counts(core, dev_id)?;
    ok(&device_json(
        &d,
        counts,
        core.storage.is_unauthenticated(dev_id)?,
    ))
}

/// How many of the device's commands are queued and how many wait for an
/// asynchronous EXEC's alert (5.4.1).
fn queue_counts(core: &Core, dev_id: &str) -> Result<(usize, usize), ApiError> {
    let entries = core.storage.entries(dev_id, &[])?;
    let count = |s: EntryState| entries.iter().filter(|e| e.state == s).count();
    Ok((count(EntryState::Queued), count(EntryState::AsyncPending)))
}

fn device_json(
    d: &DeviceRow,
    (queued, async_pending): (usize, usize),
    unauthenticated: bool,
) -> DeviceJson<'_> {
    DeviceJson {
        dev_id: &d.dev_id,
        mos: d.mos.as_deref(),
        sessions: d.sessions,
        ended: d.ended,
        last_session: d.last_session,
        queued,
        async_pending,
        notification: d.notification.as_ref().map(|n| NotificationJson {
            server_id: &n.server_id,
            udp: n.udp.as_deref(),
            signed: n.secret.is_some(),
        }),
        last_notification_id: d.last_notification_id,
        unauthenticated,
    }
}

fn get_ui(core: &Core, uiid: &str) -> ApiResult {
    let uiid: u64 = uiid.parse().map_err(|_| bad("uiid is a number"))?;
    let s = core
        .storage
        .ui_session(uiid)?
        .ok_or_else(|| not_found(format!("no UI session {uiid}")))?;
    ok(&UiJson {
        uiid: s.uiid,
        dev_id: &s.dev_id,
        prompt: &s.prompt,
        choice: s.choice.as_deref(),
    })
}

/// Queues a command given in its Package#2 form (spec 7.2.1.2), either
/// the bare array or `{"command": [...]}`.
async fn post_command(core: &Core, dev_id: &str, req: Request<Incoming>) -> ApiResult {
    let body = read_body(req.into_body()).await.map_err(bad)?;
    let parts: Vec<String> = if body.trim_ascii_start().starts_with(b"[") {
        parse_body(&body)?
    } else {
        parse_body::<CommandBody>(&body)?.command
    };
    let command = command_from_parts(&parts).map_err(|e| bad(format!("bad command: {e}")))?;
    let command = absolute(core, command);
    // A DevID that never opened a session: a typo, or a device to come.
    let seen = core.storage.device(dev_id)?.is_some_and(|d| d.sessions > 0);
    let id = core.enqueue(dev_id, &command)?;
    created(&QueuedJson {
        id,
        command: &command,
        device_seen: seen,
    })
}

/// Forgets a device and everything kept for it; its next session starts
/// afresh (and, with `--enroll refuse`, is refused: its credentials go too).
fn delete_device(core: &Core, dev_id: &str) -> ApiResult {
    let deleted = {
        let _guard = crate::state::lock(&core.session_lock);
        core.storage.delete_device(dev_id)?
    };
    if !deleted {
        return Err(not_found(format!("no device `{dev_id}`")));
    }
    tracing::info!("dm-server: device {} deleted", dev_id.escape_debug());
    ok(&DeletedJson { deleted: dev_id })
}

/// Takes a queued command back; 409 once it was sent.
fn delete_command(core: &Core, dev_id: &str, id: &str) -> ApiResult {
    let id: u64 = id.parse().map_err(|_| bad("the command id is a number"))?;
    let _guard = crate::state::lock(&core.session_lock);
    if core.storage.delete_queued_entry(dev_id, id)? {
        return ok(&DeletedJson { deleted: id });
    }
    match core
        .storage
        .entries(dev_id, &[])?
        .into_iter()
        .find(|e| e.id == id)
    {
        Some(e) => Err(ApiError(
            HttpStatus::CONFLICT,
            format!(
                "command {id} is {}: only a queued one can be taken back",
                e.state.as_str()
            ),
        )),
        None => Err(not_found(format!("no command {id} for `{dev_id}`"))),
    }
}

fn list_results(core: &Core, dev_id: &str) -> ApiResult {
    require_device(core, dev_id)?;
    let entries = core.storage.entries(dev_id, &[])?;
    ok(&entries.iter().map(entry_json).collect::<Vec<_>>())
}

fn get_result(core: &Core, dev_id: &str, id: &str) -> ApiResult {
    let id: u64 = id.parse().map_err(|_| bad("the result id is a number"))?;
    let e = core
        .storage
        .entries(dev_id, &[])?
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(|| not_found(format!("no command {id} for `{dev_id}`")))?;
    ok(&entry_json(&e))
}

fn entry_json(e: &Entry) -> EntryJson<'_> {
    EntryJson {
        id: e.id,
        command: &e.command,
        state: e.state.as_str(),
        status: e.status.as_ref().map(|s| StatusJson {
            sc: s.code.as_u16(),
            uris: &s.uris,
        }),
        data: e.data.as_ref().map(|d| body_json(&d.content_type, &d.body)),
        async_status: e.async_status,
        async_alert: e.async_alert,
    }
}

fn list_alerts(core: &Core, dev_id: &str) -> ApiResult {
    require_device(core, dev_id)?;
    let alerts = core.storage.alerts(dev_id)?;
    ok(&alerts.iter().map(alert_json).collect::<Vec<_>>())
}

fn alert_json(a: &StoredAlert) -> AlertJson<'_> {
    AlertJson {
        id: a.id,
        alert: &a.alert,
        command: a.entry,
        received: a.received,
    }
}

fn list_registrations(core: &Core, dev_id: &str) -> ApiResult {
    let regs = core.storage.registrations(dev_id)?;
    let list: Vec<RegistrationJson<'_>> = regs
        .iter()
        .map(|r| {
            let (kind, moid, client_uri) = match &r.kind {
                RegistrationKind::Default { moid } => ("DEFAULT", Some(moid.as_str()), None),
                RegistrationKind::Sub { client_uri } => ("SUB", None, Some(client_uri.as_str())),
            };
            RegistrationJson {
                id: r.id,
                kind,
                moid,
                client_uri,
                server_uri: &r.server_uri,
            }
        })
        .collect();
    ok(&list)
}

async fn post_registration(core: &Core, dev_id: &str, req: Request<Incoming>) -> ApiResult {
    let (kind, server_uri) = match json_body(req).await? {
        RegistrationBody::Default { moid, server_uri } => {
            (RegistrationKind::Default { moid }, server_uri)
        }
        RegistrationBody::Sub {
            client_uri,
            server_uri,
        } => (RegistrationKind::Sub { client_uri }, server_uri),
    };
    let server_uri = absolute_uri(core, &server_uri);
    let id = core.register(dev_id, kind, &server_uri)?;
    created(&RegisteredJson {
        id,
        server_uri: &server_uri,
    })
}

fn list_repository(core: &Core, dev_id: &str) -> ApiResult {
    let paths = core.storage.resources(dev_id)?;
    let list: Vec<PathJson<'_>> = paths
        .iter()
        .map(|p| PathJson {
            path: p,
            url: core.repo_url(dev_id, p),
            download_url: core.download_url(dev_id, p),
        })
        .collect();
    ok(&list)
}

fn get_resource(core: &Core, dev_id: &str, path: &str) -> ApiResult {
    let r = core
        .storage
        .resource(dev_id, path)?
        .ok_or_else(|| not_found(format!("no resource `{path}` for `{dev_id}`")))?;
    ok(&ResourceJson {
        body: body_json(&r.content_type, &r.body),
        origin: &r.origin,
        updated: r.updated,
        url: core.repo_url(dev_id, path),
        download_url: core.download_url(dev_id, path),
    })
}

async fn put_resource(core: &Core, dev_id: &str, path: &str, req: Request<Incoming>) -> ApiResult {
    let content_type = header_str(&req, "content-type")
        .unwrap_or("application/octet-stream")
        .to_owned();
    let body = read_body(req.into_body()).await.map_err(bad)?;
    check_upload(&content_type, &body).map_err(|(status, reason)| ApiError(status, reason))?;
    let resource = Resource {
        content_type,
        body: body.to_vec(),
        origin: "admin".into(),
        updated: now(),
    };
    core.storage.put_resource(dev_id, path, &resource)?;
    ok(&PathJson {
        path,
        url: core.repo_url(dev_id, path),
        download_url: core.download_url(dev_id, path),
    })
}

async fn post_show(core: &Core, dev_id: &str, req: Request<Incoming>) -> ApiResult {
    let body: ShowBody = json_body(req).await?;
    let prompt = body
        .prompt
        .as_deref()
        .unwrap_or("Allow the pending operation?");
    // The signed link (issue 19, item 6): what the user is given.
    let (uiid, url) = core.show(dev_id, prompt)?;
    created(&ShowJson { uiid, url })
}

fn body_json<'a>(content_type: &'a str, body: &'a [u8]) -> BodyJson<'a> {
    let is_json = dm_core::package::media_type::essence(content_type).ends_with("json");
    let text = std::str::from_utf8(body).ok();
    BodyJson {
        content_type,
        json: is_json
            .then(|| serde_json::from_slice::<Json>(body).ok())
            .flatten(),
        text,
        base64: text
            .is_none()
            .then(|| base64::engine::general_purpose::STANDARD.encode(body)),
    }
}

/// A ServerURI written as a path (`/repo/...`, `/dm`) is made absolute
/// against this server's DM address, so operators need not know it.
fn absolute_uri(core: &Core, uri: &str) -> String {
    if uri.starts_with('/') {
        format!("{}{uri}", core.base_url)
    } else {
        uri.to_owned()
    }
}

fn absolute(core: &Core, command: Command) -> Command {
    let fix = |s: ServerUri| ServerUri::new(absolute_uri(core, s.as_str()));
    match command {
        Command::Hget {
            server_uri,
            client_uri,
        } => Command::Hget {
            server_uri: fix(server_uri),
            client_uri,
        },
        Command::Hput {
            server_uri,
            client_uris,
        } => Command::Hput {
            server_uri: fix(server_uri),
            client_uris,
        },
        Command::Hpost {
            server_uri,
            client_uris,
        } => Command::Hpost {
            server_uri: fix(server_uri),
            client_uris,
        },
        Command::Exec {
            client_uri,
            server_uri,
        } => Command::Exec {
            client_uri,
            server_uri: server_uri.map(fix),
        },
        Command::Show { server_uri } => Command::Show {
            server_uri: fix(server_uri),
        },
        Command::Cont { server_uri } => Command::Cont {
            server_uri: fix(server_uri),
        },
        Command::Default { server_uri, moid } => Command::Default {
            server_uri: fix(server_uri),
            moid,
        },
        Command::Sub {
            server_uri,
            client_uri,
        } => Command::Sub {
            server_uri: fix(server_uri),
            client_uri,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn reason<T: std::fmt::Debug + DeserializeOwned>(body: &str) -> String {
        match parse_body::<T>(body.as_bytes()) {
            Ok(v) => panic!("{body} was taken: {v:?}"),
            Err(ApiError(status, reason)) => {
                assert_eq!(status, HttpStatus::BAD_REQUEST);
                reason
            }
        }
    }

    #[test]
    fn a_malformed_body_is_refused_naming_the_field() {
        assert!(reason::<RegistrationBody>(r#"{"kind": "SUB"}"#).contains("client_uri"));
        assert!(reason::<RegistrationBody>(r#"{"kind": "FROB"}"#).contains("FROB"));
        let typo = r#"{"kind": "DEFAULT", "moid": "m", "server_uri": "/r", "mod": 1}"#;
        assert!(reason::<RegistrationBody>(typo).contains("mod"));
        assert!(reason::<NotificationBody>(r#"{"udp": "x"}"#).contains("server_id"));
        assert!(reason::<NotifyBody>(r#"{"req_mos": "yes"}"#).contains("boolean"));
        assert!(reason::<NotifyBody>(r#"{"con_type": ["wlan"]}"#).contains("con_type"));
        assert!(reason::<CommandBody>(r#"{"cmd": ["END"]}"#).contains("cmd"));
        assert!(reason::<ShowBody>("[]").contains("struct ShowBody"));
    }

    #[test]
    fn an_empty_body_is_an_empty_object() {
        let n: NotifyBody = parse_body(b" \n").unwrap();
        assert!(!n.req_mos && n.con_types.is_empty() && n.to.is_none());
        let s: ShowBody = parse_body(b"").unwrap();
        assert!(s.prompt.is_none());
    }

    #[test]
    fn field_values_are_checked_after_parsing() {
        let n: NotificationBody = parse_body(br#"{"server_id": "A", "secret": "%%"}"#).unwrap();
        let Err(ApiError(status, reason)) = n.into_config() else {
            panic!("bad base64 taken")
        };
        assert_eq!(status, HttpStatus::BAD_REQUEST);
        assert!(reason.contains("`secret`"), "{reason}");
        let n: NotifyBody = parse_body(br#"{"con_types": ["wlan", "pigeon"]}"#).unwrap();
        let Err(ApiError(_, reason)) = n.into_request() else {
            panic!("unknown bearer taken")
        };
        assert!(reason.contains("`con_types`"), "{reason}");
        let n: NotificationBody =
            parse_body(br#"{"server_id": "A", "secret": "c2VjcmV0", "auth_data": "YXV0aA=="}"#)
                .unwrap();
        let config = n.into_config().unwrap();
        assert_eq!(
            (config.secret.as_deref(), config.auth_data.as_slice()),
            (Some(&b"secret"[..]), &b"auth"[..])
        );
    }

    #[test]
    fn bodies_are_reported_as_json_text_or_base64() {
        let b = serde_json::to_value(body_json("application/dmmo+json", b"[1]")).unwrap();
        assert_eq!(
            b,
            serde_json::json!({"content_type": "application/dmmo+json", "json": [1], "text": "[1]"})
        );
        let b = serde_json::to_value(body_json("application/octet-stream", b"\xff")).unwrap();
        assert_eq!(
            b,
            serde_json::json!({"content_type": "application/octet-stream", "base64": "/w=="})
        );
    }
}
