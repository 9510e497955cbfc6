//! Transport security of DM Sessions and bootstraps (spec 9.2, 9.3) over
//! rustls with the ring provider.
//!
//! - Protocol versions: TLS 1.2 and TLS 1.3 only. TLS 1.0/1.1 (9.2.2's
//!   SHALL) are not offered: rustls does not implement them, and both are
//!   deprecated by RFC 8996 for their weak hashes and CBC constructions.
//! - PSK-TLS is not offered: rustls has no external-PSK cipher suites; the
//!   X.509 mode satisfies 9.2.2's "at least one of" for the DM Client.
//! - The DM Server's certificate is verified (chain and host name) against
//!   the configured trust anchors ([`TrustAnchors`]).
//! - The DM Client's own credentials come from the account's `Auth/Trsp`
//!   (12.2, [`TransportAuth`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use dm_core::{NodeData, Value};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

use crate::access::DMACC_MOID;
use crate::tree::Registry;

/// Bad TLS material or configuration. Never holds secret bytes.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    #[error("{what}: {reason}")]
    Material { what: String, reason: String },
    #[error("TLS configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Policy(String),
}

fn material(what: &str, reason: impl std::fmt::Display) -> TlsError {
    TlsError::Material {
        what: what.to_owned(),
        reason: reason.to_string(),
    }
}

/// The TLS versions this runtime speaks (spec 9.2.2, see the module doc).
pub(crate) const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The trust anchors a DM Server certificate is verified against.
///
/// By default the host's certificate store (what `update-ca-certificates`
/// keeps on an embedded Linux system), so roots follow the operating
/// system's updates instead of a bundle frozen into the binary. `--ca FILE`
/// replaces it with the operator's own roots: a device bound to one
/// operator's CA need not trust the whole web PKI.
#[derive(Clone)]
pub struct TrustAnchors {
    roots: Arc<RootCertStore>,
    origin: String,
}

impl std::fmt::Debug for TrustAnchors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustAnchors")
            .field("origin", &self.origin)
            .field("roots", &self.roots.len())
            .finish()
    }
}

impl Default for TrustAnchors {
    fn default() -> Self {
        TrustAnchors::system()
    }
}

impl TrustAnchors {
    /// The host's certificate store, loaded once per process. A store that
    /// cannot be read leaves no root: every https:// server is refused
    /// until `--ca` names roots.
    pub fn system() -> TrustAnchors {
        static SYSTEM: OnceLock<Arc<RootCertStore>> = OnceLock::new();
        let roots = SYSTEM.get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            store.add_parsable_certificates(found.certs);
            Arc::new(store)
        });
        TrustAnchors {
            roots: roots.clone(),
            origin: "system store".into(),
        }
    }

    /// The PEM certificates in `path`, and only those.
    pub fn from_pem_file(path: &Path) -> Result<TrustAnchors, TlsError> {
        let fail = |reason: String| TlsError::File {
            path: path.to_owned(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        let mut store = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&bytes) {
            let cert = cert.map_err(|e| fail(format!("bad PEM: {e}")))?;
            store
                .add(cert)
                .map_err(|e| fail(format!("not a usable CA certificate: {e}")))?;
        }
        if store.is_empty() {
            return Err(fail("no CERTIFICATE in the file".into()));
        }
        Ok(TrustAnchors {
            roots: Arc::new(store),
            origin: path.display().to_string(),
        })
    }

    pub(crate) fn roots(&self) -> Arc<RootCertStore> {
        self.roots.clone()
    }
}

/// A certificate chain and its private key.
pub struct Identity {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("certificates", &self.chain.len())
            .field("key", &"[redacted]")
            .finish()
    }
}

impl Identity {
    /// From certificate and key bytes, each PEM or DER.
    pub fn from_bytes(what: &str, cert: &[u8], key: &[u8]) -> Result<Identity, TlsError> {
        let chain = certificates(what, cert)?;
        let key = private_key(what, key)?;
        Ok(Identity { chain, key })
    }

