//! `undo`: reverts the user's most recent plan change that is not already
//! undone, as a new change (history is never rewritten).

use super::{Tool, ToolContext, ToolError, parse_args};
use crate::llm::ToolSpec;
use crate::plan::{HistoryEntry, Plan, render, undo};
use crate::proposal::summarize;
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashSet;

pub struct Undo;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {}

/// History entries looked at per plan when searching for the last change.
const LOOKBACK: usize = 200;

#[async_trait]
impl Tool for Undo {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "undo",
            description: "Undo the user's most recent plan change (repeat to go further back). Only when the user asks to undo.",
            parameters: json!({"type": "object", "properties": {}, "additionalProperties": false}),
        }
    }

    async fn call(&self, ctx: &ToolContext, arguments: &str) -> Result<Value, ToolError> {
        let _: Args = parse_args("undo", arguments)?;
        let mut latest: Option<(Plan, HistoryEntry)> = None;
        for plan in ctx.store.list_plans(&ctx.user).await? {
            let history = ctx.store.history(&ctx.user, plan.id, LOOKBACK).await?;
            let undone: HashSet<u64> = history.iter().filter_map(|e| e.undoes).collect();
            let candidate = history
                .into_iter()
                .find(|e| e.undoes.is_none() && !undone.contains(&e.version));
            if let Some(entry) = candidate
                && latest.as_ref().is_none_or(|(_, best)| entry.at > best.at)
            {
                latest = Some((plan, entry));
            }
        }
        let Some((plan, entry)) = latest else {
            return Err(ToolError::invalid("there is no change left to undo"));
        };
        let (reverted, changes) = undo::revert(&plan, &entry, &ctx.limits, ctx.now)?;
        let description = summarize(&plan, &entry.changes);
        let record = HistoryEntry {
            at: ctx.now,
            actor: ctx.actor,
            why: format!("undo: {}", entry.why),
            version: reverted.version,
            changes,
            undoes: Some(entry.version),
        };
        ctx.store
            .update_plan(&ctx.user, &reverted, plan.version, record)
            .await?;
        ctx.hub.publish_plan(&ctx.user, &reverted, false);
        Ok(json!({
            "ok": true,
            "plan_id": reverted.id,
            "version": reverted.version,
            "status": reverted.status,
            "undone": description,
            "plan": render::prompt_section(std::slice::from_ref(&reverted)),
        }))
    }
}
