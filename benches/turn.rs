//! One user's chat turns over a real websocket on loopback, the offline
//! engine answering: from sending a `message` frame to receiving its
//! `reply`, which is the store's two flushes (the message, the answer) and
//! the frames on the socket. Prints p50/p95/p99 over 300 turns after 20
//! warm-up turns. `cargo bench --bench turn`.

// Benchmark code: a failed unwrap stops the run, and the figures are printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

mod support;

const WARM_UP: usize = 20;
const TURNS: usize = 300;

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let addr = support::serve(support::config(dir.path(), None)).await;
    let mut latencies = support::turns(&addr, "bench", WARM_UP, TURNS).await;
    latencies.sort();
    println!(
        "one user, offline engine, {TURNS} turns: message → reply p50 {:.2?}, p95 {:.2?}, p99 {:.2?}",
        support::percentile(&latencies, 0.50),
        support::percentile(&latencies, 0.95),
        support::percentile(&latencies, 0.99)
    );
}
