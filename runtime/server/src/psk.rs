//! PSK-TLS on a second DM listener (spec 9.2.2: "The DM Server SHALL
//! support X509 certificate and PSK-TLS [RFC4279]"; Appendix B.2
//! DM-SEC-004-S, DM-SEC-008-S, DM-SEC-009-S), behind the `psk` cargo
//! feature.
//!
//! rustls, which serves the X.509 listener, has no external-PSK cipher
//! suites, so this listener runs on OpenSSL (the `openssl` crate over the
//! system's libssl). It serves the same DM endpoint, Data Repository and
//! SHOW pages as the main listener, through the same HTTP service, under
//! the same connection cap; each request carries the DevID whose key the
//! handshake proved as a [`PskDevId`] extension, and device authentication
//! takes a package whose `OMADM-DevID` is that DevID and refuses (403) any
//! other.
//!
//! Keys come from a file given at start ([`PskConfig::from_file`]), one
//! device a line: `DevID identity hexkey`. The identity is the UTF-8 PSK
//! identity of the device's DMAcc (spec 12.2.1.1), the key its
//! `ClientSecretKey` in hex.
//!
//! Without the feature, [`PskConfig`] is an empty enum: no value of it can
//! be made, so `ServerOptions::psk` is always `None`.

use std::sync::Arc;

/// The DevID whose pre-shared key the PSK-TLS handshake of a connection
/// proved, in the extensions of each request of that connection:
/// `req.extensions().get::<PskDevId>()`. Absent on the other listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PskDevId(Arc<str>);

impl PskDevId {
    /// The DevID.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(not(feature = "psk"))]
pub use off::*;
#[cfg(feature = "psk")]
pub use on::*;

/// Without the `psk` feature: types no value can be made of, so that the
/// server's code needs no `cfg` of its own.
#[cfg(not(feature = "psk"))]
mod off {
    use std::sync::Arc;

    use tokio::net::{TcpListener, TcpStream};

    use super::PskDevId;
    use crate::state::Core;

    /// PSK-TLS settings; built without the `psk` feature, none can be made.
    #[derive(Debug, Clone)]
    pub enum PskConfig {}

    #[derive(Clone)]
    pub(crate) enum PskAcceptor {}

    pub(crate) async fn bind(config: PskConfig) -> std::io::Result<(TcpListener, PskAcceptor)> {
        match config {}
    }

    impl PskAcceptor {
        pub(crate) async fn accept(
            &self,
            _stream: TcpStream,
            _peer: std::net::SocketAddr,
            _core: &Arc<Core>,
        ) -> Option<(TcpStream, PskDevId)> {
            match *self {}
        }
    }
}

#[cfg(feature = "psk")]
mod on {
    use std::collections::{HashMap, HashSet};
    use std::io::Read as _;
    use std::net::SocketAddr;
    use std::path::{Path, PathBuf};
    use std::pin::Pin;
    use std::sync::Arc;
    use std::time::Duration;

    use openssl::bn::BigNum;
    use openssl::dh::Dh;
    use openssl::ssl::{Ssl, SslContext, SslMethod, SslOptions, SslSessionCacheMode, SslVersion};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_openssl::SslStream;

    use super::PskDevId;
    use crate::state::Core;
    use crate::HANDSHAKE_TIMEOUT;

