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
//! unknown elements, also those inside AccessType, DFFormat, Occurrence,
//! Scope or CaseSense that the DTD does not define there (a warning naming
//! them; the node keeps what it has), are kept as opaque [`Extension`]s on
//! their node;
//! RTProperties is parsed and then ignored, as 6.4 says. Strict where
//! meaning would be lost: see [`DdfErrorKind`] for what is an error.
//!
//! The parser reads in this order, one file per concern:
//! - `xml`: the quick-xml event loop, text and CDATA, the DOCTYPE's
//!   entities, and elements captured whole (extensions, markup in text);
//! - `grammar`: which DDF element may appear where (the DTD of 6.4), and
//!   the text elements' values;
//! - `properties`: the values of DFProperties (AccessType, DFFormat,
//!   Occurrence, Scope, CaseSense);
//! - `node`: a `<Node>` opened and, once closed, checked as a whole;
//! - here: the parser's state and `finish`, which turns the faults into
//!   diagnostics and hands the [`Ddf`] to name resolution.

mod grammar;
mod node;
mod properties;
mod xml;

use std::path::Path;
use std::sync::Arc;

use crate::error::{DdfErrorKind, Diagnostic, Diagnostics, Position, Severity};
use crate::ir::{Ddf, NodeId};

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
    occ_kind: Option<(&'static str, usize)>,
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

impl Parser<'_> {
    fn fault(&mut self, at: usize, kind: DdfErrorKind) {
        self.faults.push((at, kind));
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

/// Element names come from a `&str` source, so they are UTF-8.
fn as_str(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("\u{fffd}")
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn parse_ok(xml: &str) -> Ddf {
        parse(Path::new("t.ddf"), xml).unwrap_or_else(|d| panic!("{d}"))
    }

    pub(super) const LEAF: &str =
        "<DFProperties><AccessType><Get/></AccessType><DFFormat><chr/></DFFormat></DFProperties>";

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
}
