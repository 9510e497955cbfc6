//! Logging at a bounded rate for events an outsider can cause at will
//! (dropped notification datagrams, refused local API clients): the first
//! event of each reason is logged with its detail, later ones within
//! [`SUMMARY_INTERVAL`] are only counted, and one summary line per interval
//! gives the counts per reason. A flood of 10,000 bad datagrams writes a
//! few lines, not 10,000.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// At most one detailed line per reason and one summary line per interval.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(10);

/// Counts of suppressed events per reason, and when each reason and the
/// summary were last logged.
#[derive(Debug)]
pub(crate) struct RateLog {
    /// What the events are, for the summary ("notifications dropped").
    what: &'static str,
    every: Duration,
    last_detail: BTreeMap<&'static str, Instant>,
    suppressed: BTreeMap<&'static str, u64>,
    last_summary: Option<Instant>,
}

impl RateLog {
    pub(crate) fn new(what: &'static str) -> RateLog {
        RateLog::every(what, SUMMARY_INTERVAL)
    }

    pub(crate) fn every(what: &'static str, every: Duration) -> RateLog {
        RateLog {
            what,
            every,
            last_detail: BTreeMap::new(),
            suppressed: BTreeMap::new(),
            last_summary: None,
        }
    }

    /// Records one event of `reason` at `now`: the lines to log now (its
    /// detail when the reason was not logged within the interval, and the
    /// summary when one is due), none when it is only counted.
    pub(crate) fn record(
        &mut self,
        now: Instant,
        reason: &'static str,
        detail: impl FnOnce() -> String,
    ) -> Vec<String> {
        let due = self
            .last_detail
            .get(reason)
            .is_none_or(|last| now.saturating_duration_since(*last) >= self.every);
        self.last_summary.get_or_insert(now);
        let mut lines = Vec::new();
        if due {
            self.last_detail.insert(reason, now);
            lines.push(detail());
        } else {
            *self.suppressed.entry(reason).or_insert(0) += 1;
        }
        lines.extend(self.flush(now));
        lines
    }

    /// The summary of the events counted but not logged, once per
    /// interval (call it from a timer so that the last ones of a flood
    /// are told too).
    pub(crate) fn flush(&mut self, now: Instant) -> Option<String> {
        if self.suppressed.is_empty() {
            return None;
        }
        let since = *self.last_summary.get_or_insert(now);
        let elapsed = now.saturating_duration_since(since);
        if elapsed < self.every {
            return None;
        }
        let total: u64 = self.suppressed.values().sum();
        let counts: Vec<String> = self
            .suppressed
            .iter()
            .map(|(reason, n)| format!("{reason} {n}"))
            .collect();
        self.suppressed.clear();
        self.last_summary = Some(now);
        Some(format!(
            "{total} more {} in the last {} s: {}",
            self.what,
            elapsed.as_secs(),
            counts.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_gives_one_line_per_reason_and_one_summary_per_interval() {
        let mut log = RateLog::every("datagrams dropped", Duration::from_secs(10));
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut lines = Vec::new();
        // 15,000 events of two reasons over 15 s, one per millisecond.
        for i in 0..15_000u64 {
            let reason = if i % 2 == 0 {
                "malformed"
            } else {
                "bad digest"
            };
            lines.extend(log.record(at(i), reason, || format!("datagram {i}")));
        }
        assert_eq!(
            lines,
            [
                "datagram 0",
                "datagram 1",
                "datagram 10000",
                "9998 more datagrams dropped in the last 10 s: bad digest 4999, malformed 4999",
                "datagram 10001",
            ]
        );
        // The timer tells the rest once the interval is over, then nothing.
        assert_eq!(log.flush(at(19_999)), None);
        assert_eq!(
            log.flush(at(20_000)).as_deref(),
            Some("4998 more datagrams dropped in the last 10 s: bad digest 2499, malformed 2499")
        );
        assert_eq!(log.flush(at(40_000)), None);
        // A reason seen again after the interval is told in detail again.
        assert_eq!(log.record(at(40_000), "malformed", || "x".into()), ["x"]);
    }
}
