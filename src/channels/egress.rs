//! Outbound HTTP to addresses users or deployments name (push services,
//! webhooks): which addresses the server may call, and a client that keeps
//! to them. Outside loopback dev mode only public unicast addresses are
//! called: a name is resolved by [`PublicOnly`], which drops local,
//! private and reserved addresses (so a name pointed at 127.0.0.1 or the
//! cloud metadata address is refused at connect time, whatever it resolved
//! to when it was registered), literal addresses are checked before each
//! request (they are never resolved), and proxies are off (a proxy would
//! resolve names itself).

use crate::net::{forbidden_ip, internal_host};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Why a request was not made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EgressError {
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
pub(crate) struct Client {
    http: reqwest::Client,
    allow_internal: bool,
}

impl Client {
    pub(crate) fn new(allow_internal: bool) -> Result<Client, reqwest::Error> {
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

    pub(crate) async fn execute(&self, request: reqwest::Request) -> Result<reqwest::Response, EgressError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
