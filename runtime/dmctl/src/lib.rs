//! `dmctl`: the command line of the framework (docs/architecture.md "Command
//! line"). `dmctl client` runs the device agent of `dm-agent`; `dmctl
//! server` the reference DM Server of `dm-server`; `dmctl demo` both in one
//! process; `dmctl notify` builds and sends a DM Notification (Package#0).
//! The entry point lives in this library so that the end-to-end tests can
//! build the very same `main` as a binary of their own.

#[cfg(feature = "server")]
mod admin;
pub mod cli;
#[cfg(feature = "server")]
pub mod demo;
#[cfg(feature = "server")]
mod notify;
