//! Triggers on sled, in the `timers` tree, with one-byte key families:
//! `T` schedule (fire time | user | id → trigger, so the earliest trigger
//! is the first key), `I` (user | id → fire time), `P` (user | plan → ids
//! derived from that plan), `F` fired (user | id | 0 | fire time →
//! outcome), the exactly-once record; `D` (user → when missed triggers
//! were last reported in a digest). A firing also writes the notification
//! and outbox rows it makes (`notify` tree) in the same transaction.

use super::notifications::{Queued, note_key, put_outbox, route_key};
use super::{SledStore, TxResult, abort, backend, dec, decode, enc, finish, from_ms, keys, ms};
use crate::notification::{Notification, OutboxItem};
use crate::plan::PlanId;
use crate::store::{Derived, Firing, Missed, StoreError, TriggerStore};
use crate::triggers::{Outcome, Trigger};
use crate::user::UserId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keys::{decode_instant, instant, tagged};
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::TransactionalTree;
use std::collections::HashSet;
use std::sync::Arc;

pub(super) const SCHEDULE: u8 = b'T';
const BY_ID: u8 = b'I';
pub(super) const BY_PLAN: u8 = b'P';
pub(super) const FIRED: u8 = b'F';
pub(super) const DIGEST_CURSOR: u8 = b'D';

fn schedule_key(fire_ms: i64, num: u64, id: &str) -> Vec<u8> {
    tagged(SCHEDULE, &[&instant(fire_ms), &num.to_be_bytes(), id.as_bytes()])
}

pub(super) fn by_id_key(num: u64, id: &str) -> Vec<u8> {
    tagged(BY_ID, &[&num.to_be_bytes(), id.as_bytes()])
}

fn by_plan_key(num: u64, plan: u64) -> Vec<u8> {
    tagged(BY_PLAN, &[&keys::plan(num, plan)])
}

fn fired_key(num: u64, id: &str, fire_ms: i64) -> Vec<u8> {
    tagged(FIRED, &[&num.to_be_bytes(), id.as_bytes(), &[0], &instant(fire_ms)])
}

/// The exactly-once record of one firing.
#[derive(Serialize, Deserialize)]
pub(super) struct FiredRecord {
    pub(super) at: DateTime<Utc>,
    pub(super) outcome: Outcome,
    pub(super) trigger: Trigger,
}

/// Removes the trigger `id` of user `num` if armed.
pub(super) fn disarm(timers: &TransactionalTree, num: u64, id: &str) -> TxResult<bool> {
    let Some(at) = timers.remove(by_id_key(num, id))? else {
        return Ok(false);
    };
    let Some(fire_ms) = decode_instant(&at) else {
        return abort(StoreError::Corrupt {
            tree: "timers",
            reason: "bad trigger index".into(),
        });
    };
    timers.remove(schedule_key(fire_ms, num, id))?;
    Ok(true)
}

/// Arms `trigger` (replacing one with the same id) unless that very
/// firing is already recorded. Returns whether it is armed.
pub(super) fn arm(timers: &TransactionalTree, num: u64, trigger: &Trigger) -> TxResult<bool> {
    let fire_ms = ms(trigger.fire_at);
    if let Some(at) = timers.get(by_id_key(num, &trigger.id))?
        && decode_instant(&at) == Some(fire_ms)
    {
        // Armed at that time already: rewritten only if it changed (a plan
        // update re-derives every trigger of the plan; most are as they were).
        let key = schedule_key(fire_ms, num, &trigger.id);
        let record = enc(trigger)?;
        if timers.get(&key)?.as_deref() != Some(&record[..]) {
            timers.insert(key, record)?;
        }
        return Ok(true);
    }
    disarm(timers, num, &trigger.id)?;
    if timers.get(fired_key(num, &trigger.id, fire_ms))?.is_some() {
        return Ok(false);
    }
    timers.insert(schedule_key(fire_ms, num, &trigger.id), enc(trigger)?)?;
    timers.insert(by_id_key(num, &trigger.id), &instant(fire_ms)[..])?;
    Ok(true)
}

