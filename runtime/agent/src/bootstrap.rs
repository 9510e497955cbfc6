//! Bootstrap (spec 8, 9.3): a DM Bootstrap is an `application/dmmo+json`
//! array applied like HGET without ClientURI (8.5). It arrives from the
//! factory (8.2, a file), from a bootstrap server the device asks (8.3,
//! HTTPS GET) or from a bootstrap server that pushes it (8.4, an HTTPS
//! listener with mutual TLS). Every path goes through [`apply`], which
//! refuses, before anything is written, a bootstrap that would change an
//! account or instance of a server the bootstrap does not speak for.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dm_core::{
    ClientUri, InstanceSelector, ManagementObject, MoDataItem, NodeData, PackageError, Value,
};
use rustls::pki_types::CertificateDer;

use crate::access::DMACC_MOID;
use crate::client::{Device, SessionCtx};
use crate::store::fnv1a;
use crate::tls::{self, Identity, TlsError, TrustAnchors};
use crate::tree::Owner;

/// The media type of a DM Bootstrap (8.5).
pub const MEDIA_TYPE: &str = dm_core::package::media_type::MO_DATA;

/// Where a bootstrap came from: decides which existing accounts it may
/// change (9.3.2).
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// Preloaded on the device (8.2): any account it describes.
    Factory,
    /// Fetched from `url` (8.3) from a server whose certificate carried
    /// `server_key` (SubjectPublicKeyInfo, DER; `None` when no account
    /// naming `url` pins a key): besides new accounts, only those whose
    /// `Auth/Bootstrap/ServerURI` names the same origin and whose
    /// `ServerPubKey`, if any, holds that key.
    Fetched {
        url: &'a str,
        server_key: Option<&'a [u8]>,
    },
    /// Pushed over mutual TLS by the holder of this certificate (8.4):
    /// besides new accounts, only those whose `Auth/Bootstrap/
    /// ServerPubKey` holds this certificate's key.
    Pushed(&'a [u8]),
}

/// Why a bootstrap was refused. The checks run before anything is
/// written; when an MO refuses an item after earlier ones were stored
/// ([`BootstrapError::Store`]), those are taken back, so the device keeps
/// its state from before the bootstrap.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("not an application/dmmo+json array: {0}")]
    Malformed(#[from] PackageError),
    #[error("item {index}: {reason}")]
    BadItem { index: usize, reason: String },
    #[error("item {index} would change the account of server {server}")]
    OtherServer { index: usize, server: String },
    #[error(
        "item {index} would change the account of server {server}, whose Auth/Bootstrap does not name this bootstrap server"
    )]
    NotItsBootstrapServer { index: usize, server: String },
    #[error("item {index} would change {moid}/{miid}, which {owner} owns")]
    OtherOwner {
        index: usize,
        moid: String,
        miid: String,
        owner: String,
    },
    #[error("item {index} ({uri}): {code}; {reason}")]
    Store {
        index: usize,
        uri: String,
        code: dm_core::StatusCode,
        /// What the item lacks or breaks (the node and the rule).
        reason: String,
    },
    #[error("could not record the bootstrap in the state directory")]
    Save,
    /// An MO's device refused the new state (`MoHooks::commit`); the
    /// device and the state are as before.
    #[error("the device refused it: {0}")]
    Device(String),
    /// The items together break a rule no single one does (two accounts
    /// with one SrvID, 12.2).
    #[error("refused as a whole: {0}")]
    Refused(dm_core::StatusCode),
}

impl BootstrapError {
    /// The HTTP status a pushing server gets.
    pub fn http_status(&self) -> u16 {
        match self {
            BootstrapError::Malformed(_) | BootstrapError::BadItem { .. } => 400,
            BootstrapError::OtherServer { .. }
            | BootstrapError::NotItsBootstrapServer { .. }
            | BootstrapError::OtherOwner { .. }
            | BootstrapError::Refused(_) => 403,
            BootstrapError::Store { .. } | BootstrapError::Save | BootstrapError::Device(_) => 500,
        }
    }
}

/// What a bootstrap did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// SrvIDs of the accounts it describes; each is owed a session with
    /// BootstrapComplete (spec 8).
    pub servers: Vec<String>,
    /// The same bytes were applied before: nothing changed.
    pub already_applied: bool,
}

