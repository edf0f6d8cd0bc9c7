//! The transcript on PostgreSQL: `messages`, numbered from the database's
//! record sequence, so a user's entries read back in the order written;
//! the running summary is a column of the user's row.

use super::{PostgresStore, big, decode, exec, row, rows};
use crate::conversation::Entry;
use crate::conversation::window::Summary;
use crate::store::{ConversationStore, Flush, StoreError};
use crate::user::UserId;
use async_trait::async_trait;
use tokio_postgres::types::Json;

#[async_trait]
impl ConversationStore for PostgresStore {
    /// Each entry is its own synchronous commit, whatever `flush` asks: a
    /// commit is PostgreSQL's unit of durability, and an entry appended for
    /// the next write is then on disk early, which is allowed.
    async fn append_message(&self, user: &UserId, entry: &Entry, _flush: Flush) -> Result<(), StoreError> {
        let client = self.client().await?;
        exec(
            &client,
            "INSERT INTO messages (user_id, seq, body) VALUES ($1, nextval('record_seq'), $2)",
            &[&user.as_str(), &Json(entry)],
        )
        .await?;
        Ok(())
    }

    async fn recent_messages(&self, user: &UserId, limit: usize) -> Result<Vec<Entry>, StoreError> {
        let client = self.client().await?;
        let found = rows(
            &client,
            "SELECT body FROM messages WHERE user_id = $1 ORDER BY seq DESC LIMIT $2",
            &[&user.as_str(), &big(limit)],
        )
        .await?;
        let mut out = found
            .iter()
            .map(|r| decode("messages", r, "body").map_err(StoreError::from))
            .collect::<Result<Vec<Entry>, _>>()?;
        out.reverse();
        Ok(out)
    }

    async fn summary(&self, user: &UserId) -> Result<Summary, StoreError> {
        let client = self.client().await?;
        let found = row(
            &client,
            "SELECT summary FROM users WHERE user_id = $1 AND summary IS NOT NULL",
            &[&user.as_str()],
        )
        .await?;
        match found {
            Some(r) => Ok(decode("users", &r, "summary")?),
            None => Ok(Summary::default()),
        }
    }

    async fn save_summary(&self, user: &UserId, summary: &Summary) -> Result<(), StoreError> {
        let client = self.client().await?;
        let changed = exec(
            &client,
            "UPDATE users SET summary = $2 WHERE user_id = $1",
            &[&user.as_str(), &Json(summary)],
        )
        .await?;
        if changed == 0 {
            return Err(StoreError::Backend(format!("user {user} was never registered")));
        }
        Ok(())
    }
}
