//! The MO plugin ABI (docs/architecture.md "Plugins").
//!
//! A plugin is a `cdylib` that exports one C-ABI symbol, [`ENTRY_SYMBOL`],
//! returning a `#[repr(C)]` [`PluginTable`]: the ABI version, the versions
//! of rustc and dm-core that built it, the MOID and DDF URL, and three
//! function pointers. Everything else crosses the boundary as JSON bytes
//! ([`Request`] in, `{"ok": ...}` or `{"err": ...}` out), never as Rust
//! types, so host and plugin need not share a compiler. Every call runs
//! inside `catch_unwind` in the plugin: a panic comes back as an error with
//! status 500 and the plugin keeps serving. [`dm_plugin!`](crate::dm_plugin)
//! writes the plugin side for any [`ManagementObject`] type, so the same MO
//! compiles in or as a plugin; `dm-agent` holds the loader.
//!
//! # ABI 2
//!
//! ABI 2 carries everything an MO can do ([`crate::MoHooks`]): `commit`
//! ([`Request::Commit`]), `resume_exec` ([`Request::ResumeExec`]),
//! `attach` ([`Request::Attach`]), `owns_data` ([`Request::OwnsData`]) and
//! EXECs that finish later ([`Request::Exec`] with a completion id).
//!
//! The way back, for what the plugin reports from its own threads after a
//! call returned (a [`Completion`] finished, a [`ChangeReporter`] change),
//! is a callback: the host calls the table's `init` once, before any
//! request, with a `#[repr(C)]` [`HostTable`] (an opaque context pointer
//! and a `report` function), and the plugin calls `report(ctx, json, len)`
//! with one [`Event`] as JSON bytes, from any thread, at any time. Chosen
//! over a queue the host polls because a final status minutes later (spec
//! 5.4.1) then wakes the agent at once, without a timer's latency or a
//! poll call after every request; the host's `report` only copies the
//! bytes and queues them (it never waits for the agent's loop), is safe
//! from any thread, and never unwinds into the plugin.
//!
//! ABI 1 plugins (no `init`, no way back) are refused by name: their table
//! starts the same way, so the host reads `abi_major` before anything else.

// FFI: raw pointers cross the boundary. Each unsafe block says why it holds.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::live::{ChangeReporter, Completion, ExecReport};
use crate::map::NodeMapError;
use crate::mo::{Change, ExecOutcome, ExecRequest, ManagementObject, MoError, MoNode};
use crate::node::NodeSchema;
use crate::status::StatusCode;
use crate::value::NodeData;

/// Plugins with another major version are refused.
pub const ABI_MAJOR: u16 = 2;
/// Additions that older hosts can ignore.
pub const ABI_MINOR: u16 = 0;
/// The symbol every plugin exports.
pub const ENTRY_SYMBOL: &str = "dm_plugin_entry";
/// The dm-core version compiled into this binary.
pub const CORE_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The rustc that compiled this binary.
pub const RUSTC_VERSION: &str = env!("DM_RUSTC_VERSION");

/// A string with static lifetime inside the plugin.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawStr {
    pub ptr: *const u8,
    pub len: usize,
}

