//! The client address of a request, and per-key address allowlists.
//!
//! One rule decides "where a request comes from" for everything that cares:
//! the abuse limits (per client address) and the allowlists of API keys
//! (`apikey create … --allow-ip CIDR`). The contract: the client address is
//! the TCP peer, or, only when the peer is in `KEYGATE_TRUSTED_PROXIES`, the
//! right-most untrusted `X-Forwarded-For` entry.
//!
//! # Why right-most
//!
//! `X-Forwarded-For` is a list each proxy *appends* its own peer to, so only
//! the entries added by proxies we trust are facts; everything to their left
//! was written by whoever sent the request and can be forged at will. Taking
//! the left-most entry (what many frameworks do) lets any client claim any
//! address, which would empty the abuse limits and defeat allowlists. So
//! [`client_ip`] walks the list from the right, skipping our own proxies, and
//! stops at the first address a trusted proxy saw connecting to it. (The same
//! reasoning is RFC 7239 §8.1's for `Forwarded`; `X-Forwarded-For` has no RFC
//! but the same append semantics.)
//!
//! # Decisions
//!
//! - IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`, RFC 4291 §2.5.5.2, what a
//!   dual-stack socket reports for an IPv4 client) are treated as the IPv4
//!   address everywhere: peers, header entries, and CIDRs with a prefix of at
//!   least 96 (`::ffff:192.0.2.0/120` is stored as `192.0.2.0/24`). Otherwise
//!   an allowlist of `192.0.2.0/24` would refuse the same client depending on
//!   how the listening socket was bound. A shorter IPv6 prefix that happens to
//!   cover the mapped range (`::/0`) is kept as an IPv6 network and does not
//!   match IPv4 clients: it says "IPv6", and IPv4 is listed separately.
//! - A CIDR with host bits set (`203.0.113.7/24`) is refused, with the network
//!   it would mean in the error. It is almost always a typo for `/32` or for
//!   `203.0.113.0/24`, and silently widening it would allow 255 addresses the
//!   operator did not name. A bare address means `/32` or `/128`.
//! - A malformed `X-Forwarded-For` entry (not an address, `unknown`, a
//!   hostname) stops the walk, and the answer is the last trusted hop reached
//!   so far (the peer, or the left-most trusted entry). That hop is a real,
//!   verified address; the entry itself could be anything. An attacker cannot
//!   use this to pick an address: a malformed entry is only reached when every
//!   entry to its right is one of our proxies, and those append addresses, not
//!   text. Empty list elements (`a, , b`) are skipped, as RFC 9110 §5.6.1
//!   requires of list recipients.
//! - Entries with a port (`192.0.2.1:5678`, `[2001:db8::1]:443`) and
//!   bracketed IPv6 (`[2001:db8::1]`) are accepted, since some load balancers
//!   write them; IPv6 zone ids (`fe80::1%eth0`) are not.
//! - At most [`MAX_FORWARDED_HOPS`] entries are parsed (the rest of the
//!   header is not looked at); past that the last trusted hop is the answer.

use ipnet::{IpNet, Ipv4Net};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use thiserror::Error;

/// How many `X-Forwarded-For` entries [`client_ip`] examines at most. Real
/// deployments have one to three proxies; this bounds the work a long header
/// can cause.
pub const MAX_FORWARDED_HOPS: usize = 32;

/// How many networks one key's allowlist may hold. It is checked on every
/// `/v1` request from the cache, and stored in one column.
pub const MAX_ALLOWLIST_ENTRIES: usize = 64;

/// Longest excerpt of bad input echoed back in an error (in characters).
const SHOWN_CHARS: usize = 60;

/// Why an address, a CIDR or a list of them was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AddressError {
    #[error("empty address list: give at least one address or CIDR, e.g. 203.0.113.0/24")]
    Empty,
    #[error("{0:?} is not an IP address or CIDR (expected e.g. 203.0.113.0/24, 2001:db8::/32 or 192.0.2.7)")]
    Invalid(String),
    #[error("{given:?} has host bits set: write {network} for the whole network, or the address alone for just it")]
    HostBitsSet { given: String, network: String },
    #[error("too many addresses: at most {max} networks")]
    TooMany { max: usize },
}

fn shown(raw: &str) -> String {
    super::excerpt(raw, SHOWN_CHARS)
}

