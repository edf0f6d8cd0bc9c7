//! The sled side of [`NotifyStore`], and the trigger sync that runs inside
//! every plan write's transaction.
//!
//! Two trees, each with one-byte key families:
//! - `timers`: `T` schedule (fire time | user | id → trigger, so the
//!   earliest trigger is the first key), `I` (user | id → fire time),
//!   `P` (user | plan → ids derived from that plan), `F` fired
//!   (user | id | 0 | fire time → outcome), the exactly-once record;
//!   `D` (user → when missed triggers were last reported in a digest).
//! - `notify`: `N` notifications (user | seq), `Q` routing queue
//!   (user | seq → not-before), `O` outbox (seq), `W` outbox work queue
//!   (attempt time | seq), `K` idempotency keys (key → seq), `R`
//!   preferences (user), `S` push subscriptions (user | endpoint hash),
//!   `C` secrets.

use super::{SledStore, abort, backend, decode, encode};
use crate::notification::{Notification, OutboxItem, OutboxStatus, PushSubscription};
use crate::plan::Plan;
use crate::preferences::Preferences;
use crate::store::keys::{self, decode_instant, instant, tagged};
use crate::store::{Firing, Missed, NotifyStore, StoreError};
use crate::triggers::{self, Outcome, Trigger, TriggerPolicy};
use crate::user::UserId;
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use std::collections::HashSet;
use std::sync::Arc;

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

const SCHEDULE: u8 = b'T';
const BY_ID: u8 = b'I';
const BY_PLAN: u8 = b'P';
const FIRED: u8 = b'F';
const DIGEST_CURSOR: u8 = b'D';
const NOTE: u8 = b'N';
const ROUTE: u8 = b'Q';
const OUTBOX: u8 = b'O';
const WORK: u8 = b'W';
const KEY: u8 = b'K';
const PREFS: u8 = b'R';
const SUB: u8 = b'S';
const SECRET: u8 = b'C';
/// endpoint hash → the user whose subscription it is (one owner at a time).
const SUB_OWNER: u8 = b'U';

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn schedule_key(fire_ms: i64, num: u64, id: &str) -> Vec<u8> {
    tagged(SCHEDULE, &[&instant(fire_ms), &num.to_be_bytes(), id.as_bytes()])
}

fn by_id_key(num: u64, id: &str) -> Vec<u8> {
    tagged(BY_ID, &[&num.to_be_bytes(), id.as_bytes()])
}

fn by_plan_key(num: u64, plan: u64) -> Vec<u8> {
    tagged(BY_PLAN, &[&keys::plan(num, plan)])
}

fn fired_key(num: u64, id: &str, fire_ms: i64) -> Vec<u8> {
    tagged(FIRED, &[&num.to_be_bytes(), id.as_bytes(), &[0], &instant(fire_ms)])
}

fn note_key(num: u64, seq: u64) -> Vec<u8> {
    tagged(NOTE, &[&num.to_be_bytes(), &seq.to_be_bytes()])
}

fn route_key(num: u64, seq: u64) -> Vec<u8> {
    tagged(ROUTE, &[&num.to_be_bytes(), &seq.to_be_bytes()])
}

fn outbox_key(seq: u64) -> Vec<u8> {
    tagged(OUTBOX, &[&seq.to_be_bytes()])
}

fn work_key(at: DateTime<Utc>, seq: u64) -> Vec<u8> {
    tagged(WORK, &[&instant(ms(at)), &seq.to_be_bytes()])
}

fn idem_key(key: &str) -> Vec<u8> {
    tagged(KEY, &[key.as_bytes()])
}

fn sub_key(num: u64, endpoint: &str) -> Vec<u8> {
    let hash = Sha256::digest(endpoint.as_bytes());
    tagged(SUB, &[&num.to_be_bytes(), &hash[..16]])
}

fn sub_owner_key(endpoint: &str) -> Vec<u8> {
    let hash = Sha256::digest(endpoint.as_bytes());
    tagged(SUB_OWNER, &[&hash[..16]])
}

/// The exactly-once record of one firing.
#[derive(Serialize, Deserialize)]
struct FiredRecord {
    at: DateTime<Utc>,
    outcome: Outcome,
    trigger: Trigger,
}

/// A queued notification's routing state.
#[derive(Serialize, Deserialize)]
struct Queued {
    user: UserId,
    not_before: DateTime<Utc>,
}

