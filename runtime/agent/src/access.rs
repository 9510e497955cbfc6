//! Who may do what (spec 6.3.1.1, 10, 12.2, 12.3, 13.2; docs/architecture.md "Who
//! owns what"). The agent asks here before a command touches any node.
//!
//! The device's DACMO instances ARE the rule set (12.3): the DACMO instance
//! named after an MOID holds, under `<MIID>/<x>`, the rules (`Path`,
//! `Permissions/<x>/{MAID, AR}`) of each instance of that MOID, and every
//! rights check reads them (`dm_core::effective_rights`: the longest Path
//! covering the node decides, `*` MAIDs match everyone).
//!
//! How ownership appears: as ordinary DACMO entries. When an instance is
//! created the agent writes its rule `<MOID>/<MIID>/1` (no Path, i.e.
//! "/") with one permission `1`:
//! - created by a DM Server (HGET, bootstrap): `serverid:<SrvID>`, AR 15 —
//!   the creator's exclusive full permissions (10);
//! - created by a local application: `appid:<id>`, AR 15;
//! - created by the device (DevInfo, SessionInfo, a plugin's built-in
//!   instances): `*`, AR 7 — the device policy of docs/architecture.md (Read|Write|
//!   Exec for every server whose Perm list covers the MOID; nobody but the
//!   device holds Delegate).
//!
//! A server that holds Delegate changes them by HGET/DELETE on DACMO
//! nodes (`Device::check_delegation`). An instance without a DACMO node (a
//! build without DACMO, or a crash between saving the instance and its
//! rules, which the next start repairs) is judged by the same entries
//! computed from its owner, so the two never disagree.
//!
//! Independent of DACMO, a server never sees or touches an MOID outside its
//! DMAcc Perm list (`*` covers all): "SHALL NOT manage Management Objects
//! whose MOID is not provisioned at the bootstrap" (10).
//!
//! DACMO's own nodes are not described by rules about themselves: a
//! principal reads the rules of the instances it may see, and may change
//! (Write) them only where it holds Delegate on the target instance; which
//! changes exactly is checked on the difference the command makes.

use dm_core::acl::entries_from_dacmo;
use dm_core::UriName;
use dm_core::{
    effective_rights_by, AclEntry, Authority, Maid, ManagementObject, NodeData, NodeName, Rights,
    Value,
};

use crate::tree::{Instance, Owner, Registry};

/// The DMAcc MOID (spec 12.2).
pub const DMACC_MOID: &str = "urn:oma:mo:oma-dm-dmacc:1.2";

/// The DACMO MOID (spec 12.3).
pub const DACMO_MOID: &str = "urn:oma:mo:oma-dm-dacmo:1.0";

/// The name of the rule and permission the agent writes for the owner.
pub(crate) const OWNER_RULE: &str = "1";

/// A DM Server account, read from a DMAcc instance (12.2). Its Debug
/// output leaves the Auth/Noti credentials out: secrets are never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerAccount {
    pub miid: String,
    pub server_id: String,
    pub server_uri: String,
    /// `Perm/<x>/MOID` values; `*` covers every MOID.
    pub moids: Vec<String>,
    /// Auth/Noti Secret and Data, when provisioned (5.2.1.2).
    pub noti_secret: Option<Vec<u8>>,
    pub noti_data: Option<Vec<u8>>,
}

impl std::fmt::Debug for ServerAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |v: &Option<Vec<u8>>| v.as_ref().map(|_| "[redacted]");
        f.debug_struct("ServerAccount")
            .field("miid", &self.miid)
            .field("server_id", &self.server_id)
            .field("server_uri", &self.server_uri)
            .field("moids", &self.moids)
            .field("noti_secret", &shown(&self.noti_secret))
            .field("noti_data", &shown(&self.noti_data))
            .finish()
    }
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
                    NodeData::Interior(c) => c.iter().find_map(|(n, d)| match (&**n, d) {
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
        .filter(|(_, i)| i.mo().schema().moid == DMACC_MOID)
        .filter_map(|(_, i)| ServerAccount::of(i.miid(), i.mo()))
        .collect()
}

/// The authority a command runs for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A DM Server, with its account.
    Server(ServerAccount),
    /// A local application (`appid:<id>` in DACMO, 12.3): only what DACMO
    /// grants it, through the local API.
    App(String),
    /// The device itself or a test harness: no restriction.
    Local,
}

