//! Diagnostics with the file, line and column of the fault (docs/architecture.md
//! "Errors": a DDF error names file, line and column).

use std::fmt;
use std::path::PathBuf;

/// A position in a DDF file, 1-based; columns count characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// The line and column of byte `offset` in `text`.
    pub fn of_offset(text: &str, offset: usize) -> Position {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Position { line, column }
    }
}

/// How bad a diagnostic is. Errors stop code generation; warnings are
/// printed (as `cargo:warning` from a build script) and generation goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// What is wrong with a DDF. Node names are shown as paths from the DDF
/// root, with `<Title>` for un-named nodes (spec 6.3.1.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DdfErrorKind {
    // ---- errors: the XML, or a meaning the IR cannot represent ----
    #[error("XML is not well formed: {0}")]
    Xml(String),
    #[error("the file is not text in a supported encoding: {0}")]
    Encoding(String),
    #[error("the root element is <{0}>, expected <MgmtTree>")]
    NotMgmtTree(String),
    #[error("<MgmtTree> has no <Node>")]
    NoNode,
    #[error("<Node> has no <NodeName> (an un-named node has an empty one)")]
    MissingNodeName,
    #[error("node `{0}` has no <DFProperties>")]
    MissingDfProperties(String),
    #[error("node `{0}` has no <AccessType>")]
    MissingAccessType(String),
    #[error("node `{0}` has no <DFFormat>")]
    MissingFormat(String),
    #[error("node `{node}`: {reason}")]
    BadProperty { node: String, reason: String },
    #[error("node `{node}` has more than one <{element}>")]
    DuplicateElement { node: String, element: String },
    #[error("leaf node `{0}` (format is not `node`) has child nodes")]
    LeafWithChildren(String),
    #[error("node `{parent}` has two children named `{name}`")]
    DuplicateSibling { parent: String, name: String },
    #[error("node `{parent}` has more than one un-named child")]
    DuplicateUnnamed { parent: String },
    #[error("element <{0}> after the end of <MgmtTree>")]
    TrailingContent(String),

    // ---- warnings: kept or ignored, generation goes on ----
    #[error("<MgmtTree> has no <VerDTD>")]
    MissingVerDtd,
    #[error("unknown element <{element}> in <{parent}>: kept as an extension, not interpreted")]
    UnknownElement { element: String, parent: String },
    #[error("node `{node}`: default value `{value}` is not valid {format} data; no default is generated")]
    BadDefault {
        node: String,
        value: String,
        format: String,
    },
    #[error("node `{node}`: `{name}` is not a valid node name (1*unreserved, spec 6.1.1)")]
    BadNodeName { node: String, name: String },
    #[error(
        "node `{node}`: DDFName on a leaf node is ignored (a MOID belongs to an interior node)"
    )]
    MoidOnLeaf { node: String },
    #[error(
        "node `{node}`: MOID `{moid}` below the MO root is ignored; only a root node starts an MO"
    )]
    NestedMoid { node: String, moid: String },
    #[error("node `{node}` has both <Value> and child nodes (DTD: one or the other)")]
    ValueWithChildren { node: String },
    #[error("node `{node}` has format `{format}` but child nodes and DFType/DDFName, as an interior node has: read as interior (format `node`)")]
    LeafFormatReadAsInterior { node: String, format: String },
}

