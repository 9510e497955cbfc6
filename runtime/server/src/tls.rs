//! TLS on the DM listener (spec 9.2): the DM endpoint, the Data Repository
//! and the SHOW pages all go over it, plain HTTP not at all.
//!
//! - TLS 1.2 and 1.3 only (rustls, ring provider). 9.2.2's TLS 1.0/1.1 are
//!   not offered: rustls does not implement them and RFC 8996 deprecates
//!   both.
//! - The server's identity: a PEM certificate chain (leaf first) and its
//!   PEM private key (PKCS#8, SEC1 or PKCS#1; RSA, ECDSA or Ed25519).
//! - Client certificates (9.2.1, 9.2.2): with a client CA they are
//!   requested and verified against it, [`ClientAuth::Required`] by
//!   default. The verified chain reaches request handling as a
//!   [`PeerCertificates`] request extension.
//! - ALPN `http/1.1` only: the listener speaks nothing else.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// How long a connection may take to complete its TLS handshake before it
/// is closed; the handshake runs in the connection's own task, so a slow
/// or silent peer only holds its own connection.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bad TLS material. Names the file; never holds key bytes.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Material { path: PathBuf, reason: String },
    /// The key does not belong to the certificate, or rustls refuses the
    /// pair for another reason.
    #[error("{} / {}: {reason}", cert.display(), key.display())]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// Whether a client without a certificate may complete the handshake when
/// a client CA is configured. A certificate that is presented is always
/// verified against the CA; a bad one fails the handshake either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// No certificate from the CA, no connection (the default).
    #[default]
    Required,
    /// A connection without a certificate is served too (for a fleet where
    /// some devices authenticate with HTTP Basic or Digest instead).
    Optional,
}

/// The TLS settings of the DM listener, checked when built: a server never
/// starts with a certificate it cannot use.
#[derive(Clone)]
pub struct TlsConfig {
    pub(crate) server: Arc<rustls::ServerConfig>,
    /// See [`HANDSHAKE_TIMEOUT`].
    pub handshake_timeout: Duration,
    client_auth: Option<ClientAuth>,
    /// The server's own certificate chain and key: what the bootstrap
    /// listener and a bootstrap push present (spec 9.3.2).
    identity: Arc<Identity>,
}

/// A certificate chain (leaf first) and its private key.
pub(crate) struct Identity {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("client_auth", &self.client_auth)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

/// The verified certificate chain a client presented (DER, its own
/// certificate first), put in the extensions of every request of its
/// connection: `req.extensions().get::<PeerCertificates>()`. Absent on a
/// connection without a client certificate.
// The next step binds these certificates to DevIDs (spec 9.2.1); the
// session code reads them from the request, nothing else does yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificates(Arc<[Vec<u8>]>);

impl PeerCertificates {
    pub(crate) fn from_rustls(chain: &[CertificateDer<'_>]) -> Option<PeerCertificates> {
        if chain.is_empty() {
            return None;
        }
        Some(PeerCertificates(
            chain.iter().map(|c| c.as_ref().to_vec()).collect(),
        ))
    }

    /// The whole chain, the client's own certificate first.
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.0
    }

    /// The client's own certificate (DER).
    pub fn end_entity(&self) -> &[u8] {
        // Never empty: see `from_rustls`.
        self.0.first().map_or(&[], Vec::as_slice)
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn material(path: &Path, reason: impl Into<String>) -> TlsError {
    TlsError::Material {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// The `CERTIFICATE` blocks of a PEM file; at least one.
fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| material(path, format!("bad PEM certificate: {e}")))?;
    if chain.is_empty() {
        return Err(material(path, "no CERTIFICATE block"));
    }
    Ok(chain)
}

impl TlsConfig {
    /// From PEM files: `cert` the server's chain (leaf first), `key` its
    /// private key, `client_ca` the roots client certificates are verified
    /// against (none: no client certificate is asked for).
    pub fn from_files(
        cert: &Path,
        key: &Path,
        client_ca: Option<(&Path, ClientAuth)>,
    ) -> Result<TlsConfig, TlsError> {
        let chain = certificates(cert, &read(cert)?)?;
        // No detail of the parse error: it could quote bytes of the key.
        let private = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|_| {
            material(
                key,
                "no usable PEM private key (PKCS#8, SEC1 or PKCS#1 expected)",
            )
        })?;
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Pair {
                cert: cert.to_owned(),
                key: key.to_owned(),
                reason: e.to_string(),
            })?;
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some((ca, mode)) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in certificates(ca, &read(ca)?)? {
                    roots
                        .add(c)
                        .map_err(|e| material(ca, format!("not a usable CA certificate: {e}")))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider(),
                );
                let verifier = match mode {
                    ClientAuth::Required => verifier,
                    ClientAuth::Optional => verifier.allow_unauthenticated(),
                };
                let verifier = verifier.build().map_err(|e| material(ca, e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let identity = Arc::new(Identity {
            chain: chain.clone(),
            key: private.clone_key(),
        });
        let mut server = builder
            .with_single_cert(chain, private)
            .map_err(|e| TlsError::Pair {
                cert: cert.to_owned(),
                key: key.to_owned(),
                reason: e.to_string(),
            })?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsConfig {
            server: Arc::new(server),
            handshake_timeout: HANDSHAKE_TIMEOUT,
            client_auth: client_ca.map(|(_, mode)| mode),
            identity,
        })
    }

    /// The server's own certificate (DER): what a device's
    /// `Auth/Bootstrap/ServerPubKey` pins (12.2).
    pub(crate) fn certificate(&self) -> &[u8] {
        self.identity.chain.first().map_or(&[], |c| c.as_ref())
    }

    /// The same certificate without client certificates: the admin API's
    /// TLS, whose callers authenticate with bearer tokens.
    pub(crate) fn without_client_auth(&self) -> Result<TlsConfig, String> {
        let mut server = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(self.identity.chain.clone(), self.identity.key.clone_key())
            .map_err(|e| e.to_string())?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsConfig {
            server: Arc::new(server),
            handshake_timeout: self.handshake_timeout,
            client_auth: None,
            identity: self.identity.clone(),
        })
    }

