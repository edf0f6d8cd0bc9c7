//! What of the conversation a model call carries. A *turn* is a person's
//! message and everything after it up to their next one: the assistant's
//! tool calls, their results, the answer, and notifications that followed.
//! A call carries the last few turns whole — never part of one, so a tool
//! round is never cut — and the turns before them folded into a running
//! summary, one line per turn, kept in the store. In the carried turns
//! before the current one, long tool arguments and results are replaced
//! by a short note: the plans as they are now are in the system prompt.

use super::{Entry, Message, ToolCall};
use crate::plan::render;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Summary lines kept (the oldest go first).
pub const MAX_SUMMARY_LINES: usize = 4;
/// Characters of the person's message quoted in a summary line.
const QUOTED_CHARS: usize = 60;
/// Characters of steward's answer quoted in a summary line.
const ANSWER_CHARS: usize = 40;
/// Tool arguments and results longer than this, in turns before the
/// current one, are replaced by a note.
const OLD_PART_BYTES: usize = 200;

/// The running summary of the turns older than the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// When the person wrote the last turn folded in.
    pub through: Option<DateTime<Utc>>,
    pub lines: Vec<String>,
}

impl Summary {
    pub fn text(&self) -> Option<String> {
        (!self.lines.is_empty()).then(|| self.lines.join("\n"))
    }
}

/// Splits entries into whole turns. Entries before the first person's
/// message belong to a turn that began before the read: they are dropped.
pub fn turns(entries: Vec<Entry>) -> Vec<Vec<Entry>> {
    let mut out: Vec<Vec<Entry>> = Vec::new();
    for entry in entries {
        match (&entry.message, out.last_mut()) {
            (Message::User { .. }, _) => out.push(vec![entry]),
            (_, Some(turn)) => turn.push(entry),
            (_, None) => {}
        }
    }
    out
}

/// Folds `older` turns (oldest first) into `summary`: those the summary
/// does not cover yet get a line each. Returns the new summary if it
/// changed.
pub fn fold(summary: &Summary, older: &[Vec<Entry>], zone: Tz) -> Option<Summary> {
    let mut next = summary.clone();
    for turn in older {
        let Some(first) = turn.first() else { continue };
        if next.through.is_some_and(|through| first.at <= through) {
            continue;
        }
        next.lines.push(line(turn, zone));
        next.through = Some(first.at);
    }
    if next == *summary {
        return None;
    }
    let excess = next.lines.len().saturating_sub(MAX_SUMMARY_LINES);
    next.lines.drain(..excess);
    Some(next)
}

/// One turn in one line: when, what the person said, the tools steward
/// called and how they ended, and the start of its answer.
fn line(turn: &[Entry], zone: Tz) -> String {
    let mut said = String::new();
    // (call id, what is said of it): a result is matched to its call.
    let mut calls: Vec<(String, String)> = Vec::new();
    let mut answer = String::new();
    for entry in turn {
        match &entry.message {
            Message::User { text, .. } => said = clip(text, QUOTED_CHARS),
            Message::Assistant { text, tool_calls, .. } => {
                calls.extend(tool_calls.iter().map(|c| (c.id.clone(), c.name.clone())));
                if !text.trim().is_empty() {
                    answer = clip(text, ANSWER_CHARS);
                }
            }
            Message::Tool { call_id, content, .. } => {
                if let Some((_, name)) = calls.iter_mut().find(|(id, _)| id == call_id) {
                    // A call that is not marked went through.
                    if content.starts_with("{\"error\"") {
                        name.push_str(" (refused)");
                    }
                }
            }
        }
    }
    let calls: Vec<String> = calls.into_iter().map(|(_, said)| said).collect();
    let at = turn
        .first()
        .map(|e| e.at.with_timezone(&zone).format("%a %b %-d %H:%M").to_string())
        .unwrap_or_default();
    let mut out = format!("- {at} person: {}", render::quoted(&said));
    if !calls.is_empty() {
        out.push_str(" → ");
        out.push_str(&calls.join(", "));
    }
    if !answer.is_empty() {
        out.push_str(" → steward: ");
        out.push_str(&render::quoted(&answer));
    }
    out
}

fn clip(text: &str, chars: usize) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// The messages for a model: the `earlier` turns with long tool arguments
/// and results replaced by notes, then the `current` turn whole.
pub fn for_model(earlier: &[Vec<Entry>], current: &[Entry]) -> Vec<Message> {
    let mut out = Vec::with_capacity(earlier.iter().map(Vec::len).sum::<usize>() + current.len());
    out.extend(earlier.iter().flatten().map(|e| shorten(e.message.clone())));
    out.extend(current.iter().map(|e| e.message.clone()));
    super::repair(out)
}

