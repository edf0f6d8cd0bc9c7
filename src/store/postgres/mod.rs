//! The PostgreSQL store, for deployments that outgrow one machine. Every
//! record lives in a table of its family (`schema_1.sql`) as the same JSON
//! the sled store writes, beside the columns queries select and order by.
//!
//! Every write is one transaction at `REPEATABLE READ` isolation (one
//! snapshot; a row changed by another transaction since is a serialization
//! failure, not a lost update), reading the rows it decides on `FOR UPDATE`,
//! and retried from the start when PostgreSQL reports a serialization
//! failure, a deadlock or a unique key taken meanwhile, so each write sees
//! what the sled store's optimistic transactions see. Not `SERIALIZABLE`:
//! its predicate locks on small tables made unrelated users' writes fail
//! each other (50 concurrent users exhausted eight retries in the store
//! benchmark). A write returns after its commit,
//! with `synchronous_commit` on (set on every connection), so acknowledged
//! means on disk. Every query names the user, except the cross-user queues
//! (due triggers, notifications, outbox rows and steps).
//!
//! The schema is created and migrated on start, under an advisory lock so
//! several instances starting at once migrate once. One file per aggregate:
//! [`plans`], [`conversation`], [`triggers`], [`notifications`],
//! [`accounts`], [`engine`].

mod accounts;
mod bus;
mod conversation;
mod engine;
mod leases;
mod notifications;
mod plans;
mod snapshot;
mod tls;
mod triggers;

#[cfg(any(test, feature = "test-util"))]
pub mod cluster;
#[cfg(test)]
mod migrate_tests;

pub use self::bus::{Body, Bus, Remote};

use super::{Pruned, Store, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Transaction};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{Json, ToSql};
use tokio_postgres::{IsolationLevel, Row};

/// The schema, one script per version, applied in order.
const MIGRATIONS: [(i32, &str); 2] = [(1, include_str!("schema_1.sql")), (2, include_str!("schema_2.sql"))];

/// Tries of one write that keeps meeting serialization failures.
pub(super) const MAX_TRIES: u32 = 8;

/// How a PostgreSQL store connects.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Connections kept open at most.
    pub pool_size: usize,
    /// How long to wait for a connection (to connect, or for a free one).
    pub connect_timeout: Duration,
    /// PEM certificates of a private CA the server's certificate may be
    /// signed by (besides the public roots).
    pub ca_file: Option<std::path::PathBuf>,
}

impl From<&crate::config::DatabaseConfig> for PostgresOptions {
    fn from(d: &crate::config::DatabaseConfig) -> PostgresOptions {
        PostgresOptions {
            pool_size: d.pool_size,
            connect_timeout: Duration::from_secs(d.connect_timeout_secs),
            ca_file: d.ca_file.clone(),
        }
    }
}

impl Default for PostgresOptions {
    /// The configuration's defaults.
    fn default() -> PostgresOptions {
        PostgresOptions::from(&crate::config::DatabaseConfig::default())
    }
}

#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// How to connect, for the bus's own listening connection.
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    timer_signal: Arc<tokio::sync::Notify>,
    work_signal: Arc<tokio::sync::Notify>,
    /// Where each COMMIT's time goes (`steward_store_commit_seconds`).
    commit_seconds: std::sync::OnceLock<prometheus_client::metrics::histogram::Histogram>,
}

