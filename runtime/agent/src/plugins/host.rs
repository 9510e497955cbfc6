//! The plugin host process (`dmctl plugin-host FILE`): loads one plugin
//! library and answers the agent's requests over stdin/stdout in frames
//! (`wire`); the plugin's events from its own threads go on a pipe of
//! their own, fd [`EVENT_FD`], so that the agent's caller reads its
//! response straight from stdout, with no thread between. Whatever the
//! plugin does wrong ends this process only.

use std::fs::File;
use std::io::{BufReader, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::{Mutex, OnceLock, PoisonError};

use dm_core::plugin::{HostTable, WireError};
use serde::{Deserialize, Serialize};

use super::wire::{self, EVENT, HELLO, REQUEST, RESPONSE};
use super::{call_table, open_table, PluginError};

/// The host's first frame.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "hello", rename_all = "snake_case")]
pub(crate) enum Hello {
    Ready {
        moid: String,
        rustc_version: String,
        core_version: String,
    },
    Load {
        reason: String,
    },
    NotAPlugin,
    Abi {
        found: u16,
    },
    BadTable {
        reason: String,
    },
}

impl Hello {
    /// The refusal as the agent reports it, naming the file.
    pub(crate) fn into_error(self, path: &Path) -> Option<PluginError> {
        let path = path.to_owned();
        Some(match self {
            Hello::Ready { .. } => return None,
            Hello::Load { reason } => PluginError::Load { path, reason },
            Hello::NotAPlugin => PluginError::NotAPlugin { path },
            Hello::Abi { found } => PluginError::AbiMismatch { path, found },
            Hello::BadTable { reason } => PluginError::BadTable { path, reason },
        })
    }
}

/// The descriptor the agent passes for events.
pub(crate) const EVENT_FD: i32 = 3;

/// The response pipe to the agent (the request loop only).
static OUT: OnceLock<Mutex<File>> = OnceLock::new();
/// The event pipe, shared by the plugin's threads (one frame at a time).
static EVENTS: OnceLock<Mutex<File>> = OnceLock::new();

fn send_to(pipe: &OnceLock<Mutex<File>>, kind: u8, payload: &[u8]) -> std::io::Result<()> {
    let Some(out) = pipe.get() else {
        return Ok(());
    };
    let mut out = out.lock().unwrap_or_else(PoisonError::into_inner);
    wire::write_frame(&mut *out, kind, payload)
}

fn send(kind: u8, payload: &[u8]) -> std::io::Result<()> {
    send_to(&OUT, kind, payload)
}

/// The ABI's `report` in the host: the event goes to the agent as it is.
unsafe extern "C" fn report_to_pipe(_ctx: *const std::ffi::c_void, event: *const u8, len: usize) {
    if event.is_null() || len >= wire::MAX_MESSAGE {
        return;
    }
    // SAFETY: the plugin passes `len` readable bytes for the call.
    let bytes = unsafe { std::slice::from_raw_parts(event, len) };
    // A broken pipe means the agent is gone; this process ends soon.
    let _ = send_to(&EVENTS, EVENT, bytes);
}

/// Takes stdout for the protocol and points fd 1 at stderr, so that a
/// plugin that prints cannot break the frames.
fn protocol_out() -> std::io::Result<File> {
    // SAFETY: dup of fd 1, which this process holds open; close-on-exec,
    // as the pipe's end is the agent's business only.
    let fd = unsafe { libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor this code owns.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: both descriptors are open; fd 1 now writes where 2 does.
    if unsafe { libc::dup2(2, 1) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(File::from(owned))
}

/// Ends this process with its parent (the agent's thread that started
/// it): a host stuck in a plugin call never reads the end of its stdin.
fn die_with_parent() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        // SAFETY: getppid has no precondition. Parent gone already: end.
        if unsafe { libc::getppid() } == 1 {
            std::process::exit(0);
        }
    }
}

/// `dmctl plugin-host FILE`: hosts one plugin until stdin ends. Returns
/// the process exit status.
pub fn host_main(path: &Path) -> i32 {
    die_with_parent();
    // Before any descriptor is opened here: fd 3 is the agent's, if open.
    // SAFETY: fcntl(F_GETFD) only asks whether the descriptor is open.
    if unsafe { libc::fcntl(EVENT_FD, libc::F_GETFD) } >= 0 {
        // Not passed on to what the plugin may start: the agent learns
        // that this host ended from the end of this pipe.
        // SAFETY: fcntl on a descriptor this process holds.
        unsafe { libc::fcntl(EVENT_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
        // SAFETY: the agent opened EVENT_FD for this process, which owns
        // it from here on.
        let events = unsafe { File::from_raw_fd(EVENT_FD) };
        let _ = EVENTS.set(Mutex::new(events));
    }
    let out = match protocol_out() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("plugin-host: {e}");
            return 1;
        }
    };
    let _ = OUT.set(Mutex::new(out));
    let (hello, table) = match open_table(path) {
        Ok(open) => {
            let host = HostTable {
                ctx: std::ptr::NonNull::<u8>::dangling().as_ptr().cast(),
                report: report_to_pipe,
            };
            // SAFETY: `host` is valid for the call; report ignores ctx.
            if unsafe { (open.table.init)(&host) } == 0 {
                (
                    Hello::Ready {
                        moid: open.moid,
                        rustc_version: open.rustc_version,
                        core_version: open.core_version,
                    },
                    Some(open.table),
                )
            } else {
                (
                    Hello::BadTable {
                        reason: "init refused the host table".into(),
                    },
                    None,
                )
            }
        }
        Err(PluginError::NotAPlugin { .. }) => (Hello::NotAPlugin, None),
        Err(PluginError::AbiMismatch { found, .. }) => (Hello::Abi { found }, None),
        Err(PluginError::BadTable { reason, .. }) => (Hello::BadTable { reason }, None),
        Err(e) => (
            Hello::Load {
                reason: match e {
                    PluginError::Load { reason, .. } => reason,
                    other => other.to_string(),
                },
            },
            None,
        ),
    };
    let hello = serde_json::to_vec(&hello).unwrap_or_default();
    if send(HELLO, &hello).is_err() {
        return 1;
    }
    let Some(table) = table else {
        return 0;
    };
    let mut input = BufReader::new(std::io::stdin().lock());
    loop {
        let request = match wire::read_frame(&mut input) {
            Ok(Some((REQUEST, r))) => r,
            // The agent closed the pipe: done.
            Ok(None) => return 0,
            Ok(Some(_)) | Err(_) => return 1,
        };
        let response = call_table(table, &request).unwrap_or_else(|m| {
            let e = WireError {
                status: 500,
                kind: "bad_response".into(),
                message: m,
            };
            serde_json::to_vec(&serde_json::json!({ "err": e })).unwrap_or_default()
        });
        if send(RESPONSE, &response).is_err() {
            let _ = std::io::stderr().flush();
            return 1;
        }
    }
}
