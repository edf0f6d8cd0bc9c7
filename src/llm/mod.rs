//! The model seam. `ChatModel` is one call: messages and tools in, text
//! and/or tool calls out, text deltas streamed as they arrive. Two
//! implementations: an OpenAI-compatible client, and a scripted model for
//! tests (test builds only). Retries live here, around one call, so a retry
//! can never re-run a tool. (Without a model, the offline engine answers:
//! see [`crate::offline`].)

pub mod openai;
#[cfg(any(test, feature = "test-util"))]
pub mod scripted;

use crate::config::LlmConfig;
use crate::conversation::{Message, ToolCall};
use async_trait::async_trait;
use rand::Rng;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// A tool as the model sees it: name, description, JSON Schema of arguments.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolSpec {
    pub name: &'static str,
    pub(crate) description: std::borrow::Cow<'static, str>,
    pub(crate) parameters: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct ModelRequest {
    /// Carries the user's active plans and local time.
    pub system: String,
    pub messages: Vec<Message>,
    /// Shared: built once by the tool registry.
    pub tools: Arc<[ToolSpec]>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelResponse {
    pub(crate) text: String,
    pub(crate) tool_calls: Vec<ToolCall>,
    /// Tokens the call used, as the provider reported them (OpenAI sends
    /// them at the end of a stream asked `include_usage`).
    pub(crate) usage: Option<Usage>,
}

/// Tokens one model call used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub prompt: u64,
    pub completion: u64,
}

impl Usage {
    /// About four bytes of JSON per token: for providers that report
    /// nothing, so a daily cap still holds.
    pub(crate) fn estimate(request: &ModelRequest, answer: &ModelResponse) -> Usage {
        let prompt = request.system.len()
            + serde_json::to_string(&request.messages).map_or(0, |m| m.len())
            + serde_json::to_string(&request.tools).map_or(0, |t| t.len());
        let completion = answer.text.len()
            + answer
                .tool_calls
                .iter()
                .map(|c| c.arguments.len() + c.name.len())
                .sum::<usize>();
        Usage {
            prompt: (prompt / 4) as u64,
            completion: (completion / 4) as u64,
        }
    }

    pub(crate) fn total(self) -> u64 {
        self.prompt + self.completion
    }
}

/// Receives text deltas while an answer streams.
pub(crate) type DeltaSink<'a> = &'a (dyn Fn(&str) + Send + Sync);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("the model did not answer in time")]
    Timeout,
    #[error("the model is rate limited{}", .retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    #[error("the model server failed with HTTP {status}: {message}")]
    Server { status: u16, message: String },
    #[error("the model sent a malformed answer: {0}")]
    Malformed(String),
    #[error("could not reach the model: {0}")]
    Transport(String),
    /// A 4xx other than 429: retrying the same request cannot help.
    #[error("the model service refused the request with HTTP {status}: {message}")]
    Rejected { status: u16, message: String },
    #[error("the model's answer was larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the model asked to wait {}s, longer than the {}s allowed", .asked.as_secs(), .cap.as_secs())]
    RetryAfterTooLong { asked: Duration, cap: Duration },
    #[cfg(any(test, feature = "test-util"))]
    #[error("the scripted model has no answer left for this call")]
    ScriptExhausted,
}

impl ModelError {
    pub(crate) fn retryable(&self) -> bool {
        match self {
            ModelError::Timeout
            | ModelError::RateLimited { .. }
            | ModelError::Server { .. }
            | ModelError::Malformed(_)
            | ModelError::Transport(_) => true,
            ModelError::Rejected { .. } | ModelError::RetryAfterTooLong { .. } | ModelError::TooLarge { .. } => false,
            #[cfg(any(test, feature = "test-util"))]
            ModelError::ScriptExhausted => false,
        }
    }
}

#[async_trait]
pub trait ChatModel: Send + Sync + 'static {
    /// A short name for logs ("openai:gpt-4o-mini", "offline").
    fn name(&self) -> String;

    async fn complete(&self, request: &ModelRequest, deltas: DeltaSink<'_>) -> Result<ModelResponse, ModelError>;
}

impl ModelError {
    /// The error's class, as metrics count it.
    pub(crate) fn class(&self) -> &'static str {
        match self {
            ModelError::Timeout => "timeout",
            ModelError::RateLimited { .. } | ModelError::RetryAfterTooLong { .. } => "rate_limited",
            ModelError::Server { .. } => "server",
            ModelError::Malformed(_) => "malformed",
            ModelError::Transport(_) => "transport",
            ModelError::Rejected { .. } => "rejected",
            ModelError::TooLarge { .. } => "too_large",
            #[cfg(any(test, feature = "test-util"))]
            ModelError::ScriptExhausted => "script_exhausted",
        }
    }
}

