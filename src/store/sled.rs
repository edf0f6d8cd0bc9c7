//! The embedded store on sled 0.34. sled makes writes durable only on
//! `flush`, so every write here ends in [`SledStore::durable`], which batches
//! concurrent callers into one flush (group commit). Every plan write also
//! syncs the plan's triggers in the same transaction ([`notify::sync_plan`]).

mod notify;

use super::{Accepted, Store, StoreError, keys};
use crate::conversation::Entry;
use crate::plan::{HistoryEntry, Plan, PlanId};
use crate::proposal::{Proposal, ProposalStatus};
use crate::triggers::TriggerPolicy;
use crate::user::UserId;
use async_trait::async_trait;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Stored values carry a format version so data can be migrated or exported
/// to another engine.
#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    v: u32,
    data: T,
}

const FORMAT: u32 = 1;

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(&Envelope { v: FORMAT, data: value }).map_err(|e| StoreError::Backend(e.to_string()))
}

fn decode<T: DeserializeOwned>(tree: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    let env: Envelope<T> = serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        tree,
        reason: e.to_string(),
    })?;
    if env.v != FORMAT {
        return Err(StoreError::Corrupt {
            tree,
            reason: format!("unknown format version {}", env.v),
        });
    }
    Ok(env.data)
}

fn backend(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

#[derive(Clone)]
pub struct SledStore {
    inner: Arc<Inner>,
    /// How plan-derived triggers are placed.
    policy: TriggerPolicy,
}

struct Inner {
    db: sled::Db,
    users: sled::Tree,
    plans: sled::Tree,
    history: sled::Tree,
    messages: sled::Tree,
    meta: sled::Tree,
    proposals: sled::Tree,
    timers: sled::Tree,
    notify: sled::Tree,
    timer_signal: Arc<tokio::sync::Notify>,
    /// Group commit: writes take a ticket after they complete; a flush covers
    /// every ticket taken before it started.
    written: AtomicU64,
    flushed: AtomicU64,
    flushes: AtomicU64,
    flush_lock: tokio::sync::Mutex<()>,
}

impl SledStore {
    /// Opens (or creates) the store in `dir`. Fails at once, with a clear
    /// error, if another process has it open.
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend(format!("creating {}: {e}", dir.display())))?;
        let db = sled::Config::new().path(dir).open().map_err(|e| match &e {
            sled::Error::Io(io)
                if io.to_string().contains("could not acquire lock") || io.kind() == std::io::ErrorKind::WouldBlock =>
            {
                StoreError::Locked {
                    path: dir.display().to_string(),
                    detail: io.to_string(),
                }
            }
            sled::Error::Corruption { .. } => StoreError::Corrupt {
                tree: "db",
                reason: e.to_string(),
            },
            _ => backend(e),
        })?;
        let tree = |name: &str| db.open_tree(name).map_err(backend);
        Ok(SledStore {
            inner: Arc::new(Inner {
                users: tree("users")?,
                plans: tree("plans")?,
                history: tree("history")?,
                messages: tree("messages")?,
                meta: tree("meta")?,
                proposals: tree("proposals")?,
                timers: tree("timers")?,
                notify: tree("notify")?,
                timer_signal: Arc::new(tokio::sync::Notify::new()),
                db,
                written: AtomicU64::new(0),
                flushed: AtomicU64::new(0),
                flushes: AtomicU64::new(0),
                flush_lock: tokio::sync::Mutex::new(()),
            }),
            policy: TriggerPolicy::default(),
        })
    }

    /// Places plan-derived triggers by `policy` (lead times, idle nudges).
    pub fn with_trigger_policy(mut self, policy: TriggerPolicy) -> SledStore {
        self.policy = policy;
        self
    }

    const TREES: [&'static str; 8] = [
        "users",
        "plans",
        "history",
        "messages",
        "meta",
        "proposals",
        "timers",
        "notify",
    ];

    /// Trees whose values are not all JSON envelopes: exported as hex.
    fn binary_tree(name: &str) -> bool {
        matches!(name, "users" | "meta" | "timers" | "notify")
    }

    fn tree(&self, name: &str) -> Option<&sled::Tree> {
        let i = &self.inner;
        Some(match name {
            "users" => &i.users,
            "plans" => &i.plans,
            "history" => &i.history,
            "messages" => &i.messages,
            "meta" => &i.meta,
            "proposals" => &i.proposals,
            "timers" => &i.timers,
            "notify" => &i.notify,
            _ => return None,
        })
    }

    /// Writes every record as JSON lines (`{"tree","key","value"}`, key in
    /// hex, value as stored), so a backup does not depend on sled's on-disk
    /// format. Each line is checked to decode before it is written.
    pub fn export(&self, out: &mut dyn std::io::Write) -> Result<u64, StoreError> {
        let io = |e: std::io::Error| StoreError::Backend(format!("writing the export: {e}"));
        writeln!(out, "{}", serde_json::json!({"steward_export": FORMAT})).map_err(io)?;
        let mut count = 0;
        for name in Self::TREES {
            let Some(tree) = self.tree(name) else { continue };
            for item in tree.iter() {
                let (key, value) = item.map_err(backend)?;
                let value_text = std::str::from_utf8(&value)
                    .ok()
                    .filter(|_| !Self::binary_tree(name))
                    .map(serde_json::from_str::<serde_json::Value>)
                    .transpose()
                    .map_err(|e| StoreError::Corrupt {
                        tree: "export",
                        reason: format!("{name}: {e}"),
                    })?;
                let line = serde_json::json!({
                    "tree": name,
                    "key": hex(&key),
                    "value": value_text.unwrap_or_else(|| serde_json::Value::from(hex(&value))),
                });
                writeln!(out, "{line}").map_err(io)?;
                count += 1;
            }
        }
        out.flush().map_err(io)?;
        Ok(count)
    }

    /// Loads an export into this (empty) store and flushes it.
    pub async fn import(&self, input: impl std::io::BufRead) -> Result<u64, StoreError> {
        if Self::TREES.iter().filter_map(|t| self.tree(t)).any(|t| !t.is_empty()) {
            return Err(StoreError::Backend("import needs an empty data directory".into()));
        }
        let bad = |line: usize, why: String| StoreError::Corrupt {
            tree: "import",
            reason: format!("line {line}: {why}"),
        };
        let mut count = 0;
        for (n, line) in input.lines().enumerate() {
            let line = line.map_err(|e| StoreError::Backend(e.to_string()))?;
            let record: serde_json::Value = serde_json::from_str(&line).map_err(|e| bad(n + 1, e.to_string()))?;
            if n == 0 {
                if record["steward_export"] != serde_json::json!(FORMAT) {
                    return Err(bad(1, "not a steward export of a known format".into()));
                }
                continue;
            }
            let name = record["tree"].as_str().unwrap_or_default();
            let tree = self
                .tree(name)
                .ok_or_else(|| bad(n + 1, format!("unknown tree `{name}`")))?;
            let key = record["key"]
                .as_str()
                .and_then(unhex)
                .ok_or_else(|| bad(n + 1, "bad key".into()))?;
            let value = match &record["value"] {
                serde_json::Value::String(s) if Self::binary_tree(name) => {
                    unhex(s).ok_or_else(|| bad(n + 1, "bad value".into()))?
                }
                other => serde_json::to_vec(other).map_err(|e| bad(n + 1, e.to_string()))?,
            };
            tree.insert(key, value).map_err(backend)?;
            count += 1;
        }
        self.durable().await?;
        Ok(count)
    }

    /// How many flushes have run: with concurrent writers this is well below
    /// the number of writes (the benchmark reports the ratio).
    pub fn flush_count(&self) -> u64 {
        self.inner.flushes.load(Ordering::Relaxed)
    }

    /// Waits until everything written before this call is on disk.
    async fn durable(&self) -> Result<(), StoreError> {
        let inner = &self.inner;
        let ticket = inner.written.fetch_add(1, Ordering::SeqCst) + 1;
        let _turn = inner.flush_lock.lock().await;
        if inner.flushed.load(Ordering::SeqCst) >= ticket {
            return Ok(()); // a flush that started after our write covered it
        }
        let covers = inner.written.load(Ordering::SeqCst);
        let db = inner.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| StoreError::Backend(format!("flush task: {e}")))?
            .map_err(backend)?;
        inner.flushes.fetch_add(1, Ordering::Relaxed);
        inner.flushed.store(covers, Ordering::SeqCst);
        Ok(())
    }

    /// The user's fixed-width number, if the user exists.
    fn user_num(&self, user: &UserId) -> Result<Option<u64>, StoreError> {
        match self.inner.users.get(user.as_str()).map_err(backend)? {
            Some(v) => keys::decode_u64(&v).map(Some).ok_or_else(|| StoreError::Corrupt {
                tree: "users",
                reason: "bad user number".into(),
            }),
            None => Ok(None),
        }
    }

    fn require_user(&self, user: &UserId) -> Result<u64, StoreError> {
        match self.user_num(user)? {
            Some(n) => Ok(n),
            None => Err(StoreError::Backend(format!("user {user} was never registered"))),
        }
    }
}

