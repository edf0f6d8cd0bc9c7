//! Leases and token buckets kept in memory, for a store that one process
//! holds alone (sled). PostgreSQL does the same bucket arithmetic in SQL
//! (`postgres::leases`); both pass the same conformance case.

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// A token bucket: `tokens` left at `at`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bucket {
    tokens: f64,
    at: DateTime<Utc>,
}

impl Bucket {
    /// A full bucket.
    fn full(per_minute: u32, now: DateTime<Utc>) -> Bucket {
        Bucket {
            tokens: f64::from(per_minute),
            at: now,
        }
    }

    /// The bucket refilled up to `now` (a clock that went back refills
    /// nothing).
    fn refilled(self, per_minute: u32, now: DateTime<Utc>) -> Bucket {
        let rate = f64::from(per_minute);
        let elapsed = (now - self.at).num_milliseconds().max(0) as f64 / 1000.0;
        Bucket {
            tokens: (self.tokens + elapsed * rate / 60.0).min(rate),
            at: now.max(self.at),
        }
    }

    /// Takes one token: the bucket afterwards, and `Err` with the wait for
    /// the next token when there was none (the bucket is refilled either way).
    fn take(self, per_minute: u32, now: DateTime<Utc>) -> (Bucket, Result<(), Duration>) {
        let mut b = self.refilled(per_minute, now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            (b, Ok(()))
        } else {
            let wait = (1.0 - b.tokens) * 60.0 / f64::from(per_minute.max(1));
            (b, Err(Duration::from_secs_f64(wait)))
        }
    }

    /// Whether the bucket is full again at `now` (it can be forgotten).
    fn is_full(self, per_minute: u32, now: DateTime<Utc>) -> bool {
        self.refilled(per_minute, now).tokens >= f64::from(per_minute)
    }
}

/// Entries kept before the expired or refilled ones are swept out.
const SWEEP_AT: usize = 4096;

#[derive(Default)]
pub(crate) struct Memory {
    leases: Mutex<HashMap<String, (String, DateTime<Utc>)>>,
    buckets: Mutex<HashMap<String, (Bucket, u32)>>,
}

impl Memory {
    pub(crate) fn claim(
        &self,
        holder: &str,
        names: &[String],
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Vec<String> {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        if leases.len() >= SWEEP_AT {
            leases.retain(|_, (_, end)| *end > now);
        }
        let mut taken = Vec::new();
        for name in names {
            let free = leases.get(name).is_none_or(|(h, end)| h == holder || *end <= now);
            if free {
                leases.insert(name.clone(), (holder.to_owned(), until));
                taken.push(name.clone());
            }
        }
        taken
    }

    pub(crate) fn release(&self, holder: &str, names: &[String]) {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        for name in names {
            if leases.get(name).is_some_and(|(h, _)| h == holder) {
                leases.remove(name);
            }
        }
    }

    pub(crate) fn take_token(&self, name: &str, per_minute: u32, now: DateTime<Utc>) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= SWEEP_AT {
            buckets.retain(|_, (b, rate)| !b.is_full(*rate, now));
        }
        let bucket = buckets
            .get(name)
            .map_or_else(|| Bucket::full(per_minute, now), |(b, _)| *b);
        let (after, taken) = bucket.take(per_minute, now);
        buckets.insert(name.to_owned(), (after, per_minute));
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refills_at_its_rate_and_says_how_long_to_wait() {
        let t0 = DateTime::parse_from_rfc3339("2026-11-30T09:00:00Z").unwrap().to_utc();
        let mut b = Bucket::full(3, t0);
        for _ in 0..3 {
            let (next, taken) = b.take(3, t0);
            assert_eq!(taken, Ok(()));
            b = next;
        }
        let (b, taken) = b.take(3, t0);
        assert_eq!(taken, Err(Duration::from_secs(20)));
        let (_, taken) = b.take(3, t0 + chrono::Duration::seconds(20));
        assert_eq!(taken, Ok(()));
    }
}
