//! The instances on one database tell each other about frames and
//! sockets. A frame for a user goes out as a `NOTIFY` on one channel; each
//! instance listening delivers it to that user's sockets it holds. A
//! frame too large for a `NOTIFY` payload (8000 bytes) is stored in
//! `frames` and the payload names its row (by reference), fetched only by
//! an instance holding a socket of that user. Each instance renews its
//! row in `instances` while alive and records how many sockets of each
//! user it holds in `presence`, so any instance can ask whether a user is
//! connected anywhere; a dead instance's rows run out with it.
//!
//! Frames sent while the listening connection is down are lost to it:
//! when it is back, the instance closes its sockets (clients reconnect
//! and resynchronise from `ready`) rather than leave them behind.

use super::{PostgresStore, exec, ms, row};
use crate::store::StoreError;
use crate::user::UserId;
use chrono::Utc;
use futures::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

const CHANNEL: &str = "steward_frames";
/// The payload's first field when a new instance announces itself, and
/// when an instance found another one gone without leaving.
const HELLO: &str = "hello";
const GONE: &str = "gone";
/// Largest payload sent inline (PostgreSQL refuses 8000 bytes and more).
const INLINE_MAX: usize = 7900;
/// How often an instance renews its row, and how long the row lasts.
const HEARTBEAT: Duration = Duration::from_secs(2);
const INSTANCE_LEASE: Duration = Duration::from_secs(20);
/// Rows of instances gone this long are removed (with their presence);
/// stored frames are kept this long for instances to fetch.
const FORGET_AFTER: Duration = Duration::from_secs(120);
/// Frames and presence changes waiting to go out; past this they are
/// dropped (and logged): the sockets elsewhere resynchronise on reconnect.
const QUEUE: usize = 8192;

/// What arrives from the other instances.
#[derive(Debug)]
pub enum Remote {
    /// A frame for `user`'s sockets here; once written, the ids in `seen`
    /// (notifications) count as shown.
    Frame {
        user: UserId,
        body: Body,
        seen: Vec<String>,
    },
    /// The listening connection was lost and is back: frames may have
    /// been missed.
    Resync,
}

/// A frame's text, or the row it waits in.
#[derive(Debug)]
pub enum Body {
    Inline(Arc<str>),
    Stored(i64),
}

enum Out {
    Frame {
        user: UserId,
        text: Arc<str>,
        seen: Vec<String>,
    },
    Presence {
        user: UserId,
        sockets: usize,
    },
}

/// This instance's end of the bus. Cheap to share.
pub struct Bus {
    store: PostgresStore,
    instance: String,
    /// The listening connection's `application_name` (short: PostgreSQL
    /// keeps 63 bytes of it).
    app_name: String,
    out: mpsc::Sender<Out>,
    /// Live instances, this one included, as of the last heartbeat (or
    /// one more, when a new one said hello since).
    live: Arc<AtomicUsize>,
    /// The listening connection is up.
    listening: Arc<AtomicBool>,
}

impl PostgresStore {
    /// Joins the instances on this database as `instance`: registers it,
    /// starts listening, renewing and sending. Frames from the others
    /// arrive on the receiver. Stops when `stop` is cancelled.
    pub async fn join(
        &self,
        instance: &str,
        stop: CancellationToken,
    ) -> Result<(Arc<Bus>, mpsc::Receiver<Remote>), StoreError> {
        let (out, queue) = mpsc::channel(QUEUE);
        let bus = Arc::new(Bus {
            store: self.clone(),
            instance: instance.to_owned(),
            app_name: format!("steward:{:016x}", rand::random::<u64>()),
            out,
            live: Arc::new(AtomicUsize::new(1)),
            listening: Arc::default(),
        });
        let (tx, rx) = mpsc::channel(QUEUE);
        let (listening, ready) = tokio::sync::oneshot::channel();
        let mut config = self.inner.config.clone();
        config.application_name(&bus.app_name);
        let listener = Listener {
            config,
            tls: self.inner.tls.clone(),
            instance: bus.instance.clone(),
            live: bus.live.clone(),
            listening: bus.listening.clone(),
            tx,
        };
        tokio::spawn(listener.run(stop.clone(), listening));
        // Frames published from here on reach this instance. Registered
        // only now, so a row without its listening connection is a dead
        // instance's. The others start sending to it at once.
        let _ = ready.await;
        bus.heartbeat().await?;
        let client = self.client().await?;
        let hello = format!("{HELLO}\t{instance}");
        exec(&client, "SELECT pg_notify($1, $2)", &[&CHANNEL, &hello]).await?;
        tokio::spawn(bus.clone().send_loop(queue, stop.clone()));
        tokio::spawn(bus.clone().heartbeat_loop(stop));
        Ok((bus, rx))
    }
}

