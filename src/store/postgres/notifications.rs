//! The notification inbox and the outbox on PostgreSQL: `notifications`
//! (a notification waiting to be routed has `queued_until_ms`), `outbox`
//! (one row per idempotency key, `open` while pending or sending).

use super::{Fail, PostgresStore, big, decode, exec, ms, row, rows, seq_of, transact};
use crate::conversation::Entry;
use crate::notification::{Notification, OutboxItem};
use crate::store::{Backlog, NotificationDraft, NotificationStore, StoreError};
use crate::user::UserId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::types::Json;

/// The next number of the database-wide record sequence.
async fn next_seq(c: &impl GenericClient) -> Result<i64, Fail> {
    let r = row(c, "SELECT nextval('record_seq')", &[]).await?;
    match r {
        Some(r) => Ok(r.try_get(0)?),
        None => Err(Fail::Store(StoreError::Backend(
            "the record sequence gave nothing".into(),
        ))),
    }
}

/// Stores a notification queued for routing from `at`.
pub(super) async fn insert_notification(
    tx: &Transaction<'_>,
    user: &UserId,
    draft: NotificationDraft,
    at: DateTime<Utc>,
) -> Result<Notification, Fail> {
    let seq = next_seq(tx).await?;
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
    exec(
        tx,
        "INSERT INTO notifications (user_id, seq, created_ms, seen, routed, queued_until_ms, body)
         VALUES ($1, $2, $3, false, false, $3, $4)",
        &[&user.as_str(), &seq, &ms(at), &Json(&n)],
    )
    .await?;
    Ok(n)
}

/// Stores outbox items whose idempotency keys are new; returns those stored.
pub(super) async fn put_outbox(tx: &Transaction<'_>, items: &[OutboxItem]) -> Result<Vec<OutboxItem>, Fail> {
    let mut stored = Vec::new();
    for item in items {
        let taken = row(tx, "SELECT 1 FROM outbox WHERE key = $1", &[&item.key]).await?;
        if taken.is_some() {
            continue;
        }
        let seq = next_seq(tx).await?;
        let mut item = item.clone();
        item.id = format!("o{seq}");
        insert_outbox(tx, seq, &item).await?;
        stored.push(item);
    }
    Ok(stored)
}

async fn insert_outbox(tx: &Transaction<'_>, seq: i64, item: &OutboxItem) -> Result<(), Fail> {
    exec(
        tx,
        "INSERT INTO outbox (seq, key, user_id, open, next_ms, created_ms, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &seq,
            &item.key,
            &item.user.as_str(),
            &item.is_open(),
            &ms(item.next_attempt_at),
            &ms(item.created_at),
            &Json(item),
        ],
    )
    .await?;
    Ok(())
}

/// Stores outbox items as they are, ids included (a migration).
pub(super) async fn load_outbox(tx: &Transaction<'_>, items: &[OutboxItem]) -> Result<(), Fail> {
    for item in items {
        let seq = seq_of(&item.id, 'o').ok_or_else(|| {
            Fail::Store(StoreError::Corrupt {
                tree: "snapshot",
                reason: format!("bad id {}", item.id),
            })
        })?;
        insert_outbox(tx, seq, item).await?;
    }
    Ok(())
}

fn notification_seq(id: &str) -> Result<i64, StoreError> {
    seq_of(id, 'n').ok_or_else(|| StoreError::Backend(format!("bad notification id {id}")))
}

