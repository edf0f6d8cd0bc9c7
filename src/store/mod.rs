//! Durable storage, one narrow trait per aggregate:
//!
//! | trait | holds |
//! |---|---|
//! | [`PlanStore`] | plans, their history, proposals |
//! | [`ConversationStore`] | the transcript |
//! | [`TriggerStore`] | armed triggers and the exactly-once record of firings |
//! | [`NotificationStore`] | the notification inbox and the outbox of side effects |
//! | [`AccountStore`] | users, preferences, push subscriptions, secrets |
//! | [`ExecutionStore`] | the engine's work list, attempts at tool steps, calendar events |
//!
//! [`Store`] is all of them over one database, so one change can span
//! aggregates atomically (a plan write and the triggers it implies; a
//! firing and the notification and outbox rows it makes). The store stores:
//! what a change implies (which triggers a plan needs, whether a change
//! needs a yes) is decided by the plan service and handed in.
//!
//! Every write returns only after its data is flushed to disk, so callers
//! may acknowledge as soon as it returns — except a transcript entry
//! appended with [`Flush::WithNextWrite`] and the running summary, which
//! the caller's next flushed write carries to disk. Every read and write is scoped by
//! user: another user's ids are simply not found. The same conformance
//! suite (`conformance`) runs against every implementation.

#[cfg(test)]
pub(crate) mod conformance;
mod memory;
pub mod postgres;
pub(crate) mod sled;
pub mod snapshot;

use crate::conversation::Entry;
use crate::conversation::window::Summary;
use crate::execution::{Attempt, CalendarEvent, Runnable, StepRef};
use crate::notification::{Notification, NotificationKind, OutboxItem, PushSubscription};
use crate::plan::{HistoryEntry, Plan, PlanId};
use crate::preferences::Preferences;
use crate::proposal::Proposal;
use crate::triggers::{Outcome, Trigger};
use crate::user::UserId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;

pub use self::postgres::{PostgresOptions, PostgresStore};
pub use self::sled::{Salvage, SledStore};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The plan changed since the caller read it; the caller shows or retries
    /// against `current`.
    #[error("plan {} is at version {}", .current.id, .current.version)]
    Conflict { current: Box<Plan> },
    #[error("plan {0} not found")]
    PlanNotFound(PlanId),
    /// The proposal was answered meanwhile (e.g. a retried yes).
    #[error("proposal {} is no longer open", .current.id)]
    ProposalClosed { current: Box<Proposal> },
    /// Another process holds the data directory.
    #[error("the data directory {path} is in use by another steward process ({detail})")]
    Locked { path: String, detail: String },
    /// A record that cannot be decoded: served data would be wrong, so the
    /// read fails instead.
    #[error("corrupt record in {tree} ({reason}); restore the data directory from a backup")]
    Corrupt { tree: &'static str, reason: String },
    /// The data directory cannot be read whole: serving it would act on
    /// part of the data as if it were all.
    #[error(
        "the data directory {path} is damaged ({detail}); nothing was changed. Save what can still be read with \
         `steward export --salvage --data {path} --out rescue.jsonl`, then `steward import --data <new directory> \
         rescue.jsonl` (or restore a backup)"
    )]
    Damaged { path: String, detail: String },
    #[error("storage failure: {0}")]
    Backend(String),
}

/// The triggers a plan implies, as the plan service derived them, and the
/// instant before which a trigger not already armed is not armed (a change
/// never arms a "due soon" that is already past when it is written).
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    pub triggers: Vec<Trigger>,
    pub arm_after: DateTime<Utc>,
    /// The plan's steps the engine may start ([`crate::execution::runnable`]).
    pub runnable: Vec<Runnable>,
}

/// Derives a plan's triggers once the store knows the plan as written (a
/// new plan's id is assigned inside the transaction). Pure.
pub(crate) type Derive<'a> = &'a (dyn Fn(&Plan) -> Derived + Send + Sync);

/// Plans, their history and proposals.
#[async_trait]
pub trait PlanStore: Send + Sync {
    /// All of the user's plans, active or not, oldest first.
    async fn list_plans(&self, user: &UserId) -> Result<Vec<Plan>, StoreError>;

    async fn get_plan(&self, user: &UserId, id: PlanId) -> Result<Option<Plan>, StoreError>;

    /// Stores a new plan with the next free id for this user, its first
    /// history entry and the triggers `derive` gives for it, atomically.
    /// Returns the plan as stored.
    async fn create_plan(
        &self,
        user: &UserId,
        draft: Plan,
        entry: HistoryEntry,
        derive: Derive<'_>,
    ) -> Result<Plan, StoreError>;

