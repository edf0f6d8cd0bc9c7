//! What the execution engine asks of the service: changes to a step bound
//! to a tool, made as the `tool` actor against the plan as it is now (a
//! change the user made meanwhile is read again, never overwritten), under
//! the same rules and confirmation policy as every other change; replans
//! proposed for the user's yes; and the check every new tool binding
//! passes, whoever adds it.

use super::{Applied, Refusal, Service, ServiceError};
use crate::execution::CalendarEvent;
use crate::plan::{Actor, Change, Op, Plan, PlanId, patch};
use crate::proposal::{Action, Proposal};
use crate::store::StoreError;
use crate::user::UserId;

/// How often a change is tried again when the plan moved meanwhile.
const REREADS: usize = 5;

/// The operations that reopen `checked` after its check `check` (titled
/// `title`) failed, and put the check back to wait for it.
pub(crate) fn reopen_for_check(title: &str, check: &str, checked: &str, error: Option<&str>) -> Vec<Op> {
    let reason = match error {
        Some(error) => format!("reopened: the check “{title}” failed: {error}"),
        None => format!("reopened: the check “{title}” failed"),
    };
    vec![
        Op::Reopen {
            step: checked.to_owned(),
            reason: Some(reason),
        },
        Op::SetStatus {
            step: check.to_owned(),
            status: crate::plan::StepStatus::Pending,
            result: None,
        },
    ]
}

impl Service {
    /// Every step a change adds bound to a tool names a known tool, with
    /// arguments its schema takes: a user never confirms a call that
    /// cannot run.
    pub(super) fn check_bindings(&self, changes: &[Change]) -> Result<(), Refusal> {
        for change in changes {
            if let Change::StepAdded { step, .. } = change
                && let Some(binding) = &step.tool
            {
                self.actions().check(binding)?;
            }
        }
        Ok(())
    }

    /// The events tools put in the user's calendar feed.
    pub(crate) async fn calendar_events(&self, s: &super::Session) -> Result<Vec<CalendarEvent>, ServiceError> {
        Ok(self.store().events(&s.user).await?)
    }

    /// A check that the user (or the model) marked failed reopens the step
    /// it checks, and waits to run again after it: the operations with
    /// that added, and what they do — unless the step cannot be reopened
    /// (something else that waits on it is done), or the engine failed the
    /// check (it reopens within its replan budget itself).
    pub(super) fn failed_checks(
        &self,
        s: &super::Session,
        current: &Plan,
        ops: &[Op],
        outcome: &patch::PatchOutcome,
    ) -> Option<(Vec<Op>, patch::PatchOutcome)> {
        if s.actor == Actor::Tool {
            return None;
        }
        use crate::plan::StepStatus::Failed;
        let mut more = ops.to_vec();
        // Checks that are failed now and were not before (a step added and
        // failed in one change counts: its changes are folded into one).
        for check in outcome.plan.steps.iter().filter(|s| s.status == Failed) {
            let was_failed = current.step(&check.id).is_some_and(|s| s.status == Failed);
            if let (Some(checked), false) = (&check.checks, was_failed) {
                more.extend(reopen_for_check(&check.title, &check.id, checked, None));
            }
        }
        if more.len() == ops.len() {
            return None;
        }
        let reopened = patch::apply(current, &more, &self.rules().limits, self.now()).ok()?;
        Some((more, reopened))
    }

    /// Whether `changes` wait for the user's yes under the policy; a step
    /// bound to a tool does when the tool has side effects (an unknown tool
    /// is taken to have them).
    pub(super) fn needs_yes(&self, changes: &[Change]) -> bool {
        let actions = self.actions();
        self.rules()
            .confirm
            .needs_confirmation(changes, |b| actions.get(&b.name).is_none_or(|a| a.side_effects))
    }

    /// A plan as stored, for the engine (which acts for every user).
    pub(crate) async fn stored_plan(&self, user: &UserId, id: PlanId) -> Result<Option<Plan>, StoreError> {
        self.store().get_plan(user, id).await
    }

    /// Applies the operations `make` gives for the plan as it is now, as
    /// the tool actor; reads again and retries when the plan changed
    /// between the read and the write. `None` when the plan is gone or
    /// `make` finds nothing to do any more.
    pub(crate) async fn tool_change(
        &self,
        user: &UserId,
        plan_id: PlanId,
        why: &str,
        make: impl Fn(&Plan) -> Option<Vec<Op>>,
    ) -> Result<Option<Applied>, ServiceError> {
        self.change_as(Actor::Tool, user, plan_id, why, make).await
    }

    /// An operator's change to a user's plan (the admin API): the same
    /// rules, recorded as the operator's.
    pub(crate) async fn operator_change(
        &self,
        user: &UserId,
        plan_id: PlanId,
        why: &str,
        make: impl Fn(&Plan) -> Option<Vec<Op>>,
    ) -> Result<Option<Applied>, ServiceError> {
        self.change_as(Actor::Operator, user, plan_id, why, make).await
    }

    async fn change_as(
        &self,
        actor: Actor,
        user: &UserId,
        plan_id: PlanId,
        why: &str,
        make: impl Fn(&Plan) -> Option<Vec<Op>>,
    ) -> Result<Option<Applied>, ServiceError> {
        let session = self.session(user, actor).await;
        for _ in 0..REREADS {
            let Some(plan) = self.stored_plan(user, plan_id).await? else {
                return Ok(None);
            };
            let Some(ops) = make(&plan) else {
                return Ok(None);
            };
            let version = plan.version;
            match self.commit(&session, plan, version, &ops, why.to_owned(), false).await {
                Err(ServiceError::Refused(Refusal::StaleVersion { .. } | Refusal::ChangedMeanwhile { .. })) => continue,
                other => return other.map(Some),
            }
        }
        Err(StoreError::Backend(format!(
            "plan {plan_id} kept changing while a tool step was being recorded"
        ))
        .into())
    }

    /// Proposes `ops` on the plan as it is now for the user's yes, whatever
    /// the confirmation policy says (a replan after a failure is the
    /// user's call). `None` when the plan is gone or the operations no
    /// longer apply.
    pub(crate) async fn propose_replan(
        &self,
        user: &UserId,
        plan_id: PlanId,
        ops: Vec<Op>,
        why: &str,
        note: Option<String>,
    ) -> Result<Option<Proposal>, ServiceError> {
        let session = self.session(user, Actor::Tool).await;
        let Some(plan) = self.stored_plan(user, plan_id).await? else {
            return Ok(None);
        };
        let Ok(outcome) = patch::apply(&plan, &ops, &self.rules().limits, self.now()) else {
            return Ok(None);
        };
        self.check_bindings(&outcome.changes)?;
        let action = Action::Patch { ops };
        let proposal = self
            .propose(&session, &plan, action, outcome.changes, why.to_owned(), note)
            .await?;
        Ok(Some(proposal))
    }
}
