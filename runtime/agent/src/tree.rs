//! The device's MO instances and ClientURI resolution (spec 6.1.2).

mod undo;

use std::sync::OnceLock;

use dm_core::{
    AclEntry, CacheValidator, ClientUri, InstanceTree, ManagementObject, MoError, MoNode, MoSchema,
    NodeData, NodeSchema, ResolveError, StatusCode, UriName,
};

pub(crate) use undo::Undo;

/// Who an MO instance belongs to (spec 10; docs/architecture.md "Who owns what").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// Created by the device itself (DevInfo, a plugin's built-in ones).
    Device,
    /// Created by the DM Server with this SrvID (bootstrap, HGET).
    Server(String),
    /// Created by the local application with this id (local API, 10).
    App(String),
}

/// One MO instance held by the device.
///
/// Its fields are private and only [`Registry`] changes them, so that the
/// caches it keeps (cache validator, access rules) are dropped by the very
/// methods that change what they were made from.
pub struct Instance {
    miid: String,
    mo: Box<dyn ManagementObject>,
    owner: Owner,
    /// Kept in the state directory; false for data the device recomputes
    /// at every start (DevInfo, SessionInfo).
    persistent: bool,
    /// The registry's change clock at this instance's last change: the
    /// input of its cache validator (spec 11).
    /// Only the registry sets it ([`Registry::touch`]), so that no change
    /// can reuse a value.
    changes: u64,
    /// The validator for `changes`, made at the first read that asks for it
    /// and dropped with every change of `changes`. The MIID and the MOID,
    /// its other inputs, are an instance's for its whole life (neither has
    /// a setter).
    cache_validator: OnceLock<CacheValidator>,
    /// The instance's access rules (`access::entries_of`: DACMO data read
    /// and parsed), kept from the first command that needs them until the
    /// registry next changes. Every `&mut` method of the registry drops
    /// them all (a DACMO change touches other instances' rules), and
    /// nothing changes an instance without one, so they are never stale.
    rules: OnceLock<Box<[AclEntry]>>,
    /// The MO holds its change reporter (`Registry::attach_reporters`).
    attached: bool,
}

impl Instance {
    fn new(
        miid: String,
        mo: Box<dyn ManagementObject>,
        owner: Owner,
        persistent: bool,
        changes: u64,
    ) -> Instance {
        Instance {
            miid,
            mo,
            owner,
            persistent,
            changes,
            cache_validator: OnceLock::new(),
            rules: OnceLock::new(),
            attached: false,
        }
    }

    /// The instance's MIID, fixed for its whole life.
    pub fn miid(&self) -> &str {
        &self.miid
    }

    /// The MO that holds the instance's data.
    pub fn mo(&self) -> &dyn ManagementObject {
        self.mo.as_ref()
    }

    /// Who the instance belongs to.
    pub fn owner(&self) -> &Owner {
        &self.owner
    }

    /// True when the instance is kept in the state directory.
    pub fn persistent(&self) -> bool {
        self.persistent
    }

    /// The change clock value of this instance's last change.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    fn set_changes(&mut self, changes: u64) {
        self.changes = changes;
        self.cache_validator = OnceLock::new();
    }

    /// The instance's cache validator (spec 11.1): it changes with every
    /// change to the instance.
    pub fn cache_validator(&self) -> &CacheValidator {
        self.cache_validator.get_or_init(|| {
            CacheValidator::from_change_counter(self.mo.schema().moid, &self.miid, self.changes)
        })
    }
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("moid", &self.mo.schema().moid)
            .field("miid", &self.miid)
            .field("owner", &self.owner)
            .finish()
    }
}

/// Makes an instance called `miid` from root data.
pub type CreateFn =
    Box<dyn Fn(&str, &NodeData) -> Result<Box<dyn ManagementObject>, MoError> + Send + Sync>;

/// Makes new instances of one MO from MO data (HGET without ClientURI,
/// bootstrap, restoring saved state).
pub struct Factory {
    pub schema: &'static MoSchema,
    pub create: CreateFn,
    pub persistent: bool,
}

impl std::fmt::Debug for Factory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Factory")
            .field("moid", &self.schema.moid)
            .finish()
    }
}

