//! Durable plan updates through the sled store, flush included, with 1 and
//! 50 concurrent users, and the same through the PostgreSQL store (a
//! private cluster on loopback, commit with synchronous_commit on; skipped
//! where PostgreSQL cannot be had). Prints p50/p99 latency, throughput and,
//! for sled, how many updates shared each flush (group commit). Also the transcript reads of
//! one chat turn: the duplicate check (last 200 entries) and the model's
//! history (last 40). `cargo bench --bench store`.

// Benchmark code: a failed unwrap stops the run, and the figures are printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

use chrono::Utc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use steward::conversation::{Entry, Message, ToolCall};
use steward::plan::{Actor, HistoryEntry, Op, Plan, PlanLimits, Step, patch};
use steward::store::postgres::cluster::Database;
use steward::store::{AccountStore, ConversationStore, Derived, SledStore, Store};
use steward::triggers::{TriggerPolicy, for_plan};
use steward::user::UserId;

const UPDATES_PER_USER: usize = 200;

/// The triggers the plan service derives for every write (the default
/// policy), so the store does the same work a server's write does.
fn derive(user: &UserId) -> impl Fn(&Plan) -> Derived + Send + Sync + use<> {
    let user = user.clone();
    move |plan: &Plan| Derived {
        triggers: for_plan(&user, plan, &TriggerPolicy::default()),
        arm_after: plan.updated_at,
        runnable: Vec::new(),
    }
}

async fn run(users: usize) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let sled = Arc::new(SledStore::open(dir.path()).unwrap());
    let flushes_before = sled.flush_count();
    let counted = sled.clone();
    let store: Arc<dyn Store> = sled;
    updates("sled", store, users, move || {
        Some(counted.flush_count() - flushes_before)
    })
    .await;
}

async fn run_postgres(users: usize) {
    let Some(db) = Database::fresh().await else { return };
    let store: Arc<dyn Store> = Arc::new(db.store().await);
    updates("postgres", store, users, || None).await;
}

// Long: set-up, the timed loop and the report of one run, read in order.
async fn updates(label: &str, store: Arc<dyn Store>, users: usize, flushes: impl Fn() -> Option<u64>) {
    let mut plans = Vec::new();
    for u in 0..users {
        let user = UserId::parse(&format!("user{u}")).unwrap();
        store.ensure_user(&user).await.unwrap();
        let mut draft = Plan::draft("Bench plan", "", Utc::now());
        draft.version = 1;
        draft.steps.push(Step::new("s0", "first"));
        let entry = HistoryEntry {
            at: Utc::now(),
            actor: Actor::Model,
            why: "bench".into(),
            version: 1,
            changes: vec![],
            undoes: None,
        };
        plans.push((
            user.clone(),
            store.create_plan(&user, draft, entry, &derive(&user)).await.unwrap(),
        ));
    }
    let started = Instant::now();
    let tasks: Vec<_> = plans
        .into_iter()
        .map(|(user, mut plan)| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(UPDATES_PER_USER);
                for i in 0..UPDATES_PER_USER {
                    let op = Op::AddStep {
                        id: None,
                        title: format!("step {i}"),
                        depends_on: vec![],
                        due_at: None,
                        after: None,
                        status: None,
                        tool: None,
                        checks: None,
                    };
                    let begin = Instant::now();
                    let out = patch::apply(
                        &plan,
                        &[op],
                        &PlanLimits {
                            max_steps: 1000,
                            ..Default::default()
                        },
                        Utc::now(),
                    )
                    .unwrap();
                    let entry = HistoryEntry {
                        at: Utc::now(),
                        actor: Actor::Model,
                        why: "bench".into(),
                        version: out.plan.version,
                        changes: out.changes,
                        undoes: None,
                    };
                    store
                        .update_plan(&user, &out.plan, plan.version, entry, &derive(&user))
                        .await
                        .unwrap();
                    latencies.push(begin.elapsed());
                    plan = out.plan;
                }
                latencies
            })
        })
        .collect();
    let mut all: Vec<Duration> = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    all.sort();
    let shared = match flushes() {
        Some(n) => format!("  {:.1} updates per flush", all.len() as f64 / n.max(1) as f64),
        None => String::new(),
    };
    println!(
        "{label:>8}, {users:>3} concurrent users: {} durable updates, p50 {:>9.2?}  p99 {:>9.2?}  {:>7.0} updates/s{shared}",
        all.len(),
        all[all.len() / 2],
        all[all.len() * 99 / 100],
        all.len() as f64 / elapsed.as_secs_f64(),
    );
}

/// A transcript of 1 000 entries shaped like real turns (a question, a tool
/// call with a 2 KB result, an 800-character answer), then the two reads a
/// turn makes, 200 times each.
async fn transcript_reads() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let user = UserId::parse("reader").unwrap();
    store.ensure_user(&user).await.unwrap();
    for turn in 0..250 {
        let messages = [
            Message::User {
                text: format!("mark step {turn} of my onboarding plan as done, please"),
                id: Some(format!("w{turn}")),
            },
            Message::Assistant {
                text: String::new(),
                tool_calls: vec![ToolCall {
                    id: format!("c{turn}"),
                    name: "update_plan".into(),
                    arguments:
                        r#"{"plan_id":"p1","version":3,"ops":[{"op":"set_status","step":"s1","status":"completed"}]}"#
                            .into(),
                }],
                notification: None,
            },
            Message::Tool {
                call_id: format!("c{turn}"),
                name: "update_plan".into(),
                content: "x".repeat(2000),
            },
            Message::Assistant {
                text: "y".repeat(800),
                tool_calls: vec![],
                notification: None,
            },
        ];
        for message in messages {
            store
                .append_message(
                    &user,
                    &Entry {
                        at: Utc::now(),
                        message,
                    },
                    steward::store::Flush::Now,
                )
                .await
                .unwrap();
        }
    }
    for limit in [200, 40] {
        let mut times = Vec::with_capacity(200);
        for _ in 0..200 {
            let begin = Instant::now();
            let read = store.recent_messages(&user, limit).await.unwrap();
            times.push(begin.elapsed());
            assert_eq!(read.len(), limit);
        }
        times.sort();
        println!(
            "transcript read of the last {limit:>3} entries (of 1 000): p50 {:>9.2?}  p99 {:>9.2?}",
            times[times.len() / 2],
            times[times.len() * 99 / 100]
        );
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        run(1).await;
        run(50).await;
        run_postgres(1).await;
        run_postgres(50).await;
        transcript_reads().await;
    });
}
