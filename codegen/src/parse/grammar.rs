//! The DDF element grammar (the DTD of spec 6.4): which element may
//! appear inside which, what each one starts (a node, a text field, a
//! DFProperties value), and where the text of a text element goes.

use std::sync::Arc;

use quick_xml::events::BytesStart;

use super::{
    lossy, Ctx, Field, Keep, Parser, SEEN_ACCESS, SEEN_CASE, SEEN_FORMAT, SEEN_NAME, SEEN_OCC,
    SEEN_PROPS, SEEN_SCOPE,
};
use crate::error::DdfErrorKind;

impl Parser<'_> {
    /// A start (or empty) element at `offset`: checked against the element
    /// it is in, then what it opens is pushed.
    pub(super) fn start(
        &mut self,
        e: &BytesStart<'_>,
        offset: usize,
        empty: bool,
    ) -> Result<(), (usize, DdfErrorKind)> {
        if let Some(c) = &mut self.capture {
            if !empty {
                c.depth += 1;
            }
            return Ok(());
        }
        let qname = e.name();
        let name = qname.as_ref();
        let Some(&top) = self.stack.last() else {
            if self.root_closed {
                let shown = lossy(name);
                self.fault(offset, DdfErrorKind::TrailingContent(shown));
                self.begin_capture(name, offset, Keep::Drop, empty);
                return Ok(());
            }
            if name != b"MgmtTree" {
                return Err((offset, DdfErrorKind::NotMgmtTree(lossy(name))));
            }
            self.root_seen = true;
            self.root_offset = offset;
            if empty {
                self.root_closed = true;
            } else {
                self.stack.push(Ctx::MgmtTree);
            }
            return Ok(());
        };
        let next = match (top, name) {
            (Ctx::MgmtTree, b"VerDTD") => Ctx::Text(Field::VerDtd),
            (Ctx::MgmtTree, b"Man") => Ctx::Text(Field::Man),
            (Ctx::MgmtTree, b"Mod") => Ctx::Text(Field::Mod),
            (Ctx::MgmtTree | Ctx::Node, b"Node") => {
                self.open_node(offset);
                Ctx::Node
            }
            (Ctx::Node, b"NodeName") => {
                self.once(SEEN_NAME, offset, "NodeName");
                if let Some(o) = self.open.last_mut() {
                    o.name_seen = true;
                }
                Ctx::Text(Field::NodeName)
            }
            (Ctx::Node, b"Path") => Ctx::Text(Field::Path),
            (Ctx::Node, b"Value") => Ctx::Text(Field::Value),
            (Ctx::Node, b"RTProperties") => {
                // Run-time properties: DM 2.0 ignores them (6.4).
                self.begin_capture(name, offset, Keep::Drop, empty);
                return Ok(());
            }
            (Ctx::Node, b"DFProperties") => {
                self.once(SEEN_PROPS, offset, "DFProperties");
                if let Some(o) = self.open.last_mut() {
                    o.props_offset.get_or_insert(offset);
                }
                Ctx::DfProps
            }
            (Ctx::DfProps, b"AccessType") => {
                self.once(SEEN_ACCESS, offset, "AccessType");
                if let Some(o) = self.open.last_mut() {
                    o.access_seen = true;
                }
                Ctx::Access
            }
            (Ctx::DfProps, b"DefaultValue") => Ctx::Text(Field::DefaultValue),
            (Ctx::DfProps, b"Description") => Ctx::Text(Field::Description),
            (Ctx::DfProps, b"DFFormat") => {
                self.once(SEEN_FORMAT, offset, "DFFormat");
                if let Some(o) = self.open.last_mut() {
                    o.format_offset.get_or_insert(offset);
                }
                Ctx::DfFormat
            }
            (Ctx::DfProps, b"Occurrence") => {
                self.once(SEEN_OCC, offset, "Occurrence");
                Ctx::Occurrence
            }
            (Ctx::DfProps, b"Scope") => {
                self.once(SEEN_SCOPE, offset, "Scope");
                Ctx::Scope
            }
            (Ctx::DfProps, b"DFTitle") => Ctx::Text(Field::DfTitle),
            (Ctx::DfProps, b"DFType") => Ctx::DfType,
            (Ctx::DfProps, b"CaseSense") => {
                self.once(SEEN_CASE, offset, "CaseSense");
                Ctx::CaseSense
            }
            (Ctx::DfType, b"MIME") => Ctx::Text(Field::Mime),
            (Ctx::DfType, b"DDFName") => {
                if let Some(o) = self.open.last_mut() {
                    o.ddf_name_seen = true;
                }
                Ctx::Text(Field::DdfName)
            }
            // Elements of another namespace (`MSFT:...`) are extensions
            // wherever they are; named elements above never have a colon.
            (_, _) if is_foreign(name) => {
                self.begin_capture(name, offset, Keep::Extension, empty);
                return Ok(());
            }
            // The values of DFProperties: each guard reads the element and
            // is false when the DTD does not define it there, which the
            // last arm reports (a warning: real vendor DDFs carry such
            // elements, and the node keeps what it has).
            (Ctx::Access, _) if self.access_element(name) => Ctx::Ignore,
            (Ctx::DfFormat, _) if self.format_element(name, offset) => Ctx::Ignore,
            (Ctx::Occurrence, _) if self.occurrence_element(name, offset) => {
                Ctx::Text(Field::OccCount)
            }
            (Ctx::Scope, _) if self.scope_element(name) => Ctx::Ignore,
            (Ctx::CaseSense, _) if self.case_sense_element(name) => Ctx::Ignore,
            (Ctx::Text(_), _) => {
                self.begin_capture(name, offset, Keep::Text, empty);
                return Ok(());
            }
            (Ctx::Ignore, _) => {
                self.begin_capture(name, offset, Keep::Drop, empty);
                return Ok(());
            }
            (parent, _) => {
                let element = lossy(name);
                self.fault(
                    offset,
                    DdfErrorKind::UnknownElement {
                        element,
                        parent: ctx_name(parent).into(),
                    },
                );
                self.begin_capture(name, offset, Keep::Extension, empty);
                return Ok(());
            }
        };
        if let Ctx::Text(_) = next {
            self.chunk = None;
            self.spilled = false;
        }
        self.stack.push(next);
        if empty {
            self.end(offset);
        }
        Ok(())
    }

    /// The end of a text element: its trimmed text goes where `field` says.
    pub(super) fn set_text(&mut self, field: Field) {
        let trimmed = if self.spilled {
            self.text.trim()
        } else {
            self.chunk.unwrap_or_default().trim()
        };
        if field == Field::Mime {
            if trimmed.is_empty() {
                return;
            }
            let shared = match self.mimes.iter().find(|m| &***m == trimmed) {
                Some(m) => Arc::clone(m),
                None => {
                    let m: Arc<str> = Arc::from(trimmed);
                    // A few distinct values make up a file; stop looking
                    // past 16.
                    if self.mimes.len() < 16 {
                        self.mimes.push(Arc::clone(&m));
                    }
                    m
                }
            };
            if let Some(id) = self.current() {
                self.ddf.node_mut(id).mime.push(shared);
            }
            return;
        }
        let value = (!trimmed.is_empty()).then(|| trimmed.to_owned());
        if field == Field::OccCount {
            if let Some(o) = self.open.last_mut() {
                o.occ_count = value.unwrap_or_default();
            }
            return;
        }
        let node = match field {
            Field::VerDtd => return self.ddf.ver_dtd = value,
            Field::Man => return self.ddf.man = value,
            Field::Mod => return self.ddf.model = value,
            _ => match self.current() {
                Some(id) => self.ddf.node_mut(id),
                None => return,
            },
        };
        match field {
            Field::NodeName => node.name = value,
            Field::Path => node.path = value,
            Field::Value => node.value = value,
            Field::DefaultValue => node.default_value = value,
            Field::Description => node.description = value,
            Field::DfTitle => node.title = value,
            Field::DdfName => node.moid = value,
            _ => {}
        }
    }
}