impl Factory {
    /// The factory of a derived MO type.
    pub fn of<T: ManagementObject + MoNode>(
        schema: &'static MoSchema,
        persistent: bool,
    ) -> Factory {
        Factory {
            schema,
            create: Box::new(|_, data| {
                Ok(Box::new(T::from_node(data)?) as Box<dyn ManagementObject>)
            }),
            persistent,
        }
    }
}

/// A node that a ClientURI resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Index of the instance in the registry.
    pub instance: usize,
    /// Path from the instance root.
    pub path: Vec<String>,
}

/// A node a command touches (spec 6.1.2), as the device's commands hold
/// it: [`Resolved`], with its names lent by the ClientURI when they are
/// the URI's own (a path of real names, nearly every command's), so that
/// resolving one copies nothing.
pub(crate) type Target<'u> = dm_core::resolve::Target<'u, usize>;

/// The nodes one ClientURI resolves to: nearly always one, kept inline.
pub(crate) type ResolvedNodes<'u> = dm_core::resolve::Targets<'u, usize>;

pub(crate) use dm_core::resolve::NodePath;

/// Every MO instance on the device, in registration order.
#[derive(Debug)]
pub struct Registry {
    instances: Vec<Instance>,
    factories: Vec<Factory>,
    /// Device-wide change clock (spec 11.1): every change to any instance
    /// takes the next value, so a validator never repeats for an instance,
    /// also across deletion and re-creation. It starts from the wall clock
    /// in microseconds rather than from a persisted counter: a restarted
    /// device then starts above every value the last run handed out (unless
    /// the clock went back or it made over a million changes a second), and
    /// every validator changes across a restart, which only costs a server
    /// one fresh read per instance.
    clock: u64,
    /// The open transaction's record, if one is open (`undo`).
    undo: Option<Vec<Undo>>,
    /// Where each instance stands, by MOID then MIID: `find` is asked per
    /// item of a large HGET, and a scan made that quadratic.
    by_key: std::collections::HashMap<&'static str, std::collections::HashMap<String, usize>>,
}

