//! `plan_history`: who changed a plan, what and why, newest first.

use super::{Tool, ToolContext, ToolError};
use crate::plan::{Actor, PlanId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub(crate) struct PlanHistory;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    pub(crate) plan_id: PlanId,
    /// How many entries, newest first (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 50))]
    pub(crate) limit: Option<usize>,
}

/// A plan's latest history entries, each with what it changed in words.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct History {
    pub(crate) plan_id: PlanId,
    pub(crate) title: String,
    pub(crate) history: Vec<Line>,
}

/// One history entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Line {
    pub(crate) version: u64,
    pub(crate) at: DateTime<Utc>,
    pub(crate) who: Actor,
    pub(crate) why: String,
    pub(crate) what: String,
}

#[async_trait]
impl Tool for PlanHistory {
    const NAME: &'static str = "plan_history";
    const DESCRIPTION: &'static str = "A plan's changes, newest first.";
    type Args = Args;
    type Output = History;

    async fn run(&self, ctx: ToolContext<'_>, args: Args) -> Result<History, ToolError> {
        let limit = args.limit.unwrap_or(10).clamp(1, 50);
        let (plan, entries) = ctx.service.history(ctx.session, args.plan_id, limit).await?;
        let wording = ctx.service.wording();
        let now = ctx.service.local_now(ctx.session);
        let history = entries
            .into_iter()
            .map(|e| Line {
                version: e.version,
                at: e.at,
                who: e.actor,
                what: wording.summarize(&plan, &e.changes, now),
                why: e.why,
            })
            .collect();
        Ok(History {
            plan_id: plan.id,
            title: plan.title,
            history,
        })
    }
}
