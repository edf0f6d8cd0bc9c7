//! A model whose answers are written in advance, for tests. It records every
//! request it receives and errors (never panics) when its script runs out.

use super::{ChatModel, DeltaSink, ModelError, ModelRequest, ModelResponse};
use crate::conversation::ToolCall;
use async_trait::async_trait;
use std::collections::VecDeque;
use std::sync::Mutex;

#[derive(Debug, Clone)]
pub enum Script {
    /// Streams `deltas`, then answers with their concatenation.
    Text {
        deltas: Vec<String>,
    },
    /// Answers with tool calls (and optional text).
    Tools {
        text: String,
        calls: Vec<ToolCall>,
    },
    Fail(ModelError),
    /// Never answers, so the caller's timeout fires.
    Stall,
    /// Waits, then plays the inner answer.
    After(std::time::Duration, Box<Script>),
}

impl Script {
    pub fn text(text: &str) -> Script {
        Script::Text {
            deltas: vec![text.to_owned()],
        }
    }

    pub fn tool(id: &str, name: &str, arguments: serde_json::Value) -> Script {
        Script::Tools {
            text: String::new(),
            calls: vec![ToolCall {
                id: id.into(),
                name: name.into(),
                arguments: arguments.to_string(),
            }],
        }
    }

    /// A tool call whose arguments are the given raw (possibly invalid) text.
    pub fn raw_tool(id: &str, name: &str, arguments: &str) -> Script {
        Script::Tools {
            text: String::new(),
            calls: vec![ToolCall {
                id: id.into(),
                name: name.into(),
                arguments: arguments.into(),
            }],
        }
    }
}

#[derive(Default)]
pub struct ScriptedModel {
    script: Mutex<VecDeque<Script>>,
    requests: Mutex<Vec<ModelRequest>>,
}

impl ScriptedModel {
    pub fn new(script: Vec<Script>) -> ScriptedModel {
        ScriptedModel {
            script: Mutex::new(script.into()),
            requests: Mutex::new(Vec::new()),
        }
    }

    /// Appends answers to the script.
    pub fn push(&self, more: impl IntoIterator<Item = Script>) {
        self.script.lock().unwrap_or_else(|p| p.into_inner()).extend(more);
    }

    pub fn calls(&self) -> usize {
        self.requests.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<ModelRequest> {
        self.requests.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl ChatModel for ScriptedModel {
    fn name(&self) -> String {
        "scripted".into()
    }

    async fn complete(&self, request: &ModelRequest, deltas: DeltaSink<'_>) -> Result<ModelResponse, ModelError> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(request.clone());
        let mut next = self.script.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
        loop {
            match next.ok_or(ModelError::ScriptExhausted)? {
                Script::After(delay, inner) => {
                    tokio::time::sleep(delay).await;
                    next = Some(*inner);
                }
                Script::Text { deltas: parts } => {
                    for part in &parts {
                        deltas(part);
                    }
                    return Ok(ModelResponse {
                        text: parts.concat(),
                        tool_calls: vec![],
                        usage: None,
                    });
                }
                Script::Tools { text, calls } => {
                    return Ok(ModelResponse {
                        text,
                        tool_calls: calls,
                        usage: None,
                    });
                }
                Script::Fail(e) => return Err(e),
                Script::Stall => return std::future::pending().await,
            }
        }
    }
}