/// What an account's `Auth/Bootstrap/ServerPubKey` pins. 12.2 calls it
/// "the DM Server Certificate (X.509 Certificate mode)" and 12.2.1.2
/// stores a certificate "as binary X.509v3": a DER certificate (PEM is
/// read too). What is pinned is the certificate's public key, the node's
/// name: a certificate the bootstrap server renews on the same key still
/// matches (docs/architecture.md "Bootstrap").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum ServerKey {
    /// No ServerPubKey: nothing pinned.
    #[default]
    Absent,
    /// The SubjectPublicKeyInfo (DER) of the certificate it holds.
    Spki(Vec<u8>),
    /// Not a certificate: it pins a key no server holds, so a server
    /// this account names is refused rather than taken on `--ca` alone.
    Unreadable,
}

/// The `Auth/Bootstrap` keys of one account (12.2).
#[derive(Debug, Clone, Default)]
struct BootstrapKeys {
    server_uri: Option<String>,
    server_key: ServerKey,
}

/// The SubjectPublicKeyInfo (DER) of a certificate.
fn spki_of(cert: &CertificateDer<'_>) -> Option<Vec<u8>> {
    rustls::server::ParsedCertificate::try_from(cert)
        .ok()
        .map(|c| c.subject_public_key_info().as_ref().to_vec())
}

/// Scheme, host and port of a bootstrap server URI, to tell whether two
/// name the same server. One without a scheme (12.2's example
/// "111.222.333.444") is https:// (a bootstrap travels only over TLS,
/// 9.3.1.1); a missing port is the scheme's default (12.2's example
/// "https://www.bsdmserver.com:443" names the same server as one without
/// `:443`).
fn server_origin(uri: &str) -> Option<(String, String, u16)> {
    let parsed: hyper::Uri = if uri.contains("://") {
        uri.parse().ok()?
    } else {
        format!("https://{uri}").parse().ok()?
    };
    let scheme = parsed.scheme_str()?.to_ascii_lowercase();
    let port = match (parsed.port_u16(), scheme.as_str()) {
        (Some(p), _) => p,
        (None, "https") => 443,
        (None, "http") => 80,
        (None, _) => return None,
    };
    Some((scheme, parsed.host()?.to_ascii_lowercase(), port))
}

