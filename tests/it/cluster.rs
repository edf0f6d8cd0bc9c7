//! Three steward processes on one PostgreSQL database, clients spread over
//! them, and one process killed with SIGKILL at a random moment while
//! users chat, reminders fire and digests go out by email. Afterwards: no
//! acknowledged update is lost, each reminder fired once (one notification
//! across all of its user's sockets), each digest went out once (a resend
//! only with the same Message-ID, for a kill inside SMTP's window), and
//! every socket saw only its own user's events — and, on the instances
//! that lived, every one of them.

use crate::crash::respond;
use crate::digest_crash::digest_reader;
use crate::fake_openai::FakeOpenAi;
use crate::harness::spawn_binary;
use crate::smtp::{Mode, Sink};
use chrono::Utc;
use futures::{SinkExt, StreamExt};
use rand::Rng;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use steward::preferences::Preferences;
use steward::store::postgres::cluster::Database;
use steward::store::{AccountStore, TriggerStore};
use steward::triggers::{Trigger, TriggerKind};
use steward::user::UserId;
use tokio_tungstenite::tungstenite::Message;

const INSTANCES: usize = 3;
/// Users who chat (a sender and an observer socket each, on two instances).
const CHATTERS: usize = 6;
/// Users who get a digest email during the run.
const READERS: usize = 24;
const RUN: Duration = Duration::from_secs(5);

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What the test saw: every frame per (user, socket), and the steps each
/// sender saw acknowledged.
#[derive(Default)]
struct Seen {
    frames: BTreeMap<(String, String), Vec<Value>>,
    acked: BTreeMap<String, BTreeSet<String>>,
    /// When each acknowledgement arrived, per user.
    acked_at: BTreeMap<String, Vec<Instant>>,
}

impl Seen {
    /// A frame that `socket` of `user` received.
    fn record(&mut self, user: &str, socket: &str, frame: Value) {
        self.frames
            .entry((user.to_owned(), socket.to_owned()))
            .or_default()
            .push(frame);
    }
}

type Shared = Arc<Mutex<Seen>>;

fn chatter(u: usize) -> String {
    format!("chat{u}")
}

/// Reminders for the chatters and digests for the readers, due while the
/// clients run; answers the digests' day.
async fn seed(db: &Database, start: chrono::DateTime<Utc>) -> String {
    let store = db.store().await;
    let mut rng = rand::rng();
    for u in 0..CHATTERS {
        let user = UserId::parse(&chatter(u)).unwrap();
        store.ensure_user(&user).await.unwrap();
        let at = start + chrono::Duration::milliseconds(rng.random_range(500..4000));
        let reminder = Trigger {
            id: "rem".into(),
            user: user.clone(),
            fire_at: at,
            created_at: start,
            kind: TriggerKind::Reminder {
                text: format!("call {}!", chatter(u)),
                lapse_on_reply: false,
            },
        };
        store.put_trigger(&reminder).await.unwrap();
    }
    for r in 0..READERS {
        let user = UserId::parse(&format!("mail{r}")).unwrap();
        store.ensure_user(&user).await.unwrap();
        let prefs = digest_reader(&format!("mail{r}@example.com"));
        let at = start + chrono::Duration::milliseconds(150 * r as i64);
        let digest = Trigger {
            id: "digest".into(),
            user: user.clone(),
            fire_at: at,
            created_at: start,
            kind: TriggerKind::Digest,
        };
        assert!(
            store
                .save_preferences(&user, &Preferences::default(), &prefs, None, Some(digest))
                .await
                .unwrap()
        );
    }
    start.format("%Y-%m-%d").to_string()
}

/// Connects to the first live instance from `first` on; the socket, the
/// instance's index and `ready`.
async fn connect(addrs: &[String], dead: &Mutex<Option<usize>>, user: &str, first: usize) -> (Socket, usize, Value) {
    for i in 0..INSTANCES * 4 {
        let at = (first + i) % INSTANCES;
        if *dead.lock().unwrap() == Some(at) {
            continue;
        }
        let url = format!("ws://{}/ws?user={user}", addrs[at]);
        if let Ok(Ok((mut ws, _))) =
            tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(url)).await
            && let Some(ready) = next(&mut ws).await
        {
            assert_eq!(ready["type"], "ready", "{ready}");
            return (ws, at, ready);
        }
    }
    panic!("{user}: no instance took a connection");
}

