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

#[derive(Debug, Clone, PartialEq)]
pub struct Shown {
    pub(crate) plan: Plan,
    /// The step in progress, else the first one ready to start.
    pub(crate) next_step: Option<String>,
    /// The person's zone, for the dates of a closed plan.
    pub(crate) zone: chrono_tz::Tz,
}

/// What the model reads: an active plan is in every system prompt, so it
/// is pointed to, not repeated; a closed one is rendered the same way.
impl Serialize for Shown {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            plan_id: PlanId,
            plan: std::borrow::Cow<'a, str>,
            next_step: Option<&'a str>,
        }
        let plan = if self.plan.is_active() {
            super::SEE_PROMPT.into()
        } else {
            render::prompt_section(std::slice::from_ref(&self.plan), self.zone).into()
        };
        View {
            plan_id: self.plan.id,
            plan,
            next_step: self.next_step.as_deref(),
        }
        .serialize(s)
    }
}

#[async_trait]
impl Tool for ShowPlan {
    const NAME: &'static str = "show_plan";
    const DESCRIPTION: &'static str = "One plan in full, closed ones too.";
    type Args = Args;
    type Output = Shown;

    async fn run(&self, ctx: ToolContext<'_>, args: Args) -> Result<Shown, ToolError> {
        let plan = ctx.service.show(ctx.session, args.plan_id).await?;
        let next_step = render::next_step(&plan).map(|s| s.id.clone());
        Ok(Shown {
            plan,
            next_step,
            zone: ctx.session.tz,
        })
    }
}