impl RawStr {
    pub const fn new(s: &'static str) -> RawStr {
        RawStr {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// The string, when it is valid UTF-8.
    ///
    /// # Safety
    /// `ptr..ptr+len` must be readable for `'a` (true for a `RawStr` of a
    /// loaded plugin's table, since plugins are never unloaded).
    pub unsafe fn to_str<'a>(self) -> Option<&'a str> {
        if self.ptr.is_null() {
            return None;
        }
        // SAFETY: the caller guarantees the range is readable.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr, self.len) };
        std::str::from_utf8(bytes).ok()
    }
}

/// Bytes allocated by the plugin, handed to the host, and given back to the
/// plugin's [`PluginTable::free`] (each side frees with its own allocator).
#[repr(C)]
#[derive(Debug)]
pub struct RawBuf {
    pub ptr: *mut u8,
    pub len: usize,
    pub cap: usize,
}

impl RawBuf {
    fn from_vec(v: Vec<u8>) -> RawBuf {
        let mut v = std::mem::ManuallyDrop::new(v);
        RawBuf {
            ptr: v.as_mut_ptr(),
            len: v.len(),
            cap: v.capacity(),
        }
    }
}

/// `call(request, len)`: one JSON request, one JSON response.
pub type CallFn = unsafe extern "C" fn(request: *const u8, len: usize) -> RawBuf;
/// Frees a response of `call`.
pub type FreeFn = unsafe extern "C" fn(buf: RawBuf);
/// `init(host)`: the host's way back; called once, before any `call`.
/// Returns 0 when the plugin took it.
pub type InitFn = unsafe extern "C" fn(host: *const HostTable) -> i32;
/// `report(ctx, event, len)`: one [`Event`] as JSON, from any thread. The
/// host copies the bytes before it returns.
pub type ReportFn = unsafe extern "C" fn(ctx: *const c_void, event: *const u8, len: usize);
/// The type of [`ENTRY_SYMBOL`].
pub type EntryFn = unsafe extern "C" fn() -> *const PluginTable;

/// What the host hands a plugin at `init`: the plugin keeps a copy.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HostTable {
    /// Opaque to the plugin; valid for as long as the plugin is loaded.
    pub ctx: *const c_void,
    pub report: ReportFn,
}

// SAFETY: the host guarantees `ctx` stays valid while the plugin is loaded
// and that `report` may be called from any thread.
unsafe impl Send for HostTable {}
// SAFETY: as above; the table itself is never written after init.
unsafe impl Sync for HostTable {}

impl HostTable {
    /// Sends one event to the host.
    pub fn report(&self, event: &Event) {
        let Ok(bytes) = serde_json::to_vec(event) else {
            return;
        };
        // SAFETY: the host's contract (see the type): ctx is live and
        // report is thread-safe; the bytes outlive the call.
        unsafe { (self.report)(self.ctx, bytes.as_ptr(), bytes.len()) };
    }
}

/// What a plugin's entry symbol returns. Field order is the ABI: new fields
/// go at the end with a minor version bump; `abi_major` stays first so that
/// a host reads it from a table of any version.
#[repr(C)]
#[derive(Debug)]
pub struct PluginTable {
    pub abi_major: u16,
    pub abi_minor: u16,
    pub rustc_version: RawStr,
    pub core_version: RawStr,
    pub moid: RawStr,
    pub ddf_url: RawStr,
    pub init: InitFn,
    pub call: CallFn,
    pub free: FreeFn,
}

// SAFETY: the table is immutable and its pointers are to static data.
unsafe impl Sync for PluginTable {}

impl PluginTable {
    /// The table of a plugin built with this dm-core.
    pub const fn new(
        moid: &'static str,
        ddf_url: &'static str,
        init: InitFn,
        call: CallFn,
    ) -> PluginTable {
        PluginTable {
            abi_major: ABI_MAJOR,
            abi_minor: ABI_MINOR,
            rustc_version: RawStr::new(RUSTC_VERSION),
            core_version: RawStr::new(CORE_VERSION),
            moid: RawStr::new(moid),
            ddf_url: RawStr::new(ddf_url),
            init,
            call,
            free: free_buf,
        }
    }
}

/// Frees a [`RawBuf`] made by this side.
///
/// # Safety
/// `buf` must come from `RawBuf::from_vec` in this same binary, once.
pub unsafe extern "C" fn free_buf(buf: RawBuf) {
    if !buf.ptr.is_null() {
        // SAFETY: ptr/len/cap come from a Vec<u8> leaked by from_vec.
        drop(unsafe { Vec::from_raw_parts(buf.ptr, buf.len, buf.cap) });
    }
}

/// One change of an apply request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireChange {
    Put { path: Vec<String>, data: Json },
    Delete { path: Vec<String> },
}

/// A request to a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The MO definition, as [`crate::MoSchema::to_json`].
    Schema,
    /// The MIIDs of the plugin's instances.
    Instances,
    Get {
        miid: String,
        path: Vec<String>,
    },
    Apply {
        miid: String,
        changes: Vec<WireChange>,
    },
    /// [`crate::MoHooks::commit`] of one instance.
    Commit {
        miid: String,
    },
    /// With `completion`, the plugin's [`Completion`] reports
    /// [`Event::Finished`] with that id.
    Exec {
        miid: String,
        path: Vec<String>,
        asynchronous: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        completion: Option<u64>,
    },
    /// [`crate::MoHooks::resume_exec`]: a new handle for an EXEC started
    /// before a restart.
    ResumeExec {
        miid: String,
        path: Vec<String>,
        completion: u64,
    },
    /// [`crate::MoHooks::attach`]: the instance's [`ChangeReporter`]
    /// reports [`Event::Changed`] with its MIID.
    Attach {
        miid: String,
    },
    /// [`ManagementObject::owns_data`] of one instance.
    OwnsData {
        miid: String,
    },
    /// Create an instance from MO data of its root.
    Create {
        miid: String,
        data: Json,
    },
    /// Delete an instance.
    Remove {
        miid: String,
    },
}

