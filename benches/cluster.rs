//! Chat turns with several steward instances on one PostgreSQL database,
//! beside one instance on sled, the same load for each: `USERS` users on
//! real websockets, spread over the instances, each sending `TURNS`
//! messages back to back (the offline engine answers). A turn is the
//! message frame to its reply: the message budget taken, the turn lease
//! claimed among instances, the message and the answer stored, and every
//! frame also sent to the other instances over the bus. All instances and
//! the clients run in this one process (2 cores here), so this measures
//! what coordination costs, not how far more machines would scale.
//! Prints turns/s, latency p50/p99 and this process's CPU per turn
//! (PostgreSQL's own CPU is not counted). `cargo bench --bench cluster`;
//! the PostgreSQL rows are skipped where PostgreSQL cannot be installed.

// Benchmark code: a failed unwrap stops the run, and the figures are printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

mod support;

use std::time::{Duration, Instant};
use steward::store::postgres::cluster::Database;

const USERS: usize = 24;
const TURNS: usize = 40;
const WARM_UP: usize = 3;

/// This process's user + system CPU time so far.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

async fn run(label: &str, addrs: &[String]) {
    let started = Instant::now();
    let cpu_before = cpu();
    let users: Vec<_> = (0..USERS)
        .map(|u| {
            let name = format!("{}-u{u}", label.replace([' ', ','], ""));
            let addr = addrs[u % addrs.len()].clone();
            tokio::spawn(async move { support::turns(&addr, &name, WARM_UP, TURNS).await })
        })
        .collect();
    let mut latencies = Vec::new();
    for u in users {
        latencies.extend(u.await.unwrap());
    }
    let wall = started.elapsed();
    let cpu_per_turn = (cpu() - cpu_before) / latencies.len() as u32;
    latencies.sort();
    let p = |q: f64| support::percentile(&latencies, q);
    println!(
        "{label:<22} {:>7.0} turns/s   p50 {:>9.2?}   p99 {:>9.2?}   CPU/turn {:>8.2?}",
        latencies.len() as f64 / wall.as_secs_f64(),
        p(0.50),
        p(0.99),
        cpu_per_turn,
    );
}

#[tokio::main]
async fn main() {
    println!("{USERS} users × {TURNS} turns each, all users at once, offline engine");
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let sled = support::serve(support::config(&dir.path().join("sled"), None)).await;
    run("sled, 1 instance", &[sled]).await;
    let Some(db) = Database::fresh().await else { return };
    let mut addrs = Vec::new();
    for n in 1..=3 {
        addrs.push(support::serve(support::config(&dir.path().join(format!("pg{n}")), Some(db.url()))).await);
        // Each instance knows of the others before the load starts.
        tokio::time::sleep(Duration::from_millis(300)).await;
        run(
            &format!("postgres, {n} instance{}", if n > 1 { "s" } else { "" }),
            &addrs,
        )
        .await;
    }
}
