//! The bootstrap server (spec 8.3, 8.4, 9.3; B.2 DM-BOOT-001-S-M): it
//! provisions a device it knows with a DMAcc account carrying fresh
//! credentials, and writes the same credentials into its own store, so the
//! device's next DM session authenticates with them.
//!
//! - A device is known by its bootstrap profile (admin API `PUT
//!   /api/devices/{DevID}/bootstrap`): the account to make (SrvID, Name,
//!   SrvURI, Perm) and the certificate the device presents to ask for it.
//! - Client-initiated (8.3): `GET /bootstrap` on the bootstrap listener,
//!   mutual TLS; the device's `OMADM-DevID` names the profile and its
//!   client certificate must be the one the profile binds.
//! - Server-initiated (8.4): `POST /api/devices/{DevID}/bootstrap/push`
//!   makes the server POST the bootstrap to the device's endpoint over
//!   mutual TLS, the device's certificate pinned by the same profile.
//! - Every bootstrap generates new secrets: `Auth/Trsp` (user and
//!   password: HTTP Basic or Digest), `Auth/Noti` (Type 0, Data, Secret)
//!   and an `Auth/Bootstrap` identity for the device (a fresh key and
//!   certificate) pinning this server's certificate, which the next
//!   bootstrap, fetched or pushed, authenticates with. A re-bootstrap
//!   rotates them all: the old password stops working.
//! - Nothing secret is kept in the clear: the password as hashes, the
//!   notification secret sealed, the device's new private key not at all.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode as HttpStatus};
use ring::rand::{SecureRandom, SystemRandom};

use crate::http::{header_str, reply};
use crate::state::{lock, Core};
use crate::storage::{BootstrapCommit, BootstrapProfile};
use crate::{now, Credentials, NotificationConfig, PasswordHashes, PeerCertificates, TlsConfig};

/// The path of the client-initiated bootstrap on the bootstrap listener.
pub const BOOTSTRAP_PATH: &str = "/bootstrap";

/// How long a push may take, connection to answer.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(15);

/// The largest answer body of a device to a push that is read (its
/// refusal reason); the rest is dropped.
const MAX_PUSH_ANSWER: usize = 4096;

/// The DMAcc MOID (12.2).
const DMACC_MOID: &str = "urn:oma:mo:oma-dm-dmacc:1.2";

/// The media type of a DM Bootstrap (8.5).
const MEDIA_TYPE: &str = dm_core::package::media_type::MO_DATA;

/// `Auth/Bootstrap/SecMode`: 12.2 names the modes (PSK, X.509) but gives
/// them no values; this server writes the ASCII bytes of this name.
const SEC_MODE_X509: &[u8] = b"X509";

/// Where the bootstrap server is, when [`ServerOptions`](crate::ServerOptions)
/// asks for one.
#[derive(Debug, Clone)]
pub struct BootstrapOptions {
    /// The address of the bootstrap listener (HTTPS, mutual TLS).
    pub listen: std::net::SocketAddr,
    /// `https://HOST:PORT` the devices reach it at (their
    /// `Auth/Bootstrap/ServerURI`); none: `https://` and the bound address.
    pub public_url: Option<String>,
}

/// The bootstrap server's part of the running server.
#[derive(Debug, Clone)]
pub(crate) struct BootstrapServer {
    /// What the devices' `Auth/Bootstrap/ServerURI` names.
    pub(crate) url: String,
    /// The server's certificate and key, for the listener and the pushes.
    pub(crate) tls: TlsConfig,
}