/// The final report of an EXEC as it crosses the boundary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireReport {
    pub status: u16,
    /// `[DataType, Data]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<(String, Json)>,
}

impl WireReport {
    pub fn from_report(report: &ExecReport) -> WireReport {
        WireReport {
            status: report.status.as_u16(),
            data: report.data.clone(),
        }
    }

    /// A status that is not an Appendix C code becomes 500: the plugin
    /// reported something the runtime cannot send.
    pub fn into_report(self) -> ExecReport {
        ExecReport {
            status: StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_ERROR),
            data: self.data,
        }
    }
}

/// What a plugin reports through [`HostTable::report`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The EXEC with completion `id` ended.
    Finished { id: u64, report: WireReport },
    /// Data of instance `miid` changed on the device at `path`.
    Changed { miid: String, path: Vec<String> },
}

/// An error as it crosses the boundary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    pub status: u16,
    pub kind: String,
    pub message: String,
}

impl WireError {
    pub fn from_mo(e: &MoError) -> WireError {
        let kind = match e {
            MoError::NotFound(_) => "not_found",
            MoError::UnknownNode(_) => "unknown_node",
            MoError::Required(_) => "required",
            MoError::MissingNode(_) => "missing_node",
            MoError::BadValue { .. } => "bad_value",
            MoError::Occurrence { .. } => "occurrence",
            MoError::NotExecutable(_) => "not_executable",
            MoError::Invalid(_) => "invalid",
            MoError::Failed(_) => "failed",
        };
        WireError {
            status: e.status().as_u16(),
            kind: kind.into(),
            message: e.to_string(),
        }
    }

    fn other(status: StatusCode, kind: &str, message: impl Into<String>) -> WireError {
        WireError {
            status: status.as_u16(),
            kind: kind.into(),
            message: message.into(),
        }
    }

    /// The error on the host side: the kinds that carry a path come back as
    /// themselves, the rest as [`MoError::Failed`] with the message.
    pub fn into_mo(self) -> MoError {
        match self.kind.as_str() {
            "not_found" => MoError::NotFound(self.message),
            "unknown_node" => MoError::UnknownNode(self.message),
            "required" => MoError::Required(self.message),
            "missing_node" => MoError::MissingNode(self.message),
            "not_executable" => MoError::NotExecutable(self.message),
            "invalid" | "bad_value" => MoError::Invalid(self.message),
            "occurrence" if self.status == StatusCode::DEVICE_FULL.as_u16() => {
                MoError::Occurrence {
                    path: String::new(),
                    source: NodeMapError::Full {
                        name: self.message,
                        max: 0,
                    },
                }
            }
            _ => MoError::Failed(self.message),
        }
    }
}

/// The instances a plugin holds.
#[derive(Debug)]
pub struct PluginState<T> {
    instances: Vec<(String, T)>,
}

impl<T> PluginState<T> {
    pub fn new(instances: Vec<(String, T)>) -> PluginState<T> {
        PluginState { instances }
    }
}

/// The plugin side of the ABI for MO type `T`, as a `static` of the
/// plugin ([`dm_plugin!`](crate::dm_plugin) declares it): the instances,
/// built on first use, and the host's way back.
pub struct PluginRuntime<T> {
    init: fn() -> Vec<(String, T)>,
    state: OnceLock<Mutex<PluginState<T>>>,
    host: OnceLock<HostTable>,
}

impl<T> std::fmt::Debug for PluginRuntime<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRuntime")
            .field("host", &self.host.get().is_some())
            .finish_non_exhaustive()
    }
}

impl<T: ManagementObject + MoNode> PluginRuntime<T> {
    /// A runtime whose built-in instances `init` makes.
    pub const fn new(init: fn() -> Vec<(String, T)>) -> PluginRuntime<T> {
        PluginRuntime {
            init,
            state: OnceLock::new(),
            host: OnceLock::new(),
        }
    }

    /// The plugin side of `init`: keeps the host's table (the first one).
    ///
    /// # Safety
    /// `host`, when not null, points to a valid [`HostTable`] for the
    /// duration of the call.
    pub unsafe fn init(&'static self, host: *const HostTable) -> i32 {
        // SAFETY: guaranteed by the caller.
        match unsafe { host.as_ref() } {
            Some(h) => {
                let _ = self.host.set(*h);
                0
            }
            None => 1,
        }
    }

    fn report(&'static self, event: &Event) {
        // Without a host table (never with a conforming host) the event
        // has nowhere to go and is dropped.
        if let Some(host) = self.host.get() {
            // A panic here would cross no FFI boundary (the plugin's own
            // thread), but would end that thread: the host's report never
            // panics into the plugin (it catches its own).
            host.report(event);
        }
    }

