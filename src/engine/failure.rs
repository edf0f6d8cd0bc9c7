//! When a step's tool cannot do it: the step is marked failed with the
//! reason, and the plan adapts — the template's fallback step is added (or
//! proposed, when it is bound to a tool and the policy wants a yes), else a
//! replan is proposed (a step to do by hand in its place), at most
//! `engine.max_replans` times per plan; after that, or when the input was
//! wrong or the outcome is unknown, the user is told plainly what happened
//! and what they can do. Every outcome reaches the chat (and push or email
//! when the user is away) as a notification.

use super::Executor;
use super::run::{RunError, result_text};
use crate::execution::{Attempt, AttemptState, ErrorClass};
use crate::notification::NotificationKind;
use crate::plan::invariants::valid_step_id;
use crate::plan::{Op, Plan, StepStatus};
use crate::planner;
use crate::service::{Applied, ServiceError};
use crate::store::NotificationDraft;
use std::sync::Arc;

/// The replan offered when nothing better is known: the same step, done by
/// hand, in place of the failed one (which is cancelled; what waited on it
/// waits on the new step).
fn by_hand(plan: &Plan, failed: &str, max_title: usize) -> Option<Vec<Op>> {
    let step = plan.step(failed)?;
    let mut id: String = format!("{failed}_by_hand").chars().take(60).collect();
    let mut n = 1;
    while plan.step(&id).is_some() || !valid_step_id(&id) {
        n += 1;
        id = format!("h{n}_{}", failed.chars().take(50).collect::<String>());
    }
    let title: String = format!("{} (by hand)", step.title).chars().take(max_title).collect();
    let mut ops = vec![Op::AddStep {
        id: Some(id.clone()),
        title,
        depends_on: step.depends_on.clone(),
        due_at: step.due_at,
        after: Some(failed.to_owned()),
        status: None,
        tool: None,
        checks: None,
    }];
    ops.extend(crate::plan::patch::repoint_dependents(plan, failed, &id));
    ops.push(Op::SetStatus {
        step: failed.to_owned(),
        status: StepStatus::Cancelled,
        result: None,
    });
    Some(ops)
}

impl Executor {
    /// Emails the operator, once per attempt, about each tool step running
    /// or waiting to retry longer than `engine.stall_after_secs`.
    pub(super) async fn report_stalled(&self, open: &[Attempt]) {
        let Some(to) = &self.config.operator_email else {
            return;
        };
        let threshold = self.config.stall_threshold(self.now());
        for attempt in open.iter().filter(|a| a.stalled(threshold)) {
            let fresh = self
                .alerted
                .lock()
                .is_ok_and(|mut seen| seen.insert(attempt.key.clone()));
            if !fresh {
                continue;
            }
            let text = format!(
                "A tool step has been running since {} (user {}, plan {}, step {}, tool {}, {} tries; last error: {}). \
                 See /admin/steps/stalled; retry or cancel it through the admin API once it has failed.",
                attempt.created_at.to_rfc3339(),
                attempt.user,
                attempt.plan_id,
                attempt.step_id,
                attempt.tool,
                attempt.tries,
                attempt.last_error.as_deref().unwrap_or("none"),
            );
            let email = crate::notification::Email {
                to: to.clone(),
                subject: format!("steward: the {} step {} is stalled", attempt.tool, attempt.step_id),
                html: format!(
                    "<p>{}</p>",
                    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
                ),
                text,
                message_id: format!("<stalled.{}@{}>", attempt.key, self.mail.domain),
                unsubscribe: None,
            };
            let item = crate::notification::OutboxItem::new(
                &attempt.user,
                format!("stalled:{}", attempt.key),
                crate::notification::Payload::Email(email),
                self.now(),
            );
            match self.store.enqueue(vec![item]).await {
                Ok(_) => {
                    tracing::warn!(plan_id = %attempt.plan_id, step_id = %attempt.step_id, tool = %attempt.tool, "stalled tool step reported to the operator");
                    self.service.wake_notifier();
                }
                Err(e) => tracing::error!(error = %e, "a stalled step could not be reported"),
            }
        }
    }

    /// A notification about the attempt's step, routed like any other.
    async fn notify(&self, attempt: &Attempt, kind: NotificationKind, text: String) -> Result<(), RunError> {
        let draft = NotificationDraft {
            kind,
            text,
            plan_id: Some(attempt.plan_id),
            step_id: Some(attempt.step_id.clone()),
            urgent: false,
        };
        self.store.add_notification(&attempt.user, draft, self.now()).await?;
        self.service.wake_notifier();
        Ok(())
    }

    pub(super) async fn tell_done(&self, attempt: &Attempt, plan: &Plan, result: &str) -> Result<(), RunError> {
        let title = plan.step(&attempt.step_id).map_or("", |s| s.title.as_str());
        let text = self.service.wording().step_done(title, &plan.title, result);
        self.notify(attempt, NotificationKind::StepDone, text).await
    }