/// Why a bootstrap was not made or not delivered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BootstrapError {
    #[error("no bootstrap profile for `{0}`")]
    Unknown(String),
    #[error("{0}")]
    Storage(#[from] crate::StorageError),
    #[error("cannot make the credentials: {0}")]
    Credentials(#[from] crate::CredentialError),
    #[error("cannot make the device's bootstrap certificate: {0}")]
    Certificate(String),
    #[error("no randomness for the secrets")]
    Random,
    #[error("the profile of `{0}` has no push_url")]
    NoPushUrl(String),
    #[error("push to {url}: {reason}")]
    Push { url: String, reason: String },
    #[error("the device at {url} answered {status}: {reason}")]
    Refused {
        url: String,
        status: u16,
        reason: String,
    },
}

impl BootstrapError {
    /// The admin API's answer.
    pub(crate) fn http_status(&self) -> HttpStatus {
        match self {
            BootstrapError::Unknown(_) => HttpStatus::NOT_FOUND,
            BootstrapError::NoPushUrl(_) => HttpStatus::CONFLICT,
            BootstrapError::Push { .. } | BootstrapError::Refused { .. } => HttpStatus::BAD_GATEWAY,
            BootstrapError::Storage(_)
            | BootstrapError::Credentials(_)
            | BootstrapError::Certificate(_)
            | BootstrapError::Random => HttpStatus::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A bootstrap made for one device, not yet committed.
pub(crate) struct Provision {
    /// The `application/dmmo+json` bytes to send: holds secrets, never
    /// logged or kept.
    pub(crate) body: Vec<u8>,
    pub(crate) commit: BootstrapCommit,
}

/// What a push did, for the admin API.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Pushed {
    pub(crate) dev_id: String,
    pub(crate) server_id: String,
    /// The `Auth/Trsp` user name now stored (never the password).
    pub(crate) user: String,
    pub(crate) bootstraps: u64,
}

fn random<const N: usize>() -> Result<[u8; N], BootstrapError> {
    let mut b = [0u8; N];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| BootstrapError::Random)?;
    Ok(b)
}

/// The HTTP user name of a device: its DevID with `:` (which RFC 7617
/// forbids in a user-id) and `"` made `-`.
pub(crate) fn user_name(dev_id: &str) -> String {
    dev_id.replace([':', '"'], "-")
}

/// A fresh key pair and a self-signed certificate naming the device: its
/// identity at the bootstrap server from now on (12.2.1.2: ClientPubKey the
/// DER certificate, ClientSecretKey the DER PKCS#8 key).
fn device_identity(dev_id: &str) -> Result<(Vec<u8>, Vec<u8>), BootstrapError> {
    let failed = |e: rcgen::Error| BootstrapError::Certificate(e.to_string());
    let key = rcgen::KeyPair::generate().map_err(failed)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, dev_id);
    let cert = params.self_signed(&key).map_err(failed)?;
    Ok((cert.der().to_vec(), key.serialize_der()))
}

impl Core {
    /// Makes a bootstrap for `dev_id` from its profile: fresh secrets, the
    /// DMAcc item, and what the server stores once it is delivered.
    pub(crate) fn provision(&self, dev_id: &str) -> Result<Provision, BootstrapError> {
        let Some(bs) = &self.bootstrap else {
            return Err(BootstrapError::Unknown(dev_id.to_owned()));
        };
        let profile = self
            .storage
            .bootstrap_profile(dev_id)?
            .ok_or_else(|| BootstrapError::Unknown(dev_id.to_owned()))?;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let user = user_name(dev_id);
        let password = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random::<32>()?);
        // 256 random bits: a salted SHA-256 keeps them (auth.rs,
        // GENERATED_PREFIX); Argon2 is for passwords people choose.
        let hashes = PasswordHashes::generated(&user, &password)?;
        let noti_secret = random::<32>()?;
        let noti_data = random::<16>()?;
        let (client_cert, client_key) = device_identity(dev_id)?;
        let server_uri = profile
            .server_uri
            .clone()
            .unwrap_or_else(|| format!("{}{}", self.base_url, crate::DM_PATH));
        let perm: serde_json::Map<String, serde_json::Value> = profile
            .perm
            .iter()
            .enumerate()
            .map(|(i, m)| (format!("p{i}"), serde_json::json!({ "MOID": m })))
            .collect();
        let srv = &profile.server_id;
        // spec 8.5, 7.2.1.4: one DMAcc instance named after its SrvID.
        let item = serde_json::json!({
            "ClientURI": format!("{DMACC_MOID}/{srv}/"),
            "MOData": { srv: {
                "SrvID": srv,
                "SrvURI": server_uri,
                "Name": profile.name,
                "Perm": perm,
                "Auth": {
                    "Bootstrap": {
                        "ServerURI": bs.url,
                        "SecMode": b64(SEC_MODE_X509),
                        "ClientPubKey": b64(&client_cert),
                        "ServerPubKey": b64(bs.tls.certificate()),
                        "ClientSecretKey": b64(&client_key),
                    },
                    "Noti": { "Type": 0, "Data": b64(&noti_data), "Secret": b64(&noti_secret) },
                    "Trsp": { "Data": b64(user.as_bytes()), "Secret": b64(password.as_bytes()) },
                },
            } },
        });
        let body = serde_json::to_vec(&serde_json::json!([item]))
            .map_err(|e| BootstrapError::Certificate(e.to_string()))?;
        // A certificate the operator bound for DM sessions stays bound.
        let certificate_sha256 = self
            .storage
            .credentials(dev_id)?
            .and_then(|c| c.certificate_sha256);
        let mut device = self.storage.device(dev_id)?.unwrap_or_default();
        device.dev_id = dev_id.to_owned();
        let udp = profile
            .notify_udp
            .clone()
            .or_else(|| device.notification.as_ref().and_then(|n| n.udp.clone()));
        device.notification = Some(NotificationConfig {
            server_id: srv.clone(),
            secret: Some(noti_secret.to_vec()),
            auth_data: noti_data.to_vec(),
            udp,
        });
        let mut profile = profile;
        profile.issued_certificate_sha256 = Some(crate::certificate_sha256(&client_cert));
        profile.bootstraps += 1;
        profile.last_bootstrap = Some(now());
        Ok(Provision {
            body,
            commit: BootstrapCommit {
                credentials: Credentials {
                    password: Some(hashes),
                    certificate_sha256,
                },
                device,
                profile,
            },
        })
    }

    /// Stores a delivered bootstrap, under the session lock: a session of
    /// the device reads its row whole, before or after.
    fn commit_provision(&self, dev_id: &str, p: &Provision) -> Result<(), BootstrapError> {
        let _guard = lock(&self.session_lock);
        // The counters of a session that ran meanwhile are kept; only the
        // notification configuration is the bootstrap's.
        let mut commit = p.commit.clone();
        if let Some(current) = self.storage.device(dev_id)? {
            let notification = commit.device.notification.take();
            commit.device = current;
            commit.device.notification = notification;
        }
        self.storage.commit_bootstrap(dev_id, &commit)?;
        Ok(())
    }

    /// Server-initiated bootstrap (spec 8.4): POSTs a fresh bootstrap to
    /// the device's endpoint over mutual TLS and, once the device took it
    /// (200), stores its credentials. A device that refuses it keeps its
    /// old credentials, and so does the server.
    pub(crate) async fn push_bootstrap(&self, dev_id: &str) -> Result<Pushed, BootstrapError> {
        let Some(bs) = &self.bootstrap else {
            return Err(BootstrapError::Unknown(dev_id.to_owned()));
        };
        let profile = self
            .storage
            .bootstrap_profile(dev_id)?
            .ok_or_else(|| BootstrapError::Unknown(dev_id.to_owned()))?;
        let url = profile
            .push_url
            .clone()
            .ok_or_else(|| BootstrapError::NoPushUrl(dev_id.to_owned()))?;
        let pins = profile_pins(self, dev_id, &profile)?;
        let provision = self.provision(dev_id)?;
        let failed = |reason: String| BootstrapError::Push {
            url: url.clone(),
            reason,
        };
        let config = bs.tls.push_client(pins).map_err(failed)?;
        let call = post(&url, dev_id, config, provision.body.clone());
        let (status, reason) = tokio::time::timeout(PUSH_TIMEOUT, call)
            .await
            .map_err(|_| failed(format!("no answer within {PUSH_TIMEOUT:?}")))??;
        if status != 200 {
            return Err(BootstrapError::Refused {
                url,
                status,
                reason,
            });
        }
        self.commit_provision(dev_id, &provision)?;
        let c = &provision.commit;
        tracing::info!(
            "dm-server: bootstrap {} pushed to {} ({url})",
            c.profile.bootstraps,
            dev_id.escape_debug()
        );
        Ok(Pushed {
            dev_id: dev_id.to_owned(),
            server_id: c.profile.server_id.clone(),
            user: c
                .credentials
                .password
                .as_ref()
                .map(|p| p.user.clone())
                .unwrap_or_default(),
            bootstraps: c.profile.bootstraps,
        })
    }
}

