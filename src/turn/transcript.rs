//! The conversation a turn reads and writes.

use super::Turns;
use crate::conversation::{self, Entry, Message, window};
use crate::store::{Flush, StoreError};
use crate::user::UserId;
use chrono_tz::Tz;

/// The conversation a turn works with, kept in step with the store: the
/// whole turns read once when the turn starts, then every entry this turn
/// writes, flushed and added here, so nothing is read back.
pub(super) struct Transcript<'a> {
    app: &'a Turns,
    user: &'a UserId,
    /// Whole earlier turns, oldest first.
    earlier: Vec<Vec<Entry>>,
    /// This turn's entries.
    current: Vec<Entry>,
}

/// Entries read first for a model turn: the window's turns and the one
/// leaving it fit in most conversations. The full `history_messages` are
/// read only when they do not (a turn with many tool calls).
const FIRST_READ: usize = 24;

impl<'a> Transcript<'a> {
    /// Reads the recent conversation. A model turn (`narrow`) reads
    /// [`FIRST_READ`] entries when they hold the window's turns, the turn
    /// to fold into the summary and one more (the oldest read may be cut);
    /// the offline engine, whose questions may reach further back, reads
    /// all `history_messages`.
    pub(super) async fn open(app: &'a Turns, user: &'a UserId, narrow: bool) -> Result<Transcript<'a>, StoreError> {
        let full = app.history.entries;
        let first = if narrow { FIRST_READ.min(full) } else { full };
        let mut entries = app.store.recent_messages(user, first).await?;
        let said = entries
            .iter()
            .filter(|e| matches!(e.message, Message::User { .. }))
            .count();
        if first < full && entries.len() == first && said < app.history.turns + 2 {
            entries = app.store.recent_messages(user, full).await?;
        }
        Ok(Transcript {
            app,
            user,
            earlier: window::turns(entries),
            current: Vec::new(),
        })
    }

    /// Stores what the user said or what steward answers, flushed: it is
    /// shown as soon as this returns.
    pub(super) async fn append(&mut self, message: Message) -> Result<(), StoreError> {
        self.write(message, Flush::Now).await
    }

    /// Stores a tool call or its result, to be flushed by the turn's next
    /// durable write (the tool's own change, or the reply): nothing is shown
    /// or acknowledged on its strength, and a turn whose reply was not
    /// flushed was never answered.
    pub(super) async fn note(&mut self, message: Message) -> Result<(), StoreError> {
        self.write(message, Flush::WithNextWrite).await
    }

    async fn write(&mut self, message: Message, flush: Flush) -> Result<(), StoreError> {
        let entry = Entry {
            at: self.app.service.now(),
            message,
        };
        self.app.store.append_message(self.user, &entry, flush).await?;
        self.current.push(entry);
        Ok(())
    }

    pub(super) async fn say(&mut self, text: &str) -> Result<(), StoreError> {
        self.append(Message::Assistant {
            text: text.to_owned(),
            tool_calls: vec![],
            notification: None,
        })
        .await
    }

    /// Everything read and written, for the offline engine (which replays
    /// answers to its questions from it).
    pub(super) fn messages(&self) -> Vec<Message> {
        let all = self.earlier.iter().flatten().chain(&self.current);
        conversation::repair(all.map(|e| e.message.clone()).collect())
    }

    /// Folds the turns older than the model's window into the user's
    /// running summary, stores it if it moved, and drops them from here.
    pub(super) async fn summarize(&mut self, zone: Tz) -> Result<Option<String>, StoreError> {
        let keep = self.app.history.turns;
        let older: Vec<Vec<Entry>> = self.earlier.drain(..self.earlier.len().saturating_sub(keep)).collect();
        let summary = self.app.store.summary(self.user).await?;
        let summary = match window::fold(&summary, &older, zone) {
            Some(next) => {
                self.app.store.save_summary(self.user, &next).await?;
                next
            }
            None => summary,
        };
        Ok(summary.text())
    }

    /// The window as the model reads it: the kept turns, this one whole.
    pub(super) fn for_model(&self) -> Vec<Message> {
        window::for_model(&self.earlier, &self.current)
    }
}
