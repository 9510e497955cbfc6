//! Small HTTP helpers shared by the server's endpoints: replies, headers,
//! bounded body reads, percent coding and form pairs.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Incoming};
use hyper::{Request, Response, StatusCode as HttpStatus};
use tokio::sync::Semaphore;

use crate::MAX_BODY;

pub(crate) fn reply(
    status: HttpStatus,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

pub(crate) fn header_str<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// What a request's body is read under: the connection's body timeout
/// and the server's budget of bytes being read
/// ([`Limits`](crate::Limits)).
#[derive(Debug, Clone)]
pub(crate) struct BodyLimits {
    pub(crate) timeout: Duration,
    pub(crate) budget: Arc<Semaphore>,
}

impl BodyLimits {
    pub(crate) fn new(limits: &crate::Limits) -> BodyLimits {
        let permits = limits.body_budget.clamp(MAX_BODY, Semaphore::MAX_PERMITS);
        BodyLimits {
            timeout: limits.body_timeout,
            budget: Arc::new(Semaphore::new(permits)),
        }
    }
}

tokio::task_local! {
    /// The [`BodyLimits`] of the server serving the request, set around
    /// each request so that every route's [`read_body`] keeps them.
    pub(crate) static BODY_LIMITS: BodyLimits;
}

/// Reads a body up to [`MAX_BODY`], first reserving its size from the
/// server's body budget, both within the body timeout (defaults outside a
/// served connection).
pub(crate) async fn read_body(body: Incoming) -> Result<Bytes, String> {
    let limits = BODY_LIMITS
        .try_with(BodyLimits::clone)
        .unwrap_or_else(|_| BodyLimits::new(&crate::Limits::default()));
    // The announced length, or the most a body without one may bring.
    let hint = body.size_hint();
    let size = hint
        .upper()
        .map_or(MAX_BODY as u64, |u| u.min(MAX_BODY as u64));
    let size = u32::try_from(size).unwrap_or(u32::MAX);
    let timeout = limits.timeout;
    let read = async move {
        let _reserved = match size {
            0 => None,
            n => Some(
                limits
                    .budget
                    .acquire_many_owned(n)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
        };
        Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .map_err(|e| format!("unreadable body: {e}"))
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(r) => r,
        Err(_) => Err(format!("body not received within {timeout:?}")),
    }
}

/// Decodes `%XX` escapes (and `+` as space when `form`).
pub(crate) fn percent_decode(s: &str, form: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if form => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// `%XX`-encodes what may not stand in a path segment.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:@!$'()*,;=".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `name=value` pairs of a query string or form body.
pub(crate) fn form_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((percent_decode(k, true)?, percent_decode(v, true)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn percent_coding_round_trips() {
        let s = "UUID:1 2/ä";
        assert_eq!(percent_decode(&percent_encode(s), false).unwrap(), s);
        assert_eq!(percent_decode("%zz", false), None);
        assert_eq!(
            form_pairs("uiid=3&choice=a+b"),
            vec![("uiid".into(), "3".into()), ("choice".into(), "a b".into())]
        );
    }
}
