//! `plan_history`: who changed a plan, what and why, newest first.

use super::{Tool, ToolContext, ToolError};
use crate::plan::{Actor, HistoryEntry, Plan, PlanId};
use crate::proposal::summarize;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};

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

/// A plan and its latest history entries.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    pub(crate) plan: Plan,
    pub(crate) entries: Vec<HistoryEntry>,
}

#[derive(Serialize)]
struct Line<'a> {
    version: u64,
    at: DateTime<Utc>,
    who: Actor,
    why: &'a str,
    what: String,
}

impl Serialize for History {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Body<'a> {
            plan_id: PlanId,
            title: &'a str,
            history: Vec<Line<'a>>,
        }
        Body {
            plan_id: self.plan.id,
            title: &self.plan.title,
            history: self
                .entries
                .iter()
                .map(|e| Line {
                    version: e.version,
                    at: e.at,
                    who: e.actor,
                    why: &e.why,
                    what: summarize(&self.plan, &e.changes),
                })
                .collect(),
        }
        .serialize(s)
    }
}

#[async_trait]
impl Tool for PlanHistory {
    const NAME: &'static str = "plan_history";
    const DESCRIPTION: &'static str =
        "The history of one plan, newest first: when, who (user, model, scheduler, tool), why, and what changed.";
    type Args = Args;
    type Output = History;

    async fn run(&self, ctx: ToolContext<'_>, args: Args) -> Result<History, ToolError> {
        let limit = args.limit.unwrap_or(10).clamp(1, 50);
        let (plan, entries) = ctx.service.history(ctx.session, args.plan_id, limit).await?;
        Ok(History { plan, entries })
    }
}