    /// The cipher suites offered, by their OpenSSL names, in the order of
    /// preference (AEAD first, then forward secrecy). Of 9.2.2's seven:
    ///
    /// - TLS_PSK_WITH_AES_128_GCM_SHA256 (`PSK-AES128-GCM-SHA256`),
    ///   TLS_DHE_PSK_WITH_AES_128_GCM_SHA256, TLS_PSK_WITH_AES_128_CBC_SHA256,
    ///   TLS_DHE_PSK_WITH_AES_128_CBC_SHA256 and
    ///   TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256: offered.
    /// - TLS_RSA_PSK_WITH_AES_128_GCM_SHA256 and
    ///   TLS_RSA_PSK_WITH_AES_128_CBC_SHA256: not offered. They authenticate
    ///   the server with an RSA certificate besides the key (RFC 4279
    ///   section 4), so they need X.509 material on this listener, and a
    ///   device able to check a server certificate can use the X.509
    ///   listener; their RSA key transport also has no forward secrecy.
    pub const PSK_CIPHERS: [&str; 5] = [
        "DHE-PSK-AES128-GCM-SHA256",
        "PSK-AES128-GCM-SHA256",
        "ECDHE-PSK-AES128-CBC-SHA256",
        "DHE-PSK-AES128-CBC-SHA256",
        "PSK-AES128-CBC-SHA256",
    ];

    /// Longest PSK identity taken, in bytes: 12.2.1.1 and RFC 4279
    /// section 5.3 ask for at least 128.
    pub const MAX_PSK_IDENTITY: usize = 128;
    /// Shortest key taken, in bytes: 128 bits, the strength of the
    /// AES-128 suites it keys.
    pub const MIN_PSK_KEY: usize = 16;
    /// Longest key taken, in bytes (RFC 4279 section 5.3 asks for 64).
    pub const MAX_PSK_KEY: usize = 64;
    /// Longest DevID of the key file, in bytes.
    pub const MAX_PSK_DEV_ID: usize = 256;
    /// Most lines of the key file (comments and blank lines included):
    /// the table is held in memory.
    pub const MAX_PSK_LINES: usize = 100_000;
    /// Most bytes of one line of the key file: the longest DevID,
    /// identity and hex key and their separators, with room for spaces.
    const MAX_LINE: usize = MAX_PSK_DEV_ID + MAX_PSK_IDENTITY + 2 * MAX_PSK_KEY + 128;

    /// A key file the server cannot use. Names the file and line; never
    /// holds key bytes.
    #[derive(Debug, thiserror::Error)]
    pub enum PskError {
        #[error("{}: {source}", path.display())]
        Read {
            path: PathBuf,
            source: std::io::Error,
        },
        /// Anyone besides its owner could read (or change) the keys.
        #[error(
            "{}: group or others have access (mode {mode:03o}); it holds keys: chmod 600 it",
            path.display()
        )]
        Permissions { path: PathBuf, mode: u32 },
        #[error("{}: more than {max} lines or {} bytes", path.display(), max * MAX_LINE)]
        TooLong { path: PathBuf, max: usize },
        #[error("{}:{line}: {reason}", path.display())]
        Line {
            path: PathBuf,
            line: usize,
            reason: String,
        },
        #[error("{}: no key in it", path.display())]
        Empty { path: PathBuf },
        /// OpenSSL refused the settings (e.g. a libssl built without PSK).
        #[error("OpenSSL: {0}")]
        Tls(#[from] openssl::error::ErrorStack),
    }

    struct Key {
        dev_id: PskDevId,
        key: Vec<u8>,
    }

    /// Where the PSK-TLS listener listens and the keys it takes, checked
    /// when built.
    #[derive(Clone)]
    pub struct PskConfig {
        /// The address of the PSK-TLS listener.
        pub listen: SocketAddr,
        /// How long a connection has to complete its handshake (as
        /// [`TlsConfig::handshake_timeout`](crate::TlsConfig)).
        pub handshake_timeout: Duration,
        keys: Arc<HashMap<Vec<u8>, Key>>,
    }

