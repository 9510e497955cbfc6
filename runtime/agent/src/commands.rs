//! The twelve DM commands (spec 5.3) as the device executes them, with the
//! statuses of Appendix C.
//!
//! Before a command touches a node the device checks, for every node
//! involved, the DDF access type (405 when the node does not allow the
//! operation) and the server's rights (403), in that order. Writes reach an
//! MO as one batch that it applies all or nothing, then the instance is
//! saved before the status is sent.

use dm_core::multipart::ResponseWriter;
use dm_core::package::{header, media_type};
use dm_core::{
    AccessType, Alert, Change, ClientUri, ExecOutcome, ExecRequest, Format, InstanceSelector,
    MoDataItem, MoDataRef, MoDataValue, NodeData, NodeSchema, Rights, ServerUri, Status,
    StatusCode, Value,
};
use hyper::Method;
use serde_json::{Map, Value as Json};
use smallvec::{smallvec, SmallVec};

use crate::access::{self, Access, Principal, DACMO_MOID};
use crate::client::{Device, PendingAlert, SessionCtx};
use crate::store::{SavedInstance, Subscription};
use crate::tree::{NodePath, Owner, Target, SHORT_PATH};

/// Media types this client reads in HGET responses, best first.
const HGET_ACCEPT: &str = "application/dmmo+json, text/plain;q=0.5, application/octet-stream;q=0.5";

fn status(code: StatusCode) -> Status {
    Status::new(code)
}

fn refs(path: &[String]) -> Vec<&str> {
    path.iter().map(String::as_str).collect()
}

/// The nodes one ClientURI resolves to: nearly always one, kept inline.
pub(crate) type ResolvedNodes<'u> = SmallVec<[Target<'u>; 1]>;

/// The nodes one read gives: one but under wildcards, kept inline.
pub(crate) type ReadNodes<'a> = SmallVec<[ReadNode<'a>; 1]>;

impl Device {
    /// Rights of the session's principal on a resolved node: the DACMO
    /// rules of its instance (access).
    fn rights_on(&self, ctx: &SessionCtx, r: &Target) -> Rights {
        access::rights(&ctx.principal, &self.registry, r.instance, &r.path.refs())
    }

