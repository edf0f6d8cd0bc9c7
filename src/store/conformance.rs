//! The store conformance suite: what every [`Store`] implementation must
//! do, checked the same way for each. A backend runs it with
//! `conformance::suite!(make)` in its tests, where `make` is an async fn
//! returning `(guard, store)` for a fresh, empty store (the guard keeps its
//! files alive). Covered: isolation by user (ids that share prefixes),
//! optimistic versions, atomicity of a plan write with its triggers and of
//! a firing with its notifications and outbox rows, ordering of every
//! listing, and the exactly-once records (a proposal accepted once, a
//! trigger fired once, an outbox row per idempotency key).

use super::{Accepted, Derived, DigestCursor, Firing, NotificationDraft, Store, StoreError};
use crate::conversation::{Entry, Message};
use crate::notification::{NotificationKind, OutboxItem, OutboxStatus, Payload, PushSubscription};
use crate::plan::{Actor, Change, HistoryEntry, Plan, PlanId, Step};
use crate::preferences::Preferences;
use crate::proposal::{Action, Proposal, ProposalStatus};
use crate::triggers::{Outcome, Trigger, TriggerKind};
use crate::user::UserId;
use chrono::{DateTime, Duration, TimeZone, Utc};

/// Instantiates every conformance test for a backend.
macro_rules! suite {
    ($make:path) => {
        $crate::store::conformance::suite!(@each $make;
            plans_are_isolated_by_user_even_when_names_share_a_prefix,
            plan_ids_count_per_user,
            a_stale_version_is_refused_with_the_current_plan_and_nothing_written,
            history_is_newest_first_and_bounded,
            a_plan_write_syncs_the_triggers_it_derives_in_the_same_transaction,
            an_accepted_proposal_applies_once_even_if_the_yes_comes_twice,
            an_accept_against_a_moved_plan_is_a_conflict_and_leaves_the_proposal_open,
            open_proposals_are_the_open_ones_oldest_first,
            the_transcript_returns_the_last_entries_in_order,
            a_trigger_fires_once_and_a_moved_or_removed_one_not_at_all,
            due_triggers_come_soonest_first_across_users,
            a_firing_writes_its_notifications_outbox_rows_and_next_occurrence_together,
            the_digest_cursor_moves_only_with_a_stored_digest,
            outbox_rows_are_stored_once_per_idempotency_key_and_due_by_attempt_time,
            a_routing_decision_is_not_recorded_over_a_notification_shown_meanwhile,
            preferences_save_only_while_the_armed_digest_is_unchanged,
            a_push_endpoint_belongs_to_the_user_who_subscribed_it_last,
            a_secret_is_created_once,
            pruning_removes_finished_records_only
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
}
pub(crate) use suite;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap()
}

async fn user(store: &dyn Store, name: &str) -> UserId {
    let user = UserId::parse(name).unwrap();
    store.ensure_user(&user).await.unwrap();
    user
}

fn entry(version: u64, changes: Vec<Change>) -> HistoryEntry {
    HistoryEntry {
        at: t0(),
        actor: Actor::User,
        why: "test".into(),
        version,
        changes,
        undoes: None,
    }
}

fn no_triggers(plan: &Plan) -> Derived {
    Derived {
        triggers: Vec::new(),
        arm_after: plan.updated_at,
    }
}

fn draft(title: &str) -> Plan {
    let mut plan = Plan::draft(title, "", t0());
    plan.version = 1;
    plan.steps.push(Step::new("a", "first"));
    plan
}

async fn create(store: &dyn Store, user: &UserId, title: &str) -> Plan {
    store
        .create_plan(user, draft(title), entry(1, vec![]), &no_triggers)
        .await
        .unwrap()
}

/// A reminder due at `fire_at`.
fn reminder(user: &UserId, id: &str, fire_at: DateTime<Utc>) -> Trigger {
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
fn overdue(user: &UserId, plan: PlanId, step: &str, fire_at: DateTime<Utc>) -> Trigger {
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

fn ids(triggers: &[Trigger]) -> Vec<(&str, DateTime<Utc>)> {
    triggers.iter().map(|t| (t.id.as_str(), t.fire_at)).collect()
}

fn firing(at: DateTime<Utc>) -> Firing {
    Firing {
        outcome: Outcome::Fired,
        at,
        notifications: Vec::new(),
        outbox: Vec::new(),
        rearm: None,
        digest_cursor: None,
    }
}

fn webhook(user: &UserId, key: &str, now: DateTime<Utc>) -> OutboxItem {
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

fn open_proposal(action: Action, plan_id: Option<PlanId>, base_version: u64) -> Proposal {
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
        action,
    }
}

pub(crate) async fn plans_are_isolated_by_user_even_when_names_share_a_prefix(store: &dyn Store) {
    let ann = user(store, "ann").await;
    let anna = user(store, "anna").await;
    for n in 0..11 {
        create(store, &ann, &format!("ann {n}")).await;
    }
    let theirs = create(store, &anna, "anna's").await;
    assert_eq!(theirs.id, PlanId(1));
    assert_eq!(store.list_plans(&ann).await.unwrap().len(), 11);
    let annas = store.list_plans(&anna).await.unwrap();
    assert_eq!(annas.iter().map(|p| p.title.as_str()).collect::<Vec<_>>(), ["anna's"]);
    assert_eq!(store.get_plan(&anna, PlanId(10)).await.unwrap(), None);
    assert_eq!(store.history(&anna, PlanId(10), 100).await.unwrap(), []);
    assert_eq!(store.history(&ann, PlanId(1), 100).await.unwrap().len(), 1);
    // History of plan 1 never includes plan 10 or 11.
    let stranger = UserId::parse("nobody").unwrap();
    assert!(store.list_plans(&stranger).await.unwrap().is_empty());
    assert_eq!(store.get_plan(&stranger, PlanId(1)).await.unwrap(), None);
}

pub(crate) async fn plan_ids_count_per_user(store: &dyn Store) {
    let u = user(store, "u").await;
    let titles: Vec<PlanId> = [
        create(store, &u, "one").await,
        create(store, &u, "two").await,
        create(store, &u, "three").await,
    ]
    .iter()
    .map(|p| p.id)
    .collect();
    assert_eq!(titles, [PlanId(1), PlanId(2), PlanId(3)]);
    // Oldest first.
    let listed: Vec<String> = store
        .list_plans(&u)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.title)
        .collect();
    assert_eq!(listed, ["one", "two", "three"]);
}

pub(crate) async fn a_stale_version_is_refused_with_the_current_plan_and_nothing_written(store: &dyn Store) {
    let u = user(store, "u").await;
    let plan = create(store, &u, "p").await;
    let mut v2 = plan.clone();
    v2.version = 2;
    v2.title = "renamed".into();
    let rename = vec![Change::PlanRenamed {
        from: "p".into(),
        to: "renamed".into(),
    }];
    store
        .update_plan(&u, &v2, 1, entry(2, rename), &no_triggers)
        .await
        .unwrap();
    let mut stale = plan.clone();
    stale.version = 2;
    stale.title = "lost".into();
    let derive_one = |p: &Plan| Derived {
        triggers: vec![overdue(&u, p.id, "a", t0() + Duration::days(3))],
        arm_after: t0(),
    };
    match store.update_plan(&u, &stale, 1, entry(2, vec![]), &derive_one).await {
        Err(StoreError::Conflict { current }) => assert_eq!(*current, v2),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.get_plan(&u, plan.id).await.unwrap(), Some(v2));
    let history = store.history(&u, plan.id, 10).await.unwrap();
    assert_eq!(history.iter().map(|h| h.version).collect::<Vec<_>>(), [2, 1]);
    assert_eq!(
        store.user_triggers(&u).await.unwrap(),
        [],
        "the refused write armed nothing"
    );
    let mut ghost = plan.clone();
    ghost.id = PlanId(9);
    assert!(matches!(
        store.update_plan(&u, &ghost, 1, entry(2, vec![]), &no_triggers).await,
        Err(StoreError::PlanNotFound(PlanId(9)))
    ));
}

pub(crate) async fn history_is_newest_first_and_bounded(store: &dyn Store) {
    let u = user(store, "u").await;
    let mut plan = create(store, &u, "p").await;
    for version in 2..=6 {
        let mut next = plan.clone();
        next.version = version;
        store
            .update_plan(&u, &next, plan.version, entry(version, vec![]), &no_triggers)
            .await
            .unwrap();
        plan = next;
    }
    let versions = |h: Vec<HistoryEntry>| h.into_iter().map(|e| e.version).collect::<Vec<_>>();
    assert_eq!(versions(store.history(&u, plan.id, 3).await.unwrap()), [6, 5, 4]);
    assert_eq!(
        versions(store.history(&u, plan.id, 100).await.unwrap()),
        [6, 5, 4, 3, 2, 1]
    );
}

pub(crate) async fn a_plan_write_syncs_the_triggers_it_derives_in_the_same_transaction(store: &dyn Store) {
    let u = user(store, "u").await;
    let (d1, d2, d3) = (
        t0() + Duration::days(1),
        t0() + Duration::days(2),
        t0() + Duration::days(3),
    );
    let two = |p: &Plan| Derived {
        triggers: vec![overdue(&u, p.id, "a", d1), overdue(&u, p.id, "b", d2)],
        arm_after: t0(),
    };
    let plan = store.create_plan(&u, draft("p"), entry(1, vec![]), &two).await.unwrap();
    assert_eq!(
        ids(&store.user_triggers(&u).await.unwrap()),
        [("overdue:p1:a", d1), ("overdue:p1:b", d2)]
    );
    // Step a moves, b is finished (not derived any more), c is new but
    // already past when written: a moves, b goes, c is not armed.
    let mut v2 = plan.clone();
    v2.version = 2;
    let moved = |p: &Plan| Derived {
        triggers: vec![overdue(&u, p.id, "a", d3), overdue(&u, p.id, "c", t0())],
        arm_after: t0(),
    };
    store.update_plan(&u, &v2, 1, entry(2, vec![]), &moved).await.unwrap();
    assert_eq!(ids(&store.user_triggers(&u).await.unwrap()), [("overdue:p1:a", d3)]);
    // A trigger already armed stays armed even once its time is past the
    // cut-off (it is due and will fire); nothing derived: all disarmed.
    let mut v3 = v2.clone();
    v3.version = 3;
    let same = |p: &Plan| Derived {
        triggers: vec![overdue(&u, p.id, "a", d3)],
        arm_after: d3 + Duration::days(1),
    };
    store.update_plan(&u, &v3, 2, entry(3, vec![]), &same).await.unwrap();
    assert_eq!(ids(&store.user_triggers(&u).await.unwrap()), [("overdue:p1:a", d3)]);
    let mut v4 = v3.clone();
    v4.version = 4;
    store
        .update_plan(&u, &v4, 3, entry(4, vec![]), &no_triggers)
        .await
        .unwrap();
    assert_eq!(store.user_triggers(&u).await.unwrap(), []);
    assert_eq!(store.trigger_count().await.unwrap(), 0);
}

pub(crate) async fn an_accepted_proposal_applies_once_even_if_the_yes_comes_twice(store: &dyn Store) {
    let u = user(store, "u").await;
    let d1 = t0() + Duration::days(1);
    let derive = |p: &Plan| Derived {
        triggers: vec![overdue(&u, p.id, "a", d1)],
        arm_after: t0(),
    };
    let plan = draft("Trip");
    let open = store
        .create_proposal(
            &u,
            open_proposal(
                Action::Create {
                    plan: Box::new(plan.clone()),
                },
                None,
                1,
            ),
        )
        .await
        .unwrap();
    assert_eq!(open.id, "r1");
    let mut accepted = open.clone();
    accepted.status = ProposalStatus::Accepted;
    let change = || Accepted::Create {
        draft: plan.clone(),
        entry: entry(1, vec![]),
    };
    let stored = store.accept_proposal(&u, &accepted, change(), &derive).await.unwrap();
    assert_eq!(stored.id, PlanId(1));
    match store.accept_proposal(&u, &accepted, change(), &derive).await {
        Err(StoreError::ProposalClosed { current }) => assert_eq!(current.status, ProposalStatus::Accepted),
        other => panic!("expected ProposalClosed, got {other:?}"),
    }
    assert_eq!(store.list_plans(&u).await.unwrap().len(), 1);
    assert_eq!(ids(&store.user_triggers(&u).await.unwrap()), [("overdue:p1:a", d1)]);
    let recorded = store.get_proposal(&u, &open.id).await.unwrap().unwrap();
    assert_eq!(
        (recorded.status, recorded.plan_id),
        (ProposalStatus::Accepted, Some(PlanId(1)))
    );
    assert!(store.open_proposals(&u).await.unwrap().is_empty());
    // A no that was read before the yes landed does not overwrite it.
    let mut declined = open.clone();
    declined.status = ProposalStatus::Declined;
    match store.close_proposal(&u, &declined).await {
        Err(StoreError::ProposalClosed { current }) => assert_eq!(current.status, ProposalStatus::Accepted),
        other => panic!("expected ProposalClosed, got {other:?}"),
    }
    // Another user's proposal ids are not found.
    let other = user(store, "other").await;
    assert_eq!(store.get_proposal(&other, &open.id).await.unwrap(), None);
}

pub(crate) async fn an_accept_against_a_moved_plan_is_a_conflict_and_leaves_the_proposal_open(store: &dyn Store) {
    let u = user(store, "u").await;
    let plan = create(store, &u, "p").await;
    let open = store
        .create_proposal(&u, open_proposal(Action::Patch { ops: vec![] }, Some(plan.id), 1))
        .await
        .unwrap();
    let mut moved = plan.clone();
    moved.version = 2;
    store
        .update_plan(&u, &moved, 1, entry(2, vec![]), &no_triggers)
        .await
        .unwrap();
    let mut accepted = open.clone();
    accepted.status = ProposalStatus::Accepted;
    let mut next = plan.clone();
    next.version = 2;
    let change = Accepted::Update {
        plan: next,
        expected_version: 1,
        entry: entry(2, vec![]),
    };
    match store.accept_proposal(&u, &accepted, change, &no_triggers).await {
        Err(StoreError::Conflict { current }) => assert_eq!(current.version, 2),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        store.get_proposal(&u, &open.id).await.unwrap().unwrap().status,
        ProposalStatus::Open
    );
    assert_eq!(store.history(&u, plan.id, 10).await.unwrap().len(), 2);
}

pub(crate) async fn open_proposals_are_the_open_ones_oldest_first(store: &dyn Store) {
    let u = user(store, "u").await;
    let mut made = Vec::new();
    for _ in 0..3 {
        let p = store
            .create_proposal(&u, open_proposal(Action::Patch { ops: vec![] }, Some(PlanId(1)), 1))
            .await
            .unwrap();
        made.push(p);
    }
    let mut superseded = made[1].clone();
    superseded.status = ProposalStatus::Superseded;
    store.close_proposal(&u, &superseded).await.unwrap();
    let open: Vec<String> = store
        .open_proposals(&u)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(open, ["r1", "r3"]);
    let other = user(store, "other").await;
    assert!(store.open_proposals(&other).await.unwrap().is_empty());
}

pub(crate) async fn the_transcript_returns_the_last_entries_in_order(store: &dyn Store) {
    let (ann, anna) = (user(store, "ann").await, user(store, "anna").await);
    for n in 0..5 {
        let said = |who: &str| Entry {
            at: t0() + Duration::seconds(n),
            message: Message::User {
                text: format!("{who} {n}"),
                id: Some(format!("c{n}")),
            },
        };
        store.append_message(&ann, &said("ann")).await.unwrap();
        store.append_message(&anna, &said("anna")).await.unwrap();
    }
    let texts = |entries: Vec<Entry>| -> Vec<String> {
        entries
            .into_iter()
            .map(|e| match e.message {
                Message::User { text, .. } => text,
                other => panic!("{other:?}"),
            })
            .collect()
    };
    assert_eq!(
        texts(store.recent_messages(&ann, 3).await.unwrap()),
        ["ann 2", "ann 3", "ann 4"]
    );
    assert_eq!(store.recent_messages(&anna, 100).await.unwrap().len(), 5);
}

pub(crate) async fn a_trigger_fires_once_and_a_moved_or_removed_one_not_at_all(store: &dyn Store) {
    let u = user(store, "u").await;
    let due = at("2026-11-23T09:00:00Z");
    let t = reminder(&u, "r1", due);
    store.put_trigger(&t).await.unwrap();
    let fired = store.fire(&t, firing(due)).await.unwrap();
    assert_eq!(fired, Some(vec![]));
    assert_eq!(store.fire(&t, firing(due)).await.unwrap(), None, "fired twice");
    // Arming that very firing again is refused: it is recorded as fired.
    store.put_trigger(&t).await.unwrap();
    assert_eq!(store.user_triggers(&u).await.unwrap(), []);
    // A moved trigger does not fire at its old time; a removed one never.
    let moved = reminder(&u, "r2", due + Duration::hours(1));
    store.put_trigger(&reminder(&u, "r2", due)).await.unwrap();
    store.put_trigger(&moved).await.unwrap();
    assert_eq!(store.fire(&reminder(&u, "r2", due), firing(due)).await.unwrap(), None);
    assert!(store.remove_trigger(&u, "r2").await.unwrap());
    assert!(!store.remove_trigger(&u, "r2").await.unwrap());
    assert_eq!(store.fire(&moved, firing(due)).await.unwrap(), None);
}

pub(crate) async fn due_triggers_come_soonest_first_across_users(store: &dyn Store) {
    let (ann, bob) = (user(store, "ann").await, user(store, "bob").await);
    let base = at("2026-11-23T09:00:00Z");
    store
        .put_trigger(&reminder(&bob, "b1", base + Duration::minutes(2)))
        .await
        .unwrap();
    store
        .put_trigger(&reminder(&ann, "a1", base + Duration::minutes(1)))
        .await
        .unwrap();
    store
        .put_trigger(&reminder(&ann, "a2", base + Duration::minutes(3)))
        .await
        .unwrap();
    store
        .put_trigger(&reminder(&bob, "b2", base + Duration::days(1)))
        .await
        .unwrap();
    assert_eq!(
        store.next_trigger_at().await.unwrap(),
        Some(base + Duration::minutes(1))
    );
    let due = store.due_triggers(base + Duration::minutes(3), 100).await.unwrap();
    assert_eq!(
        due.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        ["a1", "b1", "a2"]
    );
    assert_eq!(
        store.due_triggers(base + Duration::minutes(3), 2).await.unwrap().len(),
        2
    );
    assert_eq!(
        ids(&store.user_triggers(&bob).await.unwrap()),
        [("b1", base + Duration::minutes(2)), ("b2", base + Duration::days(1))]
    );
    assert_eq!(store.trigger_count().await.unwrap(), 4);
}

pub(crate) async fn a_firing_writes_its_notifications_outbox_rows_and_next_occurrence_together(store: &dyn Store) {
    let u = user(store, "u").await;
    let due = at("2026-11-23T09:00:00Z");
    let t = reminder(&u, "r1", due);
    store.put_trigger(&t).await.unwrap();
    let next = reminder(&u, "r1", due + Duration::days(1));
    let mut f = firing(due);
    f.notifications.push(NotificationDraft {
        kind: NotificationKind::Reminder,
        text: "Reminder: call".into(),
        plan_id: None,
        step_id: None,
        urgent: true,
    });
    f.outbox.push(webhook(&u, "fired:r1", due));
    f.rearm = Some(next.clone());
    let notes = store.fire(&t, f).await.unwrap().unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(
        (notes[0].kind, notes[0].text.as_str()),
        (NotificationKind::Reminder, "Reminder: call")
    );
    assert!(!notes[0].seen && notes[0].routed.is_none() && notes[0].urgent);
    assert_eq!(store.unseen_notifications(&u, 10).await.unwrap(), notes);
    let queued = store.due_notifications(due, 10).await.unwrap();
    assert_eq!(queued, vec![(u.clone(), notes[0].clone())]);
    assert!(store.outbox_by_key("fired:r1").await.unwrap().is_some());
    assert_eq!(ids(&store.user_triggers(&u).await.unwrap()), [("r1", next.fire_at)]);
}

pub(crate) async fn the_digest_cursor_moves_only_with_a_stored_digest(store: &dyn Store) {
    let u = user(store, "u").await;
    let due = at("2026-11-23T09:00:00Z");
    // A missed reminder is recorded as missed.
    let missed = reminder(&u, "r1", due - Duration::days(2));
    store.put_trigger(&missed).await.unwrap();
    let mut f = firing(due);
    f.outcome = Outcome::Missed;
    store.fire(&missed, f).await.unwrap().unwrap();
    let listed = store.missed_since(&u, due - Duration::days(7)).await.unwrap();
    assert_eq!(listed.iter().map(|m| m.trigger.id.as_str()).collect::<Vec<_>>(), ["r1"]);
    assert_eq!(store.digest_cursor(&u).await.unwrap(), None);
    // A digest stored by its firing moves the cursor; one deduplicated
    // (its period's row exists already) does not.
    let digest = |fire_at| Trigger {
        id: "digest".into(),
        user: u.clone(),
        fire_at,
        created_at: due,
        kind: TriggerKind::Digest,
    };
    let with_digest = |at, through| {
        let mut f = firing(at);
        f.outbox.push(webhook(&u, "digest:u:2026-11-23", at));
        f.digest_cursor = Some(DigestCursor {
            key: "digest:u:2026-11-23".into(),
            through,
        });
        f
    };
    store.put_trigger(&digest(due)).await.unwrap();
    store
        .fire(&digest(due), with_digest(due, due - Duration::hours(1)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.digest_cursor(&u).await.unwrap(), Some(due - Duration::hours(1)));
    let later = due + Duration::hours(1);
    store.put_trigger(&digest(later)).await.unwrap();
    store
        .fire(&digest(later), with_digest(later, later))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.digest_cursor(&u).await.unwrap(), Some(due - Duration::hours(1)));
    assert!(store.missed_since(&u, due).await.unwrap().is_empty());
}

pub(crate) async fn outbox_rows_are_stored_once_per_idempotency_key_and_due_by_attempt_time(store: &dyn Store) {
    let u = user(store, "u").await;
    let now = at("2026-11-23T09:00:00Z");
    let stored = store
        .enqueue(vec![
            webhook(&u, "k1", now),
            webhook(&u, "k2", now + Duration::minutes(5)),
        ])
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|i| !i.id.is_empty()));
    assert_eq!(store.enqueue(vec![webhook(&u, "k1", now)]).await.unwrap(), []);
    let due: Vec<String> = store
        .due_outbox(now, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.key)
        .collect();
    assert_eq!(due, ["k1"]);
    let mut first = store.outbox_by_key("k1").await.unwrap().unwrap();
    first.status = OutboxStatus::Pending;
    first.attempts = 1;
    first.next_attempt_at = now + Duration::minutes(10);
    store.save_outbox(&first).await.unwrap();
    let due: Vec<String> = store
        .due_outbox(now + Duration::minutes(6), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.key)
        .collect();
    assert_eq!(due, ["k2"]);
    first.status = OutboxStatus::Sent;
    store.save_outbox(&first).await.unwrap();
    assert!(
        store
            .due_outbox(now + Duration::days(1), 10)
            .await
            .unwrap()
            .iter()
            .all(|i| i.key != "k1")
    );
    assert_eq!(
        store.outbox_by_key("k1").await.unwrap().unwrap().status,
        OutboxStatus::Sent
    );
}