async fn next(ws: &mut Socket) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return serde_json::from_str(text.as_str()).ok(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return None,
        }
    }
}

/// Adds steps one message at a time until `until`, moving to another
/// instance when its socket dies; records each step a `plan` frame
/// acknowledged.
async fn sender(addrs: Arc<Vec<String>>, dead: Arc<Mutex<Option<usize>>>, u: usize, until: Instant, seen: Shared) {
    let user = chatter(u);
    let mut n = 0;
    let mut home = u % INSTANCES;
    while Instant::now() < until {
        let (mut ws, at, ready) = connect(&addrs, &dead, &user, home).await;
        home = at;
        let socket = format!("sender@{at}");
        seen.lock().unwrap().record(&user, &socket, ready);
        'turns: while Instant::now() < until {
            let step = format!("{user}-{n}");
            n += 1;
            let frame = json!({"type": "message", "id": step, "text": format!("add step {step}")});
            if ws.send(Message::Text(frame.to_string().into())).await.is_err() {
                break;
            }
            loop {
                let Some(frame) = next(&mut ws).await else { break 'turns };
                let mut seen = seen.lock().unwrap();
                if frame["type"] == "plan" && frame.to_string().contains(&format!("\"{step}\"")) {
                    seen.acked.entry(user.clone()).or_default().insert(step.clone());
                    seen.acked_at.entry(user.clone()).or_default().push(Instant::now());
                }
                let done = frame["reply_to"] == step.as_str();
                seen.record(&user, &socket, frame);
                if done {
                    break;
                }
            }
        }
        home = (home + 1) % INSTANCES;
    }
}

/// Listens on a second socket of the user, on another instance, until
/// `until`; when the server closes it (to resynchronise, or dying), it
/// reconnects and records the `ready` it gets. Its socket's name is that
/// of the instance it first joined.
async fn observer(ws: Socket, at: usize, u: usize, until: Instant, instances: Instances, seen: Shared) {
    let (addrs, dead) = instances;
    let socket = format!("observer@{at}");
    let record = |frame: Value| seen.lock().unwrap().record(&chatter(u), &socket, frame);
    let mut ws = ws;
    while Instant::now() < until {
        match next(&mut ws).await {
            Some(frame) => record(frame),
            None if Instant::now() < until => {
                let (again, _, ready) = connect(&addrs, &dead, &chatter(u), at).await;
                record(ready);
                ws = again;
            }
            None => return,
        }
    }
}

type Instances = (Arc<Vec<String>>, Arc<Mutex<Option<usize>>>);

/// `ready` for the user on `addr`.
async fn ready(addr: &str, user: &str) -> Value {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?user={user}"))
        .await
        .unwrap();
    next(&mut ws).await.unwrap()
}

/// The step titles in a `plan` frame or in every plan of a `ready`.
fn steps_in(frame: &Value) -> BTreeSet<String> {
    let plans = match frame["type"].as_str() {
        Some("plan") => vec![frame["plan"].clone()],
        Some("ready") => frame["plans"].as_array().cloned().unwrap_or_default(),
        _ => Vec::new(),
    };
    plans
        .iter()
        .flat_map(|p| p["steps"].as_array().cloned().unwrap_or_default())
        .filter_map(|s| s["title"].as_str().map(str::to_owned))
        .collect()
}

/// The ids of the notifications a `notification` or `ready` frame shows
/// whose text contains `text`.
fn notifications_in(frame: &Value, text: &str) -> BTreeSet<String> {
    let views = match frame["type"].as_str() {
        Some("notification") => vec![frame["notification"].clone()],
        Some("ready") => frame["notifications"].as_array().cloned().unwrap_or_default(),
        _ => Vec::new(),
    };
    views
        .iter()
        .filter(|n| n["text"].as_str().is_some_and(|t| t.contains(text)))
        .map(|n| n["id"].to_string())
        .collect()
}

