//! Time as a first-class part of steward. Triggers live in the store
//! (written in the same transaction as the change that implies them); this
//! module decides what a due trigger does ([`Scheduler::tick`], driven by
//! any clock, so tests run a simulated year in a second) and sleeps until
//! the earliest trigger, woken early by trigger writes and by a
//! tokio-cron-scheduler heartbeat ([`wakeup`]). A restart re-reads the store, so nothing is lost; the
//! misfire policy fires what came due inside the catch-up window once, and
//! records older ones as missed for the next digest.

pub mod triggers;
pub mod wakeup;

use crate::app::Clock;
use crate::notify::email::Mail;
use crate::notify::links::Links;
use crate::notify::router::item;
use crate::notify::wording::{self, Digest};
use crate::notify::{NotificationKind, OutboxItem, Payload, Preferences};
use crate::store::{Firing, NotificationDraft, Store, StoreError};
use crate::user::UserId;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use triggers::{Frequency, Outcome, Trigger, TriggerKind, TriggerPolicy};

/// Triggers handled per store scan.
const BATCH: usize = 256;
/// Scans per tick, so one tick always ends (a tick at most fires
/// `BATCH * MAX_BATCHES` triggers; the next wake-up continues).
const MAX_BATCHES: usize = 64;
/// Triggers fired at once within a batch.
const CONCURRENT_FIRES: usize = 32;
/// Longest sleep between ticks (the cron heartbeat also wakes the loop
/// every minute).
const MAX_SLEEP: std::time::Duration = std::time::Duration::from_secs(60);

pub struct Scheduler {
    pub store: Arc<dyn Store>,
    pub policy: TriggerPolicy,
    pub default_tz: Tz,
    pub mail: Arc<Mail>,
    pub links: Links,
    pub clock: Clock,
    /// Poked after firings, so the notifier routes them at once.
    pub notifier_wake: Arc<tokio::sync::Notify>,
}

/// What one tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TickReport {
    pub fired: usize,
    pub missed: usize,
    pub lapsed: usize,
    pub skipped: usize,
    /// Digest emails decided (queued in the outbox).
    pub digests: usize,
}

