//! `undo`: reverts the user's most recent plan change that is not already
//! undone, as a new change (history is never rewritten).

use super::{Tool, ToolContext, ToolError};
use crate::plan::{PlanId, PlanStatus};
use crate::service::Undone;
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};

pub(crate) struct Undo;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {}

/// What was undone, as the model reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct UndoResult(pub Undone);

impl Serialize for UndoResult {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Body<'a> {
            ok: bool,
            plan_id: PlanId,
            version: u64,
            status: PlanStatus,
            undone: &'a str,
            plan: &'static str,
        }
        let Undone { plan, summary } = &self.0;
        Body {
            ok: true,
            plan_id: plan.id,
            version: plan.version,
            status: plan.status,
            undone: summary,
            plan: super::SEE_PROMPT,
        }
        .serialize(s)
    }
}

#[async_trait]
impl Tool for Undo {
    const NAME: &'static str = "undo";
    const DESCRIPTION: &'static str = "Undo the user's latest plan change, only when they ask.";
    type Args = Args;
    type Output = UndoResult;

    async fn run(&self, ctx: ToolContext<'_>, _: Args) -> Result<UndoResult, ToolError> {
        Ok(UndoResult(ctx.service.undo(ctx.session).await?))
    }
}
