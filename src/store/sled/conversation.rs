//! The transcript on sled: one `messages` tree keyed by user and a
//! database-wide sequence, so a user's entries scan in the order written.

use super::{SledStore, backend, decode, encode, keys};
use crate::conversation::Entry;
use crate::conversation::window::Summary;
use crate::store::{ConversationStore, Flush, StoreError};
use crate::user::UserId;
use async_trait::async_trait;

#[async_trait]
impl ConversationStore for SledStore {
    async fn append_message(&self, user: &UserId, entry: &Entry, flush: Flush) -> Result<(), StoreError> {
        let num = self.require_user(user)?;
        let seq = self.inner.db.generate_id().map_err(backend)?;
        self.inner
            .messages
            .insert(keys::message(num, seq), encode(entry)?)
            .map_err(backend)?;
        match flush {
            Flush::Now => self.durable().await,
            // sled's flush writes every tree: the next durable write covers it.
            Flush::WithNextWrite => Ok(()),
        }
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

    async fn summary(&self, user: &UserId) -> Result<Summary, StoreError> {
        let Some(num) = self.user_num(user)? else {
            return Ok(Summary::default());
        };
        match self.inner.meta.get(keys::summary(num)).map_err(backend)? {
            Some(bytes) => decode("meta", &bytes),
            None => Ok(Summary::default()),
        }
    }

    async fn save_summary(&self, user: &UserId, summary: &Summary) -> Result<(), StoreError> {
        let num = self.require_user(user)?;
        self.inner
            .meta
            .insert(keys::summary(num), encode(summary)?)
            .map_err(backend)?;
        // Derived data: the turn's reply (or any later durable write) flushes it.
        Ok(())
    }
}
