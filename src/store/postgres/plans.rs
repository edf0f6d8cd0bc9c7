//! Plans, their history and proposals on PostgreSQL. A plan write, its
//! history entry and the sync of its triggers and work list are one
//! transaction; per-user plan and proposal numbers come from the user's row.

use super::engine::sync_work;
use super::triggers::sync_plan;
use super::{Fail, PostgresStore, big, decode, exec, row, rows, seq_of, transact};
use crate::plan::{HistoryEntry, Plan, PlanId};
use crate::proposal::{Proposal, ProposalStatus};
use crate::store::{Accepted, Derive, PlanStore, StoreError};
use crate::user::UserId;
use async_trait::async_trait;
use deadpool_postgres::Transaction;
use tokio_postgres::types::Json;

/// The next number of one of the user's counters (`plan_seq`,
/// `proposal_seq`); the user must be registered.
async fn next_number(tx: &Transaction<'_>, user: &UserId, counter: &str) -> Result<i64, Fail> {
    let sql = match counter {
        "plan" => "UPDATE users SET plan_seq = plan_seq + 1 WHERE user_id = $1 RETURNING plan_seq",
        _ => "UPDATE users SET proposal_seq = proposal_seq + 1 WHERE user_id = $1 RETURNING proposal_seq",
    };
    match row(tx, sql, &[&user.as_str()]).await? {
        Some(r) => Ok(r.try_get(0)?),
        None => Err(Fail::Store(StoreError::Backend(format!(
            "user {user} was never registered"
        )))),
    }
}

/// Inserts a new plan under the next free id with its first history entry,
/// its triggers and its work list.
async fn insert_new(
    tx: &Transaction<'_>,
    user: &UserId,
    draft: &Plan,
    entry: &HistoryEntry,
    derive: Derive<'_>,
) -> Result<Plan, Fail> {
    let next = next_number(tx, user, "plan").await?;
    let mut plan = draft.clone();
    plan.id = PlanId(u64::try_from(next).unwrap_or_default());
    exec(
        tx,
        "INSERT INTO plans (user_id, plan_id, version, body) VALUES ($1, $2, $3, $4)",
        &[&user.as_str(), &next, &big(plan.version), &Json(&plan)],
    )
    .await?;
    put_history(tx, user, &plan, entry).await?;
    let derived = derive(&plan);
    sync_plan(tx, user, plan.id, &derived).await?;
    sync_work(tx, user, plan.id, &derived).await?;
    Ok(plan)
}

async fn put_history(tx: &Transaction<'_>, user: &UserId, plan: &Plan, entry: &HistoryEntry) -> Result<(), Fail> {
    exec(
        tx,
        "INSERT INTO plan_history (user_id, plan_id, version, body) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, plan_id, version) DO UPDATE SET body = EXCLUDED.body",
        &[&user.as_str(), &big(plan.id.0), &big(plan.version), &Json(entry)],
    )
    .await?;
    Ok(())
}

/// Replaces a plan still at `expected` and appends its history entry.
async fn replace(
    tx: &Transaction<'_>,
    user: &UserId,
    plan: &Plan,
    expected: u64,
    entry: &HistoryEntry,
    derive: Derive<'_>,
) -> Result<(), Fail> {
    let id = big(plan.id.0);
    let Some(stored) = row(
        tx,
        "SELECT body FROM plans WHERE user_id = $1 AND plan_id = $2 FOR UPDATE",
        &[&user.as_str(), &id],
    )
    .await?
    else {
        return Err(Fail::Store(StoreError::PlanNotFound(plan.id)));
    };
    let stored: Plan = decode("plans", &stored, "body")?;
    if stored.version != expected {
        return Err(Fail::Store(StoreError::Conflict {
            current: Box::new(stored),
        }));
    }
    exec(
        tx,
        "UPDATE plans SET version = $3, body = $4 WHERE user_id = $1 AND plan_id = $2",
        &[&user.as_str(), &id, &big(plan.version), &Json(plan)],
    )
    .await?;
    put_history(tx, user, plan, entry).await?;
    let derived = derive(plan);
    sync_plan(tx, user, plan.id, &derived).await?;
    sync_work(tx, user, plan.id, &derived).await?;
    Ok(())
}

/// Fails unless the stored proposal `seq` is still open.
async fn still_open(tx: &Transaction<'_>, user: &UserId, seq: i64, id: &str) -> Result<(), Fail> {
    let Some(current) = row(
        tx,
        "SELECT body FROM proposals WHERE user_id = $1 AND seq = $2 FOR UPDATE",
        &[&user.as_str(), &seq],
    )
    .await?
    else {
        return Err(Fail::Store(StoreError::Backend(format!("proposal {id} vanished"))));
    };
    let current: Proposal = decode("proposals", &current, "body")?;
    if current.status != ProposalStatus::Open {
        return Err(Fail::Store(StoreError::ProposalClosed {
            current: Box::new(current),
        }));
    }
    Ok(())
}

