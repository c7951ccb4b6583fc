//! Who a quota counts against: the principal when the gateway checks tokens, else the
//! client's address. Behind an ingress every connection comes from the proxy, so with
//! `--trusted-proxies` the address is taken from `X-Forwarded-For`: the right-most entry that
//! is not itself a trusted proxy (entries left of it could be written by the client).

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use bus_schema::principal::Principal;
use ipnet::IpNet;

/// The quota key of one client.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey(String);

impl ClientKey {
    /// The principal if there is one, else the client address (`peer`, or what trusted
    /// proxies say it is). Without either (in-process tests), one shared key.
    pub fn of(
        principal: Option<&Principal>,
        peer: Option<SocketAddr>,
        headers: &HeaderMap,
        trusted: &[IpNet],
    ) -> Self {
        if let Some(p) = principal {
            return Self(format!("principal:{}", p.key()));
        }
        match peer {
            Some(peer) => {
                let address = network(client_address(peer.ip(), headers, trusted));
                Self(format!("address:{address}"))
            }
            None => Self::unknown(),
        }
    }

    /// The one key of callers nobody identified (in-process use, unit tests).
    pub fn unknown() -> Self {
        Self("address:unknown".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The unit of one client: an IPv4 address, or an IPv6 /64 (one host is routinely given a
/// whole /64, so per-address quotas would be 2^64 quotas for it).
fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    let mut client = peer;
    for entry in forwarded.iter().rev() {
        match entry.parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            // Garbage in the chain: stop at the last address we could trust.
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(peer: &str, xff: Option<&str>, trusted: &[&str]) -> String {
        let mut headers = HeaderMap::new();
        if let Some(v) = xff {
            headers.insert("x-forwarded-for", v.parse().unwrap());
        }
        let trusted: Vec<IpNet> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        let peer = SocketAddr::new(peer.parse().unwrap(), 1234);
        ClientKey::of(None, Some(peer), &headers, &trusted).0
    }

    #[test]
    fn forwarded_addresses_count_only_behind_trusted_proxies() {
        // Not behind a trusted proxy: the header is the client's to forge.
        assert_eq!(
            key("203.0.113.9", Some("1.2.3.4"), &[]),
            "address:203.0.113.9"
        );
        // Behind one: the right-most untrusted entry.
        assert_eq!(
            key("10.0.0.5", Some("6.6.6.6, 198.51.100.7"), &["10.0.0.0/8"]),
            "address:198.51.100.7"
        );
        // Two proxy hops, both trusted.
        assert_eq!(
            key("10.0.0.5", Some("198.51.100.7, 10.0.0.9"), &["10.0.0.0/8"]),
            "address:198.51.100.7"
        );
        // Garbage stops the walk at the last good address.
        assert_eq!(
            key("10.0.0.5", Some("junk, 10.0.0.9"), &["10.0.0.0/8"]),
            "address:10.0.0.9"
        );
        assert_eq!(key("10.0.0.5", None, &["10.0.0.0/8"]), "address:10.0.0.5");
    }

    #[test]
    fn an_ipv6_host_is_one_client_however_many_addresses_it_uses() {
        assert_eq!(
            key("2001:db8:1:2::1", None, &[]),
            key("2001:db8:1:2:ffff:1:2:3", None, &[])
        );
        assert_ne!(
            key("2001:db8:1:2::1", None, &[]),
            key("2001:db8:1:3::1", None, &[])
        );
        assert_eq!(key("::ffff:192.0.2.1", None, &[]), "address:192.0.2.1");
    }

    #[test]
    fn a_principal_is_its_own_key_wherever_it_connects_from() {
        let p = Principal {
            issuer: "https://as".into(),
            subject: "alice".into(),
            scopes: vec![],
            claims: Default::default(),
        };
        let a = ClientKey::of(Some(&p), "1.1.1.1:1".parse().ok(), &HeaderMap::new(), &[]);
        let b = ClientKey::of(Some(&p), "2.2.2.2:1".parse().ok(), &HeaderMap::new(), &[]);
        assert_eq!(a, b);
    }
}
