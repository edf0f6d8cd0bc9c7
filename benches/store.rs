//! Durable plan updates through the sled store, flush included, with 1 and
//! 50 concurrent users. Prints p50/p99 latency, throughput and how many
//! updates shared each flush (group commit). `cargo bench --bench store`.

use chrono::Utc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use steward::plan::{Actor, HistoryEntry, Op, Plan, PlanLimits, Step, patch};
use steward::store::{SledStore, Store};
use steward::user::UserId;

const UPDATES_PER_USER: usize = 200;

async fn run(users: usize) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
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
        plans.push((user.clone(), store.create_plan(&user, draft, entry).await.unwrap()));
    }
    let flushes_before = store.flush_count();
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
                    store.update_plan(&user, &out.plan, plan.version, entry).await.unwrap();
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
    let flushes = store.flush_count() - flushes_before;
    println!(
        "{users:>3} concurrent users: {} durable updates, p50 {:>9.2?}  p99 {:>9.2?}  {:>7.0} updates/s  {:.1} updates per flush",
        all.len(),
        all[all.len() / 2],
        all[all.len() * 99 / 100],
        all.len() as f64 / elapsed.as_secs_f64(),
        all.len() as f64 / flushes.max(1) as f64
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        run(1).await;
        run(50).await;
    });
}
