//! The execution engine's records on sled. The work list lives in the
//! `timers` tree beside the triggers, because every plan write syncs both
//! in its transaction: `R` (time | user | plan | step → where), `S` (user
//! | plan → the plan's listed steps). Attempts and the rest are in the
//! `engine` tree: `A` (user | plan | step | epoch → attempt), `O` (the
//! same key, for attempts not settled), `N` (user | plan → replans), `C`
//! (user | key → calendar event). The latest epoch of a step is its last
//! `A` key (`L` keys written by earlier versions are no longer read).

use super::{SledStore, TxResult, backend, dec, decode, enc, encode, finish, keys, ms};
use crate::execution::{Attempt, CalendarEvent, StepRef};
use crate::plan::PlanId;
use crate::store::{Derived, ExecutionStore, StoreError};
use crate::user::UserId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keys::{instant, tagged};
use sled::transaction::TransactionalTree;
use std::sync::Arc;

pub(super) const WORK: u8 = b'R';
const WORK_BY_PLAN: u8 = b'S';
pub(super) const ATTEMPT: u8 = b'A';
const OPEN: u8 = b'O';
pub(super) const REPLANS: u8 = b'N';
pub(super) const EVENT: u8 = b'C';

fn work_key(at_ms: i64, num: u64, plan: u64, step: &str) -> Vec<u8> {
    tagged(WORK, &[&instant(at_ms), &keys::plan(num, plan), step.as_bytes()])
}

fn step_key(tag: u8, num: u64, plan: u64, step: &str) -> Vec<u8> {
    // The step id is last and of any length: a 0 ends it so "a" never
    // prefixes "ab" (ids are a-z 0-9 _ -, never 0).
    tagged(tag, &[&keys::plan(num, plan), step.as_bytes(), &[0]])
}

fn attempt_key(tag: u8, num: u64, plan: u64, step: &str, epoch: u32) -> Vec<u8> {
    let mut k = step_key(tag, num, plan, step);
    k.extend_from_slice(&epoch.to_be_bytes());
    k
}

/// Makes the plan's entries in the work list match `derived.runnable`,
/// inside the plan write's transaction.
pub(super) fn sync_work(
    timers: &TransactionalTree,
    user: &UserId,
    num: u64,
    plan: PlanId,
    derived: &Derived,
) -> TxResult<()> {
    let index = tagged(WORK_BY_PLAN, &[&keys::plan(num, plan.0)]);
    let old: Vec<(i64, String)> = match timers.get(&index)? {
        Some(v) => dec("timers", &v)?,
        None => Vec::new(),
    };
    let new: Vec<(i64, String)> = derived.runnable.iter().map(|r| (ms(r.at), r.step_id.clone())).collect();
    if old == new {
        return Ok(());
    }
    for (at, step) in &old {
        timers.remove(work_key(*at, num, plan.0, step))?;
    }
    for (r, (at, step)) in derived.runnable.iter().zip(&new) {
        let place = StepRef {
            user: user.clone(),
            plan_id: plan,
            step_id: step.clone(),
            at: r.at,
            one_at_a_time: r.one_at_a_time,
        };
        timers.insert(work_key(*at, num, plan.0, step), enc(&place)?)?;
    }
    if new.is_empty() {
        timers.remove(index)?;
    } else {
        timers.insert(index, enc(&new)?)?;
    }
    Ok(())
}

#[async_trait]
impl ExecutionStore for SledStore {
    fn work_signal(&self) -> Arc<tokio::sync::Notify> {
        self.inner.work_signal.clone()
    }

