//! Which addresses the outbound client may reach (server-side request forgery
//! rules): the host is resolved here, once, and refused if any of its
//! addresses is special-use (see [`is_special_use`]) unless the host is
//! allow-listed; the client then connects only to an address checked here,
//! so there is no second DNS lookup to rebind.

use super::OutboundError;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use url::Url;

/// Splits a comma-separated host list (`KEYGATE_CIMD_ALLOWED_HOSTS`):
/// trimmed, lower-cased, IPv6 brackets dropped, blanks skipped.
pub fn parse_allowed_hosts(list: &str) -> Vec<String> {
    list.split(',').filter_map(normalise_host).collect()
}

pub(super) fn normalise_host(h: &str) -> Option<String> {
    let h = h.trim();
    let h = h
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(h);
    let h = h.trim_end_matches('.').to_ascii_lowercase();
    (!h.is_empty()).then_some(h)
}

/// The addresses to connect to for `url`'s host and `port`: resolved once,
/// and all of them refused when any is special-use and the host is not in
/// `allowed` (hosts as [`normalise_host`] writes them).
pub(super) async fn resolve_checked(
    url: &Url,
    port: u16,
    allowed: &HashSet<String>,
) -> Result<Vec<SocketAddr>, OutboundError> {
    let host = url
        .host()
        .ok_or_else(|| OutboundError::BadUrl(url.to_string()))?;
    let host_str = url.host_str().unwrap_or_default().to_string();

    // Resolve here, check, and connect only to what was checked.
    let addrs: Vec<SocketAddr> = match &host {
        url::Host::Ipv4(ip) => vec![SocketAddr::new(IpAddr::V4(*ip), port)],
        url::Host::Ipv6(ip) => vec![SocketAddr::new(IpAddr::V6(*ip), port)],
        url::Host::Domain(d) => tokio::net::lookup_host((*d, port))
            .await
            .map_err(|e| OutboundError::Resolve {
                host: host_str.clone(),
                reason: e.to_string(),
            })?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(OutboundError::Resolve {
            host: host_str,
            reason: "no addresses".into(),
        });
    }
    let allowed = normalise_host(&host_str).is_some_and(|h| allowed.contains(&h));
    if !allowed {
        // Refuse the host if any of its addresses is special-use.
        if let Some(bad) = addrs.iter().find(|a| is_special_use(a.ip())) {
            return Err(OutboundError::ForbiddenAddress {
                host: host_str,
                addr: bad.ip(),
            });
        }
    }
    Ok(addrs)
}

/// What a URL saved for later requests (a webhook endpoint) must pass when
/// it is saved: `https`, a host and no credentials, and a host that resolves
/// now to no special-use address unless it is in `allowed` (as written in
/// the settings). Blocking (the system resolver); each request checks again.
pub fn check_saved_url(url: &Url, allowed: &[String]) -> Result<(), OutboundError> {
    if url.scheme() != "https"
        || url.host().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(OutboundError::BadUrl(url.to_string()));
    }
    let host_str = url.host_str().unwrap_or_default().to_string();
    let allowed = normalise_host(&host_str).is_some_and(|h| {
        allowed
            .iter()
            .filter_map(|a| normalise_host(a))
            .any(|a| a == h)
    });
    if allowed {
        return Ok(());
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<IpAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        _ => std::net::ToSocketAddrs::to_socket_addrs(&(host_str.as_str(), port))
            .map_err(|e| OutboundError::Resolve {
                host: host_str.clone(),
                reason: e.to_string(),
            })?
            .map(|a| a.ip())
            .collect(),
    };
    match addrs.iter().find(|ip| is_special_use(**ip)) {
        Some(bad) => Err(OutboundError::ForbiddenAddress {
            host: host_str,
            addr: *bad,
        }),
        None if addrs.is_empty() => Err(OutboundError::Resolve {
            host: host_str,
            reason: "no addresses".into(),
        }),
        None => Ok(()),
    }
}

