//! Triggers on PostgreSQL: `triggers` holds the armed ones (with the plan
//! a derived trigger came from), `fired` the exactly-once record of every
//! firing. A firing also writes its notifications and outbox rows in the
//! same transaction.

use super::notifications::{insert_notification, put_outbox};
use super::{Fail, PostgresStore, big, decode, exec, from_ms, ms, row, rows, transact};
use crate::notification::Notification;
use crate::plan::PlanId;
use crate::store::snapshot::FiredTrigger as FiredRecord;
use crate::store::{Derived, Firing, Missed, StoreError, TriggerStore};
use crate::triggers::{Outcome, Trigger};
use crate::user::UserId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use std::collections::HashSet;
use std::sync::Arc;
use tokio_postgres::types::Json;

/// Where the trigger `id` is armed: its time and the plan it came from.
async fn armed(tx: &Transaction<'_>, user: &UserId, id: &str) -> Result<Option<(i64, Option<i64>)>, Fail> {
    let found = row(
        tx,
        "SELECT fire_ms, plan_id FROM triggers WHERE user_id = $1 AND id = $2 FOR UPDATE",
        &[&user.as_str(), &id],
    )
    .await?;
    Ok(match found {
        Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
        None => None,
    })
}

/// Removes the trigger `id` if armed.
pub(super) async fn disarm(tx: &Transaction<'_>, user: &UserId, id: &str) -> Result<bool, Fail> {
    let removed = exec(
        tx,
        "DELETE FROM triggers WHERE user_id = $1 AND id = $2",
        &[&user.as_str(), &id],
    )
    .await?;
    Ok(removed > 0)
}

/// Arms `trigger` (replacing one with the same id) unless that very firing
/// is already recorded; `plan` is the plan it is derived from (`None`
/// keeps what was recorded). Returns whether it is armed.
pub(super) async fn arm(tx: &Transaction<'_>, trigger: &Trigger, plan: Option<PlanId>) -> Result<bool, Fail> {
    let current = armed(tx, &trigger.user, &trigger.id).await?;
    arm_over(tx, trigger, plan, current).await
}

/// [`arm`], given where the trigger is armed now (read by the caller).
async fn arm_over(
    tx: &Transaction<'_>,
    trigger: &Trigger,
    plan: Option<PlanId>,
    current: Option<(i64, Option<i64>)>,
) -> Result<bool, Fail> {
    let user = trigger.user.as_str();
    let fire_ms = ms(trigger.fire_at);
    let plan = plan.map(|p| big(p.0)).or(current.and_then(|c| c.1));
    if current.is_some_and(|c| c.0 == fire_ms) {
        exec(
            tx,
            "UPDATE triggers SET body = $3, plan_id = $4 WHERE user_id = $1 AND id = $2",
            &[&user, &trigger.id, &Json(trigger), &plan],
        )
        .await?;
        return Ok(true);
    }
    disarm(tx, &trigger.user, &trigger.id).await?;
    let fired = row(
        tx,
        "SELECT 1 FROM fired WHERE user_id = $1 AND id = $2 AND fire_ms = $3",
        &[&user, &trigger.id, &fire_ms],
    )
    .await?;
    if fired.is_some() {
        return Ok(false);
    }
    exec(
        tx,
        "INSERT INTO triggers (user_id, id, fire_ms, plan_id, body) VALUES ($1, $2, $3, $4, $5)",
        &[&user, &trigger.id, &fire_ms, &plan, &Json(trigger)],
    )
    .await?;
    Ok(true)
}

/// Makes the plan's armed triggers match `derived`, inside the plan
/// write's transaction (see [`TriggerStore`] for the rule).
pub(super) async fn sync_plan(
    tx: &Transaction<'_>,
    user: &UserId,
    plan: PlanId,
    derived: &Derived,
) -> Result<(), Fail> {
    let old: Vec<String> = rows(
        tx,
        "SELECT id FROM triggers WHERE user_id = $1 AND plan_id = $2",
        &[&user.as_str(), &big(plan.0)],
    )
    .await?
    .iter()
    .map(|r| r.try_get(0))
    .collect::<Result<_, _>>()?;
    let mut kept = HashSet::new();
    for t in &derived.triggers {
        let current = armed(tx, user, &t.id).await?;
        let same = current.is_some_and(|c| c.0 == ms(t.fire_at));
        if !same && t.fire_at <= derived.arm_after {
            disarm(tx, user, &t.id).await?;
            continue;
        }
        if arm_over(tx, t, Some(plan), current).await? {
            kept.insert(t.id.as_str());
        }
    }
    for id in old.iter().filter(|id| !kept.contains(id.as_str())) {
        disarm(tx, user, id).await?;
    }
    Ok(())
}

#[async_trait]
impl TriggerStore for PostgresStore {
    fn timer_signal(&self) -> Arc<tokio::sync::Notify> {
        self.inner.timer_signal.clone()
    }

    async fn put_trigger(&self, trigger: &Trigger) -> Result<(), StoreError> {
        transact!(self, |tx| arm(tx, trigger, None).await)?;
        self.wake();
        Ok(())
    }