pub(crate) async fn a_routing_decision_is_not_recorded_over_a_notification_shown_meanwhile(store: &dyn Store) {
    let u = user(store, "u").await;
    let due = at("2026-11-23T09:00:00Z");
    let t = reminder(&u, "r1", due);
    store.put_trigger(&t).await.unwrap();
    let mut f = firing(due);
    f.notifications.push(NotificationDraft {
        kind: NotificationKind::Reminder,
        text: "Reminder".into(),
        plan_id: None,
        step_id: None,
        urgent: true,
    });
    let read = store.fire(&t, f).await.unwrap().unwrap().remove(0);
    // Shown on a socket (in `ready`) while the notifier decided on email.
    store.mark_seen(&u, std::slice::from_ref(&read.id)).await.unwrap();
    let mut decided = read.clone();
    decided.routed = Some(crate::notification::Channel::Email);
    let recorded = store
        .route_notification(&u, &decided, vec![webhook(&u, "n:email", due)], None, None)
        .await
        .unwrap();
    assert!(!recorded);
    assert!(store.outbox_by_key("n:email").await.unwrap().is_none());
    // Routed from the stored state: recorded once, and no longer queued.
    let mut stored = store.recent_notifications(&u, 1).await.unwrap().remove(0);
    assert!(stored.seen);
    stored.routed = Some(crate::notification::Channel::Socket);
    let transcript = Entry {
        at: due,
        message: Message::Assistant {
            text: "Reminder".into(),
            tool_calls: vec![],
            notification: Some(stored.id.clone()),
        },
    };
    assert!(
        store
            .route_notification(&u, &stored, vec![], None, Some(transcript))
            .await
            .unwrap()
    );
    assert!(store.due_notifications(due, 10).await.unwrap().is_empty());
    assert!(!store.route_notification(&u, &stored, vec![], None, None).await.unwrap());
    assert_eq!(store.recent_messages(&u, 10).await.unwrap().len(), 1);
}