impl Bus {
    /// Live instances on the database, this one included.
    pub fn instances(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Whether frames from the other instances reach this one now.
    pub fn listening(&self) -> bool {
        self.listening.load(Ordering::Relaxed)
    }

    /// Sends a frame to `user`'s sockets on the other instances, in order
    /// with this instance's other frames; never waits.
    pub fn publish(&self, user: &UserId, text: Arc<str>, seen: Vec<String>) {
        if self.instances() <= 1 {
            return; // nobody else to tell
        }
        self.queue(Out::Frame {
            user: user.clone(),
            text,
            seen,
        });
    }

    /// This instance now holds `sockets` sockets of `user`.
    pub fn presence(&self, user: &UserId, sockets: usize) {
        self.queue(Out::Presence {
            user: user.clone(),
            sockets,
        });
    }

    fn queue(&self, item: Out) {
        if self.out.try_send(item).is_err() {
            tracing::error!("the bus to other instances is backed up; a frame or presence change was dropped");
        }
    }

    /// Whether another live instance holds a socket of `user`.
    pub async fn online_elsewhere(&self, user: &UserId) -> Result<bool, StoreError> {
        if self.instances() <= 1 {
            return Ok(false);
        }
        let client = self.store.client().await?;
        let found = row(
            &client,
            "SELECT 1 FROM presence p JOIN instances i ON i.id = p.instance
             WHERE p.user_id = $1 AND p.instance <> $2 AND i.until_ms > $3 LIMIT 1",
            &[&user.as_str(), &self.instance, &ms(Utc::now())],
        )
        .await?;
        Ok(found.is_some())
    }

    /// A stored frame's text and the notifications it shows; `None` once
    /// it was forgotten.
    pub async fn fetch(&self, id: i64) -> Result<Option<Arc<str>>, StoreError> {
        let client = self.store.client().await?;
        let found = row(&client, "SELECT body FROM frames WHERE id = $1", &[&id]).await?;
        Ok(found.map(|r| Arc::from(r.get::<_, String>(0))))
    }

    async fn heartbeat(&self) -> Result<(), StoreError> {
        let client = self.store.client().await?;
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(INSTANCE_LEASE).unwrap_or_default();
        let forget = now - chrono::Duration::from_std(FORGET_AFTER).unwrap_or_default();
        exec(
            &client,
            "INSERT INTO instances (id, app_name, until_ms) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET until_ms = $3",
            &[&self.instance, &self.app_name, &ms(until)],
        )
        .await?;
        exec(&client, "DELETE FROM instances WHERE until_ms < $1", &[&ms(forget)]).await?;
        self.bury_the_dead(&client).await?;
        exec(&client, "DELETE FROM frames WHERE at_ms < $1", &[&ms(forget)]).await?;
        let live = row(
            &client,
            "SELECT count(*) FROM instances WHERE until_ms > $1",
            &[&ms(now)],
        )
        .await?;
        let live: i64 = live.map_or(1, |r| r.get(0));
        self.live
            .store(usize::try_from(live).unwrap_or(1).max(1), Ordering::Relaxed);
        Ok(())
    }

    /// Instances whose listening connection is gone were killed (a clean
    /// stop removes its row): their leases are freed at once, so their
    /// work is taken over now rather than when the leases run out, and
    /// every instance is told, so sockets resynchronise (frames the dead
    /// one acknowledged may not have reached them).
    async fn bury_the_dead(&self, client: &deadpool_postgres::Object) -> Result<(), StoreError> {
        let dead = super::rows(
            client,
            "SELECT i.id FROM instances i WHERE i.id <> $1 AND NOT EXISTS
                 (SELECT 1 FROM pg_stat_activity a WHERE a.application_name = i.app_name)",
            &[&self.instance],
        )
        .await?;
        for row in dead {
            let id: String = row.get(0);
            let buried = exec(client, "DELETE FROM instances WHERE id = $1", &[&id]).await?;
            if buried == 0 {
                continue; // another instance got there first
            }
            let freed = exec(client, "DELETE FROM leases WHERE holder = $1", &[&id]).await?;
            tracing::warn!(instance = %id, leases = freed, "an instance stopped without leaving; its work is taken over");
            let gone = format!("{GONE}\t{id}");
            exec(client, "SELECT pg_notify($1, $2)", &[&CHANNEL, &gone]).await?;
        }
        Ok(())
    }

    async fn heartbeat_loop(self: Arc<Self>, stop: CancellationToken) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(HEARTBEAT) => {}
            }
            if let Err(e) = self.heartbeat().await {
                tracing::warn!(error = %e, "could not renew this instance's row");
            }
        }
        // Leaving: the others stop counting this instance at once.
        if let Ok(client) = self.store.client().await {
            let _ = exec(&client, "DELETE FROM instances WHERE id = $1", &[&self.instance]).await;
        }
    }

    async fn send_loop(self: Arc<Self>, mut queue: mpsc::Receiver<Out>, stop: CancellationToken) {
        loop {
            let item = tokio::select! {
                _ = stop.cancelled() => break,
                item = queue.recv() => match item {
                    Some(item) => item,
                    None => break,
                },
            };
            // One at a time, each committed before the next: the others
            // receive this instance's frames in the order they were sent.
            let mut tries = 0;
            while let Err(e) = self.send(&item).await {
                tries += 1;
                if tries >= 3 {
                    tracing::error!(error = %e, "could not tell the other instances; dropped");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50 * tries)).await;
            }
        }
    }

    async fn send(&self, item: &Out) -> Result<(), StoreError> {
        let client = self.store.client().await?;
        match item {
            Out::Frame { user, text, seen } => {
                let head = format!("{}\t{}\t{}", self.instance, user, seen.join(","));
                let inline = format!("{head}\t\n{text}");
                if inline.len() <= INLINE_MAX {
                    exec(&client, "SELECT pg_notify($1, $2)", &[&CHANNEL, &inline]).await?;
                } else {
                    exec(
                        &client,
                        "WITH f AS (INSERT INTO frames (at_ms, body) VALUES ($1, $2) RETURNING id)
                         SELECT pg_notify($3, $4 || '\t' || f.id) FROM f",
                        &[&ms(Utc::now()), &text.as_ref(), &CHANNEL, &head],
                    )
                    .await?;
                }
            }
            Out::Presence { user, sockets: 0 } => {
                exec(
                    &client,
                    "DELETE FROM presence WHERE user_id = $1 AND instance = $2",
                    &[&user.as_str(), &self.instance],
                )
                .await?;
            }
            Out::Presence { user, sockets } => {
                let sockets = i32::try_from(*sockets).unwrap_or(i32::MAX);
                exec(
                    &client,
                    "INSERT INTO presence (user_id, instance, sockets) VALUES ($1, $2, $3)
                     ON CONFLICT (user_id, instance) DO UPDATE SET sockets = $3",
                    &[&user.as_str(), &self.instance, &sockets],
                )
                .await?;
            }
        }
        Ok(())
    }
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
struct Listener {
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    instance: String,
    live: Arc<AtomicUsize>,
    listening: Arc<AtomicBool>,
    tx: mpsc::Sender<Remote>,
}