fn seq_of(id: &str, prefix: char) -> Option<u64> {
    id.strip_prefix(prefix)?.parse().ok()
}

fn tx<T>(e: StoreError) -> TxResult<T> {
    abort(e)
}

fn enc<T: Serialize>(v: &T) -> TxResult<Vec<u8>> {
    encode(v).map_err(ConflictableTransactionError::Abort)
}

fn dec<T: serde::de::DeserializeOwned>(tree: &'static str, v: &[u8]) -> TxResult<T> {
    decode(tree, v).map_err(ConflictableTransactionError::Abort)
}

fn finish<T>(r: Result<T, TransactionError<StoreError>>) -> Result<T, StoreError> {
    r.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => backend(e),
    })
}

/// Removes the trigger `id` of user `num` if armed.
fn disarm(timers: &TransactionalTree, num: u64, id: &str) -> TxResult<bool> {
    let Some(at) = timers.remove(by_id_key(num, id))? else {
        return Ok(false);
    };
    let Some(fire_ms) = decode_instant(&at) else {
        return tx(StoreError::Corrupt {
            tree: "timers",
            reason: "bad trigger index".into(),
        });
    };
    timers.remove(schedule_key(fire_ms, num, id))?;
    Ok(true)
}

/// Arms `trigger` (replacing one with the same id) unless that very
/// firing is already recorded. Returns whether it is armed.
fn arm(timers: &TransactionalTree, num: u64, trigger: &Trigger) -> TxResult<bool> {
    let fire_ms = ms(trigger.fire_at);
    if let Some(at) = timers.get(by_id_key(num, &trigger.id))?
        && decode_instant(&at) == Some(fire_ms)
    {
        timers.insert(schedule_key(fire_ms, num, &trigger.id), enc(trigger)?)?;
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

/// Makes the plan's armed triggers match what the plan implies, inside the
/// plan write's transaction: a trigger never outlives its step, and moving
/// a due date moves its triggers. A newly implied trigger whose time is
/// already past when the plan is written is not armed (no retroactive
/// "due soon" for a step created due tomorrow morning).
pub(super) fn sync_plan(
    timers: &TransactionalTree,
    num: u64,
    user: &UserId,
    plan: &Plan,
    policy: &TriggerPolicy,
) -> TxResult<()> {
    let index = by_plan_key(num, plan.id.0);
    let old: Vec<String> = match timers.get(&index)? {
        Some(v) => dec("timers", &v)?,
        None => Vec::new(),
    };
    let mut kept = Vec::new();
    for t in triggers::for_plan(user, plan, policy) {
        let fire_ms = ms(t.fire_at);
        let same = timers
            .get(by_id_key(num, &t.id))?
            .is_some_and(|at| decode_instant(&at) == Some(fire_ms));
        if !same && t.fire_at <= plan.updated_at {
            disarm(timers, num, &t.id)?;
            continue;
        }
        if arm(timers, num, &t)? {
            kept.push(t.id);
        }
    }
    let keep: HashSet<&str> = kept.iter().map(String::as_str).collect();
    for id in old.iter().filter(|id| !keep.contains(id.as_str())) {
        disarm(timers, num, id)?;
    }
    if kept.is_empty() {
        timers.remove(index)?;
    } else {
        timers.insert(index, enc(&kept)?)?;
    }
    Ok(())
}

/// Stores outbox items whose idempotency keys are new.
fn put_outbox(notify: &TransactionalTree, items: &[(OutboxItem, u64)]) -> TxResult<Vec<OutboxItem>> {
    let mut stored = Vec::new();
    for (item, seq) in items {
        if notify.get(idem_key(&item.key))?.is_some() {
            continue;
        }
        let mut item = item.clone();
        item.id = format!("o{seq}");
        notify.insert(outbox_key(*seq), enc(&item)?)?;
        notify.insert(work_key(item.next_attempt_at, *seq), &[][..])?;
        notify.insert(idem_key(&item.key), &seq.to_be_bytes()[..])?;
        stored.push(item);
    }
    Ok(stored)
}

/// [`NotifyStore::prune`]'s scans and deletions (blocking).
fn prune_trees(
    timers: &sled::Tree,
    notify: &sled::Tree,
    before: DateTime<Utc>,
) -> Result<crate::store::Pruned, StoreError> {
    let mut pruned = crate::store::Pruned::default();
    let mut fired = sled::Batch::default();
    for item in timers.scan_prefix([FIRED]) {
        let (k, v) = item.map_err(backend)?;
        let r: FiredRecord = decode("timers", &v)?;
        // Older than the retention: the trigger's time is long past, so
        // no plan write can derive that same firing again.
        if r.at < before && r.trigger.fire_at < before {
            fired.remove(k);
            pruned.fired += 1;
        }
    }
    let mut notes = sled::Batch::default();
    for item in notify.scan_prefix([NOTE]) {
        let (k, v) = item.map_err(backend)?;
        let n: Notification = decode("notify", &v)?;
        let mut queued = k.to_vec();
        queued[0] = ROUTE;
        if n.created_at < before && n.routed.is_some() && notify.get(&queued).map_err(backend)?.is_none() {
            notes.remove(k);
            pruned.notifications += 1;
        }
    }
    for item in notify.scan_prefix([OUTBOX]) {
        let (k, v) = item.map_err(backend)?;
        let o: OutboxItem = decode("notify", &v)?;
        let finished = matches!(o.status, OutboxStatus::Sent | OutboxStatus::Failed);
        if finished && o.created_at < before {
            notes.remove(k);
            notes.remove(idem_key(&o.key));
            pruned.outbox += 1;
        }
    }
    timers.apply_batch(fired).map_err(backend)?;
    notify.apply_batch(notes).map_err(backend)?;
    Ok(pruned)
}

impl SledStore {
    /// Users holding `endpoint` in subscriptions stored before owners were
    /// recorded (key: SUB, user number, endpoint hash). Read only when an
    /// endpoint has no owner record yet, so the scan happens once each.
    fn legacy_subscribers(&self, endpoint: &str) -> Result<Vec<u64>, StoreError> {
        if self
            .inner
            .notify
            .contains_key(sub_owner_key(endpoint))
            .map_err(backend)?
        {
            return Ok(Vec::new());
        }
        let hash = Sha256::digest(endpoint.as_bytes());
        let mut users = Vec::new();
        for key in self.inner.notify.scan_prefix([SUB]).keys() {
            let key = key.map_err(backend)?;
            if key.len() == 1 + 8 + 16 && key[9..] == hash[..16] {
                users.extend(keys::decode_u64(&key[1..9]));
            }
        }
        Ok(users)
    }

    fn seqs(&self, n: usize) -> Result<Vec<u64>, StoreError> {
        (0..n)
            .map(|_| self.inner.db.generate_id().map(|s| s + 1).map_err(backend))
            .collect()
    }

    fn wake(&self) {
        self.inner.timer_signal.notify_one();
    }

    /// Overwrites the user's stored preferences with bytes that do not
    /// decode, so tests can make every read of them fail.
    #[cfg(test)]
    pub(crate) fn corrupt_preferences(&self, user: &UserId) {
        let num = self.require_user(user).unwrap();
        self.inner
            .notify
            .insert(tagged(PREFS, &[&num.to_be_bytes()]), &b"not json"[..])
            .unwrap();
    }
}

#[async_trait]
impl NotifyStore for SledStore {
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
                Ok(k.get(1..9).and_then(decode_instant).map(from_ms))
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
        Ok(self
            .inner
            .timers
            .get(key)
            .map_err(backend)?
            .and_then(|v| decode_instant(&v))
            .map(from_ms))
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

    async fn due_notifications(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(UserId, Notification)>, StoreError> {
        let notify = &self.inner.notify;
        let mut out = Vec::new();
        for item in notify.scan_prefix([ROUTE]) {
            let (k, v) = item.map_err(backend)?;
            let q: Queued = decode("notify", &v)?;
            if q.not_before > now {
                continue;
            }
            let mut note = k.to_vec();
            note[0] = NOTE;
            if let Some(n) = notify.get(note).map_err(backend)? {
                out.push((q.user, decode("notify", &n)?));
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    async fn route_notification(
        &self,
        user: &UserId,
        notification: &Notification,
        outbox: Vec<OutboxItem>,
        defer_until: Option<DateTime<Utc>>,
        transcript: Option<crate::conversation::Entry>,
    ) -> Result<bool, StoreError> {
        let num = self.require_user(user)?;
        let seq = seq_of(&notification.id, 'n')
            .ok_or_else(|| StoreError::Backend(format!("bad notification id {}", notification.id)))?;
        let items: Vec<(OutboxItem, u64)> = outbox.iter().cloned().zip(self.seqs(outbox.len())?).collect();
        let message_seq = self.inner.db.generate_id().map_err(backend)?;
        let i = &self.inner;
        let applied = finish((&i.notify, &i.messages).transaction(|(notify, messages)| {
            let Some(stored) = notify.get(note_key(num, seq))? else {
                return Ok(false);
            };
            let stored: Notification = dec("notify", &stored)?;
            let queued = notify.get(route_key(num, seq))?.is_some();
            if !queued || (stored.seen && !notification.seen) {
                return Ok(false);
            }
            if let Some(entry) = &transcript {
                messages.insert(&keys::message(num, message_seq)[..], enc(entry)?)?;
            }
            notify.insert(note_key(num, seq), enc(notification)?)?;
            match defer_until {
                Some(at) => {
                    let q = Queued {
                        user: user.clone(),
                        not_before: at,
                    };
                    notify.insert(route_key(num, seq), enc(&q)?)?;
                }
                None => {
                    notify.remove(route_key(num, seq))?;
                }
            }
            put_outbox(notify, &items)?;
            Ok(true)
        }))?;
        if applied {
            self.durable().await?;
        }
        Ok(applied)
    }

    async fn unseen_notifications(&self, user: &UserId, limit: usize) -> Result<Vec<Notification>, StoreError> {
        let Some(num) = self.user_num(user)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for v in self
            .inner
            .notify
            .scan_prefix(tagged(NOTE, &[&num.to_be_bytes()]))
            .values()
            .rev()
        {
            let n: Notification = decode("notify", &v.map_err(backend)?)?;
            if !n.seen {
                out.push(n);
                if out.len() >= limit {
                    break;
                }
            }
        }
        out.reverse();
        Ok(out)
    }

    async fn recent_notifications(&self, user: &UserId, limit: usize) -> Result<Vec<Notification>, StoreError> {
        let Some(num) = self.user_num(user)? else {
            return Ok(Vec::new());
        };
        self.inner
            .notify
            .scan_prefix(tagged(NOTE, &[&num.to_be_bytes()]))
            .values()
            .rev()
            .take(limit)
            .map(|v| decode("notify", &v.map_err(backend)?))
            .collect()
    }

    async fn mark_seen(&self, user: &UserId, ids: &[String]) -> Result<(), StoreError> {
        let num = self.require_user(user)?;
        let seqs: Vec<u64> = ids.iter().filter_map(|id| seq_of(id, 'n')).collect();
        finish(self.inner.notify.transaction(|notify| {
            for seq in &seqs {
                let Some(v) = notify.get(note_key(num, *seq))? else {
                    continue;
                };
                let mut n: Notification = dec("notify", &v)?;
                n.seen = true;
                notify.insert(note_key(num, *seq), enc(&n)?)?;
            }
            Ok(())
        }))?;
        self.durable().await
    }

    async fn enqueue(&self, items: Vec<OutboxItem>) -> Result<Vec<OutboxItem>, StoreError> {
        let items: Vec<(OutboxItem, u64)> = items.iter().cloned().zip(self.seqs(items.len())?).collect();
        let stored = finish(self.inner.notify.transaction(|notify| put_outbox(notify, &items)))?;
        self.durable().await?;
        Ok(stored)
    }

    async fn due_outbox(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        let notify = &self.inner.notify;
        let bound = instant(ms(now));
        let mut out = Vec::new();
        for k in notify.scan_prefix([WORK]).keys() {
            let k = k.map_err(backend)?;
            if k.len() != 17 || k[1..9] > bound[..] || out.len() >= limit {
                break;
            }
            let seq = keys::decode_u64(&k[9..17]).unwrap_or_default();
            if let Some(v) = notify.get(outbox_key(seq)).map_err(backend)? {
                out.push(decode("notify", &v)?);
            }
        }
        Ok(out)
    }

    async fn save_outbox(&self, item: &OutboxItem) -> Result<(), StoreError> {
        let seq = seq_of(&item.id, 'o').ok_or_else(|| StoreError::Backend(format!("bad outbox id {}", item.id)))?;
        finish(self.inner.notify.transaction(|notify| {
            let Some(v) = notify.get(outbox_key(seq))? else {
                return tx(StoreError::Backend(format!("outbox item {} vanished", item.id)));
            };
            let current: OutboxItem = dec("notify", &v)?;
            notify.remove(work_key(current.next_attempt_at, seq))?;
            notify.insert(outbox_key(seq), enc(item)?)?;
            match item.status {
                OutboxStatus::Pending | OutboxStatus::Sending => {
                    notify.insert(work_key(item.next_attempt_at, seq), &[][..])?;
                }
                OutboxStatus::Sent | OutboxStatus::Failed => {}
            }
            Ok(())
        }))?;
        self.durable().await
    }

    async fn outbox_by_key(&self, key: &str) -> Result<Option<OutboxItem>, StoreError> {
        let notify = &self.inner.notify;
        let Some(seq) = notify.get(idem_key(key)).map_err(backend)? else {
            return Ok(None);
        };
        let seq = keys::decode_u64(&seq).unwrap_or_default();
        match notify.get(outbox_key(seq)).map_err(backend)? {
            Some(v) => decode("notify", &v).map(Some),
            None => Ok(None),
        }
    }

    async fn preferences(&self, user: &UserId) -> Result<Preferences, StoreError> {
        let Some(num) = self.user_num(user)? else {
            return Ok(Preferences::default());
        };
        match self
            .inner
            .notify
            .get(tagged(PREFS, &[&num.to_be_bytes()]))
            .map_err(backend)?
        {
            Some(v) => decode("notify", &v),
            None => Ok(Preferences::default()),
        }
    }

    async fn save_preferences(
        &self,
        user: &UserId,
        prefs: &Preferences,
        armed: Option<DateTime<Utc>>,
        digest: Option<Trigger>,
    ) -> Result<bool, StoreError> {
        let num = self.require_user(user)?;
        let i = &self.inner;
        let saved = finish((&i.timers, &i.notify).transaction(|(timers, notify)| {
            let current = timers.get(by_id_key(num, "digest"))?.and_then(|at| decode_instant(&at));
            if current != armed.map(ms) {
                return Ok(false);
            }
            notify.insert(tagged(PREFS, &[&num.to_be_bytes()]), enc(prefs)?)?;
            disarm(timers, num, "digest")?;
            if let Some(t) = &digest {
                arm(timers, num, t)?;
            }
            Ok(true)
        }))?;
        if saved {
            self.durable().await?;
            self.wake();
        }
        Ok(saved)
    }

    async fn push_subscriptions(&self, user: &UserId) -> Result<Vec<PushSubscription>, StoreError> {
        let Some(num) = self.user_num(user)? else {
            return Ok(Vec::new());
        };
        self.inner
            .notify
            .scan_prefix(tagged(SUB, &[&num.to_be_bytes()]))
            .values()
            .map(|v| decode("notify", &v.map_err(backend)?))
            .collect()
    }

    async fn add_push_subscription(&self, user: &UserId, sub: &PushSubscription) -> Result<(), StoreError> {
        let num = self.require_user(user)?;
        let value = encode(sub)?;
        let legacy = self.legacy_subscribers(&sub.endpoint)?;
        // A browser's subscription belongs to whoever subscribed it last:
        // after another user signs in on that browser, the previous user's
        // notifications must not arrive there.
        finish(self.inner.notify.transaction(|notify| {
            let owner = sub_owner_key(&sub.endpoint);
            let previous = notify.insert(owner.clone(), &num.to_be_bytes()[..])?;
            let previous: Vec<u64> = match previous {
                Some(bytes) => keys::decode_u64(&bytes).into_iter().collect(),
                // Stored before owners were recorded: any user may hold it.
                None => legacy.clone(),
            };
            for other in previous.into_iter().filter(|&n| n != num) {
                notify.remove(sub_key(other, &sub.endpoint))?;
            }
            notify.insert(sub_key(num, &sub.endpoint), value.clone())?;
            Ok(())
        }))?;
        self.durable().await
    }

    async fn remove_push_subscription(&self, user: &UserId, endpoint: &str) -> Result<(), StoreError> {
        let Some(num) = self.user_num(user)? else {
            return Ok(());
        };
        finish(self.inner.notify.transaction(|notify| {
            notify.remove(sub_key(num, endpoint))?;
            let owner = sub_owner_key(endpoint);
            if notify.get(&owner)?.and_then(|v| keys::decode_u64(&v)) == Some(num) {
                notify.remove(owner)?;
            }
            Ok(())
        }))?;
        self.durable().await
    }

    async fn secret(&self, name: &str, init: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let key = tagged(SECRET, &[name.as_bytes()]);
        let notify = &self.inner.notify;
        // compare_and_swap: two first users racing keep one secret.
        let _ = notify
            .compare_and_swap(&key, None as Option<&[u8]>, Some(init))
            .map_err(backend)?;
        self.durable().await?;
        match notify.get(&key).map_err(backend)? {
            Some(v) => Ok(v.to_vec()),
            None => Err(StoreError::Backend(format!("secret {name} vanished"))),
        }
    }

    async fn prune(&self, before: DateTime<Utc>) -> Result<crate::store::Pruned, StoreError> {
        // Whole-tree scans: kept off the async workers.
        let inner = self.inner.clone();
        let pruned = tokio::task::spawn_blocking(move || prune_trees(&inner.timers, &inner.notify, before))
            .await
            .map_err(|e| StoreError::Backend(format!("prune task: {e}")))??;
        self.durable().await?;
        Ok(pruned)
    }

    async fn users(&self) -> Result<Vec<UserId>, StoreError> {
        self.inner
            .users
            .iter()
            .keys()
            .map(|k| {
                let k = k.map_err(backend)?;
                UserId::parse(&String::from_utf8_lossy(&k)).map_err(|e| StoreError::Corrupt {
                    tree: "users",
                    reason: e.to_string(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// A fresh store with users ann and bob.
    async fn two_users() -> (tempfile::TempDir, SledStore, UserId, UserId) {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let (ann, bob) = (UserId::parse("ann").unwrap(), UserId::parse("bob").unwrap());
        store.ensure_user(&ann).await.unwrap();
        store.ensure_user(&bob).await.unwrap();
        (dir, store, ann, bob)
    }

    fn sub(endpoint: &str) -> PushSubscription {
        PushSubscription {
            endpoint: endpoint.into(),
            p256dh: "k".into(),
            auth: "a".into(),
        }
    }

    fn endpoints(subs: Vec<PushSubscription>) -> Vec<String> {
        subs.into_iter().map(|s| s.endpoint).collect()
    }

    #[tokio::test]
    async fn a_push_endpoint_belongs_to_the_user_who_subscribed_it_last() {
        let (_dir, store, ann, bob) = two_users().await;
        store
            .add_push_subscription(&ann, &sub("https://push.example/shared"))
            .await
            .unwrap();
        store
            .add_push_subscription(&ann, &sub("https://push.example/anns-phone"))
            .await
            .unwrap();
        // Bob signs in on Ann's browser and turns notifications on.
        store
            .add_push_subscription(&bob, &sub("https://push.example/shared"))
            .await
            .unwrap();
        assert_eq!(
            endpoints(store.push_subscriptions(&ann).await.unwrap()),
            ["https://push.example/anns-phone"]
        );
        assert_eq!(
            endpoints(store.push_subscriptions(&bob).await.unwrap()),
            ["https://push.example/shared"]
        );
        // Ann removing an endpoint she no longer owns leaves Bob's alone.
        store
            .remove_push_subscription(&ann, "https://push.example/shared")
            .await
            .unwrap();
        assert_eq!(store.push_subscriptions(&bob).await.unwrap().len(), 1);
        store
            .remove_push_subscription(&bob, "https://push.example/shared")
            .await
            .unwrap();
        assert!(store.push_subscriptions(&bob).await.unwrap().is_empty());
        store
            .add_push_subscription(&ann, &sub("https://push.example/shared"))
            .await
            .unwrap();
        assert_eq!(store.push_subscriptions(&ann).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_subscription_stored_before_owners_were_recorded_is_taken_over_too() {
        let (_dir, store, ann, bob) = two_users().await;
        let shared = sub("https://push.example/shared");
        // As an older version stored it: the subscription, no owner record.
        let ann_num = store.require_user(&ann).unwrap();
        store
            .inner
            .notify
            .insert(sub_key(ann_num, &shared.endpoint), encode(&shared).unwrap())
            .unwrap();
        assert_eq!(store.push_subscriptions(&ann).await.unwrap().len(), 1);
        store.add_push_subscription(&bob, &shared).await.unwrap();
        assert!(store.push_subscriptions(&ann).await.unwrap().is_empty());
        assert_eq!(store.push_subscriptions(&bob).await.unwrap().len(), 1);
    }
}