pub(crate) async fn preferences_save_only_while_the_armed_digest_is_unchanged(store: &dyn Store) {
    let u = user(store, "u").await;
    assert_eq!(store.preferences(&u).await.unwrap(), Preferences::default());
    let first = at("2026-11-24T08:00:00Z");
    let digest = |fire_at| Trigger {
        id: "digest".into(),
        user: u.clone(),
        fire_at,
        created_at: t0(),
        kind: TriggerKind::Digest,
    };
    let prefs = Preferences {
        time_zone: Some("Europe/Berlin".into()),
        ..Preferences::default()
    };
    assert!(
        store
            .save_preferences(&u, &prefs, None, Some(digest(first)))
            .await
            .unwrap()
    );
    assert_eq!(store.preferences(&u).await.unwrap(), prefs);
    // The scheduler fired and re-armed it meanwhile: a save computed from
    // the old one is refused and changes nothing.
    let later = Preferences {
        time_zone: Some("Asia/Kolkata".into()),
        ..Preferences::default()
    };
    assert!(!store.save_preferences(&u, &later, None, None).await.unwrap());
    assert_eq!(store.preferences(&u).await.unwrap(), prefs);
    assert!(store.save_preferences(&u, &later, Some(first), None).await.unwrap());
    assert_eq!(store.user_triggers(&u).await.unwrap(), []);
}

