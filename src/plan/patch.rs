//! The patch form of a plan change: a list of operations applied to a copy of
//! the plan, then checked as a whole. Either every operation applies and the
//! result satisfies every invariant, or nothing changes.

use super::invariants::{self, PlanError, PlanLimits, check_free_text, check_text, valid_step_id};
use super::{Change, Plan, PlanStatus, Step, StepStatus, ToolBinding};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize};

// One operation of an `update_plan` patch (a comment: the model's schema
// lists the operations itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    // Appended, or right after `after`.
    AddStep {
        // a-z 0-9 _ -; generated if absent (refusals say so).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        title: String,
        // Step ids first.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        depends_on: Vec<String>,
        /// RFC 3339 or YYYY-MM-DD (09:00 in the user's zone).
        #[serde(default, deserialize_with = "due_opt", skip_serializing_if = "Option::is_none")]
        #[schemars(with = "Option<String>")]
        due_at: Option<DateTime<Utc>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<StepStatus>,
        /// Confirmed by the user before it first runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tool: Option<ToolBinding>,
        // A step in depends_on it verifies.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        checks: Option<String>,
    },
    // Absent fields stay.
    UpdateStep {
        step: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        depends_on: Option<Vec<String>>,
        /// RFC 3339 or YYYY-MM-DD; null clears.
        #[serde(default, deserialize_with = "due_clearable", skip_serializing_if = "Option::is_none")]
        #[schemars(with = "Option<String>")]
        due_at: Option<Option<DateTime<Utc>>>,
        // What the step produced.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<String>,
    },
    RemoveStep {
        step: String,
    },
    // Every step id once.
    Reorder {
        order: Vec<String>,
    },
    SetStatus {
        step: String,
        status: StepStatus,
        // What the step produced.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<String>,
    },
    RenamePlan {
        title: String,
    },
    // Steps keep their statuses.
    CancelPlan {},
    // A done or failed step (and its checks) back to pending.
    // Refused while a step that waits on it (other than its checks) is in
    // progress or done: that work was built on what would be undone.
    Reopen {
        step: String,
        // Kept as the step's result.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// The operations that make every step waiting on `from` wait on `to`
/// instead (a step put in another's place).
pub(crate) fn repoint_dependents(plan: &Plan, from: &str, to: &str) -> Vec<Op> {
    plan.steps
        .iter()
        .filter(|s| s.depends_on.iter().any(|d| d == from))
        .map(|waiting| Op::UpdateStep {
            step: waiting.id.clone(),
            title: None,
            depends_on: Some(
                waiting
                    .depends_on
                    .iter()
                    .map(|d| if d == from { to.to_owned() } else { d.clone() })
                    .collect(),
            ),
            due_at: None,
            result: None,
        })
        .collect()
}

/// A due date that is neither RFC 3339 nor YYYY-MM-DD.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a date: use RFC 3339 (2026-12-01T09:00:00Z) or YYYY-MM-DD")]
pub struct BadDue(pub String);

/// A due date as a model or a person writes it: RFC 3339, or a bare
/// `YYYY-MM-DD`, which means 09:00 UTC that day (the `update_plan` tool
/// first makes a model's bare date 09:00 in the user's zone).
pub(crate) fn parse_due(text: &str) -> Result<DateTime<Utc>, BadDue> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(at) = day.and_hms_opt(9, 0, 0)
    {
        return Ok(at.and_utc());
    }
    Err(BadDue(text.to_owned()))
}

fn due_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    text.map(|t| parse_due(&t).map_err(serde::de::Error::custom))
        .transpose()
}

fn due_clearable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<DateTime<Utc>>>, D::Error> {
    due_opt(d).map(Some)
}

/// A successfully applied patch: the new plan and what changed. An empty
/// `changes` means the patch was a no-op and nothing needs to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOutcome {
    pub plan: Plan,
    pub changes: Vec<Change>,
}

/// Applies `ops` to a copy of `plan`. The version is bumped once if anything
/// changed. The original plan is never touched.
pub fn apply(plan: &Plan, ops: &[Op], limits: &PlanLimits, now: DateTime<Utc>) -> Result<PatchOutcome, PlanError> {
    match plan.status {
        PlanStatus::Active => {}
        PlanStatus::Done | PlanStatus::Cancelled => return Err(PlanError::PlanClosed(plan.status.as_str())),
    }
    if ops.len() > limits.max_ops {
        return Err(PlanError::TooManyOps {
            limit: limits.max_ops,
            got: ops.len(),
        });
    }
    let mut next = plan.clone();
    let mut changes = Vec::new();
    for op in ops {
        apply_op(&mut next, op, limits, &mut changes)?;
    }
    invariants::validate(&next, limits)?;
    finish(&mut next, plan, &mut changes, now);
    Ok(PatchOutcome { plan: next, changes })
}

