//! Who is connected. The hub keeps each user's open sockets (so a plan
//! change reaches all of them and nobody else) and the per-user turn lock (a
//! user's turns run one at a time, in arrival order). Every queue is bounded: a socket whose queue is full is
//! a slow consumer and gets closed; it resynchronises from `ready`.

use crate::events::{Event, Publisher, Written};
use crate::protocol::ServerFrame;
use crate::store::postgres::Bus;
use crate::user::UserId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What a connection's writer task sends.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A serialized frame, shared between all of a user's sockets; with a
    /// receipt, the writer reports when it has written it.
    Frame {
        text: Arc<str>,
        receipt: Option<Receipt>,
    },
    Close {
        code: u16,
        reason: &'static str,
    },
}

impl Outbound {
    pub(crate) fn frame(text: Arc<str>) -> Outbound {
        Outbound::Frame { text, receipt: None }
    }

    /// A frame whose writing the caller waits for.
    pub(crate) fn tracked(frame: &ServerFrame) -> (Outbound, Delivery) {
        let (receipt, delivery) = Delivery::new();
        let item = Outbound::Frame {
            text: frame.to_json().into(),
            receipt: Some(receipt),
        };
        (item, delivery)
    }
}

/// Travels with every queued copy of a tracked frame. The writer calls
/// `Receipt::written` once its copy is on the socket; a copy dropped
/// unwritten (the socket closed, its queue was discarded) drops its receipt.
#[derive(Debug, Clone)]
pub struct Receipt(mpsc::Sender<()>);

impl Receipt {
    pub(crate) fn written(&self) {
        // Capacity one: the first written copy is all the waiting side needs.
        let _ = self.0.try_send(());
    }
}

/// The waiting side of a tracked frame.
#[derive(Debug)]
pub(crate) struct Delivery(mpsc::Receiver<()>);

impl Delivery {
    fn new() -> (Receipt, Delivery) {
        let (tx, rx) = mpsc::channel(1);
        (Receipt(tx), Delivery(rx))
    }

    /// True once some socket has written the frame; false once every copy
    /// was dropped unwritten. Resolves when the last copy is written or
    /// dropped, so within a writer's write timeout.
    pub(crate) async fn written(mut self) -> bool {
        self.0.recv().await.is_some()
    }
}

/// What a user's turns share, behind the lock that runs them one at a
/// time: lives while a socket of the user's is open or a turn runs.
#[derive(Debug, Default)]
pub(crate) struct TurnState {
    /// The (id, text) of the user's latest messages, oldest first; `None`
    /// until read from the stored transcript.
    pub(crate) recent: Option<std::collections::VecDeque<(String, String)>>,
}

pub(crate) type TurnLock = tokio::sync::Mutex<TurnState>;

#[derive(Debug, Clone, Copy)]
pub(crate) struct HubLimits {
    pub(crate) connections_per_user: usize,
    pub(crate) max_connections: usize,
    pub(crate) outbound_queue: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    #[error("too many open connections for this user")]
    TooManyForUser,
    #[error("the server has too many open connections")]
    TooManyTotal,
}

#[derive(Clone)]
pub struct Hub {
    inner: Arc<Mutex<Inner>>,
    limits: HubLimits,
    /// The other instances on a shared database: they get every frame, and
    /// hear how many sockets of each user this one holds.
    bus: Arc<std::sync::OnceLock<Arc<Bus>>>,
}

struct Inner {
    users: HashMap<UserId, UserEntry>,
    /// Turn locks outlive connections while a turn still runs, so a user who
    /// reconnects mid-turn still waits for it.
    turn_locks: HashMap<UserId, Weak<TurnLock>>,
    total: usize,
    next_id: u64,
}

struct UserEntry {
    conns: Vec<Conn>,
}

struct Conn {
    id: u64,
    tx: mpsc::Sender<Outbound>,
    closed: CancellationToken,
}

/// A registered socket. Dropping it unregisters the socket.
pub struct Connection {
    hub: Hub,
    pub(crate) user: UserId,
    pub(crate) id: u64,
    pub(crate) tx: mpsc::Sender<Outbound>,
    pub rx: Option<mpsc::Receiver<Outbound>>,
    /// Cancelled when the hub drops this socket as a slow consumer.
    pub(crate) closed: CancellationToken,
}

