//! Bootstrap (spec 8, 9.3): a DM Bootstrap is an `application/dmmo+json`
//! array applied like HGET without ClientURI (8.5). It arrives from the
//! factory (8.2, a file), from a bootstrap server the device asks (8.3,
//! HTTPS GET) or from a bootstrap server that pushes it (8.4, an HTTPS
//! listener with mutual TLS). Every path goes through [`apply`], which
//! refuses, before anything is written, a bootstrap that would change an
//! account or instance of a server the bootstrap does not speak for.

use std::sync::Arc;
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
    /// Fetched from this URL (8.3): besides new accounts, only those whose
    /// `Auth/Bootstrap/ServerURI` names the same origin.
    Fetched(&'a str),
    /// Pushed over mutual TLS by the holder of this certificate (8.4):
    /// besides new accounts, only those whose `Auth/Bootstrap/
    /// ServerPubKey` is this certificate.
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
    #[error("item {index} ({uri}): {code}")]
    Store {
        index: usize,
        uri: String,
        code: dm_core::StatusCode,
    },
    #[error("could not record the bootstrap in the state directory")]
    Save,
}

impl BootstrapError {
    /// The HTTP status a pushing server gets.
    pub fn http_status(&self) -> u16 {
        match self {
            BootstrapError::Malformed(_) | BootstrapError::BadItem { .. } => 400,
            BootstrapError::OtherServer { .. }
            | BootstrapError::NotItsBootstrapServer { .. }
            | BootstrapError::OtherOwner { .. } => 403,
            BootstrapError::Store { .. } | BootstrapError::Save => 500,
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

/// The `Auth/Bootstrap` keys of one account (12.2).
#[derive(Debug, Clone, Default)]
struct BootstrapKeys {
    server_uri: Option<String>,
    server_cert: Option<Vec<u8>>,
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
    let server_cert = match get("ServerPubKey") {
        Some(NodeData::Leaf(Value::Bin(b) | Value::B64(b))) => {
            // DER as 12.2.1.2, or PEM: compared as DER.
            tls::certificates("Auth/Bootstrap/ServerPubKey", &b)
                .ok()
                .and_then(|c| c.into_iter().next())
                .map(|c| c.as_ref().to_vec())
        }
        _ => None,
    };
    BootstrapKeys {
        server_uri,
        server_cert,
    }
}

/// The device's own bootstrap identity from the first account that holds
/// one: `Auth/Bootstrap/ClientPubKey` (the DM Client certificate) and
/// `ClientSecretKey` (its private key), 12.2.1.2.
pub(crate) fn client_identity(device: &Device) -> Option<Identity> {
    device.accounts().iter().find_map(|account| {
        let index = device.registry().find(DMACC_MOID, &account.miid)?;
        let instance = device.registry().instance(index)?;
        let get = |leaf: &str| match instance.mo().get(&["Auth", "Bootstrap", leaf]) {
            Ok(NodeData::Leaf(Value::Bin(b) | Value::B64(b))) => Some(b),
            _ => None,
        };
        let what = format!("account {}: Auth/Bootstrap", account.server_id);
        Identity::from_bytes(&what, &get("ClientPubKey")?, &get("ClientSecretKey")?).ok()
    })
}

/// The certificates of every bootstrap server the accounts name.
pub(crate) fn bootstrap_server_certs(device: &Device) -> Vec<CertificateDer<'static>> {
    let mut certs: Vec<CertificateDer<'static>> = Vec::new();
    for account in device.accounts() {
        if let Some(c) = bootstrap_keys(device, &account.miid).server_cert {
            if !certs.iter().any(|k| k.as_ref() == c.as_slice()) {
                certs.push(CertificateDer::from(c));
            }
        }
    }
    certs
}

/// May `source` change the existing account at `miid`?
fn may_change(device: &Device, miid: &str, source: Source<'_>) -> bool {
    let keys = bootstrap_keys(device, miid);
    match source {
        Source::Factory => true,
        Source::Fetched(url) => {
            keys.server_uri.as_deref().and_then(tls::origin) == tls::origin(url)
                && tls::origin(url).is_some()
        }
        Source::Pushed(cert) => keys.server_cert.as_deref() == Some(cert),
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
    let created_from = device.registry().instances().count();
    let mut undo: Vec<Undo> = Vec::new();
    if let Err(e) = store(
        device,
        &items,
        replacements,
        first_server.as_ref(),
        &mut undo,
    ) {
        rollback(device, created_from, undo);
        return Err(e);
    }
    let state = device.agent_state_mut();
    for s in &servers {
        if !state.bootstrap_pending.contains(s) {
            state.bootstrap_pending.push(s.clone());
        }
    }
    state.bootstraps_applied.push(digest);
    if !device.save_agent().is_success() {
        return Err(BootstrapError::Save);
    }
    Ok(Applied {
        servers,
        already_applied: false,
    })
}

/// How to take back one change of a bootstrap that failed half-way.
enum Undo {
    /// Put this MO back at `instance` (an account replaced whole).
    Replaced {
        instance: usize,
        old: Box<dyn ManagementObject>,
    },
    /// Rebuild the instance at `instance` from this data (an instance that
    /// `store_items` wrote into).
    Rewritten { instance: usize, data: NodeData },
}

/// Writes the checked items; records in `undo` how to take each back.
fn store(
    device: &mut Device,
    items: &[MoDataItem],
    mut replacements: Vec<(usize, usize, Box<dyn ManagementObject>)>,
    first_server: Option<&String>,
    undo: &mut Vec<Undo>,
) -> Result<(), BootstrapError> {
    for (index, item) in items.iter().enumerate() {
        if let Some(pos) = replacements.iter().position(|(i, _, _)| *i == index) {
            let (_, instance, mo) = replacements.swap_remove(pos);
            if let Some(old) = device.registry_mut().replace_mo(instance, mo) {
                undo.push(Undo::Replaced { instance, old });
            }
            device.registry_mut().touch(instance);
            device.mark_changed(instance);
            if device.save(instance).is_err() {
                return Err(BootstrapError::Save);
            }
            continue;
        }
        // The instance this item may write into, as it is now.
        let target = item.client_uri.parse::<ClientUri>().ok().and_then(|uri| {
            let miid = match uri.instance() {
                InstanceSelector::Miid(m) => m.as_str().to_owned(),
                _ => item.mo_data.keys().next()?.clone(),
            };
            let instance = device.registry().find(uri.moid(), &miid)?;
            let data = device.registry().instance(instance)?.mo().get(&[]).ok()?;
            Some(Undo::Rewritten { instance, data })
        });
        undo.extend(target);
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
            });
        }
    }
    Ok(())
}

