//! `dm-core`: the vocabulary of OMA DM 2.0 (OMA-TS-DM_Protocol-V2_0), with no I/O.
//!
//! The node model of MO definitions (spec 6.3), node values and their JSON
//! form (7.2.1.4), ClientURI and ServerURI (6.1, 6.2), status codes
//! (Appendix C), the JSON packages (7.2.1), the multipart Package#3 of
//! Appendix F, and the [`ManagementObject`] trait that MOs implement,
//! usually through `#[derive(ManagementObject)]`.
//!
//! Also: the binary Package#0 with its SHA256-DIGEST ([`notification`],
//! 5.2.1, 7.1), ClientURI resolution over any tree of MO instances
//! ([`resolve`], 6.1.2), access-control evaluation ([`acl`], 10, 12.3,
//! 6.3.1.1) and cache validators ([`cache`], 11).

// Derived code names this crate as `::dm_core`, also from inside it.
extern crate self as dm_core;

pub mod acl;
pub mod cache;
mod hex;
mod live;
mod map;
mod mo;
pub mod multipart;
mod node;
pub mod notification;
pub mod package;
pub mod plugin;
pub mod resolve;
mod status;
mod uri;
mod value;

pub use acl::{
    effective_rights, effective_rights_by, AclEntry, Authority, LogicalOperation, Maid, Rights,
};
pub use cache::{CacheDecision, CacheValidator};
pub use dm_derive::{ManagementObject, MoNode};
pub use live::{ChangeReporter, Completion, ExecReport};
pub use map::{is_node_name, NodeMap, NodeMapError, UNBOUNDED};
#[doc(hidden)]
pub use mo::__private;
pub use mo::{
    Change, ExecOutcome, ExecRequest, LeafValue, ManagementObject, MoError, MoHooks, MoNode,
};
pub use node::{
    AccessType, Format, MoSchema, NodeSchema, Occurrence, SchemaJsonError, Scope, UnknownName,
};
pub use notification::{ConnectionType, Notification};
pub use package::{
    Alert, Command, CommandError, MoDataItem, MoDataRef, MoDataValue, MoInfo, Package1, Package2,
    Package3, PackageError, Status,
};
pub use resolve::{InstanceTree, ResolveError, ResolvedNode};
pub use status::StatusCode;
pub use uri::{
    ClientUri, InstanceSelector, NodeSelector, NodeValue, Query, ServerUri, ServerUriParams,
    UriError, UriErrorReason, UriName,
};
pub use value::{NodeData, NodeName, Value, ValueError};