/// A qualified name (`MSFT:Applicability`): an element of another
/// namespace. A plain loop: names are short, and `<[u8]>::contains` goes
/// through `memchr`, whose call showed in the corpus profile.
#[allow(clippy::manual_contains)]
fn is_foreign(name: &[u8]) -> bool {
    name.iter().any(|&b| b == b':')
}

fn ctx_name(ctx: Ctx) -> &'static str {
    match ctx {
        Ctx::MgmtTree => "MgmtTree",
        Ctx::Node => "Node",
        Ctx::DfProps => "DFProperties",
        Ctx::DfType => "DFType",
        Ctx::Access => "AccessType",
        Ctx::DfFormat => "DFFormat",
        Ctx::Occurrence => "Occurrence",
        Ctx::Scope => "Scope",
        Ctx::CaseSense => "CaseSense",
        Ctx::Text(_) | Ctx::Ignore => "text",
    }
}

#[cfg(test)]
mod tests {
    use crate::parse::tests::{parse_ok, LEAF};
    use dm_core::Format;

    #[test]
    fn rt_properties_are_ignored() {
        let xml = format!(
            "<MgmtTree><VerDTD>1.2</VerDTD><Node><NodeName>a</NodeName><RTProperties><Format><int/></Format><Type><MIME>x</MIME></Type></RTProperties>{LEAF}</Node></MgmtTree>"
        );
        let ddf = parse_ok(&xml);
        let node = ddf.node(ddf.roots()[0]);
        assert_eq!(node.format, Format::Chr);
        assert!(node.mime().is_empty());
        assert!(ddf.extensions_of(ddf.roots()[0]).is_empty());
    }
}