/// The certificates a device may present to the bootstrap server, as
/// SHA-256: the profile's, and the one bound for its DM sessions.
fn profile_pins(
    core: &Core,
    dev_id: &str,
    profile: &BootstrapProfile,
) -> Result<Vec<[u8; 32]>, BootstrapError> {
    let bound = core
        .storage
        .credentials(dev_id)?
        .and_then(|c| c.certificate_sha256);
    Ok([
        profile.device_certificate_sha256,
        profile.issued_certificate_sha256,
        bound,
    ]
    .into_iter()
    .flatten()
    .collect())
}

/// One POST of `body` to `url` over TLS with `config`: the status and the
/// start of the answer's body.
async fn post(
    url: &str,
    dev_id: &str,
    config: rustls::ClientConfig,
    body: Vec<u8>,
) -> Result<(u16, String), BootstrapError> {
    let failed = |reason: String| BootstrapError::Push {
        url: url.to_owned(),
        reason,
    };
    let uri: hyper::Uri = url.parse().map_err(|e| failed(format!("{e}")))?;
    if uri.scheme_str() != Some("https") {
        // spec 8.4, 9.3.1.1: a bootstrap only over a secure channel.
        return Err(failed("a bootstrap is pushed over https:// only".into()));
    }
    let host = uri
        .host()
        .ok_or_else(|| failed("no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(443);
    let name = rustls::pki_types::ServerName::try_from(host.clone())
        .map_err(|e| failed(format!("host: {e}")))?;
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| failed(format!("connect: {e}")))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| failed(format!("TLS: {e}")))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| failed(format!("HTTP: {e}")))?;
    tokio::spawn(connection);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(hyper::header::HOST, format!("{host}:{port}"))
        .header(hyper::header::CONTENT_TYPE, MEDIA_TYPE)
        .header(dm_core::package::header::DEV_ID, dev_id)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| failed(format!("request: {e}")))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| failed(format!("HTTP: {e}")))?;
    let status = response.status().as_u16();
    let text = match Limited::new(response.into_body(), MAX_PUSH_ANSWER)
        .collect()
        .await
    {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
        Err(_) => String::new(),
    };
    Ok((status, text))
}

