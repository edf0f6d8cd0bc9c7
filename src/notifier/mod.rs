//! The notifier: routes each queued notification (quiet hours → the user's
//! open sockets → web push → email → the inbox) and drains the outbox.
//! Every outbox row is stored, with its idempotency key, before it is
//! attempted; an attempt is marked `sending` (flushed) before the side
//! effect, so after a crash an interrupted email is sent again with the
//! same Message-ID, never a second distinct copy.

pub mod digest;

use crate::channels::email::Mail;
use crate::channels::links::Links;
use crate::channels::mailer::{Mailer, SendError};
use crate::channels::push::{MAX_PAYLOAD, Pusher};
use crate::channels::{MAX_RETRY_AFTER, egress, webhook};
use crate::clock::Clock;
use crate::config::{NotifyConfig, WebhookConfig};
use crate::conversation::{Entry, Message};
use crate::events::{Event, Publisher, Written};
use crate::notification::{Channel, Notification, NotificationKind, OutboxItem, OutboxStatus, Payload};
use crate::service::Service;
use crate::store::{Store, StoreError};
use crate::user::UserId;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use futures::StreamExt;
use rand::Rng;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Notifications read per pass.
const ROUTE_BATCH: usize = 256;
/// Users whose notifications are routed at once (each user's in order).
const CONCURRENT_ROUTES: usize = 8;
/// Model time for wording, in total, per pass: once it is spent the rest
/// of the pass uses the offline wording, so a slow model cannot hold a
/// pass (and the copies it read) for minutes.
const WORDING_BUDGET: Duration = Duration::from_secs(30);

/// Retry and timeout policy for side effects.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeliveryPolicy {
    /// Attempts before an item is marked failed.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt, with jitter, up to `max_backoff`.
    pub retry_base: Duration,
    pub max_backoff: Duration,
    /// Longest single send (an SMTP conversation, an HTTP request).
    pub send_timeout: Duration,
}

impl From<&NotifyConfig> for DeliveryPolicy {
    fn from(c: &NotifyConfig) -> DeliveryPolicy {
        DeliveryPolicy {
            max_attempts: c.max_attempts,
            retry_base: Duration::from_millis(c.retry_base_ms),
            max_backoff: Duration::from_secs(3600),
            send_timeout: Duration::from_secs(c.send_timeout_secs),
        }
    }
}

impl DeliveryPolicy {
    /// Delay before attempt `attempts + 1`: exponential with full jitter
    /// over the upper half, never below a peer's Retry-After.
    pub fn backoff(&self, attempts: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .retry_base
            .saturating_mul(1u32 << attempts.saturating_sub(1).min(16))
            .min(self.max_backoff);
        let jittered = exp / 2 + exp.mul_f64(rand::rng().random::<f64>() / 2.0);
        // A peer's Retry-After is honoured up to a day, never more.
        jittered.max(retry_after.unwrap_or_default().min(MAX_RETRY_AFTER))
    }
}

pub struct Notifier {
    pub store: Arc<dyn Store>,
    /// Preferences, time zones and plans, read by the service's rules.
    pub service: Service,
    /// The user's open sockets.
    pub hub: Arc<dyn Publisher>,
    pub mail: Arc<Mail>,
    pub mailer: Mailer,
    pub pusher: Option<Pusher>,
    pub links: Links,
    pub webhooks: Vec<WebhookConfig>,
    pub http: egress::Client,
    pub policy: DeliveryPolicy,
    pub clock: Clock,
    /// A configured model phrases notifications (the offline wording is
    /// the fallback); the offline engine's own wording is used as is.
    pub model: Option<Arc<dyn crate::llm::ChatModel>>,
    pub prompts: Arc<crate::prompts::Prompts>,
    /// Longest wait for the model's wording.
    pub word_timeout: Duration,
    /// How long finished records are kept (pruned daily).
    pub retention: chrono::Duration,
    /// Poked when something new may be ready to route or send.
    pub wake: Arc<tokio::sync::Notify>,
    /// The server's tasks: marking notifications seen once a socket has
    /// written them runs as one.
    pub tasks: TaskTracker,
}

/// What one pass did (tests and logs).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub routed: usize,
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
}

