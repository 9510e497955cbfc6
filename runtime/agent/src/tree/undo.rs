//! Taking a command back: the registry's side of the per-command
//! transaction (docs/architecture.md "Persistence").
//!
//! While a transaction is open, the first change a command makes to an
//! instance records what the instance was (its data, owner and change
//! clock); an instance made or removed is recorded as such. When the
//! command's durable write fails, [`Registry::roll_back`] puts every
//! instance back as it was, so that memory never holds what the disk does
//! not. Nothing is recorded outside a transaction.

use dm_core::{Change, NodeData};

use super::{Instance, Owner, Registry};

/// What one instance was before the transaction touched it.
#[derive(Debug)]
pub(crate) enum Undo {
    /// Its first state in this transaction.
    Changed {
        moid: &'static str,
        miid: String,
        data: NodeData,
        owner: Owner,
        persistent: bool,
        changes: u64,
    },
    /// Made in this transaction.
    Created { moid: &'static str, miid: String },
    /// Removed in this transaction: the whole instance, and where it stood.
    Removed { at: usize, instance: Instance },
}

impl Undo {
    /// The (MOID, MIID) this entry is about.
    pub(crate) fn key(&self) -> (&'static str, &str) {
        match self {
            Undo::Changed { moid, miid, .. } | Undo::Created { moid, miid } => (moid, miid),
            Undo::Removed { instance, .. } => (instance.mo.schema().moid, &instance.miid),
        }
    }

    /// Whether the instance was kept in the state directory before.
    pub(crate) fn was_persistent(&self) -> bool {
        match self {
            Undo::Changed { persistent, .. } => *persistent,
            Undo::Created { .. } => false,
            Undo::Removed { instance, .. } => instance.persistent,
        }
    }
}

impl Registry {
    /// Opens a transaction: from now on changes are recorded.
    pub(crate) fn begin(&mut self) {
        self.undo = Some(Vec::new());
    }

    /// Closes the transaction and hands over what it recorded (`None` when
    /// none was open).
    pub(crate) fn take_undo(&mut self) -> Option<Vec<Undo>> {
        self.undo.take()
    }

    /// True when the open transaction changed, made or removed an instance
    /// of `moid`.
    pub(crate) fn txn_touches(&self, moid: &str) -> bool {
        self.undo
            .as_ref()
            .is_some_and(|u| u.iter().any(|e| e.key().0 == moid))
    }

    /// Records the state of the instance at `index` before its first change
    /// in the open transaction.
    pub(super) fn note_change(&mut self, index: usize) {
        let Some(undo) = &self.undo else { return };
        let Some(i) = self.instances.get(index) else {
            return;
        };
        let moid = i.mo.schema().moid;
        if undo.iter().any(|u| u.key() == (moid, i.miid.as_str())) {
            return;
        }
        let Ok(data) = i.mo.get(&[]) else { return };
        let entry = Undo::Changed {
            moid,
            miid: i.miid.clone(),
            data,
            owner: i.owner.clone(),
            persistent: i.persistent,
            changes: i.changes,
        };
        if let Some(undo) = &mut self.undo {
            undo.push(entry);
        }
    }

    /// Records an instance made in the open transaction.
    pub(super) fn note_created(&mut self, index: usize) {
        let Some(i) = self.instances.get(index) else {
            return;
        };
        let entry = Undo::Created {
            moid: i.mo.schema().moid,
            miid: i.miid.clone(),
        };
        if let Some(undo) = &mut self.undo {
            undo.push(entry);
        }
    }

    /// Takes the instance at `index` out; in a transaction it is kept to
    /// be put back. Returns its (MOID, MIID).
    pub(super) fn take_out(&mut self, index: usize) -> Option<(&'static str, String)> {
        if index >= self.instances.len() {
            return None;
        }
        let instance = self.instances.remove(index);
        self.reindex();
        let key = (instance.mo.schema().moid, instance.miid.clone());
        if let Some(undo) = &mut self.undo {
            undo.push(Undo::Removed {
                at: index,
                instance,
            });
        }
        Some(key)
    }

    /// Puts back what `undo` recorded, newest first: made instances go,
    /// removed ones return where they stood, changed ones get their data,
    /// owner and change clock back. Closes any open transaction.
    pub(crate) fn roll_back(&mut self, undo: Vec<Undo>) {
        self.undo = None;
        if undo.is_empty() {
            // Nothing changed: the access rules kept stay right.
            return;
        }
        self.forget_rules();
        for entry in undo.into_iter().rev() {
            match entry {
                Undo::Created { moid, miid } => {
                    if let Some(index) = self.find(moid, &miid) {
                        self.instances.remove(index);
                        self.reindex();
                    }
                }
                Undo::Removed { at, instance } => {
                    let at = at.min(self.instances.len());
                    self.instances.insert(at, instance);
                    self.reindex();
                }
                Undo::Changed {
                    moid,
                    miid,
                    data,
                    owner,
                    persistent,
                    changes,
                } => {
                    let Some(index) = self.find(moid, &miid) else {
                        continue;
                    };
                    if !self.put_back_data(index, &data) {
                        tracing::error!(
                            "rollback: instance {miid} of {moid} could not be put back as it was"
                        );
                    }
                    let i = &mut self.instances[index];
                    i.owner = owner;
                    i.persistent = persistent;
                    i.set_changes(changes);
                }
            }
        }
    }

    /// Makes the instance at `index` hold `data` again: rebuilt by its MO's
    /// factory, else (a built-in instance) by deleting what `data` lacks
    /// and writing `data`.
    fn put_back_data(&mut self, index: usize, data: &NodeData) -> bool {
        let Some(i) = self.instances.get(index) else {
            return false;
        };
        let rebuilt = self
            .factory(i.mo.schema().moid)
            .and_then(|f| (f.create)(&i.miid, data).ok());
        let i = &mut self.instances[index];
        if let Some(mo) = rebuilt {
            i.mo = mo;
            return true;
        }
        let mut changes = Vec::new();
        if let Ok(now) = i.mo.get(&[]) {
            super::absent_from(&now, data, &mut Vec::new(), &mut changes);
        }
        changes.push(Change::Put {
            path: Vec::new(),
            data: data.clone(),
        });
        i.mo.apply(&changes).is_ok()
    }
}