    /// The bootstrap listener's TLS (spec 9.3.2, mutual authentication):
    /// the same server certificate; a client certificate required, taken
    /// at the handshake whoever issued it (the handshake proves the peer
    /// holds its key) and authorized per request by the fingerprint the
    /// device's bootstrap profile binds, which no CA can forge.
    pub(crate) fn bootstrap_listener(&self) -> Result<TlsConfig, String> {
        let provider = provider();
        let verifier = AnyClientCertificate {
            signatures: Signatures(provider.clone()),
        };
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_single_cert(self.identity.chain.clone(), self.identity.key.clone_key())
            .map_err(|e| e.to_string())?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsConfig {
            server: Arc::new(server),
            handshake_timeout: self.handshake_timeout,
            client_auth: Some(ClientAuth::Required),
            identity: self.identity.clone(),
        })
    }

    /// A TLS client that presents the server's certificate and takes only
    /// a peer whose certificate's SHA-256 is one of `pins`: how a
    /// bootstrap is pushed to a device (spec 8.4, 9.3.2).
    pub(crate) fn push_client(&self, pins: Vec<[u8; 32]>) -> Result<rustls::ClientConfig, String> {
        let provider = provider();
        let verifier = PinnedPeer {
            pins,
            signatures: Signatures(provider.clone()),
        };
        rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_auth_cert(self.identity.chain.clone(), self.identity.key.clone_key())
            .map_err(|e| e.to_string())
    }
}

/// Is the certificate fingerprint `sha256` one of `pins`? (Each compared
/// in constant time.)
pub(crate) fn pinned(pins: &[[u8; 32]], sha256: &[u8; 32]) -> bool {
    use subtle::ConstantTimeEq;
    pins.iter().any(|p| bool::from(p.ct_eq(sha256)))
}

/// The handshake signature checks both verifiers below make, the
/// provider's own: what a custom verifier keeps of rustls' defaults (the
/// peer proves it holds the certificate's key).
#[derive(Debug)]
struct Signatures(Arc<rustls::crypto::CryptoProvider>);

impl Signatures {
    fn tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Takes any client certificate rustls can parse; see
/// [`TlsConfig::bootstrap_listener`].
#[derive(Debug)]
struct AnyClientCertificate {
    signatures: Signatures,
}

impl rustls::server::danger::ClientCertVerifier for AnyClientCertificate {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        rustls::server::ParsedCertificate::try_from(end_entity)?;
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.signatures.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.signatures.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.signatures.schemes()
    }
}

/// Takes a server whose certificate's SHA-256 is pinned; see
/// [`TlsConfig::push_client`].
#[derive(Debug)]
struct PinnedPeer {
    pins: Vec<[u8; 32]>,
    signatures: Signatures,
}

impl rustls::client::danger::ServerCertVerifier for PinnedPeer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let presented = crate::certificate_sha256(end_entity.as_ref());
        if pinned(&self.pins, &presented) {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
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
        self.signatures.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.signatures.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.signatures.schemes()
    }
}

impl TlsConfig {
    /// Whether client certificates are asked for, and how.
    pub fn client_auth(&self) -> Option<ClientAuth> {
        self.client_auth
    }
}

/// A CA, certificates and a TLS client for the tests of this crate.
#[cfg(test)]
pub(crate) mod test_pki {
    #![allow(clippy::unwrap_used)]
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    pub(crate) struct Ca {
        pub(crate) cert: rcgen::Certificate,
        key: KeyPair,
    }