    impl std::fmt::Debug for PskConfig {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("PskConfig")
                .field("listen", &self.listen)
                .field("handshake_timeout", &self.handshake_timeout)
                .field("keys", &self.keys.len())
                .finish()
        }
    }

    impl PskConfig {
        /// Reads the key file: one device a line, `DevID identity hexkey`
        /// separated by spaces or tabs; blank lines and lines starting with
        /// `#` are skipped. A file that its group or others may access is
        /// refused, as is a DevID or identity given twice.
        pub fn from_file(listen: SocketAddr, path: &Path) -> Result<PskConfig, PskError> {
            let read = |source| PskError::Read {
                path: path.to_owned(),
                source,
            };
            let file = std::fs::File::open(path).map_err(read)?;
            // The opened file's mode, not the path's: no swap in between.
            let mode = {
                use std::os::unix::fs::PermissionsExt;
                file.metadata().map_err(read)?.permissions().mode()
            };
            if mode & 0o077 != 0 {
                return Err(PskError::Permissions {
                    path: path.to_owned(),
                    mode: mode & 0o777,
                });
            }
            let too_long = || PskError::TooLong {
                path: path.to_owned(),
                max: MAX_PSK_LINES,
            };
            let limit = MAX_PSK_LINES * MAX_LINE;
            let mut bytes = Vec::new();
            file.take(limit as u64 + 1)
                .read_to_end(&mut bytes)
                .map_err(read)?;
            if bytes.len() > limit {
                return Err(too_long());
            }
            let text = std::str::from_utf8(&bytes).map_err(|e| PskError::Line {
                path: path.to_owned(),
                line: bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count()
                    + 1,
                reason: "not UTF-8 (12.2.1.1: identities are UTF-8)".into(),
            })?;
            let mut keys = HashMap::new();
            let mut dev_ids = HashSet::new();
            for (i, line) in text.lines().enumerate() {
                if i >= MAX_PSK_LINES {
                    return Err(too_long());
                }
                let line_err = |reason: String| PskError::Line {
                    path: path.to_owned(),
                    line: i + 1,
                    reason,
                };
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (dev_id, identity, key) = parse_line(line).map_err(line_err)?;
                if !dev_ids.insert(dev_id.to_owned()) {
                    return Err(line_err(format!("DevID `{dev_id}` has a key already")));
                }
                let entry = Key {
                    dev_id: PskDevId(dev_id.into()),
                    key,
                };
                if keys.insert(identity.as_bytes().to_vec(), entry).is_some() {
                    return Err(line_err(format!(
                        "identity `{}` is another device's already",
                        identity.escape_debug()
                    )));
                }
            }
            if keys.is_empty() {
                return Err(PskError::Empty {
                    path: path.to_owned(),
                });
            }
            Ok(PskConfig {
                listen,
                handshake_timeout: HANDSHAKE_TIMEOUT,
                keys: Arc::new(keys),
            })
        }

        /// How many devices have a key.
        pub fn len(&self) -> usize {
            self.keys.len()
        }

        /// Never true: a file without keys is refused.
        pub fn is_empty(&self) -> bool {
            self.keys.is_empty()
        }

        /// The OpenSSL context: TLS 1.2 only, [`PSK_CIPHERS`], no session
        /// resumption (each connection proves its key).
        fn context(&self) -> Result<SslContext, PskError> {
            let mut b = SslContext::builder(SslMethod::tls_server())?;
            // TLS 1.3 has no such suites (its external PSKs are another
            // mechanism); 9.2.2's suites are all TLS 1.2 ones (SHA-256).
            b.set_min_proto_version(Some(SslVersion::TLS1_2))?;
            b.set_max_proto_version(Some(SslVersion::TLS1_2))?;
            b.set_cipher_list(&PSK_CIPHERS.join(":"))?;
            // DHE-PSK: the 2048-bit MODP group of RFC 3526 (group 14).
            let dh = Dh::from_pqg(
                BigNum::get_rfc3526_prime_2048()?,
                None,
                BigNum::from_u32(2)?,
            )?;
            b.set_tmp_dh(&dh)?;
            b.set_options(SslOptions::NO_TICKET | SslOptions::CIPHER_SERVER_PREFERENCE);
            b.set_session_cache_mode(SslSessionCacheMode::OFF);
            let keys = self.keys.clone();
            b.set_psk_server_callback(move |_ssl, identity, out| {
                // Unknown identity: no key, and OpenSSL fails the
                // handshake (unknown_psk_identity).
                let key = identity.and_then(|id| keys.get(id)).map(|k| &k.key);
                match key {
                    Some(key) if key.len() <= out.len() => {
                        out[..key.len()].copy_from_slice(key);
                        Ok(key.len())
                    }
                    _ => Ok(0),
                }
            });
            Ok(b.build())
        }
    }

    /// `DevID identity hexkey`, each checked against its bound.
    fn parse_line(line: &str) -> Result<(&str, &str, Vec<u8>), String> {
        let mut fields = line.split_ascii_whitespace();
        let (Some(dev_id), Some(identity), Some(hex), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err("expected `DevID identity hexkey`".into());
        };
        if dev_id.len() > MAX_PSK_DEV_ID {
            return Err(format!("DevID longer than {MAX_PSK_DEV_ID} bytes"));
        }
        if identity.len() > MAX_PSK_IDENTITY {
            return Err(format!(
                "identity longer than {MAX_PSK_IDENTITY} bytes (spec 12.2.1.1)"
            ));
        }
        // Never quote the key: the message goes to a log.
        let key = decode_hex(hex).ok_or("the key is not hexadecimal")?;
        if !(MIN_PSK_KEY..=MAX_PSK_KEY).contains(&key.len()) {
            return Err(format!(
                "the key is {} bytes; {MIN_PSK_KEY} to {MAX_PSK_KEY} are taken",
                key.len()
            ));
        }
        Ok((dev_id, identity, key))
    }

    fn decode_hex(hex: &str) -> Option<Vec<u8>> {
        if hex.len() % 2 != 0 || !hex.is_ascii() {
            return None;
        }
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
            .collect()
    }

    /// The PSK-TLS handshake of one listener.
    #[derive(Clone)]
    pub(crate) struct PskAcceptor {
        context: SslContext,
        keys: Arc<HashMap<Vec<u8>, Key>>,
        timeout: Duration,
    }

    /// Binds the PSK-TLS listener; the OpenSSL context is built first, so
    /// a libssl that refuses it stops the start.
    pub(crate) async fn bind(config: PskConfig) -> std::io::Result<(TcpListener, PskAcceptor)> {
        let context = config.context().map_err(std::io::Error::other)?;
        let listener = TcpListener::bind(config.listen).await?;
        Ok((
            listener,
            PskAcceptor {
                context,
                keys: config.keys,
                timeout: config.handshake_timeout,
            },
        ))
    }

    impl PskAcceptor {
        /// Runs the handshake (bounded by the handshake timeout); the
        /// stream and the DevID of the identity the client proved, or
        /// `None` after logging why not.
        pub(crate) async fn accept(
            &self,
            stream: TcpStream,
            peer: SocketAddr,
            core: &Arc<Core>,
        ) -> Option<(SslStream<TcpStream>, PskDevId)> {
            let mut stream = match Ssl::new(&self.context).and_then(|s| SslStream::new(s, stream)) {
                Ok(s) => s,
                Err(e) => {
                    core.log(format!("{peer}: PSK-TLS: {e}"));
                    return None;
                }
            };
            match tokio::time::timeout(self.timeout, Pin::new(&mut stream).accept()).await {
                Ok(Ok(())) => {}
                // A wrong key ends here (bad_record_mac on the Finished).
                Ok(Err(e)) => {
                    core.log(format!("{peer}: PSK-TLS handshake failed: {e}"));
                    return None;
                }
                Err(_) => {
                    core.log(format!(
                        "{peer}: PSK-TLS handshake not done after {:?}",
                        self.timeout
                    ));
                    return None;
                }
            }
            // No resumption is offered, so a finished handshake used the
            // key of the identity the client sent.
            let dev_id = stream
                .ssl()
                .psk_identity()
                .and_then(|id| self.keys.get(id))
                .map(|k| k.dev_id.clone());
            if dev_id.is_none() {
                core.log(format!(
                    "{peer}: PSK-TLS handshake without a known identity"
                ));
            }
            Some((stream, dev_id?))
        }
    }
}