    /// Replaces a plan if it is still at `expected_version`, appending
    /// `entry` to its history and syncing its triggers (see
    /// [`TriggerStore`]) in the same transaction; `Conflict` otherwise.
    async fn update_plan(
        &self,
        user: &UserId,
        plan: &Plan,
        expected_version: u64,
        entry: HistoryEntry,
        derive: Derive<'_>,
    ) -> Result<(), StoreError>;

    /// History of one plan, newest first, at most `limit` entries.
    async fn history(&self, user: &UserId, id: PlanId, limit: usize) -> Result<Vec<HistoryEntry>, StoreError>;

    /// Stores a new proposal with the next free id for this user ("r1", …).
    async fn create_proposal(&self, user: &UserId, draft: Proposal) -> Result<Proposal, StoreError>;

    /// Records a decision that applies nothing (declined, superseded,
    /// stale) on a proposal that is still open, in one transaction;
    /// `ProposalClosed` with the stored one if it was decided meanwhile (an
    /// accept is never overwritten by a late no).
    async fn close_proposal(&self, user: &UserId, proposal: &Proposal) -> Result<(), StoreError>;

    async fn get_proposal(&self, user: &UserId, id: &str) -> Result<Option<Proposal>, StoreError>;

    /// The user's open proposals, oldest first.
    async fn open_proposals(&self, user: &UserId) -> Result<Vec<Proposal>, StoreError>;

    /// Applies an accepted proposal and records it as accepted in one
    /// transaction, so a crash or a repeated yes can never apply it twice.
    /// The stored proposal must still be open (`ProposalClosed`), and an
    /// update's plan still at its expected version (`Conflict`). Returns the
    /// stored plan.
    async fn accept_proposal(
        &self,
        user: &UserId,
        accepted: &Proposal,
        change: Accepted,
        derive: Derive<'_>,
    ) -> Result<Plan, StoreError>;
}

/// The plan change an accepted proposal makes.
#[derive(Debug, Clone)]
pub enum Accepted {
    Create {
        draft: Plan,
        entry: HistoryEntry,
    },
    Update {
        plan: Plan,
        expected_version: u64,
        entry: HistoryEntry,
    },
}

/// When an appended transcript entry must be on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// Before `append_message` returns: the entry may be shown or
    /// acknowledged at once (what the user said, what steward answers).
    Now,
    /// With the next flushed write, which on every store also covers this
    /// entry (written earlier on the same database). For the tool traffic
    /// inside a turn: nobody is told anything on its strength, the turn's
    /// reply is flushed before it is sent, and a crash before that loses
    /// only entries that nothing had shown yet.
    WithNextWrite,
}

/// The transcript: what the user, the model and the tools said.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    async fn append_message(&self, user: &UserId, entry: &Entry, flush: Flush) -> Result<(), StoreError>;

    /// The last `limit` conversation entries, oldest first.
    async fn recent_messages(&self, user: &UserId, limit: usize) -> Result<Vec<Entry>, StoreError>;

    /// The running summary of the turns older than the model's window.
    async fn summary(&self, user: &UserId) -> Result<Summary, StoreError>;

    /// Replaces the running summary, on disk with the next flushed write
    /// (as [`Flush::WithNextWrite`]): a summary is derived from stored
    /// turns and shown to nobody, and the turn that folds it ends in a
    /// flushed reply. A crash before that keeps the previous summary.
    async fn save_summary(&self, user: &UserId, summary: &Summary) -> Result<(), StoreError>;
}

/// A notification to store when a trigger fires; the store assigns its id.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationDraft {
    pub kind: NotificationKind,
    pub text: String,
    pub plan_id: Option<PlanId>,
    pub step_id: Option<String>,
    pub urgent: bool,
}

/// Everything one firing writes, atomically with removing the trigger and
/// recording (trigger id, scheduled time) as fired.
#[derive(Debug, Clone)]
pub struct Firing {
    pub outcome: Outcome,
    pub at: DateTime<Utc>,
    /// Stored in the inbox and queued for routing.
    pub notifications: Vec<NotificationDraft>,
    /// Side effects decided by the firing (a digest email), deduplicated
    /// by their idempotency keys.
    pub outbox: Vec<OutboxItem>,
    /// The next occurrence of a recurring trigger.
    pub rearm: Option<Trigger>,
    /// A digest listed missed triggers: moves the user's digest cursor.
    pub digest_cursor: Option<DigestCursor>,
}

