//! The XML layer of the parser: the quick-xml event loop, text and CDATA
//! taken from the source by position, the DOCTYPE's internal entities,
//! and elements captured whole as they were written (extensions, markup
//! inside a text element, content that is dropped).

use std::borrow::Cow;

use quick_xml::events::Event;
use quick_xml::Reader;

use super::{pos, Capture, Ctx, Keep, Parser};
use crate::error::DdfErrorKind;
use crate::ir::Extension;

impl<'a> Parser<'a> {
    /// Reads the whole source, or up to the first XML error, which stops it.
    pub(super) fn run(&mut self) {
        let mut reader = Reader::from_str(self.src);
        loop {
            let offset = pos(reader.buffer_position());
            let event = match reader.read_event() {
                Ok(e) => e,
                Err(e) => {
                    let at = pos(reader.error_position());
                    self.fault(at, DdfErrorKind::Xml(e.to_string()));
                    return;
                }
            };
            let result = match event {
                Event::Start(e) => self.start(&e, offset, false),
                Event::Empty(e) => {
                    // Where a captured empty element ends.
                    self.empty_end = pos(reader.buffer_position());
                    self.start(&e, offset, true)
                }
                Event::End(_) => {
                    let end = pos(reader.buffer_position());
                    self.end(end);
                    Ok(())
                }
                // Text and CDATA are taken from the source `&str` by
                // position: no second UTF-8 check, no copy unless escaped.
                Event::Text(t) => {
                    if self.capture.is_none() && matches!(self.stack.last(), Some(Ctx::Text(_))) {
                        let end = pos(reader.buffer_position());
                        let raw = self.src.get(offset..end).unwrap_or_default();
                        debug_assert_eq!(raw.as_bytes(), &*t);
                        match quick_xml::escape::unescape_with(raw, |e| self.entity(e)) {
                            Ok(s) => {
                                self.push_text(s);
                                Ok(())
                            }
                            Err(e) => Err((offset, DdfErrorKind::Xml(e.to_string()))),
                        }
                    } else {
                        Ok(())
                    }
                }
                Event::CData(c) => {
                    if self.capture.is_none() && matches!(self.stack.last(), Some(Ctx::Text(_))) {
                        // `<![CDATA[...]]>` ends where the reader is now.
                        let end = pos(reader.buffer_position()).saturating_sub(3);
                        let raw = self
                            .src
                            .get(end.saturating_sub(c.len())..end)
                            .unwrap_or_default();
                        debug_assert_eq!(raw.as_bytes(), &*c);
                        self.push_text(Cow::Borrowed(raw));
                    }
                    Ok(())
                }
                Event::DocType(d) => {
                    self.read_entities(&String::from_utf8_lossy(&d));
                    Ok(())
                }
                Event::Eof => break,
                _ => Ok(()),
            };
            if let Err((at, kind)) = result {
                self.fault(at, kind);
                return;
            }
        }
        if let Some(c) = &self.capture {
            let at = c.start;
            let name = self.src.get(at + 1..at + 1 + c.name_len).unwrap_or("?");
            let kind = DdfErrorKind::Xml(format!("<{name}> is never closed"));
            self.fault(at, kind);
        } else if let Some(open) = self.open.first() {
            let at = open.offset;
            self.fault(at, DdfErrorKind::Xml("<Node> is never closed".into()));
        } else if self.root_seen && !self.root_closed {
            self.fault(0, DdfErrorKind::Xml("<MgmtTree> is never closed".into()));
        } else if !self.root_seen {
            let at = self.src.len();
            self.fault(at, DdfErrorKind::Xml("no root element".into()));
        }
    }

    fn push_text(&mut self, s: Cow<'a, str>) {
        match (self.spilled, self.chunk, s) {
            (false, None, Cow::Borrowed(b)) => self.chunk = Some(b),
            (false, first, s) => {
                self.text.clear();
                self.text.push_str(first.unwrap_or_default());
                self.text.push_str(&s);
                self.spilled = true;
            }
            (true, _, s) => self.text.push_str(&s),
        }
    }

