//! The receiving end of the bus: one connection listening on the
//! deployment's channel, reconnecting when it drops.

use super::{Body, CHANNEL_PREFIX, GONE, HELLO, RESYNC, Remote};
use crate::user::UserId;
use futures::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

/// The channel of the deployment in `schema`: the schema's name, or a
/// hash of it where the name would pass PostgreSQL's 63-byte limit.
pub(super) fn channel_for(schema: &str) -> String {
    let channel = format!("{CHANNEL_PREFIX}{schema}");
    if channel.len() <= 63 {
        return channel;
    }
    use sha2::Digest;
    let hash = sha2::Sha256::digest(schema.as_bytes());
    let hex: String = hash[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("{CHANNEL_PREFIX}{hex}")
}

/// Reads a payload: `origin \t user \t seen,ids \t [stored id]` and, when
/// inline, a newline and the frame.
fn parse(payload: &str) -> Option<(&str, Remote)> {
    let (head, text) = match payload.split_once('\n') {
        Some((head, text)) => (head, Some(text)),
        None => (payload, None),
    };
    let mut fields = head.split('\t');
    let (origin, user, seen, stored) = (fields.next()?, fields.next()?, fields.next()?, fields.next()?);
    let user = UserId::parse(user).ok()?;
    let seen = seen.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect();
    let body = match text {
        Some(text) => Body::Inline(text.into()),
        None => Body::Stored(stored.parse().ok()?),
    };
    Some((origin, Remote::Frame { user, body, seen }))
}

/// Keeps a connection listening on the channel, reconnecting with a pause
/// when it drops, and forwards the other instances' frames.
pub(super) struct Listener {
    pub(super) config: tokio_postgres::Config,
    pub(super) tls: tokio_postgres_rustls::MakeRustlsConnect,
    pub(super) instance: String,
    pub(super) channel: String,
    pub(super) live: Arc<AtomicUsize>,
    pub(super) listening: Arc<AtomicBool>,
    pub(super) tx: mpsc::Sender<Remote>,
}

impl Listener {
    /// Says once, on `listening`, when it first listens.
    pub(super) async fn run(self, stop: CancellationToken, listening: tokio::sync::oneshot::Sender<()>) {
        let mut listening = Some(listening);
        let mut pause = Duration::from_millis(100);
        loop {
            let connected = tokio::select! {
                _ = stop.cancelled() => return,
                c = self.config.connect(self.tls.clone()) => c,
            };
            let (client, mut connection) = match connected {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "the bus could not connect; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            let (msgs_tx, mut msgs) = mpsc::unbounded_channel();
            let reader = tokio::spawn(async move {
                let mut stream = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                while let Some(Ok(message)) = stream.next().await {
                    if let AsyncMessage::Notification(n) = message
                        && msgs_tx.send(n).is_err()
                    {
                        break;
                    }
                }
            });
            let listen = format!("LISTEN \"{}\"", self.channel.replace('"', "\"\""));
            if let Err(e) = client.batch_execute(&listen).await {
                tracing::warn!(error = %e, "the bus could not listen; trying again");
                reader.abort();
                tokio::time::sleep(pause).await;
                continue;
            }
            pause = Duration::from_millis(100);
            self.listening.store(true, Ordering::Relaxed);
            match listening.take() {
                Some(first) => {
                    let _ = first.send(());
                }
                None => {
                    tracing::warn!("the bus is listening again; sockets here resynchronise");
                    let _ = self.tx.send(Remote::Resync).await;
                }
            }
            loop {
                let n = tokio::select! {
                    _ = stop.cancelled() => return,
                    n = msgs.recv() => n,
                };
                let Some(n) = n else { break };
                self.receive(n.payload());
            }
            self.listening.store(false, Ordering::Relaxed);
            tracing::warn!("the bus connection dropped; reconnecting");
            drop(client);
        }
    }

    fn receive(&self, payload: &str) {
        if let Some(user) = payload.strip_prefix(RESYNC).and_then(|p| p.strip_prefix('\t')) {
            let remote = match UserId::parse(user) {
                Ok(user) => Remote::ResyncUser(user),
                Err(_) => Remote::Resync,
            };
            if self.tx.try_send(remote).is_err() {
                tracing::error!("could not ask sockets here to resynchronise");
            }
            return;
        }
        if let Some(dead) = payload.strip_prefix(GONE).and_then(|p| p.strip_prefix('\t')) {
            tracing::warn!(instance = dead, "an instance died; sockets here resynchronise");
            if self.tx.try_send(Remote::Resync).is_err() {
                tracing::error!("could not ask the sockets here to resynchronise");
            }
            return;
        }
        if let Some(other) = payload.strip_prefix(HELLO).and_then(|p| p.strip_prefix('\t')) {
            if other != self.instance {
                tracing::info!(instance = other, "another instance joined");
                self.live.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        match parse(payload) {
            Some((origin, _)) if origin == self.instance => {}
            Some((_, remote)) => {
                if self.tx.try_send(remote).is_err() {
                    tracing::error!("frames from other instances are backed up; one was dropped");
                }
            }
            None => tracing::warn!(payload_len = payload.len(), "an unreadable frame on the bus"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_read_back_inline_or_by_reference() {
        let Some((origin, Remote::Frame { user, body, seen })) = parse("i1\tana\tn1,n2\t\n{\"type\":\"pong\"}") else {
            panic!("inline payload not read");
        };
        assert_eq!(
            (origin, user.as_str(), seen),
            ("i1", "ana", vec!["n1".into(), "n2".into()])
        );
        assert!(matches!(body, Body::Inline(t) if &*t == r#"{"type":"pong"}"#));
        let Some((_, Remote::Frame { body, seen, .. })) = parse("i1\tana\t\t42") else {
            panic!("reference not read");
        };
        assert!(seen.is_empty());
        assert!(matches!(body, Body::Stored(42)));
        assert!(parse("i1\tnot a user\t\t1").is_none());
        assert!(parse("garbage").is_none());
    }
}