async fn put_proposal(tx: &Transaction<'_>, user: &UserId, seq: i64, proposal: &Proposal) -> Result<(), Fail> {
    exec(
        tx,
        "UPDATE proposals SET open = $3, body = $4 WHERE user_id = $1 AND seq = $2",
        &[
            &user.as_str(),
            &seq,
            &(proposal.status == ProposalStatus::Open),
            &Json(proposal),
        ],
    )
    .await?;
    Ok(())
}

fn proposal_seq(id: &str) -> Result<i64, StoreError> {
    seq_of(id, 'r').ok_or_else(|| StoreError::Backend(format!("bad proposal id {id}")))
}

#[async_trait]
impl PlanStore for PostgresStore {
    async fn list_plans(&self, user: &UserId) -> Result<Vec<Plan>, StoreError> {
        let client = self.client().await?;
        let found = rows(
            &client,
            "SELECT body FROM plans WHERE user_id = $1 ORDER BY plan_id",
            &[&user.as_str()],
        )
        .await?;
        found
            .iter()
            .map(|r| decode("plans", r, "body").map_err(StoreError::from))
            .collect()
    }

    async fn get_plan(&self, user: &UserId, id: PlanId) -> Result<Option<Plan>, StoreError> {
        let client = self.client().await?;
        let found = row(
            &client,
            "SELECT body FROM plans WHERE user_id = $1 AND plan_id = $2",
            &[&user.as_str(), &big(id.0)],
        )
        .await?;
        Ok(found.map(|r| decode("plans", &r, "body")).transpose()?)
    }

    async fn create_plan(
        &self,
        user: &UserId,
        draft: Plan,
        entry: HistoryEntry,
        derive: Derive<'_>,
    ) -> Result<Plan, StoreError> {
        let stored = transact!(self, |tx| insert_new(tx, user, &draft, &entry, derive).await)?;
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
        transact!(self, |tx| replace(tx, user, plan, expected_version, &entry, derive)
            .await)?;
        self.wake();
        Ok(())
    }

    async fn history(&self, user: &UserId, id: PlanId, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        let client = self.client().await?;
        let found = rows(
            &client,
            "SELECT body FROM plan_history WHERE user_id = $1 AND plan_id = $2 ORDER BY version DESC LIMIT $3",
            &[&user.as_str(), &big(id.0), &big(limit)],
        )
        .await?;
        found
            .iter()
            .map(|r| decode("plan_history", r, "body").map_err(StoreError::from))
            .collect()
    }

    async fn create_proposal(&self, user: &UserId, draft: Proposal) -> Result<Proposal, StoreError> {
        transact!(self, |tx| {
            let next = next_number(tx, user, "proposal").await?;
            let mut proposal = draft.clone();
            proposal.id = format!("r{next}");
            exec(
                tx,
                "INSERT INTO proposals (user_id, seq, open, body) VALUES ($1, $2, $3, $4)",
                &[
                    &user.as_str(),
                    &next,
                    &(proposal.status == ProposalStatus::Open),
                    &Json(&proposal),
                ],
            )
            .await?;
            Ok(proposal)
        })
    }

    async fn close_proposal(&self, user: &UserId, proposal: &Proposal) -> Result<(), StoreError> {
        let seq = proposal_seq(&proposal.id)?;
        transact!(self, |tx| {
            still_open(tx, user, seq, &proposal.id).await?;
            put_proposal(tx, user, seq, proposal).await
        })
    }

    async fn get_proposal(&self, user: &UserId, id: &str) -> Result<Option<Proposal>, StoreError> {
        let Some(seq) = seq_of(id, 'r') else {
            return Ok(None);
        };
        let client = self.client().await?;
        let found = row(
            &client,
            "SELECT body FROM proposals WHERE user_id = $1 AND seq = $2",
            &[&user.as_str(), &seq],
        )
        .await?;
        Ok(found.map(|r| decode("proposals", &r, "body")).transpose()?)
    }

    async fn open_proposals(&self, user: &UserId) -> Result<Vec<Proposal>, StoreError> {
        let client = self.client().await?;
        let found = rows(
            &client,
            "SELECT body FROM proposals WHERE user_id = $1 AND open ORDER BY seq",
            &[&user.as_str()],
        )
        .await?;
        found
            .iter()
            .map(|r| decode("proposals", r, "body").map_err(StoreError::from))
            .collect()
    }

    async fn accept_proposal(
        &self,
        user: &UserId,
        accepted: &Proposal,
        change: Accepted,
        derive: Derive<'_>,
    ) -> Result<Plan, StoreError> {
        let seq = proposal_seq(&accepted.id)?;
        let stored = transact!(self, |tx| {
            still_open(tx, user, seq, &accepted.id).await?;
            let plan = match &change {
                Accepted::Create { draft, entry } => insert_new(tx, user, draft, entry, derive).await?,
                Accepted::Update {
                    plan,
                    expected_version,
                    entry,
                } => {
                    replace(tx, user, plan, *expected_version, entry, derive).await?;
                    plan.clone()
                }
            };
            let mut record = accepted.clone();
            record.plan_id = Some(plan.id);
            put_proposal(tx, user, seq, &record).await?;
            Ok(plan)
        })?;
        self.wake();
        Ok(stored)
    }
}
