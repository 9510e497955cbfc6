//! The admin API of the reference DM Server: HTTP + JSON on its own
//! address (`dmctl server --admin ADDR`). Operators list devices, queue
//! any of the twelve commands (spec 5.3), read statuses, GET data and
//! alerts, trigger notifications (5.2.1), manage DEFAULT and SUB
//! registrations, fill the Data Repository and read SHOW answers. Bad
//! requests get a 4xx with `{"error": "..."}`. README "Admin API" lists
//! the routes with curl examples.

use base64::Engine;
use bytes::Bytes;
use dm_core::{Command, ConnectionType, ServerUri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode as HttpStatus};
use serde_json::{json, Value as Json};
use std::convert::Infallible;
use std::sync::Arc;

use super::repository::check_upload;
use super::{
    command_from_parts, header_str, now, percent_decode, read_body, reply, Core, DeviceRow, Entry,
    NotificationConfig, NotifyRequest, RegistrationKind, Resource, ServerError, StorageError,
    StoredAlert,
};

type Reply = Response<Full<Bytes>>;

/// A request the API refuses, with its HTTP status.
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

fn json_reply(status: HttpStatus, value: &Json) -> Reply {
    reply(status, "application/json", value.to_string())
}

pub(crate) async fn handle(core: Arc<Core>, req: Request<Incoming>) -> Result<Reply, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    Ok(match route(&core, req).await {
        Ok((status, value)) => json_reply(status, &value),
        Err(ApiError(status, reason)) => {
            core.log(format!(
                "admin {method} {path}: {} {reason}",
                status.as_u16()
            ));
            json_reply(status, &json!({ "error": reason }))
        }
    })
}

/// The body as JSON; an empty body is `{}`.
async fn json_body(req: Request<Incoming>) -> Result<Json, ApiError> {
    let body = read_body(req.into_body()).await.map_err(bad)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(&body).map_err(|e| bad(format!("body is not JSON: {e}")))
}

fn str_field<'a>(v: &'a Json, name: &str) -> Result<Option<&'a str>, ApiError> {
    match v.get(name) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(format!("`{name}` must be a string"))),
    }
}

fn required<'a>(v: &'a Json, name: &str) -> Result<&'a str, ApiError> {
    str_field(v, name)?.ok_or_else(|| bad(format!("`{name}` is required")))
}

fn bool_field(v: &Json, name: &str) -> Result<bool, ApiError> {
    match v.get(name) {
        None | Some(Json::Null) => Ok(false),
        Some(Json::Bool(b)) => Ok(*b),
        Some(_) => Err(bad(format!("`{name}` must be true or false"))),
    }
}

fn b64_field(v: &Json, name: &str) -> Result<Option<Vec<u8>>, ApiError> {
    str_field(v, name)?
        .map(|s| {
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| bad(format!("`{name}` is not base64: {e}")))
        })
        .transpose()
}

async fn route(core: &Core, req: Request<Incoming>) -> Result<(HttpStatus, Json), ApiError> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api", "devices"] if method == Method::GET => {
            let devices = core.storage.devices()?;
            let list: Vec<Json> = devices
                .iter()
                .map(|d| device_json(core, d))
                .collect::<Result<_, _>>()?;
            Ok((HttpStatus::OK, Json::Array(list)))
        }
        ["api", "ui", uiid] if method == Method::GET => {
            let uiid: u64 = uiid.parse().map_err(|_| bad("uiid is a number"))?;
            let s = core
                .storage
                .ui_session(uiid)?
                .ok_or_else(|| not_found(format!("no UI session {uiid}")))?;
            Ok((
                HttpStatus::OK,
                json!({ "uiid": s.uiid, "dev_id": s.dev_id, "prompt": s.prompt, "choice": s.choice }),
            ))
        }
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
        _ => Err(not_found(format!("no admin route {method} {path}"))),
    }
}

fn require_device(core: &Core, dev_id: &str) -> Result<DeviceRow, ApiError> {
    core.storage
        .device(dev_id)?
        .ok_or_else(|| not_found(format!("no device `{dev_id}`")))
}

