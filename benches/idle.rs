//! Memory of idle connected users: the real binary (release) on loopback,
//! 10 000 users each with one open websocket that has received `ready`
//! and then says nothing. Prints the server's RSS before and after, and
//! the difference per socket. `cargo bench --bench idle` (set
//! `IDLE_SOCKETS` for another count, `IDLE_BIN=path` for another build).

// Benchmark code: a failed unwrap stops the run, and the figures are printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

use futures::StreamExt;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio_tungstenite::tungstenite::Message;

/// The server's resident memory, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::main]
async fn main() {
    let sockets: usize = std::env::var("IDLE_SOCKETS").map_or(10_000, |v| v.parse().unwrap());
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    // `IDLE_BIN=path` runs another build of the server.
    let binary = std::env::var("IDLE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_steward").to_owned());
    let mut server = Command::new(binary)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .env("RUST_LOG", "error")
        .env("STEWARD_LIMITS_MAX_CONNECTIONS", (sockets + 100).to_string())
        // Every socket comes from this one address.
        .env("STEWARD_LIMITS_REQUESTS_PER_MINUTE_PER_IP", "1000000")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = server.id().unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().unwrap();
    let addr = line.trim_start_matches("steward listening on http://").to_owned();
    // One socket opened and closed first, so what start-up costs once is
    // not counted per socket.
    open(&addr, "warm-up").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib(pid);
    let started = Instant::now();
    let mut open_sockets = Vec::with_capacity(sockets);
    for n in 0..sockets {
        open_sockets.push(open(&addr, &format!("user-{n}")).await);
    }
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid);
    let per_socket = (after.saturating_sub(before)) as f64 * 1024.0 / sockets as f64;
    println!(
        "{sockets} idle sockets (one user each), opened in {took:.1?}: server RSS {:.1} MiB before, {:.1} MiB after, \
         {:.1} KiB per idle connected user",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        per_socket / 1024.0
    );
    drop(open_sockets);
    server.start_kill().unwrap();
}

/// A socket for `user` that has received its `ready` frame.
async fn open(
    addr: &str,
    user: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?user={user}"))
        .await
        .unwrap();
    loop {
        if let Some(Ok(Message::Text(text))) = ws.next().await
            && text.contains("\"ready\"")
        {
            return ws;
        }
    }
}
