//! The notifier: routes each queued notification (quiet hours → the
//! user's open sockets → web push → email → the inbox, in `route`) and
//! drains the outbox (`deliver`); a configured model words notifications
//! (`phrase`); digests are decided in `digest`. Every outbox row is
//! stored, with its idempotency key, before it is attempted.

mod deliver;
pub(crate) mod digest;
mod phrase;
mod route;

pub(crate) use deliver::DeliveryPolicy;

use crate::channels::egress;
use crate::channels::email::Mail;
use crate::channels::links::Links;
use crate::channels::mailer::Mailer;
use crate::channels::push::Pusher;
use crate::claims::Claims;
use crate::clock::Clock;
use crate::config::WebhookConfig;
use crate::events::{Publisher, Written};
use crate::llm::ChatModel;
use crate::notification::{Notification, OutboxStatus};
use crate::prompts::Prompts;
use crate::service::Service;
use crate::store::{Store, StoreError};
use crate::user::UserId;
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Notifications read per pass.
const ROUTE_BATCH: usize = 256;
/// Users whose notifications are routed at once (each user's in order).
const CONCURRENT_ROUTES: usize = 8;
/// Model time for wording, in total, per pass: once it is spent the rest
/// of the pass uses the offline wording, so a slow model cannot hold a
/// pass (and the copies it read) for minutes.
const WORDING_BUDGET: Duration = Duration::from_secs(30);
/// Claims on a user's notifications and on outbox rows last this long
/// unless renewed (they are, while the work goes on): an instance that
/// died holding one delays that work by this much at most.
const LEASE: Duration = Duration::from_secs(10);

pub struct Notifier {
    pub(crate) store: Arc<dyn Store>,
    /// Preferences, time zones and plans, read by the service's rules.
    pub(crate) service: Service,
    /// The user's open sockets.
    pub(crate) hub: Arc<dyn Publisher>,
    pub(crate) mail: Arc<Mail>,
    pub(crate) mailer: Mailer,
    pub(crate) pusher: Option<Pusher>,
    pub(crate) links: Links,
    pub(crate) webhooks: Vec<WebhookConfig>,
    pub(crate) http: egress::Client,
    pub(crate) policy: DeliveryPolicy,
    pub(crate) clock: Clock,
    /// A configured model phrases notifications (the offline wording is
    /// the fallback); the offline engine's own wording is used as is.
    pub(crate) model: Option<Arc<dyn ChatModel>>,
    pub(crate) prompts: Arc<Prompts>,
    /// Longest wait for the model's wording.
    pub(crate) word_timeout: Duration,
    /// Poked when something new may be ready to route or send.
    pub(crate) wake: Arc<tokio::sync::Notify>,
    /// The server's tasks: marking notifications seen once a socket has
    /// written them runs as one.
    pub(crate) tasks: TaskTracker,
    /// Each notification and outbox row is claimed before it is routed or
    /// tried, so one instance of several does it.
    pub(crate) claims: Claims,
}

/// What one pass did (tests and logs).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub routed: usize,
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
}

impl Notifier {
    /// Runs until `shutdown`: a pass whenever woken, at least every 500 ms.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            // A pass stopped midway is safe: every attempt was marked
            // `sending` before it started and is repeated with the same
            // identity after a restart.
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                passed = self.pass() => if let Err(e) = passed {
                    tracing::error!(error = %e, "notifier pass failed");
                },
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// Routes what is due and attempts what is due in the outbox.
    pub async fn pass(&self) -> Result<Pass, StoreError> {
        let mut pass = Pass::default();
        let now = (self.clock)();
        // Each user's notifications in order, users side by side. One
        // item's failure must not hold up everyone else's: each is logged
        // and stays queued for the next pass.
        let mut by_user: Vec<(UserId, Vec<Notification>)> = Vec::new();
        for (user, n) in self.store.due_notifications(now, ROUTE_BATCH).await? {
            match by_user.iter_mut().find(|(u, _)| *u == user) {
                Some((_, list)) => list.push(n),
                None => by_user.push((user, vec![n])),
            }
        }
        let wording_ends = Instant::now() + WORDING_BUDGET;
        pass.routed = futures::stream::iter(by_user)
            .map(|(user, list)| async move {
                // One instance of several routes a user's notifications.
                let held = match self.claims.hold(&format!("route:{user}"), LEASE).await {
                    Ok(Some(held)) => held,
                    Ok(None) => return 0,
                    Err(e) => {
                        tracing::error!(user_id = %user, error = %e, "could not claim notifications to route");
                        return 0;
                    }
                };
                let mut routed = 0;
                for n in list {
                    match self.route(&user, n, wording_ends).await {
                        Ok(true) => routed += 1,
                        Ok(false) => {
                            tracing::debug!(user_id = %user, "notification changed while routing; routed again next pass");
                            self.wake.notify_one();
                        }
                        Err(e) => tracing::error!(user_id = %user, error = %e, "could not route a notification"),
                    }
                }
                held.release().await;
                routed
            })
            .buffer_unordered(CONCURRENT_ROUTES)
            .fold(0, |total, routed| async move { total + routed })
            .await;
        // Each row is claimed just before its attempt and held until its
        // outcome is saved: a row `sending` whose lease ran out was
        // interrupted (its instance stopped) and is tried again.
        for item in self.store.due_outbox((self.clock)(), 64).await? {
            let Some(held) = self.claims.hold(&format!("outbox:{}", item.key), LEASE).await? else {
                continue; // another instance is trying it
            };
            // The copy listed may predate another instance's attempt that
            // ended just now: only the stored row, still due, is tried.
            let stored = self.store.outbox_by_key(&item.key).await?;
            let now = (self.clock)();
            let Some(item) = stored.filter(|i| i.is_open() && i.next_attempt_at <= now) else {
                continue;
            };
            let id = item.id.clone();
            match self.attempt(item).await {
                Ok(OutboxStatus::Sent) => pass.sent += 1,
                Ok(OutboxStatus::Failed) => pass.failed += 1,
                Ok(OutboxStatus::Pending | OutboxStatus::Sending) => pass.retried += 1,
                Err(e) => tracing::error!(outbox = %id, error = %e, "could not record a delivery attempt"),
            }
            held.release().await;
        }
        Ok(pass)
    }
}

/// Marks notifications seen once `written` says a socket has shown them;
/// if every socket closed first they stay unseen, so the next `ready`
/// carries them (a crash in between shows them again, never loses them).
pub(crate) fn mark_seen_when_written(
    tasks: &TaskTracker,
    store: &Arc<dyn Store>,
    user: &UserId,
    ids: Vec<String>,
    written: Written,
) {
    let (store, user) = (store.clone(), user.clone());
    tasks.spawn(
        async move {
            if !written.await {
                tracing::info!(
                    ?ids,
                    "the socket closed before showing notifications; they wait for the next ready"
                );
                return;
            }
            if let Err(e) = store.mark_seen(&user, &ids).await {
                tracing::warn!(error = %e, "could not mark notifications seen");
            }
        }
        .in_current_span(),
    );
}
