//! Proposals: storing a change that waits for the user's yes (a newer one
//! supersedes older open ones), and answering one. A proposal made against
//! version N of a plan is refused as stale if the plan changed since, and
//! accepting applies it in the same transaction that records the yes, so a
//! repeated yes or a crash can never apply it twice.

use super::{Refusal, Service, ServiceError, Session};
use crate::events::Event;
use crate::plan::{Actor, Change, HistoryEntry, Plan, patch, undo};
use crate::proposal::{Action, Proposal, ProposalStatus};
use crate::store::{Accepted, StoreError};

/// The outcome of a yes or no.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    Applied {
        proposal: Proposal,
        plan: Plan,
        /// The proposal made the plan (not a change to one).
        created: bool,
    },
    Declined {
        proposal: Proposal,
    },
    /// The plan moved on; here it is now (`None`: it no longer exists).
    Stale {
        proposal: Proposal,
        current: Option<Plan>,
    },
    AlreadyDecided {
        proposal: Proposal,
    },
    /// A typed yes or no with no proposal open.
    NothingOpen,
    /// No proposal with that id (or it is another user's).
    NotFound,
}

impl Service {
    /// The user's open proposals, oldest first.
    pub(crate) async fn open_proposals(&self, s: &Session) -> Result<Vec<Proposal>, ServiceError> {
        Ok(self.store().open_proposals(&s.user).await?)
    }

    /// One of the user's proposals, in whatever state it is.
    pub(crate) async fn proposal(&self, s: &Session, id: &str) -> Result<Option<Proposal>, ServiceError> {
        Ok(self.store().get_proposal(&s.user, id).await?)
    }

