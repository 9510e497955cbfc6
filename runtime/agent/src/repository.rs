//! Where a Data Repository may be: the addresses HGET, HPUT, HPOST (5.3.1-
//! 5.3.3), SUB notifications (5.3.11) and DEFAULT fetches (5.3.10) connect
//! to (docs/architecture.md "Data Repository addresses").
//!
//! The spec lets a repository live on any host, but a DM Server must not
//! use the device to reach what only the device reaches: the device
//! itself, its link and its private networks. So an address in such a
//! range ([`AddressClass`]) is refused unless the server that sent the
//! command is in that range too (a server on loopback names loopback
//! repositories, as in the demo and the tests), or the operator allowed it
//! (`--repository-allow`, [`AllowEntry`]). The check is made on the very
//! addresses the connector dials: a host name is resolved once, by the
//! connector's [`Resolver`], and only the addresses that pass are handed
//! to it, so a name resolving to 127.0.0.1 is refused as the literal is,
//! and a second lookup that answers differently (DNS rebinding) never
//! happens.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};

/// The range an address is in, as far as reaching it from the device goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// Anything below: always allowed.
    Public,
    /// The device itself: 127.0.0.0/8, `::1`, and 0.0.0.0/8 and `::`,
    /// which a connect on Linux also takes to the device.
    Loopback,
    /// The device's link: 169.254.0.0/16 (cloud metadata services live
    /// there), fe80::/10.
    LinkLocal,
    /// Private networks: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16,
    /// 100.64.0.0/10 (shared address space, CGNAT), fc00::/7 (unique
    /// local), fec0::/10 (former site-local).
    Private,
    /// Multicast, broadcast and 240.0.0.0/4: no repository lives there.
    Reserved,
}

impl std::fmt::Display for AddressClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AddressClass::Public => "public",
            AddressClass::Loopback => "loopback",
            AddressClass::LinkLocal => "link-local",
            AddressClass::Private => "private",
            AddressClass::Reserved => "reserved",
        })
    }
}

/// The class of `ip`. An IPv6 address that carries an IPv4 one (mapped
/// `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`)
/// has the class of that IPv4 address: that is where it leads.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, ..] = ip.octets();
    match (a, b) {
        (0 | 127, _) => AddressClass::Loopback,
        (169, 254) => AddressClass::LinkLocal,
        (10, _) | (192, 168) => AddressClass::Private,
        (172, 16..=31) | (100, 64..=127) => AddressClass::Private,
        (224.., _) => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let s = ip.segments();
    if ip.is_unspecified() || ip.is_loopback() {
        return AddressClass::Loopback;
    }
    let embedded = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible).
        [0, 0, 0, 0, 0, 0xffff | 0, ..] => classify_v4(embedded),
        // 64:ff9b::/96, the NAT64 well-known prefix (RFC 6052).
        [0x64, 0xff9b, 0, 0, 0, 0, ..] => classify_v4(embedded),
        [first, ..] if first & 0xffc0 == 0xfe80 => AddressClass::LinkLocal,
        [first, ..] if first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfec0 => {
            AddressClass::Private
        }
        [first, ..] if first & 0xff00 == 0xff00 => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

/// Why a `--repository-allow` entry was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("repository allow-list entry `{entry}`: {reason}")]
pub struct AllowEntryError {
    entry: String,
    reason: &'static str,
}

/// One entry of the allow-list (`--repository-allow CIDR_OR_HOST`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowEntry {
    /// An address range (`10.1.0.0/16`, `fd00::/8`) or one address.
    Net { network: IpAddr, prefix: u8 },
    /// A host name exactly as ServerURIs spell it (any case, no trailing
    /// dot): every address it resolves to is allowed. An address literal
    /// in a ServerURI is matched by [`AllowEntry::Net`] entries only.
    Host(String),
}

impl FromStr for AllowEntry {
    type Err = AllowEntryError;

    fn from_str(entry: &str) -> Result<AllowEntry, AllowEntryError> {
        let refuse = |reason| AllowEntryError {
            entry: entry.to_owned(),
            reason,
        };
        let unbracketed = |s: &str| {
            s.strip_prefix('[')
                .and_then(|s| s.strip_suffix(']'))
                .unwrap_or(s)
                .parse::<IpAddr>()
        };
        if let Some((address, prefix)) = entry.split_once('/') {
            let network = unbracketed(address).map_err(|_| refuse("not an IP address range"))?;
            let max = if network.is_ipv4() { 32 } else { 128 };
            let prefix = prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| refuse("the prefix length is out of range"))?;
            return Ok(AllowEntry::Net { network, prefix });
        }
        if let Ok(network) = unbracketed(entry) {
            let prefix = if network.is_ipv4() { 32 } else { 128 };
            return Ok(AllowEntry::Net { network, prefix });
        }
        let host = entry.strip_suffix('.').unwrap_or(entry);
        let label_ok = |l: &str| {
            !l.is_empty()
                && !l.starts_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if host.is_empty() || !host.split('.').all(label_ok) {
            return Err(refuse("neither an IP address, a range nor a host name"));
        }
        Ok(AllowEntry::Host(host.to_ascii_lowercase()))
    }
}

