//! The DM endpoint (spec 5.2, server side): Package#1 opens a session,
//! Package#3 brings the statuses of the commands sent, each answered with
//! the next Package#2 from the device's queue.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use dm_core::multipart::{Part, ResponseBody};
use dm_core::package::{header, media_type};
use dm_core::{Alert, Command, InstanceSelector, NodeSelector, Package1, Package2, Status};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode as HttpStatus};

use hyper::header::{HeaderValue, WWW_AUTHENTICATE};

use crate::auth::{Presented, Verdict};
use crate::http::{header_str, read_body, reply};
use crate::state::{lock, Core};
use crate::{
    now, repository, show, EntryState, PeerCertificates, ServerError, StorageError, DM_PATH,
    REPO_PATH, UI_PATH,
};

impl Core {
    /// Package#1 (spec 5.2.2): a new session.
    /// `authenticated`: false for a device admitted without credentials
    /// (`--enroll flag`), which its record then says.
    fn on_package1(
        &self,
        dev_id: &str,
        body: &[u8],
        authenticated: bool,
    ) -> Result<Package2, ServerError> {
        let p1 = Package1::parse(body).map_err(|e| ServerError::BadRequest(e.to_string()))?;
        let _guard = lock(&self.session_lock);
        let mut row = self.ensure_device(dev_id)?;
        self.storage.set_unauthenticated(dev_id, !authenticated)?;
        row.sessions += 1;
        row.last_session = Some(now());
        self.session_log.started(dev_id);
        if p1.mos.is_some() {
            row.mos = p1.mos;
        }
        self.storage.put_device(&row)?;
        // spec 5.2.2: a session answering a DM Notification names it.
        if let Some(id) = p1.alerts.iter().find_map(Alert::notification_id) {
            tracing::info!("dm-server: device {dev_id:?}: session answers DM Notification {id}");
        }
        // A new session forgets whatever an aborted one left in flight.
        for mut e in self.storage.entries(dev_id, &[EntryState::Sent])? {
            e.state = EntryState::Lost;
            self.storage.put_entry(e)?;
        }
        self.store_alerts(dev_id, &p1.alerts)?;
        if self.default_commands.is_empty() {
            return self.next_package2(dev_id);
        }
        if self
            .storage
            .entries(dev_id, &[EntryState::Queued])?
            .is_empty()
        {
            for c in &self.default_commands {
                self.storage.add_entry(dev_id, c)?;
            }
        }
        self.next_package2(dev_id)
    }

