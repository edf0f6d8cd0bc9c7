//! Time as a first-class part of steward. Triggers live in the store
//! (written in the same transaction as the change that implies them); this
//! module decides what a due trigger does ([`Scheduler::tick`], driven by
//! any clock, so tests run a simulated year in a second) and sleeps until
//! the earliest trigger (a tokio timer), woken early by trigger writes and
//! at least every minute, so a wall-clock jump is noticed. A restart
//! re-reads the store, so nothing is lost; the misfire policy fires what
//! came due inside the catch-up window once, and records older ones as
//! missed for the next digest. Housekeeping runs on a cron schedule
//! ([`housekeeping`]).

pub mod housekeeping;

use crate::claims::Claims;
use crate::notification::NotificationKind;
use crate::notifier::digest::Digests;
use crate::plan::Plan;
use crate::service::Service;
use crate::store::{DigestCursor, Firing, NotificationDraft, Store, StoreError};
use crate::triggers::{self, Outcome, Trigger, TriggerKind};
use crate::user::UserId;
use crate::wording::Wording;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Triggers handled per store scan.
const BATCH: usize = 256;
/// Scans per tick, so one tick always ends (a tick at most fires
/// `BATCH * MAX_BATCHES` triggers; the next wake-up continues).
const MAX_BATCHES: usize = 64;
/// Triggers fired at once within a batch.
const CONCURRENT_FIRES: usize = 32;
/// Longest sleep between ticks: a changed wall clock (a suspended VM, an
/// NTP step) is noticed within this.
const MAX_SLEEP: std::time::Duration = std::time::Duration::from_secs(60);
/// How long a claim on due triggers lasts: a batch's firing is store
/// writes, far within it; an instance that died holding claims delays
/// those triggers by this much at most.
const TRIGGER_LEASE: std::time::Duration = std::time::Duration::from_secs(15);
/// A trigger another instance is handling is looked at again after this.
const ELSEWHERE_RETRY: Duration = Duration::seconds(1);
/// A trigger that could not be handled is tried again after this, doubling
/// per failure up to [`MAX_RETRY`]; the others go on meanwhile.
const FIRST_RETRY: Duration = Duration::seconds(1);
const MAX_RETRY: Duration = Duration::minutes(5);

pub struct Scheduler {
    pub(crate) store: Arc<dyn Store>,
    /// Preferences and time zones, the rules (the misfire policy), the
    /// clock, and the notifier's wake-up.
    pub(crate) service: Service,
    /// Decides the digest email a digest trigger sends.
    pub digests: Arc<Digests>,
    /// Triggers that failed to be handled, waiting for their retry.
    pub(crate) failing: Failing,
    /// Each due trigger is claimed before it is handled: one instance
    /// words and fires it (its transaction fires it once in any case).
    pub(crate) claims: Claims,
}

/// What one tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TickReport {
    pub fired: usize,
    pub missed: usize,
    pub lapsed: usize,
    pub(crate) skipped: usize,
    /// Digest emails decided (queued in the outbox).
    pub digests: usize,
    /// Triggers that could not be handled (a store error); they stay armed
    /// and are tried again after a backoff.
    pub(crate) failed: usize,
    /// Due triggers left alone because their retry time has not come.
    pub(crate) deferred: usize,
}

impl TickReport {
    fn count(&mut self, outcome: Outcome, digests: usize) {
        self.digests += digests;
        match outcome {
            Outcome::Fired => self.fired += 1,
            Outcome::Missed => self.missed += 1,
            Outcome::Lapsed => self.lapsed += 1,
            Outcome::Skipped => self.skipped += 1,
        }
    }
}

/// One firing: a trigger's id at its scheduled time.
type FiringKey = (UserId, String, DateTime<Utc>);

fn firing_key(t: &Trigger) -> FiringKey {
    (t.user.clone(), t.id.clone(), t.fire_at)
}

