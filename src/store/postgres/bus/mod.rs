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

mod listen;

use self::listen::{Listener, channel_for};
use super::{PostgresStore, exec, ms, row};
use crate::store::StoreError;
use crate::user::UserId;
use chrono::Utc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The channel's name is this prefix and the schema: deployments in
/// different schemas of one database never hear each other.
const CHANNEL_PREFIX: &str = "steward:";
/// The payload's first field when a new instance announces itself, and
/// when an instance found another one gone without leaving.
const HELLO: &str = "hello";
const GONE: &str = "gone";
/// The first field when frames for a user (or `*`, everyone) could not be
/// sent: that user's sockets elsewhere resynchronise.
const RESYNC: &str = "resync";
/// Queued items sent per round trip.
const SEND_BATCH: usize = 128;
/// Largest payload sent inline (PostgreSQL refuses 8000 bytes and more).
const INLINE_MAX: usize = 7900;
/// How often an instance renews its row, and how long the row lasts.
const HEARTBEAT: Duration = Duration::from_secs(2);
const INSTANCE_LEASE: Duration = Duration::from_secs(20);
/// The longest a new instance waits for its listening connection.
const JOIN_WAIT: Duration = Duration::from_secs(30);
/// Rows of instances gone this long are removed (with their presence);
/// stored frames are kept this long for instances to fetch.
const FORGET_AFTER: Duration = Duration::from_secs(120);
/// Frames and presence changes waiting to go out; past this they are
/// dropped (and logged), and the other instances are told to
/// resynchronise the sockets of the users whose frames were dropped.
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
    /// The listening connection was lost and is back, or an instance
    /// died: frames may have been missed by every socket here.
    Resync,
    /// Frames for this user were dropped on their way here.
    ResyncUser(UserId),
}

/// A frame's text, or the row it waits in.
#[derive(Debug)]
pub enum Body {
    Inline(Arc<str>),
    Stored(i64),
}

/// Users whose frames could not be queued: the other instances are told
/// to resynchronise those users' sockets (everyone's, past a bound).
#[derive(Default)]
struct Dropped(std::sync::Mutex<DroppedUsers>);

#[derive(Default)]
struct DroppedUsers {
    users: std::collections::HashSet<UserId>,
    everyone: bool,
}

/// Users named one by one at most; past this, everyone resynchronises.
const DROPPED_MAX: usize = 4096;

impl Dropped {
    fn add(&self, user: UserId) {
        let mut d = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if !d.everyone {
            d.users.insert(user);
            if d.users.len() > DROPPED_MAX {
                d.users.clear();
                d.everyone = true;
            }
        }
    }

    /// The notices for the frames dropped since the last call.
    fn notices(&self) -> Vec<String> {
        let d = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        if d.everyone {
            return vec![format!("{RESYNC}\t*")];
        }
        d.users.into_iter().map(|u| format!("{RESYNC}\t{u}")).collect()
    }
}

/// One round trip of the send loop.
enum Step {
    Notify(Vec<String>),
    One(Out),
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
    channel: String,
    /// Tells this instance's own sockets to resynchronise (its row was
    /// found gone: others took it for dead).
    local: mpsc::Sender<Remote>,
    /// Set once this instance left: the heartbeat no longer renews it.
    left: AtomicBool,
    /// Set by the first heartbeat, which inserts this instance's row.
    registered: AtomicBool,
    /// Users whose frames could not be queued (the queue was full).
    dropped: Dropped,
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
        let (tx, rx) = mpsc::channel(QUEUE);
        let client = self.client().await?;
        let schema: String = row(&client, "SELECT current_schema()", &[])
            .await?
            .map(|r| r.get(0))
            .unwrap_or_default();
        drop(client);
        let bus = Arc::new(Bus {
            store: self.clone(),
            instance: instance.to_owned(),
            channel: channel_for(&schema),
            local: tx.clone(),
            left: AtomicBool::new(false),
            registered: AtomicBool::new(false),
            dropped: Dropped::default(),
            app_name: format!("steward:{:016x}", rand::random::<u64>()),
            out,
            live: Arc::new(AtomicUsize::new(1)),
            listening: Arc::default(),
        });
        let (listening, ready) = tokio::sync::oneshot::channel();
        let mut config = self.inner.config.clone();
        config.application_name(&bus.app_name);
        let listener = Listener {
            config,
            tls: self.inner.tls.clone(),
            instance: bus.instance.clone(),
            channel: bus.channel.clone(),
            live: bus.live.clone(),
            listening: bus.listening.clone(),
            tx,
        };
        // The bus's tasks stop with `stop`, or when joining fails.
        let stop = stop.child_token();
        tokio::spawn(listener.run(stop.clone(), listening));
        // Frames published from here on reach this instance. Registered
        // only now, so a row without its listening connection is a dead
        // instance's. The others start sending to it at once.
        let joined = async {
            tokio::time::timeout(JOIN_WAIT, ready)
                .await
                .map_err(|_| StoreError::Backend("the bus could not listen on the database".into()))?
                .map_err(|_| StoreError::Backend("the bus stopped before listening".into()))?;
            bus.heartbeat().await?;
            let client = self.client().await?;
            let hello = format!("{HELLO}\t{instance}");
            exec(&client, "SELECT pg_notify($1, $2)", &[&bus.channel, &hello]).await?;
            Ok::<_, StoreError>(())
        };
        if let Err(e) = joined.await {
            stop.cancel();
            return Err(e);
        }
        tokio::spawn(bus.clone().send_loop(queue, stop.clone()));
        tokio::spawn(bus.clone().heartbeat_loop(stop));
        Ok((bus, rx))
    }
}

