//! The conversation as a person sees it: what they typed, what the
//! assistant answered, where a plan card or a proposal appeared, and the
//! notifications that arrived in between. Tool traffic and intermediate
//! model text are not shown.

use super::{Entry, Message};
use crate::notification::NotificationView;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// One item of the conversation as a person sees it: what they typed, what
/// the assistant answered, and where a plan card or a proposal appeared.
/// Tool traffic and intermediate model text are not shown.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum ThreadItem {
    User {
        at: DateTime<Utc>,
        text: String,
        /// The id the client sent the message with, if it came over `/ws`.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    Assistant {
        at: DateTime<Utc>,
        text: String,
    },
    /// `show_plan` showed this plan here.
    Plan {
        at: DateTime<Utc>,
        plan_id: String,
    },
    /// A proposal was made here; its current state is sent alongside.
    Proposal {
        at: DateTime<Utc>,
        proposal_id: String,
    },
    Notification {
        at: DateTime<Utc>,
        notification: NotificationView,
    },
}

impl ThreadItem {
    pub(crate) fn at(&self) -> DateTime<Utc> {
        match self {
            ThreadItem::User { at, .. }
            | ThreadItem::Assistant { at, .. }
            | ThreadItem::Plan { at, .. }
            | ThreadItem::Proposal { at, .. }
            | ThreadItem::Notification { at, .. } => *at,
        }
    }
}

/// The visible thread of a stored transcript, in order. Cards a turn
/// produced come after that turn's answer, as a widget shows them live.
pub(crate) fn thread(entries: &[Entry]) -> Vec<ThreadItem> {
    let mut items = Vec::new();
    let mut cards = Vec::new();
    for entry in entries {
        let at = entry.at;
        match &entry.message {
            Message::User { text, id } => {
                items.append(&mut cards);
                items.push(ThreadItem::User {
                    at,
                    text: text.clone(),
                    id: id.clone(),
                });
            }
            Message::Assistant {
                notification: Some(_), ..
            } => {}
            Message::Assistant { text, tool_calls, .. } if tool_calls.is_empty() && !text.trim().is_empty() => {
                items.push(ThreadItem::Assistant { at, text: text.clone() });
                items.append(&mut cards);
            }
            Message::Assistant { .. } => {}
            Message::Tool { name, content, .. } => {
                let Ok(value) = serde_json::from_str::<serde_json::Value>(content) else {
                    continue;
                };
                if let Some(id) = value.pointer("/proposal/id").and_then(|v| v.as_str()) {
                    cards.push(ThreadItem::Proposal {
                        at,
                        proposal_id: id.to_owned(),
                    });
                } else if name == "show_plan"
                    // `plan_id`; `plan.id` in transcripts stored before.
                    && let Some(id) = ["/plan_id", "/plan/id"]
                        .iter()
                        .find_map(|at| value.pointer(at).and_then(|v| v.as_str()))
                {
                    cards.push(ThreadItem::Plan {
                        at,
                        plan_id: id.to_owned(),
                    });
                }
            }
        }
    }
    items.append(&mut cards);
    items
}

/// Merges notifications into the thread by time, each before the first
/// item that is newer, keeping the order of `items` as it is.
pub(crate) fn merge_notifications(items: Vec<ThreadItem>, mut notifications: Vec<NotificationView>) -> Vec<ThreadItem> {
    notifications.sort_by_key(|n| n.created_at);
    let mut out = Vec::with_capacity(items.len() + notifications.len());
    let mut later = notifications
        .into_iter()
        .map(|n| ThreadItem::Notification {
            at: n.created_at,
            notification: n,
        })
        .peekable();
    for item in items {
        while let Some(next) = later.next_if(|n| n.at() < item.at()) {
            out.push(next);
        }
        out.push(item);
    }
    out.extend(later);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::ToolCall;

    fn call(id: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: "update_plan".into(),
            arguments: "{}".into(),
        }
    }

    /// The `kind` of each item, as clients see it.
    fn kinds(items: &[ThreadItem]) -> Vec<String> {
        items
            .iter()
            .map(|i| serde_json::to_value(i).unwrap()["kind"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn notifications_merge_by_time_without_reordering_the_thread() {
        let t = |m: i64| DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::minutes(m);
        let note = |m: i64| NotificationView {
            id: format!("n{m}"),
            kind: crate::notification::NotificationKind::Reminder,
            text: "Reminder: call".into(),
            plan_id: None,
            step_id: None,
            created_at: t(m),
        };
        let said = |m: i64| ThreadItem::Assistant {
            at: t(m),
            text: "OK".into(),
        };
        let items = vec![
            ThreadItem::User {
                at: t(0),
                text: "remind me".into(),
                id: None,
            },
            said(1),
            said(8),
        ];
        let merged = merge_notifications(items, vec![note(9), note(5)]);
        assert_eq!(
            kinds(&merged),
            ["user", "assistant", "notification", "assistant", "notification"]
        );
        assert_eq!(merged[2].at(), t(5));
        assert_eq!(merged[4].at(), t(9));
    }

    #[test]
    fn the_thread_shows_words_shown_plans_and_proposals_but_not_tool_traffic_or_notification_copies() {
        let at = Utc::now();
        let entry = |message| Entry { at, message };
        let tool = |name: &str, content: &str| {
            entry(Message::Tool {
                call_id: "c".into(),
                name: name.into(),
                content: content.into(),
            })
        };
        let entries = vec![
            entry(Message::User {
                text: "show my plan".into(),
                id: Some("c1".into()),
            }),
            entry(Message::Assistant {
                text: "Let me look".into(),
                tool_calls: vec![call("c")],
                notification: None,
            }),
            tool(
                "show_plan",
                r#"{"plan_id":"p1","plan":"in the system prompt","next_step":null}"#,
            ),
            tool("update_plan", r#"{"ok":true,"plan_id":"p1"}"#),
            tool("plan_from_template", r#"{"ok":true,"proposal":{"id":"r2"}}"#),
            tool("show_plan", "not json"),
            // The notifier's record of a reminder firing mid-turn: the
            // thread shows the notification itself, and the turn's cards
            // still follow its answer.
            entry(Message::Assistant {
                text: "Reminder: call".into(),
                tool_calls: vec![],
                notification: Some("n1".into()),
            }),
            entry(Message::Assistant {
                text: "Here it is".into(),
                tool_calls: vec![],
                notification: None,
            }),
        ];
        let items = thread(&entries);
        assert_eq!(kinds(&items), ["user", "assistant", "plan", "proposal"]);
        assert!(matches!(&items[0], ThreadItem::User { id: Some(id), .. } if id == "c1"));
        assert!(matches!(&items[2], ThreadItem::Plan { plan_id, .. } if plan_id == "p1"));
        assert!(matches!(&items[3], ThreadItem::Proposal { proposal_id, .. } if proposal_id == "r2"));
    }
}