/// The address with an IPv4-mapped IPv6 address turned into its IPv4 address.
pub fn normalise(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// An IPv4-mapped IPv6 network of prefix ≥ 96 as the IPv4 network it covers;
/// any other network unchanged.
fn normalise_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net {
        if let (Some(v4), Some(len)) = (
            v6.network().to_ipv4_mapped(),
            v6.prefix_len().checked_sub(96),
        ) {
            if let Ok(n) = Ipv4Net::new(v4, len) {
                return IpNet::V4(n);
            }
        }
    }
    net
}

/// One address or CIDR, canonical: no host bits, IPv4-mapped folded to IPv4.
fn parse_net(raw: &str) -> Result<IpNet, AddressError> {
    let s = raw.trim_matches(|c: char| c.is_ascii_whitespace());
    let net = if s.contains('/') {
        let net = IpNet::from_str(s).map_err(|_| AddressError::Invalid(shown(s)))?;
        if net.trunc() != net {
            return Err(AddressError::HostBitsSet {
                given: shown(s),
                network: normalise_net(net.trunc()).to_string(),
            });
        }
        net
    } else {
        IpNet::from(IpAddr::from_str(s).map_err(|_| AddressError::Invalid(shown(s)))?)
    };
    Ok(normalise_net(net))
}

/// Parses comma-separated networks; empty elements are skipped, the result
/// is sorted and free of duplicates.
fn parse_list(raw: &str, max: usize) -> Result<Vec<IpNet>, AddressError> {
    let mut nets = Vec::new();
    for item in raw.split(',') {
        if item
            .trim_matches(|c: char| c.is_ascii_whitespace())
            .is_empty()
        {
            continue;
        }
        if nets.len() == max {
            return Err(AddressError::TooMany { max });
        }
        nets.push(parse_net(item)?);
    }
    nets.sort_unstable();
    nets.dedup();
    Ok(nets)
}

/// The proxies whose `X-Forwarded-For` entries keygate believes
/// (`KEYGATE_TRUSTED_PROXIES`, comma-separated CIDRs or addresses). The
/// default trusts nobody: the TCP peer is the client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Arc<[IpNet]>,
}

impl TrustedProxies {
    /// Trusts no proxy.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses the variable's value, e.g. `10.0.0.0/8, fd00::/8, 192.0.2.10`.
    /// An empty or blank value trusts nobody; any bad element fails the whole
    /// value, so a typo never silently drops a proxy (or the operator's
    /// intent). There is no count limit: this is the operator's configuration.
    pub fn parse(raw: &str) -> Result<Self, AddressError> {
        Ok(Self {
            nets: parse_list(raw, usize::MAX)?.into(),
        })
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = normalise(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// The networks, canonical and sorted.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    /// The networks wider than one site's proxies usually are (an IPv4 range
    /// wider than /24, an IPv6 range wider than /64): every address in them
    /// may name any client in `X-Forwarded-For`, which is worth a warning.
    pub fn wide(&self) -> Vec<IpNet> {
        self.nets
            .iter()
            .filter(|n| match n {
                IpNet::V4(v4) => v4.prefix_len() < 24,
                IpNet::V6(v6) => v6.prefix_len() < 64,
            })
            .copied()
            .collect()
    }
}

impl FromStr for TrustedProxies {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// One `X-Forwarded-For` element as an address: bare IPv4 or IPv6, bracketed
/// IPv6, or either with a port.
fn parse_forwarded_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = IpAddr::from_str(entry) {
        return Some(ip);
    }
    if let Some(inner) = entry.strip_prefix('[').and_then(|e| e.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    }
    SocketAddr::from_str(entry).ok().map(|s| s.ip())
}

/// The client address of a request, per the contract: the TCP `peer`, or,
/// only when the peer is a trusted proxy, the right-most `X-Forwarded-For`
/// entry that is not itself a trusted proxy (see the module documentation for
/// the malformed-entry and all-trusted cases: the last trusted hop wins).
///
/// `x_forwarded_for` holds every `X-Forwarded-For` header value in the order
/// received; several headers form one list (RFC 9110 §5.3). A value that is
/// not valid text should be passed through `String::from_utf8_lossy`, not
/// dropped: dropping it would let the walk step over it, while the
/// replacement character makes it a malformed entry that stops the walk.
/// The result is normalised (IPv4-mapped addresses as IPv4).
pub fn client_ip(peer: IpAddr, x_forwarded_for: &[&str], trusted: &TrustedProxies) -> IpAddr {
    let mut last_trusted = normalise(peer);
    if !trusted.contains(last_trusted) {
        return last_trusted;
    }
    let entries = x_forwarded_for
        .iter()
        .rev()
        .flat_map(|value| value.rsplit(','))
        .map(|e| e.trim_matches(|c: char| c == ' ' || c == '\t'))
        .filter(|e| !e.is_empty())
        .take(MAX_FORWARDED_HOPS);
    for entry in entries {
        let Some(ip) = parse_forwarded_entry(entry).map(normalise) else {
            break;
        };
        if !trusted.contains(ip) {
            return ip;
        }
        last_trusted = ip;
    }
    last_trusted
}

/// The networks one API key may be used from (`--allow-ip`, repeatable).
///
/// Never empty: a key without a restriction has no `IpAllowList` at all
/// (`Option::None`, a NULL column), so "unrestricted" can never be confused
/// with "allows nothing". Cloning is a reference-count increment, so the
/// credential cache can hand it out per request.
///
/// Storage form ([`Display`](fmt::Display) / [`IpAllowList::from_storage`]):
/// the canonical CIDRs, sorted, without duplicates, joined by `,` with no
/// spaces, e.g. `192.0.2.7/32,203.0.113.0/24,2001:db8::/32`. It is what `apikey
/// list --json` can show as is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IpAllowList {
    nets: Arc<[IpNet]>,
}

impl IpAllowList {
    /// From the repeated `--allow-ip` values; each one may itself be a
    /// comma-separated list. Refuses garbage, host bits set, an empty result
    /// and more than [`MAX_ALLOWLIST_ENTRIES`] networks.
    pub fn parse_entries<S: AsRef<str>>(entries: &[S]) -> Result<Self, AddressError> {
        let mut nets = Vec::new();
        for entry in entries {
            let room = MAX_ALLOWLIST_ENTRIES.saturating_sub(nets.len());
            let more = parse_list(entry.as_ref(), room).map_err(|e| match e {
                AddressError::TooMany { .. } => AddressError::TooMany {
                    max: MAX_ALLOWLIST_ENTRIES,
                },
                other => other,
            })?;
            nets.extend(more);
        }
        Self::from_nets(nets)
    }

