//! Loading MO plugins from dylibs (docs/architecture.md "Plugins"; the ABI is
//! `dm_core::plugin`, version 2).
//!
//! **Containment.** A plugin is native code: a null or dangling pointer, an
//! abort, a call that never returns or a response that claims a terabyte
//! would end the process that loaded it. So by default a plugin is
//! *isolated*: the agent starts a host process for it (the agent's own
//! executable run as `dmctl plugin-host FILE`, [`host_main`]), which loads
//! the library and answers the same JSON requests over a pipe, one frame
//! per message, each length-prefixed and at most [`MAX_MESSAGE`] bytes.
//! Each call waits at most [`CALL_TIMEOUT`] (or
//! [`PluginOptions::call_timeout`]); a host that does not answer in time
//! is killed. A host that dies is restarted by a watchdog after
//! [`RESTART_BACKOFF_MIN`], doubling up to [`RESTART_BACKOFF_MAX`] while
//! it keeps dying young; until it is back, its MOs answer 500. A restarted
//! host gets its instances' change reporters and the handles of their
//! unfinished EXECs again; data the plugin kept only in memory starts
//! over from its built-in instances.
//!
//! A plugin the device builder marks *trusted*, with a file named after it
//! plus [`TRUSTED_SUFFIX`] beside it (`libfoo.so.trusted`), is loaded into
//! the agent itself: no process, no pipe (about 5 us a call instead of
//! tens), and none of the protection above.
//!
//! **Refusals**, each an error naming the file: the plugin folder or a
//! plugin file (or its trusted marker) writable by group or others (as
//! sshd's StrictModes: whoever can write it can run code as the agent);
//! a library without the entry symbol, another ABI major version (ABI 1
//! plugins are named and refused), a table that does not read; a MOID a
//! compiled-in MO serves; and two plugins claiming one MOID: both named,
//! neither loaded, whatever their file names.

// FFI: loading libraries and calling through their function pointers.
#![allow(unsafe_code)]

mod host;
mod isolated;
mod wire;

use std::collections::HashMap;
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use dm_core::plugin::{
    EntryFn, Event, HostTable, PluginTable, Request, WireChange, WireError, ABI_MAJOR, ENTRY_SYMBOL,
};
use dm_core::{
    Change, ChangeReporter, Completion, ExecOutcome, ExecRequest, ManagementObject, MoError,
    MoSchema, NodeData,
};
use serde_json::Value as Json;

pub use host::host_main;
pub use wire::MAX_MESSAGE;

/// How long the agent waits for an isolated plugin's answer to one call
/// before it kills the host process: 5 s. A read from a device (a sensor, a
/// modem) that takes longer is broken, and the session goes on with 500 for
/// that node rather than waiting for the server's patience to run out.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a new host process may take to load its library and say so.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// The first wait before a dead host process is started again.
pub const RESTART_BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest wait between two starts of a host process that keeps dying.
pub const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A host that ran this long before it died restarts after the shortest
/// wait again.
pub const RESTART_STABLE_AFTER: Duration = Duration::from_secs(10);
/// The suffix of the file that marks a plugin trusted (in-process).
pub const TRUSTED_SUFFIX: &str = ".trusted";

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
    MoidTaken {
        path: PathBuf,
        moid: String,
        by: String,
    },
    #[error(
        "MOID {moid} is claimed by {}: none of them is loaded",
        show_paths(paths)
    )]
    DuplicateMoid { moid: String, paths: Vec<PathBuf> },
    #[error(
        "{}: writable by group or others (mode {mode:o}): refused, as anyone who can write it runs code as the agent",
        path.display()
    )]
    Insecure { path: PathBuf, mode: u32 },
    #[error("{}: plugin host: {reason}", path.display())]
    Host { path: PathBuf, reason: String },
}

fn show_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" and ")
}

/// How plugins are hosted.
#[derive(Debug, Clone)]
pub struct PluginOptions {
    /// The program run as `PROGRAM plugin-host FILE` for isolated plugins;
    /// `None`: this process's executable (`dmctl`).
    pub host_program: Option<PathBuf>,
    /// See [`CALL_TIMEOUT`].
    pub call_timeout: Duration,
}

impl Default for PluginOptions {
    fn default() -> PluginOptions {
        PluginOptions {
            host_program: None,
            call_timeout: CALL_TIMEOUT,
        }
    }
}