async fn device_route(
    core: &Core,
    dev_id: &str,
    rest: &[&str],
    method: Method,
    req: Request<Incoming>,
) -> Result<(HttpStatus, Json), ApiError> {
    match (method, rest) {
        (Method::GET, []) => {
            let d = require_device(core, dev_id)?;
            Ok((HttpStatus::OK, device_json(core, &d)?))
        }
        (Method::POST, ["commands"]) => {
            let body = json_body(req).await?;
            let spec = body.get("command").unwrap_or(&body);
            let parts: Vec<String> =
                serde_json::from_value(spec.clone()).map_err(|e| bad(e.to_string()))?;
            let command = command_from_parts(&parts).map_err(|e| bad(e.to_string()))?;
            let command = absolute(core, command);
            let id = core.enqueue(dev_id, &command)?;
            Ok((
                HttpStatus::CREATED,
                json!({ "id": id, "command": command.to_json() }),
            ))
        }
        (Method::GET, ["results"]) => {
            require_device(core, dev_id)?;
            let entries = core.storage.entries(dev_id, &[])?;
            Ok((
                HttpStatus::OK,
                Json::Array(entries.iter().map(entry_json).collect()),
            ))
        }
        (Method::GET, ["results", id]) => {
            let id: u64 = id.parse().map_err(|_| bad("the result id is a number"))?;
            let e = core
                .storage
                .entries(dev_id, &[])?
                .into_iter()
                .find(|e| e.id == id)
                .ok_or_else(|| not_found(format!("no command {id} for `{dev_id}`")))?;
            Ok((HttpStatus::OK, entry_json(&e)))
        }
        (Method::GET, ["alerts"]) => {
            require_device(core, dev_id)?;
            let alerts = core.storage.alerts(dev_id)?;
            Ok((
                HttpStatus::OK,
                Json::Array(alerts.iter().map(alert_json).collect()),
            ))
        }
        (Method::PUT, ["notification"]) => {
            let body = json_body(req).await?;
            let config = NotificationConfig {
                server_id: required(&body, "server_id")?.to_owned(),
                secret: b64_field(&body, "secret")?,
                auth_data: b64_field(&body, "auth_data")?.unwrap_or_default(),
                udp: str_field(&body, "udp")?.map(str::to_owned),
            };
            core.configure_notification(dev_id, config)?;
            Ok((HttpStatus::OK, json!({ "configured": dev_id })))
        }
        (Method::POST, ["notify"]) => {
            let body = json_body(req).await?;
            let con_types = match body.get("con_types") {
                None | Some(Json::Null) => Vec::new(),
                Some(Json::Array(a)) => a
                    .iter()
                    .map(|t| {
                        t.as_str()
                            .ok_or_else(|| bad("`con_types` holds strings"))?
                            .parse::<ConnectionType>()
                            .map_err(bad)
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(bad("`con_types` must be an array")),
            };
            let request = NotifyRequest {
                req_mos: bool_field(&body, "req_mos")?,
                timestamp: bool_field(&body, "timestamp")?,
                preferred_con_types: con_types,
                to: str_field(&body, "to")?.map(str::to_owned),
            };
            let id = core.notify(dev_id, &request).await?;
            Ok((HttpStatus::OK, json!({ "notification_id": id })))
        }
        (Method::GET, ["registrations"]) => {
            let regs = core.storage.registrations(dev_id)?;
            let list: Vec<Json> = regs
                .iter()
                .map(|r| {
                    let mut v = match &r.kind {
                        RegistrationKind::Default { moid } => {
                            json!({ "kind": "DEFAULT", "moid": moid })
                        }
                        RegistrationKind::Sub { client_uri } => {
                            json!({ "kind": "SUB", "client_uri": client_uri })
                        }
                    };
                    v["id"] = json!(r.id);
                    v["server_uri"] = json!(r.server_uri);
                    v
                })
                .collect();
            Ok((HttpStatus::OK, Json::Array(list)))
        }
        (Method::POST, ["registrations"]) => {
            let body = json_body(req).await?;
            let server_uri = absolute_uri(core, required(&body, "server_uri")?);
            let kind = match required(&body, "kind")? {
                "DEFAULT" => RegistrationKind::Default {
                    moid: required(&body, "moid")?.to_owned(),
                },
                "SUB" => RegistrationKind::Sub {
                    client_uri: required(&body, "client_uri")?.to_owned(),
                },
                other => return Err(bad(format!("`kind` is DEFAULT or SUB, not `{other}`"))),
            };
            let id = core.register(dev_id, kind, &server_uri)?;
            Ok((
                HttpStatus::CREATED,
                json!({ "id": id, "server_uri": server_uri }),
            ))
        }
        (Method::DELETE, ["registrations", id]) => {
            let id: u64 = id
                .parse()
                .map_err(|_| bad("the registration id is a number"))?;
            core.unregister(dev_id, id)?;
            Ok((HttpStatus::OK, json!({ "deleted": id })))
        }
        (Method::GET, ["repository"]) => {
            let paths = core.storage.resources(dev_id)?;
            let list: Vec<Json> = paths
                .iter()
                .map(|p| json!({ "path": p, "url": core.repo_url(dev_id, p) }))
                .collect();
            Ok((HttpStatus::OK, Json::Array(list)))
        }
        (Method::GET, ["repository", path @ ..]) if !path.is_empty() => {
            let path = path.join("/");
            let r = core
                .storage
                .resource(dev_id, &path)?
                .ok_or_else(|| not_found(format!("no resource `{path}` for `{dev_id}`")))?;
            let mut v = body_json(&r.content_type, &r.body);
            v["origin"] = json!(r.origin);
            v["updated"] = json!(r.updated);
            v["url"] = json!(core.repo_url(dev_id, &path));
            Ok((HttpStatus::OK, v))
        }
        (Method::PUT, ["repository", path @ ..]) if !path.is_empty() => {
            let path = path.join("/");
            let content_type = header_str(&req, "content-type")
                .unwrap_or("application/octet-stream")
                .to_owned();
            let body = read_body(req.into_body()).await.map_err(bad)?;
            check_upload(&content_type, &body)
                .map_err(|(status, reason)| ApiError(status, reason))?;
            core.storage.put_resource(
                dev_id,
                &path,
                &Resource {
                    content_type,
                    body: body.to_vec(),
                    origin: "admin".into(),
                    updated: now(),
                },
            )?;
            Ok((
                HttpStatus::OK,
                json!({ "path": path, "url": core.repo_url(dev_id, &path) }),
            ))
        }
        (Method::DELETE, ["repository", path @ ..]) if !path.is_empty() => {
            let path = path.join("/");
            if !core.storage.delete_resource(dev_id, &path)? {
                return Err(not_found(format!("no resource `{path}` for `{dev_id}`")));
            }
            Ok((HttpStatus::OK, json!({ "deleted": path })))
        }
        (Method::POST, ["show"]) => {
            let body = json_body(req).await?;
            let prompt = str_field(&body, "prompt")?.unwrap_or("Allow the pending operation?");
            let uiid = core.show(dev_id, prompt)?;
            Ok((
                HttpStatus::CREATED,
                json!({ "uiid": uiid, "url": format!("{}{}?uiid={uiid}", core.base_url, super::UI_PATH) }),
            ))
        }
        (m, r) => Err(ApiError(
            HttpStatus::NOT_FOUND,
            format!("no admin route {m} /api/devices/{dev_id}/{}", r.join("/")),
        )),
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

fn device_json(core: &Core, d: &DeviceRow) -> Result<Json, ApiError> {
    let entries = core.storage.entries(&d.dev_id, &[])?;
    let count = |s: super::EntryState| entries.iter().filter(|e| e.state == s).count();
    Ok(json!({
        "dev_id": d.dev_id,
        "mos": d.mos,
        "sessions": d.sessions,
        "ended": d.ended,
        "last_session": d.last_session,
        "queued": count(super::EntryState::Queued),
        "async_pending": count(super::EntryState::AsyncPending),
        // The secret is never reported, only whether one is set.
        "notification": d.notification.as_ref().map(|n| json!({
            "server_id": n.server_id,
            "udp": n.udp,
            "signed": n.secret.is_some(),
        })),
        "last_notification_id": d.last_notification_id,
    }))
}

/// A body as JSON: parsed when it is JSON, text when UTF-8, else base64.
fn body_json(content_type: &str, body: &[u8]) -> Json {
    let mut v = json!({ "content_type": content_type });
    if dm_core::package::media_type::essence(content_type).ends_with("json") {
        if let Ok(parsed) = serde_json::from_slice::<Json>(body) {
            v["json"] = parsed;
        }
    }
    match std::str::from_utf8(body) {
        Ok(text) => v["text"] = json!(text),
        Err(_) => v["base64"] = json!(base64::engine::general_purpose::STANDARD.encode(body)),
    }
    v
}

fn entry_json(e: &Entry) -> Json {
    json!({
        "id": e.id,
        "command": e.command.to_json(),
        "state": e.state.as_str(),
        "status": e.status.as_ref().map(|s| json!({ "sc": s.code.as_u16(), "URI": s.uris })),
        "data": e.data.as_ref().map(|d| body_json(&d.content_type, &d.body)),
        "async_status": e.async_status,
        "async_alert": e.async_alert,
    })
}

fn alert_json(a: &StoredAlert) -> Json {
    json!({
        "id": a.id,
        "alert": a.alert,
        "command": a.entry,
        "received": a.received,
    })
}