/// Whether an address is special-use and never fetched (unless its host is
/// allow-listed): RFC 6890's registries as updated since, and everything in IPv6
/// outside global unicast `2000::/3`.
///
/// IPv4: 0/8 "this network", 10/8, 172.16/12, 192.168/16 (private, RFC 1918),
/// 100.64/10 (shared/CGNAT, RFC 6598), 127/8 (loopback), 169.254/16
/// (link-local), 192.0.0/24 (IETF protocol assignments), 192.0.2/24,
/// 198.51.100/24, 203.0.113/24 (documentation, RFC 5737), 192.31.196/24 and
/// 192.175.48/24 (AS112), 192.52.193/24 (AMT), 192.88.99/24 (6to4 relay
/// anycast), 198.18/15 (benchmarking, RFC 2544), 224/4 (multicast), 240/4
/// (reserved, with 255.255.255.255 broadcast).
///
/// IPv6: IPv4-mapped `::ffff:0:0/96`, NAT64 `64:ff9b::/96` (RFC 6052) and 6to4
/// `2002::/16` are judged by the IPv4 address they carry; anything outside
/// `2000::/3` is refused (`::`, `::1`, IPv4-compatible `::/96`, `64:ff9b:1::/48`,
/// discard `100::/64`, ULA `fc00::/7`, link-local `fe80::/10`, site-local
/// `fec0::/10`, multicast `ff00::/8`, …), and inside it `2001::/23` (IETF
/// protocol assignments: Teredo, benchmarking, ORCHID…), `2001:db8::/32` and
/// `3fff::/20` (documentation).
pub fn is_special_use(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_special_v4(v4),
        IpAddr::V6(v6) => is_special_v6(v6),
    }
}

fn is_special_v4(ip: Ipv4Addr) -> bool {
    const BLOCKS: [([u8; 4], u32); 18] = [
        ([0, 0, 0, 0], 8),
        ([10, 0, 0, 0], 8),
        ([100, 64, 0, 0], 10),
        ([127, 0, 0, 0], 8),
        ([169, 254, 0, 0], 16),
        ([172, 16, 0, 0], 12),
        ([192, 0, 0, 0], 24),
        ([192, 0, 2, 0], 24),
        ([192, 31, 196, 0], 24),
        ([192, 52, 193, 0], 24),
        ([192, 88, 99, 0], 24),
        ([192, 168, 0, 0], 16),
        ([192, 175, 48, 0], 24),
        ([198, 18, 0, 0], 15),
        ([198, 51, 100, 0], 24),
        ([203, 0, 113, 0], 24),
        ([224, 0, 0, 0], 4),
        ([240, 0, 0, 0], 4),
    ];
    let a = u32::from(ip);
    BLOCKS.iter().any(|(net, len)| {
        let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
        a & mask == u32::from(Ipv4Addr::from(*net)) & mask
    })
}

fn is_special_v6(ip: Ipv6Addr) -> bool {
    let in_block = |net: Ipv6Addr, len: u32| {
        let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
        u128::from(ip) & mask == u128::from(net) & mask
    };
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_special_v4(v4);
    }
    let bits = u128::from(ip);
    if in_block(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96) {
        return is_special_v4(Ipv4Addr::from(bits as u32));
    }
    if in_block(Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16) {
        return is_special_v4(Ipv4Addr::from((bits >> 80) as u32));
    }
    if !in_block(Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3) {
        return true;
    }
    in_block(Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23)
        || in_block(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32)
        || in_block(Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_use_addresses() {
        for a in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.31.196.1",
            "192.52.193.1",
            "192.88.99.1",
            "192.168.1.1",
            "192.175.48.6",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "100::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "2001::1",
            "2001:2::1",
            "2001:10::1",
            "2001:db8::1",
            "2002:7f00:1::1",
            "2002:c0a8:101::1",
            "3fff::1",
            "5f00::1",
            "::ffff:0:7f00:1",
        ] {
            let ip: IpAddr = a.parse().unwrap();
            assert!(is_special_use(ip), "{a} should be special-use");
        }
        for a in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.0.1.1",
            "192.169.0.1",
            "198.17.255.255",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700::1111",
            "2a00:1450:4001::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:4860::8888",
        ] {
            let ip: IpAddr = a.parse().unwrap();
            assert!(!is_special_use(ip), "{a} should be public");
        }
    }

    #[test]
    fn allowed_hosts_parsing() {
        assert_eq!(
            parse_allowed_hosts(" 127.0.0.1, LocalHost ,,[::1], example.com. "),
            vec!["127.0.0.1", "localhost", "::1", "example.com"]
        );
        assert!(parse_allowed_hosts("").is_empty());
    }
}
