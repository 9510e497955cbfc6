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
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::state::{lock, Core};
use crate::{
    admin, session, DeviceRecord, MemoryStorage, NotificationConfig, NotifyRequest,
    RegistrationKind, ServerConfig, ServerError, ServerOptions, Storage, DM_PATH,
};

/// A running server. Dropping it does not stop it; call [`shutdown`].
///
/// [`shutdown`]: ServerHandle::shutdown
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    admin: Option<SocketAddr>,
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

    /// The ServerURI devices open sessions with.
    pub fn dm_url(&self) -> String {
        format!("http://{}{DM_PATH}", self.addr)
    }

    /// `http://ADDR`: what the repository and UI URLs start with.
    pub fn base_url(&self) -> &str {
        &self.core.base_url
    }

    /// The URL of a Data Repository resource of a device.
    pub fn repo_url(&self, dev_id: &str, path: &str) -> String {
        self.core.repo_url(dev_id, path)
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
        self.core.show(dev_id, prompt)
    }

    /// Requests the server rejected, with the reason.
    pub fn errors(&self) -> Vec<String> {
        lock(&self.core.errors).clone()
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
    let core = Arc::new(Core {
        storage: options
            .storage
            .unwrap_or_else(|| Arc::new(MemoryStorage::new())),
        default_commands: config.default_commands,
        log_errors: config.log_errors,
        errors: Mutex::new(Vec::new()),
        base_url: format!("http://{addr}"),
        admin_guard: admin::AdminGuard::new(admin, &options.admin_hosts),
        session_lock: Mutex::new(()),
    });
    let (stop, stopped) = watch::channel(false);
    let mut tasks = vec![tokio::spawn(accept_loop(
        listener,
        core.clone(),
        stopped.clone(),
        session::handle,
    ))];
    if let Some(l) = admin_listener {
        tasks.push(tokio::spawn(accept_loop(
            l,
            core.clone(),
            stopped,
            admin::handle,
        )));
    }
    Ok(ServerHandle {
        addr,
        admin,
        core,
        stop,
        tasks,
    })
}

async fn accept_loop<F, Fut>(
    listener: TcpListener,
    core: Arc<Core>,
    mut stopped: watch::Receiver<bool>,
    handler: F,
) where
    F: Fn(Arc<Core>, Request<Incoming>) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let core = core.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handler(core.clone(), req));
                    // A connection error concerns that peer only.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            _ = stopped.changed() => break,
        }
    }
}
