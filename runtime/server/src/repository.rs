//! The Data Repository (spec 5.1.4, 5.3.1-5.3.3, 5.3.11): per device,
//! `/repo/<DevID>/<path>`. HGET reads what the admin stored there (MO
//! data as `application/dmmo+json`, or a bare value with its own media
//! type); HPUT, HPOST and SUB reports are stored where they are sent.
//! Formats it cannot serve or take get 406 / 415 with `OMADM-Accept`
//! listing what it can (spec 5.5). Each device has a quota of resources
//! and bytes ([`crate::Limits`]); uploads past it are refused, not stored.

use bytes::Bytes;
use dm_core::package::{header, media_type};
use dm_core::MoDataItem;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode as HttpStatus};

use crate::http::{header_str, percent_decode, read_body, reply};
use crate::state::{lock, Core};
use crate::{now, Resource};

/// Media types the repository takes in PUT and POST.
pub(crate) const ACCEPTED_TYPES: [&str; 4] = [
    media_type::MO_DATA,
    "application/json",
    "text/plain",
    "application/octet-stream",
];

/// Checks a body the repository is asked to store: its media type must be
/// one it takes, and MO data must be well-formed (7.2.1.4).
pub(crate) fn check_upload(content_type: &str, body: &[u8]) -> Result<(), (HttpStatus, String)> {
    let kind = media_type::essence(content_type);
    if !ACCEPTED_TYPES.contains(&kind.as_str()) {
        return Err((
            HttpStatus::UNSUPPORTED_MEDIA_TYPE,
            format!("the repository does not take `{content_type}`"),
        ));
    }
    if kind == media_type::MO_DATA {
        MoDataItem::parse_list(body).map_err(|e| (HttpStatus::BAD_REQUEST, e.to_string()))?;
    }
    if kind == "application/json" {
        serde_json::from_slice::<serde_json::Value>(body)
            .map_err(|e| (HttpStatus::BAD_REQUEST, format!("invalid JSON: {e}")))?;
    }
    Ok(())
}

/// Whether an `Accept` header value admits `content_type`.
fn accepts(accept: &str, content_type: &str) -> bool {
    let have = media_type::essence(content_type);
    let (have_type, _) = have.split_once('/').unwrap_or((have.as_str(), ""));
    accept.split(',').any(|range| {
        let mut params = range.split(';');
        let want = params.next().unwrap_or("").trim().to_ascii_lowercase();
        // `q=0` means "not acceptable" (RFC 9110 12.4.2).
        let refused = params.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
        });
        !refused
            && (want == "*/*"
                || want == have
                || want.strip_suffix("/*").is_some_and(|t| t == have_type))
    })
}

fn with_accept(mut r: Response<Full<Bytes>>, types: &str) -> Response<Full<Bytes>> {
    if let Ok(v) = types.parse() {
        r.headers_mut().insert(header::ACCEPT, v);
    }
    r
}

/// Whether the device may store `len` more bytes, replacing a resource of
/// `replaced` bytes (none: a new one) under its quota ([`Limits`]): 413
/// for a body larger than the whole quota, 507 (RFC 4918 11.5) when the
/// device's repository is full. Only the `len` check when `announced`
/// (a Content-Length, before the body is read).
///
/// [`Limits`]: crate::Limits
fn within_quota(
    core: &Core,
    dev_id: &str,
    replaced: Option<u64>,
    len: u64,
    announced: bool,
) -> Result<(), (HttpStatus, String)> {
    let limits = core.limits;
    if len > limits.repo_quota_bytes {
        return Err((
            HttpStatus::PAYLOAD_TOO_LARGE,
            format!(
                "{len} bytes is more than a device's repository quota of {} bytes",
                limits.repo_quota_bytes
            ),
        ));
    }
    if announced {
        return Ok(());
    }
    let internal = |e: crate::StorageError| (HttpStatus::INTERNAL_SERVER_ERROR, e.to_string());
    let paths = core.storage.resources(dev_id).map_err(internal)?;
    let count = paths.len() as u64;
    if count + u64::from(replaced.is_none()) > limits.repo_quota_entries {
        return Err((
            HttpStatus::INSUFFICIENT_STORAGE,
            format!("the device already keeps {count} resources, its quota"),
        ));
    }
    // One body at a time: the storage offers no byte count, and the
    // quota bounds what this reads.
    let mut used = 0u64;
    for p in &paths {
        if let Some(r) = core.storage.resource(dev_id, p).map_err(internal)? {
            used = used.saturating_add(r.body.len() as u64);
        }
    }
    if used
        .saturating_sub(replaced.unwrap_or(0))
        .saturating_add(len)
        > limits.repo_quota_bytes
    {
        return Err((
            HttpStatus::INSUFFICIENT_STORAGE,
            format!(
                "{len} more bytes would pass the device's quota of {} bytes ({used} used)",
                limits.repo_quota_bytes
            ),
        ));
    }
    Ok(())
}