// Long: one scenario, start to verdict: seed, three servers, clients, a
// kill, and each promise checked with its own figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_and_a_sigkill_lose_nothing_fire_once_and_keep_users_apart() {
    let Some(db) = Database::fresh().await else { return };
    let fake = FakeOpenAi::start(respond).await;
    let sink = Sink::new(Mode::Accept).with_delay(Duration::from_millis(25));
    let smtp = sink.start().port();
    // Due from a few seconds on: after the servers start, while clients chat.
    let start = Utc::now() + chrono::Duration::seconds(3);
    let day = seed(&db, start).await;

    let dirs: Vec<_> = (0..INSTANCES).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut children = Vec::new();
    let mut addrs = Vec::new();
    for dir in &dirs {
        let (child, addr) = spawn_binary(
            dir.path(),
            &[
                ("STEWARD_DATABASE_URL", db.url().to_owned()),
                ("STEWARD_LLM_BASE_URL", fake.base_url()),
                ("STEWARD_LLM_RETRY_BASE_MS", "10".into()),
                ("STEWARD_EMAIL_SMTP_URL", format!("smtp://127.0.0.1:{smtp}")),
                ("STEWARD_NOTIFY_RETRY_BASE_MS", "50".into()),
                ("STEWARD_LIMITS_MESSAGES_PER_MINUTE", "1000000".into()),
                ("STEWARD_PLAN_MAX_STEPS", "100000".into()),
                ("STEWARD_CONFIRM_CREATE_PLAN", "false".into()),
            ],
        )
        .await;
        children.push(child);
        addrs.push(addr);
    }
    let addrs = Arc::new(addrs);
    let dead: Arc<Mutex<Option<usize>>> = Arc::default();
    let seen: Shared = Arc::default();

    // Observers first, each on the instance after its sender's.
    let until = Instant::now() + RUN;
    let mut observers = Vec::new();
    for u in 0..CHATTERS {
        let (ws, at, _) = connect(&addrs, &dead, &chatter(u), u % INSTANCES + 1).await;
        let instances = (addrs.clone(), dead.clone());
        observers.push(tokio::spawn(observer(
            ws,
            at,
            u,
            until + Duration::from_secs(6),
            instances,
            seen.clone(),
        )));
    }
    let senders: Vec<_> = (0..CHATTERS)
        .map(|u| tokio::spawn(sender(addrs.clone(), dead.clone(), u, until, seen.clone())))
        .collect();

    let victim = rand::rng().random_range(0..INSTANCES);
    tokio::time::sleep(Duration::from_millis(rand::rng().random_range(1000..3000))).await;
    *dead.lock().unwrap() = Some(victim);
    children[victim].start_kill().unwrap(); // SIGKILL
    children[victim].wait().await.unwrap();
    let killed_at = Instant::now();

    for s in senders {
        tokio::time::timeout(Duration::from_secs(60), s).await.unwrap().unwrap();
    }
    // Digests: every reader's, within the leases of the killed instance.
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut all_digests = None;
    while Instant::now() < deadline {
        let readers: BTreeSet<_> = sink.received().iter().map(|m| m.to.clone()).collect();
        if readers.len() >= READERS {
            all_digests = Some(Instant::now().duration_since(killed_at));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for o in observers {
        tokio::time::timeout(Duration::from_secs(60), o).await.unwrap().unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mails = sink.received();
    let survivor = (victim + 1) % INSTANCES;
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    // How long until every user's turns were acknowledged again.
    let resumed = seen
        .acked_at
        .values()
        .filter_map(|times| times.iter().find(|t| **t > killed_at))
        .map(|t| t.duration_since(killed_at))
        .max();

    // Each socket: only its user's events; on a live instance, all of them.
    let mut reminders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut foreign = Vec::new();
    let mut missed = Vec::new();
    for ((user, socket), frames) in &seen.frames {
        let mut plan_steps = BTreeSet::new();
        for frame in frames {
            let text = frame.to_string();
            for v in (0..CHATTERS).map(chatter).filter(|v| v != user) {
                if text.contains(&format!("{v}-")) || text.contains(&format!("call {v}!")) {
                    foreign.push(format!("{socket} of {user} got {v}'s event: {text}"));
                }
            }
            reminders
                .entry(user.clone())
                .or_default()
                .extend(notifications_in(frame, &format!("call {user}!")));
            plan_steps.extend(steps_in(frame));
        }
        if socket.starts_with("observer@") && *socket != format!("observer@{victim}") {
            let acked = seen.acked.get(user).cloned().unwrap_or_default();
            missed.extend(
                acked
                    .difference(&plan_steps)
                    .map(|s| format!("{socket} of {user} missed {s}")),
            );
        }
    }
    // No acknowledged update lost; a reminder no socket showed waits in
    // the next `ready`. A reminder the killed instance had claimed waits for its lease to
    // run out (`TRIGGER_LEASE`, 15 s) before another fires it: a user
    // whose reminder no socket showed is asked again until then.
    let mut lost = Vec::new();
    let mut acked_total = 0;
    let reminder_deadline = killed_at + Duration::from_secs(40);
    for u in 0..CHATTERS {
        let user = chatter(u);
        let shown = reminders.get(&user).is_some_and(|ids| !ids.is_empty());
        let last = loop {
            let last = ready(&addrs[survivor], &user).await;
            if shown
                || !notifications_in(&last, &format!("call {user}!")).is_empty()
                || Instant::now() >= reminder_deadline
            {
                break last;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        reminders
            .entry(user.clone())
            .or_default()
            .extend(notifications_in(&last, &format!("call {user}!")));
        let steps = seen.acked.get(&user).cloned().unwrap_or_default();
        acked_total += steps.len();
        lost.extend(steps.difference(&steps_in(&last)).cloned());
    }

    let fired: usize = reminders.values().filter(|ids| !ids.is_empty()).count();
    let twice: Vec<_> = reminders.iter().filter(|(_, ids)| ids.len() > 1).collect();

    // Each digest once.
    let mut per_reader: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in &mails {
        per_reader
            .entry(m.to[0].clone())
            .or_default()
            .push(m.header("Message-ID").unwrap());
    }
    let mut different = 0;
    let mut resends = 0;
    for (to, ids) in &per_reader {
        let user = to.trim_end_matches("@example.com");
        let expected = format!("<digest.{user}.{day}@localhost>");
        different += ids.iter().filter(|id| **id != expected).count();
        resends += ids.len() - 1;
    }
    let summary = format!(
        "cluster test: instance {victim} killed after {:?} of clients; {acked_total} acknowledged updates, {} lost; \
         reminders seen {} of {CHATTERS}, fired twice {}; digests {} of {READERS}, different {different}, \
         same-message resends {resends}; foreign frames {}, missed on live observers {}; \
         every user's turns acknowledged again {resumed:?} after the kill, all digests out {all_digests:?} after it",
        killed_at.duration_since(until - RUN),
        lost.len(),
        fired,
        twice.len(),
        per_reader.len(),
        foreign.len(),
        missed.len(),
    );
    println!("{summary}");
    for mut child in children {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    // Each message names the figures: a CI log may keep only the end.
    assert!(
        acked_total > CHATTERS * 3,
        "too little progress to prove anything; {summary}"
    );
    assert!(lost.is_empty(), "acknowledged updates lost: {lost:?}; {summary}");
    assert!(foreign.is_empty(), "{foreign:#?}; {summary}");
    assert!(missed.is_empty(), "{missed:#?}; {summary}");
    assert_eq!(
        fired, CHATTERS,
        "every chatter's reminder fired; {reminders:?}; {summary}"
    );
    assert!(
        twice.is_empty(),
        "a reminder fired more than once: {twice:?}; {summary}"
    );
    assert_eq!(per_reader.len(), READERS, "every reader got the digest; {summary}");
    assert_eq!(
        different, 0,
        "never a second, different digest: {per_reader:?}; {summary}"
    );
    assert!(
        resends <= 1,
        "a resend only for the one kill inside SMTP's window: {per_reader:?}; {summary}"
    );
}