/// Settles the plan status and bumps the version if anything changed.
fn finish(next: &mut Plan, before: &Plan, changes: &mut Vec<Change>, now: DateTime<Utc>) {
    let status = next.derived_status();
    if status != next.status && next.status != PlanStatus::Cancelled {
        changes.push(Change::PlanStatus {
            from: next.status,
            to: status,
        });
        next.status = status;
    }
    if !changes.is_empty() {
        next.version = before.version + 1;
        next.updated_at = now;
    }
}

fn index_of(plan: &Plan, step: &str) -> Result<usize, PlanError> {
    plan.step_index(step)
        .ok_or_else(|| PlanError::UnknownStep(step.to_owned()))
}

// Long: one arm per operation, each a few lines; read together they are
// the whole contract of `update_plan` (the schema the model sees).
fn apply_op(plan: &mut Plan, op: &Op, limits: &PlanLimits, changes: &mut Vec<Change>) -> Result<(), PlanError> {
    match op {
        Op::AddStep {
            id,
            title,
            depends_on,
            due_at,
            after,
            status,
            tool,
            checks,
        } => {
            check_text("a step title", title, limits.max_title_chars)?;
            let id = match id {
                Some(id) => {
                    if !valid_step_id(id) {
                        return Err(PlanError::InvalidStepId(id.clone()));
                    }
                    if plan.step(id).is_some() {
                        return Err(PlanError::DuplicateStepId(id.clone()));
                    }
                    reserve_generated_id(plan, id);
                    id.clone()
                }
                None => plan.fresh_step_id(),
            };
            let index = match after {
                Some(after) => index_of(plan, after)? + 1,
                None => plan.steps.len(),
            };
            let status = status.unwrap_or(StepStatus::Pending);
            invariants::check_transition(&id, StepStatus::Pending, status)?;
            let step = Step {
                id,
                title: title.trim().to_owned(),
                status,
                depends_on: depends_on.clone(),
                due_at: *due_at,
                result: None,
                tool: tool.clone(),
                checks: checks.clone(),
            };
            if plan.steps.len() >= limits.max_steps {
                return Err(PlanError::TooManySteps {
                    limit: limits.max_steps,
                    got: plan.steps.len() + 1,
                });
            }
            changes.push(Change::StepAdded {
                step: step.clone(),
                index,
            });
            plan.steps.insert(index, step);
        }
        Op::UpdateStep {
            step,
            title,
            depends_on,
            due_at,
            result,
        } => {
            let i = index_of(plan, step)?;
            let s = &mut plan.steps[i];
            if let Some(title) = title {
                check_text(&format!("the title of step `{step}`"), title, limits.max_title_chars)?;
                let title = title.trim();
                if s.title != title {
                    changes.push(Change::StepTitle {
                        step: step.clone(),
                        from: s.title.clone(),
                        to: title.to_owned(),
                    });
                    s.title = title.to_owned();
                }
            }
            if let Some(deps) = depends_on
                && &s.depends_on != deps
            {
                changes.push(Change::StepDeps {
                    step: step.clone(),
                    from: s.depends_on.clone(),
                    to: deps.clone(),
                });
                s.depends_on = deps.clone();
            }
            if let Some(due) = due_at
                && &s.due_at != due
            {
                changes.push(Change::StepDue {
                    step: step.clone(),
                    from: s.due_at,
                    to: *due,
                });
                s.due_at = *due;
            }
            if let Some(result) = result {
                set_result(s, result, limits, changes)?;
            }
        }
        Op::RemoveStep { step } => {
            let i = index_of(plan, step)?;
            let dependents: Vec<String> = plan
                .steps
                .iter()
                .filter(|s| s.depends_on.contains(step))
                .map(|s| s.id.clone())
                .collect();
            if !dependents.is_empty() {
                return Err(PlanError::StillDependedOn {
                    step: step.clone(),
                    dependents,
                });
            }
            let removed = plan.steps.remove(i);
            changes.push(Change::StepRemoved {
                step: removed,
                index: i,
            });
        }
        Op::Reorder { order } => {
            if order.len() != plan.steps.len() {
                return Err(PlanError::BadReorder(format!(
                    "the plan has {} steps but the order lists {}",
                    plan.steps.len(),
                    order.len()
                )));
            }
            let mut reordered = Vec::with_capacity(order.len());
            let mut remaining = plan.steps.clone();
            for id in order {
                let Some(pos) = remaining.iter().position(|s| &s.id == id) else {
                    return Err(if plan.step(id).is_some() {
                        PlanError::BadReorder(format!("`{id}` is listed twice"))
                    } else {
                        PlanError::UnknownStep(id.clone())
                    });
                };
                reordered.push(remaining.swap_remove(pos));
            }
            let from: Vec<String> = plan.steps.iter().map(|s| s.id.clone()).collect();
            if &from != order {
                changes.push(Change::Reordered {
                    from,
                    to: order.clone(),
                });
                plan.steps = reordered;
            }
        }
        Op::SetStatus { step, status, result } => {
            let i = index_of(plan, step)?;
            let s = &mut plan.steps[i];
            invariants::check_transition(step, s.status, *status)?;
            if s.status != *status {
                changes.push(Change::StepStatus {
                    step: step.clone(),
                    from: s.status,
                    to: *status,
                });
                s.status = *status;
            }
            if let Some(result) = result {
                set_result(s, result, limits, changes)?;
            }
        }
        Op::Reopen { step, reason } => {
            let i = index_of(plan, step)?;
            let blocking: Vec<String> = plan
                .steps
                .iter()
                .filter(|s| s.depends_on.contains(step) && s.checks.as_ref() != Some(step))
                .filter(|s| matches!(s.status, StepStatus::InProgress | StepStatus::Completed))
                .map(|s| s.id.clone())
                .collect();
            if !blocking.is_empty() {
                return Err(PlanError::StillDependedOn {
                    step: step.clone(),
                    dependents: blocking,
                });
            }
            let s = &mut plan.steps[i];
            if !matches!(s.status, StepStatus::Completed | StepStatus::Failed) {
                return Err(PlanError::IllegalTransition {
                    step: step.clone(),
                    from: s.status,
                    to: StepStatus::Pending,
                });
            }
            changes.push(Change::StepStatus {
                step: step.clone(),
                from: s.status,
                to: StepStatus::Pending,
            });
            s.status = StepStatus::Pending;
            if let Some(reason) = reason {
                set_result(s, reason, limits, changes)?;
            }
            // Its checks verified what is now undone: they run again after it.
            for c in plan.steps.iter_mut().filter(|c| c.checks.as_ref() == Some(step)) {
                if c.status != StepStatus::Pending && c.status != StepStatus::Cancelled {
                    changes.push(Change::StepStatus {
                        step: c.id.clone(),
                        from: c.status,
                        to: StepStatus::Pending,
                    });
                    c.status = StepStatus::Pending;
                }
            }
        }
        Op::CancelPlan {} => {
            changes.push(Change::PlanStatus {
                from: plan.status,
                to: PlanStatus::Cancelled,
            });
            plan.status = PlanStatus::Cancelled;
        }
        Op::RenamePlan { title } => {
            check_text("the plan title", title, limits.max_title_chars)?;
            let title = title.trim();
            if plan.title != title {
                changes.push(Change::PlanRenamed {
                    from: plan.title.clone(),
                    to: title.to_owned(),
                });
                plan.title = title.to_owned();
            }
        }
    }
    Ok(())
}

