//! What a user's open sockets are told, as events, and the port that tells
//! them ([`Publisher`], implemented by the connection hub).
//!
//! One rule for every frame: what happens to a user's plans, proposals,
//! notifications and conversation goes to **every** open socket of that
//! user (and nobody else), whichever socket, request or worker caused it —
//! so a second tab sees the question, the streamed answer and the plan
//! change alike. Only answers about a frame a socket itself sent (bad JSON,
//! rate limits, busy, `ready`, `pong`) go to that one socket.

use crate::notification::NotificationView;
use crate::plan::Plan;
use crate::proposal::ProposalView;
use crate::protocol::{ErrorCode, ServerFrame};
use crate::user::UserId;
use std::future::Future;
use std::pin::Pin;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Event {
    /// A plan changed (`shown: false`), or the user asked to see it.
    Plan {
        plan: Plan,
        shown: bool,
    },
    /// A proposal was made, or answered, superseded or found stale.
    Proposal(ProposalView),
    Notification(NotificationView),
    /// A chat message the user sent, as received (other tabs show it).
    Message {
        id: String,
        text: String,
    },
    /// A piece of the answer to message `reply_to` while it streams.
    Delta {
        reply_to: String,
        text: String,
    },
    /// The complete answer, sent after it is stored.
    Reply {
        reply_to: String,
        text: String,
    },
    /// The turn for `reply_to` ended without an answer.
    TurnFailed {
        reply_to: String,
        code: ErrorCode,
        message: String,
    },
}

impl Event {
    /// The wire frame for this event.
    pub(crate) fn frame(self) -> ServerFrame {
        match self {
            Event::Plan { plan, shown } => ServerFrame::Plan { plan, shown },
            Event::Proposal(proposal) => ServerFrame::Proposal { proposal },
            Event::Notification(notification) => ServerFrame::Notification { notification },
            Event::Message { id, text } => ServerFrame::Message { id, text },
            Event::Delta { reply_to, text } => ServerFrame::Delta { reply_to, text },
            Event::Reply { reply_to, text } => ServerFrame::Reply { reply_to, text },
            Event::TurnFailed {
                reply_to,
                code,
                message,
            } => ServerFrame::Error {
                code,
                message,
                reply_to: Some(reply_to),
            },
        }
    }
}

/// Resolves to whether some socket actually wrote a tracked event (`false`
/// once every queued copy was dropped unwritten).
pub(crate) type Written = Pin<Box<dyn Future<Output = bool> + Send>>;

/// Delivers events to a user's open sockets (on every instance). Never blocks: a socket whose
/// queue is full is closed as a slow consumer and resynchronises from
/// `ready` when it reconnects.
#[async_trait::async_trait]
pub(crate) trait Publisher: Send + Sync {
    /// Queues `event` for every open socket of `user`; how many took it.
    fn publish(&self, user: &UserId, event: Event) -> usize;

    /// Like [`Publisher::publish`], and tells when a socket has written it;
    /// `None` if no socket took it.
    fn publish_tracked(&self, user: &UserId, event: Event) -> Option<Written>;

    /// Whether the user has an open socket right now, on any instance.
    async fn is_online(&self, user: &UserId) -> bool;
}