/// Why a step of a write failed: a database error (which may be worth a
/// retry) or the store's own answer (a conflict, a corrupt record).
pub(crate) enum Fail {
    Store(StoreError),
    Pg(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Fail {
        Fail::Pg(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Fail {
        Fail::Store(e)
    }
}

impl Fail {
    fn retryable(&self) -> bool {
        match self {
            Fail::Pg(e) => matches!(
                e.code(),
                Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == SqlState::T_R_DEADLOCK_DETECTED
                    || *c == SqlState::UNIQUE_VIOLATION
            ),
            Fail::Store(_) => false,
        }
    }
}

impl From<Fail> for StoreError {
    fn from(f: Fail) -> StoreError {
        match f {
            Fail::Store(e) => e,
            Fail::Pg(e) => pg_error(&e),
        }
    }
}

/// A database error in words: the server's code and message when it sent
/// one, else the client's (connection) error with its cause.
fn pg_error(e: &tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        if *db.code() == SqlState::FOREIGN_KEY_VIOLATION {
            return StoreError::Backend(format!(
                "a record names a user who was never registered ({})",
                db.message()
            ));
        }
        return StoreError::Backend(format!("postgres {}: {}", db.code().code(), db.message()));
    }
    let text = match std::error::Error::source(e) {
        Some(cause) => format!("postgres: {e}: {cause}"),
        None => format!("postgres: {e}"),
    };
    if text.contains("certificate") {
        return StoreError::Backend(format!(
            "{text} (the database server's certificate is not trusted: set database.ca_file to its CA's \
             PEM certificates, or add sslmode=disable to the URL for a plain connection)"
        ));
    }
    StoreError::Backend(text)
}

/// Runs `$body` (an expression using `$tx: &Transaction`, failing with
/// [`Fail`]) in one transaction and commits it, trying again from the
/// start, after a short random pause, while PostgreSQL reports a
/// serialization failure, a deadlock or a unique key taken meanwhile. Evaluates to `Result<T,
/// StoreError>`. A macro rather than a function taking a closure: the body
/// borrows the caller's arguments, and a closure returning a future that
/// borrows its argument cannot be proved `Send` for the store's traits.
macro_rules! transact {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let store = &$store;
        let mut client = store.client().await?;
        let mut tries = 0u32;
        loop {
            tries += 1;
            let transaction = store.begin(&mut client).await?;
            let done: Result<_, $crate::store::postgres::Fail> = {
                let $tx = &transaction;
                async { $body }.await
            };
            let done = match done {
                Ok(value) => {
                    let started = std::time::Instant::now();
                    let committed = transaction.commit().await;
                    store.observe_commit(started.elapsed());
                    committed.map(|()| value).map_err($crate::store::postgres::Fail::Pg)
                }
                Err(e) => Err(e), // dropped: rolled back
            };
            match done {
                Err(e) if e.retryable() && tries < $crate::store::postgres::MAX_TRIES => {
                    $crate::store::postgres::pause(tries).await;
                }
                other => break other.map_err($crate::store::StoreError::from),
            }
        }
    }};
}
pub(super) use transact;

/// The pause before try `tries + 1` of a write that met a serialization
/// failure: random, growing with the tries.
pub(super) async fn pause(tries: u32) {
    let ms = rand::random_range(1..=5u64 * u64::from(tries));
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Rows of a statement (prepared once per connection).
pub(super) async fn rows(c: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<Vec<Row>, Fail> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.query(&statement, params).await?)
}

/// The row of a statement that returns at most one.
pub(super) async fn row(c: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<Option<Row>, Fail> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.query_opt(&statement, params).await?)
}

/// Runs a statement; the number of rows it changed.
pub(super) async fn exec(c: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<u64, Fail> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.execute(&statement, params).await?)
}

/// A stored JSON record; one that does not decode is corrupt.
pub(super) fn decode<T: DeserializeOwned>(table: &'static str, row: &Row, column: &str) -> Result<T, Fail> {
    decode_opt(table, row, column)?.ok_or_else(|| {
        Fail::Store(StoreError::Corrupt {
            tree: table,
            reason: format!("{column} is empty"),
        })
    })
}

/// A nullable JSON column: `None` when NULL; corrupt when it does not decode.
pub(super) fn decode_opt<T: DeserializeOwned>(table: &'static str, row: &Row, column: &str) -> Result<Option<T>, Fail> {
    let value: Option<Json<serde_json::Value>> = row.try_get(column)?;
    value
        .map(|Json(v)| {
            serde_json::from_value(v).map_err(|e| {
                Fail::Store(StoreError::Corrupt {
                    tree: table,
                    reason: e.to_string(),
                })
            })
        })
        .transpose()
}

pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// An instant stored as milliseconds; one out of range is a corrupt record.
pub(super) fn from_ms(table: &'static str, ms: i64) -> Result<DateTime<Utc>, Fail> {
    Utc.timestamp_millis_opt(ms).single().ok_or_else(|| {
        Fail::Store(StoreError::Corrupt {
            tree: table,
            reason: format!("instant {ms} ms is out of range"),
        })
    })
}

