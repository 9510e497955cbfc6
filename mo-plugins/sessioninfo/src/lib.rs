//! The SessionInfo MO (spec 12.4, MOID `urn:oma:mo:oma-sessioninfomo:1.0`):
//! the bearer of the current session (CBT) and whether it is roaming.

mod generated {
    include!(concat!(env!("OUT_DIR"), "/sessioninfo.rs"));
}

pub use generated::SessionInfo;

/// The MOID of SessionInfo.
pub const MOID: &str = "urn:oma:mo:oma-sessioninfomo:1.0";

/// CBT values of spec 12.4.
pub mod bearer {
    pub const OTHER: i64 = 0;
    pub const MOBILE: i64 = 1;
    pub const WIRELESS: i64 = 2;
    pub const WIRELINE: i64 = 3;
}

/// ROAMING values of spec 12.4.
pub mod roaming {
    pub const NOT_ROAMING: i64 = 0;
    pub const ROAMING: i64 = 1;
    pub const UNKNOWN: i64 = 2;
}

impl SessionInfo {
    /// SessionInfo for a session over `cbt`.
    pub fn new(cbt: i64, roaming: i64) -> SessionInfo {
        SessionInfo { cbt, roaming }
    }

    /// What a Linux host can tell: wireless when the default route leaves
    /// through a wireless interface, wireline through any other, "other"
    /// when it cannot tell; never roaming outside a mobile bearer.
    pub fn from_host() -> SessionInfo {
        let cbt = default_route_interface()
            .map(|ifname| {
                let wireless = std::path::Path::new("/sys/class/net")
                    .join(&ifname)
                    .join("wireless");
                if wireless.exists() {
                    bearer::WIRELESS
                } else {
                    bearer::WIRELINE
                }
            })
            .unwrap_or(bearer::OTHER);
        SessionInfo::new(cbt, roaming::NOT_ROAMING)
    }
}

/// The interface of the IPv4 default route, from /proc/net/route.
fn default_route_interface() -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    table.lines().skip(1).find_map(|line| {
        let mut cols = line.split_whitespace();
        let ifname = cols.next()?;
        let destination = cols.next()?;
        (destination == "00000000").then(|| ifname.to_owned())
    })
}

impl generated::SessionInfoBehaviour for SessionInfo {}

#[cfg(test)]
mod tests {
    use super::*;
    use dm_core::ManagementObject;

    #[test]
    fn values_are_read_by_path() {
        let s = SessionInfo::new(bearer::WIRELINE, roaming::NOT_ROAMING);
        assert_eq!(
            s.get(&[]).unwrap().to_json(),
            serde_json::json!({"CBT": 3, "ROAMING": 0})
        );
        let host = SessionInfo::from_host();
        assert!((0..=3).contains(&host.cbt));
    }
}
