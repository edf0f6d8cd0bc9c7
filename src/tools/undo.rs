//! `undo` and `redo`: revert the newest change of one plan (or put back
//! the newest undo), as a new change (history is never rewritten). One
//! that would cancel the plan or remove steps becomes a proposal.

use super::{Tool, ToolContext, ToolError};
use crate::plan::{PlanId, PlanStatus};
use crate::proposal::AskedView;
use crate::service::{Direction, Undone};
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};

pub(crate) struct Undo;
pub(crate) struct Redo;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// The plan; may be left out when only one plan has changes to revert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) plan_id: Option<PlanId>,
}

/// What was undone or redone, as the model reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct UndoResult(pub Undone);

impl Serialize for UndoResult {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Applied<'a> {
            ok: bool,
            plan_id: PlanId,
            version: u64,
            status: PlanStatus,
            reverted: &'a str,
            plan: &'static str,
        }
        #[derive(Serialize)]
        struct Proposed<'a> {
            ok: bool,
            awaiting_confirmation: bool,
            proposal: AskedView<'a>,
            note: &'static str,
        }
        match &self.0 {
            Undone::Applied { plan, summary } => Applied {
                ok: true,
                plan_id: plan.id,
                version: plan.version,
                status: plan.status,
                reverted: summary,
                plan: super::SEE_PROMPT,
            }
            .serialize(s),
            Undone::Proposed { proposal } => Proposed {
                ok: true,
                awaiting_confirmation: true,
                proposal: proposal.asked(),
                note: "It would cancel the plan or remove steps, so nothing has changed yet: tell the user what it does and ask.",
            }
            .serialize(s),
        }
    }
}

#[async_trait]
impl Tool for Undo {
    const NAME: &'static str = "undo";
    const DESCRIPTION: &'static str = "Undo a plan's newest change, only when asked.";
    type Args = Args;
    type Output = UndoResult;

    async fn run(&self, ctx: ToolContext<'_>, args: Args) -> Result<UndoResult, ToolError> {
        Ok(UndoResult(
            ctx.service.undo(ctx.session, args.plan_id, Direction::Undo).await?,
        ))
    }
}

#[async_trait]
impl Tool for Redo {
    const NAME: &'static str = "redo";
    const DESCRIPTION: &'static str = "Redo a plan's newest undone change, only when asked.";
    type Args = Args;
    type Output = UndoResult;

    async fn run(&self, ctx: ToolContext<'_>, args: Args) -> Result<UndoResult, ToolError> {
        Ok(UndoResult(
            ctx.service.undo(ctx.session, args.plan_id, Direction::Redo).await?,
        ))
    }
}
