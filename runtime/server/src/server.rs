//! Starting and stopping a server: the listeners, their accept loops, and
//! the [`ServerHandle`] that tests, the demo and `dmctl server` hold.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use dm_core::Command;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use crate::limits::{RateLimit, ACCEPT_BACKOFF};

use crate::state::{lock, Core};
use crate::{
    admin, http, session, DeviceRecord, MemoryStorage, NotificationConfig, NotifyRequest,
    PeerCertificates, RegistrationKind, ServerConfig, ServerError, ServerOptions, Storage,
    TlsConfig, DM_PATH,
};

/// A running server. Dropping it does not stop it; call [`shutdown`].
///
/// [`shutdown`]: ServerHandle::shutdown
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    admin: Option<SocketAddr>,
    psk: Option<SocketAddr>,
    bootstrap: Option<SocketAddr>,
    core: Arc<Core>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the admin API, when it runs.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// The address of the bootstrap listener, when it runs.
    pub fn bootstrap_addr(&self) -> Option<SocketAddr> {
        self.bootstrap
    }

    /// `https://ADDR/bootstrap`: where a device fetches its bootstrap
    /// (its `--bootstrap-url`), when the bootstrap server runs.
    pub fn bootstrap_url(&self) -> Option<String> {
        self.core
            .bootstrap
            .as_ref()
            .map(|b| format!("{}{}", b.url, crate::BOOTSTRAP_PATH))
    }

    /// The address of the PSK-TLS listener, when it runs (`psk` feature).
    pub fn psk_addr(&self) -> Option<SocketAddr> {
        self.psk
    }

    /// The ServerURI devices open sessions with: `https://` when the
    /// listener speaks TLS.
    pub fn dm_url(&self) -> String {
        format!("{}{DM_PATH}", self.core.base_url)
    }

    /// `http://ADDR` or `https://ADDR`: what the repository and UI URLs
    /// start with.
    pub fn base_url(&self) -> &str {
        &self.core.base_url
    }

    /// The URL of a Data Repository resource of a device.
    pub fn repo_url(&self, dev_id: &str, path: &str) -> String {
        self.core.repo_url(dev_id, path)
    }

    /// A repository URL signed for `method` (`GET`, `PUT`, `POST`) for the
    /// next 15 minutes, as the server writes them into the commands it
    /// sends: for in-process tools and tests that stand in for a device.
    pub fn signed_repo_url(&self, method: &str, dev_id: &str, path: &str) -> String {
        let expires = crate::now().saturating_add(crate::signing::SHORT_TTL);
        self.signed_repo_url_until(method, dev_id, path, expires)
    }

    /// [`signed_repo_url`](Self::signed_repo_url) good until `expires`
    /// (Unix seconds).
    pub fn signed_repo_url_until(
        &self,
        method: &str,
        dev_id: &str,
        path: &str,
        expires: u64,
    ) -> String {
        let url = self.core.repo_url(dev_id, path);
        let target = url.strip_prefix(&self.core.base_url).unwrap_or(&url);
        let query = self.core.signer.query(method, target, expires);
        format!("{url}?{query}")
    }

    /// The storage behind the server.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.core.storage
    }

    /// Queues a command for the device's next Package#2. A storage
    /// failure is logged; [`try_enqueue`](Self::try_enqueue) returns it.
    pub fn enqueue(&self, dev_id: &str, command: Command) {
        if let Err(e) = self.try_enqueue(dev_id, command) {
            self.core
                .log(format!("{dev_id}: cannot queue a command: {e}"));
        }
    }

    /// Queues a command; returns its entry id.
    pub fn try_enqueue(&self, dev_id: &str, command: Command) -> Result<u64, ServerError> {
        self.core.enqueue(dev_id, &command)
    }

    /// A snapshot of what the server knows about a device.
    pub fn device(&self, dev_id: &str) -> Option<DeviceRecord> {
        self.core.record(dev_id).ok().flatten()
    }

    /// Sets how the device is notified (its DMAcc `Auth/Noti` and address).
    pub fn configure_notification(
        &self,
        dev_id: &str,
        config: NotificationConfig,
    ) -> Result<(), ServerError> {
        self.core.configure_notification(dev_id, config)
    }

    /// Sends a Package#0 to the device; returns the NOTIFICATION-ID used.
    pub async fn notify(&self, dev_id: &str, request: &NotifyRequest) -> Result<u16, ServerError> {
        self.core.notify(dev_id, request).await
    }

    /// Sends DEFAULT or SUB and records the registration.
    pub fn register(
        &self,
        dev_id: &str,
        kind: RegistrationKind,
        server_uri: &str,
    ) -> Result<u64, ServerError> {
        self.core.register(dev_id, kind, server_uri)
    }

    /// Drops a registration; a SUB gets its UNSUB queued.
    pub fn unregister(&self, dev_id: &str, id: u64) -> Result<(), ServerError> {
        self.core.unregister(dev_id, id)
    }

    /// Opens a SHOW UI session and queues the SHOW that points at it.
    pub fn show(&self, dev_id: &str, prompt: &str) -> Result<u64, ServerError> {
        self.core.show(dev_id, prompt).map(|(uiid, _)| uiid)
    }

    /// The last requests the server rejected (at most
    /// [`Limits::error_history`](crate::Limits::error_history)), with the
    /// reason, escaped and cut at [`MAX_LOGGED_INPUT`](crate::MAX_LOGGED_INPUT).
    pub fn errors(&self) -> Vec<String> {
        lock(&self.core.errors).iter().cloned().collect()
    }

    /// Stops accepting connections and waits for the accept loops to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Binds the listener and serves until shut down, state in memory.
