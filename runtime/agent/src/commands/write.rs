//! Writes and their persistence: the DDF access type (405) and Write
//! right (403) of every node written, one batch applied all or nothing by
//! the MO, then the instance saved before the status is sent; DELETE
//! (5.3.4), new instances, and saved instances put back at start.

use dm_core::{
    AccessType, Change, ClientUri, InstanceSelector, MoDataItem, NodeData, NodeSchema, Rights,
    Status, StatusCode,
};
use serde_json::Value as Json;

use super::{refs, status};
use crate::access::{Access, Principal, ServerAccount, DACMO_MOID, DMACC_MOID};
use crate::client::{Device, SessionCtx};
use crate::store::SavedInstance;
use crate::tree::{NodePath, Owner, Target};

impl Device {
    /// The node a write goes to: the resolved node, or a new child of the
    /// resolved parent (HGET creating a node).
    pub(crate) fn write_target<'u>(
        &self,
        ctx: &SessionCtx,
        uri: &'u ClientUri,
    ) -> Result<Target<'u>, StatusCode> {
        match self.resolve_for(ctx, uri) {
            Ok(mut r) if r.len() == 1 => Ok(r.remove(0)),
            Ok(_) => Err(StatusCode::BAD_REQUEST),
            Err(StatusCode::NOT_FOUND) => {
                let (Some(last), Some(parent_uri)) = (
                    uri.plain_path()
                        .and_then(|p| p.last().map(|s| (*s).to_owned())),
                    parent_of(uri),
                ) else {
                    return Err(StatusCode::NOT_FOUND);
                };
                let parent = match self.resolve_for(ctx, &parent_uri)? {
                    r if r.len() == 1 => r.into_iter().next().ok_or(StatusCode::NOT_FOUND)?,
                    _ => return Err(StatusCode::BAD_REQUEST),
                };
                let defined = self
                    .registry()
                    .schema_at(parent.instance, parent.path.names())
                    .and_then(|s| s.child(&last))
                    .is_some();
                if !defined {
                    return Err(StatusCode::NOT_FOUND);
                }
                // Owned: the parent's URI is this function's own.
                let mut path = parent.path.into_owned();
                path.push(last);
                Ok(Target {
                    instance: parent.instance,
                    path: NodePath::Owned(path),
                })
            }
            Err(code) => Err(code),
        }
    }

    /// Applies one command's changes to one instance: the DDF access type
    /// of every node written (Add for a new node, Replace for an existing
    /// leaf, Delete for a deleted one; 405), the Write right (403), then
    /// the MO applies all or nothing and the instance is saved.
    pub(crate) fn write(
        &mut self,
        ctx: &SessionCtx,
        index: usize,
        changes: Vec<Change>,
    ) -> StatusCode {
        let Some(instance) = self.registry().instance(index) else {
            return StatusCode::NOT_FOUND;
        };
        let root = &instance.mo().schema().root;
        let at = |path: &[String]| {
            ClientUri::for_node(instance.mo().schema().moid, instance.miid(), path)
        };
        let access = Access::of(&ctx.principal, self.registry(), index);
        for change in &changes {
            let (path, needed) = match change {
                Change::Put { path, data } => {
                    (path, ddf_check_put(instance.mo(), root, path, data))
                }
                Change::Delete { path } => (path, ddf_check_delete(root, path)),
            };
            if let Err((code, node, rule)) = needed {
                return self.refuse(code, format_args!("{}: {rule}", at(&node)));
            }
            // Every node written or deleted, not only the addressed one: a
            // Path rule below it may deny what the rule above grants (13.2).
            let allowed = match change {
                Change::Put { data, .. } => access.all_have(path, data, Rights::WRITE),
                Change::Delete { .. } => match instance.mo().get(&refs(path)) {
                    Ok(existing) => access.all_have(path, &existing, Rights::WRITE),
                    Err(_) => access.rights(path).contains(Rights::WRITE),
                },
            };
            if !allowed {
                let what = match change {
                    Change::Put { .. } => "written",
                    Change::Delete { .. } => "deleted",
                };
                return self.refuse(
                    StatusCode::FORBIDDEN,
                    format_args!(
                        "{}: a node {what} there is outside the server's Write right (DACMO)",
                        at(path)
                    ),
                );
            }
        }
        if instance.mo().schema().moid == DACMO_MOID {
            if let Err(code) = self.check_delegation(ctx, index, &changes) {
                return code;
            }
        }
        if instance.mo().schema().moid == DMACC_MOID {
            if let Err(code) = self.check_account_write(ctx, index, &changes) {
                return code;
            }
        }
        let Some(mo) = self.registry_mut().mo_mut(index) else {
            return StatusCode::NOT_FOUND;
        };
        if let Err(e) = mo.apply(&changes) {
            let (moid, miid) = match self.registry().instance(index) {
                Some(i) => (i.mo().schema().moid, i.miid().to_owned()),
                None => ("", String::new()),
            };
            return self.refuse(e.status(), format_args!("{moid}/{miid}: {e}"));
        }
        self.registry_mut().touch(index);
        if self.save(index).is_err() {
            return StatusCode::INTERNAL_ERROR;
        }
        self.mark_changed(index);
        StatusCode::OK
    }

    /// A write to a DMAcc instance, tried on a copy first: the account it
    /// leaves must pass [`Device::check_account`].
    fn check_account_write(
        &self,
        ctx: &SessionCtx,
        index: usize,
        changes: &[Change],
    ) -> Result<(), StatusCode> {
        let instance = self
            .registry()
            .instance(index)
            .ok_or(StatusCode::NOT_FOUND)?;
        let before = ServerAccount::of(instance.miid(), instance.mo());
        let data = instance
            .mo()
            .get(&[])
            .map_err(|_| StatusCode::INTERNAL_ERROR)?;
        // Accounts are few and small: a copy costs nothing that matters.
        let factory = self
            .registry()
            .factory(DMACC_MOID)
            .ok_or(StatusCode::INTERNAL_ERROR)?;
        let mut trial = (factory.create)(instance.miid(), &data).map_err(|e| e.status())?;
        trial.apply(changes).map_err(|e| e.status())?;
        self.check_account(ctx, instance.miid(), &*trial, before.as_ref())
    }

    /// What no write may make of a DMAcc account (`after`, at instance
    /// `miid`; `before` is the account as it was, `None` for a new one):
    /// - a SrvID another account has: SrvID "MUST be unique within the DM
    ///   Client" (12.2), and DACMO names servers by it, so a shared one
    ///   would hand one server the other's rights (403);
    /// - for a DM Server, a Perm list with an MOID its own Perm list does
    ///   not cover: only a bootstrap provisions MOIDs (10), so a server
    ///   can neither widen its own account nor make another account its
    ///   proxy for MOIDs it may not manage (403).
    pub(crate) fn check_account(
        &self,
        ctx: &SessionCtx,
        miid: &str,
        after: &dyn dm_core::ManagementObject,
        before: Option<&ServerAccount>,
    ) -> Result<(), StatusCode> {
        // No SrvID or SrvURI: the MO's own validation refuses it.
        let Some(after) = ServerAccount::of(miid, after) else {
            return Ok(());
        };
        // Outside a transaction each write is its own command: check the
        // SrvID here. In one, `Device::settle` checks all accounts once at
        // the command's end (a per-account scan made large HGETs quadratic).
        if !self.in_txn() {
            let shared = crate::access::accounts(self.registry())
                .iter()
                .any(|a| a.miid != miid && a.server_id == after.server_id);
            if shared {
                tracing::warn!(
                    "refused: SrvID {:?} is already another account's",
                    after.server_id
                );
                return Err(StatusCode::FORBIDDEN);
            }
        }
        if let Principal::Server(server) = &ctx.principal {
            let was = |m: &String| before.is_some_and(|b| b.moids.contains(m));
            if let Some(m) = after.moids.iter().find(|m| !was(m) && !server.covers(m)) {
                tracing::warn!(
                    "refused: server {:?} may not provision MOID {m:?} (not in its Perm list)",
                    server.server_id
                );
                return Err(StatusCode::FORBIDDEN);
            }
        }
        Ok(())
    }

    /// The changes that make the node at `path` of instance `index` hold
    /// `data` and nothing else: HGET stores "replacing all existing data,
    /// if any" (5.3.1). Every existing node the data does not carry is
    /// deleted, so [`Device::write`] checks it as a DELETE would be (the
    /// DDF's Delete and scope, 405; the Write right, 403) and the MO takes
    /// the deletions and the new data all or nothing.
    pub(crate) fn replacing(&self, index: usize, path: Vec<String>, data: NodeData) -> Vec<Change> {
        let mut changes = Vec::new();
        let existing = self
            .registry()
            .instance(index)
            .and_then(|i| i.mo().get(&refs(&path)).ok());
        if let Some(existing) = existing {
            let mut at = path.clone();
            crate::tree::absent_from(&existing, &data, &mut at, &mut changes);
        }
        changes.push(Change::Put { path, data });
        changes
    }

    /// Puts a saved instance back (at start): into the built-in instance
    /// of that name, or into a new one made by its MO's factory.
    pub fn restore(&mut self, saved: &SavedInstance) -> Result<(), String> {
        match self.registry().find(&saved.moid, &saved.miid) {
            Some(index) => {
                let Some(mo) = self.registry_mut().mo_mut(index) else {
                    return Err("instance vanished".into());
                };
                let data = NodeData::from_json(&saved.data, &mo.schema().root)
                    .map_err(|e| e.to_string())?;
                mo.apply(&[Change::Put {
                    path: Vec::new(),
                    data,
                }])
                .map_err(|e| e.to_string())?;
                self.registry_mut()
                    .set_owner(index, saved.owner.clone(), true);
                self.registry_mut().restore_changes(index, saved.changes);
            }
            None => {
                let factory = self
                    .registry()
                    .factory(&saved.moid)
                    .ok_or_else(|| "this build does not support the MO".to_owned())?;
                let data = NodeData::from_json(&saved.data, &factory.schema.root)
                    .map_err(|e| e.to_string())?;
                let mo = (factory.create)(&saved.miid, &data).map_err(|e| e.to_string())?;
                let index = self.registry_mut().insert_owned(
                    saved.miid.clone(),
                    mo,
                    saved.owner.clone(),
                    true,
                );
                self.registry_mut().restore_changes(index, saved.changes);
            }
        }
        Ok(())
    }

    /// Stores MO data items where the client chooses (HGET without
    /// ClientURI, bootstrap): into the instance an item names when it
    /// exists, else into a new instance. Returns every stored ClientURI.
    pub(crate) fn store_items(&mut self, ctx: &SessionCtx, items: &[MoDataItem]) -> Status {
        let mut uris = Vec::new();
        for item in items {
            let uri = match item.client_uri.parse::<ClientUri>() {
                Ok(uri) => uri,
                Err(e) => {
                    let code = StatusCode::UNSUPPORTED_MEDIA_TYPE;
                    return status(self.refuse(code, format_args!("an item's ClientURI: {e}")));
                }
            };
            let moid = uri.moid();
            // The data of the instance root: the single MOData member.
            let value = match item.mo_data.iter().next() {
                Some((name, v)) if item.mo_data.len() == 1 => (name.clone(), v.clone()),
                _ => {
                    return status(self.refuse(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        format_args!("{uri}: MOData must have exactly one member (7.2.1.4)"),
                    ))
                }
            };
            let suggested = match uri.instance() {
                InstanceSelector::Miid(m) => m.as_str().to_owned(),
                _ => value.0.clone(),
            };
            let existing = self
                .registry()
                .find(moid, &suggested)
                .filter(|_| uri.path().is_empty());
            let stored = match existing {
                Some(index) => {
                    let Some(schema) = self
                        .registry()
                        .instance(index)
                        .map(|i| &i.mo().schema().root)
                    else {
                        return status(StatusCode::NOT_FOUND);
                    };
                    let data = match NodeData::from_json(&value.1, schema) {
                        Ok(d) => d,
                        Err(e) => {
                            let code = StatusCode::UNSUPPORTED_MEDIA_TYPE;
                            return status(self.refuse(code, format_args!("{}: {e}", uri)));
                        }
                    };
                    let changes = self.replacing(index, Vec::new(), data);
                    let code = self.write(ctx, index, changes);
                    if code != StatusCode::OK {
                        return status(code);
                    }
                    index
                }
                None => match self.create_instance(ctx, moid, Some(&suggested), &value.1) {
                    Ok(index) => index,
                    Err(code) => return status(code),
                },
            };
            if let Some(i) = self.registry().instance(stored) {
                uris.push(ClientUri::for_node::<&str>(moid, i.miid(), &[]));
            }
        }
        Status {
            code: StatusCode::OK,
            uris,
        }
    }

    /// Creates an instance of `moid` from its root data, owned by the
    /// session's server (docs/architecture.md "Who owns what").
    pub(crate) fn create_instance(
        &mut self,
        ctx: &SessionCtx,
        moid: &str,
        suggested: Option<&str>,
        json: &Json,
    ) -> Result<usize, StatusCode> {
        let owner = match &ctx.principal {
            Principal::Server(a) => {
                if !a.covers(moid) {
                    return Err(StatusCode::FORBIDDEN);
                }
                let owner = Owner::Server(a.server_id.clone());
                let limit = self.config().limits.instances_per_server;
                if self.owned_by(&owner) >= limit {
                    tracing::warn!(
                        "instance refused: server {:?} owns {limit} (--max-instances)",
                        a.server_id
                    );
                    return Err(StatusCode::DEVICE_FULL);
                }
                owner
            }
            Principal::App(id) => Owner::App(id.clone()),
            Principal::Local => ctx.owner.clone(),
        };
        let Some(factory) = self.registry().factory(moid) else {
            // An MO this device does not support.
            return Err(self.refuse(
                StatusCode::NOT_FOUND,
                format_args!("{moid}: this device has no such MO to make an instance of"),
            ));
        };
        if !factory.schema.root.access.contains(AccessType::ADD) {
            return Err(self.refuse(
                StatusCode::COMMAND_NOT_ALLOWED,
                format_args!("{moid}: its DDF gives the instance root no Add"),
            ));
        }
        let data = NodeData::from_json(json, &factory.schema.root).map_err(|e| {
            self.refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format_args!("{moid}/{}: {e}", suggested.unwrap_or("")),
            )
        })?;
        let miid = self.registry().free_miid(moid, suggested);
        let refused =
            |e: dm_core::MoError| self.refuse(e.status(), format_args!("{moid}/{miid}: {e}"));
        let mut mo = (factory.create)(&miid, &data).map_err(refused)?;
        // Applying no change runs the MO's validate hook on the new data.
        mo.apply(&[]).map_err(refused)?;
        if moid == DMACC_MOID {
            self.check_account(ctx, &miid, &*mo, None)?;
        }
        let persistent = factory.persistent;
        let index = self
            .registry_mut()
            .insert_owned(miid, mo, owner, persistent);
        if self.save(index).is_err() {
            self.registry_mut().remove(index);
            return Err(StatusCode::INTERNAL_ERROR);
        }
        self.mark_changed(index);
        // Ownership as a DACMO entry (access). Should this fail, the
        // instance is judged by its owner alone, which gives the same
        // rights, and the next start writes the entry.
        let _ = self.write_owner_rules(index);
        Ok(index)
    }

    /// DELETE (5.3.4): the node and everything below it; an instance root
    /// deletes the instance. Permanent and required nodes answer 405.
    pub(crate) fn cmd_delete(&mut self, ctx: &SessionCtx, uri: &ClientUri) -> Status {
        let resolved = match self.resolve_for(ctx, uri) {
            Ok(r) => r,
            Err(code) => return status(code),
        };
        for r in &resolved {
            let Some(schema) = self.registry().schema_at(r.instance, r.path.names()) else {
                return status(StatusCode::NOT_FOUND);
            };
            if !schema.access.contains(AccessType::DELETE)
                || schema.scope == dm_core::Scope::Permanent
            {
                return status(StatusCode::COMMAND_NOT_ALLOWED);
            }
            // The whole sub-tree goes: Write on every node of it.
            let access = Access::of(&ctx.principal, self.registry(), r.instance);
            let names = r.path.refs();
            let subtree = self
                .registry()
                .instance(r.instance)
                .and_then(|i| i.mo().get(&names).ok());
            let allowed = match &subtree {
                Some(data) => access.all_have(&names, data, Rights::WRITE),
                None => access.rights(&names).contains(Rights::WRITE),
            };
            if !allowed {
                return status(StatusCode::FORBIDDEN);
            }
        }
        // Delete from the last instance backwards so indices stay valid.
        let mut order = resolved;
        order.sort_by(|a, b| {
            b.instance
                .cmp(&a.instance)
                .then(b.path.len().cmp(&a.path.len()))
        });
        for r in order {
            if r.path.is_empty() {
                let Some((moid, miid)) = self.registry_mut().remove(r.instance) else {
                    return status(StatusCode::NOT_FOUND);
                };
                if self.forget_saved(moid, &miid).is_err() {
                    return status(StatusCode::INTERNAL_ERROR);
                }
                // Rules left behind would pass to a later instance of the
                // same MIID; the next start removes them should this fail.
                let _ = self.drop_rules(moid, &miid);
            } else {
                let path = r.path.into_owned();
                let code = self.write(ctx, r.instance, vec![Change::Delete { path }]);
                if code != StatusCode::OK {
                    return status(code);
                }
            }
        }
        status(StatusCode::OK)
    }
}

