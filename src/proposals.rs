//! Proposals: plan changes that wait for the user's yes. Creating a plan,
//! removing or cancelling steps or plans, moving due dates and adding steps
//! bound to tools are proposed, not applied (the policy is configurable);
//! status updates and rewordings apply at once. A proposal made against
//! version N of a plan is refused if the plan has changed since.

use crate::plan::{Actor, Change, HistoryEntry, Plan, PlanId, PlanStatus, patch};
use crate::proposal::{Action, Proposal, ProposalStatus, summarize};
use crate::protocol::ServerFrame;
use crate::store::{Accepted, StoreError};
use crate::tools::{ToolContext, ToolError};

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
