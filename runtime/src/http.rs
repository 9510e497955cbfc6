//! HTTP plumbing shared by the client and the server: one request/response
//! call with a time limit, and the record of an exchange for transcripts.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

/// Largest body this runtime reads from a peer (a DoS bound, not a spec one).
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// One HTTP message as seen on the wire, for transcripts and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `POST http://...` for a request, `200 OK` for a response.
    pub start_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A request and the response it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub request: Message,
    pub response: Message,
}

/// Something that wants to see every HTTP exchange of a session.
pub type Observer = Arc<dyn Fn(&Exchange) + Send + Sync>;

/// Why an HTTP call produced no usable response.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("invalid URI `{uri}`: {reason}")]
    BadUri { uri: String, reason: String },
    #[error("no response from {uri} within {seconds} s")]
    Timeout { uri: String, seconds: u64 },
    #[error("request to {uri} failed: {reason}")]
    Transport { uri: String, reason: String },
    #[error("response body from {uri} could not be read: {reason}")]
    Body { uri: String, reason: String },
}

/// A plain-HTTP client with a per-request time limit.
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl HttpClient {
    pub fn new(timeout: Duration) -> HttpClient {
        HttpClient {
            inner: Client::builder(TokioExecutor::new()).build_http(),
            timeout,
        }
    }

    /// Sends one request and reads the whole response.
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Exchange, HttpError> {
        let bad_uri = |reason: String| HttpError::BadUri {
            uri: uri.to_owned(),
            reason,
        };
        let parsed: hyper::Uri = uri
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| bad_uri(e.to_string()))?;
        if parsed.scheme_str() != Some("http") {
            return Err(bad_uri("only http:// is supported by this build".into()));
        }
        let mut builder = Request::builder().method(method.clone()).uri(parsed);
        for (k, v) in headers {
            builder = builder.header(*k, v.as_str());
        }
        let request = Message {
            start_line: format!("{method} {uri}"),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            body: body.clone(),
        };
        let req = builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| bad_uri(e.to_string()))?;
        let seconds = self.timeout.as_secs();
        let timeout = || HttpError::Timeout {
            uri: uri.to_owned(),
            seconds,
        };
        let work = async {
            let resp = self
                .inner
                .request(req)
                .await
                .map_err(|e| HttpError::Transport {
                    uri: uri.to_owned(),
                    reason: error_chain(&e),
                })?;
            let (parts, body) = resp.into_parts();
            let bytes = Limited::new(body, MAX_BODY)
                .collect()
                .await
                .map_err(|e| HttpError::Body {
                    uri: uri.to_owned(),
                    reason: e.to_string(),
                })?
                .to_bytes();
            Ok::<_, HttpError>((parts, bytes))
        };
        let (parts, bytes) = tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| timeout())??;
        let response = Message {
            start_line: format!(
                "{} {}",
                parts.status.as_u16(),
                parts.status.canonical_reason().unwrap_or("")
            ),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: bytes.to_vec(),
        };
        Ok(Exchange { request, response })
    }
}

/// The status code of a response message.
pub fn status_of(m: &Message) -> u16 {
    m.start_line
        .split(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
