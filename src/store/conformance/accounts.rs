//! Conformance: preferences, push subscriptions, secrets and pruning.

use super::*;

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
            .save_preferences(&u, &Preferences::default(), &prefs, None, Some(digest(first)))
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
    assert!(!store.save_preferences(&u, &prefs, &later, None, None).await.unwrap());
    assert_eq!(store.preferences(&u).await.unwrap(), prefs);
    // Another request saved meanwhile: a save computed from what was there
    // before is refused too, so that request's change is not lost.
    let stale_read = Preferences::default();
    assert!(
        !store
            .save_preferences(&u, &stale_read, &later, Some(first), None)
            .await
            .unwrap()
    );
    assert_eq!(store.preferences(&u).await.unwrap(), prefs);
    assert!(
        store
            .save_preferences(&u, &prefs, &later, Some(first), None)
            .await
            .unwrap()
    );
    assert_eq!(store.preferences(&u).await.unwrap(), later);
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