impl Drop for Connection {
    fn drop(&mut self) {
        let mut inner = self.hub.lock();
        let mut removed = false;
        let mut left = 0;
        if let Some(entry) = inner.users.get_mut(&self.user) {
            let before = entry.conns.len();
            entry.conns.retain(|c| c.id != self.id);
            removed = entry.conns.len() != before;
            left = entry.conns.len();
            if entry.conns.is_empty() {
                inner.users.remove(&self.user);
            }
        }
        if removed {
            inner.total -= 1;
            self.hub.tell_presence(&self.user, left);
        }
    }
}

impl Connection {
    pub(crate) fn outlet(&self) -> Outlet {
        Outlet {
            tx: self.tx.clone(),
            closed: self.closed.clone(),
        }
    }
}

/// Sends frames to one socket. Cheap to clone; a full queue closes the
/// socket (slow consumer) instead of blocking the sender.
#[derive(Clone)]
pub(crate) struct Outlet {
    tx: mpsc::Sender<Outbound>,
    closed: CancellationToken,
}

impl Outlet {
    pub(crate) fn send(&self, frame: &ServerFrame) {
        self.send_raw(Outbound::frame(frame.to_json().into()));
    }

    pub(crate) fn send_raw(&self, item: Outbound) {
        if self.tx.try_send(item).is_err() {
            self.closed.cancel();
        }
    }
}

impl Hub {
    pub(crate) fn new(limits: HubLimits) -> Hub {
        Hub {
            inner: Arc::new(Mutex::new(Inner {
                users: HashMap::new(),
                turn_locks: HashMap::new(),
                total: 0,
                next_id: 1,
            })),
            limits,
            bus: Arc::default(),
        }
    }

    /// Connects this hub to the other instances on a shared database.
    pub(crate) fn attach(&self, bus: Arc<Bus>) {
        let _ = self.bus.set(bus);
    }

    /// The bus to the other instances, once attached.
    pub(crate) fn bus(&self) -> Option<&Arc<Bus>> {
        self.bus.get()
    }

    /// Closes every socket here (frames may have been missed: clients
    /// reconnect and resynchronise from `ready`).
    pub(crate) fn close_all(&self) {
        for entry in self.lock().users.values() {
            for conn in &entry.conns {
                conn.closed.cancel();
            }
        }
    }

    /// Closes the sockets of `user` here (frames for them were lost).
    pub(crate) fn close_user(&self, user: &UserId) {
        if let Some(entry) = self.lock().users.get(user) {
            for conn in &entry.conns {
                conn.closed.cancel();
            }
        }
    }

