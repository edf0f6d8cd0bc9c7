//! The embedded store on sled 0.34, one database with a tree per record
//! family. sled makes writes durable only on `flush`, so every write here
//! ends in [`SledStore::durable`], which batches concurrent callers into one
//! flush (group commit). One file per aggregate: [`plans`],
//! [`conversation`], [`triggers`], [`notifications`], [`accounts`];
//! [`backup`] is the engine-independent export.

mod accounts;
mod backup;
mod codec;
mod conversation;
mod engine;
mod integrity;
pub use integrity::Salvage;
mod keys;
mod notifications;
mod plans;
mod snapshot;
mod triggers;

use super::memory::Memory;
use super::{LeaseStore, Pruned, Store, StoreError};
use crate::user::UserId;
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use codec::{FORMAT, decode, encode};

fn backend(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

#[derive(Clone)]
pub struct SledStore {
    inner: Arc<Inner>,
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
    engine: sled::Tree,
    timer_signal: Arc<tokio::sync::Notify>,
    work_signal: Arc<tokio::sync::Notify>,
    /// Group commit: writes take a ticket after they complete; a flush covers
    /// every ticket taken before it started.
    written: AtomicU64,
    flushed: AtomicU64,
    flushes: AtomicU64,
    /// The data directory, where the census of records is kept.
    dir: std::path::PathBuf,
    /// The first flush error: sled fails every later write too.
    broken: std::sync::OnceLock<String>,
    /// Whether the census says "running" since this process first wrote.
    census_unclean: std::sync::atomic::AtomicBool,
    /// The watermark flushes move (see [`integrity`]).
    marks: integrity::Marks,
    /// Where each flush's time goes (`steward_store_commit_seconds`).
    commit_seconds: std::sync::OnceLock<prometheus_client::metrics::histogram::Histogram>,
    flush_lock: Arc<tokio::sync::Mutex<()>>,
    /// Held (shared) by blocking work that outlives its caller's future (a
    /// flush whose caller stopped waiting, a prune); [`Store::quiesce`]
    /// takes it exclusively.
    background: Arc<tokio::sync::RwLock<()>>,
    /// Leases and message budgets: one process holds this store.
    memory: Memory,
}

impl SledStore {
    /// Opens (or creates) the store in `dir`. Fails at once, with a clear
    /// error, if another process has it open.
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        SledStore::open_with_cache(dir, SledStore::DEFAULT_CACHE_MIB)
    }

    /// sled's page cache unless configured (`store_cache_mib`).
    pub const DEFAULT_CACHE_MIB: u64 = crate::config::DEFAULT_STORE_CACHE_MIB;

    /// Opens with a page cache of `cache_mib` MiB.
    pub fn open_with_cache(dir: &Path, cache_mib: u64) -> Result<SledStore, StoreError> {
        let store = SledStore::open_unchecked_with(dir, cache_mib)?;
        let records = store.check_readable(dir)?;
        integrity::compare_census(dir, records)?;
        integrity::compare_watermark(dir, &store.inner.meta)?;
        Ok(store)
    }

    /// Opens the data directory without reading every record first (for
    /// `export --salvage`, which reads around what is damaged).
    pub(crate) fn open_unchecked(dir: &Path) -> Result<SledStore, StoreError> {
        SledStore::open_unchecked_with(dir, SledStore::DEFAULT_CACHE_MIB)
    }

    fn open_unchecked_with(dir: &Path, cache_mib: u64) -> Result<SledStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend(format!("creating {}: {e}", dir.display())))?;
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_mib.saturating_mul(1024 * 1024));
        let db = integrity::guard(dir, "opening the database", || config.open())?;
        let db = db.map_err(|e| match &e {
            sled::Error::Io(io)
                if io.to_string().contains("could not acquire lock") || io.kind() == std::io::ErrorKind::WouldBlock =>
            {
                StoreError::Locked {
                    path: dir.display().to_string(),
                    detail: io.to_string(),
                }
            }
            sled::Error::Corruption { .. } => StoreError::Damaged {
                path: dir.display().to_string(),
                detail: e.to_string(),
            },
            _ => backend(e),
        })?;
        let tree = |name: &str| db.open_tree(name).map_err(backend);
        let meta = tree("meta")?;
        Ok(SledStore {
            inner: Arc::new(Inner {
                users: tree("users")?,
                plans: tree("plans")?,
                history: tree("history")?,
                messages: tree("messages")?,
                marks: integrity::Marks::from_store(&meta),
                meta,
                proposals: tree("proposals")?,
                timers: tree("timers")?,
                notify: tree("notify")?,
                engine: tree("engine")?,
                timer_signal: Arc::new(tokio::sync::Notify::new()),
                work_signal: Arc::new(tokio::sync::Notify::new()),
                db,
                written: AtomicU64::new(0),
                flushed: AtomicU64::new(0),
                flushes: AtomicU64::new(0),
                dir: dir.to_owned(),
                census_unclean: std::sync::atomic::AtomicBool::new(false),
                broken: std::sync::OnceLock::new(),
                commit_seconds: std::sync::OnceLock::new(),
                flush_lock: Arc::new(tokio::sync::Mutex::new(())),
                background: Arc::new(tokio::sync::RwLock::new(())),
                memory: Memory::default(),
            }),
        })
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
        let turn = inner.flush_lock.clone().lock_owned().await;
        if inner.flushed.load(Ordering::SeqCst) >= ticket {
            return Ok(()); // a flush that started after our write covered it
        }
        let covers = inner.written.load(Ordering::SeqCst);
        let shared = self.inner.clone();
        let busy = inner.background.clone().read_owned().await;
        // The flush owns the flush lock and a share of `background`: if
        // this future is dropped, the flush still finishes before another
        // starts, and `quiesce` waits for it. What it covered is recorded
        // before the lock is released, so the writers queued behind it
        // find their write flushed instead of flushing again.
        tokio::task::spawn_blocking(move || {
            integrity::mark_running(&shared);
            let mark = integrity::next_mark(&shared);
            let started = std::time::Instant::now();
            let flushed = shared.db.flush();
            match &flushed {
                Ok(_) => {
                    if let Some(h) = shared.commit_seconds.get() {
                        h.observe(started.elapsed().as_secs_f64());
                    }
                    if let Some(mark) = mark {
                        integrity::record_mark(&shared, mark);
                    }
                    shared.flushes.fetch_add(1, Ordering::Relaxed);
                    shared.flushed.fetch_max(covers, Ordering::SeqCst);
                }
                Err(e) => {
                    let _ = shared.broken.set(e.to_string());
                }
            }
            drop(shared);
            drop((turn, busy));
            flushed
        })
        .await
        .map_err(|e| StoreError::Backend(format!("flush task: {e}")))?
        .map_err(backend)?;
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

    fn seqs(&self, n: usize) -> Result<Vec<u64>, StoreError> {
        (0..n)
            .map(|_| self.inner.db.generate_id().map(|s| s + 1).map_err(backend))
            .collect()
    }

    /// Wakes the scheduler and the engine: triggers or the work list may
    /// have changed.
    fn wake(&self) {
        self.inner.timer_signal.notify_one();
        self.inner.work_signal.notify_one();
    }

    /// Runs blocking work (a whole-tree scan) off the async workers, holding
    /// a share of `background` so [`Store::quiesce`] waits for it.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        let busy = self.inner.background.clone().read_owned().await;
        tokio::task::spawn_blocking(move || {
            let done = work(&inner);
            drop(inner);
            drop(busy);
            done
        })
        .await
        .map_err(|e| StoreError::Backend(format!("blocking task: {e}")))?
    }
}

