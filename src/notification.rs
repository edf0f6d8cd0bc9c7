//! What steward sends people, as records: notifications (what a fired
//! trigger says, kept in the user's inbox) and outbox rows (a side effect —
//! an email, a web push, a webhook — stored with its idempotency key before
//! it is attempted). Pure data: the notifier routes and delivers them.

use crate::plan::PlanId;
use crate::user::UserId;
use chrono::{DateTime, Utc};
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
    /// The engine ran a step bound to a tool.
    StepDone,
    /// The engine could not run a step: the user decides what happens next.
    StepFailed,
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
pub(crate) struct NotificationView {
    pub id: String,
    pub kind: NotificationKind,
    pub text: String,
    #[schema(value_type = Option<String>)]
    pub plan_id: Option<PlanId>,
    pub step_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Notification {
    pub(crate) fn view(&self) -> NotificationView {
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
    Email(Email),
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

impl OutboxItem {
    /// Still to be delivered: pending, or an attempt started.
    pub fn is_open(&self) -> bool {
        matches!(self.status, OutboxStatus::Pending | OutboxStatus::Sending)
    }

    /// A new row, due now; the store assigns its id.
    pub fn new(user: &UserId, key: String, payload: Payload, now: DateTime<Utc>) -> OutboxItem {
        OutboxItem {
            id: String::new(),
            user: user.clone(),
            key,
            payload,
            status: OutboxStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            created_at: now,
            last_error: None,
        }
    }
}

/// One email, exactly as it will be sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// `<…@…>`, derived from what the mail is (digest period, notification
    /// id), so a retried send is recognisably the same message.
    pub message_id: String,
    /// The one-click unsubscribe URL (List-Unsubscribe, RFC 8058).
    #[serde(default)]
    pub unsubscribe: Option<String>,
}
