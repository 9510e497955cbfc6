//! The agent's side of an isolated plugin: its host process, the calls
//! with their timeout, and the watchdog that starts a dead host again.

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use dm_core::plugin::{Request, WireError};

use super::host::Hello;
use super::wire::{self, EVENT, HELLO, REQUEST, RESPONSE};
use super::{
    PluginError, PluginOptions, Sinks, RESTART_BACKOFF_MAX, RESTART_BACKOFF_MIN,
    RESTART_STABLE_AFTER, START_TIMEOUT,
};

/// A frame this short reaches an empty pipe in one write without waiting
/// (POSIX PIPE_BUF); a longer one is written by a helper thread, so that a
/// host that stopped reading cannot hold the caller past its timeout.
const DIRECT_WRITE_MAX: usize = 4096;

/// What `Ready` said.
pub(crate) struct Ready {
    pub(crate) moid: String,
    pub(crate) rustc_version: String,
    pub(crate) core_version: String,
}

#[derive(Default)]
struct Link {
    generation: u64,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    responses: Option<Receiver<Vec<u8>>>,
    up: bool,
    started: Option<Instant>,
}

pub(crate) struct HostProcess {
    path: PathBuf,
    program: PathBuf,
    timeout: Duration,
    sinks: Arc<Sinks>,
    link: Mutex<Link>,
    next_generation: AtomicU64,
    restarts: AtomicU64,
    stopped: AtomicBool,
    /// Each reader thread says here that its host ended.
    deaths: Mutex<Option<Sender<u64>>>,
    /// The MOID of the first start: a restart must serve the same.
    moid: Mutex<Option<String>>,
}

impl std::fmt::Debug for HostProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostProcess")
            .field("path", &self.path)
            .field("up", &self.is_up())
            .field("restarts", &self.restarts())
            .finish()
    }
}

fn down(path: &Path, why: impl std::fmt::Display) -> WireError {
    WireError {
        status: 500,
        kind: "failed".into(),
        message: format!("plugin {}: {why}", path.display()),
    }
}

