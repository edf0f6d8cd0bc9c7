//! Running steps bound to tools, as records and pure rules: which steps of
//! a plan the engine may start (synced with every plan write, like the
//! triggers), one attempt at a step with the idempotency key recorded
//! before any call, how a failure is classified and when a retry may go.
//! Nothing here does I/O.
//!
//! An attempt belongs to one *epoch* of a step: the first run is epoch 1,
//! and only a user's (or an operator's) explicit retry of a failed step
//! opens the next one. Every try inside an epoch carries the same key, so
//! a tool that honours keys performs the effect at most once per epoch.

use crate::plan::{Plan, PlanId, PlanMode, PlanStatus, StepStatus};
use crate::user::UserId;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A tool-bound step the engine may start at `at` (its due time, or when
/// it became ready).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runnable {
    pub step_id: String,
    pub at: DateTime<Utc>,
    /// The plan is worked one step at a time: one of its steps runs at once.
    #[serde(default)]
    pub one_at_a_time: bool,
}

/// Where a runnable step is, across users (what the store lists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRef {
    pub user: UserId,
    pub plan_id: PlanId,
    pub step_id: String,
    pub at: DateTime<Utc>,
    #[serde(default)]
    pub one_at_a_time: bool,
}

/// The steps of `plan` the engine may start: pending, bound to a tool,
/// every dependency resolved; in a plan worked one step at a time, only
/// while no step is in progress. Closed plans have none.
pub fn runnable(plan: &Plan) -> Vec<Runnable> {
    if plan.status != PlanStatus::Active {
        return Vec::new();
    }
    if plan.mode == PlanMode::Single && plan.steps.iter().any(|s| s.status == StepStatus::InProgress) {
        return Vec::new();
    }
    plan.steps
        .iter()
        .filter(|s| s.tool.is_some() && plan.is_ready(s))
        .map(|s| Runnable {
            step_id: s.id.clone(),
            at: s.due_at.unwrap_or(plan.updated_at),
            one_at_a_time: plan.mode == PlanMode::Single,
        })
        .collect()
}

/// An event a tool put into the user's calendar feed, stored under the
/// idempotency key of the attempt that made it (so a repeated call makes
/// no second event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalendarEvent {
    pub key: String,
    pub title: String,
    pub starts: DateTime<Utc>,
    pub ends: DateTime<Utc>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub plan_id: Option<PlanId>,
    pub created_at: DateTime<Utc>,
}

/// The idempotency key of one epoch of a step: derived, so a restarted
/// engine computes the same one; hashed, so no user id or plan text
/// reaches a tool; salted with a secret of the store (`salt`), so another
/// deployment — or this one after its data was wiped — never sends a key
/// this one used (plan and step ids repeat: "p1", "laptop").
pub fn idempotency_key(salt: &[u8], user: &UserId, plan: PlanId, step: &str, epoch: u32) -> String {
    let mut h = Sha256::new();
    h.update((salt.len() as u64).to_be_bytes());
    h.update(salt);
    for part in [user.as_str(), &plan.to_string(), step, &epoch.to_string()] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("stw-{hex}")
}

/// How a failed call is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Timeouts, 5xx, 429, a refused connection: retried with backoff.
    Transient,
    /// The input is wrong (a 4xx saying so, arguments the tool's schema
    /// refuses, no email address to send to): the user is asked.
    User,
    /// Anything else (401, 403, 404, an unknown tool): not retried.
    Permanent,
}

/// Where an attempt is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AttemptState {
    /// Recorded; no call made yet.
    Ready,
    /// A call may have been sent (recorded before sending): after a crash
    /// its outcome is unknown and must be reconciled, never guessed.
    InFlight,
    /// A try failed transiently; the next goes at `next_try_at`.
    Waiting,
    Succeeded {
        result: String,
    },
    Failed {
        class: ErrorClass,
        error: String,
    },
    /// The outcome of a call cannot be known (steward stopped during a call
    /// to a tool that takes no idempotency key): the user decides.
    Unknown {
        error: String,
    },
}

