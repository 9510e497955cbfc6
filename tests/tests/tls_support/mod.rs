//! Test PKI and an HTTPS front for the TLS and bootstrap tests: a CA made
//! in the test (rcgen), and a TLS-terminating HTTP server that records
//! what it sees, optionally demands a client certificate or HTTP Basic
//! credentials, and forwards everything else to a plain upstream (the
//! reference DM Server) or answers from fixed routes.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;

/// A certificate with its key, as PEM and DER.
pub struct Issued {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub key_pem: String,
    pub key_der: Vec<u8>,
}

/// A test certificate authority.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// A certificate for `names` (DNS names or IP addresses).
    pub fn issue(&self, names: &[&str]) -> Issued {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, "test");
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Issued {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration trusting `ca` and presenting `identity`.
pub fn client_config(ca: &Ca, identity: Option<&Issued>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    match identity {
        Some(id) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(id.cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key_der.clone())),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    }
}

/// One request the front received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Certificates the client presented on that connection.
    pub client_certs: usize,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How the front behaves.
#[derive(Default)]
pub struct FrontOptions {
    /// Require a client certificate issued by this CA.
    pub client_ca: Option<CertificateDer<'static>>,
    /// Require this `Authorization` header value (else 401).
    pub authorization: Option<String>,
    /// Require HTTP Digest (RFC 7616, SHA-256, qop=auth) for this user
    /// and password, checked for real (else 401 with a challenge).
    pub digest: Option<(String, String)>,
    /// Forward requests to this plain-HTTP address.
    pub upstream: Option<SocketAddr>,
    /// Speak only TLS 1.2 with TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    /// the first X.509 suite of spec 9.2.2.
    pub only_spec_suite: bool,
}

type Route = (u16, String, Vec<u8>);

/// The HTTPS front.
#[derive(Clone)]
pub struct Front {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    handshake_failures: Arc<Mutex<usize>>,
    routes: Arc<Mutex<HashMap<String, Route>>>,
    certificate: Arc<SwappableCert>,
}

/// The front's certificate, which a test may replace while it runs (the
/// same address answered by another key).
#[derive(Debug)]
struct SwappableCert(Mutex<Arc<rustls::sign::CertifiedKey>>);

impl SwappableCert {
    fn certified(cert: &Issued) -> Arc<rustls::sign::CertifiedKey> {
        let key = provider()
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                cert.key_der.clone(),
            )))
            .unwrap();
        Arc::new(rustls::sign::CertifiedKey::new(
            vec![CertificateDer::from(cert.cert_der.clone())],
            key,
        ))
    }
}

impl rustls::server::ResolvesServerCert for SwappableCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.lock().unwrap().clone())
    }
}

