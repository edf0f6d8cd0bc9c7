//! `update_plan`: the only way a plan changes. Two argument forms:
//! - patch: `{plan_id, expected_version, explanation, ops: [...]}`, or
//!   without `plan_id` and with `title` to create a plan;
//! - snapshot (Codex style): `{explanation?, plan: [{step, status}]}`, mapped
//!   onto stable step ids by title.
//!
//! Everything is validated before anything is written; a refused change
//! leaves the plan as it was and tells the model exactly why.

use super::{Tool, ToolContext, ToolError};
use crate::plan::PlanMode;
use crate::plan::snapshot::SnapshotItem;
use crate::plan::{Objective, Op, PlanId, PlanStatus};
use crate::proposal::AskedView;
use crate::service::{Applied, NewPlan, PlanChange, Snapshot};
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};

pub(crate) struct UpdatePlan;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
// The fields the tool's description names carry no description of their
// own: the model reads every byte of this schema on every call.
pub(crate) struct Args {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) plan_id: Option<PlanId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expected_version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) goal: Option<String>,
    // {kind, slots}
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")]
    pub(crate) objective: Option<Objective>,
    /// orchestrated: tool steps run in parallel
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mode: Option<PlanMode>,
    // Why (kept in the history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) explanation: Option<String>,
    // Applied in order, all or nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ops: Option<Vec<Op>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) plan: Option<Vec<SnapshotItem>>,
}

/// What a plan change did, as the model reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanResult(pub Applied);

#[derive(Serialize)]
struct ChangedView {
    ok: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    created: bool,
    plan_id: PlanId,
    version: u64,
    status: PlanStatus,
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
    proposal: AskedView<'a>,
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
                proposal: proposal.asked(),
                note: "Nothing has changed yet: the user must confirm this proposal. Tell them what it does and ask.",
            }
            .serialize(s),
        }
    }
}

#[async_trait]
impl Tool for UpdatePlan {
    const NAME: &'static str = "update_plan";
    const DESCRIPTION: &'static str = "Change a plan: plan_id, expected_version (as shown), explanation (why), ops. Without plan_id: a new plan (title, goal, ops, mode). Or plan: a snapshot, every step as {step: title, status}.";
    type Args = Args;
    type Output = PlanResult;

    /// The snapshot form and a new plan's objective are told in the
    /// description (and checked by the server), not spelled out.
    fn model_view(&self, schema: &mut serde_json::Value) {
        if let Some(props) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) {
            props.remove("plan");
            props.remove("objective");
            if let Some(id) = props.get_mut("plan_id").and_then(|p| p.as_object_mut()) {
                id.remove("description");
            }
        }
    }

    /// A bare `YYYY-MM-DD` due date means 09:00 that day in the user's
    /// zone (the system prompt tells the model so); RFC 3339 stays as sent.
    fn localize(&self, session: &crate::service::Session, args: &mut serde_json::Value) {
        let Some(ops) = args.get_mut("ops").and_then(|o| o.as_array_mut()) else {
            return;
        };
        for op in ops {
            let Some(due) = op.get_mut("due_at") else { continue };
            let Some(day) = due
                .as_str()
                .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            else {
                continue;
            };
            *due = serde_json::Value::from(crate::plan::due_on(day, session.tz).to_rfc3339());
        }
    }

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
                            mode: args.mode.unwrap_or_default(),
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
