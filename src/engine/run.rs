//! One step, one try at a time: claiming a ready step (the attempt is
//! recorded before the step is marked in progress, and both before any
//! call), one call with the epoch's idempotency key, and settling the
//! outcome into the plan.

use super::Executor;
use crate::actions::http::CallError;
use crate::execution::{Attempt, AttemptState, ErrorClass, NextTry, StepRef, next_try, runnable};
use crate::plan::{Op, Plan, StepStatus};
use crate::service::{Applied, ServiceError};
use crate::store::StoreError;
use chrono::Duration;
use std::sync::Arc;

/// Why a try could not be recorded: the store failed (the engine tries
/// again on its next pass; nothing was called without its record).
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// The text kept as a step's result: the tool's answer on one safe line,
/// within the plan's limit.
pub(crate) fn result_text(value: &serde_json::Value, limit: usize) -> String {
    let text = match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "done".into(),
        other => other.to_string(),
    };
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_control() || crate::plan::invariants::forges_text(c) {
                ' '
            } else {
                c
            }
        })
        .collect();
    let clean = clean.trim();
    if clean.chars().count() > limit {
        clean.chars().take(limit.saturating_sub(1)).collect::<String>() + "…"
    } else {
        clean.to_owned()
    }
}

impl Executor {
    /// Claims a step from the work list and makes its first try. The
    /// attempt is recorded in flight before the step is marked in progress,
    /// and the call goes out only after that: a step still pending beside
    /// an attempt in flight was never called.
    pub(super) async fn start(self: &Arc<Self>, step: StepRef) -> Result<(), RunError> {
        let Some(plan) = self.service.stored_plan(&step.user, step.plan_id).await? else {
            return Ok(());
        };
        let still = runnable(&plan)
            .into_iter()
            .any(|r| r.step_id == step.step_id && r.at <= self.now());
        let Some(binding) = plan.step(&step.step_id).and_then(|s| s.tool.clone()).filter(|_| still) else {
            return Ok(()); // changed meanwhile: the work list follows
        };
        let last = self.store.last_attempt(&step.user, step.plan_id, &step.step_id).await?;
        if let Some(open) = last.as_ref().filter(|a| !a.settled) {
            return Box::pin(self.resume(open.clone())).await;
        }
        let epoch = last.map_or(1, |a| a.epoch + 1);
        let deadline = Duration::seconds(self.config.step_deadline_secs as i64);
        let mut attempt = Attempt::new(
            step.user.clone(),
            step.plan_id,
            step.step_id.clone(),
            epoch,
            binding.name.clone(),
            binding.args.clone(),
            self.now(),
            deadline,
            &self.links.idempotency_salt(),
        );
        attempt.state = AttemptState::InFlight;
        attempt.tries = 1;
        attempt.ready_at = Some(step.at);
        self.store.save_attempt(&attempt).await?;
        tracing::info!(tool = %attempt.tool, epoch, "tool step claimed");
        if !self.mark_running(&attempt).await? {
            return self.not_started(attempt).await;
        }
        self.call_and_record(attempt).await
    }

    /// Carries an unsettled attempt one step further: makes its next try,
    /// or settles a final outcome. An attempt found in flight was stopped
    /// by a crash or a shutdown: if its step is still pending the call
    /// never went out; if the step is in progress the outcome is unknown,
    /// and the call is sent again with the same key only when the tool
    /// takes one; if the step was finished meanwhile nothing is left to do.
    // Long: every state an unsettled attempt can be found in after a
    // stop, read against the plan as it is now, in one place.
    pub(super) async fn resume(self: &Arc<Self>, attempt: Attempt) -> Result<(), RunError> {
        // The copy the pass read may be stale (a try that finished since):
        // act on the stored one, and only if it is still this open epoch.
        let stored = self
            .store
            .last_attempt(&attempt.user, attempt.plan_id, &attempt.step_id)
            .await?;
        let Some(mut attempt) = stored.filter(|s| s.epoch == attempt.epoch && !s.settled) else {
            return Ok(());
        };
        if attempt.is_final() {
            return self.settle(attempt).await;
        }
        if attempt.state == AttemptState::Waiting && attempt.next_try_at > self.now() {
            return Ok(()); // its backoff or Retry-After is not over
        }
        let plan = self.service.stored_plan(&attempt.user, attempt.plan_id).await?;
        let open = plan.as_ref().is_some_and(|p| p.is_active());
        let status = plan.as_ref().and_then(|p| p.step(&attempt.step_id)).map(|s| s.status);
        match (&attempt.state, status) {
            // The plan is closed, or the step finished meanwhile: nothing
            // more is called for it.
            (_, None | Some(StepStatus::Completed | StepStatus::Cancelled | StepStatus::Failed)) => {
                attempt.settled = true;
                self.store.save_attempt(&attempt).await?;
                return Ok(());
            }
            (_, _) if !open => {
                attempt.state = AttemptState::Failed {
                    class: ErrorClass::Permanent,
                    error: "the plan was closed".into(),
                };
                attempt.settled = true;
                self.store.save_attempt(&attempt).await?;
                return Ok(());
            }
            (AttemptState::InFlight, Some(StepStatus::InProgress)) => {
                let takes_key = self.actions.get(&attempt.tool).is_some_and(|a| a.takes_key);
                if !takes_key {
                    attempt.state = AttemptState::Unknown {
                        error: format!("steward stopped while calling {}", attempt.tool),
                    };
                    self.store.save_attempt(&attempt).await?;
                    return self.settle(attempt).await;
                }
                tracing::info!(tool = %attempt.tool, "an interrupted call is sent again with the same key");
            }
            _ => {}
        }
        // In flight here: never sent (the step was still pending), or sent
        // again under its key; either way the same try, already recorded.
        let recorded = attempt.state == AttemptState::InFlight;
        if !self.mark_running(&attempt).await? {
            if attempt.state == AttemptState::Waiting {
                // Calls went out in this epoch: it stays open (its key is
                // the one to use) until the step is the engine's again.
                attempt.next_try_at = self.now() + Duration::minutes(1);
                self.store.save_attempt(&attempt).await?;
                return Ok(());
            }
            return self.not_started(attempt).await;
        }
        if recorded {
            self.call_and_record(attempt).await
        } else {
            self.try_once(attempt).await
        }
    }

