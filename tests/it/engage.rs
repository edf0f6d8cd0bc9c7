//! Time and re-engagement end to end: triggers derived from real plans fire
//! once each on a hand-moved clock, reach the open socket or wait in the
//! inbox, survive restarts (catch-up window and missed), digests go through
//! a real SMTP server (retry on 4xx, none on 5xx), web push decrypts with
//! the subscription's keys, and nothing in titles or texts adds a header or
//! a recipient.

use crate::harness::{Client, ManualClock, TestApp, WAIT, of_type};
use crate::smtp::{Mode, Sink};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use steward::channels::mailer::Mailer;
use steward::conversation::ToolCall;
use steward::notification::OutboxStatus;
use steward::offline::OfflineEngine;
use steward::plan::Actor;
use steward::planner::templates::Templates;
use steward::preferences::{Channels, Preferences};
use steward::triggers::{Frequency, Recurrence};
use steward::user::UserId;

/// Sunday 2026-11-22, 11:00 in Berlin.
const NOW: &str = "2026-11-22T10:00:00Z";

fn engine() -> Arc<OfflineEngine> {
    Arc::new(OfflineEngine::new(Arc::new(Templates::built_in().unwrap())))
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The operator token of the tests that read `/metrics`.
const ADMIN: &str = "operator-token-for-the-metrics-tests";

async fn app(clock: &ManualClock, mailer: Option<Mailer>, background: bool) -> TestApp {
    app_with(engine(), clock, mailer, background).await
}

/// [`app`] with another model (a scripted one that words notifications).
async fn app_with(
    engine: impl Into<steward::turn::Engine>,
    clock: &ManualClock,
    mailer: Option<Mailer>,
    background: bool,
) -> TestApp {
    let mut spawn = TestApp::with(engine)
        .config(|c| {
            c.time_zone = "Europe/Berlin".into();
            c.background = background;
        })
        .clock(clock.clock());
    if let Some(mailer) = mailer {
        spawn = spawn.mailer(mailer);
    }
    spawn.spawn().await
}

/// One scheduler tick at the clock's time.
async fn tick(app: &TestApp, clock: &ManualClock) -> steward::scheduler::TickReport {
    app.app.scheduler().tick(clock.now()).await.unwrap()
}

/// One notifier pass: route what is due and deliver the outbox.
async fn route(app: &TestApp) -> steward::notifier::Pass {
    app.app.notifier().unwrap().pass().await.unwrap()
}

fn reply(frames: &[Value]) -> String {
    let last = frames.last().unwrap();
    assert_eq!(last["type"], "reply", "{frames:#?}");
    last["text"].as_str().unwrap().to_owned()
}

/// Frames that arrive within `window` of each other, until silence.
async fn drain(client: &mut Client, window: std::time::Duration) -> Vec<Value> {
    use futures::StreamExt;
    let mut out = Vec::new();
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(window, client.ws.next()).await {
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            out.push(serde_json::from_str(t.as_str()).unwrap());
        }
    }
    out
}

async fn onboarding(ana: &mut Client) -> Value {
    let frames = ana.turn("g1", "help me onboard Ana Souza, she starts December 1").await;
    of_type(&frames, "plan")[0]["plan"].clone()
}

/// A verified address with a daily digest at `time`, set in the store (the
/// verification flow itself is tested through REST below).
async fn verified(app: &TestApp, user: &str, email: &str, zone: &str, time: &str) -> UserId {
    let user = UserId::parse(user).unwrap();
    app.app.store.ensure_user(&user).await.unwrap();
    let prefs = Preferences {
        time_zone: Some(zone.into()),
        email: Some(email.into()),
        email_verified: true,
        quiet_hours: None,
        digest: Recurrence {
            frequency: Frequency::Daily,
            weekday: None,
            time: chrono::NaiveTime::parse_from_str(time, "%H:%M").unwrap(),
        },
        channels: Channels::default(),
    };
    let now = app.app.now();
    let trigger = prefs.digest_trigger(&user, zone.parse().unwrap(), now, now);
    assert!(
        app.app
            .store
            .save_preferences(&user, &Preferences::default(), &prefs, None, trigger)
            .await
            .unwrap()
    );
    user
}

async fn call_tool(app: &TestApp, user: &UserId, name: &str, args: Value) -> Value {
    let session = app.app.service.session(user, Actor::Model).await;
    let ctx = steward::tools::ToolContext {
        service: &app.app.service,
        session: &session,
    };
    let call = ToolCall {
        id: "t1".into(),
        name: name.into(),
        arguments: args.to_string(),
    };
    serde_json::from_str(&app.app.tools.call(ctx, &call).await.unwrap().content).unwrap()
}

#[tokio::test]
async fn due_overdue_idle_and_reminder_triggers_fire_once_each_into_the_open_socket() {
    let clock = ManualClock::at(NOW);
    let app = app(&clock, None, false).await;
    let mut ana = app.connect("ana").await;
    let plan = onboarding(&mut ana).await;
    let text = reply(&ana.turn("r1", "remind me tomorrow at 9 to call the recruiter").await);
    assert_eq!(text, "OK — I'll remind you tomorrow at 09:00: call the recruiter.");

    // What the plan implies over the next eleven days: for each dated
    // step, "due soon" 24 h before (if that is still ahead) and "overdue"
    // at the due time; an idle nudge after 7 days; the reminder.
    let created = at(NOW);
    let end = created + Duration::days(11);
    let mut expected = BTreeSet::new();
    for s in plan["steps"].as_array().unwrap() {
        let Some(due) = s["due_at"].as_str().map(at) else {
            continue;
        };
        let id = s["id"].as_str().unwrap().to_owned();
        if due - Duration::hours(24) > created && due - Duration::hours(24) <= end {
            expected.insert(("due_soon".to_owned(), Some(id.clone())));
        }
        if due > created && due <= end {
            expected.insert(("overdue".to_owned(), Some(id)));
        }
    }
    expected.insert(("idle".to_owned(), None));
    expected.insert(("reminder".to_owned(), None));

    let scheduler = app.app.scheduler();
    let notifier = app.app.notifier().unwrap();
    let mut fired = 0;
    while clock.now() < end {
        clock.advance(Duration::minutes(30));
        fired += scheduler.tick(clock.now()).await.unwrap().fired;
        notifier.pass().await.unwrap();
    }
    let frames = drain(&mut ana, std::time::Duration::from_millis(300)).await;
    let notes: Vec<&Value> = of_type(&frames, "notification")
        .into_iter()
        .map(|f| &f["notification"])
        .collect();
    let mut seen: BTreeMap<(String, Option<String>), usize> = BTreeMap::new();
    for n in &notes {
        let key = (
            n["kind"].as_str().unwrap().to_owned(),
            n["step_id"].as_str().map(str::to_owned),
        );
        *seen.entry(key).or_default() += 1;
    }
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), expected, "{notes:#?}");
    assert!(seen.values().all(|n| *n == 1), "each trigger fires once: {seen:?}");
    assert_eq!(fired, expected.len());
    let reminder = notes.iter().find(|n| n["kind"] == "reminder").unwrap();
    assert_eq!(reminder["text"], "Reminder: call the recruiter");
    assert_eq!(reminder["created_at"], "2026-11-23T08:00:00Z");
    let laptop = notes
        .iter()
        .find(|n| n["kind"] == "due_soon" && n["step_id"] == "order_hardware")
        .unwrap();
    assert_eq!(
        laptop["text"],
        "“Order laptop and equipment for Ana Souza” (Onboard Ana Souza) is due tomorrow at 09:00."
    );

    // Nothing fires twice, however often the clock is read again.
    assert_eq!(scheduler.tick(clock.now()).await.unwrap().fired, 0);
    let left = app
        .app
        .store
        .user_triggers(&UserId::parse("ana").unwrap())
        .await
        .unwrap();
    assert!(
        left.iter().all(|t| t.fire_at > clock.now()),
        "only future triggers stay armed: {left:?}"
    );
    assert_eq!(
        left.len(),
        1,
        "the check-in's overdue trigger (Fri Dec 4: its Saturday moved to a working day): {left:?}"
    );
    // Shown live, so nothing waits for the next connection.
    let again = app.connect("ana").await;
    assert_eq!(again.ready.as_ref().unwrap()["notifications"], json!([]));
}

