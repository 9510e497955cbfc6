//! Who may do what (spec 6.3.1.1, 10, 12.2, 12.3; ARCHITECTURE "Who owns
//! what"). The runtime asks here before a command touches any node.
//!
//! - A server never sees or touches an MOID outside its DMAcc Perm list
//!   (`*` covers all).
//! - An instance created by a server belongs to it: it alone gets every
//!   right (Read|Write|Exec|Delegate).
//! - An instance the device created grants Read|Write|Exec to every server
//!   whose Perm list covers its MOID; the device keeps Delegate.
//! - DACMO rules for the instance, where there are any, override both for
//!   the nodes their Path covers (longest Path wins, `*` MAIDs), evaluated
//!   by `dm_core::effective_rights`.

use dm_core::{effective_rights, AclEntry, Authority, ManagementObject, NodeData, Rights, Value};

use crate::tree::{Instance, Owner, Registry};

/// The DMAcc MOID (spec 12.2).
pub const DMACC_MOID: &str = "urn:oma:mo:oma-dm-dmacc:1.2";

/// A DM Server account, read from a DMAcc instance (12.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAccount {
    pub miid: String,
    pub server_id: String,
    pub server_uri: String,
    /// Perm/<x>/MOID values; `*` covers every MOID.
    pub moids: Vec<String>,
    /// Auth/Noti Secret and Data, when provisioned (5.2.1.2).
    pub noti_secret: Option<Vec<u8>>,
    pub noti_data: Option<Vec<u8>>,
}

impl ServerAccount {
    pub fn covers(&self, moid: &str) -> bool {
        self.moids.iter().any(|m| m == "*" || m == moid)
    }

    /// Reads the account of one DMAcc instance through the MO interface,
    /// so a DMAcc compiled in or behind the plugin ABI serves alike.
    pub fn of(miid: &str, mo: &dyn ManagementObject) -> Option<ServerAccount> {
        let text = |path: &[&str]| match mo.get(path) {
            Ok(NodeData::Leaf(Value::Chr(s))) => Some(s),
            _ => None,
        };
        let bytes = |path: &[&str]| match mo.get(path) {
            Ok(NodeData::Leaf(Value::Bin(b) | Value::B64(b))) => Some(b),
            _ => None,
        };
        let moids = match mo.get(&["Perm"]) {
            Ok(NodeData::Interior(groups)) => groups
                .iter()
                .filter_map(|(_, g)| match g {
                    NodeData::Interior(c) => c.iter().find_map(|(n, d)| match (n.as_str(), d) {
                        ("MOID", NodeData::Leaf(Value::Chr(m))) => Some(m.clone()),
                        _ => None,
                    }),
                    NodeData::Leaf(_) => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        Some(ServerAccount {
            miid: miid.to_owned(),
            server_id: text(&["SrvID"])?,
            server_uri: text(&["SrvURI"])?,
            moids,
            noti_secret: bytes(&["Auth", "Noti", "Secret"]),
            noti_data: bytes(&["Auth", "Noti", "Data"]),
        })
    }
}

/// Every DM Server account on the device, in registration order.
pub fn accounts(registry: &Registry) -> Vec<ServerAccount> {
    registry
        .instances()
        .filter(|(_, i)| i.mo.schema().moid == DMACC_MOID)
        .filter_map(|(_, i)| ServerAccount::of(&i.miid, i.mo.as_ref()))
        .collect()
}

/// The authority a command runs for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A DM Server, with its account.
    Server(ServerAccount),
    /// The device itself or a test harness: no restriction.
    Local,
}

/// Rights of `principal` on the node at `path` of `instance`. `acl` holds
/// the DACMO rules of this instance (empty when there are none).
pub fn rights(
    principal: &Principal,
    instance: &Instance,
    path: &[String],
    acl: &[AclEntry],
) -> Rights {
    let account = match principal {
        Principal::Local => return Rights::ALL,
        Principal::Server(a) => a,
    };
    if !account.covers(instance.mo.schema().moid) {
        return Rights::NONE;
    }
    let base = match &instance.owner {
        Owner::Server(owner) if *owner == account.server_id => Rights::ALL,
        Owner::Server(_) => Rights::NONE,
        Owner::Device => Rights::READ | Rights::WRITE | Rights::EXECUTE,
    };
    if acl.is_empty() {
        return base;
    }
    if !acl.iter().any(|e| e.covers(path)) {
        return base;
    }
    effective_rights(acl, &Authority::Server(account.server_id.clone()), path)
}

/// True when `principal` has some right on `instance` or below its root:
/// only then does it appear in MOS or in a wildcard's result.
pub fn can_see(principal: &Principal, instance: &Instance, acl: &[AclEntry]) -> bool {
    if !rights(principal, instance, &[], acl).is_empty() {
        return true;
    }
    match principal {
        Principal::Local => true,
        Principal::Server(a) => {
            a.covers(instance.mo.schema().moid)
                && acl.iter().any(|e| {
                    e.maid.matches(&Authority::Server(a.server_id.clone())) && !e.rights.is_empty()
                })
        }
    }
}
