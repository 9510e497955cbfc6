//! [`MemoryStorage`]: every row in maps behind one mutex, gone with the
//! process. For tests and benches that need no durability.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use dm_core::{Alert, Command};

use super::{
    kind_key, AdminRole, AdminToken, DeviceRow, Entry, EntryState, Registration, RegistrationKind,
    Resource, Storage, StorageError, StoredAlert, UiSession,
};
use super::{BootstrapCommit, BootstrapProfile, Credentials};

#[derive(Debug, Default)]
struct Memory {
    devices: BTreeMap<String, DeviceRow>,
    entries: BTreeMap<u64, Entry>,
    /// Entry ids by device and state, in id order: a session asks for the
    /// few queued or sent entries of one device among all entries ever
    /// kept, so a scan would grow with the server's history.
    /// Looked up by `&str` (no key to allocate): each session moves every
    /// one of its commands through two or three states.
    entry_index: HashMap<String, [BTreeSet<u64>; 5]>,
    /// Alert ids by device.
    alert_index: BTreeMap<String, Vec<u64>>,
    alerts: BTreeMap<u64, StoredAlert>,
    resources: BTreeMap<(String, String), Resource>,
    registrations: BTreeMap<u64, Registration>,
    ui: BTreeMap<u64, UiSession>,
    admin_tokens: BTreeMap<u64, AdminToken>,
    credentials: BTreeMap<String, Credentials>,
    unauthenticated: BTreeSet<String>,
    bootstrap: BTreeMap<String, BootstrapProfile>,
    next_id: u64,
}

impl Memory {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Stores `entry`, moving it in the index when its state changed.
    fn put_entry(&mut self, entry: Entry) {
        if let Some(old) = self.entries.get(&entry.id) {
            if let Some(states) = self.entry_index.get_mut(old.dev_id.as_str()) {
                states[old.state.ordinal()].remove(&entry.id);
            }
        }
        let states = match self.entry_index.get_mut(entry.dev_id.as_str()) {
            Some(states) => states,
            None => self.entry_index.entry(entry.dev_id.clone()).or_default(),
        };
        states[entry.state.ordinal()].insert(entry.id);
        self.entries.insert(entry.id, entry);
    }
}

/// Everything in memory, gone with the process.
#[derive(Debug, Default)]
pub struct MemoryStorage(Mutex<Memory>);

