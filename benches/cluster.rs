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

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use steward::app::App;
use steward::config::Config;
use steward::offline::OfflineEngine;
use steward::planner::templates::Templates;
use steward::store::postgres::cluster::Database;
use tokio_tungstenite::tungstenite::Message;

const USERS: usize = 24;
const TURNS: usize = 40;
const WARM_UP: usize = 3;

fn config(data: &std::path::Path, database: Option<&str>) -> Config {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut config = Config {
        data_dir: data.to_owned(),
        ..Config::default()
    };
    config.templates_dir = root.join("templates/plans");
    config.chat_templates_dir = root.join("templates/chat");
    config.prompts_dir = root.join("prompts");
    config.static_dir = root.join("static");
    config.email.templates_dir = root.join("templates/email");
    config.limits.messages_per_minute = 1_000_000;
    config.database.url = database.map(|u| u.to_owned().into());
    config
}

/// Starts an instance; its address.
async fn instance(data: &std::path::Path, database: Option<&str>) -> String {
    let engine = Arc::new(OfflineEngine::new(Arc::new(Templates::built_in().unwrap())));
    let app = App::builder(config(data, database))
        .engine(engine.into())
        .build()
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(steward::http::serve(app, listener, std::future::pending()));
    addr
}

/// One user's turns; their latencies after the warm-up.
async fn user(addr: String, name: String) -> Vec<Duration> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?user={name}"))
        .await
        .unwrap();
    let mut latencies = Vec::with_capacity(TURNS);
    for n in 0..WARM_UP + TURNS {
        let id = format!("m{n}");
        let frame = json!({"type": "message", "id": id, "text": "what should I do next?"});
        let sent = Instant::now();
        ws.send(Message::Text(frame.to_string().into())).await.unwrap();
        loop {
            let Some(Ok(Message::Text(text))) = ws.next().await else {
                continue;
            };
            let frame: Value = serde_json::from_str(&text).unwrap();
            assert_ne!(frame["type"], "error", "{frame}");
            if frame["type"] == "reply" && frame["reply_to"] == id.as_str() {
                break;
            }
        }
        if n >= WARM_UP {
            latencies.push(sent.elapsed());
        }
    }
    latencies
}

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
            tokio::spawn(user(addrs[u % addrs.len()].clone(), name))
        })
        .collect();
    let mut latencies = Vec::new();
    for u in users {
        latencies.extend(u.await.unwrap());
    }
    let wall = started.elapsed();
    let cpu_per_turn = (cpu() - cpu_before) / latencies.len() as u32;
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
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
    let sled = instance(&dir.path().join("sled"), None).await;
    run("sled, 1 instance", &[sled]).await;
    let Some(db) = Database::fresh().await else { return };
    let mut addrs = Vec::new();
    for n in 1..=3 {
        addrs.push(instance(&dir.path().join(format!("pg{n}")), Some(db.url())).await);
        // Each instance knows of the others before the load starts.
        tokio::time::sleep(Duration::from_millis(300)).await;
        run(
            &format!("postgres, {n} instance{}", if n > 1 { "s" } else { "" }),
            &addrs,
        )
        .await;
    }
}