impl AllowEntry {
    /// Whether this entry allows `ip`, reached through the URI host `host`.
    fn allows(&self, host: &str, ip: IpAddr) -> bool {
        match self {
            AllowEntry::Host(name) => {
                let host = host.strip_suffix('.').unwrap_or(host);
                host.eq_ignore_ascii_case(name)
            }
            AllowEntry::Net { network, prefix } => in_network(ip, *network, *prefix),
        }
    }
}

/// Whether `ip` is in `network/prefix`; an IPv4-mapped address counts as
/// the IPv4 address it maps.
fn in_network(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let masked = |bits: u128, width: u32| {
        let keep = u32::from(prefix).min(width);
        if keep == 0 {
            0
        } else {
            bits >> (width - keep)
        }
    };
    match (ip, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            masked(u32::from(a).into(), 32) == masked(u32::from(n).into(), 32)
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => masked(a.into(), 128) == masked(n.into(), 128),
        _ => false,
    }
}

/// Where the requests of one repository transfer may connect.
#[derive(Debug, Clone, Default)]
pub(crate) struct RepositoryPolicy {
    /// The classes of the addresses of the server that sent the command
    /// (its SrvURI host, resolved): the ranges it may name besides public.
    home: Vec<AddressClass>,
    allow: Arc<[AllowEntry]>,
}

impl RepositoryPolicy {
    pub(crate) fn new(home: Vec<AddressClass>, allow: Arc<[AllowEntry]>) -> RepositoryPolicy {
        RepositoryPolicy { home, allow }
    }

    /// The policy for a command of the server at `server_uri` (none: no
    /// account, the device's own command, public and the allow-list only):
    /// its host resolved, each address classed, within `timeout`.
    pub(crate) async fn for_server(
        server_uri: Option<&str>,
        allow: Arc<[AllowEntry]>,
        timeout: Duration,
    ) -> RepositoryPolicy {
        let home = match server_uri {
            Some(uri) => home_classes(uri, timeout).await,
            None => Vec::new(),
        };
        RepositoryPolicy::new(home, allow)
    }

    /// Whether a request to the URI host `host` may connect to `ip`, and
    /// why not when it may not.
    pub(crate) fn check(&self, host: &str, ip: IpAddr) -> Result<(), AddressClass> {
        let class = classify(ip);
        if class == AddressClass::Public
            || self.home.contains(&class)
            || self.allow.iter().any(|e| e.allows(host, ip))
        {
            Ok(())
        } else {
            Err(class)
        }
    }
}

/// The classes of every address the host of `server_uri` resolves to; none
/// when it has no host or does not resolve in time.
async fn home_classes(server_uri: &str, timeout: Duration) -> Vec<AddressClass> {
    let Ok(uri) = server_uri.parse::<hyper::Uri>() else {
        return Vec::new();
    };
    let Some(host) = uri.host() else {
        return Vec::new();
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = host.parse::<IpAddr>() {
        return vec![classify(ip)];
    }
    let lookup = tokio::net::lookup_host((host, uri.port_u16().unwrap_or(0)));
    let mut classes = Vec::new();
    if let Ok(Ok(addrs)) = tokio::time::timeout(timeout, lookup).await {
        for addr in addrs {
            let class = classify(addr.ip());
            if !classes.contains(&class) {
                classes.push(class);
            }
        }
    }
    classes
}

/// A repository address outside the policy: the connector gets no address.
#[derive(Debug, thiserror::Error)]
#[error(
    "data repository {host} refused: it resolves to {refused}, a {class} address, and \
     neither is the DM Server that named it nor does --repository-allow name it"
)]
pub(crate) struct Refused {
    host: String,
    refused: IpAddr,
    class: AddressClass,
}

/// The name resolver of the agent's HTTP connector: the system's
/// (getaddrinfo), and with a [`RepositoryPolicy`] only the addresses the
/// policy allows, so that the connector dials nothing else.
#[derive(Clone)]
pub(crate) struct Resolver {
    policy: Option<Arc<RepositoryPolicy>>,
    system: GaiResolver,
}

