//! The admin routes of the bootstrap server (spec 8.3, 8.4): a device's
//! bootstrap profile, and a push.
//!
//! - `PUT /api/devices/{DevID}/bootstrap`: the account the device gets and
//!   the certificate it asks with; replaces the settings, keeps the count
//!   of bootstraps and the identity the last one issued.
//! - `GET /api/devices/{DevID}/bootstrap`: the profile (no secret).
//! - `POST /api/devices/{DevID}/bootstrap/push`: a server-initiated
//!   bootstrap, now.

use hyper::body::Incoming;
use hyper::{Request, StatusCode as HttpStatus};
use serde::{Deserialize, Serialize};

use super::{bad, json_body, ok, ApiError, ApiResult};
use crate::state::Core;
use crate::storage::BootstrapProfile;

/// The SrvID a profile gets when the request names none.
pub(crate) const DEFAULT_SERVER_ID: &str = "dmctl";
/// The most MOIDs in a Perm list one profile holds.
pub(crate) const MAX_PERM: usize = 64;
/// The longest SrvID, Name, URL or MOID a profile takes.
const MAX_FIELD: usize = 1024;

/// `PUT .../bootstrap`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BootstrapBody {
    server_id: Option<String>,
    name: Option<String>,
    server_uri: Option<String>,
    perm: Option<Vec<String>>,
    certificate_sha256: Option<String>,
    push_url: Option<String>,
    notify_udp: Option<String>,
}

/// A profile as the API shows it.
#[derive(Serialize)]
struct ProfileJson<'a> {
    dev_id: &'a str,
    server_id: &'a str,
    name: &'a str,
    /// The SrvURI the device gets.
    server_uri: String,
    perm: &'a [String],
    certificate_sha256: Option<String>,
    issued_certificate_sha256: Option<String>,
    push_url: Option<&'a str>,
    notify_udp: Option<&'a str>,
    bootstraps: u64,
    last_bootstrap: Option<u64>,
    /// Where the device fetches it (its `--bootstrap-url`).
    bootstrap_url: String,
}

fn not_running() -> ApiError {
    ApiError(
        HttpStatus::CONFLICT,
        "the bootstrap server is not running (dmctl server --bootstrap-listen ADDR, with --tls-cert)"
            .into(),
    )
}

fn show(core: &Core, dev_id: &str, p: &BootstrapProfile) -> ApiResult {
    let bs = core.bootstrap.as_ref().ok_or_else(not_running)?;
    let hex = |f: &[u8; 32]| dm_core::notification::hex(f);
    ok(&ProfileJson {
        dev_id,
        server_id: &p.server_id,
        name: &p.name,
        server_uri: p
            .server_uri
            .clone()
            .unwrap_or_else(|| format!("{}{}", core.base_url, crate::DM_PATH)),
        perm: &p.perm,
        certificate_sha256: p.device_certificate_sha256.as_ref().map(hex),
        issued_certificate_sha256: p.issued_certificate_sha256.as_ref().map(hex),
        push_url: p.push_url.as_deref(),
        notify_udp: p.notify_udp.as_deref(),
        bootstraps: p.bootstraps,
        last_bootstrap: p.last_bootstrap,
        bootstrap_url: format!("{}{}", bs.url, crate::BOOTSTRAP_PATH),
    })
}

fn check_len(what: &str, s: &str) -> Result<(), ApiError> {
    if s.is_empty() || s.len() > MAX_FIELD || s.chars().any(char::is_control) {
        return Err(bad(format!(
            "`{what}` must be 1 to {MAX_FIELD} bytes without control characters"
        )));
    }
    Ok(())
}

/// An `https://` URL with a host (spec 9.3.1.1: a bootstrap, and the
/// credentials it carries, travel over TLS only).
fn check_https(what: &str, url: &str) -> Result<(), ApiError> {
    check_len(what, url)?;
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| bad(format!("`{what}`: not a URL: {e}")))?;
    if uri.scheme_str() != Some("https") || uri.host().is_none() {
        return Err(bad(format!("`{what}` must be an https:// URL with a host")));
    }
    Ok(())
}

impl BootstrapBody {
    /// The profile with these settings, `old`'s history kept.
    fn into_profile(self, old: Option<BootstrapProfile>) -> Result<BootstrapProfile, ApiError> {
        let server_id = self
            .server_id
            .unwrap_or_else(|| DEFAULT_SERVER_ID.to_owned());
        // Also the account's MIID in the ClientURI (spec 6.1): one segment.
        if server_id.is_empty()
            || server_id.len() > 64
            || !server_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(bad(
                "`server_id` must be 1 to 64 of A-Z, a-z, 0-9, `-`, `_`, `.`",
            ));
        }
        let name = self.name.unwrap_or_else(|| format!("{server_id} server"));
        check_len("name", &name)?;
        if let Some(u) = &self.server_uri {
            check_https("server_uri", u)?;
        }
        if let Some(u) = &self.push_url {
            check_https("push_url", u)?;
        }
        let perm = self.perm.unwrap_or_else(|| vec!["*".to_owned()]);
        if perm.is_empty() || perm.len() > MAX_PERM {
            // 12.2: Perm/<x> is OneOrMore.
            return Err(bad(format!("`perm` holds 1 to {MAX_PERM} MOIDs")));
        }
        for m in &perm {
            check_len("perm", m)?;
            if m != "*" && !m.starts_with("urn:") {
                return Err(bad(format!(
                    "`perm`: `{}` is neither an MOID (urn:...) nor `*`",
                    m.escape_debug()
                )));
            }
        }
        if let Some(a) = &self.notify_udp {
            a.parse::<std::net::SocketAddr>()
                .map_err(|_| bad("`notify_udp` must be an IP address and port"))?;
        }
        let device_certificate_sha256 = self
            .certificate_sha256
            .as_deref()
            .map(crate::parse_fingerprint)
            .transpose()
            .map_err(|e| bad(e.to_string()))?;
        let old = old.unwrap_or_default();
        Ok(BootstrapProfile {
            server_id,
            name,
            server_uri: self.server_uri,
            perm,
            device_certificate_sha256,
            issued_certificate_sha256: old.issued_certificate_sha256,
            push_url: self.push_url,
            notify_udp: self.notify_udp,
            bootstraps: old.bootstraps,
            last_bootstrap: old.last_bootstrap,
        })
    }
}

pub(super) async fn put_profile(core: &Core, dev_id: &str, req: Request<Incoming>) -> ApiResult {
    if core.bootstrap.is_none() {
        return Err(not_running());
    }
    let body: BootstrapBody = json_body(req).await?;
    let old = core.storage.bootstrap_profile(dev_id)?;
    let profile = body.into_profile(old)?;
    core.storage.put_bootstrap_profile(dev_id, &profile)?;
    tracing::info!(
        "dm-server: bootstrap profile of {} set (SrvID {})",
        dev_id.escape_debug(),
        profile.server_id
    );
    show(core, dev_id, &profile)
}

pub(super) fn get_profile(core: &Core, dev_id: &str) -> ApiResult {
    let profile = core
        .storage
        .bootstrap_profile(dev_id)?
        .ok_or_else(|| super::not_found(format!("no bootstrap profile for `{dev_id}`")))?;
    show(core, dev_id, &profile)
}

pub(super) async fn push(core: &Core, dev_id: &str) -> ApiResult {
    if core.bootstrap.is_none() {
        return Err(not_running());
    }
    match core.push_bootstrap(dev_id).await {
        Ok(pushed) => ok(&pushed),
        Err(e) => Err(ApiError(e.http_status(), e.to_string())),
    }
}
