//! `update_plan`: the only way a plan changes. Two argument forms:
//! - patch: `{plan_id, expected_version, explanation, ops: [...]}`, or
//!   without `plan_id` and with `title` to create a plan;
//! - snapshot (Codex style): `{explanation?, plan: [{step, status}]}`, mapped
//!   onto stable step ids by title.
//!
//! Everything is validated before anything is written; a refused change
//! leaves the plan as it was and tells the model exactly why.

use super::{Tool, ToolContext, ToolError, load_plan, parse_args};
use crate::llm::ToolSpec;
use crate::plan::invariants::check_length;
use crate::plan::snapshot::{self, SnapshotItem};
use crate::plan::{Change, HistoryEntry, Objective, Op, Plan, PlanId, PlanStatus, patch, render};
use crate::proposal::Action;
use crate::proposals;
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

pub struct UpdatePlan;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default)]
    plan_id: Option<PlanId>,
    #[serde(default)]
    expected_version: Option<u64>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    goal: Option<String>,
    /// For a new plan: the goal kind and slots it was made from.
    #[serde(default)]
    objective: Option<Objective>,
    #[serde(default)]
    explanation: Option<String>,
    #[serde(default)]
    ops: Option<Vec<Op>>,
    #[serde(default)]
    plan: Option<Vec<SnapshotItem>>,
}

#[async_trait]
impl Tool for UpdatePlan {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "update_plan",
            description: "Create or change one of the user's plans. Patch form: plan_id, expected_version (the version shown in the system prompt), explanation, ops. Omit plan_id and give title to create a plan. Snapshot form: plan = the whole list of {step, status}; steps are matched by title. The server enforces the plan rules and answers with an error you should fix if a change is refused. Creating plans, removing or cancelling steps or plans, moving due dates and adding tool-bound steps become proposals the user must confirm; say so and ask.",
            parameters: json!({
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "plan_id": {"type": "string", "description": "Plan to change, e.g. p1. Omit to create a plan."},
                    "expected_version": {"type": "integer", "minimum": 0, "description": "The plan version you are changing; required with plan_id in the patch form."},
                    "title": {"type": "string", "description": "Title of a new plan."},
                    "goal": {"type": "string", "description": "What a new plan is for, in one sentence."},
                    "objective": {"type": "object", "description": "For a new plan: {kind, slots} of the goal.", "properties": {"kind": {"type": "string"}, "slots": {"type": "object"}}, "required": ["kind"]},
                    "explanation": {"type": "string", "description": "Why this change is made; recorded in the plan history."},
                    "ops": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["op"],
                            "properties": {
                                "op": {"enum": ["add_step", "update_step", "remove_step", "reorder", "set_status", "rename_plan", "cancel_plan"]},
                                "id": {"type": "string", "description": "add_step: optional step id (a-z, 0-9, _ and -)"},
                                "step": {"type": "string", "description": "The step id to change"},
                                "title": {"type": "string"},
                                "after": {"type": "string", "description": "add_step: insert after this step id"},
                                "depends_on": {"type": "array", "items": {"type": "string"}},
                                "due_at": {"type": ["string", "null"], "description": "RFC 3339 or YYYY-MM-DD; null clears"},
                                "status": {"enum": ["pending", "in_progress", "completed", "failed", "cancelled"]},
                                "result": {"type": "string", "description": "What the step produced"},
                                "order": {"type": "array", "items": {"type": "string"}, "description": "reorder: every step id once"}
                            }
                        }
                    },
                    "plan": {
                        "type": "array",
                        "description": "Snapshot form: every step of the plan, in order.",
                        "items": {
                            "type": "object",
                            "required": ["step", "status"],
                            "additionalProperties": false,
                            "properties": {
                                "step": {"type": "string"},
                                "status": {"enum": ["pending", "in_progress", "completed"]}
                            }
                        }
                    }
                }
            }),
        }
    }

    async fn call(&self, ctx: &ToolContext, arguments: &str) -> Result<Value, ToolError> {
        let args: Args = parse_args("update_plan", arguments)?;
        if let Some(explanation) = &args.explanation {
            check_length("explanation", explanation, ctx.limits.max_explanation_chars)?;
        }
        match (args.ops.clone(), args.plan.clone()) {
            (Some(_), Some(_)) => Err(ToolError::invalid(
                "send either `ops` (patch form) or `plan` (snapshot form), not both",
            )),
            (None, None) => Err(ToolError::invalid(
                "nothing to change: send `ops` (patch form) or `plan` (the full list of {step, status})",
            )),
            (Some(ops), None) => patch_form(ctx, &args, ops).await,
            (None, Some(items)) => snapshot_form(ctx, &args, &items).await,
        }
    }
}

async fn patch_form(ctx: &ToolContext, args: &Args, ops: Vec<Op>) -> Result<Value, ToolError> {
    let why = match args.explanation.as_deref().map(str::trim) {
        Some(e) if !e.is_empty() => e.to_owned(),
        _ => {
            return Err(ToolError::invalid(
                "`explanation` is required: say why the plan changes",
            ));
        }
    };
    match args.plan_id {
        None => {
            let Some(title) = args.title.clone() else {
                return Err(ToolError::invalid(
                    "give `plan_id` (and expected_version) to change a plan, or `title` to create a new one",
                ));
            };
            create(
                ctx,
                title,
                args.goal.clone().unwrap_or_default(),
                args.objective.clone(),
                why,
                ops,
            )
            .await
        }
        Some(id) => {
            let current = load_plan(ctx, id).await?;
            let Some(expected) = args.expected_version else {
                return Err(ToolError::Invalid {
                    message: format!(
                        "`expected_version` is required with plan_id; {id} is at version {}",
                        current.version
                    ),
                    current: Some(Box::new(current)),
                });
            };
            if args.title.is_some() || args.goal.is_some() || args.objective.is_some() {
                return Err(ToolError::invalid(
                    "`title`, `goal` and `objective` are only for new plans; rename with the rename_plan op",
                ));
            }
            commit(ctx, current, expected, &ops, why).await
        }
    }
}