pub async fn start(config: ServerConfig) -> std::io::Result<ServerHandle> {
    start_with(config, ServerOptions::default()).await
}

/// Binds the DM listener (and the admin API when asked) over `storage`.
pub async fn start_with(
    config: ServerConfig,
    options: ServerOptions,
) -> std::io::Result<ServerHandle> {
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let admin_listener = match options.admin {
        Some(a) => Some(TcpListener::bind(a).await?),
        None => None,
    };
    let admin = admin_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    let psk = match options.psk {
        Some(config) => Some(crate::psk::bind(config).await?),
        None => None,
    };
    let psk_addr = psk.as_ref().map(|(l, _)| l.local_addr()).transpose()?;
    let scheme = if options.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let bootstrap = match (&options.bootstrap, &options.tls) {
        (None, _) => None,
        (Some(_), None) => {
            // spec 8.4, 9.3.1.1: a bootstrap travels only over TLS.
            return Err(std::io::Error::other(
                "the bootstrap server needs TLS: its certificate is what devices pin",
            ));
        }
        (Some(b), Some(tls)) => {
            let listener = TcpListener::bind(b.listen).await?;
            let bound = listener.local_addr()?;
            let server = crate::bootstrap::BootstrapServer {
                url: b
                    .public_url
                    .clone()
                    .unwrap_or_else(|| format!("https://{bound}")),
                tls: tls.clone(),
            };
            let listen_tls = tls.bootstrap_listener().map_err(std::io::Error::other)?;
            Some((listener, bound, server, listen_tls))
        }
    };
    let admin_tls = match (options.admin_tls, &options.tls) {
        (false, _) => None,
        (true, None) => {
            return Err(std::io::Error::other(
                "the admin API's TLS uses the DM listener's certificate: give TLS too",
            ))
        }
        (true, Some(tls)) => Some(tls.without_client_auth().map_err(std::io::Error::other)?),
    };
    let base_url = match &options.public_url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => format!("{scheme}://{addr}"),
    };
    // spec 9.2.1: without TLS nothing can be trusted anyway; with it, only
    // devices an operator gave credentials to, unless told otherwise.
    let enroll = options.enroll.unwrap_or(if options.tls.is_some() {
        crate::EnrollPolicy::Refuse
    } else {
        crate::EnrollPolicy::Flag
    });
    let auth = crate::auth::Authenticator::new(enroll, options.http_auth, options.tls.is_some());
    let signer = crate::signing::UrlSigner::random()
        .ok_or_else(|| std::io::Error::other("no randomness for the URL signing key"))?;
    let core = Arc::new(Core {
        storage: options
            .storage
            .unwrap_or_else(|| Arc::new(MemoryStorage::new())),
        default_commands: config.default_commands,
        log_errors: config.log_errors,
        errors: Mutex::new(Default::default()),
        limits: options.limits,
        bodies: http::BodyLimits::new(&options.limits),
        base_url,
        admin_guard: admin::AdminGuard::new(admin, &options.admin_hosts, admin_tls.is_some()),
        session_lock: Mutex::new(()),
        auth,
        signer,
        bootstrap: bootstrap.as_ref().map(|(_, _, server, _)| server.clone()),
        session_log: Default::default(),
    });
    let (stop, stopped) = watch::channel(false);
    let transport = options.tls.map_or(Transport::Plain, Transport::Tls);
    let mut tasks = vec![tokio::spawn(accept_loop(
        listener,
        transport,
        core.clone(),
        stopped.clone(),
        session::handle,
    ))];
    if let Some((l, acceptor)) = psk {
        // The same service as the DM listener, one more way in (spec 9.2.2).
        tasks.push(tokio::spawn(accept_loop(
            l,
            Transport::Psk(acceptor),
            core.clone(),
            stopped.clone(),
            session::handle,
        )));
    }
    let bootstrap_addr = bootstrap.as_ref().map(|(_, bound, _, _)| *bound);
    if let Some((l, _, _, listen_tls)) = bootstrap {
        // spec 8.3: the bootstrap server's own listener, mutual TLS.
        tasks.push(tokio::spawn(accept_loop(
            l,
            Transport::Tls(listen_tls),
            core.clone(),
            stopped.clone(),
            crate::bootstrap::handle,
        )));
    }
    if let Some(l) = admin_listener {
        // The admin API keeps its own address; over TLS when asked.
        tasks.push(tokio::spawn(accept_loop(
            l,
            admin_tls.map_or(Transport::Plain, Transport::Tls),
            core.clone(),
            stopped,
            admin::handle,
        )));
    }
    Ok(ServerHandle {
        addr,
        admin,
        psk: psk_addr,
        bootstrap: bootstrap_addr,
        core,
        stop,
        tasks,
    })
}

