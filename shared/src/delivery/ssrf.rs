//! SSRF guard: webhook URLs are user input, so before connecting we resolve the host and refuse
//! addresses inside our own network (loopback, private, link-local, metadata, ...) unless an
//! operator allowed them with `AUTOMATIONS_ALLOWED_NETWORKS`.
//!
//! Errors and refusal reasons name the address class only, never the URL or the host: Slack
//! incoming-webhook URLs are secrets, and a reason that echoed resolved addresses would let a
//! user map internal DNS names through the test endpoint.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use url::{Host, Url};

#[derive(Debug, thiserror::Error)]
pub enum SsrfError {
    #[error("AUTOMATIONS_ALLOWED_NETWORKS entry {entry:?} is not a CIDR (such as 10.0.0.0/8 or fd00::/8)")]
    InvalidNetwork { entry: String },
    #[error("URL scheme {0:?} is not allowed (use http or https)")]
    InvalidScheme(String),
    #[error("URL has no host")]
    MissingHost,
    #[error("destination address is {class} and not in AUTOMATIONS_ALLOWED_NETWORKS")]
    Forbidden { class: AddressClass },
    #[error("could not resolve the host: {0}")]
    Resolve(#[source] std::io::Error),
    #[error("the host resolved to no addresses")]
    NoAddresses,
}

impl SsrfError {
    /// True when the destination itself is not acceptable (fail at once); false when resolving
    /// failed, which may pass (retry like a connect error).
    pub fn is_refusal(&self) -> bool {
        matches!(self, SsrfError::InvalidScheme(_) | SsrfError::MissingHost | SsrfError::Forbidden { .. })
    }
}

/// Why an address may not be reached by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Unspecified,
    Loopback,
    Private,
    LinkLocal,
    SharedCgnat,
    Multicast,
    Broadcast,
    ThisNetwork,
    UniqueLocal,
    SiteLocal,
    Documentation,
    Benchmarking,
    Reserved,
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressClass::Unspecified => "unspecified",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link-local",
            AddressClass::SharedCgnat => "shared address space (CGNAT)",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::ThisNetwork => "\"this network\" (0.0.0.0/8)",
            AddressClass::UniqueLocal => "unique-local",
            AddressClass::SiteLocal => "site-local",
            AddressClass::Documentation => "documentation-only",
            AddressClass::Benchmarking => "benchmarking-only",
            AddressClass::Reserved => "reserved",
        })
    }
}

/// CIDRs that may be reached despite being private (`AUTOMATIONS_ALLOWED_NETWORKS`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AllowedNetworks(Vec<IpNet>);

impl AllowedNetworks {
    /// Comma-separated CIDRs; `""` allows nothing. A bare address counts as a single host.
    pub fn parse(s: &str) -> Result<Self, SsrfError> {
        if s.trim().is_empty() {
            return Ok(Self::none());
        }
        s.split(',')
            .map(|raw| {
                let entry = raw.trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| SsrfError::InvalidNetwork { entry: entry.to_owned() })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(AllowedNetworks)
    }

    pub fn none() -> Self {
        AllowedNetworks(Vec::new())
    }

    /// 127.0.0.0/8 and ::1/128: the local process's default, so a receiver on the same
    /// machine works out of the box.
    pub fn loopback() -> Self {
        AllowedNetworks(vec![
            IpNet::from(ipnet::Ipv4Net::new_assert(Ipv4Addr::LOCALHOST, 8)),
            IpNet::from(ipnet::Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128)),
        ])
    }

    pub fn networks(&self) -> &[IpNet] {
        &self.0
    }

    /// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address on the wire, so it
    /// matches IPv4 networks too.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let canonical = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip) || net.contains(&canonical))
    }
}

/// True for addresses a webhook must not reach by default; see [`forbidden_class`].
pub fn is_forbidden(ip: IpAddr) -> bool {
    forbidden_class(ip).is_some()
}

