//! One durable write per command (docs/architecture.md "Persistence"):
//! a command runs inside a transaction; what it changed is written to the
//! state directory as one journal record, and only once that write has
//! succeeded does the change stand. When it fails (a full or read-only
//! disk), memory is put back as it was before the command, so that memory
//! and disk never disagree.
//!
//! Outside a transaction (the device's own changes at start, a local
//! application's request) each save is a record of its own.

use dm_core::StatusCode;

use crate::client::Device;
use crate::store::{AgentState, Record, SavedInstance, StateError};

/// Why a command's changes did not stand; they were taken back.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The state directory could not record them.
    #[error(transparent)]
    State(#[from] StateError),
    /// An MO's device refused them (`MoHooks::commit`).
    #[error("{moid}/{miid}: the device refused the change: {source}")]
    Device {
        moid: &'static str,
        miid: String,
        source: dm_core::MoError,
    },
}

/// What a transaction must restore besides the registry's instances, and
/// the work it leaves to its end.
#[derive(Debug)]
pub(crate) struct Txn {
    /// The agent state as the transaction found it, taken at its first
    /// change (`Device::agent_state_mut`): most commands never change it,
    /// and a copy per command cost a session 15 % of its instructions.
    pub(crate) agent: Option<AgentState>,
    alerts: usize,
    changed: usize,
    /// Instances whose owner rules go into DACMO at the end (`settle`).
    owner_rules: Vec<(&'static str, String)>,
    /// How many instances an owner holds, counted once per transaction
    /// and kept up to date by `owned_by`'s callers (`create_instance`).
    owned: Option<(crate::tree::Owner, usize)>,
}

impl Device {
    /// Opens a transaction for one command (or a bootstrap): its changes
    /// are recorded so that a failure takes them back, state kept or not.
    pub(crate) fn begin(&mut self) {
        if self.txn_slot().is_some() {
            return;
        }
        let txn = Txn {
            agent: None,
            alerts: self.pending_alert_count(),
            changed: self.changed_count(),
            owner_rules: Vec::new(),
            owned: None,
        };
        *self.txn_slot() = Some(txn);
        self.registry_mut().begin();
    }

