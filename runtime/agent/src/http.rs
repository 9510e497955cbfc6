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
use crate::repository::{RepositoryPolicy, Resolver};
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
    /// there (a Digest form it cannot compute).
    #[error("{uri} asks for authentication: {reason}")]
    Auth { uri: String, reason: String },
    /// spec 9.2.2: plain http:// to a host other than the device itself,
    /// refused before any connection is made.
    #[error(
        "refused plain http:// to {uri}: sessions and data go only over TLS (spec 9.2.2), \
         plain HTTP only to loopback hosts (127.0.0.0/8, ::1, localhost) unless \
         --allow-plain-http is given"
    )]
    PlainHttpRefused { uri: String },
    /// The server asked for credentials over plain http://: none are sent
    /// there, not even to loopback (spec 9.2.2, 9.2.1).
    #[error("{uri} asks for HTTP {scheme} credentials, but credentials go only over https://")]
    CredentialsOverPlainHttp { uri: String, scheme: AuthScheme },
    /// A Data Repository at an address the repository policy refuses
    /// (docs/architecture.md "Data Repository addresses"), refused before
    /// any connection is made. A host name is checked by the connector's
    /// resolver instead and fails as [`HttpError::Transport`].
    #[error(
        "data repository {uri} refused: {address} is a {class} address, and neither is the \
         DM Server that named it nor does --repository-allow name it"
    )]
    RepositoryRefused {
        uri: String,
        address: std::net::IpAddr,
        class: crate::repository::AddressClass,
    },
}

/// An HTTP authentication scheme the DM Server may challenge for (9.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    Basic,
    Digest,
}

impl std::fmt::Display for AuthScheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuthScheme::Basic => "Basic",
            AuthScheme::Digest => "Digest",
        })
    }
}

/// Where requests may go over plain http:// (spec 9.2.2: "A session SHALL
/// NOT take place over mechanism weaker than TLS"). https:// goes anywhere.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PlainHttp {
    /// Only to the device itself (127.0.0.0/8, ::1, `localhost`): nothing
    /// leaves the host unencrypted (the demo, tests, a local proxy).
    #[default]
    LoopbackOnly,
    /// To any host (`--allow-plain-http`): sessions and data travel in the
    /// clear. Credentials still never do.
    Anywhere,
}

impl PlainHttp {
    /// Whether a plain http:// request may go to `host` (as [`hyper::Uri`]
    /// gives it: IPv6 literals in brackets).
    pub fn allows(self, host: &str) -> bool {
        self == PlainHttp::Anywhere || is_loopback_host(host)
    }
}

