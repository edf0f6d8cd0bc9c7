//! Limits on sizes, rates, queues, connections and time: every one is
//! positive.

use super::ConfigError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest websocket frame accepted; bigger ones close with 1009.
    pub max_frame_bytes: usize,
    /// Longest chat message, in characters.
    pub max_message_chars: usize,
    /// Model rounds (model call + tool calls) per turn.
    pub max_tool_rounds: usize,
    /// Frames queued for one socket before it counts as a slow consumer.
    pub outbound_queue: usize,
    /// Messages a socket may queue while an earlier turn runs.
    pub turn_queue: usize,
    /// Open sockets per user.
    pub connections_per_user: usize,
    /// Open connections in total, HTTP and websocket (a websocket keeps
    /// the slot of the connection it was upgraded from). More wait in the
    /// listen queue until one closes.
    pub max_connections: usize,
    /// Time allowed for a request's head to arrive, counted from the
    /// connection's opening or its previous answer (so an idle keep-alive
    /// connection closes after it too), and again for its body.
    pub read_timeout_secs: u64,
    /// REST requests per user per minute (token bucket, burst of the same size).
    pub requests_per_minute: u32,
    /// Requests to `/api`, `/ws`, `/act` and `/admin` per client address
    /// per minute (IPv6 addresses counted per /64). Behind a proxy, list it
    /// in `trusted_proxies` so the address comes from `X-Forwarded-For`.
    pub requests_per_minute_per_ip: u32,
    /// Model tokens (prompt and answer) per user per day: a bucket that
    /// refills over 24 hours; a turn starting with it empty is refused
    /// with `quota_exceeded` (plans and reminders keep working).
    pub model_tokens_per_day: u32,
    /// Emails per user per day (digests, reminders); more wait for the
    /// bucket to refill.
    pub emails_per_day: u32,
    /// Chat messages per user per minute (token bucket, burst of the same size).
    pub messages_per_minute: u32,
    /// Conversation entries read for a turn at most (a model turn reads 24
    /// first, and these only when its window needs them); the whole turns
    /// among them are carried to the model or folded into its summary.
    pub history_messages: usize,
    /// Whole turns (a message and everything answering it) sent to the
    /// model with each call, besides the current one.
    pub history_turns: usize,
    /// Longest answer text kept from the model, in characters; the rest is
    /// cut with a note.
    pub max_answer_chars: usize,
    /// Active plans per user.
    pub max_active_plans: usize,
    /// Largest REST request body.
    pub max_body_bytes: usize,
    /// A socket that sends nothing (not even a ping) for this long is closed.
    pub idle_timeout_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 64 * 1024,
            max_message_chars: 8000,
            max_tool_rounds: 8,
            outbound_queue: 256,
            turn_queue: 8,
            connections_per_user: 8,
            max_connections: 10_000,
            read_timeout_secs: 10,
            messages_per_minute: 30,
            model_tokens_per_day: 500_000,
            emails_per_day: 50,
            requests_per_minute: 600,
            requests_per_minute_per_ip: 1200,
            history_messages: 80,
            history_turns: 2,
            max_answer_chars: 8000,
            max_active_plans: 50,
            max_body_bytes: 256 * 1024,
            idle_timeout_secs: 300,
        }
    }
}

impl Limits {
    pub(crate) fn read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.read_timeout_secs)
    }

    /// Every limit is positive.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        for (name, value) in [
            ("limits.max_frame_bytes", self.max_frame_bytes),
            ("limits.max_message_chars", self.max_message_chars),
            ("limits.max_tool_rounds", self.max_tool_rounds),
            ("limits.outbound_queue", self.outbound_queue),
            ("limits.turn_queue", self.turn_queue),
            ("limits.connections_per_user", self.connections_per_user),
            ("limits.max_connections", self.max_connections),
            ("limits.history_messages", self.history_messages),
            ("limits.history_turns", self.history_turns),
            ("limits.max_answer_chars", self.max_answer_chars),
            ("limits.max_active_plans", self.max_active_plans),
            ("limits.max_body_bytes", self.max_body_bytes),
            ("limits.idle_timeout_secs", self.idle_timeout_secs as usize),
            ("limits.read_timeout_secs", self.read_timeout_secs as usize),
            ("limits.messages_per_minute", self.messages_per_minute as usize),
            ("limits.requests_per_minute", self.requests_per_minute as usize),
            ("limits.model_tokens_per_day", self.model_tokens_per_day as usize),
            ("limits.emails_per_day", self.emails_per_day as usize),
            (
                "limits.requests_per_minute_per_ip",
                self.requests_per_minute_per_ip as usize,
            ),
        ] {
            if value == 0 {
                return bad(&format!("{name} must be greater than 0"));
            }
        }
        Ok(())
    }
}