impl Default for Registry {
    fn default() -> Registry {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2));
        Registry {
            instances: Vec::new(),
            factories: Vec::new(),
            clock: now,
            undo: None,
            by_key: Default::default(),
        }
    }
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Records a change to the instance at `index`: its cache validator
    /// changes (spec 11.1).
    pub fn touch(&mut self, index: usize) {
        self.note_change(index);
        self.forget_rules();
        self.clock += 1;
        let clock = self.clock;
        if let Some(i) = self.instances.get_mut(index) {
            i.set_changes(clock);
        }
    }

    /// Gives the instance at `index` the change clock value it had when it
    /// was saved (its cache validator stays valid across restarts); 0, an
    /// unknown value, counts as a change now.
    pub fn restore_changes(&mut self, index: usize, changes: u64) {
        self.forget_rules();
        if changes == 0 {
            return self.touch(index);
        }
        self.clock = self.clock.max(changes);
        if let Some(i) = self.instances.get_mut(index) {
            i.set_changes(changes);
        }
    }

    /// Adds a device-owned instance under `miid`, unique per MOID.
    pub fn insert(&mut self, miid: impl Into<String>, mo: Box<dyn ManagementObject>) {
        self.insert_owned(miid, mo, Owner::Device, false);
    }

    /// Adds an instance with its owner; returns its index.
    pub fn insert_owned(
        &mut self,
        miid: impl Into<String>,
        mo: Box<dyn ManagementObject>,
        owner: Owner,
        persistent: bool,
    ) -> usize {
        self.forget_rules();
        let miid = miid.into();
        // An MO that owns its data keeps it on the device, not here.
        let persistent = persistent && !mo.owns_data();
        if let Some(old) = self.find(mo.schema().moid, &miid) {
            self.take_out(old);
        }
        self.clock += 1;
        let index = self.instances.len();
        self.by_key
            .entry(mo.schema().moid)
            .or_default()
            .insert(miid.clone(), index);
        self.instances
            .push(Instance::new(miid, mo, owner, persistent, self.clock));
        self.note_created(index);
        index
    }

    /// Registers how to make instances of an MO.
    pub fn add_factory(&mut self, factory: Factory) {
        self.forget_rules();
        self.factories
            .retain(|f| f.schema.moid != factory.schema.moid);
        self.factories.push(factory);
    }

    /// The factory for `moid`, if new instances of it can be made.
    pub fn factory(&self, moid: &str) -> Option<&Factory> {
        self.factories.iter().find(|f| f.schema.moid == moid)
    }

    /// The index of instance `miid` of `moid`.
    pub fn find(&self, moid: &str, miid: &str) -> Option<usize> {
        self.by_key.get(moid)?.get(miid).copied()
    }

    /// Rebuilds [`Registry::find`]'s index after instances moved.
    fn reindex(&mut self) {
        self.by_key.clear();
        for (n, i) in self.instances.iter().enumerate() {
            self.by_key
                .entry(i.mo.schema().moid)
                .or_default()
                .insert(i.miid.clone(), n);
        }
    }

    /// Every instance, in registration order.
    pub fn instances(&self) -> impl Iterator<Item = (usize, &Instance)> {
        self.instances.iter().enumerate()
    }

    /// An MIID for a new instance of `moid`: `suggested` when it is a free
    /// node name, else the first free `<base>N` (spec 5.3.1: the DM Client
    /// assigns MIIDs).
    pub fn free_miid(&self, moid: &str, suggested: Option<&str>) -> String {
        let base = suggested
            .filter(|s| dm_core::is_node_name(s))
            .unwrap_or("inst");
        if suggested.is_some_and(|s| s == base) && self.find(moid, base).is_none() {
            return base.to_owned();
        }
        (1..)
            .map(|n| format!("{base}{n}"))
            .find(|m| self.find(moid, m).is_none())
            .unwrap_or_else(|| base.to_owned())
    }

    /// Removes the instance at `index`; returns its MOID and MIID.
    pub fn remove(&mut self, index: usize) -> Option<(&'static str, String)> {
        self.forget_rules();
        self.take_out(index)
    }

    pub fn instance(&self, index: usize) -> Option<&Instance> {
        self.instances.get(index)
    }

    /// The MO of the instance at `index`, to change its data. Every
    /// instance's access rules are dropped (DACMO data is what they are
    /// read from); a change of data still needs [`Registry::touch`] for a
    /// new cache validator.
    pub fn mo_mut(&mut self, index: usize) -> Option<&mut dyn ManagementObject> {
        self.note_change(index);
        self.forget_rules();
        Some(self.instances.get_mut(index)?.mo.as_mut())
    }

    /// The MO at `index` for a call that changes no data the runtime keeps
    /// (committing to its device, handing it a handle): no undo record, no
    /// change of its cache validator.
    pub(crate) fn mo_mut_untracked(&mut self, index: usize) -> Option<&mut dyn ManagementObject> {
        Some(self.instances.get_mut(index)?.mo.as_mut())
    }

    /// Puts `mo` in place of the MO of the instance at `index` and returns
    /// the old one; as [`Registry::mo_mut`], the change needs a
    /// [`Registry::touch`].
    pub(crate) fn replace_mo(
        &mut self,
        index: usize,
        mo: Box<dyn ManagementObject>,
    ) -> Option<Box<dyn ManagementObject>> {
        self.note_change(index);
        self.forget_rules();
        let instance = self.instances.get_mut(index)?;
        // A new MO holds no reporter yet.
        instance.attached = false;
        Some(std::mem::replace(&mut instance.mo, mo))
    }

    /// Hands each instance that has none its change reporter
    /// (`MoHooks::attach`), made by `make` from its MOID and MIID.
    pub(crate) fn attach_reporters(
        &mut self,
        make: impl Fn(&'static str, &str) -> dm_core::ChangeReporter,
    ) {
        for i in self.instances.iter_mut().filter(|i| !i.attached) {
            i.attached = true;
            let reporter = make(i.mo.schema().moid, &i.miid);
            i.mo.attach(reporter);
        }
    }

    /// Gives the instance at `index` an owner and says whether it is kept
    /// in the state directory; the access rules go, since an owner's
    /// rights follow from who owns what.
    pub(crate) fn set_owner(&mut self, index: usize, owner: Owner, persistent: bool) {
        self.note_change(index);
        self.forget_rules();
        if let Some(i) = self.instances.get_mut(index) {
            i.owner = owner;
            i.persistent = persistent;
        }
    }

    /// The access rules of the instance at `index`, `compute`d on the first
    /// call after a change and shared from then on.
    pub(crate) fn rules(
        &self,
        index: usize,
        compute: impl FnOnce() -> Vec<AclEntry>,
    ) -> &[AclEntry] {
        let Some(cell) = self.instances.get(index).map(|i| &i.rules) else {
            return &[];
        };
        if let Some(rules) = cell.get() {
            return rules;
        }
        // Computed outside the cell: reading DACMO goes through the
        // registry. Two threads may both compute; either value is right.
        let _ = cell.set(compute().into_boxed_slice());
        cell.get().map_or(&[], |r| r)
    }

    fn forget_rules(&mut self) {
        for i in &mut self.instances {
            i.rules = OnceLock::new();
        }
    }

    /// The MOIDs served, each with who serves it (for plugin loading).
    pub fn served_moids(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for i in &self.instances {
            let moid = i.mo.schema().moid;
            if !out.iter().any(|(m, _)| m == moid) {
                out.push((moid.to_owned(), "a compiled-in MO".to_owned()));
            }
        }
        for f in &self.factories {
            if !out.iter().any(|(m, _)| m == f.schema.moid) {
                out.push((f.schema.moid.to_owned(), "a compiled-in MO".to_owned()));
            }
        }
        out
    }

    /// Every MO the device supports with the MIIDs of its instances, in
    /// registration order (the MOS array of spec 5.2.2).
    pub fn mos(&self) -> Vec<(&'static MoSchema, Vec<&str>)> {
        let mut out: Vec<(&'static MoSchema, Vec<&str>)> = Vec::new();
        for i in &self.instances {
            let schema = i.mo.schema();
            match out.iter_mut().find(|(s, _)| s.moid == schema.moid) {
                Some((_, miids)) => miids.push(&i.miid),
                None => out.push((schema, vec![&i.miid])),
            }
        }
        // Supported MOs without an instance yet (spec I.2 lists DCMO with
        // an empty MIID array).
        for f in &self.factories {
            if !out.iter().any(|(s, _)| s.moid == f.schema.moid) {
                out.push((f.schema, Vec::new()));
            }
        }
        out
    }

    /// Resolves a ClientURI to the nodes it addresses, following the two
    /// steps of spec 6.1.2 ([`dm_core::resolve`]). An URI that cannot be
    /// resolved answers 404, the status Appendix C gives for "the specified
    /// ClientURI was not found"; [`Registry::try_resolve`] says why.
    pub fn resolve(&self, uri: &ClientUri) -> Result<Vec<Resolved>, StatusCode> {
        self.try_resolve(uri).map_err(|e| e.status())
    }

    /// As [`Registry::resolve`], with the step of 6.1.2 that failed and why.
    pub fn try_resolve(&self, uri: &ClientUri) -> Result<Vec<Resolved>, ResolveError> {
        let nodes = dm_core::resolve::resolve(self, uri)?;
        Ok(nodes
            .into_iter()
            .map(|n| Resolved {
                instance: n.instance,
                path: n.path,
            })
            .collect())
    }

    /// The schema of a resolved node.
    pub fn schema_of(&self, r: &Resolved) -> Option<&'static NodeSchema> {
        self.schema_at(r.instance, r.path.iter().map(String::as_str))
    }

    /// The schema of the node at `names` below the root of instance
    /// `index`.
    pub(crate) fn schema_at<'n>(
        &self,
        index: usize,
        names: impl IntoIterator<Item = &'n str>,
    ) -> Option<&'static NodeSchema> {
        let mut node = &self.instances.get(index)?.mo.schema().root;
        for seg in names {
            node = node.child(seg)?;
        }
        Some(node)
    }

    /// [`InstanceTree::leaf_text_is`] for the leaf at `base` then `below`
    /// of instance `index`, when `allow` accepts its path (the principal's
    /// view asks its Get and Read check there): paths joined on the stack,
    /// the text compared in place.
    pub(crate) fn leaf_text_is_where(
        &self,
        index: usize,
        base: &[String],
        below: &[UriName],
        text: &str,
        allow: impl Fn(&[&str]) -> bool,
    ) -> bool {
        self.instances.get(index).is_some_and(|i| {
            with_joined_refs(base, below, None, |path| {
                allow(path) && leaf_has_text(&*i.mo, path, text)
            })
        })
    }
}

