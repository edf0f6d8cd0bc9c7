//! The source of "now". Everything that needs the time takes a [`Clock`]
//! instead of calling `Utc::now()`, so tests run a simulated year in a
//! second and the scheduler's decisions can be reproduced.

use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Returns the current instant; cheap to clone and share.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The wall clock.
pub fn system() -> Clock {
    Arc::new(Utc::now)
}

/// A clock tests move by hand.
#[cfg(any(test, feature = "test-util"))]
#[derive(Clone)]
pub struct ManualClock(Arc<std::sync::Mutex<DateTime<Utc>>>);

#[cfg(any(test, feature = "test-util"))]
impl ManualClock {
    /// A clock stopped at `start` (RFC 3339).
    ///
    /// # Panics
    /// If `start` is not RFC 3339 (a test's own typo).
    #[allow(clippy::expect_used)]
    pub fn at(start: &str) -> ManualClock {
        let start = DateTime::parse_from_rfc3339(start).expect("RFC 3339 start time");
        ManualClock(Arc::new(std::sync::Mutex::new(start.with_timezone(&Utc))))
    }

    pub fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = t;
    }

    pub fn advance(&self, d: chrono::Duration) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *now += d;
    }

    pub fn clock(&self) -> Clock {
        let me = self.clone();
        Arc::new(move || me.now())
    }
}
