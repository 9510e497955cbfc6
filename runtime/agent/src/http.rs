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

use crate::digest_auth::{Challenge, DigestError};
use crate::tls::{self, Identity, TlsError, TrustAnchors};

/// Largest body this runtime reads from a peer (a DoS bound, not a spec one).
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// One HTTP message as seen on the wire, for transcripts and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `POST http://...` for a request, `200 OK` for a response.
    pub start_line: String,
    pub headers: Vec<(String, String)>,
    /// As sent or received: the buffer hyper had, shared, not copied.
    pub body: Bytes,
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
    /// The server asked for authentication this client will not give
    /// there (HTTP Basic over plain http://, a Digest form it cannot
    /// compute).
    #[error("{uri} asks for authentication: {reason}")]
    Auth { uri: String, reason: String },
}

/// Password credentials for the one origin they are used with, the DM
/// Server's (never a data repository elsewhere), spec 9.2.1: HTTP Basic
/// (RFC 7617) sent with every request, and only over https://; HTTP Digest
/// (RFC 2617/7616) in answer to the server's challenge, over either scheme,
/// since the password itself never travels.
#[derive(Clone)]
struct Password {
    origin: String,
    user: String,
    password: String,
    /// The Basic header, on an https:// origin only.
    basic: Option<String>,
    /// The server's last Digest challenge and the count of its uses
    /// (`nc`), so later requests answer it up front.
    digest: Arc<std::sync::Mutex<Option<(Challenge, u32)>>>,
}

impl Password {
    /// What to send again after a 401 with `headers`: the answer to its
    /// Digest challenge, unless the request already answered one that is
    /// not stale (a wrong password: the 401 stands). `Err` when the server
    /// asks for what this client will not give: a Digest form it cannot
    /// compute, or Basic over plain http://.
    fn answer(
        &self,
        headers: &hyper::HeaderMap,
        sent_digest: bool,
        method: &Method,
        target: &str,
    ) -> Result<Option<String>, String> {
        let challenges: Vec<&str> = headers
            .get_all(hyper::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let digest = challenges
            .iter()
            .map(|c| Challenge::parse(c))
            .find(|c| !matches!(c, Err(DigestError::NotDigest)));
        match digest {
            Some(Ok(challenge)) if !sent_digest || challenge.stale => {
                *self.digest.lock().unwrap_or_else(|e| e.into_inner()) = Some((challenge, 0));
                Ok(self.next_digest(method, target))
            }
            Some(Err(e)) => Err(e.to_string()),
            _ if self.basic.is_none()
                && challenges
                    .iter()
                    .any(|c| c.trim_start().to_ascii_lowercase().starts_with("basic")) =>
            {
                Err("HTTP Basic, but a password is sent only over https://".into())
            }
            _ => Ok(None),
        }
    }

    /// The Digest answer for one more request under the last challenge.
    fn next_digest(&self, method: &Method, target: &str) -> Option<String> {
        let mut state = self.digest.lock().unwrap_or_else(|p| p.into_inner());
        let (challenge, nc) = state.as_mut()?;
        *nc += 1;
        Some(challenge.authorization(
            &self.user,
            &self.password,
            method.as_str(),
            target,
            *nc,
            &client_nonce(),
        ))
    }
}

/// A fresh client nonce: 16 random bytes in hex.
fn client_nonce() -> String {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 16];
    // The system generator failing leaves zeros: the nonce then only
    // repeats, which weakens nothing the password depends on.
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    dm_core::notification::hex(&bytes)
}