/// "n12" → 12.
pub(super) fn seq_of(id: &str, prefix: char) -> Option<i64> {
    let digits = id.strip_prefix(prefix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A count as PostgreSQL's bigint (a limit or an id beyond `i64` cannot
/// occur in practice; it is clamped rather than wrapped).
pub(super) fn big(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:pass@host/db`),
    /// then creates or migrates the schema. The error names the problem
    /// without the password.
    pub async fn connect(url: &str, options: &PostgresOptions) -> Result<PostgresStore, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Backend(format!(
                "the database URL is not a PostgreSQL connection string ({e}); expected postgres://user:password@host:5432/database"
            ))
        })?;
        // Acknowledged means committed and flushed, whatever the server's
        // default is.
        let extra = "-c synchronous_commit=on";
        let combined = match config.get_options() {
            Some(given) if !given.is_empty() => format!("{given} {extra}"),
            _ => extra.to_owned(),
        };
        config.options(&combined);
        config.application_name("steward");
        config.connect_timeout(options.connect_timeout);
        let tls = tls::connector(options.ca_file.as_deref())?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Backend(format!("database pool: {e}")))?;
        let store = PostgresStore {
            inner: Arc::new(Inner {
                pool,
                config,
                tls,
                timer_signal: Arc::new(tokio::sync::Notify::new()),
                work_signal: Arc::new(tokio::sync::Notify::new()),
                commit_seconds: std::sync::OnceLock::new(),
            }),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Records a COMMIT's time, once metrics are attached.
    pub(super) fn observe_commit(&self, took: Duration) {
        if let Some(h) = self.inner.commit_seconds.get() {
            h.observe(took.as_secs_f64());
        }
    }

    /// A pooled connection.
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.inner.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => pg_error(&e),
            other => StoreError::Backend(format!("no database connection: {other}")),
        })
    }

    /// Applies the migrations the database has not seen, in one
    /// transaction under an advisory lock. A database migrated by a newer
    /// steward is refused.
    async fn migrate(&self) -> Result<(), StoreError> {
        let known = MIGRATIONS.last().map_or(0, |m| m.0);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        let step = async {
            tx.batch_execute(
                "SELECT pg_advisory_xact_lock(hashtext('steward.migrate:' || current_schema()));
                 CREATE TABLE IF NOT EXISTS steward_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());",
            )
            .await?;
            let at: i32 = tx
                .query_one("SELECT coalesce(max(version), 0) FROM steward_schema", &[])
                .await?
                .get(0);
            if at > known {
                return Err(Fail::Store(StoreError::Backend(format!(
                    "the database's schema is at version {at}, newer than this steward knows ({known}); run the newer steward"
                ))));
            }
            for (version, script) in MIGRATIONS.iter().filter(|m| m.0 > at) {
                tx.batch_execute(script).await?;
                tx.execute("INSERT INTO steward_schema (version) VALUES ($1)", &[version])
                    .await?;
                tracing::info!(version, "database schema migrated");
            }
            Ok(())
        };
        step.await.map_err(StoreError::from)?;
        tx.commit().await.map_err(|e| pg_error(&e))
    }

    /// A transaction at `REPEATABLE READ` isolation (see [`transact!`]).
    pub(super) async fn begin<'c>(
        &self,
        client: &'c mut deadpool_postgres::Object,
    ) -> Result<Transaction<'c>, StoreError> {
        client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .start()
            .await
            .map_err(|e| pg_error(&e))
    }

    /// Wakes the scheduler and the engine: triggers or the work list may
    /// have changed.
    fn wake(&self) {
        self.inner.timer_signal.notify_one();
        self.inner.work_signal.notify_one();
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn prune(&self, before: DateTime<Utc>) -> Result<Pruned, StoreError> {
        let before = ms(before);
        transact!(self, |tx| {
            let fired = exec(tx, "DELETE FROM fired WHERE at_ms < $1 AND fire_ms < $1", &[&before]).await?;
            let notifications = exec(
                tx,
                "DELETE FROM notifications WHERE created_ms < $1 AND routed AND queued_until_ms IS NULL",
                &[&before],
            )
            .await?;
            let outbox = exec(tx, "DELETE FROM outbox WHERE NOT open AND created_ms < $1", &[&before]).await?;
            exec(tx, "DELETE FROM leases WHERE until_ms < $1", &[&before]).await?;
            exec(tx, "DELETE FROM buckets WHERE at_ms < $1", &[&before]).await?;
            let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
            Ok(Pruned {
                fired: count(fired),
                notifications: count(notifications),
                outbox: count(outbox),
            })
        })
    }

    async fn quiesce(&self) {
        // Nothing runs in the background: a write's future owns its
        // connection, and a dropped one rolls back.
    }

    async fn probe(&self) -> Result<(), StoreError> {
        let now = Utc::now().timestamp_millis();
        let client = self.client().await?;
        exec(
            &client,
            "INSERT INTO probe (id, at_ms) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at_ms = $1",
            &[&now],
        )
        .await?;
        Ok(())
    }

    fn shared(&self) -> bool {
        true
    }

    fn time_commits(&self, histogram: prometheus_client::metrics::histogram::Histogram) {
        let _ = self.inner.commit_seconds.set(histogram);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn fresh() -> Option<(cluster::Database, PostgresStore)> {
        let db = cluster::Database::fresh().await?;
        let store = db.store().await;
        Some((db, store))
    }

    crate::store::conformance::suite!(optional fresh);

    use crate::plan::Plan;
    use crate::store::conformance::{create, entry, no_triggers, reminder};
    use crate::store::{AccountStore, Derived, Firing, PlanStore, TriggerStore};
    use crate::triggers::Outcome;
    use crate::user::UserId;

    async fn sql(store: &PostgresStore, statement: &str) {
        store.client().await.unwrap().batch_execute(statement).await.unwrap();
    }

    #[tokio::test]
    async fn data_survives_a_new_connection_and_a_newer_schema_is_refused() {
        let Some((db, store)) = fresh().await else { return };
        let u = UserId::parse("u").unwrap();
        store.ensure_user(&u).await.unwrap();
        create(&store, &u, "kept").await;
        drop(store);
        let again = db.store().await;
        assert_eq!(again.list_plans(&u).await.unwrap()[0].title, "kept");
        sql(&again, "INSERT INTO steward_schema (version) VALUES (99)").await;
        match PostgresStore::connect(db.url(), &PostgresOptions::default()).await {
            Err(StoreError::Backend(message)) => assert!(message.contains("newer than this steward"), "{message}"),
            Err(other) => panic!("expected a refusal of the newer schema, got {other}"),
            Ok(_) => panic!("a schema from a newer steward was accepted"),
        }
    }

    #[tokio::test]
    async fn an_encrypted_connection_verifies_the_servers_certificate() {
        let Some(db) = cluster::Database::fresh().await else {
            return;
        };
        let Some((url, ca)) = db.tls() else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("the test cluster needs TLS under CI=true (tests/pg/setup.sh installs openssl)");
            }
            eprintln!("skipped: the test cluster has no TLS (no openssl)");
            return;
        };
        let Err(StoreError::Backend(message)) = PostgresStore::connect(&url, &PostgresOptions::default()).await else {
            panic!("a certificate from an unknown CA was accepted");
        };
        assert!(message.contains("database.ca_file"), "{message}");
        let options = PostgresOptions {
            ca_file: Some(ca),
            ..PostgresOptions::default()
        };
        let store = PostgresStore::connect(&url, &options).await.unwrap();
        let client = store.client().await.unwrap();
        let encrypted: bool = client
            .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        assert!(encrypted, "the pool's connection is encrypted");
        drop(client);
        let stop = tokio_util::sync::CancellationToken::new();
        let (bus, _frames) = store.join("tls", stop.clone()).await.unwrap();
        assert!(bus.listening(), "the bus listens over TLS too");
        stop.cancel();
    }

    #[tokio::test]
    async fn a_bad_url_is_explained_without_the_password() {
        let Err(StoreError::Backend(message)) = PostgresStore::connect(
            "postgres://ana:s3cret@127.0.0.1:notaport/db",
            &PostgresOptions::default(),
        )
        .await
        else {
            panic!("a malformed URL was accepted");
        };
        assert!(message.contains("postgres://user:password@host"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }

    #[tokio::test]
    async fn a_record_that_does_not_decode_fails_the_read_instead_of_serving_wrong_data() {
        let Some((_db, store)) = fresh().await else { return };
        let u = UserId::parse("u").unwrap();
        store.ensure_user(&u).await.unwrap();
        create(&store, &u, "kept").await;
        sql(&store, r#"UPDATE plans SET body = '{"truncated": true}'"#).await;
        for result in [
            store.list_plans(&u).await.map(|_| ()),
            store.get_plan(&u, crate::plan::PlanId(1)).await.map(|_| ()),
        ] {
            match result {
                Err(StoreError::Corrupt { tree: "plans", .. }) => {}
                other => panic!("expected a corrupt-record error, got {other:?}"),
            }
        }
    }

    /// Eight writers race to move one plan from version 1: exactly one
    /// wins; the others see the winner.
    #[tokio::test]
    async fn racing_writers_of_one_plan_one_wins_and_the_others_see_its_version() {
        let Some((_db, store)) = fresh().await else { return };
        let u = UserId::parse("u").unwrap();
        store.ensure_user(&u).await.unwrap();
        let plan = create(&store, &u, "raced").await;
        let mut writers = tokio::task::JoinSet::new();
        for n in 0..8 {
            let (store, u, mut next) = (store.clone(), u.clone(), plan.clone());
            next.version = 2;
            next.title = format!("writer {n}");
            writers.spawn(async move { store.update_plan(&u, &next, 1, entry(2, vec![]), &no_triggers).await });
        }
        let (mut won, mut conflicts) = (0, 0);
        while let Some(done) = writers.join_next().await {
            match done.unwrap() {
                Ok(()) => won += 1,
                Err(StoreError::Conflict { current }) => {
                    assert_eq!(current.version, 2);
                    conflicts += 1;
                }
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert_eq!((won, conflicts), (1, 7));
        assert_eq!(store.history(&u, plan.id, 10).await.unwrap().len(), 2);
    }

    /// Users writing their own plans at once never fail each other (under
    /// SERIALIZABLE, predicate locks on small tables made them).
    #[tokio::test]
    async fn many_users_writing_at_once_all_succeed() {
        let Some((_db, store)) = fresh().await else { return };
        let mut writers = tokio::task::JoinSet::new();
        for n in 0..50 {
            let store = store.clone();
            writers.spawn(async move {
                let u = UserId::parse(&format!("user{n}")).unwrap();
                store.ensure_user(&u).await.unwrap();
                let mut plan = create(&store, &u, "mine").await;
                // Each write moves the plan's trigger, as due dates do.
                for step in 0..30 {
                    let mut next = plan.clone();
                    next.version += 1;
                    let due = Utc::now() + chrono::Duration::days(1 + step);
                    let derive = |p: &Plan| Derived {
                        triggers: vec![crate::store::conformance::overdue(&u, p.id, "a", due)],
                        arm_after: p.updated_at,
                        runnable: Vec::new(),
                    };
                    store
                        .update_plan(&u, &next, plan.version, entry(next.version, vec![]), &derive)
                        .await?;
                    plan = next;
                }
                Ok::<_, StoreError>(())
            });
        }
        while let Some(done) = writers.join_next().await {
            done.unwrap().unwrap();
        }
    }

    /// Two steward instances on one database race to fire one trigger: it
    /// fires once.
    #[tokio::test]
    async fn two_instances_racing_to_fire_a_trigger_fire_it_once() {
        let Some((db, first)) = fresh().await else { return };
        let second = db.store().await;
        let u = UserId::parse("u").unwrap();
        first.ensure_user(&u).await.unwrap();
        for round in 0..5 {
            let t = reminder(&u, &format!("r{round}"), Utc::now());
            first.put_trigger(&t).await.unwrap();
            let firing = Firing {
                outcome: Outcome::Fired,
                at: Utc::now(),
                notifications: Vec::new(),
                outbox: Vec::new(),
                rearm: None,
                digest_cursor: None,
            };
            let (a, b) = tokio::join!(first.fire(&t, firing.clone()), second.fire(&t, firing));
            let fired = [a.unwrap(), b.unwrap()].iter().filter(|f| f.is_some()).count();
            assert_eq!(fired, 1, "round {round}");
        }
    }
}