/// Makes the plan's armed triggers match `derived`, inside the plan
/// write's transaction (see [`crate::store::TriggerStore`] for the rule):
/// a trigger never outlives what derived it, and moving a due date moves
/// its triggers.
pub(super) fn sync_plan(timers: &TransactionalTree, num: u64, plan: PlanId, derived: &Derived) -> TxResult<()> {
    let index = by_plan_key(num, plan.0);
    let old: Vec<String> = match timers.get(&index)? {
        Some(v) => dec("timers", &v)?,
        None => Vec::new(),
    };
    let mut kept = Vec::new();
    for t in &derived.triggers {
        let fire_ms = ms(t.fire_at);
        let same = timers
            .get(by_id_key(num, &t.id))?
            .is_some_and(|at| decode_instant(&at) == Some(fire_ms));
        if !same && t.fire_at <= derived.arm_after {
            disarm(timers, num, &t.id)?;
            continue;
        }
        if arm(timers, num, t)? {
            kept.push(t.id.clone());
        }
    }
    let keep: HashSet<&str> = kept.iter().map(String::as_str).collect();
    for id in old.iter().filter(|id| !keep.contains(id.as_str())) {
        disarm(timers, num, id)?;
    }
    if kept.is_empty() {
        if !old.is_empty() {
            timers.remove(index)?;
        }
    } else if kept != old {
        timers.insert(index, enc(&kept)?)?;
    }
    Ok(())
}

#[async_trait]
impl TriggerStore for SledStore {
    fn timer_signal(&self) -> Arc<tokio::sync::Notify> {
        self.inner.timer_signal.clone()
    }

    async fn put_trigger(&self, trigger: &Trigger) -> Result<(), StoreError> {
        let num = self.require_user(&trigger.user)?;
        finish(self.inner.timers.transaction(|t| arm(t, num, trigger)))?;
        self.durable().await?;
        self.wake();
        Ok(())
    }

    async fn remove_trigger(&self, user: &UserId, id: &str) -> Result<bool, StoreError> {
        let Some(num) = self.user_num(user)? else {
            return Ok(false);
        };
        let removed = finish(self.inner.timers.transaction(|t| disarm(t, num, id)))?;
        self.durable().await?;
        Ok(removed)
    }

    async fn user_triggers(&self, user: &UserId) -> Result<Vec<Trigger>, StoreError> {
        let Some(num) = self.user_num(user)? else {
            return Ok(Vec::new());
        };
        let timers = &self.inner.timers;
        let mut out = Vec::new();
        for item in timers.scan_prefix(tagged(BY_ID, &[&num.to_be_bytes()])) {
            let (k, at) = item.map_err(backend)?;
            let id = String::from_utf8_lossy(&k[9..]).into_owned();
            let fire_ms = decode_instant(&at).ok_or_else(|| StoreError::Corrupt {
                tree: "timers",
                reason: "bad trigger index".into(),
            })?;
            if let Some(v) = timers.get(schedule_key(fire_ms, num, &id)).map_err(backend)? {
                out.push(decode::<Trigger>("timers", &v)?);
            }
        }
        out.sort_by_key(|t| t.fire_at);
        Ok(out)
    }

    async fn due_triggers(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Trigger>, StoreError> {
        let bound = instant(ms(now));
        let mut out = Vec::new();
        for item in self.inner.timers.scan_prefix([SCHEDULE]) {
            let (k, v) = item.map_err(backend)?;
            if k.len() < 9 || k[1..9] > bound[..] || out.len() >= limit {
                break;
            }
            out.push(decode("timers", &v)?);
        }
        Ok(out)
    }

    async fn next_trigger_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        match self.inner.timers.scan_prefix([SCHEDULE]).keys().next() {
            Some(k) => {
                let k = k.map_err(backend)?;
                let at = k
                    .get(1..9)
                    .and_then(decode_instant)
                    .ok_or_else(|| StoreError::Corrupt {
                        tree: "timers",
                        reason: "bad schedule key".into(),
                    })?;
                from_ms("timers", at).map(Some)
            }
            None => Ok(None),
        }
    }

