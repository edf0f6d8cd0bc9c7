//! `steward migrate`: a sled store holding a record of every family is
//! copied into PostgreSQL, verified, and the copy then behaves as the
//! original would (counters, sequences and queues carry over).

use super::cluster::Database;
use crate::conversation::window::Summary;
use crate::conversation::{Entry, Message};
use crate::execution::{Attempt, CalendarEvent, Runnable};
use crate::notification::{NotificationKind, PushSubscription};
use crate::plan::{Plan, PlanId};
use crate::preferences::Preferences;
use crate::proposal::Action;
use crate::store::conformance::{draft, entry, firing, no_triggers, open_proposal, reminder, t0, webhook};
use crate::store::snapshot::migrate;
use crate::store::{
    AccountStore, ConversationStore, Derived, NotificationDraft, NotificationStore, PlanStore, SledStore, Store,
    StoreError, TriggerStore,
};
use crate::triggers::Trigger;
use crate::user::UserId;
use chrono::Duration;

fn derived(plan: &Plan) -> Derived {
    Derived {
        triggers: vec![crate::store::conformance::overdue(
            &UserId::parse("ana").unwrap(),
            plan.id,
            "a",
            t0() + Duration::days(3),
        )],
        arm_after: t0(),
        runnable: vec![Runnable {
            step_id: "a".into(),
            at: t0() + Duration::hours(1),
            one_at_a_time: false,
        }],
    }
}

/// A record of every family, through the store's own writes.
async fn populate(store: &dyn Store) {
    let (ana, bob) = (UserId::parse("ana").unwrap(), UserId::parse("bob").unwrap());
    store.ensure_user(&ana).await.unwrap();
    store.ensure_user(&bob).await.unwrap();
    let plan = store
        .create_plan(&ana, draft("onboard"), entry(1, vec![]), &derived)
        .await
        .unwrap();
    store
        .create_plan(&bob, draft("trip"), entry(1, vec![]), &no_triggers)
        .await
        .unwrap();
    store
        .create_proposal(&ana, open_proposal(Action::Patch { ops: vec![] }, Some(plan.id), 1))
        .await
        .unwrap();
    for text in ["hello", "show my plan"] {
        let said = Entry {
            at: t0(),
            message: Message::User {
                text: text.into(),
                id: None,
            },
        };
        store
            .append_message(&ana, &said, crate::store::Flush::Now)
            .await
            .unwrap();
    }
    let summary = Summary {
        through: Some(t0()),
        lines: vec!["Ana asked for an onboarding plan.".into()],
    };
    store.save_summary(&ana, &summary).await.unwrap();
    let prefs = Preferences {
        time_zone: Some("Europe/Berlin".into()),
        ..Preferences::default()
    };
    let digest = Trigger {
        id: "digest".into(),
        ..reminder(&ana, "digest", t0() + Duration::days(7))
    };
    assert!(
        store
            .save_preferences(&ana, &Preferences::default(), &prefs, None, Some(digest))
            .await
            .unwrap()
    );
    let fires = reminder(&ana, "r1", t0());
    store.put_trigger(&fires).await.unwrap();
    store
        .put_trigger(&reminder(&bob, "r2", t0() + Duration::days(1)))
        .await
        .unwrap();
    let mut f = firing(t0());
    f.notifications.push(NotificationDraft {
        kind: NotificationKind::Reminder,
        text: "Call the recruiter".into(),
        plan_id: None,
        step_id: None,
        urgent: false,
    });
    f.outbox.push(webhook(&ana, "fired:r1", t0()));
    store.fire(&fires, f).await.unwrap().unwrap();
    let sub = PushSubscription {
        endpoint: "https://push.example/ana".into(),
        p256dh: "k".into(),
        auth: "a".into(),
    };
    store.add_push_subscription(&ana, &sub).await.unwrap();
    store.secret("vapid", b"key bytes".to_vec()).await.unwrap();
    let attempt = Attempt::new(
        ana.clone(),
        plan.id,
        "a".into(),
        1,
        "send_email".into(),
        serde_json::json!({"subject": "Welcome"}),
        t0(),
        Duration::hours(1),
        b"salt",
    );
    store.save_attempt(&attempt).await.unwrap();
    store.count_replan(&ana, plan.id).await.unwrap();
    let event = CalendarEvent {
        key: "trip:depart".into(),
        title: "Depart".into(),
        starts: t0() + Duration::days(2),
        ends: t0() + Duration::days(2) + Duration::hours(2),
        location: None,
        plan_id: Some(plan.id),
        created_at: t0(),
    };
    store.add_event(&ana, &event).await.unwrap();
}

#[tokio::test]
async fn every_family_moves_from_sled_to_postgres_and_the_copy_goes_on_where_the_original_stopped() {
    let Some(db) = Database::fresh().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let sled = SledStore::open(dir.path()).unwrap();
    populate(&sled).await;
    let source = sled.snapshot().unwrap();
    for d in source.digests() {
        assert!(d.count > 0, "the test store has no {} record", d.family);
    }
    let pg = db.store().await;
    let digests = migrate(&sled, &pg).await.unwrap();
    assert_eq!(digests, source.digests());
    assert_eq!(pg.snapshot().await.unwrap(), source);

    // The copy goes on: the next plan, proposal, message and notification
    // get new numbers; queues and triggers are where they were.
    let ana = UserId::parse("ana").unwrap();
    let next = pg
        .create_plan(&ana, draft("next"), entry(1, vec![]), &derived)
        .await
        .unwrap();
    assert_eq!(next.id, PlanId(2));
    let proposal = pg
        .create_proposal(&ana, open_proposal(Action::Patch { ops: vec![] }, Some(next.id), 1))
        .await
        .unwrap();
    assert_eq!(proposal.id, "r2");
    let later = Entry {
        at: t0(),
        message: Message::User {
            text: "after the move".into(),
            id: None,
        },
    };
    pg.append_message(&ana, &later, crate::store::Flush::Now).await.unwrap();
    let recent = pg.recent_messages(&ana, 10).await.unwrap();
    assert_eq!(recent.len(), 3);
    assert_eq!(recent[2], later);
    let n = pg
        .add_notification(
            &ana,
            NotificationDraft {
                kind: NotificationKind::Reminder,
                text: "new".into(),
                plan_id: None,
                step_id: None,
                urgent: false,
            },
            t0(),
        )
        .await
        .unwrap();
    let imported: Vec<String> = source.notifications.iter().map(|n| n.notification.id.clone()).collect();
    assert!(!imported.contains(&n.id), "{} reuses an imported id", n.id);
    // The moved triggers, and the new plan's overdue trigger.
    assert_eq!(
        pg.due_triggers(t0() + Duration::days(30), 10).await.unwrap().len(),
        sled_due(&sled).await + 1
    );
    assert_eq!(
        pg.preferences(&ana).await.unwrap().time_zone.as_deref(),
        Some("Europe/Berlin")
    );

    // A second migration into the same database is refused; nothing changes.
    match migrate(&sled, &pg).await {
        Err(StoreError::Backend(m)) => assert!(m.contains("empty database"), "{m}"),
        other => panic!("a second migration was not refused: {other:?}"),
    }
    assert_eq!(pg.list_plans(&ana).await.unwrap().len(), 2);
}

async fn sled_due(sled: &SledStore) -> usize {
    sled.due_triggers(t0() + Duration::days(30), 10).await.unwrap().len()
}
