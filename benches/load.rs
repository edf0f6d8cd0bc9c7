//! The load benchmark: the release binary on loopback, driven by N users
//! on real websockets, each sending a ten-message conversation in which
//! half the messages change a plan, one message after the other. Two
//! paths: the offline engine, and a model, played by an OpenAI-compatible
//! server in this process that answers at once (text, or an
//! `update_plan` call then text, with usage), so a turn's latency is
//! steward's overhead. The load generator shares the machine's two cores
//! with the server: turns/s is a floor, not steward's ceiling. Reports turns/s, latency p50/p95/p99, the server's
//! CPU per turn (from /proc), its RSS per active user, request bytes sent
//! to the model per turn, and store bytes per user after 10 and after 100
//! messages.
//!
//! `cargo bench --bench load`; `LOAD_USERS=1,100,1000` and
//! `LOAD_PATHS=offline,model` choose the runs; `LOAD_KEEP_EXPORT=file` keeps
//! the last run's export for a look at what the store holds.
//! `LOAD_GROWTH_USERS=N` sets how many users the store-growth runs have
//! (10). `LOAD_PACE_MS=N` has each user send a message every N ms instead of
//! at once after each reply; `LOAD_BIN=path` runs another build of the
//! server (one with debug info, for a profile).

// Benchmark code: a failed unwrap stops the run, and the figures are printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

/// Ten messages, five of them changes, as a person would send them.
const OFFLINE_TALK: [&str; 10] = [
    "help me onboard Ana Souza, she starts December 1",
    "yes",
    "show my onboarding plan",
    "done with order laptop",
    "what should I do next?",
    "move the orientation to Friday",
    "yes",
    "remind me tomorrow at 9 to call the recruiter",
    "list my plans",
    "undo",
];

