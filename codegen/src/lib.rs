//! `dm-codegen`: DM 1.2/1.3 DDF files -> typed Rust Management Objects.
//!
//! The pipeline reads in order: [`parse`](Ddf::parse) the XML into a small
//! element tree, validate it into an IR ([`Ddf`]) whose node definitions
//! carry `dm-core` types and resolved Rust names, then emit Rust source with
//! `#[derive(ManagementObject)]` (quote + prettyplease). Every fault in a
//! DDF is a [`Diagnostic`] naming file, line and column.
//!
//! From a build script:
//!
//! ```no_run
//! dm_codegen::Builder::new()
//!     .ddf("../../ddf/devinfo.ddf")
//!     .generate()
//!     .unwrap_or_else(|e| panic!("{e}"));
//! ```

mod builder;
mod emit;
mod error;
mod ir;
mod parse;

use std::path::Path;

pub use builder::Builder;
pub use emit::EmitOptions;
pub use error::{DdfErrorKind, Diagnostic, Error, Position};
pub use ir::{Ddf, NodeDef, RustNames};

impl Ddf {
    /// Parses and validates the DDF text of `file` (used in diagnostics).
    pub fn parse(file: &Path, text: &str) -> Result<Ddf, Diagnostic> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let diag = |(offset, kind): (usize, DdfErrorKind)| Diagnostic {
            file: file.to_owned(),
            position: Position::of_offset(text, offset),
            kind,
        };
        let root = parse::parse(text).map_err(diag)?;
        ir::build(&root).map_err(diag)
    }

    /// Reads and validates a DDF file.
    pub fn read(file: &Path) -> Result<Ddf, Error> {
        let bytes = std::fs::read(file).map_err(|source| Error::Io {
            path: file.to_owned(),
            source,
        })?;
        let text = String::from_utf8_lossy(&bytes);
        Ok(Ddf::parse(file, &text)?)
    }

    /// Emits the Rust source for this DDF.
    pub fn to_rust(&self, file: &Path, opts: &EmitOptions) -> Result<String, Diagnostic> {
        emit::emit(self, opts).map_err(|(offset, kind)| Diagnostic {
            file: file.to_owned(),
            // Offsets refer to the source text, which the IR no longer
            // holds; re-reading is cheap and only happens on error.
            position: std::fs::read_to_string(file)
                .map(|t| Position::of_offset(t.strip_prefix('\u{feff}').unwrap_or(&t), offset))
                .unwrap_or(Position { line: 1, column: 1 }),
            kind,
        })
    }
}
