//! `show_plan`: one of the user's plans, in full, for the model; the
//! user's widgets get the plan too, to show its card.

use super::{Tool, ToolContext, ToolError, load_plan, parse_args};
use crate::llm::ToolSpec;
use crate::plan::{PlanId, render};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

pub struct ShowPlan;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    plan_id: PlanId,
}

#[async_trait]
impl Tool for ShowPlan {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "show_plan",
            description: "Show one of the user's plans in full, with every step, its status, due date and result, and what comes next.",
            parameters: json!({
                "type": "object",
                "properties": {"plan_id": {"type": "string", "description": "The plan id, e.g. p1"}},
                "required": ["plan_id"],
                "additionalProperties": false
            }),
        }
    }

    async fn call(&self, ctx: &ToolContext, arguments: &str) -> Result<Value, ToolError> {
        let args: Args = parse_args("show_plan", arguments)?;
        let plan = load_plan(ctx, args.plan_id).await?;
        let next = render::next_step(&plan).map(|s| s.id.clone());
        ctx.hub.publish_plan(&ctx.user, &plan, true);
        Ok(json!({"plan": plan, "next_step": next}))
    }
}
