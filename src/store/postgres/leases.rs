//! Leases and shared message budgets on PostgreSQL.

use super::{Fail, PostgresStore, exec, from_ms, ms, row, rows, transact};
use crate::store::memory::Bucket;
use crate::store::{LeaseStore, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
impl LeaseStore for PostgresStore {
    async fn claim(
        &self,
        holder: &str,
        names: &[String],
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        // New names are inserted; leases that ran out or are the holder's
        // are taken over, skipping rows another claimer has locked right
        // now. One statement, so one snapshot and no transaction to retry.
        let taken = rows(
            &client,
            "WITH wanted AS (SELECT unnest($1::text[]) AS name),
             fresh AS (
                 INSERT INTO leases (name, holder, until_ms)
                 SELECT name, $2, $3 FROM wanted
                 ON CONFLICT (name) DO NOTHING
                 RETURNING name),
             free AS (
                 SELECT l.name FROM leases l JOIN wanted w ON w.name = l.name
                 WHERE l.until_ms <= $4 OR l.holder = $2
                 FOR UPDATE OF l SKIP LOCKED),
             renewed AS (
                 UPDATE leases l SET holder = $2, until_ms = $3
                 FROM free WHERE l.name = free.name
                 RETURNING l.name)
             SELECT name FROM fresh UNION SELECT name FROM renewed",
            &[&names, &holder, &ms(until), &ms(now)],
        )
        .await
        .map_err(StoreError::from)?;
        let taken: std::collections::HashSet<String> = taken.iter().map(|r| r.get(0)).collect();
        Ok(names.iter().filter(|n| taken.contains(*n)).cloned().collect())
    }

    async fn release(&self, holder: &str, names: &[String]) -> Result<(), StoreError> {
        if names.is_empty() {
            return Ok(());
        }
        let client = self.client().await?;
        exec(
            &client,
            "DELETE FROM leases WHERE name = ANY($1) AND holder = $2",
            &[&names, &holder],
        )
        .await?;
        Ok(())
    }

    async fn take_token(
        &self,
        name: &str,
        per_minute: u32,
        now: DateTime<Utc>,
    ) -> Result<Result<(), std::time::Duration>, StoreError> {
        transact!(self, |tx| {
            let stored = row(
                tx,
                "SELECT tokens, at_ms FROM buckets WHERE name = $1 FOR UPDATE",
                &[&name],
            )
            .await?;
            let bucket = match stored {
                Some(r) => Bucket {
                    tokens: r.try_get(0)?,
                    at: from_ms("buckets", r.try_get(1)?)?,
                },
                None => Bucket::full(per_minute, now),
            };
            let (after, taken) = bucket.take(per_minute, now);
            exec(
                tx,
                "INSERT INTO buckets (name, tokens, at_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET tokens = $2, at_ms = $3",
                &[&name, &after.tokens, &ms(after.at)],
            )
            .await?;
            Ok::<_, Fail>(taken)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::{PostgresOptions, cluster};

    #[tokio::test]
    async fn claimers_racing_for_the_same_work_each_take_a_disjoint_share() {
        let Some(db) = cluster::Database::fresh().await else {
            return;
        };
        let store = PostgresStore::connect(db.url(), &PostgresOptions::default())
            .await
            .unwrap();
        let names: Vec<String> = (0..40).map(|i| format!("outbox:{i}")).collect();
        let now = Utc::now();
        let until = now + chrono::Duration::seconds(30);
        let claims = (0..6).map(|i| {
            let (store, names) = (store.clone(), names.clone());
            tokio::spawn(async move { store.claim(&format!("i{i}"), &names, now, until).await.unwrap() })
        });
        let mut taken: Vec<String> = Vec::new();
        for claim in claims {
            taken.extend(claim.await.unwrap());
        }
        taken.sort();
        let mut want = names.clone();
        want.sort();
        assert_eq!(taken, want, "every name taken exactly once");
    }
}