    /// Ends the open transaction: one journal record of what it changed,
    /// synced. On failure memory goes back to how the transaction found it
    /// and the error says why.
    pub(crate) fn commit(&mut self) -> Result<(), CommitError> {
        let Some(txn) = self.txn_slot().take() else {
            return Ok(());
        };
        let undo = self.registry_mut().take_undo().unwrap_or_default();
        let touched: Vec<(&'static str, String)> = undo
            .iter()
            .map(|u| (u.key().0, u.key().1.to_owned()))
            .fold(Vec::new(), |mut v, k| {
                if !v.contains(&k) {
                    v.push(k);
                }
                v
            });
        if let Err(failed) = self.commit_to_devices(&touched) {
            // The device ends as before the command: memory first, then
            // every instance's previous state carried to it again.
            self.take_back(txn, undo);
            self.commit_to_devices_best_effort(&touched);
            return Err(failed);
        }
        if self.store().is_none() {
            return Ok(());
        }
        let mut record = Record::default();
        let mut keys = std::collections::HashSet::new();
        for u in &undo {
            let (moid, miid) = u.key();
            if !keys.insert((moid, miid)) {
                continue;
            }
            match self.saved(moid, miid) {
                Some(saved) => record.put.push(saved),
                None if u.was_persistent() => {
                    record.remove.push((moid.to_owned(), miid.to_owned()))
                }
                None => {}
            }
        }
        if txn
            .agent
            .as_ref()
            .is_some_and(|before| before != self.agent_state())
        {
            record.agent = Some(self.agent_state().clone());
        }
        let Some(store) = self.store() else {
            return Ok(());
        };
        match store.commit(&record) {
            Ok(()) => {
                self.compact_when_due();
                Ok(())
            }
            Err(e) => {
                tracing::error!("{e}: the command is taken back");
                self.take_back(txn, undo);
                self.commit_to_devices_best_effort(&touched);
                Err(CommitError::State(e))
            }
        }
    }

    /// Carries the state of each touched instance that still exists to
    /// its device (`MoHooks::commit`, issue 18 item 2); stops at the
    /// first that fails.
    fn commit_to_devices(&mut self, touched: &[(&'static str, String)]) -> Result<(), CommitError> {
        for (moid, miid) in touched {
            let Some(index) = self.registry().find(moid, miid) else {
                continue;
            };
            let Some(mo) = self.registry_mut().mo_mut_untracked(index) else {
                continue;
            };
            if let Err(source) = mo.commit() {
                tracing::warn!("{moid}/{miid}: the device refused the change: {source}");
                return Err(CommitError::Device {
                    moid,
                    miid: miid.clone(),
                    source,
                });
            }
        }
        Ok(())
    }

    /// After a failure, the previous state of every touched instance goes
    /// to its device again; a device that refuses even that is logged
    /// (its MO then holds state the device does not).
    fn commit_to_devices_best_effort(&mut self, touched: &[(&'static str, String)]) {
        for (moid, miid) in touched {
            let Some(index) = self.registry().find(moid, miid) else {
                continue;
            };
            if let Some(mo) = self.registry_mut().mo_mut_untracked(index) {
                if let Err(e) = mo.commit() {
                    tracing::error!(
                        "{moid}/{miid}: the previous state did not go back to the device: {e}"
                    );
                }
            }
        }
    }

    /// Ends the transaction of one command that answered `status`: a
    /// success is committed, a failure taken back whole. A commit that
    /// fails turns the status into 506 Device Full for a full disk where
    /// the command may say so (HGET, Appendix C), else 500.
    pub(crate) fn finish_command(&mut self, status: StatusCode, may_be_full: bool) -> StatusCode {
        if !status.is_success() {
            self.abort();
            return status;
        }
        if let Err(code) = self.settle() {
            self.abort();
            return code;
        }
        match self.commit() {
            Ok(()) => status,
            Err(CommitError::State(e)) if may_be_full && e.is_storage_full() => {
                StatusCode::DEVICE_FULL
            }
            Err(CommitError::State(_)) => StatusCode::INTERNAL_ERROR,
            Err(CommitError::Device { source, .. }) => source.status(),
        }
    }

    /// How many instances `owner` holds, the new one included when called
    /// again in the same transaction: counted once per transaction (a
    /// count per instance made a large HGET quadratic), then one more per
    /// call.
    pub(crate) fn owned_by(&mut self, owner: &crate::tree::Owner) -> usize {
        let cached = self
            .txn_slot()
            .as_ref()
            .and_then(|t| t.owned.as_ref())
            .filter(|(o, _)| o == owner)
            .map(|(_, n)| *n);
        let held = cached.unwrap_or_else(|| {
            self.registry()
                .instances()
                .filter(|(_, i)| i.owner() == owner)
                .count()
        });
        if let Some(txn) = self.txn_slot() {
            // The caller is about to make one more (an over-count when it
            // then fails only errs on the safe side).
            txn.owned = Some((owner.clone(), held + 1));
        }
        held
    }

    /// Refuses with `code`, naming why (issue "Device agent under a hostile
    /// server", item 8): the reason goes to the log (stderr for `dmctl`),
    /// and is kept for a caller that reports it, such as a bootstrap's
    /// error ([`Device::take_refusal`]).
    pub(crate) fn refuse(&self, code: StatusCode, reason: impl std::fmt::Display) -> StatusCode {
        let reason = reason.to_string();
        tracing::warn!("refused with {code}: {reason}");
        self.set_refusal(reason);
        code
    }

    /// Keeps the owner rules of a new instance for the end of the open
    /// transaction; false when none is open.
    pub(crate) fn defer_owner_rules(&mut self, moid: &'static str, miid: &str) -> bool {
        match self.txn_slot() {
            Some(txn) => {
                txn.owner_rules.push((moid, miid.to_owned()));
                true
            }
            None => false,
        }
    }

    /// The work a transaction leaves to its end, before its record is
    /// written: the owner rules of the instances it made, in one DACMO
    /// change; and, when it touched an account, the check that no two
    /// accounts share a SrvID (12.2: "MUST be unique within the DM
    /// Client"), once for the whole command rather than per account.
    pub(crate) fn settle(&mut self) -> Result<(), StatusCode> {
        let keys = match self.txn_slot() {
            Some(txn) => std::mem::take(&mut txn.owner_rules),
            None => return Ok(()),
        };
        if !keys.is_empty() {
            self.write_owner_rules_of(&keys)?;
        }
        if self.registry().txn_touches(crate::access::DMACC_MOID) {
            let mut ids = std::collections::HashSet::new();
            for a in crate::access::accounts(self.registry()) {
                if !ids.insert(a.server_id.clone()) {
                    tracing::warn!("refused: SrvID {:?} would be two accounts'", a.server_id);
                    return Err(StatusCode::FORBIDDEN);
                }
            }
        }
        Ok(())
    }

    /// The saved form of the persistent instance (MOID, MIID), if there is
    /// one now.
    fn saved(&self, moid: &str, miid: &str) -> Option<SavedInstance> {
        let index = self.registry().find(moid, miid)?;
        let i = self.registry().instance(index)?;
        if !i.persistent() {
            return None;
        }
        let data = i.mo().get(&[]).ok()?;
        Some(SavedInstance {
            moid: moid.to_owned(),
            miid: miid.to_owned(),
            owner: i.owner().clone(),
            changes: i.changes(),
            data: data.to_json(),
        })
    }

    /// Rewrites the snapshot once the journal has outgrown it.
    fn compact_when_due(&self) {
        let Some(store) = self.store() else { return };
        if !store.wants_compaction() {
            return;
        }
        if let Err(e) = store.compact() {
            // The journal still holds everything: nothing is lost.
            tracing::warn!("compacting the state: {e}");
        }
    }

    /// Makes the change of the instance at `index` durable: part of the
    /// open transaction, else a record of its own.
    pub(crate) fn save(&mut self, index: usize) -> Result<(), StateError> {
        if self.txn_slot().is_some() {
            return Ok(());
        }
        let Some(i) = self.registry().instance(index) else {
            return Ok(());
        };
        let (moid, miid) = (i.mo().schema().moid, i.miid().to_owned());
        let Some(saved) = self.saved(moid, &miid) else {
            return Ok(());
        };
        match self.store() {
            Some(store) => store.save_instance(&saved),
            None => Ok(()),
        }
    }

    /// Forgets the saved instance (MOID, MIID), removed from the registry:
    /// part of the open transaction, else a record of its own.
    pub(crate) fn forget_saved(&mut self, moid: &str, miid: &str) -> Result<(), StateError> {
        if self.txn_slot().is_some() {
            return Ok(());
        }
        match self.store() {
            Some(store) => store.remove_instance(moid, miid),
            None => Ok(()),
        }
    }

    /// Ends the open transaction without writing anything: memory goes
    /// back to how the transaction found it (a command that failed is all
    /// or nothing too).
    pub(crate) fn abort(&mut self) {
        let Some(txn) = self.txn_slot().take() else {
            return;
        };
        let undo = self.registry_mut().take_undo().unwrap_or_default();
        self.take_back(txn, undo);
    }

    fn take_back(&mut self, txn: Txn, undo: Vec<crate::tree::Undo>) {
        self.registry_mut().roll_back(undo);
        if let Some(agent) = txn.agent {
            *self.agent_state_mut() = agent;
        }
        self.truncate_alerts(txn.alerts);
        self.truncate_changed(txn.changed);
    }

    /// Makes the agent state durable: part of the open transaction, else a
    /// record of its own.
    pub(crate) fn save_agent(&mut self) -> StatusCode {
        if self.txn_slot().is_some() {
            return StatusCode::OK;
        }
        match self.store() {
            Some(store) if store.save_agent_state(self.agent_state()).is_err() => {
                StatusCode::INTERNAL_ERROR
            }
            _ => StatusCode::OK,
        }
    }
}
