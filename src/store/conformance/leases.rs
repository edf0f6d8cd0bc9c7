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

pub(crate) async fn a_daily_budget_takes_charges_into_debt_and_refills_over_the_day(store: &dyn Store) {
    use crate::store::{Budget, Spend};
    let now = at("2026-11-30T09:00:00Z");
    let day = Budget::per_day(1000);
    let spend = |amount: Spend, when| store.spend("model:ana", day, amount, when);
    assert_eq!(spend(Spend::Take(1.0), now).await.unwrap(), Ok(()));
    // What a call used is charged whatever is left: 499 in debt.
    assert_eq!(spend(Spend::Charge(1498.0), now).await.unwrap(), Ok(()));
    let wait = spend(Spend::Take(1.0), now).await.unwrap().unwrap_err();
    // 500 tokens at 1000 a day: 12 hours.
    assert_eq!(wait.as_secs(), 43_200);
    // Refused takes take nothing: still 12 hours.
    let wait = spend(Spend::Take(1.0), now).await.unwrap().unwrap_err();
    assert_eq!(wait.as_secs(), 43_200);
    assert_eq!(
        spend(Spend::Take(1.0), now + Duration::hours(12)).await.unwrap(),
        Ok(())
    );
    // A take bigger than what is there waits, then is served.
    let wait = spend(Spend::Take(100.0), now + Duration::hours(12))
        .await
        .unwrap()
        .unwrap_err();
    assert!((8_640..8_650).contains(&wait.as_secs()), "{wait:?}");
    // A new bucket starts full; a charge beyond it stops at one day's debt.
    assert_eq!(
        store.spend("model:bob", day, Spend::Charge(1e9), now).await.unwrap(),
        Ok(())
    );
    let wait = store
        .spend("model:bob", day, Spend::Take(1.0), now)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(wait.as_secs(), 86_486, "1 001 tokens at 1 000 a day");
}