    async fn trigger_count(&self) -> Result<usize, StoreError> {
        Ok(self.inner.timers.scan_prefix([SCHEDULE]).count())
    }

    async fn fire(&self, trigger: &Trigger, firing: Firing) -> Result<Option<Vec<Notification>>, StoreError> {
        let num = self.require_user(&trigger.user)?;
        let note_seqs = self.seqs(firing.notifications.len())?;
        let items: Vec<(OutboxItem, u64)> = firing
            .outbox
            .iter()
            .cloned()
            .zip(self.seqs(firing.outbox.len())?)
            .collect();
        let fire_ms = ms(trigger.fire_at);
        let i = &self.inner;
        let result = finish((&i.timers, &i.notify).transaction(|(timers, notify)| {
            if timers.remove(schedule_key(fire_ms, num, &trigger.id))?.is_none() {
                return Ok(None);
            }
            timers.remove(by_id_key(num, &trigger.id))?;
            let record = FiredRecord {
                at: firing.at,
                outcome: firing.outcome,
                trigger: trigger.clone(),
            };
            timers.insert(fired_key(num, &trigger.id, fire_ms), enc(&record)?)?;
            let mut notes = Vec::new();
            for (draft, seq) in firing.notifications.iter().zip(&note_seqs) {
                let n = Notification {
                    id: format!("n{seq}"),
                    kind: draft.kind,
                    text: draft.text.clone(),
                    plan_id: draft.plan_id,
                    step_id: draft.step_id.clone(),
                    created_at: firing.at,
                    urgent: draft.urgent,
                    seen: false,
                    routed: None,
                };
                notify.insert(note_key(num, *seq), enc(&n)?)?;
                let queued = Queued {
                    user: trigger.user.clone(),
                    not_before: firing.at,
                };
                notify.insert(route_key(num, *seq), enc(&queued)?)?;
                notes.push(n);
            }
            let stored = put_outbox(notify, &items)?;
            if let Some(next) = &firing.rearm {
                arm(timers, num, next)?;
            }
            if let Some(cursor) = &firing.digest_cursor
                && stored.iter().any(|item| item.key == cursor.key)
            {
                timers.insert(
                    tagged(DIGEST_CURSOR, &[&num.to_be_bytes()]),
                    &instant(ms(cursor.through))[..],
                )?;
            }
            Ok(Some(notes))
        }))?;
        if result.is_some() {
            self.durable().await?;
            self.wake();
        }
        Ok(result)
    }

    async fn digest_cursor(&self, user: &UserId) -> Result<Option<DateTime<Utc>>, StoreError> {
        let Some(num) = self.user_num(user)? else {
            return Ok(None);
        };
        let key = tagged(DIGEST_CURSOR, &[&num.to_be_bytes()]);
        match self.inner.timers.get(key).map_err(backend)? {
            Some(v) => match decode_instant(&v) {
                Some(at) => from_ms("timers", at).map(Some),
                None => Err(StoreError::Corrupt {
                    tree: "timers",
                    reason: "bad digest cursor".into(),
                }),
            },
            None => Ok(None),
        }
    }

    async fn missed_since(&self, user: &UserId, since: DateTime<Utc>) -> Result<Vec<Missed>, StoreError> {
        let Some(num) = self.user_num(user)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for v in self
            .inner
            .timers
            .scan_prefix(tagged(FIRED, &[&num.to_be_bytes()]))
            .values()
        {
            let r: FiredRecord = decode("timers", &v.map_err(backend)?)?;
            if r.outcome == Outcome::Missed && r.at > since {
                out.push(Missed {
                    trigger: r.trigger,
                    at: r.at,
                });
            }
        }
        out.sort_by_key(|m| m.trigger.fire_at);
        Ok(out)
    }
}
