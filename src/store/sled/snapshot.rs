//! Reads every record of the sled store as a typed [`Snapshot`], decoding
//! each tree's key layout (see the other files of this module), so it can
//! be moved to another engine. A record that does not decode fails the
//! read: a migration never drops what it cannot read without saying so.

use super::accounts::{PREFS, SECRET, SUB};
use super::engine::{ATTEMPT, EVENT, REPLANS, WORK};
use super::notifications::{NOTE, OUTBOX, ROUTE};
use super::triggers::{BY_PLAN, DIGEST_CURSOR, FIRED, FiredRecord, SCHEDULE};
use super::{SledStore, backend, decode, keys, number};
use crate::execution::{Attempt, CalendarEvent, StepRef};
use crate::notification::{Notification, OutboxItem, PushSubscription};
use crate::plan::{HistoryEntry, Plan, PlanId};
use crate::proposal::Proposal;
use crate::store::StoreError;
use crate::store::snapshot::{
    ArmedTrigger, FiredTrigger, InboxRecord, MessageRecord, ReplanCount, Snapshot, UserRecord,
};
use crate::triggers::Trigger;
use crate::user::UserId;
use std::collections::HashMap;

fn corrupt(tree: &'static str, reason: &str) -> StoreError {
    StoreError::Corrupt {
        tree,
        reason: reason.to_owned(),
    }
}

/// The big-endian number at `bytes[at..at + 8]`.
fn u64_at(tree: &'static str, bytes: &[u8], at: usize) -> Result<u64, StoreError> {
    bytes
        .get(at..at + 8)
        .and_then(keys::decode_u64)
        .ok_or_else(|| corrupt(tree, "short key"))
}