#[tokio::test]
async fn finishing_or_moving_a_step_cancels_or_moves_its_triggers() {
    let clock = ManualClock::at(NOW);
    let app = app(&clock, None, false).await;
    let mut ana = app.connect("ana").await;
    onboarding(&mut ana).await;
    let user = UserId::parse("ana").unwrap();
    let ids = |ts: Vec<steward::triggers::Trigger>| -> BTreeMap<String, DateTime<Utc>> {
        ts.into_iter().map(|t| (t.id, t.fire_at)).collect()
    };
    let before = ids(app.app.store.user_triggers(&user).await.unwrap());
    assert_eq!(before["overdue:p1:order_hardware"], at("2026-11-24T08:00:00Z"));
    ana.turn("d1", "done with order laptop").await;
    let after = ids(app.app.store.user_triggers(&user).await.unwrap());
    assert!(!after.contains_key("overdue:p1:order_hardware") && !after.contains_key("due:p1:order_hardware"));
    ana.turn("m1", "move the orientation to Friday").await;
    let moved = ids(app.app.store.user_triggers(&user).await.unwrap());
    // Friday Nov 27, 09:00 Berlin.
    assert_eq!(moved["overdue:p1:orientation"], at("2026-11-27T08:00:00Z"));
    assert_eq!(moved["due:p1:orientation"], at("2026-11-26T08:00:00Z"));
    ana.turn("c1", "cancel the onboarding plan").await;
    assert!(app.app.store.user_triggers(&user).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_digest_schedule_is_set_and_stopped_in_plain_words() {
    let clock = ManualClock::at(NOW);
    let app = app(&clock, None, false).await;
    let user = verified(&app, "ana", "ana@example.com", "Europe/Berlin", "18:00").await;
    let mut ana = app.connect("ana").await;
    let text = reply(&ana.turn("d1", "send me a weekly digest on Mondays at 8").await);
    assert_eq!(text, "OK — I'll email you a digest of your plans every Mon at 08:00.");
    let digest = |ts: Vec<steward::triggers::Trigger>| ts.into_iter().find(|t| t.id == "digest");
    let armed = digest(app.app.store.user_triggers(&user).await.unwrap()).expect("armed");
    assert_eq!(armed.fire_at, at("2026-11-23T07:00:00Z")); // Monday 08:00 in Berlin
    let text = reply(&ana.turn("d2", "no more digests").await);
    assert_eq!(text, "OK — no more digests.");
    assert!(digest(app.app.store.user_triggers(&user).await.unwrap()).is_none());
}

#[tokio::test]
async fn a_notification_for_an_offline_user_waits_in_the_inbox_and_arrives_with_ready_once() {
    let clock = ManualClock::at(NOW);
    let app = app(&clock, None, false).await;
    {
        let mut ana = app.connect("ana").await;
        ana.turn("r1", "remind me tomorrow at 9 to call the recruiter").await;
    }
    // The server notices the closed socket on its own time.
    let user = UserId::parse("ana").unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while app.app.hub.is_online(&user) {
        assert!(
            std::time::Instant::now() < deadline,
            "the closed socket is still registered"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    clock.set(at("2026-11-23T08:00:01Z"));
    assert_eq!(tick(&app, &clock).await.fired, 1);
    route(&app).await;
    let ana = app.connect("ana").await;
    let missed = &ana.ready.as_ref().unwrap()["notifications"];
    assert_eq!(missed.as_array().unwrap().len(), 1, "{missed}");
    assert_eq!(missed[0]["text"], "Reminder: call the recruiter");
    let again = app.connect("ana").await;
    assert_eq!(again.ready.as_ref().unwrap()["notifications"], json!([]));
}

/// After a restart, the background scheduler fires what came due inside
/// the catch-up window within 5 s, and reports older triggers as missed.
#[tokio::test]
async fn a_restart_fires_due_triggers_in_the_catch_up_window_and_reports_older_ones_as_missed() {
    let clock = ManualClock::at(NOW);
    let app = app(&clock, None, true).await;
    {
        let mut ana = app.connect("ana").await;
        ana.turn("r1", "remind me tomorrow at 9 to call the recruiter").await;
        ana.turn("r2", "remind me on Friday at 9 to send the report").await;
    }
    // Down from before the first reminder until 10 s after it.
    clock.set(at("2026-11-23T08:00:10Z"));
    let app = app.restart(engine()).await;
    let restarted = std::time::Instant::now();
    let first = next_notification(&app, "ana").await;
    let latency = restarted.elapsed();
    assert_eq!(first["text"], "Reminder: call the recruiter");
    assert!(latency < std::time::Duration::from_secs(5), "{latency:?}");
    eprintln!("catch-up: fired {latency:?} after restart");

    // Down across Friday 09:00 for three days: past the 6 h window.
    clock.set(at("2026-11-30T08:00:00Z"));
    let app = app.restart(engine()).await;
    let missed = next_notification(&app, "ana").await;
    assert_eq!(missed["kind"], "missed");
    assert_eq!(
        missed["text"],
        "While I was offline I missed your reminder “send the report” (Fri Nov 27 09:00)."
    );
    let user = UserId::parse("ana").unwrap();
    assert!(app.app.store.user_triggers(&user).await.unwrap().is_empty());
    let recorded = app.app.store.missed_since(&user, at(NOW)).await.unwrap();
    assert_eq!(recorded.len(), 1);
}

/// The next notification for `user`: in `ready` if it was routed before
/// the socket opened, else as a live frame.
async fn next_notification(app: &TestApp, user: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let mut client = app.connect(user).await;
        if let Some(n) = client.ready.as_ref().unwrap()["notifications"]
            .as_array()
            .and_then(|a| a.first())
        {
            return n.clone();
        }
        let frames = drain(&mut client, std::time::Duration::from_millis(200)).await;
        if let Some(f) = of_type(&frames, "notification").first() {
            return f["notification"].clone();
        }
        assert!(std::time::Instant::now() < deadline, "no notification within 5 s");
    }
}

#[tokio::test]
async fn one_digest_per_user_per_local_day_over_a_simulated_year_in_odd_zones() {
    let clock = ManualClock::at("2026-11-23T00:00:00Z");
    let app = app(&clock, None, false).await;
    // Times that fall into DST gaps (New York 02:30, Lord Howe 02:15) and
    // repeats (London 01:30) on some days of the year.
    let users = [
        ("ny", "America/New_York", "02:30"),
        ("london", "Europe/London", "01:30"),
        ("lordhowe", "Australia/Lord_Howe", "02:15"),
        ("kolkata", "Asia/Kolkata", "08:00"),
    ];
    for (u, zone, time) in users {
        verified(&app, u, &format!("{u}@example.com"), zone, time).await;
    }
    let scheduler = app.app.scheduler();
    let end = clock.now() + Duration::days(365);
    let mut decided = 0;
    let mut n = 0u64;
    while let Some(next) = app.app.store.next_trigger_at().await.unwrap() {
        if next > end {
            break;
        }
        n += 1;
        // Wake-ups are a little late; now and then steward was down for
        // up to five hours (inside the catch-up window).
        let late = if n.is_multiple_of(37) {
            Duration::minutes(((n * 7919) % 300) as i64)
        } else {
            Duration::milliseconds(((n * 104_729) % 2_000) as i64)
        };
        clock.set(next + late);
        decided += scheduler.tick(clock.now()).await.unwrap().digests;
    }
    let queued = app.app.store.due_outbox(end + Duration::days(1), 10_000).await.unwrap();
    assert_eq!(queued.len(), decided);
    let mut by_user: BTreeMap<String, Vec<chrono::NaiveDate>> = BTreeMap::new();
    for item in &queued {
        let period = item.key.rsplit(':').next().unwrap();
        let day = chrono::NaiveDate::parse_from_str(period, "%Y-%m-%d").unwrap();
        by_user.entry(item.user.to_string()).or_default().push(day);
    }
    let mut wrong_days = 0;
    for (user, mut days) in by_user.clone() {
        days.sort();
        let distinct: BTreeSet<_> = days.iter().collect();
        let span = (*days.last().unwrap() - days[0]).num_days() + 1;
        wrong_days += days.len() - distinct.len(); // two on one day
        wrong_days += (span as usize).saturating_sub(distinct.len()); // a day without one
        assert!(days.len() >= 364, "{user}: {} digests", days.len());
    }
    eprintln!("simulated year: {decided} digests for 4 users, user-days with != 1 digest: {wrong_days}");
    assert_eq!(wrong_days, 0);
    assert_eq!(by_user.len(), 4);
}

#[tokio::test]
async fn a_verified_address_gets_the_digest_through_real_smtp_with_both_parts_and_the_plans_steps() {
    let sink = Sink::new(Mode::Accept);
    let port = sink.start().port();
    let clock = ManualClock::at(NOW);
    let app = app(
        &clock,
        Some(Mailer::loopback(port, std::time::Duration::from_secs(5))),
        false,
    )
    .await;
    let mut ana = app.connect("ana").await;
    onboarding(&mut ana).await;
    let http = reqwest::Client::new();
    let prefs: Value = http
        .put(app.url("/api/preferences?user=ana"))
        .json(&json!({"email": "ana@example.com", "time_zone": "Europe/Berlin", "digest": {"frequency": "daily", "time": "08:00"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prefs["email"], "ana@example.com");
    assert_eq!(prefs["email_verified"], false);
    let notifier = app.app.notifier().unwrap();
    notifier.pass().await.unwrap();
    let mail = sink.wait_for(1, WAIT).await;
    assert_eq!(mail.len(), 1, "only the verification mail before verifying");
    assert_eq!(mail[0].to, vec!["ana@example.com".to_string()]);
    let text = mail[0].part("text/plain").unwrap();
    let link = text
        .lines()
        .find(|l| l.contains("/api/email/verify?token="))
        .unwrap()
        .trim();
    let link = link.replace("http://127.0.0.1:8080", &format!("http://{}", app.addr));
    let page = http.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Email confirmed"));
    let user = UserId::parse("ana").unwrap();
    let armed = app.app.store.user_triggers(&user).await.unwrap();
    let digest = armed
        .iter()
        .find(|t| t.id == "digest")
        .expect("digest armed once verified");
    assert_eq!(digest.fire_at, at("2026-11-23T07:00:00Z"));

    clock.set(digest.fire_at);
    let report = tick(&app, &clock).await;
    assert_eq!(report.digests, 1);
    notifier.pass().await.unwrap();
    let mail = sink.wait_for(2, WAIT).await;
    assert_eq!(mail.len(), 2);
    let d = &mail[1];
    assert_eq!(d.to, vec!["ana@example.com".to_string()]);
    assert_eq!(d.from, "steward@localhost");
    assert_eq!(
        d.header("Subject").unwrap(),
        "Your plans for 2026-11-23: 1 active, 4 due this week"
    );
    assert_eq!(d.header("Message-ID").unwrap(), "<digest.ana.2026-11-23@localhost>");
    let unsubscribe = d.header("List-Unsubscribe").unwrap();
    assert!(
        unsubscribe.starts_with("<http://127.0.0.1:8080/api/email/unsubscribe?token="),
        "{unsubscribe}"
    );
    assert_eq!(d.header("List-Unsubscribe-Post").unwrap(), "List-Unsubscribe=One-Click");
    let text = d.part("text/plain").unwrap();
    let html = d.part("text/html").unwrap();
    for needle in [
        "Onboard Ana Souza (p1): 0 of 7 steps done (0%)",
        "Order laptop and equipment for Ana Souza, due tomorrow",
    ] {
        assert!(text.contains(needle), "{needle} not in:\n{text}");
    }
    assert!(
        html.contains("<h2") && html.contains("Order laptop and equipment for Ana Souza"),
        "{html}"
    );

    // One click on the unsubscribe link turns email off and disarms the digest.
    let url = unsubscribe
        .trim_matches(|c| c == '<' || c == '>')
        .replace("http://127.0.0.1:8080", &format!("http://{}", app.addr));
    assert_eq!(http.post(&url).send().await.unwrap().status(), 200);
    assert!(!app.app.store.preferences(&user).await.unwrap().channels.email);
    assert!(
        app.app
            .store
            .user_triggers(&user)
            .await
            .unwrap()
            .iter()
            .all(|t| t.id != "digest")
    );
}

#[tokio::test]
async fn a_4xx_from_smtp_is_retried_with_the_same_message_and_a_5xx_is_not() {
    for (mode, want_calls, want_status) in [
        (Mode::TempFailFirst, 2, OutboxStatus::Sent),
        (Mode::Reject, 1, OutboxStatus::Failed),
    ] {
        let sink = Sink::new(mode);
        let port = sink.start().port();
        let clock = ManualClock::at(NOW);
        let app = app(
            &clock,
            Some(Mailer::loopback(port, std::time::Duration::from_secs(5))),
            false,
        )
        .await;
        let user = verified(&app, "ana", "ana@example.com", "Europe/Berlin", "08:00").await;
        let scheduler = app.app.scheduler();
        let prefs = app.app.store.preferences(&user).await.unwrap();
        let item = scheduler
            .digests
            .decide(&user, &prefs, clock.now(), clock.now())
            .await
            .unwrap()
            .unwrap()
            .item;
        let key = item.key.clone();
        app.app.store.enqueue(vec![item]).await.unwrap();
        let notifier = app.app.notifier().unwrap();
        for _ in 0..5 {
            notifier.pass().await.unwrap();
            clock.advance(Duration::minutes(10));
        }
        let stored = app.app.store.outbox_by_key(&key).await.unwrap().unwrap();
        let calls = sink.data_calls.load(std::sync::atomic::Ordering::SeqCst);
        eprintln!("{mode:?}: {calls} SMTP DATA attempts, final status {:?}", stored.status);
        assert_eq!(calls, want_calls, "{mode:?}");
        assert_eq!(stored.status, want_status, "{mode:?}");
        assert_eq!(stored.attempts, want_calls as u32);
        let received = sink.received();
        assert_eq!(received.len(), usize::from(mode == Mode::TempFailFirst));
        if let Some(m) = received.first() {
            assert_eq!(m.header("Message-ID").unwrap(), "<digest.ana.2026-11-22@localhost>");
        }
    }
}

#[tokio::test]
async fn emails_beyond_a_users_daily_cap_wait_for_the_bucket_and_none_is_lost() {
    let sink = Sink::new(Mode::Accept);
    let port = sink.start().port();
    let clock = ManualClock::at(NOW);
    let app = TestApp::with(engine())
        .config(|c| {
            c.time_zone = "Europe/Berlin".into();
            c.background = false;
            c.limits.emails_per_day = 2;
            c.admin_token = Some(ADMIN.to_owned().into());
        })
        .clock(clock.clock())
        .mailer(Mailer::loopback(port, std::time::Duration::from_secs(5)))
        .spawn()
        .await;
    let user = verified(&app, "ana", "ana@example.com", "Europe/Berlin", "08:00").await;
    let prefs = app.app.store.preferences(&user).await.unwrap();
    let digest = app
        .app
        .scheduler()
        .digests
        .decide(&user, &prefs, clock.now(), clock.now())
        .await
        .unwrap()
        .unwrap()
        .item;
    let items: Vec<_> = (0..4)
        .map(|n| steward::notification::OutboxItem {
            key: format!("{}-{n}", digest.key),
            ..digest.clone()
        })
        .collect();
    let keys: Vec<String> = items.iter().map(|i| i.key.clone()).collect();
    app.app.store.enqueue(items).await.unwrap();
    let notifier = app.app.notifier().unwrap();
    let statuses = || async {
        let mut out = Vec::new();
        for key in &keys {
            out.push(app.app.store.outbox_by_key(key).await.unwrap().unwrap());
        }
        out
    };
    notifier.pass().await.unwrap();
    assert_eq!(sink.received().len(), 2, "two a day");
    let waiting: Vec<_> = statuses()
        .await
        .into_iter()
        .filter(|i| i.status == OutboxStatus::Pending)
        .collect();
    assert_eq!(waiting.len(), 2);
    for item in &waiting {
        // Not an attempt: waiting for the bucket, about half a day.
        assert_eq!(item.attempts, 0);
        assert!(item.next_attempt_at >= clock.now() + Duration::hours(11), "{item:?}");
    }
    // `/metrics` reads the outbox's depth and the age of its oldest item.
    let outbox = || async {
        let m = app.metrics(ADMIN).await;
        (m["steward_outbox_open"], m["steward_outbox_oldest_seconds"])
    };
    assert_eq!(outbox().await, (2.0, 0.0));
    // Half a day refills one email; a day, the rest.
    clock.advance(Duration::hours(13));
    notifier.pass().await.unwrap();
    assert_eq!(sink.received().len(), 3);
    assert_eq!(outbox().await, (1.0, 13.0 * 3600.0), "the one left was made 13 h ago");
    clock.advance(Duration::hours(12));
    notifier.pass().await.unwrap();
    assert_eq!(sink.received().len(), 4);
    assert_eq!(outbox().await, (0.0, 0.0));
    let m = app.metrics(ADMIN).await;
    assert!(
        m["steward_store_commit_seconds_count"] >= 4.0,
        "each sending recorded is flushed: {m:?}"
    );
    assert!(
        statuses()
            .await
            .iter()
            .all(|i| i.status == OutboxStatus::Sent && i.attempts == 1)
    );
}

#[tokio::test]
async fn titles_and_texts_with_line_breaks_and_encoded_words_never_add_a_header_or_a_recipient() {
    let sink = Sink::new(Mode::Accept);
    let port = sink.start().port();
    let clock = ManualClock::at(NOW);
    let app = app(
        &clock,
        Some(Mailer::loopback(port, std::time::Duration::from_secs(5))),
        false,
    )
    .await;
    let user = verified(&app, "ana", "ana@example.com", "Europe/Berlin", "08:00").await;
    // A reminder text with CR/LF and header lines (the tool flattens it).
    let made = call_tool(
        &app,
        &user,
        "remind",
        json!({"text": "call Bob\r\nBcc: evil@example.com\r\nX-Evil: yes", "at": "2026-11-22T12:00:00+01:00"}),
    )
    .await;
    assert_eq!(made["ok"], true, "{made}");
    // A plan title with an encoded word that decodes to a header line.
    let plan = call_tool(
        &app,
        &user,
        "update_plan",
        json!({"title": "Ana =?utf-8?q?=0D=0ABcc:_evil@example.com?= Bcc: evil@example.com", "explanation": "test",
               "ops": [{"op": "add_step", "id": "x", "title": "To: evil@example.com, mallory@example.com", "due_at": "2026-11-23T13:00:00+01:00"}]}),
    )
    .await;
    assert_eq!(plan["ok"], true, "{plan}");
    clock.set(at("2026-11-22T12:00:00Z"));
    let report = tick(&app, &clock).await;
    assert_eq!(report.fired, 2, "{report:?}");
    route(&app).await;
    let mail = sink.wait_for(2, WAIT).await;
    assert_eq!(mail.len(), 2);
    let mut injected = 0;
    for m in &mail {
        use mailparse::MailHeaderMap;
        let parsed = m.parsed();
        let names: Vec<String> = parsed
            .headers
            .iter()
            .map(|h| h.get_key().to_ascii_lowercase())
            .collect();
        let subject = m.header("Subject").unwrap();
        if m.to != ["ana@example.com"]
            || subject.contains('\r')
            || subject.contains('\n')
            || names.iter().any(|n| n == "bcc" || n == "x-evil" || n == "cc")
            || parsed.headers.get_all_values("To") != ["ana@example.com"]
        {
            injected += 1;
        }
        eprintln!("subject: {:?}", m.header("Subject").unwrap());
    }
    assert_eq!(injected, 0, "{mail:#?}");
}

#[tokio::test]
async fn a_push_reaches_a_loopback_push_service_and_decrypts_to_the_notification() {
    use axum::body::Bytes;
    use axum::http::HeaderMap;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use web_push_native::p256::elliptic_curve::rand_core::{OsRng, RngCore};
    use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint;

    // The push service: records what it gets; answers 201, or 410 once told.
    type Got = Arc<std::sync::Mutex<Vec<(HeaderMap, Vec<u8>)>>>;
    let got: Got = Arc::default();
    let gone = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (g, gone2) = (got.clone(), gone.clone());
    let service = axum::Router::new().route(
        "/push/{id}",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (g, gone) = (g.clone(), gone2.clone());
            async move {
                g.lock().unwrap().push((headers, body.to_vec()));
                if gone.load(std::sync::atomic::Ordering::SeqCst) {
                    axum::http::StatusCode::GONE
                } else {
                    axum::http::StatusCode::CREATED
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let push_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });

    let clock = ManualClock::at(NOW);
    let app = app(&clock, None, false).await;
    // The browser's side of a subscription.
    let secret = web_push_native::p256::SecretKey::random(&mut OsRng);
    let mut auth = [0u8; 16];
    OsRng.fill_bytes(&mut auth);
    let body = json!({
        "endpoint": format!("http://{push_addr}/push/abc"),
        "keys": {
            "p256dh": URL_SAFE_NO_PAD.encode(secret.public_key().to_encoded_point(false).as_bytes()),
            "auth": URL_SAFE_NO_PAD.encode(auth),
        }
    });
    let http = reqwest::Client::new();
    let r = http
        .post(app.url("/api/push/subscribe?user=ana"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let bad = http
        .post(app.url("/api/push/subscribe?user=ana"))
        .json(&json!({"endpoint": "http://x/y", "keys": {"p256dh": "AAAA", "auth": "AAAA"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let user = UserId::parse("ana").unwrap();
    call_tool(
        &app,
        &user,
        "remind",
        json!({"text": "call the recruiter", "at": "2026-11-22T12:00:00+01:00"}),
    )
    .await;
    clock.set(at("2026-11-22T11:00:00Z"));
    tick(&app, &clock).await;
    route(&app).await;
    let (headers, encrypted) = got.lock().unwrap()[0].clone();
    assert_eq!(headers["content-encoding"], "aes128gcm");
    assert!(headers["authorization"].to_str().unwrap().starts_with("vapid t="));
    let plain = web_push_native::decrypt(encrypted, &secret, &web_push_native::Auth::clone_from_slice(&auth)).unwrap();
    let payload: Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(payload["body"], "Reminder: call the recruiter");
    assert_eq!(payload["kind"], "reminder");

    // An expired subscription (410) is removed.
    gone.store(true, std::sync::atomic::Ordering::SeqCst);
    call_tool(
        &app,
        &user,
        "remind",
        json!({"text": "second", "at": "2026-11-22T13:00:00+01:00"}),
    )
    .await;
    clock.set(at("2026-11-22T12:00:00Z"));
    tick(&app, &clock).await;
    route(&app).await;
    assert_eq!(got.lock().unwrap().len(), 2);
    assert!(app.app.store.push_subscriptions(&user).await.unwrap().is_empty());

    // A push queued for Ana is not sent once Bob has taken the browser over.
    gone.store(false, std::sync::atomic::Ordering::SeqCst);
    for who in ["ana", "bob"] {
        let r = http
            .post(app.url(&format!("/api/push/subscribe?user={who}")))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let subscription = steward::notification::PushSubscription {
        endpoint: body["endpoint"].as_str().unwrap().into(),
        p256dh: body["keys"]["p256dh"].as_str().unwrap().into(),
        auth: body["keys"]["auth"].as_str().unwrap().into(),
    };
    let queued = steward::notification::OutboxItem::new(
        &user,
        "push:queued-before-takeover".into(),
        steward::notification::Payload::Push {
            subscription,
            body: "{}".into(),
        },
        clock.now(),
    );
    app.app.store.enqueue(vec![queued]).await.unwrap();
    route(&app).await;
    let stored = app
        .app
        .store
        .outbox_by_key("push:queued-before-takeover")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, OutboxStatus::Failed);
    assert_eq!(got.lock().unwrap().len(), 2, "nothing reached the push service");
}

#[tokio::test]
async fn preferences_reject_bad_input_whole_and_the_calendar_feed_needs_its_token() {
    let clock = ManualClock::at(NOW);
    let app = app(&clock, None, false).await;
    let mut ana = app.connect("ana").await;
    onboarding(&mut ana).await;
    let http = reqwest::Client::new();
    let put = |body: String| {
        http.put(app.url("/api/preferences?user=ana"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (body, status, code) in [
        ("{not json", 400, "invalid_json"),
        (r#"{"colour": "blue"}"#, 422, "invalid_json"),
        (r#"{"time_zone": "Mars/Olympus"}"#, 400, "invalid_field"),
        (r#"{"email": "a@b.c, evil@x.org"}"#, 400, "invalid_field"),
        (
            r#"{"quiet_hours": {"start": "25:00", "end": "07:00"}}"#,
            400,
            "invalid_field",
        ),
        (
            r#"{"time_zone": "Asia/Kolkata", "digest": {"frequency": "weekly", "weekday": "someday", "time": "08:00"}}"#,
            400,
            "invalid_field",
        ),
    ] {
        let r = put(body.into()).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{body}");
        let err: Value = r.json().await.unwrap();
        assert_eq!(err["error"]["code"], code, "{body}: {err}");
    }
    // The refused updates changed nothing (not even the valid time zone).
    let prefs: Value = http
        .get(app.url("/api/preferences?user=ana"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prefs["time_zone"], "Europe/Berlin");
    let ok: Value = put(r#"{"quiet_hours": {"start": "22:00", "end": "07:00"}, "time_zone": "Asia/Kolkata"}"#.into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ok["quiet_hours"], json!({"start": "22:00", "end": "07:00"}));
    assert_eq!(ok["time_zone"], "Asia/Kolkata");
    assert_eq!(
        http.get(app.url("/api/preferences")).send().await.unwrap().status(),
        400
    );

    let feed = prefs["calendar_url"]
        .as_str()
        .unwrap()
        .replace("http://127.0.0.1:8080", &format!("http://{}", app.addr));
    let r = http.get(&feed).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/calendar; charset=utf-8");
    let ics = r.text().await.unwrap();
    assert_eq!(ics.matches("BEGIN:VEVENT").count(), 7, "{ics}");
    assert!(ics.contains(".p1.order_hardware@localhost"), "{ics}");
    let forged = feed.replace(".ics", "x.ics");
    assert_eq!(http.get(&forged).send().await.unwrap().status(), 404);
    let bob_feed = app.url(&format!(
        "/api/calendar/{}.{}.ics",
        URL_SAFE.encode("bob"),
        feed.rsplit('.').nth(1).unwrap()
    ));
    assert_eq!(
        http.get(&bob_feed).send().await.unwrap().status(),
        404,
        "a token is only good for its own user"
    );
}

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as URL_SAFE;

#[tokio::test]
async fn webhooks_get_signed_events_and_a_503_is_retried() {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, StatusCode};
    type Got = Arc<std::sync::Mutex<Vec<(HeaderMap, String)>>>;
    let got: Got = Arc::default();
    let g = got.clone();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let g = g.clone();
            async move {
                let mut seen = g.lock().unwrap();
                seen.push((headers, String::from_utf8(body.to_vec()).unwrap()));
                // The first delivery fails like an overloaded receiver.
                if seen.len() == 1 {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    let secret = "a-webhook-secret-of-some-length";
    let clock = ManualClock::at(NOW);
    let app = TestApp::with(engine())
        .config(|c| {
            c.time_zone = "Europe/Berlin".into();
            c.background = false;
            c.webhooks = vec![steward::config::WebhookConfig {
                url: format!("http://{hook_addr}/hook"),
                secret: secret.into(),
            }];
        })
        .clock(clock.clock())
        .spawn()
        .await;
    let user = UserId::parse("ana").unwrap();
    app.app.store.ensure_user(&user).await.unwrap();
    call_tool(
        &app,
        &user,
        "remind",
        json!({"text": "call the recruiter", "at": "2026-11-22T12:00:00+01:00"}),
    )
    .await;
    clock.set(at("2026-11-22T11:00:00Z"));
    tick(&app, &clock).await;
    let notifier = app.app.notifier().unwrap();
    for _ in 0..4 {
        notifier.pass().await.unwrap();
        clock.advance(Duration::minutes(5));
    }
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "one 503, then delivered once");
    assert_eq!(got[0].1, got[1].1, "a retry sends the same event");
    let event: Value = serde_json::from_str(&got[1].1).unwrap();
    assert_eq!(event["event"], "notification");
    assert_eq!(event["user"], "ana");
    assert_eq!(event["channel"], "inbox");
    assert_eq!(event["notification"]["text"], "Reminder: call the recruiter");
    for (headers, body) in &got {
        let sig = headers["steward-signature"].to_str().unwrap();
        let t: i64 = sig.split(',').next().unwrap().trim_start_matches("t=").parse().unwrap();
        assert_eq!(sig, steward::channels::webhook::signature(secret, t, body));
        assert_ne!(sig, steward::channels::webhook::signature("another secret", t, body));
    }
}

#[tokio::test]
async fn a_configured_model_words_notifications_and_its_failure_falls_back_to_the_offline_wording() {
    use steward::llm::scripted::{Script, ScriptedModel};
    let model = Arc::new(ScriptedModel::new(vec![Script::text(
        "Time to call the recruiter — you asked me to nudge you at noon.",
    )]));
    let clock = ManualClock::at(NOW);
    let app = app_with(model.clone(), &clock, None, false).await;
    let user = UserId::parse("ana").unwrap();
    app.app.store.ensure_user(&user).await.unwrap();
    for (text, at_) in [
        ("call the recruiter", "2026-11-22T12:00:00+01:00"),
        ("send the report", "2026-11-22T13:00:00+01:00"),
    ] {
        call_tool(&app, &user, "remind", json!({"text": text, "at": at_})).await;
    }
    let (scheduler, notifier) = (app.app.scheduler(), app.app.notifier().unwrap());
    for now in ["2026-11-22T11:00:00Z", "2026-11-22T12:00:00Z"] {
        clock.set(at(now));
        scheduler.tick(clock.now()).await.unwrap();
        notifier.pass().await.unwrap();
    }
    let ana = app.connect("ana").await;
    let texts: Vec<&str> = ana.ready.as_ref().unwrap()["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    // The second call finds the script exhausted (an error): offline wording.
    assert_eq!(
        texts,
        [
            "Time to call the recruiter — you asked me to nudge you at noon.",
            "Reminder: send the report"
        ]
    );
    let request = &model.requests()[0];
    assert!(request.tools.is_empty());
    assert!(request.system.contains("## Active plans"), "{}", request.system);
    let steward::conversation::Message::User { text, .. } = &request.messages[0] else {
        panic!("{:?}", request.messages)
    };
    assert!(text.contains("reminder: Reminder: call the recruiter"), "{text}");
}

#[tokio::test]
async fn a_lapse_on_reply_reminder_does_not_fire_once_the_user_has_written() {
    let clock = ManualClock::at(NOW);
    let app = app(&clock, None, false).await;
    let user = UserId::parse("ana").unwrap();
    app.app.store.ensure_user(&user).await.unwrap();
    let args = |text: &str, at_: &str| json!({"text": text, "at": at_, "lapse_on_reply": true});
    call_tool(
        &app,
        &user,
        "remind",
        args("check in if no answer", "2026-11-22T12:00:00+01:00"),
    )
    .await;
    clock.advance(Duration::minutes(10));
    let mut ana = app.connect("ana").await;
    ana.turn("m1", "list my plans").await;
    clock.advance(Duration::minutes(10));
    call_tool(
        &app,
        &user,
        "remind",
        args("second check-in", "2026-11-22T12:30:00+01:00"),
    )
    .await;
    clock.set(at("2026-11-22T11:30:00Z"));
    let report = tick(&app, &clock).await;
    // The first was set before the user wrote: it lapses. The second was
    // set after: it fires.
    assert_eq!((report.lapsed, report.fired), (1, 1), "{report:?}");
}

#[tokio::test]
async fn pruning_removes_old_finished_records_and_keeps_anything_pending() {
    let clock = ManualClock::at(NOW);
    let app = app(&clock, None, false).await; // mail goes to .eml files
    let user = verified(&app, "ana", "ana@example.com", "Europe/Berlin", "08:00").await;
    call_tool(
        &app,
        &user,
        "remind",
        json!({"text": "call the recruiter", "at": "2026-11-22T12:00:00+01:00"}),
    )
    .await;
    clock.set(at("2026-11-22T11:00:00Z"));
    tick(&app, &clock).await;
    route(&app).await;
    let sent_key = "notify:ana:".to_string();
    let sent = app.app.store.recent_notifications(&user, 5).await.unwrap();
    assert_eq!(sent.len(), 1);
    let email_key = format!("{sent_key}{}:email", sent[0].id);
    assert_eq!(
        app.app.store.outbox_by_key(&email_key).await.unwrap().unwrap().status,
        OutboxStatus::Sent
    );
    // Something still waiting must survive any pruning.
    let mut waiting = steward::notification::OutboxItem::new(
        &user,
        "test:pending".into(),
        steward::notification::Payload::Webhook {
            url: "http://127.0.0.1:9/none".into(),
            body: "{}".into(),
        },
        clock.now(),
    );
    waiting.next_attempt_at = clock.now() + Duration::days(365);
    app.app.store.enqueue(vec![waiting]).await.unwrap();

    let early = app.app.store.prune(clock.now() - Duration::days(90)).await.unwrap();
    assert_eq!(early, steward::store::Pruned::default(), "nothing is old yet");
    clock.advance(Duration::days(100));
    let pruned = app.app.store.prune(clock.now() - Duration::days(90)).await.unwrap();
    assert_eq!(
        pruned,
        steward::store::Pruned {
            fired: 1,
            notifications: 1,
            outbox: 1
        }
    );
    assert!(app.app.store.recent_notifications(&user, 5).await.unwrap().is_empty());
    assert!(app.app.store.outbox_by_key(&email_key).await.unwrap().is_none());
    assert!(app.app.store.outbox_by_key("test:pending").await.unwrap().is_some());
    // The digest trigger is armed, not fired: untouched.
    assert!(
        app.app
            .store
            .user_triggers(&user)
            .await
            .unwrap()
            .iter()
            .any(|t| t.id == "digest")
    );
}

#[tokio::test]
async fn a_missed_trigger_is_listed_in_the_next_digest_and_only_that_one() {
    let clock = ManualClock::at(NOW);
    let app = app(&clock, None, false).await;
    let user = verified(&app, "ana", "ana@example.com", "Europe/Berlin", "08:00").await;
    call_tool(
        &app,
        &user,
        "remind",
        json!({"text": "call the recruiter", "at": "2026-11-22T12:00:00+01:00"}),
    )
    .await;
    let scheduler = app.app.scheduler();
    // Down from before 12:00 until 21:00: nine hours late, past the window.
    clock.set(at("2026-11-22T20:00:00Z"));
    assert_eq!(scheduler.tick(clock.now()).await.unwrap().missed, 1);
    let digest_text = |key: &'static str| {
        let store = app.app.store.clone();
        async move {
            match store.outbox_by_key(key).await.unwrap().unwrap().payload {
                steward::notification::Payload::Email(e) => e.text,
                other => panic!("{other:?}"),
            }
        }
    };
    for day in ["2026-11-23T07:00:00Z", "2026-11-24T07:00:00Z"] {
        clock.set(at(day));
        assert_eq!(scheduler.tick(clock.now()).await.unwrap().digests, 1, "{day}");
    }
    let first = digest_text("digest:ana:2026-11-23").await;
    let second = digest_text("digest:ana:2026-11-24").await;
    assert!(
        first.contains("your reminder “call the recruiter” (Sun Nov 22 12:00)"),
        "{first}"
    );
    assert!(!second.contains("call the recruiter"), "{second}");
}

/// The digest texts queued for `user`, by period.
async fn digest_texts(app: &TestApp, user: &str, periods: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for period in periods {
        let key = format!("digest:{user}:{period}");
        match app.app.store.outbox_by_key(&key).await.unwrap() {
            Some(item) => match item.payload {
                steward::notification::Payload::Email(e) => out.push(e.text),
                other => panic!("{other:?}"),
            },
            None => panic!("no digest {key}"),
        }
    }
    out
}

#[tokio::test]
async fn a_missed_trigger_is_in_exactly_one_digest_when_a_digest_is_deduplicated_or_fires_in_the_same_tick() {
    let clock = ManualClock::at(NOW);
    let app = app(&clock, None, false).await;
    let user = verified(&app, "ana", "ana@example.com", "Europe/Berlin", "08:00").await;
    for (text, at_) in [
        ("call the recruiter", "2026-11-23T10:00:00+01:00"),
        ("send the report", "2026-11-25T11:00:00+01:00"),
    ] {
        call_tool(&app, &user, "remind", json!({"text": text, "at": at_})).await;
    }
    let scheduler = app.app.scheduler();
    // Monday's digest goes out at 08:00.
    clock.set(at("2026-11-23T07:00:00Z"));
    assert_eq!(scheduler.tick(clock.now()).await.unwrap().digests, 1);
    // Down from before 10:00 until 17:00: the recruiter reminder is missed.
    clock.set(at("2026-11-23T16:00:00Z"));
    assert_eq!(scheduler.tick(clock.now()).await.unwrap().missed, 1);
    // The digest moves to 18:00, so it fires again on Monday; Monday's
    // digest went out already, so this one is not stored, and the missed
    // reminder it would have listed is still to be reported.
    call_tool(
        &app,
        &user,
        "set_preferences",
        json!({"digest": {"frequency": "daily", "time": "18:00"}}),
    )
    .await;
    clock.set(at("2026-11-23T17:00:00Z"));
    assert_eq!(scheduler.tick(clock.now()).await.unwrap().fired, 1);
    clock.set(at("2026-11-24T17:00:00Z"));
    assert_eq!(scheduler.tick(clock.now()).await.unwrap().fired, 1);
    // Down from Tuesday's digest until Wednesday's: the report reminder is
    // recorded as missed in the very tick that decides Wednesday's digest.
    clock.set(at("2026-11-25T17:00:00Z"));
    let report = scheduler.tick(clock.now()).await.unwrap();
    assert_eq!((report.fired, report.missed), (1, 1), "{report:?}");
    clock.set(at("2026-11-26T17:00:00Z"));
    assert_eq!(scheduler.tick(clock.now()).await.unwrap().fired, 1);

    let periods = ["2026-11-23", "2026-11-24", "2026-11-25", "2026-11-26"];
    let texts = digest_texts(&app, "ana", &periods).await;
    let listing = |needle: &str| -> Vec<&str> {
        periods
            .iter()
            .zip(&texts)
            .filter(|(_, t)| t.contains(needle))
            .map(|(p, _)| *p)
            .collect()
    };
    assert_eq!(listing("call the recruiter"), ["2026-11-24"], "{texts:#?}");
    assert_eq!(listing("send the report").len(), 1, "{texts:#?}");
}

#[tokio::test]
async fn a_digest_that_fires_while_preferences_are_saved_stays_armed_for_the_new_schedule() {
    let clock = ManualClock::at(NOW);
    let app = app(&clock, None, false).await;
    let user = verified(&app, "ana", "ana@example.com", "Europe/Berlin", "08:00").await;
    let tz: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
    let store = app.app.store.clone();
    let scheduler = app.app.scheduler();
    let digest_at = |store: Arc<dyn steward::store::Store>| async move {
        let armed = store.user_triggers(&UserId::parse("ana").unwrap()).await.unwrap();
        armed.iter().find(|t| t.id == "digest").map(|t| t.fire_at)
    };
    let due = at("2026-11-23T07:00:00Z");
    assert_eq!(digest_at(store.clone()).await, Some(due));

    // An unrelated change (quiet hours), and a move of the digest to 18:00.
    let mut quiet = store.preferences(&user).await.unwrap();
    quiet.quiet_hours = Some(steward::preferences::QuietHours {
        start: chrono::NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
        end: chrono::NaiveTime::from_hms_opt(7, 0, 0).unwrap(),
    });
    let mut later = quiet.clone();
    later.digest.time = chrono::NaiveTime::from_hms_opt(18, 0, 0).unwrap();

    for (prefs, want) in [
        (&quiet, at("2026-11-24T07:00:00Z")),
        (&later, at("2026-11-24T17:00:00Z")),
    ] {
        let due = digest_at(store.clone()).await.unwrap();
        clock.set(due + Duration::seconds(1));
        let now = clock.now();
        // A save reads the armed digest, which is due...
        let armed = Some(due);
        let stale = prefs.rearmed_digest(&user, tz, armed, now);
        // ...the scheduler fires (and re-arms) it meanwhile...
        assert_eq!(scheduler.tick(now).await.unwrap().fired, 1);
        // ...so a save computed from what it read is refused whole.
        let before = store.preferences(&user).await.unwrap();
        assert!(
            !store
                .save_preferences(&user, &before, prefs, armed, stale)
                .await
                .unwrap()
        );
        assert_eq!(store.preferences(&user).await.unwrap(), before);
        // Saving computes the digest again from what the scheduler left.
        let saved = app
            .app
            .service
            .change_preferences(&user, |_| Ok(prefs.clone()))
            .await
            .unwrap();
        assert_eq!(saved.digest.map(|t| t.fire_at), Some(want));
        assert_eq!(digest_at(store.clone()).await, Some(want));
        assert_eq!(&store.preferences(&user).await.unwrap(), prefs);
    }
}

#[tokio::test]
async fn a_notification_shown_in_ready_while_it_is_worded_is_neither_emailed_nor_shown_again() {
    use steward::llm::scripted::{Script, ScriptedModel};
    let model = Arc::new(ScriptedModel::new(vec![Script::After(
        std::time::Duration::from_secs(3),
        Box::new(Script::text("Time to call the recruiter.")),
    )]));
    let clock = ManualClock::at(NOW);
    let app = app_with(model.clone(), &clock, None, false).await;
    let user = verified(&app, "ana", "ana@example.com", "Europe/Berlin", "08:00").await;
    call_tool(
        &app,
        &user,
        "remind",
        json!({"text": "call the recruiter", "at": "2026-11-22T12:00:00+01:00"}),
    )
    .await;
    clock.set(at("2026-11-22T11:00:00Z"));
    assert_eq!(tick(&app, &clock).await.fired, 1);
    let notifier = app.app.notifier().unwrap();
    let routing = tokio::spawn({
        let notifier = notifier.clone();
        async move { notifier.pass().await.unwrap() }
    });
    let deadline = std::time::Instant::now() + WAIT;
    while model.calls() == 0 {
        assert!(std::time::Instant::now() < deadline, "the model was never asked");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // While the model words it, the person opens the widget and sees it.
    {
        let ana = app.connect("ana").await;
        let shown = &ana.ready.as_ref().unwrap()["notifications"];
        assert_eq!(shown[0]["text"], "Reminder: call the recruiter", "{shown}");
    }
    while !app.app.store.unseen_notifications(&user, 10).await.unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "never marked seen");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!routing.is_finished(), "the wording should still be running");
    // The person has gone offline (email would be next), but the routing
    // was decided on a copy read before it was seen: nothing is recorded...
    let pass = tokio::time::timeout(WAIT, routing).await.unwrap().unwrap();
    assert_eq!(pass.routed, 0);
    // ...and the next pass routes the stored, seen notification: no email.
    assert_eq!(notifier.pass().await.unwrap().routed, 1);
    let stored = app.app.store.recent_notifications(&user, 5).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].seen);
    assert_eq!(stored[0].routed, Some(steward::notification::Channel::Socket));
    let email = format!("notify:ana:{}:email", stored[0].id);
    assert_eq!(app.app.store.outbox_by_key(&email).await.unwrap(), None);
    let again = app.connect("ana").await;
    assert_eq!(again.ready.as_ref().unwrap()["notifications"], json!([]));
}

#[tokio::test]
async fn a_notification_whose_socket_closes_before_writing_it_comes_with_the_next_ready() {
    use steward::hub::Outbound;
    let clock = ManualClock::at(NOW);
    let app = app(&clock, None, false).await;
    let user = UserId::parse("ana").unwrap();
    app.app.store.ensure_user(&user).await.unwrap();
    call_tool(
        &app,
        &user,
        "remind",
        json!({"text": "call the recruiter", "at": "2026-11-22T12:00:00+01:00"}),
    )
    .await;
    clock.set(at("2026-11-22T11:00:00Z"));
    tick(&app, &clock).await;
    // An open socket whose writer dies with the frame still queued.
    let mut conn = app.app.hub.register(&user).unwrap();
    let mut queue = conn.rx.take().unwrap();
    assert_eq!(route(&app).await.routed, 1);
    match queue.try_recv() {
        Ok(Outbound::Frame { text, receipt: Some(_) }) => {
            assert!(text.contains("Reminder: call the recruiter"), "{text}")
        }
        other => panic!("{other:?}"),
    }
    drop(queue);
    drop(conn);
    assert!(!app.app.hub.is_online(&user));
    let ana = app.connect("ana").await;
    let shown = &ana.ready.as_ref().unwrap()["notifications"];
    assert_eq!(shown.as_array().unwrap().len(), 1, "{shown}");
    assert_eq!(shown[0]["text"], "Reminder: call the recruiter");
    // That `ready` was written: shown once, not again.
    let deadline = std::time::Instant::now() + WAIT;
    while !app.app.store.unseen_notifications(&user, 10).await.unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "never marked seen");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let again = app.connect("ana").await;
    assert_eq!(again.ready.as_ref().unwrap()["notifications"], json!([]));
}

#[tokio::test]
async fn a_verification_email_to_another_address_within_ten_minutes_gets_429_with_retry_after() {
    let clock = ManualClock::at(NOW);
    let app = app(&clock, None, false).await;
    let http = reqwest::Client::new();
    let put = |body: Value| http.put(app.url("/api/preferences?user=ana")).json(&body).send();
    let user = UserId::parse("ana").unwrap();
    let verifications = || {
        let store = app.app.store.clone();
        let until = clock.now() + Duration::days(1);
        async move {
            let queued = store.due_outbox(until, 100).await.unwrap();
            let mut to: Vec<String> = queued
                .into_iter()
                .filter(|i| i.key.starts_with("verify:ana:"))
                .map(|i| match i.payload {
                    steward::notification::Payload::Email(e) => e.to,
                    other => panic!("{other:?}"),
                })
                .collect();
            to.sort();
            to
        }
    };
    let r = put(json!({"email": "ana@example.com"})).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(verifications().await, ["ana@example.com"]);

    clock.advance(Duration::minutes(4));
    let r = put(json!({"email": "other@example.com", "time_zone": "Asia/Kolkata"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "360");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "verification_rate_limited", "{body}");
    let prefs = app.app.store.preferences(&user).await.unwrap();
    assert_eq!(
        (prefs.email.as_deref(), prefs.time_zone),
        (Some("ana@example.com"), None),
        "a refused update changes nothing"
    );

    // The address the link went to (the widget sends the whole form):
    // saved, and no second email, since that link still works.
    let r = put(json!({"email": "ana@example.com", "time_zone": "Asia/Kolkata"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(verifications().await, ["ana@example.com"]);

    clock.advance(Duration::minutes(6));
    let r = put(json!({"email": "other@example.com"})).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(verifications().await, ["ana@example.com", "other@example.com"]);
}

/// The URL after `label: ` in an email's text part.
fn link(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{label}: ")))
        .unwrap_or_else(|| panic!("no {label} link in {text}"))
        .trim()
        .to_owned()
}

/// A snooze moves a due date, which by default needs a yes: the click is
/// that yes. It applies the move without making a proposal of its own, so
/// the question the user has open in the chat stays open.
#[tokio::test]
async fn a_snooze_click_moves_the_step_and_leaves_the_users_open_proposal_alone() {
    let clock = ManualClock::at(NOW);
    let app = TestApp::with(engine())
        .config(|c| {
            c.time_zone = "Europe/Berlin".into();
            c.background = false;
            c.confirm = steward::config::ConfirmConfig {
                reschedule: true,
                ..steward::config::ConfirmConfig::never()
            };
        })
        .clock(clock.clock())
        .spawn()
        .await;
    let user = verified(&app, "ana", "ana@example.com", "Europe/Berlin", "18:00").await;
    onboarding_by_tool(&app, &user).await;
    let (_, snooze) = due_soon_links(&app, &clock, &user).await;
    let plan = || plan_one(&app, &user);
    let due = |plan: &steward::plan::Plan| order_hardware(plan).due_at.unwrap();
    let before = plan().await;
    let asked = call_tool(
        &app,
        &user,
        "update_plan",
        json!({"plan_id": "p1", "expected_version": before.version, "explanation": "later",
               "ops": [{"op": "update_step", "step": "create_accounts", "due_at": "2026-11-26T15:00:00+01:00"}]}),
    )
    .await;
    let open = app.app.store.open_proposals(&user).await.unwrap();
    assert_eq!(open.len(), 1, "the move waits for a yes: {asked}");

    let acted = reqwest::Client::new().post(&snooze).send().await.unwrap();
    assert_eq!(acted.status(), 200);
    let page = acted.text().await.unwrap();
    assert!(page.contains("is now due"), "{page}");
    let after = plan().await;
    assert_eq!(due(&after), due(&before) + chrono::Duration::days(1));
    assert_eq!(after.version, before.version + 1);
    assert_eq!(
        app.app.store.open_proposals(&user).await.unwrap(),
        open,
        "the question in the chat is still open"
    );
}

/// The user's plan p1 as stored.
async fn plan_one(app: &TestApp, user: &UserId) -> steward::plan::Plan {
    app.app
        .store
        .get_plan(user, steward::plan::PlanId(1))
        .await
        .unwrap()
        .unwrap()
}

/// The onboarding plan's "order laptop" step.
fn order_hardware(plan: &steward::plan::Plan) -> &steward::plan::Step {
    plan.steps.iter().find(|s| s.id == "order_hardware").unwrap()
}

/// Ana's onboarding plan p1, made through the model's tool.
async fn onboarding_by_tool(app: &TestApp, user: &UserId) {
    let made = call_tool(
        app,
        user,
        "plan_from_template",
        json!({"kind": "onboard_employee", "slots": {"name": "Ana Souza", "start_date": "2026-12-01"}}),
    )
    .await;
    assert_eq!(made["created"], true, "{made}");
}

/// The Done and Snooze links of the laptop step's "due soon" email (Ana
/// has the onboarding plan p1 and a verified address), made to point at
/// the test server.
async fn due_soon_links(app: &TestApp, clock: &ManualClock, user: &UserId) -> (String, String) {
    // The laptop's "due soon" comes a day before Tuesday 09:00; Ana is away.
    clock.set(at("2026-11-23T08:30:00Z"));
    tick(app, clock).await;
    route(app).await;
    let notes = app.app.store.recent_notifications(user, 20).await.unwrap();
    let due_soon = notes
        .iter()
        .find(|n| n.step_id.as_deref() == Some("order_hardware"))
        .expect("the due-soon notification");
    let key = format!("notify:ana:{}:email", due_soon.id);
    let emails: Vec<steward::notification::Email> = app
        .app
        .store
        .outbox_by_key(&key)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|o| match o.payload {
            steward::notification::Payload::Email(e) => Some(e),
            _ => None,
        })
        .collect();
    let email = emails.first().expect("the due-soon email");
    let base = format!("http://{}", app.addr);
    let done = link(&email.text, "Done").replace("http://127.0.0.1:8080", &base);
    let snooze = link(&email.text, "Snooze a day").replace("http://127.0.0.1:8080", &base);
    assert!(done.contains("/act/done/p1/order_hardware/pending-"), "{done}");
    assert!(email.html.contains(">Snooze a day</a>"), "{}", email.html);
    (done, snooze)
}

#[tokio::test]
async fn a_notification_email_carries_one_click_links_that_act_once_for_their_user_only() {
    let clock = ManualClock::at(NOW);
    let app = app(&clock, None, false).await;
    let user = verified(&app, "ana", "ana@example.com", "Europe/Berlin", "18:00").await;
    onboarding_by_tool(&app, &user).await;
    let (done, snooze) = due_soon_links(&app, &clock, &user).await;

    let http = reqwest::Client::new();
    let stored = || plan_one(&app, &user);
    let steps = |plan: &steward::plan::Plan| {
        let step = order_hardware(plan);
        (step.status, step.due_at)
    };
    let before = stored().await;
    // Opening the link (what a mail scanner does) only asks.
    let page = http.get(&done).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("Mark “Order laptop and equipment for Ana Souza” done?"),
        "{page}"
    );
    assert!(page.contains("<form method=\"post\">"), "{page}");
    let unchanged = stored().await;
    assert_eq!(unchanged.version, before.version);

    // The button acts, once, and shows the plan as it is now.
    let acted = http.post(&done).send().await.unwrap();
    assert_eq!(acted.status(), 200);
    let acted = acted.text().await.unwrap();
    assert!(acted.contains("is done."), "{acted}");
    assert!(acted.contains("✓ Order laptop and equipment for Ana Souza"), "{acted}");
    let after = stored().await;
    assert_eq!(steps(&after).0, steward::plan::StepStatus::Completed);
    let again = http.post(&done).send().await.unwrap().text().await.unwrap();
    assert!(again.contains("it is already done. Nothing was changed."), "{again}");
    // The snooze link was for the step as it was: it does nothing now.
    let late = http.post(&snooze).send().await.unwrap().text().await.unwrap();
    assert!(late.contains("Nothing was changed"), "{late}");
    let last = stored().await;
    assert_eq!(last.version, after.version, "used twice, acted once");
    let history = app.app.store.history(&user, steward::plan::PlanId(1), 5).await.unwrap();
    assert!(history[0].why.contains("clicked “done”"), "{:?}", history[0]);

    // Someone else's name in the token: not valid, nothing read or changed.
    let (path, token) = done.split_once("?token=").unwrap();
    let (_, mac) = token.split_once('.').unwrap();
    let forged = format!("{path}?token={}.{mac}", URL_SAFE.encode("bob"));
    let refused = http.post(&forged).send().await.unwrap();
    assert_eq!(refused.status(), 404);
    assert!(refused.text().await.unwrap().contains("Link not valid"));
    let other_step = done.replace("order_hardware", "create_accounts");
    assert_eq!(http.get(&other_step).send().await.unwrap().status(), 404);
}
