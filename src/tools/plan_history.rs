//! `plan_history`: who changed a plan, what and why, newest first.

use super::{Tool, ToolContext, ToolError, load_plan, parse_args};
use crate::llm::ToolSpec;
use crate::plan::PlanId;
use crate::proposal::summarize;
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

pub struct PlanHistory;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    plan_id: PlanId,
    #[serde(default)]
    limit: Option<usize>,
}

#[async_trait]
impl Tool for PlanHistory {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "plan_history",
            description: "The history of one plan, newest first: when, who (user, model, scheduler, tool), why, and what changed.",
            parameters: json!({
                "type": "object",
                "properties": {
                    "plan_id": {"type": "string"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 50}
                },
                "required": ["plan_id"],
                "additionalProperties": false
            }),
        }
    }

    async fn call(&self, ctx: &ToolContext, arguments: &str) -> Result<Value, ToolError> {
        let args: Args = parse_args("plan_history", arguments)?;
        let plan = load_plan(ctx, args.plan_id).await?;
        let limit = args.limit.unwrap_or(10).clamp(1, 50);
        let entries = ctx.store.history(&ctx.user, plan.id, limit).await?;
        let listed: Vec<Value> = entries
            .iter()
            .map(|e| {
                json!({
                    "version": e.version,
                    "at": e.at,
                    "who": e.actor,
                    "why": e.why,
                    "what": summarize(&plan, &e.changes),
                })
            })
            .collect();
        Ok(json!({"plan_id": plan.id, "title": plan.title, "history": listed}))
    }
}