    /// Package#3 (spec 5.2.4): statuses matched to the commands sent, in
    /// order; GET data by part name (Appendix F); alerts stored.
    fn on_package3(
        &self,
        dev_id: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Package2, ServerError> {
        let response = ResponseBody::decode(content_type, body)
            .map_err(|e| ServerError::BadRequest(e.to_string()))?;
        let _guard = lock(&self.session_lock);
        let sent = self.storage.entries(dev_id, &[EntryState::Sent])?;
        if sent.is_empty() {
            return Err(ServerError::BadRequest(
                "Package#3 outside a session".into(),
            ));
        }
        if response.package.statuses.len() != sent.len() {
            // The package cannot be matched: the commands are lost, not
            // answered with somebody else's statuses.
            for mut e in sent.iter().cloned() {
                e.state = EntryState::Lost;
                self.storage.put_entry(e)?;
            }
            return Err(ServerError::BadRequest(format!(
                "Package#3 has {} statuses for {} commands",
                response.package.statuses.len(),
                sent.len()
            )));
        }
        self.session_log.statuses(
            dev_id,
            response.package.statuses.iter().map(|s| s.code.as_u16()),
        );
        let mut data: HashMap<String, Part> = response
            .data
            .into_iter()
            .filter_map(|p| p.name.clone().map(|n| (n, p)))
            .collect();
        for (i, (mut entry, status)) in sent.into_iter().zip(response.package.statuses).enumerate()
        {
            let asynchronous = matches!(
                entry.command,
                Command::Exec {
                    server_uri: Some(_),
                    ..
                }
            ) && status.code == dm_core::StatusCode::ACCEPTED;
            entry.state = if asynchronous {
                EntryState::AsyncPending
            } else {
                EntryState::Done
            };
            entry.status = Some(status);
            entry.data = data.remove(&i.to_string());
            self.storage.put_entry(entry)?;
        }
        self.store_alerts(dev_id, &response.package.alerts)?;
        self.next_package2(dev_id)
    }

    /// Stores Generic Alerts; one reporting an asynchronous EXEC (5.4.1)
    /// is matched to it by SourceURI and its `sc` becomes the final status.
    pub(crate) fn store_alerts(&self, dev_id: &str, alerts: &[Alert]) -> Result<(), StorageError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let mut pending = self.storage.entries(dev_id, &[EntryState::AsyncPending])?;
        for alert in alerts {
            let matched = alert.source_uri.as_deref().and_then(|src| {
                pending
                    .iter()
                    .position(|e| exec_matches(&e.command, src))
                    .map(|i| pending.remove(i))
            });
            let id =
                self.storage
                    .add_alert(dev_id, alert, matched.as_ref().map(|e| e.id), now())?;
            if let Some(mut e) = matched {
                e.state = EntryState::Done;
                e.async_alert = Some(id);
                e.async_status = alert
                    .data
                    .as_ref()
                    .and_then(|d| d.get("sc"))
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|v| u16::try_from(v).ok());
                self.storage.put_entry(e)?;
            }
        }
        Ok(())
    }

    /// Every queued command up to the first END, or END alone when it is
    /// next or nothing is queued (spec 5.3.9: no statuses come back for a
    /// package with END, so END never travels with other commands).
    fn next_package2(&self, dev_id: &str) -> Result<Package2, ServerError> {
        let queued = self.storage.entries(dev_id, &[EntryState::Queued])?;
        if queued.is_empty() || matches!(queued[0].command, Command::End) {
            if let Some(mut end) = queued.into_iter().next() {
                end.state = EntryState::Done;
                end.status = Some(Status::new(dm_core::StatusCode::OK));
                self.storage.put_entry(end)?;
            }
            if let Some(mut row) = self.storage.device(dev_id)? {
                row.ended += 1;
                self.storage.put_device(&row)?;
            }
            self.session_log.ended(dev_id);
            return Ok(Package2::new([Command::End]));
        }
        let mut commands = Vec::new();
        for mut e in queued {
            if matches!(e.command, Command::End) {
                break;
            }
            e.state = EntryState::Sent;
            // Signed as sent, so that a device without credentials can
            // use the URLs and nobody else can (issue 19, item 6).
            commands.push(self.signer.sign_command(&self.base_url, dev_id, &e.command));
            self.storage.put_entry(e)?;
        }
        self.session_log.sent(dev_id, commands.len());
        Ok(Package2::new(commands))
    }
}

/// Whether an asynchronous EXEC's Generic Alert (SourceURI: the node that
/// ran, `MOID/MIID/path`) reports this command: same MOID, the command's
/// instance selects that MIID or any, and each path segment matches.
fn exec_matches(command: &Command, source_uri: &str) -> bool {
    let Command::Exec {
        client_uri,
        server_uri: Some(_),
    } = command
    else {
        return false;
    };
    let Some(rest) = source_uri
        .strip_prefix(client_uri.moid())
        .and_then(|r| r.strip_prefix('/'))
    else {
        return false;
    };
    let (miid, path) = rest.split_once('/').unwrap_or((rest, ""));
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let instance_ok = match client_uri.instance() {
        InstanceSelector::Miid(m) => m == miid,
        _ => true,
    };
    instance_ok
        && segments.len() == client_uri.path().len()
        && client_uri
            .path()
            .iter()
            .zip(&segments)
            .all(|(sel, seg)| match sel {
                NodeSelector::Name(n) => n == seg,
                NodeSelector::XName(_) | NodeSelector::All => true,
            })
}

