//! Conformance: the outbox and notification routing.

use super::*;

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

pub(crate) async fn the_outbox_backlog_counts_open_rows_and_dates_the_oldest(store: &dyn Store) {
    assert_eq!(store.outbox_backlog().await.unwrap(), Backlog::default());
    let u = user(store, "u").await;
    let now = at("2026-11-23T09:00:00Z");
    let later = now + Duration::minutes(5);
    store
        .enqueue(vec![webhook(&u, "k1", now), webhook(&u, "k2", later)])
        .await
        .unwrap();
    let backlog = |open, oldest| Backlog { open, oldest };
    assert_eq!(store.outbox_backlog().await.unwrap(), backlog(2, Some(now)));
    let mut first = store.outbox_by_key("k1").await.unwrap().unwrap();
    first.status = OutboxStatus::Sent;
    store.save_outbox(&first).await.unwrap();
    assert_eq!(store.outbox_backlog().await.unwrap(), backlog(1, Some(later)));
    // A retry waiting for its next attempt is still open, and still as old.
    let mut second = store.outbox_by_key("k2").await.unwrap().unwrap();
    second.attempts = 1;
    second.next_attempt_at = later + Duration::hours(1);
    store.save_outbox(&second).await.unwrap();
    assert_eq!(store.outbox_backlog().await.unwrap(), backlog(1, Some(later)));
    second.status = OutboxStatus::Failed;
    store.save_outbox(&second).await.unwrap();
    assert_eq!(store.outbox_backlog().await.unwrap(), backlog(0, None));
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
