//! Routing one notification: quiet hours first (non-urgent ones wait),
//! then the user's open sockets, web push, email, or the inbox. The
//! decision ([`choose_channel`]) is pure; the outbox rows that carry it are
//! recorded with the routing in one transaction, and the event is added to
//! the conversation once.

use super::{Notifier, mark_seen_when_written};
use crate::channels::links::{Links, StepAction};
use crate::channels::push::MAX_PAYLOAD;
use crate::conversation::{Entry, Message};
use crate::events::Event;
use crate::notification::{Channel, Notification, NotificationKind, OutboxItem, Payload, PushSubscription};
use crate::preferences::Preferences;
use crate::store::StoreError;
use crate::user::UserId;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tracing::Instrument;

/// Who can be reached right now, for one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Reach {
    /// A socket of the user is open.
    pub(crate) online: bool,
    /// The user has push subscriptions and push is on for them.
    pub(crate) push: bool,
    /// The user has a verified address and email is on.
    pub(crate) email: bool,
}

/// Where a notification goes. An open socket first (it counts as seen only
/// once written); missed-while-offline notices are listed in the next
/// digest, so they go to a socket or wait in the inbox, never push or
/// email; then push, then email; else the inbox, for the next `ready`.
pub(super) fn choose_channel(kind: NotificationKind, reach: Reach) -> Channel {
    if reach.online {
        Channel::Socket
    } else if kind == NotificationKind::Missed {
        Channel::Inbox
    } else if reach.push {
        Channel::Push
    } else if reach.email {
        Channel::Email
    } else {
        Channel::Inbox
    }
}

impl Notifier {
    /// Routes one notification; `false` if it changed meanwhile (nothing
    /// recorded: it is routed again from the stored state).
    pub(super) async fn route(
        &self,
        user: &UserId,
        n: Notification,
        wording_ends: Instant,
    ) -> Result<bool, StoreError> {
        let span = tracing::info_span!("route", user_id = %user, notification = %n.id);
        self.route_inner(user, n, wording_ends).instrument(span).await
    }

    async fn route_inner(&self, user: &UserId, mut n: Notification, wording_ends: Instant) -> Result<bool, StoreError> {
        let now = (self.clock)();
        if n.seen {
            // Shown in `ready` meanwhile, i.e. on a socket: nothing left to deliver.
            let entry = transcript(&n, now);
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
        let subs = if prefs.channels.push && self.pusher.is_some() {
            self.store.push_subscriptions(user).await?
        } else {
            Vec::new()
        };
        let reach = Reach {
            online: self.hub.is_online(user).await,
            push: !subs.is_empty(),
            email: prefs.deliverable_email().is_some(),
        };
        let channel = choose_channel(n.kind, reach);
        let actions = match channel {
            Channel::Push | Channel::Email => self.step_actions(user, &n).await?,
            Channel::Socket | Channel::Inbox => Vec::new(),
        };
        let (channel, mut outbox) = self.carriers(user, &n, &prefs, (channel, &actions), subs, now);
        outbox.extend(self.webhook_rows(user, &n, channel, now));
        let entry = transcript(&n, now);
        n.routed = Some(channel);
        if !self.store.route_notification(user, &n, outbox, None, entry).await? {
            return Ok(false);
        }
        tracing::info!(channel = ?channel, "notification routed");
        let label = crate::metrics::ChannelOutcome {
            channel: channel_name(channel).into(),
            outcome: "routed".into(),
        };
        self.service.metrics().notifications.get_or_create(&label).inc();
        if channel == Channel::Socket {
            match self.hub.publish_tracked(user, Event::Notification(n.view())) {
                Some(written) => mark_seen_when_written(&self.tasks, &self.store, user, vec![n.id.clone()], written),
                None => tracing::info!(
                    "no socket here took it; another instance's marks it seen once written, else the next ready carries it"
                ),
            }
        }
        self.wake.notify_one();
        Ok(true)
    }

    /// The outbox rows that carry `n` on `channel` (push to every
    /// subscribed browser, or the email); an email that cannot be rendered
    /// leaves it in the inbox.
    fn carriers(
        &self,
        user: &UserId,
        n: &Notification,
        prefs: &Preferences,
        (channel, actions): (Channel, &[Action]),
        subs: Vec<PushSubscription>,
        now: DateTime<Utc>,
    ) -> (Channel, Vec<OutboxItem>) {
        match channel {
            Channel::Push => {
                let body = push_body(n, &self.links, actions);
                let rows = subs
                    .into_iter()
                    .map(|sub| {
                        let hash = Sha256::digest(sub.endpoint.as_bytes());
                        let tag: String = hash[..6].iter().map(|b| format!("{b:02x}")).collect();
                        let payload = Payload::Push {
                            subscription: sub,
                            body: body.clone(),
                        };
                        OutboxItem::new(user, format!("notify:{user}:{}:push:{tag}", n.id), payload, now)
                    })
                    .collect();
                (Channel::Push, rows)
            }
            Channel::Email => {
                let Some(to) = prefs.deliverable_email() else {
                    return (Channel::Inbox, Vec::new());
                };
                let (widget, unsubscribe) = (self.links.widget(), self.links.unsubscribe(user));
                match self.mail.notification(n, to, (&widget, &unsubscribe), actions) {
                    Ok(email) => {
                        let key = format!("notify:{user}:{}:email", n.id);
                        (
                            Channel::Email,
                            vec![OutboxItem::new(user, key, Payload::Email(email), now)],
                        )
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "could not render the notification email");
                        (Channel::Inbox, Vec::new())
                    }
                }
            }
            Channel::Socket | Channel::Inbox => (channel, Vec::new()),
        }
    }

