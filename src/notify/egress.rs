//! Outbound HTTP to addresses users or deployments name (push services,
//! webhooks): which addresses the server may call, and a client that keeps
//! to them. Outside loopback dev mode only public unicast addresses are
//! called: a name is resolved by [`PublicOnly`], which drops local,
//! private and reserved addresses (so a name pointed at 127.0.0.1 or the
//! cloud metadata address is refused at connect time, whatever it resolved
//! to when it was registered), literal addresses are checked before each
//! request (they are never resolved), and proxies are off (a proxy would
//! resolve names itself).

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Why a request was not made.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// The URL names a local, private or reserved address: permanent.
    #[error("{0} is a local, private or reserved address")]
    Refused(String),
    /// The request failed (including a name that resolves only to refused
    /// addresses): may be temporary.
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

/// A reqwest client that calls only public addresses, unless
/// `allow_internal` (loopback dev mode, where tests run local peers).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    allow_internal: bool,
}

impl Client {
    pub fn new(allow_internal: bool) -> Result<Client, reqwest::Error> {
        let builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy();
        let builder = if allow_internal {
            builder
        } else {
            builder.dns_resolver(Arc::new(PublicOnly))
        };
        Ok(Client {
            http: builder.build()?,
            allow_internal,
        })
    }

    pub async fn execute(&self, request: reqwest::Request) -> Result<reqwest::Response, EgressError> {
        if !self.allow_internal && internal_host(request.url()) {
            return Err(EgressError::Refused(
                request.url().host_str().unwrap_or_default().to_owned(),
            ));
        }
        Ok(self.http.execute(request).await?)
    }
}

/// Resolves names with the system resolver and keeps only the addresses
/// [`forbidden_ip`] allows; a name with none left does not resolve.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let allowed: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !forbidden_ip(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(format!("{host} resolves only to local, private or reserved addresses").into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// A host that is a local or private name or a forbidden literal address.
/// Other names are checked when they are resolved.
pub fn internal_host(url: &reqwest::Url) -> bool {
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
pub fn forbidden_ip(ip: IpAddr) -> bool {
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

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_outside_dev_mode() {
        let refused = PublicOnly.resolve("localhost".parse().unwrap()).await;
        assert!(refused.is_err(), "localhost resolved to a public address?");

        // End to end: the client refuses a loopback peer by local name or
        // literal address (never resolved, so checked before the request);
        // dev mode reaches it.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                // Read the request head, then answer.
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = socket
                    .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            }
        });
        let get = |url: String| reqwest::Request::new(reqwest::Method::GET, url.parse().unwrap());
        let guarded = Client::new(false).unwrap();
        for url in [
            format!("http://localhost:{port}/"),
            format!("http://127.0.0.1:{port}/"),
            format!("http://[::ffff:127.0.0.1]:{port}/"),
        ] {
            assert!(guarded.execute(get(url.clone())).await.is_err(), "{url}");
        }
        let dev = Client::new(true).unwrap();
        let answer = dev.execute(get(format!("http://127.0.0.1:{port}/"))).await.unwrap();
        assert_eq!(answer.status(), 204);
    }
}