#[async_trait]
impl Store for SledStore {
    async fn prune(&self, before: DateTime<Utc>) -> Result<Pruned, StoreError> {
        let pruned = self
            .blocking(move |inner| notifications::prune(&inner.timers, &inner.notify, before))
            .await?;
        self.durable().await?;
        Ok(pruned)
    }

    async fn quiesce(&self) {
        let _all = self.inner.background.write().await;
        let store = self.clone();
        let _ = tokio::task::spawn_blocking(move || integrity::mark_stopped(&store)).await;
    }

    async fn probe(&self) -> Result<(), StoreError> {
        let now = Utc::now().timestamp_millis();
        self.inner
            .meta
            .insert(b"probe", &now.to_be_bytes()[..])
            .map_err(backend)?;
        self.durable().await
    }

    fn shared(&self) -> bool {
        false // the data directory's lock keeps other processes out
    }

    fn time_commits(&self, histogram: prometheus_client::metrics::histogram::Histogram) {
        let _ = self.inner.commit_seconds.set(histogram);
    }

    async fn broken(&self) -> Option<String> {
        if let Some(why) = self.inner.broken.get() {
            return Some(why.clone());
        }
        // A write can fail before its flush (sled writes a full buffer out
        // during an insert); sled then fails every later flush too, and a
        // flush with nothing new to write costs nothing otherwise.
        let Ok(_turn) = self.inner.flush_lock.clone().try_lock_owned() else {
            return None; // a flush is running: it records its own failure
        };
        let inner = self.inner.clone();
        let flushed = tokio::task::spawn_blocking(move || inner.db.flush().map(drop)).await;
        if let Ok(Err(e)) = flushed {
            let _ = self.inner.broken.set(e.to_string());
        }
        self.inner.broken.get().cloned()
    }
}

