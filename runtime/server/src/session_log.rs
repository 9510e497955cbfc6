//! One log line per DM session (issue 20 item 6): DevID, packages,
//! commands, their statuses and the duration, written when the session
//! ends with END. A session is several HTTP requests, so what is counted
//! is kept per device between them, bounded.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use crate::state::lock;

/// The most sessions counted at once; past it the oldest open one is
/// dropped from the count (a device that went silent mid-session).
pub const MAX_SESSIONS_COUNTED: usize = 10_000;

#[derive(Debug)]
struct Open {
    started: Instant,
    packages: u32,
    commands: u32,
    statuses: BTreeMap<u16, u32>,
}

/// The sessions being counted.
#[derive(Debug, Default)]
pub(crate) struct SessionLog {
    open: std::sync::Mutex<HashMap<String, Open>>,
}

impl SessionLog {
    /// Package#1 of `dev_id` came.
    pub(crate) fn started(&self, dev_id: &str) {
        let mut open = lock(&self.open);
        if open.len() >= MAX_SESSIONS_COUNTED && !open.contains_key(dev_id) {
            if let Some(oldest) = open
                .iter()
                .min_by_key(|(_, o)| o.started)
                .map(|(k, _)| k.clone())
            {
                open.remove(&oldest);
            }
        }
        open.insert(
            dev_id.to_owned(),
            Open {
                started: Instant::now(),
                packages: 1,
                commands: 0,
                statuses: BTreeMap::new(),
            },
        );
    }

    /// A Package#3 of `dev_id` came with these statuses.
    pub(crate) fn statuses(&self, dev_id: &str, codes: impl Iterator<Item = u16>) {
        if let Some(o) = lock(&self.open).get_mut(dev_id) {
            o.packages += 1;
            for c in codes {
                *o.statuses.entry(c).or_default() += 1;
            }
        }
    }

    /// A Package#2 of `n` commands went to `dev_id`.
    pub(crate) fn sent(&self, dev_id: &str, n: usize) {
        if let Some(o) = lock(&self.open).get_mut(dev_id) {
            o.commands += u32::try_from(n).unwrap_or(u32::MAX);
        }
    }

    /// The session of `dev_id` ended (END sent): its line.
    pub(crate) fn ended(&self, dev_id: &str) -> Option<String> {
        let o = lock(&self.open).remove(dev_id)?;
        let statuses: Vec<String> = o
            .statuses
            .iter()
            .map(|(code, n)| format!("{code} x{n}"))
            .collect();
        let line = format!(
            "dm-server: session of {} ended: {} package(s), {} command(s){}, {} ms",
            crate::limits::escape_truncated(dev_id, crate::MAX_LOGGED_INPUT),
            o.packages,
            o.commands,
            if statuses.is_empty() {
                String::new()
            } else {
                format!(" ({})", statuses.join(", "))
            },
            o.started.elapsed().as_millis()
        );
        tracing::info!("{line}");
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_session_is_one_line_with_its_counts() {
        let log = SessionLog::default();
        log.started("IMEI:1");
        log.sent("IMEI:1", 3);
        log.statuses("IMEI:1", [200, 200, 404].into_iter());
        let line = log.ended("IMEI:1").unwrap();
        assert!(
            line.starts_with(
                "dm-server: session of IMEI:1 ended: 2 package(s), 3 command(s) (200 x2, 404 x1), "
            ),
            "{line}"
        );
        assert_eq!(log.ended("IMEI:1"), None, "once");
        // A DevID with a line break cannot forge a second line.
        log.started("a\nb");
        assert!(!log.ended("a\nb").unwrap().contains('\n'));
    }

    #[test]
    fn the_count_stays_bounded() {
        let log = SessionLog::default();
        for i in 0..MAX_SESSIONS_COUNTED + 10 {
            log.started(&format!("d{i}"));
        }
        assert_eq!(lock(&log.open).len(), MAX_SESSIONS_COUNTED);
    }
}
