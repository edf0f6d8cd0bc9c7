//! Any OpenAI-compatible chat-completions server (OpenAI, vLLM, Ollama,
//! llama.cpp, gateways) through async-openai. Answers are always streamed:
//! text deltas go to the socket as they arrive, tool-call deltas are
//! accumulated by index. Chunks are parsed leniently (servers differ), and
//! async-openai's own retry is replaced by a transport that reports 429/5xx
//! with their Retry-After, so `complete_with_retry` decides alone.

use super::{ChatModel, DeltaSink, ModelError, ModelRequest, ModelResponse, Usage};
use crate::config::LlmConfig;
use crate::conversation::{Message, ToolCall};
use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use async_trait::async_trait;
use futures::StreamExt;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

pub struct OpenAiModel {
    client: Client<OpenAIConfig>,
    model: String,
    temperature: Option<f32>,
    first_token_timeout: Duration,
}

impl OpenAiModel {
    pub fn new(config: &LlmConfig, base_url: &str) -> Result<OpenAiModel, ModelError> {
        // Built explicitly, so nothing is read from OPENAI_* variables.
        let api = OpenAIConfig::new()
            .with_api_base(base_url.trim_end_matches('/'))
            .with_api_key(
                config
                    .api_key
                    .as_ref()
                    .map(|k| k.expose_secret().to_owned())
                    .unwrap_or_default(),
            );
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // A read timeout, not a total one, so long streams survive.
            .read_timeout(config.first_token_timeout())
            .build()
            .map_err(|e| ModelError::Transport(e.to_string()))?;
        let client = Client::with_config(api).with_http_service(StatusTransport { http });
        Ok(OpenAiModel {
            client,
            model: config.model.clone(),
            temperature: config.temperature,
            first_token_timeout: config.first_token_timeout(),
        })
    }

    /// The request as the wire wants it, borrowing every string and
    /// schema from `request` (nothing is copied before it is written).
    fn body<'a>(&'a self, request: &'a ModelRequest) -> Body<'a> {
        let system = std::iter::once(Wire::System {
            content: &request.system,
        });
        let rest = request.messages.iter().map(|m| match m {
            Message::User { text, .. } => Wire::User { content: text },
            Message::Assistant { text, tool_calls, .. } if tool_calls.is_empty() => Wire::Assistant {
                content: Some(text),
                tool_calls: Vec::new(),
            },
            Message::Assistant { text, tool_calls, .. } => Wire::Assistant {
                content: (!text.is_empty()).then_some(text.as_str()),
                tool_calls: tool_calls
                    .iter()
                    .map(|c| WireCall {
                        id: &c.id,
                        kind: "function",
                        function: WireFunction {
                            name: &c.name,
                            arguments: &c.arguments,
                        },
                    })
                    .collect(),
            },
            Message::Tool { call_id, content, .. } => Wire::Tool {
                tool_call_id: call_id,
                content,
            },
        });
        Body {
            model: &self.model,
            stream: true,
            stream_options: StreamOptions { include_usage: true },
            messages: system.chain(rest).collect(),
            // `tool_choice` is left out: `auto` is the default with tools.
            tools: request
                .tools
                .iter()
                .map(|t| WireTool {
                    kind: "function",
                    function: WireSpec {
                        name: t.name,
                        description: &t.description,
                        parameters: &t.parameters,
                    },
                })
                .collect(),
            temperature: self.temperature,
        }
    }
}

/// A chat-completions request body.
#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    stream: bool,
    stream_options: StreamOptions,
    messages: Vec<Wire<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
#[serde(tag = "role", rename_all = "snake_case")]
enum Wire<'a> {
    System {
        content: &'a str,
    },
    User {
        content: &'a str,
    },
    Assistant {
        /// `null` when the answer is tool calls only.
        content: Option<&'a str>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<WireCall<'a>>,
    },
    Tool {
        tool_call_id: &'a str,
        content: &'a str,
    },
}

#[derive(Serialize)]
struct WireCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireSpec<'a>,
}

#[derive(Serialize)]
struct WireSpec<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a Value,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    /// In the last chunk, when asked with `include_usage`.
    #[serde(default)]
    usage: Option<ChunkUsage>,
}

#[derive(Deserialize)]
struct ChunkUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

impl Chunk {
    /// The text and tool-argument bytes this chunk adds to the answer.
    fn streamed_bytes(&self) -> usize {
        let deltas = self.choices.iter().filter_map(|c| c.delta.as_ref());
        deltas
            .map(|d| {
                let text = d.content.as_ref().map_or(0, String::len);
                let calls = d.tool_calls.iter().flatten();
                text + calls
                    .filter_map(|c| c.function.as_ref()?.arguments.as_ref())
                    .map(String::len)
                    .sum::<usize>()
            })
            .sum()
    }
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// The most text and tool arguments one answer may stream; a larger one is
/// refused whole (an answer this size is a runaway, not a reply).
const MAX_ANSWER_BYTES: usize = 1 << 20;

#[async_trait]
impl ChatModel for OpenAiModel {
    fn name(&self) -> String {
        format!("openai:{}", self.model)
    }

