//! A `<Node>` (spec 6.4): its definition opened in the arena when the
//! element starts, and every check that needs the whole node when it ends
//! (required elements, duplicates, sibling names, defaults, MOID place).

use dm_core::{AccessType, Format, Occurrence, Scope};

use super::{Open, Parser};
use crate::error::DdfErrorKind;
use crate::ir::{typed_default, Ddf, Mime, NodeDef, NodeId, RustNames};

impl Parser<'_> {
    pub(super) fn open_node(&mut self, offset: usize) {
        let id = NodeId(self.ddf.nodes.len() as u32);
        let parent = self.current();
        self.ddf.nodes.push(NodeDef {
            name: None,
            parent,
            children: Vec::new(),
            path: None,
            // Placeholders until the node's DFProperties are read; a node
            // without them is an error.
            format: Format::Node,
            access: AccessType::NONE,
            occurrence: Occurrence::One,
            // The DM 1.2 TND makes Dynamic the scope of a node that names
            // none.
            scope: Scope::Dynamic,
            title: None,
            description: None,
            default_value: None,
            value: None,
            default: None,
            moid: None,
            mime: Mime::None,
            case_sense: None,
            ext: (0, 0),
            rust: RustNames::default(),
            offset,
        });
        match parent {
            Some(p) => self.ddf.node_mut(p).children.push(id),
            None => self.ddf.roots.push(id),
        }
        self.open.push(Open {
            id,
            offset,
            name_seen: false,
            props_offset: None,
            access_seen: false,
            format_offset: None,
            formats: 0,
            occ_kind: None,
            occ_count: String::new(),
            occurrences: 0,
            ddf_name_seen: false,
            problems: Vec::new(),
            duplicates: Vec::new(),
            seen: 0,
        });
    }

    /// The end of a `<Node>`: every check that needs the whole node.
    pub(super) fn close_node(&mut self) {
        let Some(mut open) = self.open.pop() else {
            return;
        };
        let id = open.id;
        // The node's path, for messages only: computed when needed.
        let mut shown_cache: Option<String> = None;
        let mut shown = |ddf: &Ddf| {
            shown_cache
                .get_or_insert_with(|| ddf.display_path(id))
                .clone()
        };
        let mut faults = Vec::new();
        if !open.name_seen {
            faults.push((open.offset, DdfErrorKind::MissingNodeName));
        }
        for (at, element) in &open.duplicates {
            faults.push((
                *at,
                DdfErrorKind::DuplicateElement {
                    node: shown(&self.ddf),
                    element: (*element).into(),
                },
            ));
        }
        match open.props_offset {
            None => faults.push((
                open.offset,
                DdfErrorKind::MissingDfProperties(shown(&self.ddf)),
            )),
            Some(props) => {
                if !open.access_seen {
                    faults.push((props, DdfErrorKind::MissingAccessType(shown(&self.ddf))));
                }
                match open.format_offset {
                    None => faults.push((props, DdfErrorKind::MissingFormat(shown(&self.ddf)))),
                    Some(at) if open.formats == 0 => {
                        faults.push((at, DdfErrorKind::MissingFormat(shown(&self.ddf))))
                    }
                    Some(_) => {}
                }
            }
        }
        let mut problems = std::mem::take(&mut open.problems);
        self.settle_occurrence(id, &open, &mut problems);
        for (at, reason) in problems {
            faults.push((
                at,
                DdfErrorKind::BadProperty {
                    node: shown(&self.ddf),
                    reason,
                },
            ));
        }

        let node = self.ddf.node(id);
        if !node.is_interior() {
            if let Some(first) = node.children.first() {
                let at = self.ddf.node(*first).offset;
                if open.ddf_name_seen {
                    // Children and DFType/DDFName both say interior; only
                    // the format disagrees (Windows Defender.xml).
                    let format = node.format.to_string();
                    self.ddf.node_mut(id).format = Format::Node;
                    faults.push((
                        open.offset,
                        DdfErrorKind::LeafFormatReadAsInterior {
                            node: shown(&self.ddf),
                            format,
                        },
                    ));
                } else {
                    faults.push((at, DdfErrorKind::LeafWithChildren(shown(&self.ddf))));
                }
            }
        }
        let node = self.ddf.node(id);
        let interior = node.is_interior();
        // Sibling names are unique (6.3.1.3); one un-named child at most.
        // (A scratch vector of child ids, sorted by name: no allocation per
        // node.)
        let mut named = std::mem::take(&mut self.scratch);
        named.clear();
        let mut unnamed = false;
        for c in &node.children {
            let child = self.ddf.node(*c);
            match &child.name {
                Some(_) => named.push(*c),
                None if unnamed => faults.push((
                    child.offset,
                    DdfErrorKind::DuplicateUnnamed {
                        parent: shown(&self.ddf),
                    },
                )),
                None => unnamed = true,
            }
        }
        if named.len() > 1 {
            let ddf = &self.ddf;
            let name_of = |c: &NodeId| ddf.node(*c).name.as_deref().unwrap_or_default();
            named.sort_unstable_by(|a, b| name_of(a).cmp(name_of(b)).then(a.cmp(b)));
            for pair in named.windows(2) {
                if name_of(&pair[0]) == name_of(&pair[1]) {
                    faults.push((
                        ddf.node(pair[1]).offset,
                        DdfErrorKind::DuplicateSibling {
                            parent: shown(ddf),
                            name: name_of(&pair[0]).to_owned(),
                        },
                    ));
                }
            }
        }
        self.scratch = named;
        // Warnings.
        if let Some(name) = &node.name {
            if !is_node_name(name) {
                faults.push((
                    open.offset,
                    DdfErrorKind::BadNodeName {
                        node: shown(&self.ddf),
                        name: name.clone(),
                    },
                ));
            }
        }
        if node.value.is_some() && !node.children.is_empty() {
            faults.push((
                open.offset,
                DdfErrorKind::ValueWithChildren {
                    node: shown(&self.ddf),
                },
            ));
        }
        let mut drop_moid = false;
        if let Some(moid) = &node.moid {
            if !interior {
                drop_moid = true;
                faults.push((
                    open.offset,
                    DdfErrorKind::MoidOnLeaf {
                        node: shown(&self.ddf),
                    },
                ));
            } else if node.parent.is_some() {
                faults.push((
                    open.offset,
                    DdfErrorKind::NestedMoid {
                        node: shown(&self.ddf),
                        moid: moid.clone(),
                    },
                ));
            }
        }
        let default_text = node.default_value.as_ref().or(node.value.as_ref());
        let mut default = None;
        if let (false, Some(text)) = (interior, default_text) {
            default = typed_default(node.format, text);
            if default.is_none() {
                faults.push((
                    open.offset,
                    DdfErrorKind::BadDefault {
                        node: shown(&self.ddf),
                        value: text.clone(),
                        format: node.format.to_string(),
                    },
                ));
            }
        }
        let node = self.ddf.node_mut(id);
        node.default = default;
        if drop_moid {
            node.moid = None;
        }
        if let Some(p) = &mut node.path {
            // `./Vendor/MSFT/` and `./Vendor/MSFT` are the same place.
            while p.len() > 1 && p.ends_with('/') {
                p.pop();
            }
        }
        self.faults.extend(faults);
    }
}

/// `1*unreserved` (spec 6.1.1), as `dm_core::is_node_name`, on bytes.
fn is_node_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}