/// The bootstrap listener (spec 8.3): `GET /bootstrap` from a device whose
/// client certificate its profile binds. Each one served rotates the
/// device's credentials, stored before the answer leaves: a device that
/// loses the answer asks again.
pub(crate) async fn handle(
    core: Arc<Core>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    Ok(serve_fetch(&core, &req).unwrap_or_else(|(status, reason)| core.reject(status, reason)))
}

fn serve_fetch(
    core: &Core,
    req: &Request<Incoming>,
) -> Result<Response<Full<Bytes>>, (HttpStatus, String)> {
    if req.uri().path() != BOOTSTRAP_PATH {
        return Err((
            HttpStatus::NOT_FOUND,
            format!("bootstrap: no endpoint at {}", req.uri().path()),
        ));
    }
    if req.method() != Method::GET {
        return Err((
            HttpStatus::METHOD_NOT_ALLOWED,
            "bootstrap: a DM Bootstrap is fetched with GET".into(),
        ));
    }
    let dev_id = header_str(req, dm_core::package::header::DEV_ID)
        .ok_or_else(|| {
            (
                HttpStatus::BAD_REQUEST,
                format!("bootstrap: no {} header", dm_core::package::header::DEV_ID),
            )
        })?
        .to_owned();
    // The listener requires a certificate; its absence is a bug, refused.
    let presented = req
        .extensions()
        .get::<PeerCertificates>()
        .map(|p| crate::certificate_sha256(p.end_entity()))
        .ok_or_else(|| {
            (
                HttpStatus::FORBIDDEN,
                format!("bootstrap: {dev_id}: no client certificate"),
            )
        })?;
    let internal = |e: String| (HttpStatus::INTERNAL_SERVER_ERROR, e);
    let profile = core
        .storage
        .bootstrap_profile(&dev_id)
        .map_err(|e| internal(e.to_string()))?
        .ok_or_else(|| {
            (
                HttpStatus::FORBIDDEN,
                format!("bootstrap: {dev_id}: no bootstrap profile"),
            )
        })?;
    let pins = profile_pins(core, &dev_id, &profile).map_err(|e| internal(e.to_string()))?;
    if !crate::tls::pinned(&pins, &presented) {
        return Err((
            HttpStatus::FORBIDDEN,
            format!("bootstrap: {dev_id}: the client certificate is not the one its profile binds"),
        ));
    }
    let provision = core
        .provision(&dev_id)
        .map_err(|e| internal(e.to_string()))?;
    core.commit_provision(&dev_id, &provision)
        .map_err(|e| internal(e.to_string()))?;
    tracing::info!(
        "dm-server: bootstrap {} fetched by {}",
        provision.commit.profile.bootstraps,
        dev_id.escape_debug()
    );
    let mut r = reply(HttpStatus::OK, MEDIA_TYPE, provision.body);
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}
