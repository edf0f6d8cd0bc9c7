//! Users, preferences, push subscriptions and secrets on sled: the `users`
//! tree (name → fixed-width number) and, in the `notify` tree, `R`
//! preferences (user), `S` push subscriptions (user | endpoint hash), `U`
//! the owner of an endpoint (endpoint hash → user), `C` secrets. Saving
//! preferences re-arms the digest trigger (`timers` tree) atomically.

use super::triggers::{arm, by_id_key, disarm};
use super::{SledStore, backend, decode, enc, encode, finish, keys, ms};
use crate::notification::PushSubscription;
use crate::preferences::Preferences;
use crate::store::{AccountStore, StoreError};
use crate::triggers::Trigger;
use crate::user::UserId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keys::{decode_instant, tagged};
use sha2::{Digest, Sha256};
use sled::Transactional;

pub(super) const PREFS: u8 = b'R';
pub(super) const SUB: u8 = b'S';
pub(super) const SECRET: u8 = b'C';
/// endpoint hash → the user whose subscription it is (one owner at a time).
const SUB_OWNER: u8 = b'U';

fn sub_key(num: u64, endpoint: &str) -> Vec<u8> {
    let hash = Sha256::digest(endpoint.as_bytes());
    tagged(SUB, &[&num.to_be_bytes(), &hash[..16]])
}

fn sub_owner_key(endpoint: &str) -> Vec<u8> {
    let hash = Sha256::digest(endpoint.as_bytes());
    tagged(SUB_OWNER, &[&hash[..16]])
}

impl SledStore {
    /// Users holding `endpoint` in subscriptions stored before owners were
    /// recorded (key: SUB, user number, endpoint hash). Read only when an
    /// endpoint has no owner record yet, so the scan happens once each.
    fn legacy_subscribers(&self, endpoint: &str) -> Result<Vec<u64>, StoreError> {
        if self
            .inner
            .notify
            .contains_key(sub_owner_key(endpoint))
            .map_err(backend)?
        {
            return Ok(Vec::new());
        }
        let hash = Sha256::digest(endpoint.as_bytes());
        let mut users = Vec::new();
        for key in self.inner.notify.scan_prefix([SUB]).keys() {
            let key = key.map_err(backend)?;
            if key.len() == 1 + 8 + 16 && key[9..] == hash[..16] {
                users.extend(keys::decode_u64(&key[1..9]));
            }
        }
        Ok(users)
    }
}

#[cfg(test)]
impl SledStore {
    /// Overwrites the user's stored preferences with bytes that do not
    /// decode, so tests can make every read of them fail.
    /// Removes the user's stored preferences (the defaults apply again).
    pub(crate) fn forget_preferences(&self, user: &UserId) {
        let num = self.require_user(user).unwrap();
        self.inner.notify.remove(tagged(PREFS, &[&num.to_be_bytes()])).unwrap();
    }

    pub(crate) fn corrupt_preferences(&self, user: &UserId) {
        let num = self.require_user(user).unwrap();
        self.inner
            .notify
            .insert(tagged(PREFS, &[&num.to_be_bytes()]), &b"not json"[..])
            .unwrap();
    }
}

#[async_trait]
impl AccountStore for SledStore {
    async fn ensure_user(&self, user: &UserId) -> Result<(), StoreError> {
        if self.user_num(user)?.is_some() {
            return Ok(());
        }
        // generate_id is unique for the life of the database, even across
        // crashes (it may skip numbers, never repeat them).
        let num = self.inner.db.generate_id().map_err(backend)? + 1;
        let swapped = self
            .inner
            .users
            .compare_and_swap(user.as_str(), None as Option<&[u8]>, Some(&num.to_be_bytes()[..]))
            .map_err(backend)?;
        // Losing the race to another connection of the same user is fine:
        // their number stands.
        drop(swapped);
        self.durable().await
    }

    async fn preferences(&self, user: &UserId) -> Result<Preferences, StoreError> {
        let Some(num) = self.user_num(user)? else {
            return Ok(Preferences::default());
        };
        match self
            .inner
            .notify
            .get(tagged(PREFS, &[&num.to_be_bytes()]))
            .map_err(backend)?
        {
            Some(v) => decode("notify", &v),
            None => Ok(Preferences::default()),
        }
    }

