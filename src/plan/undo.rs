//! Undo: a recorded change applied backwards to the current plan, recorded
//! as a new change (history is never rewritten). Statuses go back to what
//! they were even where the forward rules would not allow it ("completed"
//! back to "pending"), but the result must still be a valid plan.

use super::invariants::{self, PlanError, PlanLimits};
use super::{Change, HistoryEntry, Plan, PlanStatus};
use chrono::{DateTime, Utc};

/// Reverts `entry` on `plan`: returns the new plan (version bumped) and the
/// changes the revert made.
// Long: one arm per kind of change, each its exact inverse; together
// they show that every recorded change can be undone.
pub(crate) fn revert(
    plan: &Plan,
    entry: &HistoryEntry,
    limits: &PlanLimits,
    now: DateTime<Utc>,
) -> Result<(Plan, Vec<Change>), PlanError> {
    let mut next = plan.clone();
    let mut changes = Vec::new();
    // Undoing a creation cancels the plan and keeps its steps, so a redo
    // (or a look at the cancelled plan) finds them where they were.
    let creation = entry.changes.iter().any(|c| matches!(c, Change::PlanCreated { .. }));
    for change in entry.changes.iter().rev() {
        match change {
            Change::PlanCreated { .. } => {
                if next.status != PlanStatus::Cancelled {
                    changes.push(Change::PlanStatus {
                        from: next.status,
                        to: PlanStatus::Cancelled,
                    });
                    next.status = PlanStatus::Cancelled;
                }
            }
            Change::PlanRenamed { from, to } => {
                next.title = from.clone();
                changes.push(Change::PlanRenamed {
                    from: to.clone(),
                    to: from.clone(),
                });
            }
            Change::PlanStatus { from, to } => {
                if next.status == *to {
                    next.status = *from;
                    changes.push(Change::PlanStatus { from: *to, to: *from });
                }
            }
            Change::StepAdded { .. } if creation => {}
            Change::StepAdded { step, .. } => {
                if let Some(i) = next.step_index(&step.id) {
                    let removed = next.steps.remove(i);
                    changes.push(Change::StepRemoved {
                        step: removed,
                        index: i,
                    });
                }
            }
            Change::StepRemoved { step, index } => {
                if next.step(&step.id).is_none() {
                    let at = (*index).min(next.steps.len());
                    next.steps.insert(at, step.clone());
                    changes.push(Change::StepAdded {
                        step: step.clone(),
                        index: at,
                    });
                }
            }
            Change::StepStatus { step, from, to } => {
                let s = find(&mut next, step)?;
                s.status = *from;
                changes.push(Change::StepStatus {
                    step: step.clone(),
                    from: *to,
                    to: *from,
                });
            }
            Change::StepTitle { step, from, to } => {
                find(&mut next, step)?.title = from.clone();
                changes.push(Change::StepTitle {
                    step: step.clone(),
                    from: to.clone(),
                    to: from.clone(),
                });
            }
            Change::StepDue { step, from, to } => {
                find(&mut next, step)?.due_at = *from;
                changes.push(Change::StepDue {
                    step: step.clone(),
                    from: *to,
                    to: *from,
                });
            }
            Change::StepDeps { step, from, to } => {
                find(&mut next, step)?.depends_on = from.clone();
                changes.push(Change::StepDeps {
                    step: step.clone(),
                    from: to.clone(),
                    to: from.clone(),
                });
            }
            Change::StepResult { step, from, to } => {
                find(&mut next, step)?.result = from.clone();
                changes.push(Change::StepResult {
                    step: step.clone(),
                    from: to.clone(),
                    to: from.clone(),
                });
            }
            Change::Reordered { from, to } => {
                let mut ordered = Vec::with_capacity(next.steps.len());
                for id in from {
                    if let Some(i) = next.step_index(id) {
                        ordered.push(next.steps.remove(i));
                    }
                }
                ordered.append(&mut next.steps);
                next.steps = ordered;
                changes.push(Change::Reordered {
                    from: to.clone(),
                    to: from.clone(),
                });
            }
        }
    }
    invariants::validate(&next, limits)?;
    if next.status != PlanStatus::Cancelled {
        next.status = next.derived_status();
    }
    next.version = plan.version + 1;
    next.updated_at = now;
    Ok((next, changes))
}

fn find<'a>(plan: &'a mut Plan, step: &str) -> Result<&'a mut super::Step, PlanError> {
    plan.steps
        .iter_mut()
        .find(|s| s.id == step)
        .ok_or_else(|| PlanError::UnknownStep(step.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Actor, Op, PlanId, StepStatus, patch};
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
    }

    fn entry(changes: Vec<Change>, version: u64) -> HistoryEntry {
        HistoryEntry {
            at: now(),
            actor: Actor::User,
            why: "test".into(),
            version,
            changes,
            undoes: None,
        }
    }

    #[test]
    fn undoing_a_change_restores_the_previous_plan_under_a_new_version() {
        let mut p = Plan::draft("Trip", "", now());
        p.id = PlanId(1);
        let limits = PlanLimits::default();
        let ops = vec![
            Op::AddStep {
                id: Some("a".into()),
                title: "A".into(),
                depends_on: vec![],
                due_at: Some(now()),
                after: None,
                status: None,
                tool: None,
                checks: None,
            },
            Op::AddStep {
                id: Some("b".into()),
                title: "B".into(),
                depends_on: vec!["a".into()],
                due_at: None,
                after: None,
                status: None,
                tool: None,
                checks: None,
            },
        ];
        let v1 = patch::apply(&p, &ops, &limits, now()).unwrap().plan;
        let later = now() + chrono::Duration::days(3);
        let change = vec![
            Op::SetStatus {
                step: "a".into(),
                status: StepStatus::Completed,
                result: Some("done".into()),
            },
            Op::UpdateStep {
                step: "b".into(),
                title: Some("B2".into()),
                depends_on: None,
                due_at: Some(Some(later)),
                result: None,
            },
            Op::RemoveStep { step: "b".into() },
        ];
        let out = patch::apply(&v1, &change, &limits, now()).unwrap();
        assert_eq!(out.plan.status, PlanStatus::Done);
        let (reverted, changes) = revert(&out.plan, &entry(out.changes, out.plan.version), &limits, now()).unwrap();
        let mut expected = v1.clone();
        expected.version = out.plan.version + 1;
        assert_eq!(reverted, expected);
        assert!(changes.contains(&Change::StepStatus {
            step: "a".into(),
            from: StepStatus::Completed,
            to: StepStatus::Pending
        }));
    }

    #[test]
    fn undoing_a_creation_cancels_the_plan() {
        let mut p = Plan::draft("Trip", "", now());
        p.version = 1;
        let (reverted, _) = revert(
            &p,
            &entry(vec![Change::PlanCreated { title: "Trip".into() }], 1),
            &PlanLimits::default(),
            now(),
        )
        .unwrap();
        assert_eq!((reverted.status, reverted.version), (PlanStatus::Cancelled, 2));
    }
}
