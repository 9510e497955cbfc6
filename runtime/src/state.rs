//! What the device keeps in its `--state` directory.
//!
//! Each file is written whole to a temporary name, synced, then renamed over
//! the old one: a crash leaves the old or the new file, never a mix, and no
//! embedded database is needed for files this small.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use dm_core::{ClientUri, InstanceSelector, MoDataItem, PackageError};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// The DMAcc MOID (spec 12.2).
pub const DMACC_MOID: &str = "urn:oma:mo:oma-dm-dmacc:1.2";

/// Errors of the state directory and of bootstrap data.
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
    #[error("bootstrap {}: {source}", path.display())]
    BootstrapPackage { path: PathBuf, source: PackageError },
    #[error("bootstrap {}: item {index}: {reason}", path.display())]
    BootstrapItem {
        path: PathBuf,
        index: usize,
        reason: String,
    },
}

/// A DM Server account, as far as this build keeps one (spec 12.2 SrvID,
/// SrvURI, Name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub miid: String,
    pub server_id: String,
    pub server_uri: String,
    #[serde(default)]
    pub name: Option<String>,
    /// The next session to this server must carry BootstrapComplete (8).
    #[serde(default)]
    pub bootstrap_pending: bool,
}

/// The device's persistent state.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// Opens (creating when missing) the state directory.
    pub fn open(dir: &Path) -> Result<StateDir, StateError> {
        std::fs::create_dir_all(dir).map_err(|source| StateError::Io {
            path: dir.to_owned(),
            source,
        })?;
        Ok(StateDir {
            dir: dir.to_owned(),
        })
    }

    fn accounts_path(&self) -> PathBuf {
        self.dir.join("accounts.json")
    }

    pub fn accounts(&self) -> Result<Vec<Account>, StateError> {
        let path = self.accounts_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| StateError::Corrupt { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(StateError::Io { path, source }),
        }
    }

    pub fn save_accounts(&self, accounts: &[Account]) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(accounts).unwrap_or_default();
        write_atomic(&self.accounts_path(), &bytes)
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

    /// Applies a factory bootstrap file (spec 8.2, 8.5: a dmmo+json array).
    /// DMAcc instances become accounts; an account whose SrvID is already
    /// known is left as it is, so applying the same file again on every
    /// start changes nothing. Returns the SrvIDs newly added.
    pub fn apply_bootstrap(&self, file: &Path) -> Result<Vec<String>, StateError> {
        let bytes = std::fs::read(file).map_err(|source| StateError::Io {
            path: file.to_owned(),
            source,
        })?;
        let items =
            MoDataItem::parse_list(&bytes).map_err(|source| StateError::BootstrapPackage {
                path: file.to_owned(),
                source,
            })?;
        let mut accounts = self.accounts()?;
        let mut added = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let bad = |reason: String| StateError::BootstrapItem {
                path: file.to_owned(),
                index,
                reason,
            };
            let uri: ClientUri = item
                .client_uri
                .parse()
                .map_err(|e: dm_core::UriError| bad(e.to_string()))?;
            if uri.moid() != DMACC_MOID {
                // Other MOs are applied once the tree store exists.
                continue;
            }
            let (member, data) = match item.mo_data.iter().next() {
                Some((k, v)) if item.mo_data.len() == 1 => (k.clone(), v),
                _ => return Err(bad("MOData must hold exactly one DMAcc instance".into())),
            };
            let text = |key: &str| data.get(key).and_then(Json::as_str).map(str::to_owned);
            let server_id =
                text("SrvID").ok_or_else(|| bad("DMAcc instance has no SrvID".into()))?;
            let server_uri =
                text("SrvURI").ok_or_else(|| bad("DMAcc instance has no SrvURI".into()))?;
            if accounts.iter().any(|a| a.server_id == server_id) {
                continue;
            }
            // The client assigns MIIDs, keeping a suggested one when free.
            let suggested = match uri.instance() {
                InstanceSelector::Miid(m) => m.clone(),
                _ => member,
            };
            let mut miid = suggested.clone();
            let mut n = 2;
            while accounts.iter().any(|a| a.miid == miid) {
                miid = format!("{suggested}{n}");
                n += 1;
            }
            accounts.push(Account {
                miid,
                server_id: server_id.clone(),
                server_uri,
                name: text("Name"),
                bootstrap_pending: true,
            });
            added.push(server_id);
        }
        self.save_accounts(&accounts)?;
        Ok(added)
    }
}

/// Writes `bytes` to `path` so that a crash leaves the old or the new
/// content: temporary file, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let io = |source| StateError::Io {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
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

    fn bootstrap(dir: &Path, body: &str) -> PathBuf {
        let p = dir.join("bootstrap.json");
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn factory_bootstrap_is_idempotent() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(&tmp.path().join("state")).unwrap();
        let file = bootstrap(
            tmp.path(),
            r#"[{"ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2/dms1/", "MOData": {"dms1": {"SrvID": "S1", "SrvURI": "http://127.0.0.1:1/dm"}}}]"#,
        );
        assert_eq!(state.apply_bootstrap(&file).unwrap(), ["S1"]);
        assert_eq!(state.apply_bootstrap(&file).unwrap(), Vec::<String>::new());
        let accounts = state.accounts().unwrap();
        assert_eq!(accounts.len(), 1);
        assert_eq!(
            (accounts[0].miid.as_str(), accounts[0].bootstrap_pending),
            ("dms1", true)
        );
    }

    #[test]
    fn bad_bootstrap_names_the_item_and_keeps_state() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let file = bootstrap(
            tmp.path(),
            r#"[{"ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2//", "MOData": {"a": {"SrvURI": "http://x/"}}}]"#,
        );
        let e = state.apply_bootstrap(&file).unwrap_err().to_string();
        assert!(e.contains("item 0") && e.contains("SrvID"), "{e}");
        assert!(state.accounts().unwrap().is_empty());
        let file = bootstrap(tmp.path(), "[{");
        assert!(matches!(
            state.apply_bootstrap(&file),
            Err(StateError::BootstrapPackage { .. })
        ));
    }

    #[test]
    fn machine_dev_id_is_a_uuid_urn() {
        let id = machine_dev_id();
        assert!(id.starts_with("UUID:") && id.len() == 41, "{id}");
    }
}