/// Whether `host` names the device itself without any name lookup that a
/// network could answer: an IPv4 address in 127.0.0.0/8, `::1` (bracketed
/// or not, or IPv4-mapped 127.x), or exactly `localhost`. A name that only
/// starts like one (`127.0.0.1.example`, `localhost.example`) is not.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(std::net::IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// Password credentials for the one origin they are used with, the DM
/// Server's (never a data repository elsewhere), spec 9.2.1: HTTP Basic
/// (RFC 7617) sent with every request; HTTP Digest (RFC 2617/7616) in
/// answer to the server's challenge. Either only over https:// (9.2.2: no
/// session over anything weaker than TLS, so no credentials in the clear).
#[derive(Clone)]
struct Password {
    origin: String,
    user: String,
    password: String,
    /// The origin is https://: the only one credentials are sent to.
    secure: bool,
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
    /// compute, or any credentials over plain http://.
    fn answer(
        &self,
        headers: &hyper::HeaderMap,
        sent_digest: bool,
        method: &Method,
        uri: &str,
        target: &str,
    ) -> Result<Option<String>, HttpError> {
        let challenges: Vec<&str> = headers
            .get_all(hyper::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let digest = challenges
            .iter()
            .map(|c| Challenge::parse(c))
            .find(|c| !matches!(c, Err(DigestError::NotDigest)));
        let basic = challenges
            .iter()
            .any(|c| c.trim_start().to_ascii_lowercase().starts_with("basic"));
        if !self.secure {
            // spec 9.2.2: not even a Digest answer goes out in the clear.
            let scheme = match (digest.is_some(), basic) {
                (true, _) => Some(AuthScheme::Digest),
                (false, true) => Some(AuthScheme::Basic),
                (false, false) => None,
            };
            return match scheme {
                Some(scheme) => Err(HttpError::CredentialsOverPlainHttp {
                    uri: uri.to_owned(),
                    scheme,
                }),
                None => Ok(None),
            };
        }
        match digest {
            Some(Ok(challenge)) if !sent_digest || challenge.stale => {
                *self.digest.lock().unwrap_or_else(|e| e.into_inner()) = Some((challenge, 0));
                Ok(self.next_digest(method, target))
            }
            Some(Err(e)) => Err(HttpError::Auth {
                uri: uri.to_owned(),
                reason: e.to_string(),
            }),
            _ => Ok(None),
        }
    }

    /// The Digest answer for one more request under the last challenge.
    fn next_digest(&self, method: &Method, target: &str) -> Option<String> {
        if !self.secure {
            return None;
        }
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

/// The hyper client under [`HttpClient`]: its connector dials only what
/// the [`Resolver`] gives it for a host name.
type Inner = Client<HttpsConnector<HttpConnector<Resolver>>, Full<Bytes>>;

/// An HTTP and HTTPS (spec 9.2) client with a per-request time limit.
#[derive(Clone)]
pub struct HttpClient {
    inner: Inner,
    /// The TLS configuration `inner` speaks, for a client derived from
    /// this one with another resolver.
    tls: Arc<rustls::ClientConfig>,
    /// Where a Data Repository may be; `None`: anywhere (DM sessions).
    repository: Option<Arc<RepositoryPolicy>>,
    timeout: Duration,
    password: Option<Password>,
    /// Where plain http:// may go (9.2.2); loopback only unless set.
    plain_http: PlainHttp,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.timeout)
            .field("plain_http", &self.plain_http)
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
        Ok(HttpClient::with_tls_config(
            timeout,
            tls::client_config(anchors, identity)?,
        ))
    }

    /// A client that speaks TLS as `config` says.
    pub(crate) fn with_tls_config(timeout: Duration, config: rustls::ClientConfig) -> HttpClient {
        let tls = Arc::new(config);
        HttpClient {
            inner: connect_with(&tls, Resolver::system()),
            tls,
            repository: None,
            timeout,
            password: None,
            plain_http: PlainHttp::default(),
        }
    }

    /// This client (its TLS, credentials and plain-HTTP policy) for the
    /// requests of one repository transfer: it connects only to addresses
    /// `policy` allows, checked on the address dialled (a literal in
    /// [`HttpClient::call`], a name's every address in the resolver). Its
    /// connection pool is its own, so no connection made for a DM session
    /// is reused for a repository.
    pub(crate) fn for_repository(&self, policy: RepositoryPolicy) -> HttpClient {
        let policy = Arc::new(policy);
        HttpClient {
            inner: connect_with(&self.tls, Resolver::with_policy(policy.clone())),
            repository: Some(policy),
            ..self.clone()
        }
    }

    /// Lets plain http:// requests go where `policy` says (spec 9.2.2).
    pub fn with_plain_http(mut self, policy: PlainHttp) -> HttpClient {
        self.plain_http = policy;
        self
    }

    /// Authenticates to `server_uri`'s origin with a user name and
    /// password: HTTP Basic on every request and HTTP Digest whenever the
    /// server challenges for it, both only when the origin is https://.
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
        let secure = origin.starts_with("https://");
        let basic = secure.then(|| {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("Basic {token}")
        });
        self.password = Some(Password {
            origin,
            user: user.to_owned(),
            password: password.to_owned(),
            secure,
            basic,
            digest: Arc::default(),
        });
        Ok(self)
    }

    /// Sends one request and reads the whole response, answering an HTTP
    /// Digest challenge of the DM Server once (spec 9.2.1). A plain http://
    /// request the policy refuses fails before any connection (9.2.2).
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
        // spec 9.2.2: checked on the very URI the connector dials.
        if parsed.scheme_str() == Some("http")
            && !self.plain_http.allows(parsed.host().unwrap_or(""))
        {
            return Err(HttpError::PlainHttpRefused {
                uri: uri.to_owned(),
            });
        }
        if let Some(policy) = &self.repository {
            // The connector dials an address literal without asking the
            // resolver: checked here, on the same parse it makes.
            let host = parsed.host().unwrap_or("");
            let bare = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            if let Ok(address) = bare.parse::<std::net::IpAddr>() {
                if let Err(class) = policy.check(host, address) {
                    let refused = HttpError::RepositoryRefused {
                        uri: uri.to_owned(),
                        address,
                        class,
                    };
                    tracing::warn!("dmctl client: {refused}");
                    return Err(refused);
                }
            }
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
            if let Some(answer) = p.answer(&parts.headers, sent_digest, &method, uri, &target)? {
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

/// A hyper client speaking `tls` whose connector resolves names with
/// `resolver`.
fn connect_with(tls: &rustls::ClientConfig, resolver: Resolver) -> Inner {
    let mut http = HttpConnector::new_with_resolver(resolver);
    // https:// goes through the TLS layer above; this one dials TCP.
    http.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls.clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new()).build(connector)
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

    #[test]
    fn loopback_hosts_are_127_slash_8_ipv6_one_and_localhost_only() {
        for host in [
            "127.0.0.1",
            "127.255.3.4",
            "[::1]",
            "::1",
            "[::ffff:127.0.0.1]",
            "localhost",
            "LocalHost",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "127.0.0.1.evil.com",
            "localhost.evil",
            "evil.localhost",
            "localhost.",
            "128.0.0.1",
            "0.0.0.0",
            "192.0.2.1",
            "[::2]",
            "[::]",
            "[::ffff:10.0.0.1]",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    /// The host the connector dials, as the policy sees it.
    fn allowed(uri: &str) -> bool {
        let parsed: hyper::Uri = uri.parse().unwrap();
        PlainHttp::LoopbackOnly.allows(parsed.host().unwrap_or(""))
    }

    #[test]
    fn the_policy_reads_the_host_the_connector_dials() {
        assert!(allowed("http://127.0.0.1:8080/dm"));
        assert!(allowed("http://[::1]:8080/dm"));
        assert!(allowed("http://localhost/dm"));
        // User info that looks like loopback does not make the host one.
        assert!(!allowed("http://127.0.0.1@evil.example/dm"));
        assert!(!allowed("http://localhost.evil:80/dm"));
        assert!(PlainHttp::Anywhere.allows("evil.example"));
    }

    #[tokio::test]
    async fn plain_http_to_another_host_is_refused_unless_allowed() {
        let uri = "http://192.0.2.1:9/dm";
        let client = HttpClient::new(Duration::from_millis(300));
        let started = std::time::Instant::now();
        let refused = client.call(Method::POST, uri, &[], Vec::new()).await;
        assert!(
            matches!(&refused, Err(HttpError::PlainHttpRefused { uri: u }) if u == uri),
            "{refused:?}"
        );
        // Refused before dialling: no connect attempt to wait for.
        assert!(started.elapsed() < Duration::from_millis(100));
        // https:// to the same host is not the policy's business.
        let tls = client
            .call(Method::POST, "https://192.0.2.1:9/dm", &[], Vec::new())
            .await;
        assert!(
            !matches!(tls, Err(HttpError::PlainHttpRefused { .. })),
            "{tls:?}"
        );
        let opted_in = client.with_plain_http(PlainHttp::Anywhere);
        let tried = opted_in.call(Method::POST, uri, &[], Vec::new()).await;
        assert!(
            matches!(
                tried,
                Err(HttpError::Transport { .. } | HttpError::Timeout { .. })
            ),
            "{tried:?}"
        );
    }

    /// A loopback server answering every request with `response`; returns
    /// its address and the requests' heads.
    async fn answering(
        response: &'static str,
    ) -> (std::net::SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = heads.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = vec![0u8; 8192];
                let mut len = 0;
                while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf[len..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => len += n,
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..len]).into_owned());
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        });
        (addr, heads)
    }