    /// The step is not the engine's to run any more (another step in
    /// progress in a plan worked one at a time, a dependency reopened)
    /// and no call of this epoch went out (the step was still pending when
    /// it was recorded in flight): the attempt is closed, the step waits.
    async fn not_started(&self, mut attempt: Attempt) -> Result<(), RunError> {
        attempt.state = AttemptState::Failed {
            class: ErrorClass::Permanent,
            error: "the step changed before it ran".into(),
        };
        attempt.settled = true;
        self.store.save_attempt(&attempt).await?;
        Ok(())
    }

    /// The step is in progress (marked now if it was pending); false when
    /// it is no longer the engine's to run.
    async fn mark_running(&self, attempt: &Attempt) -> Result<bool, RunError> {
        let step = attempt.step_id.clone();
        let why = format!("running {}", attempt.tool);
        let mut ours = false;
        // Whether the plan the service read last shows the step in progress
        // already (a resumed or resent call): then no change is made, and
        // the step is ours without reading the plan again.
        let running = std::sync::atomic::AtomicBool::new(false);
        let applied = self
            .service
            .tool_change(&attempt.user, attempt.plan_id, &why, |plan: &Plan| {
                let s = plan.step(&step);
                running.store(
                    s.is_some_and(|s| s.status == StepStatus::InProgress),
                    std::sync::atomic::Ordering::Relaxed,
                );
                let s = s?;
                match s.status {
                    StepStatus::InProgress => None,
                    StepStatus::Pending if plan.is_ready(s) => Some(vec![Op::SetStatus {
                        step: step.clone(),
                        status: StepStatus::InProgress,
                        result: None,
                    }]),
                    _ => None,
                }
            })
            .await;
        match applied {
            Ok(Some(Applied::Changed { .. } | Applied::Unchanged { .. })) => ours = true,
            Ok(Some(Applied::Proposed { .. })) => {}
            Ok(None) => ours = running.load(std::sync::atomic::Ordering::Relaxed),
            // Another step in progress in a plan worked one at a time, or
            // a dependency reopened: not now.
            Err(ServiceError::Refused(r)) => tracing::info!(reason = %r, "tool step not started"),
            Err(e) => return Err(e.into()),
        }
        Ok(ours)
    }

    /// One call: recorded in flight first, then made, then recorded.
    async fn try_once(self: &Arc<Self>, mut attempt: Attempt) -> Result<(), RunError> {
        let now = self.now();
        if now > attempt.deadline && attempt.tries > 0 {
            let error = attempt.last_error.clone().unwrap_or_else(|| "ran out of time".into());
            attempt.state = AttemptState::Failed {
                class: ErrorClass::Transient,
                error,
            };
            self.store.save_attempt(&attempt).await?;
            return self.settle(attempt).await;
        }
        attempt.tries += 1;
        attempt.state = AttemptState::InFlight;
        attempt.updated_at = now;
        self.store.save_attempt(&attempt).await?;
        self.call_and_record(attempt).await
    }