    /// Resolves a ClientURI for a principal over the tree as it may see it
    /// (`access::View`): wildcards and x-names only reach instances it may
    /// see and `nv` fields only match leaves it may read. An instance it
    /// may not see that the URI names by MIID (or as the only instance)
    /// answers 403.
    pub(crate) fn resolve_for<'u>(
        &self,
        ctx: &SessionCtx,
        uri: &'u ClientUri,
    ) -> Result<ResolvedNodes<'u>, StatusCode> {
        match self.resolve_plain(ctx, uri) {
            Some(nodes) => Ok(nodes),
            None => self.resolve_general(ctx, uri),
        }
    }

    /// [`Device::resolve_for`] for any ClientURI.
    fn resolve_general<'u>(
        &self,
        ctx: &SessionCtx,
        uri: &'u ClientUri,
    ) -> Result<ResolvedNodes<'u>, StatusCode> {
        let view = access::View {
            registry: &self.registry,
            principal: &ctx.principal,
        };
        match dm_core::resolve::resolve(&view, uri) {
            Ok(nodes) => Ok(nodes
                .into_iter()
                .map(|n| Target {
                    instance: n.instance,
                    path: NodePath::Owned(n.path),
                })
                .collect()),
            Err(e) => {
                // Only the instance's own visibility decides between 403
                // and 404: nothing about the nodes inside it may show.
                let hidden = |index: usize| !access::can_see(&ctx.principal, &self.registry, index);
                let named_hidden = match uri.instance() {
                    InstanceSelector::Miid(m) => {
                        self.registry.find(uri.moid(), m).is_some_and(hidden)
                    }
                    InstanceSelector::Only => {
                        match dm_core::InstanceTree::instances(&self.registry, uri.moid())
                            .as_slice()
                        {
                            [(index, _)] => hidden(*index),
                            _ => false,
                        }
                    }
                    _ => false,
                };
                Err(if named_hidden {
                    StatusCode::FORBIDDEN
                } else {
                    e.status()
                })
            }
        }
    }

    /// The nodes a ClientURI whose path holds only real names addresses,
    /// when it resolves: the checks the general resolver makes (6.1.2
    /// steps 1 and 2 over the principal's view), without the lists it
    /// builds. An MIID, the only instance or an x-name gives one node; `*`
    /// every visible instance that has the path, in the order the general
    /// resolver keeps. `None` whenever there is more to say, failures
    /// included: the general resolver then answers, with its error.
    fn resolve_plain<'u>(&self, ctx: &SessionCtx, uri: &'u ClientUri) -> Option<ResolvedNodes<'u>> {
        let segments = uri.path();
        if segments.len() > SHORT_PATH {
            return None;
        }
        let path = NodePath::of_uri(segments)?;
        let names = &path.refs()[..];
        // Every prefix, as step 2 asks per segment.
        let has_path =
            |i: &crate::tree::Instance| (1..=names.len()).all(|n| i.mo.contains(&names[..n]));
        let resolved = |index: usize| Target {
            instance: index,
            path: path.clone(),
        };
        let moid = uri.moid();
        let mut visible = self.registry.instances().filter(|(n, i)| {
            i.mo.schema().moid == moid && access::can_see(&ctx.principal, &self.registry, *n)
        });
        let (index, instance) = match uri.instance() {
            InstanceSelector::Only => {
                let only = visible.next()?;
                visible.next().is_none().then_some(only)?
            }
            InstanceSelector::Miid(m) => {
                let mut named = visible.filter(|(_, i)| i.miid == *m);
                let one = named.next()?;
                named.next().is_none().then_some(one)?
            }
            InstanceSelector::All => {
                let nodes: ResolvedNodes = visible
                    .filter(|(_, i)| has_path(i))
                    .map(|(n, _)| resolved(n))
                    .collect();
                return (!nodes.is_empty()).then_some(nodes);
            }
            InstanceSelector::XName(x) => {
                // Step 1: the one visible instance whose `nv` fields hold.
                let view = access::View {
                    registry: &self.registry,
                    principal: &ctx.principal,
                };
                let mut matching =
                    visible.filter(|(n, _)| dm_core::resolve::satisfies(&view, n, &[], *x, uri));
                let one = matching.next()?;
                matching.next().is_none().then_some(one)?
            }
        };
        has_path(instance).then(|| smallvec![resolved(index)])
    }

    /// GET (5.3.6, Appendix F): the data goes into the response as the
    /// part named by the command's `index`.
    pub(crate) fn cmd_get(
        &self,
        ctx: &SessionCtx,
        index: usize,
        uri: &ClientUri,
        response: &mut ResponseWriter,
    ) -> Status {
        match self.read(ctx, uri, true) {
            Ok(items) => {
                if items.iter().all(|n| {
                    matches!(&n.data, ReadData::Tree(NodeData::Leaf(v)) if v.format() == Format::Null)
                })
                {
                    return status(StatusCode::NO_CONTENT);
                }
                let list = uri.has_wildcard();
                response.part(index, media_type_of(&items, list), |out| {
                    write_items(&items, list, out);
                });
                status(StatusCode::OK)
            }
            Err(code) => status(code),
        }
    }

    /// Reads every node a ClientURI addresses, checked for Get (405) and
    /// the Read right (403); children without Get are left out. A matching
    /// `cv` answers 304 (11.2).
    pub(crate) fn read_nodes<'a>(
        &'a self,
        ctx: &SessionCtx,
        uri: &'a ClientUri,
    ) -> Result<ReadNodes<'a>, StatusCode> {
        self.read(ctx, uri, false)
    }

    /// [`Device::read_nodes`]; with `root_json`, an instance root the
    /// principal reads whole (no `lv`, no rules below the root) is written
    /// as JSON straight from the MO's fields when the MO can
    /// ([`dm_core::ManagementObject::write_root_json`]): the same bytes,
    /// without the tree. GET asks for it; the other readers want the tree.
    fn read<'a>(
        &'a self,
        ctx: &SessionCtx,
        uri: &'a ClientUri,
        root_json: bool,
    ) -> Result<ReadNodes<'a>, StatusCode> {
        let resolved = self.resolve_for(ctx, uri)?;
        if let Some(cv) = &uri.query().cache_validator {
            if resolved.iter().all(|r| r.path.is_empty())
                && resolved
                    .iter()
                    .all(|r| self.cache_validator(r.instance) == Some(cv.as_str()))
            {
                return Err(StatusCode::NOT_MODIFIED);
            }
        }
        let mut out = ReadNodes::with_capacity(resolved.len());
        for r in resolved {
            let names = r.path.refs();
            let Some(schema) = self.registry.schema_at(r.instance, names.iter().copied()) else {
                return Err(StatusCode::NOT_FOUND);
            };
            if !schema.access.contains(AccessType::GET) {
                if uri.has_wildcard() {
                    continue;
                }
                return Err(StatusCode::COMMAND_NOT_ALLOWED);
            }
            let access = Access::of(&ctx.principal, &self.registry, r.instance);
            if !access.rights(&names).contains(Rights::READ) {
                if uri.has_wildcard() {
                    continue;
                }
                return Err(StatusCode::FORBIDDEN);
            }
            let Some(instance) = self.registry.instance(r.instance) else {
                return Err(StatusCode::NOT_FOUND);
            };
            let whole_root =
                root_json && r.path.is_empty() && uri.query().level.is_none() && access.uniform();
            let json = whole_root
                .then(|| {
                    // Room for a small MO's root (DevInfo's is some 350
                    // bytes): growing step by step cost more than writing.
                    let mut json = Vec::with_capacity(512);
                    instance.mo.write_root_json(&mut json).then_some(json)
                })
                .flatten();
            let data = if let Some(json) = json {
                ReadData::Json(json)
            } else {
                let mut data = instance.mo.get(&names).map_err(|e| e.status())?;
                data.retain_readable(schema);
                // Children the principal may not Read stay on the device too.
                access.prune(&names, &mut data);
                if let Some(n) = uri.query().level {
                    truncate(&mut data, n);
                }
                ReadData::Tree(data)
            };
            // The names borrow the path, which moves into the node.
            drop(names);
            let schema_mo = instance.mo.schema();
            out.push(ReadNode {
                ddf: schema_mo.ddf_url.unwrap_or_default(),
                moid: schema_mo.moid,
                miid: &instance.miid,
                cv: r
                    .path
                    .is_empty()
                    .then(|| self.cache_validator(r.instance))
                    .flatten(),
                path: r.path,
                data,
            });
        }
        if out.is_empty() {
            return Err(StatusCode::NOT_FOUND);
        }
        Ok(out)
    }

    /// The cache validator of an instance (11.1), from the registry's
    /// change clock at its last change ([`Registry::touch`]).
    pub(crate) fn cache_validator(&self, index: usize) -> Option<&str> {
        Some(self.registry.instance(index)?.cache_validator().as_str())
    }

    /// HPUT and HPOST (5.3.2, 5.3.3): the data of every ClientURI, sent to
    /// the ServerURI with HTTP PUT or POST.
    pub(crate) async fn cmd_send(
        &mut self,
        ctx: &SessionCtx,
        method: Method,
        server_uri: &ServerUri,
        uris: &[ClientUri],
    ) -> Status {
        let mut items = Vec::new();
        let mut last_error = StatusCode::NOT_FOUND;
        let mut all_not_modified = true;
        for uri in uris {
            match self.read_nodes(ctx, uri) {
                Ok(found) => {
                    all_not_modified = false;
                    items.extend(found);
                }
                Err(StatusCode::NOT_MODIFIED) => {}
                Err(code) => {
                    all_not_modified = false;
                    last_error = code;
                }
            }
        }
        if items.is_empty() {
            // 404 "all specified ClientURIs were not found"; 304 when every
            // one was unchanged; else the reason the only one failed.
            return status(if all_not_modified {
                StatusCode::NOT_MODIFIED
            } else {
                last_error
            });
        }
        let wildcard = uris.len() > 1 || uris.iter().any(ClientUri::has_wildcard);
        let Some((content_type, body)) =
            choose_format(&items, wildcard, ctx.server_accept.as_deref())
        else {
            return status(StatusCode::NOT_ACCEPTABLE);
        };
        let target = server_uri.resolve(&self.uri_params());
        let headers = [
            ("Content-Type", content_type),
            (header::DEV_ID, self.config.dev_id.clone()),
        ];
        match self.http.call(method, &target, &headers, body).await {
            Ok(exchange) => {
                self.observe_exchange(&exchange);
                let code = crate::http::status_of(&exchange.response);
                if (200..300).contains(&code) {
                    status(StatusCode::OK)
                } else {
                    status(StatusCode::SERVER_URI_ERROR)
                }
            }
            Err(_) => status(StatusCode::SERVER_URI_ERROR),
        }
    }

    /// HGET (5.3.1): fetch MO data from the ServerURI and store it at the
    /// ClientURI, or, without one, where the client chooses (new instances
    /// get MIIDs the client assigns); every stored ClientURI is returned.
    pub(crate) async fn cmd_hget(
        &mut self,
        ctx: &SessionCtx,
        server_uri: &ServerUri,
        uri: Option<&ClientUri>,
    ) -> Status {
        let target = server_uri.resolve(&self.uri_params());
        let headers = [
            ("Accept", HGET_ACCEPT.to_owned()),
            (header::DEV_ID, self.config.dev_id.clone()),
        ];
        let exchange = match self
            .http
            .call(Method::GET, &target, &headers, Vec::new())
            .await
        {
            Ok(e) => e,
            Err(_) => return status(StatusCode::SERVER_URI_ERROR),
        };
        self.observe_exchange(&exchange);
        if !(200..300).contains(&crate::http::status_of(&exchange.response)) {
            return status(StatusCode::SERVER_URI_ERROR);
        }
        let content_type = exchange
            .response
            .header("content-type")
            .unwrap_or("")
            .to_owned();
        let body = exchange.response.body;
        match uri {
            Some(uri) => self.hget_at(ctx, uri, &content_type, &body),
            None => {
                if media_type::essence(&content_type) != media_type::MO_DATA {
                    return status(StatusCode::UNSUPPORTED_MEDIA_TYPE);
                }
                match MoDataItem::parse_list(&body) {
                    Ok(items) => self.store_items(ctx, &items),
                    Err(_) => status(StatusCode::UNSUPPORTED_MEDIA_TYPE),
                }
            }
        }
    }

    /// Stores HGET data at a ClientURI: an existing node is replaced
    /// (interior nodes merged), a missing one created below its parent.
    fn hget_at(
        &mut self,
        ctx: &SessionCtx,
        uri: &ClientUri,
        content_type: &str,
        body: &[u8],
    ) -> Status {
        if uri.has_wildcard() {
            return status(StatusCode::BAD_REQUEST);
        }
        let target = match self.write_target(ctx, uri) {
            Ok(t) => t,
            Err(code) => return status(code),
        };
        let Some(schema) = self
            .registry
            .schema_at(target.instance, target.path.names())
        else {
            return status(StatusCode::NOT_FOUND);
        };
        let data = match media_type::essence(content_type).as_str() {
            media_type::MO_DATA => {
                let Ok(items) = MoDataItem::parse_list(body) else {
                    return status(StatusCode::UNSUPPORTED_MEDIA_TYPE);
                };
                // One item whose MOData has one member: the node's data
                // (a receiver accepts any member name, ARCHITECTURE).
                let value = match items.as_slice() {
                    [item] if item.mo_data.len() == 1 => item.mo_data.values().next().cloned(),
                    _ => None,
                };
                match value.map(|v| NodeData::from_json(&v, schema)) {
                    Some(Ok(d)) => d,
                    _ => return status(StatusCode::UNSUPPORTED_MEDIA_TYPE),
                }
            }
            // A bare leaf value (Appendix I.2).
            _ if !schema.format.is_interior() => match Value::from_bare(body, schema.format) {
                Some(v) => NodeData::Leaf(v),
                None => return status(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            },
            _ => return status(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        };
        let code = self.write(
            ctx,
            target.instance,
            vec![Change::Put {
                path: target.path.into_owned(),
                data,
            }],
        );
        status(code)
    }

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
                    .registry
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
        let Some(instance) = self.registry.instance(index) else {
            return StatusCode::NOT_FOUND;
        };
        let root = &instance.mo.schema().root;
        let access = Access::of(&ctx.principal, &self.registry, index);
        for change in &changes {
            let (path, needed) = match change {
                Change::Put { path, data } => {
                    (path, ddf_check_put(instance.mo.as_ref(), root, path, data))
                }
                Change::Delete { path } => (path, ddf_check_delete(root, path)),
            };
            if let Err(code) = needed {
                return code;
            }
            // Every node written or deleted, not only the addressed one: a
            // Path rule below it may deny what the rule above grants (13.2).
            let allowed = match change {
                Change::Put { data, .. } => access.all_have(path, data, Rights::WRITE),
                Change::Delete { .. } => match instance.mo.get(&refs(path)) {
                    Ok(existing) => access.all_have(path, &existing, Rights::WRITE),
                    Err(_) => access.rights(path).contains(Rights::WRITE),
                },
            };
            if !allowed {
                return StatusCode::FORBIDDEN;
            }
        }
        if instance.mo.schema().moid == DACMO_MOID {
            if let Err(code) = self.check_delegation(ctx, index, &changes) {
                return code;
            }
        }
        let Some(instance) = self.registry.instance_mut(index) else {
            return StatusCode::NOT_FOUND;
        };
        if let Err(e) = instance.mo.apply(&changes) {
            return e.status();
        }
        self.registry.touch(index);
        if self.save(index).is_err() {
            return StatusCode::INTERNAL_ERROR;
        }
        self.changed.push(index);
        StatusCode::OK
    }

    /// Puts a saved instance back (at start): into the built-in instance
    /// of that name, or into a new one made by its MO's factory.
    pub(crate) fn restore(&mut self, saved: &SavedInstance) -> Result<(), String> {
        match self.registry.find(&saved.moid, &saved.miid) {
            Some(index) => {
                let Some(instance) = self.registry.instance_mut(index) else {
                    return Err("instance vanished".into());
                };
                let data = NodeData::from_json(&saved.data, &instance.mo.schema().root)
                    .map_err(|e| e.to_string())?;
                instance
                    .mo
                    .apply(&[Change::Put {
                        path: Vec::new(),
                        data,
                    }])
                    .map_err(|e| e.to_string())?;
                instance.owner = saved.owner.clone();
                instance.persistent = true;
                self.registry.restore_changes(index, saved.changes);
            }
            None => {
                let factory = self
                    .registry
                    .factory(&saved.moid)
                    .ok_or_else(|| "this build does not support the MO".to_owned())?;
                let data = NodeData::from_json(&saved.data, &factory.schema.root)
                    .map_err(|e| e.to_string())?;
                let mo = (factory.create)(&saved.miid, &data).map_err(|e| e.to_string())?;
                let index =
                    self.registry
                        .insert_owned(saved.miid.clone(), mo, saved.owner.clone(), true);
                self.registry.restore_changes(index, saved.changes);
            }
        }
        Ok(())
    }

    /// Saves an instance to the state directory, if it is kept there.
    pub(crate) fn save(&self, index: usize) -> Result<(), crate::StateError> {
        let (Some(store), Some(i)) = (&self.store, self.registry.instance(index)) else {
            return Ok(());
        };
        if !i.persistent {
            return Ok(());
        }
        let data = i.mo.get(&[]).map(|d| d.to_json()).unwrap_or(Json::Null);
        store.save_instance(&SavedInstance {
            moid: i.mo.schema().moid.to_owned(),
            miid: i.miid.clone(),
            owner: i.owner.clone(),
            changes: i.changes(),
            data,
        })
    }

    /// Stores MO data items where the client chooses (HGET without
    /// ClientURI, bootstrap): into the instance an item names when it
    /// exists, else into a new instance. Returns every stored ClientURI.
    pub(crate) fn store_items(&mut self, ctx: &SessionCtx, items: &[MoDataItem]) -> Status {
        let mut uris = Vec::new();
        for item in items {
            let Ok(uri) = item.client_uri.parse::<ClientUri>() else {
                return status(StatusCode::UNSUPPORTED_MEDIA_TYPE);
            };
            let moid = uri.moid();
            // The data of the instance root: the single MOData member.
            let value = match item.mo_data.iter().next() {
                Some((name, v)) if item.mo_data.len() == 1 => (name.clone(), v.clone()),
                _ => return status(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            };
            let suggested = match uri.instance() {
                InstanceSelector::Miid(m) => m.as_str().to_owned(),
                _ => value.0.clone(),
            };
            let existing = self
                .registry
                .find(moid, &suggested)
                .filter(|_| uri.path().is_empty());
            let stored = match existing {
                Some(index) => {
                    let Some(schema) = self.registry.instance(index).map(|i| &i.mo.schema().root)
                    else {
                        return status(StatusCode::NOT_FOUND);
                    };
                    let data = match NodeData::from_json(&value.1, schema) {
                        Ok(d) => d,
                        Err(_) => return status(StatusCode::UNSUPPORTED_MEDIA_TYPE),
                    };
                    let code = self.write(
                        ctx,
                        index,
                        vec![Change::Put {
                            path: Vec::new(),
                            data,
                        }],
                    );
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
            if let Some(i) = self.registry.instance(stored) {
                uris.push(ClientUri::for_node::<&str>(moid, &i.miid, &[]));
            }
        }
        Status {
            code: StatusCode::OK,
            uris,
        }
    }

    /// Creates an instance of `moid` from its root data, owned by the
    /// session's server (ARCHITECTURE "Who owns what").
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
                Owner::Server(a.server_id.clone())
            }
            Principal::App(id) => Owner::App(id.clone()),
            Principal::Local => ctx.owner.clone(),
        };
        let Some(factory) = self.registry.factory(moid) else {
            // An MO this device does not support.
            return Err(StatusCode::NOT_FOUND);
        };
        if !factory.schema.root.access.contains(AccessType::ADD) {
            return Err(StatusCode::COMMAND_NOT_ALLOWED);
        }
        let data = NodeData::from_json(json, &factory.schema.root)
            .map_err(|_| StatusCode::UNSUPPORTED_MEDIA_TYPE)?;
        let miid = self.registry.free_miid(moid, suggested);
        let mut mo = (factory.create)(&miid, &data).map_err(|e| e.status())?;
        // Applying no change runs the MO's validate hook on the new data.
        mo.apply(&[]).map_err(|e| e.status())?;
        let persistent = factory.persistent;
        let index = self.registry.insert_owned(miid, mo, owner, persistent);
        if self.save(index).is_err() {
            self.registry.remove(index);
            return Err(StatusCode::INTERNAL_ERROR);
        }
        self.changed.push(index);
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
            let Some(schema) = self.registry.schema_at(r.instance, r.path.names()) else {
                return status(StatusCode::NOT_FOUND);
            };
            if !schema.access.contains(AccessType::DELETE)
                || schema.scope == dm_core::Scope::Permanent
            {
                return status(StatusCode::COMMAND_NOT_ALLOWED);
            }
            // The whole sub-tree goes: Write on every node of it.
            let access = Access::of(&ctx.principal, &self.registry, r.instance);
            let names = r.path.refs();
            let subtree = self
                .registry
                .instance(r.instance)
                .and_then(|i| i.mo.get(&names).ok());
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
                let Some(i) = self.registry.remove(r.instance) else {
                    return status(StatusCode::NOT_FOUND);
                };
                if let Some(store) = &self.store {
                    if store.remove_instance(i.mo.schema().moid, &i.miid).is_err() {
                        return status(StatusCode::INTERNAL_ERROR);
                    }
                }
                // Rules left behind would pass to a later instance of the
                // same MIID; the next start removes them should this fail.
                let _ = self.drop_rules(i.mo.schema().moid, &i.miid);
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

    /// EXEC (5.3.5): every node must allow Exec (405) and the server needs
    /// the Execute right (403). With a ServerURI the result is reported
    /// asynchronously: 202 now, a Generic Alert in a new session (5.4.1).
    pub(crate) fn cmd_exec(
        &mut self,
        ctx: &SessionCtx,
        uri: &ClientUri,
        server_uri: Option<&ServerUri>,
    ) -> Status {
        let resolved = match self.resolve_for(ctx, uri) {
            Ok(r) => r,
            Err(code) => return status(code),
        };
        for r in &resolved {
            if !self
                .registry
                .schema_at(r.instance, r.path.names())
                .is_some_and(|s| s.access.contains(AccessType::EXEC))
            {
                return status(StatusCode::COMMAND_NOT_ALLOWED);
            }
            if !self.rights_on(ctx, r).contains(Rights::EXECUTE) {
                return status(StatusCode::FORBIDDEN);
            }
        }
        let request = ExecRequest {
            asynchronous: server_uri.is_some(),
        };
        let mut code = StatusCode::OK;
        for r in &resolved {
            let path = r.path.refs();
            let Some(instance) = self.registry.instance_mut(r.instance) else {
                return status(StatusCode::NOT_FOUND);
            };
            let moid = instance.mo.schema().moid;
            let result = instance.mo.exec(&path, &request);
            let node_uri = ClientUri::for_node(moid, &instance.miid, &path);
            let outcome = match &result {
                Ok(ExecOutcome::Done) => StatusCode::OK,
                Ok(ExecOutcome::Started) => StatusCode::ACCEPTED,
                Err(e) => e.status(),
            };
            if result.is_ok() {
                // An Exec may change data (DCMO's Enabled): keep it.
                self.registry.touch(r.instance);
                let _ = self.save(r.instance);
                self.changed.push(r.instance);
            }
            match server_uri {
                Some(target) => {
                    let mut alert = Alert::new(crate::client::operation_complete_alert(moid));
                    alert.source_uri = Some(node_uri);
                    alert.data_type = Some("application/json".into());
                    alert.data = Some(serde_json::json!({ "sc": outcome.as_u16() }));
                    self.pending_alerts.push(PendingAlert {
                        server_uri: target.resolve(&self.uri_params()),
                        alert,
                    });
                    code = StatusCode::ACCEPTED;
                }
                None if !outcome.is_success() => return status(outcome),
                None if outcome == StatusCode::ACCEPTED => code = outcome,
                None => {}
            }
        }
        status(code)
    }

    /// SHOW (5.3.7): start the Web Browser Component (`--show-cmd`) on the
    /// ServerURI and go on without waiting for the UI session.
    pub(crate) fn cmd_show(&mut self, server_uri: &ServerUri) -> Status {
        let Some(cmd) = &self.show_cmd else {
            // No browser component on this device.
            return status(StatusCode::NOT_IMPLEMENTED);
        };
        let uri = server_uri.resolve(&self.uri_params());
        let mut words = cmd.split_whitespace();
        let Some(program) = words.next() else {
            return status(StatusCode::NOT_IMPLEMENTED);
        };
        let spawned = std::process::Command::new(program)
            .args(words)
            .arg(&uri)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        match spawned {
            Ok(mut child) => {
                // Reap it in the background so it never lingers as a zombie.
                std::thread::spawn(move || {
                    let _ = child.wait();
                });
                status(StatusCode::OK)
            }
            Err(_) => status(StatusCode::INTERNAL_ERROR),
        }
    }

    /// DEFAULT (5.3.10): one ServerURI per MOID, the newest replacing.
    pub(crate) fn cmd_default(&mut self, server_uri: &ServerUri, moid: &str) -> Status {
        self.agent.defaults.retain(|(m, _)| m != moid);
        self.agent
            .defaults
            .push((moid.to_owned(), server_uri.as_str().to_owned()));
        status(self.save_agent())
    }

    /// SUB (5.3.11): PUT the subtree to the ServerURI on every change.
    pub(crate) fn cmd_sub(
        &mut self,
        ctx: &SessionCtx,
        server_uri: &ServerUri,
        uri: &ClientUri,
    ) -> Status {
        if let Err(code) = self.read_nodes(ctx, uri) {
            return status(code);
        }
        let client_uri = uri.to_string();
        let server_id = match &ctx.principal {
            Principal::Server(a) => Some(a.server_id.clone()),
            Principal::App(_) | Principal::Local => None,
        };
        self.agent
            .subscriptions
            .retain(|s| !(s.client_uri == client_uri && s.server_id == server_id));
        self.agent.subscriptions.push(Subscription {
            server_id,
            client_uri,
            server_uri: server_uri.as_str().to_owned(),
        });
        status(self.save_agent())
    }

    /// UNSUB (5.3.12): the ClientURI of an earlier SUB, else 404.
    pub(crate) fn cmd_unsub(&mut self, ctx: &SessionCtx, uri: &ClientUri) -> Status {
        let client_uri = uri.to_string();
        let server_id = match &ctx.principal {
            Principal::Server(a) => Some(a.server_id.clone()),
            Principal::App(_) | Principal::Local => None,
        };
        let before = self.agent.subscriptions.len();
        self.agent
            .subscriptions
            .retain(|s| !(s.client_uri == client_uri && s.server_id == server_id));
        if self.agent.subscriptions.len() == before {
            return status(StatusCode::NOT_FOUND);
        }
        status(self.save_agent())
    }

    pub(crate) fn save_agent(&self) -> StatusCode {
        match &self.store {
            Some(store) if store.save_agent_state(&self.agent).is_err() => {
                StatusCode::INTERNAL_ERROR
            }
            _ => StatusCode::OK,
        }
    }

    /// Sends the subtree of every subscription whose MO changed (5.3.11):
    /// HTTP PUT, and once more with a type from `OMADM-Accept` on 415.
    pub(crate) async fn notify_subscribers(&mut self) {
        let changed = std::mem::take(&mut self.changed);
        if changed.is_empty() || self.agent.subscriptions.is_empty() {
            return;
        }
        let moids: Vec<String> = changed
            .iter()
            .filter_map(|i| {
                self.registry
                    .instance(*i)
                    .map(|i| i.mo.schema().moid.to_owned())
            })
            .collect();
        for sub in self.agent.subscriptions.clone() {
            let Ok(uri) = sub.client_uri.parse::<ClientUri>() else {
                continue;
            };
            if !moids.iter().any(|m| m == uri.moid()) {
                continue;
            }
            let ctx = SessionCtx::for_server_id(self, sub.server_id.as_deref());
            let Ok(items) = self.read_nodes(&ctx, &uri) else {
                continue;
            };
            let target = ServerUri::new(sub.server_uri.clone()).resolve(&self.uri_params());
            let mut accept: Option<String> = None;
            for _attempt in 0..2 {
                let Some((content_type, body)) =
                    choose_format(&items, uri.has_wildcard(), accept.as_deref())
                else {
                    break;
                };
                let headers = [
                    ("Content-Type", content_type),
                    (header::DEV_ID, self.config.dev_id.clone()),
                ];
                let Ok(exchange) = self.http.call(Method::PUT, &target, &headers, body).await
                else {
                    break;
                };
                self.observe_exchange(&exchange);
                if crate::http::status_of(&exchange.response) != 415 {
                    break;
                }
                accept = exchange.response.header(header::ACCEPT).map(str::to_owned);
                if accept.is_none() {
                    break;
                }
            }
        }
    }
}

/// The DDF check of a write: Add for every node the data creates, Replace
/// for every existing leaf it overwrites.
fn ddf_check_put(
    mo: &dyn dm_core::ManagementObject,
    root: &NodeSchema,
    path: &[String],
    data: &NodeData,
) -> Result<(), StatusCode> {
    let Some(schema) = root.descendant(&refs(path)) else {
        return Err(StatusCode::NOT_FOUND);
    };
    let exists = mo.contains(&refs(path));
    let needed = match (exists, schema.format.is_interior()) {
        (false, _) => AccessType::ADD,
        (true, false) => AccessType::REPLACE,
        // An existing interior node is not itself rewritten.
        (true, true) => AccessType::NONE,
    };
    if !schema.access.contains(needed) {
        return Err(StatusCode::COMMAND_NOT_ALLOWED);
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

fn ddf_check_delete(root: &NodeSchema, path: &[String]) -> Result<(), StatusCode> {
    match root.descendant(&refs(path)) {
        Some(s)
            if s.access.contains(AccessType::DELETE) && s.scope != dm_core::Scope::Permanent =>
        {
            Ok(())
        }
        Some(_) => Err(StatusCode::COMMAND_NOT_ALLOWED),
        None => Err(StatusCode::NOT_FOUND),
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

/// One node as read for GET, HPUT, HPOST or a SUB notification: what an
/// MO data item (spec 7.2.1.4) carries, with the data kept as the MO gave
/// it so that it is written once, straight into the body that sends it.
/// Its ClientURI is only made when an MO data item is written: a single
/// leaf goes out bare, without one.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReadNode<'a> {
    ddf: &'static str,
    moid: &'static str,
    miid: &'a str,
    /// Names from the instance root; empty for the root itself.
    path: NodePath<'a>,
    cv: Option<&'a str>,
    data: ReadData,
}

/// A read node's data.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ReadData {
    /// As the MO gave it, without what the principal may not read.
    Tree(NodeData),
    /// An instance root's MOData value as JSON, written by the MO
    /// (only for GET, see [`Device::read`]).
    Json(Vec<u8>),
}

impl ReadNode<'_> {
    fn client_uri(&self) -> String {
        ClientUri::for_node(self.moid, self.miid, &self.path.refs())
    }

    /// ARCHITECTURE "MOData naming": the addressed node's name, the MIID
    /// at an instance root.
    fn member(&self) -> &str {
        self.path.last().unwrap_or(self.miid)
    }

    fn as_item<'s>(&'s self, client_uri: &'s str) -> MoDataRef<'s> {
        MoDataRef {
            ddf: Some(self.ddf).filter(|u| !u.is_empty()),
            client_uri,
            cv: self.cv,
            member: self.member(),
            data: match &self.data {
                ReadData::Tree(data) => MoDataValue::Node(data),
                ReadData::Json(json) => MoDataValue::Json(json),
            },
        }
    }

    /// The item as [`MoDataItem`] (the local API hands these out).
    pub(crate) fn into_item(self) -> MoDataItem {
        let client_uri = self.client_uri();
        let mut mo_data = Map::new();
        let value = match &self.data {
            ReadData::Tree(data) => data.to_json(),
            // Not made by the readers that hand items out; valid JSON if so.
            ReadData::Json(json) => serde_json::from_slice(json).unwrap_or_default(),
        };
        mo_data.insert(self.member().to_owned(), value);
        MoDataItem {
            ddf: Some(self.ddf.to_owned()).filter(|u| !u.is_empty()),
            client_uri,
            cv: self.cv.map(str::to_owned),
            mo_data,
        }
    }
}

/// MO serialization (spec 7.2.1.4) of read nodes: always an array.
fn write_mo_serialization(items: &[ReadNode], out: &mut Vec<u8>) {
    out.reserve(256 * items.len());
    // An array of items, whose ClientURIs are made in one buffer.
    let mut uri = String::with_capacity(64);
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        uri.clear();
        ClientUri::write_for_node(&mut uri, item.moid, item.miid, &item.path.refs());
        item.as_item(&uri).write_json(out);
    }
    out.push(b']');
}

/// A single leaf goes out bare, unless a wildcard or a list is involved.
fn bare_leaf<'i>(items: &'i [ReadNode], list: bool) -> Option<&'i Value> {
    match items {
        [ReadNode {
            data: ReadData::Tree(NodeData::Leaf(v)),
            ..
        }] if !list => Some(v),
        _ => None,
    }
}

