//! Undo: reverts the user's most recent plan change that is not already
//! undone, as a new change (history is never rewritten).

use super::{Refusal, Service, ServiceError, Session};
use crate::plan::{HistoryEntry, Plan, undo};
use std::collections::HashSet;

/// History entries looked at per plan when searching for the last change.
const LOOKBACK: usize = 200;

/// What an undo did.
#[derive(Debug, Clone, PartialEq)]
pub struct Undone {
    /// The plan after the undo.
    pub plan: Plan,
    /// The change that was reverted, in words ("Move “X” from … to …").
    pub summary: String,
}

impl Service {
    pub(crate) async fn undo(&self, s: &Session) -> Result<Undone, ServiceError> {
        let mut latest: Option<(Plan, HistoryEntry)> = None;
        for plan in self.store().list_plans(&s.user).await? {
            let history = self.store().history(&s.user, plan.id, LOOKBACK).await?;
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
            return Err(Refusal::NothingToUndo.into());
        };
        let now = self.now();
        let (reverted, changes) = undo::revert(&plan, &entry, &self.rules().limits, now)?;
        let record = HistoryEntry {
            at: now,
            actor: s.actor,
            why: format!("undo: {}", entry.why),
            version: reverted.version,
            changes,
            undoes: Some(entry.version),
        };
        self.store()
            .update_plan(&s.user, &reverted, plan.version, record, &self.derive(&s.user))
            .await?;
        self.published_plan(&s.user, &reverted);
        Ok(Undone {
            summary: self.wording().summarize(&plan, &entry.changes, self.local_now(s)),
            plan: reverted,
        })
    }
}
