//! Which network addresses the server may call on a user's or a
//! deployment's behalf (push services, webhooks): public unicast only.
//! Pure classification; the HTTP client that enforces it at connect time is
//! `channels::egress`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A host that is a local or private name or a forbidden literal address.
/// Other names are checked when they are resolved.
pub(crate) fn internal_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(v4)) => forbidden_ip(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => forbidden_ip(IpAddr::V6(v6)),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost") || name.ends_with(".internal")
        }
        None => true,
    }
}

/// Whether the server must not connect to `ip`: anything but public
/// unicast (this host, private networks, shared and link-local space,
/// benchmarking, documentation, multicast, reserved), and IPv6 forms that
/// embed such an IPv4 address or translate to IPv4 (mapped, compatible,
/// NAT64, 6to4, Teredo).
pub(crate) fn forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0 // "this network", 0.0.0.0/8
        || a == 10
        || a == 127
        || (a == 100 && (b & 0xc0) == 64) // shared address space (CGNAT), 100.64.0.0/10
        || (a == 169 && b == 254) // link local, cloud metadata
        || (a == 172 && (b & 0xf0) == 16)
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1
        || (a == 198 && (b & 0xfe) == 18) // benchmarking, 198.18.0.0/15
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224 // multicast, reserved, broadcast
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || (s[0..6] == [0; 6]) // IPv4-compatible ::a.b.c.d (deprecated)
        || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64, 64:ff9b::/96 and 64:ff9b:1::/48
        || (s[0] == 0x100 && s[1..4] == [0; 3]) // discard, 100::/64
        || s[0] == 0x2002 // 6to4
        || (s[0] == 0x2001 && s[1] == 0) // Teredo
        || (s[0] == 0x2001 && s[1] == 0xdb8) // documentation
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link local
        || (s[0] & 0xffc0) == 0xfec0 // site local (deprecated)
        || (s[0] & 0xff00) == 0xff00 // multicast
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_unicast_addresses_are_allowed() {
        let forbidden = [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.5",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "100::1",
            "2002:7f00:1::1",
            "2001:0:4136:e378::1",
            "2001:db8::1",
            "fd00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ];
        let allowed = [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "198.17.255.255",
            "198.20.0.1",
            "142.250.185.74",
            "::ffff:8.8.8.8",
            "2607:f8b0:4005:80a::200a",
            "2a00:1450:4001:82b::200e",
        ];
        let wrong: Vec<(&str, bool)> = forbidden
            .iter()
            .map(|a| (*a, true))
            .chain(allowed.iter().map(|a| (*a, false)))
            .filter(|(a, want)| forbidden_ip(a.parse().unwrap()) != *want)
            .collect();
        assert_eq!(wrong, []);
    }
}