    fn entity(&self, name: &str) -> Option<&str> {
        match name {
            "lt" => Some("<"),
            "gt" => Some(">"),
            "amp" => Some("&"),
            "apos" => Some("'"),
            "quot" => Some("\""),
            _ => self
                .entities
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str()),
        }
    }

    /// Internal entities of the DOCTYPE's subset: `<!ENTITY name "value">`.
    fn read_entities(&mut self, doctype: &str) {
        let mut rest = doctype;
        while let Some(i) = rest.find("<!ENTITY") {
            rest = &rest[i + 8..];
            let mut parts = rest.trim_start().splitn(2, char::is_whitespace);
            let (Some(name), Some(after)) = (parts.next(), parts.next()) else {
                break;
            };
            let after = after.trim_start();
            let Some(quote) = after.chars().next().filter(|q| *q == '"' || *q == '\'') else {
                continue;
            };
            if let Some(end) = after[1..].find(quote) {
                self.entities
                    .push((name.to_owned(), after[1..1 + end].to_owned()));
            }
        }
    }

    pub(super) fn begin_capture(&mut self, name: &[u8], offset: usize, keep: Keep, empty: bool) {
        self.capture = Some(Capture {
            start: offset,
            depth: 1,
            keep,
            name_len: name.len(),
        });
        if empty {
            self.end(self.empty_end);
        }
    }

    /// An end tag (or the end of an empty element) at `end`: closes the
    /// capture or the element on top of the stack.
    pub(super) fn end(&mut self, end: usize) {
        if let Some(c) = &mut self.capture {
            c.depth -= 1;
            if c.depth > 0 {
                return;
            }
            let Some(c) = self.capture.take() else { return };
            match c.keep {
                Keep::Drop => {}
                Keep::Text => {
                    let src = self.src;
                    self.push_text(Cow::Borrowed(src.get(c.start..end).unwrap_or_default()));
                }
                Keep::Extension => {
                    if self.ext_texts.capacity() == 0 {
                        // Extensions are about half of a Windows file.
                        self.ext_texts.reserve(self.src.len() / 2);
                    }
                    let start = self.ext_texts.len();
                    self.ext_texts
                        .push_str(self.src.get(c.start..end).unwrap_or_default());
                    let ext = Extension {
                        texts: self.no_texts.clone(),
                        start,
                        end: self.ext_texts.len(),
                        name_len: c.name_len,
                        node: u32::MAX,
                        offset: c.start,
                    };
                    match self.current() {
                        Some(id) => self
                            .ddf
                            .node_extensions
                            .push(Extension { node: id.0, ..ext }),
                        None => self.ddf.extensions.push(ext),
                    }
                }
            }
            return;
        }
        let Some(ctx) = self.stack.pop() else { return };
        match ctx {
            Ctx::MgmtTree => self.root_closed = true,
            Ctx::Node => self.close_node(),
            Ctx::Text(field) => self.set_text(field),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::parse::tests::parse_ok;
    use crate::parse::{parse, DdfErrorKind};
    use dm_core::Format;

    #[test]
    fn foreign_elements_are_kept_as_extensions() {
        let xml = r#"<MgmtTree xmlns:MSFT="x"><VerDTD>1.2</VerDTD><MSFT:Diag a="/>"/><Node><NodeName>a</NodeName><DFProperties><AccessType><Get/></AccessType><MSFT:A><Node/><MSFT:B/></MSFT:A><DFFormat><chr/></DFFormat></DFProperties></Node></MgmtTree>"#;
        let ddf = parse_ok(xml);
        assert_eq!(ddf.extensions.len(), 1);
        assert_eq!(ddf.extensions[0].raw(), r#"<MSFT:Diag a="/>"/>"#);
        let node = ddf.node(ddf.roots()[0]);
        let exts = ddf.extensions_of(ddf.roots()[0]);
        assert_eq!(exts.len(), 1);
        assert_eq!(exts[0].name(), "MSFT:A");
        assert_eq!(exts[0].raw(), "<MSFT:A><Node/><MSFT:B/></MSFT:A>");
        assert_eq!(node.format, Format::Chr);
    }

    #[test]
    fn text_keeps_cdata_entities_and_inner_markup() {
        let xml = r#"<!DOCTYPE MgmtTree [<!ENTITY who "the server">]><MgmtTree><VerDTD>1.2</VerDTD><Node><NodeName> <![CDATA[a<b]]> </NodeName><DFProperties><AccessType><Get/></AccessType><Description>for &who; &amp; <b>you</b></Description><DFFormat><chr/></DFFormat></DFProperties></Node></MgmtTree>"#;
        let ddf = parse_ok(xml);
        let node = ddf.node(ddf.roots()[0]);
        assert_eq!(node.name.as_deref(), Some("a<b"));
        assert_eq!(
            node.description.as_deref(),
            Some("for the server & <b>you</b>")
        );
    }

    #[test]
    fn broken_xml_reports_an_offset() {
        for bad in [
            "<MgmtTree><Node></MgmtTree>",
            "<MgmtTree>",
            "",
            "<MgmtTree><Node><MSFT:x>",
        ] {
            let d = parse(Path::new("t.ddf"), bad).unwrap_err();
            assert!(
                matches!(d.first_error().kind, DdfErrorKind::Xml(_)),
                "{bad}: {d}"
            );
        }
    }
}
