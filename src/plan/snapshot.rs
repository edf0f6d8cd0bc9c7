//! The full-snapshot form of `update_plan`, as Codex-style models send it:
//! the whole list of `{step, status}` every time. Items are matched to the
//! existing steps by title so step ids (and everything keyed by them) survive.

use super::invariants::PlanError;
use super::patch::Op;
use super::{Plan, StepStatus};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SnapshotItem {
    // The step's title (the tool's description says so).
    pub(crate) step: String,
    pub(crate) status: SnapshotStatus,
}

// Snapshot statuses: the three a Codex-style plan knows (a comment, not
// a doc: the model reads the enum itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SnapshotStatus {
    Pending,
    InProgress,
    Completed,
}

impl From<SnapshotStatus> for StepStatus {
    fn from(s: SnapshotStatus) -> StepStatus {
        match s {
            SnapshotStatus::Pending => StepStatus::Pending,
            SnapshotStatus::InProgress => StepStatus::InProgress,
            SnapshotStatus::Completed => StepStatus::Completed,
        }
    }
}

/// Titles match when they are equal ignoring case, surrounding punctuation
/// and runs of whitespace.
pub(crate) fn normalize_title(title: &str) -> String {
    title
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_matches(|c: char| c == '.' || c == ':' || c == ';')
        .to_lowercase()
}

/// Turns a snapshot into patch operations against `plan`:
/// - an item whose title matches an existing step keeps that step's id and
///   sets its status;
/// - an item that matches nothing becomes a new step with a fresh id;
/// - an existing step left out of the snapshot is cancelled (never deleted),
///   unless it is already completed or cancelled;
/// - the steps end up in snapshot order, left-out steps after them.
pub(crate) fn to_ops(plan: &Plan, items: &[SnapshotItem]) -> Result<Vec<Op>, PlanError> {
    if items.is_empty() {
        return Err(PlanError::Snapshot(
            "the snapshot lists no steps; to drop a plan ask the user, to change one send its steps".into(),
        ));
    }
    let mut scratch = plan.clone();
    let mut matched = vec![false; plan.steps.len()];
    let mut ops = Vec::new();
    let mut order = Vec::with_capacity(items.len());

    for item in items {
        let wanted = normalize_title(&item.step);
        let existing = plan
            .steps
            .iter()
            .enumerate()
            .find(|(i, s)| !matched[*i] && normalize_title(&s.title) == wanted)
            .map(|(i, _)| i);
        let status = StepStatus::from(item.status);
        match existing {
            Some(i) => {
                matched[i] = true;
                let step = &plan.steps[i];
                if step.status != status {
                    ops.push(Op::SetStatus {
                        step: step.id.clone(),
                        status,
                        result: None,
                    });
                }
                order.push(step.id.clone());
            }
            None => {
                let id = scratch.fresh_step_id();
                ops.push(Op::AddStep {
                    id: Some(id.clone()),
                    title: item.step.clone(),
                    depends_on: Vec::new(),
                    due_at: None,
                    after: None,
                    status: Some(status),
                    tool: None,
                    checks: None,
                });
                order.push(id);
            }
        }
    }

    for (i, step) in plan.steps.iter().enumerate() {
        if matched[i] {
            continue;
        }
        if !step.status.is_terminal() {
            ops.push(Op::SetStatus {
                step: step.id.clone(),
                status: StepStatus::Cancelled,
                result: None,
            });
        }
        order.push(step.id.clone());
    }

    // New steps were appended in snapshot order; reorder only when the final
    // order differs from what appending produces.
    let mut appended: Vec<String> = plan.steps.iter().map(|s| s.id.clone()).collect();
    appended.extend(order.iter().filter(|id| plan.step(id).is_none()).cloned());
    if appended != order {
        ops.push(Op::Reorder { order });
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{PlanLimits, PlanStatus, patch};
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    fn items(v: serde_json::Value) -> Vec<SnapshotItem> {
        serde_json::from_value(v).unwrap()
    }

    fn apply(plan: &Plan, v: serde_json::Value) -> Result<Plan, PlanError> {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
        let ops = to_ops(plan, &items(v))?;
        patch::apply(plan, &ops, &PlanLimits::default(), now).map(|o| o.plan)
    }

    fn empty() -> Plan {
        Plan::draft(
            "Ship the release",
            "",
            Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
        )
    }

    #[test]
    fn repeated_snapshots_keep_step_ids_stable_by_title() {
        let p1 = apply(
            &empty(),
            json!([
                {"step": "Write changelog", "status": "in_progress"},
                {"step": "Tag release", "status": "pending"},
                {"step": "Publish", "status": "pending"}
            ]),
        )
        .unwrap();
        let ids: Vec<_> = p1.steps.iter().map(|s| s.id.clone()).collect();
        assert_eq!(ids, ["s1", "s2", "s3"]);

        let p2 = apply(
            &p1,
            json!([
                {"step": "write  CHANGELOG.", "status": "completed"},
                {"step": "Tag release", "status": "in_progress"},
                {"step": "Publish", "status": "pending"}
            ]),
        )
        .unwrap();
        assert_eq!(p2.steps.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), ids);
        assert_eq!(
            p2.steps.iter().map(|s| s.status).collect::<Vec<_>>(),
            [StepStatus::Completed, StepStatus::InProgress, StepStatus::Pending]
        );
        assert_eq!(p2.version, p1.version + 1);
    }

    #[test]
    fn new_titles_become_new_steps_in_snapshot_order_and_dropped_ones_are_cancelled() {
        let p1 = apply(
            &empty(),
            json!([
                {"step": "A", "status": "completed"},
                {"step": "B", "status": "pending"},
                {"step": "C", "status": "pending"}
            ]),
        )
        .unwrap();
        let p2 = apply(
            &p1,
            json!([
                {"step": "A", "status": "completed"},
                {"step": "New", "status": "in_progress"},
                {"step": "C", "status": "pending"}
            ]),
        )
        .unwrap();
        let view: Vec<_> = p2
            .steps
            .iter()
            .map(|s| (s.id.as_str(), s.title.as_str(), s.status))
            .collect();
        assert_eq!(
            view,
            [
                ("s1", "A", StepStatus::Completed),
                ("s4", "New", StepStatus::InProgress),
                ("s3", "C", StepStatus::Pending),
                ("s2", "B", StepStatus::Cancelled),
            ]
        );
        assert_eq!(p2.status, PlanStatus::Active);
    }

    #[test]
    fn a_snapshot_cannot_reopen_a_completed_step() {
        let p1 = apply(
            &empty(),
            json!([{"step": "A", "status": "completed"}, {"step": "B", "status": "pending"}]),
        )
        .unwrap();
        let err = apply(
            &p1,
            json!([{"step": "A", "status": "pending"}, {"step": "B", "status": "pending"}]),
        )
        .unwrap_err();
        assert_eq!(
            err,
            PlanError::IllegalTransition {
                step: "s1".into(),
                from: StepStatus::Completed,
                to: StepStatus::Pending
            }
        );
    }

    #[test]
    fn snapshot_statuses_are_limited_to_the_codex_three() {
        let err = serde_json::from_value::<Vec<SnapshotItem>>(json!([{"step": "A", "status": "failed"}])).unwrap_err();
        assert!(err.to_string().contains("unknown variant `failed`"), "{err}");
    }
}