/// The media type [`write_items`] writes.
fn media_type_of(items: &[ReadNode], list: bool) -> &'static str {
    bare_leaf(items, list).map_or(media_type::MO_DATA, Value::bare_media_type)
}

/// Writes read data: a single leaf bare, otherwise MO serialization.
fn write_items(items: &[ReadNode], list: bool, out: &mut Vec<u8>) {
    match bare_leaf(items, list) {
        Some(v) => {
            v.write_bare(out);
        }
        None => write_mo_serialization(items, out),
    }
}

/// [`write_items`] as a Content-Type and a body.
fn encode_items(items: &[ReadNode], list: bool) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    write_items(items, list, &mut body);
    (media_type_of(items, list).to_owned(), body)
}

/// The format for data sent to a Data Repository, honouring the
/// `OMADM-Accept` the server gave (5.5): `None` when nothing fits (406).
fn choose_format(
    items: &[ReadNode],
    list: bool,
    accept: Option<&str>,
) -> Option<(String, Vec<u8>)> {
    let Some(accept) = accept else {
        return Some(encode_items(items, list));
    };
    let accepted: Vec<String> = accept
        .split(',')
        .map(media_type::essence)
        .filter(|t| !t.is_empty())
        .collect();
    let fits = |t: &str| {
        accepted.iter().any(|a| {
            a == t || a == "*/*" || (a.ends_with("/*") && t.starts_with(a.trim_end_matches('*')))
        })
    };
    let preferred = encode_items(items, list);
    if fits(&media_type::essence(&preferred.0)) {
        return Some(preferred);
    }
    // The other form: MO serialization of a single leaf.
    if fits(media_type::MO_DATA) {
        let mut body = Vec::new();
        write_mo_serialization(items, &mut body);
        return Some((media_type::MO_DATA.to_owned(), body));
    }
    None
}