/// Why a DDF check refused: the status, the node and the rule.
type DdfRefusal = (StatusCode, Vec<String>, String);

/// The DDF check of a write: Add for every node the data creates, Replace
/// for every existing leaf it overwrites.
fn ddf_check_put(
    mo: &dyn dm_core::ManagementObject,
    root: &NodeSchema,
    path: &[String],
    data: &NodeData,
) -> Result<(), DdfRefusal> {
    let Some(schema) = root.descendant(&refs(path)) else {
        return Err((
            StatusCode::NOT_FOUND,
            path.to_vec(),
            "the DDF defines no such node".into(),
        ));
    };
    let exists = mo.contains(&refs(path));
    let needed = match (exists, schema.format.is_interior()) {
        (false, _) => AccessType::ADD,
        // The same value again replaces nothing: HGET of a whole node may
        // carry leaves without Replace as they are (5.3.1).
        (true, false) if mo.get(&refs(path)).is_ok_and(|old| old == *data) => AccessType::NONE,
        (true, false) => AccessType::REPLACE,
        // An existing interior node is not itself rewritten.
        (true, true) => AccessType::NONE,
    };
    if !schema.access.contains(needed) {
        let rule = if needed == AccessType::ADD {
            "the DDF gives it no Add (it does not exist yet)"
        } else {
            "the DDF gives it no Replace"
        };
        return Err((StatusCode::COMMAND_NOT_ALLOWED, path.to_vec(), rule.into()));
    }
    if let NodeData::Interior(children) = data {
        for (name, child) in children {
            let mut p = path.to_vec();
            p.push(name.to_string());
            ddf_check_put(mo, root, &p, child)?;
        }
    }
    Ok(())
}

