//! Preferences: one partial update for REST and the chat, checked whole
//! before anything is written; saving re-arms the digest in the same
//! transaction; a new address gets a verification email (at most one per
//! user per ten minutes, whatever the address: the server is not a way to
//! mail strangers).

use super::{Refusal, Service, ServiceError, Session};
use crate::notification::{OutboxItem, Payload};
use crate::preferences::{self, Preferences, Update};
use crate::store::StoreError;
use crate::triggers::Trigger;
use crate::user::UserId;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// Attempts at saving preferences while other requests of the same user,
/// or the scheduler firing the digest, keep changing them in between.
const SAVE_ATTEMPTS: usize = 5;

/// At most one verification email per user per this long.
const VERIFY_INTERVAL: chrono::Duration = chrono::Duration::minutes(10);

/// Preferences as saved.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedPreferences {
    pub prefs: Preferences,
    /// The user's time zone under them.
    pub tz: Tz,
    /// The digest trigger now armed, if any.
    pub digest: Option<Trigger>,
}

/// A verification email sent less than [`VERIFY_INTERVAL`] ago.
struct Verification {
    to: String,
    at: DateTime<Utc>,
}

/// Verification rows are keyed by user and ten-minute slot; one sent in
/// the last ten minutes is in this slot or the one before.
fn verify_key(user: &UserId, slot: i64) -> String {
    format!("verify:{user}:{slot}")
}

fn verify_slot(at: DateTime<Utc>) -> i64 {
    at.timestamp() / VERIFY_INTERVAL.num_seconds()
}

impl Service {
    pub(crate) async fn preferences(&self, user: &UserId) -> Result<Preferences, StoreError> {
        self.store().preferences(user).await
    }

    /// Applies a partial update (validated whole before anything is
    /// written) to the preferences as stored when it is saved; a new or
    /// still unverified address gets a verification link.
    pub(crate) async fn update_preferences(
        &self,
        s: &Session,
        update: Update,
    ) -> Result<SavedPreferences, ServiceError> {
        let current = self.store().preferences(&s.user).await?;
        let (_, verify) = preferences::apply(&current, update.clone()).map_err(Refusal::from)?;
        let now = self.now();
        let last = match &verify {
            Some(_) => self.last_verification(&s.user, now).await?,
            None => None,
        };
        if let (Some(address), Some(last)) = (&verify, &last)
            // Sent to this very address a moment ago: that link still works.
            && last.to != *address
        {
            let retry_after = (last.at + VERIFY_INTERVAL - now).to_std().unwrap_or_default();
            return Err(Refusal::VerificationRateLimited { retry_after }.into());
        }
        let mut verify = None;
        let saved = self
            .change_preferences(&s.user, |stored| {
                let (prefs, address) = preferences::apply(stored, update.clone()).map_err(Refusal::from)?;
                verify = address;
                Ok(Some(prefs))
            })
            .await?;
        let Some(saved) = saved else {
            return Err(StoreError::Backend("the preferences update was dropped".into()).into());
        };
        if let Some(address) = verify
            && last.is_none_or(|last| last.to != address)
        {
            self.send_verification(&s.user, &address, now).await?;
        }
        Ok(saved)
    }

    /// Changes the user's preferences with `change`, applied to what is
    /// stored at the moment of saving (`Ok(None)` from it: leave them as
    /// they are), and arms the digest trigger they ask for, atomically. A
    /// save that another request or the scheduler's firing of the digest
    /// overtook is refused by the store, and `change` runs again on what is
    /// there now, so no concurrent change is lost and the new schedule is
    /// always armed. `None`: `change` left them as they were.
    pub async fn change_preferences(
        &self,
        user: &UserId,
        mut change: impl FnMut(&Preferences) -> Result<Option<Preferences>, ServiceError> + Send,
    ) -> Result<Option<SavedPreferences>, ServiceError> {
        for _ in 0..SAVE_ATTEMPTS {
            let read = self.store().preferences(user).await?;
            let Some(prefs) = change(&read)? else {
                return Ok(None);
            };
            let tz = prefs.tz(self.rules().default_tz);
            let now = self.now();
            let armed = self
                .store()
                .user_triggers(user)
                .await?
                .into_iter()
                .find(|t| t.id == "digest")
                .map(|t| t.fire_at);
            let digest = prefs.rearmed_digest(user, tz, armed, now);
            if self
                .store()
                .save_preferences(user, &read, &prefs, armed, digest.clone())
                .await?
            {
                return Ok(Some(SavedPreferences { prefs, tz, digest }));
            }
            tracing::debug!(user_id = %user, "preferences or the digest changed while saving; applying the change again");
        }
        Err(StoreError::Backend("the preferences kept changing while they were saved; try again".into()).into())
    }

    async fn last_verification(&self, user: &UserId, now: DateTime<Utc>) -> Result<Option<Verification>, StoreError> {
        let slot = verify_slot(now);
        let mut last: Option<Verification> = None;
        for key in [verify_key(user, slot), verify_key(user, slot - 1)] {
            if let Some(item) = self.store().outbox_by_key(&key).await?
                && let Payload::Email(email) = item.payload
                && now - item.created_at < VERIFY_INTERVAL
                && last.as_ref().is_none_or(|l| l.at < item.created_at)
            {
                last = Some(Verification {
                    to: email.to,
                    at: item.created_at,
                });
            }
        }
        Ok(last)
    }

    /// Queues a verification email (the caller checked the interval). A
    /// concurrent request may have queued this slot's email first: then
    /// that one goes out, never two.
    async fn send_verification(&self, user: &UserId, address: &str, now: DateTime<Utc>) -> Result<(), ServiceError> {
        let mailing = &self.inner.mailing;
        let slot = verify_slot(now);
        let message_id = format!(
            "<verify.{slot}.{}@{}>",
            user.as_str().replace('@', "="),
            mailing.mail.domain
        );
        let link = mailing.links.verify_email(user, address);
        let email = mailing.mail.verification(address, &link, message_id)?;
        let item = OutboxItem::new(user, verify_key(user, slot), Payload::Email(email), now);
        self.store().enqueue(vec![item]).await?;
        self.wake_notifier();
        Ok(())
    }
}