/// Takes a failed bootstrap back: instances it created are removed (from
/// the last, so indices stay valid), the ones it changed get their old
/// data again, in memory and in the state directory.
fn rollback(device: &mut Device, created_from: usize, undo: Vec<Undo>) {
    let count = device.registry().instances().count();
    for index in (created_from..count).rev() {
        if let Some(i) = device.registry_mut().remove(index) {
            if let Some(store) = &device.store() {
                let _ = store.remove_instance(i.mo().schema().moid, i.miid());
            }
        }
    }
    device.forget_changes_from(created_from);
    for u in undo.into_iter().rev() {
        let (instance, mo) = match u {
            Undo::Replaced { instance, old } => (instance, Some(old)),
            Undo::Rewritten { instance, data } => {
                let rebuilt = device.registry().instance(instance).and_then(|i| {
                    let factory = device.registry().factory(i.mo().schema().moid)?;
                    (factory.create)(i.miid(), &data).ok()
                });
                (instance, rebuilt)
            }
        };
        let Some(mo) = mo else {
            tracing::error!(
                "dmctl client: bootstrap rollback: instance {instance} could not be rebuilt"
            );
            continue;
        };
        let _ = device.registry_mut().replace_mo(instance, mo);
        device.registry_mut().touch(instance);
        let _ = device.save(instance);
    }
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
}

/// Client-initiated bootstrap (spec 8.3): GETs the DM Bootstrap from
/// `url` over HTTPS, the server verified against `trust`, the device
/// authenticated by `identity` when the server asks (9.3.2).
pub async fn fetch(
    url: &str,
    dev_id: &str,
    trust: &TrustAnchors,
    identity: Option<&Identity>,
    timeout: Duration,
) -> Result<Vec<u8>, FetchError> {
    if !tls::origin(url).is_some_and(|o| o.starts_with("https://")) {
        return Err(FetchError::NotHttps(url.to_owned()));
    }
    let http = crate::http::HttpClient::with_tls(timeout, trust, identity)?;
    let headers = [
        ("Accept", MEDIA_TYPE.to_owned()),
        (dm_core::package::header::DEV_ID, dev_id.to_owned()),
    ];
    let exchange = http
        .call(hyper::Method::GET, url, &headers, Vec::new())
        .await?;
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
    Ok(exchange.response.body.to_vec())
}

/// Accepts only a client certificate that some account's
/// `Auth/Bootstrap/ServerPubKey` holds (spec 9.3.2, pinned), after the
/// handshake proved the peer has its private key.
#[derive(Debug)]
pub(crate) struct PinnedBootstrapServers {
    certs: Vec<CertificateDer<'static>>,
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
        if self.certs.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
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
        certs: bootstrap_server_certs(device),
        provider: provider.clone(),
    };
    rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(tls::VERSIONS)
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(|e| TlsError::Config(format!("device certificate: {e}")))
}
