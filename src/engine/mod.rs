//! The execution engine: runs the steps bound to tools when they are ready
//! (dependencies resolved, due time reached, confirmed by the user — a
//! binding only enters a plan through the confirmation policy), for every
//! user, and writes what happened back through the plan service as the
//! `tool` actor.
//!
//! One loop reads the store's work list (synced by every plan write) and
//! the attempts not yet settled, and starts what is due within the limits:
//! a global number of steps at once, a number per user (so one user never
//! holds every slot) and per orchestrated plan (one at a time in a plan
//! worked step by step). Each start is one try (`run`): the attempt is
//! flushed as in flight before the call, so after a crash its outcome is
//! known to be unknown — sent again with the same idempotency key when the
//! tool takes one, else handed to the user, never blindly repeated. A
//! transient failure waits in the store for its next try; a step that
//! fails for good goes to `failure` (a fallback, a replan, or plain words).

mod builtin;
mod failure;
mod replan;
mod run;

pub use replan::Replanner;

use crate::actions::Actions;
use crate::actions::http::Caller;
use crate::channels::email::Mail;
use crate::channels::links::Links;
use crate::claims::{Claims, Held};
use crate::clock::Clock;
use crate::config::EngineConfig;
use crate::execution::{Attempt, AttemptState, StepRef};
use crate::plan::PlanId;
use crate::planner::templates::Templates;
use crate::service::Service;
use crate::store::{Store, StoreError};
use crate::user::UserId;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How many work-list entries and open attempts one pass reads per page.
const BATCH: usize = 256;
/// Pages of the work list one pass reads at most.
const PAGES: usize = 16;
/// A step's lease among instances, renewed while its try runs.
const STEP_LEASE: Duration = Duration::from_secs(10);
/// The longest the loop sleeps without a signal.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// Runs tool-bound steps. Cheap to share.
pub struct Executor {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) service: Service,
    pub(crate) actions: Actions,
    pub(crate) caller: Caller,
    pub(crate) mail: Arc<Mail>,
    pub(crate) links: Links,
    pub(crate) templates: Arc<Templates>,
    pub(crate) config: EngineConfig,
    pub(crate) clock: Clock,
    pub(crate) tasks: TaskTracker,
    /// Asks a configured model for a replan after a failure.
    pub(crate) replanner: Replanner,
    /// A step is claimed before each try, so one instance of several runs
    /// it; an instance that dies mid-try loses the claim when it runs out,
    /// and another one reconciles the try.
    pub(crate) claims: Claims,
    running: Mutex<Running>,
    /// A try finished: a slot is free.
    freed: tokio::sync::Notify,
    /// Stalled attempts already reported by this process (the outbox key
    /// keeps it to one email across restarts).
    alerted: Mutex<HashSet<String>>,
}

/// What runs in this process now.
#[derive(Default)]
struct Running {
    steps: HashSet<(UserId, PlanId, String)>,
    per_user: HashMap<UserId, usize>,
    per_plan: HashMap<(UserId, PlanId), usize>,
}

/// A slot taken for one try; given back when dropped.
pub(crate) struct Slot {
    executor: Arc<Executor>,
    key: (UserId, PlanId, String),
    /// The step's lease among instances, given back with the slot.
    held: Option<Held>,
}

impl Slot {
    /// Gives the step's lease back, then the slot.
    async fn finish(mut self) {
        if let Some(held) = self.held.take() {
            held.release().await;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut r) = self.executor.running.lock() {
            let (user, plan, _) = &self.key;
            r.steps.remove(&self.key);
            self.executor.service.metrics().steps_running.dec();
            if let Some(n) = r.per_user.get_mut(user) {
                *n -= 1;
                if *n == 0 {
                    r.per_user.remove(user);
                }
            }
            if let Some(n) = r.per_plan.get_mut(&(user.clone(), *plan)) {
                *n -= 1;
                if *n == 0 {
                    r.per_plan.remove(&(user.clone(), *plan));
                }
            }
        }
        self.executor.freed.notify_one();
    }
}