async fn snapshot_form(ctx: &ToolContext, args: &Args, items: &[SnapshotItem]) -> Result<Value, ToolError> {
    let why = args
        .explanation
        .clone()
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "plan snapshot".into());
    let target = match args.plan_id {
        Some(id) => Some(load_plan(ctx, id).await?),
        None => {
            let mut active: Vec<Plan> = ctx
                .store
                .list_plans(&ctx.user)
                .await?
                .into_iter()
                .filter(|p| p.status == PlanStatus::Active)
                .collect();
            match active.len() {
                0 => None,
                1 => active.pop(),
                _ => {
                    let ids: Vec<String> = active.iter().map(|p| format!("{} ({})", p.id, p.title)).collect();
                    return Err(ToolError::invalid(format!(
                        "the user has several active plans; say which with plan_id: {}",
                        ids.join(", ")
                    )));
                }
            }
        }
    };
    match target {
        None => {
            let title = args
                .title
                .clone()
                .or_else(|| args.explanation.clone())
                .or_else(|| items.first().map(|i| i.step.clone()))
                .unwrap_or_default();
            let title: String = title
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(ctx.limits.max_title_chars)
                .collect();
            let draft = Plan::draft(title.clone(), args.goal.clone().unwrap_or_default(), ctx.now);
            let ops = snapshot::to_ops(&draft, items)?;
            create(
                ctx,
                title,
                args.goal.clone().unwrap_or_default(),
                args.objective.clone(),
                why,
                ops,
            )
            .await
        }
        Some(current) => {
            let expected = args.expected_version.unwrap_or(current.version);
            let ops = snapshot::to_ops(&current, items)?;
            commit(ctx, current, expected, &ops, why).await
        }
    }
}

pub(crate) async fn create(
    ctx: &ToolContext,
    title: String,
    goal: String,
    objective: Option<Objective>,
    why: String,
    ops: Vec<Op>,
) -> Result<Value, ToolError> {
    let active = ctx
        .store
        .list_plans(&ctx.user)
        .await?
        .iter()
        .filter(|p| p.status == PlanStatus::Active)
        .count();
    if active >= ctx.max_active_plans {
        return Err(ToolError::invalid(format!(
            "the user already has {active} active plans, the most allowed; finish or cancel one first"
        )));
    }
    let mut draft = Plan::draft(title.trim(), goal.trim(), ctx.now);
    if let Some(objective) = objective {
        draft.objective = objective;
    }
    let outcome = patch::apply(&draft, &ops, &ctx.limits, ctx.now)?;
    let mut plan = outcome.plan;
    plan.version = 1;
    plan.status = plan.derived_status();
    let mut changes = vec![Change::PlanCreated {
        title: plan.title.clone(),
    }];
    changes.extend(outcome.changes);
    if ctx.confirm.needs_confirmation(&changes) {
        return proposals::propose(
            ctx,
            &plan.clone(),
            Action::Create { plan: Box::new(plan) },
            changes,
            why,
        )
        .await;
    }
    let entry = HistoryEntry {
        at: ctx.now,
        actor: ctx.actor,
        why,
        version: 1,
        changes,
        undoes: None,
    };
    let stored = ctx.store.create_plan(&ctx.user, plan, entry).await?;
    ctx.hub.publish_plan(&ctx.user, &stored, false);
    Ok(success(&stored, true))
}

async fn commit(ctx: &ToolContext, current: Plan, expected: u64, ops: &[Op], why: String) -> Result<Value, ToolError> {
    if expected != current.version {
        return Err(ToolError::Invalid {
            message: format!(
                "plan {} is at version {}, not {expected}: it changed since you read it; redo your change against the current plan",
                current.id, current.version
            ),
            current: Some(Box::new(current)),
        });
    }
    let outcome = patch::apply(&current, ops, &ctx.limits, ctx.now)?;
    if outcome.changes.is_empty() {
        return Ok(json!({"ok": true, "unchanged": true, "plan_id": current.id, "version": current.version}));
    }
    if ctx.confirm.needs_confirmation(&outcome.changes) {
        return proposals::propose(ctx, &current, Action::Patch { ops: ops.to_vec() }, outcome.changes, why).await;
    }
    let entry = HistoryEntry {
        at: ctx.now,
        actor: ctx.actor,
        why,
        version: outcome.plan.version,
        changes: outcome.changes,
        undoes: None,
    };
    ctx.store
        .update_plan(&ctx.user, &outcome.plan, current.version, entry)
        .await?;
    ctx.hub.publish_plan(&ctx.user, &outcome.plan, false);
    Ok(success(&outcome.plan, false))
}

fn success(plan: &Plan, created: bool) -> Value {
    json!({
        "ok": true,
        "created": created,
        "plan_id": plan.id,
        "version": plan.version,
        "status": plan.status,
        "plan": render::prompt_section(std::slice::from_ref(plan)),
    })
}
