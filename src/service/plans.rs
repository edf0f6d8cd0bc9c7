//! Reading and changing plans: the patch form, the snapshot form and new
//! plans. Every change is applied to a copy and checked whole
//! (`plan::patch`); a change the confirmation policy names becomes a
//! proposal instead.

use super::{PlanRef, Refusal, Service, ServiceError, Session};
use crate::events::Event;
use crate::plan::invariants::check_free_text;
use crate::plan::snapshot::{self, SnapshotItem};
use crate::plan::{Change, HistoryEntry, Objective, Op, Plan, PlanId, PlanMode, patch};
use crate::proposal::{Action, Proposal};

/// A plan to create.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewPlan {
    pub title: String,
    pub goal: String,
    /// The goal kind and slots it was made from, if any.
    pub objective: Option<Objective>,
    /// How its steps run (templates may orchestrate tool steps).
    pub mode: PlanMode,
    pub ops: Vec<Op>,
    /// Recorded in the history.
    pub why: String,
}

/// Operations on one plan, against the version the caller read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PlanChange {
    pub plan_id: PlanId,
    pub expected_version: u64,
    pub ops: Vec<Op>,
    pub why: String,
}

/// The whole list of steps, as Codex-style models send it. Without a
/// `plan_id` it targets the user's only active plan, or creates one.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Snapshot {
    pub plan_id: Option<PlanId>,
    /// Defaults to the version the target is at.
    pub expected_version: Option<u64>,
    pub title: Option<String>,
    pub goal: Option<String>,
    pub objective: Option<Objective>,
    pub items: Vec<SnapshotItem>,
    pub why: Option<String>,
}

/// What a change request did.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// Stored (and sent to the user's sockets).
    Changed { plan: Plan, created: bool },
    /// The operations changed nothing; nothing was written.
    Unchanged { plan: Plan },
    /// Stored as a proposal that waits for the user's yes.
    Proposed { proposal: Proposal },
}

impl Service {
    /// The user's plans, oldest first: active ones, or all of them.
    pub(crate) async fn plans(&self, s: &Session, include_closed: bool) -> Result<Vec<Plan>, ServiceError> {
        Ok(match include_closed {
            true => self.store().list_plans(&s.user).await?,
            false => self.active_plans(&s.user).await?,
        })
    }

    /// One of the user's plans; a foreign or unknown id is not found.
    pub(crate) async fn plan(&self, s: &Session, id: PlanId) -> Result<Plan, ServiceError> {
        match self.store().get_plan(&s.user, id).await? {
            Some(plan) => Ok(plan),
            None => {
                let active = self.active_plans(&s.user).await?;
                Err(Refusal::PlanNotFound {
                    id,
                    active: active.iter().map(PlanRef::of).collect(),
                }
                .into())
            }
        }
    }

    /// A plan the user asked to see: their sockets show its card again.
    pub(crate) async fn show(&self, s: &Session, id: PlanId) -> Result<Plan, ServiceError> {
        let plan = self.plan(s, id).await?;
        self.publish(
            &s.user,
            Event::Plan {
                plan: plan.clone(),
                shown: true,
            },
        );
        Ok(plan)
    }

    /// Who changed a plan, what and why, newest first.
    pub(crate) async fn history(
        &self,
        s: &Session,
        id: PlanId,
        limit: usize,
    ) -> Result<(Plan, Vec<HistoryEntry>), ServiceError> {
        let plan = self.plan(s, id).await?;
        let entries = self.store().history(&s.user, id, limit).await?;
        Ok((plan, entries))
    }

    /// Creates a plan, or proposes it when creations need a yes.
    pub(crate) async fn create(&self, s: &Session, new: NewPlan) -> Result<Applied, ServiceError> {
        let rules = self.rules();
        check_free_text("explanation", &new.why, rules.limits.max_explanation_chars)?;
        let active = self.active_plans(&s.user).await?.len();
        if active >= rules.max_active_plans {
            return Err(Refusal::TooManyPlans { active }.into());
        }
        let now = self.now();
        let mut draft = Plan::draft(new.title.trim(), new.goal.trim(), now);
        if let Some(objective) = new.objective {
            draft.objective = objective;
        }
        draft.mode = new.mode;
        let outcome = patch::apply(&draft, &new.ops, &rules.limits, now)?;
        let mut plan = outcome.plan;
        plan.version = 1;
        plan.status = plan.derived_status();
        let mut changes = vec![Change::PlanCreated {
            title: plan.title.clone(),
        }];
        changes.extend(outcome.changes);
        self.check_bindings(&changes)?;
        if self.needs_yes(&changes) {
            let proposal = self
                .propose(
                    s,
                    &plan.clone(),
                    Action::Create { plan: Box::new(plan) },
                    changes,
                    new.why,
                    None,
                )
                .await?;
            return Ok(Applied::Proposed { proposal });
        }
        let entry = HistoryEntry {
            at: now,
            actor: s.actor,
            why: new.why,
            version: 1,
            changes,
            undoes: None,
        };
        let stored = self
            .store()
            .create_plan(&s.user, plan, entry, &self.derive(&s.user))
            .await?;
        self.published_plan(&s.user, &stored);
        self.count_creation(&stored, true);
        Ok(Applied::Changed {
            plan: stored,
            created: true,
        })
    }