impl Principal {
    /// True when `maid` names this principal: `*`, or its own authority
    /// (compared without building an [`Authority`]: asked for every rule
    /// of every node a command touches).
    pub(crate) fn is_named_by(&self, maid: &Maid) -> bool {
        match (maid, self) {
            (Maid::Any, Principal::Server(_) | Principal::App(_)) => true,
            (Maid::Authority(Authority::Server(id)), Principal::Server(a)) => *id == a.server_id,
            (Maid::Authority(Authority::App(id)), Principal::App(app)) => id == app,
            _ => false,
        }
    }

    /// The Management Authority DACMO names this principal by.
    pub fn authority(&self) -> Option<Authority> {
        match self {
            Principal::Server(a) => Some(Authority::Server(a.server_id.clone())),
            Principal::App(id) => Some(Authority::App(id.clone())),
            Principal::Local => None,
        }
    }

    /// True when the MOID is one this principal may manage at all: a
    /// server's Perm list covers it (DACMO itself is open to every server,
    /// which reads there only the rules of what it may see).
    pub fn may_manage(&self, moid: &str) -> bool {
        match self {
            Principal::Server(a) => moid == DACMO_MOID || a.covers(moid),
            Principal::App(_) | Principal::Local => true,
        }
    }
}

/// The entries ownership gives an instance (module comment).
pub(crate) fn owner_entries(owner: &Owner) -> Vec<AclEntry> {
    match owner {
        Owner::Server(id) => vec![AclEntry::owner(Authority::Server(id.clone()))],
        Owner::App(id) => vec![AclEntry::owner(Authority::App(id.clone()))],
        Owner::Device => vec![AclEntry {
            path: Vec::new(),
            maid: Maid::Any,
            rights: Rights::READ | Rights::WRITE | Rights::EXECUTE,
        }],
    }
}

/// The DACMO `<MIID>` node data for entries given at "/" only, as the
/// runtime writes them for a new instance: one rule, one permission each.
pub(crate) fn rules_data(entries: &[AclEntry]) -> NodeData {
    let permissions = entries
        .iter()
        .enumerate()
        .map(|(n, e)| {
            (
                NodeName::Owned((n + 1).to_string()),
                NodeData::Interior(vec![
                    (
                        "MAID".into(),
                        NodeData::Leaf(Value::Chr(e.maid.to_string())),
                    ),
                    (
                        "AR".into(),
                        NodeData::Leaf(Value::Int(i64::from(e.rights.bits()))),
                    ),
                ]),
            )
        })
        .collect();
    NodeData::Interior(vec![(
        OWNER_RULE.into(),
        NodeData::Interior(vec![(
            "Permissions".into(),
            NodeData::Interior(permissions),
        )]),
    )])
}

/// The index of the DACMO instance about `moid`, if there is one.
pub(crate) fn dacmo_of(registry: &Registry, moid: &str) -> Option<usize> {
    registry.find(DACMO_MOID, moid)
}

/// The rules of one instance: its DACMO node, else those of its owner.
/// DACMO data that cannot be read as rules (the DACMO MO refuses to store
/// such data, so only a damaged state file) grants nothing.
pub(crate) fn entries_of(registry: &Registry, instance: &Instance) -> Vec<AclEntry> {
    let moid = instance.mo().schema().moid;
    let node = dacmo_of(registry, moid)
        .and_then(|d| registry.instance(d))
        .and_then(|d| d.mo().get(&[instance.miid()]).ok());
    match node {
        Some(data) => entries_from_dacmo(&data).unwrap_or_default(),
        None => owner_entries(instance.owner()),
    }
}

/// What one principal may do in one MO instance: built once per command
/// and instance, then asked per node.
#[derive(Debug, Clone)]
pub(crate) enum Access<'p> {
    /// The device itself: no restriction.
    All,
    /// No right anywhere (an MOID outside the server's Perm list).
    Nothing,
    /// The instance's rules, for this principal (never `Local`).
    Rules {
        principal: &'p Principal,
        entries: &'p [AclEntry],
    },
    /// A DACMO instance: `root` on its root, and on the `<MIID>` sub-tree of
    /// each target instance the rights listed (Read where the target is
    /// visible, Write where the principal holds Delegate on it).
    Dacmo {
        root: Rights,
        targets: Vec<(String, Rights)>,
    },
}

