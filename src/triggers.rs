//! Trigger records and the pure rules behind them: which triggers a plan
//! implies, when a local-time recurrence next falls, and what to do with a
//! trigger that came due while steward was down (the misfire policy).
//! Nothing here does I/O; the store calls [`for_plan`] inside the same
//! transaction that writes the plan.

use crate::plan::{Plan, PlanId, PlanStatus, StepStatus};
use crate::user::UserId;
use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// When plan-derived triggers fire, and how late a trigger may still fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TriggerPolicy {
    /// A "due soon" notice goes out this long before a step's due time.
    pub due_lead: Duration,
    /// An active plan untouched this long gets a nudge.
    pub idle_after: Duration,
    /// A trigger found due at most this late still fires; older ones are
    /// recorded as missed and reported in the next digest.
    pub catch_up: Duration,
}

impl From<&crate::config::NotifyConfig> for TriggerPolicy {
    fn from(c: &crate::config::NotifyConfig) -> TriggerPolicy {
        TriggerPolicy {
            due_lead: Duration::hours(i64::from(c.due_lead_hours)),
            idle_after: Duration::days(i64::from(c.idle_days)),
            catch_up: Duration::minutes(i64::from(c.catch_up_minutes)),
        }
    }
}

impl Default for TriggerPolicy {
    fn default() -> Self {
        TriggerPolicy {
            due_lead: Duration::hours(24),
            idle_after: Duration::days(7),
            catch_up: Duration::hours(6),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TriggerKind {
    /// A step's due time is `due_lead` away.
    StepDue {
        plan_id: PlanId,
        step_id: String,
        due_at: DateTime<Utc>,
    },
    /// A step's due time has passed and it is not finished.
    StepOverdue {
        plan_id: PlanId,
        step_id: String,
        due_at: DateTime<Utc>,
    },
    /// An active plan nobody touched for `idle_after`.
    PlanIdle { plan_id: PlanId },
    /// "remind me tomorrow at 9 to call the recruiter". With
    /// `lapse_on_reply`, it does not fire if the user wrote after setting it.
    Reminder { text: String, lapse_on_reply: bool },
    /// The user's recurring digest email.
    Digest,
}

/// Something steward must do at `fire_at`. `id` is stable for what it is
/// about ("due:p1:laptop"), so re-deriving a plan's triggers finds the same
/// ones; (`id`, `fire_at`) identifies one firing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    pub id: String,
    pub user: UserId,
    pub fire_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    #[serde(flatten)]
    pub kind: TriggerKind,
}

impl Trigger {
    /// Urgent notifications are delivered during quiet hours too: a
    /// reminder is a time the user chose themselves.
    pub(crate) fn urgent(&self) -> bool {
        match self.kind {
            TriggerKind::Reminder { .. } => true,
            TriggerKind::StepDue { .. }
            | TriggerKind::StepOverdue { .. }
            | TriggerKind::PlanIdle { .. }
            | TriggerKind::Digest => false,
        }
    }

    pub(crate) fn plan_id(&self) -> Option<PlanId> {
        match &self.kind {
            TriggerKind::StepDue { plan_id, .. }
            | TriggerKind::StepOverdue { plan_id, .. }
            | TriggerKind::PlanIdle { plan_id } => Some(*plan_id),
            TriggerKind::Reminder { .. } | TriggerKind::Digest => None,
        }
    }
}

/// The triggers an active plan implies right now: for each unfinished step
/// with a due time, a "due soon" and an "overdue" trigger; for the plan, an
/// idle nudge. Finished steps and closed plans imply none, so completing or
/// cancelling removes them.
pub fn for_plan(user: &UserId, plan: &Plan, policy: &TriggerPolicy) -> Vec<Trigger> {
    if plan.status != PlanStatus::Active {
        return Vec::new();
    }
    let make = |id: String, fire_at, kind| Trigger {
        id,
        user: user.clone(),
        fire_at,
        created_at: plan.updated_at,
        kind,
    };
    let mut out = Vec::new();
    for step in &plan.steps {
        let Some(due_at) = step.due_at else { continue };
        match step.status {
            StepStatus::Completed | StepStatus::Cancelled => continue,
            StepStatus::Pending | StepStatus::InProgress | StepStatus::Failed => {}
        }
        out.push(make(
            format!("due:{}:{}", plan.id, step.id),
            due_at - policy.due_lead,
            TriggerKind::StepDue {
                plan_id: plan.id,
                step_id: step.id.clone(),
                due_at,
            },
        ));
        out.push(make(
            format!("overdue:{}:{}", plan.id, step.id),
            due_at,
            TriggerKind::StepOverdue {
                plan_id: plan.id,
                step_id: step.id.clone(),
                due_at,
            },
        ));
    }
    out.push(make(
        format!("idle:{}", plan.id),
        plan.updated_at + policy.idle_after,
        TriggerKind::PlanIdle { plan_id: plan.id },
    ));
    out
}

/// What becomes of a trigger found due at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Fired,
    /// Came due longer ago than the catch-up window (steward was down).
    Missed,
    /// A lapse-on-reply reminder the user wrote after setting.
    Lapsed,
    /// Fired, but there was nothing to send (e.g. a digest with no address).
    Skipped,
}

/// The misfire policy: inside the catch-up window a late trigger fires
/// (once); older ones are recorded as missed.
pub(crate) fn misfire(trigger: &Trigger, now: DateTime<Utc>, policy: &TriggerPolicy) -> Outcome {
    if now - trigger.fire_at > policy.catch_up {
        Outcome::Missed
    } else {
        Outcome::Fired
    }
}

/// A local wall-clock time in `tz` as an instant. The DST rule: a time
/// that does not exist (spring-forward gap) moves forward by the gap's
/// length (02:30 in a one-hour gap is 03:30); a time that occurs twice
/// (fall-back) is the earlier one.
pub(crate) fn local_instant(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(earlier, _) => earlier.with_timezone(&Utc),
        LocalResult::None => {
            // Read the wall time with the offset in force just before the
            // gap: the resulting instant lies after the transition, shifted
            // by exactly the gap. Gaps are at most a few hours long.
            let before = (1..=6)
                .map(|h| local - Duration::hours(h))
                .find_map(|t| tz.from_local_datetime(&t).earliest());
            match before {
                Some(b) => {
                    let offset = b.offset().fix().local_minus_utc();
                    Utc.from_utc_datetime(&(local - Duration::seconds(i64::from(offset))))
                }
                None => Utc.from_utc_datetime(&local),
            }
        }
    }
}

