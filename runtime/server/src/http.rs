//! Small HTTP helpers shared by the server's endpoints: replies, headers,
//! bounded body reads, percent coding and form pairs.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode as HttpStatus};

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

tokio::task_local! {
    /// The body timeout of the connection serving the request
    /// ([`Limits::body_timeout`](crate::Limits::body_timeout)), set around
    /// each request so that every route's [`read_body`] keeps it.
    pub(crate) static BODY_TIMEOUT: Duration;
}

/// Reads a body up to [`MAX_BODY`] within the connection's body timeout
/// ([`crate::BODY_TIMEOUT`] outside a served connection).
pub(crate) async fn read_body(body: Incoming) -> Result<Bytes, String> {
    let timeout = BODY_TIMEOUT
        .try_with(|t| *t)
        .unwrap_or(crate::limits::BODY_TIMEOUT);
    match tokio::time::timeout(timeout, Limited::new(body, MAX_BODY).collect()).await {
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(e)) => Err(format!("unreadable body: {e}")),
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
