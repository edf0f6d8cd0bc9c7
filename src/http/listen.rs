//! The accept loop. Every TCP connection holds one of
//! `limits.max_connections` slots until it closes, a websocket keeping the
//! slot of the connection it was upgraded from; at the cap, new connections
//! wait in the listen queue. A request's head must arrive within
//! `limits.read_timeout_secs` of the connection opening or of its previous
//! answer, so silent and idle connections give their slot back. Accept
//! errors (out of file descriptors) back off for a second instead of
//! spinning.

use crate::metrics::Metrics;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Service;

/// How long open HTTP requests may take to finish once the server stops.
const DRAIN: Duration = Duration::from_secs(10);

/// A connection's slot among `limits.max_connections`, in each request's
/// extensions: the websocket upgrade keeps a clone for the socket's life.
#[derive(Clone)]
pub(crate) struct Slot {
    _held: Arc<Held>,
}

/// The permit and the gauge of open connections, both given back on drop.
struct Held {
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.metrics.http_connections.dec();
    }
}

pub(crate) struct Listen {
    pub max_connections: usize,
    pub read_timeout: Duration,
    pub metrics: Arc<Metrics>,
}

/// Accepts until `stop` resolves, then lets open requests finish (for at
/// most `DRAIN`). Upgraded websockets are not waited for: they close with
/// the app.
pub(crate) async fn accept_loop(listen: Listen, router: Router, listener: TcpListener, stop: impl Future<Output = ()>) {
    let slots = Arc::new(Semaphore::new(listen.max_connections));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(listen.read_timeout);
    let draining = CancellationToken::new();
    let connections = TaskTracker::new();
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = &mut stop => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    on_accept_error(e).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        // Frames go out when written: without TCP_NODELAY the second small
        // frame of an answer waits for the client's delayed ACK (~40 ms).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        listen.metrics.http_connections.inc();
        let slot = Slot {
            _held: Arc::new(Held {
                _permit: permit,
                metrics: listen.metrics.clone(),
            }),
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: axum::http::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(slot.clone());
            router.clone().call(request)
        });
        let connection = http.serve_connection(TokioIo::new(tcp), service).with_upgrades();
        let draining = draining.clone();
        connections.spawn(async move {
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = draining.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, %peer, "connection ended");
            }
        });
    }
    drop(listener);
    draining.cancel();
    connections.close();
    if tokio::time::timeout(DRAIN, connections.wait()).await.is_err() {
        tracing::warn!(
            open = connections.len(),
            "requests still open after {DRAIN:?}; stopping anyway"
        );
    }
}

/// Resets and aborts are the client's business; anything else (EMFILE:
/// the process is out of file descriptors) waits a second for some to
/// close rather than spinning on the error.
async fn on_accept_error(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Raises this process's soft limit on open files to its hard limit, and
/// warns when that still cannot hold `max_connections` (each connection is
/// a file, and the store needs some).
pub(crate) fn raise_file_limit(max_connections: usize) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::debug!(error = %e, "could not raise the open files limit");
        }
    }
    let files = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    let needed = max_connections as u64 + 256;
    if files < needed {
        tracing::warn!(
            open_files_limit = files,
            max_connections,
            "the open files limit cannot hold limits.max_connections; lower it or raise `ulimit -n` to {needed}"
        );
    }
}