impl MemoryStorage {
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }

    fn lock(&self) -> MutexGuard<'_, Memory> {
        // Plain data: a panic elsewhere leaves nothing half-written here.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Storage for MemoryStorage {
    fn device(&self, dev_id: &str) -> Result<Option<DeviceRow>, StorageError> {
        Ok(self.lock().devices.get(dev_id).cloned())
    }

    fn devices(&self) -> Result<Vec<DeviceRow>, StorageError> {
        Ok(self.lock().devices.values().cloned().collect())
    }

    fn put_device(&self, row: &DeviceRow) -> Result<(), StorageError> {
        self.lock().devices.insert(row.dev_id.clone(), row.clone());
        Ok(())
    }

    fn add_entry(&self, dev_id: &str, command: &Command) -> Result<u64, StorageError> {
        let mut m = self.lock();
        let id = m.id();
        m.put_entry(Entry {
            id,
            dev_id: dev_id.to_owned(),
            command: command.clone(),
            state: EntryState::Queued,
            status: None,
            data: None,
            async_status: None,
            async_alert: None,
        });
        Ok(id)
    }

    fn entries(&self, dev_id: &str, states: &[EntryState]) -> Result<Vec<Entry>, StorageError> {
        const ALL: [EntryState; 5] = [
            EntryState::Queued,
            EntryState::Sent,
            EntryState::Done,
            EntryState::AsyncPending,
            EntryState::Lost,
        ];
        let states = if states.is_empty() { &ALL[..] } else { states };
        let m = self.lock();
        let mut ids: Vec<u64> = states
            .iter()
            .filter_map(|s| Some(&m.entry_index.get(dev_id)?[s.ordinal()]))
            .flatten()
            .copied()
            .collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids
            .iter()
            .filter_map(|id| m.entries.get(id).cloned())
            .collect())
    }

    fn put_entry(&self, entry: Entry) -> Result<(), StorageError> {
        self.lock().put_entry(entry);
        Ok(())
    }

    fn add_alert(
        &self,
        dev_id: &str,
        alert: &Alert,
        entry: Option<u64>,
        received: u64,
    ) -> Result<u64, StorageError> {
        let mut m = self.lock();
        let id = m.id();
        m.alert_index.entry(dev_id.to_owned()).or_default().push(id);
        m.alerts.insert(
            id,
            StoredAlert {
                id,
                dev_id: dev_id.to_owned(),
                alert: alert.clone(),
                entry,
                received,
            },
        );
        Ok(id)
    }

    fn alerts(&self, dev_id: &str) -> Result<Vec<StoredAlert>, StorageError> {
        let m = self.lock();
        Ok(m.alert_index
            .get(dev_id)
            .into_iter()
            .flatten()
            .filter_map(|id| m.alerts.get(id).cloned())
            .collect())
    }

    fn resource(&self, dev_id: &str, path: &str) -> Result<Option<Resource>, StorageError> {
        Ok(self
            .lock()
            .resources
            .get(&(dev_id.to_owned(), path.to_owned()))
            .cloned())
    }

    fn put_resource(&self, dev_id: &str, path: &str, r: &Resource) -> Result<(), StorageError> {
        self.lock()
            .resources
            .insert((dev_id.to_owned(), path.to_owned()), r.clone());
        Ok(())
    }

    fn delete_resource(&self, dev_id: &str, path: &str) -> Result<bool, StorageError> {
        Ok(self
            .lock()
            .resources
            .remove(&(dev_id.to_owned(), path.to_owned()))
            .is_some())
    }

    fn resources(&self, dev_id: &str) -> Result<Vec<String>, StorageError> {
        Ok(self
            .lock()
            .resources
            .keys()
            .filter(|(d, _)| d == dev_id)
            .map(|(_, p)| p.clone())
            .collect())
    }

    fn put_registration(
        &self,
        dev_id: &str,
        kind: &RegistrationKind,
        server_uri: &str,
    ) -> Result<u64, StorageError> {
        let mut m = self.lock();
        m.registrations
            .retain(|_, r| !(r.dev_id == dev_id && kind_key(&r.kind) == kind_key(kind)));
        let id = m.id();
        m.registrations.insert(
            id,
            Registration {
                id,
                dev_id: dev_id.to_owned(),
                kind: kind.clone(),
                server_uri: server_uri.to_owned(),
            },
        );
        Ok(id)
    }

    fn registrations(&self, dev_id: &str) -> Result<Vec<Registration>, StorageError> {
        Ok(self
            .lock()
            .registrations
            .values()
            .filter(|r| r.dev_id == dev_id)
            .cloned()
            .collect())
    }

    fn delete_registration(&self, dev_id: &str, id: u64) -> Result<bool, StorageError> {
        let mut m = self.lock();
        if m.registrations.get(&id).is_some_and(|r| r.dev_id == dev_id) {
            m.registrations.remove(&id);
            return Ok(true);
        }
        Ok(false)
    }

    fn add_ui_session(&self, dev_id: &str, prompt: &str) -> Result<u64, StorageError> {
        let mut m = self.lock();
        let uiid = m.id();
        m.ui.insert(
            uiid,
            UiSession {
                uiid,
                dev_id: dev_id.to_owned(),
                prompt: prompt.to_owned(),
                choice: None,
            },
        );
        Ok(uiid)
    }

    fn ui_session(&self, uiid: u64) -> Result<Option<UiSession>, StorageError> {
        Ok(self.lock().ui.get(&uiid).cloned())
    }

    fn set_ui_choice(&self, uiid: u64, choice: &str) -> Result<bool, StorageError> {
        Ok(match self.lock().ui.get_mut(&uiid) {
            Some(s) => {
                s.choice = Some(choice.to_owned());
                true
            }
            None => false,
        })
    }

    fn add_admin_token(
        &self,
        role: AdminRole,
        hash: &[u8; 32],
        created: u64,
    ) -> Result<u64, StorageError> {
        let mut m = self.lock();
        let id = m.id();
        m.admin_tokens.insert(
            id,
            AdminToken {
                id,
                role,
                hash: *hash,
                created,
            },
        );
        Ok(id)
    }

    fn admin_tokens(&self) -> Result<Vec<AdminToken>, StorageError> {
        Ok(self.lock().admin_tokens.values().cloned().collect())
    }

    fn delete_admin_token(&self, id: u64) -> Result<bool, StorageError> {
        Ok(self.lock().admin_tokens.remove(&id).is_some())
    }

    fn credentials(&self, dev_id: &str) -> Result<Option<Credentials>, StorageError> {
        Ok(self.lock().credentials.get(dev_id).cloned())
    }

    fn put_credentials(&self, dev_id: &str, c: &Credentials) -> Result<(), StorageError> {
        self.lock().credentials.insert(dev_id.to_owned(), c.clone());
        Ok(())
    }

    fn set_unauthenticated(&self, dev_id: &str, flag: bool) -> Result<(), StorageError> {
        let mut m = self.lock();
        if flag {
            m.unauthenticated.insert(dev_id.to_owned());
        } else {
            m.unauthenticated.remove(dev_id);
        }
        Ok(())
    }

    fn is_unauthenticated(&self, dev_id: &str) -> Result<bool, StorageError> {
        Ok(self.lock().unauthenticated.contains(dev_id))
    }

    fn bootstrap_profile(&self, dev_id: &str) -> Result<Option<BootstrapProfile>, StorageError> {
        Ok(self.lock().bootstrap.get(dev_id).cloned())
    }

    fn put_bootstrap_profile(
        &self,
        dev_id: &str,
        p: &BootstrapProfile,
    ) -> Result<(), StorageError> {
        self.lock().bootstrap.insert(dev_id.to_owned(), p.clone());
        Ok(())
    }

    fn bootstrap_profiles(&self) -> Result<Vec<String>, StorageError> {
        Ok(self.lock().bootstrap.keys().cloned().collect())
    }

    fn delete_queued_entry(&self, dev_id: &str, id: u64) -> Result<bool, StorageError> {
        let mut m = self.lock();
        let queued = m
            .entries
            .get(&id)
            .is_some_and(|e| e.dev_id == dev_id && e.state == EntryState::Queued);
        if !queued {
            return Ok(false);
        }
        m.entries.remove(&id);
        if let Some(states) = m.entry_index.get_mut(dev_id) {
            states[EntryState::Queued.ordinal()].remove(&id);
        }
        Ok(true)
    }

    fn delete_device(&self, dev_id: &str) -> Result<bool, StorageError> {
        let mut m = self.lock();
        let mut any = m.devices.remove(dev_id).is_some();
        if let Some(states) = m.entry_index.remove(dev_id) {
            for id in states.iter().flatten() {
                m.entries.remove(id);
            }
            any = true;
        }
        if let Some(ids) = m.alert_index.remove(dev_id) {
            for id in ids {
                m.alerts.remove(&id);
            }
            any = true;
        }
        let before = m.resources.len() + m.registrations.len() + m.ui.len();
        m.resources.retain(|(d, _), _| d != dev_id);
        m.registrations.retain(|_, r| r.dev_id != dev_id);
        m.ui.retain(|_, u| u.dev_id != dev_id);
        any |= before != m.resources.len() + m.registrations.len() + m.ui.len();
        any |= m.credentials.remove(dev_id).is_some();
        any |= m.unauthenticated.remove(dev_id);
        any |= m.bootstrap.remove(dev_id).is_some();
        Ok(any)
    }

    fn commit_bootstrap(&self, dev_id: &str, c: &BootstrapCommit) -> Result<(), StorageError> {
        // One lock: no reader sees half of it.
        let mut m = self.lock();
        m.credentials
            .insert(dev_id.to_owned(), c.credentials.clone());
        m.devices.insert(dev_id.to_owned(), c.device.clone());
        m.bootstrap.insert(dev_id.to_owned(), c.profile.clone());
        Ok(())
    }
}
