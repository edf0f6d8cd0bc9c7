//! Starts the whole app on 127.0.0.1:0 with a temporary store and gives tests
//! typed websocket clients. Every wait has a timeout.

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use steward::app::Clock;
use steward::llm::ChatModel;
use steward::store::{SledStore, StoreError};
use steward::{App, Config};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestApp {
    pub addr: SocketAddr,
    pub app: App,
    config: Config,
    clock: Option<Clock>,
    _dir: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

pub fn test_config(data_dir: &Path) -> Config {
    let mut config = Config {
        data_dir: data_dir.to_owned(),
        ..Config::default()
    };
    config.llm.retry_base_ms = 10;
    // Foundation tests exercise plan updates directly; the planning tests
    // turn the confirmation policy back on.
    config.confirm = steward::config::ConfirmConfig::never();
    config.templates_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates/plans");
    config.prompts_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("prompts");
    config.static_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("static");
    config.email.templates_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates/email");
    config.notify.retry_base_ms = 50;
    config
}

/// Opens the store, retrying while a previous app in this process still
/// holds the lock (its tasks are finishing).
pub async fn open_store(dir: &Path) -> SledStore {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match SledStore::open(dir) {
            Ok(store) => return store,
            Err(StoreError::Locked { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("opening store: {e}"),
        }
    }
}

pub async fn spawn_app(model: Arc<dyn ChatModel>) -> TestApp {
    spawn_app_with(model, |_| {}).await
}

pub async fn spawn_app_with(model: Arc<dyn ChatModel>, tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_at(model, tweak, None).await
}

/// A clock that starts at `start` and runs at real speed.
pub fn clock_from(start: &str) -> Clock {
    let base = chrono::DateTime::parse_from_rfc3339(start)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let began = std::time::Instant::now();
    Arc::new(move || base + began.elapsed())
}

pub async fn spawn_app_at(model: Arc<dyn ChatModel>, tweak: impl FnOnce(&mut Config), clock: Option<Clock>) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    tweak(&mut config);
    let mut app = start(model, config, clock).await;
    app._dir = Some(dir);
    app
}

/// Starts an app on a fresh data directory with the given clock and mail
/// transport.
pub async fn spawn_app_full(
    model: Arc<dyn ChatModel>,
    tweak: impl FnOnce(&mut Config),
    clock: Option<Clock>,
    mailer: Option<steward::channels::mailer::Mailer>,
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    tweak(&mut config);
    let mut app = start_with(model, config, clock, mailer).await;
    app._dir = Some(dir);
    app
}

/// A clock tests move by hand.
#[derive(Clone)]
pub struct ManualClock(Arc<std::sync::Mutex<chrono::DateTime<chrono::Utc>>>);

impl ManualClock {
    pub fn at(start: &str) -> ManualClock {
        ManualClock(Arc::new(std::sync::Mutex::new(
            chrono::DateTime::parse_from_rfc3339(start)
                .unwrap()
                .with_timezone(&chrono::Utc),
        )))
    }
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        *self.0.lock().unwrap()
    }
    pub fn set(&self, t: chrono::DateTime<chrono::Utc>) {
        *self.0.lock().unwrap() = t;
    }
    pub fn advance(&self, d: chrono::Duration) {
        let now = self.now();
        self.set(now + d);
    }
    pub fn clock(&self) -> Clock {
        let me = self.clone();
        Arc::new(move || me.now())
    }
}

pub async fn start(model: Arc<dyn ChatModel>, config: Config, clock: Option<Clock>) -> TestApp {
    start_with(model, config, clock, None).await
}

/// Starts the app; `mailer` replaces the configured mail transport.
pub async fn start_with(
    model: Arc<dyn ChatModel>,
    config: Config,
    clock: Option<Clock>,
    mailer: Option<steward::channels::mailer::Mailer>,
) -> TestApp {
    let store = open_store(&config.data_dir)
        .await
        .with_trigger_policy(steward::triggers::TriggerPolicy::from(&config.notify));
    let mut app = App::with_parts(config.clone(), Arc::new(store), model).unwrap();
    if let Some(clock) = &clock {
        app = app.with_clock(clock.clone());
    }
    if let Some(mailer) = mailer {
        app = app.with_mailer(mailer);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = app.clone();
    let server = tokio::spawn(async move {
        serving
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    TestApp {
        addr,
        app,
        config,
        clock,
        _dir: None,
        stop: Some(stop),
        server,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self, user: &str) -> String {
        format!("ws://{}/ws?user={user}", self.addr)
    }

    pub async fn connect(&self, user: &str) -> Client {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(self.ws_url(user)))
            .await
            .unwrap()
            .unwrap();
        let mut client = Client {
            ws,
            user: user.to_owned(),
            ready: None,
        };
        let ready = client.recv().await;
        assert_eq!(ready["type"], "ready", "first frame: {ready}");
        assert_eq!(ready["user"], user);
        client.ready = Some(ready);
        client
    }

    /// Stops the server and starts a new one on the same data directory.
    pub async fn restart(mut self, model: Arc<dyn ChatModel>) -> TestApp {
        let dir = self._dir.take();
        let (config, clock) = (self.config.clone(), self.clock.clone());
        self.shutdown().await;
        let mut next = start(model, config, clock).await;
        next._dir = dir;
        next
    }

    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.server.abort();
        let _ = (&mut self.server).await;
    }
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub user: String,
    pub ready: Option<Value>,
}

impl Client {
    pub async fn send(&mut self, frame: Value) {
        self.ws.send(Message::Text(frame.to_string().into())).await.unwrap();
    }

    pub async fn say(&mut self, id: &str, text: &str) {
        self.send(json!({"type": "message", "id": id, "text": text})).await;
    }

    /// The next text frame as JSON.
    pub async fn recv(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{}: no frame within {WAIT:?}", self.user))
                .expect("socket ended")
                .expect("socket error");
            match message {
                Message::Text(text) => {
                    if std::env::var_os("TEST_TRACE_FRAMES").is_some() {
                        eprintln!(
                            "{} <- {}",
                            self.user,
                            text.as_str().chars().take(400).collect::<String>()
                        );
                    }
                    return serde_json::from_str(text.as_str()).unwrap();
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("{}: unexpected frame {other:?}", self.user),
            }
        }
    }

    /// Frames up to and including the first one of `kind`.
    pub async fn until(&mut self, kind: &str) -> Vec<Value> {
        let mut frames = Vec::new();
        loop {
            let frame = self.recv().await;
            let done = frame["type"] == kind;
            frames.push(frame);
            if done {
                return frames;
            }
        }
    }

    /// Sends a message and returns every frame up to its reply or error.
    pub async fn turn(&mut self, id: &str, text: &str) -> Vec<Value> {
        self.say(id, text).await;
        let mut frames = Vec::new();
        loop {
            let frame = self.recv().await;
            let done = (frame["type"] == "reply" || frame["type"] == "error") && frame["reply_to"] == id;
            frames.push(frame);
            if done {
                return frames;
            }
        }
    }

    /// Asserts nothing arrives for `window`.
    pub async fn expect_silence(&mut self, window: Duration) {
        if let Ok(Some(Ok(Message::Text(text)))) = tokio::time::timeout(window, self.ws.next()).await {
            panic!("{}: expected silence, got {text}", self.user);
        }
    }

    /// The close frame's code, waiting for the server to close.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("no close within the wait")
            {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }
}

pub fn of_type<'a>(frames: &'a [Value], kind: &str) -> Vec<&'a Value> {
    frames.iter().filter(|f| f["type"] == kind).collect()
}
