//! What notifications say (`templates/chat/notifications.j2`), from the
//! trigger, the plan and the user's local time. The offline wording; a
//! configured model may phrase the same facts differently.

use super::Wording;
use crate::notification::NotificationKind;
use crate::plan::{Plan, PlanStatus, Step, render};
use crate::triggers::{Trigger, TriggerKind};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

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

#[derive(Serialize)]
struct Due<'a> {
    step: &'a str,
    plan: &'a str,
    when: String,
    time: String,
}

#[derive(Serialize)]
struct Idle<'a> {
    plan: &'a str,
    since: String,
    next: Option<&'a str>,
}

#[derive(Serialize)]
struct Text<'a> {
    text: &'a str,
}

#[derive(Serialize)]
struct Missed<'a> {
    kind: &'a str,
    step: Option<&'a str>,
    plan: &'a str,
    text: &'a str,
    when: String,
}

impl Wording {
    /// The kind and text of a fired trigger's notification, or `None` when
    /// the trigger no longer applies (its step is finished or gone).
    pub fn notification(
        &self,
        trigger: &Trigger,
        plan: Option<&Plan>,
        now: DateTime<Utc>,
        tz: Tz,
    ) -> Option<(NotificationKind, String)> {
        match &trigger.kind {
            TriggerKind::StepDue { step_id, due_at, .. } => {
                let text = self.due(plan?, step_id, *due_at, now, tz, "due_soon")?;
                Some((NotificationKind::DueSoon, text))
            }
            TriggerKind::StepOverdue { step_id, due_at, .. } => {
                let text = self.due(plan?, step_id, *due_at, now, tz, "overdue")?;
                Some((NotificationKind::Overdue, text))
            }
            TriggerKind::PlanIdle { .. } => {
                let plan = plan.filter(|p| p.status == PlanStatus::Active)?;
                let facts = Idle {
                    plan: &plan.title,
                    since: render::day(plan.updated_at, now.with_timezone(&tz)),
                    next: plan.next_ready().map(|s| s.title.as_str()),
                };
                Some((NotificationKind::Idle, self.say("notifications.j2", "idle", &facts)))
            }
            TriggerKind::Reminder { text, .. } => Some((
                NotificationKind::Reminder,
                self.say("notifications.j2", "reminder", &Text { text }),
            )),
            TriggerKind::Digest => None,
        }
    }

    /// A step's due-soon or overdue text; `None` once it is finished or gone.
    fn due(
        &self,
        plan: &Plan,
        step_id: &str,
        due_at: DateTime<Utc>,
        now: DateTime<Utc>,
        tz: Tz,
        name: &str,
    ) -> Option<String> {
        let s = step(plan, step_id).filter(|s| !s.status.is_terminal())?;
        let facts = Due {
            step: &s.title,
            plan: &plan.title,
            when: relative_day(due_at, now, tz),
            time: due_at.with_timezone(&tz).format("%H:%M").to_string(),
        };
        Some(self.say("notifications.j2", name, &facts))
    }

    /// A trigger missed while steward was down ("“Order laptop” coming due
    /// (Nov 23 09:00)"), as listed in the next digest and in the inbox.
    pub fn missed(&self, trigger: &Trigger, plan: Option<&Plan>, now: DateTime<Tz>) -> String {
        let step_title = |id: &str| plan.and_then(|p| step(p, id)).map(|s| s.title.as_str());
        let (kind, step) = match (&trigger.kind, plan) {
            (TriggerKind::StepDue { step_id, .. }, Some(_)) => ("due", step_title(step_id)),
            (TriggerKind::StepOverdue { step_id, .. }, Some(_)) => ("overdue", step_title(step_id)),
            (TriggerKind::PlanIdle { .. }, Some(_)) => ("idle", None),
            (TriggerKind::Reminder { .. }, _) => ("reminder", None),
            (TriggerKind::Digest, _) => ("digest", None),
            (TriggerKind::StepDue { .. } | TriggerKind::StepOverdue { .. } | TriggerKind::PlanIdle { .. }, None) => {
                ("gone", None)
            }
        };
        let text = match &trigger.kind {
            TriggerKind::Reminder { text, .. } => text.as_str(),
            TriggerKind::StepDue { .. }
            | TriggerKind::StepOverdue { .. }
            | TriggerKind::PlanIdle { .. }
            | TriggerKind::Digest => "",
        };
        let facts = Missed {
            kind,
            step,
            plan: plan.map_or("", |p| p.title.as_str()),
            text,
            when: render::moment(trigger.fire_at, now),
        };
        self.say("notifications.j2", "missed", &facts)
    }

    /// What the chat says when a step bound to a tool ran.
    pub fn step_done(&self, step: &str, plan: &str, result: &str) -> String {
        #[derive(Serialize)]
        struct Facts<'a> {
            step: &'a str,
            plan: &'a str,
            result: &'a str,
        }
        self.say("notifications.j2", "step_done", &Facts { step, plan, result })
    }

    /// What the chat says when a step bound to a tool failed for good, and
    /// what happens next (`next`, see the macro).
    pub fn step_failed(&self, step: &str, plan: &str, error: &str, next: &str, fallback: &str) -> String {
        #[derive(Serialize)]
        struct Facts<'a> {
            step: &'a str,
            plan: &'a str,
            error: &'a str,
            next: &'a str,
            fallback: &'a str,
        }
        let facts = Facts {
            step,
            plan,
            error: error.trim_end_matches('.'),
            next,
            fallback,
        };
        self.say("notifications.j2", "step_failed", &facts)
    }

    /// The inbox notice for a missed trigger.
    pub fn while_offline(&self, missed: &str) -> String {
        #[derive(Serialize)]
        struct Line<'a> {
            missed: &'a str,
        }
        self.say("notifications.j2", "while_offline", &Line { missed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixtures::{at, onboarding as plan};
    use crate::plan::{PlanId, StepStatus};
    use crate::user::UserId;

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
        let w = Wording::built_in().unwrap();
        assert_eq!(
            w.notification(&t, Some(&p), at("2026-11-23T08:00:00Z"), tz),
            Some((
                NotificationKind::DueSoon,
                "“Order laptop” (Onboard Ana) is due tomorrow at 09:00.".into()
            ))
        );
        p.steps[1].status = StepStatus::Completed;
        assert_eq!(w.notification(&t, Some(&p), at("2026-11-23T08:00:00Z"), tz), None);
        assert_eq!(w.notification(&t, None, at("2026-11-23T08:00:00Z"), tz), None);
    }
}