/// How one model call is retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RetryPolicy {
    pub(crate) max_retries: u32,
    pub(crate) base_delay: Duration,
    pub(crate) max_delay: Duration,
    pub(crate) max_retry_after: Duration,
    pub(crate) attempt_timeout: Duration,
}

impl RetryPolicy {
    pub(crate) fn from_config(c: &LlmConfig) -> RetryPolicy {
        RetryPolicy {
            max_retries: c.max_retries,
            base_delay: Duration::from_millis(c.retry_base_ms),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(c.max_retry_after_secs),
            attempt_timeout: c.request_timeout(),
        }
    }

    /// Exponential backoff with full jitter.
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self.base_delay.saturating_mul(1 << attempt.min(16)).min(self.max_delay);
        let millis = ceiling.as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(millis / 2..=millis.max(1)))
    }
}

/// Runs one model call with bounded retries: 429 (Retry-After honoured up to
/// a cap), 5xx, timeouts, transport errors and malformed answers are retried;
/// anything else ends at once.
pub(crate) async fn complete_with_retry(
    model: &dyn ChatModel,
    request: &ModelRequest,
    deltas: DeltaSink<'_>,
    policy: RetryPolicy,
) -> Result<ModelResponse, ModelError> {
    let mut attempt = 0;
    loop {
        let result = match tokio::time::timeout(policy.attempt_timeout, model.complete(request, deltas)).await {
            Ok(result) => result,
            Err(_) => Err(ModelError::Timeout),
        };
        let error = match result {
            Ok(response) => return Ok(response),
            Err(e) => e,
        };
        if !error.retryable() || attempt >= policy.max_retries {
            return Err(error);
        }
        let delay = match &error {
            ModelError::RateLimited {
                retry_after: Some(asked),
            } => {
                if *asked > policy.max_retry_after {
                    return Err(ModelError::RetryAfterTooLong {
                        asked: *asked,
                        cap: policy.max_retry_after,
                    });
                }
                *asked
            }
            _ => policy.backoff(attempt),
        };
        tracing::warn!(model = %model.name(), attempt, delay_ms = delay.as_millis() as u64, error = %error, "model call failed; retrying");
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::scripted::{Script, ScriptedModel};
    use super::*;

    fn request() -> ModelRequest {
        ModelRequest {
            system: String::new(),
            messages: vec![],
            tools: Arc::new([]),
        }
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(60),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_and_retries_are_bounded() {
        let model = ScriptedModel::new(vec![
            Script::Fail(ModelError::RateLimited {
                retry_after: Some(Duration::from_secs(7)),
            }),
            Script::Fail(ModelError::Server {
                status: 503,
                message: "busy".into(),
            }),
            Script::text("hello"),
        ]);
        let start = tokio::time::Instant::now();
        let answer = complete_with_retry(&model, &request(), &|_| {}, policy())
            .await
            .unwrap();
        assert_eq!(answer.text, "hello");
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_secs(7) && waited < Duration::from_secs(8),
            "{waited:?}"
        );
        assert_eq!(model.calls(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_beyond_the_cap_ends_the_call_with_a_clear_error() {
        let model = ScriptedModel::new(vec![Script::Fail(ModelError::RateLimited {
            retry_after: Some(Duration::from_secs(600)),
        })]);
        let err = complete_with_retry(&model, &request(), &|_| {}, policy())
            .await
            .unwrap_err();
        assert_eq!(
            err,
            ModelError::RetryAfterTooLong {
                asked: Duration::from_secs(600),
                cap: Duration::from_secs(30)
            }
        );
        assert_eq!(model.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn client_errors_are_not_retried_and_persistent_failures_stop_after_the_limit() {
        let model = ScriptedModel::new(vec![Script::Fail(ModelError::Rejected {
            status: 400,
            message: "bad".into(),
        })]);
        assert!(matches!(
            complete_with_retry(&model, &request(), &|_| {}, policy()).await,
            Err(ModelError::Rejected { status: 400, .. })
        ));
        assert_eq!(model.calls(), 1);

        let failing = ScriptedModel::new(
            (0..5)
                .map(|_| {
                    Script::Fail(ModelError::Server {
                        status: 500,
                        message: "x".into(),
                    })
                })
                .collect(),
        );
        assert!(matches!(
            complete_with_retry(&failing, &request(), &|_| {}, policy()).await,
            Err(ModelError::Server { .. })
        ));
        assert_eq!(failing.calls(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_call_times_out_and_is_retried() {
        let model = ScriptedModel::new(vec![Script::Stall, Script::text("late but fine")]);
        let answer = complete_with_retry(
            &model,
            &request(),
            &|_| {},
            RetryPolicy {
                attempt_timeout: Duration::from_secs(5),
                ..policy()
            },
        )
        .await
        .unwrap();
        assert_eq!(answer.text, "late but fine");
    }
}