/// Missed triggers recorded up to `through` were listed in the digest
/// whose outbox row has idempotency key `key`. The cursor moves only if
/// that row is stored by this firing: a deduplicated row is an earlier
/// decision for the same period, and what this firing's render listed was
/// never sent.
#[derive(Debug, Clone, PartialEq)]
pub struct DigestCursor {
    pub key: String,
    pub through: DateTime<Utc>,
}

/// A trigger that was missed (came due past the catch-up window).
#[derive(Debug, Clone, PartialEq)]
pub struct Missed {
    pub trigger: Trigger,
    pub at: DateTime<Utc>,
}

/// Armed triggers, soonest first across users, and the record of every
/// firing. A plan's derived triggers are synced by [`PlanStore`] writes:
/// triggers derived from the plan before and not any more are disarmed; one
/// still armed at the same instant stays armed; a new one is armed unless
/// its time is not after [`Derived::arm_after`] or that very firing is
/// already recorded.
#[async_trait]
pub trait TriggerStore: Send + Sync {
    /// Woken whenever triggers may have changed, so the scheduler re-reads
    /// the earliest one.
    fn timer_signal(&self) -> Arc<tokio::sync::Notify>;

    /// Stores (or moves) a trigger that is not derived from a plan: a
    /// reminder. A trigger with the same id is replaced.
    async fn put_trigger(&self, trigger: &Trigger) -> Result<(), StoreError>;

    /// Removes a stored trigger by id; false if there was none.
    async fn remove_trigger(&self, user: &UserId, id: &str) -> Result<bool, StoreError>;

    /// The user's armed triggers, soonest first.
    async fn user_triggers(&self, user: &UserId) -> Result<Vec<Trigger>, StoreError>;

