//! Durable storage behind the `Store` trait. Every write method returns only
//! after its data is flushed to disk, so callers may acknowledge as soon as it
//! returns. The trait speaks in domain terms (users, plans, history,
//! conversation) so a networked database can implement it too.

pub mod keys;
pub mod sled;

use crate::conversation::Entry;
use crate::plan::{HistoryEntry, Plan, PlanId};
use crate::proposals::Proposal;
use crate::user::UserId;
use async_trait::async_trait;

pub use self::sled::SledStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The plan changed since the caller read it; the caller shows or retries
    /// against `current`.
    #[error("plan {} is at version {}", .current.id, .current.version)]
    Conflict { current: Box<Plan> },
    #[error("plan {0} not found")]
    PlanNotFound(PlanId),
    /// The proposal was answered meanwhile (e.g. a retried yes).
    #[error("proposal {} is no longer open", .current.id)]
    ProposalClosed { current: Box<Proposal> },
    /// Another process holds the data directory.
    #[error("the data directory {path} is in use by another steward process ({detail})")]
    Locked { path: String, detail: String },
    /// A record that cannot be decoded: served data would be wrong, so the
    /// read fails instead.
    #[error("corrupt record in {tree} ({reason}); restore the data directory from a backup")]
    Corrupt { tree: &'static str, reason: String },
    #[error("storage failure: {0}")]
    Backend(String),
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Makes sure the user exists; idempotent.
    async fn ensure_user(&self, user: &UserId) -> Result<(), StoreError>;

    /// All of the user's plans, active or not, oldest first.
    async fn list_plans(&self, user: &UserId) -> Result<Vec<Plan>, StoreError>;

    async fn get_plan(&self, user: &UserId, id: PlanId) -> Result<Option<Plan>, StoreError>;

    /// Stores a new plan with the next free id for this user and its first
    /// history entry, atomically. Returns the plan as stored.
    async fn create_plan(&self, user: &UserId, draft: Plan, entry: HistoryEntry) -> Result<Plan, StoreError>;

    /// Replaces a plan if it is still at `expected_version`, appending `entry`
    /// to its history in the same transaction.
    async fn update_plan(
        &self,
        user: &UserId,
        plan: &Plan,
        expected_version: u64,
        entry: HistoryEntry,
    ) -> Result<(), StoreError>;

    /// History of one plan, newest first, at most `limit` entries.
    async fn history(&self, user: &UserId, id: PlanId, limit: usize) -> Result<Vec<HistoryEntry>, StoreError>;

    async fn append_message(&self, user: &UserId, entry: &Entry) -> Result<(), StoreError>;

    /// The last `limit` conversation entries, oldest first.
    async fn recent_messages(&self, user: &UserId, limit: usize) -> Result<Vec<Entry>, StoreError>;

    /// Stores a new proposal with the next free id for this user ("r1", …).
    async fn create_proposal(&self, user: &UserId, draft: Proposal) -> Result<Proposal, StoreError>;

    /// Replaces a stored proposal (its status changed).
    async fn save_proposal(&self, user: &UserId, proposal: &Proposal) -> Result<(), StoreError>;

    async fn get_proposal(&self, user: &UserId, id: &str) -> Result<Option<Proposal>, StoreError>;

    /// The user's open proposals, oldest first.
    async fn open_proposals(&self, user: &UserId) -> Result<Vec<Proposal>, StoreError>;

    /// Applies an accepted proposal and records it as accepted in one
    /// transaction, so a crash or a repeated yes can never apply it twice.
    /// The stored proposal must still be open. Returns the stored plan.
    async fn accept_proposal(&self, user: &UserId, accepted: &Proposal, change: Accepted) -> Result<Plan, StoreError>;
}

/// The plan change an accepted proposal makes.
#[derive(Debug, Clone)]
pub enum Accepted {
    Create {
        draft: Plan,
        entry: HistoryEntry,
    },
    Update {
        plan: Plan,
        expected_version: u64,
        entry: HistoryEntry,
    },
}
