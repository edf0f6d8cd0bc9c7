//! Reminders the user asked for ("remind me tomorrow at 9 to call the
//! recruiter"), stored as triggers; the scheduler delivers them through the
//! notifier. `lapse_on_reply` drops one if the user writes in the meantime.

use super::{Refusal, Service, ServiceError, Session};
use crate::channels::email::header_text;
use crate::triggers::{Trigger, TriggerKind};
use chrono::{DateTime, FixedOffset, Utc};

/// Reminders a user may have armed at once.
const MAX_REMINDERS: usize = 50;
const MAX_TEXT_CHARS: usize = 500;
/// How far ahead a reminder may be set.
const MAX_AHEAD_DAYS: i64 = 366;

/// Why a reminder was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReminderError {
    #[error("text must be 1-{MAX_TEXT_CHARS} characters on one line")]
    Text,
    #[error("`at` ({at}) is in the past; it is now {now}")]
    Past { at: String, now: String },
    #[error("reminders can be set at most a year ahead")]
    TooFar,
    #[error("the person already has {MAX_REMINDERS} reminders armed")]
    TooMany,
}

impl Service {
    /// Arms a reminder; returns its trigger (its text on one safe line).
    pub(crate) async fn remind(
        &self,
        s: &Session,
        text: &str,
        at: DateTime<FixedOffset>,
        lapse_on_reply: bool,
    ) -> Result<Trigger, ServiceError> {
        let id = format!("remind:{}", uuid::Uuid::now_v7().simple());
        self.remind_as(s, id, text, at, lapse_on_reply).await
    }

    /// Arms the reminder `id`, replacing one with that id: a tool step's
    /// reminder is named by its idempotency key, so a repeated call arms
    /// it once.
    pub(crate) async fn remind_as(
        &self,
        s: &Session,
        id: String,
        text: &str,
        at: DateTime<FixedOffset>,
        lapse_on_reply: bool,
    ) -> Result<Trigger, ServiceError> {
        let refuse = |e: ReminderError| ServiceError::Refused(Refusal::Reminder(e));
        let text = header_text(text);
        if text.is_empty() || text.chars().count() > MAX_TEXT_CHARS {
            return Err(refuse(ReminderError::Text));
        }
        let now = self.now();
        let fire_at = at.with_timezone(&Utc);
        if fire_at <= now {
            return Err(refuse(ReminderError::Past {
                at: at.to_rfc3339(),
                now: now.with_timezone(&s.tz).to_rfc3339(),
            }));
        }
        if fire_at > now + chrono::Duration::days(MAX_AHEAD_DAYS) {
            return Err(refuse(ReminderError::TooFar));
        }
        let armed = self.store().user_triggers(&s.user).await?;
        let reminders = armed
            .iter()
            .filter(|t| matches!(t.kind, TriggerKind::Reminder { .. }))
            .count();
        if reminders >= MAX_REMINDERS {
            return Err(refuse(ReminderError::TooMany));
        }
        let trigger = Trigger {
            id,
            user: s.user.clone(),
            fire_at,
            created_at: now,
            kind: TriggerKind::Reminder { text, lapse_on_reply },
        };
        self.store().put_trigger(&trigger).await?;
        Ok(trigger)
    }
}