impl<'p> Access<'p> {
    /// The access of `principal` to the instance at `index`.
    pub(crate) fn of(principal: &'p Principal, registry: &'p Registry, index: usize) -> Access<'p> {
        let Some(instance) = registry.instance(index) else {
            return Access::Nothing;
        };
        if matches!(principal, Principal::Local) {
            return Access::All;
        }
        let moid = instance.mo().schema().moid;
        if !principal.may_manage(moid) {
            return Access::Nothing;
        }
        if moid != DACMO_MOID {
            return Access::Rules {
                principal,
                entries: registry.rules(index, || entries_of(registry, instance)),
            };
        }
        // The DACMO instance named after the target MOID.
        let target_moid = instance.miid();
        if !principal.may_manage(target_moid) {
            return Access::Nothing;
        }
        let targets = registry
            .instances()
            .filter(|(_, i)| i.mo().schema().moid == target_moid)
            .map(|(n, i)| {
                let a = Access::of(principal, registry, n);
                let mut r = Rights::NONE;
                if a.can_see() {
                    r |= Rights::READ;
                }
                if a.holds(Rights::DELEGATE) {
                    r |= Rights::WRITE;
                }
                (i.miid().to_owned(), r)
            })
            .collect();
        Access::Dacmo {
            root: Rights::READ,
            targets,
        }
    }

    /// Rights on the node at `path` (names from the instance root).
    pub(crate) fn rights<S: AsRef<str>>(&self, path: &[S]) -> Rights {
        match self {
            Access::All => Rights::ALL,
            Access::Nothing => Rights::NONE,
            Access::Rules { principal, entries } => {
                effective_rights_by(entries, |m| principal.is_named_by(m), path)
            }
            Access::Dacmo { root, targets } => match path.first() {
                None => *root,
                Some(miid) => targets
                    .iter()
                    .find(|(m, _)| m == miid.as_ref())
                    .map_or(Rights::NONE, |(_, r)| *r),
            },
        }
    }

    /// True when the principal holds `right` somewhere in the instance.
    pub(crate) fn holds(&self, right: Rights) -> bool {
        match self {
            Access::All => true,
            Access::Nothing => false,
            Access::Rules { principal, entries } => entries
                .iter()
                .any(|e| principal.is_named_by(&e.maid) && e.rights.contains(right)),
            Access::Dacmo { root, targets } => {
                root.contains(right) || targets.iter().any(|(_, r)| r.contains(right))
            }
        }
    }

    /// True when the principal has some right on the instance or below
    /// its root: only then does it appear in MOS or in a wildcard's result.
    pub(crate) fn can_see(&self) -> bool {
        match self {
            Access::All => true,
            Access::Nothing => false,
            Access::Rules { principal, entries } => entries
                .iter()
                .any(|e| principal.is_named_by(&e.maid) && !e.rights.is_empty()),
            Access::Dacmo { root, .. } => !root.is_empty(),
        }
    }

    /// True when every node of the instance has the rights of its root, so
    /// a read needs no pruning.
    pub(crate) fn uniform(&self) -> bool {
        match self {
            Access::All | Access::Nothing => true,
            Access::Rules { entries, .. } => entries.iter().all(|e| e.path.is_empty()),
            Access::Dacmo { .. } => false,
        }
    }

    /// True when the principal holds `right` on the node at `path` and on
    /// every node of `data` below it (the data a command writes there, or
    /// the sub-tree it deletes).
    pub(crate) fn all_have<S: AsRef<str>>(
        &self,
        path: &[S],
        data: &NodeData,
        right: Rights,
    ) -> bool {
        if !self.rights(path).contains(right) {
            return false;
        }
        if self.uniform() {
            return true;
        }
        let mut here = owned_names(path);
        self.all_below(&mut here, data, right)
    }

    fn all_below(&self, here: &mut Vec<NodeName>, data: &NodeData, right: Rights) -> bool {
        let NodeData::Interior(children) = data else {
            return true;
        };
        children.iter().all(|(name, child)| {
            here.push(name.clone());
            let ok = self.rights(here).contains(right) && self.all_below(here, child, right);
            here.pop();
            ok
        })
    }

    /// Removes from `data` (the node at `path`) every descendant the
    /// principal may not Read, with its sub-tree: children without rights
    /// never leave the device inside a parent's result (6.3.1.1).
    pub(crate) fn prune(&self, path: &[&str], data: &mut NodeData) {
        if self.uniform() {
            return;
        }
        let mut here = owned_names(path);
        self.prune_below(&mut here, data);
    }

    fn prune_below(&self, here: &mut Vec<NodeName>, data: &mut NodeData) {
        let NodeData::Interior(children) = data else {
            return;
        };
        children.retain_mut(|(name, child)| {
            here.push(std::mem::take(name));
            let keep = self.rights(here).contains(Rights::READ);
            if keep {
                self.prune_below(here, child);
            }
            if let Some(n) = here.pop() {
                *name = n;
            }
            keep
        });
    }
}

