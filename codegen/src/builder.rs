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
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     dm_codegen::Builder::new()
///         .ddf("../../ddf/dmacc.ddf")
///         .ddf_base_url("https://omadm.example/ddf/")
///         .generate()?;
///     Ok(())
/// }
/// ```
///
/// An error fails the build with its message (every DDF diagnostic with
/// file, line and column), as a build script of prost-build does.
///
/// An MO that owns its data (reads it from the device at every GET) is
/// chosen with [`Builder::live`]; MO code keeps its own state (a device
/// handle, a `dm_core::ChangeReporter`) in fields added with
/// [`Builder::field`]:
///
/// ```no_run
/// // build.rs
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     dm_codegen::Builder::new()
///         .ddf("ddf/battery.ddf")
///         .live("Battery/Level")
///         .live("Battery/<Cell>")
///         .field("Battery", "device: crate::Device")
///         .generate()?;
///     Ok(())
/// }
/// ```
///
/// and in the crate, beside the `include!`, the MO author implements the
/// generated `BatteryLive` trait (`fn read_level(&self) -> Result<i64,
/// MoError>`, `fn read_cell(&self) -> Result<NodeMap<BatteryCell, 0,
/// UNBOUNDED>, MoError>`), and `commit` of `BatteryBehaviour` where
/// writes must reach the device.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    ddfs: Vec<PathBuf>,
    out_dir: Option<PathBuf>,
    ddf_base_url: Option<String>,
    moids: HashMap<String, String>,
    live: Vec<String>,
    fields: Vec<(String, String)>,
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

    /// Makes the node at `path` owned by the MO: every read of it asks MO
    /// code, nothing of it is kept by the runtime. `path` is DDF node names
    /// from the root, the root named as in [`Builder::moid`]: `Battery/Level`
    /// for one node, `Battery/<Cell>` (or `Battery/Cell`, its DFTitle) for
    /// an un-named node whose instances the MO lists, `Battery` for every
    /// child of the root that has Get. The field gets `#[dm(live)]`, and
    /// the parent's struct a `<Type>Live` trait with one typed
    /// `read_<field>` per live child, which the MO author implements. A
    /// chosen node without Get is an error (nothing reads it).
    pub fn live(mut self, path: impl Into<String>) -> Builder {
        self.live.push(path.into());
        self
    }

    /// Adds a field that is no node to the struct of the interior node at
    /// `path` (as in [`Builder::live`]): `spec` is `name: Type`, emitted as
    /// `#[dm(skip)] pub(crate) name: Type`, where MO code keeps its own
    /// state (a device connection, a `dm_core::ChangeReporter`, pending
    /// `dm_core::Completion`s). It starts at `Default::default()`; `Type`
    /// must be `Default + Clone + Debug + PartialEq`, which the generated
    /// struct derives.
    pub fn field(mut self, path: impl Into<String>, spec: impl Into<String>) -> Builder {
        self.fields.push((path.into(), spec.into()));
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
        // The roots the live and field paths name, found in some DDF.
        let mut found_roots = std::collections::HashSet::new();
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
            for path in self.live.iter().chain(self.fields.iter().map(|(p, _)| p)) {
                let root = root_of(path);
                if crate::emit::root_named(&ddf, root).is_some() {
                    found_roots.insert(root);
                }
            }
            let opts = EmitOptions {
                ddf_url: self
                    .ddf_base_url
                    .as_ref()
                    .map(|b| format!("{b}{file_name}")),
                source_name: file_name,
                moids: self.moids.clone(),
                live: self.live.clone(),
                fields: self.fields.clone(),
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
        let paths = (self.live.iter().map(|p| ("live", p)))
            .chain(self.fields.iter().map(|(p, _)| ("field", p)));
        for (option, path) in paths {
            if !found_roots.contains(root_of(path)) {
                return Err(Error::UnknownRoot {
                    option,
                    path: path.clone(),
                    root: root_of(path).to_owned(),
                });
            }
        }
        for (path, source) in &outputs {
            write_if_changed(path, source.as_bytes())?;
        }
        Ok(outputs.into_iter().map(|(p, _)| p).collect())
    }
}

/// The first segment of a live or field path: its root.
fn root_of(path: &str) -> &str {
    path.trim_matches('/').split('/').next().unwrap_or_default()
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