    /// From the storage form (also accepts anything [`parse_entries`]
    /// accepts for one value).
    ///
    /// [`parse_entries`]: IpAllowList::parse_entries
    pub fn from_storage(stored: &str) -> Result<Self, AddressError> {
        Self::from_nets(parse_list(stored, MAX_ALLOWLIST_ENTRIES)?)
    }

    fn from_nets(mut nets: Vec<IpNet>) -> Result<Self, AddressError> {
        nets.sort_unstable();
        nets.dedup();
        if nets.is_empty() {
            return Err(AddressError::Empty);
        }
        Ok(Self { nets: nets.into() })
    }

    /// The storage form; the same as `to_string()`.
    pub fn to_storage(&self) -> String {
        self.to_string()
    }

    /// Whether a request from `ip` may use the key.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = normalise(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The networks, canonical and sorted.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    /// Each network as a canonical CIDR string (for JSON output).
    pub fn to_strings(&self) -> Vec<String> {
        self.nets.iter().map(ToString::to_string).collect()
    }
}

impl fmt::Display for IpAllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, net) in self.nets.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

impl FromStr for IpAllowList {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_storage(s)
    }
}

/// The part of a client address that the abuse limits count: the address
/// itself for IPv4, its /64 for IPv6 (one host is routinely given a whole
/// /64, so counting single IPv6 addresses would give it 2^64 budgets).
pub fn address_bucket(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// [`address_bucket`] of an address given as text; text that is no address
/// is its own bucket.
pub fn address_bucket_of(address: &str) -> String {
    match address.parse::<IpAddr>() {
        Ok(ip) => address_bucket(ip),
        Err(_) => address.to_string(),
    }
}

/// Where a key may be used from, as the bearer check sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddressRule {
    /// No allowlist (a NULL column).
    Anywhere,
    Only(IpAllowList),
    /// A stored allowlist that does not parse: the key is refused everywhere
    /// rather than guessed at (fail closed).
    Nowhere,
}

impl AddressRule {
    pub fn from_column(stored: Option<&str>) -> AddressRule {
        match stored {
            None => AddressRule::Anywhere,
            Some(s) => match IpAllowList::from_storage(s) {
                Ok(list) => AddressRule::Only(list),
                Err(e) => {
                    log::warn!("an API key's stored address allowlist is unreadable ({e}); the key is refused");
                    AddressRule::Nowhere
                }
            },
        }
    }

