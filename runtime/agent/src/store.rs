//! What the device keeps in its `--state` directory: one file per MO
//! instance (`tree/`), and the agent's own state (`agent.json`: pending
//! BootstrapComplete alerts, DEFAULT and SUB registrations).
//!
//! Each file is written whole to a temporary name, synced, then renamed over
//! the old one: a crash leaves the old or the new file, never a mix. Files
//! are small and each command touches few instances, so this beats an
//! embedded database on size and on what it needs of the platform.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::tree::Owner;

/// Errors of the state directory.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// One MO instance as saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedInstance {
    pub moid: String,
    pub miid: String,
    pub owner: Owner,
    /// The registry's change clock at the instance's last change, so its
    /// cache validator survives a restart (spec 11.1). 0 in files written
    /// before it was kept: the instance then gets a fresh validator.
    #[serde(default)]
    pub changes: u64,
    /// The whole instance as MO data (secrets included: the files are
    /// readable by the device's user only).
    pub data: Json,
}

/// A SUB registration (spec 5.3.11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub server_id: Option<String>,
    pub client_uri: String,
    pub server_uri: String,
}

/// The agent's own state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentState {
    /// SrvIDs whose next session must carry BootstrapComplete (8).
    #[serde(default)]
    pub bootstrap_pending: Vec<String>,
    /// Digests of bootstrap files already applied, so that a restart with
    /// the same `--bootstrap` changes nothing.
    #[serde(default)]
    pub bootstraps_applied: Vec<String>,
    /// DEFAULT registrations: one ServerURI per MOID (5.3.10).
    #[serde(default)]
    pub defaults: Vec<(String, String)>,
    /// The SrvID of the server that made each DEFAULT registration, by
    /// MOID: its fetch reaches only that server's address range
    /// (docs/architecture.md "Data Repository addresses").
    #[serde(default)]
    pub default_servers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
    /// (SrvID, NOTIFICATION-ID) pairs of earlier versions, newest last:
    /// moved into `notification_windows` at the next notification.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen_notifications: Vec<(String, u16)>,
    /// Per SrvID, the NOTIFICATION-IDs accepted, so a replayed
    /// notification is dropped also after a restart (5.2.1.2).
    #[serde(default)]
    pub notification_windows: std::collections::BTreeMap<String, crate::replay::NotificationWindow>,
}

/// The device's persistent state.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_owned(),
        source,
    }
}

impl StateDir {
    /// Opens (creating when missing) the state directory.
    pub fn open(dir: &Path) -> Result<StateDir, StateError> {
        std::fs::create_dir_all(dir.join("tree")).map_err(io(dir))?;
        Ok(StateDir {
            dir: dir.to_owned(),
        })
    }

    fn instance_path(&self, moid: &str, miid: &str) -> PathBuf {
        let clean: String = format!("{moid}__{miid}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        // The hash keeps distinct (MOID, MIID) pairs apart after cleaning.
        let hash = fnv1a(format!("{moid}\0{miid}").as_bytes());
        self.dir
            .join("tree")
            .join(format!("{clean}-{hash:016x}.json"))
    }

    /// Saves one instance (durable when this returns).
    pub fn save_instance(&self, saved: &SavedInstance) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(saved).unwrap_or_default();
        write_atomic(&self.instance_path(&saved.moid, &saved.miid), &bytes)
    }

    /// Forgets one instance.
    pub fn remove_instance(&self, moid: &str, miid: &str) -> Result<(), StateError> {
        let path = self.instance_path(moid, miid);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Every saved instance, in file-name order.
    pub fn load_instances(&self) -> Result<Vec<SavedInstance>, StateError> {
        let dir = self.dir.join("tree");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(io(&dir))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("json"))
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|path| {
                let bytes = std::fs::read(&path).map_err(io(&path))?;
                serde_json::from_slice(&bytes)
                    .map_err(|source| StateError::Corrupt { path, source })
            })
            .collect()
    }

    fn agent_path(&self) -> PathBuf {
        self.dir.join("agent.json")
    }

    pub fn agent_state(&self) -> Result<AgentState, StateError> {
        let path = self.agent_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| StateError::Corrupt { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AgentState::default()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    pub fn save_agent_state(&self, state: &AgentState) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(state).unwrap_or_default();
        write_atomic(&self.agent_path(), &bytes)
    }

    /// The DevID kept in the state, or `fallback()` stored for next time.
    pub fn dev_id(&self, fallback: impl FnOnce() -> String) -> Result<String, StateError> {
        let path = self.dir.join("dev-id");
        match std::fs::read_to_string(&path) {
            Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
            _ => {
                let id = fallback();
                write_atomic(&path, id.as_bytes())?;
                Ok(id)
            }
        }
    }
}

/// FNV-1a, 64 bits: a stable short digest for file names and bootstrap
/// files (not a security measure).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Writes `bytes` to `path` so that a crash leaves the old or the new
/// content: temporary file, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let io = |source| StateError::Io {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    // MO data holds secrets (DMAcc keys): for the device's user only.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        // Make the rename itself durable; not every platform allows it.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// A DevID derived from the machine: `UUID:` and the systemd machine id,
/// or a random-enough one when the machine has none.
pub fn machine_dev_id() -> String {
    let hex = std::fs::read_to_string("/etc/machine-id")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0),
            );
            h.write_u32(std::process::id());
            let a = h.finish();
            h.write_u64(a);
            format!("{a:016x}{:016x}", h.finish())
        });
    format!(
        "UUID:{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_round_trip_and_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let a = SavedInstance {
            moid: "urn:oma:mo:oma-dm-dmacc:1.2".into(),
            miid: "dms1".into(),
            owner: Owner::Server("dms1".into()),
            changes: 1,
            data: serde_json::json!({"SrvID": "dms1"}),
        };
        let b = SavedInstance {
            miid: "dms/1".into(),
            ..a.clone()
        };
        state.save_instance(&a).unwrap();
        state.save_instance(&b).unwrap();
        let mut loaded = state.load_instances().unwrap();
        loaded.sort_by(|x, y| x.miid.cmp(&y.miid));
        assert_eq!(loaded, [b.clone(), a.clone()]);
        state.remove_instance(&a.moid, &a.miid).unwrap();
        assert_eq!(state.load_instances().unwrap(), [b]);
        state.remove_instance(&a.moid, &a.miid).unwrap();
    }

    #[test]
    fn agent_state_defaults_when_missing_and_reports_corruption() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        assert_eq!(state.agent_state().unwrap(), AgentState::default());
        std::fs::write(tmp.path().join("agent.json"), "{").unwrap();
        assert!(matches!(
            state.agent_state(),
            Err(StateError::Corrupt { .. })
        ));
    }

    #[test]
    fn machine_dev_id_is_a_uuid_urn() {
        let id = machine_dev_id();
        assert!(id.starts_with("UUID:") && id.len() == 41, "{id}");
    }
}
