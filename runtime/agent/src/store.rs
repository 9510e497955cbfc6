//! What the device keeps in its `--state` directory (docs/architecture.md
//! "Persistence"): every persistent MO instance and the agent's own state
//! (pending BootstrapComplete alerts, DEFAULT and SUB registrations, seen
//! notifications), as a snapshot (`state.json`) and a journal of the
//! commands since (`journal`).
//!
//! One command is one journal record, appended and synced once: the full
//! image of each instance it changed, the instances it removed, the agent
//! state when it changed. A record is framed by its length and a checksum,
//! so a crash in the middle of an append leaves a torn tail that the next
//! start drops: the state is the one before or after each command, never
//! between. Records hold images, not differences, so replaying one twice
//! changes nothing; the snapshot is rewritten (temporary file, sync,
//! rename) once the journal outgrows it, and the journal then emptied.
//! One append per command keeps a large command linear in its size, and a
//! single file pair beats an embedded database on size and on what it
//! needs of the platform.

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
    /// EXECs an MO answered `Started` and has not finished (5.4.1): their
    /// Generic Alert goes out when it does, also after a restart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_execs: Vec<PendingExec>,
    /// The id of the next pending EXEC.
    #[serde(default)]
    pub next_exec_id: u64,
}

/// An EXEC started asynchronously and not yet finished (spec 5.4.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingExec {
    pub id: u64,
    pub moid: String,
    pub miid: String,
    /// The executed node below the instance root.
    pub path: Vec<String>,
    /// Where the Generic Alert goes, and as which account (MIID).
    pub server_uri: String,
    pub account: String,
    /// POSIX seconds after which it ends with the timeout status.
    pub deadline: u64,
}

/// One command's durable effect: a journal record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Instances as they are after the command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub put: Vec<SavedInstance>,
    /// Instances the command removed: (MOID, MIID).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<(String, String)>,
    /// The agent state after the command, when it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentState>,
}

impl Record {
    pub fn is_empty(&self) -> bool {
        self.put.is_empty() && self.remove.is_empty() && self.agent.is_none()
    }
}

/// The snapshot file's content.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Snapshot {
    #[serde(default)]
    instances: Vec<SavedInstance>,
    #[serde(default)]
    agent: AgentState,
}

/// The whole state: instances by (MOID, MIID), and the agent's.
#[derive(Debug, Default)]
struct State {
    instances: std::collections::BTreeMap<(String, String), SavedInstance>,
    agent: AgentState,
}

impl State {
    fn apply(&mut self, record: Record) {
        for (moid, miid) in record.remove {
            self.instances.remove(&(moid, miid));
        }
        for saved in record.put {
            self.instances
                .insert((saved.moid.clone(), saved.miid.clone()), saved);
        }
        if let Some(agent) = record.agent {
            self.agent = agent;
        }
    }
}

/// The journal grows to at least this before the snapshot is rewritten.
const COMPACT_AT: u64 = 1 << 20;

/// A record's frame: its length (u32) and FNV-1a checksum (u64), little
/// endian, before its JSON.
const FRAME: usize = 12;

/// The device's persistent state.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateError {
    /// True when the write failed for want of space (ENOSPC, EDQUOT).
    pub fn is_storage_full(&self) -> bool {
        matches!(self, StateError::Io { source, .. }
            if matches!(source.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded))
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_owned(),
        source,
    }
}