impl HostProcess {
    /// Starts the host and its watchdog; the host's own refusal comes back
    /// as the error it names.
    pub(crate) fn start(
        path: &Path,
        options: &PluginOptions,
        sinks: Arc<Sinks>,
    ) -> Result<(Arc<HostProcess>, Ready), PluginError> {
        let program = match &options.host_program {
            Some(p) => p.clone(),
            None => std::env::current_exe().map_err(|e| PluginError::Host {
                path: path.to_owned(),
                reason: format!("cannot find the agent's executable: {e}"),
            })?,
        };
        let (deaths_tx, deaths_rx) = mpsc::channel();
        let host = Arc::new(HostProcess {
            path: path.to_owned(),
            program,
            timeout: options.call_timeout,
            sinks,
            link: Mutex::new(Link::default()),
            next_generation: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            deaths: Mutex::new(Some(deaths_tx)),
            moid: Mutex::new(None),
        });
        let (first_tx, first_rx) = mpsc::channel();
        let weak = Arc::downgrade(&host);
        // Every start happens on this thread: the host dies with the
        // thread that started it (PR_SET_PDEATHSIG), and this one lives
        // as long as the plugin.
        std::thread::Builder::new()
            .name("plugin-watchdog".into())
            .spawn(move || watchdog(weak, deaths_rx, first_tx))
            .map_err(|e| PluginError::Host {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        let ready = first_rx.recv().unwrap_or_else(|_| {
            Err(PluginError::Host {
                path: path.to_owned(),
                reason: "the watchdog ended".into(),
            })
        })?;
        Ok((host, ready))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Link> {
        self.link.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn is_up(&self) -> bool {
        self.lock().up
    }

    pub(crate) fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::SeqCst)
    }

    /// Ends the host for good (the plugin is dropped).
    pub(crate) fn shutdown(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let mut link = self.lock();
        link.up = false;
        if let Some(mut c) = link.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        drop(link);
        // The watchdog ends once the last reader said goodbye.
        self.deaths
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    /// Starts one host process; on success it serves calls.
    fn spawn(&self) -> Result<Ready, PluginError> {
        let host_err = |reason: String| PluginError::Host {
            path: self.path.clone(),
            reason,
        };
        let generation = self.next_generation.fetch_add(1, Ordering::SeqCst) + 1;
        let mut child = Command::new(&self.program)
            .arg("plugin-host")
            .arg(&self.path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| host_err(format!("cannot start {}: {e}", self.program.display())))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(host_err("no pipes to the host".into()));
        };
        let (hello_tx, hello_rx) = mpsc::sync_channel(1);
        let (resp_tx, resp_rx) = mpsc::channel();
        let sinks = Arc::clone(&self.sinks);
        let deaths = self
            .deaths
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        std::thread::Builder::new()
            .name("plugin-reader".into())
            .spawn(move || {
                read_host(stdout, hello_tx, resp_tx, &sinks);
                if let Some(d) = deaths {
                    let _ = d.send(generation);
                }
            })
            .map_err(|e| host_err(e.to_string()))?;
        let kill = |mut child: Child| {
            let _ = child.kill();
            let _ = child.wait();
        };
        let hello: Hello = match hello_rx.recv_timeout(START_TIMEOUT) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(h) => h,
                Err(e) => {
                    kill(child);
                    return Err(host_err(format!("unreadable hello: {e}")));
                }
            },
            Err(_) => {
                kill(child);
                return Err(host_err(format!(
                    "the host did not start within {START_TIMEOUT:?}"
                )));
            }
        };
        let ready = match hello {
            Hello::Ready {
                moid,
                rustc_version,
                core_version,
            } => Ready {
                moid,
                rustc_version,
                core_version,
            },
            refused => {
                kill(child);
                return Err(refused
                    .into_error(&self.path)
                    .unwrap_or_else(|| host_err("refused".into())));
            }
        };
        {
            let mut first = self.moid.lock().unwrap_or_else(PoisonError::into_inner);
            match &*first {
                Some(m) if *m != ready.moid => {
                    kill(child);
                    return Err(host_err(format!(
                        "restarted serving MOID {}, not {m}",
                        ready.moid
                    )));
                }
                Some(_) => {}
                None => *first = Some(ready.moid.clone()),
            }
        }
        let mut link = self.lock();
        if self.stopped.load(Ordering::SeqCst) {
            kill(child);
            return Err(host_err("stopped".into()));
        }
        *link = Link {
            generation,
            child: Some(child),
            stdin: Some(stdin),
            responses: Some(resp_rx),
            up: true,
            started: Some(Instant::now()),
        };
        Ok(ready)
    }

    /// One request, its response bytes; 500 when the host is down, dies,
    /// or takes longer than the timeout (then it is killed).
    pub(crate) fn call(&self, request: &[u8]) -> Result<Vec<u8>, WireError> {
        let mut link = self.lock();
        if !link.up {
            return Err(down(&self.path, "host process down, restarting"));
        }
        let mut frame = Vec::with_capacity(request.len() + 5);
        if let Err(e) = wire::write_frame(&mut frame, REQUEST, request) {
            return Err(down(&self.path, e));
        }
        let written = match link.stdin.as_mut() {
            Some(stdin) if frame.len() <= DIRECT_WRITE_MAX => stdin.write_all(&frame),
            Some(stdin) => {
                let fd = std::os::fd::AsFd::as_fd(stdin).try_clone_to_owned();
                fd.map(|fd| {
                    let mut file = std::fs::File::from(fd);
                    // Ends when the host reads it or is killed.
                    std::thread::spawn(move || {
                        let _ = file.write_all(&frame);
                    });
                })
            }
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        };
        if let Err(e) = written {
            link.up = false;
            return Err(down(&self.path, format!("host process gone: {e}")));
        }
        let Some(responses) = link.responses.as_ref() else {
            link.up = false;
            return Err(down(&self.path, "host process gone"));
        };
        match responses.recv_timeout(self.timeout) {
            Ok(bytes) => Ok(bytes),
            Err(RecvTimeoutError::Timeout) => {
                tracing::warn!(
                    "plugin {}: no answer within {:?}: host killed",
                    self.path.display(),
                    self.timeout
                );
                link.up = false;
                if let Some(c) = link.child.as_mut() {
                    let _ = c.kill();
                }
                Err(down(
                    &self.path,
                    format!("no answer within {:?}", self.timeout),
                ))
            }
            Err(RecvTimeoutError::Disconnected) => {
                link.up = false;
                Err(down(&self.path, "host process died"))
            }
        }
    }

