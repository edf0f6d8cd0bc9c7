//! Conformance: leases on shared work and shared message budgets.

use super::*;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

pub(crate) async fn a_lease_has_one_holder_until_it_is_given_back_or_runs_out(store: &dyn Store) {
    let now = at("2026-11-30T09:00:00Z");
    let until = now + Duration::seconds(30);
    let ab = names(&["outbox:a", "outbox:b"]);
    assert_eq!(store.claim("one", &ab, now, until).await.unwrap(), ab);
    let abc = names(&["outbox:a", "outbox:b", "outbox:c"]);
    assert_eq!(
        store.claim("two", &abc, now, until).await.unwrap(),
        names(&["outbox:c"]),
        "held leases are skipped, a free one is taken"
    );
    assert_eq!(
        store
            .claim("one", &ab, now, until + Duration::seconds(30))
            .await
            .unwrap(),
        ab,
        "the holder renews its own leases"
    );
    // A release by someone else changes nothing; the holder's frees it.
    store.release("two", &names(&["outbox:a"])).await.unwrap();
    assert_eq!(store.claim("two", &ab, now, until).await.unwrap(), names(&[]));
    store.release("one", &names(&["outbox:a"])).await.unwrap();
    assert_eq!(store.claim("two", &ab, now, until).await.unwrap(), names(&["outbox:a"]));
    // One holder dies: its lease runs out and another takes the work over.
    let later = until + Duration::seconds(31);
    assert_eq!(
        store
            .claim("three", &names(&["outbox:b"]), later, later + Duration::seconds(30))
            .await
            .unwrap(),
        names(&["outbox:b"])
    );
    assert_eq!(
        store.claim("one", &names(&["outbox:b"]), later, later).await.unwrap(),
        names(&[])
    );
    assert_eq!(store.claim("one", &[], now, until).await.unwrap(), names(&[]));
}

pub(crate) async fn a_message_budget_is_shared_and_refills_at_its_rate(store: &dyn Store) {
    let now = at("2026-11-30T09:00:00Z");
    for _ in 0..3 {
        assert_eq!(store.take_token("messages:ana", 3, now).await.unwrap(), Ok(()));
    }
    let wait = store.take_token("messages:ana", 3, now).await.unwrap().unwrap_err();
    assert_eq!(wait, std::time::Duration::from_secs(20));
    assert_eq!(
        store.take_token("messages:bob", 3, now).await.unwrap(),
        Ok(()),
        "budgets are per name"
    );
    let refilled = now + Duration::seconds(20);
    assert_eq!(store.take_token("messages:ana", 3, refilled).await.unwrap(), Ok(()));
    assert!(store.take_token("messages:ana", 3, refilled).await.unwrap().is_err());
}
