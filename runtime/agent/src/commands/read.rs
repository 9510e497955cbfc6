//! Reads: GET (5.3.6) and the reads behind HPUT, HPOST, SUB and the local
//! API, checked for Get (405) and Read (403); the read nodes and how they
//! are written as MO data (7.2.1.4, Appendix F).

use dm_core::multipart::ResponseWriter;
use dm_core::package::media_type;
use dm_core::{
    AccessType, ClientUri, Format, MoDataItem, MoDataRef, MoDataValue, NodeData, NodeSchema,
    Rights, Status, StatusCode, Value,
};
use serde_json::Map;
use smallvec::SmallVec;

use super::status;
use crate::access::Access;
use crate::client::{Device, SessionCtx};
use crate::tree::{NodePath, Target};

/// The nodes one read gives: one but under wildcards, kept inline.
pub(crate) type ReadNodes<'a> = SmallVec<[ReadNode<'a>; 1]>;

impl Device {
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
    /// as JSON straight from the MO's fields when the MO can (a derived
    /// MO; `write_root_json` on `dyn ManagementObject`): the same bytes,
    /// without the tree. GET asks for it; the other readers want the tree.
    fn read<'a>(
        &'a self,
        ctx: &SessionCtx,
        uri: &'a ClientUri,
        root_json: bool,
    ) -> Result<ReadNodes<'a>, StatusCode> {
        let resolved = self.resolve_for(ctx, uri)?;
        // spec 11.1: the instance's validator serves a read of any node in
        // it; 304 only once the read itself is allowed (Appendix C), and
        // only when every instance read is unchanged.
        if let Some(cv) = &uri.query().cache_validator {
            let mut readable = 0;
            let mut fresh = true;
            for r in &resolved {
                if self.may_read(ctx, uri, r)?.is_some() {
                    readable += 1;
                    fresh &= self.cache_validator(r.instance) == Some(cv.as_str());
                }
            }
            if readable > 0 && fresh {
                return Err(StatusCode::NOT_MODIFIED);
            }
        }
        let mut out = ReadNodes::with_capacity(resolved.len());
        for r in resolved {
            let Some((schema, access)) = self.may_read(ctx, uri, &r)? else {
                continue;
            };
            let names = r.path.refs();
            let Some(instance) = self.registry().instance(r.instance) else {
                return Err(StatusCode::NOT_FOUND);
            };
            let whole_root =
                root_json && r.path.is_empty() && uri.query().level.is_none() && access.uniform();
            let json = whole_root
                .then(|| {
                    // Room for a small MO's root (DevInfo's is some 350
                    // bytes): growing step by step cost more than writing.
                    let mut json = Vec::with_capacity(512);
                    instance.mo().write_root_json(&mut json).then_some(json)
                })
                .flatten();
            let data = if let Some(json) = json {
                ReadData::Json(json)
            } else {
                let mut data = instance.mo().get(&names).map_err(|e| e.status())?;
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
            let schema_mo = instance.mo().schema();
            out.push(ReadNode {
                ddf: schema_mo.ddf_url.unwrap_or_default(),
                moid: schema_mo.moid,
                miid: instance.miid(),
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

    /// The checks of a read of one resolved node: its schema must allow Get
    /// (405) and the principal must hold Read there (403). Under a wildcard
    /// such a node is left out instead (`None`).
    fn may_read<'s>(
        &'s self,
        ctx: &'s SessionCtx,
        uri: &ClientUri,
        r: &Target<'_>,
    ) -> Result<Option<(&'static NodeSchema, Access<'s>)>, StatusCode> {
        let names = r.path.refs();
        let Some(schema) = self.registry().schema_at(r.instance, names.iter().copied()) else {
            return Err(StatusCode::NOT_FOUND);
        };
        if !schema.access.contains(AccessType::GET) {
            if uri.has_wildcard() {
                return Ok(None);
            }
            return Err(StatusCode::COMMAND_NOT_ALLOWED);
        }
        let access = Access::of(&ctx.principal, self.registry(), r.instance);
        if !access.rights(&names).contains(Rights::READ) {
            if uri.has_wildcard() {
                return Ok(None);
            }
            return Err(StatusCode::FORBIDDEN);
        }
        Ok(Some((schema, access)))
    }

    /// The cache validator of an instance (11.1), from the registry's
    /// change clock at its last change ([`Registry::touch`]).
    /// None for an MO that owns its data: the runtime cannot tell that
    /// the device did not change it, so it gives no validator and never
    /// answers 304 there.
    pub(crate) fn cache_validator(&self, index: usize) -> Option<&str> {
        let instance = self.registry().instance(index)?;
        if instance.mo().owns_data() {
            return None;
        }
        Some(instance.cache_validator().as_str())
    }
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

impl ReadNode<'_> {
    /// The instance read: (MOID, MIID).
    pub(crate) fn instance_key(&self) -> (&'static str, &str) {
        (self.moid, self.miid)
    }
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

    /// docs/architecture.md "MOData naming": the addressed node's name, the MIID
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
pub(super) fn choose_format(
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
    use super::super::test_device::with_accounts;
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
    fn root_json_of_the_standard_mos_is_their_readable_tree() {
        let device = with_accounts(&["s1"]);
        let mut moids = Vec::new();
        for (_, instance) in device.registry().instances() {
            let mut direct = Vec::new();
            assert!(
                instance.mo().write_root_json(&mut direct),
                "{}",
                instance.miid()
            );
            let mut data = instance.mo().get(&[]).unwrap();
            data.retain_readable(&instance.mo().schema().root);
            let mut built = Vec::new();
            data.write_json(&mut built);
            let text = String::from_utf8(direct).unwrap();
            assert_eq!(
                text,
                String::from_utf8(built).unwrap(),
                "{}",
                instance.miid()
            );
            if instance.miid() == "s1" {
                // The Perm list has no Get.
                assert!(!text.contains("Perm"), "{text}");
                assert!(text.contains("\"SrvID\":\"s1\""), "{text}");
            }
            moids.push(instance.mo().schema().moid);
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
