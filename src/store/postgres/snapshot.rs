//! Reads every record as a typed [`Snapshot`], and loads one into an empty
//! database in a single transaction (`steward migrate`): nothing is
//! half-loaded, and the record sequence is moved past every number loaded.

use super::{Fail, PostgresStore, big, decode, decode_opt, exec, from_ms, ms, rows, seq_of};
use crate::store::StoreError;
use crate::store::snapshot::{
    ArmedTrigger, FiredTrigger, InboxRecord, MessageRecord, ReplanCount, Snapshot, UserRecord,
};
use crate::triggers::Outcome;
use crate::user::UserId;
use deadpool_postgres::Transaction;
use tokio_postgres::Row;
use tokio_postgres::types::Json;

fn user_of(row: &Row, column: &str) -> Result<UserId, Fail> {
    let name: &str = row.try_get(column)?;
    UserId::parse(name).map_err(|e| {
        Fail::Store(StoreError::Corrupt {
            tree: "users",
            reason: e.to_string(),
        })
    })
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

/// The number in a stored id ("n12" → 12); a malformed one is corrupt.
fn seq_in(id: &str, prefix: char) -> Result<i64, Fail> {
    seq_of(id, prefix).ok_or_else(|| {
        Fail::Store(StoreError::Corrupt {
            tree: "snapshot",
            reason: format!("bad id {id}"),
        })
    })
}

impl PostgresStore {
    /// Every record, typed and grouped by family, read in one transaction
    /// (one snapshot of the database, whatever is written meanwhile).
    // Long: one query per table, each turned into its family's records.
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut client = self.client().await?;
        let tx = self.begin(&mut client).await?;
        let read = async {
            let mut s = Snapshot::default();
            for r in rows(&tx, "SELECT * FROM users ORDER BY user_id", &[]).await? {
                let cursor: Option<i64> = r.try_get("digest_cursor_ms")?;
                s.users.push(UserRecord {
                    user: user_of(&r, "user_id")?,
                    plan_seq: unsigned(r.try_get("plan_seq")?),
                    proposal_seq: unsigned(r.try_get("proposal_seq")?),
                    preferences: decode_opt("users", &r, "prefs")?,
                    summary: decode_opt("users", &r, "summary")?,
                    digest_cursor: cursor.map(|c| from_ms("users", c)).transpose()?,
                });
            }
            for r in rows(&tx, "SELECT user_id, body FROM plans", &[]).await? {
                s.plans.push((user_of(&r, "user_id")?, decode("plans", &r, "body")?));
            }
            for r in rows(&tx, "SELECT user_id, plan_id, body FROM plan_history", &[]).await? {
                let plan: i64 = r.try_get("plan_id")?;
                s.history.push((
                    user_of(&r, "user_id")?,
                    crate::plan::PlanId(unsigned(plan)),
                    decode("plan_history", &r, "body")?,
                ));
            }
            for r in rows(&tx, "SELECT user_id, body FROM proposals", &[]).await? {
                s.proposals
                    .push((user_of(&r, "user_id")?, decode("proposals", &r, "body")?));
            }
            for r in rows(&tx, "SELECT user_id, seq, body FROM messages", &[]).await? {
                s.messages.push(MessageRecord {
                    user: user_of(&r, "user_id")?,
                    seq: unsigned(r.try_get("seq")?),
                    entry: decode("messages", &r, "body")?,
                });
            }
            for r in rows(&tx, "SELECT plan_id, body FROM triggers", &[]).await? {
                let plan: Option<i64> = r.try_get("plan_id")?;
                s.triggers.push(ArmedTrigger {
                    trigger: decode("triggers", &r, "body")?,
                    plan: plan.map(|p| crate::plan::PlanId(unsigned(p))),
                });
            }
            for r in rows(&tx, "SELECT body FROM fired", &[]).await? {
                s.fired.push(decode::<FiredTrigger>("fired", &r, "body")?);
            }
            for r in rows(&tx, "SELECT user_id, queued_until_ms, body FROM notifications", &[]).await? {
                let queued: Option<i64> = r.try_get("queued_until_ms")?;
                s.notifications.push(InboxRecord {
                    user: user_of(&r, "user_id")?,
                    notification: decode("notifications", &r, "body")?,
                    queued_until: queued.map(|q| from_ms("notifications", q)).transpose()?,
                });
            }
            for r in rows(&tx, "SELECT body FROM outbox", &[]).await? {
                s.outbox.push(decode("outbox", &r, "body")?);
            }
            for r in rows(&tx, "SELECT user_id, body FROM push_subscriptions", &[]).await? {
                s.subscriptions
                    .push((user_of(&r, "user_id")?, decode("push_subscriptions", &r, "body")?));
            }
            for r in rows(&tx, "SELECT name, value FROM secrets", &[]).await? {
                s.secrets.push((r.try_get("name")?, r.try_get("value")?));
            }
            for r in rows(&tx, "SELECT body FROM work", &[]).await? {
                s.work.push(decode("work", &r, "body")?);
            }
            for r in rows(&tx, "SELECT body FROM attempts", &[]).await? {
                s.attempts.push(decode("attempts", &r, "body")?);
            }
            for r in rows(&tx, "SELECT user_id, plan_id, count FROM replans", &[]).await? {
                let (plan, count): (i64, i64) = (r.try_get("plan_id")?, r.try_get("count")?);
                s.replans.push(ReplanCount {
                    user: user_of(&r, "user_id")?,
                    plan: crate::plan::PlanId(unsigned(plan)),
                    count: u32::try_from(count).unwrap_or(u32::MAX),
                });
            }
            for r in rows(&tx, "SELECT user_id, body FROM calendar_events", &[]).await? {
                s.events
                    .push((user_of(&r, "user_id")?, decode("calendar_events", &r, "body")?));
            }
            Ok::<_, Fail>(s)
        };
        Ok(read.await?)
    }

    /// Loads `snapshot` into this database, which must hold no user yet,
    /// in one transaction.
    pub async fn load(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| super::pg_error(&e))?;
        let taken = rows(&tx, "SELECT 1 FROM users LIMIT 1", &[]).await?;
        if !taken.is_empty() {
            return Err(StoreError::Backend(
                "the database already holds users: migrate into an empty database".into(),
            ));
        }
        load_users(&tx, snapshot).await?;
        load_records(&tx, snapshot).await?;
        let highest = snapshot
            .messages
            .iter()
            .map(|m| big(m.seq))
            // The ids were checked as their rows went in.
            .chain(
                snapshot
                    .notifications
                    .iter()
                    .filter_map(|n| seq_of(&n.notification.id, 'n')),
            )
            .chain(snapshot.outbox.iter().filter_map(|o| seq_of(&o.id, 'o')))
            .max()
            .unwrap_or(0);
        if highest > 0 {
            exec(&tx, "SELECT setval('record_seq', $1)", &[&highest]).await?;
        }
        tx.commit().await.map_err(|e| super::pg_error(&e))?;
        self.wake();
        Ok(())
    }
}

