//! Signed links: email verification, unsubscribe, the calendar feed. A
//! token is the user id and an HMAC-SHA256 over (purpose, user, bound
//! value) under a key kept in the store, so nothing per link is stored, a
//! token for one purpose is useless for another, and a verification link
//! dies when the address it was sent to changes.

use crate::user::UserId;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What a signed link  lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TokenPurpose {
    /// Confirms the address it was sent to.
    VerifyEmail,
    /// Turns email off for the user (List-Unsubscribe).
    Unsubscribe,
    /// Reads the user's calendar feed.
    Calendar,
    /// Acts on one step from a notification ("done", "snooze"), while the
    /// step is as it was when the link was made.
    StepAction,
}

/// What a notification's one-click link does to its step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepAction {
    Done,
    /// The due date a day later.
    Snooze,
}

impl StepAction {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            StepAction::Done => "done",
            StepAction::Snooze => "snooze",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<StepAction> {
        match text {
            "done" => Some(StepAction::Done),
            "snooze" => Some(StepAction::Snooze),
            _ => None,
        }
    }
}

/// Bytes of MAC kept in a token (144 bits).
const MAC_BYTES: usize = 18;

#[derive(Clone)]
pub(crate) struct Links {
    key: Vec<u8>,
    /// Where links point, without a trailing slash (`STEWARD_PUBLIC_URL`).
    pub(crate) base: String,
}

impl Links {
    pub(crate) fn new(key: Vec<u8>, base: &str) -> Links {
        Links {
            key,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    fn mac(&self, purpose: TokenPurpose, user: &UserId, bound: &str) -> HmacSha256 {
        // new_from_slice accepts keys of any length for HMAC.
        let mut mac =
            HmacSha256::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        let purpose = match purpose {
            TokenPurpose::VerifyEmail => "verify",
            TokenPurpose::Unsubscribe => "unsubscribe",
            TokenPurpose::Calendar => "calendar",
            TokenPurpose::StepAction => "step",
        };
        for part in [purpose, user.as_str(), bound] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    pub(crate) fn token(&self, purpose: TokenPurpose, user: &UserId, bound: &str) -> String {
        let tag = self.mac(purpose, user, bound).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(user.as_str()),
            URL_SAFE_NO_PAD.encode(&tag[..MAC_BYTES])
        )
    }

    /// The user a token claims to be for; check it with [`Links::check`].
    pub(crate) fn claimed_user(token: &str) -> Option<UserId> {
        let (user, _) = token.split_once('.')?;
        let bytes = URL_SAFE_NO_PAD.decode(user).ok()?;
        UserId::parse(std::str::from_utf8(&bytes).ok()?).ok()
    }

    /// Whether `token` was made by [`Links::token`] for these values
    /// (constant-time comparison).
    pub(crate) fn check(&self, purpose: TokenPurpose, token: &str, user: &UserId, bound: &str) -> bool {
        let Some((_, tag)) = token.split_once('.') else {
            return false;
        };
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
            return false;
        };
        tag.len() == MAC_BYTES && self.mac(purpose, user, bound).verify_truncated_left(&tag).is_ok()
    }

    /// A secret of this store for salting idempotency keys, derived from
    /// the link key (its own purpose, so it reveals nothing of links).
    pub(crate) fn idempotency_salt(&self) -> Vec<u8> {
        let mut mac =
            HmacSha256::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(b"steward idempotency-key salt");
        mac.finalize().into_bytes().to_vec()
    }

    pub(crate) fn widget(&self) -> String {
        format!("{}/", self.base)
    }

    pub(crate) fn verify_email(&self, user: &UserId, email: &str) -> String {
        format!(
            "{}/api/email/verify?token={}",
            self.base,
            self.token(TokenPurpose::VerifyEmail, user, email)
        )
    }

    pub(crate) fn unsubscribe(&self, user: &UserId) -> String {
        format!(
            "{}/api/email/unsubscribe?token={}",
            self.base,
            self.token(TokenPurpose::Unsubscribe, user, "")
        )
    }

    /// A one-click link acting on a step as it is now (`state`: its
    /// status and due time, so the link does nothing once the step moved
    /// on — after its first use too).
    pub(crate) fn step_action(&self, user: &UserId, plan: &str, step: &str, action: StepAction, state: &str) -> String {
        let bound = step_bound(plan, step, action, state);
        format!(
            "{}/act/{}/{plan}/{step}/{state}?token={}",
            self.base,
            action.as_str(),
            self.token(TokenPurpose::StepAction, user, &bound)
        )
    }

    /// Whether `token` is the user's link for this action on this step in
    /// this state.
    pub(crate) fn check_step_action(
        &self,
        token: &str,
        user: &UserId,
        (plan, step, action, state): (&str, &str, StepAction, &str),
    ) -> bool {
        self.check(
            TokenPurpose::StepAction,
            token,
            user,
            &step_bound(plan, step, action, state),
        )
    }

    pub(crate) fn calendar(&self, user: &UserId) -> String {
        format!(
            "{}/api/calendar/{}.ics",
            self.base,
            self.token(TokenPurpose::Calendar, user, "")
        )
    }
}

/// What a step link's token is bound to.
fn step_bound(plan: &str, step: &str, action: StepAction, state: &str) -> String {
    format!("{plan}|{step}|{}|{state}", action.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_bound_to_its_purpose_user_and_value() {
        let links = Links::new(b"k".repeat(32), "http://127.0.0.1:8080/");
        let ana = UserId::parse("ana").unwrap();
        let bob = UserId::parse("bob").unwrap();
        let t = links.token(TokenPurpose::VerifyEmail, &ana, "ana@example.com");
        assert_eq!(Links::claimed_user(&t), Some(ana.clone()));
        assert!(links.check(TokenPurpose::VerifyEmail, &t, &ana, "ana@example.com"));
        assert!(!links.check(TokenPurpose::VerifyEmail, &t, &ana, "other@example.com"));
        assert!(!links.check(TokenPurpose::Unsubscribe, &t, &ana, "ana@example.com"));
        assert!(!links.check(TokenPurpose::VerifyEmail, &t, &bob, "ana@example.com"));
        let other_key = Links::new(b"x".repeat(32), "http://h");
        assert!(!other_key.check(TokenPurpose::VerifyEmail, &t, &ana, "ana@example.com"));
        assert!(!links.check(TokenPurpose::VerifyEmail, "garbage", &ana, "ana@example.com"));
        assert!(
            links
                .unsubscribe(&ana)
                .starts_with("http://127.0.0.1:8080/api/email/unsubscribe?token=")
        );
    }
}