/// Does `server_uri` (an `Auth/Bootstrap/ServerURI`) name the server `url`
/// is on?
fn names_server(server_uri: Option<&str>, url: &str) -> bool {
    match (server_uri.and_then(server_origin), server_origin(url)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn bootstrap_keys(device: &Device, miid: &str) -> BootstrapKeys {
    let Some(instance) = device
        .registry()
        .find(DMACC_MOID, miid)
        .and_then(|i| device.registry().instance(i))
    else {
        return BootstrapKeys::default();
    };
    let get = |leaf: &str| instance.mo().get(&["Auth", "Bootstrap", leaf]).ok();
    let server_uri = match get("ServerURI") {
        Some(NodeData::Leaf(Value::Chr(s))) => Some(s),
        _ => None,
    };
    let server_key = match get("ServerPubKey") {
        None | Some(NodeData::Leaf(Value::Null)) => ServerKey::Absent,
        Some(NodeData::Leaf(Value::Bin(b) | Value::B64(b))) => {
            // DER as 12.2.1.2, or PEM: the first certificate's key.
            tls::certificates("Auth/Bootstrap/ServerPubKey", &b)
                .ok()
                .and_then(|c| c.first().and_then(spki_of))
                .map_or(ServerKey::Unreadable, ServerKey::Spki)
        }
        Some(_) => ServerKey::Unreadable,
    };
    BootstrapKeys {
        server_uri,
        server_key,
    }
}

/// The device's bootstrap identity held by the account at `miid`:
/// `Auth/Bootstrap/ClientPubKey` (the DM Client certificate) and
/// `ClientSecretKey` (its private key), 12.2.1.2.
fn identity_of(device: &Device, miid: &str, server_id: &str) -> Option<Identity> {
    let index = device.registry().find(DMACC_MOID, miid)?;
    let instance = device.registry().instance(index)?;
    let get = |leaf: &str| match instance.mo().get(&["Auth", "Bootstrap", leaf]) {
        Ok(NodeData::Leaf(Value::Bin(b) | Value::B64(b))) => Some(b),
        _ => None,
    };
    let what = format!("account {server_id}: Auth/Bootstrap");
    Identity::from_bytes(&what, &get("ClientPubKey")?, &get("ClientSecretKey")?).ok()
}

/// The device's own bootstrap identity from the first account that holds
/// one.
pub(crate) fn client_identity(device: &Device) -> Option<Identity> {
    device
        .accounts()
        .iter()
        .find_map(|a| identity_of(device, &a.miid, &a.server_id))
}

/// The device's identity at the bootstrap server `url` is on: from the
/// first account whose `Auth/Bootstrap/ServerURI` names that server
/// (12.2: the DM Server SHOULD authenticate the client with it).
pub(crate) fn client_identity_for(device: &Device, url: &str) -> Option<Identity> {
    device.accounts().iter().find_map(|a| {
        let keys = bootstrap_keys(device, &a.miid);
        names_server(keys.server_uri.as_deref(), url)
            .then(|| identity_of(device, &a.miid, &a.server_id))
            .flatten()
    })
}

/// The keys (SubjectPublicKeyInfo, DER) of every bootstrap server the
/// accounts pin.
pub(crate) fn bootstrap_server_keys(device: &Device) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for account in device.accounts() {
        if let ServerKey::Spki(k) = bootstrap_keys(device, &account.miid).server_key {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    keys
}

/// The keys a bootstrap server at one origin must hold: those the
/// `Auth/Bootstrap/ServerPubKey` of every account naming that server
/// pins (12.2: the DM Client MUST use that data to authenticate the
/// server).
#[derive(Debug, Clone, Default)]
pub struct ServerPins {
    keys: Vec<Vec<u8>>,
    /// Some account naming the server has a ServerPubKey (readable or
    /// not): the server must hold one of `keys`.
    pinned: bool,
}

impl ServerPins {
    /// Does some account pin the bootstrap server's key?
    pub fn is_pinned(&self) -> bool {
        self.pinned
    }
}

/// What the accounts pin for the bootstrap server `url` is on.
pub fn server_pins(device: &Device, url: &str) -> ServerPins {
    let mut pins = ServerPins::default();
    for account in device.accounts() {
        let keys = bootstrap_keys(device, &account.miid);
        if !names_server(keys.server_uri.as_deref(), url) {
            continue;
        }
        match keys.server_key {
            ServerKey::Absent => {}
            ServerKey::Unreadable => pins.pinned = true,
            ServerKey::Spki(k) => {
                pins.pinned = true;
                if !pins.keys.contains(&k) {
                    pins.keys.push(k);
                }
            }
        }
    }
    pins
}

/// May `source` change the existing account at `miid`?
fn may_change(device: &Device, miid: &str, source: Source<'_>) -> bool {
    let keys = bootstrap_keys(device, miid);
    match source {
        Source::Factory => true,
        Source::Fetched { url, server_key } => {
            names_server(keys.server_uri.as_deref(), url)
                && match &keys.server_key {
                    ServerKey::Absent => true,
                    ServerKey::Spki(k) => server_key == Some(k.as_slice()),
                    ServerKey::Unreadable => false,
                }
        }
        Source::Pushed(cert) => match &keys.server_key {
            ServerKey::Spki(k) => spki_of(&CertificateDer::from(cert)).as_ref() == Some(k),
            ServerKey::Absent | ServerKey::Unreadable => false,
        },
    }
}

/// The new MO of the account at `instance` built from `item`, checked by
/// the MO's validate hook. A re-bootstrap replaces the account whole: its
/// Add-only nodes (Perm, the keys) take no Replace from any server, but the
/// bootstrap is the authority that writes them (8.5, 9.3.2).
fn replacement(
    device: &Device,
    instance: usize,
    item: &MoDataItem,
) -> Result<Box<dyn ManagementObject>, String> {
    let Some(existing) = device.registry().instance(instance) else {
        return Err("the account vanished".into());
    };
    let Some(factory) = device.registry().factory(DMACC_MOID) else {
        return Err("this device has no DMAcc".into());
    };
    let (Some(json), 1) = (item.mo_data.values().next(), item.mo_data.len()) else {
        return Err("MOData must hold one member".into());
    };
    let data = NodeData::from_json(json, &factory.schema.root).map_err(|e| e.to_string())?;
    let mut mo = (factory.create)(existing.miid(), &data).map_err(|e| e.to_string())?;
    mo.apply(&[]).map_err(|e| e.to_string())?;
    Ok(mo)
}

fn server_of(item: &MoDataItem) -> Option<String> {
    let uri: ClientUri = item.client_uri.parse().ok()?;
    if uri.moid() != DMACC_MOID {
        return None;
    }
    let data = item.mo_data.values().next()?;
    data.get("SrvID")?.as_str().map(str::to_owned)
}

/// Applies a DM Bootstrap (spec 8.5) from `source`. A DMAcc item belongs
/// to the server it describes and lands on that server's account when it
/// has one; other items belong to the bootstrap's first server. The same
/// bytes applied again change nothing. Checked before anything is
/// written: no item may land on another server's account or instance, and
/// a bootstrap server changes only accounts that name it.
pub fn apply(
    device: &mut Device,
    bytes: &[u8],
    source: Source<'_>,
) -> Result<Applied, BootstrapError> {
    let digest = format!("{:016x}", fnv1a(bytes));
    if device.agent_state().bootstraps_applied.contains(&digest) {
        return Ok(Applied {
            servers: Vec::new(),
            already_applied: true,
        });
    }
    let items = MoDataItem::parse_list(bytes)?;
    let servers: Vec<String> = items
        .iter()
        .filter_map(server_of)
        .fold(Vec::new(), |mut v, s| {
            if !v.contains(&s) {
                v.push(s);
            }
            v
        });
    let first_server = servers.first().cloned();
    let accounts = device.accounts();
    // Accounts a re-bootstrap replaces whole: (item, instance, new MO).
    let mut replacements: Vec<(usize, usize, Box<dyn ManagementObject>)> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let bad = |reason: String| BootstrapError::BadItem { index, reason };
        let uri: ClientUri = item
            .client_uri
            .parse()
            .map_err(|e: dm_core::UriError| bad(e.to_string()))?;
        let suggested = match uri.instance() {
            InstanceSelector::Miid(m) => Some(m.as_str().to_owned()),
            _ => item.mo_data.keys().next().cloned(),
        };
        if let Some(server) = server_of(item) {
            if let Some(own) = accounts.iter().find(|a| a.server_id == server) {
                // A re-bootstrap updates the server's account where it is.
                if !may_change(device, &own.miid, source) {
                    return Err(BootstrapError::NotItsBootstrapServer { index, server });
                }
                let instance = device
                    .registry()
                    .find(DMACC_MOID, &own.miid)
                    .ok_or_else(|| bad("the account vanished".into()))?;
                let mo = replacement(device, instance, item).map_err(bad)?;
                replacements.push((index, instance, mo));
                continue;
            }
            if let Some(other) = accounts
                .iter()
                .find(|a| suggested.as_deref() == Some(a.miid.as_str()))
            {
                return Err(BootstrapError::OtherServer {
                    index,
                    server: other.server_id.clone(),
                });
            }
            continue;
        }
        // Any other MO: an existing instance must be one the bootstrap's
        // servers own (or, from the factory, the device).
        let Some(miid) = suggested else { continue };
        let existing = device
            .registry()
            .find(uri.moid(), &miid)
            .and_then(|i| device.registry().instance(i));
        if let Some(instance) = existing {
            let allowed = match &instance.owner() {
                Owner::Server(s) => {
                    servers.contains(s)
                        && accounts
                            .iter()
                            .find(|a| a.server_id == *s)
                            .is_none_or(|a| may_change(device, &a.miid, source))
                }
                Owner::Device => matches!(source, Source::Factory),
                // A local application's instance is never a bootstrap's.
                Owner::App(_) => false,
            };
            if !allowed {
                return Err(BootstrapError::OtherOwner {
                    index,
                    moid: uri.moid().to_owned(),
                    miid,
                    owner: match &instance.owner() {
                        Owner::Server(s) => format!("server {s}"),
                        Owner::Device => "the device".to_owned(),
                        Owner::App(a) => format!("application {a}"),
                    },
                });
            }
        }
    }
    // All or nothing, in memory and on disk: one transaction, one record.
    device.begin();
    if let Err(e) = store(device, &items, replacements, first_server.as_ref()) {
        device.abort();
        return Err(e);
    }
    if let Err(code) = device.settle() {
        device.abort();
        return Err(BootstrapError::Refused(code));
    }
    let state = device.agent_state_mut();
    for s in &servers {
        if !state.bootstrap_pending.contains(s) {
            state.bootstrap_pending.push(s.clone());
        }
    }
    state.bootstraps_applied.push(digest);
    device.commit().map_err(|e| match e {
        crate::persist::CommitError::State(_) => BootstrapError::Save,
        crate::persist::CommitError::Device { moid, miid, source } => {
            BootstrapError::Device(format!("{moid}/{miid}: {source}"))
        }
    })?;
    Ok(Applied {
        servers,
        already_applied: false,
    })
}

/// Writes the checked items, in the caller's transaction.
fn store(
    device: &mut Device,
    items: &[MoDataItem],
    mut replacements: Vec<(usize, usize, Box<dyn ManagementObject>)>,
    first_server: Option<&String>,
) -> Result<(), BootstrapError> {
    for (index, item) in items.iter().enumerate() {
        if let Some(pos) = replacements.iter().position(|(i, _, _)| *i == index) {
            let (_, instance, mo) = replacements.swap_remove(pos);
            device.registry_mut().replace_mo(instance, mo);
            device.registry_mut().touch(instance);
            device.mark_changed(instance);
            continue;
        }
        let owner = match server_of(item).or_else(|| first_server.cloned()) {
            Some(s) => Owner::Server(s),
            None => Owner::Device,
        };
        let ctx = SessionCtx::local(owner);
        let status = device.store_items(&ctx, std::slice::from_ref(item));
        if !status.code.is_success() {
            return Err(BootstrapError::Store {
                index,
                uri: item.client_uri.clone(),
                code: status.code,
                reason: device
                    .take_refusal()
                    .unwrap_or_else(|| "no reason recorded".into()),
            });
        }
    }
    Ok(())
}

/// Why a client-initiated bootstrap could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "a bootstrap travels only over a secure transport (spec 9.3.1.1): {0} is not https://"
    )]
    NotHttps(String),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
    #[error("{uri} answered HTTP {status}")]
    Status { uri: String, status: u16 },
    #[error("{uri} sent Content-Type `{content_type}`, expected {MEDIA_TYPE}")]
    ContentType { uri: String, content_type: String },
    #[error(
        "{uri}: the server's certificate does not carry the key the Auth/Bootstrap/ServerPubKey of the accounts naming it pins (spec 12.2)"
    )]
    NotPinnedKey { uri: String },
}

