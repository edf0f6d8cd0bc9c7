//! Conformance: plans, history, proposals and the transcript.

use super::*;

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
        runnable: Vec::new(),
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
        runnable: Vec::new(),
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
        runnable: Vec::new(),
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
        runnable: Vec::new(),
    };
    store.update_plan(&u, &v3, 2, entry(3, vec![]), &same).await.unwrap();
    assert_eq!(ids(&store.user_triggers(&u).await.unwrap()), [("overdue:p1:a", d3)]);
    // Re-derived at the same time but changed, it is stored as changed
    // (an unchanged one may be left as it is).
    let mut v3b = v3.clone();
    v3b.version = 4;
    let changed_at = t0() + Duration::hours(5);
    let changed = |p: &Plan| {
        let mut a = overdue(&u, p.id, "a", d3);
        a.created_at = changed_at;
        Derived {
            triggers: vec![a],
            arm_after: d3 + Duration::days(1),
            runnable: Vec::new(),
        }
    };
    store
        .update_plan(&u, &v3b, 3, entry(4, vec![]), &changed)
        .await
        .unwrap();
    let armed = store.user_triggers(&u).await.unwrap();
    assert_eq!(ids(&armed), [("overdue:p1:a", d3)]);
    assert_eq!(armed[0].created_at, changed_at);
    let mut v4 = v3.clone();
    v4.version = 5;
    store
        .update_plan(&u, &v4, 4, entry(5, vec![]), &no_triggers)
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
        runnable: Vec::new(),
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

pub(crate) async fn the_transcript_returns_the_last_entries_in_order_flushed_or_not(store: &dyn Store) {
    let (ann, anna) = (user(store, "ann").await, user(store, "anna").await);
    for n in 0..5 {
        let said = |who: &str| Entry {
            at: t0() + Duration::seconds(n),
            message: Message::User {
                text: format!("{who} {n}"),
                id: Some(format!("c{n}")),
            },
        };
        // Entries left for the next flushed write read back at once, in order.
        let flush = if n % 2 == 0 { Flush::Now } else { Flush::WithNextWrite };
        store.append_message(&ann, &said("ann"), flush).await.unwrap();
        store.append_message(&anna, &said("anna"), Flush::Now).await.unwrap();
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

pub(crate) async fn a_running_summary_is_kept_per_user(store: &dyn Store) {
    use crate::conversation::window::Summary;
    let ann = user(store, "ann").await;
    let anna = user(store, "anna").await;
    assert_eq!(store.summary(&ann).await.unwrap(), Summary::default());
    let summary = Summary {
        through: Some(t0()),
        lines: vec!["- Sun Nov 22 10:00: the person said \"hi\"".into()],
    };
    store.save_summary(&ann, &summary).await.unwrap();
    assert_eq!(store.summary(&ann).await.unwrap(), summary);
    assert_eq!(store.summary(&anna).await.unwrap(), Summary::default());
    let moved = Summary {
        through: Some(t0() + Duration::seconds(5)),
        lines: vec![],
    };
    store.save_summary(&ann, &moved).await.unwrap();
    assert_eq!(store.summary(&ann).await.unwrap(), moved);
}
