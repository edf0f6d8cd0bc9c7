//! The store conformance suite: what every [`Store`] implementation must
//! do, checked the same way for each. A backend runs it with
//! `conformance::suite!(make)` in its tests (or `suite!(optional make)`
//! where `make` may answer `None`: the backend cannot run here), where `make` is an async fn
//! returning `(guard, store)` for a fresh, empty store (the guard keeps its
//! files alive). Covered: isolation by user (ids that share prefixes),
//! optimistic versions, atomicity of a plan write with its triggers and of
//! a firing with its notifications and outbox rows, ordering of every
//! listing, and the exactly-once records (a proposal accepted once, a
//! trigger fired once, an outbox row per idempotency key).

use super::{Accepted, Backlog, Derived, DigestCursor, Firing, NotificationDraft, Store, StoreError};
use crate::conversation::{Entry, Message};
use crate::notification::{NotificationKind, OutboxItem, OutboxStatus, Payload, PushSubscription};
use crate::plan::{Actor, Change, HistoryEntry, Plan, PlanId, Step};
use crate::preferences::Preferences;
use crate::proposal::{Action, Proposal, ProposalStatus};
use crate::store::Flush;
use crate::triggers::{Outcome, Trigger, TriggerKind};
use crate::user::UserId;
use chrono::{DateTime, Duration, TimeZone, Utc};

/// Instantiates every conformance test for a backend.
macro_rules! suite {
    ($make:path) => {
        $crate::store::conformance::suite!(@names @each $make);
    };
    // `make` answers `None` where the backend cannot run here (it says why).
    (optional $make:path) => {
        $crate::store::conformance::suite!(@names @optional $make);
    };
    (@names @$how:ident $make:path) => {
        $crate::store::conformance::suite!(@$how $make;
            plans_are_isolated_by_user_even_when_names_share_a_prefix,
            plan_ids_count_per_user,
            a_stale_version_is_refused_with_the_current_plan_and_nothing_written,
            history_is_newest_first_and_bounded,
            a_plan_write_syncs_the_triggers_it_derives_in_the_same_transaction,
            an_accepted_proposal_applies_once_even_if_the_yes_comes_twice,
            an_accept_against_a_moved_plan_is_a_conflict_and_leaves_the_proposal_open,
            open_proposals_are_the_open_ones_oldest_first,
            the_transcript_returns_the_last_entries_in_order_flushed_or_not,
            a_running_summary_is_kept_per_user,
            a_trigger_fires_once_and_a_moved_or_removed_one_not_at_all,
            due_triggers_come_soonest_first_across_users,
            a_firing_writes_its_notifications_outbox_rows_and_next_occurrence_together,
            the_digest_cursor_moves_only_with_a_stored_digest,
            outbox_rows_are_stored_once_per_idempotency_key_and_due_by_attempt_time,
            the_outbox_backlog_counts_open_rows_and_dates_the_oldest,
            a_routing_decision_is_not_recorded_over_a_notification_shown_meanwhile,
            preferences_save_only_while_the_armed_digest_is_unchanged,
            a_push_endpoint_belongs_to_the_user_who_subscribed_it_last,
            a_secret_is_created_once,
            pruning_removes_finished_records_only,
            a_plan_write_syncs_the_work_list_in_the_same_transaction,
            attempts_keep_the_latest_epoch_and_list_the_open_ones,
            replans_count_per_plan_and_events_are_kept_once_per_key,
            a_notification_made_outside_a_firing_is_queued_for_routing,
            a_lease_has_one_holder_until_it_is_given_back_or_runs_out,
            a_message_budget_is_shared_and_refills_at_its_rate,
            a_daily_budget_takes_charges_into_debt_and_refills_over_the_day
        );
    };
    (@each $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (_guard, store) = $make().await;
                $crate::store::conformance::$name(&store).await;
            }
        )*
    };
    (@optional $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let Some((_guard, store)) = $make().await else { return };
                $crate::store::conformance::$name(&store).await;
            }
        )*
    };
}
pub(crate) use suite;

mod accounts;
mod delivery;
mod engine;
mod leases;
mod plans;
mod timers;

pub(crate) use accounts::*;
pub(crate) use delivery::*;
pub(crate) use engine::*;
pub(crate) use leases::*;
pub(crate) use plans::*;
pub(crate) use timers::*;

pub(super) fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap()
}

pub(super) async fn user(store: &dyn Store, name: &str) -> UserId {
    let user = UserId::parse(name).unwrap();
    store.ensure_user(&user).await.unwrap();
    user
}

pub(crate) fn entry(version: u64, changes: Vec<Change>) -> HistoryEntry {
    HistoryEntry {
        at: t0(),
        actor: Actor::User,
        why: "test".into(),
        version,
        changes,
        undoes: None,
    }
}

pub(crate) fn no_triggers(plan: &Plan) -> Derived {
    Derived {
        triggers: Vec::new(),
        arm_after: plan.updated_at,
        runnable: Vec::new(),
    }
}

pub(crate) fn draft(title: &str) -> Plan {
    let mut plan = Plan::draft(title, "", t0());
    plan.version = 1;
    plan.steps.push(Step::new("a", "first"));
    plan
}

pub(super) async fn create(store: &dyn Store, user: &UserId, title: &str) -> Plan {
    store
        .create_plan(user, draft(title), entry(1, vec![]), &no_triggers)
        .await
        .unwrap()
}

/// A reminder due at `fire_at`.
pub(crate) fn reminder(user: &UserId, id: &str, fire_at: DateTime<Utc>) -> Trigger {
    Trigger {
        id: id.into(),
        user: user.clone(),
        fire_at,
        created_at: fire_at - Duration::hours(1),
        kind: TriggerKind::Reminder {
            text: format!("{id} for {user}"),
            lapse_on_reply: false,
        },
    }
}

/// A derived trigger of plan `plan` for step `step`, due at `fire_at`.
pub(crate) fn overdue(user: &UserId, plan: PlanId, step: &str, fire_at: DateTime<Utc>) -> Trigger {
    Trigger {
        id: format!("overdue:{plan}:{step}"),
        user: user.clone(),
        fire_at,
        created_at: t0(),
        kind: TriggerKind::StepOverdue {
            plan_id: plan,
            step_id: step.into(),
            due_at: fire_at,
        },
    }
}

pub(super) fn ids(triggers: &[Trigger]) -> Vec<(&str, DateTime<Utc>)> {
    triggers.iter().map(|t| (t.id.as_str(), t.fire_at)).collect()
}

pub(crate) fn firing(at: DateTime<Utc>) -> Firing {
    Firing {
        outcome: Outcome::Fired,
        at,
        notifications: Vec::new(),
        outbox: Vec::new(),
        rearm: None,
        digest_cursor: None,
    }
}

pub(crate) fn webhook(user: &UserId, key: &str, now: DateTime<Utc>) -> OutboxItem {
    OutboxItem::new(
        user,
        key.into(),
        Payload::Webhook {
            url: "https://hooks.example/x".into(),
            body: "{}".into(),
        },
        now,
    )
}

pub(crate) fn open_proposal(action: Action, plan_id: Option<PlanId>, base_version: u64) -> Proposal {
    Proposal {
        id: String::new(),
        plan_id,
        base_version,
        summary: "change".into(),
        changes: vec![],
        status: ProposalStatus::Open,
        why: "test".into(),
        created_at: t0(),
        decided_at: None,
        action: Some(action),
    }
}