impl Bus {
    /// Leaves the instances on the database: the others stop counting
    /// this one at once, and do not take it for dead when its listening
    /// connection closes.
    pub async fn leave(&self) {
        self.left.store(true, Ordering::SeqCst);
        let left = async {
            let client = self.store.client().await?;
            exec(&client, "DELETE FROM instances WHERE id = $1", &[&self.instance]).await?;
            Ok::<_, StoreError>(())
        };
        if let Err(e) = left.await {
            tracing::warn!(error = %e, "could not leave the instances on the database");
        }
    }

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
        let Err(e) = self.out.try_send(item) else { return };
        tracing::error!("the bus to other instances is backed up; a frame or presence change was dropped");
        if let Out::Frame { user, .. } = e.into_inner() {
            self.dropped.add(user);
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

    /// A stored frame's text; `None` once it was forgotten.
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
        if self.left.load(Ordering::SeqCst) {
            return Ok(());
        }
        let first = !self.registered.swap(true, Ordering::SeqCst);
        let inserted: bool = row(
            &client,
            "INSERT INTO instances (id, app_name, until_ms) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET until_ms = $3
             RETURNING (xmax = 0)",
            &[&self.instance, &self.app_name, &ms(until)],
        )
        .await?
        .is_some_and(|r| r.get(0));
        if inserted && !first {
            // Another instance took this one for dead (it freed its leases
            // and dropped its presence): the sockets here reconnect, which
            // records them again.
            tracing::error!("this instance was taken for dead by another; its sockets resynchronise");
            let _ = self.local.try_send(Remote::Resync);
        }
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
        // Dead: no listening connection, and no renewal for a heartbeat
        // and a half (a live instance whose listener is reconnecting still
        // renews its row).
        let lapsed = Utc::now() + chrono::Duration::from_std(INSTANCE_LEASE - HEARTBEAT * 3 / 2).unwrap_or_default();
        let dead = super::rows(
            client,
            "SELECT i.id FROM instances i WHERE i.id <> $1 AND i.until_ms < $2 AND NOT EXISTS
                 (SELECT 1 FROM pg_stat_activity a WHERE a.application_name = i.app_name)",
            &[&self.instance, &ms(lapsed)],
        )
        .await?;
        for row in dead {
            let id: String = row.get(0);
            let buried = exec(client, "DELETE FROM instances WHERE id = $1", &[&id]).await?;
            if buried == 0 {
                continue; // another instance got there first
            }
            // Its own leases and its guards' (`instance/n`).
            let freed = exec(
                client,
                "DELETE FROM leases WHERE holder = $1 OR left(holder, length($1) + 1) = $1 || '/'",
                &[&id],
            )
            .await?;
            tracing::warn!(instance = %id, leases = freed, "an instance stopped without leaving; its work is taken over");
            let gone = format!("{GONE}\t{id}");
            exec(client, "SELECT pg_notify($1, $2)", &[&self.channel, &gone]).await?;
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
        if !self.left.load(Ordering::SeqCst) {
            self.leave().await;
        }
    }

    async fn send_loop(self: Arc<Self>, mut queue: mpsc::Receiver<Out>, stop: CancellationToken) {
        let mut batch = Vec::with_capacity(SEND_BATCH);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                n = queue.recv_many(&mut batch, SEND_BATCH) => if n == 0 { break },
            }
            // In order, each round trip committed before the next: the
            // others receive this instance's frames in the order sent.
            // Consecutive small frames go out in one statement.
            let mut inline = self.dropped.notices();
            for item in batch.drain(..) {
                match self.inline(&item) {
                    Some(payload) => inline.push(payload),
                    None => {
                        self.retried(Step::Notify(std::mem::take(&mut inline))).await;
                        self.retried(Step::One(item)).await;
                    }
                }
            }
            self.retried(Step::Notify(inline)).await;
        }
    }

    /// A frame's payload when it fits a notification.
    fn inline(&self, item: &Out) -> Option<String> {
        let Out::Frame { user, text, seen } = item else {
            return None;
        };
        let payload = format!("{}\t{}\t{}\t\n{text}", self.instance, user, seen.join(","));
        (payload.len() <= INLINE_MAX).then_some(payload)
    }

    /// Runs a step, trying it three times before dropping it (logged).
    async fn retried(&self, step: Step) {
        if matches!(&step, Step::Notify(list) if list.is_empty()) {
            return;
        }
        let mut tries = 0;
        loop {
            let done = match &step {
                Step::Notify(payloads) => self.notify_all(payloads).await,
                Step::One(item) => self.send(item).await,
            };
            let Err(e) = done else { return };
            tries += 1;
            if tries >= 3 {
                tracing::error!(error = %e, "could not tell the other instances; dropped");
                return;
            }
            tokio::time::sleep(Duration::from_millis(50 * tries)).await;
        }
    }

    /// Sends payloads as notifications, in order, in one statement.
    async fn notify_all(&self, payloads: &[String]) -> Result<(), StoreError> {
        let client = self.store.client().await?;
        exec(
            &client,
            "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p",
            &[&self.channel, &payloads],
        )
        .await?;
        Ok(())
    }

    /// Sends a frame by reference, or records a presence change.
    async fn send(&self, item: &Out) -> Result<(), StoreError> {
        let client = self.store.client().await?;
        match item {
            Out::Frame { user, text, seen } => {
                let head = format!("{}\t{}\t{}", self.instance, user, seen.join(","));
                exec(
                    &client,
                    "WITH f AS (INSERT INTO frames (at_ms, body) VALUES ($1, $2) RETURNING id)
                     SELECT pg_notify($3, $4 || '\t' || f.id) FROM f",
                    &[&ms(Utc::now()), &text.as_ref(), &self.channel, &head],
                )
                .await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_frames_ask_for_their_users_resync_and_past_the_bound_everyones() {
        let dropped = Dropped::default();
        assert!(dropped.notices().is_empty());
        dropped.add(UserId::parse("ana").unwrap());
        dropped.add(UserId::parse("ana").unwrap());
        assert_eq!(dropped.notices(), ["resync\tana"]);
        assert!(dropped.notices().is_empty(), "each drop is told once");
        for n in 0..=DROPPED_MAX {
            dropped.add(UserId::parse(&format!("u{n}")).unwrap());
        }
        assert_eq!(dropped.notices(), ["resync\t*"]);
    }
    use crate::store::postgres::cluster;

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
        let store = db.store().await;
        let stop = CancellationToken::new();
        let (a, mut from_a) = store.join("a", stop.clone()).await.unwrap();
        let stop_b = CancellationToken::new();
        let (b, mut from_b) = store.join("b", stop_b.clone()).await.unwrap();
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
        // A clean stop leaves: the other one counts one instance again,
        // and does not take the leaver for dead (no resynchronising).
        b.leave().await;
        stop_b.cancel();
        tokio::time::timeout(Duration::from_secs(10), async {
            while a.instances() > 1 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("the leaver is no longer counted");
        tokio::time::sleep(HEARTBEAT * 2).await;
        assert!(from_a.try_recv().is_err(), "nothing asked the sockets to resynchronise");
        stop.cancel();
    }
}
