//! The admin API's bodies as serde types: what a request may carry
//! (unknown fields refused, so a typo is a 400 naming it) and the JSON
//! shape of each answer.

use base64::Engine;
use dm_core::{Alert, Command, ConnectionType, MoInfo};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::{bad, ApiError};
use crate::{NotificationConfig, NotifyRequest};

// ------------------------------------------------------------ requests

/// `POST .../commands` as an object: `{"command": ["GET", "..."]}`. The
/// bare array is taken as well (see [`super::post_command`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CommandBody {
    pub(super) command: Vec<String>,
}

/// `PUT .../notification`: the device's DMAcc `Auth/Noti` (spec 5.2.1),
/// secret and data base64-encoded as in the DMAcc.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NotificationBody {
    pub(super) server_id: String,
    pub(super) secret: Option<String>,
    pub(super) auth_data: Option<String>,
    pub(super) udp: Option<String>,
}

impl std::fmt::Debug for NotificationBody {
    // The secret never reaches a log, not even through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationBody")
            .field("server_id", &self.server_id)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("auth_data", &self.auth_data)
            .field("udp", &self.udp)
            .finish()
    }
}

impl NotificationBody {
    pub(super) fn into_config(self) -> Result<NotificationConfig, ApiError> {
        let decode = |name: &str, text: Option<String>| {
            text.map(|t| {
                base64::engine::general_purpose::STANDARD
                    .decode(t)
                    .map_err(|e| bad(format!("`{name}` is not base64: {e}")))
            })
            .transpose()
        };
        Ok(NotificationConfig {
            server_id: self.server_id,
            secret: decode("secret", self.secret)?,
            auth_data: decode("auth_data", self.auth_data)?.unwrap_or_default(),
            udp: self.udp,
        })
    }
}

/// `POST .../notify`: the Package#0 options the operator chooses (spec
/// 5.2.1.2, Table 1).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NotifyBody {
    #[serde(default)]
    pub(super) req_mos: bool,
    #[serde(default)]
    pub(super) timestamp: bool,
    /// Names of PREFERRED-CON-TYPE values (`wlan`, `any`, ...).
    #[serde(default)]
    pub(super) con_types: Vec<String>,
    pub(super) to: Option<String>,
}

impl NotifyBody {
    pub(super) fn into_request(self) -> Result<NotifyRequest, ApiError> {
        let preferred_con_types = self
            .con_types
            .iter()
            .map(|t| {
                t.parse::<ConnectionType>()
                    .map_err(|e| bad(format!("`con_types`: {e}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(NotifyRequest {
            req_mos: self.req_mos,
            timestamp: self.timestamp,
            preferred_con_types,
            to: self.to,
        })
    }
}

/// `POST .../registrations`: a DEFAULT (5.3.10) or SUB (5.3.11).
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", deny_unknown_fields)]
pub(super) enum RegistrationBody {
    #[serde(rename = "DEFAULT")]
    Default { moid: String, server_uri: String },
    #[serde(rename = "SUB")]
    Sub {
        client_uri: String,
        server_uri: String,
    },
}

/// `POST .../show`: the prompt of the confirm/decline page (5.3.7).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ShowBody {
    pub(super) prompt: Option<String>,
}

/// `PUT .../credentials` (spec 9.2.1): a password, a client certificate's
/// SHA-256 fingerprint, or both; replaces what the device had.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CredentialsBody {
    pub(super) user: Option<String>,
    pub(super) password: Option<String>,
    pub(super) certificate_sha256: Option<String>,
}

impl std::fmt::Debug for CredentialsBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialsBody")
            .field("user", &self.user)
            .field("certificate_sha256", &self.certificate_sha256)
            .finish_non_exhaustive()
    }
}

/// What a device's credentials now are (never a secret).
#[derive(Serialize)]
pub(super) struct CredentialsJson<'a> {
    pub(super) dev_id: &'a str,
    pub(super) user: Option<&'a str>,
    pub(super) certificate_sha256: Option<String>,
}

// ----------------------------------------------------------- responses

#[derive(Serialize)]
pub(super) struct ErrorJson<'a> {
    pub(super) error: &'a str,
}

