//! Kill -9 at random moments while users update plans through the real
//! binary (model answers come from the loopback OpenAI fake). After every
//! restart, every update a client saw acknowledged must be there, and at
//! the end every reply a client received is in the stored transcript after
//! the message it answers (tool calls and results are flushed with the
//! reply, not on their own).
//! `CRASH_TEST_KILLS` sets the number of kills (default 12).

use crate::fake_openai::{FakeOpenAi, Reply};
use crate::harness::spawn_binary;
use futures::{SinkExt, StreamExt};
use rand::Rng;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::process::Child;
use tokio_tungstenite::tungstenite::Message;

const USERS: usize = 6;

/// A stateless model: reads the plan id and version from the system prompt
/// like a real model would, and adds the step the user named.
pub(crate) fn respond(request: &Value, _n: usize) -> Reply {
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let last = messages.last().cloned().unwrap_or(Value::Null);
    if last["role"] == "tool" {
        return Reply::Text(vec!["saved".into()]);
    }
    let step = last["content"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("add step ")
        .to_owned();
    let system = messages[0]["content"].as_str().unwrap_or_default();
    let arguments = match system.find("Plan p") {
        Some(at) => {
            let line = system[at..].lines().next().unwrap_or_default();
            let id = line["Plan ".len()..].split(' ').next().unwrap_or_default();
            let version: u64 = line
                .split("version=")
                .nth(1)
                .and_then(|v| v.split(' ').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            json!({"plan_id": id, "expected_version": version, "explanation": "add", "ops": [{"op": "add_step", "title": step}]})
        }
        None => json!({"title": "Crash plan", "explanation": "create", "ops": [{"op": "add_step", "title": step}]}),
    };
    Reply::ToolCall {
        id: "call_crash".into(),
        name: "update_plan".into(),
        arguments,
    }
}

async fn spawn_server(data: &Path, fake: &FakeOpenAi) -> (Child, String, Duration) {
    let started = Instant::now();
    let (child, addr) = spawn_binary(
        data,
        &[
            ("STEWARD_LLM_BASE_URL", fake.base_url()),
            ("STEWARD_LLM_RETRY_BASE_MS", "10".into()),
            ("STEWARD_LIMITS_MESSAGES_PER_MINUTE", "1000000".into()),
            ("STEWARD_PLAN_MAX_STEPS", "100000".into()),
            // Updates here must apply directly; proposals are tested elsewhere.
            ("STEWARD_CONFIRM_CREATE_PLAN", "false".into()),
        ],
    )
    .await;
    (child, addr, started.elapsed())
}

/// Every step title in the user's active plans, read from `ready`.
async fn stored_steps(addr: &str, user: &str) -> BTreeSet<String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?user={user}"))
        .await
        .unwrap();
    let ready = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let ready: Value = serde_json::from_str(ready.to_text().unwrap()).unwrap();
    assert_eq!(ready["type"], "ready");
    let mut steps = BTreeSet::new();
    for plan in ready["plans"].as_array().unwrap() {
        for step in plan["steps"].as_array().unwrap() {
            steps.insert(step["title"].as_str().unwrap().to_owned());
        }
    }
    steps
}

/// What the clients saw: per user, the steps acknowledged by a `plan`
/// frame, and the messages answered by a `reply`.
#[derive(Default)]
struct Seen {
    acked: HashMap<String, BTreeSet<String>>,
    replied: HashMap<String, BTreeSet<String>>,
}

/// Sends updates until the socket dies; records each one acknowledged by a
/// `plan` frame that contains it, and each one answered by a `reply`.
async fn client(addr: String, user: String, start: usize, seen: Arc<Mutex<Seen>>) -> usize {
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?user={user}")).await else {
        return start;
    };
    let mut n = start;
    loop {
        let step = format!("{user}-{n}");
        let frame = json!({"type": "message", "id": step, "text": format!("add step {step}")});
        if ws.send(Message::Text(frame.to_string().into())).await.is_err() {
            return n;
        }
        n += 1;
        loop {
            let Ok(Some(Ok(Message::Text(text)))) = tokio::time::timeout(Duration::from_secs(10), ws.next()).await
            else {
                return n;
            };
            let frame: Value = serde_json::from_str(text.as_str()).unwrap();
            if frame["type"] == "plan"
                && frame["plan"]["steps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s["title"] == step.as_str())
            {
                let mut seen = seen.lock().unwrap();
                seen.acked.entry(user.clone()).or_default().insert(step.clone());
            }
            // The turn ends with its `reply` or `error` (deltas name it too).
            if frame["reply_to"] == step.as_str() && frame["type"] == "reply" {
                let mut seen = seen.lock().unwrap();
                seen.replied.entry(user.clone()).or_default().insert(step.clone());
                break;
            }
            if frame["reply_to"] == step.as_str() && frame["type"] == "error" {
                break;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_never_loses_an_acknowledged_plan_update() {
    let kills: usize = std::env::var("CRASH_TEST_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let fake = FakeOpenAi::start(respond).await;
    let dir = tempfile::tempdir().unwrap();
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let mut next_step = [0usize; USERS];
    let mut lost: BTreeSet<String> = BTreeSet::new();
    let mut start_times = Vec::new();

    for round in 0..=kills {
        let (mut child, addr, took) = spawn_server(dir.path(), &fake).await;
        start_times.push(took);
        let acked_so_far = seen.lock().unwrap().acked.clone();
        for (user, steps) in acked_so_far {
            let stored = stored_steps(&addr, &user).await;
            let missing: Vec<&String> = steps.difference(&stored).collect();
            if !missing.is_empty() {
                eprintln!("after restart {round}, {user} lost acknowledged steps: {missing:?}");
            }
            lost.extend(missing.into_iter().cloned());
        }
        if round == kills {
            child.start_kill().unwrap();
            child.wait().await.unwrap();
            break;
        }
        let clients: Vec<_> = (0..USERS)
            .map(|u| tokio::spawn(client(addr.clone(), format!("user{u}"), next_step[u], seen.clone())))
            .collect();
        let run_for = Duration::from_millis(rand::rng().random_range(150..900));
        tokio::time::sleep(run_for).await;
        child.start_kill().unwrap(); // SIGKILL
        child.wait().await.unwrap();
        for (u, handle) in clients.into_iter().enumerate() {
            next_step[u] = tokio::time::timeout(Duration::from_secs(15), handle)
                .await
                .unwrap()
                .unwrap()
                + 1;
        }
    }
    let replied = seen.lock().unwrap().replied.clone();
    let unrecorded = replies_missing(dir.path(), &replied).await;
    let violations = trigger_violations(dir.path()).await;
    let total: usize = seen.lock().unwrap().acked.values().map(BTreeSet::len).sum();
    start_times.sort();
    let median = start_times[start_times.len() / 2];
    println!(
        "crash test: {kills} kills, {total} acknowledged updates, {} lost, median restart-to-listening {median:?}",
        lost.len()
    );
    assert!(
        total > kills,
        "the clients made too little progress to prove anything ({total} acknowledged)"
    );
    assert!(lost.is_empty(), "acknowledged updates lost after kill -9: {lost:?}");
    println!(
        "crash test: trigger/plan mismatches after the kills: {}",
        violations.len()
    );
    assert!(violations.is_empty(), "{violations:#?}");
    let answered: usize = replied.values().map(BTreeSet::len).sum();
    println!(
        "crash test: {answered} replies received, {} not in the transcript",
        unrecorded.len()
    );
    assert!(unrecorded.is_empty(), "replies received but not stored: {unrecorded:?}");
}

/// The answered messages whose reply is not in the stored transcript: the
/// user's message, then (before the next user message) words from steward.
async fn replies_missing(dir: &Path, replied: &HashMap<String, BTreeSet<String>>) -> Vec<String> {
    use steward::conversation::Message;
    use steward::store::{ConversationStore, SledStore};
    use steward::user::UserId;
    let store = SledStore::open(dir).unwrap();
    let mut missing = Vec::new();
    for (user, ids) in replied {
        let user = UserId::parse(user).unwrap();
        let entries = store.recent_messages(&user, 1_000_000).await.unwrap();
        let mut answered = BTreeSet::new();
        let mut asked: Option<String> = None;
        for entry in entries {
            match entry.message {
                Message::User { id, .. } => asked = id,
                Message::Assistant { text, tool_calls, .. } if tool_calls.is_empty() && !text.is_empty() => {
                    answered.extend(asked.take());
                }
                _ => {}
            }
        }
        missing.extend(ids.difference(&answered).map(|id| format!("{user}: {id}")));
    }
    missing
}

/// Plans and their triggers are written in one transaction, so after any
/// kill the armed triggers are exactly what the stored plans imply: none
/// without its plan, none missing, none at a stale time.
async fn trigger_violations(dir: &Path) -> Vec<String> {
    use steward::store::{AccountStore, PlanStore, SledStore, TriggerStore};
    use steward::triggers::{TriggerPolicy, for_plan};
    let store = SledStore::open(dir).unwrap();
    let mut violations = Vec::new();
    for user in store.users().await.unwrap() {
        let plans = store.list_plans(&user).await.unwrap();
        let armed: BTreeSet<(String, i64)> = store
            .user_triggers(&user)
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.id, t.fire_at.timestamp_millis()))
            .collect();
        let implied: BTreeSet<(String, i64)> = plans
            .iter()
            .flat_map(|p| for_plan(&user, p, &TriggerPolicy::default()))
            .filter(|t| t.fire_at > chrono::Utc::now())
            .map(|t| (t.id, t.fire_at.timestamp_millis()))
            .collect();
        for t in armed.symmetric_difference(&implied) {
            violations.push(format!("{user}: {t:?} armed={}", armed.contains(t)));
        }
    }
    violations
}