    /// The one-click actions on the notification's step, as it is now:
    /// done, and a day later when it has a date. None for a step that is
    /// finished or gone.
    async fn step_actions(&self, user: &UserId, n: &Notification) -> Result<Vec<Action>, StoreError> {
        let (Some(plan_id), Some(step_id)) = (n.plan_id, n.step_id.as_deref()) else {
            return Ok(Vec::new());
        };
        let Some(plan) = self.store.get_plan(user, plan_id).await? else {
            return Ok(Vec::new());
        };
        // Done and snooze are for a step someone still has to do (a failed
        // one is retried or skipped in the chat).
        let Some(step) = plan.step(step_id).filter(|s| {
            matches!(
                s.status,
                crate::plan::StepStatus::Pending | crate::plan::StepStatus::InProgress
            )
        }) else {
            return Ok(Vec::new());
        };
        let (plan, state) = (plan_id.to_string(), step.state_tag());
        let mut actions = vec![Action {
            name: "done",
            title: "Done",
            url: self.links.step_action(user, &plan, step_id, StepAction::Done, &state),
        }];
        if step.due_at.is_some() {
            actions.push(Action {
                name: "snooze",
                title: "Snooze a day",
                url: self.links.step_action(user, &plan, step_id, StepAction::Snooze, &state),
            });
        }
        Ok(actions)
    }

    /// Every configured webhook gets the event, whatever the channel.
    fn webhook_rows(&self, user: &UserId, n: &Notification, channel: Channel, now: DateTime<Utc>) -> Vec<OutboxItem> {
        self.webhooks
            .iter()
            .enumerate()
            .map(|(i, hook)| {
                let body = serde_json::json!({
                    "event": "notification",
                    "user": user.as_str(),
                    "channel": channel,
                    "notification": n.view(),
                });
                let payload = Payload::Webhook {
                    url: hook.url.clone(),
                    body: body.to_string(),
                };
                OutboxItem::new(user, format!("webhook:{i}:{user}:{}", n.id), payload, now)
            })
            .collect()
    }
}

/// The event as part of the conversation (once, in the transaction that
/// records the routing), so the model and the person see it in context.
fn transcript(n: &Notification, now: DateTime<Utc>) -> Option<Entry> {
    n.routed.is_none().then(|| Entry {
        at: now,
        message: Message::Assistant {
            text: n.text.clone(),
            tool_calls: vec![],
            notification: Some(n.id.clone()),
        },
    })
}

fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Socket => "socket",
        Channel::Push => "push",
        Channel::Email => "email",
        Channel::Inbox => "inbox",
    }
}

/// A one-click action offered with a notification: a signed link that
/// opens a page to confirm it.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Action {
    pub name: &'static str,
    pub title: &'static str,
    pub url: String,
}

/// What a service worker receives: small JSON, text cut to fit one record;
/// with the step's one-click actions (`actions` for the notification's
/// buttons, `urls` for where each leads).
fn push_body(n: &Notification, links: &Links, actions: &[Action]) -> String {
    let mut text: String = n.text.chars().take(1000).collect();
    let buttons: Vec<_> = actions
        .iter()
        .map(|a| serde_json::json!({"action": a.name, "title": a.title}))
        .collect();
    let urls: serde_json::Map<String, serde_json::Value> = actions
        .iter()
        .map(|a| (a.name.to_owned(), serde_json::Value::from(a.url.clone())))
        .collect();
    loop {
        let body = serde_json::json!({
            "title": "steward",
            "body": text,
            "id": n.id,
            "kind": n.kind,
            "plan_id": n.plan_id,
            "url": links.widget(),
            "actions": buttons,
            "urls": urls,
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
    fn a_socket_comes_first_missed_notices_never_leave_the_inbox_then_push_then_email() {
        let reach = |online, push, email| Reach { online, push, email };
        let cases = [
            (NotificationKind::Reminder, reach(true, true, true), Channel::Socket),
            (NotificationKind::Missed, reach(true, true, true), Channel::Socket),
            (NotificationKind::Missed, reach(false, true, true), Channel::Inbox),
            (NotificationKind::DueSoon, reach(false, true, true), Channel::Push),
            (NotificationKind::Overdue, reach(false, false, true), Channel::Email),
            (NotificationKind::Idle, reach(false, false, false), Channel::Inbox),
        ];
        for (kind, reach, want) in cases {
            assert_eq!(choose_channel(kind, reach), want, "{kind:?} {reach:?}");
        }
    }
}