/// How often a digest goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    Off,
    Daily,
    Weekly,
}

/// A recurring local time: daily, or weekly on `weekday`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recurrence {
    pub frequency: Frequency,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekday: Option<Weekday>,
    pub time: NaiveTime,
}

impl Recurrence {
    /// The first occurrence strictly after `after`, in `tz`.
    pub(crate) fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        if self.frequency == Frequency::Off {
            return None;
        }
        let start = after.with_timezone(&tz).date_naive();
        // Two weeks of days always contain the next weekly occurrence, even
        // when the first candidate is skipped by the strict "after".
        (0..15)
            .filter_map(|d| start.checked_add_signed(Duration::days(d)))
            .filter(|day| self.matches(*day))
            .map(|day| local_instant(tz, day.and_time(self.time)))
            .find(|at| *at > after)
    }

    fn matches(&self, day: NaiveDate) -> bool {
        match (self.frequency, self.weekday) {
            (Frequency::Weekly, Some(w)) => day.weekday() == w,
            (Frequency::Weekly, None) => day.weekday() == Weekday::Mon,
            (Frequency::Daily, _) => true,
            (Frequency::Off, _) => false,
        }
    }

    /// The period an occurrence at `at` belongs to, for the once-per-period
    /// idempotency key: the local date, or the ISO week for weekly digests.
    pub(crate) fn period(&self, at: DateTime<Utc>, tz: Tz) -> String {
        let local = at.with_timezone(&tz).date_naive();
        match self.frequency {
            Frequency::Weekly => {
                let w = local.iso_week();
                format!("{}-W{:02}", w.year(), w.week())
            }
            Frequency::Daily | Frequency::Off => local.format("%Y-%m-%d").to_string(),
        }
    }
}

