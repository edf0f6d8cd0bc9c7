//! The digest email: what it shows (progress, the week ahead, what waits
//! on the user, what was missed) and the outbox row that carries it, keyed
//! by user and period so a period never gets two digests.

use crate::channels::email::{Digest, DigestPlan, DigestStep, Mail};
use crate::channels::links::Links;
use crate::notification::{OutboxItem, Payload};
use crate::plan::{Plan, PlanStatus, Step, StepStatus};
use crate::preferences::Preferences;
use crate::service::Service;
use crate::store::{Store, StoreError};
use crate::triggers::{Frequency, TriggerKind};
use crate::user::UserId;
use crate::wording::relative_day;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use std::sync::Arc;

/// Per active plan: progress, what is due in the next seven days (and what
/// is overdue), and what waits on the user: steps ready to start that no
/// tool runs, and failed steps.
pub(crate) fn digest_plans(plans: &[Plan], now: DateTime<Utc>, tz: Tz) -> Vec<DigestPlan> {
    let week = now + chrono::Duration::days(7);
    plans
        .iter()
        .filter(|p| p.status == PlanStatus::Active)
        .map(|p| {
            let counted: Vec<&Step> = p.steps.iter().filter(|s| s.status != StepStatus::Cancelled).collect();
            let done = counted.iter().filter(|s| s.status == StepStatus::Completed).count();
            let total = counted.len();
            let line = |s: &Step| DigestStep {
                title: s.title.clone(),
                due: s.due_at.map(|d| relative_day(d, now, tz)),
                overdue: s.due_at.is_some_and(|d| d < now),
                status: s.status.as_str().into(),
            };
            let open = |s: &&Step| !s.status.is_terminal();
            DigestPlan {
                id: p.id.to_string(),
                title: p.title.clone(),
                done,
                total,
                percent: (done * 100).checked_div(total).unwrap_or(0),
                due_this_week: p
                    .steps
                    .iter()
                    .filter(open)
                    .filter(|s| s.due_at.is_some_and(|d| d <= week))
                    .map(line)
                    .collect(),
                waiting_on_you: p
                    .steps
                    .iter()
                    .filter(open)
                    .filter(|s| s.status == StepStatus::Failed || (s.tool.is_none() && p.is_ready(s)))
                    .map(line)
                    .collect(),
                next: p.next_ready().map(|s| s.title.clone()),
            }
        })
        .collect()
}

/// Decides digests: reads what a user's digest shows and renders it.
pub struct Digests {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) mail: Arc<Mail>,
    pub(crate) links: Links,
    /// The user's zone and how missed triggers read.
    pub(crate) service: Service,
}

/// A digest decided for a period.
pub struct DigestDecision {
    pub item: OutboxItem,
    /// Missed triggers recorded up to here are reported: the start of the
    /// window it looked at, or the latest one it lists.
    pub(crate) missed_through: DateTime<Utc>,
}

impl Digests {
    /// The digest for the period containing `scheduled`, as an outbox row
    /// keyed by user and period (so a period never gets two), or `None`
    /// without a verified address.
    pub async fn decide(
        &self,
        user: &UserId,
        prefs: &Preferences,
        scheduled: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<DigestDecision>, StoreError> {
        let Some(to) = prefs.deliverable_email() else {
            return Ok(None);
        };
        let tz = self.service.tz_of(prefs);
        let period = prefs.digest.period(scheduled, tz);
        let plans = self.store.list_plans(user).await?;
        let span = match prefs.digest.frequency {
            Frequency::Weekly => Duration::days(7),
            Frequency::Daily | Frequency::Off => Duration::days(1),
        };
        // Missed triggers since the last digest reported them (or, for a
        // first digest, over one period). Those recorded at `now` are left
        // for the next digest: they belong to this very tick, whose other
        // firings run concurrently with this one, so some may not be
        // committed yet, and a cursor at `now` would hide them for good.
        let since = match self.store.digest_cursor(user).await? {
            Some(at) => at,
            None => scheduled - span,
        };
        let listed: Vec<_> = self
            .store
            .missed_since(user, since)
            .await?
            .into_iter()
            .filter(|m| m.at < now && !matches!(m.trigger.kind, TriggerKind::Digest))
            .collect();
        // Reported: everything up to the window's start, and what is listed.
        let missed_through = listed.iter().map(|m| m.at).fold(since, DateTime::max);
        let missed = listed
            .iter()
            .map(|m| {
                let plan = m.trigger.plan_id().and_then(|id| plans.iter().find(|p| p.id == id));
                self.service.wording().missed(&m.trigger, plan, now.with_timezone(&tz))
            })
            .collect();
        let digest = Digest {
            user: user.to_string(),
            period: period.clone(),
            plans: digest_plans(&plans, now, tz),
            missed,
            widget_url: self.links.widget(),
            unsubscribe_url: self.links.unsubscribe(user),
        };
        // User ids may contain '@'; the Message-ID's local part must not.
        let local = user.as_str().replace('@', "=");
        let message_id = format!("<digest.{local}.{period}@{}>", self.mail.domain);
        match self.mail.digest(&digest, to, message_id) {
            Ok(email) => Ok(Some(DigestDecision {
                item: OutboxItem::new(user, format!("digest:{user}:{period}"), Payload::Email(email), now),
                missed_through,
            })),
            Err(e) => {
                tracing::error!(user_id = %user, error = %e, "could not render the digest");
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixtures::{at, onboarding as plan};

    #[test]
    fn a_digest_shows_progress_the_week_ahead_and_what_waits_on_the_user() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let got = digest_plans(&[plan()], at("2026-11-23T07:00:00Z"), tz);
        assert_eq!(
            got,
            vec![DigestPlan {
                id: "p1".into(),
                title: "Onboard Ana".into(),
                done: 1,
                total: 3,
                percent: 33,
                due_this_week: vec![DigestStep {
                    title: "Order laptop".into(),
                    due: Some("tomorrow".into()),
                    overdue: false,
                    status: "pending".into()
                }],
                waiting_on_you: vec![DigestStep {
                    title: "Order laptop".into(),
                    due: Some("tomorrow".into()),
                    overdue: false,
                    status: "pending".into()
                }],
                next: Some("Order laptop".into()),
            }]
        );
    }
}
