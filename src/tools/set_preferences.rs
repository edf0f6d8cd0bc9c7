//! `set_preferences`: the person's digest schedule, quiet hours, time zone
//! and channels, from the chat ("send me a weekly digest on Mondays at 8").
//! The email address is changed in the widget's settings (it needs the
//! verification link), not here.

use super::{Tool, ToolContext, ToolError, parse_args};
use crate::llm::ToolSpec;
use crate::preferences::{self, Channels, DigestBody, QuietHoursBody};
use crate::scheduler::save_preferences;
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

pub struct SetPreferences;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    time_zone: Option<String>,
    #[serde(default)]
    quiet_hours: Option<QuietHoursBody>,
    #[serde(default)]
    clear_quiet_hours: bool,
    digest: Option<DigestBody>,
    channels: Option<Channels>,
}

#[async_trait]
impl Tool for SetPreferences {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "set_preferences",
            description: "Change how steward comes back to the person: the digest email (daily, weekly on a day, or off, at a local time), quiet hours, their IANA time zone, and push/email on or off. Their email address is set in the widget's settings, not here.",
            parameters: json!({
                "type": "object",
                "properties": {
                    "time_zone": {"type": "string", "description": "IANA zone, e.g. Europe/Berlin"},
                    "quiet_hours": {"type": "object", "properties": {"start": {"type": "string"}, "end": {"type": "string"}}, "required": ["start", "end"], "additionalProperties": false, "description": "Local HH:MM; non-urgent notices wait until the end"},
                    "clear_quiet_hours": {"type": "boolean"},
                    "digest": {"type": "object", "properties": {
                        "frequency": {"type": "string", "enum": ["daily", "weekly", "off"]},
                        "weekday": {"type": "string", "description": "For weekly: monday … sunday"},
                        "time": {"type": "string", "description": "Local HH:MM"}
                    }, "required": ["frequency"], "additionalProperties": false},
                    "channels": {"type": "object", "properties": {"push": {"type": "boolean"}, "email": {"type": "boolean"}}, "additionalProperties": false}
                },
                "additionalProperties": false
            }),
        }
    }

    async fn call(&self, ctx: &ToolContext, arguments: &str) -> Result<Value, ToolError> {
        let args: Args = parse_args("set_preferences", arguments)?;
        let update = preferences::Update {
            time_zone: args.time_zone,
            email: None,
            quiet_hours: match (args.quiet_hours, args.clear_quiet_hours) {
                (Some(q), _) => Some(Some(q)),
                (None, true) => Some(None),
                (None, false) => None,
            },
            digest: args.digest,
            channels: args.channels,
        };
        let current = ctx.store.preferences(&ctx.user).await?;
        let (next, _) = preferences::apply(&current, update).map_err(|e| ToolError::invalid(e.to_string()))?;
        let tz = next.tz(ctx.time_zone);
        let digest = save_preferences(ctx.store.as_ref(), &ctx.user, &next, tz, ctx.now).await?;
        Ok(json!({
            "ok": true,
            "digest": {
                "frequency": next.digest.frequency,
                "weekday": next.digest.weekday.map(|w| w.to_string()),
                "time": next.digest.time.format("%H:%M").to_string(),
                "next_at": digest.map(|t| t.fire_at.with_timezone(&tz).to_rfc3339()),
            },
            "email": next.email,
            "email_verified": next.email_verified,
            "time_zone": tz.name(),
        }))
    }
}