impl DdfErrorKind {
    /// Whether this kind stops generation.
    pub fn severity(&self) -> Severity {
        match self {
            DdfErrorKind::MissingVerDtd
            | DdfErrorKind::UnknownElement { .. }
            | DdfErrorKind::BadDefault { .. }
            | DdfErrorKind::BadNodeName { .. }
            | DdfErrorKind::MoidOnLeaf { .. }
            | DdfErrorKind::NestedMoid { .. }
            | DdfErrorKind::ValueWithChildren { .. }
            | DdfErrorKind::LeafFormatReadAsInterior { .. } => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

/// A diagnostic for one DDF file: `file:line:column: error: reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub position: Position,
    pub kind: DdfErrorKind,
}

impl Diagnostic {
    pub fn severity(&self) -> Severity {
        self.kind.severity()
    }

    pub fn is_error(&self) -> bool {
        self.severity() == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file.display(),
            self.position.line,
            self.position.column,
            self.severity(),
            self.kind
        )
    }
}

/// Every error (and the warnings found with them) of one DDF file, in
/// file order. Never empty; at least one is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    pub(crate) fn new(mut all: Vec<Diagnostic>) -> Diagnostics {
        all.sort_by_key(|d| d.position);
        Diagnostics(all)
    }

    /// The first error in file order.
    pub fn first_error(&self) -> &Diagnostic {
        self.0
            .iter()
            .find(|d| d.is_error())
            .unwrap_or_else(|| &self.0[0])
    }

    /// The errors, in file order.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.is_error())
    }

    /// Errors and warnings, in file order.
    pub fn all(&self) -> &[Diagnostic] {
        &self.0
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Everything that can stop code generation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Ddf(#[from] Diagnostics),
    #[error("no DDF given")]
    NoInput,
    #[error("OUT_DIR is not set and no output directory was given")]
    NoOutDir,
    #[error("{file}: two DDF files would write `{output}`")]
    OutputClash { file: PathBuf, output: PathBuf },
    #[error(transparent)]
    Emit(#[from] EmitError),
    #[error("{option} `{path}`: no DDF of the build has the root `{root}`")]
    UnknownRoot {
        /// `live` or `field`.
        option: &'static str,
        path: String,
        root: String,
    },
}

/// [`crate::Ddf::to_rust`] failed: an option names what the DDF does not
/// have, or (`Unparsable`) the tokens it built are not Rust, never the
/// DDF's fault (the IR is valid by construction), so a bug to report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    #[error("{source_name}: {option} `{path}`: {reason}")]
    BadPath {
        source_name: String,
        /// `live` or `field`.
        option: &'static str,
        path: String,
        reason: String,
    },
    #[error(
        "{source_name}: node `{path}` is chosen live but has no Get: only a node that is read \
         can be read from the device (choose nodes with Get, or its MO root for all of them)"
    )]
    LiveWithoutGet { source_name: String, path: String },
    #[error("{source_name}: field `{spec}` of `{path}`: {reason}")]
    BadField {
        source_name: String,
        path: String,
        spec: String,
        reason: String,
    },
    #[error(
        "{source_name}: live node `{path}` would be read by `{method}`, but an accessor of its \
         parent has that name and would shadow it"
    )]
    LiveNameClash {
        source_name: String,
        path: String,
        method: String,
    },
    #[error("{source_name}: the generated code does not parse (a bug of dm-codegen): {source}")]
    Unparsable {
        /// The DDF's file name ([`crate::EmitOptions::source_name`]).
        source_name: String,
        #[source]
        source: syn::Error,
    },
}

/// [`crate::Ddf::to_docs`] failed. The templates are built in, so this is
/// a bug of dm-codegen too; the message carries tera's whole chain of
/// causes, which names the template line. (tera's error is boxed: it is
/// large, and the `Ok` side is what callers move around.)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DocError {
    #[error("doc templates do not compile: {}", causes(source))]
    Templates {
        #[source]
        source: Box<tera::Error>,
    },
    #[error(
        "{source_name}: page `{page}`: its data is not a template context: {}",
        causes(source)
    )]
    Context {
        source_name: String,
        page: String,
        #[source]
        source: Box<tera::Error>,
    },
    #[error(
        "{source_name}: rendering `{page}` with template `{template}`: {}",
        causes(source)
    )]
    Render {
        source_name: String,
        page: String,
        template: &'static str,
        #[source]
        source: Box<tera::Error>,
    },
}

/// `error: cause: cause`, as `{:?}` of tera's error used to show.
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_lines_and_columns() {
        let text = "ab\ncdé\nf";
        assert_eq!(
            Position::of_offset(text, 0),
            Position { line: 1, column: 1 }
        );
        assert_eq!(
            Position::of_offset(text, 4),
            Position { line: 2, column: 2 }
        );
        assert_eq!(
            Position::of_offset(text, 8),
            Position { line: 3, column: 1 }
        );
        assert_eq!(
            Position::of_offset(text, 99),
            Position { line: 3, column: 2 }
        );
        // Inside a multi-byte character: the character's own column.
        assert_eq!(
            Position::of_offset(text, 6),
            Position { line: 2, column: 3 }
        );
    }
}
