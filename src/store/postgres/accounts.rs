//! Users, preferences, push subscriptions and secrets on PostgreSQL: the
//! `users` row (preferences are a column), `push_subscriptions` (keyed by
//! endpoint, so an endpoint has one owner: whoever subscribed it last),
//! `secrets`. Saving preferences re-arms the digest trigger atomically.

use super::triggers::{arm, disarm};
use super::{Fail, PostgresStore, decode, exec, ms, row, rows, transact};
use crate::notification::PushSubscription;
use crate::preferences::Preferences;
use crate::store::{AccountStore, StoreError};
use crate::triggers::Trigger;
use crate::user::UserId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::types::Json;

#[async_trait]
impl AccountStore for PostgresStore {
    async fn ensure_user(&self, user: &UserId) -> Result<(), StoreError> {
        let client = self.client().await?;
        exec(
            &client,
            "INSERT INTO users (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING",
            &[&user.as_str()],
        )
        .await?;
        Ok(())
    }

    async fn users(&self) -> Result<Vec<UserId>, StoreError> {
        let client = self.client().await?;
        let found = rows(&client, "SELECT user_id FROM users ORDER BY user_id", &[]).await?;
        found
            .iter()
            .map(|r| {
                let name: &str = r.try_get(0).map_err(Fail::from)?;
                UserId::parse(name).map_err(|e| StoreError::Corrupt {
                    tree: "users",
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    async fn preferences(&self, user: &UserId) -> Result<Preferences, StoreError> {
        let client = self.client().await?;
        let found = row(
            &client,
            "SELECT prefs FROM users WHERE user_id = $1 AND prefs IS NOT NULL",
            &[&user.as_str()],
        )
        .await?;
        match found {
            Some(r) => Ok(decode("users", &r, "prefs")?),
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
        let saved = transact!(self, |tx| {
            let Some(found) = row(
                tx,
                "SELECT prefs FROM users WHERE user_id = $1 FOR UPDATE",
                &[&user.as_str()],
            )
            .await?
            else {
                return Err(Fail::Store(StoreError::Backend(format!(
                    "user {user} was never registered"
                ))));
            };
            let current: Option<i64> = row(
                tx,
                "SELECT fire_ms FROM triggers WHERE user_id = $1 AND id = 'digest' FOR UPDATE",
                &[&user.as_str()],
            )
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
            if current != armed.map(ms) {
                return Ok(false);
            }
            // A record that does not decode equals nothing a caller read.
            let stored: Option<Json<serde_json::Value>> = found.try_get(0)?;
            let stored = match stored {
                Some(Json(value)) => serde_json::from_value::<Preferences>(value).ok(),
                None => Some(Preferences::default()),
            };
            if stored.as_ref() != Some(read) {
                return Ok(false);
            }
            exec(
                tx,
                "UPDATE users SET prefs = $2 WHERE user_id = $1",
                &[&user.as_str(), &Json(prefs)],
            )
            .await?;
            disarm(tx, user, "digest").await?;
            if let Some(t) = &digest {
                arm(tx, t, None).await?;
            }
            Ok(true)
        })?;
        if saved {
            self.wake();
        }
        Ok(saved)
    }

    async fn push_subscriptions(&self, user: &UserId) -> Result<Vec<PushSubscription>, StoreError> {
        let client = self.client().await?;
        let found = rows(
            &client,
            "SELECT body FROM push_subscriptions WHERE user_id = $1 ORDER BY endpoint",
            &[&user.as_str()],
        )
        .await?;
        found
            .iter()
            .map(|r| decode("push_subscriptions", r, "body").map_err(StoreError::from))
            .collect()
    }

    async fn add_push_subscription(&self, user: &UserId, sub: &PushSubscription) -> Result<(), StoreError> {
        // A browser's subscription belongs to whoever subscribed it last:
        // after another user signs in on that browser, the previous user's
        // notifications must not arrive there.
        transact!(self, |tx| {
            exec(
                tx,
                "INSERT INTO push_subscriptions (endpoint, user_id, body) VALUES ($1, $2, $3)
                 ON CONFLICT (endpoint) DO UPDATE SET user_id = EXCLUDED.user_id, body = EXCLUDED.body",
                &[&sub.endpoint, &user.as_str(), &Json(sub)],
            )
            .await
        })?;
        Ok(())
    }

    async fn remove_push_subscription(&self, user: &UserId, endpoint: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        exec(
            &client,
            "DELETE FROM push_subscriptions WHERE user_id = $1 AND endpoint = $2",
            &[&user.as_str(), &endpoint],
        )
        .await?;
        Ok(())
    }

    async fn secret(&self, name: &str, init: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let client = self.client().await?;
        // Two first users racing keep one secret.
        exec(
            &client,
            "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&name, &init],
        )
        .await?;
        match row(&client, "SELECT value FROM secrets WHERE name = $1", &[&name]).await? {
            Some(r) => Ok(r.try_get(0).map_err(Fail::from)?),
            None => Err(StoreError::Backend(format!("secret {name} vanished"))),
        }
    }
}
