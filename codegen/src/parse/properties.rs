//! Readers of the DFProperties values (spec 6.4): the elements inside
//! AccessType, DFFormat, Occurrence, Scope and CaseSense, by their DTD
//! names, and the occurrence a node ends up with once it is closed. A bad
//! value is a problem of the node, reported when the node's path is known;
//! an element the DTD does not define there is no value: the readers say
//! so and the grammar warns (the node keeps what it has).

use dm_core::{AccessType, Format, Occurrence, Scope};

use super::{as_str, Open, Parser};
use crate::ir::{CaseSense, NodeId};

impl Parser<'_> {
    /// An element inside `<AccessType>`: one more access type of the node.
    /// False when the DTD does not define it.
    pub(super) fn access_element(&mut self, name: &[u8]) -> bool {
        let Ok(access) = access_type(name) else {
            return false;
        };
        if let Some(id) = self.current() {
            let node = self.ddf.node_mut(id);
            node.access = node.access.union(access.unwrap_or(AccessType::NONE));
        }
        true
    }

    /// An element inside `<DFFormat>`: the node's format; a second one is
    /// a problem. False when it names no format.
    pub(super) fn format_element(&mut self, name: &[u8], offset: usize) -> bool {
        let Some(f) = format(name).or_else(|| as_str(name).parse::<Format>().ok()) else {
            return false;
        };
        let first = self.open.last_mut().map(|o| {
            o.formats += 1;
            o.formats == 1
        });
        if first == Some(true) {
            if let Some(id) = self.current() {
                self.ddf.node_mut(id).format = f;
            }
        } else {
            self.problem(offset, "<DFFormat> names more than one format".into());
        }
        true
    }

    /// An element inside `<Occurrence>`: its kind, kept until the node
    /// closes (its count, if any, is the element's text). False when the
    /// DTD does not define it.
    pub(super) fn occurrence_element(&mut self, name: &[u8], offset: usize) -> bool {
        let Some(kind) = occurrence_name(name) else {
            return false;
        };
        if let Some(o) = self.open.last_mut() {
            o.occurrences += 1;
            o.occ_kind = Some((kind, offset));
            o.occ_count.clear();
        }
        true
    }

    /// An element inside `<Scope>`. False when it names no scope.
    pub(super) fn scope_element(&mut self, name: &[u8]) -> bool {
        let Some(s) = scope(name) else {
            return false;
        };
        if let Some(id) = self.current() {
            self.ddf.node_mut(id).scope = s;
        }
        true
    }

    /// An element inside `<CaseSense>`: `CS` or `CIS`, else false.
    pub(super) fn case_sense_element(&mut self, name: &[u8]) -> bool {
        let sense = match name {
            b"CS" => CaseSense::Sensitive,
            b"CIS" => CaseSense::Insensitive,
            _ => return false,
        };
        if let Some(id) = self.current() {
            self.ddf.node_mut(id).case_sense = Some(sense);
        }
        true
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
                let plain = match (*kind, open.occ_count.is_empty()) {
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

/// The DTD's occurrence element names; `None` for any other.
fn occurrence_name(name: &[u8]) -> Option<&'static str> {
    Some(match name {
        b"One" => "One",
        b"ZeroOrOne" => "ZeroOrOne",
        b"ZeroOrMore" => "ZeroOrMore",
        b"OneOrMore" => "OneOrMore",
        b"ZeroOrN" => "ZeroOrN",
        b"OneOrN" => "OneOrN",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use dm_core::{AccessType, Format, Occurrence, Scope};

    use crate::error::{DdfErrorKind, Severity};
    use crate::ir::CaseSense;
    use crate::parse::tests::parse_ok;

    fn tree(props: &str) -> String {
        format!(
            "<MgmtTree><VerDTD>1.2</VerDTD><Node><NodeName>a</NodeName><DFProperties>{props}</DFProperties></Node></MgmtTree>"
        )
    }

    /// `(element, parent)` of every UnknownElement warning, in file order.
    fn unknown(ddf: &crate::ir::Ddf) -> Vec<(&str, &str)> {
        ddf.warnings
            .iter()
            .map(|w| match &w.kind {
                DdfErrorKind::UnknownElement { element, parent } => {
                    assert_eq!(w.severity(), Severity::Warning);
                    assert!(w.to_string().contains(&format!("<{element}>")), "{w}");
                    (element.as_str(), parent.as_str())
                }
                other => panic!("not an unknown element: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn elements_the_dtd_does_not_define_are_warnings_and_the_node_keeps_what_it_has() {
        // Real vendor DDFs carry such elements; the DTD of 6.4 says what
        // each DFProperties element may hold.
        let ddf = parse_ok(&tree(
            "<AccessType><Get/><Foo/><Replace/></AccessType><Bar>x</Bar>\
             <DFFormat><int/><string/></DFFormat><Occurrence><ZeroOrOne/><Some>2</Some></Occurrence>\
             <Scope><Permanent/><Forever/></Scope><DFType><MIME>text/plain</MIME><Baz/></DFType>\
             <CaseSense><CIS/><Upper><x/></Upper></CaseSense>",
        ));
        let node = ddf.node(ddf.roots()[0]);
        assert_eq!(node.access, AccessType::GET | AccessType::REPLACE);
        assert_eq!(node.format, Format::Int);
        assert_eq!(node.occurrence, Occurrence::ZeroOrOne);
        assert_eq!(node.scope, Scope::Permanent);
        assert_eq!(&*node.mime()[0], "text/plain");
        assert_eq!(node.case_sense, Some(CaseSense::Insensitive));
        assert_eq!(
            unknown(&ddf),
            [
                ("Foo", "AccessType"),
                ("Bar", "DFProperties"),
                ("string", "DFFormat"),
                ("Some", "Occurrence"),
                ("Forever", "Scope"),
                ("Baz", "DFType"),
                ("Upper", "CaseSense"),
            ]
        );
    }

    #[test]
    fn an_undefined_element_alone_leaves_the_default() {
        let ddf = parse_ok(&tree(
            "<AccessType><Read/></AccessType><DFFormat><chr/></DFFormat>\
             <Occurrence><Many/></Occurrence><Scope><Forever/></Scope><CaseSense><Upper/></CaseSense>",
        ));
        let node = ddf.node(ddf.roots()[0]);
        assert_eq!(node.access, AccessType::NONE);
        assert_eq!(node.occurrence, Occurrence::One);
        assert_eq!(node.scope, Scope::Dynamic);
        assert_eq!(node.case_sense, None);
        assert_eq!(
            unknown(&ddf),
            [
                ("Read", "AccessType"),
                ("Many", "Occurrence"),
                ("Forever", "Scope"),
                ("Upper", "CaseSense"),
            ]
        );
    }

    #[test]
    fn a_format_the_dtd_does_not_define_leaves_the_leaf_without_one() {
        // A leaf cannot be typed without a format: that stays an error,
        // beside the warning naming what was there.
        let d = crate::parse::parse(
            Path::new("t.ddf"),
            &tree("<AccessType><Get/></AccessType><DFFormat><string/></DFFormat>"),
        )
        .unwrap_err();
        let kinds: Vec<&DdfErrorKind> = d.all().iter().map(|d| &d.kind).collect();
        assert!(
            matches!(kinds[..], [DdfErrorKind::MissingFormat(_), DdfErrorKind::UnknownElement { element, .. }] | [DdfErrorKind::UnknownElement { element, .. }, DdfErrorKind::MissingFormat(_)] if element == "string"),
            "{d}"
        );
    }
}