fn shorten(message: Message) -> Message {
    match message {
        Message::Assistant {
            text,
            tool_calls,
            notification,
        } => Message::Assistant {
            text,
            tool_calls: tool_calls
                .into_iter()
                .map(|c| match c.arguments.len() > OLD_PART_BYTES {
                    true => ToolCall {
                        arguments: format!(
                            "{{\"note\":\"arguments of an earlier call ({} bytes), not repeated\"}}",
                            c.arguments.len()
                        ),
                        ..c
                    },
                    false => c,
                })
                .collect(),
            notification,
        },
        Message::Tool { call_id, name, content } if content.len() > OLD_PART_BYTES => {
            let outcome = if content.starts_with("{\"error\"") {
                "refused"
            } else {
                "ok"
            };
            Message::Tool {
                call_id,
                name,
                content: format!(
                    "{{\"{outcome}\":true,\"note\":\"result of an earlier call ({} bytes), not repeated; the system prompt shows the plans as they are now\"}}",
                    content.len()
                ),
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 9, minute, 0).unwrap()
    }

    fn user(minute: u32, text: &str) -> Entry {
        Entry {
            at: at(minute),
            message: Message::User {
                text: text.into(),
                id: None,
            },
        }
    }

    fn call(minute: u32, id: &str, arguments: String) -> Entry {
        Entry {
            at: at(minute),
            message: Message::Assistant {
                text: String::new(),
                tool_calls: vec![ToolCall {
                    id: id.into(),
                    name: "update_plan".into(),
                    arguments,
                }],
                notification: None,
            },
        }
    }

    fn result(minute: u32, id: &str, content: String) -> Entry {
        Entry {
            at: at(minute),
            message: Message::Tool {
                call_id: id.into(),
                name: "update_plan".into(),
                content,
            },
        }
    }

    fn answer(minute: u32, text: &str) -> Entry {
        Entry {
            at: at(minute),
            message: Message::Assistant {
                text: text.into(),
                tool_calls: vec![],
                notification: None,
            },
        }
    }

    fn conversation() -> Vec<Entry> {
        vec![
            // The read began inside an older turn: these have no person's message.
            result(0, "old", "{}".into()),
            answer(0, "old answer"),
            user(1, "I ordered the laptop"),
            call(1, "a", format!("{{\"ops\":\"{}\"}}", "x".repeat(500))),
            result(1, "a", format!("{{\"error\":\"{}\"}}", "y".repeat(500))),
            answer(1, "That was refused."),
            user(2, "show my plan"),
            call(2, "b", "{\"plan_id\":\"p1\"}".into()),
            result(2, "b", format!("{{\"plan\":\"{}\"}}", "z".repeat(500))),
            answer(2, "Here it is."),
        ]
    }

    #[test]
    fn turns_start_at_the_persons_messages_and_a_partial_first_turn_is_dropped() {
        let turns = turns(conversation());
        assert_eq!(turns.len(), 2);
        assert_eq!(turns[0].len(), 4);
        assert!(matches!(&turns[1][0].message, Message::User { text, .. } if text == "show my plan"));
    }

    #[test]
    fn earlier_turns_are_carried_with_notes_instead_of_long_arguments_and_results() {
        let turns = turns(conversation());
        let messages = for_model(&turns[..1], &turns[1]);
        assert_eq!(messages.len(), 8);
        let Message::Assistant { tool_calls, .. } = &messages[1] else {
            panic!()
        };
        assert!(tool_calls[0].arguments.contains("not repeated"), "{tool_calls:?}");
        serde_json::from_str::<serde_json::Value>(&tool_calls[0].arguments).unwrap();
        let Message::Tool { content, .. } = &messages[2] else {
            panic!()
        };
        assert!(content.starts_with("{\"refused\":true"), "{content}");
        // The current turn is whole.
        let Message::Tool { content, .. } = &messages[6] else {
            panic!()
        };
        assert_eq!(content.len(), 511);
    }

    #[test]
    fn folding_adds_one_line_per_new_turn_and_keeps_the_last_lines() {
        let zone: Tz = "Europe/Berlin".parse().unwrap();
        let turns = turns(conversation());
        let summary = fold(&Summary::default(), &turns, zone).unwrap();
        assert_eq!(
            summary.lines,
            [
                "- Tue Nov 24 10:01 person: \"I ordered the laptop\" → update_plan (refused) → \
                 steward: \"That was refused.\"",
                "- Tue Nov 24 10:02 person: \"show my plan\" → update_plan → steward: \"Here it is.\"",
            ]
        );
        assert_eq!(summary.through, Some(at(2)));
        assert_eq!(
            fold(&summary, &turns, zone),
            None,
            "turns already folded are not folded again"
        );
        let mut many = summary.clone();
        for n in 0..20 {
            many.lines.push(format!("- line {n}"));
        }
        many.through = Some(at(2));
        let more = fold(&many, &[vec![user(3, "a\nb \"c\"")]], zone).unwrap();
        assert_eq!(more.lines.len(), MAX_SUMMARY_LINES);
        assert_eq!(
            more.lines.last().unwrap(),
            "- Tue Nov 24 10:03 person: \"a b \\\"c\\\"\""
        );
    }
}
