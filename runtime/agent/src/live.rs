//! What MO code reports from its own threads, and what the agent makes of
//! it (issue 18 items 3 and 4):
//!
//! - An EXEC an MO answered `Started` is kept, with where its report goes,
//!   in the agent state (so a restart keeps it); the MO finishes its
//!   [`Completion`] when the operation ends, and the Generic Alert with
//!   the final status goes out in a new session to the EXEC's ServerURI,
//!   run as the account that asked (spec 5.4.1). One that is not finished
//!   by its deadline (`Limits::exec_timeout`) ends with
//!   [`EXEC_TIMEOUT_STATUS`]. At a start, each MO gets the handles of its
//!   unfinished EXECs back (`MoHooks::resume_exec`).
//! - A change on the device ([`ChangeReporter`]) changes the instance's
//!   cache validator (spec 11.1) and reaches the SUB subscribers (5.3.11).
//!
//! Both arrive in the `Inbox`, from any thread; the agent's loop takes
//! them in turn with the device ([`Device::take_inbox`]).

use std::sync::{Arc, Mutex, PoisonError};

use dm_core::{Alert, ChangeReporter, ClientUri, Completion, ExecReport, StatusCode};

use crate::client::{Device, PendingAlert};
use crate::store::PendingExec;

/// The final status of an asynchronous EXEC whose MO never finished it
/// within `Limits::exec_timeout`: 500 (Appendix C, "an unexpected
/// condition which prevented it from fulfilling the request").
pub const EXEC_TIMEOUT_STATUS: StatusCode = StatusCode::INTERNAL_ERROR;

/// The most changed instances listed between two turns of the agent's
/// loop (one entry per instance); past it, the next turn takes every
/// instance as changed, so that no change is lost.
const MAX_CHANGES: usize = 4096;

/// The most EXECs pending at once; past it an EXEC with a ServerURI that
/// an MO would start answers 503 (Appendix C: temporarily unable).
pub const MAX_PENDING_EXECS: usize = 256;

/// Reports from MO code, waiting for the agent's loop.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    finished: Mutex<Vec<(u64, ExecReport)>>,
    /// (MOID, MIID): instances changed on the device.
    changed: Mutex<Vec<(&'static str, String)>>,
    /// More than [`MAX_CHANGES`] instances changed.
    overflow: std::sync::atomic::AtomicBool,
    wake: tokio::sync::Notify,
}

impl Inbox {
    /// Waits until something was reported.
    pub(crate) async fn wait(&self) {
        self.wake.notified().await;
    }

    fn push_finished(&self, id: u64, report: ExecReport) {
        self.finished
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((id, report));
        self.wake.notify_one();
    }

    fn push_changed(&self, moid: &'static str, miid: &str) {
        let mut changed = self.changed.lock().unwrap_or_else(PoisonError::into_inner);
        // One entry per instance is all the loop needs; bounded.
        if changed.len() >= MAX_CHANGES {
            self.overflow
                .store(true, std::sync::atomic::Ordering::SeqCst);
        } else if !changed.iter().any(|(m, i)| *m == moid && i == miid) {
            changed.push((moid, miid.to_owned()));
        }
        drop(changed);
        self.wake.notify_one();
    }
}

/// The Generic Alert of a finished EXEC (5.4.1): the final status as
/// `{"sc": N}` in JSON, as the synchronous status would be, and the MO's
/// own data, when it gave some, under `"type"` (its media type) and
/// `"data"` (5.4 leaves the data of each operation to its MO).
pub(crate) fn exec_alert(moid: &str, source_uri: String, report: &ExecReport) -> Alert {
    let mut data = serde_json::json!({ "sc": report.status.as_u16() });
    if let Some((kind, value)) = &report.data {
        data["type"] = serde_json::Value::String(kind.clone());
        data["data"] = value.clone();
    }
    let mut alert = Alert::new(crate::client::operation_complete_alert(moid))
        .with_data(dm_core::package::media_type::JSON, data);
    alert.source_uri = Some(source_uri);
    alert
}

impl Device {
    /// The handle of the pending EXEC `id`.
    pub(crate) fn completion(&self, id: u64) -> Completion {
        let inbox = Arc::clone(self.inbox());
        Completion::new(id, move |id, report| inbox.push_finished(id, report))
    }

    /// Hands each instance without one its change reporter.
    pub(crate) fn attach_reporters(&mut self) {
        let inbox = Arc::clone(self.inbox());
        self.registry_mut().attach_reporters(|moid, miid| {
            let inbox = Arc::clone(&inbox);
            let miid = miid.to_owned();
            ChangeReporter::new(move |_path| inbox.push_changed(moid, &miid))
        });
    }

