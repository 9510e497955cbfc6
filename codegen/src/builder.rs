//! The build-script API.

use std::path::{Path, PathBuf};

use crate::emit::EmitOptions;
use crate::error::Error;
use crate::ir::Ddf;

/// Generates Rust modules from DDF files, one `<stem>.rs` per DDF, into
/// `OUT_DIR` (or [`Builder::out_dir`]).
#[derive(Debug, Clone, Default)]
pub struct Builder {
    ddfs: Vec<PathBuf>,
    out_dir: Option<PathBuf>,
    ddf_base_url: Option<String>,
    cargo_metadata: bool,
}

impl Builder {
    /// A builder that prints `cargo:rerun-if-changed` lines when run from a
    /// build script (detected by `OUT_DIR`).
    pub fn new() -> Builder {
        Builder {
            cargo_metadata: std::env::var_os("OUT_DIR").is_some(),
            ..Builder::default()
        }
    }

    /// Adds a DDF file.
    pub fn ddf(mut self, path: impl AsRef<Path>) -> Builder {
        self.ddfs.push(path.as_ref().to_owned());
        self
    }

    /// Writes into `dir` instead of `OUT_DIR`.
    pub fn out_dir(mut self, dir: impl AsRef<Path>) -> Builder {
        self.out_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// Records `<base><file name>` as each MO's DDF URL (spec 5.2.2 MOS).
    pub fn ddf_base_url(mut self, base: impl Into<String>) -> Builder {
        self.ddf_base_url = Some(base.into());
        self
    }

    /// Whether to print `cargo:` lines (on by default inside build scripts).
    pub fn cargo_metadata(mut self, on: bool) -> Builder {
        self.cargo_metadata = on;
        self
    }

    /// Parses, validates and emits every DDF; returns the files written.
    /// A file is rewritten only when its content changed, so that cargo does
    /// not rebuild what did not change.
    pub fn generate(&self) -> Result<Vec<PathBuf>, Error> {
        if self.ddfs.is_empty() {
            return Err(Error::NoInput);
        }
        let out_dir = match &self.out_dir {
            Some(d) => d.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or(Error::NoOutDir)?,
        };
        let mut written = Vec::new();
        for ddf_path in &self.ddfs {
            if self.cargo_metadata {
                println!("cargo:rerun-if-changed={}", ddf_path.display());
            }
            let file_name = ddf_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let ddf = Ddf::read(ddf_path)?;
            let opts = EmitOptions {
                ddf_url: self
                    .ddf_base_url
                    .as_ref()
                    .map(|b| format!("{b}{file_name}")),
                source_name: file_name,
            };
            let source = ddf.to_rust(ddf_path, &opts)?;
            let stem = ddf_path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "ddf".into());
            let out = out_dir.join(format!("{stem}.rs"));
            write_if_changed(&out, source.as_bytes())?;
            written.push(out);
        }
        Ok(written)
    }
}

fn write_if_changed(path: &Path, content: &[u8]) -> Result<(), Error> {
    if std::fs::read(path).is_ok_and(|old| old == content) {
        return Ok(());
    }
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    std::fs::write(path, content).map_err(io)
}