#[tokio::main]
async fn main() {
    let users: Vec<usize> = list("LOAD_USERS", "1,100,1000")
        .iter()
        .map(|u| u.parse().unwrap())
        .collect();
    let paths = list("LOAD_PATHS", "offline,model");
    println!(
        "| path | users | turns | turns/s | p50 | p95 | p99 | server CPU per turn | flushes per turn | RSS per active user | model bytes per turn | store per user |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let pace = pace();
    for path in &paths {
        for &n in &users {
            run(path, n, 1, pace).await;
        }
    }
    // Store growth: 10 users (`LOAD_GROWTH_USERS`), 100 messages each,
    // never paced (it measures bytes).
    let growth: usize = std::env::var("LOAD_GROWTH_USERS").map_or(10, |n| n.parse().unwrap());
    for path in &paths {
        run(path, growth, 10, None).await;
    }
}

fn list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `users` users, each sending the ten messages `rounds` times, one every
/// `pace` if given.
async fn run(path: &str, users: usize, rounds: usize, pace: Option<Duration>) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let data = dir.path().join("data");
    let fake = match path {
        "model" => Some(FakeModel::start().await),
        _ => None,
    };
    let (mut server, addr, pid) = start(&data, fake.as_ref(), users).await;
    // One user's first turn before measuring: start-up costs are not turns.
    talk(&addr, "warm-up", 1, &OFFLINE_TALK[..1], None).await;
    let rss_before = rss_kib(pid);
    let cpu_before = cpu_ticks(pid);
    let bytes_before = fake.as_ref().map_or(0, |f| f.bytes.load(Ordering::Relaxed));
    let flushes_before = flushes(&addr).await;
    let started = Instant::now();
    let script: Vec<&str> = match path {
        "model" => (0..10)
            .map(|n| {
                if n % 2 == 0 {
                    "add a step to my errands"
                } else {
                    "thanks, what next?"
                }
            })
            .collect(),
        _ => OFFLINE_TALK.to_vec(),
    };
    let mut tasks = Vec::new();
    for u in 0..users {
        let addr = addr.clone();
        let script = script.clone();
        // Paced users start spread over one interval, not all at once.
        let pacing = pace.map(|every| Pacing {
            every,
            first: started + every * u as u32 / users as u32,
        });
        tasks.push(tokio::spawn(async move {
            talk(&addr, &format!("user-{u}"), rounds, &script, pacing).await
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let wall = started.elapsed();
    let cpu = Duration::from_secs_f64((cpu_ticks(pid) - cpu_before) as f64 / 100.0);
    let rss_after = rss_kib(pid);
    let turns = latencies.len();
    let model_bytes = fake.as_ref().map(|f| f.bytes.load(Ordering::Relaxed) - bytes_before);
    let flushed = flushes(&addr).await - flushes_before;
    server.start_kill().unwrap();
    let _ = server.wait().await;
    latencies.sort();
    let store = dir_bytes(&data);
    let (exported, records) = exported_bytes(&data, dir.path()).await;
    println!(
        "| {path} | {users}{} | {turns} | {:.0} | {:.2?} | {:.2?} | {:.2?} | {:.2?} | {:.2} | {:.1} KiB | {} | {:.1} KiB on disk, {:.1} KiB exported, {:.1} KiB of records, after {} messages |",
        match pace {
            _ if rounds > 1 => format!(" × {} messages", rounds * 10),
            Some(every) => format!(", a message every {every:?} each"),
            None => String::new(),
        },
        turns as f64 / wall.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99),
        cpu / turns as u32,
        flushed / turns as f64,
        rss_after.saturating_sub(rss_before) as f64 / users as f64,
        model_bytes.map_or("—".into(), |b| format!("{:.0}", b as f64 / turns as f64)),
        store as f64 / 1024.0 / (users + 1) as f64,
        exported as f64 / 1024.0 / (users + 1) as f64,
        records as f64 / 1024.0 / (users + 1) as f64,
        rounds * 10,
    );
}

/// Starts the release binary on `data`; the child, its address and pid.
async fn start(data: &std::path::Path, fake: Option<&FakeModel>, users: usize) -> (Child, String, u32) {
    // `LOAD_BIN` runs another build (one with debug info, for a profile).
    let binary = std::env::var("LOAD_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_steward").to_owned());
    let mut command = Command::new(binary);
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(data)
        .env("RUST_LOG", "error")
        .env("STEWARD_LIMITS_MAX_CONNECTIONS", (users + 100).to_string())
        .env("STEWARD_LIMITS_MESSAGES_PER_MINUTE", "1000000")
        .env("STEWARD_LIMITS_REQUESTS_PER_MINUTE_PER_IP", "100000000")
        .env("STEWARD_LIMITS_MODEL_TOKENS_PER_DAY", "4000000000")
        .env("STEWARD_LIMITS_MAX_ACTIVE_PLANS", "1000")
        // The model's plans are made at once, not proposed.
        .env("STEWARD_CONFIRM_CREATE_PLAN", "false")
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    if let Some(fake) = fake {
        command
            .env("STEWARD_LLM_BASE_URL", format!("http://{}/v1", fake.addr))
            .env("STEWARD_LLM_API_KEY", "sk-bench");
    }
    let mut child = command.spawn().unwrap();
    let pid = child.id().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().unwrap();
    let addr = line.trim_start_matches("steward listening on http://").to_owned();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr, pid)
}

/// `LOAD_PACE_MS`: each user sends a message every so many milliseconds
/// (or at once after a late reply), as people do, instead of the next one
/// as soon as the reply is in. Unset: no pause, every user always has a
/// turn in flight, and latency at many users is queueing (users ÷ turns/s).
fn pace() -> Option<Duration> {
    let ms = std::env::var("LOAD_PACE_MS").ok()?;
    Some(Duration::from_millis(
        ms.parse().expect("LOAD_PACE_MS is a number of milliseconds"),
    ))
}

/// When a paced user sends: the first message at `first`, then one every
/// `every`.
#[derive(Clone, Copy)]
struct Pacing {
    every: Duration,
    first: Instant,
}

/// One user's conversation, `rounds` times over; each turn's latency
/// (message sent → its reply or its error received).
async fn talk(addr: &str, user: &str, rounds: usize, script: &[&str], pacing: Option<Pacing>) -> Vec<Duration> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?user={user}"))
        .await
        .unwrap();
    let mut latencies = Vec::with_capacity(rounds * script.len());
    for n in 0..rounds * script.len() {
        let id = format!("m{n}");
        let frame = json!({"type": "message", "id": id, "text": script[n % script.len()]});
        if let Some(p) = pacing {
            tokio::time::sleep_until((p.first + p.every * n as u32).into()).await;
        }
        let sent = Instant::now();
        ws.send(Message::Text(frame.to_string().into())).await.unwrap();
        loop {
            let next = tokio::time::timeout(Duration::from_secs(60), ws.next()).await;
            let Ok(Some(Ok(Message::Text(text)))) = next else {
                assert!(next.is_ok(), "{user}: no answer to {id} within 60 s");
                continue;
            };
            let frame: Value = serde_json::from_str(&text).unwrap();
            let answered = frame["reply_to"] == id.as_str();
            match frame["type"].as_str() {
                Some("reply") if answered => break,
                Some("error") if answered => panic!("{user}: {frame}"),
                _ => {}
            }
        }
        latencies.push(sent.elapsed());
    }
    latencies
}

/// How many times the store has flushed (or committed), from `/metrics`.
async fn flushes(addr: &str) -> f64 {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("steward_store_commit_seconds_count"))
        .unwrap();
    line.split_whitespace().last().unwrap().parse().unwrap()
}