/// A DM Bootstrap fetched from a bootstrap server.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub body: Vec<u8>,
    /// The key (SubjectPublicKeyInfo, DER) of the server's certificate,
    /// when `pins` pinned it: what [`Source::Fetched`] checks accounts
    /// against.
    pub server_key: Option<Vec<u8>>,
}

/// Client-initiated bootstrap (spec 8.3): GETs the DM Bootstrap from
/// `url` over HTTPS, the device authenticated by `identity` when the
/// server asks (9.3.2). The server is authenticated by `pins` when an
/// account naming it pins its key (12.2 Auth/Bootstrap/ServerPubKey: its
/// certificate must carry one of those keys, whatever `trust` says), else
/// verified against `trust`.
pub async fn fetch(
    url: &str,
    dev_id: &str,
    trust: &TrustAnchors,
    pins: &ServerPins,
    identity: Option<&Identity>,
    timeout: Duration,
) -> Result<Fetched, FetchError> {
    if !tls::origin(url).is_some_and(|o| o.starts_with("https://")) {
        return Err(FetchError::NotHttps(url.to_owned()));
    }
    let checked = Arc::new(Mutex::new(PinCheck::default()));
    let http = if pins.pinned {
        let verifier = PinnedBootstrapServer {
            keys: pins.keys.clone(),
            checked: checked.clone(),
            provider: tls::provider(),
        };
        let config = tls::client_config_verified_by(Arc::new(verifier), identity)?;
        crate::http::HttpClient::with_tls_config(timeout, config)
    } else {
        crate::http::HttpClient::with_tls(timeout, trust, identity)?
    };
    let headers = [
        ("Accept", MEDIA_TYPE.to_owned()),
        (dm_core::package::header::DEV_ID, dev_id.to_owned()),
    ];
    let call = http
        .call(hyper::Method::GET, url, &headers, Vec::new())
        .await;
    let checked = std::mem::take(&mut *checked.lock().unwrap_or_else(PoisonError::into_inner));
    let exchange = match call {
        Err(_) if checked.refused => {
            return Err(FetchError::NotPinnedKey {
                uri: url.to_owned(),
            })
        }
        other => other?,
    };
    let status = crate::http::status_of(&exchange.response);
    if status != 200 {
        return Err(FetchError::Status {
            uri: url.to_owned(),
            status,
        });
    }
    let content_type = exchange.response.header("content-type").unwrap_or("");
    let essence = dm_core::package::media_type::essence(content_type);
    if !essence.is_empty() && essence != MEDIA_TYPE {
        return Err(FetchError::ContentType {
            uri: url.to_owned(),
            content_type: content_type.to_owned(),
        });
    }
    Ok(Fetched {
        body: exchange.response.body.to_vec(),
        server_key: checked.accepted,
    })
}