    /// Whether a request from `ip` may use the key; an unknown address only
    /// where there is no allowlist.
    pub fn allows(&self, ip: Option<IpAddr>) -> bool {
        match (self, ip) {
            (AddressRule::Anywhere, _) => true,
            (AddressRule::Only(list), Some(ip)) => list.contains(ip),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn proxies(s: &str) -> TrustedProxies {
        TrustedProxies::parse(s).expect("test proxies")
    }

    #[test]
    fn untrusted_peer_wins_over_any_header() {
        let trusted = proxies("10.0.0.0/8");
        let peer = ip("198.51.100.9");
        assert_eq!(client_ip(peer, &["1.2.3.4"], &trusted), peer);
        assert_eq!(client_ip(peer, &["10.0.0.1"], &trusted), peer);
        assert_eq!(client_ip(peer, &[], &TrustedProxies::none()), peer);
        assert_eq!(client_ip(peer, &["1.2.3.4"], &TrustedProxies::none()), peer);
    }

    #[test]
    fn trusted_proxy_gives_the_right_most_untrusted_entry() {
        let trusted = proxies("10.0.0.0/8, fd00::/8");
        let peer = ip("10.0.0.2");
        // The attacker forges entries on the left; the proxy appends the real peer.
        let got = client_ip(peer, &["203.0.113.66, 198.51.100.7"], &trusted);
        assert_eq!(got, ip("198.51.100.7"));
        // Two of our proxies in the chain.
        let got = client_ip(peer, &["6.6.6.6, 198.51.100.7, 10.1.1.1"], &trusted);
        assert_eq!(got, ip("198.51.100.7"));
        // Several headers form one list, the last header is the right end.
        let got = client_ip(peer, &["6.6.6.6", "198.51.100.7", "10.1.1.1"], &trusted);
        assert_eq!(got, ip("198.51.100.7"));
        // A forged "trusted" address on the left does not help.
        let got = client_ip(peer, &["10.9.9.9, 198.51.100.7"], &trusted);
        assert_eq!(got, ip("198.51.100.7"));
        // IPv6, bracketed and with ports.
        let got = client_ip(peer, &["[2001:db8::1]:443, fd00::5"], &trusted);
        assert_eq!(got, ip("2001:db8::1"));
        let got = client_ip(peer, &["198.51.100.7:5678"], &trusted);
        assert_eq!(got, ip("198.51.100.7"));
        let got = client_ip(peer, &["[2001:db8::2]"], &trusted);
        assert_eq!(got, ip("2001:db8::2"));
    }

    #[test]
    fn all_trusted_gives_the_left_most() {
        let trusted = proxies("10.0.0.0/8");
        let peer = ip("10.0.0.2");
        assert_eq!(
            client_ip(peer, &["10.0.0.5, 10.0.0.4"], &trusted),
            ip("10.0.0.5")
        );
        assert_eq!(client_ip(peer, &[], &trusted), peer);
        assert_eq!(client_ip(peer, &["", " , "], &trusted), peer);
    }

    #[test]
    fn malformed_entry_stops_at_the_last_trusted_hop() {
        let trusted = proxies("10.0.0.0/8");
        let peer = ip("10.0.0.2");
        assert_eq!(client_ip(peer, &["1.2.3.4, unknown"], &trusted), peer);
        assert_eq!(
            client_ip(peer, &["1.2.3.4, garbage, 10.0.0.7"], &trusted),
            ip("10.0.0.7")
        );
        assert_eq!(client_ip(peer, &["1.2.3.4, fe80::1%eth0"], &trusted), peer);
        assert_eq!(
            client_ip(peer, &["1.2.3.4, 1.2.3.4\u{fffd}"], &trusted),
            peer
        );
        // Empty elements are skipped, not malformed.
        assert_eq!(
            client_ip(peer, &["198.51.100.7, , "], &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn the_walk_is_bounded() {
        let trusted = proxies("10.0.0.0/8");
        let peer = ip("10.0.0.2");
        let mut chain = vec!["198.51.100.7".to_string()];
        chain.extend((0..MAX_FORWARDED_HOPS).map(|i| format!("10.0.0.{}", i % 250 + 3)));
        let header = chain.join(",");
        let got = client_ip(peer, &[header.as_str()], &trusted);
        assert!(trusted.contains(got), "stopped at a trusted hop: {got}");
    }

    #[test]
    fn ipv4_mapped_is_ipv4() {
        let trusted = proxies("::ffff:10.0.0.0/104");
        assert_eq!(trusted.nets()[0].to_string(), "10.0.0.0/8");
        let peer = ip("::ffff:10.0.0.2");
        assert!(trusted.contains(peer));
        assert_eq!(
            client_ip(peer, &["::ffff:198.51.100.7"], &trusted),
            ip("198.51.100.7")
        );
        let untrusted = ip("::ffff:198.51.100.9");
        assert_eq!(client_ip(untrusted, &[], &trusted), ip("198.51.100.9"));
        let list = IpAllowList::from_storage("192.0.2.0/24").expect("list");
        assert!(list.contains(ip("::ffff:192.0.2.1")));
        let all_v6 = IpAllowList::from_storage("::/0").expect("list");
        assert!(all_v6.contains(ip("2001:db8::1")));
        assert!(!all_v6.contains(ip("192.0.2.1")));
    }

    #[test]
    fn allowlist_parses_canonical_forms() {
        let list = IpAllowList::parse_entries(&[
            "203.0.113.0/24",
            "2001:db8::/32",
            " 192.0.2.7 ",
            "2001:DB8:0:0::1",
            "203.0.113.0/24",
        ])
        .expect("list");
        assert_eq!(
            list.to_storage(),
            "192.0.2.7/32,203.0.113.0/24,2001:db8::/32,2001:db8::1/128"
        );
        assert!(list.contains(ip("203.0.113.200")));
        assert!(list.contains(ip("192.0.2.7")));
        assert!(!list.contains(ip("192.0.2.8")));
        assert!(list.contains(ip("2001:db8:ffff::1")));
        assert!(!list.contains(ip("2001:db9::1")));
        let back = IpAllowList::from_storage(&list.to_storage()).expect("round trip");
        assert_eq!(back, list);
        assert_eq!(back.to_strings().len(), 4);
        let comma = IpAllowList::parse_entries(&["192.0.2.0/24,198.51.100.0/24"]).expect("list");
        assert_eq!(comma.nets().len(), 2);
    }

    #[test]
    fn allowlist_refuses_garbage() {
        assert_eq!(IpAllowList::from_storage(""), Err(AddressError::Empty));
        assert_eq!(IpAllowList::from_storage(" , "), Err(AddressError::Empty));
        assert_eq!(
            IpAllowList::parse_entries::<&str>(&[]),
            Err(AddressError::Empty)
        );
        for bad in [
            "example.com",
            "203.0.113.0/33",
            "2001:db8::/129",
            "203.0.113.0/",
            "/24",
            "203.0.113.0/24/1",
            "010.0.0.1",
            "1.2.3",
            "1.2.3.4:80",
            "fe80::1%eth0",
            "203.0.113.0 /24",
            "*",
            "١.٢.٣.٤",
        ] {
            assert!(
                matches!(
                    IpAllowList::from_storage(bad),
                    Err(AddressError::Invalid(_))
                ),
                "{bad}: {:?}",
                IpAllowList::from_storage(bad)
            );
        }
        let err = IpAllowList::from_storage("203.0.113.7/24").unwrap_err();
        assert_eq!(
            err,
            AddressError::HostBitsSet {
                given: "203.0.113.7/24".into(),
                network: "203.0.113.0/24".into()
            }
        );
        assert!(err.to_string().contains("203.0.113.0/24"));
        let many: Vec<String> = (0..=MAX_ALLOWLIST_ENTRIES)
            .map(|i| format!("192.0.2.{i}"))
            .collect();
        assert_eq!(
            IpAllowList::parse_entries(&many),
            Err(AddressError::TooMany {
                max: MAX_ALLOWLIST_ENTRIES
            })
        );
        assert!(IpAllowList::parse_entries(&many[..MAX_ALLOWLIST_ENTRIES]).is_ok());
        assert!(matches!(
            TrustedProxies::parse("10.0.0.0/8,nope"),
            Err(AddressError::Invalid(_))
        ));
        assert!(TrustedProxies::parse("  ").expect("blank").is_empty());
        let wide = TrustedProxies::parse("10.0.0.0/8, 192.0.2.0/24, fd00::/8, 2001:db8::/64")
            .expect("proxies")
            .wide();
        assert_eq!(wide.len(), 2, "{wide:?}");
        assert!(wide
            .iter()
            .all(|n| n.to_string() == "10.0.0.0/8" || n.to_string() == "fd00::/8"));
    }

    fn any_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o))),
            any::<u128>().prop_map(|n| IpAddr::V6(Ipv6Addr::from(n))),
        ]
    }