pub(crate) async fn handle(
    core: Arc<Core>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    if path.starts_with(REPO_PATH) {
        return Ok(repository::handle(&core, req).await);
    }
    if path == UI_PATH || path.starts_with("/ui/") {
        return Ok(show::handle(&core, req).await);
    }
    // CONT (5.3.8) may move a session to any URI below /dm.
    if path != DM_PATH && !path.starts_with("/dm/") {
        return Ok(core.reject(HttpStatus::NOT_FOUND, format!("no DM endpoint at {path}")));
    }
    if req.method() != Method::POST {
        return Ok(core.reject(
            HttpStatus::METHOD_NOT_ALLOWED,
            "DM packages are POSTed".into(),
        ));
    }
    let dev_id = header_str(&req, header::DEV_ID).map(str::to_owned);
    // spec 9.2.1: what the request brings to prove its DevID, read before
    // the body takes the request.
    let authorization = header_str(&req, hyper::header::AUTHORIZATION.as_str()).map(str::to_owned);
    let peer = req.extensions().get::<PeerCertificates>().cloned();
    let psk = req.extensions().get::<crate::PskDevId>().cloned();
    let method = req.method().as_str().to_owned();
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| path.clone(), |pq| pq.as_str().to_owned());
    let content_type = header_str(&req, hyper::header::CONTENT_TYPE.as_str())
        .unwrap_or("")
        .to_owned();
    let body = match read_body(req.into_body()).await {
        Ok(b) => b,
        Err(reason) => return Ok(core.reject(HttpStatus::BAD_REQUEST, reason)),
    };
    let Some(dev_id) = dev_id else {
        return Ok(core.reject(
            HttpStatus::BAD_REQUEST,
            format!("no {} header", header::DEV_ID),
        ));
    };
    // Every package, Package#1 and each Package#3, before anything of the
    // device's is read or changed.
    let presented = Presented {
        dev_id: &dev_id,
        method: &method,
        target: &target,
        authorization: authorization.as_deref(),
        peer: peer.as_ref(),
        psk: psk.as_ref(),
    };
    let authenticated = match core.auth.check(core.storage.as_ref(), &presented) {
        Ok(Verdict::Authenticated) => true,
        Ok(Verdict::Unknown) => false,
        Ok(Verdict::Challenge { reason, stale }) => {
            let mut response = core.reject(HttpStatus::UNAUTHORIZED, reason);
            for c in core.auth.challenges(stale) {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    response.headers_mut().append(WWW_AUTHENTICATE, v);
                }
            }
            return Ok(response);
        }
        Ok(Verdict::Forbidden(reason)) => return Ok(core.reject(HttpStatus::FORBIDDEN, reason)),
        Err(e) => {
            return Ok(core.reject(HttpStatus::INTERNAL_SERVER_ERROR, format!("{dev_id}: {e}")))
        }
    };
    let result = match media_type::essence(&content_type).as_str() {
        media_type::PACKAGE1 => core.on_package1(&dev_id, &body, authenticated),
        media_type::PACKAGE3 | media_type::MULTIPART => {
            core.on_package3(&dev_id, &content_type, &body)
        }
        _ => {
            return Ok(core.reject(
                HttpStatus::UNSUPPORTED_MEDIA_TYPE,
                format!("{dev_id}: Content-Type `{content_type}` is not a DM package"),
            ))
        }
    };
    Ok(match result {
        // No OMADM-Accept here: the repository takes every format the
        // spec mandates (5.5), so there is nothing more to announce.
        Ok(p2) => reply(HttpStatus::OK, media_type::PACKAGE2, p2.to_vec()),
        Err(ServerError::BadRequest(reason)) => {
            core.reject(HttpStatus::BAD_REQUEST, format!("{dev_id}: {reason}"))
        }
        Err(e) => core.reject(HttpStatus::INTERNAL_SERVER_ERROR, format!("{dev_id}: {e}")),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use dm_core::ServerUri;

    fn exec(uri: &str) -> Command {
        Command::Exec {
            client_uri: uri.parse().unwrap(),
            server_uri: Some(ServerUri::new("http://x/dm")),
        }
    }

    #[test]
    fn async_exec_alerts_match_their_command_by_source_uri() {
        let src = "urn:oma:mo:oma-dcmo:1.0/cam/Operations/Enable";
        assert!(exec_matches(
            &exec("urn:oma:mo:oma-dcmo:1.0//Operations/Enable"),
            src
        ));
        assert!(exec_matches(
            &exec("urn:oma:mo:oma-dcmo:1.0/cam/Operations/Enable"),
            src
        ));
        assert!(exec_matches(
            &exec("urn:oma:mo:oma-dcmo:1.0/*/Operations/*"),
            src
        ));
        assert!(!exec_matches(
            &exec("urn:oma:mo:oma-dcmo:1.0/usb/Operations/Enable"),
            src
        ));
        assert!(!exec_matches(
            &exec("urn:oma:mo:oma-dcmo:1.0//Operations/Disable"),
            src
        ));
        assert!(!exec_matches(
            &exec("urn:oma:mo:oma-dcmo:1.0//Operations"),
            src
        ));
        let sync = Command::Exec {
            client_uri: "urn:oma:mo:oma-dcmo:1.0//Operations/Enable"
                .parse()
                .unwrap(),
            server_uri: None,
        };
        assert!(!exec_matches(&sync, src), "only asynchronous EXECs wait");
    }
}
