//! Proposals: plan changes that wait for the user's yes. Creating a plan,
//! removing or cancelling steps or plans, moving due dates and adding steps
//! bound to tools are proposed, not applied (the policy is configurable);
//! status updates and rewordings apply at once. A proposal made against
//! version N of a plan is refused if the plan has changed since.

use crate::plan::{Actor, Change, HistoryEntry, Op, Plan, PlanId, PlanStatus, StepStatus, patch};
use crate::protocol::ServerFrame;
use crate::store::{Accepted, StoreError};
use crate::tools::{ToolContext, ToolError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which kinds of change need the user's yes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfirmPolicy {
    pub create_plan: bool,
    pub remove: bool,
    pub reschedule: bool,
    pub tool_steps: bool,
}

impl Default for ConfirmPolicy {
    fn default() -> Self {
        ConfirmPolicy {
            create_plan: true,
            remove: true,
            reschedule: true,
            tool_steps: true,
        }
    }
}

impl ConfirmPolicy {
    pub fn needs_confirmation(&self, changes: &[Change]) -> bool {
        changes.iter().any(|c| match c {
            Change::PlanCreated { .. } => self.create_plan,
            Change::StepRemoved { .. } => self.remove,
            Change::StepStatus { to, .. } => self.remove && *to == StepStatus::Cancelled,
            Change::PlanStatus { to, .. } => self.remove && *to == PlanStatus::Cancelled,
            Change::StepDue { from, .. } => self.reschedule && from.is_some(),
            Change::StepAdded { step, .. } => self.tool_steps && step.tool.is_some(),
            Change::PlanRenamed { .. }
            | Change::StepTitle { .. }
            | Change::StepDeps { .. }
            | Change::StepResult { .. }
            | Change::Reordered { .. } => false,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProposalStatus {
    Open,
    Accepted,
    Declined,
    /// The plan changed after the proposal was made.
    Stale,
    /// A newer proposal replaced it.
    Superseded,
}

/// What applying the proposal does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    Create { plan: Box<Plan> },
    Patch { ops: Vec<Op> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// "r1", "r2", … per user.
    pub id: String,
    /// The plan it changes; none when it creates one.
    pub plan_id: Option<PlanId>,
    pub base_version: u64,
    pub summary: String,
    pub changes: Vec<Change>,
    pub status: ProposalStatus,
    pub why: String,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub action: Action,
}

/// The proposal as clients see it (no internal action).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ProposalView {
    pub id: String,
    #[schema(value_type = Option<String>)]
    pub plan_id: Option<PlanId>,
    pub summary: String,
    pub changes: Vec<Change>,
    pub status: ProposalStatus,
}

impl Proposal {
    pub fn view(&self) -> ProposalView {
        ProposalView {
            id: self.id.clone(),
            plan_id: self.plan_id,
            summary: self.summary.clone(),
            changes: self.changes.clone(),
            status: self.status,
        }
    }
}

/// A readable one-paragraph summary of changes to `plan`.
pub fn summarize(plan: &Plan, changes: &[Change]) -> String {
    let title = |id: &str| plan.step(id).map(|s| s.title.clone()).unwrap_or_else(|| id.to_owned());
    let day = |d: &Option<DateTime<Utc>>| {
        d.map(|d| d.format("%a %b %-d").to_string())
            .unwrap_or_else(|| "no date".into())
    };
    let mut parts: Vec<String> = Vec::new();
    let mut added = Vec::new();
    for c in changes {
        match c {
            Change::PlanCreated { title } => parts.push(format!("Create the plan “{title}”")),
            Change::StepAdded { step, .. } => added.push(match step.due_at {
                Some(d) => format!("{} (due {})", step.title, d.format("%a %b %-d")),
                None => step.title.clone(),
            }),
            Change::StepRemoved { step, .. } => parts.push(format!("Remove “{}”", step.title)),
            Change::StepStatus {
                step,
                to: StepStatus::Cancelled,
                ..
            } => parts.push(format!("Skip “{}”", title(step))),
            Change::StepStatus { step, to, .. } => {
                parts.push(format!("Mark “{}” {}", title(step), to.as_str().replace('_', " ")))
            }
            Change::StepDue { step, from, to } => {
                parts.push(format!("Move “{}” from {} to {}", title(step), day(from), day(to)))
            }
            Change::PlanStatus {
                to: PlanStatus::Cancelled,
                ..
            } => parts.push(format!("Cancel the plan “{}”", plan.title)),
            Change::PlanStatus { .. } => {}
            Change::PlanRenamed { to, .. } => parts.push(format!("Rename the plan to “{to}”")),
            Change::StepTitle { step, to, .. } => parts.push(format!("Rename “{}” to “{to}”", title(step))),
            Change::StepDeps { step, to, .. } => {
                parts.push(format!("Make “{}” wait for {}", title(step), to.join(", ")))
            }
            Change::StepResult { step, .. } => parts.push(format!("Record the result of “{}”", title(step))),
            Change::Reordered { .. } => parts.push("Reorder the steps".into()),
        }
    }
    if !added.is_empty() {
        parts.push(format!(
            "Add {}: {}",
            if added.len() == 1 { "a step" } else { "steps" },
            added.join("; ")
        ));
    }
    parts.join(". ")
}

/// Stores a proposal for `changes` (superseding older open ones), tells the
/// user's sockets, and returns what the model should read.
pub async fn propose(
    ctx: &ToolContext,
    before: &Plan,
    action: Action,
    changes: Vec<Change>,
    why: String,
) -> Result<serde_json::Value, ToolError> {
    for mut old in ctx.store.open_proposals(&ctx.user).await? {
        old.status = ProposalStatus::Superseded;
        old.decided_at = Some(ctx.now);
        match ctx.store.close_proposal(&ctx.user, &old).await {
            Ok(()) => {}
            // Answered meanwhile: nothing left to supersede.
            Err(StoreError::ProposalClosed { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
        ctx.hub
            .publish(&ctx.user, &ServerFrame::Proposal { proposal: old.view() });
    }
    let plan_id = match &action {
        Action::Create { .. } => None,
        Action::Patch { .. } => Some(before.id),
    };
    let draft = Proposal {
        id: String::new(),
        plan_id,
        base_version: before.version,
        summary: summarize(before, &changes),
        changes,
        status: ProposalStatus::Open,
        why,
        created_at: ctx.now,
        decided_at: None,
        action,
    };
    let proposal = ctx.store.create_proposal(&ctx.user, draft).await?;
    ctx.hub.publish(
        &ctx.user,
        &ServerFrame::Proposal {
            proposal: proposal.view(),
        },
    );
    Ok(serde_json::json!({
        "ok": true,
        "awaiting_confirmation": true,
        "proposal": proposal.view(),
        "note": "Nothing has changed yet: the user must confirm this proposal. Tell them what it does and ask.",
    }))
}

/// The outcome of a yes or no.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Applied {
        proposal: Proposal,
        plan: Plan,
    },
    Declined {
        proposal: Proposal,
    },
    /// The plan moved on; here it is now.
    Stale {
        proposal: Proposal,
        current: Option<Plan>,
    },
    AlreadyDecided {
        proposal: Proposal,
    },
    NothingOpen,
    NotFound,
}

/// Marks a proposal stale and shows the plan as it is now.
async fn stale(ctx: &ToolContext, mut proposal: Proposal, plan_id: PlanId) -> Result<Decision, ToolError> {
    let current = ctx.store.get_plan(&ctx.user, plan_id).await?;
    proposal.status = ProposalStatus::Stale;
    match ctx.store.close_proposal(&ctx.user, &proposal).await {
        Ok(()) => {}
        Err(StoreError::ProposalClosed { current }) => return Ok(Decision::AlreadyDecided { proposal: *current }),
        Err(e) => return Err(e.into()),
    }
    ctx.hub.publish(
        &ctx.user,
        &ServerFrame::Proposal {
            proposal: proposal.view(),
        },
    );
    if let Some(plan) = &current {
        ctx.hub.publish_plan(&ctx.user, plan, false);
    }
    Ok(Decision::Stale { proposal, current })
}

/// Answers proposal `id` (or, for a typed yes/no, the latest open one).
pub async fn decide(ctx: &ToolContext, id: Option<&str>, accept: bool) -> Result<Decision, ToolError> {
    let proposal = match id {
        Some(id) => match ctx.store.get_proposal(&ctx.user, id).await? {
            Some(p) => p,
            None => return Ok(Decision::NotFound),
        },
        None => match ctx.store.open_proposals(&ctx.user).await?.pop() {
            Some(p) => p,
            None => return Ok(Decision::NothingOpen),
        },
    };
    if proposal.status != ProposalStatus::Open {
        return Ok(Decision::AlreadyDecided { proposal });
    }
    let mut proposal = proposal;
    proposal.decided_at = Some(ctx.now);
    if !accept {
        proposal.status = ProposalStatus::Declined;
        match ctx.store.close_proposal(&ctx.user, &proposal).await {
            Ok(()) => {}
            // Accepted (or otherwise answered) between reading and declining.
            Err(StoreError::ProposalClosed { current }) => return Ok(Decision::AlreadyDecided { proposal: *current }),
            Err(e) => return Err(e.into()),
        }
        ctx.hub.publish(
            &ctx.user,
            &ServerFrame::Proposal {
                proposal: proposal.view(),
            },
        );
        return Ok(Decision::Declined { proposal });
    }
    let why = format!("confirmed: {}", proposal.why);
    let change = match &proposal.action {
        Action::Create { plan } => {
            let active = ctx
                .store
                .list_plans(&ctx.user)
                .await?
                .iter()
                .filter(|p| p.status == PlanStatus::Active)
                .count();
            if active >= ctx.max_active_plans {
                return Err(ToolError::invalid(format!(
                    "you already have {active} active plans, the most allowed"
                )));
            }
            let entry = HistoryEntry {
                at: ctx.now,
                actor: Actor::User,
                why,
                version: 1,
                changes: proposal.changes.clone(),
                undoes: None,
            };
            Accepted::Create {
                draft: (**plan).clone(),
                entry,
            }
        }
        Action::Patch { ops } => {
            let plan_id = proposal
                .plan_id
                .ok_or_else(|| ToolError::invalid("proposal without a plan"))?;
            let current = ctx.store.get_plan(&ctx.user, plan_id).await?;
            let Some(current) = current.filter(|c| c.version == proposal.base_version) else {
                return stale(ctx, proposal, plan_id).await;
            };
            let outcome = patch::apply(&current, ops, &ctx.limits, ctx.now)?;
            let entry = HistoryEntry {
                at: ctx.now,
                actor: Actor::User,
                why,
                version: outcome.plan.version,
                changes: outcome.changes,
                undoes: None,
            };
            Accepted::Update {
                plan: outcome.plan,
                expected_version: current.version,
                entry,
            }
        }
    };
    proposal.status = ProposalStatus::Accepted;
    let plan = match ctx.store.accept_proposal(&ctx.user, &proposal, change).await {
        Ok(plan) => plan,
        Err(StoreError::ProposalClosed { current }) => return Ok(Decision::AlreadyDecided { proposal: *current }),
        Err(StoreError::Conflict { current }) => {
            proposal.status = ProposalStatus::Open;
            return stale(ctx, proposal, current.id).await;
        }
        Err(e) => return Err(e.into()),
    };
    proposal.plan_id = Some(plan.id);
    ctx.hub.publish_plan(&ctx.user, &plan, false);
    ctx.hub.publish(
        &ctx.user,
        &ServerFrame::Proposal {
            proposal: proposal.view(),
        },
    );
    Ok(Decision::Applied { proposal, plan })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Step;

    #[test]
    fn the_policy_asks_for_removals_moves_creations_and_tool_steps_only() {
        let policy = ConfirmPolicy::default();
        let mut tool_step = Step::new("deploy", "Deploy");
        tool_step.tool = Some(crate::plan::ToolBinding {
            name: "deploy".into(),
            args: serde_json::Value::Null,
        });
        let now = Utc::now();
        let asks = [
            Change::PlanCreated { title: "x".into() },
            Change::StepRemoved {
                step: Step::new("a", "A"),
                index: 0,
            },
            Change::StepStatus {
                step: "a".into(),
                from: StepStatus::Pending,
                to: StepStatus::Cancelled,
            },
            Change::StepDue {
                step: "a".into(),
                from: Some(now),
                to: Some(now),
            },
            Change::StepAdded {
                step: tool_step,
                index: 0,
            },
            Change::PlanStatus {
                from: PlanStatus::Active,
                to: PlanStatus::Cancelled,
            },
        ];
        let direct = [
            Change::StepStatus {
                step: "a".into(),
                from: StepStatus::Pending,
                to: StepStatus::Completed,
            },
            Change::StepTitle {
                step: "a".into(),
                from: "A".into(),
                to: "B".into(),
            },
            Change::StepAdded {
                step: Step::new("b", "B"),
                index: 0,
            },
            Change::StepDue {
                step: "a".into(),
                from: None,
                to: Some(now),
            },
            Change::PlanStatus {
                from: PlanStatus::Active,
                to: PlanStatus::Done,
            },
        ];
        for c in asks {
            assert!(policy.needs_confirmation(std::slice::from_ref(&c)), "{c:?}");
        }
        for c in direct {
            assert!(!policy.needs_confirmation(std::slice::from_ref(&c)), "{c:?}");
        }
        let off = ConfirmPolicy {
            create_plan: false,
            remove: false,
            reschedule: false,
            tool_steps: false,
        };
        assert!(!off.needs_confirmation(&[Change::PlanCreated { title: "x".into() }]));
    }
}
