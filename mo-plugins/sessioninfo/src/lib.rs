//! The SessionInfo MO (spec 12.4, MOID `urn:oma:mo:oma-sessioninfomo:1.0`):
//! the bearer of the current session (CBT) and whether it is roaming.

mod generated {
    include!(concat!(env!("OUT_DIR"), "/sessioninfo.rs"));
}

use std::net::IpAddr;
use std::path::Path;

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

impl SessionInfo {
    /// SessionInfo for a session with a peer at `peer` (spec 12.4), as far
    /// as a Linux host can tell: CBT from the bearer of the interface the
    /// kernel routes `peer` through ([`route_interface`],
    /// [`bearer_of_interface`]); ROAMING unknown (2), since no roaming
    /// state is read from a modem.
    pub fn for_peer(peer: IpAddr) -> SessionInfo {
        let cbt = route_interface(Path::new("/proc/net"), peer).map_or(bearer::OTHER, |ifname| {
            bearer_of_interface(Path::new("/sys/class/net"), &ifname)
        });
        SessionInfo::new(cbt, roaming::UNKNOWN)
    }
}

/// The CBT value (12.4) of network interface `ifname`, read from sysfs
/// (`sys_class_net` is `/sys/class/net`): a wireless LAN or Bluetooth
/// interface is WIRELESS; a WWAN modem or a PPP link MOBILE; another
/// interface backed by a hardware device WIRELINE; loopback, virtual
/// interfaces (bridges, tunnels, veth) and anything unreadable OTHER.
pub fn bearer_of_interface(sys_class_net: &Path, ifname: &str) -> i64 {
    // ARPHRD_* of <linux/if_arp.h>.
    const ARPHRD_PPP: &str = "512";
    const ARPHRD_LOOPBACK: &str = "772";
    // Loopback is answered without touching sysfs: every session to a
    // local server asks.
    if ifname.is_empty()
        || ifname.contains('/')
        || ifname == "."
        || ifname == ".."
        || ifname == "lo"
    {
        return bearer::OTHER;
    }
    let dir = sys_class_net.join(ifname);
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    let link_type = read("type");
    let devtype = read("uevent")
        .lines()
        .find_map(|l| l.strip_prefix("DEVTYPE=").map(str::to_owned))
        .unwrap_or_default();
    if link_type.trim() == ARPHRD_LOOPBACK {
        bearer::OTHER
    } else if dir.join("wireless").exists()
        || dir.join("phy80211").exists()
        || matches!(devtype.as_str(), "wlan" | "bluetooth")
    {
        bearer::WIRELESS
    } else if devtype == "wwan" || link_type.trim() == ARPHRD_PPP || ifname.starts_with("wwan") {
        bearer::MOBILE
    } else if dir.join("device").exists() {
        bearer::WIRELINE
    } else {
        bearer::OTHER
    }
}

/// The interface the kernel routes `peer` through, from the main routing
/// tables in procfs (`proc_net` is `/proc/net`: `route` for IPv4,
/// `ipv6_route` for IPv6): the longest matching prefix of a route that is
/// up, the lowest metric among equals. Loopback addresses go through `lo`
/// (their routes live in the local table, which these files omit).
pub fn route_interface(proc_net: &Path, peer: IpAddr) -> Option<String> {
    if peer.is_loopback() {
        return Some("lo".to_owned());
    }
    match peer {
        IpAddr::V4(ip) => {
            let table = std::fs::read_to_string(proc_net.join("route")).ok()?;
            best_route(table.lines().skip(1).filter_map(|line| {
                // Iface Destination Gateway Flags RefCnt Use Metric Mask ...
                let cols: Vec<&str> = line.split_whitespace().collect();
                let hex = |i: usize| cols.get(i).and_then(|c| u32::from_str_radix(c, 16).ok());
                let (dest, flags, metric, mask) = (hex(1)?, hex(3)?, cols.get(6)?, hex(7)?);
                // The kernel prints the address as a native u32 whose bytes
                // are in network order.
                let dest = u32::from_be_bytes(dest.to_ne_bytes());
                let mask = u32::from_be_bytes(mask.to_ne_bytes());
                let up = flags & 1 != 0;
                (up && u32::from(ip) & mask == dest & mask).then(|| {
                    (
                        mask.count_ones(),
                        metric.parse::<u32>().unwrap_or(u32::MAX),
                        cols[0].to_owned(),
                    )
                })
            }))
        }
        IpAddr::V6(ip) => {
            let table = std::fs::read_to_string(proc_net.join("ipv6_route")).ok()?;
            best_route(table.lines().filter_map(|line| {
                // dest plen src splen next-hop metric refcnt use flags iface
                let cols: Vec<&str> = line.split_whitespace().collect();
                let dest = u128::from_str_radix(cols.first()?, 16).ok()?;
                let plen = u32::from_str_radix(cols.get(1)?, 16).ok()?.min(128);
                let metric = u32::from_str_radix(cols.get(5)?, 16).ok()?;
                let flags = u32::from_str_radix(cols.get(8)?, 16).ok()?;
                let mask = u128::MAX.checked_shl(128 - plen).unwrap_or(0);
                let ifname = (*cols.get(9)?).to_owned();
                let up = flags & 1 != 0;
                (up && u128::from(ip) & mask == dest & mask).then_some((plen, metric, ifname))
            }))
        }
    }
}