/// The class that makes `ip` forbidden, or None for a public unicast address. Forms that embed
/// an IPv4 address (v4-mapped, v4-compatible, NAT64 64:ff9b::/96, 6to4 2002::/16) are judged
/// by the embedded address.
pub fn forbidden_class(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<AddressClass> {
    use AddressClass::*;
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_unspecified() => Unspecified,
        _ if ip.is_broadcast() => Broadcast,
        (0, _, _) => ThisNetwork,
        (10, _, _) => Private,
        (100, 64..=127, _) => SharedCgnat,
        (127, _, _) => Loopback,
        (169, 254, _) => LinkLocal,
        (172, 16..=31, _) => Private,
        (192, 0, 0) => Reserved, // IETF protocol assignments
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Documentation,
        (192, 88, 99) => Reserved, // deprecated 6to4 relay anycast
        (192, 168, _) => Private,
        (198, 18..=19, _) => Benchmarking,
        (224..=239, _, _) => Multicast,
        (240..=255, _, _) => Reserved,
        _ => return None,
    })
}

fn v6_class(ip: Ipv6Addr) -> Option<AddressClass> {
    use AddressClass::*;
    let s = ip.segments();
    let embedded = Ipv4Addr::from(u32::from(s[6]) << 16 | u32::from(s[7]));
    if ip.is_unspecified() {
        return Some(Unspecified);
    }
    if ip.is_loopback() {
        return Some(Loopback);
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_class(v4);
    }
    match s {
        // IPv4-compatible (deprecated): ::a.b.c.d
        [0, 0, 0, 0, 0, 0, _, _] => return v4_class(embedded),
        // NAT64 well-known prefix: the gateway connects to the embedded address.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => return v4_class(embedded),
        // 6to4: 2002:AABB:CCDD::/48 routes to AA.BB.CC.DD.
        [0x2002, hi, lo, ..] => {
            return v4_class(Ipv4Addr::from(u32::from(hi) << 16 | u32::from(lo)));
        }
        _ => {}
    }
    Some(match s[0] {
        0xff00..=0xffff => Multicast,
        0xfe80..=0xfebf => LinkLocal,
        0xfec0..=0xfeff => SiteLocal,
        0xfc00..=0xfdff => UniqueLocal,
        // 2001:db8::/32 and 3fff::/20
        0x2001 if s[1] == 0x0db8 => Documentation,
        0x3fff if s[1] <= 0x0fff => Documentation,
        // 2001:2::/48 inside 2001::/23 (IETF protocol assignments, Teredo, ORCHID)
        0x2001 if s[1] == 0x0002 && s[2] == 0 => Benchmarking,
        0x2001 if s[1] <= 0x01ff => Reserved,
        0x5f00 => Reserved, // SRv6 SIDs
        // Global unicast is 2000::/3; the rest (NAT64 local-use 64:ff9b:1::/48, discard
        // 100::/64, unassigned space) is not reachable on the internet.
        0x2000..=0x3fff => return None,
        _ => Reserved,
    })
}

/// Name resolution, injectable so tests never resolve public names.
#[async_trait::async_trait]
pub trait Resolver: Send + Sync {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>>;
}

/// The system resolver (`getaddrinfo` via `tokio::net::lookup_host`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

#[async_trait::async_trait]
impl Resolver for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }
}

/// A fixed host → addresses map, for tests. Unknown names fail to resolve.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver(HashMap<String, Vec<IpAddr>>);

impl StaticResolver {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a host's addresses.
    pub fn with(mut self, host: &str, addrs: impl IntoIterator<Item = IpAddr>) -> Self {
        self.0.insert(host.to_ascii_lowercase(), addrs.into_iter().collect());
        self
    }
}

#[async_trait::async_trait]
impl Resolver for StaticResolver {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        let key = host.trim_end_matches('.').to_ascii_lowercase();
        self.0
            .get(&key)
            .map(|ips| ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect())
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"))
    }
}