    /// Marks the step failed, adapts the plan where it can, tells the user.
    pub(super) async fn failed(
        self: &Arc<Self>,
        attempt: &Attempt,
        class: ErrorClass,
        error: &str,
    ) -> Result<(), RunError> {
        let limit = self.service.rules().limits.max_result_chars;
        let reason = result_text(&serde_json::Value::from(format!("failed: {error}")), limit);
        let step = attempt.step_id.clone();
        let why = format!("{} failed", attempt.tool);
        let marked = self
            .service
            .tool_change(&attempt.user, attempt.plan_id, &why, |plan: &Plan| {
                let s = plan.step(&step)?;
                let fail = Op::SetStatus {
                    step: step.clone(),
                    status: StepStatus::Failed,
                    result: Some(reason.clone()),
                };
                match s.status {
                    StepStatus::InProgress => Some(vec![fail]),
                    StepStatus::Pending => Some(vec![
                        Op::SetStatus {
                            step: step.clone(),
                            status: StepStatus::InProgress,
                            result: None,
                        },
                        fail,
                    ]),
                    _ => None,
                }
            })
            .await;
        let plan = match marked {
            Ok(Some(Applied::Changed { plan, .. })) => plan,
            Ok(None) => {
                // Already failed: steward stopped after marking it, before
                // telling the person (the attempt is not settled). Tell
                // them now, plainly; what was decided after it (a fallback,
                // a replan) is in the plan and the proposals already.
                let plan = self.service.stored_plan(&attempt.user, attempt.plan_id).await?;
                if let Some(plan) = plan.filter(|p| p.step(&step).is_some_and(|s| s.status == StepStatus::Failed)) {
                    let title = plan.step(&step).map_or("", |s| s.title.as_str());
                    let text = self
                        .service
                        .wording()
                        .step_failed(title, &plan.title, error, "told", "");
                    self.notify(attempt, NotificationKind::StepFailed, text).await?;
                }
                return Ok(());
            }
            Ok(Some(_)) => return Ok(()),
            Err(ServiceError::Refused(r)) => {
                tracing::warn!(reason = %r, "a failed tool step could not be marked failed");
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let kind = crate::metrics::Metrics::kind(&plan.objective.kind);
        self.service.metrics().steps_failed.get_or_create(&kind).inc();
        let checked = plan.step(&attempt.step_id).and_then(|s| s.checks.clone());
        let (next, fallback) = if matches!(attempt.state, AttemptState::Unknown { .. }) {
            ("unknown", String::new())
        } else if let Some(checked) = checked {
            self.reopen(attempt, &plan, &checked, error).await?
        } else if class == ErrorClass::User {
            ("ask", String::new())
        } else {
            self.adapt(attempt, &plan, error).await?
        };
        let title = plan.step(&attempt.step_id).map_or("", |s| s.title.as_str());
        let text = self
            .service
            .wording()
            .step_failed(title, &plan.title, error, next, &fallback);
        self.notify(attempt, NotificationKind::StepFailed, text).await
    }

    /// A check the engine ran failed: the step it checks is reopened (and
    /// runs again), within the plan's replan budget.
    async fn reopen(
        &self,
        attempt: &Attempt,
        plan: &Plan,
        checked: &str,
        error: &str,
    ) -> Result<(&'static str, String), RunError> {
        let (user, plan_id) = (&attempt.user, attempt.plan_id);
        if self.store.count_replan(user, plan_id).await? > self.config.max_replans {
            return Ok(("told", String::new()));
        }
        let title = plan.step(&attempt.step_id).map_or("", |s| s.title.as_str()).to_owned();
        let checked_title = plan.step(checked).map_or(checked, |s| s.title.as_str()).to_owned();
        let ops = crate::service::reopen_for_check(&title, &attempt.step_id, checked, Some(error));
        let why = format!("the check {} failed", attempt.step_id);
        match self
            .service
            .tool_change(user, plan_id, &why, |_| Some(ops.clone()))
            .await
        {
            Ok(Some(Applied::Changed { .. })) => Ok(("reopened", checked_title)),
            Ok(_) => Ok(("told", String::new())),
            Err(ServiceError::Refused(r)) => {
                tracing::warn!(reason = %r, "the checked step could not be reopened");
                Ok(("told", String::new()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The template's fallback, else a counted replan proposal, else
    /// nothing: returns what happened and the fallback's title.
    async fn adapt(&self, attempt: &Attempt, plan: &Plan, error: &str) -> Result<(&'static str, String), RunError> {
        let (user, plan_id, step) = (&attempt.user, attempt.plan_id, attempt.step_id.as_str());
        let tz = self.service.time_zone(user).await;
        let today = self.now().with_timezone(&tz).date_naive();
        if let Some(template) = self.templates.get(&plan.objective.kind)
            && let Some(ops) = planner::fallback(template, plan, step, today)
        {
            let title = match ops.first() {
                Some(Op::AddStep { title, .. }) => title.clone(),
                _ => String::new(),
            };
            let why = format!("fallback for {step}, which failed");
            let applied = self
                .service
                .tool_change(user, plan_id, &why, |p: &Plan| {
                    planner::fallback(template, p, step, today)
                })
                .await;
            match applied {
                Ok(Some(Applied::Changed { .. })) => return Ok(("fallback", title)),
                Ok(Some(Applied::Proposed { .. })) => return Ok(("fallback_proposed", title)),
                Ok(_) => {}
                Err(ServiceError::Refused(r)) => tracing::warn!(reason = %r, "the template's fallback does not apply"),
                Err(e) => return Err(e.into()),
            }
        }
        if self.store.count_replan(user, plan_id).await? > self.config.max_replans {
            return Ok(("told", String::new()));
        }
        if let Some(proposal) = self.model_replan(attempt, plan, error).await? {
            self.service.metrics().replans.inc();
            return Ok(("model_replan", proposal.summary));
        }
        let Some(ops) = by_hand(plan, step, self.service.rules().limits.max_title_chars) else {
            return Ok(("told", String::new()));
        };
        let why = format!("replan: {step} failed");
        match self.service.propose_replan(user, plan_id, ops, &why, None).await {
            Ok(Some(_)) => {
                self.service.metrics().replans.inc();
                Ok(("replan", String::new()))
            }
            Ok(None) => Ok(("told", String::new())),
            Err(ServiceError::Refused(r)) => {
                tracing::warn!(reason = %r, "no replan could be proposed");
                Ok(("told", String::new()))
            }
            Err(e) => Err(e.into()),
        }
    }
}