    async fn save_preferences(
        &self,
        user: &UserId,
        read: &Preferences,
        prefs: &Preferences,
        armed: Option<DateTime<Utc>>,
        digest: Option<Trigger>,
    ) -> Result<bool, StoreError> {
        let num = self.require_user(user)?;
        let i = &self.inner;
        let key = tagged(PREFS, &[&num.to_be_bytes()]);
        let saved = finish((&i.timers, &i.notify).transaction(|(timers, notify)| {
            let current = timers.get(by_id_key(num, "digest"))?.and_then(|at| decode_instant(&at));
            if current != armed.map(ms) {
                return Ok(false);
            }
            // A record that does not decode equals nothing a caller read.
            let stored = match notify.get(&key)? {
                Some(bytes) => decode::<Preferences>("notify", &bytes).ok(),
                None => Some(Preferences::default()),
            };
            if stored.as_ref() != Some(read) {
                return Ok(false);
            }
            notify.insert(key.clone(), enc(prefs)?)?;
            disarm(timers, num, "digest")?;
            if let Some(t) = &digest {
                arm(timers, num, t)?;
            }
            Ok(true)
        }))?;
        if saved {
            self.durable().await?;
            self.wake();
        }
        Ok(saved)
    }

    async fn push_subscriptions(&self, user: &UserId) -> Result<Vec<PushSubscription>, StoreError> {
        let Some(num) = self.user_num(user)? else {
            return Ok(Vec::new());
        };
        self.inner
            .notify
            .scan_prefix(tagged(SUB, &[&num.to_be_bytes()]))
            .values()
            .map(|v| decode("notify", &v.map_err(backend)?))
            .collect()
    }

    async fn add_push_subscription(&self, user: &UserId, sub: &PushSubscription) -> Result<(), StoreError> {
        let num = self.require_user(user)?;
        let value = encode(sub)?;
        let legacy = self.legacy_subscribers(&sub.endpoint)?;
        // A browser's subscription belongs to whoever subscribed it last:
        // after another user signs in on that browser, the previous user's
        // notifications must not arrive there.
        finish(self.inner.notify.transaction(|notify| {
            let owner = sub_owner_key(&sub.endpoint);
            let previous = notify.insert(owner.clone(), &num.to_be_bytes()[..])?;
            let previous: Vec<u64> = match previous {
                Some(bytes) => keys::decode_u64(&bytes).into_iter().collect(),
                // Stored before owners were recorded: any user may hold it.
                None => legacy.clone(),
            };
            for other in previous.into_iter().filter(|&n| n != num) {
                notify.remove(sub_key(other, &sub.endpoint))?;
            }
            notify.insert(sub_key(num, &sub.endpoint), value.clone())?;
            Ok(())
        }))?;
        self.durable().await
    }

    async fn remove_push_subscription(&self, user: &UserId, endpoint: &str) -> Result<(), StoreError> {
        let Some(num) = self.user_num(user)? else {
            return Ok(());
        };
        finish(self.inner.notify.transaction(|notify| {
            notify.remove(sub_key(num, endpoint))?;
            let owner = sub_owner_key(endpoint);
            if notify.get(&owner)?.and_then(|v| keys::decode_u64(&v)) == Some(num) {
                notify.remove(owner)?;
            }
            Ok(())
        }))?;
        self.durable().await
    }

    async fn secret(&self, name: &str, init: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let key = tagged(SECRET, &[name.as_bytes()]);
        let notify = &self.inner.notify;
        // compare_and_swap: two first users racing keep one secret.
        let _ = notify
            .compare_and_swap(&key, None as Option<&[u8]>, Some(init))
            .map_err(backend)?;
        self.durable().await?;
        match notify.get(&key).map_err(backend)? {
            Some(v) => Ok(v.to_vec()),
            None => Err(StoreError::Backend(format!("secret {name} vanished"))),
        }
    }

    async fn users(&self) -> Result<Vec<UserId>, StoreError> {
        self.inner
            .users
            .iter()
            .keys()
            .map(|k| {
                let k = k.map_err(backend)?;
                UserId::parse(&String::from_utf8_lossy(&k)).map_err(|e| StoreError::Corrupt {
                    tree: "users",
                    reason: e.to_string(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_subscription_stored_before_owners_were_recorded_moves_to_the_new_subscriber() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let (ann, bob) = (UserId::parse("ann").unwrap(), UserId::parse("bob").unwrap());
        store.ensure_user(&ann).await.unwrap();
        store.ensure_user(&bob).await.unwrap();
        let sub = PushSubscription {
            endpoint: "https://push.example/shared".into(),
            p256dh: "k".into(),
            auth: "a".into(),
        };
        // As an older steward stored it: the user's row, no owner row.
        let ann_num = store.require_user(&ann).unwrap();
        store
            .inner
            .notify
            .insert(sub_key(ann_num, &sub.endpoint), encode(&sub).unwrap())
            .unwrap();
        assert_eq!(store.push_subscriptions(&ann).await.unwrap().len(), 1);
        store.add_push_subscription(&bob, &sub).await.unwrap();
        assert!(store.push_subscriptions(&ann).await.unwrap().is_empty());
        assert_eq!(store.push_subscriptions(&bob).await.unwrap(), vec![sub]);
    }
}