impl StateDir {
    /// Opens (creating when missing) the state directory: leftovers of an
    /// interrupted write (`*.tmp`) go, and a directory of the former layout
    /// (one file per instance under `tree/`, `agent.json`) becomes a
    /// snapshot.
    pub fn open(dir: &Path) -> Result<StateDir, StateError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let state = StateDir {
            dir: dir.to_owned(),
        };
        for entry in std::fs::read_dir(dir).map_err(io(dir))?.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "tmp") {
                std::fs::remove_file(&path).map_err(io(&path))?;
            }
        }
        state.migrate()?;
        Ok(state)
    }

    fn snapshot_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    fn journal_path(&self) -> PathBuf {
        self.dir.join("journal")
    }

    /// The former layout, read once into a snapshot, then removed.
    fn migrate(&self) -> Result<(), StateError> {
        let tree = self.dir.join("tree");
        let agent = self.dir.join("agent.json");
        if !tree.exists() && !agent.exists() {
            return Ok(());
        }
        if !self.snapshot_path().exists() {
            let mut snapshot = Snapshot::default();
            if tree.exists() {
                let mut files: Vec<PathBuf> = std::fs::read_dir(&tree)
                    .map_err(io(&tree))?
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "json"))
                    .collect();
                files.sort();
                for path in files {
                    let bytes = std::fs::read(&path).map_err(io(&path))?;
                    snapshot.instances.push(
                        serde_json::from_slice(&bytes)
                            .map_err(|source| StateError::Corrupt { path, source })?,
                    );
                }
            }
            if let Ok(bytes) = std::fs::read(&agent) {
                snapshot.agent =
                    serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt {
                        path: agent.clone(),
                        source,
                    })?;
            }
            write_atomic(&self.snapshot_path(), &to_json(&snapshot))?;
        }
        // The snapshot holds it all now.
        if tree.exists() {
            std::fs::remove_dir_all(&tree).map_err(io(&tree))?;
        }
        if agent.exists() {
            std::fs::remove_file(&agent).map_err(io(&agent))?;
        }
        Ok(())
    }

    /// The state as the last complete command left it: the snapshot, then
    /// every whole journal record in order. A torn record at the end (a
    /// crash in the middle of its append) is cut off.
    fn load(&self) -> Result<State, StateError> {
        let path = self.snapshot_path();
        let snapshot: Snapshot = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| StateError::Corrupt { path, source })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Snapshot::default(),
            Err(e) => return Err(io(&path)(e)),
        };
        let mut state = State {
            agent: snapshot.agent,
            ..State::default()
        };
        state.apply(Record {
            put: snapshot.instances,
            ..Record::default()
        });
        let path = self.journal_path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(&path)(e)),
        };
        let mut at = 0;
        while let Some((record, next)) = read_record(&bytes, at) {
            state.apply(record);
            at = next;
        }
        if at < bytes.len() {
            tracing::warn!(
                "{}: {} bytes of an unfinished command dropped",
                path.display(),
                bytes.len() - at
            );
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io(&path))?;
            f.set_len(at as u64).map_err(io(&path))?;
            f.sync_all().map_err(io(&path))?;
        }
        Ok(state)
    }

    /// Appends one command's record and syncs it: durable when this
    /// returns. Nothing is written for an empty record.
    pub fn commit(&self, record: &Record) -> Result<(), StateError> {
        if record.is_empty() {
            return Ok(());
        }
        let path = self.journal_path();
        let json = to_json(record);
        let len = u32::try_from(json.len()).map_err(|_| StateError::Io {
            path: path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "record over 4 GiB"),
        })?;
        let mut frame = Vec::with_capacity(FRAME + json.len());
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(&fnv1a(&json).to_le_bytes());
        frame.extend_from_slice(&json);
        let mut options = std::fs::OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&path).map_err(io(&path))?;
        let start = f.metadata().map_err(io(&path))?.len();
        let written = f.write_all(&frame).and_then(|()| f.sync_data());
        if let Err(e) = written {
            // Whatever part got written is cut off again, so that the
            // next record does not follow a torn one.
            let _ = f.set_len(start);
            return Err(io(&path)(e));
        }
        Ok(())
    }

    /// True when the journal has grown past the snapshot (and
    /// 1 MiB): time for [`StateDir::compact`].
    pub fn wants_compaction(&self) -> bool {
        let len = |p: PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
        let journal = len(self.journal_path());
        journal > COMPACT_AT && journal > len(self.snapshot_path())
    }

    /// Rewrites the snapshot from what the directory holds (snapshot and
    /// journal) and empties the journal. The state is read from disk, not
    /// taken from the device: an instance this build could not restore (an
    /// MO no longer compiled in) stays saved. A crash in between replays
    /// the journal over the new snapshot, which changes nothing (records
    /// are images).
    pub fn compact(&self) -> Result<(), StateError> {
        let state = self.load()?;
        let instances: Vec<&SavedInstance> = state.instances.values().collect();
        let snapshot = SnapshotRef {
            instances: &instances,
            agent: &state.agent,
        };
        write_atomic(&self.snapshot_path(), &to_json(&snapshot))?;
        let path = self.journal_path();
        match std::fs::OpenOptions::new().write(true).open(&path) {
            Ok(f) => {
                f.set_len(0).map_err(io(&path))?;
                f.sync_all().map_err(io(&path))
            }
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Saves one instance (durable when this returns): a record of its own.
    pub fn save_instance(&self, saved: &SavedInstance) -> Result<(), StateError> {
        self.commit(&Record {
            put: vec![saved.clone()],
            ..Record::default()
        })
    }

    /// Forgets one instance: a record of its own.
    pub fn remove_instance(&self, moid: &str, miid: &str) -> Result<(), StateError> {
        self.commit(&Record {
            remove: vec![(moid.to_owned(), miid.to_owned())],
            ..Record::default()
        })
    }

    /// Every saved instance, ordered by MOID and MIID, and the agent state:
    /// the journal read once.
    pub fn load_state(&self) -> Result<(Vec<SavedInstance>, AgentState), StateError> {
        let state = self.load()?;
        Ok((state.instances.into_values().collect(), state.agent))
    }

    /// Every saved instance, ordered by MOID and MIID.
    pub fn load_instances(&self) -> Result<Vec<SavedInstance>, StateError> {
        Ok(self.load()?.instances.into_values().collect())
    }

    pub fn agent_state(&self) -> Result<AgentState, StateError> {
        Ok(self.load()?.agent)
    }

    pub fn save_agent_state(&self, state: &AgentState) -> Result<(), StateError> {
        self.commit(&Record {
            agent: Some(state.clone()),
            ..Record::default()
        })
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

/// The snapshot as written, borrowing the state.
#[derive(Serialize)]
struct SnapshotRef<'a> {
    instances: &'a [&'a SavedInstance],
    agent: &'a AgentState,
}

/// JSON of state the agent made: maps with string keys and plain values,
/// which serde_json always writes.
fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// The whole record framed at `at` in `bytes` and where the next starts;
/// `None` at the end or at a torn or damaged record.
fn read_record(bytes: &[u8], at: usize) -> Option<(Record, usize)> {
    let header = bytes.get(at..at + FRAME)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let sum = u64::from_le_bytes(header[4..].try_into().ok()?);
    let json = bytes.get(at + FRAME..at + FRAME + len)?;
    if fnv1a(json) != sum {
        return None;
    }
    let record = serde_json::from_slice(json).ok()?;
    Some((record, at + FRAME + len))
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
        std::fs::write(tmp.path().join("state.json"), "{").unwrap();
        assert!(matches!(
            state.agent_state(),
            Err(StateError::Corrupt { .. })
        ));
    }

    fn saved(miid: &str, n: i64) -> SavedInstance {
        SavedInstance {
            moid: "urn:test:1".into(),
            miid: miid.into(),
            owner: Owner::Device,
            changes: 1,
            data: serde_json::json!({ "N": n }),
        }
    }

    #[test]
    fn a_torn_record_at_the_end_is_dropped_and_cut_off() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        state.save_instance(&saved("a", 1)).unwrap();
        state.save_instance(&saved("b", 2)).unwrap();
        let journal = tmp.path().join("journal");
        let whole = std::fs::metadata(&journal).unwrap().len();
        // A crash in the middle of the third append: its frame and half of
        // its JSON are on disk.
        let record = to_json(&Record {
            put: vec![saved("c", 3)],
            ..Record::default()
        });
        let mut torn = (record.len() as u32).to_le_bytes().to_vec();
        torn.extend_from_slice(&fnv1a(&record).to_le_bytes());
        torn.extend_from_slice(&record[..record.len() / 2]);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&journal)
            .unwrap();
        f.write_all(&torn).unwrap();
        drop(f);
        let miids: Vec<String> = state
            .load_instances()
            .unwrap()
            .into_iter()
            .map(|s| s.miid)
            .collect();
        assert_eq!(miids, ["a", "b"]);
        assert_eq!(std::fs::metadata(&journal).unwrap().len(), whole);
        // The next command follows the last whole one.
        state.save_instance(&saved("d", 4)).unwrap();
        assert_eq!(state.load_instances().unwrap().len(), 3);
    }

    #[test]
    fn a_damaged_record_ends_the_replay_there() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        state.save_instance(&saved("a", 1)).unwrap();
        let journal = tmp.path().join("journal");
        let first = std::fs::metadata(&journal).unwrap().len() as usize;
        state.save_instance(&saved("b", 2)).unwrap();
        let mut bytes = std::fs::read(&journal).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0x20;
        std::fs::write(&journal, &bytes).unwrap();
        let loaded = state.load_instances().unwrap();
        assert_eq!(loaded, [saved("a", 1)]);
        assert_eq!(std::fs::metadata(&journal).unwrap().len() as usize, first);
    }

    #[test]
    fn one_record_holds_a_whole_command_and_replays_alike_after_compaction() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let agent = AgentState {
            defaults: vec![("urn:x".into(), "https://r/x".into())],
            ..AgentState::default()
        };
        state
            .commit(&Record {
                put: vec![saved("a", 1), saved("b", 2)],
                remove: Vec::new(),
                agent: Some(agent.clone()),
            })
            .unwrap();
        state
            .commit(&Record {
                put: vec![saved("a", 10)],
                remove: vec![("urn:test:1".into(), "b".into())],
                agent: None,
            })
            .unwrap();
        let expect = vec![saved("a", 10)];
        assert_eq!(state.load_instances().unwrap(), expect);
        assert_eq!(state.agent_state().unwrap(), agent);
        let journal = tmp.path().join("journal");
        let old_journal = std::fs::read(&journal).unwrap();
        state.compact().unwrap();
        assert_eq!(std::fs::metadata(&journal).unwrap().len(), 0);
        assert_eq!(state.load_instances().unwrap(), expect);
        // A crash after the snapshot and before the journal was emptied:
        // the old journal replays over the new snapshot to the same state.
        std::fs::write(&journal, &old_journal).unwrap();
        assert_eq!(state.load_instances().unwrap(), expect);
        assert_eq!(state.agent_state().unwrap(), agent);
    }

    #[test]
    fn compaction_keeps_what_the_directory_holds() {
        // An instance the device could not restore (its MO is not in this
        // build) is on disk only: compaction reads the disk, so it stays.
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let foreign = SavedInstance {
            moid: "urn:example:mo:gone:1.0".into(),
            ..saved("g", 1)
        };
        state.save_instance(&foreign).unwrap();
        state.save_instance(&saved("a", 2)).unwrap();
        state.compact().unwrap();
        let (instances, _) = state.load_state().unwrap();
        assert!(instances.contains(&foreign), "{instances:?}");
        assert_eq!(instances.len(), 2);
    }

    #[test]
    fn the_former_layout_becomes_a_snapshot_and_leftovers_go() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("tree")).unwrap();
        std::fs::write(
            tmp.path().join("tree/urn_test_1__a-0.json"),
            serde_json::to_vec(&saved("a", 1)).unwrap(),
        )
        .unwrap();
        let agent = AgentState {
            bootstrap_pending: vec!["s1".into()],
            ..AgentState::default()
        };
        std::fs::write(
            tmp.path().join("agent.json"),
            serde_json::to_vec(&agent).unwrap(),
        )
        .unwrap();
        std::fs::write(tmp.path().join("state.tmp"), "half").unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        assert_eq!(state.load_instances().unwrap(), [saved("a", 1)]);
        assert_eq!(state.agent_state().unwrap(), agent);
        assert!(!tmp.path().join("tree").exists());
        assert!(!tmp.path().join("agent.json").exists());
        assert!(!tmp.path().join("state.tmp").exists());
    }

    #[test]
    fn machine_dev_id_is_a_uuid_urn() {
        let id = machine_dev_id();
        assert!(id.starts_with("UUID:") && id.len() == 41, "{id}");
    }
}
