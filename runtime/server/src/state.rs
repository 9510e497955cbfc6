//! The state every connection of one server shares ([`Core`]), and what
//! the DM endpoint, the admin API, the repository and the SHOW page all
//! do with it: log a rejection, build a repository URL, queue a command,
//! read a device's record.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use dm_core::Command;
use http_body_util::Full;
use hyper::{Response, StatusCode as HttpStatus};

use hyper::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use hyper::Request;

use crate::auth::{Presented, Verdict};
use crate::http::{percent_encode, reply};
use crate::limits::{escape_truncated, Limits, MAX_LOGGED_INPUT};
use crate::signing::SignatureError;
use crate::{
    CommandResult, DeviceRecord, DeviceRow, EntryState, PeerCertificates, ServerError, Storage,
    StorageError, REPO_PATH,
};

/// The state shared by every connection of one server.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) default_commands: Vec<Command>,
    pub(crate) log_errors: bool,
    /// The last [`Limits::error_history`] rejections, escaped and cut.
    pub(crate) errors: Mutex<VecDeque<String>>,
    pub(crate) limits: Limits,
    /// The body timeout and the budget of body bytes being read.
    pub(crate) bodies: crate::http::BodyLimits,
    /// `http://ADDR` of the DM listener: base of repository and UI URLs.
    pub(crate) base_url: String,
    /// What the admin listener answers to (Host, Origin, tokens).
    pub(crate) admin_guard: crate::admin::AdminGuard,
    /// Serializes the read-modify-write of session handling. Storage calls
    /// are short; the HTTP work around them runs concurrently.
    pub(crate) session_lock: Mutex<()>,
    /// Who may speak for a DevID (spec 9.2.1), and the Digest nonces.
    pub(crate) auth: crate::auth::Authenticator,
    /// Signs the repository and SHOW URLs of the commands sent.
    pub(crate) signer: crate::signing::UrlSigner,
    /// The bootstrap server, when it runs (spec 8.3, 8.4).
    pub(crate) bootstrap: Option<crate::bootstrap::BootstrapServer>,
    /// What each open session did so far, for its log line.
    pub(crate) session_log: crate::session_log::SessionLog,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The log line of a rejected request: control characters escaped, cut
/// at [`MAX_LOGGED_INPUT`].
#[cfg(test)]
fn log_line(reason: &str) -> String {
    format!("dm-server: {}", escape_truncated(reason, MAX_LOGGED_INPUT))
}

impl Core {
    /// Records a rejected request; with `log_errors`, also a `tracing`
    /// warning. The reason carries bytes the peer chose (a path, a
    /// percent-decoded DevID): control characters are escaped so that a
    /// `%0A` cannot forge a second log line, and it is cut at
    /// [`MAX_LOGGED_INPUT`] so that a long path costs no more than a short
    /// one. Only the last [`Limits::error_history`] are kept.
    pub(crate) fn log(&self, reason: String) {
        let kept = escape_truncated(&reason, MAX_LOGGED_INPUT);
        if self.log_errors {
            tracing::warn!("dm-server: {kept}");
        }
        let mut errors = lock(&self.errors);
        while errors.len() >= self.limits.error_history.max(1) {
            errors.pop_front();
        }
        errors.push_back(kept);
    }

    pub(crate) fn reject(&self, status: HttpStatus, reason: String) -> Response<Full<Bytes>> {
        self.log(format!("{} {reason}", status.as_u16()));
        reply(status, "text/plain", reason.into_bytes())
    }

    /// The repository URL of `path` signed for GET until
    /// [`DOWNLOAD_TTL`](crate::signing::DOWNLOAD_TTL) from now: what an
    /// operator writes into MO data the device fetches later.
    pub(crate) fn download_url(&self, dev_id: &str, path: &str) -> String {
        let url = self.repo_url(dev_id, path);
        let target = url.strip_prefix(&self.base_url).unwrap_or(&url);
        let expires = crate::now().saturating_add(crate::signing::DOWNLOAD_TTL);
        let query = self.signer.query("GET", target, expires);
        format!("{url}?{query}")
    }

    pub(crate) fn repo_url(&self, dev_id: &str, path: &str) -> String {
        format!(
            "{}{REPO_PATH}{}/{}",
            self.base_url,
            percent_encode(dev_id),
            path.trim_start_matches('/')
        )
    }

