//! Stage 1: DDF XML -> [`Ddf`], in one streaming pass over quick-xml
//! events, with no intermediate element tree.
//!
//! Everything of the spec's 6.4 table is read (MgmtTree, VerDTD, Man, Mod,
//! Node, NodeName, Path, Value, RTProperties, DFProperties with AccessType,
//! DefaultValue, Description, DFFormat, Occurrence, Scope, DFTitle, DFType,
//! CaseSense). Lenient where real files are (the Windows corpus): a UTF-8
//! BOM, CRLF, a DOCTYPE with an internal subset (its `<!ENTITY>`s are
//! honoured), CDATA, DFProperties children in any order, several root
//! Nodes, padded or empty NodeNames, `ZeroOrN`/`OneOrN` without a count,
//! empty DDFName and MIME. Elements from other namespaces (`MSFT:...`) and
//! unknown elements are kept as opaque [`Extension`]s on their node;
//! RTProperties is parsed and then ignored, as 6.4 says. Strict where
//! meaning would be lost: see [`DdfErrorKind`] for what is an error.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use dm_core::{AccessType, Format, Occurrence, Scope};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::error::{DdfErrorKind, Diagnostic, Diagnostics, Position, Severity};
use crate::ir::{typed_default, CaseSense, Ddf, Extension, Mime, NodeDef, NodeId, RustNames};

/// Which text an element holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    VerDtd,
    Man,
    Mod,
    NodeName,
    Path,
    Value,
    DefaultValue,
    Description,
    DfTitle,
    Mime,
    DdfName,
    /// The count of `<ZeroOrN>` / `<OneOrN>`.
    OccCount,
}

/// Where the parser is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    MgmtTree,
    Node,
    Text(Field),
    DfProps,
    Access,
    DfFormat,
    Occurrence,
    Scope,
    DfType,
    CaseSense,
    /// Inside an element whose content does not matter (`<Get></Get>`).
    Ignore,
}

/// What becomes of an element being captured whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// An extension of the current node (or of the tree).
    Extension,
    /// Dropped (RTProperties, content after the root).
    Drop,
    /// Markup inside a text element: appended to the text as written.
    Text,
}

#[derive(Debug)]
struct Capture {
    start: usize,
    depth: usize,
    keep: Keep,
    /// Length of the element's name, which follows the `<` at `start`.
    name_len: usize,
}