    #[tokio::test]
    async fn a_repository_client_dials_only_addresses_its_policy_allows() {
        use crate::repository::AddressClass;
        let (addr, heads) =
            answering("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").await;
        let client = HttpClient::new(Duration::from_secs(5));
        // A server elsewhere than loopback: no loopback repository, not
        // by address, not by a name that resolves there.
        let elsewhere = client.for_repository(RepositoryPolicy::default());
        let literal = format!("http://{addr}/x");
        let refused = elsewhere.call(Method::GET, &literal, &[], Vec::new()).await;
        assert!(
            matches!(
                &refused,
                Err(HttpError::RepositoryRefused {
                    class: AddressClass::Loopback,
                    ..
                })
            ),
            "{refused:?}"
        );
        for host in ["localhost", "[::ffff:127.0.0.1]", "0.0.0.0"] {
            let uri = format!("http://{host}:{}/x", addr.port());
            let refused = elsewhere.call(Method::GET, &uri, &[], Vec::new()).await;
            assert!(refused.is_err(), "{uri}: {refused:?}");
        }
        assert!(heads.lock().unwrap().is_empty(), "no connection was made");
        // The session client itself is not restricted.
        assert!(client
            .call(Method::GET, &literal, &[], Vec::new())
            .await
            .is_ok());
        // A server on loopback may name loopback repositories.
        let home = RepositoryPolicy::new(vec![AddressClass::Loopback], Arc::from([]));
        let by_name = format!("http://localhost:{}/x", addr.port());
        let fetched = client
            .for_repository(home)
            .call(Method::GET, &by_name, &[], Vec::new())
            .await
            .unwrap();
        assert_eq!(&fetched.response.body[..], b"ok");
        assert_eq!(heads.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn no_credentials_of_any_kind_over_plain_http_even_to_loopback() {
        for (challenge, scheme) in [
            (
                "Digest realm=\"dm\", nonce=\"abc\", qop=\"auth\"",
                AuthScheme::Digest,
            ),
            ("Basic realm=\"dm\"", AuthScheme::Basic),
        ] {
            let response: &'static str = format!(
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {challenge}\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .leak();
            let (addr, heads) = answering(response).await;
            let uri = format!("http://{addr}/dm");
            let client = HttpClient::new(Duration::from_secs(5))
                .with_password(&uri, "alice", "s3cret")
                .unwrap();
            let result = client.call(Method::POST, &uri, &[], Vec::new()).await;
            assert!(
                matches!(&result, Err(HttpError::CredentialsOverPlainHttp { scheme: s, .. }) if *s == scheme),
                "{result:?}"
            );
            let heads = heads.lock().unwrap().clone();
            assert_eq!(heads.len(), 1, "not asked again: {heads:?}");
            assert!(
                !heads[0].to_ascii_lowercase().contains("authorization"),
                "{heads:?}"
            );
        }
    }
}