    /// Whether a repository or SHOW request for `dev_id`'s data may go on
    /// (issue 19, item 6): a valid, unexpired signature for `sig_method` on
    /// `sig_path` in its query, or the device's own credentials, checked
    /// as the DM endpoint checks a package (spec 9.2.1). A device admitted
    /// without credentials (`--enroll flag`) has only the signed URLs.
    /// `Err`: the 401 or 403 to send; nothing was read or changed.
    pub(crate) fn authorize<B>(
        &self,
        req: &Request<B>,
        dev_id: &str,
        sig_method: &str,
        sig_path: &str,
    ) -> Result<(), Box<Response<Full<Bytes>>>> {
        let signature = match self.signer.verify(sig_method, sig_path, req.uri().query()) {
            Ok(()) => return Ok(()),
            Err(SignatureError::Missing) => None,
            Err(e) => Some(e),
        };
        let method = req.method().as_str();
        let target = req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().path(), |pq| pq.as_str());
        let presented = Presented {
            dev_id,
            method,
            target,
            authorization: req
                .headers()
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
            peer: req.extensions().get::<PeerCertificates>(),
            psk: req.extensions().get::<crate::PskDevId>(),
        };
        let what = format!("{method} {} for {dev_id}", req.uri().path());
        let unauthorized = |reason: String, stale: bool| {
            let mut r = self.reject(HttpStatus::UNAUTHORIZED, reason);
            for c in self.auth.challenges(stale) {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    r.headers_mut().append(WWW_AUTHENTICATE, v);
                }
            }
            r
        };
        let verdict = self.auth.check(self.storage.as_ref(), &presented);
        let refused = match verdict {
            Ok(Verdict::Authenticated) => return Ok(()),
            Ok(Verdict::Unknown) => match signature {
                Some(e) => self.reject(HttpStatus::FORBIDDEN, format!("{what}: {e}")),
                None => unauthorized(
                    format!("{what}: needs the device's credentials or a signed URL"),
                    false,
                ),
            },
            Ok(Verdict::Challenge { reason, stale }) => {
                unauthorized(format!("{what}: {reason}"), stale)
            }
            Ok(Verdict::Forbidden(reason)) => {
                self.reject(HttpStatus::FORBIDDEN, format!("{what}: {reason}"))
            }
            Err(e) => self.reject(HttpStatus::INTERNAL_SERVER_ERROR, format!("{what}: {e}")),
        };
        Err(Box::new(refused))
    }

    pub(crate) fn enqueue(&self, dev_id: &str, command: &Command) -> Result<u64, ServerError> {
        let _guard = lock(&self.session_lock);
        self.ensure_device(dev_id)?;
        Ok(self.storage.add_entry(dev_id, command)?)
    }

    /// The device row, created when missing.
    pub(crate) fn ensure_device(&self, dev_id: &str) -> Result<DeviceRow, StorageError> {
        if let Some(d) = self.storage.device(dev_id)? {
            return Ok(d);
        }
        let d = DeviceRow {
            dev_id: dev_id.to_owned(),
            ..DeviceRow::default()
        };
        self.storage.put_device(&d)?;
        Ok(d)
    }

    pub(crate) fn record(&self, dev_id: &str) -> Result<Option<DeviceRecord>, StorageError> {
        let Some(row) = self.storage.device(dev_id)? else {
            return Ok(None);
        };
        let entries = self.storage.entries(dev_id, &[])?;
        let alerts = self.storage.alerts(dev_id)?;
        Ok(Some(DeviceRecord {
            dev_id: row.dev_id,
            mos: row.mos,
            alerts: alerts.into_iter().map(|a| a.alert).collect(),
            queue: entries
                .iter()
                .filter(|e| e.state == EntryState::Queued)
                .map(|e| e.command.clone())
                .collect(),
            results: entries
                .into_iter()
                .filter_map(|e| {
                    Some(CommandResult {
                        status: e.status?,
                        command: e.command,
                        data: e.data,
                        id: e.id,
                        async_status: e.async_status,
                    })
                })
                .collect(),
            sessions: usize::try_from(row.sessions).unwrap_or(usize::MAX),
            ended: usize::try_from(row.ended).unwrap_or(usize::MAX),
            last_session: row.last_session,
            unauthenticated: self.storage.is_unauthenticated(dev_id)?,
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::http::percent_decode;

    #[test]
    fn a_rejection_is_logged_on_one_line() {
        let reason = percent_decode("no device `IMEI:1%0Adm-server: 200 forged%0D`", false);
        let line = log_line(&reason.unwrap());
        assert!(!line.contains(['\n', '\r']), "{line}");
        assert_eq!(
            line,
            "dm-server: no device `IMEI:1\\ndm-server: 200 forged\\r`"
        );
    }
}
