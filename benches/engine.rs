//! The execution engine with a zero-latency tool service on loopback: a
//! declared HTTP tool with an idempotency header, plans stored through the
//! store API with every step bound to it, the engine started, the run timed
//! until every step is completed. Prints:
//! - throughput: 50 users × one orchestrated plan of 10 independent steps
//!   (500 steps), at the default limits (8 at once, 4 per user, 3 per
//!   plan) and at 32 at once;
//! - latency per step in a chain of 200 dependent steps (one at a time):
//!   from the completion of one step to the completion of the next (the
//!   engine waking, the claim, the call, and the step's five flushed
//!   writes), and a bare HTTP round trip to the same
//!   service, so the overhead beyond the call itself is the difference.
//!
//! `cargo bench --bench engine`.

// Benchmark code: a failed unwrap stops the run, and the figures are printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

use axum::Json;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use steward::app::App;
use steward::config::Config;
use steward::offline::OfflineEngine;
use steward::plan::{Actor, HistoryEntry, Plan, PlanId, PlanMode, Step, StepStatus, ToolBinding};
use steward::planner::templates::Templates;
use steward::store::{AccountStore, Derived, PlanStore, SledStore};
use steward::user::UserId;
use tokio_util::sync::CancellationToken;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn tool_service() -> String {
    let counter = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move { Json(json!({"id": counter.fetch_add(1, Ordering::Relaxed)})) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn derive(plan: &Plan) -> Derived {
    Derived {
        triggers: Vec::new(),
        arm_after: plan.updated_at,
        runnable: steward::execution::runnable(plan),
    }
}

/// A plan of `n` steps bound to the tool; each waits on the one before
/// when `chain`.
fn plan(n: usize, chain: bool) -> Plan {
    let mut p = Plan::draft("bench", "", chrono::Utc::now());
    p.version = 1;
    p.mode = PlanMode::Orchestrated;
    for i in 0..n {
        let mut s = Step::new(format!("s{i}"), format!("step {i}"));
        if chain && i > 0 {
            s.depends_on = vec![format!("s{}", i - 1)];
        }
        s.tool = Some(ToolBinding {
            name: "open_ticket".into(),
            args: json!({"title": format!("step {i}")}),
        });
        p.steps.push(s);
    }
    p
}

async fn app(dir: &std::path::Path, tools: &str, concurrency: usize) -> (App, Arc<SledStore>) {
    std::fs::create_dir_all(dir.join("tools")).unwrap();
    std::fs::write(
        dir.join("tools/open_ticket.toml"),
        format!(
            "name = \"open_ticket\"\ndescription = \"bench\"\nmethod = \"POST\"\nurl = \"{tools}/tickets\"\n\
             idempotency_header = \"Idempotency-Key\"\n[parameters]\ntype = \"object\"\n\
             properties.title = {{ type = \"string\" }}\n"
        ),
    )
    .unwrap();
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut config = Config {
        data_dir: dir.join("data"),
        tools_dir: dir.join("tools"),
        background: false,
        ..Config::default()
    };
    config.templates_dir = root.join("templates/plans");
    config.chat_templates_dir = root.join("templates/chat");
    config.prompts_dir = root.join("prompts");
    config.email.templates_dir = root.join("templates/email");
    config.engine.max_concurrency = concurrency;
    config.engine.per_user = concurrency.min(4);
    let store = Arc::new(SledStore::open(&config.data_dir).unwrap());
    let engine = Arc::new(OfflineEngine::new(Arc::new(Templates::built_in().unwrap())));
    let app = App::builder(config)
        .store(store.clone())
        .engine(engine.into())
        .build()
        .await
        .unwrap();
    (app, store)
}

async fn create(store: &SledStore, user: &UserId, p: Plan) -> Plan {
    store.ensure_user(user).await.unwrap();
    let entry = HistoryEntry {
        at: p.created_at,
        actor: Actor::User,
        why: "bench".into(),
        version: 1,
        changes: vec![],
        undoes: None,
    };
    store.create_plan(user, p, entry, &derive).await.unwrap()
}

async fn all_done(store: &SledStore, users: &[UserId]) -> bool {
    for u in users {
        for p in store.list_plans(u).await.unwrap() {
            if p.steps.iter().any(|s| s.status != StepStatus::Completed) {
                return false;
            }
        }
    }
    true
}

async fn throughput(tools: &str, concurrency: usize) -> (usize, Duration) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (app, store) = app(dir.path(), tools, concurrency).await;
    let users: Vec<UserId> = (0..50).map(|u| UserId::parse(&format!("u{u}")).unwrap()).collect();
    for u in &users {
        create(&store, u, plan(10, false)).await;
    }
    let stop = CancellationToken::new();
    let started = Instant::now();
    tokio::spawn(app.executor().unwrap().run(stop.clone()));
    while !all_done(&store, &users).await {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    stop.cancel();
    (500, took)
}

async fn chain(tools: &str) -> (Vec<Duration>, f64) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (app, store) = app(dir.path(), tools, 8).await;
    let user = UserId::parse("chain").unwrap();
    create(&store, &user, plan(200, true)).await;
    let flushes_before = store.flush_count();
    let stop = CancellationToken::new();
    tokio::spawn(app.executor().unwrap().run(stop.clone()));
    // Only to know when the chain is done (the times come from the history
    // below), so seldom: reading the 200-step plan costs the engine CPU.
    loop {
        let p = store.get_plan(&user, PlanId(1)).await.unwrap().unwrap();
        if p.steps.iter().all(|s| s.status == StepStatus::Completed) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let flushes = (store.flush_count() - flushes_before) as f64 / 200.0;
    // Exact times come from the history: one "succeeded" entry per step.
    let history = store.history(&user, PlanId(1), 10_000).await.unwrap();
    let mut finished: Vec<chrono::DateTime<chrono::Utc>> = history
        .iter()
        .filter(|h| h.why.ends_with("succeeded"))
        .map(|h| h.at)
        .collect();
    finished.sort();
    let mut gaps: Vec<Duration> = finished
        .windows(2)
        .skip(10) // warm-up
        .map(|w| (w[1] - w[0]).to_std().unwrap())
        .collect();
    gaps.sort();
    (gaps, flushes)
}

async fn round_trips(tools: &str) -> Vec<Duration> {
    let client = reqwest::Client::new();
    let mut times = Vec::new();
    for n in 0..300 {
        let started = Instant::now();
        let r: Value = client
            .post(format!("{tools}/tickets"))
            .header("idempotency-key", format!("k{n}"))
            .json(&json!({"title": "x"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(r.get("id").is_some());
        if n >= 20 {
            times.push(started.elapsed());
        }
    }
    times.sort();
    times
}

#[tokio::main]
async fn main() {
    let tools = tool_service().await;
    for concurrency in [8, 32] {
        let (steps, took) = throughput(&tools, concurrency).await;
        println!(
            "engine throughput, {concurrency} at once: {steps} steps in {took:.2?} = {:.0} steps/s",
            steps as f64 / took.as_secs_f64()
        );
    }
    let (gaps, flushes) = chain(&tools).await;
    println!("engine chain: {flushes:.1} flushes per step");
    let rtt = round_trips(&tools).await;
    println!(
        "engine chain, completion to next completion over {} steps: p50 {:.2?}, p95 {:.2?}, p99 {:.2?}",
        gaps.len(),
        percentile(&gaps, 0.5),
        percentile(&gaps, 0.95),
        percentile(&gaps, 0.99)
    );
    println!(
        "bare HTTP round trip to the tool service: p50 {:.2?}, p99 {:.2?}",
        percentile(&rtt, 0.5),
        percentile(&rtt, 0.99)
    );
    println!(
        "overhead per step beyond the call: p50 {:.2?}, p99 {:.2?}",
        percentile(&gaps, 0.5).saturating_sub(percentile(&rtt, 0.5)),
        percentile(&gaps, 0.99).saturating_sub(percentile(&rtt, 0.5))
    );
}