    pub(crate) struct Issued {
        pub(crate) cert: rcgen::Certificate,
        pub(crate) key: KeyPair,
    }

    impl Ca {
        pub(crate) fn new(name: &str) -> Ca {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            let cert = params.self_signed(&key).unwrap();
            Ca { cert, key }
        }

        pub(crate) fn issue_with(&self, names: &[&str], key: KeyPair) -> Issued {
            let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
            let mut params = CertificateParams::new(names).unwrap();
            params.distinguished_name.push(DnType::CommonName, "test");
            let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
            Issued { cert, key }
        }

        pub(crate) fn issue(&self, names: &[&str]) -> Issued {
            self.issue_with(names, KeyPair::generate().unwrap())
        }

        pub(crate) fn write(&self, dir: &Path, name: &str) -> PathBuf {
            let p = dir.join(name);
            std::fs::write(&p, self.cert.pem()).unwrap();
            p
        }
    }

    impl Issued {
        /// Writes `NAME.crt` (leaf then `ca`) and `NAME.key`.
        pub(crate) fn write(&self, dir: &Path, name: &str, ca: &Ca) -> (PathBuf, PathBuf) {
            let cert = dir.join(format!("{name}.crt"));
            let key = dir.join(format!("{name}.key"));
            std::fs::write(&cert, format!("{}{}", self.cert.pem(), ca.cert.pem())).unwrap();
            std::fs::write(&key, self.key.serialize_pem()).unwrap();
            (cert, key)
        }

        pub(crate) fn der(&self) -> Vec<u8> {
            self.cert.der().to_vec()
        }
    }

    /// A client trusting `ca`, presenting `identity` when given.
    pub(crate) fn client(ca: &Ca, identity: Option<&Issued>) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert.der().clone()).unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(super::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = match identity {
            Some(id) => builder
                .with_client_auth_cert(
                    vec![id.cert.der().clone()],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key.serialize_der())),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }

    pub(crate) fn server_name() -> rustls::pki_types::ServerName<'static> {
        rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::test_pki::Ca;
    use super::*;

    fn err(r: Result<TlsConfig, TlsError>) -> String {
        r.map(|_| ()).unwrap_err().to_string()
    }

    #[test]
    fn good_material_builds_with_and_without_a_client_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("CA");
        let (cert, key) = ca.issue(&["127.0.0.1"]).write(dir.path(), "srv", &ca);
        let plain = TlsConfig::from_files(&cert, &key, None).unwrap();
        assert_eq!(plain.client_auth(), None);
        assert_eq!(plain.server.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let ca_file = ca.write(dir.path(), "ca.pem");
        let mutual =
            TlsConfig::from_files(&cert, &key, Some((&ca_file, ClientAuth::Required))).unwrap();
        assert_eq!(mutual.client_auth(), Some(ClientAuth::Required));
        // ECDSA P-384 and Ed25519 keys load too (RSA goes the same way;
        // rcgen on ring cannot generate one).
        for (i, alg) in [&rcgen::PKCS_ECDSA_P384_SHA384, &rcgen::PKCS_ED25519]
            .into_iter()
            .enumerate()
        {
            let id = ca.issue_with(&["127.0.0.1"], rcgen::KeyPair::generate_for(alg).unwrap());
            let (cert, key) = id.write(dir.path(), &format!("k{i}"), &ca);
            TlsConfig::from_files(&cert, &key, None).unwrap();
        }
    }

    #[test]
    fn bad_material_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("CA");
        let (cert, key) = ca.issue(&["127.0.0.1"]).write(dir.path(), "srv", &ca);
        let (_, other_key) = ca.issue(&["127.0.0.1"]).write(dir.path(), "other", &ca);
        let missing = dir.path().join("missing.pem");
        let e = err(TlsConfig::from_files(&missing, &key, None));
        assert!(e.contains("missing.pem"), "{e}");
        // A key where the certificate belongs, and the reverse.
        let e = err(TlsConfig::from_files(&key, &key, None));
        assert!(e.contains("srv.key") && e.contains("no CERTIFICATE"), "{e}");
        let e = err(TlsConfig::from_files(&cert, &cert, None));
        assert!(e.contains("srv.crt") && e.contains("private key"), "{e}");
        // A key that is not the certificate's.
        let e = err(TlsConfig::from_files(&cert, &other_key, None));
        assert!(e.contains("srv.crt") && e.contains("other.key"), "{e}");
        // A client CA file without a certificate.
        let e = err(TlsConfig::from_files(
            &cert,
            &key,
            Some((&key, ClientAuth::Optional)),
        ));
        assert!(e.contains("srv.key") && e.contains("no CERTIFICATE"), "{e}");
        // No key bytes in any message.
        let key_pem = std::fs::read_to_string(&key).unwrap();
        let body = key_pem.lines().nth(1).unwrap();
        assert!(!e.contains(body));
    }
}