impl Notifier {
    /// Runs until `shutdown`: a pass whenever woken, at least every 500 ms.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut last_prune: Option<DateTime<Utc>> = None;
        loop {
            // A pass stopped midway is safe: every attempt was marked
            // `sending` before it started and is repeated with the same
            // identity after a restart.
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                passed = self.pass() => if let Err(e) = passed {
                    tracing::error!(error = %e, "notifier pass failed");
                },
            }
            let now = (self.clock)();
            if last_prune.is_none_or(|at| now - at >= chrono::Duration::days(1)) {
                last_prune = Some(now);
                match self.store.prune(now - self.retention).await {
                    Ok(p) => tracing::info!(
                        fired = p.fired,
                        notifications = p.notifications,
                        outbox = p.outbox,
                        "pruned old records"
                    ),
                    Err(e) => tracing::error!(error = %e, "pruning failed"),
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// Routes what is due and attempts what is due in the outbox.
    pub async fn pass(&self) -> Result<Pass, StoreError> {
        let mut pass = Pass::default();
        let now = (self.clock)();
        // Each user's notifications in order, users side by side. One
        // item's failure must not hold up everyone else's: each is logged
        // and stays queued for the next pass.
        let mut by_user: Vec<(UserId, Vec<Notification>)> = Vec::new();
        for (user, n) in self.store.due_notifications(now, ROUTE_BATCH).await? {
            match by_user.iter_mut().find(|(u, _)| *u == user) {
                Some((_, list)) => list.push(n),
                None => by_user.push((user, vec![n])),
            }
        }
        let wording_ends = Instant::now() + WORDING_BUDGET;
        pass.routed = futures::stream::iter(by_user)
            .map(|(user, list)| async move {
                let mut routed = 0;
                for n in list {
                    match self.route(&user, n, wording_ends).await {
                        Ok(true) => routed += 1,
                        Ok(false) => {
                            tracing::debug!(user_id = %user, "notification changed while routing; routed again next pass");
                            self.wake.notify_one();
                        }
                        Err(e) => tracing::error!(user_id = %user, error = %e, "could not route a notification"),
                    }
                }
                routed
            })
            .buffer_unordered(CONCURRENT_ROUTES)
            .fold(0, |total, routed| async move { total + routed })
            .await;
        for item in self.store.due_outbox((self.clock)(), 64).await? {
            let id = item.id.clone();
            match self.attempt(item).await {
                Ok(OutboxStatus::Sent) => pass.sent += 1,
                Ok(OutboxStatus::Failed) => pass.failed += 1,
                Ok(OutboxStatus::Pending | OutboxStatus::Sending) => pass.retried += 1,
                Err(e) => tracing::error!(outbox = %id, error = %e, "could not record a delivery attempt"),
            }
        }
        Ok(pass)
    }

    /// Routes one notification; `false` if it changed meanwhile (nothing
    /// recorded: it is routed again from the stored state).
    async fn route(&self, user: &UserId, n: Notification, wording_ends: Instant) -> Result<bool, StoreError> {
        let span = tracing::info_span!("route", user_id = %user, notification = %n.id);
        self.route_inner(user, n, wording_ends).instrument(span).await
    }

    async fn route_inner(&self, user: &UserId, mut n: Notification, wording_ends: Instant) -> Result<bool, StoreError> {
        let now = (self.clock)();
        // The event becomes part of the conversation (once, in the same
        // transaction that records the routing), so the model and the
        // person see it in context later.
        let transcript = |n: &Notification| {
            n.routed.is_none().then(|| Entry {
                at: now,
                message: Message::Assistant {
                    text: n.text.clone(),
                    tool_calls: vec![],
                    notification: Some(n.id.clone()),
                },
            })
        };
        if n.seen {
            // Shown in `ready` meanwhile, i.e. on a socket: nothing left to deliver.
            let entry = transcript(&n);
            n.routed.get_or_insert(Channel::Socket);
            return self.store.route_notification(user, &n, vec![], None, entry).await;
        }
        let prefs = self.service.preferences(user).await?;
        let tz = self.service.tz_of(&prefs);
        if !n.urgent
            && let Some(end) = prefs.quiet_hours.and_then(|q| q.ends_after(now, tz))
        {
            tracing::debug!(until = %end, "quiet hours: notification waits");
            return self.store.route_notification(user, &n, vec![], Some(end), None).await;
        }
        if n.routed.is_none()
            && let Some(model) = &self.model
        {
            let budget = wording_ends.saturating_duration_since(Instant::now());
            if budget.is_zero() {
                tracing::debug!("wording budget of this pass spent; using the offline wording");
            } else if let Some(text) = self.phrase(model.as_ref(), user, &n, tz, now, budget).await {
                n.text = text;
            }
        }
        let transcript = transcript(&n);
        let mut outbox = Vec::new();
        let subs = if prefs.channels.push && self.pusher.is_some() {
            self.store.push_subscriptions(user).await?
        } else {
            Vec::new()
        };
        // Missed-while-offline notices are listed in the next digest; they
        // go to an open socket or wait in the inbox, never push or email.
        let quiet_kind = n.kind == NotificationKind::Missed;
        // An open socket gets it after the routing is recorded, and it
        // counts as seen only once a socket has written it.
        let channel = if self.hub.is_online(user) {
            Channel::Socket
        } else if quiet_kind {
            Channel::Inbox
        } else if !subs.is_empty() {
            let body = push_body(&n, &self.links);
            for sub in subs {
                let hash = Sha256::digest(sub.endpoint.as_bytes());
                let tag: String = hash[..6].iter().map(|b| format!("{b:02x}")).collect();
                outbox.push(OutboxItem::new(
                    user,
                    format!("notify:{user}:{}:push:{tag}", n.id),
                    Payload::Push {
                        subscription: sub,
                        body: body.clone(),
                    },
                    now,
                ));
            }
            Channel::Push
        } else if let Some(to) = prefs.deliverable_email() {
            match self
                .mail
                .notification(&n, to, &self.links.widget(), &self.links.unsubscribe(user))
            {
                Ok(email) => {
                    outbox.push(OutboxItem::new(
                        user,
                        format!("notify:{user}:{}:email", n.id),
                        Payload::Email(email),
                        now,
                    ));
                    Channel::Email
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not render the notification email");
                    Channel::Inbox
                }
            }
        } else {
            Channel::Inbox
        };
        for (i, hook) in self.webhooks.iter().enumerate() {
            let body = serde_json::json!({
                "event": "notification",
                "user": user.as_str(),
                "channel": channel,
                "notification": n.view(),
            });
            outbox.push(OutboxItem::new(
                user,
                format!("webhook:{i}:{user}:{}", n.id),
                Payload::Webhook {
                    url: hook.url.clone(),
                    body: body.to_string(),
                },
                now,
            ));
        }
        n.routed = Some(channel);
        if !self
            .store
            .route_notification(user, &n, outbox, None, transcript)
            .await?
        {
            return Ok(false);
        }
        tracing::info!(channel = ?channel, "notification routed");
        if channel == Channel::Socket {
            match self.hub.publish_tracked(user, Event::Notification(n.view())) {
                Some(written) => mark_seen_when_written(&self.tasks, &self.store, user, vec![n.id.clone()], written),
                None => tracing::info!("the socket closed meanwhile; the notification waits for the next ready"),
            }
        }
        self.wake.notify_one();
        Ok(true)
    }

    /// One attempt at one outbox item; returns its new status.
    async fn attempt(&self, item: OutboxItem) -> Result<OutboxStatus, StoreError> {
        let span =
            tracing::info_span!("deliver", user_id = %item.user, outbox = %item.id, channel = item.payload.channel());
        self.attempt_inner(item).instrument(span).await
    }

    async fn attempt_inner(&self, mut item: OutboxItem) -> Result<OutboxStatus, StoreError> {
        item.status = OutboxStatus::Sending;
        item.attempts += 1;
        item.next_attempt_at = (self.clock)();
        // Recorded before the side effect: an attempt interrupted by a crash
        // is found in `sending` and repeated with the same identity.
        self.store.save_outbox(&item).await?;
        let timeout = self.policy.send_timeout;
        let result = match &item.payload {
            Payload::Email(email)
                if !item.key.starts_with("verify:") && !self.still_wanted(&item.user, email).await? =>
            {
                Err(SendError::Permanent(
                    "the user turned email off or changed address since".into(),
                ))
            }
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
        self.store.save_outbox(&item).await?;
        Ok(item.status)
    }
}

impl Notifier {
    /// The configured model's wording of a notification, with the user's
    /// plans in the system prompt; `None` (keep the offline wording) if it
    /// fails, stalls, or answers with anything but text.
    async fn phrase(
        &self,
        model: &dyn crate::llm::ChatModel,
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
        let system = self.prompts.system(user.as_str(), &plans, local).ok()?;
        let event = format!(
            "[steward scheduler event; the person did not write this]\n{}: {}\n\
             Write the message steward sends the person about this event: one or two short, concrete sentences. Do not call tools.",
            serde_json::to_value(n.kind).ok()?.as_str()?,
            n.text
        );
        let request = crate::llm::ModelRequest {
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

    /// Whether `email` may still go out: a queued or retrying mail is
    /// dropped if the user unsubscribed or changed address meanwhile.
    async fn still_wanted(&self, user: &UserId, email: &crate::notification::Email) -> Result<bool, StoreError> {
        let prefs = self.service.preferences(user).await?;
        Ok(prefs.deliverable_email() == Some(email.to.as_str()))
    }
}

/// Marks notifications seen once `written` says a socket has shown them;
/// if every socket closed first they stay unseen, so the next `ready`
/// carries them (a crash in between shows them again, never loses them).
pub fn mark_seen_when_written(
    tasks: &TaskTracker,
    store: &Arc<dyn Store>,
    user: &UserId,
    ids: Vec<String>,
    written: Written,
) {
    let (store, user) = (store.clone(), user.clone());
    tasks.spawn(
        async move {
            if !written.await {
                tracing::info!(
                    ?ids,
                    "the socket closed before showing notifications; they wait for the next ready"
                );
                return;
            }
            if let Err(e) = store.mark_seen(&user, &ids).await {
                tracing::warn!(error = %e, "could not mark notifications seen");
            }
        }
        .in_current_span(),
    );
}

/// What a service worker receives: small JSON, text cut to fit one record.
fn push_body(n: &Notification, links: &Links) -> String {
    let mut text: String = n.text.chars().take(1000).collect();
    loop {
        let body = serde_json::json!({
            "title": "steward",
            "body": text,
            "id": n.id,
            "kind": n.kind,
            "plan_id": n.plan_id,
            "url": links.widget(),
        })
        .to_string();
        if body.len() <= MAX_PAYLOAD || text.is_empty() {
            return body;
        }
        text = text.chars().take(text.chars().count() / 2).collect();
    }
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