    proptest! {
        #[test]
        fn parsers_never_panic_on_any_char(chars in proptest::collection::vec(any::<char>(), 0..48)) {
            let raw: String = chars.into_iter().collect();
            let _ = IpAllowList::from_storage(&raw);
            let _ = TrustedProxies::parse(&raw);
            let everyone = proxies("0.0.0.0/0, ::/0");
            let _ = client_ip(IpAddr::V4(Ipv4Addr::LOCALHOST), &[raw.as_str()], &everyone);
        }

        #[test]
        fn parsers_never_panic(raw in "\\PC*") {
            let _ = IpAllowList::from_storage(&raw);
            let _ = IpAllowList::parse_entries(&[raw.as_str()]);
            let _ = TrustedProxies::parse(&raw);
        }

        #[test]
        fn parsers_never_panic_on_near_misses(raw in "[0-9a-fA-F:./,\\[\\]% ]{0,60}") {
            if let Ok(list) = IpAllowList::from_storage(&raw) {
                let back = IpAllowList::from_storage(&list.to_storage());
                prop_assert_eq!(back, Ok(list));
            }
        }

        #[test]
        fn client_ip_never_panics(peer in any_ip(), headers in proptest::collection::vec("\\PC*", 0..4)) {
            let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
            let everyone = proxies("0.0.0.0/0, ::/0");
            let got = client_ip(peer, &refs, &everyone);
            prop_assert!(everyone.contains(got));
            prop_assert_eq!(client_ip(peer, &refs, &TrustedProxies::none()), normalise(peer));
        }

        #[test]
        fn untrusted_peer_always_wins(peer in any_ip(), forged in proptest::collection::vec(any_ip(), 0..6)) {
            let trusted = proxies("10.0.0.0/8");
            prop_assume!(!trusted.contains(peer));
            let header = forged.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            prop_assert_eq!(client_ip(peer, &[header.as_str()], &trusted), normalise(peer));
        }

        #[test]
        fn forged_left_entries_never_win(
            forged in proptest::collection::vec(any_ip(), 0..6),
            client in any_ip(),
            hops in proptest::collection::vec(any::<[u8; 3]>(), 0..4),
            peer in any::<[u8; 3]>(),
        ) {
            let trusted = proxies("10.0.0.0/8");
            let client = normalise(client);
            prop_assume!(!trusted.contains(client));
            let mut chain: Vec<String> = forged.iter().map(ToString::to_string).collect();
            chain.push(client.to_string());
            chain.extend(hops.iter().map(|h| Ipv4Addr::new(10, h[0], h[1], h[2]).to_string()));
            let peer = IpAddr::V4(Ipv4Addr::new(10, peer[0], peer[1], peer[2]));
            let header = chain.join(",");
            prop_assert_eq!(client_ip(peer, &[header.as_str()], &trusted), client);
        }

        #[test]
        fn allowlist_matches_its_networks(addr in any_ip(), len in 0u8..=128) {
            // A short IPv6 prefix does not cover IPv4-mapped clients (module docs).
            prop_assume!(normalise(addr) == addr || len >= 96);
            let net = match addr {
                IpAddr::V4(v4) => IpNet::V4(Ipv4Net::new(v4, len % 33).expect("prefix")),
                IpAddr::V6(v6) => IpNet::V6(ipnet::Ipv6Net::new(v6, len).expect("prefix")),
            }.trunc();
            let list = IpAllowList::from_storage(&net.to_string()).expect("canonical net parses");
            prop_assert!(list.contains(addr));
            prop_assert_eq!(IpAllowList::from_storage(&list.to_storage()), Ok(list));
        }
    }

    #[test]
    fn address_rules_fail_closed() {
        let local: IpAddr = "127.0.0.1".parse().expect("ip");
        assert!(AddressRule::from_column(None).allows(None));
        let only = AddressRule::from_column(Some("127.0.0.0/8"));
        assert!(only.allows(Some(local)));
        assert!(!only.allows(Some("192.0.2.1".parse().expect("ip"))));
        assert!(!only.allows(None));
        let broken = AddressRule::from_column(Some("garbage"));
        assert_eq!(broken, AddressRule::Nowhere);
        assert!(!broken.allows(Some(local)));
    }
}
