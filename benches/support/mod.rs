//! What the socket benchmarks share: a server on loopback with the
//! offline engine, and one user's turns over a real websocket.

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use steward::app::App;
use steward::config::Config;
use steward::offline::OfflineEngine;
use steward::planner::templates::Templates;
use tokio_tungstenite::tungstenite::Message;

/// The repository's prompts and templates, data in `data`, PostgreSQL at
/// `database` when given, no message budget to speak of.
pub fn config(data: &std::path::Path, database: Option<&str>) -> Config {
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

/// Starts a server with the offline engine on a free loopback port; its
/// address.
pub async fn serve(config: Config) -> String {
    let engine = Arc::new(OfflineEngine::new(Arc::new(Templates::built_in().unwrap())));
    let app = App::builder(config).engine(engine.into()).build().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(steward::http::serve(app, listener, std::future::pending()));
    addr
}

/// `user` sends `warm_up + turns` messages back to back on one socket;
/// the message → reply latencies after the warm-up.
pub async fn turns(addr: &str, user: &str, warm_up: usize, turns: usize) -> Vec<Duration> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?user={user}"))
        .await
        .unwrap();
    let mut latencies = Vec::with_capacity(turns);
    for n in 0..warm_up + turns {
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
        if n >= warm_up {
            latencies.push(sent.elapsed());
        }
    }
    latencies
}

/// The value at quantile `q` of sorted durations.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}