/// One epoch of running a step, stored before its first call and after
/// every state change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub user: UserId,
    pub plan_id: PlanId,
    pub step_id: String,
    pub epoch: u32,
    pub key: String,
    pub tool: String,
    pub args: serde_json::Value,
    pub state: AttemptState,
    /// Calls made so far in this epoch.
    pub tries: u32,
    pub next_try_at: DateTime<Utc>,
    /// No try starts after this.
    pub deadline: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub last_error: Option<String>,
    /// The outcome is written to the plan: nothing is left to do.
    #[serde(default)]
    pub settled: bool,
    /// When the step became ready to run (its due time, or when its last
    /// dependency was resolved): the start of its latency.
    #[serde(default)]
    pub ready_at: Option<DateTime<Utc>>,
}

impl Attempt {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        user: UserId,
        plan_id: PlanId,
        step_id: String,
        epoch: u32,
        tool: String,
        args: serde_json::Value,
        now: DateTime<Utc>,
        deadline: Duration,
        salt: &[u8],
    ) -> Attempt {
        Attempt {
            key: idempotency_key(salt, &user, plan_id, &step_id, epoch),
            user,
            plan_id,
            step_id,
            epoch,
            tool,
            args,
            state: AttemptState::Ready,
            tries: 0,
            next_try_at: now,
            deadline: now + deadline,
            created_at: now,
            updated_at: now,
            last_error: None,
            settled: false,
            ready_at: None,
        }
    }

    /// Running or waiting to retry since before `threshold`.
    pub fn stalled(&self, threshold: DateTime<Utc>) -> bool {
        !self.settled && self.created_at <= threshold && self.state != AttemptState::Ready
    }

    /// Finished: succeeded, failed for good, or unknown.
    pub fn is_final(&self) -> bool {
        matches!(
            self.state,
            AttemptState::Succeeded { .. } | AttemptState::Failed { .. } | AttemptState::Unknown { .. }
        )
    }
}

/// How often and how patiently a tool is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Calls per epoch, the first included.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// The first backoff; each next one doubles, with jitter.
    #[serde(default = "default_base_ms")]
    pub base_ms: u64,
}

fn default_attempts() -> u32 {
    5
}

fn default_base_ms() -> u64 {
    500
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: default_attempts(),
            base_ms: default_base_ms(),
        }
    }
}

/// The longest single wait between tries, whatever the policy or a
/// Retry-After says (a longer Retry-After fails the try for good instead).
pub const MAX_BACKOFF: Duration = Duration::minutes(10);

impl RetryPolicy {
    /// The wait after the `tries`-th failed call: `base · 2^(tries-1)`,
    /// capped, with "equal jitter" (between half and all of it) from
    /// `jitter` in [0, 1).
    pub fn backoff(&self, tries: u32, jitter: f64) -> Duration {
        let exp = tries.saturating_sub(1).min(20);
        let full = self.base_ms.saturating_mul(1 << exp);
        let capped = full.min(MAX_BACKOFF.num_milliseconds() as u64) as f64;
        let jitter = jitter.clamp(0.0, 1.0);
        Duration::milliseconds((capped / 2.0 + capped / 2.0 * jitter) as i64)
    }
}

/// What to do after a failed try.
#[derive(Debug, Clone, PartialEq)]
pub enum NextTry {
    /// Try again at this instant.
    At(DateTime<Utc>),
    /// Stop: the step fails with this class.
    GiveUp(ErrorClass),
}