/// How a listener's connections become HTTP/1.1 streams.
#[derive(Clone)]
enum Transport {
    Plain,
    /// X.509 TLS on rustls (spec 9.2).
    Tls(TlsConfig),
    /// PSK-TLS on OpenSSL (spec 9.2.2; `psk` feature, else uninhabited).
    Psk(crate::psk::PskAcceptor),
}

async fn accept_loop<F, Fut>(
    listener: TcpListener,
    transport: Transport,
    core: Arc<Core>,
    mut stopped: watch::Receiver<bool>,
    handler: F,
) where
    F: Fn(Arc<Core>, Request<Incoming>) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let max = core.limits.max_connections;
    let open = Arc::new(Semaphore::new(max));
    let (over_cap, failing) = (RateLimit::default(), RateLimit::default());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and the like: nothing changes until a
                        // connection ends, so wait instead of spinning.
                        if let Some(more) = failing.allow() {
                            core.log(format!("accept failed ({more} more): {e}"));
                        }
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                let Ok(permit) = open.clone().try_acquire_owned() else {
                    // Closed at once: a waiting connection would hold its
                    // descriptor all the same.
                    drop(stream);
                    if let Some(more) = over_cap.allow() {
                        core.log(format!(
                            "{peer}: connection closed, {max} already open ({more} more)"
                        ));
                    }
                    continue;
                };
                // The TLS handshake runs in the connection's task: a peer
                // that stalls or fails it never holds up the next accept.
                let serving = serve(stream, peer, transport.clone(), core.clone(), handler);
                tokio::spawn(async move {
                    serving.await;
                    drop(permit);
                });
            }
            _ = stopped.changed() => break,
        }
    }
}