/// Paths up to this many names are handled on the stack.
pub(crate) const SHORT_PATH: usize = dm_core::resolve::SHORT_PATH;

/// Calls `f` with `path` as `&str`s, without a heap allocation for up to
/// [`SHORT_PATH`] names: every read and every resolution step needs a path
/// in this form.
/// A `Delete` for every node of `existing` (the node at `path`) that `new`
/// does not carry, found level by level where both are interior.
pub(crate) fn absent_from(
    existing: &NodeData,
    new: &NodeData,
    path: &mut Vec<String>,
    out: &mut Vec<dm_core::Change>,
) {
    let (NodeData::Interior(old), NodeData::Interior(new)) = (existing, new) else {
        return;
    };
    for (name, child) in old {
        path.push(name.to_string());
        match new.iter().find(|(n, _)| n == name) {
            Some((_, replacement)) => absent_from(child, replacement, path, out),
            None => out.push(dm_core::Change::Delete { path: path.clone() }),
        }
        path.pop();
    }
}

pub(crate) fn with_refs<R>(path: &[String], f: impl FnOnce(&[&str]) -> R) -> R {
    with_joined_refs::<&str, R>(path, &[], None, f)
}

/// [`with_refs`] of `base`, then `below`, then `last` (if any).
pub(crate) fn with_joined_refs<B: AsRef<str>, R>(
    base: &[String],
    below: &[B],
    last: Option<&str>,
    f: impl FnOnce(&[&str]) -> R,
) -> R {
    let names = base
        .iter()
        .map(String::as_str)
        .chain(below.iter().map(AsRef::as_ref))
        .chain(last);
    let len = base.len() + below.len() + usize::from(last.is_some());
    if len > SHORT_PATH {
        return f(&names.collect::<Vec<_>>());
    }
    let mut refs = [""; SHORT_PATH];
    for (slot, name) in refs.iter_mut().zip(names) {
        *slot = name;
    }
    f(&refs[..len])
}