/// The device's tree as one principal may see it, for ClientURI resolution
/// (6.1.2): wildcards and x-names only find instances it may see, and an
/// `nv` field only matches a leaf it may read (a node without Get or
/// without the Read right), so resolution never tells a value it could not
/// GET.
pub(crate) struct View<'a> {
    pub registry: &'a Registry,
    pub principal: &'a Principal,
}

impl dm_core::InstanceTree for View<'_> {
    type Instance = usize;

    fn instances(&self, moid: &str) -> Vec<(usize, String)> {
        self.registry
            .instances()
            .filter(|(n, i)| {
                i.mo().schema().moid == moid && can_see(self.principal, self.registry, *n)
            })
            .map(|(n, i)| (n, i.miid().to_owned()))
            .collect()
    }

    #[inline]
    fn for_each_instance<F: FnMut(usize, &str)>(&self, moid: &str, mut f: F) {
        self.registry.for_each_instance(moid, |n, miid| {
            if can_see(self.principal, self.registry, n) {
                f(n, miid);
            }
        });
    }

    #[inline]
    fn has_path(&self, instance: &usize, path: &[&str]) -> bool {
        dm_core::InstanceTree::has_path(self.registry, instance, path)
    }

    fn children(&self, instance: &usize, path: &[String]) -> Vec<String> {
        dm_core::InstanceTree::children(self.registry, instance, path)
    }

    fn has_child(&self, instance: &usize, path: &[String], name: &str) -> bool {
        dm_core::InstanceTree::has_child(self.registry, instance, path, name)
    }

    fn leaf_text(&self, instance: &usize, path: &[String]) -> Option<String> {
        crate::tree::with_refs(path, |refs| self.readable(*instance, refs))
            .then(|| dm_core::InstanceTree::leaf_text(self.registry, instance, path))
            .flatten()
    }

    fn leaf_text_is(
        &self,
        instance: &usize,
        base: &[String],
        below: &[UriName],
        text: &str,
    ) -> bool {
        self.registry
            .leaf_text_is_where(*instance, base, below, text, |path| {
                self.readable(*instance, path)
            })
    }
}

impl View<'_> {
    /// True when the node at `path` has the Get access type and the
    /// principal the Read right on it: what an `nv` field may compare.
    fn readable(&self, instance: usize, path: &[&str]) -> bool {
        self.registry.instance(instance).is_some_and(|i| {
            i.mo()
                .schema()
                .root
                .descendant(path)
                .is_some_and(|s| s.access.contains(dm_core::AccessType::GET))
        }) && Access::of(self.principal, self.registry, instance)
            .rights(path)
            .contains(Rights::READ)
    }
}

/// `path` as node names, to walk a read below it.
fn owned_names<S: AsRef<str>>(path: &[S]) -> Vec<NodeName> {
    path.iter()
        .map(|n| NodeName::Owned(n.as_ref().to_owned()))
        .collect()
}

