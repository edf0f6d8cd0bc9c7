//! This instance's claims on work that several instances on one database
//! share (see [`LeaseStore`]): a due trigger, a notification to route, an
//! outbox row, a tool step, a user's turn. Whoever holds the lease does
//! the work; the others pass it by. Leases count real time (the wall
//! clock, not the app's clock, which tests move by hand), since what they
//! guard against is a process that stopped.

use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The longest a waiting claimer sleeps before asking again.
const MAX_POLL: Duration = Duration::from_millis(200);

/// This instance's name and its way to the leases. Cheap to clone.
#[derive(Clone)]
pub struct Claims {
    store: Arc<dyn Store>,
    holder: Arc<str>,
    /// The server's tasks: a renewal belongs to them, so shutdown waits
    /// for the lease to be given back.
    tasks: TaskTracker,
    /// Numbers the leases held with a guard.
    held: Arc<AtomicU64>,
}

impl Claims {
    /// Claims under a name unique to this process: host, process id and a
    /// random part (a restarted process never inherits a dead one's leases).
    pub fn new(store: Arc<dyn Store>, tasks: TaskTracker) -> Claims {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "steward".into());
        let holder = format!("{host}-{}-{:08x}", std::process::id(), rand::random::<u32>());
        Claims {
            store,
            holder: holder.into(),
            tasks,
            held: Arc::default(),
        }
    }

    /// This instance's name among the holders.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    fn until(lease: Duration) -> DateTime<Utc> {
        Self::now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX)
    }

    /// Claims what is free of `names` for `lease`; the names taken.
    pub(crate) async fn take(&self, names: &[String], lease: Duration) -> Result<Vec<String>, StoreError> {
        self.take_as(&self.holder, names, lease).await
    }

    async fn take_as(&self, holder: &str, names: &[String], lease: Duration) -> Result<Vec<String>, StoreError> {
        self.store.claim(holder, names, Self::now(), Self::until(lease)).await
    }

    /// Gives leases back once their work is done. A failure only delays
    /// the work's next claimer until the lease runs out.
    pub(crate) async fn give_back(&self, names: &[String]) {
        self.give_back_as(&self.holder, names).await;
    }

    async fn give_back_as(&self, holder: &str, names: &[String]) {
        if let Err(e) = self.store.release(holder, names).await {
            tracing::warn!(error = %e, "could not give leases back; they run out by themselves");
        }
    }

    /// Claims one name for as long as the returned guard lives, renewing
    /// it every third of `lease`; `None` if it is held (by another
    /// instance, or by another guard here). Each guard holds under its own
    /// name, `instance/n`: the give-back that follows a dropped guard can
    /// only remove that guard's lease, never one taken since.
    pub(crate) async fn hold(&self, name: &str, lease: Duration) -> Result<Option<Held>, StoreError> {
        let names = [name.to_owned()];
        let holder = format!("{}/{}", self.holder, self.held.fetch_add(1, Ordering::Relaxed));
        if self.take_as(&holder, &names, lease).await?.is_empty() {
            return Ok(None);
        }
        let stop = CancellationToken::new();
        let (claims, renew) = (self.clone(), stop.clone());
        let renewal = self.tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = renew.cancelled() => break,
                    _ = tokio::time::sleep(lease / 3) => {}
                }
                match claims.take_as(&holder, &names, lease).await {
                    Ok(taken) if taken.is_empty() => {
                        tracing::error!(lease = %names[0], "a lease was lost while held; another instance may start the same work");
                        break;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(lease = %names[0], error = %e, "could not renew a lease; trying again"),
                }
            }
            claims.give_back_as(&holder, &names).await;
        });
        Ok(Some(Held {
            stop,
            renewal: Some(renewal),
        }))
    }

    /// Like [`Claims::hold`], waiting (polling, up to `MAX_POLL` apart)
    /// until the lease is free.
    pub(crate) async fn hold_waiting(&self, name: &str, lease: Duration) -> Result<Held, StoreError> {
        let mut pause = Duration::from_millis(5);
        loop {
            if let Some(held) = self.hold(name, lease).await? {
                return Ok(held);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_POLL);
        }
    }
}

/// A held lease: renewed while it lives; given back by
/// [`Held::release`], or soon after it is dropped.
#[derive(Debug)]
pub(crate) struct Held {
    stop: CancellationToken,
    renewal: Option<tokio::task::JoinHandle<()>>,
}

impl Held {
    /// Gives the lease back and returns once it is given back, so work
    /// that follows at once (the next pass, the next turn) can take it.
    pub(crate) async fn release(mut self) {
        self.stop.cancel();
        if let Some(renewal) = self.renewal.take() {
            let _ = renewal.await;
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    #[tokio::test]
    async fn a_dropped_guard_never_gives_back_a_lease_taken_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
        let tasks = TaskTracker::new();
        let (here, there) = (
            Claims::new(store.clone(), tasks.clone()),
            Claims::new(store, tasks.clone()),
        );
        let lease = Duration::from_secs(30);
        for _ in 0..20 {
            let first = here.hold("turn:ana", lease).await.unwrap().unwrap();
            drop(first);
            // The next turn here takes the lease again at once.
            let second = here.hold_waiting("turn:ana", lease).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert!(
                there.hold("turn:ana", lease).await.unwrap().is_none(),
                "another instance got a lease this one holds"
            );
            drop(second);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tasks.close();
        tasks.wait().await;
    }
}
