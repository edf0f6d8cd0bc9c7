//! `update_plan`: the only way a plan changes. Two argument forms:
//! - patch: `{plan_id, expected_version, explanation, ops: [...]}`, or
//!   without `plan_id` and with `title` to create a plan;
//! - snapshot (Codex style): `{explanation?, plan: [{step, status}]}`, mapped
//!   onto stable step ids by title.
//!
//! Everything is validated before anything is written; a refused change
//! leaves the plan as it was and tells the model exactly why.

use super::{Tool, ToolContext, ToolError};
use crate::plan::snapshot::SnapshotItem;
use crate::plan::{Objective, Op, PlanId, PlanStatus, render};
use crate::proposal::ProposalView;
use crate::service::{Applied, NewPlan, PlanChange, Snapshot};
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};

pub(crate) struct UpdatePlan;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// The plan to change, e.g. p1. Omit to create a plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) plan_id: Option<PlanId>,
    /// The plan version you are changing (shown in the system prompt);
    /// required with plan_id in the patch form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expected_version: Option<u64>,
    /// Title of a new plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) title: Option<String>,
    /// What a new plan is for, in one sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) goal: Option<String>,
    /// For a new plan: the goal kind and slots it was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) objective: Option<Objective>,
    /// Why this change is made; recorded in the plan history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) explanation: Option<String>,
    /// Patch form: the operations, applied in order, all or nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ops: Option<Vec<Op>>,
    /// Snapshot form: every step of the plan, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) plan: Option<Vec<SnapshotItem>>,
}

/// What a plan change did, as the model reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanResult(pub Applied);

#[derive(Serialize)]
struct ChangedView {
    ok: bool,
    created: bool,
    plan_id: PlanId,
    version: u64,
    status: PlanStatus,
    /// The plan as the system prompt shows it.
    plan: String,
}

#[derive(Serialize)]
struct UnchangedView {
    ok: bool,
    unchanged: bool,
    plan_id: PlanId,
    version: u64,
}

#[derive(Serialize)]
struct ProposedView<'a> {
    ok: bool,
    awaiting_confirmation: bool,
    proposal: ProposalView,
    note: &'a str,
}

impl Serialize for PlanResult {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Applied::Changed { plan, created } => ChangedView {
                ok: true,
                created: *created,
                plan_id: plan.id,
                version: plan.version,
                status: plan.status,
                plan: render::prompt_section(std::slice::from_ref(plan)),
            }
            .serialize(s),
            Applied::Unchanged { plan } => UnchangedView {
                ok: true,
                unchanged: true,
                plan_id: plan.id,
                version: plan.version,
            }
            .serialize(s),
            Applied::Proposed { proposal } => ProposedView {
                ok: true,
                awaiting_confirmation: true,
                proposal: proposal.view(),
                note: "Nothing has changed yet: the user must confirm this proposal. Tell them what it does and ask.",
            }
            .serialize(s),
        }
    }
}

#[async_trait]
impl Tool for UpdatePlan {
    const NAME: &'static str = "update_plan";
    const DESCRIPTION: &'static str = "Create or change one of the user's plans. Patch form: plan_id, expected_version (the version shown in the system prompt), explanation, ops. Omit plan_id and give title to create a plan. Snapshot form: plan = the whole list of {step, status}; steps are matched by title. The server enforces the plan rules and answers with an error you should fix if a change is refused. Creating plans, removing or cancelling steps or plans, moving due dates and adding tool-bound steps become proposals the user must confirm; say so and ask.";
    type Args = Args;
    type Output = PlanResult;

    async fn run(&self, ctx: ToolContext<'_>, args: Args) -> Result<PlanResult, ToolError> {
        let applied = match (args.ops, args.plan) {
            (Some(_), Some(_)) => {
                return Err(ToolError::invalid(
                    "send either `ops` (patch form) or `plan` (snapshot form), not both",
                ));
            }
            (None, None) => {
                return Err(ToolError::invalid(
                    "nothing to change: send `ops` (patch form) or `plan` (the full list of {step, status})",
                ));
            }
            (None, Some(items)) => {
                let snapshot = Snapshot {
                    plan_id: args.plan_id,
                    expected_version: args.expected_version,
                    title: args.title,
                    goal: args.goal,
                    objective: args.objective,
                    items,
                    why: args.explanation,
                };
                ctx.service.snapshot(ctx.session, snapshot).await?
            }
            (Some(ops), None) => {
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
                        let Some(title) = args.title else {
                            return Err(ToolError::invalid(
                                "give `plan_id` (and expected_version) to change a plan, or `title` to create a new one",
                            ));
                        };
                        let new = NewPlan {
                            title,
                            goal: args.goal.unwrap_or_default(),
                            objective: args.objective,
                            ops,
                            why,
                        };
                        ctx.service.create(ctx.session, new).await?
                    }
                    Some(plan_id) => {
                        let Some(expected_version) = args.expected_version else {
                            let current = ctx.service.plan(ctx.session, plan_id).await?;
                            return Err(ToolError::Invalid {
                                message: format!(
                                    "`expected_version` is required with plan_id; {plan_id} is at version {}",
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
                        let change = PlanChange {
                            plan_id,
                            expected_version,
                            ops,
                            why,
                        };
                        ctx.service.change(ctx.session, change).await?
                    }
                }
            }
        };
        Ok(PlanResult(applied))
    }
}
