//! DACMO as the device keeps it (spec 10, 12.3; the module comment of
//! `access` says how rules and ownership relate): the rules the agent
//! writes when instances come and go, and the check of a principal's
//! changes to DACMO entries (Delegate, and delegation only to authorities
//! that were bootstrapped with the MOID).

use dm_core::{Authority, Change, Maid, NodeData, Rights, StatusCode, Value};

use crate::access::{self, Access, DACMO_MOID};
use crate::client::{Device, SessionCtx};
use crate::tree::Owner;

/// The child `name` of interior data.
fn child<'a>(data: &'a NodeData, name: &str) -> Option<&'a NodeData> {
    match data {
        NodeData::Interior(children) => children.iter().find(|(n, _)| n == name).map(|(_, d)| d),
        NodeData::Leaf(_) => None,
    }
}

/// The names of the children of interior data.
fn names(data: &NodeData) -> Vec<&str> {
    match data {
        NodeData::Interior(children) => children.iter().map(|(n, _)| &**n).collect(),
        NodeData::Leaf(_) => Vec::new(),
    }
}

/// Names in `a` or `b`, each once, in order of appearance.
fn union<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<&'a str> {
    let mut out = a.to_vec();
    out.extend(b.iter().filter(|n| !a.contains(n)));
    out
}

/// Interior data equal up to the order of children.
fn same(a: Option<&NodeData>, b: Option<&NodeData>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(NodeData::Interior(xs)), Some(y @ NodeData::Interior(ys))) => {
            xs.len() == ys.len() && xs.iter().all(|(n, d)| same(Some(d), child(y, n)))
        }
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// The Path of one DACMO rule (`/` when absent, 12.3).
fn rule_path(rule: &NodeData) -> Vec<String> {
    match child(rule, "Path") {
        Some(NodeData::Leaf(Value::Chr(p))) => dm_core::acl::parse_path(p).unwrap_or_default(),
        _ => Vec::new(),
    }
}

impl Device {
    /// Writes the rules ownership gives the instance at `index` into its
    /// DACMO node, replacing whatever was there (an instance created under
    /// an MIID that an old instance had must not inherit its rules).
    /// Creates the DACMO instance for the MOID when it is the first.
    ///
    /// In a transaction the write waits for the command's end
    /// ([`Device::flush_owner_rules`]): one DACMO change for all the
    /// instances a command made, not one each, which made a large HGET
    /// quadratic. Until then the instance is judged by its owner's
    /// entries, which are the same rules (`access::entries_of`).
    pub(crate) fn write_owner_rules(&mut self, index: usize) -> Result<(), StatusCode> {
        let Some(instance) = self.registry().instance(index) else {
            return Err(StatusCode::NOT_FOUND);
        };
        let key = (instance.mo().schema().moid, instance.miid().to_owned());
        if self.defer_owner_rules(key.0, &key.1) {
            return Ok(());
        }
        self.write_owner_rules_of(&[key])
    }

