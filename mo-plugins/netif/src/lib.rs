//! The host's network interfaces as an MO (`urn:omadm-rs:mo:netif:1.0`,
//! `ddf/netif.ddf`): this project's example of an MO that owns its data.
//! Nothing of it is stored: every read lists `/sys/class/net` and reads
//! each interface's state and counters there, so a GET returns the host's
//! current values and an interface that appears is listed at the next
//! read.

mod generated {
    include!(concat!(env!("OUT_DIR"), "/netif.rs"));
}

use std::path::{Path, PathBuf};

use dm_core::{MoError, NodeMap};

pub use generated::NetIf;
use generated::{NetIfBehaviour, NetIfInterfaces, NetIfInterfacesInterface, NetIfLive};

/// Where the kernel's network interfaces are (`/sys/class/net`, or
/// another directory laid out the same way, for tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysfs(PathBuf);

impl Default for Sysfs {
    fn default() -> Sysfs {
        Sysfs(PathBuf::from("/sys/class/net"))
    }
}

impl Sysfs {
    pub fn at(dir: impl Into<PathBuf>) -> Sysfs {
        Sysfs(dir.into())
    }

    fn read(&self, iface: &str, file: &str) -> Option<String> {
        std::fs::read_to_string(self.0.join(iface).join(file))
            .ok()
            .map(|s| s.trim().to_owned())
    }

    fn number(&self, iface: &str, file: &str) -> i64 {
        self.read(iface, file)
            .and_then(|s| s.parse::<u64>().ok())
            // int is 64-bit signed (spec 7.2.1.4); counters past it saturate.
            .map_or(0, |n| i64::try_from(n).unwrap_or(i64::MAX))
    }

    fn interface(&self, name: &str) -> NetIfInterfacesInterface {
        NetIfInterfacesInterface {
            oper_state: self
                .read(name, "operstate")
                .unwrap_or_else(|| "unknown".into()),
            mtu: self.number(name, "mtu"),
            address: self.read(name, "address").filter(|a| !a.is_empty()),
            rx_bytes: self.number(name, "statistics/rx_bytes"),
            tx_bytes: self.number(name, "statistics/tx_bytes"),
        }
    }

    /// Every interface, by name, as the host reports it now.
    fn interfaces(&self) -> Result<Vec<(String, NetIfInterfacesInterface)>, MoError> {
        let entries = std::fs::read_dir(&self.0)
            .map_err(|e| MoError::Failed(format!("{}: {e}", self.0.display())))?;
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            // A name that is no node name is not listed (a ClientURI could
            // not address it).
            .filter(|n| dm_core::is_node_name(n))
            .collect();
        names.sort();
        Ok(names
            .into_iter()
            .map(|n| {
                let i = self.interface(&n);
                (n, i)
            })
            .collect())
    }

    /// The directory read.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl NetIf {
    /// The host's interfaces, read from `sysfs`.
    pub fn host(sysfs: Sysfs) -> NetIf {
        let mut mo = NetIf::with_required();
        mo.sysfs = sysfs;
        mo
    }
}

impl NetIfLive for NetIf {
    fn read_interfaces(&self) -> Result<NetIfInterfaces, MoError> {
        let mut map = NodeMap::new();
        for (name, iface) in self.sysfs.interfaces()? {
            map.insert(name, iface)
                .map_err(|e| MoError::Failed(e.to_string()))?;
        }
        Ok(NetIfInterfaces { interface: map })
    }
}

// Nothing to execute, nothing to write: the host changes by itself.
impl NetIfBehaviour for NetIf {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use dm_core::{ManagementObject, NodeData, Value};

    fn iface(root: &Path, name: &str, rx: u64) {
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("statistics")).unwrap();
        std::fs::write(dir.join("operstate"), "up\n").unwrap();
        std::fs::write(dir.join("mtu"), "1500\n").unwrap();
        std::fs::write(dir.join("address"), "02:00:00:00:00:01\n").unwrap();
        std::fs::write(dir.join("statistics/rx_bytes"), format!("{rx}\n")).unwrap();
        std::fs::write(dir.join("statistics/tx_bytes"), "7\n").unwrap();
    }

    #[test]
    fn every_read_asks_the_host() {
        let tmp = tempfile::tempdir().unwrap();
        iface(tmp.path(), "eth9", 100);
        let mo = NetIf::host(Sysfs::at(tmp.path()));
        assert!(mo.owns_data(), "nothing of it is stored");
        let rx = |mo: &NetIf| mo.get(&["Interfaces", "eth9", "RxBytes"]).unwrap();
        assert_eq!(rx(&mo), NodeData::Leaf(Value::Int(100)));
        // The host's counter moves: the next read sees it.
        iface(tmp.path(), "eth9", 250);
        assert_eq!(rx(&mo), NodeData::Leaf(Value::Int(250)));
        // An interface that appears is listed, and addressable.
        let dyn_mo: &dyn ManagementObject = &mo;
        assert!(!dyn_mo.contains(&["Interfaces", "wlan7"]));
        iface(tmp.path(), "wlan7", 1);
        assert!(dyn_mo.contains(&["Interfaces", "wlan7"]));
        let state = mo.get(&["Interfaces", "wlan7", "OperState"]).unwrap();
        assert_eq!(state, NodeData::Leaf(Value::Chr("up".into())));
        // The host gone: an error (500), not stale data.
        let gone = NetIf::host(Sysfs::at(tmp.path().join("nothing")));
        let e = gone.get(&["Interfaces"]).unwrap_err();
        assert_eq!(e.status(), dm_core::StatusCode::INTERNAL_ERROR);
    }
}