    /// Applies operations to a plan, or proposes them when they need a yes.
    pub(crate) async fn change(&self, s: &Session, change: PlanChange) -> Result<Applied, ServiceError> {
        let current = self.plan(s, change.plan_id).await?;
        self.commit(s, current, change.expected_version, &change.ops, change.why, false)
            .await
    }

    /// Applies operations the user has just said yes to, each one named to
    /// them (a one-click link in a notification): no proposal is made, so
    /// none of the user's open proposals is superseded by it. The rules
    /// still hold; a change made meanwhile is still refused.
    pub(crate) async fn change_confirmed(&self, s: &Session, change: PlanChange) -> Result<Applied, ServiceError> {
        let current = self.plan(s, change.plan_id).await?;
        self.commit(s, current, change.expected_version, &change.ops, change.why, true)
            .await
    }

    /// The snapshot form: items matched to steps by title, left-out steps
    /// cancelled (never deleted).
    pub(crate) async fn snapshot(&self, s: &Session, snap: Snapshot) -> Result<Applied, ServiceError> {
        let why = snap
            .why
            .clone()
            .filter(|e| !e.trim().is_empty())
            .unwrap_or_else(|| "plan snapshot".into());
        let target = match snap.plan_id {
            Some(id) => Some(self.plan(s, id).await?),
            None => {
                let mut active = self.active_plans(&s.user).await?;
                match active.len() {
                    0 => None,
                    1 => active.pop(),
                    _ => {
                        return Err(Refusal::WhichPlan {
                            active: active.iter().map(PlanRef::of).collect(),
                        }
                        .into());
                    }
                }
            }
        };
        match target {
            Some(current) => {
                let expected = snap.expected_version.unwrap_or(current.version);
                let ops = snapshot::to_ops(&current, &snap.items)?;
                self.commit(s, current, expected, &ops, why, false).await
            }
            None => {
                let title = snap
                    .title
                    .or(snap.why)
                    .or_else(|| snap.items.first().map(|i| i.step.clone()))
                    .unwrap_or_default();
                let title: String = title
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(self.rules().limits.max_title_chars)
                    .collect();
                let goal = snap.goal.unwrap_or_default();
                let draft = Plan::draft(title.clone(), goal.clone(), self.now());
                let ops = snapshot::to_ops(&draft, &snap.items)?;
                let new = NewPlan {
                    title,
                    goal,
                    objective: snap.objective,
                    mode: PlanMode::Single,
                    ops,
                    why,
                };
                self.create(s, new).await
            }
        }
    }

    /// Applies `ops` to `current` if the caller read version `expected`;
    /// proposes them instead when they need a yes the user has not given
    /// (`confirmed`).
    pub(super) async fn commit(
        &self,
        s: &Session,
        current: Plan,
        expected: u64,
        ops: &[Op],
        why: String,
        confirmed: bool,
    ) -> Result<Applied, ServiceError> {
        let rules = self.rules();
        check_free_text("explanation", &why, rules.limits.max_explanation_chars)?;
        if expected != current.version {
            return Err(Refusal::StaleVersion {
                expected,
                current: Box::new(current),
            }
            .into());
        }
        let now = self.now();
        let mut outcome = patch::apply(&current, ops, &rules.limits, now)?;
        if outcome.changes.is_empty() {
            return Ok(Applied::Unchanged { plan: current });
        }
        let ops = match self.failed_checks(s, &current, ops, &outcome) {
            Some((more, reopened)) => {
                outcome = reopened;
                more
            }
            None => ops.to_vec(),
        };
        let ops = &ops[..];
        self.check_bindings(&outcome.changes)?;
        if !confirmed && self.needs_yes(&outcome.changes) {
            let action = Action::Patch { ops: ops.to_vec() };
            let note = self
                .wording()
                .date_warnings(&outcome.plan, &outcome.changes, self.local_now(s));
            let proposal = self.propose(s, &current, action, outcome.changes, why, note).await?;
            return Ok(Applied::Proposed { proposal });
        }
        let entry = HistoryEntry {
            at: now,
            actor: s.actor,
            why,
            version: outcome.plan.version,
            changes: outcome.changes,
            undoes: None,
        };
        self.store()
            .update_plan(&s.user, &outcome.plan, current.version, entry, &self.derive(&s.user))
            .await?;
        self.published_plan(&s.user, &outcome.plan);
        Ok(Applied::Changed {
            plan: outcome.plan,
            created: false,
        })
    }
}