impl Listener {
    /// Says once, on `listening`, when it first listens.
    async fn run(self, stop: CancellationToken, listening: tokio::sync::oneshot::Sender<()>) {
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
            if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
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
    use crate::store::postgres::{PostgresOptions, cluster};

    async fn next(rx: &mut mpsc::Receiver<Remote>) -> Remote {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a frame within 10 s")
            .expect("the bus is open")
    }

    #[tokio::test]
    async fn frames_reach_the_other_instance_inline_or_by_reference_and_presence_is_shared() {
        let Some(db) = cluster::Database::fresh().await else {
            return;
        };
        let store = PostgresStore::connect(db.url(), &PostgresOptions::default())
            .await
            .unwrap();
        let stop = CancellationToken::new();
        let (a, mut from_a) = store.join("a", stop.clone()).await.unwrap();
        let (b, mut from_b) = store.join("b", stop.clone()).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), async {
            while a.instances() < 2 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the first instance heard the second's hello");
        let ana = UserId::parse("ana").unwrap();
        let big: String = format!("{{\"text\":\"{}\"}}", "x".repeat(20_000));
        a.publish(&ana, Arc::from("{\"type\":\"pong\"}"), vec!["n1".into()]);
        a.publish(&ana, Arc::from(big.as_str()), Vec::new());
        let Remote::Frame {
            user,
            body: Body::Inline(text),
            seen,
        } = next(&mut from_b).await
        else {
            panic!("expected the small frame inline");
        };
        assert_eq!(
            (user.as_str(), &*text, seen),
            ("ana", r#"{"type":"pong"}"#, vec!["n1".to_owned()])
        );
        let Remote::Frame {
            body: Body::Stored(id), ..
        } = next(&mut from_b).await
        else {
            panic!("expected the large frame by reference");
        };
        assert_eq!(b.fetch(id).await.unwrap().as_deref(), Some(big.as_str()));
        assert!(
            tokio::time::timeout(Duration::from_millis(300), from_a.recv())
                .await
                .is_err(),
            "an instance does not hear its own frames"
        );

        assert!(!a.online_elsewhere(&ana).await.unwrap());
        b.presence(&ana, 2);
        tokio::time::timeout(Duration::from_secs(10), async {
            while !a.online_elsewhere(&ana).await.unwrap() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the first instance sees ana's sockets on the second");
        assert!(
            !b.online_elsewhere(&ana).await.unwrap(),
            "its own sockets are not elsewhere"
        );
        b.presence(&ana, 0);
        tokio::time::timeout(Duration::from_secs(10), async {
            while a.online_elsewhere(&ana).await.unwrap() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("gone once the last socket closed");
        stop.cancel();
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
