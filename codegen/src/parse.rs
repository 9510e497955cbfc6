//! Stage 1: DDF XML -> a small element tree with byte offsets.
//!
//! Lenient where real files are (spec 6.4 and the Windows corpus): a UTF-8
//! BOM, a DOCTYPE with an internal subset, CDATA, and elements from other
//! namespaces (`MSFT:...`), which are skipped with their whole subtree.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::error::DdfErrorKind;

/// An element of the DDF with the byte offset of its start tag.
#[derive(Debug, Clone)]
pub struct Element {
    pub name: String,
    pub offset: usize,
    pub children: Vec<Element>,
    /// The element's own text (CDATA included), not trimmed.
    pub text: String,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }
}

/// Parses `text` (a whole DDF) into its root element. Errors carry the byte
/// offset where the XML went wrong.
pub fn parse(text: &str) -> Result<Element, (usize, DdfErrorKind)> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    // Depth inside a foreign-namespace element being skipped.
    let mut skip_depth = 0usize;
    loop {
        let offset = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = reader.read_event().map_err(|e| {
            let at = usize::try_from(reader.error_position()).unwrap_or(offset);
            (at, DdfErrorKind::Xml(e.to_string()))
        })?;
        match event {
            Event::Start(e) => {
                if skip_depth > 0 || is_foreign(e.name().as_ref()) {
                    skip_depth += 1;
                } else {
                    stack.push(element(&e, offset));
                }
            }
            Event::Empty(e) if skip_depth == 0 && !is_foreign(e.name().as_ref()) => {
                attach(&mut stack, &mut root, element(&e, offset));
            }
            Event::End(_) => {
                if skip_depth > 0 {
                    skip_depth -= 1;
                } else if let Some(el) = stack.pop() {
                    attach(&mut stack, &mut root, el);
                }
            }
            Event::Text(t) if skip_depth == 0 => {
                if let Some(top) = stack.last_mut() {
                    let s = t
                        .unescape()
                        .map_err(|e| (offset, DdfErrorKind::Xml(e.to_string())))?;
                    top.text.push_str(&s);
                }
            }
            Event::CData(c) if skip_depth == 0 => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some(open) = stack.first() {
        return Err((
            open.offset,
            DdfErrorKind::Xml(format!("<{}> is never closed", open.name)),
        ));
    }
    root.ok_or((text.len(), DdfErrorKind::Xml("no root element".into())))
}

/// Elements with a namespace prefix (`MSFT:Applicability`) are extensions
/// that DM 2.0 tools skip.
fn is_foreign(name: &[u8]) -> bool {
    name.contains(&b':')
}

fn element(e: &quick_xml::events::BytesStart<'_>, offset: usize) -> Element {
    Element {
        name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
        offset,
        children: Vec::new(),
        text: String::new(),
    }
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => {
            if root.is_none() {
                *root = Some(el);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_elements_are_skipped_with_their_subtree() {
        let xml = r#"<MgmtTree xmlns:MSFT="x"><VerDTD>1.2</VerDTD><MSFT:A><Node/><MSFT:B/></MSFT:A><MSFT:E/><Node><NodeName><![CDATA[a<b]]></NodeName></Node></MgmtTree>"#;
        let root = parse(xml).unwrap();
        let names: Vec<&str> = root.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["VerDTD", "Node"]);
        assert_eq!(root.children[1].children[0].text, "a<b");
    }

    #[test]
    fn broken_xml_reports_an_offset() {
        let (offset, kind) = parse("<MgmtTree><Node></MgmtTree>").unwrap_err();
        assert!(matches!(kind, DdfErrorKind::Xml(_)));
        assert!(offset > 0);
        assert!(parse("<MgmtTree>").is_err());
        assert!(parse("").is_err());
    }
}