impl Front {
    pub async fn start(cert: &Issued, opts: FrontOptions) -> Front {
        let builder = if opts.only_spec_suite {
            let mut p = rustls::crypto::ring::default_provider();
            p.cipher_suites.retain(|s| {
                s.suite() == rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            });
            rustls::ServerConfig::builder_with_provider(Arc::new(p))
                .with_protocol_versions(&[&rustls::version::TLS12])
                .unwrap()
        } else {
            rustls::ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
        };
        let builder = match &opts.client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(ca.clone()).unwrap();
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider(),
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let certificate = Arc::new(SwappableCert(Mutex::new(SwappableCert::certified(cert))));
        let config = builder.with_cert_resolver(certificate.clone());
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let front = Front {
            addr: listener.local_addr().unwrap(),
            seen: Default::default(),
            handshake_failures: Default::default(),
            routes: Default::default(),
            certificate,
        };
        let opts = Arc::new(opts);
        let f = front.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let f = f.clone();
                let opts = opts.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        *f.handshake_failures.lock().unwrap() += 1;
                        return;
                    };
                    let certs = tls.get_ref().1.peer_certificates().map_or(0, <[_]>::len);
                    let svc = hyper::service::service_fn(move |req| {
                        let f = f.clone();
                        let opts = opts.clone();
                        async move { Ok::<_, hyper::Error>(f.handle(req, &opts, certs).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        front
    }

    /// From the next handshake on, the front answers with `cert`.
    pub fn serve_certificate(&self, cert: &Issued) {
        *self.certificate.0.lock().unwrap() = SwappableCert::certified(cert);
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    /// Answers `path` with a fixed response instead of forwarding.
    pub fn route(&self, path: &str, status: u16, content_type: &str, body: impl Into<Vec<u8>>) {
        self.routes.lock().unwrap().insert(
            path.to_owned(),
            (status, content_type.to_owned(), body.into()),
        );
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn handshake_failures(&self) -> usize {
        *self.handshake_failures.lock().unwrap()
    }

    async fn handle(
        &self,
        req: Request<Incoming>,
        opts: &FrontOptions,
        client_certs: usize,
    ) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let path = parts
            .uri
            .path_and_query()
            .map_or("/".to_owned(), |p| p.as_str().to_owned());
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let seen = Seen {
            method: parts.method.as_str().to_owned(),
            path: path.clone(),
            headers,
            body: body.to_vec(),
            client_certs,
        };
        self.seen.lock().unwrap().push(seen.clone());
        if let Some(expected) = &opts.authorization {
            if seen.header("authorization") != Some(expected.as_str()) {
                return Response::builder()
                    .status(401)
                    .header("WWW-Authenticate", "Basic realm=\"dm\"")
                    .body(Full::new(Bytes::new()))
                    .unwrap();
            }
        }
        if let Some((user, password)) = &opts.digest {
            let method = parts.method.as_str();
            let valid = seen
                .header("authorization")
                .is_some_and(|a| digest_is_valid(a, method, user, password));
            if !valid {
                return Response::builder()
                    .status(401)
                    .header(
                        "WWW-Authenticate",
                        format!(
                            "Digest realm=\"{DIGEST_REALM}\", qop=\"auth\", algorithm=SHA-256, \
                             nonce=\"{DIGEST_NONCE}\", opaque=\"o-1\""
                        ),
                    )
                    .body(Full::new(Bytes::new()))
                    .unwrap();
            }
        }
        let route = self.routes.lock().unwrap().get(&path).cloned();
        if let Some((status, content_type, body)) = route {
            return Response::builder()
                .status(status)
                .header("Content-Type", content_type)
                .body(Full::new(Bytes::from(body)))
                .unwrap();
        }
        let Some(upstream) = opts.upstream else {
            return Response::builder()
                .status(404)
                .body(Full::new(Bytes::new()))
                .unwrap();
        };
        let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .build_http::<Full<Bytes>>();
        let mut forward = Request::builder()
            .method(parts.method.clone())
            .uri(format!("http://{upstream}{path}"));
        for (k, v) in &parts.headers {
            if k != "host" {
                forward = forward.header(k, v);
            }
        }
        let resp = client
            .request(forward.body(Full::new(body)).unwrap())
            .await
            .unwrap();
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Response::from_parts(parts, Full::new(body))
    }
}

/// Base64 of `bytes` (bin values travel base64 in MO data).
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

const DIGEST_REALM: &str = "dm@front";
const DIGEST_NONCE: &str = "b6a9c0e4-front-nonce";

/// Checks an `Authorization: Digest` answer to the front's challenge the
/// way a server does (RFC 7616 3.4.1, SHA-256, qop=auth).
fn digest_is_valid(header: &str, method: &str, user: &str, password: &str) -> bool {
    use sha2::{Digest as _, Sha256};
    let Some(params) = header.strip_prefix("Digest ") else {
        return false;
    };
    let mut fields = HashMap::new();
    for part in params.split(", ") {
        if let Some((k, v)) = part.split_once('=') {
            fields.insert(k.trim().to_owned(), v.trim_matches('"').to_owned());
        }
    }
    let field = |k: &str| fields.get(k).cloned().unwrap_or_default();
    let h = |s: String| {
        Sha256::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let ha1 = h(format!("{user}:{DIGEST_REALM}:{password}"));
    let ha2 = h(format!("{method}:{}", field("uri")));
    let expected = h(format!(
        "{ha1}:{DIGEST_NONCE}:{}:{}:auth:{ha2}",
        field("nc"),
        field("cnonce")
    ));
    field("username") == user
        && field("realm") == DIGEST_REALM
        && field("nonce") == DIGEST_NONCE
        && field("qop") == "auth"
        && field("opaque") == "o-1"
        && field("response") == expected
}