/// The digest trigger for a recurrence, next due after `after`.
pub(crate) fn digest(
    user: &UserId,
    rec: &Recurrence,
    tz: Tz,
    after: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<Trigger> {
    Some(Trigger {
        id: "digest".into(),
        user: user.clone(),
        fire_at: rec.next_after(after, tz)?,
        created_at: now,
        kind: TriggerKind::Digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Step;
    use crate::plan::fixtures::at;

    fn daily(h: u32, m: u32) -> Recurrence {
        Recurrence {
            frequency: Frequency::Daily,
            weekday: None,
            time: NaiveTime::from_hms_opt(h, m, 0).unwrap(),
        }
    }

    #[test]
    fn local_times_follow_the_documented_dst_rule() {
        let ny: Tz = "America/New_York".parse().unwrap();
        let lh: Tz = "Australia/Lord_Howe".parse().unwrap();
        let d = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        let cases = [
            // ordinary
            (ny, "2026-07-01 08:00", "2026-07-01T12:00:00Z"),
            // spring forward 2027-03-14 02:00 → 03:00: 02:30 becomes 03:30 EDT
            (ny, "2027-03-14 02:30", "2027-03-14T07:30:00Z"),
            // fall back 2026-11-01 01:30 happens twice: the earlier (EDT)
            (ny, "2026-11-01 01:30", "2026-11-01T05:30:00Z"),
            // Lord Howe springs forward half an hour (02:00 → 02:30) on 2026-10-04: 02:15 is 02:45 (+11:00)
            (lh, "2026-10-04 02:15", "2026-10-03T15:45:00Z"),
            // and falls back half an hour (02:00 → 01:30) on 2027-04-04: earlier
            (lh, "2027-04-04 01:45", "2027-04-03T14:45:00Z"),
        ];
        for (tz, local, want) in cases {
            assert_eq!(local_instant(tz, d(local)), at(want), "{tz} {local}");
        }
    }

    #[test]
    fn the_next_occurrence_is_strictly_after_and_weekly_lands_on_its_weekday() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let r = daily(8, 0);
        assert_eq!(
            r.next_after(at("2026-11-23T06:59:00Z"), berlin),
            Some(at("2026-11-23T07:00:00Z"))
        );
        assert_eq!(
            r.next_after(at("2026-11-23T07:00:00Z"), berlin),
            Some(at("2026-11-24T07:00:00Z"))
        );
        let weekly = Recurrence {
            frequency: Frequency::Weekly,
            weekday: Some(Weekday::Mon),
            time: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
        };
        // Monday 2026-11-23 08:00 Berlin has just passed: next Monday.
        assert_eq!(
            weekly.next_after(at("2026-11-23T07:00:00Z"), berlin),
            Some(at("2026-11-30T07:00:00Z"))
        );
        assert_eq!(weekly.period(at("2026-11-30T07:00:00Z"), berlin), "2026-W49");
        assert_eq!(r.period(at("2026-11-23T23:30:00Z"), berlin), "2026-11-24");
        let off = Recurrence {
            frequency: Frequency::Off,
            ..r
        };
        assert_eq!(off.next_after(at("2026-11-23T07:00:00Z"), berlin), None);
    }

    #[test]
    fn a_plan_implies_due_overdue_and_idle_triggers_for_unfinished_dated_steps_only() {
        let user = UserId::parse("ana").unwrap();
        let now = at("2026-11-23T10:00:00Z");
        let mut plan = Plan::draft("Onboard", "", now);
        plan.id = PlanId(3);
        let mut laptop = Step::new("laptop", "Order laptop");
        laptop.due_at = Some(at("2026-11-25T09:00:00Z"));
        let mut done = Step::new("contract", "Sign contract");
        done.due_at = Some(at("2026-11-24T09:00:00Z"));
        done.status = StepStatus::Completed;
        let undated = Step::new("lunch", "Welcome lunch");
        plan.steps = vec![laptop, done, undated];
        let policy = TriggerPolicy::default();
        let got: Vec<(String, DateTime<Utc>)> = for_plan(&user, &plan, &policy)
            .into_iter()
            .map(|t| (t.id, t.fire_at))
            .collect();
        assert_eq!(
            got,
            vec![
                ("due:p3:laptop".to_string(), at("2026-11-24T09:00:00Z")),
                ("overdue:p3:laptop".to_string(), at("2026-11-25T09:00:00Z")),
                ("idle:p3".to_string(), at("2026-11-30T10:00:00Z")),
            ]
        );
        plan.status = PlanStatus::Done;
        assert!(for_plan(&user, &plan, &policy).is_empty());
    }

    #[test]
    fn a_trigger_late_by_more_than_the_catch_up_window_is_missed() {
        let policy = TriggerPolicy::default();
        let t = Trigger {
            id: "x".into(),
            user: UserId::parse("u").unwrap(),
            fire_at: at("2026-11-23T10:00:00Z"),
            created_at: at("2026-11-20T10:00:00Z"),
            kind: TriggerKind::Digest,
        };
        assert_eq!(misfire(&t, at("2026-11-23T10:00:10Z"), &policy), Outcome::Fired);
        assert_eq!(misfire(&t, at("2026-11-23T16:00:00Z"), &policy), Outcome::Fired);
        assert_eq!(misfire(&t, at("2026-11-23T16:00:01Z"), &policy), Outcome::Missed);
    }
}