    /// Writes the owner rules of the instances `keys` (MOID, MIID), one
    /// DACMO change per MOID.
    pub(crate) fn write_owner_rules_of(
        &mut self,
        keys: &[(&'static str, String)],
    ) -> Result<(), StatusCode> {
        let mut moids: Vec<&'static str> = keys.iter().map(|(m, _)| *m).collect();
        moids.sort_unstable();
        moids.dedup();
        for moid in moids {
            if moid == DACMO_MOID {
                continue;
            }
            let Some(factory) = self.registry().factory(DACMO_MOID) else {
                // A build without DACMO: ownership alone decides (access).
                return Ok(());
            };
            let mut changes = Vec::new();
            let mut fresh = Vec::new();
            for (_, miid) in keys.iter().filter(|(m, _)| *m == moid) {
                let Some(i) = self
                    .registry()
                    .find(moid, miid)
                    .and_then(|n| self.registry().instance(n))
                else {
                    // Made and removed again in the same command.
                    continue;
                };
                fresh.push((
                    miid.clone(),
                    access::rules_data(&access::owner_entries(i.owner())),
                ));
            }
            if fresh.is_empty() {
                continue;
            }
            let dacmo = match access::dacmo_of(self.registry(), moid) {
                Some(d) => d,
                None => {
                    let mo = (factory.create)(moid, &NodeData::Interior(Vec::new()))
                        .map_err(|e| e.status())?;
                    let persistent = factory.persistent;
                    self.registry_mut()
                        .insert_owned(moid, mo, Owner::Device, persistent)
                }
            };
            let Some(d) = self.registry_mut().mo_mut(dacmo) else {
                return Err(StatusCode::NOT_FOUND);
            };
            for (miid, data) in fresh {
                if d.contains(&[miid.as_str()]) {
                    changes.push(Change::Delete {
                        path: vec![miid.clone()],
                    });
                }
                changes.push(Change::Put {
                    path: vec![miid],
                    data,
                });
            }
            d.apply(&changes).map_err(|e| e.status())?;
            self.registry_mut().touch(dacmo);
            self.save(dacmo).map_err(|_| StatusCode::INTERNAL_ERROR)?;
            self.mark_changed(dacmo);
        }
        Ok(())
    }

    /// Forgets the rules of an instance that was deleted.
    pub(crate) fn drop_rules(&mut self, moid: &str, miid: &str) -> Result<(), StatusCode> {
        let Some(dacmo) = access::dacmo_of(self.registry(), moid) else {
            return Ok(());
        };
        let Some(d) = self.registry_mut().mo_mut(dacmo) else {
            return Ok(());
        };
        if !d.contains(&[miid]) {
            return Ok(());
        }
        d.apply(&[Change::Delete {
            path: vec![miid.to_owned()],
        }])
        .map_err(|e| e.status())?;
        self.registry_mut().touch(dacmo);
        self.save(dacmo).map_err(|_| StatusCode::INTERNAL_ERROR)?;
        self.mark_changed(dacmo);
        Ok(())
    }

    /// Brings DACMO in line with the instances (at start): every instance
    /// gets its owner's rules when it has none yet (device instances, or a
    /// crash between saving an instance and its rules), and the rules of
    /// instances that are gone are removed. Returns what could not be
    /// written.
    pub fn sync_access_control(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.registry().factory(DACMO_MOID).is_none() {
            return errors;
        }
        let missing: Vec<usize> = self
            .registry()
            .instances()
            .filter(|(_, i)| i.mo().schema().moid != DACMO_MOID)
            .filter(|(_, i)| {
                access::dacmo_of(self.registry(), i.mo().schema().moid)
                    .and_then(|d| self.registry().instance(d))
                    .is_none_or(|d| !d.mo().contains(&[i.miid()]))
            })
            .map(|(n, _)| n)
            .collect();
        for index in missing {
            if let Err(code) = self.write_owner_rules(index) {
                errors.push(format!("rules of instance {index}: {code}"));
            }
        }
        let orphans: Vec<(String, String)> = self
            .registry()
            .instances()
            .filter(|(_, d)| d.mo().schema().moid == DACMO_MOID)
            .flat_map(|(_, d)| {
                let rules = d.mo().get(&[]).unwrap_or(NodeData::Interior(Vec::new()));
                names(&rules)
                    .into_iter()
                    .filter(|miid| self.registry().find(d.miid(), miid).is_none())
                    .map(|miid| (d.miid().to_owned(), miid.to_owned()))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (moid, miid) in orphans {
            if let Err(code) = self.drop_rules(&moid, &miid) {
                errors.push(format!("rules of {moid}/{miid}: {code}"));
            }
        }
        errors
    }

    /// Checks a principal's change to the DACMO instance at `index` (12.3):
    /// the changes are tried on a copy, and every rule they add, alter or
    /// remove needs Delegate on the target instance's sub-tree at the
    /// rule's Path, before and after the change ("HGET to modify the access
    /// rights of the sub-tree addressed by the Path node", 6.3.1.1). A
    /// permission given to a DM Server whose DMAcc Perm list lacks the
    /// target's MOID (or to no bootstrapped server at all) is refused: "the
    /// DM Client MUST reject the delegation request if the delegated
    /// Management Authority does not provide the MOID of the MO instance
    /// during the bootstrap". Both refusals answer 403.
    pub(crate) fn check_delegation(
        &self,
        ctx: &SessionCtx,
        index: usize,
        changes: &[Change],
    ) -> Result<(), StatusCode> {
        if ctx.principal.authority().is_none() {
            return Ok(());
        }
        let Some(dacmo) = self.registry().instance(index) else {
            return Err(StatusCode::NOT_FOUND);
        };
        let Some(factory) = self.registry().factory(DACMO_MOID) else {
            return Err(StatusCode::COMMAND_NOT_ALLOWED);
        };
        let target_moid = dacmo.miid();
        let old = dacmo.mo().get(&[]).map_err(|e| e.status())?;
        let mut scratch = (factory.create)(target_moid, &old).map_err(|e| e.status())?;
        scratch.apply(changes).map_err(|e| e.status())?;
        let new = scratch.get(&[]).map_err(|e| e.status())?;
        let accounts = access::accounts(self.registry());
        for miid in union(&names(&old), &names(&new)) {
            let (old_rules, new_rules) = (child(&old, miid), child(&new, miid));
            if same(old_rules, new_rules) {
                continue;
            }
            let target = self
                .registry()
                .find(target_moid, miid)
                .ok_or(StatusCode::NOT_FOUND)?;
            let rights = Access::of(&ctx.principal, self.registry(), target);
            let empty = NodeData::Interior(Vec::new());
            let (old_rules, new_rules) = (old_rules.unwrap_or(&empty), new_rules.unwrap_or(&empty));
            for rule in union(&names(old_rules), &names(new_rules)) {
                let (before, after) = (child(old_rules, rule), child(new_rules, rule));
                if same(before, after) {
                    continue;
                }
                for r in [before, after].into_iter().flatten() {
                    if !rights.rights(&rule_path(r)).contains(Rights::DELEGATE) {
                        return Err(StatusCode::FORBIDDEN);
                    }
                }
                let Some(after) = after else {
                    continue;
                };
                let moved = before.is_none_or(|b| rule_path(b) != rule_path(after));
                let empty_perms = NodeData::Interior(Vec::new());
                let old_perms = before
                    .and_then(|b| child(b, "Permissions"))
                    .unwrap_or(&empty_perms);
                let new_perms = child(after, "Permissions").unwrap_or(&empty_perms);
                for p in names(new_perms) {
                    let granted = child(new_perms, p);
                    if !moved && same(child(old_perms, p), granted) {
                        continue;
                    }
                    let maid = match granted.and_then(|g| child(g, "MAID")) {
                        Some(NodeData::Leaf(Value::Chr(m))) => m.parse::<Maid>(),
                        _ => return Err(StatusCode::UNSUPPORTED_MEDIA_TYPE),
                    };
                    match maid {
                        Ok(Maid::Authority(Authority::Server(id))) => {
                            let bootstrapped_with_moid = accounts
                                .iter()
                                .any(|a| a.server_id == id && a.covers(target_moid));
                            if !bootstrapped_with_moid {
                                return Err(StatusCode::FORBIDDEN);
                            }
                        }
                        Ok(_) => {}
                        Err(_) => return Err(StatusCode::UNSUPPORTED_MEDIA_TYPE),
                    }
                }
            }
        }
        Ok(())
    }
}
