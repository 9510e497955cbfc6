//! PREFERRED-CON-TYPE of a DM Notification (spec 5.2.1.2), honoured as far
//! as the host can tell. The agent cannot steer one connection onto a
//! bearer (that needs the host's routing or privileges it does not have),
//! so it finds which bearers are up, reports which preference applies, and
//! says so when none of the preferred ones is: the session then goes out
//! over the host's default route rather than waiting for a bearer change
//! the agent could not cause or see.

use std::path::Path;

use dm_core::notification::ConnectionType;

/// What the device makes of a PREFERRED-CON-TYPE list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerChoice {
    /// The first preferred bearer that is up.
    Preferred(ConnectionType),
    /// None of the named bearers is up and ANY_AVAILABLE closes the list:
    /// whatever is available.
    AnyAvailable,
    /// None of the preferred bearers is up and the server did not allow
    /// any other.
    Unavailable,
}

/// The choice 5.2.1.2 describes: preferred bearers in order, then
/// ANY_AVAILABLE, which is honoured only in the last place.
pub fn choose(preferred: &[ConnectionType], available: &[ConnectionType]) -> BearerChoice {
    for (i, p) in preferred.iter().enumerate() {
        match p {
            ConnectionType::AnyAvailable if i + 1 == preferred.len() => {
                return BearerChoice::AnyAvailable
            }
            ConnectionType::AnyAvailable => {}
            p if available.contains(p) => return BearerChoice::Preferred(*p),
            _ => {}
        }
    }
    BearerChoice::Unavailable
}

/// The bearers with an interface up on this host (Linux sysfs; none
/// elsewhere).
pub fn available() -> Vec<ConnectionType> {
    available_in(Path::new("/sys/class/net"))
}

/// The bearers of the interfaces under a sysfs `class/net` directory:
/// a `wireless` or `phy80211` entry means WLAN, `DEVTYPE=wwan` (or a
/// wwan/ppp name) CELLULAR, another Ethernet-type device WIRELINE;
/// loopback and virtual interfaces are no bearer.
pub fn available_in(class_net: &Path) -> Vec<ConnectionType> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(class_net) else {
        return found;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        let state = read("operstate");
        let up = match state.trim() {
            "up" => true,
            "unknown" => read("carrier").trim() == "1",
            _ => false,
        };
        if !up || name == "lo" {
            continue;
        }
        let kind = if dir.join("wireless").exists() || dir.join("phy80211").exists() {
            Some(ConnectionType::Wlan)
        } else if read("uevent").lines().any(|l| l.trim() == "DEVTYPE=wwan")
            || name.starts_with("wwan")
            || name.starts_with("ppp")
        {
            Some(ConnectionType::Cellular)
        } else if read("type").trim() == "1" && dir.join("device").exists() {
            Some(ConnectionType::Wireline)
        } else {
            None
        };
        if let Some(k) = kind {
            if !found.contains(&k) {
                found.push(k);
            }
        }
    }
    found
}

/// One line for the log: what the notification asked and what the device
/// does about it.
pub fn describe(preferred: &[ConnectionType], available: &[ConnectionType]) -> String {
    let list = |v: &[ConnectionType]| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
        }
    };
    let wanted = list(preferred);
    let up = list(available);
    match choose(preferred, available) {
        BearerChoice::Preferred(c) => format!("preferred bearer {} is up", c.name()),
        BearerChoice::AnyAvailable => {
            format!("preferred bearers ({wanted}) not up, ANY_AVAILABLE: going on over {up}")
        }
        BearerChoice::Unavailable => format!(
            "none of the preferred bearers ({wanted}) is up on this host (up: {up}); going on over the default route"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConnectionType::*;

    #[test]
    fn the_first_preferred_bearer_that_is_up_wins() {
        assert_eq!(
            choose(&[Cellular, Wlan, Wireline], &[Wireline, Wlan]),
            BearerChoice::Preferred(Wlan)
        );
        assert_eq!(
            choose(&[Cellular, AnyAvailable], &[Wireline]),
            BearerChoice::AnyAvailable
        );
        assert_eq!(choose(&[Cellular], &[Wireline]), BearerChoice::Unavailable);
        // ANY_AVAILABLE counts only at the end of the list.
        assert_eq!(
            choose(&[AnyAvailable, Cellular], &[Wireline]),
            BearerChoice::Unavailable
        );
        assert!(describe(&[Cellular], &[]).contains("none of the preferred"));
    }

    #[test]
    fn bearers_are_read_from_sysfs() {
        let tmp = tempfile::tempdir().unwrap();
        let iface = |name: &str, files: &[(&str, &str)], dirs: &[&str]| {
            let d = tmp.path().join(name);
            std::fs::create_dir_all(&d).unwrap();
            for (f, v) in files {
                std::fs::write(d.join(f), v).unwrap();
            }
            for sub in dirs {
                std::fs::create_dir_all(d.join(sub)).unwrap();
            }
        };
        iface("lo", &[("operstate", "unknown\n"), ("carrier", "1\n")], &[]);
        iface(
            "eth0",
            &[("operstate", "up\n"), ("type", "1\n")],
            &["device"],
        );
        iface(
            "wlan0",
            &[("operstate", "down\n"), ("type", "1\n")],
            &["wireless"],
        );
        iface(
            "wwan0",
            &[
                ("operstate", "up\n"),
                ("uevent", "INTERFACE=wwan0\nDEVTYPE=wwan\n"),
            ],
            &[],
        );
        iface("docker0", &[("operstate", "up\n"), ("type", "1\n")], &[]);
        let mut found = available_in(tmp.path());
        found.sort_by_key(|c| c.to_byte());
        assert_eq!(found, vec![Cellular, Wireline]);
    }
}
