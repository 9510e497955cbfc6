//! Loading MO plugins from dylibs (docs/architecture.md "Plugins"; the ABI is
//! `dm_core::plugin`).
//!
//! The loader asks each library for its table first and refuses, with an
//! error naming the file, anything it does not know: a library without the
//! entry symbol, another ABI major version, a table that does not read, a
//! MOID that is already served. Loaded libraries are never unloaded, so the
//! table and everything it points to stay valid for the life of the process.

// FFI: loading libraries and calling through their function pointers.
#![allow(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dm_core::plugin::{
    EntryFn, PluginTable, Request, WireChange, WireError, ABI_MAJOR, ENTRY_SYMBOL,
};
use dm_core::{Change, ExecOutcome, ExecRequest, ManagementObject, MoError, MoSchema, NodeData};
use serde_json::Value as Json;

/// Why a library was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{}: cannot load: {reason}", path.display())]
    Load { path: PathBuf, reason: String },
    #[error("{}: not an MO plugin (no `{ENTRY_SYMBOL}` symbol)", path.display())]
    NotAPlugin { path: PathBuf },
    #[error("{}: plugin ABI {found}.x, this device speaks {ABI_MAJOR}.x", path.display())]
    AbiMismatch { path: PathBuf, found: u16 },
    #[error("{}: unreadable plugin table: {reason}", path.display())]
    BadTable { path: PathBuf, reason: String },
    #[error("{}: MOID {moid} is already served by {by}", path.display())]
    DuplicateMoid {
        path: PathBuf,
        moid: String,
        by: String,
    },
}

/// A loaded plugin: its table and the MO definition it reported.
#[derive(Debug)]
pub struct Plugin {
    pub path: PathBuf,
    pub moid: String,
    pub rustc_version: String,
    pub core_version: String,
    pub schema: &'static MoSchema,
    table: &'static PluginTable,
}

impl Plugin {
    /// Loads one library and checks its table.
    pub fn load(path: &Path) -> Result<Plugin, PluginError> {
        let fail = |reason: String| PluginError::Load {
            path: path.to_owned(),
            reason,
        };
        // SAFETY: loading runs the library's initialisers; a plugin
        // directory is trusted configuration, as a kernel module path is.
        let lib = unsafe { libloading::Library::new(path) }.map_err(|e| fail(e.to_string()))?;
        // Never unloaded: the table's pointers must outlive every call.
        let lib: &'static libloading::Library = Box::leak(Box::new(lib));
        // SAFETY: the symbol, if present, has the ABI's entry type.
        let entry = unsafe { lib.get::<EntryFn>(ENTRY_SYMBOL.as_bytes()) }.map_err(|_| {
            PluginError::NotAPlugin {
                path: path.to_owned(),
            }
        })?;
        // SAFETY: calling the entry has no precondition; it returns a
        // pointer to a static table or null.
        let table_ptr = unsafe { entry() };
        // SAFETY: non-null pointers from the entry point to a static table
        // of the library, which is never unloaded.
        let table: &'static PluginTable =
            unsafe { table_ptr.as_ref() }.ok_or_else(|| PluginError::BadTable {
                path: path.to_owned(),
                reason: "null table".into(),
            })?;
        if table.abi_major != ABI_MAJOR {
            return Err(PluginError::AbiMismatch {
                path: path.to_owned(),
                found: table.abi_major,
            });
        }
        let text = |raw: dm_core::plugin::RawStr, what: &str| {
            // SAFETY: the table's strings are static data of the library.
            unsafe { raw.to_str() }
                .map(str::to_owned)
                .ok_or_else(|| PluginError::BadTable {
                    path: path.to_owned(),
                    reason: format!("{what} is not UTF-8"),
                })
        };
        let moid = text(table.moid, "MOID")?;
        let rustc_version = text(table.rustc_version, "rustc version")?;
        let core_version = text(table.core_version, "dm-core version")?;
        let mut plugin = Plugin {
            path: path.to_owned(),
            moid,
            rustc_version,
            core_version,
            // Replaced just below, once the plugin described itself.
            schema: &PLACEHOLDER,
            table,
        };
        let schema_json = plugin
            .call(&Request::Schema)
            .map_err(|e| PluginError::BadTable {
                path: path.to_owned(),
                reason: format!("schema request failed: {}", e.message),
            })?;
        plugin.schema =
            MoSchema::leak_from_json(&schema_json).map_err(|e| PluginError::BadTable {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        if plugin.schema.moid != plugin.moid {
            return Err(PluginError::BadTable {
                path: path.to_owned(),
                reason: format!(
                    "table MOID {} but schema MOID {}",
                    plugin.moid, plugin.schema.moid
                ),
            });
        }
        Ok(plugin)
    }

    /// One request/response through the ABI.
    pub fn call(&self, request: &Request) -> Result<Json, WireError> {
        let bytes = serde_json::to_vec(request).unwrap_or_default();
        // SAFETY: `bytes` outlives the call; the plugin copies what it needs.
        let buf = unsafe { (self.table.call)(bytes.as_ptr(), bytes.len()) };
        let out = if buf.ptr.is_null() {
            Vec::new()
        } else {
            // SAFETY: the plugin returned a buffer of `len` initialised bytes
            // that stays valid until we free it below.
            unsafe { std::slice::from_raw_parts(buf.ptr, buf.len) }.to_vec()
        };
        // SAFETY: the buffer came from this plugin's `call`, freed once.
        unsafe { (self.table.free)(buf) };
        let bad = |m: String| WireError {
            status: 500,
            kind: "bad_response".into(),
            message: m,
        };
        let mut response: serde_json::Map<String, Json> = match serde_json::from_slice(&out) {
            Ok(Json::Object(o)) => o,
            _ => {
                return Err(bad(format!(
                    "{}: response is not a JSON object",
                    self.path.display()
                )))
            }
        };
        if let Some(e) = response.remove("err") {
            return Err(serde_json::from_value(e).unwrap_or_else(|e| bad(e.to_string())));
        }
        response.remove("ok").ok_or_else(|| {
            bad(format!(
                "{}: response has neither ok nor err",
                self.path.display()
            ))
        })
    }

    /// The MIIDs of the plugin's instances.
    pub fn instances(&self) -> Result<Vec<String>, MoError> {
        let json = self.call(&Request::Instances).map_err(WireError::into_mo)?;
        serde_json::from_value(json).map_err(|e| MoError::Failed(e.to_string()))
    }
}

static PLACEHOLDER: MoSchema = MoSchema {
    moid: "",
    ddf_url: None,
    root: dm_core::NodeSchema {
        name: None,
        format: dm_core::Format::Node,
        access: dm_core::AccessType::NONE,
        occurrence: dm_core::Occurrence::One,
        scope: dm_core::Scope::Permanent,
        children: &[],
    },
};

/// Loads every library in `dir` (files ending in the platform's dylib
/// suffix), in name order. Refused files are reported and skipped: the
/// device starts with the rest. `taken` holds MOIDs already served (by
/// compiled-in MOs), with who serves them.
pub fn load_dir(dir: &Path, taken: &[(String, String)]) -> (Vec<Arc<Plugin>>, Vec<PluginError>) {
    let mut errors = Vec::new();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension().and_then(|e| e.to_str()) == Some(std::env::consts::DLL_EXTENSION)
            })
            .collect(),
        Err(e) => {
            errors.push(PluginError::Load {
                path: dir.to_owned(),
                reason: e.to_string(),
            });
            return (Vec::new(), errors);
        }
    };
    files.sort();
    let mut served: Vec<(String, String)> = taken.to_vec();
    let mut plugins = Vec::new();
    for path in files {
        match Plugin::load(&path) {
            Ok(p) => {
                if let Some((_, by)) = served.iter().find(|(m, _)| *m == p.moid) {
                    errors.push(PluginError::DuplicateMoid {
                        path: path.clone(),
                        moid: p.moid.clone(),
                        by: by.clone(),
                    });
                    continue;
                }
                served.push((p.moid.clone(), path.display().to_string()));
                plugins.push(Arc::new(p));
            }
            Err(e) => errors.push(e),
        }
    }
    (plugins, errors)
}

