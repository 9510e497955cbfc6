//! How much one DM Server can make the agent do (docs/architecture.md
//! "Limits"): every input a server controls has a named bound with a
//! default, and past it the agent answers a status or ends the session
//! instead of growing.

use std::time::Duration;

/// The bounds of one agent; `dmctl client` sets each with a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of one Package#2 (`--max-package-size`, default 1 MiB). A
    /// larger one ends the session before it is parsed.
    pub package_bytes: usize,
    /// Commands in one Package#2 (`--max-commands`, default 1,000). More
    /// end the session before any runs.
    pub commands_per_package: usize,
    /// Bytes of one Package#3 (`--max-response-size`, default 4 MiB): once
    /// the response holds this much, each further command answers 503
    /// Service Unavailable without running.
    pub response_bytes: usize,
    /// Package#2s in one session (`--max-packages`, default 100).
    pub packages_per_session: usize,
    /// How long one whole session may last (`--session-deadline`, default
    /// 300 s), whatever each package's `--timeout`.
    pub session_deadline: Duration,
    /// DEFAULT and SUB registrations one server may hold, each
    /// (`--max-registrations`, default 64): past it, 503.
    pub registrations_per_server: usize,
    /// Instances one server may own (`--max-instances`, default 25,000):
    /// an HGET that would create more answers 506 Device Full.
    pub instances_per_server: usize,
    /// How long an EXEC an MO started may take to finish
    /// (`--exec-timeout`, default 24 h); past it its Generic Alert
    /// reports [`EXEC_TIMEOUT_STATUS`](crate::live::EXEC_TIMEOUT_STATUS).
    pub exec_timeout: Duration,
    /// How long `--once` waits for the EXECs started in its sessions to
    /// finish before it exits (`--exec-wait`, default 60 s); those still
    /// running stay pending and are reported by a later run.
    pub once_exec_wait: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            package_bytes: 1 << 20,
            commands_per_package: 1_000,
            response_bytes: 4 << 20,
            packages_per_session: 100,
            session_deadline: Duration::from_secs(300),
            registrations_per_server: 64,
            instances_per_server: 25_000,
            exec_timeout: Duration::from_secs(24 * 3600),
            once_exec_wait: Duration::from_secs(60),
        }
    }
}
