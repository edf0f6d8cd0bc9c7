//! A real HTTP server on loopback speaking the OpenAI chat-completions wire
//! format (SSE streaming), for exercising the real adapter. Its answers are
//! scripted by a function of the request; it records every request body.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub enum Reply {
    /// Streamed text, one chunk per piece.
    Text(Vec<String>),
    /// One streamed tool call, its arguments split into 7-character pieces.
    ToolCall { id: String, name: String, arguments: Value },
    /// An HTTP error with an OpenAI error body.
    Status {
        code: u16,
        retry_after: Option<u64>,
        message: String,
    },
    /// An SSE event whose data is not JSON.
    Garbage,
    /// A stream that ends without a finish_reason.
    Truncated,
    /// The inner reply, after a pause (a slow model).
    Slow(std::time::Duration, Box<Reply>),
}

type Responder = dyn Fn(&Value, usize) -> Reply + Send + Sync;

#[derive(Clone)]
struct Shared {
    requests: Arc<Mutex<Vec<(Instant, Value)>>>,
    sizes: Arc<Mutex<Vec<usize>>>,
    responder: Arc<Responder>,
}

pub struct FakeOpenAi {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<(Instant, Value)>>>,
    sizes: Arc<Mutex<Vec<usize>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeOpenAi {
    pub async fn start(responder: impl Fn(&Value, usize) -> Reply + Send + Sync + 'static) -> FakeOpenAi {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            requests: requests.clone(),
            sizes: sizes.clone(),
            responder: Arc::new(responder),
        };
        let router = Router::new()
            .route("/v1/chat/completions", post(complete))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        FakeOpenAi {
            addr,
            requests,
            sizes,
            server,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().iter().map(|(_, v)| v.clone()).collect()
    }

    /// The size in bytes of each request body, in order.
    pub fn request_sizes(&self) -> Vec<usize> {
        self.sizes.lock().unwrap().clone()
    }

    pub fn request_times(&self) -> Vec<Instant> {
        self.requests.lock().unwrap().iter().map(|(t, _)| *t).collect()
    }
}

fn chunk(delta: Value, finish: Option<&str>) -> String {
    let body = json!({
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "fake",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
    });
    format!("data: {body}\n\n")
}

async fn complete(State(shared): State<Shared>, body: String) -> Response {
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let n = {
        let mut requests = shared.requests.lock().unwrap();
        requests.push((Instant::now(), request.clone()));
        shared.sizes.lock().unwrap().push(body.len());
        requests.len() - 1
    };
    let mut reply = (shared.responder)(&request, n);
    while let Reply::Slow(pause, inner) = reply {
        tokio::time::sleep(pause).await;
        reply = *inner;
    }
    let mut sse = String::from(": keep-alive comment\n\n");
    match reply {
        Reply::Text(pieces) => {
            sse.push_str(&chunk(json!({"role": "assistant", "content": ""}), None));
            for piece in pieces {
                sse.push_str(&chunk(json!({"content": piece}), None));
            }
            sse.push_str(&chunk(json!({}), Some("stop")));
        }
        Reply::ToolCall { id, name, arguments } => {
            sse.push_str(&chunk(
                json!({"role": "assistant", "tool_calls": [{"index": 0, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
                None,
            ));
            let text: Vec<char> = arguments.to_string().chars().collect();
            for piece in text.chunks(7) {
                let piece: String = piece.iter().collect();
                sse.push_str(&chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                    None,
                ));
            }
            sse.push_str(&chunk(json!({}), Some("tool_calls")));
        }
        Reply::Status {
            code,
            retry_after,
            message,
        } => {
            let mut response = Response::builder()
                .status(StatusCode::from_u16(code).unwrap())
                .header(header::CONTENT_TYPE, "application/json");
            if let Some(seconds) = retry_after {
                response = response.header(header::RETRY_AFTER, seconds.to_string());
            }
            let body = json!({"error": {"message": message, "type": "fake_error", "param": null, "code": null}});
            return response.body(Body::from(body.to_string())).unwrap();
        }
        Reply::Garbage => sse.push_str("data: this is not json\n\n"),
        Reply::Slow(..) => unreachable!("unwrapped above"),
        Reply::Truncated => {
            sse.push_str(&chunk(json!({"role": "assistant", "content": "half an ans"}), None));
            return sse_response(sse);
        }
    }
    // As OpenAI does when asked: one last chunk with no choices and the
    // usage (here a fixed 1 000 prompt and 10 answer tokens).
    if request["stream_options"]["include_usage"] == true {
        let usage = json!({
            "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "fake",
            "choices": [], "usage": {"prompt_tokens": 1000, "completion_tokens": 10, "total_tokens": 1010}
        });
        sse.push_str(&format!("data: {usage}\n\n"));
    }
    sse.push_str("data: [DONE]\n\n");
    sse_response(sse)
}

fn sse_response(body: String) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from(body))
        .unwrap()
}