    /// Tells the other instances how many sockets of `user` this one holds.
    fn tell_presence(&self, user: &UserId, sockets: usize) {
        if let Some(bus) = self.bus.get() {
            bus.presence(user, sockets);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves plain maps behind, still
        // consistent enough to keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Frames waiting in the writers' queues of every socket here, and in
    /// the fullest one (`/metrics`).
    pub(crate) fn queued_frames(&self) -> (usize, usize) {
        let inner = self.lock();
        let waiting = inner
            .users
            .values()
            .flat_map(|u| &u.conns)
            .map(|c| c.tx.max_capacity() - c.tx.capacity());
        waiting.fold((0, 0), |(sum, most), n| (sum + n, most.max(n)))
    }

    pub fn register(&self, user: &UserId) -> Result<Connection, HubError> {
        let mut inner = self.lock();
        if inner.total >= self.limits.max_connections {
            return Err(HubError::TooManyTotal);
        }
        let entry = inner
            .users
            .entry(user.clone())
            .or_insert_with(|| UserEntry { conns: Vec::new() });
        if entry.conns.len() >= self.limits.connections_per_user {
            if entry.conns.is_empty() {
                inner.users.remove(user);
            }
            return Err(HubError::TooManyForUser);
        }
        let (tx, rx) = mpsc::channel(self.limits.outbound_queue);
        let closed = CancellationToken::new();
        let id = inner.next_id;
        inner.next_id += 1;
        let mut sockets = 0;
        if let Some(entry) = inner.users.get_mut(user) {
            entry.conns.push(Conn {
                id,
                tx: tx.clone(),
                closed: closed.clone(),
            });
            sockets = entry.conns.len();
        }
        inner.total += 1;
        // Under the lock, so the counts go out in the order they changed.
        self.tell_presence(user, sockets);
        Ok(Connection {
            hub: self.clone(),
            user: user.clone(),
            id,
            tx,
            rx: Some(rx),
            closed,
        })
    }

    /// Queues a serialized frame on every open socket of `user` here, and
    /// nobody else's; returns how many took it (0: nobody is connected, or
    /// every socket was full and is closing). Queued is not shown: see
    /// [`Hub::send_text_tracked`].
    pub(crate) fn send_text(&self, user: &UserId, text: Arc<str>) -> usize {
        self.queue(user, text, None)
    }

    /// Like [`Hub::send_text`], and tells when a socket has actually
    /// written the frame; `None` if no socket took it.
    pub(crate) fn send_text_tracked(&self, user: &UserId, text: Arc<str>) -> Option<Delivery> {
        let (receipt, delivery) = Delivery::new();
        (self.queue(user, text, Some(receipt)) > 0).then_some(delivery)
    }

    fn queue(&self, user: &UserId, text: Arc<str>, receipt: Option<Receipt>) -> usize {
        let inner = self.lock();
        let Some(entry) = inner.users.get(user) else { return 0 };
        let mut queued = 0;
        for conn in &entry.conns {
            let item = Outbound::Frame {
                text: text.clone(),
                receipt: receipt.clone(),
            };
            if conn.tx.try_send(item).is_err() {
                tracing::warn!(user_id = %user, conn = conn.id, "slow consumer: closing socket");
                conn.closed.cancel();
            } else {
                queued += 1;
            }
        }
        queued
    }

    /// Whether the user has an open socket right now.
    pub fn is_online(&self, user: &UserId) -> bool {
        self.lock().users.get(user).is_some_and(|e| !e.conns.is_empty())
    }

    /// The lock that serialises this user's turns. tokio's mutex is fair, so
    /// turns run in the order they asked.
    pub(crate) fn turn_lock(&self, user: &UserId) -> Arc<TurnLock> {
        let mut inner = self.lock();
        if let Some(lock) = inner.turn_locks.get(user).and_then(Weak::upgrade) {
            return lock;
        }
        inner.turn_locks.retain(|_, weak| weak.strong_count() > 0);
        let lock = Arc::new(TurnLock::default());
        inner.turn_locks.insert(user.clone(), Arc::downgrade(&lock));
        lock
    }

    /// Whether one of the user's turns is running right now.
    pub(crate) fn turn_running(&self, user: &UserId) -> bool {
        let lock = self.lock().turn_locks.get(user).and_then(Weak::upgrade);
        lock.is_some_and(|lock| lock.try_lock().is_err())
    }

    #[cfg(test)]
    fn connection_count(&self) -> usize {
        self.lock().total
    }
}

/// Events reach the user's sockets here and, through the bus, on every
/// other instance. A tracked event's notification is marked seen by
/// whichever instance writes it.
#[async_trait::async_trait]
impl Publisher for Hub {
    fn publish(&self, user: &UserId, event: Event) -> usize {
        let text: Arc<str> = event.frame().to_json().into();
        if let Some(bus) = self.bus.get() {
            bus.publish(user, text.clone(), Vec::new());
        }
        self.send_text(user, text)
    }

    fn publish_tracked(&self, user: &UserId, event: Event) -> Option<Written> {
        let seen = match &event {
            Event::Notification(n) => vec![n.id.clone()],
            _ => Vec::new(),
        };
        let text: Arc<str> = event.frame().to_json().into();
        if let Some(bus) = self.bus.get() {
            bus.publish(user, text.clone(), seen);
        }
        let delivery = self.send_text_tracked(user, text)?;
        Some(Box::pin(delivery.written()))
    }

    async fn is_online(&self, user: &UserId) -> bool {
        if Hub::is_online(self, user) {
            return true;
        }
        let Some(bus) = self.bus.get() else { return false };
        bus.online_elsewhere(user).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not ask whether the user is connected elsewhere");
            false
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn hub(per_user: usize, queue: usize) -> Hub {
        Hub::new(HubLimits {
            connections_per_user: per_user,
            max_connections: 100,
            outbound_queue: queue,
        })
    }

    fn user(name: &str) -> UserId {
        UserId::parse(name).unwrap()
    }

    fn pong() -> Arc<str> {
        ServerFrame::Pong.to_json().into()
    }

    #[tokio::test]
    async fn queued_frames_count_what_no_writer_has_taken_yet() {
        let hub = hub(4, 8);
        let mut a1 = hub.register(&user("ana")).unwrap();
        let _a2 = hub.register(&user("ana")).unwrap();
        let _b = hub.register(&user("bob")).unwrap();
        assert_eq!(hub.queued_frames(), (0, 0));
        for _ in 0..3 {
            hub.send_text(&user("ana"), pong());
        }
        hub.send_text(&user("bob"), pong());
        assert_eq!(hub.queued_frames(), (7, 3));
        a1.rx.as_mut().unwrap().try_recv().unwrap();
        assert_eq!(hub.queued_frames(), (6, 3));
    }

    #[tokio::test]
    async fn frames_reach_every_socket_of_the_user_and_no_one_else() {
        let hub = hub(4, 8);
        let mut a1 = hub.register(&user("ana")).unwrap();
        let mut a2 = hub.register(&user("ana")).unwrap();
        let mut b = hub.register(&user("bob")).unwrap();
        hub.send_text(&user("ana"), pong());
        for conn in [&mut a1, &mut a2] {
            assert!(
                matches!(conn.rx.as_mut().unwrap().try_recv(), Ok(Outbound::Frame { text, .. }) if &*text == r#"{"type":"pong"}"#)
            );
        }
        assert!(b.rx.as_mut().unwrap().try_recv().is_err());
        assert_eq!(hub.connection_count(), 3);
        drop(a1);
        drop(b);
        assert_eq!(hub.connection_count(), 1);
    }

    #[tokio::test]
    async fn limits_on_sockets_and_queues_hold() {
        let hub = hub(1, 1);
        let conn = hub.register(&user("ana")).unwrap();
        assert_eq!(hub.register(&user("ana")).err(), Some(HubError::TooManyForUser));
        hub.send_text(&user("ana"), pong());
        assert!(!conn.closed.is_cancelled());
        hub.send_text(&user("ana"), pong());
        assert!(
            conn.closed.is_cancelled(),
            "a full queue marks the socket as a slow consumer"
        );
    }

    #[tokio::test]
    async fn a_tracked_frame_counts_as_delivered_only_once_a_writer_has_written_it() {
        let hub = hub(4, 8);
        let mut a1 = hub.register(&user("ana")).unwrap();
        let mut a2 = hub.register(&user("ana")).unwrap();
        assert!(hub.send_text_tracked(&user("bob"), pong()).is_none());

        // Both sockets die with the frame still queued: not delivered.
        let delivery = hub.send_text_tracked(&user("ana"), pong()).unwrap();
        drop(a1.rx.take());
        drop(a2.rx.take());
        let written = tokio::time::timeout(Duration::from_secs(1), delivery.written()).await;
        assert_eq!(written, Ok(false));

        // One socket writes its copy, the other dies: delivered.
        let mut a3 = hub.register(&user("ana")).unwrap();
        let mut a4 = hub.register(&user("ana")).unwrap();
        let delivery = hub.send_text_tracked(&user("ana"), pong()).unwrap();
        match a3.rx.as_mut().unwrap().try_recv() {
            Ok(Outbound::Frame {
                receipt: Some(receipt), ..
            }) => receipt.written(),
            other => panic!("{other:?}"),
        }
        drop(a4.rx.take());
        let written = tokio::time::timeout(Duration::from_secs(1), delivery.written()).await;
        assert_eq!(written, Ok(true));
    }

    #[tokio::test]
    async fn a_running_turn_keeps_its_lock_across_reconnects() {
        let hub = hub(4, 8);
        let ana = user("ana");
        let first = hub.register(&ana).unwrap();
        let lock = hub.turn_lock(&ana);
        let running = lock.clone().lock_owned().await;
        assert!(hub.turn_running(&ana));
        // The socket drops and the user reconnects while the turn runs: the
        // new socket's turns wait for the same lock.
        drop(first);
        assert!(!hub.is_online(&ana));
        let _second = hub.register(&ana).unwrap();
        assert!(Arc::ptr_eq(&lock, &hub.turn_lock(&ana)));
        assert!(hub.turn_running(&ana));
        assert!(!Arc::ptr_eq(&lock, &hub.turn_lock(&user("bob"))));
        drop(running);
        assert!(!hub.turn_running(&ana));
    }
}