/// What [`PinnedBootstrapServer`] saw of the server's certificate.
#[derive(Debug, Default)]
struct PinCheck {
    /// The key of the certificate accepted, for [`Source::Fetched`].
    accepted: Option<Vec<u8>>,
    /// A certificate without a pinned key was refused.
    refused: bool,
}

/// Authenticates a bootstrap server by the keys the accounts naming it
/// pin (12.2): its end-entity certificate must carry one of them, and the
/// handshake proves it holds the private key. Chain, name and validity
/// are not what authenticates it: the pin is (as for a pushing server).
#[derive(Debug)]
struct PinnedBootstrapServer {
    keys: Vec<Vec<u8>>,
    checked: Arc<Mutex<PinCheck>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for PinnedBootstrapServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let mut checked = self.checked.lock().unwrap_or_else(PoisonError::into_inner);
        match spki_of(end_entity) {
            Some(key) if self.keys.contains(&key) => {
                checked.accepted = Some(key);
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
            _ => {
                checked.refused = true;
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::ApplicationVerificationFailure,
                ))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Accepts only a client certificate that carries the key of some
/// account's `Auth/Bootstrap/ServerPubKey` (spec 9.3.2, pinned), after
/// the handshake proved the peer has its private key.
#[derive(Debug)]
pub(crate) struct PinnedBootstrapServers {
    keys: Vec<Vec<u8>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::server::danger::ClientCertVerifier for PinnedBootstrapServers {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        if spki_of(end_entity).is_some_and(|k| self.keys.contains(&k)) {
            Ok(rustls::server::danger::ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The TLS configuration of the server-initiated bootstrap endpoint: the
/// device's `identity`, and a client certificate required from one of the
/// bootstrap servers the accounts name now.
pub(crate) fn listener_config(
    device: &Device,
    identity: &Identity,
) -> Result<rustls::ServerConfig, TlsError> {
    let provider = tls::provider();
    let verifier = PinnedBootstrapServers {
        keys: bootstrap_server_keys(device),
        provider: provider.clone(),
    };
    rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(tls::VERSIONS)
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(|e| TlsError::Config(format!("device certificate: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_uri_names_its_server_with_or_without_scheme_and_default_port() {
        let url = "https://BS.example/dm/bootstrap?x=1";
        // 12.2's own examples: the default port written out, a bare host.
        assert!(names_server(Some("https://bs.example:443"), url));
        assert!(names_server(Some("bs.example"), url));
        assert!(names_server(
            Some("192.0.2.7"),
            "https://192.0.2.7:443/bootstrap"
        ));
        assert!(!names_server(Some("https://bs.example:8443"), url));
        assert!(!names_server(Some("http://bs.example"), url));
        assert!(!names_server(Some("https://other.example"), url));
        assert!(!names_server(None, url));
    }
}