impl Resolver {
    /// The system's resolver, unfiltered: DM sessions go where the
    /// account's SrvURI says.
    pub(crate) fn system() -> Resolver {
        Resolver {
            policy: None,
            system: GaiResolver::new(),
        }
    }

    /// Only the addresses `policy` allows.
    pub(crate) fn with_policy(policy: Arc<RepositoryPolicy>) -> Resolver {
        Resolver {
            policy: Some(policy),
            system: GaiResolver::new(),
        }
    }
}

type Resolving =
    Pin<Box<dyn Future<Output = Result<std::vec::IntoIter<SocketAddr>, std::io::Error>> + Send>>;

impl tower_service::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Resolving;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), std::io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let lookup = self.system.call(name.clone());
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = lookup.await?.collect();
            let Some(policy) = policy else {
                return Ok(addrs.into_iter());
            };
            let host = name.as_str();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match policy.check(host, a.ip()) {
                    Ok(()) => true,
                    Err(class) => {
                        refused.get_or_insert((a.ip(), class));
                        false
                    }
                })
                .collect();
            match refused {
                Some((ip, class)) if allowed.is_empty() => {
                    let refused = Refused {
                        host: host.to_owned(),
                        refused: ip,
                        class,
                    };
                    tracing::warn!("dmctl client: {refused}");
                    Err(std::io::Error::new(
                        std::io::ErrorKind::PermissionDenied,
                        refused,
                    ))
                }
                _ => Ok(allowed.into_iter()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_service::Service as _;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_range_of_the_rule_has_its_class() {
        use AddressClass::*;
        for (address, class) in [
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("0.0.0.0", Loopback),
            ("0.1.2.3", Loopback),
            ("::1", Loopback),
            ("::", Loopback),
            ("169.254.169.254", LinkLocal),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("10.0.0.1", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("100.64.0.1", Private),
            ("100.127.255.255", Private),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("fec0::1", Private),
            ("224.0.0.1", Reserved),
            ("255.255.255.255", Reserved),
            ("ff02::1", Reserved),
            ("8.8.8.8", Public),
            ("172.32.0.1", Public),
            ("172.15.255.255", Public),
            ("100.128.0.1", Public),
            ("169.253.0.1", Public),
            ("192.0.2.1", Public),
            ("2001:db8::1", Public),
            ("fec0::1", Private),
        ] {
            assert_eq!(classify(ip(address)), class, "{address}");
        }
    }

    #[test]
    fn ipv6_forms_of_ipv4_addresses_have_the_ipv4_class() {
        use AddressClass::*;
        for (address, class) in [
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:0.0.0.0", Loopback),
            ("::ffff:10.1.2.3", Private),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::ffff:192.168.0.1", Private),
            ("::127.0.0.1", Loopback),
            ("::10.0.0.1", Private),
            ("64:ff9b::127.0.0.1", Loopback),
            ("64:ff9b::a9fe:a9fe", LinkLocal),
            ("::ffff:8.8.8.8", Public),
        ] {
            assert_eq!(classify(ip(address)), class, "{address}");
        }
    }

    #[test]
    fn allow_entries_are_ranges_addresses_or_host_names() {
        let parse = |s: &str| s.parse::<AllowEntry>();
        assert_eq!(
            parse("10.1.0.0/16"),
            Ok(AllowEntry::Net {
                network: ip("10.1.0.0"),
                prefix: 16
            })
        );
        assert_eq!(
            parse("[fd00::]/8"),
            Ok(AllowEntry::Net {
                network: ip("fd00::"),
                prefix: 8
            })
        );
        assert_eq!(
            parse("127.0.0.1"),
            Ok(AllowEntry::Net {
                network: ip("127.0.0.1"),
                prefix: 32
            })
        );
        assert_eq!(
            parse("Repo.Example."),
            Ok(AllowEntry::Host("repo.example".into()))
        );
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/x",
            "x/8",
            "",
            "-a",
            "a b",
            "a..b",
            "http://a",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_entry_allows_its_range_and_its_host_name_only() {
        let net: AllowEntry = "10.1.0.0/16".parse().unwrap();
        assert!(net.allows("x", ip("10.1.200.3")));
        assert!(net.allows("x", ip("::ffff:10.1.0.9")), "IPv4-mapped");
        assert!(!net.allows("x", ip("10.2.0.1")));
        assert!(!net.allows("x", ip("fd00::1")));
        let all: AllowEntry = "0.0.0.0/0".parse().unwrap();
        assert!(all.allows("x", ip("127.0.0.1")));
        assert!(
            !all.allows("x", ip("::1")),
            "an IPv4 range holds no IPv6 address"
        );
        let ula: AllowEntry = "fd00::/8".parse().unwrap();
        assert!(ula.allows("x", ip("fd12::1")));
        assert!(!ula.allows("x", ip("fc00::1")));
        let host: AllowEntry = "repo.lan".parse().unwrap();
        assert!(host.allows("REPO.lan.", ip("192.168.0.9")));
        assert!(!host.allows("repo.lan.evil", ip("192.168.0.9")));
        assert!(!host.allows("192.168.0.9", ip("192.168.0.9")));
    }

    #[test]
    fn the_policy_allows_public_the_servers_own_range_and_the_allow_list() {
        let none = RepositoryPolicy::default();
        assert_eq!(none.check("x", ip("93.184.216.34")), Ok(()));
        assert_eq!(
            none.check("x", ip("127.0.0.1")),
            Err(AddressClass::Loopback)
        );
        assert_eq!(
            none.check("x", ip("169.254.169.254")),
            Err(AddressClass::LinkLocal)
        );
        let loopback = RepositoryPolicy::new(vec![AddressClass::Loopback], Arc::from([]));
        assert_eq!(loopback.check("x", ip("127.0.0.1")), Ok(()));
        assert_eq!(loopback.check("x", ip("::1")), Ok(()));
        // Its own range only: a loopback server names no private address.
        assert_eq!(
            loopback.check("x", ip("10.0.0.1")),
            Err(AddressClass::Private)
        );
        let allowed = RepositoryPolicy::new(
            Vec::new(),
            Arc::from(["10.0.0.0/8".parse().unwrap(), "repo.lan".parse().unwrap()]),
        );
        assert_eq!(allowed.check("x", ip("10.9.9.9")), Ok(()));
        assert_eq!(allowed.check("repo.lan", ip("192.168.0.1")), Ok(()));
        assert_eq!(
            allowed.check("x", ip("192.168.0.1")),
            Err(AddressClass::Private)
        );
    }

    #[tokio::test]
    async fn the_servers_range_comes_from_its_srvuri_host() {
        let classes = |uri: &'static str| async move {
            let policy =
                RepositoryPolicy::for_server(Some(uri), Arc::from([]), Duration::from_secs(5))
                    .await;
            policy.home
        };
        assert_eq!(
            classes("http://127.0.0.1:1/dm").await,
            [AddressClass::Loopback]
        );
        assert_eq!(
            classes("https://[fd00::1]/dm").await,
            [AddressClass::Private]
        );
        assert_eq!(
            classes("https://93.184.216.34/dm").await,
            [AddressClass::Public]
        );
        // A name is resolved: `localhost` is the device.
        assert!(classes("http://localhost:1/dm")
            .await
            .contains(&AddressClass::Loopback));
        assert!(classes("not a uri").await.is_empty());
        let none = RepositoryPolicy::for_server(None, Arc::from([]), Duration::from_secs(5)).await;
        assert!(none.home.is_empty());
    }

    /// What the resolver hands the connector for `host` under `policy`.
    async fn resolve(policy: Option<RepositoryPolicy>, host: &str) -> Result<Vec<IpAddr>, String> {
        let mut resolver = match policy {
            Some(p) => Resolver::with_policy(Arc::new(p)),
            None => Resolver::system(),
        };
        let name: Name = host.parse().unwrap();
        resolver
            .call(name)
            .await
            .map(|addrs| addrs.map(|a| a.ip()).collect())
            .map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn a_name_resolving_to_a_refused_address_gives_the_connector_nothing() {
        // Unfiltered, `localhost` is loopback; filtered, nothing is left.
        let found = resolve(None, "localhost").await.unwrap();
        assert!(found.iter().all(|a| a.is_loopback()) && !found.is_empty());
        let refused = resolve(Some(RepositoryPolicy::default()), "localhost").await;
        let message = refused.unwrap_err();
        assert!(
            message.contains("localhost") && message.contains("loopback"),
            "{message}"
        );
        // The server's own range, or the allow-list by name or by range.
        let home = RepositoryPolicy::new(vec![AddressClass::Loopback], Arc::from([]));
        assert_eq!(resolve(Some(home), "localhost").await.unwrap(), found);
        for entry in ["localhost", "LocalHost", "127.0.0.0/8"] {
            let allow = RepositoryPolicy::new(Vec::new(), Arc::from([entry.parse().unwrap()]));
            let got = resolve(Some(allow), "localhost").await;
            assert!(got.is_ok_and(|a| !a.is_empty()), "{entry}");
        }
    }
}
