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
                Ok(prefs)
            })
            .await?;
        if let Some(address) = verify
            && last.is_none_or(|last| last.to != address)
        {
            self.send_verification(&s.user, &address, now).await?;
        }
        Ok(saved)
    }

    /// Changes the user's preferences with `change`, applied to what is
    /// stored at the moment of saving (an error from it: nothing is
    /// written), and arms the digest trigger they ask for, atomically. A
    /// save that another request or the scheduler's firing of the digest
    /// overtook is refused by the store, and `change` runs again on what is
    /// there now, so no concurrent change is lost and the new schedule is
    /// always armed.
    pub async fn change_preferences(
        &self,
        user: &UserId,
        mut change: impl FnMut(&Preferences) -> Result<Preferences, ServiceError> + Send,
    ) -> Result<SavedPreferences, ServiceError> {
        for _ in 0..SAVE_ATTEMPTS {
            let read = self.store().preferences(user).await?;
            let prefs = change(&read)?;
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
                return Ok(SavedPreferences { prefs, tz, digest });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::testing;
    use crate::store::{SledStore, Store};
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_change_overtaken_by_another_save_runs_again_on_what_that_save_left() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
        let service = testing::service(store.clone(), crate::clock::system());
        let ana = UserId::parse("ana").unwrap();
        store.ensure_user(&ana).await.unwrap();
        let mut calls = 0;
        let saved = service
            .change_preferences(&ana, |stored| {
                calls += 1;
                if calls == 1 {
                    // Another request saves between this read and the save.
                    let other = Preferences {
                        email: Some("ana@example.com".into()),
                        ..stored.clone()
                    };
                    tokio::task::block_in_place(|| {
                        tokio::runtime::Handle::current()
                            .block_on(store.save_preferences(&ana, stored, &other, None, None))
                    })
                    .unwrap();
                }
                let mut prefs = stored.clone();
                prefs.channels.email = false;
                Ok(prefs)
            })
            .await
            .unwrap();
        assert_eq!(calls, 2);
        // Both changes stand: the other request's address and this one's switch.
        let stored = store.preferences(&ana).await.unwrap();
        assert_eq!(stored.email.as_deref(), Some("ana@example.com"));
        assert!(!stored.channels.email);
        assert_eq!(saved.prefs, stored);
        // A refusal from the change writes nothing.
        let refused = service
            .change_preferences(&ana, |_| Err(Refusal::AddressChanged.into()))
            .await;
        assert!(matches!(refused, Err(ServiceError::Refused(Refusal::AddressChanged))));
        assert_eq!(store.preferences(&ana).await.unwrap(), stored);
    }
}