    // Long: one loop over the stream, each part of a chunk (text, tool-call
    // pieces, usage, the finish) taken in place.
    // Long: one loop over the stream, each part of a chunk (text, tool-call
    // pieces, usage, the finish) taken in place.
    async fn complete(&self, request: &ModelRequest, deltas: DeltaSink<'_>) -> Result<ModelResponse, ModelError> {
        let mut stream = self
            .client
            .chat()
            .create_stream_byot::<Body<'_>, Chunk>(self.body(request))
            .await
            .map_err(map_error)?;
        let mut text = String::new();
        let mut calls: Vec<(String, String, String)> = Vec::new();
        let mut finished = false;
        let mut received = 0usize;
        let mut usage = None;
        loop {
            // The gap between chunks is bounded too: a stalled stream fails.
            let next = match tokio::time::timeout(self.first_token_timeout, stream.next()).await {
                Ok(next) => next,
                Err(_) => return Err(ModelError::Timeout),
            };
            let Some(chunk) = next else { break };
            let chunk = chunk.map_err(map_error)?;
            if let Some(u) = &chunk.usage {
                usage = Some(Usage {
                    prompt: u.prompt_tokens,
                    completion: u.completion_tokens,
                });
            }
            received += chunk.streamed_bytes();
            if received > MAX_ANSWER_BYTES {
                return Err(ModelError::TooLarge {
                    limit: MAX_ANSWER_BYTES,
                });
            }
            for choice in chunk.choices {
                if let Some(delta) = choice.delta {
                    if let Some(part) = delta.content.filter(|c| !c.is_empty()) {
                        deltas(&part);
                        text.push_str(&part);
                    }
                    for (position, call) in delta.tool_calls.unwrap_or_default().into_iter().enumerate() {
                        let index = call.index.unwrap_or(position);
                        if index > 64 {
                            return Err(ModelError::Malformed(format!(
                                "tool call index {index} is out of range"
                            )));
                        }
                        if calls.len() <= index {
                            calls.resize(index + 1, Default::default());
                        }
                        let slot = &mut calls[index];
                        if let Some(id) = call.id {
                            slot.0 = id;
                        }
                        if let Some(f) = call.function {
                            if let Some(name) = f.name {
                                slot.1.push_str(&name);
                            }
                            if let Some(args) = f.arguments {
                                slot.2.push_str(&args);
                            }
                        }
                    }
                }
                if choice.finish_reason.is_some_and(|r| !r.is_empty()) {
                    finished = true;
                }
            }
        }
        if !finished {
            // async-openai ends a stream silently when the server hangs up
            // early; without a finish_reason the answer may be cut short.
            return Err(ModelError::Malformed(
                "the answer stream ended without a finish_reason".into(),
            ));
        }
        let tool_calls = calls
            .into_iter()
            .enumerate()
            .filter(|(_, (_, name, _))| !name.is_empty())
            .map(|(i, (id, name, arguments))| ToolCall {
                id: if id.is_empty() { format!("call_{i}") } else { id },
                name,
                arguments,
            })
            .collect();
        Ok(ModelResponse {
            text,
            tool_calls,
            usage,
        })
    }
}

/// An HTTP failure the retry policy needs to see whole.
#[derive(Debug, thiserror::Error)]
#[error("HTTP {status}: {body}")]
struct HttpFailure {
    status: u16,
    retry_after: Option<Duration>,
    body: String,
}

fn map_error(e: OpenAIError) -> ModelError {
    match e {
        OpenAIError::Boxed(inner) => match inner.downcast::<HttpFailure>() {
            Ok(f) if f.status == 429 => ModelError::RateLimited {
                retry_after: f.retry_after,
            },
            Ok(f) => ModelError::Server {
                status: f.status,
                message: f.body,
            },
            Err(other) => ModelError::Transport(other.to_string()),
        },
        OpenAIError::ApiError(api) => {
            let status = api.status_code.as_u16();
            let message = api.api_error.message.clone();
            match status {
                429 => ModelError::RateLimited { retry_after: None },
                500..=599 => ModelError::Server { status, message },
                _ => ModelError::Rejected { status, message },
            }
        }
        OpenAIError::Reqwest(e) if e.is_timeout() => ModelError::Timeout,
        OpenAIError::Reqwest(e) => ModelError::Transport(e.to_string()),
        OpenAIError::JSONDeserialize(e, content) => {
            ModelError::Malformed(format!("{e} in {}", content.chars().take(200).collect::<String>()))
        }
        OpenAIError::StreamError(e) => ModelError::Malformed(e.to_string()),
        OpenAIError::InvalidArgument(m) => ModelError::Rejected { status: 0, message: m },
        OpenAIError::FileSaveError(m) | OpenAIError::FileReadError(m) => ModelError::Transport(m),
    }
}

/// The HTTP layer under async-openai: plain reqwest, except that 429 and 5xx
/// come back as [`HttpFailure`] carrying Retry-After.
#[derive(Clone)]
struct StatusTransport {
    http: reqwest::Client,
}

impl tower::Service<HttpRequestFactory> for StatusTransport {
    type Response = reqwest::Response;
    type Error = OpenAIError;
    type Future = Pin<Box<dyn Future<Output = Result<reqwest::Response, OpenAIError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: HttpRequestFactory) -> Self::Future {
        let http = self.http.clone();
        Box::pin(async move {
            let request = request.build().await?;
            let response = http.execute(request).await.map_err(OpenAIError::Reqwest)?;
            let status = response.status();
            if status.as_u16() == 429 || status.is_server_error() {
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let body: String = response.text().await.unwrap_or_default().chars().take(300).collect();
                return Err(OpenAIError::Boxed(Box::new(HttpFailure {
                    status: status.as_u16(),
                    retry_after,
                    body,
                })));
            }
            Ok(response)
        })
    }
}