    fn completion(&'static self, id: u64) -> Completion {
        Completion::new(id, move |id, report| {
            self.report(&Event::Finished {
                id,
                report: WireReport::from_report(&report),
            });
        })
    }

    /// The plugin side of `call`: reads the request, answers it, turns a
    /// panic into an error with status 500.
    ///
    /// # Safety
    /// `request..request+len` must be readable for the duration of the call.
    pub unsafe fn serve(&'static self, request: *const u8, len: usize) -> RawBuf {
        let bytes = if request.is_null() {
            &[][..]
        } else {
            // SAFETY: guaranteed by the caller.
            unsafe { std::slice::from_raw_parts(request, len) }
        };
        let out = catch_unwind(AssertUnwindSafe(|| self.handle(bytes))).unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            err(WireError::other(
                StatusCode::INTERNAL_ERROR,
                "panic",
                format!("plugin panicked: {message}"),
            ))
        });
        RawBuf::from_vec(out)
    }

    /// Answers one request against the plugin's instances.
    pub fn handle(&'static self, request: &[u8]) -> Vec<u8> {
        let request: Request = match serde_json::from_slice(request) {
            Ok(r) => r,
            Err(e) => {
                return err(WireError::other(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    e.to_string(),
                ))
            }
        };
        let state = self
            .state
            .get_or_init(|| Mutex::new(PluginState::new((self.init)())));
        // A panic in an earlier call leaves the data it guarded as it was
        // (writes go through apply, which swaps only at the end).
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        self.answer(&mut state, request)
    }

    fn answer(&'static self, state: &mut PluginState<T>, request: Request) -> Vec<u8> {
        let not_found =
            |miid: &str| WireError::from_mo(&MoError::NotFound(format!("instance {miid}")));
        let mo_result = |r: Result<Json, MoError>| match r {
            Ok(v) => ok(v),
            Err(e) => err(WireError::from_mo(&e)),
        };
        let find = |state: &PluginState<T>, miid: &str| {
            state.instances.iter().position(|(m, _)| m == miid)
        };
        // The instance a request names, or the error that answers it.
        macro_rules! instance {
            ($miid:expr) => {
                match find(state, &$miid) {
                    Some(i) => &mut state.instances[i].1,
                    None => return err(not_found(&$miid)),
                }
            };
        }
        match request {
            Request::Schema => {
                let schema = state.instances.first().map(|(_, mo)| mo.schema().to_json());
                match schema {
                    Some(s) => ok(s),
                    None => err(WireError::other(
                        StatusCode::INTERNAL_ERROR,
                        "no_instance",
                        "plugin has no instance to describe its MO",
                    )),
                }
            }
            Request::Instances => ok(Json::from(
                state
                    .instances
                    .iter()
                    .map(|(m, _)| m.clone())
                    .collect::<Vec<_>>(),
            )),
            Request::Get { miid, path } => {
                let mo = instance!(miid);
                mo_result(mo.get(&refs(&path)).map(|d| d.to_json()))
            }
            Request::Apply { miid, changes } => {
                let mo = instance!(miid);
                let changes = match to_changes(&mo.schema().root, changes) {
                    Ok(c) => c,
                    Err(e) => return err(WireError::from_mo(&e)),
                };
                mo_result(mo.apply(&changes).map(|()| Json::Null))
            }
            Request::Commit { miid } => {
                let mo = instance!(miid);
                mo_result(mo.commit().map(|()| Json::Null))
            }
            Request::Exec {
                miid,
                path,
                asynchronous,
                completion,
            } => {
                let mo = instance!(miid);
                let request = ExecRequest {
                    asynchronous,
                    completion: completion.map(|id| self.completion(id)),
                };
                mo_result(mo.exec(&refs(&path), &request).map(|o| {
                    Json::from(match o {
                        ExecOutcome::Done => "done",
                        ExecOutcome::Started => "started",
                    })
                }))
            }
            Request::ResumeExec {
                miid,
                path,
                completion,
            } => {
                let mo = instance!(miid);
                mo.resume_exec(&refs(&path), self.completion(completion));
                ok(Json::Null)
            }
            Request::Attach { miid } => {
                let mo = instance!(miid);
                let name = miid.clone();
                mo.attach(ChangeReporter::new(move |path| {
                    self.report(&Event::Changed {
                        miid: name.clone(),
                        path: path.iter().map(|s| (*s).to_owned()).collect(),
                    });
                }));
                ok(Json::Null)
            }
            Request::OwnsData { miid } => {
                let mo = instance!(miid);
                ok(Json::Bool(mo.owns_data()))
            }
            Request::Create { miid, data } => {
                if find(state, &miid).is_some() {
                    return err(WireError::other(
                        StatusCode::BAD_REQUEST,
                        "exists",
                        format!("instance {miid} exists"),
                    ));
                }
                let schema_root = state.instances.first().map(|(_, mo)| mo.schema().root);
                let parsed = match schema_root {
                    Some(root) => NodeData::from_json(&data, &root)
                        .map_err(|e| MoError::Invalid(e.to_string())),
                    None => Err(MoError::Failed(
                        "plugin has no schema to read the data with".into(),
                    )),
                };
                match parsed.and_then(|d| T::from_node(&d)) {
                    Ok(mo) => {
                        state.instances.push((miid, mo));
                        ok(Json::Null)
                    }
                    Err(e) => err(WireError::from_mo(&e)),
                }
            }
            Request::Remove { miid } => match find(state, &miid) {
                Some(i) => {
                    state.instances.remove(i);
                    ok(Json::Null)
                }
                None => err(not_found(&miid)),
            },
        }
    }
}