/// Validation state of a `<Node>` being read.
#[derive(Debug)]
struct Open {
    id: NodeId,
    offset: usize,
    name_seen: bool,
    props_offset: Option<usize>,
    access_seen: bool,
    format_offset: Option<usize>,
    formats: u32,
    occ_kind: Option<(Cow<'static, str>, usize)>,
    occ_count: String,
    occurrences: u32,
    /// A `DFType/DDFName` element, even empty: the interior-node form of
    /// DFType.
    ddf_name_seen: bool,
    /// `(offset, reason)` of bad property values, reported at the end of
    /// the node, when its name is known.
    problems: Vec<(usize, String)>,
    duplicates: Vec<(usize, &'static str)>,
    seen: u16,
}

// Bits of `Open::seen` for elements that may appear once.
const SEEN_NAME: u16 = 1;
const SEEN_PROPS: u16 = 2;
const SEEN_ACCESS: u16 = 4;
const SEEN_FORMAT: u16 = 8;
const SEEN_OCC: u16 = 16;
const SEEN_SCOPE: u16 = 32;
const SEEN_CASE: u16 = 64;

struct Parser<'a> {
    src: &'a str,
    ddf: Ddf,
    stack: Vec<Ctx>,
    open: Vec<Open>,
    /// The text of the element being read: usually one borrowed chunk of
    /// the source, copied into `text` only when there are several.
    chunk: Option<&'a str>,
    text: String,
    spilled: bool,
    capture: Option<Capture>,
    faults: Vec<(usize, DdfErrorKind)>,
    entities: Vec<(String, String)>,
    /// The texts of the extensions, one after the other; shared by them
    /// once the file is read (`finish`).
    ext_texts: String,
    /// The end of the empty element being read.
    empty_end: usize,
    /// Reused by `close_node`.
    scratch: Vec<NodeId>,
    /// The MIME values seen so far, to share.
    mimes: Vec<Arc<str>>,
    /// What extensions point to until `finish` shares `ext_texts`.
    no_texts: Arc<String>,
    root_seen: bool,
    root_offset: usize,
    root_closed: bool,
}

/// Parses and validates the DDF `text` (BOM already removed) of `file`.
pub(crate) fn parse(file: &Path, text: &str) -> Result<Ddf, Diagnostics> {
    let mut ddf = Ddf::default();
    // About one node per kilobyte in real files; saves regrowing the arena.
    ddf.nodes.reserve(text.len() / 1024 + 4);
    let mut p = Parser {
        src: text,
        ddf,
        stack: Vec::with_capacity(16),
        open: Vec::with_capacity(16),
        chunk: None,
        text: String::new(),
        spilled: false,
        capture: None,
        faults: Vec::new(),
        entities: Vec::new(),
        ext_texts: String::new(),
        mimes: Vec::new(),
        scratch: Vec::new(),
        empty_end: 0,
        no_texts: Arc::default(),
        root_seen: false,
        root_offset: 0,
        root_closed: false,
    };
    p.run();
    p.finish(file)
}

impl<'a> Parser<'a> {
    fn run(&mut self) {
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

    fn fault(&mut self, at: usize, kind: DdfErrorKind) {
        self.faults.push((at, kind));
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

    fn start(
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
            (Ctx::Access, _) => {
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
                Ctx::Ignore
            }
            (Ctx::DfFormat, _) => {
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
                Ctx::Ignore
            }
            (Ctx::Occurrence, _) => {
                if let Some(o) = self.open.last_mut() {
                    o.occurrences += 1;
                    o.occ_kind = Some((occurrence_name(name), offset));
                    o.occ_count.clear();
                }
                Ctx::Text(Field::OccCount)
            }
            (Ctx::Scope, _) => {
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
                Ctx::Ignore
            }
            (Ctx::CaseSense, _) => {
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
                Ctx::Ignore
            }
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

    /// Records a duplicate of an element that may appear once per node.
    #[inline]
    fn once(&mut self, bit: u16, offset: usize, element: &'static str) {
        if let Some(o) = self.open.last_mut() {
            if o.seen & bit != 0 {
                o.duplicates.push((offset, element));
            }
            o.seen |= bit;
        }
    }

    fn problem(&mut self, offset: usize, reason: String) {
        if let Some(o) = self.open.last_mut() {
            o.problems.push((offset, reason));
        }
    }

    fn current(&self) -> Option<NodeId> {
        self.open.last().map(|o| o.id)
    }

    fn begin_capture(&mut self, name: &[u8], offset: usize, keep: Keep, empty: bool) {
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

    fn end(&mut self, end: usize) {
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

    fn set_text(&mut self, field: Field) {
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

    fn open_node(&mut self, offset: usize) {
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
    fn close_node(&mut self) {
        let Some(open) = self.open.pop() else { return };
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
        let mut problems = open.problems;
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

    fn finish(mut self, file: &Path) -> Result<Ddf, Diagnostics> {
        let errors = self
            .faults
            .iter()
            .any(|(_, k)| k.severity() == Severity::Error);
        if self.root_seen && self.ddf.roots.is_empty() && !errors {
            self.fault(self.root_offset, DdfErrorKind::NoNode);
        }
        if self.root_seen && self.ddf.ver_dtd.is_none() && !errors {
            self.fault(self.root_offset, DdfErrorKind::MissingVerDtd);
        }
        let src = self.src;
        let mut diags: Vec<Diagnostic> = self
            .faults
            .into_iter()
            .map(|(at, kind)| Diagnostic {
                file: file.to_owned(),
                position: Position::of_offset(src, at),
                kind,
            })
            .collect();
        if diags.iter().any(Diagnostic::is_error) {
            return Err(Diagnostics::new(diags));
        }
        diags.sort_by_key(|d| d.position);
        let mut ddf = self.ddf;
        if !self.ext_texts.is_empty() {
            let texts = Arc::new(self.ext_texts);
            let all = ddf
                .extensions
                .iter_mut()
                .chain(ddf.node_extensions.iter_mut());
            for e in all {
                e.texts = Arc::clone(&texts);
            }
        }
        // Group the node extensions by node: they come in document order,
        // which is node order unless a node has some after its children.
        let exts = &mut ddf.node_extensions;
        if exts.windows(2).any(|w| w[0].node > w[1].node) {
            exts.sort_by_key(|e| e.node);
        }
        let mut i = 0;
        while i < exts.len() {
            let node = exts[i].node;
            let start = i;
            while i < exts.len() && exts[i].node == node {
                i += 1;
            }
            ddf.nodes[node as usize].ext = (start as u32, i as u32);
        }
        ddf.warnings = diags;
        crate::ir::resolve_names(&mut ddf);
        Ok(ddf)
    }
}

fn pos(p: u64) -> usize {
    usize::try_from(p).unwrap_or(usize::MAX)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A qualified name (`MSFT:Applicability`): an element of another
/// namespace. A plain loop: names are short, and `<[u8]>::contains` goes
/// through `memchr`, whose call showed in the corpus profile.
#[allow(clippy::manual_contains)]
fn is_foreign(name: &[u8]) -> bool {
    name.iter().any(|&b| b == b':')
}

/// `1*unreserved` (spec 6.1.1), as `dm_core::is_node_name`, on bytes.
fn is_node_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
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

/// Element names come from a `&str` source, so they are UTF-8.
fn as_str(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("\u{fffd}")
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
    use super::*;

    fn parse_ok(xml: &str) -> Ddf {
        parse(Path::new("t.ddf"), xml).unwrap_or_else(|d| panic!("{d}"))
    }

    const LEAF: &str =
        "<DFProperties><AccessType><Get/></AccessType><DFFormat><chr/></DFFormat></DFProperties>";

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
    fn extensions_after_child_nodes_stay_with_their_node() {
        let xml = format!(
            "<MgmtTree><VerDTD>1.2</VerDTD><Node><NodeName>p</NodeName><DFProperties><AccessType/><DFFormat><node/></DFFormat><X:a/></DFProperties>\
             <Node><NodeName>c</NodeName>{LEAF}<X:b/></Node><X:c/></Node></MgmtTree>"
        );
        let ddf = parse_ok(&xml);
        let p = ddf.roots()[0];
        let c = ddf.node(p).children[0];
        let names = |id| -> Vec<&str> { ddf.extensions_of(id).iter().map(|e| e.name()).collect() };
        assert_eq!(names(p), ["X:a", "X:c"]);
        assert_eq!(names(c), ["X:b"]);
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
