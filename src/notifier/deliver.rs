//! Delivering the outbox: one attempt per due row, marked `sending`
//! (flushed) before the side effect, so after a crash an interrupted email
//! is sent again with the same Message-ID, never a second distinct copy.
//! Transient failures back off with jitter (never below a peer's
//! Retry-After); permanent ones fail the row.

use super::Notifier;
use crate::channels::MAX_RETRY_AFTER;
use crate::channels::mailer::SendError;
use crate::channels::webhook;
use crate::config::NotifyConfig;
use crate::notification::{Email, OutboxItem, OutboxStatus, Payload};
use crate::store::StoreError;
use crate::user::UserId;
use rand::Rng;
use secrecy::ExposeSecret;
use std::time::Duration;
use tracing::Instrument;

/// Retry and timeout policy for side effects.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DeliveryPolicy {
    /// Attempts before an item is marked failed.
    pub(crate) max_attempts: u32,
    /// First retry delay; doubles per attempt, with jitter, up to `max_backoff`.
    pub(crate) retry_base: Duration,
    pub(crate) max_backoff: Duration,
    /// Longest single send (an SMTP conversation, an HTTP request).
    pub(crate) send_timeout: Duration,
    /// Emails to one user per day (`limits.emails_per_day`).
    pub(crate) emails_per_day: u32,
}

impl From<&NotifyConfig> for DeliveryPolicy {
    fn from(c: &NotifyConfig) -> DeliveryPolicy {
        DeliveryPolicy {
            max_attempts: c.max_attempts,
            retry_base: Duration::from_millis(c.retry_base_ms),
            max_backoff: Duration::from_secs(3600),
            send_timeout: Duration::from_secs(c.send_timeout_secs),
            emails_per_day: u32::MAX,
        }
    }
}

impl DeliveryPolicy {
    /// Delay before attempt `attempts + 1`: exponential with full jitter
    /// over the upper half, never below a peer's Retry-After.
    pub(crate) fn backoff(&self, attempts: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .retry_base
            .saturating_mul(1u32 << attempts.saturating_sub(1).min(16))
            .min(self.max_backoff);
        let jittered = exp / 2 + exp.mul_f64(rand::rng().random::<f64>() / 2.0);
        // A peer's Retry-After is honoured up to a day, never more.
        jittered.max(retry_after.unwrap_or_default().min(MAX_RETRY_AFTER))
    }
}

impl Notifier {
    pub(super) async fn attempt(&self, item: OutboxItem) -> Result<OutboxStatus, StoreError> {
        let span =
            tracing::info_span!("deliver", user_id = %item.user, outbox = %item.id, channel = item.payload.channel());
        self.attempt_inner(item).instrument(span).await
    }

    // Long: one attempt read top to bottom: the budget, the row marked
    // sending, the channel's send, the outcome recorded.
    async fn attempt_inner(&self, mut item: OutboxItem) -> Result<OutboxStatus, StoreError> {
        if let Some(wait) = self.over_email_budget(&item).await? {
            // Not an attempt: the row waits for the user's bucket to refill.
            item.next_attempt_at = (self.clock)() + chrono::Duration::from_std(wait).unwrap_or_default();
            tracing::info!(
                wait_secs = wait.as_secs(),
                "the user's emails for today are used up; waiting"
            );
            self.store.save_outbox(&item).await?;
            return Ok(item.status);
        }
        item.status = OutboxStatus::Sending;
        item.attempts += 1;
        item.next_attempt_at = (self.clock)();
        // Recorded before the side effect: an attempt interrupted by a crash
        // is found in `sending` and repeated with the same identity.
        self.store.save_outbox(&item).await?;
        let timeout = self.policy.send_timeout;
        let result = match &item.payload {
            Payload::Email(email) if users_mail(&item) && !self.still_wanted(&item.user, email).await? => Err(
                SendError::Permanent("the user turned email off or changed address since".into()),
            ),
            Payload::Email(email) => self.mailer.send(email, &self.mail.from, timeout).await,
            Payload::Push { subscription, .. }
                if !self
                    .store
                    .push_subscriptions(&item.user)
                    .await?
                    .iter()
                    .any(|s| s.endpoint == subscription.endpoint) =>
            {
                Err(SendError::Permanent(
                    "the browser was unsubscribed or is now another user's".into(),
                ))
            }
            Payload::Push { subscription, body } => match &self.pusher {
                Some(p) => p.send(subscription, body, timeout).await,
                None => Err(SendError::Permanent("web push is not configured".into())),
            },
            Payload::Webhook { url, body } => match self.webhooks.iter().find(|w| &w.url == url) {
                Some(hook) => {
                    let now = (self.clock)().timestamp();
                    webhook::send(&self.http, url, hook.secret.expose_secret(), body, now, timeout).await
                }
                None => Err(SendError::Permanent("webhook no longer configured".into())),
            },
        };
        match result {
            Ok(()) => {
                item.status = OutboxStatus::Sent;
                item.last_error = None;
                tracing::info!(attempts = item.attempts, "delivered");
            }
            Err(SendError::Transient { message, retry_after }) if item.attempts < self.policy.max_attempts => {
                let delay = self.policy.backoff(item.attempts, retry_after);
                item.status = OutboxStatus::Pending;
                item.next_attempt_at = (self.clock)() + chrono::Duration::from_std(delay).unwrap_or_default();
                tracing::warn!(error = %message, retry_in_ms = delay.as_millis() as u64, "delivery failed; will retry");
                item.last_error = Some(message);
            }
            Err(e) => {
                if let (SendError::Gone, Payload::Push { subscription, .. }) = (&e, &item.payload) {
                    self.store
                        .remove_push_subscription(&item.user, &subscription.endpoint)
                        .await?;
                    tracing::info!("push subscription expired; removed");
                }
                tracing::warn!(error = %e, attempts = item.attempts, "delivery failed for good");
                item.status = OutboxStatus::Failed;
                item.last_error = Some(e.to_string());
            }
        }
        count_delivery(self.service.metrics(), &item);
        self.store.save_outbox(&item).await?;
        Ok(item.status)
    }