fn ddf_check_delete(root: &NodeSchema, path: &[String]) -> Result<(), DdfRefusal> {
    match root.descendant(&refs(path)) {
        Some(s)
            if s.access.contains(AccessType::DELETE) && s.scope != dm_core::Scope::Permanent =>
        {
            Ok(())
        }
        Some(s) => {
            let rule = if s.scope == dm_core::Scope::Permanent {
                "a Permanent node cannot be deleted (6.3.1.2)"
            } else {
                "the DDF gives it no Delete (HGET replaces: 5.3.1)"
            };
            Err((StatusCode::COMMAND_NOT_ALLOWED, path.to_vec(), rule.into()))
        }
        None => Err((
            StatusCode::NOT_FOUND,
            path.to_vec(),
            "the DDF defines no such node".into(),
        )),
    }
}

/// The ClientURI of the parent of a plain-path ClientURI.
fn parent_of(uri: &ClientUri) -> Option<ClientUri> {
    let path = uri.plain_path()?;
    let (_, parent) = path.split_last()?;
    let inst = match uri.instance() {
        InstanceSelector::Miid(m) => m.as_str().to_owned(),
        InstanceSelector::Only => String::new(),
        _ => return None,
    };
    ClientUri::for_node(uri.moid(), &inst, parent).parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_uri_of_a_plain_path() {
        let u: ClientUri = "urn:x:1.0/m1/A/B".parse().unwrap();
        assert_eq!(parent_of(&u).unwrap().to_string(), "urn:x:1.0/m1/A");
        let u: ClientUri = "urn:x:1.0//A".parse().unwrap();
        assert_eq!(parent_of(&u).unwrap().to_string(), "urn:x:1.0//");
    }
}
