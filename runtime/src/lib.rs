//! `dm-runtime`: the OMA DM 2.0 device engine and the reference DM Server.
//!
//! A [`Device`] holds the MO instances of a device in a [`Registry`] and
//! runs DM Sessions with DM Servers over HTTP (spec 5.2): Package#1, then
//! each Package#2's commands in order answered by a Package#3, until END.
//! [`server::start`] runs the reference DM Server that drives devices from
//! per-device command queues. [`agent`] is the `dmctl client` device agent
//! over a `--state` directory; [`demo`] runs both ends in one process.

pub mod agent;
pub mod cli;
mod client;
pub mod demo;
mod http;
mod notify;
pub mod plugins;
pub mod server;
mod state;
mod tree;

pub use client::{Device, DeviceConfig, Initiation, SessionError, SessionReport};
pub use http::{Exchange, Message, Observer};
pub use state::{machine_dev_id, Account, StateDir, StateError, DMACC_MOID};
pub use tree::{Registry, Resolved};

/// The registry of a device with every MO compiled into this build (cargo
/// features `mo-*`), filled from the host.
pub fn standard_registry(dev_id: &str) -> Registry {
    #[allow(unused_mut)]
    let mut registry = Registry::new();
    #[cfg(feature = "mo-devinfo")]
    {
        let facts = mo_devinfo::HostFacts::from_host(dev_id);
        registry.insert("devinfo", Box::new(mo_devinfo::DevInfo::new(&facts)));
    }
    let _ = dev_id;
    registry
}
