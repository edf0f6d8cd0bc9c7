//! Proposals: plan changes that wait for the user's yes, as records, and
//! the policy that decides which changes need one. Creating a plan,
//! removing or cancelling steps or plans, moving due dates and adding steps
//! bound to tools are proposed, not applied (configurable); status updates
//! and rewordings apply at once. Pure: the plan service stores and decides
//! them.

use crate::config::ConfirmConfig;
use crate::plan::{Change, Op, Plan, PlanId, PlanStatus, StepStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which kinds of change need the user's yes: the `confirm` section of the
/// configuration, as it is.
pub(crate) type ConfirmPolicy = ConfirmConfig;

impl ConfirmPolicy {
    /// Whether `changes` wait for a yes; a step bound to a tool does only
    /// if `side_effects` says the tool changes something outside steward
    /// (a reminder or a calendar entry of the user's own does not; an
    /// email or a ticket does).
    pub(crate) fn needs_confirmation(
        &self,
        changes: &[Change],
        side_effects: impl Fn(&crate::plan::ToolBinding) -> bool,
    ) -> bool {
        changes.iter().any(|c| match c {
            Change::PlanCreated { .. } => self.create_plan,
            Change::StepRemoved { .. } => self.remove,
            Change::StepStatus { to, .. } => self.remove && *to == StepStatus::Cancelled,
            Change::PlanStatus { to, .. } => self.remove && *to == PlanStatus::Cancelled,
            Change::StepDue { from, .. } => self.reschedule && from.is_some(),
            Change::StepAdded { step, .. } => self.tool_steps && step.tool.as_ref().is_some_and(&side_effects),
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
    Create {
        plan: Box<Plan>,
    },
    Patch {
        ops: Vec<Op>,
    },
    /// Reverts the plan's history entry with this version (an undo, or a
    /// redo when that entry is itself an undo).
    Undo {
        undoes: u64,
    },
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
    /// What accepting does, while the proposal is open. Dropped when it is
    /// decided: the plan's history records what was done, and a decided
    /// proposal stays small (a created plan's copy is most of an open one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// A proposal as the model reads it in a tool result: what the user is
/// asked, in words. Not its changes one by one: the model sent them and
/// the summary says them (a new plan's changes repeat every step —
/// kilobytes per call, stored and replayed while the turn is in the window).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct AskedView<'a> {
    pub id: &'a str,
    pub plan_id: Option<PlanId>,
    pub summary: &'a str,
}

/// The proposal as clients see it (no internal action).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub(crate) struct ProposalView {
    pub id: String,
    #[schema(value_type = Option<String>)]
    pub plan_id: Option<PlanId>,
    pub summary: String,
    pub changes: Vec<Change>,
    pub status: ProposalStatus,
}

impl Proposal {
    pub(crate) fn asked(&self) -> AskedView<'_> {
        AskedView {
            id: &self.id,
            plan_id: self.plan_id,
            summary: &self.summary,
        }
    }

    pub(crate) fn view(&self) -> ProposalView {
        ProposalView {
            id: self.id.clone(),
            plan_id: self.plan_id,
            summary: self.summary.clone(),
            changes: self.changes.clone(),
            status: self.status,
        }
    }
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
            assert!(policy.needs_confirmation(std::slice::from_ref(&c), |_| true), "{c:?}");
        }
        for c in direct {
            assert!(!policy.needs_confirmation(std::slice::from_ref(&c), |_| true), "{c:?}");
        }
        let off = ConfirmPolicy {
            create_plan: false,
            remove: false,
            reschedule: false,
            tool_steps: false,
        };
        assert!(!off.needs_confirmation(&[Change::PlanCreated { title: "x".into() }], |_| true));
    }
}