    /// Armed triggers due at `now`, across users, oldest first.
    async fn due_triggers(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Trigger>, StoreError>;

    async fn next_trigger_at(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    async fn trigger_count(&self) -> Result<usize, StoreError>;

    /// Fires a trigger exactly once: if it is still armed at the same time,
    /// removes it, records the firing, stores `firing`'s notifications and
    /// outbox rows and arms `rearm`, in one transaction. `None` if the
    /// trigger was moved, removed or already fired meanwhile.
    async fn fire(&self, trigger: &Trigger, firing: Firing) -> Result<Option<Vec<Notification>>, StoreError>;

    /// Up to when missed triggers were last reported in a digest.
    async fn digest_cursor(&self, user: &UserId) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Triggers of this user recorded as missed after `since`.
    async fn missed_since(&self, user: &UserId, since: DateTime<Utc>) -> Result<Vec<Missed>, StoreError>;
}

/// The notification inbox (routing queue included) and the outbox of side
/// effects, each row stored with its idempotency key before it is tried.
#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// Notifications waiting to be routed whose time has come.
    async fn due_notifications(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(UserId, Notification)>, StoreError>;

    /// Records how a notification was routed, the side effects that carry
    /// it and (once) its entry in the conversation, in one transaction; with
    /// `defer_until` it stays queued until then (quiet hours).
    ///
    /// Routing is decided on a copy read earlier (wording may take seconds),
    /// so the stored notification is read again inside the transaction: if
    /// it is no longer queued (routed meanwhile), or was shown on a socket
    /// while `notification` is still unseen, nothing is written and the
    /// answer is `false`. The caller routes it again from the stored state,
    /// so a `seen` set meanwhile is never overwritten and a notification
    /// already shown never also goes out by push or email.
    async fn route_notification(
        &self,
        user: &UserId,
        notification: &Notification,
        outbox: Vec<OutboxItem>,
        defer_until: Option<DateTime<Utc>>,
        transcript: Option<Entry>,
    ) -> Result<bool, StoreError>;

    /// Notifications not yet shown on any socket, oldest first.
    async fn unseen_notifications(&self, user: &UserId, limit: usize) -> Result<Vec<Notification>, StoreError>;

    /// The most recent notifications, newest first.
    async fn recent_notifications(&self, user: &UserId, limit: usize) -> Result<Vec<Notification>, StoreError>;

    async fn mark_seen(&self, user: &UserId, ids: &[String]) -> Result<(), StoreError>;

    /// Stores outbox items whose keys are new; returns the ones stored.
    async fn enqueue(&self, items: Vec<OutboxItem>) -> Result<Vec<OutboxItem>, StoreError>;

    /// Pending (and interrupted) outbox items whose attempt time has come.
    async fn due_outbox(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<OutboxItem>, StoreError>;

    /// Saves an outbox item's new status.
    async fn save_outbox(&self, item: &OutboxItem) -> Result<(), StoreError>;

    async fn outbox_by_key(&self, key: &str) -> Result<Option<OutboxItem>, StoreError>;

    /// How many outbox items are open (pending, or interrupted while
    /// sending) and when the oldest of them was made: what `/metrics`
    /// reports as the outbox's depth and age.
    async fn outbox_backlog(&self) -> Result<Backlog, StoreError>;

    /// Stores a notification made outside a trigger firing (a step the
    /// engine ran or could not run), queued for routing from `at`.
    async fn add_notification(
        &self,
        user: &UserId,
        draft: NotificationDraft,
        at: DateTime<Utc>,
    ) -> Result<Notification, StoreError>;
}

/// The execution engine's records. The work list (tool steps ready to
/// start, soonest first across users) is synced by every [`PlanStore`]
/// write from [`Derived::runnable`], in the same transaction; attempts are
/// written by the engine, each flushed before the call it announces.
#[async_trait]
pub trait ExecutionStore: Send + Sync {
    /// Woken whenever the work list may have changed.
    fn work_signal(&self) -> Arc<tokio::sync::Notify>;

    /// Runnable steps whose time has come, across users, soonest first;
    /// with `after`, those listed after that one (the next page).
    async fn due_steps(
        &self,
        now: DateTime<Utc>,
        after: Option<&StepRef>,
        limit: usize,
    ) -> Result<Vec<StepRef>, StoreError>;

    /// The soonest time in the work list after `after`.
    async fn next_step_at(&self, after: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Stores an attempt (replacing the one of the same step and epoch).
    async fn save_attempt(&self, attempt: &Attempt) -> Result<(), StoreError>;

    /// The latest epoch's attempt at a step.
    async fn last_attempt(&self, user: &UserId, plan: PlanId, step: &str) -> Result<Option<Attempt>, StoreError>;

    /// Attempts not yet settled, across users, soonest `next_try_at` first.
    async fn open_attempts(&self, limit: usize) -> Result<Vec<Attempt>, StoreError>;

    /// Counts one more replan of a plan; returns the new count.
    async fn count_replan(&self, user: &UserId, plan: PlanId) -> Result<u32, StoreError>;

    /// Stores a calendar event under its key unless one is stored: false
    /// when the key was already there (a repeated call changes nothing).
    async fn add_event(&self, user: &UserId, event: &CalendarEvent) -> Result<bool, StoreError>;

    /// The user's calendar events, soonest first.
    async fn events(&self, user: &UserId) -> Result<Vec<CalendarEvent>, StoreError>;
}

/// Users and what belongs to them beyond plans: preferences, push
/// subscriptions; and the server's named secrets.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Makes sure the user exists; idempotent.
    async fn ensure_user(&self, user: &UserId) -> Result<(), StoreError>;

    /// Every registered user.
    async fn users(&self) -> Result<Vec<UserId>, StoreError>;

    async fn preferences(&self, user: &UserId) -> Result<Preferences, StoreError>;

    /// Saves preferences and replaces the user's digest trigger with
    /// `digest` (none: no digest armed), atomically, if nothing changed
    /// since the caller read: the stored preferences still equal `read`
    /// (the defaults when none are stored) and the armed digest still fires
    /// at `armed` (what the caller computed `digest` from; `None`: none was
    /// armed). Otherwise another request saved, or the scheduler fired (and
    /// re-armed) the digest, meanwhile: nothing is written and the answer
    /// is `false`, so the caller reads and computes again.
    async fn save_preferences(
        &self,
        user: &UserId,
        read: &Preferences,
        prefs: &Preferences,
        armed: Option<DateTime<Utc>>,
        digest: Option<Trigger>,
    ) -> Result<bool, StoreError>;

    async fn push_subscriptions(&self, user: &UserId) -> Result<Vec<PushSubscription>, StoreError>;

    /// Stores a subscription for `user`; an endpoint belongs to the user
    /// who subscribed it last (another user's copy is removed).
    async fn add_push_subscription(&self, user: &UserId, sub: &PushSubscription) -> Result<(), StoreError>;

    async fn remove_push_subscription(&self, user: &UserId, endpoint: &str) -> Result<(), StoreError>;

    /// A named secret (the VAPID key): read, or created with `init` and
    /// flushed on first use.
    async fn secret(&self, name: &str, init: Vec<u8>) -> Result<Vec<u8>, StoreError>;
}

/// A token bucket's shape: it holds at most `capacity` tokens and refills
/// that many over `period`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub capacity: f64,
    pub period: std::time::Duration,
}

impl Budget {
    pub fn per_minute(n: u32) -> Budget {
        Budget {
            capacity: f64::from(n),
            period: std::time::Duration::from_secs(60),
        }
    }

    pub fn per_day(n: u32) -> Budget {
        Budget {
            capacity: f64::from(n),
            period: std::time::Duration::from_secs(86_400),
        }
    }

    /// Tokens refilled per millisecond.
    pub(crate) fn per_ms(self) -> f64 {
        self.capacity / (self.period.as_secs_f64() * 1000.0).max(1.0)
    }
}

/// What to spend from a bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Spend {
    /// This many, if they are there.
    Take(f64),
    /// This many whatever is left (what was used already, such as model
    /// tokens reported after a call), down to a debt of one capacity that
    /// refills before anything more is taken.
    Charge(f64),
}

/// Work that any of several instances on one database could do is claimed
/// first: a lease on a name (`outbox:KEY`, `step:…`, `turn:USER`), held by
/// one instance until it gives it back or the lease runs out. An instance
/// that dies holding leases loses them when they run out, and another one
/// takes the work over. On sled one process holds every lease, and the
/// store keeps them in memory: a restart frees them all, as it should (the
/// process that held them is gone).
///
/// Instants are the caller's clock; instances on one database keep their
/// clocks in step (NTP) to well within a lease.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes the leases on `names` that are free, ran out by `now`, or are
    /// `holder`'s already (renewed), until `until`; returns the names
    /// taken, in the order asked. A lease row another claimer has locked
    /// is skipped, not waited for (a name being inserted by another
    /// claimer this very moment is waited for, briefly, and not taken).
    async fn claim(
        &self,
        holder: &str,
        names: &[String],
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError>;

    /// Gives back those of `names` that `holder` holds.
    async fn release(&self, holder: &str, names: &[String]) -> Result<(), StoreError>;

    /// Spends from the token bucket `name`, shaped by `budget` and shared
    /// by every instance: `Err` says how long until a `Take` could be
    /// served (nothing is taken then).
    async fn spend(
        &self,
        name: &str,
        budget: Budget,
        spend: Spend,
        now: DateTime<Utc>,
    ) -> Result<Result<(), std::time::Duration>, StoreError>;

    /// Takes one token from the bucket `name` (refilled at `per_minute`,
    /// holding at most `per_minute`).
    async fn take_token(
        &self,
        name: &str,
        per_minute: u32,
        now: DateTime<Utc>,
    ) -> Result<Result<(), std::time::Duration>, StoreError> {
        self.spend(name, Budget::per_minute(per_minute), Spend::Take(1.0), now)
            .await
    }
}

/// Every aggregate over one database.
#[async_trait]
pub trait Store:
    PlanStore + ConversationStore + TriggerStore + NotificationStore + AccountStore + ExecutionStore + LeaseStore + 'static
{
    /// Removes what is finished and older than `before`: fired-trigger
    /// records, notifications already routed, sent or failed outbox rows
    /// (with their idempotency keys). Nothing queued, pending or armed is
    /// touched.
    async fn prune(&self, before: DateTime<Utc>) -> Result<Pruned, StoreError>;

    /// Waits until no write started before this call is still running in
    /// the background (a flush whose caller stopped waiting), so a store
    /// dropped afterwards is closed.
    async fn quiesce(&self);

    /// Writes and flushes a probe record: the store takes writes now
    /// (`/readyz`).
    async fn probe(&self) -> Result<(), StoreError>;

    /// Why the store can take no more writes until the process restarts
    /// (sled keeps failing after a write error such as a full disk, even
    /// once space returns); `None` while it works.
    async fn broken(&self) -> Option<String> {
        None
    }

    /// Times every durable commit from now on into `histogram` (the
    /// `steward_store_commit_seconds` series).
    fn time_commits(&self, histogram: prometheus_client::metrics::histogram::Histogram);

    /// Whether other processes (instances) may write this store too, so
    /// nothing read earlier can be assumed current.
    fn shared(&self) -> bool;
}

/// The open part of the outbox ([`NotificationStore::outbox_backlog`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    pub open: u64,
    /// When the oldest open item was made.
    pub oldest: Option<DateTime<Utc>>,
}

/// What [`Store::prune`] removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub fired: usize,
    pub notifications: usize,
    pub outbox: usize,
}
