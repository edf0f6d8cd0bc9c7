//! A tool service on loopback, the kind a company's helpdesk or
//! provisioning API is: it records every request with its idempotency
//! key, performs the effect once per key (a repeated key gets the stored
//! answer, as Stripe-style APIs do), and answers from a script per path:
//! success, an HTTP status with an optional Retry-After, or a held answer
//! that waits until the test releases it (the effect is already done: a
//! crash while it is held is a crash "after send").

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub enum Answer {
    /// 200 with `{"id": "T-<n>"}`.
    Ok,
    /// This status (and Retry-After seconds); no effect.
    Status(u16, Option<u64>),
    /// The effect happens, the answer waits for [`ToolService::release`].
    Hold,
}

#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub key: Option<String>,
    pub body: Value,
    pub at: Instant,
    pub answered: Option<Instant>,
}

#[derive(Default)]
struct Inner {
    script: HashMap<String, VecDeque<Answer>>,
    seen: Vec<Seen>,
    /// Effects performed, per idempotency key (or per body without one).
    effects: HashMap<String, u32>,
    stored: HashMap<String, Value>,
    next_id: u32,
    /// Every answer waits up to this long after the effect.
    max_delay_ms: u64,
}

#[derive(Clone)]
pub struct ToolService {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    released: Arc<tokio::sync::watch::Sender<bool>>,
}

impl ToolService {
    pub async fn start() -> ToolService {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (released, _) = tokio::sync::watch::channel(false);
        let service = ToolService {
            addr,
            inner: Arc::default(),
            released: Arc::new(released),
        };
        let app = Router::new().fallback(handle).with_state(service.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        service
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers for the next requests to `path`, in order (then `Ok`).
    pub fn script(&self, path: &str, answers: Vec<Answer>) {
        self.inner.lock().unwrap().script.insert(path.into(), answers.into());
    }

    /// Answers wait a random time up to `max_ms` after the effect is done,
    /// so a kill lands between the effect and its answer.
    pub fn delay(&self, max_ms: u64) {
        self.inner.lock().unwrap().max_delay_ms = max_ms;
    }

    pub fn release(&self) {
        self.released.send_replace(true);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    pub fn seen_at(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }

    /// Effects performed per key (or body, for a tool that sends no key).
    pub fn effects(&self) -> HashMap<String, u32> {
        self.inner.lock().unwrap().effects.clone()
    }

    /// Waits until `ready` holds for what was seen, or fails after `within`.
    pub async fn wait_for(&self, within: Duration, what: &str, ready: impl Fn(&[Seen]) -> bool) {
        let deadline = Instant::now() + within;
        while !ready(&self.seen()) {
            assert!(
                Instant::now() < deadline,
                "the tool service never saw {what}: {:#?}",
                self.seen()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn handle(State(service): State<ToolService>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (index, answer, stored, delay) = {
        let mut inner = service.inner.lock().unwrap();
        let index = inner.seen.len();
        inner.seen.push(Seen {
            path: path.clone(),
            key: key.clone(),
            body: body.clone(),
            at: Instant::now(),
            answered: None,
        });
        let effect_key = key.clone().unwrap_or_else(|| format!("body:{body}"));
        let delay = match inner.max_delay_ms {
            0 => 0,
            max => rand::Rng::random_range(&mut rand::rng(), 0..max),
        };
        // A key already done gets its stored answer, with no new effect.
        if let Some(stored) = key.as_ref().and_then(|k| inner.stored.get(k)).cloned() {
            (index, Answer::Ok, Some(stored), delay)
        } else {
            let answer = inner
                .script
                .get_mut(&path)
                .and_then(VecDeque::pop_front)
                .unwrap_or(Answer::Ok);
            let stored = match answer {
                Answer::Ok | Answer::Hold => {
                    inner.next_id += 1;
                    let answer = json!({"id": format!("T-{}", inner.next_id)});
                    *inner.effects.entry(effect_key).or_default() += 1;
                    if let Some(k) = &key {
                        inner.stored.insert(k.clone(), answer.clone());
                    }
                    Some(answer)
                }
                Answer::Status(..) => None,
            };
            (index, answer, stored, delay)
        }
    };
    tokio::time::sleep(Duration::from_millis(delay)).await;
    if let Answer::Hold = answer {
        let mut released = service.released.subscribe();
        let _ = released.wait_for(|r| *r).await;
    }
    service.inner.lock().unwrap().seen[index].answered = Some(Instant::now());
    match (answer, stored) {
        (Answer::Status(code, retry_after), _) => {
            let status = StatusCode::from_u16(code).unwrap();
            let mut response = (status, format!("scripted {code}")).into_response();
            if let Some(secs) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", secs.to_string().parse().unwrap());
            }
            response
        }
        (_, Some(stored)) => axum::Json(stored).into_response(),
        (_, None) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
