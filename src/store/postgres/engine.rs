//! The execution engine's records on PostgreSQL: `work` (the steps ready
//! to start, synced by every plan write in its transaction), `attempts`
//! (one row per step and epoch), `replans`, `calendar_events`.

use super::{Fail, PostgresStore, big, decode, exec, ms, row, rows, transact};
use crate::execution::{Attempt, AttemptState, CalendarEvent, StepRef};
use crate::plan::PlanId;
use crate::store::{Derived, ExecutionStore, StoreError};
use crate::user::UserId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use std::sync::Arc;
use tokio_postgres::types::Json;

/// Makes the plan's entries in the work list match `derived.runnable`,
/// inside the plan write's transaction.
pub(super) async fn sync_work(
    tx: &Transaction<'_>,
    user: &UserId,
    plan: PlanId,
    derived: &Derived,
) -> Result<(), Fail> {
    let id = big(plan.0);
    let mut old: Vec<(String, i64)> = rows(
        tx,
        "SELECT step_id, at_ms FROM work WHERE user_id = $1 AND plan_id = $2",
        &[&user.as_str(), &id],
    )
    .await?
    .iter()
    .map(|r| Ok::<_, tokio_postgres::Error>((r.try_get(0)?, r.try_get(1)?)))
    .collect::<Result<_, _>>()?;
    let mut new: Vec<(String, i64)> = derived.runnable.iter().map(|r| (r.step_id.clone(), ms(r.at))).collect();
    old.sort();
    new.sort();
    if old == new {
        return Ok(());
    }
    exec(
        tx,
        "DELETE FROM work WHERE user_id = $1 AND plan_id = $2",
        &[&user.as_str(), &id],
    )
    .await?;
    for r in &derived.runnable {
        let place = StepRef {
            user: user.clone(),
            plan_id: plan,
            step_id: r.step_id.clone(),
            at: r.at,
            one_at_a_time: r.one_at_a_time,
        };
        exec(
            tx,
            "INSERT INTO work (user_id, plan_id, step_id, at_ms, body) VALUES ($1, $2, $3, $4, $5)",
            &[&user.as_str(), &id, &r.step_id, &ms(r.at), &Json(&place)],
        )
        .await?;
    }
    Ok(())
}

#[async_trait]
impl ExecutionStore for PostgresStore {
    fn work_signal(&self) -> Arc<tokio::sync::Notify> {
        self.inner.work_signal.clone()
    }

    async fn due_steps(
        &self,
        now: DateTime<Utc>,
        after: Option<&StepRef>,
        limit: usize,
    ) -> Result<Vec<StepRef>, StoreError> {
        let client = self.client().await?;
        let found = match after {
            None => {
                rows(
                    &client,
                    "SELECT body FROM work WHERE at_ms <= $1 ORDER BY at_ms, user_id, plan_id, step_id LIMIT $2",
                    &[&ms(now), &big(limit)],
                )
                .await?
            }
            Some(place) => {
                rows(
                    &client,
                    "SELECT body FROM work WHERE at_ms <= $1
                       AND (at_ms, user_id, plan_id, step_id) > ($3, $4, $5, $6)
                     ORDER BY at_ms, user_id, plan_id, step_id LIMIT $2",
                    &[
                        &ms(now),
                        &big(limit),
                        &ms(place.at),
                        &place.user.as_str(),
                        &big(place.plan_id.0),
                        &place.step_id,
                    ],
                )
                .await?
            }
        };
        found
            .iter()
            .map(|r| decode("work", r, "body").map_err(StoreError::from))
            .collect()
    }

    async fn next_step_at(&self, after: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, StoreError> {
        let client = self.client().await?;
        let found = row(
            &client,
            "SELECT body FROM work WHERE at_ms > $1 ORDER BY at_ms, user_id, plan_id, step_id LIMIT 1",
            &[&ms(after)],
        )
        .await?;
        let place: Option<StepRef> = found.map(|r| decode("work", &r, "body")).transpose()?;
        Ok(place.map(|p| p.at))
    }

    async fn save_attempt(&self, attempt: &Attempt) -> Result<(), StoreError> {
        transact!(self, |tx| {
            exec(
                tx,
                "INSERT INTO attempts (user_id, plan_id, step_id, epoch, settled, next_try_ms, body)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (user_id, plan_id, step_id, epoch) DO UPDATE
                 SET settled = EXCLUDED.settled, next_try_ms = EXCLUDED.next_try_ms, body = EXCLUDED.body",
                &[
                    &attempt.user.as_str(),
                    &big(attempt.plan_id.0),
                    &attempt.step_id,
                    &i64::from(attempt.epoch),
                    &attempt.settled,
                    &ms(attempt.next_try_at),
                    &Json(attempt),
                ],
            )
            .await?;
            Ok(())
        })?;
        // A new retry time is work to wake for; other saves go with a plan
        // write (which wakes the engine) or free a slot (which does too).
        if attempt.state == AttemptState::Waiting {
            self.inner.work_signal.notify_one();
        }
        Ok(())
    }

    async fn last_attempt(&self, user: &UserId, plan: PlanId, step: &str) -> Result<Option<Attempt>, StoreError> {
        let client = self.client().await?;
        let found = row(
            &client,
            "SELECT body FROM attempts WHERE user_id = $1 AND plan_id = $2 AND step_id = $3
             ORDER BY epoch DESC LIMIT 1",
            &[&user.as_str(), &big(plan.0), &step],
        )
        .await?;
        Ok(found.map(|r| decode("attempts", &r, "body")).transpose()?)
    }

    async fn open_attempts(&self, limit: usize) -> Result<Vec<Attempt>, StoreError> {
        let client = self.client().await?;
        let found = rows(
            &client,
            "SELECT body FROM attempts WHERE NOT settled ORDER BY next_try_ms, user_id, plan_id, step_id, epoch LIMIT $1",
            &[&big(limit)],
        )
        .await?;
        found
            .iter()
            .map(|r| decode("attempts", r, "body").map_err(StoreError::from))
            .collect()
    }

    async fn count_replan(&self, user: &UserId, plan: PlanId) -> Result<u32, StoreError> {
        let count: i64 = transact!(self, |tx| {
            let r = row(
                tx,
                "INSERT INTO replans (user_id, plan_id, count) VALUES ($1, $2, 1)
                     ON CONFLICT (user_id, plan_id) DO UPDATE SET count = replans.count + 1
                     RETURNING count",
                &[&user.as_str(), &big(plan.0)],
            )
            .await?;
            match r {
                Some(r) => Ok(r.try_get(0)?),
                None => Err(Fail::Store(StoreError::Backend("the replan count gave nothing".into()))),
            }
        })?;
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    async fn add_event(&self, user: &UserId, event: &CalendarEvent) -> Result<bool, StoreError> {
        let added = transact!(self, |tx| {
            exec(
                tx,
                "INSERT INTO calendar_events (user_id, key, starts_ms, body) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (user_id, key) DO NOTHING",
                &[&user.as_str(), &event.key, &ms(event.starts), &Json(event)],
            )
            .await
        })?;
        Ok(added > 0)
    }

    async fn events(&self, user: &UserId) -> Result<Vec<CalendarEvent>, StoreError> {
        let client = self.client().await?;
        let found = rows(
            &client,
            "SELECT body FROM calendar_events WHERE user_id = $1 ORDER BY starts_ms, key",
            &[&user.as_str()],
        )
        .await?;
        found
            .iter()
            .map(|r| decode("calendar_events", r, "body").map_err(StoreError::from))
            .collect()
    }
}