#[derive(Serialize)]
pub(super) struct DeviceJson<'a> {
    pub(super) dev_id: &'a str,
    pub(super) mos: Option<&'a [MoInfo]>,
    pub(super) sessions: u64,
    pub(super) ended: u64,
    pub(super) last_session: Option<u64>,
    pub(super) queued: usize,
    pub(super) async_pending: usize,
    pub(super) notification: Option<NotificationJson<'a>>,
    pub(super) last_notification_id: Option<u16>,
    /// Admitted without credentials (`--enroll flag`).
    pub(super) unauthenticated: bool,
}

/// A device's notification settings as reported: the secret never is,
/// only whether one is set.
#[derive(Serialize)]
pub(super) struct NotificationJson<'a> {
    pub(super) server_id: &'a str,
    pub(super) udp: Option<&'a str>,
    pub(super) signed: bool,
}

#[derive(Serialize)]
pub(super) struct UiJson<'a> {
    pub(super) uiid: u64,
    pub(super) dev_id: &'a str,
    pub(super) prompt: &'a str,
    pub(super) choice: Option<&'a str>,
}

#[derive(Serialize)]
pub(super) struct QueuedJson<'a> {
    pub(super) id: u64,
    pub(super) command: &'a Command,
    /// False when the DevID never opened a session: a typo, or a device
    /// still to come.
    pub(super) device_seen: bool,
}

#[derive(Serialize)]
pub(super) struct EntryJson<'a> {
    pub(super) id: u64,
    pub(super) command: &'a Command,
    pub(super) state: &'static str,
    pub(super) status: Option<StatusJson<'a>>,
    pub(super) data: Option<BodyJson<'a>>,
    pub(super) async_status: Option<u16>,
    pub(super) async_alert: Option<u64>,
}

/// A status as Package#3 carries it (spec 7.2.1.3), `URI` always there.
#[derive(Serialize)]
pub(super) struct StatusJson<'a> {
    pub(super) sc: u16,
    #[serde(rename = "URI")]
    pub(super) uris: &'a [String],
}

#[derive(Serialize)]
pub(super) struct AlertJson<'a> {
    pub(super) id: u64,
    pub(super) alert: &'a Alert,
    /// The asynchronous EXEC it reports.
    pub(super) command: Option<u64>,
    pub(super) received: u64,
}

#[derive(Serialize)]
pub(super) struct RegistrationJson<'a> {
    pub(super) id: u64,
    pub(super) kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) moid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) client_uri: Option<&'a str>,
    pub(super) server_uri: &'a str,
}

/// A body as JSON: parsed when it is JSON, text when UTF-8, else base64.
#[derive(Serialize)]
pub(super) struct BodyJson<'a> {
    pub(super) content_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) json: Option<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) base64: Option<String>,
}

#[derive(Serialize)]
pub(super) struct ResourceJson<'a> {
    #[serde(flatten)]
    pub(super) body: BodyJson<'a>,
    pub(super) origin: &'a str,
    pub(super) updated: u64,
    pub(super) url: String,
    /// `url` signed for GET for 24 h: for MO data the device fetches
    /// later (FUMO's PkgURL).
    pub(super) download_url: String,
}

#[derive(Serialize)]
pub(super) struct PathJson<'a> {
    pub(super) path: &'a str,
    pub(super) url: String,
    /// See `ResourceJson::download_url`.
    pub(super) download_url: String,
}

#[derive(Serialize)]
pub(super) struct RegisteredJson<'a> {
    pub(super) id: u64,
    pub(super) server_uri: &'a str,
}

#[derive(Serialize)]
pub(super) struct ShowJson {
    pub(super) uiid: u64,
    pub(super) url: String,
}

#[derive(Serialize)]
pub(super) struct ConfiguredJson<'a> {
    pub(super) configured: &'a str,
}

#[derive(Serialize)]
pub(super) struct NotifiedJson {
    pub(super) notification_id: u16,
}

#[derive(Serialize)]
pub(super) struct DeletedJson<T> {
    pub(super) deleted: T,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_notification_body_in_a_log_shows_no_secret() {
        let n: NotificationBody =
            serde_json::from_str(r#"{"server_id": "A", "secret": "c2VjcmV0"}"#).unwrap();
        let shown = format!("{n:?}");
        assert!(
            !shown.contains("c2VjcmV0") && shown.contains("<redacted>"),
            "{shown}"
        );
    }
}
