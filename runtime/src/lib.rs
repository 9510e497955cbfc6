//! `dm-runtime`: the OMA DM 2.0 device engine and the reference DM Server.
//!
//! A [`Device`] holds the MO instances of a device in a [`Registry`] and
//! runs DM Sessions with DM Servers over HTTP (spec 5.2): Package#1, then
//! each Package#2's commands in order answered by a Package#3, until END.
//! [`server::start`] runs the reference DM Server that drives devices from
//! per-device command queues. [`agent`] is the `dmctl client` device agent
//! over a `--state` directory; [`demo`] runs both ends in one process.

mod access;
pub mod agent;
pub mod bearer;
pub mod bootstrap;
pub mod cli;
mod client;
mod commands;
mod delegation;
#[cfg(feature = "server")]
pub mod demo;
mod digest_auth;
mod http;
pub mod local_api;
mod notify;
pub mod plugins;
#[cfg(feature = "server")]
pub mod server;
mod session_info;
mod store;
mod tls;
mod tree;

pub use access::{accounts, Principal, ServerAccount, DACMO_MOID, DMACC_MOID};
pub use client::{Device, DeviceConfig, Initiation, PendingAlert, SessionError, SessionReport};
pub use http::{Exchange, Message, Observer};
pub use local_api::LocalError;
pub use store::{machine_dev_id, AgentState, SavedInstance, StateDir, StateError, Subscription};
pub use tls::{Identity, TlsError, TransportAuth, TrustAnchors};
pub use tree::{Factory, Owner, Registry, Resolved};

/// The registry of a device with every MO compiled into this build (cargo
/// features `mo-*`): DevInfo and SessionInfo filled from the host, and
/// factories for DMAcc and DACMO, whose instances servers create.
pub fn standard_registry(dev_id: &str) -> Registry {
    #[allow(unused_mut)]
    let mut registry = Registry::new();
    #[cfg(feature = "mo-devinfo")]
    {
        let facts = mo_devinfo::HostFacts::from_host(dev_id);
        registry.insert("devinfo", Box::new(mo_devinfo::DevInfo::new(&facts)));
    }
    #[cfg(feature = "mo-sessioninfo")]
    registry.insert(
        "sessioninfo",
        Box::new(mo_sessioninfo::SessionInfo::from_host()),
    );
    #[cfg(feature = "mo-dmacc")]
    registry.add_factory(Factory::of::<mo_dmacc::DmAcc>(
        &mo_dmacc::DmAcc::SCHEMA,
        true,
    ));
    #[cfg(feature = "mo-dacmo")]
    registry.add_factory(Factory::of::<mo_dacmo::Dacmo>(
        &mo_dacmo::Dacmo::SCHEMA,
        true,
    ));
    let _ = dev_id;
    registry
}
