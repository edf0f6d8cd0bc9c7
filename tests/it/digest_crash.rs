//! Kill -9 during a burst of digests: the real binary sends due digests to
//! a real SMTP server on loopback (in this process, so it survives the
//! kills) and is killed at random moments. Afterwards every user has their
//! period's digest, never two different ones; a resend after a kill that
//! landed inside SMTP's own window (DATA accepted, "sent" not yet flushed)
//! carries the same Message-ID, and there is at most one per kill.
//! `DIGEST_CRASH_KILLS` sets the number of kills (default 6).

use crate::harness::spawn_binary;
use crate::smtp::{Mode, Sink};
use chrono::{Duration, NaiveTime, Utc};
use rand::Rng;
use std::collections::BTreeMap;
use std::path::Path;
use steward::preferences::{Channels, Preferences};
use steward::store::{AccountStore, SledStore};
use steward::triggers::{Frequency, Recurrence, Trigger, TriggerKind};
use steward::user::UserId;
use tokio::process::Child;

const USERS: usize = 40;

/// Preferences of a user who reads a daily digest at `email` (verified), in UTC.
pub(crate) fn digest_reader(email: &str) -> Preferences {
    Preferences {
        time_zone: Some("UTC".into()),
        email: Some(email.to_owned()),
        email_verified: true,
        quiet_hours: None,
        digest: Recurrence {
            frequency: Frequency::Daily,
            weekday: None,
            time: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
        },
        channels: Channels::default(),
    }
}

async fn seed(dir: &Path) -> String {
    let store = SledStore::open(dir).unwrap();
    let due = Utc::now() - Duration::minutes(1);
    for u in 0..USERS {
        let user = UserId::parse(&format!("user{u}")).unwrap();
        store.ensure_user(&user).await.unwrap();
        let prefs = digest_reader(&format!("user{u}@example.com"));
        // Due a minute ago, inside the catch-up window: every start of the
        // server will find whatever is still unsent.
        let trigger = Trigger {
            id: "digest".into(),
            user: user.clone(),
            fire_at: due,
            created_at: due,
            kind: TriggerKind::Digest,
        };
        assert!(
            store
                .save_preferences(&user, &Preferences::default(), &prefs, None, Some(trigger))
                .await
                .unwrap()
        );
    }
    due.format("%Y-%m-%d").to_string()
}

async fn spawn(data: &Path, smtp_port: u16) -> Child {
    let log = std::env::var("DIGEST_CRASH_LOG").unwrap_or_else(|_| "error".into());
    let (child, _) = spawn_binary(
        data,
        &[
            ("STEWARD_EMAIL_SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}")),
            ("STEWARD_NOTIFY_RETRY_BASE_MS", "50".into()),
            ("RUST_LOG", log),
        ],
    )
    .await;
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_burst_of_digests_sends_each_users_digest_once() {
    let kills: usize = std::env::var("DIGEST_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let sink = Sink::new(Mode::Accept).with_delay(std::time::Duration::from_millis(25));
    let port = sink.start().port();
    let dir = tempfile::tempdir().unwrap();
    let day = seed(dir.path()).await;

    for _ in 0..kills {
        let mut child = spawn(dir.path(), port).await;
        let run_for = rand::rng().random_range(50..400);
        tokio::time::sleep(std::time::Duration::from_millis(run_for)).await;
        child.start_kill().unwrap(); // SIGKILL
        child.wait().await.unwrap();
    }
    let mut child = spawn(dir.path(), port).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let users: std::collections::BTreeSet<_> = sink.received().iter().map(|m| m.to.clone()).collect();
        if users.len() >= USERS {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Let anything still in flight land before counting.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let got = sink.received();
    child.start_kill().unwrap();

    let mut per_user: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in &got {
        assert_eq!(m.to.len(), 1);
        per_user
            .entry(m.to[0].clone())
            .or_default()
            .push(m.header("Message-ID").unwrap());
    }
    let missing = USERS - per_user.len();
    let mut different = 0;
    let mut resends = 0;
    for (to, ids) in &per_user {
        let user = to.trim_end_matches("@example.com");
        let expected = format!("<digest.{user}.{day}@localhost>");
        different += ids.iter().filter(|id| **id != expected).count();
        resends += ids.len() - 1;
    }
    println!(
        "digest crash test: {kills} kills, {} deliveries for {USERS} users, missing {missing}, \
         distinct extra digests {different}, same-message resends inside the SMTP window {resends}",
        got.len()
    );
    assert_eq!(missing, 0, "every user gets the period's digest");
    assert_eq!(different, 0, "never a second, different digest for a period");
    assert!(resends <= kills, "a resend only for a kill inside the SMTP window");
}