    async fn due_steps(
        &self,
        now: DateTime<Utc>,
        after: Option<&StepRef>,
        limit: usize,
    ) -> Result<Vec<StepRef>, StoreError> {
        let mut end = vec![WORK];
        end.extend_from_slice(&instant(ms(now).saturating_add(1)));
        let start = match after {
            Some(place) => match self.user_num(&place.user)? {
                Some(num) => {
                    let mut key = work_key(ms(place.at), num, place.plan_id.0, &place.step_id);
                    key.push(0); // just past it
                    key
                }
                None => vec![WORK],
            },
            None => vec![WORK],
        };
        if start >= end {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for item in self.inner.timers.range(start..end).take(limit) {
            let (_, v) = item.map_err(backend)?;
            out.push(decode("timers", &v)?);
        }
        Ok(out)
    }

    async fn next_step_at(&self, after: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut start = vec![WORK];
        start.extend_from_slice(&instant(ms(after).saturating_add(1)));
        match self.inner.timers.range(start..[WORK + 1].to_vec()).next() {
            Some(item) => {
                let (_, v) = item.map_err(backend)?;
                let place: StepRef = decode("timers", &v)?;
                Ok(Some(place.at))
            }
            None => Ok(None),
        }
    }

    async fn save_attempt(&self, attempt: &Attempt) -> Result<(), StoreError> {
        let num = self.require_user(&attempt.user)?;
        let (plan, step, epoch) = (attempt.plan_id.0, attempt.step_id.as_str(), attempt.epoch);
        let key = attempt_key(ATTEMPT, num, plan, step, epoch);
        let open = attempt_key(OPEN, num, plan, step, epoch);
        finish(self.inner.engine.transaction(|engine: &TransactionalTree| {
            engine.insert(key.clone(), enc(attempt)?)?;
            if attempt.settled {
                engine.remove(open.clone())?;
            } else {
                engine.insert(open.clone(), &[][..])?;
            }
            Ok(())
        }))?;
        self.durable().await?;
        // A new retry time is work to wake for; other saves go with a plan
        // write (which wakes the engine) or free a slot (which does too).
        if attempt.state == crate::execution::AttemptState::Waiting {
            self.inner.work_signal.notify_one();
        }
        Ok(())
    }

    async fn last_attempt(&self, user: &UserId, plan: PlanId, step: &str) -> Result<Option<Attempt>, StoreError> {
        let Some(num) = self.user_num(user)? else {
            return Ok(None);
        };
        // A step's attempts are keyed by big-endian epoch: the last is the latest.
        match self
            .inner
            .engine
            .scan_prefix(step_key(ATTEMPT, num, plan.0, step))
            .next_back()
        {
            Some(item) => decode("engine", &item.map_err(backend)?.1).map(Some),
            None => Ok(None),
        }
    }

    async fn open_attempts(&self, limit: usize) -> Result<Vec<Attempt>, StoreError> {
        let engine = self.inner.engine.clone();
        let mut open: Vec<Attempt> = self
            .blocking(move |_| {
                let mut out = Vec::new();
                for item in engine.scan_prefix([OPEN]) {
                    let (k, _) = item.map_err(backend)?;
                    let mut key = k.to_vec();
                    key[0] = ATTEMPT;
                    if let Some(v) = engine.get(&key).map_err(backend)? {
                        out.push(decode::<Attempt>("engine", &v)?);
                    }
                }
                Ok(out)
            })
            .await?;
        open.sort_by_key(|a| a.next_try_at);
        open.truncate(limit);
        Ok(open)
    }

    async fn count_replan(&self, user: &UserId, plan: PlanId) -> Result<u32, StoreError> {
        let num = self.require_user(user)?;
        let key = tagged(REPLANS, &[&keys::plan(num, plan.0)]);
        let count = finish(self.inner.engine.transaction(|engine: &TransactionalTree| {
            let now = match engine.get(&key)? {
                Some(v) => dec::<u32>("engine", &v)?,
                None => 0,
            } + 1;
            engine.insert(key.clone(), enc(&now)?)?;
            Ok(now)
        }))?;
        self.durable().await?;
        Ok(count)
    }

    async fn add_event(&self, user: &UserId, event: &CalendarEvent) -> Result<bool, StoreError> {
        let num = self.require_user(user)?;
        let key = tagged(EVENT, &[&num.to_be_bytes(), event.key.as_bytes()]);
        let value = encode(event)?;
        let stored = self
            .inner
            .engine
            .compare_and_swap(key, None as Option<&[u8]>, Some(value))
            .map_err(backend)?
            .is_ok();
        self.durable().await?;
        Ok(stored)
    }

    async fn events(&self, user: &UserId) -> Result<Vec<CalendarEvent>, StoreError> {
        let Some(num) = self.user_num(user)? else {
            return Ok(Vec::new());
        };
        let mut out: Vec<CalendarEvent> = Vec::new();
        for item in self.inner.engine.scan_prefix(tagged(EVENT, &[&num.to_be_bytes()])) {
            let (_, v) = item.map_err(backend)?;
            out.push(decode("engine", &v)?);
        }
        out.sort_by_key(|e| e.starts);
        Ok(out)
    }
}
