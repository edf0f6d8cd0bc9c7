//! Undo and redo, one plan at a time: a recorded change applied backwards
//! as a new change (history is never rewritten). A plan's history gives
//! two stacks: the changes in effect (undo takes the newest) and the undos
//! not yet redone (redo takes the newest; a new change empties it). An
//! entry that reverts a change in effect is an undo; one that reverts an
//! undo is a redo — the same `undoes` field records both.
//!
//! An undo (or redo) that would cancel the plan or remove steps is shown
//! first: it becomes a proposal the user confirms.

use super::{PlanRef, Refusal, Service, ServiceError, Session};
use crate::plan::{Change, HistoryEntry, Plan, PlanId, undo};
use crate::proposal::{Action, Proposal};

/// History entries looked at per plan.
const LOOKBACK: usize = 200;

/// What an undo or redo did.
#[derive(Debug, Clone, PartialEq)]
pub enum Undone {
    /// Applied now.
    Applied {
        /// The plan after it.
        plan: Plan,
        /// The change that was reverted, in words ("Move “X” from … to …").
        summary: String,
    },
    /// It would cancel the plan or remove steps: it waits for a yes.
    Proposed { proposal: Proposal },
}

/// Which way: take back the newest change, or put back the newest undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Undo,
    Redo,
}

/// The change an undo (or redo) of a plan would revert, from its history
/// (newest first).
pub(crate) fn target(history: &[HistoryEntry], direction: Direction) -> Option<&HistoryEntry> {
    let mut in_effect: Vec<&HistoryEntry> = Vec::new();
    let mut undone: Vec<&HistoryEntry> = Vec::new();
    for entry in history.iter().rev() {
        match entry.undoes {
            Some(v) if in_effect.last().is_some_and(|e| e.version == v) => {
                in_effect.pop();
                undone.push(entry);
            }
            Some(v) if undone.last().is_some_and(|e| e.version == v) => {
                undone.pop();
                in_effect.push(entry);
            }
            // Reverting something older than the window looked at.
            Some(_) => {}
            None => {
                in_effect.push(entry);
                undone.clear();
            }
        }
    }
    match direction {
        Direction::Undo => in_effect.last().copied(),
        Direction::Redo => undone.last().copied(),
    }
}

/// Whether reverting `changes` cancels the plan or removes a step.
fn destructive(changes: &[Change]) -> bool {
    changes.iter().any(|c| match c {
        Change::StepRemoved { .. } => true,
        Change::PlanStatus { to, .. } => *to == crate::plan::PlanStatus::Cancelled,
        _ => false,
    })
}

impl Service {
    /// Undoes (or redoes) the newest change of plan `id`; without one, of
    /// the only plan that has such a change (several: refused, naming them).
    pub(crate) async fn undo(
        &self,
        s: &Session,
        id: Option<PlanId>,
        direction: Direction,
    ) -> Result<Undone, ServiceError> {
        let plans = match id {
            Some(id) => vec![self.plan(s, id).await?],
            None => self.store().list_plans(&s.user).await?,
        };
        let mut found: Vec<(Plan, HistoryEntry)> = Vec::new();
        for plan in plans {
            let history = self.store().history(&s.user, plan.id, LOOKBACK).await?;
            if let Some(entry) = target(&history, direction) {
                let entry = entry.clone();
                found.push((plan, entry));
            }
        }
        // Without an id: the active plan with a change to revert; among
        // closed plans only the one changed last (a plan just finished or
        // cancelled); several active ones: say which.
        if id.is_none() {
            let (active, closed): (Vec<_>, Vec<_>) = found.into_iter().partition(|(p, _)| p.is_active());
            found = match active.len() {
                0 => closed.into_iter().max_by_key(|(_, e)| e.at).into_iter().collect(),
                _ => active,
            };
        }
        let (plan, entry) = match found.len() {
            0 if direction == Direction::Undo => return Err(Refusal::NothingToUndo.into()),
            0 => return Err(Refusal::NothingToRedo.into()),
            1 => found.remove(0),
            _ => {
                let plans = found.iter().map(|(p, _)| PlanRef::of(p)).collect();
                return Err(Refusal::WhichUndo { plans }.into());
            }
        };
        let now = self.now();
        let (reverted, changes) = undo::revert(&plan, &entry, &self.rules().limits, now)?;
        let verb = if direction == Direction::Undo { "undo" } else { "redo" };
        let why = format!("{verb}: {}", entry.why);
        if destructive(&changes) {
            let action = Action::Undo { undoes: entry.version };
            let proposal = self.propose(s, &plan, action, changes, why, None).await?;
            return Ok(Undone::Proposed { proposal });
        }
        let reverted = self
            .write_revert(s, &plan, reverted, changes, why, entry.version)
            .await?;
        Ok(Undone::Applied {
            summary: self.wording().summarize(&plan, &entry.changes, self.local_now(s)),
            plan: reverted,
        })
    }

    async fn write_revert(
        &self,
        s: &Session,
        before: &Plan,
        reverted: Plan,
        changes: Vec<Change>,
        why: String,
        undoes: u64,
    ) -> Result<Plan, ServiceError> {
        let record = HistoryEntry {
            at: self.now(),
            actor: s.actor,
            why,
            version: reverted.version,
            changes,
            undoes: Some(undoes),
        };
        self.store()
            .update_plan(&s.user, &reverted, before.version, record, &self.derive(&s.user))
            .await?;
        self.published_plan(&s.user, &reverted);
        Ok(reverted)
    }

    /// The history entry with `version` of plan `id`, for a confirmed undo.
    pub(super) async fn entry(
        &self,
        s: &Session,
        id: PlanId,
        version: u64,
    ) -> Result<Option<HistoryEntry>, ServiceError> {
        let history = self.store().history(&s.user, id, LOOKBACK).await?;
        Ok(history.into_iter().find(|e| e.version == version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Actor;
    use chrono::Utc;

    fn entry(version: u64, undoes: Option<u64>) -> HistoryEntry {
        HistoryEntry {
            at: Utc::now(),
            actor: Actor::User,
            why: format!("v{version}"),
            version,
            changes: vec![],
            undoes,
        }
    }

    fn versions(history: &[HistoryEntry]) -> (Option<u64>, Option<u64>) {
        let mut newest_first = history.to_vec();
        newest_first.reverse();
        (
            target(&newest_first, Direction::Undo).map(|e| e.version),
            target(&newest_first, Direction::Redo).map(|e| e.version),
        )
    }

    #[test]
    fn undo_and_redo_walk_two_stacks_and_a_new_change_empties_redo() {
        // Oldest first: create (1), change (2).
        let mut h = vec![entry(1, None), entry(2, None)];
        assert_eq!(versions(&h), (Some(2), None));
        h.push(entry(3, Some(2))); // undo 2
        assert_eq!(versions(&h), (Some(1), Some(3)));
        h.push(entry(4, Some(1))); // undo 1
        assert_eq!(versions(&h), (None, Some(4)));
        h.push(entry(5, Some(4))); // redo: reverts the undo of 1
        assert_eq!(versions(&h), (Some(5), Some(3)));
        h.push(entry(6, Some(3))); // redo the undo of 2
        assert_eq!(versions(&h), (Some(6), None));
        h.push(entry(7, Some(6))); // undo the redo
        assert_eq!(versions(&h), (Some(5), Some(7)));
        h.push(entry(8, None)); // a new change: nothing left to redo
        assert_eq!(versions(&h), (Some(8), None));
    }
}