/// An HTTP and HTTPS (spec 9.2) client with a per-request time limit.
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    password: Option<Password>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.timeout)
            .field(
                "password_origin",
                &self.password.as_ref().map(|b| &b.origin),
            )
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
            password: None,
        })
    }

    /// Authenticates to `server_uri`'s origin with a user name and
    /// password: HTTP Basic on every request when the origin is https://,
    /// HTTP Digest whenever the server challenges for it.
    pub fn with_password(
        mut self,
        server_uri: &str,
        user: &str,
        password: &str,
    ) -> Result<HttpClient, TlsError> {
        use base64::Engine as _;
        let origin = tls::origin(server_uri).ok_or_else(|| {
            TlsError::Policy(format!("no http:// or https:// origin in {server_uri}"))
        })?;
        let basic = origin.starts_with("https://").then(|| {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("Basic {token}")
        });
        self.password = Some(Password {
            origin,
            user: user.to_owned(),
            password: password.to_owned(),
            basic,
            digest: Arc::default(),
        });
        Ok(self)
    }

    /// Sends one request and reads the whole response, answering an HTTP
    /// Digest challenge of the DM Server once (spec 9.2.1).
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, String)],
        body: impl Into<Bytes>,
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
        let password = self
            .password
            .as_ref()
            .filter(|p| tls::origin(uri).as_deref() == Some(p.origin.as_str()));
        let target = parsed
            .path_and_query()
            .map_or("/", hyper::http::uri::PathAndQuery::as_str)
            .to_owned();
        let request = Outgoing {
            method: &method,
            parsed: &parsed,
            uri,
            headers,
            body: body.into(),
        };
        // Up front: the answer to the last Digest challenge, else Basic.
        let mut authorization =
            password.and_then(|p| p.next_digest(&method, &target).or_else(|| p.basic.clone()));
        let (mut parts, mut bytes) = self.send(&request, authorization.as_deref()).await?;
        if let (hyper::StatusCode::UNAUTHORIZED, Some(p)) = (parts.status, password) {
            let sent_digest = authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Digest "));
            if let Some(answer) = p
                .answer(&parts.headers, sent_digest, &method, &target)
                .map_err(|reason| HttpError::Auth {
                    uri: uri.to_owned(),
                    reason,
                })?
            {
                authorization = Some(answer);
                (parts, bytes) = self.send(&request, authorization.as_deref()).await?;
            }
        }
        Ok(Exchange {
            request: Message {
                start_line: [method.as_str(), " ", uri].concat(),
                headers: recorded_headers(headers, authorization.as_deref()),
                body: request.body,
            },
            response: Message {
                start_line: status_line(parts.status),
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
                body: bytes,
            },
        })
    }

    /// One request on the wire, within the time limit.
    async fn send(
        &self,
        request: &Outgoing<'_>,
        authorization: Option<&str>,
    ) -> Result<(hyper::http::response::Parts, Bytes), HttpError> {
        let &Outgoing {
            method,
            parsed,
            uri,
            headers,
            ref body,
        } = request;
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(parsed.clone());
        for (k, v) in headers {
            builder = builder.header(*k, v.as_str());
        }
        if let Some(a) = authorization {
            builder = builder.header(hyper::header::AUTHORIZATION, a);
        }
        let req = builder
            .body(Full::new(body.clone()))
            .map_err(|e| HttpError::BadUri {
                uri: uri.to_owned(),
                reason: e.to_string(),
            })?;
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
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| HttpError::Timeout {
                uri: uri.to_owned(),
                seconds: self.timeout.as_secs(),
            })?
    }
}

/// What [`HttpClient::call`] sends, once or again after a Digest challenge.
struct Outgoing<'a> {
    method: &'a Method,
    parsed: &'a hyper::Uri,
    uri: &'a str,
    headers: &'a [(&'a str, String)],
    body: Bytes,
}

/// The request headers as a transcript shows them: credentials redacted.
fn recorded_headers(
    headers: &[(&str, String)],
    authorization: Option<&str>,
) -> Vec<(String, String)> {
    let mut recorded: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    if let Some(a) = authorization {
        let scheme = a.split(' ').next().unwrap_or("");
        recorded.push(("Authorization".into(), format!("{scheme} [redacted]")));
    }
    recorded
}

/// `200 OK`: the code and its reason phrase, as a transcript shows it
/// (written without the formatting machinery: one per exchange).
fn status_line(status: hyper::StatusCode) -> String {
    let mut digits = [0u8; 3];
    let code = status.as_u16();
    for (i, d) in digits.iter_mut().enumerate() {
        // A status code has three digits (100-999).
        *d = b'0' + (code / 10u16.pow(2 - i as u32) % 10) as u8;
    }
    let reason = status.canonical_reason().unwrap_or("");
    let mut line = String::with_capacity(4 + reason.len());
    line.push_str(std::str::from_utf8(&digits).unwrap_or("000"));
    line.push(' ');
    line.push_str(reason);
    line
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_code_then_reason() {
        for (code, line) in [(200, "200 OK"), (404, "404 Not Found"), (599, "599 ")] {
            let status = hyper::StatusCode::from_u16(code).unwrap();
            assert_eq!(status_line(status), line);
        }
    }
}