/// HTTP/1.1 with the header timeout (which is also the keep-alive idle
/// timeout) of [`Limits`](crate::Limits).
fn http1_builder(core: &Core) -> http1::Builder {
    let mut b = http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(core.limits.header_timeout);
    b
}

/// Serves one connection: HTTP/1.1, over TLS or PSK-TLS per `transport`
/// (spec 9.2), with what the handshake proved in every request's
/// extensions ([`PeerCertificates`], [`PskDevId`](crate::PskDevId)).
async fn serve<F, Fut>(
    stream: TcpStream,
    peer: SocketAddr,
    transport: Transport,
    core: Arc<Core>,
    handler: F,
) where
    F: Fn(Arc<Core>, Request<Incoming>) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let tls = match transport {
        Transport::Plain => {
            return serve_http(stream, None::<PeerCertificates>, core, handler).await
        }
        Transport::Tls(tls) => tls,
        Transport::Psk(acceptor) => {
            if let Some((stream, dev_id)) = acceptor.accept(stream, peer, &core).await {
                serve_http(stream, Some(dev_id), core, handler).await;
            }
            return;
        }
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
    let stream = match tokio::time::timeout(tls.handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        // Plain HTTP on this port ends here too: the listener speaks TLS
        // only.
        Ok(Err(e)) => return core.log(format!("{peer}: TLS handshake failed: {e}")),
        Err(_) => {
            return core.log(format!(
                "{peer}: TLS handshake not done after {:?}",
                tls.handshake_timeout
            ))
        }
    };
    let certs = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(PeerCertificates::from_rustls);
    serve_http(stream, certs, core, handler).await;
}

