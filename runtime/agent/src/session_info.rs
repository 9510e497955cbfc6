//! SessionInfo filled from the live session (spec 12.4): before Package#1
//! of each session the device sets CBT from the bearer of the interface
//! that carries the connection to the DM Server, and ROAMING to what it
//! knows (unknown, 2, on hosts without a modem to ask).

use std::net::IpAddr;

use crate::client::Device;

/// The MOID of SessionInfo (12.4).
pub const SESSIONINFO_MOID: &str = "urn:oma:mo:oma-sessioninfomo:1.0";

/// The address the device connects to for `server_uri`: the host itself
/// when it is an IP literal, else the first address DNS gives, within
/// `limit`.
async fn peer_of(server_uri: &str, limit: std::time::Duration) -> Option<IpAddr> {
    let uri: hyper::Uri = server_uri.parse().ok()?;
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip);
    }
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    let mut addrs = tokio::time::timeout(limit, tokio::net::lookup_host((host, port)))
        .await
        .ok()?
        .ok()?;
    addrs.next().map(|a| a.ip())
}

impl Device {
    /// Sets CBT and ROAMING of the SessionInfo instance for a session with
    /// the DM Server at `server_uri`. A change bumps the instance's cache
    /// validator (11); SessionInfo is not kept in the state directory.
    pub(crate) async fn refresh_session_info(&mut self, server_uri: &str) {
        let Some(index) = self
            .registry()
            .instances()
            .find(|(_, i)| i.mo().schema().moid == SESSIONINFO_MOID)
            .map(|(n, _)| n)
        else {
            return;
        };
        let peer = peer_of(server_uri, self.config().timeout).await;
        let Some(data) = session_info_data(peer) else {
            return;
        };
        // Compared through a shared borrow: a `&mut` access drops the
        // registry's cached access rules, and most sessions change nothing.
        let unchanged = self
            .registry()
            .instance(index)
            .is_none_or(|i| i.mo().get(&[]).ok().as_ref() == Some(&data));
        if unchanged {
            return;
        }
        let Some(mo) = self.registry_mut().mo_mut(index) else {
            return;
        };
        let change = dm_core::Change::Put {
            path: Vec::new(),
            data,
        };
        if mo.apply(&[change]).is_ok() {
            self.registry_mut().touch(index);
        }
    }
}

/// The SessionInfo root data for a session with `peer` (unknown peer:
/// CBT 0 "OTHERS/UNKNOWN", ROAMING 2 "unknown").
#[cfg(feature = "mo-sessioninfo")]
fn session_info_data(peer: Option<IpAddr>) -> Option<dm_core::NodeData> {
    use dm_core::ManagementObject as _;
    use mo_sessioninfo::{bearer, roaming, SessionInfo};
    let info = match peer {
        Some(ip) => SessionInfo::for_peer(ip),
        None => SessionInfo::new(bearer::OTHER, roaming::UNKNOWN),
    };
    info.get(&[]).ok()
}

#[cfg(not(feature = "mo-sessioninfo"))]
fn session_info_data(_peer: Option<IpAddr>) -> Option<dm_core::NodeData> {
    None
}
