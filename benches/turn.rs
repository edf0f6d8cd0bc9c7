//! One user's chat turns over a real websocket on loopback, the offline
//! engine answering: from sending a `message` frame to receiving its
//! `reply`, which is the store's two flushes (the message, the answer) and
//! the frames on the socket. Prints p50/p95/p99 over 300 turns after 20
//! warm-up turns. `cargo bench --bench turn`.

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
use steward::store::SledStore;
use tokio_tungstenite::tungstenite::Message;

const WARM_UP: usize = 20;
const TURNS: usize = 300;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    config.templates_dir = root.join("templates/plans");
    config.chat_templates_dir = root.join("templates/chat");
    config.prompts_dir = root.join("prompts");
    config.static_dir = root.join("static");
    config.email.templates_dir = root.join("templates/email");
    config.limits.messages_per_minute = 100_000;
    let store = Arc::new(SledStore::open(&config.data_dir).unwrap());
    let engine = Arc::new(OfflineEngine::new(Arc::new(Templates::built_in().unwrap())));
    let app = App::builder(config)
        .store(store)
        .engine(engine.into())
        .build()
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(steward::http::serve(app, listener, std::future::pending()));

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?user=bench"))
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
            if frame["type"] == "reply" && frame["reply_to"] == id.as_str() {
                break;
            }
            assert_ne!(frame["type"], "error", "{frame}");
        }
        if n >= WARM_UP {
            latencies.push(sent.elapsed());
        }
    }
    latencies.sort();
    println!(
        "one user, offline engine, {TURNS} turns: message → reply p50 {:.2?}, p95 {:.2?}, p99 {:.2?}",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99)
    );
}