/// True when the leaf at `path` of `mo` has the bare text `text` (what an
/// `nv` field compares), without copying a text value.
fn leaf_has_text(mo: &dyn ManagementObject, path: &[&str], text: &str) -> bool {
    match mo.get(path) {
        Ok(NodeData::Leaf(
            dm_core::Value::Chr(s)
            | dm_core::Value::Date(s)
            | dm_core::Value::Time(s)
            | dm_core::Value::Xml(s),
        )) => s == text,
        Ok(NodeData::Leaf(v)) => v.to_bare().1 == text.as_bytes(),
        _ => false,
    }
}

/// The registry as the tree ClientURI resolution walks: instances by
/// index, children and leaf values read through the MO.
impl InstanceTree for Registry {
    type Instance = usize;

    fn instances(&self, moid: &str) -> Vec<(usize, String)> {
        self.instances
            .iter()
            .enumerate()
            .filter(|(_, i)| i.mo.schema().moid == moid)
            .map(|(n, i)| (n, i.miid.clone()))
            .collect()
    }

    /// Reads only the child itself, not the whole parent: resolution asks
    /// this for every real-name segment of every command.
    fn has_child(&self, instance: &usize, path: &[String], name: &str) -> bool {
        let Some(i) = self.instances.get(*instance) else {
            return false;
        };
        with_joined_refs::<&str, _>(path, &[], Some(name), |refs| i.mo.contains(refs))
    }

    /// Walks the instances in place, without the list and MIID copies of
    /// `instances`: the resolver's fast path asks this for every command.
    #[inline]
    fn for_each_instance<F: FnMut(usize, &str)>(&self, moid: &str, mut f: F) {
        for (n, i) in self.instances.iter().enumerate() {
            if i.mo.schema().moid == moid {
                f(n, &i.miid);
            }
        }
    }

    /// Every prefix of `path`, as step 2 asks per segment, tested in place.
    #[inline]
    fn has_path(&self, instance: &usize, path: &[&str]) -> bool {
        self.instances
            .get(*instance)
            .is_some_and(|i| (1..=path.len()).all(|n| i.mo.contains(&path[..n])))
    }

