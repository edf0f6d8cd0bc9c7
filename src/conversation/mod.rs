//! The conversation as stored and as sent to a model: user messages,
//! assistant messages (with the tool calls they made) and tool results;
//! `thread` is the same conversation as a person sees it.

pub(crate) mod thread;
pub mod window;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The model's id for the call; tool results answer it.
    pub id: String,
    pub name: String,
    /// The raw JSON arguments, exactly as the model sent them.
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    User {
        text: String,
        /// The client's id for the message (`message` frames), so a client
        /// that lost its connection can tell whether the message arrived.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    Assistant {
        text: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
        /// Set when the notifier wrote this message: the notification (by
        /// id) it records, so the model sees the event in context. A thread
        /// shows the notification itself instead.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notification: Option<String>,
    },
    Tool {
        call_id: String,
        name: String,
        content: String,
    },
}

/// A message with the time it was recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub at: DateTime<Utc>,
    pub message: Message,
}

/// Makes a stored transcript safe to send to a model: an assistant message
/// whose tool calls have no results (the server stopped mid-turn) gets a
/// result saying so, because OpenAI-style APIs reject unanswered calls. The
/// plan itself is always in the system prompt, so nothing is lost.
pub(crate) fn repair(messages: Vec<Message>) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::with_capacity(messages.len());
    let mut open: Vec<(String, String)> = Vec::new();
    let close_open = |out: &mut Vec<Message>, open: &mut Vec<(String, String)>| {
        for (call_id, name) in open.drain(..) {
            out.push(Message::Tool {
                call_id,
                name,
                content: "{\"error\":\"no result: the server restarted during this call; \
                          the system prompt shows the current plans\"}"
                    .into(),
            });
        }
    };
    for message in messages {
        match &message {
            Message::Tool { call_id, .. } => {
                if let Some(pos) = open.iter().position(|(id, _)| id == call_id) {
                    open.remove(pos);
                    out.push(message);
                }
                // A result without its call (the window started mid-turn) is dropped.
            }
            Message::User { .. } | Message::Assistant { .. } => {
                close_open(&mut out, &mut open);
                if let Message::Assistant { tool_calls, .. } = &message {
                    open = tool_calls.iter().map(|c| (c.id.clone(), c.name.clone())).collect();
                }
                out.push(message);
            }
        }
    }
    close_open(&mut out, &mut open);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: "update_plan".into(),
            arguments: "{}".into(),
        }
    }

    #[test]
    fn repair_answers_orphaned_tool_calls_and_drops_orphaned_results() {
        let messages = vec![
            Message::Tool {
                call_id: "old".into(),
                name: "x".into(),
                content: "{}".into(),
            },
            Message::User {
                text: "hi".into(),
                id: None,
            },
            Message::Assistant {
                text: String::new(),
                tool_calls: vec![call("a"), call("b")],
                notification: None,
            },
            Message::Tool {
                call_id: "a".into(),
                name: "update_plan".into(),
                content: "ok".into(),
            },
            Message::User {
                text: "again".into(),
                id: None,
            },
        ];
        let repaired = repair(messages);
        assert_eq!(repaired.len(), 5);
        assert!(matches!(&repaired[0], Message::User { .. }));
        assert!(matches!(&repaired[2], Message::Tool { call_id, content, .. } if call_id == "a" && content == "ok"));
        assert!(
            matches!(&repaired[3], Message::Tool { call_id, content, .. } if call_id == "b" && content.contains("restarted"))
        );
        assert!(matches!(&repaired[4], Message::User { .. }));
    }
}