/// The value at quantile `q` of sorted durations.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// User plus system CPU time of `pid`, in clock ticks (100 a second).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// The size of `steward export` of `data`, and of the records it holds
/// (keys and values, without sled's log and free space, and without the
/// export's JSON and hex).
async fn exported_bytes(data: &std::path::Path, scratch: &std::path::Path) -> (u64, u64) {
    let out = scratch.join("export.jsonl");
    let status = Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["export", "--data"])
        .arg(data)
        .arg("--out")
        .arg(&out)
        .env("RUST_LOG", "error")
        .stderr(Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&out).unwrap();
    // Per tree: records and bytes exported, then the bytes stored: keys and
    // values as sled holds them (a long record compressed), read from the
    // database itself after the export has opened and closed it.
    let mut trees = std::collections::BTreeMap::<String, (u64, u64, u64)>::new();
    for line in text.lines().skip(1) {
        let record: Value = serde_json::from_str(line).unwrap();
        let tree = trees
            .entry(record["tree"].as_str().unwrap_or("?").to_owned())
            .or_default();
        tree.0 += 1;
        tree.1 += line.len() as u64 + 1;
    }
    let mut stored = 0;
    let db = sled::open(data).unwrap();
    for (name, tree) in trees.iter_mut() {
        for item in db.open_tree(name.as_bytes()).unwrap().iter() {
            let (key, value) = item.unwrap();
            tree.2 += (key.len() + value.len()) as u64;
        }
        stored += tree.2;
    }
    drop(db);
    let parts: Vec<String> = trees
        .iter()
        .map(|(name, (count, exported, stored))| {
            format!(
                "{name} {count} records {:.1} KiB exported {:.1} KiB stored",
                *exported as f64 / 1024.0,
                *stored as f64 / 1024.0
            )
        })
        .collect();
    eprintln!("by tree: {}", parts.join(", "));
    if let Ok(keep) = std::env::var("LOAD_KEEP_EXPORT") {
        std::fs::copy(&out, keep).unwrap();
    }
    (text.len() as u64, stored)
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            dir_bytes(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

/// An OpenAI-compatible server answering at once: to "add a step …", an
/// `update_plan` call adding a step to the errands plan in the system
/// prompt, or creating it (made at once: creation is not confirmed in this
/// run), else text; to a tool result, text. Counts request bytes.
struct FakeModel {
    addr: std::net::SocketAddr,
    bytes: Arc<AtomicU64>,
}

impl FakeModel {
    async fn start() -> FakeModel {
        let bytes = Arc::new(AtomicU64::new(0));
        let router = Router::new()
            .route("/v1/chat/completions", axum::routing::post(answer))
            .with_state(bytes.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        FakeModel { addr, bytes }
    }
}

async fn answer(State(bytes): State<Arc<AtomicU64>>, body: String) -> Response {
    bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
    let request: Value = serde_json::from_str(&body).unwrap();
    let messages = request["messages"].as_array().unwrap();
    let last = messages.last().unwrap();
    let users = messages.iter().filter(|m| m["role"] == "user").count();
    let change = last["role"] == "user" && last["content"].as_str().is_some_and(|t| t.starts_with("add a step"));
    let chunk = |delta: Value, finish: Option<&str>| {
        let body = json!({"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "bench",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {body}\n\n")
    };
    let mut sse = String::new();
    if change {
        // As a model would: a step added to the errands plan the system
        // prompt shows (`p1 "Errands" version=3 …`), or the plan made first.
        let system = messages[0]["content"].as_str().unwrap_or_default();
        let errands = system.lines().find_map(|line| {
            let (id, rest) = line.split_once(" \"Errands\" version=")?;
            let version: u64 = rest.split(' ').next()?.parse().ok()?;
            Some((id.split_whitespace().last()?.to_owned(), version))
        });
        let arguments = match errands {
            Some((id, version)) => json!({"plan_id": id, "expected_version": version, "explanation": "the user asked",
                "ops": [{"op": "add_step", "title": format!("Errand {users}"), "due_at": "2027-01-15"}]}),
            None => json!({"title": "Errands", "explanation": "the user asked",
                "ops": [{"op": "add_step", "id": "buy", "title": "Buy stamps", "due_at": "2027-01-15"}]}),
        };
        sse.push_str(&chunk(
            json!({"role": "assistant", "tool_calls": [{"index": 0, "id": format!("call_{users}"), "type": "function",
                "function": {"name": "update_plan", "arguments": arguments.to_string()}}]}),
            None,
        ));
        sse.push_str(&chunk(json!({}), Some("tool_calls")));
    } else {
        sse.push_str(&chunk(json!({"role": "assistant", "content": "Done; "}), None));
        sse.push_str(&chunk(json!({"content": "the plan is up to date."}), None));
        sse.push_str(&chunk(json!({}), Some("stop")));
    }
    let usage = json!({"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "bench", "choices": [],
        "usage": {"prompt_tokens": body.len() / 4, "completion_tokens": 20, "total_tokens": body.len() / 4 + 20}});
    sse.push_str(&format!("data: {usage}\n\ndata: [DONE]\n\n"));
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from(sse))
        .unwrap()
}