/// The interface of the most specific route, lowest metric first.
fn best_route(routes: impl Iterator<Item = (u32, u32, String)>) -> Option<String> {
    routes
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
        .map(|(_, _, ifname)| ifname)
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

    fn fake_interface(root: &Path, name: &str, files: &[(&str, &str)], dirs: &[&str]) {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (f, text) in files {
            std::fs::write(dir.join(f), text).unwrap();
        }
        for d in dirs {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
    }

    #[test]
    fn the_bearer_follows_what_sysfs_says_of_the_interface() {
        let tmp = tempfile::tempdir().unwrap();
        let net = tmp.path();
        fake_interface(net, "lo", &[("type", "772\n")], &[]);
        fake_interface(net, "wlan0", &[("type", "1\n")], &["wireless", "device"]);
        fake_interface(
            net,
            "wlp2s0",
            &[
                ("type", "1\n"),
                ("uevent", "INTERFACE=wlp2s0\nDEVTYPE=wlan\n"),
            ],
            &["device"],
        );
        fake_interface(
            net,
            "wwan0",
            &[("type", "65534\n"), ("uevent", "DEVTYPE=wwan\n")],
            &["device"],
        );
        fake_interface(net, "ppp0", &[("type", "512\n")], &[]);
        fake_interface(net, "eth0", &[("type", "1\n")], &["device"]);
        fake_interface(
            net,
            "br0",
            &[("type", "1\n"), ("uevent", "DEVTYPE=bridge\n")],
            &[],
        );
        let cases = [
            ("lo", bearer::OTHER),
            ("wlan0", bearer::WIRELESS),
            ("wlp2s0", bearer::WIRELESS),
            ("wwan0", bearer::MOBILE),
            ("ppp0", bearer::MOBILE),
            ("eth0", bearer::WIRELINE),
            ("br0", bearer::OTHER),
            ("missing", bearer::OTHER),
            ("../etc", bearer::OTHER),
        ];
        for (ifname, cbt) in cases {
            assert_eq!(bearer_of_interface(net, ifname), cbt, "{ifname}");
        }
    }

    #[test]
    fn the_route_to_the_peer_names_the_interface() {
        let tmp = tempfile::tempdir().unwrap();
        // A default route via eth0, a more specific 10.1.0.0/16 via wwan0
        // (metric 5) and via wlan0 (metric 1), and a route that is down.
        let hex = |a: [u8; 4]| format!("{:08X}", u32::from_ne_bytes(a));
        let line = |ifname: &str, dest: [u8; 4], flags: u32, metric: u32, mask: [u8; 4]| {
            format!(
                "{ifname}\t{}\t00000000\t{flags:04X}\t0\t0\t{metric}\t{}\t0\t0\t0\n",
                hex(dest),
                hex(mask)
            )
        };
        let mut route = String::from(
            "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n",
        );
        route += &line("eth0", [0, 0, 0, 0], 3, 100, [0, 0, 0, 0]);
        route += &line("wwan0", [10, 1, 0, 0], 1, 5, [255, 255, 0, 0]);
        route += &line("wlan0", [10, 1, 0, 0], 1, 1, [255, 255, 0, 0]);
        route += &line("tun0", [10, 1, 2, 0], 0, 0, [255, 255, 255, 0]);
        std::fs::write(tmp.path().join("route"), route).unwrap();
        let v6 = "fd000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000000 00000000 00000001     wwan0\n\
                  00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 00000400 00000000 00000000 00000003      eth0\n";
        std::fs::write(tmp.path().join("ipv6_route"), v6).unwrap();
        let at = |ip: &str| route_interface(tmp.path(), ip.parse().unwrap());
        assert_eq!(at("192.0.2.7").as_deref(), Some("eth0"));
        assert_eq!(
            at("10.1.2.3").as_deref(),
            Some("wlan0"),
            "longest prefix, lowest metric, up only"
        );
        assert_eq!(at("127.0.0.1").as_deref(), Some("lo"));
        assert_eq!(at("::1").as_deref(), Some("lo"));
        assert_eq!(at("fd12::1").as_deref(), Some("wwan0"));
        assert_eq!(at("2001:db8::1").as_deref(), Some("eth0"));
        assert_eq!(
            route_interface(&tmp.path().join("none"), "192.0.2.7".parse().unwrap()),
            None
        );
    }
}