    /// Stores a proposal for `changes` to `before`, superseding the user's
    /// older open ones, and tells the user's sockets.
    pub(super) async fn propose(
        &self,
        s: &Session,
        before: &Plan,
        action: Action,
        changes: Vec<Change>,
        why: String,
        note: Option<String>,
    ) -> Result<Proposal, ServiceError> {
        let now = self.now();
        for mut old in self.store().open_proposals(&s.user).await? {
            old.status = ProposalStatus::Superseded;
            old.decided_at = Some(now);
            old.action = None;
            match self.store().close_proposal(&s.user, &old).await {
                Ok(()) => self.publish(&s.user, Event::Proposal(old.view())),
                // Answered meanwhile: nothing left to supersede.
                Err(StoreError::ProposalClosed { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let plan_id = match &action {
            Action::Create { .. } => None,
            Action::Patch { .. } | Action::Undo { .. } => Some(before.id),
        };
        let draft = Proposal {
            id: String::new(),
            plan_id,
            base_version: before.version,
            summary: match (self.wording().summarize(before, &changes, self.local_now(s)), note) {
                (summary, Some(note)) => format!("{}. {note}", summary.trim_end_matches('.')),
                (summary, None) => summary,
            },
            changes,
            status: ProposalStatus::Open,
            why,
            created_at: now,
            decided_at: None,
            action: Some(action),
        };
        let proposal = self.store().create_proposal(&s.user, draft).await?;
        self.publish(&s.user, Event::Proposal(proposal.view()));
        Ok(proposal)
    }

    /// Answers proposal `id`, or for a typed yes/no (`None`) the latest
    /// open one. Only the user answers proposals: the history names them.
    pub(crate) async fn decide(&self, s: &Session, id: Option<&str>, accept: bool) -> Result<Decision, ServiceError> {
        let proposal = match id {
            Some(id) => match self.store().get_proposal(&s.user, id).await? {
                Some(p) => p,
                None => return Ok(Decision::NotFound),
            },
            None => match self.store().open_proposals(&s.user).await?.pop() {
                Some(p) => p,
                None => return Ok(Decision::NothingOpen),
            },
        };
        if proposal.status != ProposalStatus::Open {
            return Ok(Decision::AlreadyDecided { proposal });
        }
        let mut proposal = proposal;
        proposal.decided_at = Some(self.now());
        if !accept {
            proposal.status = ProposalStatus::Declined;
            proposal.action = None;
            return match self.store().close_proposal(&s.user, &proposal).await {
                Ok(()) => {
                    self.publish(&s.user, Event::Proposal(proposal.view()));
                    Ok(Decision::Declined { proposal })
                }
                // Accepted (or otherwise answered) between reading and declining.
                Err(StoreError::ProposalClosed { current }) => Ok(Decision::AlreadyDecided { proposal: *current }),
                Err(e) => Err(e.into()),
            };
        }
        self.accept(s, proposal).await
    }

    async fn accept(&self, s: &Session, mut proposal: Proposal) -> Result<Decision, ServiceError> {
        let now = self.now();
        let why = format!("confirmed: {}", proposal.why);
        // Taken out: the decided record is stored without it.
        let Some(action) = proposal.action.take() else {
            return Err(corrupt(&proposal, "is open without an action"));
        };
        let created = matches!(action, Action::Create { .. });
        let change = match &action {
            Action::Create { plan } => {
                let active = self.active_plans(&s.user).await?.len();
                if active >= self.rules().max_active_plans {
                    return Err(Refusal::TooManyPlans { active }.into());
                }
                Accepted::Create {
                    draft: (**plan).clone(),
                    entry: confirmed(now, why, 1, proposal.changes.clone(), None),
                }
            }
            Action::Patch { .. } | Action::Undo { .. } => {
                let Some(plan_id) = proposal.plan_id else {
                    return Err(corrupt(&proposal, "changes no plan"));
                };
                let current = match self.store().get_plan(&s.user, plan_id).await? {
                    Some(current) if current.version == proposal.base_version => current,
                    moved_or_gone => return self.stale(s, proposal, moved_or_gone).await,
                };
                let (plan, changes, undoes) = if let Action::Undo { undoes } = &action {
                    let Some(reverted) = self.entry(s, plan_id, *undoes).await? else {
                        return self.stale(s, proposal, Some(current)).await;
                    };
                    let (plan, changes) = undo::revert(&current, &reverted, &self.rules().limits, now)?;
                    (plan, changes, Some(*undoes))
                } else {
                    let ops: &[crate::plan::Op] = match &action {
                        Action::Patch { ops } => ops,
                        _ => &[],
                    };
                    let outcome = patch::apply(&current, ops, &self.rules().limits, now)?;
                    (outcome.plan, outcome.changes, None)
                };
                Accepted::Update {
                    entry: confirmed(now, why, plan.version, changes, undoes),
                    plan,
                    expected_version: current.version,
                }
            }
        };
        proposal.status = ProposalStatus::Accepted;
        let derive = self.derive(&s.user);
        let plan = match self.store().accept_proposal(&s.user, &proposal, change, &derive).await {
            Ok(plan) => plan,
            Err(StoreError::ProposalClosed { current }) => return Ok(Decision::AlreadyDecided { proposal: *current }),
            Err(StoreError::Conflict { current }) => {
                proposal.status = ProposalStatus::Open;
                return self.stale(s, proposal, Some(*current)).await;
            }
            Err(e) => return Err(e.into()),
        };
        proposal.plan_id = Some(plan.id);
        self.count_creation(&plan, created);
        self.published_plan(&s.user, &plan);
        self.publish(&s.user, Event::Proposal(proposal.view()));
        Ok(Decision::Applied {
            proposal,
            plan,
            created,
        })
    }

    /// Marks a proposal stale and shows the plan as it is now (`current`;
    /// none when it no longer exists).
    async fn stale(
        &self,
        s: &Session,
        mut proposal: Proposal,
        current: Option<Plan>,
    ) -> Result<Decision, ServiceError> {
        proposal.status = ProposalStatus::Stale;
        proposal.action = None;
        match self.store().close_proposal(&s.user, &proposal).await {
            Ok(()) => {}
            Err(StoreError::ProposalClosed { current }) => return Ok(Decision::AlreadyDecided { proposal: *current }),
            Err(e) => return Err(e.into()),
        }
        self.publish(&s.user, Event::Proposal(proposal.view()));
        if let Some(plan) = &current {
            self.published_plan(&s.user, plan);
        }
        Ok(Decision::Stale { proposal, current })
    }
}

/// The history entry of a change the user confirmed.
fn confirmed(
    at: chrono::DateTime<chrono::Utc>,
    why: String,
    version: u64,
    changes: Vec<Change>,
    undoes: Option<u64>,
) -> HistoryEntry {
    HistoryEntry {
        at,
        actor: Actor::User,
        why,
        version,
        changes,
        undoes,
    }
}

/// A stored proposal that cannot be what it says.
fn corrupt(proposal: &Proposal, what: &str) -> ServiceError {
    StoreError::Corrupt {
        tree: "proposals",
        reason: format!("proposal {} {what}", proposal.id),
    }
    .into()
}