fn set_result(s: &mut Step, result: &str, limits: &PlanLimits, changes: &mut Vec<Change>) -> Result<(), PlanError> {
    check_free_text(
        &format!("the result of step `{}`", s.id),
        result,
        limits.max_result_chars,
    )?;
    let result = Some(result.trim().to_owned()).filter(|r| !r.is_empty());
    if s.result != result {
        changes.push(Change::StepResult {
            step: s.id.clone(),
            from: s.result.clone(),
            to: result.clone(),
        });
        s.result = result;
    }
    Ok(())
}

/// An explicit id that looks generated (`s7`) moves the generator past it,
/// so a later generated id can never collide with it.
fn reserve_generated_id(plan: &mut Plan, id: &str) {
    if let Some(n) = id.strip_prefix('s').and_then(|n| n.parse::<u32>().ok()) {
        plan.next_step_seq = plan.next_step_seq.max(n.saturating_add(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PlanId;
    use chrono::TimeZone;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
    }

    fn ops(value: serde_json::Value) -> Vec<Op> {
        serde_json::from_value(value).expect("ops parse")
    }

    fn base() -> Plan {
        let mut p = Plan::draft("Onboard Ana", "Ana starts Dec 1", now());
        p.id = PlanId(1);
        p.version = 3;
        let out = apply(
            &p,
            &ops(json!([
                {"op": "add_step", "id": "laptop", "title": "Order laptop", "due_at": "2026-11-24"},
                {"op": "add_step", "id": "accounts", "title": "Create accounts", "depends_on": ["laptop"]},
                {"op": "add_step", "id": "welcome", "title": "Welcome lunch"}
            ])),
            &PlanLimits::default(),
            now(),
        )
        .unwrap();
        out.plan
    }

    #[test]
    fn adding_steps_bumps_the_version_once_and_records_each_addition() {
        let p = base();
        assert_eq!(p.version, 4);
        assert_eq!(
            p.steps.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["laptop", "accounts", "welcome"]
        );
        assert_eq!(
            p.steps[0].due_at,
            Some(Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap())
        );
    }

    #[test]
    fn generated_ids_never_reuse_a_removed_id() {
        let p = base();
        let out = apply(
            &p,
            &ops(json!([{"op": "add_step", "title": "A"}])),
            &PlanLimits::default(),
            now(),
        )
        .unwrap();
        assert_eq!(out.plan.steps[3].id, "s1");
        let out = apply(
            &out.plan,
            &ops(json!([{"op": "remove_step", "step": "s1"}, {"op": "add_step", "title": "B"}])),
            &PlanLimits::default(),
            now(),
        )
        .unwrap();
        assert_eq!(out.plan.steps[3].id, "s2");
    }

    #[test]
    fn completing_the_last_open_step_marks_the_plan_done() {
        let p = base();
        let out = apply(
            &p,
            &ops(json!([
                {"op": "set_status", "step": "laptop", "status": "completed", "result": "MacBook ordered"},
                {"op": "set_status", "step": "accounts", "status": "completed"},
                {"op": "set_status", "step": "welcome", "status": "cancelled"}
            ])),
            &PlanLimits::default(),
            now(),
        )
        .unwrap();
        assert_eq!(out.plan.status, PlanStatus::Done);
        assert_eq!(out.plan.version, 5);
        assert_eq!(out.plan.steps[0].result.as_deref(), Some("MacBook ordered"));
        assert_eq!(
            out.changes.last(),
            Some(&Change::PlanStatus {
                from: PlanStatus::Active,
                to: PlanStatus::Done
            })
        );
        let again = apply(
            &out.plan,
            &ops(json!([{"op": "rename_plan", "title": "x"}])),
            &PlanLimits::default(),
            now(),
        );
        assert_eq!(again, Err(PlanError::PlanClosed("done")));
    }

    #[test]
    fn a_failing_operation_leaves_the_plan_untouched() {
        let p = base();
        let before = p.clone();
        let result = apply(
            &p,
            &ops(json!([
                {"op": "rename_plan", "title": "Renamed"},
                {"op": "set_status", "step": "accounts", "status": "in_progress"}
            ])),
            &PlanLimits::default(),
            now(),
        );
        assert_eq!(
            result,
            Err(PlanError::DependenciesNotDone {
                step: "accounts".into(),
                status: StepStatus::InProgress,
                waiting_on: vec!["laptop".into()]
            })
        );
        assert_eq!(p, before);
    }

    #[test]
    fn operations_are_rejected_with_precise_errors() {
        let p = base();
        let limits = PlanLimits::default();
        let cases = vec![
            (
                json!([{"op": "remove_step", "step": "nope"}]),
                PlanError::UnknownStep("nope".into()),
            ),
            (
                json!([{"op": "remove_step", "step": "laptop"}]),
                PlanError::StillDependedOn {
                    step: "laptop".into(),
                    dependents: vec!["accounts".into()],
                },
            ),
            (
                json!([{"op": "add_step", "id": "laptop", "title": "again"}]),
                PlanError::DuplicateStepId("laptop".into()),
            ),
            (
                json!([{"op": "update_step", "step": "laptop", "depends_on": ["accounts"]}]),
                PlanError::Cycle(vec!["laptop".into(), "accounts".into(), "laptop".into()]),
            ),
            (
                json!([{"op": "reorder", "order": ["laptop", "laptop", "welcome"]}]),
                PlanError::BadReorder("`laptop` is listed twice".into()),
            ),
            (
                json!([{"op": "reorder", "order": ["laptop"]}]),
                PlanError::BadReorder("the plan has 3 steps but the order lists 1".into()),
            ),
            (
                json!([{"op": "set_status", "step": "laptop", "status": "in_progress"}, {"op": "set_status", "step": "welcome", "status": "in_progress"}]),
                PlanError::TooManyInProgress(vec!["laptop".into(), "welcome".into()]),
            ),
            (
                json!([{"op": "set_status", "step": "laptop", "status": "completed"}, {"op": "set_status", "step": "laptop", "status": "pending"}]),
                PlanError::IllegalTransition {
                    step: "laptop".into(),
                    from: StepStatus::Completed,
                    to: StepStatus::Pending,
                },
            ),
            (
                json!([{"op": "add_step", "title": " "}]),
                PlanError::Empty {
                    what: "a step title".into(),
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                apply(&p, &ops(input.clone()), &limits, now()),
                Err(expected),
                "input: {input}"
            );
        }
    }

    #[test]
    fn unknown_fields_and_bad_dates_are_refused_when_parsing() {
        let bad_field =
            serde_json::from_value::<Vec<Op>>(json!([{"op": "remove_step", "step": "a", "user": "mallory"}]));
        assert!(bad_field.unwrap_err().to_string().contains("unknown field `user`"));
        let bad_date =
            serde_json::from_value::<Vec<Op>>(json!([{"op": "add_step", "title": "a", "due_at": "next week"}]));
        assert!(bad_date.unwrap_err().to_string().contains("`next week` is not a date"));
        let bad_op = serde_json::from_value::<Vec<Op>>(json!([{"op": "explode"}]));
        assert!(bad_op.unwrap_err().to_string().contains("unknown variant `explode`"));
    }

    #[test]
    fn update_step_can_move_and_clear_a_due_date() {
        let p = base();
        let moved = apply(
            &p,
            &ops(json!([{"op": "update_step", "step": "laptop", "due_at": "2026-11-27T15:00:00+01:00"}])),
            &PlanLimits::default(),
            now(),
        )
        .unwrap();
        assert_eq!(
            moved.plan.steps[0].due_at,
            Some(Utc.with_ymd_and_hms(2026, 11, 27, 14, 0, 0).unwrap())
        );
        let cleared = apply(
            &moved.plan,
            &ops(json!([{"op": "update_step", "step": "laptop", "due_at": null}])),
            &PlanLimits::default(),
            now(),
        )
        .unwrap();
        assert_eq!(cleared.plan.steps[0].due_at, None);
        assert_eq!(cleared.changes.len(), 1);
    }

    #[test]
    fn a_no_op_patch_changes_nothing_and_keeps_the_version() {
        let p = base();
        let out = apply(
            &p,
            &ops(json!([{"op": "set_status", "step": "welcome", "status": "pending"}])),
            &PlanLimits::default(),
            now(),
        )
        .unwrap();
        assert!(out.changes.is_empty());
        assert_eq!(out.plan, p);
    }

    #[test]
    fn reopen_sends_a_done_step_back_with_its_checks_unless_something_else_built_on_it() {
        let mut p = base();
        p.steps.clear();
        let mut a = Step::new("a", "Deploy");
        a.status = StepStatus::Completed;
        let mut b = Step::new("b", "Announce");
        b.depends_on = vec!["a".into()];
        b.status = StepStatus::Completed;
        let mut c = Step::new("c", "Test it");
        c.depends_on = vec!["a".into()];
        c.checks = Some("a".into());
        c.status = StepStatus::Completed;
        p.steps = vec![a, b, c];
        let reopen = ops(json!([{"op": "reopen", "step": "a", "reason": "the test failed"}]));
        let refused = apply(&p, &reopen, &PlanLimits::default(), now()).unwrap_err();
        assert_eq!(
            refused,
            PlanError::StillDependedOn {
                step: "a".into(),
                dependents: vec!["b".into()]
            }
        );
        p.steps[1].status = StepStatus::Pending;
        let out = apply(&p, &reopen, &PlanLimits::default(), now()).unwrap();
        let status = |id: &str| out.plan.step(id).unwrap().status;
        assert_eq!((status("a"), status("c")), (StepStatus::Pending, StepStatus::Pending));
        assert_eq!(out.plan.step("a").unwrap().result.as_deref(), Some("the test failed"));
        let pending = ops(json!([{"op": "reopen", "step": "b"}]));
        assert!(
            apply(&out.plan, &pending, &PlanLimits::default(), now()).is_err(),
            "only a done or failed step"
        );
    }
}
