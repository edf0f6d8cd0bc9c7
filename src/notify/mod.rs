//! Coming back to the user: notifications (what a fired trigger says),
//! per-user preferences (time zone, quiet hours, digest, channels), and the
//! routing rule socket → web push → email. Delivery side effects go through
//! the outbox: a row with an idempotency key is stored before anything is
//! sent, and the workers in [`router`] and [`mailer`] drain it.

pub mod calendar;
pub mod egress;
pub mod email;
pub mod links;
pub mod mailer;
pub mod preferences;
pub mod push;
pub mod router;
pub mod webhook;
pub mod wording;

use crate::plan::PlanId;
use crate::scheduler::triggers::{Frequency, Recurrence};
use crate::user::UserId;
use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// What a notification is about (the `kind` field of the wire frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    DueSoon,
    Overdue,
    Idle,
    Reminder,
    /// Triggers that came due while steward was down, past the catch-up window.
    Missed,
}

/// One notification, kept in the user's inbox (store-and-forward: what a
/// user missed while offline is in `ready` when they reconnect).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// "n12": per-user sequence, assigned by the store.
    pub id: String,
    pub kind: NotificationKind,
    pub text: String,
    #[serde(default)]
    pub plan_id: Option<PlanId>,
    #[serde(default)]
    pub step_id: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Delivered during quiet hours too.
    #[serde(default)]
    pub urgent: bool,
    /// Shown on a socket (live, or in `ready` after a reconnect).
    #[serde(default)]
    pub seen: bool,
    /// Where it was routed, once it was: `socket`, `push`, `email`, `inbox`.
    #[serde(default)]
    pub routed: Option<Channel>,
}

/// The wire view of a notification.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct NotificationView {
    pub id: String,
    pub kind: NotificationKind,
    pub text: String,
    #[schema(value_type = Option<String>)]
    pub plan_id: Option<PlanId>,
    pub step_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Notification {
    pub fn view(&self) -> NotificationView {
        NotificationView {
            id: self.id.clone(),
            kind: self.kind,
            text: self.text.clone(),
            plan_id: self.plan_id,
            step_id: self.step_id.clone(),
            created_at: self.created_at,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Socket,
    Push,
    Email,
    /// No channel was available: it waits in the inbox for the next connect.
    Inbox,
}

/// Local hours during which non-urgent notifications wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl QuietHours {
    /// If `at` falls in quiet hours, the instant they end.
    pub fn ends_after(&self, at: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let local = at.with_timezone(&tz);
        let t = local.time();
        let day = local.date_naive();
        let (inside, end_day) = if self.start <= self.end {
            (t >= self.start && t < self.end, day)
        } else if t >= self.start {
            (true, day.succ_opt()?)
        } else {
            (t < self.end, day)
        };
        if !inside {
            return None;
        }
        let wall = end_day.and_time(self.end);
        let end = crate::scheduler::triggers::local_instant(tz, wall);
        if end > at {
            return Some(end);
        }
        // The end falls in a repeated (fall-back) hour whose earlier
        // instance has passed: quiet hours end at the later one.
        use chrono::TimeZone;
        tz.from_local_datetime(&wall)
            .latest()
            .map(|t| t.with_timezone(&Utc))
            .filter(|t| *t > at)
    }
}

/// Which channels the user accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Channels {
    pub push: bool,
    pub email: bool,
}

impl Default for Channels {
    fn default() -> Self {
        Channels {
            push: true,
            email: true,
        }
    }
}

/// A user's notification preferences, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Preferences {
    /// IANA zone; `None`: the server's configured zone.
    pub time_zone: Option<String>,
    pub email: Option<String>,
    /// Only a verified address ever receives anything but the verification.
    pub email_verified: bool,
    pub quiet_hours: Option<QuietHours>,
    pub digest: Recurrence,
    pub channels: Channels,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            time_zone: None,
            email: None,
            email_verified: false,
            quiet_hours: None,
            digest: Recurrence {
                frequency: Frequency::Daily,
                weekday: None,
                time: NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default(),
            },
            channels: Channels::default(),
        }
    }
}

impl Preferences {
    pub fn tz(&self, fallback: Tz) -> Tz {
        self.time_zone
            .as_deref()
            .and_then(|z| z.parse().ok())
            .unwrap_or(fallback)
    }

    /// The address mail may go to: set, verified, and the channel on.
    pub fn deliverable_email(&self) -> Option<&str> {
        self.email
            .as_deref()
            .filter(|_| self.email_verified && self.channels.email)
    }

    /// Whether a digest trigger should be armed.
    pub fn wants_digest(&self) -> bool {
        self.deliverable_email().is_some() && self.digest.frequency != Frequency::Off
    }
}

/// What a signed link (see [`links`]) lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenPurpose {
    /// Confirms the address it was sent to.
    VerifyEmail,
    /// Turns email off for the user (List-Unsubscribe).
    Unsubscribe,
    /// Reads the user's calendar feed.
    Calendar,
}

/// A browser's web-push subscription (from `PushManager.subscribe()`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushSubscription {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

/// One side effect waiting to happen, stored before it is attempted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxItem {
    /// Assigned by the store ("o17").
    pub id: String,
    pub user: UserId,
    /// The idempotency key: a second item with the same key is not stored
    /// ("digest:ana:2026-11-23", "notify:ana:n12:email").
    pub key: String,
    pub payload: Payload,
    pub status: OutboxStatus,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "channel", rename_all = "snake_case")]
pub enum Payload {
    Email(email::Email),
    Push {
        subscription: PushSubscription,
        body: String,
    },
    Webhook {
        url: String,
        body: String,
    },
}

impl Payload {
    pub fn channel(&self) -> &'static str {
        match self {
            Payload::Email(_) => "email",
            Payload::Push { .. } => "push",
            Payload::Webhook { .. } => "webhook",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    Pending,
    /// An attempt started; after a crash the outcome is unknown and the
    /// item is attempted again with the same identity (same Message-ID).
    Sending,
    Sent,
    /// Permanently refused (5xx, 4xx from a webhook, too many attempts).
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn hours(start: u32, end: u32) -> QuietHours {
        QuietHours {
            start: NaiveTime::from_hms_opt(start, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(end, 30, 0).unwrap(),
        }
    }

    #[test]
    fn quiet_hours_end_at_the_next_local_end_even_across_midnight_and_fall_back() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let london: Tz = "Europe/London".parse().unwrap();
        let night = hours(22, 7); // 22:00 → 07:30
        let cases = [
            (night, berlin, "2026-11-23T22:30:00Z", Some("2026-11-24T06:30:00Z")), // 23:30 local
            (night, berlin, "2026-11-24T05:00:00Z", Some("2026-11-24T06:30:00Z")), // 06:00 local
            (night, berlin, "2026-11-24T12:00:00Z", None),                         // midday
            // 00:00 → 01:30 in London on the fall-back night (2026-10-25):
            // at 01:15 GMT (01:15Z, the second pass through 01:xx) the first
            // 01:30 (BST, 00:30Z) has passed; the end is 01:30 GMT.
            (
                hours(0, 1),
                london,
                "2026-10-25T01:15:00Z",
                Some("2026-10-25T01:30:00Z"),
            ),
            // 01:45 BST (00:45Z) is after 01:30: not quiet.
            (hours(0, 1), london, "2026-10-25T00:45:00Z", None),
        ];
        for (q, tz, now, want) in cases {
            assert_eq!(q.ends_after(at(now), tz), want.map(at), "{tz} {now}");
        }
    }
}
