//! The notification inbox and the outbox on sled, in the `notify` tree:
//! `N` notifications (user | seq), `Q` routing queue (user | seq →
//! not-before), `O` outbox (seq), `W` outbox work queue (attempt time |
//! seq), `K` idempotency keys (key → seq).

use super::triggers::{FIRED, FiredRecord};
use super::{SledStore, TxResult, abort, backend, dec, decode, enc, finish, keys, ms, number, seq_of};
use crate::conversation::Entry;
use crate::notification::{Notification, OutboxItem, OutboxStatus};
use crate::store::{Backlog, NotificationDraft, NotificationStore, Pruned, StoreError};
use crate::user::UserId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keys::{instant, tagged};
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::TransactionalTree;

pub(super) const NOTE: u8 = b'N';
pub(super) const ROUTE: u8 = b'Q';
pub(super) const OUTBOX: u8 = b'O';
const WORK: u8 = b'W';
const KEY: u8 = b'K';

pub(super) fn note_key(num: u64, seq: u64) -> Vec<u8> {
    tagged(NOTE, &[&num.to_be_bytes(), &seq.to_be_bytes()])
}

pub(super) fn route_key(num: u64, seq: u64) -> Vec<u8> {
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

/// A queued notification's routing state.
#[derive(Serialize, Deserialize)]
pub(super) struct Queued {
    pub(super) user: UserId,
    pub(super) not_before: DateTime<Utc>,
}

/// Stores outbox items whose idempotency keys are new.
pub(super) fn put_outbox(notify: &TransactionalTree, items: &[(OutboxItem, u64)]) -> TxResult<Vec<OutboxItem>> {
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

/// `Store::prune`'s scans and deletions (blocking).
pub(super) fn prune(timers: &sled::Tree, notify: &sled::Tree, before: DateTime<Utc>) -> Result<Pruned, StoreError> {
    let mut pruned = Pruned::default();
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

#[async_trait]
impl NotificationStore for SledStore {
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
        transcript: Option<Entry>,
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
            let seq = number("notify", &k[9..17])?;
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
                return abort(StoreError::Backend(format!("outbox item {} vanished", item.id)));
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
        let seq = number("notify", &seq)?;
        match notify.get(outbox_key(seq)).map_err(backend)? {
            Some(v) => decode("notify", &v).map(Some),
            None => Ok(None),
        }
    }

    async fn outbox_backlog(&self) -> Result<Backlog, StoreError> {
        self.blocking(|inner| {
            let notify = &inner.notify;
            let mut backlog = Backlog::default();
            for k in notify.scan_prefix([WORK]).keys() {
                let k = k.map_err(backend)?;
                let seq = number("notify", &k[k.len().saturating_sub(8)..])?;
                if let Some(v) = notify.get(outbox_key(seq)).map_err(backend)? {
                    let item: OutboxItem = decode("notify", &v)?;
                    backlog.open += 1;
                    backlog.oldest = Some(backlog.oldest.map_or(item.created_at, |o| o.min(item.created_at)));
                }
            }
            Ok(backlog)
        })
        .await
    }

    async fn add_notification(
        &self,
        user: &UserId,
        draft: NotificationDraft,
        at: DateTime<Utc>,
    ) -> Result<Notification, StoreError> {
        let num = self.require_user(user)?;
        let seq = self.inner.db.generate_id().map_err(backend)? + 1;
        let n = Notification {
            id: format!("n{seq}"),
            kind: draft.kind,
            text: draft.text,
            plan_id: draft.plan_id,
            step_id: draft.step_id,
            created_at: at,
            urgent: draft.urgent,
            seen: false,
            routed: None,
        };
        let queued = Queued {
            user: user.clone(),
            not_before: at,
        };
        finish(self.inner.notify.transaction(|notify: &TransactionalTree| {
            notify.insert(note_key(num, seq), enc(&n)?)?;
            notify.insert(route_key(num, seq), enc(&queued)?)?;
            Ok(())
        }))?;
        self.durable().await?;
        Ok(n)
    }
}
