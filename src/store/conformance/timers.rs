//! Conformance: triggers, firings and the digest cursor.

use super::*;

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