/// Due triggers whose handling failed, with when to try each again. Without
/// it, a trigger that fails every time (say, a corrupt record) stays the
/// earliest armed one, and the run loop would tick without sleeping.
#[derive(Debug, Default)]
pub(crate) struct Failing(Mutex<HashMap<FiringKey, Retry>>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Retry {
    failures: u32,
    at: DateTime<Utc>,
}

impl Failing {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<FiringKey, Retry>> {
        // Plain data: still consistent after a panic elsewhere.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `key` waits for a retry later than `now`.
    fn waiting(&self, key: &FiringKey, now: DateTime<Utc>) -> bool {
        self.lock().get(key).is_some_and(|r| r.at > now)
    }

    /// Records a failure at `now`; returns the failure count and the retry delay.
    fn failed(&self, key: FiringKey, now: DateTime<Utc>) -> (u32, Duration) {
        let mut map = self.lock();
        let failures = map.get(&key).map_or(0, |r| r.failures) + 1;
        let delay = (FIRST_RETRY * 2i32.saturating_pow(failures.saturating_sub(1).min(16))).min(MAX_RETRY);
        map.insert(
            key,
            Retry {
                failures,
                at: now + delay,
            },
        );
        (failures, delay)
    }

    /// Another instance is handling `key`: look again shortly (it is gone
    /// by then, or that instance died and its claim runs out).
    fn elsewhere(&self, key: FiringKey, now: DateTime<Utc>) {
        let mut map = self.lock();
        let failures = map.get(&key).map_or(0, |r| r.failures);
        map.insert(
            key,
            Retry {
                failures,
                at: now + ELSEWHERE_RETRY,
            },
        );
    }

    fn handled(&self, key: &FiringKey) {
        self.lock().remove(key);
    }

    /// Forgets triggers that are no longer due and armed (removed, moved or
    /// fired elsewhere): only `still_due` keep their backoff.
    fn retain(&self, still_due: &HashSet<FiringKey>) {
        self.lock().retain(|k, _| still_due.contains(k));
    }

    /// The soonest retry, if any trigger is failing.
    fn next_retry(&self) -> Option<DateTime<Utc>> {
        self.lock().values().map(|r| r.at).min()
    }

    fn keys(&self) -> HashSet<FiringKey> {
        self.lock().keys().cloned().collect()
    }
}

impl Scheduler {
    /// Handles every trigger due at `now`. A trigger whose handling fails
    /// is tried once per tick at most, and not again before its backoff
    /// ends, so it never holds up the others.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<TickReport, StoreError> {
        let mut report = TickReport::default();
        // Due triggers this tick leaves alone: deferred, or already tried.
        let mut passed: HashSet<FiringKey> = HashSet::new();
        let mut complete = false;
        for _ in 0..MAX_BATCHES {
            let listed = self.store.due_triggers(now, BATCH + passed.len()).await?;
            let exhausted = listed.len() < BATCH + passed.len();
            let mut due = Vec::with_capacity(listed.len());
            for t in listed {
                let key = firing_key(&t);
                if passed.contains(&key) {
                    continue;
                }
                if self.failing.waiting(&key, now) {
                    report.deferred += 1;
                    passed.insert(key);
                    continue;
                }
                due.push(t);
            }
            if due.is_empty() {
                if exhausted {
                    complete = true;
                    break;
                }
                // A full listing of deferred triggers: list past them.
                continue;
            }
            // Firings are independent (each checks its own trigger in its
            // own transaction), so a batch runs concurrently and its
            // flushes are shared by group commit instead of queued one by
            // one. Each chunk is claimed just before it fires.
            let mut fired = Vec::with_capacity(due.len());
            let mut results = Vec::with_capacity(due.len());
            for chunk in due.chunks(CONCURRENT_FIRES) {
                let (mine, leases) = self.claim(chunk.to_vec(), now, &mut passed).await?;
                results.extend(futures::future::join_all(mine.iter().map(|t| self.fire_one(t, now))).await);
                self.claims.give_back(&leases).await;
                fired.extend(mine);
            }
            for (t, result) in fired.iter().zip(results) {
                self.record(t, result, now, &mut report, &mut passed);
            }
        }
        if complete {
            // Everything still due was seen: backoffs of triggers that are
            // gone (removed, moved) are dropped.
            self.failing.retain(&passed);
        }
        if report.fired + report.missed + report.lapsed + report.skipped + report.digests > 0 {
            self.service.wake_notifier();
        }
        Ok(report)
    }

    /// The triggers of `due` this instance claimed, and their lease names;
    /// those another instance holds are passed by for now.
    async fn claim(
        &self,
        due: Vec<Trigger>,
        now: DateTime<Utc>,
        passed: &mut HashSet<FiringKey>,
    ) -> Result<(Vec<Trigger>, Vec<String>), StoreError> {
        let lease = |t: &Trigger| format!("trigger:{}:{}:{}", t.user, t.id, t.fire_at.timestamp_millis());
        let names: Vec<String> = due.iter().map(lease).collect();
        let taken: HashSet<String> = self.claims.take(&names, TRIGGER_LEASE).await?.into_iter().collect();
        let mut mine = Vec::with_capacity(taken.len());
        for t in due {
            if taken.contains(&lease(&t)) {
                mine.push(t);
            } else {
                tracing::debug!(user_id = %t.user, trigger = %t.id, "another instance is handling this trigger");
                self.failing.elsewhere(firing_key(&t), now);
                passed.insert(firing_key(&t));
            }
        }
        Ok((mine, taken.into_iter().collect()))
    }

    /// Counts one firing's result. One trigger's failure (say, a corrupt
    /// record) must not hold up everyone else's: it is logged and backs off.
    fn record(
        &self,
        t: &Trigger,
        result: Result<Option<(Outcome, usize)>, StoreError>,
        now: DateTime<Utc>,
        report: &mut TickReport,
        passed: &mut HashSet<FiringKey>,
    ) {
        let key = firing_key(t);
        match result {
            Ok(Some((outcome, digests))) => {
                self.failing.handled(&key);
                report.count(outcome, digests);
            }
            Ok(None) => {
                self.failing.handled(&key);
                passed.insert(key);
            }
            Err(e) => {
                let (failures, retry_in) = self.failing.failed(key.clone(), now);
                tracing::error!(
                    user_id = %t.user,
                    trigger = %t.id,
                    fire_at = %t.fire_at,
                    failures,
                    retry_in_ms = retry_in.num_milliseconds(),
                    error = %e,
                    "a trigger could not be handled; it stays armed"
                );
                report.failed += 1;
                passed.insert(key);
            }
        }
    }

    /// When the run loop should tick next: the earliest armed trigger that
    /// is not waiting for a retry, or the earliest retry.
    async fn next_wake(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let failing = self.failing.keys();
        if failing.is_empty() {
            return self.store.next_trigger_at().await;
        }
        let upcoming = self
            .store
            .due_triggers(DateTime::<Utc>::MAX_UTC, failing.len() + 1)
            .await?;
        let next_trigger = upcoming
            .iter()
            .find(|t| !failing.contains(&firing_key(t)))
            .map(|t| t.fire_at);
        Ok(match (next_trigger, self.failing.next_retry()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// Handles one due trigger; `None` if it was moved or fired meanwhile.
    async fn fire_one(&self, t: &Trigger, now: DateTime<Utc>) -> Result<Option<(Outcome, usize)>, StoreError> {
        let span = tracing::info_span!("trigger", user_id = %t.user, trigger = %t.id, fire_at = %t.fire_at);
        self.fire_inner(t, now).instrument(span).await
    }

    async fn fire_inner(&self, t: &Trigger, now: DateTime<Utc>) -> Result<Option<(Outcome, usize)>, StoreError> {
        let prefs = self.service.preferences(&t.user).await?;
        let tz = self.service.tz_of(&prefs);
        let plan = match t.plan_id() {
            Some(id) => self.store.get_plan(&t.user, id).await?,
            None => None,
        };
        let mut firing = Firing {
            outcome: triggers::misfire(t, now, &self.service.rules().triggers),
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
                firing.rearm = prefs.digest_trigger(&t.user, tz, t.fire_at.max(now), now);
                if firing.outcome == Outcome::Fired {
                    match self.digests.decide(&t.user, &prefs, t.fire_at, now).await? {
                        Some(digest) => {
                            firing.digest_cursor = Some(DigestCursor {
                                key: digest.item.key.clone(),
                                through: digest.missed_through,
                            });
                            firing.outbox.push(digest.item);
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
        if !matches!(t.kind, TriggerKind::Digest) {
            notify(self.service.wording(), &mut firing, t, plan.as_ref(), tz);
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
                let late = (lateness_ms.max(0) as f64) / 1000.0;
                self.service.metrics().trigger_lateness_seconds.observe(late);
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
            if let Some((outcome, digests)) = self.fire_one(t, now).await? {
                report.count(outcome, digests);
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

    /// Runs until `shutdown`: tick, then sleep until the earliest trigger
    /// (or until the store says triggers changed).
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let signal = self.store.timer_signal();
        loop {
            let now = self.service.now();
            let ticked = self.tick(now).await;
            if let Err(e) = &ticked {
                tracing::error!(error = %e, "scheduler tick failed");
            }
            // Sleep until the earliest trigger not waiting for a retry (a
            // tokio timer: millisecond precision), capped so a changed wall
            // clock is noticed; trigger writes wake the loop earlier. A tick
            // that failed as a whole waits a second.
            let sleep = match self.next_wake().await {
                Ok(_) if ticked.is_err() => FIRST_RETRY.to_std().unwrap_or_default(),
                Ok(Some(next)) => (next - self.service.now()).to_std().unwrap_or_default(),
                Ok(None) => MAX_SLEEP,
                Err(e) => {
                    tracing::error!(error = %e, "could not read the next trigger");
                    FIRST_RETRY.to_std().unwrap_or_default()
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = signal.notified() => {}
                _ = tokio::time::sleep(sleep.min(MAX_SLEEP)) => {}
            }
        }
    }
}

/// The notification a firing stores: what the trigger says now (a
/// trigger whose step is finished or gone fires as skipped), or that it
/// was missed.
fn notify(wording: &Wording, firing: &mut Firing, t: &Trigger, plan: Option<&Plan>, tz: Tz) {
    let draft = |kind, text| NotificationDraft {
        kind,
        text,
        plan_id: t.plan_id(),
        step_id: step_of(t),
        urgent: kind != NotificationKind::Missed && t.urgent(),
    };
    match firing.outcome {
        Outcome::Fired => match wording.notification(t, plan, firing.at, tz) {
            Some((kind, text)) => firing.notifications.push(draft(kind, text)),
            None => firing.outcome = Outcome::Skipped,
        },
        Outcome::Missed => {
            let text = wording.while_offline(&wording.missed(t, plan, firing.at.with_timezone(&tz)));
            firing.notifications.push(draft(NotificationKind::Missed, text));
        }
        Outcome::Lapsed | Outcome::Skipped => {}
    }
}

fn step_of(t: &Trigger) -> Option<String> {
    match &t.kind {
        TriggerKind::StepDue { step_id, .. } | TriggerKind::StepOverdue { step_id, .. } => Some(step_id.clone()),
        TriggerKind::PlanIdle { .. } | TriggerKind::Reminder { .. } | TriggerKind::Digest => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::plan::fixtures::at;
    use crate::store::conformance::reminder;
    use crate::store::{AccountStore, SledStore, TriggerStore};
    use std::path::PathBuf;

    fn scheduler(store: Arc<SledStore>, clock: Clock) -> Scheduler {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mail = crate::channels::email::Mail::load(&root.join("templates/email"), "steward <steward@localhost>");
        let service = crate::service::testing::service(store.clone(), clock.clone());
        let store_for_claims: Arc<dyn Store> = store.clone();
        Scheduler {
            store: store.clone(),
            service: service.clone(),
            digests: Arc::new(Digests {
                store,
                mail: Arc::new(mail.unwrap()),
                links: crate::channels::links::Links::new(vec![7; 32], "http://127.0.0.1:8080"),
                service: service.clone(),
            }),
            failing: Failing::default(),
            claims: crate::claims::Claims::new(store_for_claims, tokio_util::task::TaskTracker::new()),
        }
    }

    /// A store with ana and bob, a reminder each at `due`, and ana's
    /// preferences corrupt, so every attempt at hers fails.
    async fn one_failing(dir: &std::path::Path, due: DateTime<Utc>) -> (Arc<SledStore>, UserId, UserId) {
        let store = Arc::new(SledStore::open(dir).unwrap());
        let (ana, bob) = (UserId::parse("ana").unwrap(), UserId::parse("bob").unwrap());
        for user in [&ana, &bob] {
            store.ensure_user(user).await.unwrap();
            store.put_trigger(&reminder(user, "r1", due)).await.unwrap();
        }
        store.corrupt_preferences(&ana);
        (store, ana, bob)
    }

    #[tokio::test]
    async fn a_trigger_that_keeps_failing_backs_off_and_holds_up_no_one_else() {
        let dir = tempfile::tempdir().unwrap();
        let due = at("2026-11-23T09:00:00Z");
        let (store, ana, bob) = one_failing(dir.path(), due).await;
        let s = scheduler(store.clone(), Arc::new(Utc::now));
        let now = due + Duration::seconds(1);
        let report = |fired, failed, deferred| TickReport {
            fired,
            failed,
            deferred,
            ..TickReport::default()
        };

        assert_eq!(
            s.tick(now).await.unwrap(),
            report(1, 1, 0),
            "bob's fires, ana's fails once"
        );
        // Right away: ana's is left alone, and the loop sleeps until its retry.
        assert_eq!(s.tick(now).await.unwrap(), report(0, 0, 1));
        assert_eq!(s.next_wake().await.unwrap(), Some(now + Duration::seconds(1)));
        // The retry fails again: the next waits twice as long.
        let later = now + Duration::seconds(1);
        assert_eq!(s.tick(later).await.unwrap(), report(0, 1, 0));
        assert_eq!(s.next_wake().await.unwrap(), Some(later + Duration::seconds(2)));
        // A trigger due before that retry is what the loop wakes for.
        let soon = later + Duration::milliseconds(1500);
        store.put_trigger(&reminder(&bob, "r2", soon)).await.unwrap();
        assert_eq!(s.next_wake().await.unwrap(), Some(soon));
        assert_eq!(s.tick(soon).await.unwrap(), report(1, 0, 1));
        // Repaired: it fires at its retry, and its backoff is forgotten.
        store.forget_preferences(&ana);
        assert_eq!(s.tick(later + Duration::seconds(2)).await.unwrap(), report(1, 0, 0));
        assert_eq!(s.next_wake().await.unwrap(), None);
        assert!(s.failing.keys().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn the_run_loop_retries_a_failing_trigger_after_a_backoff_instead_of_spinning() {
        let dir = tempfile::tempdir().unwrap();
        // The loop's clock follows tokio's paused time, so 1.5 s pass at once.
        let (base, start) = (Utc::now(), tokio::time::Instant::now());
        let clock: Clock = Arc::new(move || base + (tokio::time::Instant::now() - start));
        let due = base - Duration::minutes(1);
        let (store, ana, _) = one_failing(dir.path(), due).await;
        let s = Arc::new(scheduler(store, clock));
        let stop = CancellationToken::new();
        let running = tokio::spawn(s.clone().run(stop.clone()));
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        stop.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(10), running)
            .await
            .unwrap()
            .unwrap();
        let failures = s.failing.lock().get(&(ana, "r1".into(), due)).map(|r| r.failures);
        // Tried at once and again after a second (the next retry would be
        // two seconds later); a loop without backoff would try thousands of
        // times.
        assert_eq!(failures, Some(2));
    }
}