/// Where a plugin's reports from its own threads go: the agent's handles,
/// by completion id and by MIID. Shared by every instance of the plugin,
/// and by the `report` callback of the ABI (in-process) or the host's
/// reader thread (isolated).
#[derive(Debug, Default)]
pub(crate) struct Sinks {
    completions: Mutex<HashMap<u64, PendingCompletion>>,
    reporters: Mutex<HashMap<String, ChangeReporter>>,
}

#[derive(Debug, Clone)]
pub(crate) struct PendingCompletion {
    pub(crate) miid: String,
    pub(crate) path: Vec<String>,
    pub(crate) completion: Completion,
}

impl Sinks {
    /// One event from the plugin; anything unreadable is dropped.
    pub(crate) fn dispatch(&self, bytes: &[u8]) {
        let event: Event = match serde_json::from_slice(bytes) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!("plugin event refused: {e}");
                return;
            }
        };
        match event {
            Event::Finished { id, report } => {
                let pending = self
                    .completions
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&id);
                match pending {
                    Some(p) => {
                        p.completion.finish(report.into_report());
                    }
                    None => tracing::warn!("plugin finished EXEC {id}, which is not pending"),
                }
            }
            Event::Changed { miid, path } => {
                let reporter = self
                    .reporters
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(&miid)
                    .cloned();
                if let Some(r) = reporter {
                    let path: Vec<&str> = path.iter().map(String::as_str).collect();
                    r.changed(&path);
                }
            }
        }
    }

    pub(crate) fn pending(&self) -> Vec<(u64, PendingCompletion)> {
        self.completions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(id, p)| (*id, p.clone()))
            .collect()
    }

    pub(crate) fn attached(&self) -> Vec<String> {
        self.reporters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }
}

/// The ABI's `report` on the agent side (in-process plugins): copies the
/// event and hands it on. Never unwinds into the plugin.
unsafe extern "C" fn report_to_sinks(ctx: *const c_void, event: *const u8, len: usize) {
    if ctx.is_null() || event.is_null() || len > MAX_MESSAGE {
        return;
    }
    // SAFETY: the plugin passes `len` readable bytes for the call.
    let bytes = unsafe { std::slice::from_raw_parts(event, len) }.to_vec();
    // SAFETY: ctx is `Arc::into_raw` of the plugin's sinks, never released
    // (loaded plugins are never unloaded).
    let sinks = unsafe { &*ctx.cast::<Sinks>() };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sinks.dispatch(&bytes)));
}

/// A table read from a library, its ABI checked.
pub(crate) struct OpenTable {
    pub(crate) table: &'static PluginTable,
    pub(crate) moid: String,
    pub(crate) rustc_version: String,
    pub(crate) core_version: String,
}

/// Loads one library into this process and reads its table; does not
/// call `init` yet.
pub(crate) fn open_table(path: &Path) -> Result<OpenTable, PluginError> {
    let fail = |reason: String| PluginError::Load {
        path: path.to_owned(),
        reason,
    };
    // SAFETY: loading runs the library's initialisers: in the agent only
    // for a plugin the device builder marked trusted, else in the host
    // process, where whatever it does ends that process only.
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
    // of the library, which is never unloaded. `abi_major` is the first
    // field of every version's table, so it is read before anything else.
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
    Ok(OpenTable {
        table,
        moid: text(table.moid, "MOID")?,
        rustc_version: text(table.rustc_version, "rustc version")?,
        core_version: text(table.core_version, "dm-core version")?,
    })
}

/// One request through a table in this process; the response bytes, or
/// an error when the plugin's buffer is null or longer than
/// [`MAX_MESSAGE`] (then not read, and not freed: it cannot be a buffer
/// the plugin made).
pub(crate) fn call_table(table: &PluginTable, request: &[u8]) -> Result<Vec<u8>, String> {
    // SAFETY: `request` outlives the call; the plugin copies what it needs.
    let buf = unsafe { (table.call)(request.as_ptr(), request.len()) };
    if buf.ptr.is_null() {
        return Err("the plugin answered a null buffer".into());
    }
    if buf.len >= MAX_MESSAGE || buf.len > buf.cap {
        return Err(format!(
            "the plugin answered {} bytes (capacity {}), the bound is {MAX_MESSAGE}",
            buf.len, buf.cap
        ));
    }
    // SAFETY: the plugin returned a buffer of `len` initialised bytes that
    // stays valid until we free it below.
    let out = unsafe { std::slice::from_raw_parts(buf.ptr, buf.len) }.to_vec();
    // SAFETY: the buffer came from this plugin's `call`, freed once.
    unsafe { (table.free)(buf) };
    Ok(out)
}