/// After the `tries`-th call failed with `class` at `now`: a transient
/// failure is retried after the backoff or the tool's Retry-After,
/// whichever is later, while tries remain and the deadline allows; other
/// classes stop at once.
pub fn next_try(
    policy: &RetryPolicy,
    class: ErrorClass,
    tries: u32,
    retry_after: Option<Duration>,
    now: DateTime<Utc>,
    deadline: DateTime<Utc>,
    jitter: f64,
) -> NextTry {
    if class != ErrorClass::Transient {
        return NextTry::GiveUp(class);
    }
    if tries >= policy.max_attempts {
        return NextTry::GiveUp(ErrorClass::Transient);
    }
    let backoff = policy.backoff(tries, jitter);
    let wait = match retry_after {
        Some(after) if after > MAX_BACKOFF => return NextTry::GiveUp(ErrorClass::Transient),
        Some(after) => after.max(backoff),
        None => backoff,
    };
    let at = now + wait;
    if at > deadline {
        return NextTry::GiveUp(ErrorClass::Transient);
    }
    NextTry::At(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Step, ToolBinding};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn plan() -> Plan {
        let mut p = Plan::draft("p", "", t("2026-11-30T10:00:00Z"));
        let bind = |mut s: Step| {
            s.tool = Some(ToolBinding {
                name: "send_email".into(),
                args: serde_json::json!({}),
            });
            s
        };
        p.steps.push(Step::new("a", "human"));
        let mut b = bind(Step::new("b", "tool, free"));
        b.due_at = Some(t("2026-12-01T09:00:00Z"));
        p.steps.push(b);
        let mut c = bind(Step::new("c", "tool after a"));
        c.depends_on = vec!["a".into()];
        p.steps.push(c);
        p
    }

    #[test]
    fn runnable_steps_are_ready_tool_steps_at_their_due_time() {
        let mut p = plan();
        let r = runnable(&p);
        assert_eq!(
            r,
            vec![Runnable {
                step_id: "b".into(),
                at: t("2026-12-01T09:00:00Z"),
                one_at_a_time: true,
            }]
        );
        p.steps[0].status = StepStatus::Completed;
        let ids: Vec<_> = runnable(&p).into_iter().map(|r| r.step_id).collect();
        assert_eq!(ids, ["b", "c"]);
        // One step at a time: a step in progress holds the rest back.
        p.steps[1].status = StepStatus::InProgress;
        assert!(runnable(&p).is_empty());
        p.mode = PlanMode::Orchestrated;
        assert_eq!(runnable(&p).len(), 1);
        p.status = PlanStatus::Cancelled;
        assert!(runnable(&p).is_empty());
    }

    #[test]
    fn keys_are_stable_per_epoch_and_name_no_user() {
        let u = UserId::parse("ana").unwrap();
        let k1 = idempotency_key(b"salt", &u, PlanId(1), "b", 1);
        assert_eq!(k1, idempotency_key(b"salt", &u, PlanId(1), "b", 1));
        assert_ne!(k1, idempotency_key(b"salt", &u, PlanId(1), "b", 2));
        assert_ne!(k1, idempotency_key(b"salt", &u, PlanId(11), "b", 1));
        assert_ne!(
            idempotency_key(b"salt", &u, PlanId(1), "b1", 1),
            idempotency_key(b"salt", &u, PlanId(11), "b", 1)
        );
        assert!(!k1.contains("ana") && k1.len() == 36);
        assert_ne!(k1, idempotency_key(b"other store", &u, PlanId(1), "b", 1));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_honours_retry_after_and_the_deadline() {
        let p = RetryPolicy {
            max_attempts: 4,
            base_ms: 1000,
        };
        assert_eq!(p.backoff(1, 0.0), Duration::milliseconds(500));
        assert_eq!(p.backoff(1, 0.999_999), Duration::milliseconds(999));
        assert_eq!(p.backoff(3, 0.0), Duration::milliseconds(2000));
        assert_eq!(p.backoff(40, 0.0), MAX_BACKOFF / 2);
        let now = t("2026-11-30T10:00:00Z");
        let far = now + Duration::hours(1);
        use ErrorClass::*;
        assert_eq!(
            next_try(&p, Transient, 1, None, now, far, 0.0),
            NextTry::At(now + Duration::milliseconds(500))
        );
        // Retry-After wins when it is later than the backoff, never earlier.
        assert_eq!(
            next_try(&p, Transient, 1, Some(Duration::seconds(7)), now, far, 0.0),
            NextTry::At(now + Duration::seconds(7))
        );
        assert_eq!(
            next_try(&p, Transient, 3, Some(Duration::milliseconds(10)), now, far, 0.0),
            NextTry::At(now + Duration::seconds(2))
        );
        assert_eq!(
            next_try(&p, Transient, 4, None, now, far, 0.0),
            NextTry::GiveUp(Transient)
        );
        assert_eq!(
            next_try(&p, Transient, 1, None, now, now + Duration::milliseconds(100), 0.0),
            NextTry::GiveUp(Transient)
        );
        assert_eq!(
            next_try(&p, Transient, 1, Some(Duration::hours(2)), now, far, 0.0),
            NextTry::GiveUp(Transient)
        );
        assert_eq!(next_try(&p, User, 1, None, now, far, 0.0), NextTry::GiveUp(User));
        assert_eq!(
            next_try(&p, Permanent, 1, None, now, far, 0.0),
            NextTry::GiveUp(Permanent)
        );
    }
}
