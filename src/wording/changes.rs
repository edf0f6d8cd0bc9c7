//! How a change to a plan reads (`templates/chat/changes.j2`): in
//! proposals, the plan history, and what an undo reverted.

use super::Wording;
use crate::plan::{Change, Plan, PlanStatus, StepStatus, render};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

/// The facts of one change, for the `change` macro.
#[derive(Serialize, Default)]
struct Facts<'a> {
    kind: &'a str,
    title: &'a str,
    plan: &'a str,
    step: String,
    status: String,
    old: Option<String>,
    new: Option<String>,
    to: &'a str,
    deps: &'a [String],
}

#[derive(Serialize)]
struct Added {
    title: String,
    due: Option<String>,
}

fn day(d: &Option<DateTime<Utc>>, now: DateTime<Tz>) -> Option<String> {
    d.map(|d| render::day(d, now))
}

impl Wording {
    /// A readable one-paragraph summary of `changes` to `plan`, with
    /// dates in the reader's zone (from their local `now`).
    pub fn summarize(&self, plan: &Plan, changes: &[Change], now: DateTime<Tz>) -> String {
        let mut parts: Vec<String> = changes
            .iter()
            .filter_map(|c| facts(plan, c, now))
            .map(|facts| self.say("changes.j2", "change", &facts))
            .collect();
        let added: Vec<Added> = changes
            .iter()
            .filter_map(|c| match c {
                Change::StepAdded { step, .. } => Some(Added {
                    title: step.title.clone(),
                    due: day(&step.due_at, now),
                }),
                _ => None,
            })
            .collect();
        if !added.is_empty() {
            #[derive(Serialize)]
            struct Steps {
                steps: Vec<Added>,
            }
            parts.push(self.say("changes.j2", "added", &Steps { steps: added }));
        }
        parts.join(". ")
    }
}

/// A moved date that will not work as it stands, for `date_warning`.
#[derive(Serialize)]
struct DateWarning<'a> {
    /// past, before_dependency (due before a step it waits for), or
    /// after_dependent (a step waiting for it would be due first).
    kind: &'a str,
    step: &'a str,
    other: Option<&'a str>,
    other_due: Option<String>,
}

impl Wording {
    /// What to know about the due dates `changes` set in `after` (the plan
    /// as it would be): one that has passed, or one that lands before a
    /// step it waits for or after a step that waits for it. `None` if all
    /// is well.
    pub fn date_warnings(&self, after: &Plan, changes: &[Change], now: DateTime<Tz>) -> Option<String> {
        let mut out = Vec::new();
        for change in changes {
            let Change::StepDue {
                step, to: Some(due), ..
            } = change
            else {
                continue;
            };
            let Some(moved) = after.step(step) else { continue };
            let mut warn = |kind, other: Option<&crate::plan::Step>| {
                let facts = DateWarning {
                    kind,
                    step: &moved.title,
                    other: other.map(|o| o.title.as_str()),
                    other_due: other.and_then(|o| day(&o.due_at, now)),
                };
                out.push(self.say("changes.j2", "date_warning", &facts));
            };
            if *due < now {
                warn("past", None);
            }
            for dep in moved.depends_on.iter().filter_map(|d| after.step(d)) {
                if dep.due_at.is_some_and(|d| d > *due) {
                    warn("before_dependency", Some(dep));
                }
            }
            for later in after.steps.iter().filter(|s| s.depends_on.contains(step)) {
                if later.due_at.is_some_and(|d| d < *due) {
                    warn("after_dependent", Some(later));
                }
            }
        }
        (!out.is_empty()).then(|| out.join(" "))
    }
}

/// The facts of one change; added steps are listed together, and a plan
/// finishing on its own is not a change anyone asked for.
fn facts<'a>(plan: &'a Plan, change: &'a Change, now: DateTime<Tz>) -> Option<Facts<'a>> {
    let title = |id: &str| plan.step(id).map(|s| s.title.clone()).unwrap_or_else(|| id.to_owned());
    let facts = match change {
        Change::StepAdded { .. } => return None,
        Change::PlanStatus { to, .. } if *to != PlanStatus::Cancelled => return None,
        Change::PlanCreated { title } => Facts {
            kind: "plan_created",
            title,
            ..Facts::default()
        },
        Change::StepRemoved { step, .. } => Facts {
            kind: "step_removed",
            step: step.title.clone(),
            ..Facts::default()
        },
        Change::StepStatus { step, to, .. } => Facts {
            kind: if *to == StepStatus::Cancelled {
                "step_skipped"
            } else {
                "step_status"
            },
            step: title(step),
            status: to.as_str().replace('_', " "),
            ..Facts::default()
        },
        Change::StepDue { step, from, to } => Facts {
            kind: "step_due",
            step: title(step),
            old: day(from, now),
            new: day(to, now),
            ..Facts::default()
        },
        Change::PlanStatus { .. } => Facts {
            kind: "plan_cancelled",
            plan: &plan.title,
            ..Facts::default()
        },
        Change::PlanRenamed { to, .. } => Facts {
            kind: "plan_renamed",
            to,
            ..Facts::default()
        },
        Change::StepTitle { step, to, .. } => Facts {
            kind: "step_title",
            step: title(step),
            to,
            ..Facts::default()
        },
        Change::StepDeps { step, to, .. } => Facts {
            kind: "step_deps",
            step: title(step),
            deps: to,
            ..Facts::default()
        },
        Change::StepResult { step, .. } => Facts {
            kind: "step_result",
            step: title(step),
            ..Facts::default()
        },
        Change::Reordered { .. } => Facts {
            kind: "reordered",
            ..Facts::default()
        },
    };
    Some(facts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{PlanId, Step};
    use chrono::TimeZone;

    #[test]
    fn every_kind_of_change_reads_as_a_short_sentence() {
        let w = Wording::built_in().unwrap();
        let at = |d| Some(Utc.with_ymd_and_hms(2026, 12, d, 9, 0, 0).unwrap());
        let mut plan = Plan::draft("Onboard Ana", "", Utc::now());
        plan.id = PlanId(1);
        plan.steps.push(Step::new("laptop", "Order laptop"));
        let mut added = Step::new("badge", "Print badge");
        added.due_at = at(3);
        let changes = [
            Change::PlanCreated {
                title: "Onboard Ana".into(),
            },
            Change::StepDue {
                step: "laptop".into(),
                from: None,
                to: at(1),
            },
            Change::StepStatus {
                step: "laptop".into(),
                from: StepStatus::Pending,
                to: StepStatus::InProgress,
            },
            Change::StepStatus {
                step: "laptop".into(),
                from: StepStatus::Pending,
                to: StepStatus::Cancelled,
            },
            Change::StepDeps {
                step: "laptop".into(),
                from: vec![],
                to: vec!["a".into(), "b".into()],
            },
            Change::PlanStatus {
                from: PlanStatus::Active,
                to: PlanStatus::Done,
            },
            Change::StepAdded { step: added, index: 1 },
            Change::StepAdded {
                step: Step::new("lunch", "Lunch"),
                index: 2,
            },
        ];
        assert_eq!(
            w.summarize(&plan, &changes, at(2).unwrap().with_timezone(&chrono_tz::UTC)),
            "Create the plan “Onboard Ana”. Move “Order laptop” from no date to Tue Dec 1. \
             Mark “Order laptop” in progress. Skip “Order laptop”. Make “Order laptop” wait for a, b. \
             Add steps: Print badge (due Thu Dec 3); Lunch"
        );
    }
}