/// Checks destinations before any connection is made.
#[derive(Clone)]
pub struct SsrfGuard {
    allowed: AllowedNetworks,
    resolver: Arc<dyn Resolver>,
}

impl fmt::Debug for SsrfGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SsrfGuard").field("allowed", &self.allowed).finish_non_exhaustive()
    }
}

impl SsrfGuard {
    pub fn new(allowed: AllowedNetworks, resolver: Arc<dyn Resolver>) -> Self {
        SsrfGuard { allowed, resolver }
    }

    /// The guard production uses: the system resolver.
    pub fn system(allowed: AllowedNetworks) -> Self {
        Self::new(allowed, Arc::new(SystemResolver))
    }

    pub fn allowed(&self) -> &AllowedNetworks {
        &self.allowed
    }

    /// Checks a URL: scheme http/https, host present; IP literals are checked directly (the url
    /// crate has already normalised decimal/octal/hex IPv4 such as `0x7f.1`); names are resolved
    /// and every address checked. Returns the addresses that may be connected to (forbidden ones
    /// are dropped; none left is a refusal).
    pub async fn check(&self, url: &Url) -> Result<Vec<SocketAddr>, SsrfError> {
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return Err(SsrfError::InvalidScheme(scheme.to_owned()));
        }
        let port = url.port_or_known_default().unwrap_or(if scheme == "https" { 443 } else { 80 });
        match url.host() {
            None => Err(SsrfError::MissingHost),
            Some(Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)).map(|()| vec![SocketAddr::new(IpAddr::V4(ip), port)]),
            Some(Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)).map(|()| vec![SocketAddr::new(IpAddr::V6(ip), port)]),
            Some(Host::Domain(name)) => self.check_host(name, port).await,
        }
    }

    /// Resolves `host` (an IP literal is taken as is) and keeps the addresses that may be
    /// reached. Used by [`SsrfGuard::check`] and by the HTTP client's DNS hook.
    pub async fn check_host(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, SsrfError> {
        let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if let Ok(ip) = literal.parse::<IpAddr>() {
            return self.check_ip(ip).map(|()| vec![SocketAddr::new(ip, port)]);
        }
        if host.is_empty() {
            return Err(SsrfError::MissingHost);
        }
        let resolved = self.resolver.resolve(host, port).await.map_err(SsrfError::Resolve)?;
        let mut first_refusal = None;
        let allowed: Vec<SocketAddr> = resolved
            .into_iter()
            .filter(|addr| match self.check_ip(addr.ip()) {
                Ok(()) => true,
                Err(e) => {
                    first_refusal.get_or_insert(e);
                    false
                }
            })
            .collect();
        match (allowed.is_empty(), first_refusal) {
            (false, _) => Ok(allowed),
            (true, Some(refusal)) => Err(refusal),
            (true, None) => Err(SsrfError::NoAddresses),
        }
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), SsrfError> {
        match forbidden_class(ip) {
            Some(class) if !self.allowed.contains(ip) => Err(SsrfError::Forbidden { class }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forbidden_addresses() {
        use AddressClass::*;
        let cases = [
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("10.0.0.1", Private),
            ("10.255.255.255", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("169.254.169.254", LinkLocal),
            ("169.254.0.1", LinkLocal),
            ("100.64.0.1", SharedCgnat),
            ("100.127.255.255", SharedCgnat),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", ThisNetwork),
            ("255.255.255.255", Broadcast),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("240.0.0.1", Reserved),
            ("192.0.0.8", Reserved),
            ("192.0.2.1", Documentation),
            ("198.51.100.7", Documentation),
            ("203.0.113.9", Documentation),
            ("198.18.0.1", Benchmarking),
            ("192.88.99.1", Reserved),
            ("::1", Loopback),
            ("::", Unspecified),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("fec0::1", SiteLocal),
            ("fc00::1", UniqueLocal),
            ("fd12::1", UniqueLocal),
            ("ff02::1", Multicast),
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:10.0.0.1", Private),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::127.0.0.1", Loopback),
            ("::10.0.0.1", Private),
            ("64:ff9b::a00:1", Private),
            ("64:ff9b::7f00:1", Loopback),
            ("64:ff9b:1::1", Reserved),
            ("2002:7f00:1::1", Loopback),
            ("2002:a9fe:a9fe::", LinkLocal),
            ("2001:db8::1", Documentation),
            ("3fff::1", Documentation),
            ("2001:2::1", Benchmarking),
            ("2001::1", Reserved),
            ("100::1", Reserved),
            ("5f00::1", Reserved),
        ];
        for (addr, class) in cases {
            assert_eq!(forbidden_class(ip(addr)), Some(class), "{addr}");
            assert!(is_forbidden(ip(addr)), "{addr}");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for addr in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "169.253.1.1",
            "192.169.0.1",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:1.1.1.1",
            "64:ff9b::101:101",
            "2002:101:101::1",
            "2001:200::1",
        ] {
            assert_eq!(forbidden_class(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn allowed_networks_parse() {
        assert_eq!(AllowedNetworks::parse("").unwrap(), AllowedNetworks::none());
        assert_eq!(AllowedNetworks::parse("  ").unwrap(), AllowedNetworks::none());
        let nets = AllowedNetworks::parse("10.0.0.0/8, fd00::/8,192.168.1.5").unwrap();
        assert_eq!(nets.networks().len(), 3);
        assert!(nets.contains(ip("10.1.2.3")));
        assert!(nets.contains(ip("fd00::1")));
        assert!(nets.contains(ip("192.168.1.5")));
        assert!(!nets.contains(ip("192.168.1.6")));
        assert!(nets.contains(ip("::ffff:10.1.2.3")));
        assert!(!nets.contains(ip("127.0.0.1")));
    }

    #[test]
    fn allowed_networks_errors_name_the_bad_entry() {
        for (input, bad) in
            [("10.0.0.0/33", "10.0.0.0/33"), ("10.0.0.0/8,not-a-cidr", "not-a-cidr"), ("10.0.0.0/8,", "")]
        {
            let err = AllowedNetworks::parse(input).unwrap_err();
            match &err {
                SsrfError::InvalidNetwork { entry } => assert_eq!(entry, bad),
                other => panic!("{other:?}"),
            }
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn loopback_default_contains_only_loopback() {
        let nets = AllowedNetworks::loopback();
        assert!(nets.contains(ip("127.0.0.1")));
        assert!(nets.contains(ip("127.3.4.5")));
        assert!(nets.contains(ip("::1")));
        assert!(!nets.contains(ip("10.0.0.1")));
        assert!(!AllowedNetworks::none().contains(ip("127.0.0.1")));
    }

    fn guard(allowed: AllowedNetworks, resolver: StaticResolver) -> SsrfGuard {
        SsrfGuard::new(allowed, Arc::new(resolver))
    }

    async fn check(guard: &SsrfGuard, url: &str) -> Result<Vec<SocketAddr>, SsrfError> {
        guard.check(&Url::parse(url).unwrap()).await
    }

    #[tokio::test]
    async fn obfuscated_loopback_urls_are_refused() {
        let g = guard(AllowedNetworks::none(), StaticResolver::new());
        for url in [
            "http://0x7f.1/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://127.0.0.1./",
            "http://[::ffff:7f00:1]/",
            "http://[::1]:8080/",
            "http://0/",
            "https://169.254.169.254/latest/meta-data/",
        ] {
            let err = check(&g, url).await.unwrap_err();
            assert!(err.is_refusal(), "{url}: {err}");
            assert!(matches!(err, SsrfError::Forbidden { .. }), "{url}: {err}");
        }
    }

    #[tokio::test]
    async fn refusal_names_the_class_not_the_url() {
        let g = guard(AllowedNetworks::none(), StaticResolver::new().with("hooks.internal", [ip("10.1.2.3")]));
        let err = check(&g, "https://hooks.internal/services/T000/B000/SECRETTOKEN").await.unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("private"), "{msg}");
        for leak in ["SECRETTOKEN", "hooks.internal", "10.1.2.3"] {
            assert!(!msg.contains(leak), "{msg}");
        }
    }

    #[tokio::test]
    async fn public_literals_and_names_pass_with_the_port() {
        let g = guard(AllowedNetworks::none(), StaticResolver::new().with("example.test", [ip("93.184.216.34")]));
        assert_eq!(check(&g, "https://1.1.1.1/").await.unwrap(), vec!["1.1.1.1:443".parse().unwrap()]);
        assert_eq!(
            check(&g, "http://[2606:4700::1111]:8080/").await.unwrap(),
            vec!["[2606:4700::1111]:8080".parse().unwrap()]
        );
        assert_eq!(check(&g, "http://Example.TEST/hook").await.unwrap(), vec!["93.184.216.34:80".parse().unwrap()]);
    }

    #[tokio::test]
    async fn a_name_resolving_to_a_private_address_is_refused() {
        let g = guard(AllowedNetworks::none(), StaticResolver::new().with("evil.test", [ip("192.168.0.10")]));
        let err = check(&g, "https://evil.test/").await.unwrap_err();
        assert!(matches!(err, SsrfError::Forbidden { class: AddressClass::Private }), "{err}");
    }

    #[tokio::test]
    async fn only_allowed_addresses_of_a_mixed_answer_are_returned() {
        let resolver = StaticResolver::new().with("mixed.test", [ip("127.0.0.1"), ip("10.0.0.1"), ip("1.1.1.1")]);
        let g = guard(AllowedNetworks::none(), resolver.clone());
        assert_eq!(check(&g, "http://mixed.test/").await.unwrap(), vec!["1.1.1.1:80".parse().unwrap()]);
        let g = guard(AllowedNetworks::loopback(), resolver);
        assert_eq!(
            check(&g, "http://mixed.test/").await.unwrap(),
            vec!["127.0.0.1:80".parse().unwrap(), "1.1.1.1:80".parse().unwrap()]
        );
    }

    #[tokio::test]
    async fn allowed_networks_open_private_destinations() {
        let g =
            guard(AllowedNetworks::loopback(), StaticResolver::new().with("localhost", [ip("127.0.0.1"), ip("::1")]));
        assert_eq!(check(&g, "http://127.0.0.1:9000/").await.unwrap(), vec!["127.0.0.1:9000".parse().unwrap()]);
        assert_eq!(check(&g, "http://localhost:9000/").await.unwrap().len(), 2);
        assert!(check(&g, "http://10.0.0.1/").await.is_err());
        let g = guard(AllowedNetworks::parse("10.0.0.0/8").unwrap(), StaticResolver::new());
        assert!(check(&g, "http://10.0.0.1/").await.is_ok());
        assert!(check(&g, "http://127.0.0.1/").await.is_err());
    }

    #[tokio::test]
    async fn other_schemes_and_unresolvable_names() {
        let g = guard(AllowedNetworks::none(), StaticResolver::new().with("empty.test", []));
        let err = check(&g, "ftp://1.1.1.1/").await.unwrap_err();
        assert!(matches!(err, SsrfError::InvalidScheme(ref s) if s == "ftp") && err.is_refusal());
        assert!(check(&g, "file:///etc/passwd").await.unwrap_err().is_refusal());
        let err = check(&g, "http://unknown.test/").await.unwrap_err();
        assert!(matches!(err, SsrfError::Resolve(_)) && !err.is_refusal(), "{err}");
        let err = check(&g, "http://empty.test/").await.unwrap_err();
        assert!(matches!(err, SsrfError::NoAddresses) && !err.is_refusal(), "{err}");
    }
}
