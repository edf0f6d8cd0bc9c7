//! A configured model words each notification (the person's plans in its
//! system prompt, no tools, a bounded wait); when it fails or stalls the
//! offline wording goes out instead.

use super::Notifier;
use crate::conversation::Message;
use crate::llm::{ChatModel, ModelRequest};
use crate::notification::Notification;
use crate::prompts::Facts;
use crate::user::UserId;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::sync::Arc;
use std::time::Duration;

impl Notifier {
    /// The configured model's wording of a notification, with the user's
    /// plans in the system prompt; `None` (keep the offline wording) if it
    /// fails, stalls, or answers with anything but text.
    pub(super) async fn phrase(
        &self,
        model: &dyn ChatModel,
        user: &UserId,
        n: &Notification,
        tz: Tz,
        now: DateTime<Utc>,
        budget: Duration,
    ) -> Option<String> {
        let plans = match self.service.active_plans(user).await {
            Ok(plans) => plans,
            Err(e) => {
                tracing::warn!(error = %e, "could not load plans for the wording");
                return None;
            }
        };
        let local = now.with_timezone(&tz);
        let system = self
            .prompts
            .system(&Facts {
                plans: &plans,
                finished: &[],
                summary: None,
                now: local,
            })
            .ok()?;
        let kind = serde_json::to_value(n.kind).ok()?;
        let event = self.prompts.notification(kind.as_str()?, &n.text).ok()?;
        let request = ModelRequest {
            system,
            messages: vec![Message::User { text: event, id: None }],
            tools: Arc::new([]),
        };
        let sink = |_: &str| {};
        match tokio::time::timeout(self.word_timeout.min(budget), model.complete(&request, &sink)).await {
            Ok(Ok(answer)) if answer.tool_calls.is_empty() && !answer.text.trim().is_empty() => {
                Some(answer.text.trim().chars().take(1000).collect())
            }
            Ok(Ok(_)) => {
                tracing::warn!("the model's wording was empty or a tool call; using the offline wording");
                None
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the model could not word a notification; using the offline wording");
                None
            }
            Err(_) => {
                tracing::warn!("the model did not word a notification in time; using the offline wording");
                None
            }
        }
    }
}
