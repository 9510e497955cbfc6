//! HTTP plumbing shared by the client and the server: one request/response
//! call with a time limit, and the record of an exchange for transcripts.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

use crate::tls::{self, Identity, TlsError, TrustAnchors};

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

/// HTTP Basic credentials (RFC 7617, spec 9.2.1) and the one origin they
/// are sent to: the DM Server's, never a data repository elsewhere.
#[derive(Clone)]
struct Basic {
    origin: String,
    header: String,
}

/// An HTTP and HTTPS (spec 9.2) client with a per-request time limit.
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    basic: Option<Basic>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.timeout)
            .field("basic_origin", &self.basic.as_ref().map(|b| &b.origin))
            .finish()
    }
}

impl HttpClient {
    /// A client that verifies https:// servers against the host's store
    /// and has no credentials of its own.
    pub fn new(timeout: Duration) -> HttpClient {
        match HttpClient::with_tls(timeout, &TrustAnchors::system(), None) {
            Ok(c) => c,
            // Only a client identity can make the TLS configuration fail.
            Err(_) => unreachable!("a TLS configuration without identity"),
        }
    }

    /// A client that verifies https:// servers against `anchors` and
    /// authenticates with `identity` when a server asks for a certificate.
    pub fn with_tls(
        timeout: Duration,
        anchors: &TrustAnchors,
        identity: Option<&Identity>,
    ) -> Result<HttpClient, TlsError> {
        let config = tls::client_config(anchors, identity)?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(HttpClient {
            inner: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
            basic: None,
        })
    }

    /// Sends HTTP Basic credentials on every request to `server_uri`'s
    /// origin, which must be https://: a password never travels in clear.
    pub fn with_basic(
        mut self,
        server_uri: &str,
        user: &str,
        password: &str,
    ) -> Result<HttpClient, TlsError> {
        use base64::Engine as _;
        let origin = tls::origin(server_uri)
            .filter(|o| o.starts_with("https://"))
            .ok_or_else(|| {
                TlsError::Policy(format!(
                    "HTTP Basic credentials are sent only over https://, not to {server_uri}"
                ))
            })?;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.basic = Some(Basic {
            origin,
            header: format!("Basic {token}"),
        });
        Ok(self)
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
        if !matches!(parsed.scheme_str(), Some("http" | "https")) {
            return Err(bad_uri("only http:// and https:// are supported".into()));
        }
        let mut builder = Request::builder().method(method.clone()).uri(parsed);
        for (k, v) in headers {
            builder = builder.header(*k, v.as_str());
        }
        let mut recorded: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        if let Some(basic) = &self.basic {
            if tls::origin(uri).as_deref() == Some(basic.origin.as_str()) {
                builder = builder.header("Authorization", basic.header.as_str());
                // Transcripts and observers never see the credentials.
                recorded.push(("Authorization".into(), "Basic [redacted]".into()));
            }
        }
        let request = Message {
            start_line: format!("{method} {uri}"),
            headers: recorded,
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