impl SledStore {
    /// Every record, typed and grouped by family.
    // Long: one loop per tree, each reading its key layout in place.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let i = &self.inner;
        let mut s = Snapshot::default();
        let mut names: HashMap<u64, UserId> = HashMap::new();
        for item in i.users.iter() {
            let (k, v) = item.map_err(backend)?;
            let user = UserId::parse(&String::from_utf8_lossy(&k)).map_err(|e| corrupt("users", &e.to_string()))?;
            names.insert(number("users", &v)?, user);
        }
        let name = |tree: &'static str, num: u64| names.get(&num).cloned().ok_or_else(|| corrupt(tree, "unknown user"));
        let mut users: Vec<(u64, UserRecord)> = names
            .iter()
            .map(|(num, user)| {
                let counter = |key: &[u8]| -> Result<u64, StoreError> {
                    match i.meta.get(key).map_err(backend)? {
                        Some(v) => number("meta", &v),
                        None => Ok(0),
                    }
                };
                let summary = match i.meta.get(keys::summary(*num)).map_err(backend)? {
                    Some(v) => Some(decode("meta", &v)?),
                    None => None,
                };
                let prefs = match i
                    .notify
                    .get(keys::tagged(PREFS, &[&num.to_be_bytes()]))
                    .map_err(backend)?
                {
                    Some(v) => Some(decode("notify", &v)?),
                    None => None,
                };
                let cursor = match i
                    .timers
                    .get(keys::tagged(DIGEST_CURSOR, &[&num.to_be_bytes()]))
                    .map_err(backend)?
                {
                    Some(v) => Some(super::from_ms(
                        "timers",
                        keys::decode_instant(&v).ok_or_else(|| corrupt("timers", "bad digest cursor"))?,
                    )?),
                    None => None,
                };
                Ok((
                    *num,
                    UserRecord {
                        user: user.clone(),
                        plan_seq: counter(&keys::plan_counter(*num))?,
                        proposal_seq: counter(&keys::proposal_counter(*num))?,
                        preferences: prefs,
                        summary,
                        digest_cursor: cursor,
                    },
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        users.sort_by_key(|(num, _)| *num);
        s.users = users.into_iter().map(|(_, u)| u).collect();

        for item in i.plans.iter() {
            let (k, v) = item.map_err(backend)?;
            s.plans
                .push((name("plans", u64_at("plans", &k, 0)?)?, decode::<Plan>("plans", &v)?));
        }
        for item in i.history.iter() {
            let (k, v) = item.map_err(backend)?;
            let user = name("history", u64_at("history", &k, 0)?)?;
            let plan = PlanId(u64_at("history", &k, 8)?);
            s.history.push((user, plan, decode::<HistoryEntry>("history", &v)?));
        }
        for item in i.proposals.iter() {
            let (k, v) = item.map_err(backend)?;
            s.proposals.push((
                name("proposals", u64_at("proposals", &k, 0)?)?,
                decode::<Proposal>("proposals", &v)?,
            ));
        }
        for item in i.messages.iter() {
            let (k, v) = item.map_err(backend)?;
            s.messages.push(MessageRecord {
                user: name("messages", u64_at("messages", &k, 0)?)?,
                seq: u64_at("messages", &k, 8)?,
                entry: decode("messages", &v)?,
            });
        }
        self.snapshot_timers(&mut s, &name)?;
        self.snapshot_notify(&mut s, &name)?;
        self.snapshot_engine(&mut s, &name)?;
        Ok(s)
    }

    fn snapshot_timers(
        &self,
        s: &mut Snapshot,
        name: &dyn Fn(&'static str, u64) -> Result<UserId, StoreError>,
    ) -> Result<(), StoreError> {
        let timers = &self.inner.timers;
        // Which plan each derived trigger came from (`P`: user | plan → ids).
        let mut origin: HashMap<(UserId, String), PlanId> = HashMap::new();
        for item in timers.scan_prefix([BY_PLAN]) {
            let (k, v) = item.map_err(backend)?;
            let user = name("timers", u64_at("timers", &k, 1)?)?;
            let plan = PlanId(u64_at("timers", &k, 9)?);
            for id in decode::<Vec<String>>("timers", &v)? {
                origin.insert((user.clone(), id), plan);
            }
        }
        for item in timers.scan_prefix([SCHEDULE]) {
            let (_, v) = item.map_err(backend)?;
            let trigger: Trigger = decode("timers", &v)?;
            let plan = origin.get(&(trigger.user.clone(), trigger.id.clone())).copied();
            s.triggers.push(ArmedTrigger { trigger, plan });
        }
        for item in timers.scan_prefix([FIRED]) {
            let (_, v) = item.map_err(backend)?;
            let r: FiredRecord = decode("timers", &v)?;
            s.fired.push(FiredTrigger {
                at: r.at,
                outcome: r.outcome,
                trigger: r.trigger,
            });
        }
        for item in timers.scan_prefix([WORK]) {
            let (_, v) = item.map_err(backend)?;
            s.work.push(decode::<StepRef>("timers", &v)?);
        }
        Ok(())
    }

    fn snapshot_notify(
        &self,
        s: &mut Snapshot,
        name: &dyn Fn(&'static str, u64) -> Result<UserId, StoreError>,
    ) -> Result<(), StoreError> {
        let notify = &self.inner.notify;
        for item in notify.scan_prefix([NOTE]) {
            let (k, v) = item.map_err(backend)?;
            let mut queued = k.to_vec();
            queued[0] = ROUTE;
            let queued_until = match notify.get(&queued).map_err(backend)? {
                Some(q) => Some(decode::<super::notifications::Queued>("notify", &q)?.not_before),
                None => None,
            };
            s.notifications.push(InboxRecord {
                user: name("notify", u64_at("notify", &k, 1)?)?,
                notification: decode::<Notification>("notify", &v)?,
                queued_until,
            });
        }
        for item in notify.scan_prefix([OUTBOX]) {
            let (_, v) = item.map_err(backend)?;
            s.outbox.push(decode::<OutboxItem>("notify", &v)?);
        }
        for item in notify.scan_prefix([SUB]) {
            let (k, v) = item.map_err(backend)?;
            s.subscriptions.push((
                name("notify", u64_at("notify", &k, 1)?)?,
                decode::<PushSubscription>("notify", &v)?,
            ));
        }
        for item in notify.scan_prefix([SECRET]) {
            let (k, v) = item.map_err(backend)?;
            s.secrets
                .push((String::from_utf8_lossy(&k[1..]).into_owned(), v.to_vec()));
        }
        Ok(())
    }

    fn snapshot_engine(
        &self,
        s: &mut Snapshot,
        name: &dyn Fn(&'static str, u64) -> Result<UserId, StoreError>,
    ) -> Result<(), StoreError> {
        let engine = &self.inner.engine;
        for item in engine.scan_prefix([ATTEMPT]) {
            let (_, v) = item.map_err(backend)?;
            s.attempts.push(decode::<Attempt>("engine", &v)?);
        }
        for item in engine.scan_prefix([REPLANS]) {
            let (k, v) = item.map_err(backend)?;
            s.replans.push(ReplanCount {
                user: name("engine", u64_at("engine", &k, 1)?)?,
                plan: PlanId(u64_at("engine", &k, 9)?),
                count: decode("engine", &v)?,
            });
        }
        for item in engine.scan_prefix([EVENT]) {
            let (k, v) = item.map_err(backend)?;
            s.events.push((
                name("engine", u64_at("engine", &k, 1)?)?,
                decode::<CalendarEvent>("engine", &v)?,
            ));
        }
        Ok(())
    }
}
