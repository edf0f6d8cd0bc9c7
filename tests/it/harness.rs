//! Starts the whole app on 127.0.0.1:0 with a temporary store and gives tests
//! typed websocket clients. Every wait has a timeout.

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use steward::channels::mailer::Mailer;
use steward::clock::Clock;
pub use steward::clock::ManualClock;
use steward::config::ConfirmConfig;
use steward::store::SledStore;
use steward::turn::Engine;
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
    mailer: Option<Mailer>,
    _dir: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

/// How a test app is started: `TestApp::with(engine).config(…).spawn()`.
pub struct Spawn {
    engine: Engine,
    dir: tempfile::TempDir,
    config: Config,
    clock: Option<Clock>,
    mailer: Option<Mailer>,
}

pub fn test_config(data_dir: &Path) -> Config {
    let mut config = Config {
        data_dir: data_dir.to_owned(),
        ..Config::default()
    };
    config.llm.retry_base_ms = 10;
    // Foundation tests exercise plan updates directly; the planning tests
    // turn the confirmation policy back on.
    config.confirm = ConfirmConfig::never();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    config.templates_dir = root.join("templates/plans");
    config.chat_templates_dir = root.join("templates/chat");
    config.prompts_dir = root.join("prompts");
    config.static_dir = root.join("static");
    config.email.templates_dir = root.join("templates/email");
    config.notify.retry_base_ms = 50;
    config
}

/// A clock that starts at `start` and runs at real speed.
pub fn clock_from(start: &str) -> Clock {
    let base = chrono::DateTime::parse_from_rfc3339(start)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let began = std::time::Instant::now();
    Arc::new(move || base + began.elapsed())
}

/// An app on a fresh data directory with the test configuration.
pub async fn spawn_app(engine: impl Into<Engine>) -> TestApp {
    TestApp::with(engine).spawn().await
}

impl Spawn {
    pub fn config(mut self, tweak: impl FnOnce(&mut Config)) -> Spawn {
        tweak(&mut self.config);
        self
    }

    pub fn clock(mut self, clock: Clock) -> Spawn {
        self.clock = Some(clock);
        self
    }

    pub fn mailer(mut self, mailer: Mailer) -> Spawn {
        self.mailer = Some(mailer);
        self
    }

    pub async fn spawn(self) -> TestApp {
        let mut app = start(self.engine, self.config, self.clock, self.mailer).await;
        app._dir = Some(self.dir);
        app
    }
}

/// Starts the app on the config's data directory. The store opens at once:
/// a previous app on it has stopped every task before its shutdown returned.
async fn start(engine: Engine, config: Config, clock: Option<Clock>, mailer: Option<Mailer>) -> TestApp {
    let mut builder = App::builder(config.clone()).engine(engine);
    if config.database.url.is_none() {
        builder = builder.store(Arc::new(SledStore::open(&config.data_dir).unwrap()));
    }
    if let Some(clock) = &clock {
        builder = builder.clock(clock.clone());
    }
    if let Some(mailer) = &mailer {
        builder = builder.mailer(mailer.clone());
    }
    let app = builder.build().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = app.clone();
    let server = tokio::spawn(async move {
        steward::http::serve(serving, listener, async {
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
        mailer,
        _dir: None,
        stop: Some(stop),
        server,
    }
}

impl TestApp {
    /// Starts building an app answered by `engine`.
    pub fn with(engine: impl Into<Engine>) -> Spawn {
        let dir = tempfile::tempdir().unwrap();
        let config = test_config(dir.path());
        Spawn {
            engine: engine.into(),
            dir,
            config,
            clock: None,
            mailer: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `/metrics` read with the operator's token and parsed.
    pub async fn metrics(&self, admin: &str) -> std::collections::HashMap<String, f64> {
        let text = reqwest::Client::new()
            .get(self.url("/metrics"))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        crate::engine::parse_metrics(&text)
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
    pub async fn restart(mut self, engine: impl Into<Engine>) -> TestApp {
        let dir = self._dir.take();
        let (config, clock, mailer) = (self.config.clone(), self.clock.clone(), self.mailer.clone());
        self.shutdown().await;
        let mut next = start(engine.into(), config, clock, mailer).await;
        next._dir = dir;
        next
    }

    /// Stops the server and waits until every task it spawned has stopped.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(WAIT, &mut self.server)
            .await
            .expect("the server did not stop in time")
            .unwrap();
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

/// Starts the real binary (`steward serve`) on a free loopback port with
/// the store in `data` and the settings in `env` (which may override
/// `RUST_LOG=error`); answers the child and the address it printed. Its
/// output is read on, so the child never blocks on a full pipe.
pub async fn spawn_binary(data: &Path, env: &[(&str, String)]) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_steward"));
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(data)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("server start")
        .unwrap()
        .expect("a line");
    let addr = line.trim_start_matches("steward listening on http://").to_owned();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}