    /// Takes one of the user's emails for the day before an email's first
    /// attempt (a retry or a resend after a crash is the same email); the
    /// wait when there is none left. Verifications and operator alerts are
    /// not the user's mail and are not counted.
    async fn over_email_budget(&self, item: &OutboxItem) -> Result<Option<Duration>, StoreError> {
        let counted = matches!(item.payload, Payload::Email(_)) && item.attempts == 0 && users_mail(item);
        if !counted {
            return Ok(None);
        }
        let budget = crate::store::Budget::per_day(self.policy.emails_per_day);
        let taken = self
            .store
            .spend(
                &format!("email:{}", item.user),
                budget,
                crate::store::Spend::Take(1.0),
                (self.clock)(),
            )
            .await?;
        Ok(taken.err())
    }

    /// Whether `email` may still go out: a queued or retrying mail is
    /// dropped if the user unsubscribed or changed address meanwhile.
    async fn still_wanted(&self, user: &UserId, email: &Email) -> Result<bool, StoreError> {
        let prefs = self.service.preferences(user).await?;
        Ok(prefs.deliverable_email() == Some(email.to.as_str()))
    }
}

/// Counts one delivery attempt in `steward_deliveries_total`.
fn count_delivery(metrics: &crate::metrics::Metrics, item: &OutboxItem) {
    let outcome = match item.status {
        OutboxStatus::Sent => "sent",
        OutboxStatus::Failed => "failed",
        _ => "retry",
    };
    let label = crate::metrics::ChannelOutcome {
        channel: item.payload.channel().into(),
        outcome: outcome.into(),
    };
    metrics.deliveries.get_or_create(&label).inc();
}

/// Whether an outbox row is mail to the user as the user wants it: a
/// verification goes to an address not yet confirmed and an operator's
/// alert to the operator, so neither is checked against the user's
/// preferences nor counted against the user's daily emails.
fn users_mail(item: &OutboxItem) -> bool {
    !item.key.starts_with("verify:") && !item.key.starts_with("stalled:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_honours_retry_after() {
        let p = DeliveryPolicy {
            max_attempts: 8,
            retry_base: Duration::from_secs(10),
            max_backoff: Duration::from_secs(60),
            send_timeout: Duration::from_secs(5),
            emails_per_day: 50,
        };
        for (attempts, lo, hi) in [(1, 5, 10), (2, 10, 20), (3, 20, 40), (6, 30, 60)] {
            let d = p.backoff(attempts, None);
            assert!(
                d >= Duration::from_secs(lo) && d <= Duration::from_secs(hi),
                "{attempts}: {d:?}"
            );
        }
        assert_eq!(p.backoff(1, Some(Duration::from_secs(120))), Duration::from_secs(120));
    }
}
