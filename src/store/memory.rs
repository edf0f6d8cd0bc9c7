//! Leases and token buckets kept in memory, for a store that one process
//! holds alone (sled). PostgreSQL does the same bucket arithmetic in SQL
//! (`postgres::leases`); both pass the same conformance case.

use super::{Budget, Spend};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// A token bucket: `tokens` left at `at` (below zero: a debt that
/// refills first).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bucket {
    tokens: f64,
    at: DateTime<Utc>,
}

impl Bucket {
    /// A full bucket.
    fn full(budget: Budget, now: DateTime<Utc>) -> Bucket {
        Bucket {
            tokens: budget.capacity,
            at: now,
        }
    }

    /// The bucket refilled up to `now` (a clock that went back refills
    /// nothing).
    fn refilled(self, budget: Budget, now: DateTime<Utc>) -> Bucket {
        let elapsed_ms = (now - self.at).num_milliseconds().max(0) as f64;
        Bucket {
            tokens: (self.tokens + elapsed_ms * budget.per_ms()).min(budget.capacity),
            at: now.max(self.at),
        }
    }

    /// Spends `amount`: the bucket afterwards, and `Err` with the wait
    /// until `amount` is there when it is not (nothing is taken then). A
    /// charge is taken whatever is left, down to a debt of one capacity.
    fn spend(self, budget: Budget, spend: Spend, now: DateTime<Utc>) -> (Bucket, Result<(), Duration>) {
        let mut b = self.refilled(budget, now);
        match spend {
            Spend::Take(amount) if b.tokens < amount => {
                let wait_ms = (amount - b.tokens) / budget.per_ms().max(f64::MIN_POSITIVE);
                (b, Err(Duration::from_secs_f64(wait_ms / 1000.0)))
            }
            Spend::Take(amount) => {
                b.tokens -= amount;
                (b, Ok(()))
            }
            Spend::Charge(amount) => {
                b.tokens = (b.tokens - amount).max(-budget.capacity);
                (b, Ok(()))
            }
        }
    }

    /// Whether the bucket is full again at `now` (it can be forgotten).
    fn is_full(self, budget: Budget, now: DateTime<Utc>) -> bool {
        self.refilled(budget, now).tokens >= budget.capacity
    }
}

/// Entries kept before the expired or refilled ones are swept out.
const SWEEP_AT: usize = 4096;

/// A map swept of what it need not keep once it has doubled since the
/// last sweep: a sweep that keeps most entries (many users, all active)
/// is not repeated on every call, so each call costs O(1) amortized.
struct Swept<V> {
    map: HashMap<String, V>,
    sweep_at: usize,
}

impl<V> Default for Swept<V> {
    fn default() -> Self {
        Swept {
            map: HashMap::new(),
            sweep_at: SWEEP_AT,
        }
    }
}

impl<V> Swept<V> {
    fn sweep(&mut self, keep: impl FnMut(&String, &mut V) -> bool) {
        if self.map.len() >= self.sweep_at {
            self.map.retain(keep);
            self.sweep_at = SWEEP_AT.max(self.map.len() * 2);
        }
    }
}

#[derive(Default)]
pub(crate) struct Memory {
    leases: Mutex<Swept<(String, DateTime<Utc>)>>,
    buckets: Mutex<Swept<(Bucket, Budget)>>,
}

impl Memory {
    pub(crate) fn claim(
        &self,
        holder: &str,
        names: &[String],
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Vec<String> {
        let mut swept = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        swept.sweep(|_, (_, end)| *end > now);
        let leases = &mut swept.map;
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
        let mut swept = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        let leases = &mut swept.map;
        for name in names {
            if leases.get(name).is_some_and(|(h, _)| h == holder) {
                leases.remove(name);
            }
        }
    }

    pub(crate) fn spend(&self, name: &str, budget: Budget, spend: Spend, now: DateTime<Utc>) -> Result<(), Duration> {
        let mut swept = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        swept.sweep(|_, (b, budget)| !b.is_full(*budget, now));
        let buckets = &mut swept.map;
        let bucket = buckets.get(name).map_or_else(|| Bucket::full(budget, now), |(b, _)| *b);
        let (after, taken) = bucket.spend(budget, spend, now);
        buckets.insert(name.to_owned(), (after, budget));
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-30T09:00:00Z").unwrap().to_utc()
    }

    #[test]
    fn a_bucket_refills_at_its_rate_and_says_how_long_to_wait() {
        let budget = Budget::per_minute(3);
        let mut b = Bucket::full(budget, t0());
        for _ in 0..3 {
            let (next, taken) = b.spend(budget, Spend::Take(1.0), t0());
            assert_eq!(taken, Ok(()));
            b = next;
        }
        let (b, taken) = b.spend(budget, Spend::Take(1.0), t0());
        assert_eq!(taken, Err(Duration::from_secs(20)));
        let (_, taken) = b.spend(budget, Spend::Take(1.0), t0() + chrono::Duration::seconds(20));
        assert_eq!(taken, Ok(()));
    }

    #[test]
    fn a_map_of_live_buckets_is_swept_once_per_doubling_and_refilled_ones_go() {
        let memory = Memory::default();
        let budget = Budget::per_minute(3);
        let spend = |n: usize, at| memory.spend(&format!("b{n}"), budget, Spend::Take(1.0), at);
        for n in 0..5000 {
            assert_eq!(spend(n, t0()), Ok(()));
        }
        // The sweep at 4 096 kept every bucket (none had refilled): the next
        // one waits for twice as many, not the next call.
        let swept = memory.buckets.lock().unwrap();
        assert_eq!((swept.map.len(), swept.sweep_at), (5000, 8192));
        drop(swept);
        // A minute later the first 5 000 are full again: the sweep at 8 192
        // forgets them and keeps the ones spent from since.
        let later = t0() + chrono::Duration::minutes(1);
        for n in 5000..=8192 {
            assert_eq!(spend(n, later), Ok(()));
        }
        let swept = memory.buckets.lock().unwrap();
        assert_eq!((swept.map.len(), swept.sweep_at), (3193, 6384));
    }

    #[test]
    fn a_charge_runs_into_debt_that_refills_before_the_next_take() {
        let budget = Budget::per_day(1000);
        let b = Bucket::full(budget, t0());
        let (b, charged) = b.spend(budget, Spend::Charge(1500.0), t0());
        assert_eq!(charged, Ok(()));
        assert_eq!(b.tokens, -500.0);
        // 501 tokens to refill at 1000 a day: about 12 hours.
        let (b, taken) = b.spend(budget, Spend::Take(1.0), t0());
        let wait = taken.unwrap_err().as_secs();
        assert!((43_200..43_400).contains(&wait), "{wait}");
        let (_, taken) = b.spend(budget, Spend::Take(1.0), t0() + chrono::Duration::hours(13));
        assert_eq!(taken, Ok(()));
        // A debt never exceeds one capacity.
        let (b, _) = Bucket::full(budget, t0()).spend(budget, Spend::Charge(1e9), t0());
        assert_eq!(b.tokens, -1000.0);
    }
}
