//! `dm-codegen`: DM 1.2/1.3 DDF files -> typed Rust Management Objects and
//! MO reference documentation.
//!
//! The pipeline (docs/architecture.md "Typed codegen"):
//!
//! 1. [`Ddf::parse`] reads the XML in one streaming pass (quick-xml) into a
//!    validated IR ([`Ddf`]): node definitions in an arena keyed by
//!    [`NodeId`], carrying the `dm-core` node model of spec 6.3.1 and the
//!    Rust names resolved for them. Every fault is a [`Diagnostic`] naming
//!    file, line and column; nothing panics on bad input.
//! 2. [`Ddf::to_rust`] emits one struct per interior node with
//!    `#[derive(ManagementObject)]` / `#[derive(MoNode)]`, typed accessors
//!    that follow the DDF access types, and for each MO a behaviour trait
//!    with one method per Exec node (quote, formatted with prettyplease).
//! 3. [`Ddf::to_docs`] renders one reference page per MO in Markdown and
//!    HTML (tera), in the style of the spec's section 12.
//!
//! From a build script:
//!
//! ```no_run
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     dm_codegen::Builder::new()
//!         .ddf("../../ddf/devinfo.ddf")
//!         .generate()?;
//!     Ok(())
//! }
//! ```
//!
//! and in the crate: `include!(concat!(env!("OUT_DIR"), "/devinfo.rs"));`.

mod builder;
mod doc;
mod emit;
mod error;
mod ir;
mod names;
mod parse;

use std::path::Path;

pub use builder::Builder;
pub use doc::DocPage;
pub use emit::EmitOptions;
pub use error::{
    DdfErrorKind, Diagnostic, Diagnostics, DocError, EmitError, Error, Position, Severity,
};
pub use ir::{behaviour_trait_name, CaseSense, Ddf, Extension, Holder, NodeDef, NodeId, RustNames};

impl Ddf {
    /// Parses and validates the DDF text of `file` (`file` only names the
    /// source in diagnostics). Errors come all together, in file order.
    pub fn parse(file: &Path, text: &str) -> Result<Ddf, Diagnostics> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        parse::parse(file, text)
    }

    /// Reads and validates a DDF file. UTF-8 (with or without BOM), UTF-16
    /// with a BOM, and ISO-8859-1 when the XML declaration says so (also
    /// for `windows-1252`, whose 0x80-0x9F differ) are accepted.
    pub fn read(file: &Path) -> Result<Ddf, Error> {
        let text = read_text(file)?;
        Ok(Ddf::parse(file, &text)?)
    }

    /// Emits the Rust source for this DDF.
    pub fn to_rust(&self, opts: &EmitOptions) -> Result<String, EmitError> {
        emit::emit(self, opts)
    }

    /// Renders the reference pages of this DDF: one per root node (an MO,
    /// or a tree without MOID as in the Windows files), Markdown and HTML.
    pub fn to_docs(&self, source_name: &str) -> Result<Vec<DocPage>, DocError> {
        doc::render(self, source_name)
    }
}

/// The text of a DDF file, decoded.
pub(crate) fn read_text(file: &Path) -> Result<String, Error> {
    let bytes = std::fs::read(file).map_err(|source| Error::Io {
        path: file.to_owned(),
        source,
    })?;
    decode(&bytes).map_err(|(offset, reason)| {
        let shown = String::from_utf8_lossy(&bytes);
        Error::Ddf(Diagnostics::new(vec![Diagnostic {
            file: file.to_owned(),
            position: Position::of_offset(&shown, offset),
            kind: DdfErrorKind::Encoding(reason),
        }]))
    })
}

fn decode(bytes: &[u8]) -> Result<String, (usize, String)> {
    let utf16 = |be: bool| {
        let units: Vec<u16> = bytes[2..]
            .chunks(2)
            .map(|c| {
                let pair = [c[0], c.get(1).copied().unwrap_or(0)];
                if be {
                    u16::from_be_bytes(pair)
                } else {
                    u16::from_le_bytes(pair)
                }
            })
            .collect();
        String::from_utf16(&units).map_err(|e| (0, format!("bad UTF-16: {e}")))
    };
    match bytes {
        [0xff, 0xfe, ..] => return utf16(false),
        [0xfe, 0xff, ..] => return utf16(true),
        _ => {}
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_owned()),
        Err(e) => {
            // The XML declaration may name a single-byte encoding.
            let head = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).to_ascii_lowercase();
            let declared = head
                .split("encoding=")
                .nth(1)
                .and_then(|r| r.trim_start_matches(['"', '\'']).split(['"', '\'']).next())
                .unwrap_or("utf-8")
                .to_owned();
            if matches!(
                declared.as_str(),
                "iso-8859-1" | "latin1" | "latin-1" | "windows-1252" | "cp1252"
            ) {
                Ok(bytes.iter().map(|b| char::from(*b)).collect())
            } else {
                Err((
                    e.valid_up_to(),
                    format!(
                        "invalid UTF-8 at byte {} (declared encoding: {declared})",
                        e.valid_up_to()
                    ),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_decoded() {
        assert_eq!(decode(b"<a/>").unwrap(), "<a/>");
        assert_eq!(decode(&[0xff, 0xfe, b'<', 0, b'a', 0]).unwrap(), "<a");
        assert_eq!(decode(&[0xfe, 0xff, 0, b'<', 0, b'a']).unwrap(), "<a");
        let latin = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>\xe9</a>";
        assert!(decode(latin).unwrap().contains('\u{e9}'));
        let (at, reason) = decode(b"<a>\xe9</a>").unwrap_err();
        assert_eq!(at, 3);
        assert!(reason.contains("UTF-8"), "{reason}");
    }
}
