//! `show_plan`: one of the user's plans, in full, for the model; the
//! user's widgets get the plan too, to show its card.

use super::{Tool, ToolContext, ToolError};
use crate::plan::{Plan, PlanId, render};
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub(crate) struct ShowPlan;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// e.g. p1
    pub(crate) plan_id: PlanId,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shown {
    pub(crate) plan: Plan,
    /// The step in progress, else the first one ready to start.
    pub(crate) next_step: Option<String>,
}

#[async_trait]
impl Tool for ShowPlan {
    const NAME: &'static str = "show_plan";
    const DESCRIPTION: &'static str = "One plan in full, closed ones included.";
    type Args = Args;
    type Output = Shown;

    async fn run(&self, ctx: ToolContext<'_>, args: Args) -> Result<Shown, ToolError> {
        let plan = ctx.service.show(ctx.session, args.plan_id).await?;
        let next_step = render::next_step(&plan).map(|s| s.id.clone());
        Ok(Shown { plan, next_step })
    }
}