    /// Makes the call of an attempt recorded in flight, and records what
    /// came back: a retry time, or a final outcome settled into the plan.
    /// A success is recorded before the plan write only for a tool that
    /// takes no key (for one that does, a crash in between sends the call
    /// again under the same key and gets the same answer).
    // Long: one call and every way it can end (success, unknown, retry,
    // failure), each recorded before anything else happens.
    async fn call_and_record(self: &Arc<Self>, mut attempt: Attempt) -> Result<(), RunError> {
        let outcome = self.call(&attempt).await;
        let now = self.now();
        attempt.updated_at = now;
        let takes_key = self.actions.get(&attempt.tool).is_some_and(|a| a.takes_key);
        let outcome_label = match &outcome {
            Ok(_) => "ok",
            Err(e) => match e.class {
                ErrorClass::Transient => "transient",
                ErrorClass::User => "user",
                ErrorClass::Permanent => "permanent",
            },
        };
        let metrics = self.service.metrics();
        let labels = crate::metrics::ToolOutcome {
            tool: attempt.tool.clone(),
            outcome: outcome_label.into(),
        };
        metrics.tool_calls.get_or_create(&labels).inc();
        match outcome {
            Ok(value) => {
                let limit = self.service.rules().limits.max_result_chars;
                attempt.state = AttemptState::Succeeded {
                    result: result_text(&value, limit),
                };
                tracing::info!(tool = %attempt.tool, tries = attempt.tries, "tool call succeeded");
                if !takes_key {
                    self.store.save_attempt(&attempt).await?;
                }
            }
            Err(CallError {
                class: ErrorClass::Transient,
                message,
                may_have_run: true,
                ..
            }) if !takes_key => {
                // Asking again could do it twice: the person decides.
                tracing::warn!(tool = %attempt.tool, error = %message, "an unkeyed call may have run; not retried");
                attempt.last_error = Some(message.clone());
                attempt.state = AttemptState::Unknown {
                    error: format!("{message}; {} may or may not have done it", attempt.tool),
                };
                self.store.save_attempt(&attempt).await?;
            }
            Err(CallError {
                class,
                message,
                retry_after,
                ..
            }) => {
                attempt.last_error = Some(message.clone());
                let policy = self.actions.get(&attempt.tool).map(|a| a.retry).unwrap_or_default();
                let jitter = rand::random::<f64>();
                match next_try(
                    &policy,
                    class,
                    attempt.tries,
                    retry_after,
                    now,
                    attempt.deadline,
                    jitter,
                ) {
                    NextTry::At(at) => {
                        tracing::info!(tool = %attempt.tool, tries = attempt.tries, error = %message, next_try_at = %at, "tool call failed; retrying");
                        let tool = crate::metrics::Tool {
                            tool: attempt.tool.clone(),
                        };
                        metrics.tool_retries.get_or_create(&tool).inc();
                        attempt.state = AttemptState::Waiting;
                        attempt.next_try_at = at;
                        self.store.save_attempt(&attempt).await?;
                        return Ok(());
                    }
                    NextTry::GiveUp(class) => {
                        tracing::warn!(tool = %attempt.tool, tries = attempt.tries, error = %message, ?class, "tool call failed for good");
                        attempt.state = AttemptState::Failed { class, error: message };
                        self.store.save_attempt(&attempt).await?;
                    }
                }
            }
        }
        self.settle(attempt).await
    }

    /// Writes a final outcome into the plan (and tells the user), then
    /// marks the attempt settled.
    pub(super) async fn settle(self: &Arc<Self>, mut attempt: Attempt) -> Result<(), RunError> {
        let step = attempt.step_id.clone();
        match attempt.state.clone() {
            AttemptState::Succeeded { result } => {
                let why = format!("{} succeeded", attempt.tool);
                let done = self
                    .service
                    .tool_change(&attempt.user, attempt.plan_id, &why, |plan: &Plan| {
                        let s = plan.step(&step)?;
                        matches!(s.status, StepStatus::InProgress | StepStatus::Pending).then(|| {
                            vec![Op::SetStatus {
                                step: step.clone(),
                                status: StepStatus::Completed,
                                result: Some(result.clone()),
                            }]
                        })
                    })
                    .await;
                match done {
                    Ok(Some(Applied::Changed { plan, .. })) => {
                        let kind = crate::metrics::Metrics::kind(&plan.objective.kind);
                        let metrics = self.service.metrics();
                        metrics.steps_completed.get_or_create(&kind).inc();
                        if let Some(ready) = attempt.ready_at {
                            let took = (self.now() - ready).to_std().unwrap_or_default();
                            metrics.step_latency.get_or_create(&kind).observe(took.as_secs_f64());
                        }
                        self.tell_done(&attempt, &plan, &result).await?
                    }
                    Ok(_) => {}
                    Err(ServiceError::Refused(r)) => {
                        tracing::warn!(reason = %r, "a tool step's result could not be recorded in its plan")
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            AttemptState::Failed { class, error } => self.failed(&attempt, class, &error).await?,
            AttemptState::Unknown { error } => self.failed(&attempt, ErrorClass::User, &error).await?,
            AttemptState::Ready | AttemptState::InFlight | AttemptState::Waiting => return Ok(()),
        }
        attempt.settled = true;
        self.store.save_attempt(&attempt).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn results_are_one_safe_line_within_the_limit() {
        assert_eq!(result_text(&json!("ok"), 10), "ok");
        assert_eq!(result_text(&json!(null), 10), "done");
        assert_eq!(result_text(&json!({"id": 7}), 20), r#"{"id":7}"#);
        assert_eq!(result_text(&json!("a\nb\u{202e}c"), 10), "a b c");
        assert_eq!(result_text(&json!("abcdefghijkl"), 5), "abcd…");
    }
}