/// With a PSK client on OpenSSL: `cargo test -p dm-server --features psk`.
#[cfg(all(test, feature = "psk"))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::Write as _;
    use std::net::SocketAddr;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    use std::path::{Path, PathBuf};
    use std::pin::Pin;
    use std::time::Duration;

    use openssl::ssl::{Ssl, SslContext, SslMethod, SslVersion};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;
    use tokio_openssl::SslStream;

    use super::*;
    use crate::{EnrollPolicy, ServerConfig, ServerHandle, ServerOptions, HANDSHAKE_TIMEOUT};

    const KEY: [u8; 16] = *b"0123456789abcdef";
    const OTHER_KEY: [u8; 32] = [7; 32];

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// 12.2.1.1: a PSK identity of 128 bytes, UTF-8 (`é` is two bytes).
    fn long_identity() -> String {
        format!("é{}", "i".repeat(MAX_PSK_IDENTITY - 2))
    }

    /// Writes `text` to `dir/name` with `mode`.
    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
        // The umask may have taken bits away at creation.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn load(text: &str) -> Result<PskConfig, PskError> {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "psk", text, 0o600);
        PskConfig::from_file("127.0.0.1:0".parse().unwrap(), &path)
    }

    /// A server refusing devices without credentials (so only the PSK
    /// admits IMEI:1), with a PSK listener keyed for IMEI:1 (the 128-byte
    /// identity, [`KEY`]) and IMEI:2 (`dev2`, [`OTHER_KEY`]).
    async fn server(timeout: Duration) -> ServerHandle {
        let mut psk = load(&format!(
            "# DevID identity key\nIMEI:1 {} {}\n\nIMEI:2\tdev2\t{}\n",
            long_identity(),
            hex(&KEY),
            hex(&OTHER_KEY)
        ))
        .unwrap();
        psk.handshake_timeout = timeout;
        let config = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            default_commands: Vec::new(),
            log_errors: false,
        };
        let options = ServerOptions {
            psk: Some(psk),
            enroll: Some(EnrollPolicy::Refuse),
            ..Default::default()
        };
        crate::start_with(config, options).await.unwrap()
    }

    /// A PSK-TLS client handshake offering `ciphers` only (TLS 1.2).
    async fn connect(
        addr: SocketAddr,
        identity: &str,
        key: &[u8],
        ciphers: &str,
    ) -> Result<SslStream<TcpStream>, String> {
        let mut b = SslContext::builder(SslMethod::tls_client()).unwrap();
        b.set_max_proto_version(Some(SslVersion::TLS1_2)).unwrap();
        b.set_cipher_list(ciphers).unwrap();
        let (identity, key) = (identity.as_bytes().to_vec(), key.to_vec());
        b.set_psk_client_callback(move |_ssl, _hint, id_out, key_out| {
            // A C string: the identity, then NUL.
            id_out[..identity.len()].copy_from_slice(&identity);
            id_out[identity.len()] = 0;
            key_out[..key.len()].copy_from_slice(&key);
            Ok(key.len())
        });
        let ssl = Ssl::new(&b.build()).unwrap();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut stream = SslStream::new(ssl, tcp).unwrap();
        Pin::new(&mut stream)
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        Ok(stream)
    }

    /// One request on the stream: the status and the whole response.
    async fn request(stream: &mut SslStream<TcpStream>, head: &str, body: &str) -> (u16, String) {
        let request = format!(
            "{head}\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        // Whatever came before the close: a peer's missing close_notify
        // is no concern here.
        let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut out))
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        (status, text)
    }

    /// Package#1 of `dev_id`, as a device sends it.
    fn package1(dev_id: &str) -> String {
        format!(
            "POST /dm HTTP/1.1\r\nOMADM-DevID: {dev_id}\r\n\
             Content-Type: application/vnd.oma.dm.initiation+json"
        )
    }

    /// Whether the server logged a line containing `text` within 10 s.
    async fn logged(handle: &ServerHandle, text: &str) -> bool {
        for _ in 0..100 {
            if handle.errors().iter().any(|e| e.contains(text)) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    const ALL: &str = "PSK-AES128-GCM-SHA256";

    #[tokio::test]
    async fn a_right_key_runs_a_dm_exchange_as_the_keys_device() {
        let handle = server(HANDSHAKE_TIMEOUT).await;
        let addr = handle.psk_addr().unwrap();
        let mut s = connect(addr, &long_identity(), &KEY, ALL).await.unwrap();
        let (status, text) = request(&mut s, &package1("IMEI:1"), "{}").await;
        assert_eq!(status, 200, "{text}");
        assert!(
            text.to_ascii_lowercase()
                .contains("content-type: application/vnd.oma.dm.request+json"),
            "Package#2: {text}"
        );
        let record = handle.device("IMEI:1").unwrap();
        assert_eq!(record.sessions, 1);
        assert!(!record.unauthenticated, "authenticated by its key");
        // The same Package#1 on the main listener, with no credentials,
        // is refused (--enroll refuse): the key is what admitted it.
        let mut tcp = TcpStream::connect(handle.addr()).await.unwrap();
        let plain = format!(
            "{}\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}",
            package1("IMEI:1")
        );
        tcp.write_all(plain.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        tcp.read_to_end(&mut out).await.unwrap();
        assert!(out.starts_with(b"HTTP/1.1 401"), "{out:?}");
        // The Data Repository behind the PSK listener knows the device
        // too: its own resource is looked up (none there), another
        // device's is refused.
        let mut s = connect(addr, &long_identity(), &KEY, ALL).await.unwrap();
        let (status, text) = request(&mut s, "GET /repo/IMEI:1/nothing HTTP/1.1", "").await;
        assert_eq!(status, 404, "{text}");
        let mut s = connect(addr, &long_identity(), &KEY, ALL).await.unwrap();
        let (status, text) = request(&mut s, "GET /repo/IMEI:2/nothing HTTP/1.1", "").await;
        assert_eq!(status, 403, "{text}");
        handle.shutdown().await;
    }

    #[tokio::test]
    async fn a_wrong_key_or_an_unknown_identity_fails_the_handshake() {
        let handle = server(HANDSHAKE_TIMEOUT).await;
        let addr = handle.psk_addr().unwrap();
        // IMEI:2's key under IMEI:1's identity.
        let wrong = connect(addr, &long_identity(), &OTHER_KEY[..16], ALL).await;
        assert!(wrong.is_err());
        assert!(logged(&handle, "PSK-TLS handshake failed").await);
        let unknown = connect(addr, "nobody", &KEY, ALL).await;
        assert!(unknown.is_err());
        assert!(handle.device("IMEI:1").is_none());
        handle.shutdown().await;
    }

    #[tokio::test]
    async fn a_right_key_naming_another_devices_dev_id_gets_403() {
        let handle = server(HANDSHAKE_TIMEOUT).await;
        let addr = handle.psk_addr().unwrap();
        let mut s = connect(addr, "dev2", &OTHER_KEY, ALL).await.unwrap();
        let (status, text) = request(&mut s, &package1("IMEI:1"), "{}").await;
        assert_eq!(status, 403, "{text}");
        assert!(
            logged(
                &handle,
                "403 IMEI:1: the PSK-TLS identity is the key of DevID `IMEI:2`"
            )
            .await
        );
        assert!(
            handle.device("IMEI:1").is_none(),
            "nothing of IMEI:1 changed"
        );
        handle.shutdown().await;
    }

    #[tokio::test]
    async fn each_offered_suite_negotiates_and_rsa_psk_does_not() {
        let handle = server(HANDSHAKE_TIMEOUT).await;
        let addr = handle.psk_addr().unwrap();
        for suite in PSK_CIPHERS {
            let mut s = connect(addr, "dev2", &OTHER_KEY, suite)
                .await
                .unwrap_or_else(|e| panic!("{suite}: {e}"));
            assert_eq!(s.ssl().current_cipher().unwrap().name(), suite);
            assert_eq!(s.ssl().version_str(), "TLSv1.2");
            let (status, text) = request(&mut s, &package1("IMEI:2"), "{}").await;
            assert_eq!(status, 200, "{suite}: {text}");
        }
        assert_eq!(handle.device("IMEI:2").unwrap().sessions, PSK_CIPHERS.len());
        // See PSK_CIPHERS: the RSA_PSK suites need a server certificate.
        let rsa = connect(addr, "dev2", &OTHER_KEY, "RSA-PSK-AES128-GCM-SHA256").await;
        assert!(rsa.is_err());
        handle.shutdown().await;
    }

    #[tokio::test]
    async fn a_silent_connection_is_closed_at_the_handshake_timeout() {
        let handle = server(Duration::from_millis(200)).await;
        let mut silent = TcpStream::connect(handle.psk_addr().unwrap())
            .await
            .unwrap();
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(20), silent.read(&mut buf))
            .await
            .expect("closed by the server");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        assert!(logged(&handle, "PSK-TLS handshake not done").await);
        handle.shutdown().await;
    }

    #[test]
    fn a_key_file_others_may_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (name, mode) in [("g", 0o640), ("o", 0o604), ("w", 0o620)] {
            let path = write(dir.path(), name, &format!("D id {}\n", hex(&KEY)), mode);
            let e = PskConfig::from_file("127.0.0.1:0".parse().unwrap(), &path).unwrap_err();
            assert!(
                matches!(e, PskError::Permissions { mode: m, .. } if m == mode),
                "{e}"
            );
        }
    }

    #[test]
    fn key_file_lines_are_bounded_and_checked() {
        let key = hex(&KEY);
        let ok = load(&format!("D {} {key}\n", long_identity())).unwrap();
        assert_eq!(ok.len(), 1);
        let cases = [
            (format!("D {}x {key}", long_identity()), "identity longer"),
            (format!("D id {}", hex(&[1; MIN_PSK_KEY - 1])), "15 bytes"),
            (format!("D id {}", hex(&[1; MAX_PSK_KEY + 1])), "65 bytes"),
            (
                format!("{} id {key}", "d".repeat(MAX_PSK_DEV_ID + 1)),
                "DevID longer",
            ),
            ("D id 0g".to_owned(), "not hexadecimal"),
            (format!("D id {key} extra"), "expected"),
            (format!("D id {key}\nD id2 {key}"), "DevID `D` has a key"),
            (
                format!("D id {key}\nE id {key}"),
                "identity `id` is another",
            ),
            ("# only a comment\n".to_owned(), "no key"),
        ];
        for (text, expected) in cases {
            let e = load(&text).unwrap_err().to_string();
            assert!(e.contains(expected), "{text:?}: {e}");
            // Never a key byte in a message that goes to a log.
            assert!(!e.contains(&key[..8]), "{e}");
        }
        let e = load(&format!("D id {key}\nE id2 {}", hex(&[1; 15]))).unwrap_err();
        assert!(matches!(e, PskError::Line { line: 2, .. }), "{e}");
        let many = "#\n".repeat(MAX_PSK_LINES) + &format!("D id {key}\n");
        assert!(matches!(load(&many), Err(PskError::TooLong { .. })));
    }

    #[test]
    fn the_debug_form_shows_no_key() {
        let config = load(&format!("D id {}\n", hex(&KEY))).unwrap();
        let shown = format!("{config:?}");
        assert!(
            shown.contains("keys: 1") && !shown.contains(&hex(&KEY)[..8]),
            "{shown}"
        );
    }
}