#[async_trait]
impl NotificationStore for PostgresStore {
    async fn due_notifications(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(UserId, Notification)>, StoreError> {
        let client = self.client().await?;
        let found = rows(
            &client,
            "SELECT user_id, body FROM notifications WHERE queued_until_ms <= $1
             ORDER BY queued_until_ms, seq LIMIT $2",
            &[&ms(now), &big(limit)],
        )
        .await?;
        let mut out = Vec::new();
        for r in &found {
            let name: &str = r.try_get(0).map_err(Fail::from)?;
            let user = UserId::parse(name).map_err(|e| StoreError::Corrupt {
                tree: "notifications",
                reason: e.to_string(),
            })?;
            out.push((user, decode("notifications", r, "body")?));
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
        let seq = notification_seq(&notification.id)?;
        transact!(self, |tx| {
            let Some(found) = row(
                tx,
                "SELECT body, queued_until_ms IS NOT NULL FROM notifications WHERE user_id = $1 AND seq = $2 FOR UPDATE",
                &[&user.as_str(), &seq],
            )
            .await?
            else {
                return Ok(false);
            };
            let stored: Notification = decode("notifications", &found, "body")?;
            let queued: bool = found.try_get(1)?;
            if !queued || (stored.seen && !notification.seen) {
                return Ok(false);
            }
            if let Some(entry) = &transcript {
                exec(
                    tx,
                    "INSERT INTO messages (user_id, seq, body) VALUES ($1, nextval('record_seq'), $2)",
                    &[&user.as_str(), &Json(entry)],
                )
                .await?;
            }
            exec(
                tx,
                "UPDATE notifications SET body = $3, seen = $4, routed = $5, queued_until_ms = $6
                 WHERE user_id = $1 AND seq = $2",
                &[
                    &user.as_str(),
                    &seq,
                    &Json(notification),
                    &notification.seen,
                    &notification.routed.is_some(),
                    &defer_until.map(ms),
                ],
            )
            .await?;
            put_outbox(tx, &outbox).await?;
            Ok(true)
        })
    }

    async fn unseen_notifications(&self, user: &UserId, limit: usize) -> Result<Vec<Notification>, StoreError> {
        let client = self.client().await?;
        let found = rows(
            &client,
            "SELECT body FROM notifications WHERE user_id = $1 AND NOT seen ORDER BY seq DESC LIMIT $2",
            &[&user.as_str(), &big(limit)],
        )
        .await?;
        let mut out = found
            .iter()
            .map(|r| decode("notifications", r, "body").map_err(StoreError::from))
            .collect::<Result<Vec<Notification>, _>>()?;
        out.reverse();
        Ok(out)
    }

    async fn recent_notifications(&self, user: &UserId, limit: usize) -> Result<Vec<Notification>, StoreError> {
        let client = self.client().await?;
        let found = rows(
            &client,
            "SELECT body FROM notifications WHERE user_id = $1 ORDER BY seq DESC LIMIT $2",
            &[&user.as_str(), &big(limit)],
        )
        .await?;
        found
            .iter()
            .map(|r| decode("notifications", r, "body").map_err(StoreError::from))
            .collect()
    }

    async fn mark_seen(&self, user: &UserId, ids: &[String]) -> Result<(), StoreError> {
        let seqs: Vec<i64> = ids.iter().filter_map(|id| seq_of(id, 'n')).collect();
        if seqs.is_empty() {
            return Ok(());
        }
        transact!(self, |tx| {
            let found = rows(
                tx,
                "SELECT seq, body FROM notifications WHERE user_id = $1 AND seq = ANY($2) AND NOT seen FOR UPDATE",
                &[&user.as_str(), &seqs],
            )
            .await?;
            for r in &found {
                let seq: i64 = r.try_get(0)?;
                let mut n: Notification = decode("notifications", r, "body")?;
                n.seen = true;
                exec(
                    tx,
                    "UPDATE notifications SET seen = true, body = $3 WHERE user_id = $1 AND seq = $2",
                    &[&user.as_str(), &seq, &Json(&n)],
                )
                .await?;
            }
            Ok(())
        })
    }

    async fn enqueue(&self, items: Vec<OutboxItem>) -> Result<Vec<OutboxItem>, StoreError> {
        transact!(self, |tx| put_outbox(tx, &items).await)
    }

    async fn due_outbox(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        let client = self.client().await?;
        let found = rows(
            &client,
            "SELECT body FROM outbox WHERE open AND next_ms <= $1 ORDER BY next_ms, seq LIMIT $2",
            &[&ms(now), &big(limit)],
        )
        .await?;
        found
            .iter()
            .map(|r| decode("outbox", r, "body").map_err(StoreError::from))
            .collect()
    }

    async fn save_outbox(&self, item: &OutboxItem) -> Result<(), StoreError> {
        let seq = seq_of(&item.id, 'o').ok_or_else(|| StoreError::Backend(format!("bad outbox id {}", item.id)))?;
        transact!(self, |tx| {
            let changed = exec(
                tx,
                "UPDATE outbox SET open = $2, next_ms = $3, body = $4 WHERE seq = $1",
                &[&seq, &item.is_open(), &ms(item.next_attempt_at), &Json(item)],
            )
            .await?;
            if changed == 0 {
                return Err(Fail::Store(StoreError::Backend(format!(
                    "outbox item {} vanished",
                    item.id
                ))));
            }
            Ok(())
        })
    }

    async fn outbox_by_key(&self, key: &str) -> Result<Option<OutboxItem>, StoreError> {
        let client = self.client().await?;
        let found = row(&client, "SELECT body FROM outbox WHERE key = $1", &[&key]).await?;
        Ok(found.map(|r| decode("outbox", &r, "body")).transpose()?)
    }

    async fn outbox_backlog(&self) -> Result<Backlog, StoreError> {
        let client = self.client().await?;
        let found = row(
            &client,
            "SELECT count(*), min(created_ms) FROM (SELECT (extract(epoch FROM (body->>'created_at')::timestamptz) * 1000)::bigint AS created_ms FROM outbox WHERE open) o",
            &[],
        )
        .await?;
        let Some(found) = found else {
            return Ok(Backlog::default());
        };
        let open: i64 = found.try_get(0).map_err(Fail::from)?;
        let oldest: Option<i64> = found.try_get(1).map_err(Fail::from)?;
        Ok(Backlog {
            open: u64::try_from(open).unwrap_or(0),
            oldest: oldest.and_then(DateTime::from_timestamp_millis),
        })
    }

    async fn add_notification(
        &self,
        user: &UserId,
        draft: NotificationDraft,
        at: DateTime<Utc>,
    ) -> Result<Notification, StoreError> {
        transact!(self, |tx| insert_notification(tx, user, draft.clone(), at).await)
    }
}
