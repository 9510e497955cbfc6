//! What MO code holds to talk back to the runtime after a call returned:
//! the [`Completion`] of an EXEC it started (spec 5.4.1) and the
//! [`ChangeReporter`] it tells that data changed on the device (spec 5.3.9
//! SUB, 11 cache validators). Both are cheap to clone, `Send + Sync`, and
//! may be used from any thread, long after the call that gave them.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::status::StatusCode;

/// The final result of an asynchronous EXEC (spec 5.4.1): the status the
/// Generic Alert carries, and optional alert data (DataType + Data, 5.4).
#[derive(Debug, Clone, PartialEq)]
pub struct ExecReport {
    pub status: StatusCode,
    /// `(DataType, Data)`: a media type and its JSON value.
    pub data: Option<(String, serde_json::Value)>,
}

impl ExecReport {
    /// A report with only a status.
    pub fn status(status: StatusCode) -> ExecReport {
        ExecReport { status, data: None }
    }
}

type CompletionSink = Arc<dyn Fn(u64, ExecReport) + Send + Sync>;

/// The handle of one EXEC that an MO answered
/// [`ExecOutcome::Started`](crate::ExecOutcome::Started): finish it, from
/// any thread, minutes or a restart later, with the operation's final
/// status. The runtime then opens a session to the EXEC's ServerURI and
/// sends the Generic Alert (5.4.1). Only the first finish counts.
#[derive(Clone)]
pub struct Completion {
    id: u64,
    done: Arc<AtomicBool>,
    sink: CompletionSink,
}

impl Completion {
    /// A handle whose finish calls `sink` with `id` (for the runtime).
    pub fn new(id: u64, sink: impl Fn(u64, ExecReport) + Send + Sync + 'static) -> Completion {
        Completion {
            id,
            done: Arc::new(AtomicBool::new(false)),
            sink: Arc::new(sink),
        }
    }

    /// The runtime's id of the pending EXEC.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Reports the final result; false when this EXEC was finished before.
    pub fn finish(&self, report: ExecReport) -> bool {
        if self.done.swap(true, Ordering::SeqCst) {
            return false;
        }
        (self.sink)(self.id, report);
        true
    }

    /// Has it been finished?
    pub fn is_finished(&self) -> bool {
        self.done.load(Ordering::SeqCst)
    }
}

impl fmt::Debug for Completion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completion")
            .field("id", &self.id)
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl PartialEq for Completion {
    fn eq(&self, other: &Completion) -> bool {
        self.id == other.id && Arc::ptr_eq(&self.done, &other.done)
    }
}

impl Eq for Completion {}

type ChangeSink = Arc<dyn Fn(&[&str]) + Send + Sync>;

/// Tells the runtime that data of one MO instance changed on the device,
/// not through a DM Server: its cache validator changes (spec 11.1) and
/// the SUB subscribers of the nodes it names get their HPUT (5.3.9).
#[derive(Clone)]
pub struct ChangeReporter {
    sink: ChangeSink,
}

impl ChangeReporter {
    /// A reporter calling `sink` with the changed node's path below the
    /// instance root (for the runtime).
    pub fn new(sink: impl Fn(&[&str]) + Send + Sync + 'static) -> ChangeReporter {
        ChangeReporter {
            sink: Arc::new(sink),
        }
    }

    /// The node at `path` (below the instance root; `[]` for the whole
    /// instance) changed on the device.
    pub fn changed(&self, path: &[&str]) {
        (self.sink)(path);
    }
}

impl Default for ChangeReporter {
    /// A reporter that tells nobody (before the runtime attached one).
    fn default() -> ChangeReporter {
        ChangeReporter::new(|_| {})
    }
}

impl PartialEq for ChangeReporter {
    /// The same reporter: generated MO structs derive `PartialEq`, and
    /// one may hold its reporter in a `#[dm(skip)]` field.
    fn eq(&self, other: &ChangeReporter) -> bool {
        Arc::ptr_eq(&self.sink, &other.sink)
    }
}

impl Eq for ChangeReporter {}

impl fmt::Debug for ChangeReporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChangeReporter")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn a_completion_counts_once_from_any_thread() {
        let seen: Arc<Mutex<Vec<(u64, u16)>>> = Arc::default();
        let sink = seen.clone();
        let c = Completion::new(7, move |id, r| {
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((id, r.status.as_u16()))
        });
        let other = c.clone();
        let first = std::thread::spawn(move || other.finish(ExecReport::status(StatusCode::OK)))
            .join()
            .unwrap_or(false);
        assert!(first);
        assert!(!c.finish(ExecReport::status(StatusCode::INTERNAL_ERROR)));
        assert!(c.is_finished());
        assert_eq!(
            *seen.lock().unwrap_or_else(|p| p.into_inner()),
            vec![(7, 200)]
        );
    }
}
