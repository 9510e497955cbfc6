//! `dm-agent`: the OMA DM 2.0 device agent (DM Client).
//!
//! A [`Device`] holds the MO instances of a device in a [`Registry`] and
//! runs DM Sessions with DM Servers over HTTP(S) (spec 5.2): Package#1,
//! then each Package#2's commands in order answered by a Package#3, until
//! END. [`service`] runs a device over a `--state` directory as `dmctl
//! client` does: factory bootstrap, plugins, notifications, the local API.
//! No server code lives here; the reference DM Server is `dm-server`.

mod access;
pub mod bearer;
pub mod bootstrap;
mod client;
mod commands;
mod delegation;
mod digest_auth;
mod http;
mod limits;
pub mod live;
pub mod local_api;
mod persist;
pub mod plugins;
mod rate_log;
pub mod replay;
mod repository;
pub mod service;
mod session_info;
mod store;
mod tls;
mod tree;

pub use access::{accounts, Principal, ServerAccount, DACMO_MOID, DMACC_MOID};
pub use client::{Device, DeviceConfig, Initiation, PendingAlert, SessionError, SessionReport};
pub use http::{AuthScheme, Exchange, HttpError, Message, Observer, PlainHttp};
pub use limits::Limits;
pub use local_api::LocalError;
pub use repository::{classify, AddressClass, AllowEntry, AllowEntryError};
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
    // Read from the host at every read; nothing of it is stored.
    #[cfg(feature = "mo-netif")]
    registry.insert(
        "netif",
        Box::new(mo_netif::NetIf::host(mo_netif::Sysfs::default())),
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