    /// At a start, after the instances are in the registry: each gets
    /// its change reporter, and the handles of the EXECs it started and
    /// did not finish before the agent stopped (a reboot in the middle of
    /// an update is the normal case). `service::open_device` calls it.
    pub fn resume(&mut self) {
        self.attach_reporters();
        self.resume_execs();
    }

    fn resume_execs(&mut self) {
        let pending = self.agent_state().pending_execs.clone();
        for p in pending {
            let Some(index) = self.registry().find(&p.moid, &p.miid) else {
                continue;
            };
            let completion = self.completion(p.id);
            let path: Vec<&str> = p.path.iter().map(String::as_str).collect();
            if let Some(mo) = self.registry_mut().mo_mut_untracked(index) {
                mo.resume_exec(&path, completion);
            }
        }
    }

    /// Keeps an EXEC an MO started; its report goes to `server_uri` as
    /// `account` once finished. False when too many are pending.
    pub(crate) fn keep_pending_exec(
        &mut self,
        id: u64,
        node: (&str, &str, Vec<String>),
        server_uri: String,
        account: String,
    ) -> bool {
        let deadline = now_secs().saturating_add(self.limits().exec_timeout.as_secs());
        let (moid, miid, path) = node;
        let state = self.agent_state_mut();
        if state.pending_execs.len() >= MAX_PENDING_EXECS {
            return false;
        }
        state.pending_execs.push(PendingExec {
            id,
            moid: moid.to_owned(),
            miid: miid.to_owned(),
            path,
            server_uri,
            account,
            deadline,
        });
        true
    }

    /// A fresh id for a pending EXEC.
    pub(crate) fn next_exec_id(&mut self) -> u64 {
        let state = self.agent_state_mut();
        state.next_exec_id += 1;
        state.next_exec_id
    }

    /// The EXECs still pending.
    pub fn pending_exec_count(&self) -> usize {
        self.agent_state().pending_execs.len()
    }

    /// Takes what MO code reported: finished EXECs become Generic Alerts
    /// queued for their sessions, EXECs past their deadline end with
    /// [`EXEC_TIMEOUT_STATUS`], changed instances get a new cache
    /// validator and wait for the subscribers' notice. Returns whether
    /// anything is to be sent.
    pub fn take_inbox(&mut self) -> bool {
        self.attach_reporters();
        let finished = std::mem::take(
            &mut *self
                .inbox()
                .finished
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let changed = std::mem::take(
            &mut *self
                .inbox()
                .changed
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let now = now_secs();
        let mut ended: Vec<(PendingExec, ExecReport)> = Vec::new();
        for p in &self.agent_state().pending_execs {
            if let Some((_, report)) = finished.iter().find(|(id, _)| *id == p.id) {
                ended.push((p.clone(), report.clone()));
            } else if p.deadline <= now {
                tracing::warn!(
                    "{}/{}: EXEC of {} not finished in time: reported as {}",
                    p.moid,
                    p.miid,
                    p.path.join("/"),
                    EXEC_TIMEOUT_STATUS
                );
                ended.push((p.clone(), ExecReport::status(EXEC_TIMEOUT_STATUS)));
            }
        }
        let mut any = !ended.is_empty();
        if !ended.is_empty() {
            self.agent_state_mut()
                .pending_execs
                .retain(|p| !ended.iter().any(|(e, _)| e.id == p.id));
            // Durable first: a crash now repeats no alert... and loses
            // none: the alerts below are sent before the next turn.
            self.save_agent();
            for (p, report) in ended {
                let path: Vec<&str> = p.path.iter().map(String::as_str).collect();
                let source = ClientUri::for_node(&p.moid, &p.miid, &path);
                self.queue_alert(PendingAlert {
                    server_uri: p.server_uri.clone(),
                    account: p.account.clone(),
                    alert: exec_alert(&p.moid, source, &report),
                });
            }
        }
        let indices: Vec<usize> = if self
            .inbox()
            .overflow
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            self.registry().instances().map(|(i, _)| i).collect()
        } else {
            changed
                .iter()
                .filter_map(|(moid, miid)| self.registry().find(moid, miid))
                .collect()
        };
        for index in indices {
            self.registry_mut().touch(index);
            self.mark_changed(index);
            any = true;
        }
        any
    }

    /// The earliest deadline of a pending EXEC, for the loop's timer.
    pub(crate) fn next_exec_deadline(&self) -> Option<u64> {
        self.agent_state()
            .pending_execs
            .iter()
            .map(|p| p.deadline)
            .min()
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