#[async_trait]
impl Store for SledStore {
    async fn ensure_user(&self, user: &UserId) -> Result<(), StoreError> {
        if self.user_num(user)?.is_some() {
            return Ok(());
        }
        // generate_id is unique for the life of the database, even across
        // crashes (it may skip numbers, never repeat them).
        let num = self.inner.db.generate_id().map_err(backend)? + 1;
        let swapped = self
            .inner
            .users
            .compare_and_swap(user.as_str(), None as Option<&[u8]>, Some(&num.to_be_bytes()[..]))
            .map_err(backend)?;
        // Losing the race to another connection of the same user is fine:
        // their number stands.
        drop(swapped);
        self.durable().await
    }

    async fn list_plans(&self, user: &UserId) -> Result<Vec<Plan>, StoreError> {
        let Some(num) = self.user_num(user)? else {
            return Ok(Vec::new());
        };
        self.inner
            .plans
            .scan_prefix(keys::user_prefix(num))
            .values()
            .map(|v| decode("plans", &v.map_err(backend)?))
            .collect()
    }

    async fn get_plan(&self, user: &UserId, id: PlanId) -> Result<Option<Plan>, StoreError> {
        let Some(num) = self.user_num(user)? else {
            return Ok(None);
        };
        match self.inner.plans.get(keys::plan(num, id.0)).map_err(backend)? {
            Some(v) => decode("plans", &v).map(Some),
            None => Ok(None),
        }
    }

