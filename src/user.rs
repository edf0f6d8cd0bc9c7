//! Who is talking. A `UserId` is only ever built from an authenticated
//! connection (a verified token, or `?user=` in loopback dev mode), never from
//! a message field or a model's tool arguments.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("user ids are 1-64 characters from letters, digits, `.`, `_`, `@` and `-`")]
pub struct InvalidUserId;

impl UserId {
    pub fn parse(text: &str) -> Result<UserId, InvalidUserId> {
        let ok = (1..=64).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'));
        if ok {
            Ok(UserId(text.to_owned()))
        } else {
            Err(InvalidUserId)
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = InvalidUserId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        UserId::parse(&s)
    }
}

impl From<UserId> for String {
    fn from(u: UserId) -> String {
        u.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_accept_plain_names_and_refuse_everything_else() {
        for ok in ["ana", "ana.souza@example.com", "u_1-2", &"a".repeat(64)] {
            assert!(UserId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "ana/../bob", "ana\n", "ünï", &"a".repeat(65)] {
            assert_eq!(UserId::parse(bad), Err(InvalidUserId), "{bad:?}");
        }
    }
}