fn ok(value: Json) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "ok": value })).unwrap_or_default()
}

fn err(e: WireError) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "err": e })).unwrap_or_default()
}

fn refs(path: &[String]) -> Vec<&str> {
    path.iter().map(String::as_str).collect()
}

fn to_changes(root: &NodeSchema, changes: Vec<WireChange>) -> Result<Vec<Change>, MoError> {
    changes
        .into_iter()
        .map(|c| match c {
            WireChange::Put { path, data } => {
                let schema = root
                    .descendant(&refs(&path))
                    .ok_or_else(|| MoError::UnknownNode(path.join("/")))?;
                let data = NodeData::from_json(&data, schema)
                    .map_err(|e| MoError::Invalid(e.to_string()))?;
                Ok(Change::Put { path, data })
            }
            WireChange::Delete { path } => Ok(Change::Delete { path }),
        })
        .collect()
}

/// Exports an MO type as a plugin: `dm_plugin!(MyMo, || vec![("miid".into(), MyMo::new())]);`
/// The closure (or function) builds the plugin's built-in instances on
/// first use. Any [`ManagementObject`] + [`MoNode`] type works: the same
/// MO compiles in or as a plugin.
#[macro_export]
macro_rules! dm_plugin {
    ($mo:ty, $init:expr) => {
        #[doc(hidden)]
        static __DM_PLUGIN: $crate::plugin::PluginRuntime<$mo> =
            $crate::plugin::PluginRuntime::new({
                const INIT: fn() -> ::std::vec::Vec<(::std::string::String, $mo)> = $init;
                INIT
            });

        #[doc(hidden)]
        #[allow(unsafe_code)]
        unsafe extern "C" fn __dm_plugin_init(host: *const $crate::plugin::HostTable) -> i32 {
            // SAFETY: the host passes its table, valid for the call.
            unsafe { __DM_PLUGIN.init(host) }
        }

        #[doc(hidden)]
        #[allow(unsafe_code)]
        unsafe extern "C" fn __dm_plugin_call(
            request: *const u8,
            len: usize,
        ) -> $crate::plugin::RawBuf {
            // SAFETY: the host passes a buffer it owns for this call.
            unsafe { __DM_PLUGIN.serve(request, len) }
        }

        #[doc(hidden)]
        static __DM_PLUGIN_TABLE: $crate::plugin::PluginTable = $crate::plugin::PluginTable::new(
            <$mo>::SCHEMA.moid,
            match <$mo>::SCHEMA.ddf_url {
                ::core::option::Option::Some(url) => url,
                ::core::option::Option::None => "",
            },
            __dm_plugin_init,
            __dm_plugin_call,
        );

        // The entry point is one symbol name per plugin: a binary that
        // compiles two plugin crates in (their rlibs, as `dmctl demo` does)
        // would define it twice. Such a binary turns on the plugin crate's
        // `compiled-in` feature, which leaves it out; a crate without that
        // feature always exports it.
        #[doc(hidden)]
        #[allow(unexpected_cfgs)]
        mod __dm_plugin_entry {
            /// The plugin's entry point (dm-core plugin ABI).
            #[cfg(not(feature = "compiled-in"))]
            #[no_mangle]
            #[allow(unsafe_code)]
            pub extern "C" fn dm_plugin_entry() -> *const $crate::plugin::PluginTable {
                &super::__DM_PLUGIN_TABLE
            }
        }
    };
}