    async fn create_plan(&self, user: &UserId, mut draft: Plan, entry: HistoryEntry) -> Result<Plan, StoreError> {
        let num = self.require_user(user)?;
        let i = &self.inner;
        let policy = self.policy;
        let stored = (&i.plans, &i.history, &i.meta, &i.timers)
            .transaction(|(plans, history, meta, timers)| {
                let counter = keys::plan_counter(num);
                let next = meta.get(counter)?.and_then(|v| keys::decode_u64(&v)).unwrap_or(0) + 1;
                meta.insert(&counter[..], &next.to_be_bytes()[..])?;
                let mut plan = draft.clone();
                plan.id = PlanId(next);
                let value = encode(&plan).map_err(ConflictableTransactionError::Abort)?;
                plans.insert(&keys::plan(num, next)[..], value)?;
                let entry = encode(&entry).map_err(ConflictableTransactionError::Abort)?;
                history.insert(&keys::history(num, next, plan.version)[..], entry)?;
                notify::sync_plan(timers, num, user, &plan, &policy)?;
                Ok(plan)
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => backend(e),
            })?;
        draft.id = stored.id;
        self.durable().await?;
        self.inner.timer_signal.notify_one();
        Ok(stored)
    }

    async fn update_plan(
        &self,
        user: &UserId,
        plan: &Plan,
        expected_version: u64,
        entry: HistoryEntry,
    ) -> Result<(), StoreError> {
        let num = self.require_user(user)?;
        let i = &self.inner;
        let key = keys::plan(num, plan.id.0);
        let value = encode(plan)?;
        let entry = encode(&entry)?;
        let policy = self.policy;
        (&i.plans, &i.history, &i.timers)
            .transaction(|(plans, history, timers)| {
                let Some(current) = plans.get(key)? else {
                    return Err(ConflictableTransactionError::Abort(StoreError::PlanNotFound(plan.id)));
                };
                let current: Plan = decode("plans", &current).map_err(ConflictableTransactionError::Abort)?;
                if current.version != expected_version {
                    return Err(ConflictableTransactionError::Abort(StoreError::Conflict {
                        current: Box::new(current),
                    }));
                }
                plans.insert(&key[..], value.clone())?;
                history.insert(&keys::history(num, plan.id.0, plan.version)[..], entry.clone())?;
                notify::sync_plan(timers, num, user, plan, &policy)?;
                Ok(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => backend(e),
            })?;
        self.durable().await?;
        self.inner.timer_signal.notify_one();
        Ok(())
    }

    async fn history(&self, user: &UserId, id: PlanId, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        let Some(num) = self.user_num(user)? else {
            return Ok(Vec::new());
        };
        self.inner
            .history
            .scan_prefix(keys::plan(num, id.0))
            .values()
            .rev()
            .take(limit)
            .map(|v| decode("history", &v.map_err(backend)?))
            .collect()
    }

    async fn append_message(&self, user: &UserId, entry: &Entry) -> Result<(), StoreError> {
        let num = self.require_user(user)?;
        let seq = self.inner.db.generate_id().map_err(backend)?;
        self.inner
            .messages
            .insert(keys::message(num, seq), encode(entry)?)
            .map_err(backend)?;
        self.durable().await
    }

    async fn recent_messages(&self, user: &UserId, limit: usize) -> Result<Vec<Entry>, StoreError> {
        let Some(num) = self.user_num(user)? else {
            return Ok(Vec::new());
        };
        let mut out: Vec<Entry> = self
            .inner
            .messages
            .scan_prefix(keys::user_prefix(num))
            .values()
            .rev()
            .take(limit)
            .map(|v| decode("messages", &v.map_err(backend)?))
            .collect::<Result<_, _>>()?;
        out.reverse();
        Ok(out)
    }

    async fn create_proposal(&self, user: &UserId, mut draft: Proposal) -> Result<Proposal, StoreError> {
        let num = self.require_user(user)?;
        let i = &self.inner;
        let stored = (&i.proposals, &i.meta)
            .transaction(|(proposals, meta)| {
                let counter = keys::proposal_counter(num);
                let next = meta.get(counter)?.and_then(|v| keys::decode_u64(&v)).unwrap_or(0) + 1;
                meta.insert(&counter[..], &next.to_be_bytes()[..])?;
                let mut proposal = draft.clone();
                proposal.id = format!("r{next}");
                let value = encode(&proposal).map_err(ConflictableTransactionError::Abort)?;
                proposals.insert(&keys::plan(num, next)[..], value)?;
                Ok(proposal)
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => backend(e),
            })?;
        draft.id = stored.id.clone();
        self.durable().await?;
        Ok(stored)
    }

    async fn close_proposal(&self, user: &UserId, proposal: &Proposal) -> Result<(), StoreError> {
        let num = self.require_user(user)?;
        let seq = proposal_seq(&proposal.id)
            .ok_or_else(|| StoreError::Backend(format!("bad proposal id {}", proposal.id)))?;
        let value = encode(proposal)?;
        self.inner
            .proposals
            .transaction(|proposals| {
                let key = keys::plan(num, seq);
                let Some(current) = proposals.get(key)? else {
                    return abort(StoreError::Backend(format!("proposal {} vanished", proposal.id)));
                };
                let current: Proposal = decode("proposals", &current).map_err(ConflictableTransactionError::Abort)?;
                if current.status != ProposalStatus::Open {
                    return abort(StoreError::ProposalClosed {
                        current: Box::new(current),
                    });
                }
                proposals.insert(&key[..], value.clone())?;
                Ok(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => backend(e),
            })?;
        self.durable().await
    }

    async fn get_proposal(&self, user: &UserId, id: &str) -> Result<Option<Proposal>, StoreError> {
        let (Some(num), Some(seq)) = (self.user_num(user)?, proposal_seq(id)) else {
            return Ok(None);
        };
        match self.inner.proposals.get(keys::plan(num, seq)).map_err(backend)? {
            Some(v) => decode("proposals", &v).map(Some),
            None => Ok(None),
        }
    }

    async fn accept_proposal(&self, user: &UserId, accepted: &Proposal, change: Accepted) -> Result<Plan, StoreError> {
        let num = self.require_user(user)?;
        let seq = proposal_seq(&accepted.id)
            .ok_or_else(|| StoreError::Backend(format!("bad proposal id {}", accepted.id)))?;
        let i = &self.inner;
        let policy = self.policy;
        let stored = (&i.plans, &i.history, &i.meta, &i.proposals, &i.timers)
            .transaction(|(plans, history, meta, proposals, timers)| {
                let key = keys::plan(num, seq);
                let Some(current) = proposals.get(key)? else {
                    return abort(StoreError::Backend(format!("proposal {} vanished", accepted.id)));
                };
                let current: Proposal = decode("proposals", &current).map_err(ConflictableTransactionError::Abort)?;
                if current.status != ProposalStatus::Open {
                    return abort(StoreError::ProposalClosed {
                        current: Box::new(current),
                    });
                }
                let plan = match &change {
                    Accepted::Create { draft, entry } => {
                        let counter = keys::plan_counter(num);
                        let next = meta.get(counter)?.and_then(|v| keys::decode_u64(&v)).unwrap_or(0) + 1;
                        meta.insert(&counter[..], &next.to_be_bytes()[..])?;
                        let mut plan = draft.clone();
                        plan.id = PlanId(next);
                        plans.insert(
                            &keys::plan(num, next)[..],
                            encode(&plan).map_err(ConflictableTransactionError::Abort)?,
                        )?;
                        let entry = encode(entry).map_err(ConflictableTransactionError::Abort)?;
                        history.insert(&keys::history(num, next, plan.version)[..], entry)?;
                        plan
                    }
                    Accepted::Update {
                        plan,
                        expected_version,
                        entry,
                    } => {
                        let plan_key = keys::plan(num, plan.id.0);
                        let Some(stored) = plans.get(plan_key)? else {
                            return abort(StoreError::PlanNotFound(plan.id));
                        };
                        let stored: Plan = decode("plans", &stored).map_err(ConflictableTransactionError::Abort)?;
                        if stored.version != *expected_version {
                            return abort(StoreError::Conflict {
                                current: Box::new(stored),
                            });
                        }
                        plans.insert(
                            &plan_key[..],
                            encode(plan).map_err(ConflictableTransactionError::Abort)?,
                        )?;
                        let entry = encode(entry).map_err(ConflictableTransactionError::Abort)?;
                        history.insert(&keys::history(num, plan.id.0, plan.version)[..], entry)?;
                        plan.clone()
                    }
                };
                notify::sync_plan(timers, num, user, &plan, &policy)?;
                let mut record = accepted.clone();
                record.plan_id = Some(plan.id);
                proposals.insert(&key[..], encode(&record).map_err(ConflictableTransactionError::Abort)?)?;
                Ok(plan)
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => backend(e),
            })?;
        self.durable().await?;
        self.inner.timer_signal.notify_one();
        Ok(stored)
    }

    async fn open_proposals(&self, user: &UserId) -> Result<Vec<Proposal>, StoreError> {
        let Some(num) = self.user_num(user)? else {
            return Ok(Vec::new());
        };
        let mut open = Vec::new();
        // Newest first, and only the recent ones: proposals are superseded
        // as new ones arrive, so open ones are always at the end.
        for v in self
            .inner
            .proposals
            .scan_prefix(keys::user_prefix(num))
            .values()
            .rev()
            .take(32)
        {
            let p: Proposal = decode("proposals", &v.map_err(backend)?)?;
            if p.status == ProposalStatus::Open {
                open.push(p);
            }
        }
        open.reverse();
        Ok(open)
    }
}

fn abort<T>(e: StoreError) -> Result<T, ConflictableTransactionError<StoreError>> {
    Err(ConflictableTransactionError::Abort(e))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// "r12" → 12.
fn proposal_seq(id: &str) -> Option<u64> {
    id.strip_prefix('r')
        .filter(|d| !d.is_empty() && d.len() <= 19 && d.bytes().all(|b| b.is_ascii_digit()))?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::Message;
    use crate::plan::{Actor, Change, Step};
    use chrono::Utc;

    fn entry(version: u64) -> HistoryEntry {
        HistoryEntry {
            at: Utc::now(),
            actor: Actor::Model,
            why: "test".into(),
            version,
            changes: vec![],
            undoes: None,
        }
    }

    async fn plan_for(store: &SledStore, user: &UserId, title: &str) -> Plan {
        let mut draft = Plan::draft(title, "", Utc::now());
        draft.version = 1;
        draft.steps.push(Step::new("a", "first"));
        store.create_plan(user, draft, entry(1)).await.unwrap()
    }

    #[tokio::test]
    async fn users_see_only_their_own_plans_even_with_shared_id_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let ann = UserId::parse("ann").unwrap();
        let anna = UserId::parse("anna").unwrap();
        store.ensure_user(&ann).await.unwrap();
        store.ensure_user(&anna).await.unwrap();
        for n in 0..11 {
            plan_for(&store, &ann, &format!("ann {n}")).await;
        }
        let theirs = plan_for(&store, &anna, "anna's").await;
        assert_eq!(theirs.id, PlanId(1));
        assert_eq!(store.list_plans(&ann).await.unwrap().len(), 11);
        let annas = store.list_plans(&anna).await.unwrap();
        assert_eq!(annas.iter().map(|p| p.title.as_str()).collect::<Vec<_>>(), ["anna's"]);
        assert_eq!(store.get_plan(&anna, PlanId(10)).await.unwrap(), None);
        assert_eq!(store.history(&ann, PlanId(1), 100).await.unwrap().len(), 1);
        let stranger = UserId::parse("nobody").unwrap();
        assert!(store.list_plans(&stranger).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_stale_version_is_refused_and_returns_the_current_plan() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let u = UserId::parse("u").unwrap();
        store.ensure_user(&u).await.unwrap();
        let plan = plan_for(&store, &u, "p").await;
        let mut v2 = plan.clone();
        v2.version = 2;
        v2.title = "renamed".into();
        let mut e = entry(2);
        e.changes.push(Change::PlanRenamed {
            from: "p".into(),
            to: "renamed".into(),
        });
        store.update_plan(&u, &v2, 1, e).await.unwrap();
        let mut stale = plan.clone();
        stale.version = 2;
        match store.update_plan(&u, &stale, 1, entry(2)).await {
            Err(StoreError::Conflict { current }) => assert_eq!(*current, v2),
            other => panic!("expected a conflict, got {other:?}"),
        }
        let history = store.history(&u, plan.id, 10).await.unwrap();
        assert_eq!(history.iter().map(|h| h.version).collect::<Vec<_>>(), [2, 1]);
    }

    #[tokio::test]
    async fn data_survives_reopening_and_a_second_opener_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let u = UserId::parse("u").unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            store.ensure_user(&u).await.unwrap();
            plan_for(&store, &u, "kept").await;
            store
                .append_message(
                    &u,
                    &Entry {
                        at: Utc::now(),
                        message: Message::User {
                            text: "hello".into(),
                            id: None,
                        },
                    },
                )
                .await
                .unwrap();
            assert!(store.flush_count() >= 1);
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.list_plans(&u).await.unwrap()[0].title, "kept");
        let messages = store.recent_messages(&u, 10).await.unwrap();
        assert_eq!(messages.len(), 1);
        // Another process is simulated by a second open in this process,
        // which sled refuses through the same file lock.
        match SledStore::open(dir.path()) {
            Err(StoreError::Locked { .. }) => {}
            Err(other) => panic!("expected Locked, got {other}"),
            Ok(_) => panic!("expected Locked, got a second store"),
        }
    }

    #[tokio::test]
    async fn an_accepted_creation_applies_once_even_if_the_yes_comes_twice() {
        use crate::proposal::{Action, Proposal, ProposalStatus};
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let u = UserId::parse("u").unwrap();
        store.ensure_user(&u).await.unwrap();
        let mut draft = Plan::draft("Trip", "", Utc::now());
        draft.version = 1;
        let open = Proposal {
            id: String::new(),
            plan_id: None,
            base_version: 1,
            summary: "Create".into(),
            changes: vec![],
            status: ProposalStatus::Open,
            why: "test".into(),
            created_at: Utc::now(),
            decided_at: None,
            action: Action::Create {
                plan: Box::new(draft.clone()),
            },
        };
        let open = store.create_proposal(&u, open).await.unwrap();
        let mut accepted = open.clone();
        accepted.status = ProposalStatus::Accepted;
        let change = || Accepted::Create {
            draft: draft.clone(),
            entry: entry(1),
        };
        let plan = store.accept_proposal(&u, &accepted, change()).await.unwrap();
        assert_eq!(plan.id, PlanId(1));
        match store.accept_proposal(&u, &accepted, change()).await {
            Err(StoreError::ProposalClosed { current }) => assert_eq!(current.status, ProposalStatus::Accepted),
            other => panic!("expected ProposalClosed, got {other:?}"),
        }
        assert_eq!(store.list_plans(&u).await.unwrap().len(), 1);
        assert_eq!(
            store.get_proposal(&u, &open.id).await.unwrap().unwrap().plan_id,
            Some(PlanId(1))
        );
        assert!(store.open_proposals(&u).await.unwrap().is_empty());
        // A no that was read before the yes landed does not overwrite it.
        let mut declined = open.clone();
        declined.status = ProposalStatus::Declined;
        match store.close_proposal(&u, &declined).await {
            Err(StoreError::ProposalClosed { current }) => assert_eq!(current.status, ProposalStatus::Accepted),
            other => panic!("expected ProposalClosed, got {other:?}"),
        }
        assert_eq!(
            store.get_proposal(&u, &open.id).await.unwrap().unwrap().status,
            ProposalStatus::Accepted
        );
    }

    #[tokio::test]
    async fn a_record_that_does_not_decode_fails_the_read_instead_of_serving_wrong_data() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let u = UserId::parse("u").unwrap();
        store.ensure_user(&u).await.unwrap();
        let plan = plan_for(&store, &u, "kept").await;
        let num = store.user_num(&u).unwrap().unwrap();
        store
            .inner
            .plans
            .insert(keys::plan(num, plan.id.0), &b"{\"v\":1,\"data\":{\"truncated"[..])
            .unwrap();
        for result in [
            store.list_plans(&u).await.map(|_| ()),
            store.get_plan(&u, plan.id).await.map(|_| ()),
        ] {
            match result {
                Err(StoreError::Corrupt { tree: "plans", .. }) => {}
                other => panic!("expected a corrupt-record error, got {other:?}"),
            }
        }
        store
            .inner
            .plans
            .insert(keys::plan(num, plan.id.0), encode(&plan).unwrap())
            .unwrap();
        let mut future = serde_json::to_value(Envelope { v: FORMAT, data: &plan }).unwrap();
        future["v"] = serde_json::json!(99);
        store
            .inner
            .plans
            .insert(keys::plan(num, 2), serde_json::to_vec(&future).unwrap())
            .unwrap();
        assert!(
            matches!(store.list_plans(&u).await, Err(StoreError::Corrupt { reason, .. }) if reason == "unknown format version 99")
        );
    }