pub(crate) async fn handle(core: &Core, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let raw = req
        .uri()
        .path()
        .trim_start_matches(crate::REPO_PATH)
        .to_owned();
    let Some((dev, path)) = raw.split_once('/') else {
        return core.reject(
            HttpStatus::NOT_FOUND,
            format!("repository path `{raw}` names no resource"),
        );
    };
    let (Some(dev_id), Some(path)) = (percent_decode(dev, false), percent_decode(path, false))
    else {
        return core.reject(HttpStatus::BAD_REQUEST, format!("bad escapes in `{raw}`"));
    };
    if path.is_empty() {
        return core.reject(HttpStatus::NOT_FOUND, "empty repository path".into());
    }
    let method = req.method().clone();
    // Issue 19, item 6: only the owning device, or a URL the server
    // signed for this method, before anything is read or stored. HEAD
    // rides on a GET signature.
    let signed_as = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    let full_path = req.uri().path().to_owned();
    if let Err(refused) = core.authorize(&req, &dev_id, signed_as, &full_path) {
        return *refused;
    }
    match method {
        Method::GET | Method::HEAD => {
            let resource = match core.storage.resource(&dev_id, &path) {
                Ok(Some(r)) => r,
                Ok(None) => {
                    return reply(
                        HttpStatus::NOT_FOUND,
                        "text/plain",
                        format!("no resource {path} for {dev_id}"),
                    )
                }
                Err(e) => return core.reject(HttpStatus::INTERNAL_SERVER_ERROR, e.to_string()),
            };
            if let Some(accept) = header_str(&req, "accept") {
                if !accepts(accept, &resource.content_type) {
                    // spec 5.5: none of the client's types is available.
                    return with_accept(
                        core.reject(
                            HttpStatus::NOT_ACCEPTABLE,
                            format!(
                                "{dev_id}: {path} is `{}`, not in `{accept}`",
                                resource.content_type
                            ),
                        ),
                        &resource.content_type,
                    );
                }
            }
            let body = if method == Method::HEAD {
                Vec::new()
            } else {
                resource.body
            };
            reply(HttpStatus::OK, &resource.content_type, body)
        }
        Method::PUT | Method::POST => {
            let content_type = header_str(&req, "content-type").unwrap_or("").to_owned();
            let announced = header_str(&req, "content-length").and_then(|l| l.parse::<u64>().ok());
            if let Some(len) = announced {
                // Refused before a byte of it is read.
                if let Err((status, reason)) = within_quota(core, &dev_id, None, len, true) {
                    return core.reject(status, format!("{dev_id}: {path}: {reason}"));
                }
            }
            let body = match read_body(req.into_body()).await {
                Ok(b) => b,
                Err(reason) => return core.reject(HttpStatus::BAD_REQUEST, reason),
            };
            if let Err((status, reason)) = check_upload(&content_type, &body) {
                let r = core.reject(status, format!("{dev_id}: {path}: {reason}"));
                return if status == HttpStatus::UNSUPPORTED_MEDIA_TYPE {
                    // spec 5.3.11 / 5.5: say what to retry with.
                    with_accept(r, &ACCEPTED_TYPES.join(", "))
                } else {
                    r
                };
            }
            let resource = Resource {
                content_type,
                body: body.to_vec(),
                origin: method.as_str().to_owned(),
                updated: now(),
            };
            // The quota check and the write under one lock: two uploads
            // at once cannot both fit in the room left for one.
            let stored = {
                let _guard = lock(&core.session_lock);
                let replaced = match core.storage.resource(&dev_id, &path) {
                    Ok(r) => r.map(|r| r.body.len() as u64),
                    Err(e) => return core.reject(HttpStatus::INTERNAL_SERVER_ERROR, e.to_string()),
                };
                let len = body.len() as u64;
                if let Err((status, reason)) = within_quota(core, &dev_id, replaced, len, false) {
                    return core.reject(status, format!("{dev_id}: {path}: {reason}"));
                }
                core.storage
                    .put_resource(&dev_id, &path, &resource)
                    .map(|()| replaced.is_some())
            };
            match stored {
                Ok(true) => reply(HttpStatus::OK, "text/plain", "stored"),
                Ok(false) => reply(HttpStatus::CREATED, "text/plain", "stored"),
                Err(e) => core.reject(HttpStatus::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        _ => core.reject(
            HttpStatus::METHOD_NOT_ALLOWED,
            format!("the repository takes GET, PUT and POST, not {method}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_ranges() {
        assert!(accepts("application/dmmo+json", media_type::MO_DATA));
        assert!(accepts("text/plain, */*;q=0.1", "image/png"));
        assert!(accepts("application/*", "application/dmmo+json; x=1"));
        assert!(!accepts("text/plain", media_type::MO_DATA));
        assert!(!accepts("application/dmmo+json;q=0", media_type::MO_DATA));
    }

    #[test]
    fn uploads_are_checked() {
        assert!(check_upload(
            media_type::MO_DATA,
            br#"[{"ClientURI":"a/b/","MOData":{}}]"#
        )
        .is_ok());
        assert_eq!(
            check_upload(media_type::MO_DATA, b"[1").map_err(|e| e.0),
            Err(HttpStatus::BAD_REQUEST)
        );
        assert_eq!(
            check_upload("image/png", b"").map_err(|e| e.0),
            Err(HttpStatus::UNSUPPORTED_MEDIA_TYPE)
        );
        assert!(check_upload("text/plain; charset=utf-8", b"x").is_ok());
    }
}
