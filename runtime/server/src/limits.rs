//! What keeps the server bounded when peers misbehave: how many
//! connections it holds, how long it waits for a request head or body,
//! how much of a rejection it remembers and logs, how much a device may
//! keep in the Data Repository, and how it backs off when `accept` fails.
//! Every value has a named default and can be changed per server
//! ([`Limits`], `dmctl server --max-connections` and siblings).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::state::lock;

/// Connections served at once on each listener (DM, admin). Past it a
/// new connection is closed as soon as it is accepted: waiting ones would
/// hold file descriptors all the same.
pub const MAX_CONNECTIONS: usize = 1024;

/// Time a connection has to deliver a complete request head, counted from
/// when the server starts waiting for it: when the connection opens, and
/// again after each response on a kept-alive connection. It is therefore
/// also the idle keep-alive timeout (hyper runs one timer for both).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Time a request has to deliver its whole body once its head is read;
/// past it the request is refused and its connection closed.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// Request body bytes all connections together may be reading at once,
/// 256 MiB: a body reserves its Content-Length (or [`MAX_BODY`] when it
/// announces none) before a byte is read, and waits, within the body
/// timeout, while the budget is spent. Without it, the connection cap
/// times [`MAX_BODY`] (16 GiB) could be buffered.
///
/// [`MAX_BODY`]: crate::MAX_BODY
pub const BODY_BUDGET: usize = 256 * 1024 * 1024;

/// Rejections kept in memory for [`ServerHandle::errors`]; the oldest goes
/// first. The log has them all.
///
/// [`ServerHandle::errors`]: crate::ServerHandle::errors
pub const ERROR_HISTORY: usize = 1000;

/// Longest rejection reason kept or logged, in bytes after escaping; what
/// is longer is cut and marked with how much was left out.
pub const MAX_LOGGED_INPUT: usize = 512;

/// Body bytes one device may keep in the Data Repository, 64 MiB.
pub const REPO_QUOTA_BYTES: u64 = 64 * 1024 * 1024;

/// Resources one device may keep in the Data Repository.
pub const REPO_QUOTA_ENTRIES: u64 = 1000;

/// Pause after a failed `accept` (EMFILE, ENFILE, ENOBUFS...): retrying at
/// once would spin a core while nothing can change.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// At most one log line per this period for a repeated condition (failed
/// accepts, connections past the cap); the next line counts the others.
pub const LOG_EVERY: Duration = Duration::from_secs(1);

/// The limits of one server; [`Default`] gives the named constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// See [`MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// See [`HEADER_TIMEOUT`].
    pub header_timeout: Duration,
    /// See [`BODY_TIMEOUT`].
    pub body_timeout: Duration,
    /// See [`BODY_BUDGET`]; at least [`MAX_BODY`](crate::MAX_BODY) is
    /// taken.
    pub body_budget: usize,
    /// See [`ERROR_HISTORY`].
    pub error_history: usize,
    /// See [`REPO_QUOTA_BYTES`].
    pub repo_quota_bytes: u64,
    /// See [`REPO_QUOTA_ENTRIES`].
    pub repo_quota_entries: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: MAX_CONNECTIONS,
            header_timeout: HEADER_TIMEOUT,
            body_timeout: BODY_TIMEOUT,
            body_budget: BODY_BUDGET,
            error_history: ERROR_HISTORY,
            repo_quota_bytes: REPO_QUOTA_BYTES,
            repo_quota_entries: REPO_QUOTA_ENTRIES,
        }
    }
}

/// `s` with control characters, quotes and backslashes escaped (so that
/// peer-chosen bytes cannot forge a log line) and cut to `max` bytes.
pub(crate) fn escape_truncated(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max) + 32);
    for (i, c) in s.char_indices() {
        let before = out.len();
        out.extend(c.escape_debug());
        if out.len() > max {
            out.truncate(before);
            out.push_str(&format!("... ({} bytes more)", s.len() - i));
            break;
        }
    }
    out
}

/// Lets one line through per [`LOG_EVERY`] and counts the others.
#[derive(Debug, Default)]
pub(crate) struct RateLimit {
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl RateLimit {
    /// `Some(lines held back since the last one)` when a line may be
    /// written now.
    pub(crate) fn allow(&self) -> Option<u64> {
        let mut last = lock(&self.last);
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(now);
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_input_is_escaped_and_cut() {
        let junk = format!("/repo/x\n%0Adm-server: 200 forged\r{}", "A".repeat(10_000));
        let line = escape_truncated(&junk, MAX_LOGGED_INPUT);
        assert!(!line.contains(['\n', '\r']), "{line}");
        assert!(line.starts_with("/repo/x\\n%0Adm-server: 200 forged\\r"));
        assert!(line.len() <= MAX_LOGGED_INPUT + 32, "{}", line.len());
        assert!(line.ends_with("bytes more)"), "{line}");
        assert_eq!(escape_truncated("short", MAX_LOGGED_INPUT), "short");
    }

    #[test]
    fn a_repeated_line_is_let_through_once_per_period() {
        let r = RateLimit::default();
        assert_eq!(r.allow(), Some(0));
        assert_eq!(r.allow(), None);
        assert_eq!(r.allow(), None);
        *lock(&r.last) = Some(Instant::now() - LOG_EVERY);
        assert_eq!(r.allow(), Some(2));
    }
}
