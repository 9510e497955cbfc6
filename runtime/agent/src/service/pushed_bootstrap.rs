//! Server-initiated bootstrap (spec 8.4, 9.3): the HTTPS endpoint that
//! takes a DM Bootstrap pushed by a bootstrap server over mutual TLS, and
//! the sessions with BootstrapComplete that follow one applied.

use super::{
    bootstrap_sessions, deliver_alerts, device_identity, run_listeners, AgentError, AgentOptions,
    SessionOutcome,
};
use crate::bootstrap;
use crate::client::Device;
use crate::http::Observer;
use crate::tls::Identity;

/// One request taken on the bootstrap endpoint, and where its answer goes.
type Pushed = (
    hyper::Method,
    String,
    Result<bytes::Bytes, String>,
    tokio::sync::oneshot::Sender<(u16, String)>,
);

/// Server-initiated bootstrap (spec 8.4, 9.3): an HTTPS endpoint on
/// `addr` that takes a DM Bootstrap (`POST`/`PUT`, `application/
/// dmmo+json`) only over mutual TLS from a bootstrap server whose
/// certificate an account's `Auth/Bootstrap/ServerPubKey` holds; each one
/// applied is followed by sessions with BootstrapComplete. A refused one
/// is logged with its reason and answered 4xx; nothing is written. With
/// `once`, returns after the first bootstrap applied.
pub async fn run_bootstrap_listener(
    opts: &AgentOptions,
    addr: &str,
    once: bool,
    observer: Option<Observer>,
) -> Result<Vec<SessionOutcome>, AgentError> {
    run_listeners(opts, None, Some(addr), None, once, observer).await
}

/// The bootstrap endpoint's socket and the device's certificate:
/// `--tls-cert`/`--tls-key`, else the DM Client certificate an account's
/// Auth/Bootstrap holds.
pub(super) async fn bootstrap_endpoint(
    opts: &AgentOptions,
    device: &Device,
    addr: &str,
) -> Result<(tokio::net::TcpListener, Identity), AgentError> {
    let identity = match device_identity(opts)? {
        Some(id) => id,
        None => bootstrap::client_identity(device).ok_or_else(|| {
            AgentError::BootstrapListen(
                "--bootstrap-listen needs --tls-cert and --tls-key, or an account with Auth/Bootstrap/ClientPubKey and ClientSecretKey".into(),
            )
        })?,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| AgentError::BootstrapListen(format!("cannot listen on {addr}: {e}")))?;
    if let Ok(local) = listener.local_addr() {
        tracing::info!("dmctl client: waiting for server-initiated bootstraps on https://{local}");
    }
    Ok((listener, identity))
}

/// One connection to the bootstrap endpoint: the sessions an applied
/// bootstrap leads to, or `None` when nothing was applied.
pub(super) async fn on_bootstrap_connection(
    device: &mut Device,
    opts: &AgentOptions,
    identity: &Identity,
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
) -> Result<Option<Vec<SessionOutcome>>, AgentError> {
    if bootstrap::bootstrap_server_keys(device).is_empty() {
        tracing::warn!(
            "dmctl client: bootstrap from {peer} refused: no account names a bootstrap server (Auth/Bootstrap/ServerPubKey)"
        );
        return Ok(None);
    }
    // Built per connection: a bootstrap may have named new servers.
    let config = bootstrap::listener_config(device, identity)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let stream = match tokio::time::timeout(opts.timeout, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::warn!("dmctl client: bootstrap from {peer} refused: TLS: {e}");
            return Ok(None);
        }
        Err(_) => {
            tracing::warn!("dmctl client: bootstrap from {peer} refused: TLS handshake timed out");
            return Ok(None);
        }
    };
    let Some(cert) = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
    else {
        return Ok(None);
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Pushed>(1);
    let connection = tokio::spawn(serve_one(stream, tx));
    let request = tokio::time::timeout(opts.timeout, rx.recv()).await;
    let mut applied = None;
    if let Ok(Some((method, content_type, body, reply))) = request {
        let essence = dm_core::package::media_type::essence(&content_type);
        let answer = if method != hyper::Method::POST && method != hyper::Method::PUT {
            (405, "a bootstrap is POSTed or PUT".to_owned())
        } else if essence != bootstrap::MEDIA_TYPE {
            (415, format!("expected {}", bootstrap::MEDIA_TYPE))
        } else {
            match body {
                Err(e) => (400, e),
                Ok(body) => match bootstrap::apply(device, &body, bootstrap::Source::Pushed(&cert))
                {
                    Ok(a) => {
                        tracing::info!(
                            "dmctl client: bootstrap from {peer} applied for server(s) {}",
                            a.servers.join(", ")
                        );
                        applied = Some(a.servers);
                        (200, "applied".to_owned())
                    }
                    Err(e) => (e.http_status(), format!("refused: {e}")),
                },
            }
        };
        if answer.0 != 200 {
            tracing::warn!("dmctl client: bootstrap from {peer} {}", answer.1);
        }
        let _ = reply.send(answer);
    }
    drop(rx);
    let _ = tokio::time::timeout(opts.timeout, connection).await;
    let Some(servers) = applied else {
        return Ok(None);
    };
    let mut outcomes = bootstrap_sessions(device, &servers).await;
    outcomes.extend(deliver_alerts(device).await);
    Ok(Some(outcomes))
}

/// Serves one HTTP/1.1 request on an accepted TLS stream: hands it to the
/// listener loop, which owns the device, and sends back its answer.
async fn serve_one(
    stream: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    tx: tokio::sync::mpsc::Sender<Pushed>,
) {
    use http_body_util::BodyExt;
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let tx = tx.clone();
        async move {
            let method = req.method().clone();
            let content_type = req
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let body = http_body_util::Limited::new(req.into_body(), crate::http::MAX_BODY)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .map_err(|e| format!("body: {e}"));
            let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
            let (status, text) = match tx.send((method, content_type, body, reply_tx)).await {
                Ok(()) => reply_rx.await.unwrap_or((503, "not taken".to_owned())),
                Err(_) => (503, "one bootstrap per connection".to_owned()),
            };
            hyper::Response::builder()
                .status(status)
                .header("Content-Type", "text/plain")
                .header("Connection", "close")
                .body(http_body_util::Full::new(bytes::Bytes::from(text)))
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .await;
}