/// HTTP/1.1 on an established stream, `proof` (when some) in the
/// extensions of each of its requests.
async fn serve_http<S, P, F, Fut>(stream: S, proof: Option<P>, core: Arc<Core>, handler: F)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    P: Clone + Send + Sync + 'static,
    F: Fn(Arc<Core>, Request<Incoming>) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    // A connection error concerns that peer only.
    let bodies = core.bodies.clone();
    let builder = http1_builder(&core);
    let svc = service_fn(move |mut req: Request<Incoming>| {
        if let Some(p) = &proof {
            req.extensions_mut().insert(p.clone());
        }
        http::BODY_LIMITS.scope(bodies.clone(), handler(core.clone(), req))
    });
    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use hyper::StatusCode as HttpStatus;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::http::reply;
    use crate::tls::test_pki::{client, server_name, Ca};
    use crate::ClientAuth;

    /// Answers with the DER of the client's certificate, or `none`.
    async fn echo_certificate(
        _core: Arc<Core>,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let body = req
            .extensions()
            .get::<PeerCertificates>()
            .map_or(b"none".to_vec(), |c| c.end_entity().to_vec());
        Ok(reply(HttpStatus::OK, "application/octet-stream", body))
    }

    struct Pki {
        _dir: tempfile::TempDir,
        ca: Ca,
        client_ca: Ca,
        cert: std::path::PathBuf,
        key: std::path::PathBuf,
        client_ca_file: std::path::PathBuf,
    }

    fn pki() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("server CA");
        let client_ca = Ca::new("client CA");
        let (cert, key) = ca.issue(&["127.0.0.1"]).write(dir.path(), "srv", &ca);
        let client_ca_file = client_ca.write(dir.path(), "clients.pem");
        Pki {
            _dir: dir,
            ca,
            client_ca,
            cert,
            key,
            client_ca_file,
        }
    }

    fn core() -> Arc<Core> {
        Arc::new(Core {
            storage: Arc::new(MemoryStorage::new()),
            default_commands: Vec::new(),
            log_errors: false,
            errors: Mutex::new(Default::default()),
            limits: Default::default(),
            bodies: http::BodyLimits::new(&Default::default()),
            base_url: "https://127.0.0.1".into(),
            admin_guard: Default::default(),
            session_lock: Mutex::new(()),
            auth: crate::auth::Authenticator::new(
                crate::EnrollPolicy::Flag,
                Default::default(),
                true,
            ),
            signer: crate::signing::UrlSigner::random().unwrap(),
            bootstrap: None,
            session_log: Default::default(),
        })
    }

    /// The accept loop over `tls` with the echoing handler.
    async fn listen(tls: TlsConfig, core: Arc<Core>) -> (SocketAddr, watch::Sender<bool>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(accept_loop(
            listener,
            Transport::Tls(tls),
            core,
            stopped,
            echo_certificate,
        ));
        (addr, stop)
    }

    /// Whether a rejection containing `text` is logged within 10 s (the
    /// connection's task logs it as the peer sees the connection end).
    async fn logged(core: &Core, text: &str) -> bool {
        for _ in 0..100 {
            if lock(&core.errors).iter().any(|e| e.contains(text)) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// One GET over TLS; the whole response, or the I/O error that ended
    /// the connection.
    async fn get(
        addr: SocketAddr,
        connector: &tokio_rustls::TlsConnector,
    ) -> std::io::Result<Vec<u8>> {
        let tcp = TcpStream::connect(addr).await?;
        let mut tls = connector.connect(server_name(), tcp).await?;
        tls.write_all(b"GET /dm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await?;
        let mut out = Vec::new();
        tls.read_to_end(&mut out).await?;
        Ok(out)
    }

    #[test]
    fn the_error_history_stays_at_its_bound() {
        let mut core = Arc::into_inner(core()).unwrap();
        core.limits.error_history = 100;
        // A path of 10 kB and a newline, 200 times: the history keeps the
        // last 100, each one line and cut.
        for i in 0..200 {
            core.log(format!(
                "404 no DM endpoint at /{i}\n{}",
                "x".repeat(10_000)
            ));
        }
        let errors = lock(&core.errors);
        assert_eq!(errors.len(), 100);
        assert!(
            errors[0].starts_with("404 no DM endpoint at /100\\n"),
            "{}",
            errors[0]
        );
        assert!(errors
            .iter()
            .all(|e| !e.contains('\n') && e.len() <= crate::MAX_LOGGED_INPUT + 32));
    }

    #[tokio::test]
    async fn the_verified_client_chain_reaches_request_handling() {
        let p = pki();
        let tls = TlsConfig::from_files(
            &p.cert,
            &p.key,
            Some((&p.client_ca_file, ClientAuth::Optional)),
        )
        .unwrap();
        let (addr, _stop) = listen(tls, core()).await;
        let device = p.client_ca.issue(&["device.example"]);
        let with = get(addr, &client(&p.ca, Some(&device))).await.unwrap();
        assert!(with.starts_with(b"HTTP/1.1 200"), "{with:?}");
        assert!(with.ends_with(&device.der()), "the device's certificate");
        // Optional: a client without a certificate is served, and its
        // requests carry none.
        let without = get(addr, &client(&p.ca, None)).await.unwrap();
        assert!(without.ends_with(b"\r\n\r\nnone"), "{without:?}");
        // A certificate from another CA fails the handshake even then.
        let stranger = Ca::new("other CA").issue(&["device.example"]);
        let refused = get(addr, &client(&p.ca, Some(&stranger))).await;
        assert!(!refused.is_ok_and(|r| r.starts_with(b"HTTP/")));
    }

    #[tokio::test]
    async fn a_required_client_certificate_refuses_a_client_without_one() {
        let p = pki();
        let tls = TlsConfig::from_files(
            &p.cert,
            &p.key,
            Some((&p.client_ca_file, ClientAuth::Required)),
        )
        .unwrap();
        let core = core();
        let (addr, _stop) = listen(tls, core.clone()).await;
        let refused = get(addr, &client(&p.ca, None)).await;
        assert!(!refused.is_ok_and(|r| r.starts_with(b"HTTP/")));
        assert!(logged(&core, "TLS handshake failed").await);
        let device = p.client_ca.issue(&["device.example"]);
        let ok = get(addr, &client(&p.ca, Some(&device))).await.unwrap();
        assert!(ok.ends_with(&device.der()));
    }

    #[tokio::test]
    async fn tls_1_3_and_tls_1_2_with_the_spec_suite_are_served() {
        let p = pki();
        let tls = TlsConfig::from_files(&p.cert, &p.key, None).unwrap();
        let (addr, _stop) = listen(tls, core()).await;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(p.ca.cert.der().clone()).unwrap();
        // spec 9.2.2: the first X.509 suite the DM Server SHALL support.
        let suite = rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256;
        let mut only = rustls::crypto::ring::default_provider();
        only.cipher_suites.retain(|s| s.suite() == suite);
        let cases = [
            (
                rustls::crypto::ring::default_provider(),
                &rustls::version::TLS13,
            ),
            (only, &rustls::version::TLS12),
        ];
        for (provider, version) in cases {
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
                .with_protocol_versions(&[version])
                .unwrap()
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            let tcp = TcpStream::connect(addr).await.unwrap();
            let mut stream = connector.connect(server_name(), tcp).await.unwrap();
            let session = stream.get_ref().1;
            assert_eq!(session.protocol_version(), Some(version.version));
            if version.version == rustls::ProtocolVersion::TLSv1_2 {
                assert_eq!(session.negotiated_cipher_suite().unwrap().suite(), suite);
            }
            stream
                .write_all(b"GET /dm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut out = Vec::new();
            stream.read_to_end(&mut out).await.unwrap();
            assert!(out.starts_with(b"HTTP/1.1 200"), "{version:?}");
        }
    }

    #[tokio::test]
    async fn plain_http_on_the_tls_port_gets_no_http_answer() {
        let p = pki();
        let tls = TlsConfig::from_files(&p.cert, &p.key, None).unwrap();
        let (addr, _stop) = listen(tls, core()).await;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /dm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut out))
            .await
            .unwrap();
        assert!(!out.windows(5).any(|w| w == b"HTTP/"), "{out:?}");
        // The same port answers a TLS client: only TLS is spoken there.
        let ok = get(addr, &client(&p.ca, None)).await.unwrap();
        assert!(ok.starts_with(b"HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn a_stalled_handshake_holds_only_its_own_connection() {
        let p = pki();
        let mut tls = TlsConfig::from_files(&p.cert, &p.key, None).unwrap();
        tls.handshake_timeout = Duration::from_secs(600);
        let (addr, _stop) = listen(tls.clone(), core()).await;
        // Connected, says nothing: the next client is served all the same.
        let _silent = TcpStream::connect(addr).await.unwrap();
        let ok = tokio::time::timeout(Duration::from_secs(20), get(addr, &client(&p.ca, None)))
            .await
            .expect("served while a handshake is pending")
            .unwrap();
        assert!(ok.starts_with(b"HTTP/1.1 200"));

        // Past the handshake timeout the silent connection is closed.
        tls.handshake_timeout = Duration::from_millis(200);
        let core = core();
        let (addr, _stop) = listen(tls, core.clone()).await;
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(20), silent.read(&mut buf))
            .await
            .expect("closed by the server");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        assert!(logged(&core, "TLS handshake not done").await);
    }

    #[tokio::test]
    async fn the_dm_url_says_https_when_tls_is_on() {
        let p = pki();
        let tls = TlsConfig::from_files(&p.cert, &p.key, None).unwrap();
        let config = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            default_commands: Vec::new(),
            log_errors: false,
        };
        let handle = start_with(
            config.clone(),
            ServerOptions {
                tls: Some(tls),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let port = handle.addr().port();
        assert_eq!(handle.dm_url(), format!("https://127.0.0.1:{port}/dm"));
        assert!(handle
            .repo_url("D", "x")
            .starts_with(&format!("https://127.0.0.1:{port}/repo/")));
        handle.shutdown().await;
        let plain = start(config).await.unwrap();
        assert!(plain.dm_url().starts_with("http://"));
        plain.shutdown().await;
    }
}
