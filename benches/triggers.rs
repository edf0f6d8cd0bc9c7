//! 100 000 armed triggers: how long arming takes, memory, how long a
//! restart takes to re-arm (open the store, find the earliest trigger),
//! and how late triggers fire while other users write. The real scheduler
//! loop runs (a tokio timer until the earliest trigger, real clock).
//! `cargo bench --bench triggers`.

// Benchmark code: a failed unwrap stops the run, and the figures are printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

use chrono::{Duration, Utc};
use std::sync::Arc;
use std::time::Instant;
use steward::app::App;
use steward::config::Config;
use steward::offline::OfflineEngine;
use steward::planner::templates::Templates;
use steward::store::{AccountStore, SledStore, TriggerStore};
use steward::triggers::{Trigger, TriggerKind};
use steward::user::UserId;
use tokio_util::sync::CancellationToken;

const USERS: usize = 1_000;
const PER_USER: usize = 100;
const WRITERS: usize = 100;
/// Triggers due during the lateness run, spread over `WINDOW_SECS`.
const DUE: usize = 1_000;
const WINDOW_SECS: i64 = 5;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn reminder(user: &UserId, n: usize, at: chrono::DateTime<Utc>) -> Trigger {
    Trigger {
        id: format!("remind:{n}"),
        user: user.clone(),
        fire_at: at,
        created_at: Utc::now(),
        kind: TriggerKind::Reminder {
            // The scheduled time travels in the text, so lateness can be
            // read back from the notification.
            text: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            lapse_on_reply: false,
        },
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let rss_start = rss_mib();
    let users: Vec<UserId> = (0..USERS).map(|u| UserId::parse(&format!("u{u}")).unwrap()).collect();

    // Arm 100 000 reminders over the next 30 days, WRITERS at a time.
    let armed = {
        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        for u in &users {
            store.ensure_user(u).await.unwrap();
        }
        let started = Instant::now();
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (store, users) = (store.clone(), users.clone());
                tokio::spawn(async move {
                    for i in (w..USERS * PER_USER).step_by(WRITERS) {
                        let at = Utc::now() + Duration::days(1) + Duration::seconds((i * 25) as i64);
                        store.put_trigger(&reminder(&users[i % USERS], i, at)).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let took = started.elapsed();
        let count = store.trigger_count().await.unwrap();
        println!(
            "armed {count} triggers in {:.2} s ({:.0}/s, {WRITERS} concurrent writers, flush per write); RSS {:.0} MiB (start {:.0} MiB)",
            took.as_secs_f64(),
            count as f64 / took.as_secs_f64(),
            rss_mib(),
            rss_start
        );
        count
    };

    // Restart: open the store and find the earliest trigger (what the
    // scheduler needs to re-arm), five times; report the median.
    let mut reopen = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let store = SledStore::open(dir.path()).unwrap();
        let next = store.next_trigger_at().await.unwrap();
        reopen.push(started.elapsed().as_secs_f64() * 1000.0);
        assert!(next.is_some());
        drop(store);
    }
    reopen.sort_by(f64::total_cmp);
    let rss_reopened = rss_mib();

    // Fire lateness under load: DUE reminders over WINDOW_SECS while the
    // 100 000 others stay armed and WRITERS users keep arming new ones.
    let store = SledStore::open(dir.path()).unwrap();
    let mut config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    config.background = false;
    let templates = Arc::new(Templates::load(&config.templates_dir).unwrap());
    let app = App::builder(config)
        .store(Arc::new(store))
        .engine(steward::turn::Engine::Offline(Arc::new(OfflineEngine::new(templates))))
        .build()
        .await
        .unwrap();
    // Lateness with no other writes: the scheduler is woken only by its
    // tokio-cron-scheduler one-shot (500 ms polling). Then under load.
    let quiet = lateness_run(&app, &users, 0, USERS * PER_USER).await;
    let loaded = lateness_run(&app, &users, WRITERS, USERS * PER_USER + DUE).await;
    println!(
        "restart with {armed} armed: open + find earliest median {:.1} ms (min {:.1}, max {:.1}); RSS after reopening {:.0} MiB",
        pct(&reopen, 0.5),
        reopen[0],
        reopen[reopen.len() - 1],
        rss_reopened
    );
    for (name, (lateness, writes)) in [("no other load", quiet), ("under load", loaded)] {
        println!(
            "{name}: fired {} of {DUE} due over {WINDOW_SECS} s with {writes} concurrent durable writes: lateness p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            lateness.len(),
            pct(&lateness, 0.5),
            pct(&lateness, 0.99),
            lateness[lateness.len() - 1]
        );
    }
}

/// Arms DUE reminders over WINDOW_SECS (ids from `first`), runs the real
/// scheduler loop while `writers` users keep arming far-future reminders,
/// and returns the sorted lateness (ms) and the number of load writes.
async fn lateness_run(app: &App, users: &[UserId], writers: usize, first: usize) -> (Vec<f64>, usize) {
    let start = Utc::now() + Duration::seconds(2);
    for n in 0..DUE {
        let at = start + Duration::milliseconds((n as i64 * WINDOW_SECS * 1000) / DUE as i64);
        app.store
            .put_trigger(&reminder(&users[n % USERS], first + n, at))
            .await
            .unwrap();
    }
    let stop = CancellationToken::new();
    let scheduler = app.scheduler();
    let runner = tokio::spawn(scheduler.run(stop.clone()));
    let load_stop = CancellationToken::new();
    let writes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let load: Vec<_> = (0..writers)
        .map(|w| {
            let (store, users, stop, writes) = (app.store.clone(), users.to_vec(), load_stop.clone(), writes.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.is_cancelled() {
                    let at = Utc::now() + Duration::days(40);
                    let t = reminder(&users[w], 10_000_000 + first * 10 + w * 100_000 + i, at);
                    store.put_trigger(&t).await.unwrap();
                    writes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_secs(2 + WINDOW_SECS as u64 + 3)).await;
    load_stop.cancel();
    for t in load {
        t.await.unwrap();
    }
    stop.cancel();
    runner.await.unwrap();

    let mut lateness = Vec::new();
    // Times travel in the text at millisecond precision.
    let started = start - Duration::milliseconds(1);
    for u in users {
        for n in app.store.recent_notifications(u, 10).await.unwrap() {
            let Some(at) = n.text.strip_prefix("Reminder: ") else {
                continue;
            };
            let scheduled = chrono::DateTime::parse_from_rfc3339(at).unwrap();
            if scheduled < started {
                continue; // an earlier run's
            }
            lateness.push((n.created_at - scheduled.with_timezone(&Utc)).num_milliseconds() as f64);
        }
    }
    lateness.sort_by(f64::total_cmp);
    (lateness, writes.load(std::sync::atomic::Ordering::Relaxed))
}