/// Reads `{"ok": ...}` or `{"err": ...}`.
fn parse_response(path: &Path, out: &[u8]) -> Result<Json, WireError> {
    let bad = |m: String| WireError {
        status: 500,
        kind: "bad_response".into(),
        message: format!("{}: {m}", path.display()),
    };
    let mut response: serde_json::Map<String, Json> = match serde_json::from_slice(out) {
        Ok(Json::Object(o)) => o,
        _ => return Err(bad("response is not a JSON object".into())),
    };
    if let Some(e) = response.remove("err") {
        return Err(serde_json::from_value(e).unwrap_or_else(|e| bad(e.to_string())));
    }
    response
        .remove("ok")
        .ok_or_else(|| bad("response has neither ok nor err".into()))
}

enum Backend {
    InProcess(&'static PluginTable),
    Isolated(Arc<isolated::HostProcess>),
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::InProcess(_) => f.write_str("InProcess"),
            Backend::Isolated(h) => write!(f, "Isolated({h:?})"),
        }
    }
}

/// A loaded plugin: its table and the MO definition it reported.
#[derive(Debug)]
pub struct Plugin {
    pub path: PathBuf,
    pub moid: String,
    pub rustc_version: String,
    pub core_version: String,
    pub schema: &'static MoSchema,
    backend: Backend,
    sinks: Arc<Sinks>,
}

impl Drop for Plugin {
    fn drop(&mut self) {
        if let Backend::Isolated(host) = &self.backend {
            host.shutdown();
        }
    }
}

impl Plugin {
    /// Loads one library into this process (a trusted plugin) and checks
    /// its table.
    pub fn load(path: &Path) -> Result<Plugin, PluginError> {
        let open = open_table(path)?;
        let sinks = Arc::new(Sinks::default());
        let host = HostTable {
            ctx: Arc::into_raw(Arc::clone(&sinks)).cast(),
            report: report_to_sinks,
        };
        // SAFETY: `host` is valid for the call; its ctx forever (leaked).
        if unsafe { (open.table.init)(&host) } != 0 {
            return Err(PluginError::BadTable {
                path: path.to_owned(),
                reason: "init refused the host table".into(),
            });
        }
        Plugin::described(
            path,
            open.moid,
            open.rustc_version,
            open.core_version,
            Backend::InProcess(open.table),
            sinks,
        )
    }

    /// Starts a host process for one library and checks its table there.
    pub fn load_isolated(path: &Path, options: &PluginOptions) -> Result<Plugin, PluginError> {
        let sinks = Arc::new(Sinks::default());
        let (host, hello) = isolated::HostProcess::start(path, options, Arc::clone(&sinks))?;
        Plugin::described(
            path,
            hello.moid,
            hello.rustc_version,
            hello.core_version,
            Backend::Isolated(host),
            sinks,
        )
    }

