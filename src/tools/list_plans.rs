//! `list_plans`: the user's plans, one line each.

use super::{Tool, ToolContext, ToolError, parse_args};
use crate::llm::ToolSpec;
use crate::plan::{PlanStatus, StepStatus, render};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

pub struct ListPlans;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default)]
    include_closed: bool,
}

#[async_trait]
impl Tool for ListPlans {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "list_plans",
            description: "List the user's plans with id, title, status, progress and next step. Done and cancelled plans only with include_closed.",
            parameters: json!({
                "type": "object",
                "properties": {"include_closed": {"type": "boolean", "description": "Also list done and cancelled plans"}},
                "additionalProperties": false
            }),
        }
    }

    async fn call(&self, ctx: &ToolContext, arguments: &str) -> Result<Value, ToolError> {
        let args: Args = parse_args("list_plans", arguments)?;
        let plans = ctx.store.list_plans(&ctx.user).await?;
        let listed: Vec<Value> = plans
            .iter()
            .filter(|p| args.include_closed || p.status == PlanStatus::Active)
            .map(|p| {
                json!({
                    "id": p.id,
                    "title": p.title,
                    "status": p.status,
                    "version": p.version,
                    "done": p.count(StepStatus::Completed),
                    "steps": p.steps.len(),
                    "next": render::next_step(p).map(|s| s.title.clone()),
                })
            })
            .collect();
        Ok(json!({"plans": listed}))
    }
}