/// Keeps `level` sublevels of children (the `lv` query field, 6.1.1.3);
/// deeper interior nodes are sent as `{}` (7.2.1.4: "If the child nodes are
/// not transferred, the empty JSON object").
pub(crate) fn truncate(data: &mut NodeData, level: u32) {
    if let NodeData::Interior(children) = data {
        if level == 0 {
            children.clear();
            return;
        }
        for (_, c) in children.iter_mut() {
            if let NodeData::Interior(_) = c {
                truncate(c, level - 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lv_keeps_n_sublevels() {
        let leaf = || NodeData::Leaf(Value::Int(1));
        let mut d = NodeData::Interior(vec![
            ("a".into(), leaf()),
            ("b".into(), NodeData::Interior(vec![("c".into(), leaf())])),
        ]);
        truncate(&mut d, 1);
        assert_eq!(d.to_json().to_string(), r#"{"a":1,"b":{}}"#);
    }

    #[test]
    fn parent_uri_of_a_plain_path() {
        let u: ClientUri = "urn:x:1.0/m1/A/B".parse().unwrap();
        assert_eq!(parent_of(&u).unwrap().to_string(), "urn:x:1.0/m1/A");
        let u: ClientUri = "urn:x:1.0//A".parse().unwrap();
        assert_eq!(parent_of(&u).unwrap().to_string(), "urn:x:1.0//");
    }

    /// A device with the standard MOs and a DMAcc account per SrvID in
    /// `ids` (Perm list `*`), bootstrapped from a factory file.
    fn with_accounts(ids: &[&str]) -> Device {
        let mut device = Device::new(
            crate::client::DeviceConfig::new("IMEI:1"),
            crate::standard_registry("IMEI:1"),
        );
        let accounts: Vec<serde_json::Value> = ids
            .iter()
            .map(|id| {
                serde_json::json!({
                    "ClientURI": format!("urn:oma:mo:oma-dm-dmacc:1.2/{id}/"),
                    "MOData": { *id: {
                        "SrvID": id, "SrvURI": "https://dm.example/dm", "Name": id,
                        "Perm": { "p0": { "MOID": "*" } },
                    } }
                })
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bootstrap.json");
        std::fs::write(&file, serde_json::Value::from(accounts).to_string()).unwrap();
        crate::service::apply_bootstrap(&mut device, &file).unwrap();
        device
    }

    #[test]
    fn the_plain_path_resolver_agrees_with_the_general_one() {
        use crate::client::SessionCtx;
        use crate::tree::Owner;
        let device = with_accounts(&["s1", "s2"]);
        let devinfo = "urn:oma:mo:oma-dm-devinfo:1.2";
        let uris = [
            format!("{devinfo}//"),
            format!("{devinfo}//DevID"),
            format!("{devinfo}//Ext"),
            format!("{devinfo}//NoSuchNode"),
            format!("{devinfo}//DevID/Deeper"),
            format!("{devinfo}/devinfo/Mod"),
            format!("{devinfo}/nosuchmiid/Mod"),
            "urn:oma:mo:oma-sessioninfomo:1.0//CBT".into(),
            "urn:oma:mo:no-such-mo:1.0//".into(),
            format!("{devinfo}/*/Mod"),
            format!("{devinfo}/*/"),
            format!("{devinfo}/*/NoSuchNode"),
            // Two DMAcc accounts: `*` finds both.
            "urn:oma:mo:oma-dm-dmacc:1.2/*/".into(),
            "urn:oma:mo:oma-dm-dmacc:1.2/*/SrvID".into(),
            "urn:oma:mo:oma-dm-dmacc:1.2/*/NoSuchNode".into(),
            "urn:oma:mo:oma-dm-dmacc:1.2/s2/SrvID".into(),
            "urn:oma:mo:no-such-mo:1.0/*/".into(),
            // x-names: one instance matches, none, or both.
            format!("{devinfo}/(x)/FwV?nv=(x)/DmV:2.0"),
            format!("{devinfo}/(x)/FwV?nv=(x)/DmV:9.9"),
            "urn:oma:mo:oma-dm-dmacc:1.2/(x)/SrvURI?nv=(x)/SrvID:s2".into(),
            "urn:oma:mo:oma-dm-dmacc:1.2/(x)/?nv=(x)/SrvID:s1&nv=(x)/Name:s1".into(),
            "urn:oma:mo:oma-dm-dmacc:1.2/(x)/?nv=(x)/SrvURI:https%3A%2F%2Fdm.example%2Fdm".into(),
            "urn:oma:mo:oma-dm-dmacc:1.2/(x)/NoSuchNode?nv=(x)/SrvID:s1".into(),
        ];
        let contexts = [
            SessionCtx::local(Owner::Device),
            SessionCtx {
                principal: Principal::App("some-app".into()),
                server_accept: None,
                owner: Owner::Device,
            },
            // A server sees its own account, not the other's.
            SessionCtx::for_server_id(&device, Some("s1")),
        ];
        let mut fast = 0;
        for ctx in &contexts {
            for text in &uris {
                let uri: ClientUri = text.parse().unwrap();
                let general = device.resolve_general(ctx, &uri);
                if let Some(nodes) = device.resolve_plain(ctx, &uri) {
                    fast += 1;
                    // The fast path lends the URI's names, copying none.
                    assert!(nodes.iter().all(|n| matches!(n.path, NodePath::Uri(_))));
                    assert_eq!(general, Ok(nodes), "{text}");
                }
                assert_eq!(device.resolve_for(ctx, &uri), general, "{text}");
            }
        }
        // 30 of the 66 cases when written, x-names and `*` included.
        assert!(fast >= 28, "the fast path took only {fast} URIs");
        // `*` over both accounts, in the general resolver's order.
        let all: ClientUri = "urn:oma:mo:oma-dm-dmacc:1.2/*/SrvID".parse().unwrap();
        let nodes = device.resolve_plain(&contexts[0], &all).unwrap();
        assert_eq!(nodes.len(), 2);
        let nodes = device.resolve_plain(&contexts[2], &all).unwrap();
        assert_eq!(nodes.len(), 1);
    }

    #[test]
    fn root_json_of_the_standard_mos_is_their_readable_tree() {
        let device = with_accounts(&["s1"]);
        let mut moids = Vec::new();
        for (_, instance) in device.registry.instances() {
            let mut direct = Vec::new();
            assert!(
                instance.mo.write_root_json(&mut direct),
                "{}",
                instance.miid
            );
            let mut data = instance.mo.get(&[]).unwrap();
            data.retain_readable(&instance.mo.schema().root);
            let mut built = Vec::new();
            data.write_json(&mut built);
            let text = String::from_utf8(direct).unwrap();
            assert_eq!(text, String::from_utf8(built).unwrap(), "{}", instance.miid);
            if instance.miid == "s1" {
                // The Perm list has no Get.
                assert!(!text.contains("Perm"), "{text}");
                assert!(text.contains("\"SrvID\":\"s1\""), "{text}");
            }
            moids.push(instance.mo.schema().moid);
        }
        for moid in [
            "urn:oma:mo:oma-dm-devinfo:1.2",
            "urn:oma:mo:oma-dm-dmacc:1.2",
            "urn:oma:mo:oma-dm-dacmo:1.0",
            "urn:oma:mo:oma-sessioninfomo:1.0",
        ] {
            assert!(moids.contains(&moid), "{moid} not compared: {moids:?}");
        }
    }

    #[test]
    fn read_nodes_are_written_as_their_mo_data_items() {
        let nodes = [
            ReadNode {
                ddf: "https://omadm.example/ddf/x.xml",
                moid: "urn:x:1.0",
                miid: "m",
                path: NodePath::Owned(Vec::new()),
                cv: Some("1-ab"),
                data: ReadData::Tree(NodeData::Interior(vec![(
                    "A".into(),
                    NodeData::Leaf(Value::Int(3)),
                )])),
            },
            ReadNode {
                ddf: "",
                moid: "urn:x:1.0",
                miid: "m 2",
                path: NodePath::Owned(vec!["A".into(), "b/c".into()]),
                cv: None,
                data: ReadData::Tree(NodeData::Leaf(Value::Chr("v".into()))),
            },
        ];
        let items: Vec<MoDataItem> = nodes.iter().cloned().map(ReadNode::into_item).collect();
        assert_eq!(items[0].client_uri, "urn:x:1.0/m/");
        assert_eq!(items[0].mo_data.keys().collect::<Vec<_>>(), ["m"]);
        // Names percent-encoded in the URI, as they are in the member.
        assert_eq!(items[1].client_uri, "urn:x:1.0/m%202/A/b%2Fc");
        assert_eq!(items[1].mo_data.keys().collect::<Vec<_>>(), ["b/c"]);
        // Two items, or one under a wildcard: MO serialization.
        let (content_type, body) = encode_items(&nodes, false);
        assert_eq!(content_type, media_type::MO_DATA);
        assert_eq!(body, serde_json::to_vec(&items).unwrap());
        let (content_type, one) = encode_items(&nodes[1..], true);
        assert_eq!(content_type, media_type::MO_DATA);
        assert_eq!(one, serde_json::to_vec(&items[1..]).unwrap());
        assert_eq!(
            encode_items(&nodes[1..], false),
            ("text/plain".into(), b"v".to_vec())
        );
        assert_eq!(MoDataItem::parse_list(&body).unwrap(), items);
    }

    #[test]
    fn omadm_accept_decides_the_format() {
        let items = vec![ReadNode {
            ddf: "",
            moid: "urn:x:1.0",
            miid: "m",
            path: NodePath::Owned(vec!["A".into()]),
            cv: None,
            data: ReadData::Tree(NodeData::Leaf(Value::Bool(true))),
        }];
        assert_eq!(choose_format(&items, false, None).unwrap().0, "text/plain");
        assert_eq!(
            choose_format(&items, false, Some("application/dmmo+json"))
                .unwrap()
                .0,
            "application/dmmo+json"
        );
        assert_eq!(
            choose_format(&items, false, Some("text/*")).unwrap().0,
            "text/plain"
        );
        assert!(choose_format(&items, false, Some("application/xml")).is_none());
    }
}