pub(crate) async fn a_push_endpoint_belongs_to_the_user_who_subscribed_it_last(store: &dyn Store) {
    let (ann, bob) = (user(store, "ann").await, user(store, "bob").await);
    let sub = |endpoint: &str| PushSubscription {
        endpoint: endpoint.into(),
        p256dh: "k".into(),
        auth: "a".into(),
    };
    let endpoints = |subs: Vec<PushSubscription>| subs.into_iter().map(|s| s.endpoint).collect::<Vec<_>>();
    store
        .add_push_subscription(&ann, &sub("https://push.example/shared"))
        .await
        .unwrap();
    store
        .add_push_subscription(&ann, &sub("https://push.example/anns-phone"))
        .await
        .unwrap();
    // Bob signs in on Ann's browser and turns notifications on.
    store
        .add_push_subscription(&bob, &sub("https://push.example/shared"))
        .await
        .unwrap();
    assert_eq!(
        endpoints(store.push_subscriptions(&ann).await.unwrap()),
        ["https://push.example/anns-phone"]
    );
    assert_eq!(
        endpoints(store.push_subscriptions(&bob).await.unwrap()),
        ["https://push.example/shared"]
    );
    // Ann removing an endpoint she no longer owns leaves Bob's alone.
    store
        .remove_push_subscription(&ann, "https://push.example/shared")
        .await
        .unwrap();
    assert_eq!(store.push_subscriptions(&bob).await.unwrap().len(), 1);
    store
        .remove_push_subscription(&bob, "https://push.example/shared")
        .await
        .unwrap();
    assert!(store.push_subscriptions(&bob).await.unwrap().is_empty());
    store
        .add_push_subscription(&ann, &sub("https://push.example/shared"))
        .await
        .unwrap();
    assert_eq!(store.push_subscriptions(&ann).await.unwrap().len(), 2);
}