    fn described(
        path: &Path,
        moid: String,
        rustc_version: String,
        core_version: String,
        backend: Backend,
        sinks: Arc<Sinks>,
    ) -> Result<Plugin, PluginError> {
        let mut plugin = Plugin {
            path: path.to_owned(),
            moid,
            rustc_version,
            core_version,
            // Replaced just below, once the plugin described itself.
            schema: &PLACEHOLDER,
            backend,
            sinks,
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

    /// Runs in a host process of its own (false: loaded into the agent).
    pub fn is_isolated(&self) -> bool {
        matches!(self.backend, Backend::Isolated(_))
    }

    /// An isolated plugin's host is running (always true in-process).
    pub fn is_up(&self) -> bool {
        match &self.backend {
            Backend::InProcess(_) => true,
            Backend::Isolated(h) => h.is_up(),
        }
    }

    /// How many times the watchdog started the host again.
    pub fn restarts(&self) -> u64 {
        match &self.backend {
            Backend::InProcess(_) => 0,
            Backend::Isolated(h) => h.restarts(),
        }
    }

    /// One request/response through the ABI.
    pub fn call(&self, request: &Request) -> Result<Json, WireError> {
        let bytes = serde_json::to_vec(request).unwrap_or_default();
        let out = match &self.backend {
            Backend::InProcess(table) => call_table(table, &bytes).map_err(|m| WireError {
                status: 500,
                kind: "bad_response".into(),
                message: format!("{}: {m}", self.path.display()),
            })?,
            Backend::Isolated(host) => host.call(&bytes)?,
        };
        parse_response(&self.path, &out)
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

/// Refuses a file or folder that group or others may write (StrictModes).
fn check_mode(path: &Path) -> Result<(), PluginError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| PluginError::Load {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(PluginError::Insecure {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// The marker that makes `plugin` trusted: `FILE.trusted` beside it.
pub fn trusted_marker(plugin: &Path) -> PathBuf {
    let mut name = plugin.as_os_str().to_owned();
    name.push(TRUSTED_SUFFIX);
    PathBuf::from(name)
}

/// Loads every library in `dir` (files ending in the platform's dylib
/// suffix), isolated unless marked trusted. Refused files are reported
/// and skipped: the device starts with the rest; a folder writable by
/// group or others loads nothing. `taken` holds MOIDs already served (by
/// compiled-in MOs), with who serves them.
pub fn load_dir(
    dir: &Path,
    taken: &[(String, String)],
    options: &PluginOptions,
) -> (Vec<Arc<Plugin>>, Vec<PluginError>) {
    let mut errors = Vec::new();
    if let Err(e) = check_mode(dir) {
        return (Vec::new(), vec![e]);
    }
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
    let mut loaded: Vec<Plugin> = Vec::new();
    for path in files {
        if let Err(e) = check_mode(&path) {
            errors.push(e);
            continue;
        }
        let marker = trusted_marker(&path);
        let trusted = match marker.try_exists() {
            Ok(true) => match check_mode(&marker) {
                Ok(()) => true,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            },
            _ => false,
        };
        let result = if trusted {
            Plugin::load(&path)
        } else {
            Plugin::load_isolated(&path, options)
        };
        match result {
            Ok(p) => loaded.push(p),
            Err(e) => errors.push(e),
        }
    }
    // Duplicates: no plugin wins by the order of file names.
    let mut plugins = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for i in 0..loaded.len() {
        let moid = loaded[i].moid.clone();
        if seen.contains(&moid) {
            continue;
        }
        seen.push(moid.clone());
        let claimants: Vec<PathBuf> = loaded
            .iter()
            .filter(|p| p.moid == moid)
            .map(|p| p.path.clone())
            .collect();
        if claimants.len() > 1 {
            errors.push(PluginError::DuplicateMoid {
                moid,
                paths: claimants,
            });
        } else if let Some((_, by)) = taken.iter().find(|(m, _)| *m == moid) {
            errors.push(PluginError::MoidTaken {
                path: loaded[i].path.clone(),
                moid,
                by: by.clone(),
            });
        }
    }
    for p in loaded {
        let refused = errors.iter().any(|e| match e {
            PluginError::DuplicateMoid { paths, .. } => paths.contains(&p.path),
            PluginError::MoidTaken { path, .. } => *path == p.path,
            _ => false,
        });
        // A refused isolated plugin's host ends with its last handle.
        if !refused {
            plugins.push(Arc::new(p));
        }
    }
    (plugins, errors)
}

/// One instance inside a plugin, seen by the agent as any other MO.
#[derive(Debug, Clone)]
pub struct PluginInstance {
    plugin: Arc<Plugin>,
    miid: String,
    owns_data: Arc<OnceLock<bool>>,
}

impl PluginInstance {
    pub fn new(plugin: Arc<Plugin>, miid: impl Into<String>) -> PluginInstance {
        let instance = PluginInstance {
            plugin,
            miid: miid.into(),
            owns_data: Arc::new(OnceLock::new()),
        };
        // Asked once: the agent asks at every read.
        instance.ask_owns_data();
        instance
    }

    fn ask_owns_data(&self) -> bool {
        if let Some(b) = self.owns_data.get() {
            return *b;
        }
        match self.plugin.call(&Request::OwnsData {
            miid: self.miid.clone(),
        }) {
            Ok(Json::Bool(b)) => *self.owns_data.get_or_init(|| b),
            // Not known now (a host down): asked again next time.
            _ => false,
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

    fn completions(&self) -> std::sync::MutexGuard<'_, HashMap<u64, PendingCompletion>> {
        self.plugin
            .sinks
            .completions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether `path` names, from `node`, only named children whose
/// occurrence is One: nodes every valid instance has.
fn always_present(node: &dm_core::NodeSchema, path: &[&str]) -> bool {
    let mut node = node;
    for seg in path {
        match node.children.iter().find(|c| c.name == Some(*seg)) {
            Some(child) if child.occurrence == dm_core::Occurrence::One => node = child,
            _ => return false,
        }
    }
    true
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

    fn commit(&mut self) -> Result<(), MoError> {
        self.plugin
            .call(&Request::Commit {
                miid: self.miid.clone(),
            })
            .map(|_| ())
            .map_err(WireError::into_mo)
    }

    fn exec(&mut self, path: &[&str], request: &ExecRequest) -> Result<ExecOutcome, MoError> {
        // Registered before the call: the plugin may finish from its own
        // thread before the call returns.
        let id = request.completion.as_ref().map(|c| {
            self.completions().insert(
                c.id(),
                PendingCompletion {
                    miid: self.miid.clone(),
                    path: strings(path),
                    completion: c.clone(),
                },
            );
            c.id()
        });
        let result = self
            .plugin
            .call(&Request::Exec {
                miid: self.miid.clone(),
                path: strings(path),
                asynchronous: request.asynchronous,
                completion: id,
            })
            .map_err(WireError::into_mo)
            .and_then(|json| match json.as_str() {
                Some("done") => Ok(ExecOutcome::Done),
                Some("started") => Ok(ExecOutcome::Started),
                _ => Err(MoError::Failed(format!("plugin exec answered {json}"))),
            });
        if !matches!(result, Ok(ExecOutcome::Started)) {
            if let Some(id) = id {
                self.completions().remove(&id);
            }
        }
        result
    }

    fn resume_exec(&mut self, path: &[&str], completion: Completion) {
        let id = completion.id();
        self.completions().insert(
            id,
            PendingCompletion {
                miid: self.miid.clone(),
                path: strings(path),
                completion,
            },
        );
        // A host that is down gets the handle again when it is back.
        if let Err(e) = self.plugin.call(&Request::ResumeExec {
            miid: self.miid.clone(),
            path: strings(path),
            completion: id,
        }) {
            tracing::warn!("{}: resume of EXEC {id}: {}", self.plugin.moid, e.message);
        }
    }

    fn attach(&mut self, reporter: ChangeReporter) {
        self.plugin
            .sinks
            .reporters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(self.miid.clone(), reporter);
        if let Err(e) = self.plugin.call(&Request::Attach {
            miid: self.miid.clone(),
        }) {
            tracing::warn!("{}/{}: attach: {}", self.plugin.moid, self.miid, e.message);
        }
    }

    fn owns_data(&self) -> bool {
        self.ask_owns_data()
    }

    fn __fast(&self) -> Option<&dyn dm_core::__private::FastAccess> {
        Some(self)
    }
}

// ClientURI resolution (spec 6.1.2) asks whether a node exists before the
// command reads it. A plugin that cannot answer (down, timed out, broken)
// does not say "no such node": the node is taken to exist, and the
// command's own call then answers 500, not 404.
impl dm_core::__private::FastAccess for PluginInstance {
    fn contains(&self, path: &[&str]) -> bool {
        // A path of named nodes that each occur exactly once exists in
        // every instance the schema allows: no call needed (an isolated
        // call is a pipe round trip, and the command's own call follows).
        if always_present(&self.plugin.schema.root, path) {
            return true;
        }
        match self.get(path) {
            Ok(_) => true,
            Err(e) => e.status() == dm_core::StatusCode::INTERNAL_ERROR,
        }
    }

    fn write_root_json(&self, _out: &mut Vec<u8>) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dm_core::{AccessType, Format, NodeSchema, Occurrence, Scope};

    const fn node(
        name: Option<&'static str>,
        occurrence: Occurrence,
        children: &'static [NodeSchema],
    ) -> NodeSchema {
        NodeSchema {
            name,
            format: Format::Node,
            access: AccessType::NONE,
            occurrence,
            scope: Scope::Permanent,
            children,
        }
    }

    const LEAVES: &[NodeSchema] = &[
        node(Some("Level"), Occurrence::One, &[]),
        node(Some("Note"), Occurrence::ZeroOrOne, &[]),
    ];
    const CELLS: &[NodeSchema] = &[node(None, Occurrence::ZeroOrMore, LEAVES)];
    const ROOT: NodeSchema = node(
        None,
        Occurrence::One,
        &[
            node(Some("Status"), Occurrence::One, LEAVES),
            node(Some("Cells"), Occurrence::One, CELLS),
        ],
    );

    #[test]
    fn only_named_nodes_occurring_once_are_taken_as_present() {
        assert!(always_present(&ROOT, &[]));
        assert!(always_present(&ROOT, &["Status", "Level"]));
        // Optional, un-named (an instance name), or not in the schema: ask.
        assert!(!always_present(&ROOT, &["Status", "Note"]));
        assert!(!always_present(&ROOT, &["Cells", "c1", "Level"]));
        assert!(!always_present(&ROOT, &["Nothing"]));
    }
}
