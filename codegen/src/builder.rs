//! The build-script API (the prost-build / progenitor recipe): generate
//! into `OUT_DIR`, print `cargo:rerun-if-changed` for every input, write
//! nothing unless every DDF succeeded, and rewrite a file only when its
//! content changed so that cargo does not rebuild what did not change.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::emit::EmitOptions;
use crate::error::Error;
use crate::ir::Ddf;

/// Generates Rust modules from DDF files, one `<stem>.rs` per DDF, into
/// `OUT_DIR` (or [`Builder::out_dir`]).
///
/// ```no_run
/// // build.rs
/// dm_codegen::Builder::new()
///     .ddf("../../ddf/dmacc.ddf")
///     .ddf_base_url("https://omadm.example/ddf/")
///     .generate()
///     .unwrap_or_else(|e| panic!("{e}"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Builder {
    ddfs: Vec<PathBuf>,
    out_dir: Option<PathBuf>,
    ddf_base_url: Option<String>,
    moids: HashMap<String, String>,
    cargo_metadata: bool,
}

impl Builder {
    /// A builder that prints `cargo:` lines when run from a build script
    /// (detected by `OUT_DIR`).
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

    /// Makes the root node called `root` (its NodeName, or DFTitle when
    /// un-named) an MO with this MOID although its DDF names none, as the
    /// Windows DDFs do. A MOID in the DDF wins.
    pub fn moid(mut self, root: impl Into<String>, moid: impl Into<String>) -> Builder {
        self.moids.insert(root.into(), moid.into());
        self
    }

    /// Whether to print `cargo:` lines (on by default inside build scripts).
    pub fn cargo_metadata(mut self, on: bool) -> Builder {
        self.cargo_metadata = on;
        self
    }

    /// Parses, validates and emits every DDF, then writes the files; returns
    /// their paths. Nothing is written when any DDF fails.
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
        if self.cargo_metadata {
            for ddf_path in &self.ddfs {
                println!("cargo:rerun-if-changed={}", ddf_path.display());
            }
        }
        let mut outputs: Vec<(PathBuf, String)> = Vec::new();
        for ddf_path in &self.ddfs {
            let file_name = ddf_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let ddf = Ddf::read(ddf_path)?;
            if self.cargo_metadata {
                for w in &ddf.warnings {
                    println!("cargo:warning={w}");
                }
            }
            let opts = EmitOptions {
                ddf_url: self
                    .ddf_base_url
                    .as_ref()
                    .map(|b| format!("{b}{file_name}")),
                source_name: file_name,
                moids: self.moids.clone(),
            };
            let source = ddf.to_rust(&opts)?;
            let out = out_dir.join(format!("{}.rs", output_stem(ddf_path)));
            if outputs.iter().any(|(o, _)| *o == out) {
                return Err(Error::OutputClash {
                    file: ddf_path.clone(),
                    output: out,
                });
            }
            outputs.push((out, source));
        }
        for (path, source) in &outputs {
            write_if_changed(path, source.as_bytes())?;
        }
        Ok(outputs.into_iter().map(|(p, _)| p).collect())
    }
}

/// The file stem of a DDF as a file name of the output: `dmacc.ddf` ->
/// `dmacc`.
pub(crate) fn output_stem(ddf_path: &Path) -> String {
    ddf_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "ddf".into())
}

/// Writes `content` unless the file already holds exactly that.
pub(crate) fn write_if_changed(path: &Path, content: &[u8]) -> Result<bool, Error> {
    if std::fs::read(path).is_ok_and(|old| old == content) {
        return Ok(false);
    }
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    std::fs::write(path, content).map_err(io)?;
    Ok(true)
}