pub(crate) async fn a_secret_is_created_once(store: &dyn Store) {
    let first = store.secret("link-key", vec![1; 32]).await.unwrap();
    assert_eq!(first, vec![1; 32]);
    assert_eq!(store.secret("link-key", vec![2; 32]).await.unwrap(), first);
    assert_eq!(store.secret("other", vec![3]).await.unwrap(), vec![3]);
}

pub(crate) async fn pruning_removes_finished_records_only(store: &dyn Store) {
    let u = user(store, "u").await;
    let old = at("2026-01-05T09:00:00Z");
    let t = reminder(&u, "r1", old);
    store.put_trigger(&t).await.unwrap();
    store.fire(&t, firing(old)).await.unwrap().unwrap();
    let mut sent = store.enqueue(vec![webhook(&u, "sent", old)]).await.unwrap().remove(0);
    sent.status = OutboxStatus::Sent;
    store.save_outbox(&sent).await.unwrap();
    store.enqueue(vec![webhook(&u, "pending", old)]).await.unwrap();
    let armed = reminder(&u, "r2", at("2027-01-05T09:00:00Z"));
    store.put_trigger(&armed).await.unwrap();
    let pruned = store.prune(at("2026-06-01T00:00:00Z")).await.unwrap();
    assert_eq!((pruned.fired, pruned.outbox), (1, 1));
    assert!(store.outbox_by_key("sent").await.unwrap().is_none());
    assert!(store.outbox_by_key("pending").await.unwrap().is_some());
    assert_eq!(ids(&store.user_triggers(&u).await.unwrap()), [("r2", armed.fire_at)]);
    // The fired record is gone, so arming that very firing again works.
    store.put_trigger(&t).await.unwrap();
    assert_eq!(store.user_triggers(&u).await.unwrap().len(), 2);
}