    /// From a certificate file and a key file (PEM or DER).
    pub fn from_files(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| TlsError::File {
                path: p.to_owned(),
                reason: e.to_string(),
            })
        };
        let what = format!("{} / {}", cert.display(), key.display());
        Identity::from_bytes(&what, &read(cert)?, &read(key)?)
    }
}

fn is_pem(bytes: &[u8]) -> bool {
    bytes.trim_ascii_start().starts_with(b"-----BEGIN")
}

/// A DER certificate starts with a SEQUENCE of two- or three-byte length:
/// `30 82` / `30 83`, a byte pair that is never valid UTF-8.
fn is_der_certificate(bytes: &[u8]) -> bool {
    matches!(bytes, [0x30, 0x82 | 0x83, ..])
}

/// One or more certificates, PEM (`CERTIFICATE` blocks) or one DER
/// certificate (12.2.1.2: "simply represented as binary X.509v3").
pub(crate) fn certificates(
    what: &str,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    if is_pem(bytes) {
        let chain = CertificateDer::pem_slice_iter(bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| material(what, format!("bad PEM certificate: {e}")))?;
        if chain.is_empty() {
            return Err(material(what, "no CERTIFICATE block"));
        }
        Ok(chain)
    } else if is_der_certificate(bytes) {
        Ok(vec![CertificateDer::from(bytes.to_vec())])
    } else {
        Err(material(what, "neither a PEM nor a DER certificate"))
    }
}

/// A private key, PEM (PKCS#8, SEC1 or PKCS#1) or DER.
fn private_key(what: &str, bytes: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    if is_pem(bytes) {
        // No detail of the parse error: it could quote bytes of the key.
        PrivateKeyDer::from_pem_slice(bytes).map_err(|_| {
            material(
                what,
                "bad PEM private key (PKCS#8, SEC1 or PKCS#1 expected)",
            )
        })
    } else {
        PrivateKeyDer::try_from(bytes.to_vec()).map_err(|_| {
            material(
                what,
                "private key is neither PEM nor DER PKCS#8/SEC1/PKCS#1",
            )
        })
    }
}

/// The credentials an account's `Auth/Trsp` holds (spec 9.2.1, 12.2).
///
/// The spec leaves the encoding open; ours: when `Auth/Trsp/Data` is a
/// certificate (PEM, or DER as 12.2.1.2), it is the DM Client certificate
/// chain and `Auth/Trsp/Secret` its private key (PEM or DER): X.509 mode.
/// Otherwise `Data` is the UTF-8 user name and `Secret` the UTF-8 password:
/// HTTP Basic (RFC 7617) on every package over https://, HTTP Digest
/// (RFC 2617/7616) when the server challenges for it.
#[derive(Clone, Default)]
pub enum TransportAuth {
    #[default]
    None,
    Certificate(Identity),
    Basic {
        user: String,
        password: String,
    },
}

impl std::fmt::Debug for TransportAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportAuth::None => f.write_str("None"),
            TransportAuth::Certificate(id) => f.debug_tuple("Certificate").field(id).finish(),
            TransportAuth::Basic { user, .. } => f
                .debug_struct("Basic")
                .field("user", user)
                .field("password", &"[redacted]")
                .finish(),
        }
    }
}

impl TransportAuth {
    /// Reads `Auth/Trsp` of the DMAcc account of `server_id`.
    pub(crate) fn of_account(registry: &Registry, server_id: &str) -> Result<Self, TlsError> {
        let Some(mo) = registry
            .instances()
            .map(|(_, i)| i)
            .filter(|i| i.mo().schema().moid == DMACC_MOID)
            .find(|i| matches!(i.mo().get(&["SrvID"]), Ok(NodeData::Leaf(Value::Chr(s))) if s == server_id))
        else {
            return Ok(TransportAuth::None);
        };
        let bytes = |path: &[&str]| match mo.mo().get(path) {
            Ok(NodeData::Leaf(Value::Bin(b) | Value::B64(b))) => Some(b),
            Ok(NodeData::Leaf(Value::Chr(s))) => Some(s.into_bytes()),
            _ => None,
        };
        let what = format!("account {server_id}: Auth/Trsp");
        let (Some(data), Some(secret)) = (
            bytes(&["Auth", "Trsp", "Data"]),
            bytes(&["Auth", "Trsp", "Secret"]),
        ) else {
            return Ok(TransportAuth::None);
        };
        TransportAuth::decode(&what, &data, &secret)
    }

