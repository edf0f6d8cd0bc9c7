//! Leases and shared message budgets on PostgreSQL.

use super::{PostgresStore, exec, ms, row, rows};
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

    async fn spend(
        &self,
        name: &str,
        budget: crate::store::Budget,
        spend: crate::store::Spend,
        now: DateTime<Utc>,
    ) -> Result<Result<(), std::time::Duration>, StoreError> {
        // One statement (one round trip, its own commit): the bucket
        // refilled up to now, then spent. The same arithmetic as the
        // in-memory bucket (`store::memory`). $2 capacity, $3 now (ms),
        // $4 refill per ms, $5 amount, $6 whether it is a charge.
        let refilled = "least($2::float8, b.tokens + greatest(0, $3::int8 - b.at_ms) * $4::float8)";
        let sql = format!(
            "INSERT INTO buckets AS b (name, tokens, at_ms, taken)
                 VALUES ($1,
                         CASE WHEN $6 THEN greatest(-$2::float8, $2::float8 - $5::float8)
                              WHEN $2::float8 >= $5::float8 THEN $2::float8 - $5::float8
                              ELSE $2::float8 END,
                         $3::int8, $6 OR $2::float8 >= $5::float8)
             ON CONFLICT (name) DO UPDATE SET
                 tokens = CASE WHEN $6 THEN greatest(-$2::float8, {refilled} - $5::float8)
                               WHEN {refilled} >= $5::float8 THEN {refilled} - $5::float8
                               ELSE {refilled} END,
                 taken = $6 OR {refilled} >= $5::float8,
                 at_ms = greatest(b.at_ms, $3)
             RETURNING tokens, taken"
        );
        let (amount, charge) = match spend {
            crate::store::Spend::Take(n) => (n, false),
            crate::store::Spend::Charge(n) => (n, true),
        };
        let client = self.client().await?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
            [&name, &budget.capacity, &ms(now), &budget.per_ms(), &amount, &charge];
        let found = row(&client, &sql, &params).await?;
        let Some(found) = found else {
            return Err(StoreError::Backend("the budget was not written".into()));
        };
        let (tokens, taken): (f64, bool) = (found.get(0), found.get(1));
        Ok(if taken {
            Ok(())
        } else {
            let wait_ms = (amount - tokens) / budget.per_ms().max(f64::MIN_POSITIVE);
            Err(std::time::Duration::from_secs_f64(wait_ms / 1000.0))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::cluster;

    #[tokio::test]
    async fn claimers_racing_for_the_same_work_each_take_a_disjoint_share() {
        let Some(db) = cluster::Database::fresh().await else {
            return;
        };
        let store = db.store().await;
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

    #[tokio::test]
    async fn instances_racing_for_one_budget_take_only_what_it_holds() {
        let Some(db) = cluster::Database::fresh().await else {
            return;
        };
        let store = db.store().await;
        let now = Utc::now();
        let takes = (0..12).map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.take_token("messages:ana", 5, now).await.unwrap() })
        });
        let mut granted = 0;
        for take in takes {
            granted += usize::from(take.await.unwrap().is_ok());
        }
        assert_eq!(granted, 5, "a budget of five, whoever asks");
    }
}