async fn load_users(tx: &Transaction<'_>, s: &Snapshot) -> Result<(), Fail> {
    for u in &s.users {
        exec(
            tx,
            "INSERT INTO users (user_id, plan_seq, proposal_seq, prefs, summary, digest_cursor_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &u.user.as_str(),
                &big(u.plan_seq),
                &big(u.proposal_seq),
                &u.preferences.as_ref().map(Json),
                &u.summary.as_ref().map(Json),
                &u.digest_cursor.map(ms),
            ],
        )
        .await?;
    }
    Ok(())
}

// Long: one insert per family, in the order the foreign keys need.
async fn load_records(tx: &Transaction<'_>, s: &Snapshot) -> Result<(), Fail> {
    for (user, plan) in &s.plans {
        exec(
            tx,
            "INSERT INTO plans (user_id, plan_id, version, body) VALUES ($1, $2, $3, $4)",
            &[&user.as_str(), &big(plan.id.0), &big(plan.version), &Json(plan)],
        )
        .await?;
    }
    for (user, plan, entry) in &s.history {
        exec(
            tx,
            "INSERT INTO plan_history (user_id, plan_id, version, body) VALUES ($1, $2, $3, $4)",
            &[&user.as_str(), &big(plan.0), &big(entry.version), &Json(entry)],
        )
        .await?;
    }
    for (user, p) in &s.proposals {
        exec(
            tx,
            "INSERT INTO proposals (user_id, seq, open, body) VALUES ($1, $2, $3, $4)",
            &[
                &user.as_str(),
                &seq_in(&p.id, 'r')?,
                &(p.status == crate::proposal::ProposalStatus::Open),
                &Json(p),
            ],
        )
        .await?;
    }
    for m in &s.messages {
        exec(
            tx,
            "INSERT INTO messages (user_id, seq, body) VALUES ($1, $2, $3)",
            &[&m.user.as_str(), &big(m.seq), &Json(&m.entry)],
        )
        .await?;
    }
    for t in &s.triggers {
        exec(
            tx,
            "INSERT INTO triggers (user_id, id, fire_ms, plan_id, body) VALUES ($1, $2, $3, $4, $5)",
            &[
                &t.trigger.user.as_str(),
                &t.trigger.id,
                &ms(t.trigger.fire_at),
                &t.plan.map(|p| big(p.0)),
                &Json(&t.trigger),
            ],
        )
        .await?;
    }
    for f in &s.fired {
        exec(
            tx,
            "INSERT INTO fired (user_id, id, fire_ms, at_ms, missed, body) VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &f.trigger.user.as_str(),
                &f.trigger.id,
                &ms(f.trigger.fire_at),
                &ms(f.at),
                &(f.outcome == Outcome::Missed),
                &Json(f),
            ],
        )
        .await?;
    }
    for n in &s.notifications {
        let note = &n.notification;
        exec(
            tx,
            "INSERT INTO notifications (user_id, seq, created_ms, seen, routed, queued_until_ms, body)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &n.user.as_str(),
                &seq_in(&note.id, 'n')?,
                &ms(note.created_at),
                &note.seen,
                &note.routed.is_some(),
                &n.queued_until.map(ms),
                &Json(note),
            ],
        )
        .await?;
    }
    super::notifications::load_outbox(tx, &s.outbox).await?;
    for (user, sub) in &s.subscriptions {
        exec(
            tx,
            "INSERT INTO push_subscriptions (endpoint, user_id, body) VALUES ($1, $2, $3)",
            &[&sub.endpoint, &user.as_str(), &Json(sub)],
        )
        .await?;
    }
    for (name, value) in &s.secrets {
        exec(tx, "INSERT INTO secrets (name, value) VALUES ($1, $2)", &[name, value]).await?;
    }
    for w in &s.work {
        exec(
            tx,
            "INSERT INTO work (user_id, plan_id, step_id, at_ms, body) VALUES ($1, $2, $3, $4, $5)",
            &[&w.user.as_str(), &big(w.plan_id.0), &w.step_id, &ms(w.at), &Json(w)],
        )
        .await?;
    }
    for a in &s.attempts {
        exec(
            tx,
            "INSERT INTO attempts (user_id, plan_id, step_id, epoch, settled, next_try_ms, body)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &a.user.as_str(),
                &big(a.plan_id.0),
                &a.step_id,
                &i64::from(a.epoch),
                &a.settled,
                &ms(a.next_try_at),
                &Json(a),
            ],
        )
        .await?;
    }
    for r in &s.replans {
        exec(
            tx,
            "INSERT INTO replans (user_id, plan_id, count) VALUES ($1, $2, $3)",
            &[&r.user.as_str(), &big(r.plan.0), &i64::from(r.count)],
        )
        .await?;
    }
    for (user, e) in &s.events {
        exec(
            tx,
            "INSERT INTO calendar_events (user_id, key, starts_ms, body) VALUES ($1, $2, $3, $4)",
            &[&user.as_str(), &e.key, &ms(e.starts), &Json(e)],
        )
        .await?;
    }
    Ok(())
}
