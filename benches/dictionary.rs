//! Builds the zstd dictionary that records on sled are compressed with
//! (`src/store/sled/records.zdict`), from a corpus that is not the load
//! benchmark's conversation: the release binary on loopback, the offline
//! engine, and 40 users each sending messages drawn from the interpreter's
//! development set (a goal of some kind, "yes", then commands, agenda
//! questions and chat, five times over). Every record the store then holds
//! is a sample. Prints how the corpus compresses with and without the
//! dictionary; writes the dictionary only when `DICT_OUT=path` is set.
//!
//! A dictionary that has shipped is never changed: records written with
//! it name its id and need it to be read. A new one gets a new id and is
//! added beside the old (see `codec.rs`).
//!
//! `cargo bench --bench dictionary`; `DICT_OUT=path` writes a new
//! dictionary there (never over the shipped `records.zdict`: a unit test in
//! `codec.rs` pins its id); `DICT_USERS=N` changes the number of users.

// Benchmark code: a failed unwrap stops the run, and the figures are printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

use futures::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio_tungstenite::tungstenite::Message;

/// The dictionary's size: 32 KiB reached most of the gain of 64 KiB on
/// this store's records in a trial, at half the memory per thread.
const DICT_BYTES: usize = 32 * 1024;
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

#[tokio::main]
async fn main() {
    let users: usize = std::env::var("DICT_USERS").map_or(40, |n| n.parse().unwrap());
    let (goals, others) = messages();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_steward"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env("RUST_LOG", "error")
        .env("STEWARD_LIMITS_MESSAGES_PER_MINUTE", "1000000")
        .env("STEWARD_LIMITS_REQUESTS_PER_MINUTE_PER_IP", "100000000")
        .env("STEWARD_LIMITS_MAX_ACTIVE_PLANS", "1000")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().unwrap();
    let addr = line.trim_start_matches("steward listening on http://").to_owned();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let mut rng = StdRng::seed_from_u64(7);
    let mut tasks = Vec::new();
    for n in 0..users {
        let mut script = Vec::new();
        for _ in 0..5 {
            script.push(goals.choose(&mut rng).unwrap().clone());
            script.push("yes".to_owned());
            for _ in 0..rng.random_range(3..8) {
                script.push(others.choose(&mut rng).unwrap().clone());
            }
        }
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            talk(&addr, &format!("corpus-{n}"), &script).await
        }));
    }
    let mut turns = 0;
    for task in tasks {
        turns += task.await.unwrap();
    }
    // SIGTERM: the server stops cleanly and closes the database.
    let pid = child.id().unwrap();
    std::process::Command::new("kill")
        .arg(pid.to_string())
        .status()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();

    let samples = samples(&data);
    let raw: usize = samples.iter().map(Vec::len).sum();
    println!(
        "corpus: {users} users, {turns} turns, {} records, {raw} bytes",
        samples.len()
    );
    let dict = zstd::dict::from_samples(&samples, DICT_BYTES).unwrap();
    let plain: usize = samples.iter().map(|s| packed(s, None)).sum();
    let with: usize = samples.iter().map(|s| packed(s, Some(&dict))).sum();
    println!(
        "each record alone at level 1: {plain} bytes without a dictionary, {with} with ({} bytes, id {})",
        dict.len(),
        zstd::zstd_safe::get_dict_id(&dict).map_or(0, |id| id.get())
    );
    if let Ok(out) = std::env::var("DICT_OUT") {
        std::fs::write(&out, &dict).unwrap();
        println!("wrote {out}");
    }
}

/// The development set's messages without a pending question: the goals,
/// and everything else.
fn messages() -> (Vec<String>, Vec<String>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/interpreter_eval.jsonl");
    let (mut goals, mut others) = (Vec::new(), Vec::new());
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let case: Value = serde_json::from_str(line).unwrap();
        if case.get("pending").is_some() {
            continue;
        }
        let text = case["text"].as_str().unwrap().to_owned();
        match case["expect"]["route"].as_str() {
            Some("new_goal") => goals.push(text),
            Some("confirmation") => {}
            _ => others.push(text),
        }
    }
    (goals, others)
}

/// One user's conversation; how many turns it took.
async fn talk(addr: &str, user: &str, script: &[String]) -> usize {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?user={user}"))
        .await
        .unwrap();
    for (n, text) in script.iter().enumerate() {
        let id = format!("m{n}");
        let frame = json!({"type": "message", "id": id, "text": text});
        ws.send(Message::Text(frame.to_string().into())).await.unwrap();
        loop {
            let next = tokio::time::timeout(Duration::from_secs(60), ws.next()).await;
            let Ok(Some(Ok(Message::Text(text)))) = next else {
                assert!(next.is_ok(), "{user}: no answer to {id} within 60 s");
                continue;
            };
            let frame: Value = serde_json::from_str(&text).unwrap();
            if frame["reply_to"] == id.as_str() && matches!(frame["type"].as_str(), Some("reply" | "error")) {
                break;
            }
        }
    }
    script.len()
}

/// Every value in every tree, as JSON (a compressed one decompressed).
fn samples(data: &std::path::Path) -> Vec<Vec<u8>> {
    let db = sled::open(data).unwrap();
    let mut out = Vec::new();
    for name in db.tree_names() {
        for item in db.open_tree(&name).unwrap().iter() {
            let (_, value) = item.unwrap();
            if value.starts_with(&ZSTD_MAGIC) {
                out.push(zstd::bulk::decompress(&value, 64 << 20).unwrap());
            } else if value.first() == Some(&b'{') {
                out.push(value.to_vec());
            }
        }
    }
    out
}

/// A record's stored size compressed alone at level 1 (kept as it is
/// when that gains nothing).
fn packed(sample: &[u8], dict: Option<&[u8]>) -> usize {
    let frame = match dict {
        Some(dict) => zstd::bulk::Compressor::with_dictionary(1, dict)
            .unwrap()
            .compress(sample)
            .unwrap(),
        None => zstd::bulk::compress(sample, 1).unwrap(),
    };
    frame.len().min(sample.len())
}
