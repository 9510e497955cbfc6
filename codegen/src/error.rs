//! Diagnostics with the file, line and column of the fault.

use std::fmt;
use std::path::PathBuf;

/// A position in a DDF file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// The line and column of byte `offset` in `text`.
    pub fn of_offset(text: &str, offset: usize) -> Position {
        let offset = offset.min(text.len());
        let before = text.get(..offset).unwrap_or(text);
        let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Position { line, column }
    }
}

/// What is wrong with a DDF.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DdfErrorKind {
    #[error("XML is not well formed: {0}")]
    Xml(String),
    #[error("the root element is <{0}>, expected <MgmtTree>")]
    NotMgmtTree(String),
    #[error("<MgmtTree> has no <Node>")]
    NoNode,
    #[error("<Node> has no <NodeName>")]
    MissingNodeName,
    #[error("node `{0}` has no <DFProperties>")]
    MissingDfProperties(String),
    #[error("node `{0}` has no <AccessType>")]
    MissingAccessType(String),
    #[error("node `{0}` has no <DFFormat>")]
    MissingFormat(String),
    #[error("node `{node}`: {reason}")]
    BadProperty { node: String, reason: String },
    #[error("leaf node `{0}` (format is not `node`) has child nodes")]
    LeafWithChildren(String),
    #[error("node `{parent}` has two children named `{name}`")]
    DuplicateSibling { parent: String, name: String },
    #[error("node `{parent}` has more than one un-named child")]
    DuplicateUnnamed { parent: String },
}

/// A diagnostic for one DDF file: `file:line:column: reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub position: Position,
    pub kind: DdfErrorKind,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.position.line,
            self.position.column,
            self.kind
        )
    }
}

/// Everything that can stop code generation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Ddf(#[from] Diagnostic),
    #[error("no DDF given")]
    NoInput,
    #[error("OUT_DIR is not set and no output directory was given")]
    NoOutDir,
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
    }
}