    fn decode(what: &str, data: &[u8], secret: &[u8]) -> Result<Self, TlsError> {
        if is_pem(data) || is_der_certificate(data) {
            return Ok(TransportAuth::Certificate(Identity::from_bytes(
                what, data, secret,
            )?));
        }
        let user = std::str::from_utf8(data)
            .map_err(|_| material(what, "Data is neither a certificate nor a UTF-8 user name"))?;
        if user.contains(':') {
            // RFC 7617 2: the user-id cannot contain a colon.
            return Err(material(what, "a Basic user name cannot contain ':'"));
        }
        let password = std::str::from_utf8(secret)
            .map_err(|_| material(what, "Secret is not a UTF-8 password"))?;
        Ok(TransportAuth::Basic {
            user: user.to_owned(),
            password: password.to_owned(),
        })
    }
}

/// A client configuration: the DM Server verified against `anchors`, the
/// DM Client authenticated by `identity` when the server asks for it.
pub(crate) fn client_config(
    anchors: &TrustAnchors,
    identity: Option<&Identity>,
) -> Result<rustls::ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(anchors.roots());
    with_identity(builder, identity)
}

/// A client configuration whose DM Server is verified by `verifier`
/// instead of the trust anchors (a pinned bootstrap server, 12.2).
pub(crate) fn client_config_verified_by(
    verifier: Arc<dyn rustls::client::danger::ServerCertVerifier>,
    identity: Option<&Identity>,
) -> Result<rustls::ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    with_identity(builder, identity)
}

fn with_identity(
    builder: rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>,
    identity: Option<&Identity>,
) -> Result<rustls::ClientConfig, TlsError> {
    match identity {
        Some(id) => builder
            .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
            .map_err(|e| TlsError::Config(format!("client certificate: {e}"))),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// The `scheme://authority` of an absolute URI, lower-cased, for deciding
/// where credentials may go.
pub(crate) fn origin(uri: &str) -> Option<String> {
    let parsed: hyper::Uri = uri.parse().ok()?;
    Some(format!(
        "{}://{}",
        parsed.scheme_str()?.to_ascii_lowercase(),
        parsed.authority()?.as_str().to_ascii_lowercase()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_read_and_never_shown() {
        let auth = TransportAuth::decode("t", b"alice", b"s3cret").unwrap();
        assert!(
            matches!(&auth, TransportAuth::Basic { user, password } if user == "alice" && password == "s3cret")
        );
        let shown = format!("{auth:?}");
        assert!(
            shown.contains("alice") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    #[test]
    fn bad_material_is_a_typed_error() {
        assert!(TransportAuth::decode("t", b"a:b", b"x").is_err());
        assert!(TransportAuth::decode("t", b"-----BEGIN CERTIFICATE-----\nzz\n", b"k").is_err());
        // DER-looking data with garbage is refused as a certificate/key pair.
        assert!(TransportAuth::decode("t", &[0x30, 0x82, 0, 1, 0], b"not a key").is_err());
        assert!(TransportAuth::decode("t", b"bob", &[0xff, 0xfe]).is_err());
    }

    #[test]
    fn origin_is_scheme_and_authority() {
        assert_eq!(
            origin("HTTPS://Dm.Example:8443/dm?x=1").as_deref(),
            Some("https://dm.example:8443")
        );
        assert_eq!(origin("/relative"), None);
    }
}
