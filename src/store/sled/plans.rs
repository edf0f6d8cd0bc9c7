//! Plans, their history and proposals on sled. A plan write, its history
//! entry and the sync of its triggers are one transaction over the `plans`,
//! `history` (, `meta` for the id counter) and `timers` trees.

use super::engine::sync_work;
use super::triggers::sync_plan;
use super::{SledStore, TxResult, abort, backend, dec, decode, enc, encode, finish, keys};
use crate::plan::{HistoryEntry, Plan, PlanId};
use crate::proposal::{Proposal, ProposalStatus};
use crate::store::{Accepted, Derive, PlanStore, StoreError};
use crate::user::UserId;
use async_trait::async_trait;
use sled::Transactional;
use sled::transaction::TransactionalTree;

/// Proposals read when looking for open ones: they are superseded as new
/// ones arrive, so open ones are always among the newest.
const OPEN_PROPOSAL_WINDOW: usize = 32;

/// The next number of a per-user counter (plans, proposals).
fn next_number(meta: &TransactionalTree, counter: &[u8]) -> TxResult<u64> {
    let current = match meta.get(counter)? {
        Some(v) => match keys::decode_u64(&v) {
            Some(n) => n,
            None => {
                return abort(StoreError::Corrupt {
                    tree: "meta",
                    reason: "bad counter".into(),
                });
            }
        },
        None => 0,
    };
    let next = current + 1;
    meta.insert(counter, &next.to_be_bytes()[..])?;
    Ok(next)
}

/// Inserts a new plan under the next free id with its first history entry
/// and its triggers.
fn insert_new(
    (plans, history, meta, timers): (
        &TransactionalTree,
        &TransactionalTree,
        &TransactionalTree,
        &TransactionalTree,
    ),
    (user, num): (&UserId, u64),
    draft: &Plan,
    entry: &HistoryEntry,
    derive: Derive<'_>,
) -> TxResult<Plan> {
    let next = next_number(meta, &keys::plan_counter(num))?;
    let mut plan = draft.clone();
    plan.id = PlanId(next);
    plans.insert(&keys::plan(num, next)[..], enc(&plan)?)?;
    history.insert(&keys::history(num, next, plan.version)[..], enc(entry)?)?;
    let derived = derive(&plan);
    sync_plan(timers, num, plan.id, &derived)?;
    sync_work(timers, user, num, plan.id, &derived)?;
    Ok(plan)
}

/// Replaces a plan still at `expected` and appends its history entry.
fn replace(
    (plans, history, timers): (&TransactionalTree, &TransactionalTree, &TransactionalTree),
    (user, num): (&UserId, u64),
    plan: &Plan,
    expected: u64,
    entry: &HistoryEntry,
    derive: Derive<'_>,
) -> TxResult<()> {
    let key = keys::plan(num, plan.id.0);
    let Some(stored) = plans.get(key)? else {
        return abort(StoreError::PlanNotFound(plan.id));
    };
    let stored: Plan = dec("plans", &stored)?;
    if stored.version != expected {
        return abort(StoreError::Conflict {
            current: Box::new(stored),
        });
    }
    plans.insert(&key[..], enc(plan)?)?;
    history.insert(&keys::history(num, plan.id.0, plan.version)[..], enc(entry)?)?;
    let derived = derive(plan);
    sync_plan(timers, num, plan.id, &derived)?;
    sync_work(timers, user, num, plan.id, &derived)?;
    Ok(())
}

/// The stored proposal `seq`, if it is still open.
fn open_proposal(proposals: &TransactionalTree, num: u64, seq: u64, id: &str) -> TxResult<()> {
    let Some(current) = proposals.get(keys::proposal(num, seq))? else {
        return abort(StoreError::Backend(format!("proposal {id} vanished")));
    };
    let current: Proposal = dec("proposals", &current)?;
    if current.status != ProposalStatus::Open {
        return abort(StoreError::ProposalClosed {
            current: Box::new(current),
        });
    }
    Ok(())
}

/// "r12" → 12.
fn proposal_seq(id: &str) -> Option<u64> {
    id.strip_prefix('r')
        .filter(|d| !d.is_empty() && d.len() <= 19 && d.bytes().all(|b| b.is_ascii_digit()))?
        .parse()
        .ok()
}

fn bad_proposal_id(id: &str) -> StoreError {
    StoreError::Backend(format!("bad proposal id {id}"))
}

#[async_trait]
impl PlanStore for SledStore {
    async fn list_plans(&self, user: &UserId) -> Result<Vec<Plan>, StoreError> {
        let Some(num) = self.user_num(user)? else {
            return Ok(Vec::new());
        };
        self.inner
            .plans
            .scan_prefix(keys::user_prefix(num))
            .values()
            .map(|v| decode("plans", &v.map_err(backend)?))
            .collect()
    }

    async fn get_plan(&self, user: &UserId, id: PlanId) -> Result<Option<Plan>, StoreError> {
        let Some(num) = self.user_num(user)? else {
            return Ok(None);
        };
        match self.inner.plans.get(keys::plan(num, id.0)).map_err(backend)? {
            Some(v) => decode("plans", &v).map(Some),
            None => Ok(None),
        }
    }

