//! Everything a store holds, as typed records grouped by family, so a
//! deployment can move from one engine to another (`steward migrate`) and
//! prove that nothing changed on the way: each family's record count and
//! a SHA-256 over its records in a canonical order.

use crate::conversation::Entry;
use crate::conversation::window::Summary;
use crate::execution::{Attempt, CalendarEvent, StepRef};
use crate::notification::{Notification, OutboxItem, PushSubscription};
use crate::plan::{HistoryEntry, Plan, PlanId};
use crate::preferences::Preferences;
use crate::proposal::Proposal;
use crate::triggers::{Outcome, Trigger};
use crate::user::UserId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A user and what is kept on the user's own row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub user: UserId,
    /// The last plan and proposal numbers handed out (the next is one more).
    pub plan_seq: u64,
    pub proposal_seq: u64,
    pub preferences: Option<Preferences>,
    pub summary: Option<Summary>,
    pub digest_cursor: Option<DateTime<Utc>>,
}

/// An armed trigger and the plan it is derived from, if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmedTrigger {
    pub trigger: Trigger,
    pub plan: Option<PlanId>,
}

/// The record of one firing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FiredTrigger {
    pub at: DateTime<Utc>,
    pub outcome: Outcome,
    pub trigger: Trigger,
}

/// A notification and, while it waits to be routed, from when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxRecord {
    pub user: UserId,
    pub notification: Notification,
    pub queued_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub user: UserId,
    /// Orders the user's transcript.
    pub seq: u64,
    pub entry: Entry,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplanCount {
    pub user: UserId,
    pub plan: PlanId,
    pub count: u32,
}

/// Every record of a store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub users: Vec<UserRecord>,
    pub plans: Vec<(UserId, Plan)>,
    pub history: Vec<(UserId, PlanId, HistoryEntry)>,
    pub proposals: Vec<(UserId, Proposal)>,
    pub messages: Vec<MessageRecord>,
    pub triggers: Vec<ArmedTrigger>,
    pub fired: Vec<FiredTrigger>,
    pub notifications: Vec<InboxRecord>,
    pub outbox: Vec<OutboxItem>,
    pub subscriptions: Vec<(UserId, PushSubscription)>,
    pub secrets: Vec<(String, Vec<u8>)>,
    pub work: Vec<StepRef>,
    pub attempts: Vec<Attempt>,
    pub replans: Vec<ReplanCount>,
    pub events: Vec<(UserId, CalendarEvent)>,
}

/// One family's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyDigest {
    pub family: &'static str,
    pub count: usize,
    pub sha256: String,
}

/// Count and SHA-256 of one family: each record as JSON, the lines sorted,
/// so two stores holding the same records agree whatever order they list
/// them in.
fn digest<T: Serialize>(family: &'static str, records: &[T]) -> FamilyDigest {
    let mut lines: Vec<String> = records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap_or_else(|e| format!("unserializable: {e}")))
        .collect();
    lines.sort_unstable();
    let mut hash = Sha256::new();
    for line in &lines {
        hash.update(line.as_bytes());
        hash.update(b"\n");
    }
    FamilyDigest {
        family,
        count: lines.len(),
        sha256: hash.finalize().iter().map(|b| format!("{b:02x}")).collect(),
    }
}

impl Snapshot {
    /// Every family's count and hash, in a fixed order.
    pub fn digests(&self) -> Vec<FamilyDigest> {
        vec![
            digest("users", &self.users),
            digest("plans", &self.plans),
            digest("history", &self.history),
            digest("proposals", &self.proposals),
            digest("messages", &self.messages),
            digest("triggers", &self.triggers),
            digest("fired", &self.fired),
            digest("notifications", &self.notifications),
            digest("outbox", &self.outbox),
            digest("subscriptions", &self.subscriptions),
            digest("secrets", &self.secrets),
            digest("work", &self.work),
            digest("attempts", &self.attempts),
            digest("replans", &self.replans),
            digest("events", &self.events),
        ]
    }

    /// How many records in all.
    pub fn len(&self) -> usize {
        self.digests().iter().map(|d| d.count).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Copies the sled store `from` into the empty PostgreSQL database `to`
/// and verifies the copy: every family's record count and hash, read back
/// from PostgreSQL, must equal the source's. Returns the families'
/// fingerprints.
pub async fn migrate(
    from: &super::SledStore,
    to: &super::PostgresStore,
) -> Result<Vec<FamilyDigest>, super::StoreError> {
    let source = from.snapshot()?;
    to.load(&source).await?;
    let copied = to.snapshot().await?.digests();
    let expected = source.digests();
    for (want, got) in expected.iter().zip(&copied) {
        if want != got {
            return Err(super::StoreError::Backend(format!(
                "verification failed for {}: the source has {} records ({}), the copy {} ({})",
                want.family, want.count, want.sha256, got.count, got.sha256
            )));
        }
    }
    Ok(expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_ignores_order_and_sees_any_change() {
        let user = |name: &str| UserRecord {
            user: UserId::parse(name).unwrap(),
            plan_seq: 1,
            proposal_seq: 0,
            preferences: None,
            summary: None,
            digest_cursor: None,
        };
        let a = Snapshot {
            users: vec![user("ana"), user("bob")],
            ..Snapshot::default()
        };
        let mut b = Snapshot {
            users: vec![user("bob"), user("ana")],
            ..Snapshot::default()
        };
        assert_eq!(a.digests(), b.digests());
        b.users[0].plan_seq = 2;
        let (da, db) = (a.digests(), b.digests());
        assert_eq!(da[0].count, db[0].count);
        assert_ne!(da[0].sha256, db[0].sha256);
        assert_eq!(da[1..], db[1..]);
    }
}