#[async_trait]
impl LeaseStore for SledStore {
    async fn claim(
        &self,
        holder: &str,
        names: &[String],
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        Ok(self.inner.memory.claim(holder, names, now, until))
    }

    async fn release(&self, holder: &str, names: &[String]) -> Result<(), StoreError> {
        self.inner.memory.release(holder, names);
        Ok(())
    }

    async fn spend(
        &self,
        name: &str,
        budget: super::Budget,
        spend: super::Spend,
        now: DateTime<Utc>,
    ) -> Result<Result<(), std::time::Duration>, StoreError> {
        Ok(self.inner.memory.spend(name, budget, spend, now))
    }
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

fn abort<T>(e: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
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

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// An instant stored as milliseconds; one out of range is a corrupt record.
fn from_ms(tree: &'static str, ms: i64) -> Result<DateTime<Utc>, StoreError> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| StoreError::Corrupt {
            tree,
            reason: format!("instant {ms} ms is out of range"),
        })
}

/// A stored big-endian number; anything else is a corrupt record.
fn number(tree: &'static str, bytes: &[u8]) -> Result<u64, StoreError> {
    keys::decode_u64(bytes).ok_or_else(|| StoreError::Corrupt {
        tree,
        reason: "bad number".into(),
    })
}

fn seq_of(id: &str, prefix: char) -> Option<u64> {
    id.strip_prefix(prefix)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::{Entry, Message};
    use crate::plan::{Actor, HistoryEntry, Plan, PlanId, Step};
    use crate::store::{AccountStore, ConversationStore, Derived, PlanStore};
    use chrono::Utc;

    async fn fresh() -> (tempfile::TempDir, SledStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        (dir, store)
    }

    crate::store::conformance::suite!(fresh);

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
        let none = |p: &Plan| Derived {
            triggers: vec![],
            arm_after: p.updated_at,
            runnable: Vec::new(),
        };
        store.create_plan(user, draft, entry(1), &none).await.unwrap()
    }

    /// Appends a user message saying `text`.
    async fn say(store: &SledStore, user: &UserId, text: &str) {
        let entry = Entry {
            at: Utc::now(),
            message: Message::User {
                text: text.into(),
                id: None,
            },
        };
        store
            .append_message(user, &entry, crate::store::Flush::Now)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn data_survives_reopening_and_a_second_opener_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let u = UserId::parse("u").unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            store.ensure_user(&u).await.unwrap();
            plan_for(&store, &u, "kept").await;
            say(&store, &u, "hello").await;
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
        let mut future = serde_json::json!({ "v": FORMAT, "data": &plan });
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
            say(&store, &u, "hi").await;
            store.export(&mut dump).unwrap()
        };
        let into = b.path().join("data");
        assert_eq!(SledStore::import_into(&into, &dump[..]).await.unwrap(), exported);
        let restored = SledStore::open(&into).unwrap();
        assert_eq!(restored.list_plans(&u).await.unwrap()[0].title, "kept");
        assert_eq!(restored.recent_messages(&u, 5).await.unwrap().len(), 1);
        assert_eq!(restored.history(&u, PlanId(1), 5).await.unwrap().len(), 1);
        // A second plan gets the next id: counters came along.
        assert_eq!(plan_for(&restored, &u, "next").await.id, PlanId(2));
        // So did the id generator: a new user gets a number of their own,
        // and new transcript entries do not overwrite imported ones.
        let v = UserId::parse("v").unwrap();
        restored.ensure_user(&v).await.unwrap();
        assert!(restored.list_plans(&v).await.unwrap().is_empty());
        assert!(restored.recent_messages(&v, 5).await.unwrap().is_empty());
        for _ in 0..3 {
            say(&restored, &u, "again").await;
        }
        assert_eq!(restored.recent_messages(&u, 10).await.unwrap().len(), 4);
        drop(restored);
        let refused = SledStore::import_into(&into, &dump[..]).await.unwrap_err();
        assert!(refused.to_string().contains("has files"), "{refused}");
    }

    #[tokio::test]
    async fn salvage_leaves_out_what_does_not_decode_and_keeps_the_rest_importable() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let u = UserId::parse("u").unwrap();
        {
            let store = SledStore::open(a.path()).unwrap();
            store.ensure_user(&u).await.unwrap();
            plan_for(&store, &u, "kept").await;
            say(&store, &u, "hi").await;
            store.inner.plans.insert(b"garbage-key", &b"{not json"[..]).unwrap();
            store.durable().await.unwrap();
            assert!(store.export(&mut Vec::new()).is_err(), "a plain export refuses");
        }
        let mut rescue = Vec::new();
        let report = SledStore::salvage(a.path(), &mut rescue).unwrap();
        assert_eq!(report.lost.get("plans"), Some(&1));
        assert!(report.shortened_to.is_none());
        let into = b.path().join("data");
        assert_eq!(
            SledStore::import_into(&into, &rescue[..]).await.unwrap(),
            report.written
        );
        let restored = SledStore::open(&into).unwrap();
        assert_eq!(restored.list_plans(&u).await.unwrap()[0].title, "kept");
        assert_eq!(restored.recent_messages(&u, 5).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_store_with_fewer_records_than_at_its_last_clean_stop_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let u = UserId::parse("u").unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            store.ensure_user(&u).await.unwrap();
            plan_for(&store, &u, "kept").await;
            store.quiesce().await;
        }
        // Reopened and stopped without writing: the census still holds.
        SledStore::open(dir.path()).unwrap().quiesce().await;
        // A record goes missing behind steward's back.
        {
            let db = sled::open(dir.path()).unwrap();
            let plans = db.open_tree("plans").unwrap();
            let first = plans.iter().keys().next().unwrap().unwrap();
            plans.remove(first).unwrap();
            db.flush().unwrap();
        }
        let Err(refused) = SledStore::open(dir.path()) else {
            panic!("a store missing a record opened")
        };
        assert!(
            refused.to_string().contains("when steward last stopped cleanly"),
            "{refused}"
        );
        // After a run that wrote and then crashed, there is nothing to
        // compare with: the census says so and the store opens.
        let census = dir.path().join("census.json");
        std::fs::write(&census, r#"{"records": 99, "clean": false}"#).unwrap();
        SledStore::open(dir.path()).unwrap();
    }

    #[tokio::test]
    async fn an_import_that_is_empty_repeats_a_record_or_holds_one_that_does_not_decode_leaves_nothing_behind() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let u = UserId::parse("u").unwrap();
        let mut dump = Vec::new();
        {
            let store = SledStore::open(a.path()).unwrap();
            store.ensure_user(&u).await.unwrap();
            plan_for(&store, &u, "kept").await;
            store.export(&mut dump).unwrap();
        }
        let dump = String::from_utf8(dump).unwrap();
        let lines: Vec<&str> = dump.lines().collect();
        let plan_line = lines.iter().position(|l| l.contains(r#""tree":"plans""#)).unwrap();
        // A plan whose value is JSON but not a plan.
        let mut poisoned: serde_json::Value = serde_json::from_str(lines[plan_line]).unwrap();
        poisoned["value"] = serde_json::json!({"v": 1, "data": {"title": 7}});
        let mut with_poison = lines.clone();
        let poison_text = poisoned.to_string();
        with_poison[plan_line] = &poison_text;
        let mut repeated = lines.clone();
        repeated.push(lines[plan_line]);
        let cases = [
            ("", "line 1"),
            (lines[0], "holds no records"),
            (&with_poison.join("\n"), "corrupt record in plans"),
            (
                &repeated.join("\n"),
                &format!("the same plans record as line {}", plan_line + 1),
            ),
        ];
        let into = b.path().join("data");
        for (input, why) in cases {
            let refused = SledStore::import_into(&into, input.as_bytes())
                .await
                .unwrap_err()
                .to_string();
            assert!(refused.contains(why), "{why}: {refused}");
            assert!(!into.exists(), "{why}: a refused import left the directory behind");
            let leftovers: Vec<_> = std::fs::read_dir(b.path()).unwrap().collect();
            assert!(leftovers.is_empty(), "{why}: {leftovers:?}");
        }
        SledStore::import_into(&into, dump.as_bytes()).await.unwrap();
        assert_eq!(
            SledStore::open(&into).unwrap().list_plans(&u).await.unwrap()[0].title,
            "kept"
        );
    }
}
