//! `remind`: a reminder at a time the user chose ("remind me tomorrow at 9
//! to call the recruiter"), stored as a trigger; the scheduler delivers it
//! through the notifier. `lapse_on_reply` drops it if the user writes in
//! the meantime (for "remind me if I don't get back to you").

use super::{Tool, ToolContext, ToolError, parse_args};
use crate::llm::ToolSpec;
use crate::triggers::{Trigger, TriggerKind};
use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

/// Reminders a user may have armed at once.
const MAX_REMINDERS: usize = 50;
const MAX_TEXT_CHARS: usize = 500;

pub struct Remind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    text: String,
    at: DateTime<FixedOffset>,
    #[serde(default)]
    lapse_on_reply: bool,
}

#[async_trait]
impl Tool for Remind {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "remind",
            description: "Set a reminder for the person at a time they asked for. It arrives in the chat, or by push or email when they are away.",
            parameters: json!({
                "type": "object",
                "properties": {
                    "text": {"type": "string", "description": "What to remind them of, in their words, e.g. 'call the recruiter'"},
                    "at": {"type": "string", "description": "RFC 3339 date-time with the person's UTC offset, e.g. 2026-11-24T09:00:00+01:00"},
                    "lapse_on_reply": {"type": "boolean", "description": "Drop the reminder if the person writes before it is due"}
                },
                "required": ["text", "at"],
                "additionalProperties": false
            }),
        }
    }

    async fn call(&self, ctx: &ToolContext, arguments: &str) -> Result<Value, ToolError> {
        let args: Args = parse_args("remind", arguments)?;
        let text = crate::channels::email::header_text(&args.text);
        if text.is_empty() || text.chars().count() > MAX_TEXT_CHARS {
            return Err(ToolError::invalid(format!(
                "text must be 1-{MAX_TEXT_CHARS} characters on one line"
            )));
        }
        let at = args.at.with_timezone(&Utc);
        if at <= ctx.now {
            return Err(ToolError::invalid(format!(
                "`at` ({}) is in the past; it is now {}",
                args.at.to_rfc3339(),
                ctx.now.with_timezone(&ctx.time_zone).to_rfc3339()
            )));
        }
        if at > ctx.now + chrono::Duration::days(366) {
            return Err(ToolError::invalid("reminders can be set at most a year ahead"));
        }
        let armed = ctx.store.user_triggers(&ctx.user).await?;
        let reminders = armed
            .iter()
            .filter(|t| matches!(t.kind, TriggerKind::Reminder { .. }))
            .count();
        if reminders >= MAX_REMINDERS {
            return Err(ToolError::invalid(format!(
                "the person already has {MAX_REMINDERS} reminders armed"
            )));
        }
        let trigger = Trigger {
            id: format!("remind:{}", uuid::Uuid::now_v7().simple()),
            user: ctx.user.clone(),
            fire_at: at,
            created_at: ctx.now,
            kind: TriggerKind::Reminder {
                text: text.clone(),
                lapse_on_reply: args.lapse_on_reply,
            },
        };
        ctx.store.put_trigger(&trigger).await?;
        let local = at.with_timezone(&ctx.time_zone);
        Ok(json!({
            "ok": true,
            "reminder": {"id": trigger.id, "text": text, "at": local.to_rfc3339()},
            "when": crate::wording::relative_day(at, ctx.now, ctx.time_zone),
            "time": local.format("%H:%M").to_string(),
        }))
    }
}