impl Executor {
    #[allow(clippy::too_many_arguments)] // the engine's parts, each named once here
    pub(crate) fn new(
        store: Arc<dyn Store>,
        service: Service,
        actions: Actions,
        caller: Caller,
        mail: Arc<Mail>,
        links: Links,
        templates: Arc<Templates>,
        config: EngineConfig,
        clock: Clock,
        tasks: TaskTracker,
        replanner: Replanner,
        claims: Claims,
    ) -> Arc<Executor> {
        Arc::new(Executor {
            store,
            service,
            actions,
            caller,
            mail,
            links,
            templates,
            config,
            clock,
            tasks,
            replanner,
            claims,
            running: Mutex::new(Running::default()),
            freed: tokio::sync::Notify::new(),
            alerted: Mutex::new(HashSet::new()),
        })
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Runs until `stop`: starts what is due, then sleeps until the next
    /// due time, a plan write, or a freed slot.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        tracing::info!("execution engine started");
        let signal = self.store.work_signal();
        loop {
            let changed = signal.notified();
            let freed = self.freed.notified();
            let sleep = match self.pass(&stop).await {
                Ok(sleep) => sleep,
                Err(e) => {
                    tracing::error!(error = %e, "the engine could not read its work; trying again shortly");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = changed => {}
                _ = freed => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
        tracing::info!("execution engine stopped");
    }

    /// Starts every due step and attempt a slot is free for; returns how
    /// long to sleep.
    pub(crate) async fn pass(self: &Arc<Self>, stop: &CancellationToken) -> Result<Duration, StoreError> {
        let now = self.now();
        // Attempts first: they are older than anything new in the work list.
        let open = self.store.open_attempts(BATCH).await?;
        self.report_stalled(&open).await;
        let mut next: Option<DateTime<Utc>> = None;
        for attempt in open {
            let due = match attempt.state {
                AttemptState::Waiting => attempt.next_try_at <= now,
                _ => true,
            };
            if !due {
                next = Some(next.map_or(attempt.next_try_at, |n| n.min(attempt.next_try_at)));
                continue;
            }
            let place = (attempt.user.clone(), attempt.plan_id, attempt.step_id.clone());
            // Held back by a limit: it starts when a slot frees (`freed`).
            if let Some(slot) = self.take_slot(&place, None)
                && let Some(slot) = self.claim(slot).await?
            {
                self.spawn_attempt(attempt, slot, stop);
            }
        }
        // Page on past steps held back by a user's or a plan's limit, so one
        // user's backlog never hides another user's ready step.
        let mut after: Option<StepRef> = None;
        for _ in 0..PAGES {
            let page = self.store.due_steps(now, after.as_ref(), BATCH).await?;
            let full = page.len() == BATCH;
            for step in page {
                let place = (step.user.clone(), step.plan_id, step.step_id.clone());
                after = Some(step.clone());
                if let Some(slot) = self.take_slot(&place, Some(&step))
                    && let Some(slot) = self.claim(slot).await?
                {
                    self.spawn_start(step, slot, stop);
                }
            }
            if !full || self.is_full() {
                break;
            }
        }
        // The soonest step not yet due: one already due but held back by a
        // limit is retried when a slot frees, and must not hide it.
        if let Some(at) = self.store.next_step_at(now).await? {
            next = Some(next.map_or(at, |n| n.min(at)));
        }
        let until = next.map_or(MAX_SLEEP, |at| (at - now).to_std().unwrap_or_default().min(MAX_SLEEP));
        Ok(until)
    }

    /// Every global slot is taken.
    fn is_full(&self) -> bool {
        self.running
            .lock()
            .map_or(true, |r| r.steps.len() >= self.config.max_concurrency)
    }

    /// A slot for one try at `place`, if the limits allow one now.
    fn take_slot(self: &Arc<Self>, place: &(UserId, PlanId, String), new: Option<&StepRef>) -> Option<Slot> {
        let mut r = self.running.lock().ok()?;
        let (user, plan, _) = place;
        let per_plan = match new {
            Some(step) if step.one_at_a_time => 1,
            _ => self.config.per_plan,
        };
        if r.steps.contains(place)
            || r.steps.len() >= self.config.max_concurrency
            || r.per_user.get(user).copied().unwrap_or(0) >= self.config.per_user
            || r.per_plan.get(&(user.clone(), *plan)).copied().unwrap_or(0) >= per_plan
        {
            return None;
        }
        r.steps.insert(place.clone());
        self.service.metrics().steps_running.inc();
        *r.per_user.entry(user.clone()).or_default() += 1;
        *r.per_plan.entry((user.clone(), *plan)).or_default() += 1;
        Some(Slot {
            executor: self.clone(),
            key: place.clone(),
            held: None,
        })
    }

    /// The slot with the step's lease, if no other instance holds it.
    async fn claim(&self, mut slot: Slot) -> Result<Option<Slot>, StoreError> {
        let (user, plan, step) = &slot.key;
        let name = format!("step:{user}:{plan}:{step}");
        Ok(self.claims.hold(&name, STEP_LEASE).await?.map(|held| {
            slot.held = Some(held);
            slot
        }))
    }

    fn spawn_start(self: &Arc<Self>, step: StepRef, slot: Slot, stop: &CancellationToken) {
        let this = self.clone();
        let stop = stop.clone();
        self.tasks.spawn(async move {
            let span =
                tracing::info_span!("step", user_id = %step.user, plan_id = %step.plan_id, step_id = %step.step_id);
            let work = tracing::Instrument::instrument(this.start(step), span);
            finish_or_abandon(work, &stop).await;
            slot.finish().await;
        });
    }

    fn spawn_attempt(self: &Arc<Self>, attempt: Attempt, slot: Slot, stop: &CancellationToken) {
        let this = self.clone();
        let stop = stop.clone();
        self.tasks.spawn(async move {
            let span = tracing::info_span!("step", user_id = %attempt.user, plan_id = %attempt.plan_id,
                step_id = %attempt.step_id, tool = %attempt.tool, epoch = attempt.epoch);
            let work = tracing::Instrument::instrument(this.resume(attempt), span);
            finish_or_abandon(work, &stop).await;
            slot.finish().await;
        });
    }
}

/// How long a try may go on once the server is stopping (below the
/// server's shutdown grace).
const FINISH_ON_STOP: Duration = Duration::from_secs(5);

/// Runs one try to its end; once the server stops, gives it
/// `FINISH_ON_STOP` more (an abandoned call is an outcome to reconcile at
/// the next start, so it is worth finishing), then lets it go.
async fn finish_or_abandon(
    work: impl std::future::Future<Output = Result<(), run::RunError>>,
    stop: &CancellationToken,
) {
    tokio::pin!(work);
    let done = tokio::select! {
        done = &mut work => Some(done),
        _ = stop.cancelled() => tokio::time::timeout(FINISH_ON_STOP, &mut work).await.ok(),
    };
    match done {
        Some(Ok(())) => {}
        Some(Err(e)) => tracing::error!(error = %e, "a tool step could not be recorded; it is tried again later"),
        None => tracing::warn!("a tool call was still running at shutdown; it is reconciled at the next start"),
    }
}
