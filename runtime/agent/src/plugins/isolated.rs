//! The agent's side of an isolated plugin: its host process, the calls
//! with their timeout, and the watchdog that starts a dead host again.
//!
//! A call writes its request to the host's stdin and reads the response
//! from its stdout itself (poll with the call's deadline): no thread
//! between, which keeps a call near one round trip through the pipes.
//! Events, which come at any time, arrive on a pipe of their own (the
//! host's fd 3), read by a thread that also tells the watchdog when the
//! host has ended.

#![allow(unsafe_code)]

use std::io::{BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use dm_core::plugin::{Request, WireError};

use super::host::{Hello, EVENT_FD};
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
    stdout: Option<ChildStdout>,
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
        let (events_read, events_write) = event_pipe().map_err(|e| host_err(e.to_string()))?;
        let write_fd = events_write.as_raw_fd();
        let mut command = Command::new(&self.program);
        command
            .arg("plugin-host")
            .arg(&self.path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // SAFETY: between fork and exec only async-signal-safe calls
        // (dup2, fcntl) on descriptors this process holds.
        unsafe {
            command.pre_exec(move || {
                if write_fd == EVENT_FD {
                    // dup2 onto itself keeps close-on-exec: clear it.
                    if libc::fcntl(EVENT_FD, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(write_fd, EVENT_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let spawned = command.spawn();
        // The host holds its end now; ours would keep the pipe open after
        // the host died.
        drop(events_write);
        let mut child = spawned
            .map_err(|e| host_err(format!("cannot start {}: {e}", self.program.display())))?;
        let kill = |mut child: Child| {
            let _ = child.kill();
            let _ = child.wait();
        };
        let (Some(stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
            kill(child);
            return Err(host_err("no pipes to the host".into()));
        };
        let sinks = Arc::clone(&self.sinks);
        let deaths = self
            .deaths
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let reader = std::thread::Builder::new()
            .name("plugin-events".into())
            .spawn(move || {
                read_events(events_read, &sinks);
                if let Some(d) = deaths {
                    let _ = d.send(generation);
                }
            });
        if let Err(e) = reader {
            kill(child);
            return Err(host_err(e.to_string()));
        }
        let hello = match wire::read_frame_by(&mut stdout, Instant::now() + START_TIMEOUT) {
            Ok((HELLO, bytes)) => match serde_json::from_slice::<Hello>(&bytes) {
                Ok(h) => h,
                Err(e) => {
                    kill(child);
                    return Err(host_err(format!("unreadable hello: {e}")));
                }
            },
            Ok((kind, _)) => {
                kill(child);
                return Err(host_err(format!("a frame of kind {kind} before the hello")));
            }
            Err(e) => {
                kill(child);
                return Err(host_err(format!("no hello within {START_TIMEOUT:?}: {e}")));
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
            stdout: Some(stdout),
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
        let deadline = Instant::now() + self.timeout;
        let Some(stdout) = link.stdout.as_mut() else {
            link.up = false;
            return Err(down(&self.path, "host process gone"));
        };
        let failure = match wire::read_frame_by(stdout, deadline) {
            Ok((RESPONSE, bytes)) => return Ok(bytes),
            Ok((kind, _)) => format!("answered a frame of kind {kind}"),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                tracing::warn!(
                    "plugin {}: no answer within {:?}: host killed",
                    self.path.display(),
                    self.timeout
                );
                format!("no answer within {:?}", self.timeout)
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                "host process died".to_owned()
            }
            Err(e) => format!("host process broke the protocol: {e}"),
        };
        // Down until the watchdog has started it again: the host is
        // killed (if alive), its event pipe ends, the watchdog hears it.
        link.up = false;
        if let Some(c) = link.child.as_mut() {
            let _ = c.kill();
        }
        Err(down(&self.path, failure))
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

/// A pipe for the host's events: (our read end, the end the host gets),
/// both close-on-exec so that no other child inherits them.
fn event_pipe() -> std::io::Result<(std::fs::File, OwnedFd)> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors are fresh and owned here.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((std::fs::File::from(read), write))
}

/// Reads the host's events until its event pipe ends (the host ended) or
/// breaks the bounds.
fn read_events(pipe: std::fs::File, sinks: &Sinks) {
    let mut input = BufReader::new(pipe);
    loop {
        match wire::read_frame(&mut input) {
            Ok(Some((EVENT, bytes))) => {
                // A panic in the agent's handling ends no thread of ours.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    sinks.dispatch(&bytes)
                }));
            }
            Ok(Some((kind, _))) => {
                tracing::warn!("plugin host sent an event frame of kind {kind}: dropped");
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
            link.stdout = None;
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
