//! Making one call: the arguments are checked against the tool's schema
//! first (nothing runs on arguments it refuses); a declared tool is called
//! over HTTP; the built-in ones act inside steward, each keyed by the
//! attempt's idempotency key so a repeated call has no second effect: the
//! email is an outbox row under that key, the reminder a trigger with that
//! id, the calendar event stored under it.

use super::Executor;
use crate::actions::http::{CallError, Request};
use crate::actions::{Builtin, Kind};
use crate::execution::{Attempt, CalendarEvent, ErrorClass};
use crate::notification::{OutboxItem, Payload};
use crate::plan::Actor;
use crate::service::ServiceError;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use reqwest::header::HeaderName;
use serde_json::{Value, json};

fn store_failed(e: impl std::fmt::Display) -> CallError {
    CallError::new(ErrorClass::Transient, format!("steward could not record it: {e}"))
}

/// `RFC 3339`, or a day (09:00 in the user's zone).
fn moment(text: &str, tz: Tz) -> Result<DateTime<Utc>, CallError> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|day| crate::plan::due_on(day, tz))
        .map_err(|_| CallError::new(ErrorClass::User, format!("`{text}` is not a date or a time")))
}

fn text<'a>(args: &'a Value, key: &str) -> &'a str {
    args.get(key).and_then(Value::as_str).unwrap_or_default()
}

impl Executor {
    /// One call for `attempt`, classified.
    pub(super) async fn call(&self, attempt: &Attempt) -> Result<Value, CallError> {
        let Some(action) = self.actions.get(&attempt.tool) else {
            return Err(CallError::new(
                ErrorClass::Permanent,
                format!("the tool {} is not configured any more", attempt.tool),
            ));
        };
        action
            .check_args(&attempt.args)
            .map_err(|e| CallError::new(ErrorClass::User, e.to_string()))?;
        match &action.kind {
            Kind::Http(tool) => {
                self.caller
                    .declared(tool, &attempt.args, &attempt.key, action.timeout)
                    .await
            }
            Kind::Builtin(Builtin::SendEmail) => self.send_email(attempt).await,
            Kind::Builtin(Builtin::ScheduleReminder) => self.schedule_reminder(attempt).await,
            Kind::Builtin(Builtin::CreateCalendarEvent) => self.calendar_event(attempt).await,
            Kind::Builtin(Builtin::HttpRequest) => self.http_request(attempt, action.timeout).await,
        }
    }

    async fn send_email(&self, attempt: &Attempt) -> Result<Value, CallError> {
        let prefs = self.store.preferences(&attempt.user).await.map_err(store_failed)?;
        let Some(to) = prefs.deliverable_email() else {
            return Err(CallError::new(
                ErrorClass::User,
                "I have no confirmed email address for you; tell me one (\u{201c}my email is …\u{201d}) and open the link I send",
            ));
        };
        let links = (self.links.widget(), self.links.unsubscribe(&attempt.user));
        let email = self
            .mail
            .step_email(
                to,
                text(&attempt.args, "subject"),
                text(&attempt.args, "body"),
                &attempt.key,
                (&links.0, &links.1),
            )
            .map_err(|e| CallError::new(ErrorClass::Permanent, e.to_string()))?;
        let item = OutboxItem::new(&attempt.user, attempt.key.clone(), Payload::Email(email), self.now());
        self.store.enqueue(vec![item]).await.map_err(store_failed)?;
        self.service.wake_notifier();
        Ok(json!(format!("emailed to {to}")))
    }

    async fn schedule_reminder(&self, attempt: &Attempt) -> Result<Value, CallError> {
        let session = self.service.session(&attempt.user, Actor::Tool).await;
        let at = moment(text(&attempt.args, "at"), session.tz)?;
        let id = format!("remind:{}", attempt.key);
        let reminder = self
            .service
            .remind_as(&session, id, text(&attempt.args, "text"), at.fixed_offset(), false)
            .await
            .map_err(|e| match e {
                ServiceError::Refused(r) => CallError::new(ErrorClass::User, r.to_string()),
                ServiceError::Failed(f) => store_failed(f),
            })?;
        let local = reminder.fire_at.with_timezone(&session.tz);
        Ok(json!(format!("reminder set for {}", local.format("%a %b %-d %H:%M"))))
    }

    async fn calendar_event(&self, attempt: &Attempt) -> Result<Value, CallError> {
        let tz = self.service.time_zone(&attempt.user).await;
        let starts = moment(text(&attempt.args, "starts"), tz)?;
        let minutes = attempt.args.get("minutes").and_then(Value::as_i64).unwrap_or(60);
        let event = CalendarEvent {
            key: attempt.key.clone(),
            title: text(&attempt.args, "title").to_owned(),
            starts,
            ends: starts + Duration::minutes(minutes),
            location: attempt.args.get("location").and_then(Value::as_str).map(str::to_owned),
            plan_id: Some(attempt.plan_id),
            created_at: self.now(),
        };
        self.store
            .add_event(&attempt.user, &event)
            .await
            .map_err(store_failed)?;
        let local = starts.with_timezone(&tz);
        Ok(json!(format!(
            "in your calendar on {}",
            local.format("%a %b %-d %H:%M")
        )))
    }

    async fn http_request(&self, attempt: &Attempt, timeout: std::time::Duration) -> Result<Value, CallError> {
        let url = text(&attempt.args, "url");
        let parsed = url::Url::parse(url).map_err(|e| CallError::new(ErrorClass::User, format!("`{url}`: {e}")))?;
        let host = parsed.host_str().unwrap_or_default();
        // The model writes this URL: a listed host, on its default port,
        // reached through the public-only client (a name that resolves to
        // a private address is refused at connect time).
        if !matches!(parsed.scheme(), "http" | "https") || parsed.port().is_some() || !self.config.allows(host) {
            return Err(CallError::new(
                ErrorClass::Permanent,
                format!("{host} is not a host steward may call (the operator lists them in engine.allow_hosts)"),
            ));
        }
        let method = reqwest::Method::from_bytes(text(&attempt.args, "method").as_bytes())
            .map_err(|e| CallError::new(ErrorClass::User, e.to_string()))?;
        let key_header = HeaderName::from_static("idempotency-key");
        self.caller
            .send(Request {
                method,
                url: url.to_owned(),
                headers: &[],
                body: attempt.args.get("body"),
                key: Some((&key_header, &attempt.key)),
                timeout,
                internal_ok: false,
            })
            .await
    }
}