    async fn remove_trigger(&self, user: &UserId, id: &str) -> Result<bool, StoreError> {
        transact!(self, |tx| disarm(tx, user, id).await)
    }

    async fn user_triggers(&self, user: &UserId) -> Result<Vec<Trigger>, StoreError> {
        let client = self.client().await?;
        let found = rows(
            &client,
            "SELECT body FROM triggers WHERE user_id = $1 ORDER BY fire_ms, id",
            &[&user.as_str()],
        )
        .await?;
        found
            .iter()
            .map(|r| decode("triggers", r, "body").map_err(StoreError::from))
            .collect()
    }

    async fn due_triggers(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Trigger>, StoreError> {
        let client = self.client().await?;
        let found = rows(
            &client,
            "SELECT body FROM triggers WHERE fire_ms <= $1 ORDER BY fire_ms, user_id, id LIMIT $2",
            &[&ms(now), &big(limit)],
        )
        .await?;
        found
            .iter()
            .map(|r| decode("triggers", r, "body").map_err(StoreError::from))
            .collect()
    }

    async fn next_trigger_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let client = self.client().await?;
        let found = row(&client, "SELECT min(fire_ms) FROM triggers", &[]).await?;
        let at: Option<i64> = match found {
            Some(r) => r.try_get(0).map_err(Fail::from)?,
            None => None,
        };
        Ok(at.map(|at| from_ms("triggers", at)).transpose()?)
    }

    async fn trigger_count(&self) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let found = row(&client, "SELECT count(*) FROM triggers", &[]).await?;
        let n: i64 = match found {
            Some(r) => r.try_get(0).map_err(Fail::from)?,
            None => 0,
        };
        Ok(usize::try_from(n).unwrap_or_default())
    }

    async fn fire(&self, trigger: &Trigger, firing: Firing) -> Result<Option<Vec<Notification>>, StoreError> {
        let user = &trigger.user;
        let fire_ms = ms(trigger.fire_at);
        let result = transact!(self, |tx| {
            let Some(removed) = row(
                tx,
                "DELETE FROM triggers WHERE user_id = $1 AND id = $2 AND fire_ms = $3 RETURNING plan_id",
                &[&user.as_str(), &trigger.id, &fire_ms],
            )
            .await?
            else {
                return Ok(None);
            };
            let plan: Option<i64> = removed.try_get(0)?;
            let record = FiredRecord {
                at: firing.at,
                outcome: firing.outcome,
                trigger: trigger.clone(),
            };
            exec(
                tx,
                "INSERT INTO fired (user_id, id, fire_ms, at_ms, missed, body) VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (user_id, id, fire_ms) DO UPDATE
                     SET at_ms = EXCLUDED.at_ms, missed = EXCLUDED.missed, body = EXCLUDED.body",
                &[
                    &user.as_str(),
                    &trigger.id,
                    &fire_ms,
                    &ms(firing.at),
                    &(firing.outcome == Outcome::Missed),
                    &Json(&record),
                ],
            )
            .await?;
            let mut notes = Vec::new();
            for draft in &firing.notifications {
                notes.push(insert_notification(tx, user, draft.clone(), firing.at).await?);
            }
            let stored = put_outbox(tx, &firing.outbox).await?;
            if let Some(next) = &firing.rearm {
                let plan = plan.and_then(|p| u64::try_from(p).ok()).map(PlanId);
                arm(tx, next, plan).await?;
            }
            if let Some(cursor) = &firing.digest_cursor
                && stored.iter().any(|item| item.key == cursor.key)
            {
                exec(
                    tx,
                    "UPDATE users SET digest_cursor_ms = $2 WHERE user_id = $1",
                    &[&user.as_str(), &ms(cursor.through)],
                )
                .await?;
            }
            Ok(Some(notes))
        })?;
        if result.is_some() {
            self.wake();
        }
        Ok(result)
    }

    async fn digest_cursor(&self, user: &UserId) -> Result<Option<DateTime<Utc>>, StoreError> {
        let client = self.client().await?;
        let found = row(
            &client,
            "SELECT digest_cursor_ms FROM users WHERE user_id = $1",
            &[&user.as_str()],
        )
        .await?;
        let at: Option<i64> = match found {
            Some(r) => r.try_get(0).map_err(Fail::from)?,
            None => None,
        };
        Ok(at.map(|at| from_ms("users", at)).transpose()?)
    }

    async fn missed_since(&self, user: &UserId, since: DateTime<Utc>) -> Result<Vec<Missed>, StoreError> {
        let client = self.client().await?;
        let found = rows(
            &client,
            "SELECT body FROM fired WHERE user_id = $1 AND missed AND at_ms >= $2 ORDER BY fire_ms, id",
            &[&user.as_str(), &ms(since)],
        )
        .await?;
        let mut out = Vec::new();
        for r in &found {
            let record: FiredRecord = decode("fired", r, "body")?;
            // The column is in milliseconds; the record has the instant.
            if record.at > since {
                out.push(Missed {
                    trigger: record.trigger,
                    at: record.at,
                });
            }
        }
        out.sort_by_key(|m| m.trigger.fire_at);
        Ok(out)
    }
}