    #[tokio::test]
    async fn an_export_restores_into_an_empty_store_with_everything_readable() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let u = UserId::parse("u").unwrap();
        let mut dump = Vec::new();
        let exported = {
            let store = SledStore::open(a.path()).unwrap();
            store.ensure_user(&u).await.unwrap();
            plan_for(&store, &u, "kept").await;
            store
                .append_message(
                    &u,
                    &Entry {
                        at: Utc::now(),
                        message: Message::User {
                            text: "hi".into(),
                            id: None,
                        },
                    },
                )
                .await
                .unwrap();
            store.export(&mut dump).unwrap()
        };
        let restored = SledStore::open(b.path()).unwrap();
        assert_eq!(restored.import(&dump[..]).await.unwrap(), exported);
        assert_eq!(restored.list_plans(&u).await.unwrap()[0].title, "kept");
        assert_eq!(restored.recent_messages(&u, 5).await.unwrap().len(), 1);
        assert_eq!(restored.history(&u, PlanId(1), 5).await.unwrap().len(), 1);
        // A second plan gets the next id: counters came along.
        assert_eq!(plan_for(&restored, &u, "next").await.id, PlanId(2));
        assert!(
            restored.import(&dump[..]).await.is_err(),
            "import refuses a non-empty store"
        );
    }
}