/// Rights of `principal` on the node at `path` of the instance at `index`.
pub(crate) fn rights(
    principal: &Principal,
    registry: &Registry,
    index: usize,
    path: &[&str],
) -> Rights {
    Access::of(principal, registry, index).rights(path)
}

/// True when `principal` may see the instance at `index` (MOS, wildcards).
pub(crate) fn can_see(principal: &Principal, registry: &Registry, index: usize) -> bool {
    Access::of(principal, registry, index).can_see()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dm_core::effective_rights;

    #[test]
    fn maids_name_principals_as_authorities_do() {
        let server = |id: &str| {
            Principal::Server(ServerAccount {
                miid: id.into(),
                server_id: id.into(),
                server_uri: "https://dms.example/dm".into(),
                moids: vec!["*".into()],
                noti_secret: None,
                noti_data: None,
            })
        };
        let maids = [
            Maid::Any,
            Maid::Authority(Authority::Server("A".into())),
            Maid::Authority(Authority::Server("B".into())),
            Maid::Authority(Authority::App("A".into())),
        ];
        for principal in [
            server("A"),
            server("B"),
            Principal::App("A".into()),
            Principal::Local,
        ] {
            for maid in &maids {
                let expected = principal.authority().is_some_and(|a| maid.matches(&a));
                assert_eq!(
                    principal.is_named_by(maid),
                    expected,
                    "{principal:?} {maid}"
                );
            }
        }
    }

    #[test]
    fn an_accounts_debug_output_holds_no_secret() {
        let account = ServerAccount {
            miid: "dms1".into(),
            server_id: "dms1".into(),
            server_uri: "https://dms.example/dm".into(),
            moids: vec!["*".into()],
            noti_secret: Some(b"s3cret-bytes".to_vec()),
            noti_data: Some(b"auth-data".to_vec()),
        };
        let shown = format!("{account:?}");
        assert!(
            shown.contains("dms1") && shown.contains("[redacted]"),
            "{shown}"
        );
        assert!(
            !shown.contains("115, 51") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    #[test]
    fn ownership_is_written_as_dacmo_entries_that_read_back_the_same() {
        for owner in [
            Owner::Server("A".into()),
            Owner::App("com.example.app".into()),
            Owner::Device,
        ] {
            let entries = owner_entries(&owner);
            let read = entries_from_dacmo(&rules_data(&entries));
            assert_eq!(read.as_ref(), Ok(&entries), "{owner:?}");
        }
        let a = Authority::Server("A".into());
        let b = Authority::Server("B".into());
        let server = owner_entries(&Owner::Server("A".into()));
        assert_eq!(effective_rights(&server, &a, &["Name"]), Rights::ALL);
        assert_eq!(effective_rights(&server, &b, &["Name"]), Rights::NONE);
        // The device keeps Delegate on its own instances.
        let device = owner_entries(&Owner::Device);
        assert_eq!(
            effective_rights::<&str>(&device, &b, &[]),
            Rights::READ | Rights::WRITE | Rights::EXECUTE
        );
    }

    #[test]
    fn a_path_rule_prunes_what_it_denies_from_a_parent() {
        let b = Principal::Server(ServerAccount {
            miid: "B".into(),
            server_id: "B".into(),
            server_uri: "https://b.example/dm".into(),
            moids: vec!["*".into()],
            noti_secret: None,
            noti_data: None,
        });
        let entries = [
            AclEntry {
                path: Vec::new(),
                maid: Maid::Any,
                rights: Rights::READ,
            },
            AclEntry::owner(Authority::Server("A".into())),
            AclEntry {
                path: vec!["Auth".into()],
                maid: Maid::Authority(Authority::Server("A".into())),
                rights: Rights::ALL,
            },
        ];
        let access = Access::Rules {
            principal: &b,
            entries: &entries,
        };
        let leaf = || NodeData::Leaf(Value::Int(1));
        let mut data = NodeData::Interior(vec![
            ("Name".into(), leaf()),
            (
                "Auth".into(),
                NodeData::Interior(vec![("Secret".into(), leaf())]),
            ),
        ]);
        access.prune(&[], &mut data);
        assert_eq!(data.to_json().to_string(), r#"{"Name":1}"#);
        assert!(access.can_see());
        assert!(!access.holds(Rights::DELEGATE));
    }
}