/// One instance inside a plugin, seen by the agent as any other MO.
#[derive(Debug, Clone)]
pub struct PluginInstance {
    plugin: Arc<Plugin>,
    miid: String,
}

impl PluginInstance {
    pub fn new(plugin: Arc<Plugin>, miid: impl Into<String>) -> PluginInstance {
        PluginInstance {
            plugin,
            miid: miid.into(),
        }
    }

    /// Asks the plugin to create instance `miid` from root data.
    pub fn create(
        plugin: Arc<Plugin>,
        miid: &str,
        data: &NodeData,
    ) -> Result<PluginInstance, MoError> {
        plugin
            .call(&Request::Create {
                miid: miid.to_owned(),
                data: data.to_json(),
            })
            .map_err(WireError::into_mo)?;
        Ok(PluginInstance::new(plugin, miid))
    }
}

fn strings(path: &[&str]) -> Vec<String> {
    path.iter().map(|s| (*s).to_owned()).collect()
}

impl ManagementObject for PluginInstance {
    fn schema(&self) -> &'static MoSchema {
        self.plugin.schema
    }

    fn get(&self, path: &[&str]) -> Result<NodeData, MoError> {
        let json = self
            .plugin
            .call(&Request::Get {
                miid: self.miid.clone(),
                path: strings(path),
            })
            .map_err(WireError::into_mo)?;
        let schema = self
            .plugin
            .schema
            .root
            .descendant(path)
            .ok_or_else(|| MoError::NotFound(path.join("/")))?;
        NodeData::from_json(&json, schema).map_err(|e| MoError::Failed(format!("plugin data: {e}")))
    }

    fn apply(&mut self, changes: &[Change]) -> Result<(), MoError> {
        let changes = changes
            .iter()
            .map(|c| match c {
                Change::Put { path, data } => WireChange::Put {
                    path: path.clone(),
                    data: data.to_json(),
                },
                Change::Delete { path } => WireChange::Delete { path: path.clone() },
            })
            .collect();
        self.plugin
            .call(&Request::Apply {
                miid: self.miid.clone(),
                changes,
            })
            .map(|_| ())
            .map_err(WireError::into_mo)
    }

    fn exec(&mut self, path: &[&str], request: &ExecRequest) -> Result<ExecOutcome, MoError> {
        let json = self
            .plugin
            .call(&Request::Exec {
                miid: self.miid.clone(),
                path: strings(path),
                asynchronous: request.asynchronous,
            })
            .map_err(WireError::into_mo)?;
        match json.as_str() {
            Some("done") => Ok(ExecOutcome::Done),
            Some("started") => {
                // Plugin ABI 1 has no way back for a final status: the
                // alert says 202 (accepted, outcome unknown) at once rather
                // than waiting for a finish that cannot come.
                if let Some(c) = &request.completion {
                    c.finish(dm_core::ExecReport::status(dm_core::StatusCode::ACCEPTED));
                }
                Ok(ExecOutcome::Started)
            }
            _ => Err(MoError::Failed(format!("plugin exec answered {json}"))),
        }
    }
}