    /// After a restart: the instances' reporters and the unfinished EXECs'
    /// handles go to the new host.
    fn reattach(&self) {
        for miid in self.sinks.attached() {
            self.request(&Request::Attach { miid });
        }
        for (id, p) in self.sinks.pending() {
            self.request(&Request::ResumeExec {
                miid: p.miid,
                path: p.path,
                completion: id,
            });
        }
    }

    fn request(&self, request: &Request) {
        let bytes = serde_json::to_vec(request).unwrap_or_default();
        if let Err(e) = self.call(&bytes) {
            tracing::warn!("{}", e.message);
        }
    }
}

/// Reads the host's frames until its stdout ends (or breaks the bounds).
fn read_host(
    stdout: std::process::ChildStdout,
    hello: mpsc::SyncSender<Vec<u8>>,
    responses: Sender<Vec<u8>>,
    sinks: &Sinks,
) {
    let mut input = BufReader::new(stdout);
    loop {
        match wire::read_frame(&mut input) {
            Ok(Some((HELLO, bytes))) => {
                let _ = hello.try_send(bytes);
            }
            Ok(Some((RESPONSE, bytes))) => {
                if responses.send(bytes).is_err() {
                    return;
                }
            }
            Ok(Some((EVENT, bytes))) => {
                // A panic in the agent's handling ends no thread of ours.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    sinks.dispatch(&bytes)
                }));
            }
            Ok(Some((kind, _))) => {
                tracing::warn!("plugin host sent a frame of unknown kind {kind}: dropped");
                return;
            }
            Ok(None) => return,
            Err(e) => {
                tracing::warn!("plugin host: {e}: dropped");
                return;
            }
        }
    }
}

/// Starts the host first, then again after each death, with back-off.
fn watchdog(
    host: Weak<HostProcess>,
    deaths: Receiver<u64>,
    first: Sender<Result<Ready, PluginError>>,
) {
    let started = match host.upgrade() {
        Some(h) => h.spawn(),
        None => return,
    };
    let ok = started.is_ok();
    let _ = first.send(started);
    if !ok {
        return;
    }
    let mut backoff = RESTART_BACKOFF_MIN;
    while let Ok(generation) = deaths.recv() {
        let Some(h) = host.upgrade() else { return };
        if h.stopped.load(Ordering::SeqCst) {
            return;
        }
        let lived = {
            let mut link = h.lock();
            if link.generation != generation {
                continue;
            }
            link.up = false;
            link.stdin = None;
            link.responses = None;
            if let Some(mut c) = link.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
            link.started.map(|s| s.elapsed()).unwrap_or_default()
        };
        backoff = if lived >= RESTART_STABLE_AFTER {
            RESTART_BACKOFF_MIN
        } else {
            backoff
        };
        tracing::warn!(
            "plugin {}: host process ended; restarting in {backoff:?}",
            h.path.display()
        );
        drop(h);
        loop {
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(RESTART_BACKOFF_MAX);
            let Some(h) = host.upgrade() else { return };
            if h.stopped.load(Ordering::SeqCst) {
                return;
            }
            match h.spawn() {
                Ok(_) => {
                    h.restarts.fetch_add(1, Ordering::SeqCst);
                    h.reattach();
                    break;
                }
                Err(e) => tracing::warn!("plugin restart failed: {e}"),
            }
        }
    }
}