impl Scheduler {
    /// Handles every trigger due at `now`.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<TickReport, StoreError> {
        let mut report = TickReport::default();
        for _ in 0..MAX_BATCHES {
            let due = self.store.due_triggers(now, BATCH).await?;
            if due.is_empty() {
                break;
            }
            // Firings are independent (each checks its own trigger in its
            // own transaction), so a batch runs concurrently and its
            // flushes are shared by group commit instead of queued one by one.
            let mut results = Vec::with_capacity(due.len());
            for chunk in due.chunks(CONCURRENT_FIRES) {
                results.extend(futures::future::join_all(chunk.iter().map(|t| self.fire_one(t, now))).await);
            }
            for result in results {
                // One trigger's failure (say, a corrupt record) must not
                // hold up everyone else's: log it and go on.
                let (outcome, digests) = match result {
                    Ok(Some(done)) => done,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::error!(error = %e, "a trigger could not be handled; it stays armed");
                        continue;
                    }
                };
                report.digests += digests;
                match outcome {
                    Outcome::Fired => report.fired += 1,
                    Outcome::Missed => report.missed += 1,
                    Outcome::Lapsed => report.lapsed += 1,
                    Outcome::Skipped => report.skipped += 1,
                }
            }
        }
        if report != TickReport::default() {
            self.notifier_wake.notify_one();
        }
        Ok(report)
    }

    /// Handles one due trigger; `None` if it was moved or fired meanwhile.
    async fn fire_one(&self, t: &Trigger, now: DateTime<Utc>) -> Result<Option<(Outcome, usize)>, StoreError> {
        let span = tracing::info_span!("trigger", user_id = %t.user, trigger = %t.id, fire_at = %t.fire_at);
        self.fire_inner(t, now).instrument(span).await
    }

    async fn fire_inner(&self, t: &Trigger, now: DateTime<Utc>) -> Result<Option<(Outcome, usize)>, StoreError> {
        let prefs = self.store.preferences(&t.user).await?;
        let tz = prefs.tz(self.default_tz);
        let plan = match t.plan_id() {
            Some(id) => self.store.get_plan(&t.user, id).await?,
            None => None,
        };
        let mut firing = Firing {
            outcome: triggers::misfire(t, now, &self.policy),
            at: now,
            notifications: Vec::new(),
            outbox: Vec::new(),
            rearm: None,
            digest_cursor: None,
        };
        match &t.kind {
            TriggerKind::Digest => {
                // The next one counts from the later of the scheduled time
                // and now, so a long outage yields one digest, not a burst.
                firing.rearm = digest_trigger(&t.user, &prefs, tz, t.fire_at.max(now), now);
                if firing.outcome == Outcome::Fired {
                    match self.digest_item(&t.user, &prefs, t.fire_at, now).await? {
                        Some(item) => {
                            firing.outbox.push(item);
                            firing.digest_cursor = Some(now);
                        }
                        None => firing.outcome = Outcome::Skipped,
                    }
                }
            }
            TriggerKind::Reminder {
                lapse_on_reply: true, ..
            } if firing.outcome == Outcome::Fired && self.wrote_since(&t.user, t.created_at).await? => {
                firing.outcome = Outcome::Lapsed;
            }
            TriggerKind::StepDue { .. }
            | TriggerKind::StepOverdue { .. }
            | TriggerKind::PlanIdle { .. }
            | TriggerKind::Reminder { .. } => {}
        }
        match firing.outcome {
            Outcome::Fired if !matches!(t.kind, TriggerKind::Digest) => {
                match wording::notification(t, plan.as_ref(), now, tz) {
                    Some((kind, text)) => firing.notifications.push(NotificationDraft {
                        kind,
                        text,
                        plan_id: t.plan_id(),
                        step_id: step_of(t),
                        urgent: t.urgent(),
                    }),
                    None => firing.outcome = Outcome::Skipped,
                }
            }
            Outcome::Missed if !matches!(t.kind, TriggerKind::Digest) => {
                firing.notifications.push(NotificationDraft {
                    kind: NotificationKind::Missed,
                    text: format!(
                        "While I was offline I missed {}.",
                        wording::missed(t, plan.as_ref(), tz)
                    ),
                    plan_id: t.plan_id(),
                    step_id: step_of(t),
                    urgent: false,
                });
            }
            Outcome::Fired | Outcome::Missed | Outcome::Lapsed | Outcome::Skipped => {}
        }
        let outcome = firing.outcome;
        let digests = firing.outbox.len();
        match self.store.fire(t, firing).await? {
            None => {
                tracing::debug!("trigger moved or fired meanwhile");
                Ok(None)
            }
            Some(_) => {
                let lateness_ms = (now - t.fire_at).num_milliseconds();
                tracing::info!(?outcome, lateness_ms, "trigger handled");
                Ok(Some((outcome, digests)))
            }
        }
    }

    /// Handles only the digest triggers due at `now` (`steward digest`):
    /// reminders and step triggers stay for the server.
    pub async fn tick_digests(&self, now: DateTime<Utc>) -> Result<TickReport, StoreError> {
        let mut report = TickReport::default();
        let due = self.store.due_triggers(now, usize::MAX).await?;
        for t in due.iter().filter(|t| matches!(t.kind, TriggerKind::Digest)) {
            match self.fire_one(t, now).await? {
                Some((Outcome::Fired, digests)) => {
                    report.fired += 1;
                    report.digests += digests;
                }
                Some((Outcome::Missed, _)) => report.missed += 1,
                Some((Outcome::Skipped, _)) => report.skipped += 1,
                Some((Outcome::Lapsed, _)) => report.lapsed += 1,
                None => {}
            }
        }
        Ok(report)
    }

    async fn wrote_since(&self, user: &UserId, since: DateTime<Utc>) -> Result<bool, StoreError> {
        let recent = self.store.recent_messages(user, 50).await?;
        Ok(recent
            .iter()
            .any(|e| e.at > since && matches!(e.message, crate::conversation::Message::User { .. })))
    }

    /// The digest email for the period containing `scheduled`, as an outbox
    /// row keyed by user and period (so a period never gets two), or `None`
    /// without a verified address.
    pub async fn digest_item(
        &self,
        user: &UserId,
        prefs: &Preferences,
        scheduled: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<OutboxItem>, StoreError> {
        let Some(to) = prefs.deliverable_email() else {
            return Ok(None);
        };
        let tz = prefs.tz(self.default_tz);
        let period = prefs.digest.period(scheduled, tz);
        let plans = self.store.list_plans(user).await?;
        let span = match prefs.digest.frequency {
            Frequency::Weekly => Duration::days(7),
            Frequency::Daily | Frequency::Off => Duration::days(1),
        };
        // Missed triggers since the last digest reported them (or, for a
        // first digest, over one period).
        let since = match self.store.digest_cursor(user).await? {
            Some(at) => at,
            None => scheduled - span,
        };
        let missed = self
            .store
            .missed_since(user, since)
            .await?
            .iter()
            .filter(|m| !matches!(m.trigger.kind, TriggerKind::Digest))
            .map(|m| {
                let plan = m.trigger.plan_id().and_then(|id| plans.iter().find(|p| p.id == id));
                wording::missed(&m.trigger, plan, tz)
            })
            .collect();
        let digest = Digest {
            user: user.to_string(),
            period: period.clone(),
            plans: wording::digest_plans(&plans, now, tz),
            missed,
            widget_url: self.links.widget(),
            unsubscribe_url: self.links.unsubscribe(user),
        };
        // User ids may contain '@'; the Message-ID's local part must not.
        let local = user.as_str().replace('@', "=");
        let message_id = format!("<digest.{local}.{period}@{}>", self.mail.domain);
        match self.mail.digest(&digest, to, message_id) {
            Ok(email) => Ok(Some(item(
                user,
                format!("digest:{user}:{period}"),
                Payload::Email(email),
                now,
            ))),
            Err(e) => {
                tracing::error!(user_id = %user, error = %e, "could not render the digest");
                Ok(None)
            }
        }
    }

    /// Runs until `shutdown`: tick, arm the wake-up for the earliest
    /// trigger, wait to be woken (by it, by the per-minute heartbeat, or by
    /// the store when triggers change).
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> anyhow::Result<()> {
        let signal = self.store.timer_signal();
        let wakeup = wakeup::Wakeup::start(signal.clone()).await?;
        loop {
            let now = (self.clock)();
            if let Err(e) = self.tick(now).await {
                tracing::error!(error = %e, "scheduler tick failed");
            }
            // Sleep until the earliest trigger (a tokio timer: millisecond
            // precision), capped so a changed wall clock is noticed; the
            // cron heartbeat and trigger writes wake the loop earlier.
            let sleep = match self.store.next_trigger_at().await {
                Ok(Some(next)) => (next - (self.clock)()).to_std().unwrap_or_default(),
                Ok(None) => MAX_SLEEP,
                Err(e) => {
                    tracing::error!(error = %e, "could not read the next trigger");
                    std::time::Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = signal.notified() => {}
                _ = tokio::time::sleep(sleep.min(MAX_SLEEP)) => {}
            }
        }
        wakeup.shutdown().await;
        Ok(())
    }
}

fn step_of(t: &Trigger) -> Option<String> {
    match &t.kind {
        TriggerKind::StepDue { step_id, .. } | TriggerKind::StepOverdue { step_id, .. } => Some(step_id.clone()),
        TriggerKind::PlanIdle { .. } | TriggerKind::Reminder { .. } | TriggerKind::Digest => None,
    }
}

/// The digest trigger after a change of preferences. Counted from just
/// before the armed one if that is already due, so a digest that came due
/// but was not sent yet (say, right after a restart) is not cancelled by an
/// unrelated change; otherwise from now.
pub async fn rearm_digest(
    store: &dyn Store,
    user: &UserId,
    prefs: &Preferences,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<Option<Trigger>, StoreError> {
    let armed = store.user_triggers(user).await?.into_iter().find(|t| t.id == "digest");
    let after = match armed {
        Some(t) if t.fire_at <= now => t.fire_at - Duration::milliseconds(1),
        Some(_) | None => now,
    };
    Ok(digest_trigger(user, prefs, tz, after, now))
}

/// The digest trigger the preferences ask for, next due after `after`.
pub fn digest_trigger(
    user: &UserId,
    prefs: &Preferences,
    tz: Tz,
    after: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<Trigger> {
    if !prefs.wants_digest() {
        return None;
    }
    triggers::digest(user, &prefs.digest, tz, after, now)
}
