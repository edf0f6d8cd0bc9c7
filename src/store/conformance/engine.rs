//! The execution engine's records: the work list a plan write syncs, the
//! attempts (latest epoch, open ones), replans, calendar events, and
//! notifications made outside a firing.

use super::*;
use crate::execution::{Attempt, AttemptState, CalendarEvent, Runnable};

fn runnable<'a>(steps: &'a [(&'a str, DateTime<Utc>)]) -> impl Fn(&Plan) -> Derived + Send + Sync + 'a {
    move |p: &Plan| Derived {
        triggers: Vec::new(),
        arm_after: p.updated_at,
        runnable: steps
            .iter()
            .map(|(id, at)| Runnable {
                step_id: (*id).into(),
                at: *at,
                one_at_a_time: false,
            })
            .collect(),
    }
}

pub(crate) async fn a_plan_write_syncs_the_work_list_in_the_same_transaction(store: &dyn Store) {
    let (u, u1) = (user(store, "u").await, user(store, "u1").await);
    let soon = t0() + Duration::hours(1);
    let later = t0() + Duration::hours(2);
    let plan = store
        .create_plan(
            &u,
            draft("p"),
            entry(1, vec![]),
            &runnable(&[("a", later), ("b", soon)]),
        )
        .await
        .unwrap();
    let other = store
        .create_plan(&u1, draft("q"), entry(1, vec![]), &runnable(&[("a", soon)]))
        .await
        .unwrap();
    let listed = |refs: Vec<crate::execution::StepRef>| {
        refs.into_iter()
            .map(|r| (r.user.to_string(), r.plan_id, r.step_id, r.at))
            .collect::<Vec<_>>()
    };
    assert_eq!(store.due_steps(t0(), None, 10).await.unwrap(), []);
    assert_eq!(store.next_step_at(t0()).await.unwrap(), Some(soon));
    // Past a due entry (held back by a limit), the next one still shows.
    assert_eq!(store.next_step_at(soon).await.unwrap(), Some(later));
    assert_eq!(store.next_step_at(later).await.unwrap(), None);
    let due = listed(store.due_steps(later, None, 10).await.unwrap());
    assert_eq!(due.len(), 3);
    assert_eq!(due[2], ("u".into(), plan.id, "a".into(), later));
    assert!(due[..2].iter().all(|d| d.3 == soon));
    assert_eq!(store.due_steps(later, None, 1).await.unwrap().len(), 1);
    // Paging: after the first two, the third; after the last, nothing.
    let all = store.due_steps(later, None, 10).await.unwrap();
    let rest = store.due_steps(later, Some(&all[1]), 10).await.unwrap();
    assert_eq!(rest, all[2..]);
    assert!(store.due_steps(later, Some(&all[2]), 10).await.unwrap().is_empty());

    // A refused write changes nothing; an accepted one replaces the plan's entries.
    let mut next = plan.clone();
    next.version = 2;
    assert!(
        store
            .update_plan(&u, &next, 7, entry(2, vec![]), &runnable(&[]))
            .await
            .is_err()
    );
    assert_eq!(store.due_steps(later, None, 10).await.unwrap().len(), 3);
    store
        .update_plan(&u, &next, 1, entry(2, vec![]), &runnable(&[("b", later)]))
        .await
        .unwrap();
    let due = listed(store.due_steps(later, None, 10).await.unwrap());
    assert_eq!(
        due,
        [
            ("u1".into(), other.id, "a".into(), soon),
            ("u".into(), plan.id, "b".into(), later)
        ]
    );
    let mut done = next.clone();
    done.version = 3;
    store
        .update_plan(&u, &done, 2, entry(3, vec![]), &runnable(&[]))
        .await
        .unwrap();
    assert_eq!(listed(store.due_steps(later, None, 10).await.unwrap()).len(), 1);
}

fn attempt(user: &UserId, plan: PlanId, step: &str, epoch: u32, next_try: DateTime<Utc>) -> Attempt {
    let mut a = Attempt::new(
        user.clone(),
        plan,
        step.into(),
        epoch,
        "send_email".into(),
        serde_json::json!({"subject": "hi"}),
        t0(),
        Duration::hours(1),
        b"salt",
    );
    a.next_try_at = next_try;
    a
}

pub(crate) async fn attempts_keep_the_latest_epoch_and_list_the_open_ones(store: &dyn Store) {
    let (u, u1) = (user(store, "u").await, user(store, "u1").await);
    let p = PlanId(1);
    assert_eq!(store.last_attempt(&u, p, "a").await.unwrap(), None);
    let first = attempt(&u, p, "a", 1, t0() + Duration::minutes(5));
    store.save_attempt(&first).await.unwrap();
    let other = attempt(&u1, p, "a", 1, t0());
    store.save_attempt(&other).await.unwrap();
    // "a" and "ab" never mix, nor do users.
    let ab = attempt(&u, p, "ab", 1, t0() + Duration::minutes(1));
    store.save_attempt(&ab).await.unwrap();
    assert_eq!(store.last_attempt(&u, p, "a").await.unwrap(), Some(first.clone()));
    assert_eq!(store.last_attempt(&u1, p, "a").await.unwrap(), Some(other.clone()));
    assert_eq!(store.last_attempt(&u, PlanId(11), "a").await.unwrap(), None);
    let open = store.open_attempts(10).await.unwrap();
    assert_eq!(
        open,
        [other.clone(), ab.clone(), first.clone()],
        "soonest next try first"
    );

    let mut settled = first.clone();
    settled.state = AttemptState::Succeeded { result: "ok".into() };
    settled.settled = true;
    store.save_attempt(&settled).await.unwrap();
    let second = attempt(&u, p, "a", 2, t0());
    store.save_attempt(&second).await.unwrap();
    assert_eq!(store.last_attempt(&u, p, "a").await.unwrap(), Some(second.clone()));
    // Saving an older epoch again never hides the newer one.
    store.save_attempt(&settled).await.unwrap();
    assert_eq!(store.last_attempt(&u, p, "a").await.unwrap(), Some(second.clone()));
    let open = store.open_attempts(10).await.unwrap();
    assert_eq!(open.len(), 3);
    assert!(open.iter().all(|a| !a.settled));
    assert_eq!(store.open_attempts(1).await.unwrap().len(), 1);
}

pub(crate) async fn replans_count_per_plan_and_events_are_kept_once_per_key(store: &dyn Store) {
    let (u, u1) = (user(store, "u").await, user(store, "u1").await);
    assert_eq!(store.count_replan(&u, PlanId(1)).await.unwrap(), 1);
    assert_eq!(store.count_replan(&u, PlanId(1)).await.unwrap(), 2);
    assert_eq!(store.count_replan(&u, PlanId(2)).await.unwrap(), 1);
    assert_eq!(store.count_replan(&u1, PlanId(1)).await.unwrap(), 1);

    let event = |key: &str, title: &str, starts: DateTime<Utc>| CalendarEvent {
        key: key.into(),
        title: title.into(),
        starts,
        ends: starts + Duration::hours(1),
        location: None,
        plan_id: Some(PlanId(1)),
        created_at: t0(),
    };
    let late = event("k1", "flight", t0() + Duration::days(2));
    assert!(store.add_event(&u, &late).await.unwrap());
    assert!(
        !store.add_event(&u, &event("k1", "changed", t0())).await.unwrap(),
        "a second event under the same key is not stored"
    );
    let early = event("k2", "hotel", t0() + Duration::days(1));
    assert!(store.add_event(&u, &early).await.unwrap());
    assert!(store.add_event(&u1, &event("k1", "theirs", t0())).await.unwrap());
    assert_eq!(store.events(&u).await.unwrap(), [early, late]);
    assert_eq!(store.events(&u1).await.unwrap().len(), 1);
}

pub(crate) async fn a_notification_made_outside_a_firing_is_queued_for_routing(store: &dyn Store) {
    let (u, u1) = (user(store, "u").await, user(store, "u1").await);
    let draft = NotificationDraft {
        kind: NotificationKind::StepFailed,
        text: "the welcome email could not be sent".into(),
        plan_id: Some(PlanId(1)),
        step_id: Some("welcome".into()),
        urgent: false,
    };
    let n = store.add_notification(&u, draft, t0()).await.unwrap();
    assert!(n.id.starts_with('n') && !n.seen && n.routed.is_none());
    let due = store.due_notifications(t0(), 10).await.unwrap();
    assert_eq!(due, [(u.clone(), n.clone())]);
    assert_eq!(store.unseen_notifications(&u, 10).await.unwrap(), [n]);
    assert!(store.unseen_notifications(&u1, 10).await.unwrap().is_empty());
}
