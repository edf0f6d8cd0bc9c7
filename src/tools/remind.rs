//! `remind`: a reminder at a time the user chose ("remind me tomorrow at 9
//! to call the recruiter"), stored as a trigger; the scheduler delivers it
//! through the notifier. `lapse_on_reply` drops it if the user writes in
//! the meantime (for "remind me if I don't get back to you").

use super::{Tool, ToolContext, ToolError};
use crate::triggers::{Trigger, TriggerKind};
use crate::wording::relative_day;
use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};

pub(crate) struct Remind;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// In their words.
    pub(crate) text: String,
    /// RFC 3339 with their offset.
    pub(crate) at: DateTime<FixedOffset>,
    /// Drop it if they write before it is due.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) lapse_on_reply: bool,
}

/// The armed reminder, with what "when" means to the person.
#[derive(Debug, Clone, PartialEq)]
pub struct Reminded {
    pub(crate) trigger: Trigger,
    pub(crate) tz: Tz,
    pub(crate) now: DateTime<Utc>,
}

impl Reminded {
    /// The reminder's text, on one line.
    pub(crate) fn text(&self) -> &str {
        match &self.trigger.kind {
            TriggerKind::Reminder { text, .. } => text,
            TriggerKind::StepDue { .. }
            | TriggerKind::StepOverdue { .. }
            | TriggerKind::PlanIdle { .. }
            | TriggerKind::Digest => "",
        }
    }

    /// "today", "tomorrow", "on Friday, Nov 27".
    pub(crate) fn when(&self) -> String {
        relative_day(self.trigger.fire_at, self.now, self.tz)
    }

    /// The local time, HH:MM.
    pub(crate) fn time(&self) -> String {
        self.trigger.fire_at.with_timezone(&self.tz).format("%H:%M").to_string()
    }
}

impl Serialize for Reminded {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Reminder<'a> {
            id: &'a str,
            text: &'a str,
            at: String,
        }
        #[derive(Serialize)]
        struct Body<'a> {
            ok: bool,
            reminder: Reminder<'a>,
            when: String,
            time: String,
        }
        Body {
            ok: true,
            reminder: Reminder {
                id: &self.trigger.id,
                text: self.text(),
                at: self.trigger.fire_at.with_timezone(&self.tz).to_rfc3339(),
            },
            when: self.when(),
            time: self.time(),
        }
        .serialize(s)
    }
}

#[async_trait]
impl Tool for Remind {
    const NAME: &'static str = "remind";
    const DESCRIPTION: &'static str = "Remind the person at a time they asked for.";
    type Args = Args;
    type Output = Reminded;

    async fn run(&self, ctx: ToolContext<'_>, args: Args) -> Result<Reminded, ToolError> {
        let trigger = ctx
            .service
            .remind(ctx.session, &args.text, args.at, args.lapse_on_reply)
            .await?;
        Ok(Reminded {
            trigger,
            tz: ctx.session.tz,
            now: ctx.service.now(),
        })
    }
}