    async fn create_plan(
        &self,
        user: &UserId,
        draft: Plan,
        entry: HistoryEntry,
        derive: Derive<'_>,
    ) -> Result<Plan, StoreError> {
        let num = self.require_user(user)?;
        let i = &self.inner;
        let stored = finish(
            (&i.plans, &i.history, &i.meta, &i.timers)
                .transaction(|(p, h, m, t)| insert_new((p, h, m, t), (user, num), &draft, &entry, derive)),
        )?;
        self.durable().await?;
        self.wake();
        Ok(stored)
    }

    async fn update_plan(
        &self,
        user: &UserId,
        plan: &Plan,
        expected_version: u64,
        entry: HistoryEntry,
        derive: Derive<'_>,
    ) -> Result<(), StoreError> {
        let num = self.require_user(user)?;
        let i = &self.inner;
        finish(
            (&i.plans, &i.history, &i.timers)
                .transaction(|(p, h, t)| replace((p, h, t), (user, num), plan, expected_version, &entry, derive)),
        )?;
        self.durable().await?;
        self.wake();
        Ok(())
    }

    async fn history(&self, user: &UserId, id: PlanId, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        let Some(num) = self.user_num(user)? else {
            return Ok(Vec::new());
        };
        self.inner
            .history
            .scan_prefix(keys::plan(num, id.0))
            .values()
            .rev()
            .take(limit)
            .map(|v| decode("history", &v.map_err(backend)?))
            .collect()
    }

    async fn create_proposal(&self, user: &UserId, draft: Proposal) -> Result<Proposal, StoreError> {
        let num = self.require_user(user)?;
        let i = &self.inner;
        let stored = finish((&i.proposals, &i.meta).transaction(|(proposals, meta)| {
            let next = next_number(meta, &keys::proposal_counter(num))?;
            let mut proposal = draft.clone();
            proposal.id = format!("r{next}");
            proposals.insert(&keys::proposal(num, next)[..], enc(&proposal)?)?;
            Ok(proposal)
        }))?;
        self.durable().await?;
        Ok(stored)
    }

    async fn close_proposal(&self, user: &UserId, proposal: &Proposal) -> Result<(), StoreError> {
        let num = self.require_user(user)?;
        let seq = proposal_seq(&proposal.id).ok_or_else(|| bad_proposal_id(&proposal.id))?;
        let value = encode(proposal)?;
        finish(self.inner.proposals.transaction(|proposals| {
            open_proposal(proposals, num, seq, &proposal.id)?;
            proposals.insert(&keys::proposal(num, seq)[..], value.clone())?;
            Ok(())
        }))?;
        self.durable().await
    }

    async fn get_proposal(&self, user: &UserId, id: &str) -> Result<Option<Proposal>, StoreError> {
        let (Some(num), Some(seq)) = (self.user_num(user)?, proposal_seq(id)) else {
            return Ok(None);
        };
        match self.inner.proposals.get(keys::proposal(num, seq)).map_err(backend)? {
            Some(v) => decode("proposals", &v).map(Some),
            None => Ok(None),
        }
    }

    async fn open_proposals(&self, user: &UserId) -> Result<Vec<Proposal>, StoreError> {
        let Some(num) = self.user_num(user)? else {
            return Ok(Vec::new());
        };
        let mut open = Vec::new();
        for v in self
            .inner
            .proposals
            .scan_prefix(keys::user_prefix(num))
            .values()
            .rev()
            .take(OPEN_PROPOSAL_WINDOW)
        {
            let p: Proposal = decode("proposals", &v.map_err(backend)?)?;
            if p.status == ProposalStatus::Open {
                open.push(p);
            }
        }
        open.reverse();
        Ok(open)
    }

    async fn accept_proposal(
        &self,
        user: &UserId,
        accepted: &Proposal,
        change: Accepted,
        derive: Derive<'_>,
    ) -> Result<Plan, StoreError> {
        let num = self.require_user(user)?;
        let seq = proposal_seq(&accepted.id).ok_or_else(|| bad_proposal_id(&accepted.id))?;
        let i = &self.inner;
        let stored = finish((&i.plans, &i.history, &i.meta, &i.proposals, &i.timers).transaction(
            |(plans, history, meta, proposals, timers)| {
                open_proposal(proposals, num, seq, &accepted.id)?;
                let plan = match &change {
                    Accepted::Create { draft, entry } => {
                        insert_new((plans, history, meta, timers), (user, num), draft, entry, derive)?
                    }
                    Accepted::Update {
                        plan,
                        expected_version,
                        entry,
                    } => {
                        replace(
                            (plans, history, timers),
                            (user, num),
                            plan,
                            *expected_version,
                            entry,
                            derive,
                        )?;
                        plan.clone()
                    }
                };
                let mut record = accepted.clone();
                record.plan_id = Some(plan.id);
                proposals.insert(&keys::proposal(num, seq)[..], enc(&record)?)?;
                Ok(plan)
            },
        ))?;
        self.durable().await?;
        self.wake();
        Ok(stored)
    }
}
