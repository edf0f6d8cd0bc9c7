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

    /// One notification: another instance's frame for a user here, a
    /// request to resynchronise, or a hello.
    fn receive(&self, payload: &str) {
        let (kind, rest) = payload.split_once('\t').unwrap_or((payload, ""));
        let remote = match kind {
            RESYNC => Some(UserId::parse(rest).map_or(Remote::Resync, Remote::ResyncUser)),
            GONE => {
                tracing::warn!(instance = rest, "an instance died; sockets here resynchronise");
                Some(Remote::Resync)
            }
            HELLO => {
                if rest != self.instance {
                    tracing::info!(instance = rest, "another instance joined");
                    self.live.fetch_add(1, Ordering::Relaxed);
                }
                None
            }
            origin if origin == self.instance => None,
            _ => match parse(payload) {
                Some((_, remote)) => Some(remote),
                None => {
                    tracing::warn!(payload_len = payload.len(), "an unreadable frame on the bus");
                    None
                }
            },
        };
        if let Some(remote) = remote
            && self.tx.try_send(remote).is_err()
        {
            tracing::error!("messages from other instances are backed up; one was dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_notification_reaches_the_sockets_here_as_it_should() {
        let (tx, mut rx) = mpsc::channel(8);
        let listener = Listener {
            config: tokio_postgres::Config::new(),
            tls: crate::store::postgres::tls::connector(None).unwrap(),
            instance: "me".into(),
            channel: channel_for("public"),
            live: Arc::new(AtomicUsize::new(1)),
            listening: Arc::default(),
            tx,
        };
        listener.receive("hello\tme");
        listener.receive("hello\tother");
        assert_eq!(listener.live.load(Ordering::Relaxed), 2, "only another's hello counts");
        listener.receive("me\tana\t\t\n{}");
        assert!(
            rx.try_recv().is_err(),
            "an instance's own frames are not relayed back to it"
        );
        listener.receive("other\tana\t\t\n{}");
        assert!(matches!(rx.try_recv(), Ok(Remote::Frame { user, .. }) if user.as_str() == "ana"));
        listener.receive("gone\tother");
        assert!(matches!(rx.try_recv(), Ok(Remote::Resync)));
        listener.receive("resync\tana");
        assert!(matches!(rx.try_recv(), Ok(Remote::ResyncUser(u)) if u.as_str() == "ana"));
        listener.receive("resync\t*");
        assert!(matches!(rx.try_recv(), Ok(Remote::Resync)));
        listener.receive("garbage");
        assert!(rx.try_recv().is_err());
        assert!(
            channel_for(&"s".repeat(80)).len() <= 63,
            "a long schema's channel is hashed"
        );
    }

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
