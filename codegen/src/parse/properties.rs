//! Readers of the DFProperties values (spec 6.4): the elements inside
//! AccessType, DFFormat, Occurrence, Scope and CaseSense, by their DTD
//! names, and the occurrence a node ends up with once it is closed. A bad
//! value is a problem of the node, reported when the node's path is known.

use std::borrow::Cow;

use dm_core::{AccessType, Format, Occurrence, Scope};

use super::{as_str, lossy, Open, Parser};
use crate::ir::{CaseSense, NodeId};

impl Parser<'_> {
    /// An element inside `<AccessType>`: one more access type of the node.
    pub(super) fn access_element(&mut self, name: &[u8], offset: usize) {
        match access_type(name) {
            Ok(a) => {
                let id = self.current();
                if let Some(id) = id {
                    let node = self.ddf.node_mut(id);
                    node.access = node.access.union(a.unwrap_or(AccessType::NONE));
                }
            }
            Err(err) => self.problem(offset, err.to_string()),
        }
    }

    /// An element inside `<DFFormat>`: the node's format; a second one is
    /// a problem.
    pub(super) fn format_element(&mut self, name: &[u8], offset: usize) {
        let text = as_str(name);
        let first = self.open.last_mut().map(|o| {
            o.formats += 1;
            o.formats == 1
        });
        if first == Some(true) {
            match format(name).ok_or(()).or_else(|()| text.parse::<Format>()) {
                Ok(f) => {
                    if let Some(id) = self.current() {
                        self.ddf.node_mut(id).format = f;
                    }
                }
                Err(err) => self.problem(offset, err.to_string()),
            }
        } else {
            self.problem(offset, "<DFFormat> names more than one format".into());
        }
    }

    /// An element inside `<Occurrence>`: its kind, kept until the node
    /// closes (its count, if any, is the element's text).
    pub(super) fn occurrence_element(&mut self, name: &[u8], offset: usize) {
        if let Some(o) = self.open.last_mut() {
            o.occurrences += 1;
            o.occ_kind = Some((occurrence_name(name), offset));
            o.occ_count.clear();
        }
    }

    /// An element inside `<Scope>`.
    pub(super) fn scope_element(&mut self, name: &[u8], offset: usize) {
        match scope(name)
            .ok_or(())
            .or_else(|()| as_str(name).parse::<Scope>())
        {
            Ok(s) => {
                if let Some(id) = self.current() {
                    self.ddf.node_mut(id).scope = s;
                }
            }
            Err(err) => self.problem(offset, err.to_string()),
        }
    }

    /// An element inside `<CaseSense>`: `CS` or `CIS`.
    pub(super) fn case_sense_element(&mut self, name: &[u8], offset: usize) {
        let sense = match name {
            b"CS" => Some(CaseSense::Sensitive),
            b"CIS" => Some(CaseSense::Insensitive),
            _ => {
                let text = lossy(name);
                self.problem(offset, format!("unknown CaseSense `{text}`"));
                None
            }
        };
        if let (Some(id), Some(sense)) = (self.current(), sense) {
            self.ddf.node_mut(id).case_sense = Some(sense);
        }
    }

    /// The `<Occurrence>` of node `id`, known once the node is closed: one
    /// element, with a count for `ZeroOrN`/`OneOrN`. What is wrong with it
    /// goes to `problems`.
    pub(super) fn settle_occurrence(
        &mut self,
        id: NodeId,
        open: &Open,
        problems: &mut Vec<(usize, String)>,
    ) {
        match (&open.occ_kind, open.occurrences) {
            (_, 0) => {}
            (Some((kind, at)), 1) => {
                let plain = match (&**kind, open.occ_count.is_empty()) {
                    ("One", true) => Some(Occurrence::One),
                    ("ZeroOrOne", true) => Some(Occurrence::ZeroOrOne),
                    ("ZeroOrMore", true) => Some(Occurrence::ZeroOrMore),
                    ("OneOrMore", true) => Some(Occurrence::OneOrMore),
                    _ => None,
                };
                let text = match plain {
                    Some(_) => String::new(),
                    None if open.occ_count.is_empty() => kind.to_string(),
                    None => format!("{kind}({})", open.occ_count),
                };
                match plain.ok_or(()).or_else(|()| text.parse::<Occurrence>()) {
                    Ok(Occurrence::ZeroOrN(Some(0)) | Occurrence::OneOrN(Some(0))) => {
                        problems.push((*at, format!("occurrence `{text}` allows no node")))
                    }
                    Ok(o) => self.ddf.node_mut(id).occurrence = o,
                    Err(err) => problems.push((*at, err.to_string())),
                }
            }
            (Some((_, at)), _) => {
                problems.push((*at, "<Occurrence> must hold exactly one element".into()))
            }
            (None, _) => {}
        }
    }
}

/// The DTD's access type elements, without a detour through `&str`.
fn access_type(name: &[u8]) -> Result<Option<AccessType>, dm_core::UnknownName> {
    Ok(Some(match name {
        b"Get" => AccessType::GET,
        b"Replace" => AccessType::REPLACE,
        b"Add" => AccessType::ADD,
        b"Delete" => AccessType::DELETE,
        b"Exec" => AccessType::EXEC,
        other => return AccessType::parse_one(as_str(other)),
    }))
}

/// The DTD's format elements in their usual spelling; `None` sends the
/// rest (`B64`, unknown names) to `Format::from_str`.
fn format(name: &[u8]) -> Option<Format> {
    Some(match name {
        b"chr" => Format::Chr,
        b"int" => Format::Int,
        b"node" => Format::Node,
        b"bool" => Format::Bool,
        b"b64" => Format::B64,
        b"bin" => Format::Bin,
        b"null" => Format::Null,
        b"xml" => Format::Xml,
        b"date" => Format::Date,
        b"time" => Format::Time,
        b"float" => Format::Float,
        _ => return None,
    })
}

fn scope(name: &[u8]) -> Option<Scope> {
    match name {
        b"Dynamic" => Some(Scope::Dynamic),
        b"Permanent" => Some(Scope::Permanent),
        _ => None,
    }
}

/// The occurrence element names, without an allocation for the known ones.
fn occurrence_name(name: &[u8]) -> Cow<'static, str> {
    Cow::Borrowed(match name {
        b"One" => "One",
        b"ZeroOrOne" => "ZeroOrOne",
        b"ZeroOrMore" => "ZeroOrMore",
        b"OneOrMore" => "OneOrMore",
        b"ZeroOrN" => "ZeroOrN",
        b"OneOrN" => "OneOrN",
        other => return Cow::Owned(lossy(other)),
    })
}
