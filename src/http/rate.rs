//! Request rates: per client address on everything that does work
//! (`/api`, `/ws`, `/act`, `/admin`), and per user on REST. Both are token
//! buckets in the store, so they hold across reconnects and instances.

use super::error::ApiError;
use crate::app::App;
use crate::user::UserId;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};

/// Paths whose requests count against the address's budget; the widget's
/// files and the probes do not.
const LIMITED: [&str; 4] = ["/api/", "/ws", "/act/", "/admin/"];

/// The client's address: the connection's, or, when the connection comes
/// from a trusted proxy, the last address in `X-Forwarded-For` that is not
/// itself a trusted proxy (the ones before it could be written by anyone).
pub(crate) fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// The bucket of an address; IPv6 by its /64, which one client holds whole.
fn bucket(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let s = v6.segments();
                format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Refuses with 429 (and `Retry-After`) a request past its address's budget.
pub(crate) async fn per_address(State(app): State<App>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if !LIMITED.iter().any(|p| path.starts_with(p)) {
        return next.run(request).await;
    }
    let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>().copied() else {
        return next.run(request).await;
    };
    let ip = client_address(peer.ip(), request.headers(), &app.config.trusted_proxies);
    let per_minute = app.config.limits.requests_per_minute_per_ip;
    match app.store.take_token(&bucket(ip), per_minute, app.now()).await {
        Ok(Ok(())) => next.run(request).await,
        Ok(Err(wait)) => {
            tracing::info!(client = %ip, "request refused: address over its rate");
            too_many(wait).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Takes one of `user`'s REST requests.
pub(crate) async fn per_user(app: &App, user: &UserId) -> Result<(), ApiError> {
    let per_minute = app.config.limits.requests_per_minute;
    match app
        .store
        .take_token(&format!("rest:{user}"), per_minute, app.now())
        .await?
    {
        Ok(()) => Ok(()),
        Err(wait) => Err(too_many(wait)),
    }
}

fn too_many(wait: std::time::Duration) -> ApiError {
    ApiError::too_many(
        "rate_limited",
        format!("too many requests; try again in {} s", wait.as_secs().max(1)),
        wait,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies_and_only_up_to_the_first_untrusted_hop() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // A client speaking directly cannot pick its address.
        assert_eq!(
            client_address(ip("203.0.113.9"), &headers(&["1.2.3.4"]), &trusted),
            ip("203.0.113.9")
        );
        // Through the proxy: the address the proxy saw, not what the client wrote before it.
        let h = headers(&["1.2.3.4, 198.51.100.7"]);
        assert_eq!(client_address(ip("10.0.0.2"), &h, &trusted), ip("198.51.100.7"));
        // Two trusted hops, across two header lines.
        let h = headers(&["1.2.3.4, 198.51.100.7", "10.0.0.3"]);
        assert_eq!(client_address(ip("10.0.0.2"), &h, &trusted), ip("198.51.100.7"));
        // A proxy that sent no header, or garbage: the last address known.
        assert_eq!(client_address(ip("10.0.0.2"), &headers(&[]), &trusted), ip("10.0.0.2"));
        assert_eq!(
            client_address(ip("10.0.0.2"), &headers(&["junk"]), &trusted),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_slash_64() {
        let a = bucket("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = bucket("2001:db8:1:2:bbbb::9".parse().unwrap());
        assert_eq!(a, b);
        assert_eq!(a, "ip:2001:db8:1:2::/64");
        assert_eq!(bucket("::ffff:192.0.2.1".parse().unwrap()), "ip:192.0.2.1");
    }
}