    fn children(&self, instance: &usize, path: &[String]) -> Vec<String> {
        let Some(i) = self.instances.get(*instance) else {
            return Vec::new();
        };
        match with_refs(path, |refs| i.mo.get(refs)) {
            Ok(NodeData::Interior(children)) => {
                children.into_iter().map(|(n, _)| n.into_owned()).collect()
            }
            _ => Vec::new(),
        }
    }

    fn leaf_text_is(
        &self,
        instance: &usize,
        base: &[String],
        below: &[UriName],
        text: &str,
    ) -> bool {
        self.leaf_text_is_where(*instance, base, below, text, |_| true)
    }

    /// The leaf's bare text form (Appendix F), which `nv` values compare
    /// with; `None` for a value that is not text (bin that is not UTF-8).
    fn leaf_text(&self, instance: &usize, path: &[String]) -> Option<String> {
        let i = self.instances.get(*instance)?;
        match with_refs(path, |refs| i.mo.get(refs)) {
            Ok(NodeData::Leaf(v)) => String::from_utf8(v.to_bare().1).ok(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_as_refs_on_the_stack_and_beyond_it() {
        for len in [0, 1, SHORT_PATH - 1, SHORT_PATH, SHORT_PATH + 3] {
            let path: Vec<String> = (0..len).map(|i| format!("n{i}")).collect();
            let expected: Vec<&str> = path.iter().map(String::as_str).collect();
            with_refs(&path, |refs| assert_eq!(refs, expected.as_slice()));
            let mut longer = expected.clone();
            longer.push("last");
            with_joined_refs::<&str, _>(&path, &[], Some("last"), |refs| {
                assert_eq!(refs, longer.as_slice())
            });
            let mut twice = expected.clone();
            twice.extend(&expected);
            twice.push("last");
            with_joined_refs(&path, &path, Some("last"), |refs| {
                assert_eq!(refs, twice.as_slice())
            });
        }
    }

    #[test]
    fn contains_agrees_with_get_on_every_node_and_beyond() {
        fn walk(mo: &dyn ManagementObject, path: &mut Vec<String>, checked: &mut usize) {
            let refs: Vec<&str> = path.iter().map(String::as_str).collect();
            let data = mo.get(&refs);
            assert_eq!(mo.contains(&refs), data.is_ok(), "{refs:?}");
            *checked += 1;
            for extra in ["NoSuchNode", "x"] {
                let mut beyond = refs.clone();
                beyond.push(extra);
                assert_eq!(mo.contains(&beyond), mo.get(&beyond).is_ok(), "{beyond:?}");
            }
            if let Ok(NodeData::Interior(children)) = data {
                for (name, _) in children {
                    path.push(name.into_owned());
                    walk(mo, path, checked);
                    path.pop();
                }
            }
        }
        let registry = crate::standard_registry("IMEI:1");
        let mut checked = 0;
        for (_, instance) in registry.instances() {
            walk(instance.mo.as_ref(), &mut Vec::new(), &mut checked);
        }
        // DMAcc: named and un-named (Perm/<x>) interior nodes, binary leaves.
        let factory = registry
            .factory(crate::access::DMACC_MOID)
            .expect("DMAcc is compiled in");
        let json = serde_json::json!({
            "SrvID": "dms1", "SrvURI": "https://dms1.example/dm", "Name": "one",
            "Perm": { "p0": { "MOID": "*" }, "p1": { "MOID": "urn:x:1.0" } },
            "Auth": { "Noti": { "Type": 0, "Data": "YXV0aA==", "Secret": "c2VjcmV0" } }
        });
        let data = NodeData::from_json(&json, &factory.schema.root).expect("valid DMAcc data");
        let dmacc = (factory.create)("dms1", &data).expect("created");
        walk(dmacc.as_ref(), &mut Vec::new(), &mut checked);
        assert!(checked > 20, "only {checked} nodes");
    }

    #[test]
    fn leaf_text_is_agrees_with_leaf_text_on_every_leaf() {
        fn walk(registry: &Registry, index: usize, path: &mut Vec<String>, leaves: &mut usize) {
            let Some(i) = registry.instance(index) else {
                return;
            };
            let data = with_refs(path, |refs| i.mo.get(refs));
            if let Ok(NodeData::Interior(children)) = data {
                for (name, _) in children {
                    path.push(name.into_owned());
                    walk(registry, index, path, leaves);
                    path.pop();
                }
                return;
            }
            let Some(text) = InstanceTree::leaf_text(registry, &index, path) else {
                return;
            };
            *leaves += 1;
            // Split anywhere between the x-named node and the nv path.
            for k in 0..=path.len() {
                let (base, below) = path.split_at(k);
                let below: Vec<UriName> = below.iter().map(|n| n.as_str().into()).collect();
                let below = below.as_slice();
                assert!(
                    registry.leaf_text_is(&index, base, below, &text),
                    "{path:?}"
                );
                let other = format!("{text}x");
                assert!(
                    !registry.leaf_text_is(&index, base, below, &other),
                    "{path:?}"
                );
            }
        }
        let registry = crate::standard_registry("IMEI:1");
        let mut leaves = 0;
        for (index, _) in registry.instances() {
            walk(&registry, index, &mut Vec::new(), &mut leaves);
        }
        assert!(leaves > 10, "only {leaves} leaves");
    }

    #[test]
    fn cached_rules_last_until_the_registry_changes() {
        let mut registry = crate::standard_registry("IMEI:1");
        let rule = |rights| AclEntry {
            path: Vec::new(),
            maid: dm_core::Maid::Any,
            rights,
        };
        let first = registry.rules(0, || vec![rule(dm_core::Rights::READ)]);
        let again = registry.rules(0, || unreachable!("cached"));
        assert_eq!(first, again);
        // Any change may change what the rules were read from.
        let _ = registry.mo_mut(0);
        let after = registry.rules(0, || vec![rule(dm_core::Rights::ALL)]);
        assert_eq!(after[0].rights, dm_core::Rights::ALL);
        registry.touch(0);
        let touched = registry.rules(0, Vec::new);
        assert!(touched.is_empty());
    }

    #[test]
    fn the_change_clock_never_repeats_for_an_instance() {
        let mut registry = crate::standard_registry("IMEI:1");
        let (index, first) = registry
            .instances()
            .map(|(n, i)| (n, i.changes))
            .next()
            .expect("DevInfo is compiled in");
        registry.touch(index);
        let touched = registry.instance(index).map(|i| i.changes);
        assert!(touched > Some(first));
        // Re-creating an instance under the same name gives a new value.
        let (moid, miid) = {
            let i = registry.instance(index).expect("still there");
            (i.mo.schema().moid, i.miid.clone())
        };
        let removed = registry.instances.remove(index);
        registry.reindex();
        let again = registry.insert_owned(miid.clone(), removed.mo, Owner::Device, false);
        assert!(registry.instance(again).map(|i| i.changes) > touched);
        assert_eq!(registry.find(moid, &miid), Some(again));
        // A restored value from a later clock moves the clock on.
        registry.restore_changes(again, u64::MAX / 4);
        registry.touch(again);
        assert_eq!(
            registry.instance(again).map(|i| i.changes),
            Some(u64::MAX / 4 + 1)
        );
    }

    #[test]
    fn the_kept_cache_validator_follows_every_change() {
        let mut registry = crate::standard_registry("IMEI:1");
        let cv = |r: &Registry| r.instance(0).map(|i| i.cache_validator().clone());
        let expected = |r: &Registry| {
            r.instance(0).map(|i| {
                CacheValidator::from_change_counter(i.mo.schema().moid, &i.miid, i.changes())
            })
        };
        let first = cv(&registry);
        assert_eq!(first, expected(&registry));
        registry.touch(0);
        let touched = cv(&registry);
        assert_ne!(touched, first);
        assert_eq!(touched, expected(&registry));
        registry.restore_changes(0, u64::MAX / 4);
        assert_eq!(cv(&registry), expected(&registry));
        assert_ne!(cv(&registry), touched);
        // A change of data through the MO keeps the validator until the
        // change is recorded, which gives a new one.
        let kept = cv(&registry);
        let _ = registry.mo_mut(0);
        assert_eq!(cv(&registry), kept);
        registry.touch(0);
        assert_ne!(cv(&registry), kept);
        assert_eq!(cv(&registry), expected(&registry));
    }
}
