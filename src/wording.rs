//! What notifications say, as pure functions of the trigger, the plan and
//! the user's local time. The offline wording; a configured model may
//! phrase the same facts differently.

use crate::notification::NotificationKind;
use crate::plan::{Plan, PlanStatus, Step};
use crate::triggers::{Trigger, TriggerKind};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// "today", "tomorrow", "on Friday, Nov 27", "on Tue, Dec 15 2027".
pub(crate) fn relative_day(at: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> String {
    let day = at.with_timezone(&tz).date_naive();
    let today = now.with_timezone(&tz).date_naive();
    let diff = (day - today).num_days();
    match diff {
        0 => "today".into(),
        1 => "tomorrow".into(),
        -1 => "yesterday".into(),
        2..=6 => format!("on {}", day.format("%A, %b %-d")),
        _ if day.format("%Y").to_string() == today.format("%Y").to_string() => {
            format!("on {}", day.format("%a, %b %-d"))
        }
        _ => format!("on {}", day.format("%a, %b %-d %Y")),
    }
}

fn step<'a>(plan: &'a Plan, id: &str) -> Option<&'a Step> {
    plan.steps.iter().find(|s| s.id == id)
}

/// The text, kind and subject of a fired trigger's notification, or `None`
/// when the trigger no longer applies (its step is finished or gone).
pub(crate) fn notification(
    trigger: &Trigger,
    plan: Option<&Plan>,
    now: DateTime<Utc>,
    tz: Tz,
) -> Option<(NotificationKind, String)> {
    match &trigger.kind {
        TriggerKind::StepDue { step_id, due_at, .. } => {
            let plan = plan?;
            let s = step(plan, step_id).filter(|s| !s.status.is_terminal())?;
            Some((
                NotificationKind::DueSoon,
                format!(
                    "“{}” ({}) is due {} at {}.",
                    s.title,
                    plan.title,
                    relative_day(*due_at, now, tz),
                    due_at.with_timezone(&tz).format("%H:%M")
                ),
            ))
        }
        TriggerKind::StepOverdue { step_id, due_at, .. } => {
            let plan = plan?;
            let s = step(plan, step_id).filter(|s| !s.status.is_terminal())?;
            Some((
                NotificationKind::Overdue,
                format!(
                    "“{}” ({}) was due {} and isn't done yet. Tell me when it is, or move it to a new date.",
                    s.title,
                    plan.title,
                    relative_day(*due_at, now, tz)
                ),
            ))
        }
        TriggerKind::PlanIdle { .. } => {
            let plan = plan.filter(|p| p.status == PlanStatus::Active)?;
            let next = plan
                .next_ready()
                .map(|s| format!(" Next up: “{}”.", s.title))
                .unwrap_or_default();
            Some((
                NotificationKind::Idle,
                format!(
                    "Your plan “{}” hasn't changed since {}.{next} Anything to update?",
                    plan.title,
                    plan.updated_at.with_timezone(&tz).format("%b %-d")
                ),
            ))
        }
        TriggerKind::Reminder { text, .. } => Some((NotificationKind::Reminder, format!("Reminder: {text}"))),
        TriggerKind::Digest => None,
    }
}

/// A line for a trigger missed while steward was down (listed in the
/// next digest and in the inbox).
pub(crate) fn missed(trigger: &Trigger, plan: Option<&Plan>, tz: Tz) -> String {
    let when = trigger.fire_at.with_timezone(&tz).format("%b %-d %H:%M");
    let what = match (&trigger.kind, plan) {
        (TriggerKind::StepDue { step_id, .. }, Some(p)) => step(p, step_id)
            .map(|s| format!("“{}” coming due", s.title))
            .unwrap_or_else(|| "a step coming due".into()),
        (TriggerKind::StepOverdue { step_id, .. }, Some(p)) => step(p, step_id)
            .map(|s| format!("“{}” becoming overdue", s.title))
            .unwrap_or_else(|| "a step becoming overdue".into()),
        (TriggerKind::PlanIdle { .. }, Some(p)) => format!("a check-in on “{}”", p.title),
        (TriggerKind::Reminder { text, .. }, _) => format!("your reminder “{text}”"),
        (TriggerKind::Digest, _) => "a digest".into(),
        (TriggerKind::StepDue { .. } | TriggerKind::StepOverdue { .. } | TriggerKind::PlanIdle { .. }, None) => {
            "a plan that no longer exists".into()
        }
    };
    format!("{what} ({when})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{PlanId, StepStatus};
    use crate::user::UserId;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn plan() -> Plan {
        let mut p = Plan::draft("Onboard Ana", "", at("2026-11-20T09:00:00Z"));
        p.id = PlanId(1);
        let mut laptop = Step::new("laptop", "Order laptop");
        laptop.due_at = Some(at("2026-11-24T08:00:00Z"));
        let mut accounts = Step::new("accounts", "Create accounts");
        accounts.depends_on = vec!["laptop".into()];
        accounts.due_at = Some(at("2026-12-20T08:00:00Z"));
        let mut contract = Step::new("contract", "Sign contract");
        contract.status = StepStatus::Completed;
        p.steps = vec![contract, laptop, accounts];
        p
    }

    #[test]
    fn days_read_relative_to_the_users_today() {
        let tz: Tz = "Asia/Kolkata".parse().unwrap();
        let now = at("2026-11-23T20:00:00Z"); // already Nov 24 01:30 in Kolkata
        assert_eq!(relative_day(at("2026-11-24T05:00:00Z"), now, tz), "today");
        assert_eq!(relative_day(at("2026-11-25T05:00:00Z"), now, tz), "tomorrow");
        assert_eq!(relative_day(at("2026-11-27T05:00:00Z"), now, tz), "on Friday, Nov 27");
        assert_eq!(relative_day(at("2027-01-05T05:00:00Z"), now, tz), "on Tue, Jan 5 2027");
    }

    #[test]
    fn a_due_trigger_names_the_step_plan_and_time_and_lapses_once_the_step_is_done() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let mut p = plan();
        let t = Trigger {
            id: "due:p1:laptop".into(),
            user: UserId::parse("ana").unwrap(),
            fire_at: at("2026-11-23T08:00:00Z"),
            created_at: at("2026-11-20T09:00:00Z"),
            kind: TriggerKind::StepDue {
                plan_id: PlanId(1),
                step_id: "laptop".into(),
                due_at: at("2026-11-24T08:00:00Z"),
            },
        };
        assert_eq!(
            notification(&t, Some(&p), at("2026-11-23T08:00:00Z"), tz),
            Some((
                NotificationKind::DueSoon,
                "“Order laptop” (Onboard Ana) is due tomorrow at 09:00.".into()
            ))
        );
        p.steps[1].status = StepStatus::Completed;
        assert_eq!(notification(&t, Some(&p), at("2026-11-23T08:00:00Z"), tz), None);
        assert_eq!(notification(&t, None, at("2026-11-23T08:00:00Z"), tz), None);
    }
}
