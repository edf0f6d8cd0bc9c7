//! A replan written by the configured model: after a step failed for good
//! (and the template has no fallback), the model gets the person's plans
//! in its system prompt, the failure in a message, and only `update_plan`;
//! the operations it calls with become a proposal for the person's yes.
//! Anything else — no model, an error, a stall, text only, a change to
//! another plan, operations that do not apply — leaves the offline replan.

use super::Executor;
use super::run::RunError;
use crate::conversation::Message;
use crate::execution::Attempt;
use crate::llm::{ChatModel, ModelRequest, ToolSpec};
use crate::plan::{Actor, Plan};
use crate::prompts::{Facts, Prompts};
use crate::proposal::Proposal;
use crate::service::ServiceError;
use crate::tools::Tool as _;
use crate::tools::update_plan::{Args, UpdatePlan};
use std::sync::Arc;
use std::time::Duration;

/// The longest wait for the model's replan.
const REPLAN_TIMEOUT: Duration = Duration::from_secs(30);

/// What the engine needs to ask a model for a replan.
#[derive(Clone)]
pub struct Replanner {
    pub(crate) model: Option<Arc<dyn ChatModel>>,
    pub(crate) prompts: Arc<Prompts>,
    /// `update_plan`'s spec alone.
    pub(crate) tools: Arc<[ToolSpec]>,
}

impl Executor {
    /// The model's replan for the failed step, stored as a proposal;
    /// `None` when there is no model or it proposed nothing usable.
    pub(super) async fn model_replan(
        &self,
        attempt: &Attempt,
        plan: &Plan,
        error: &str,
    ) -> Result<Option<Proposal>, RunError> {
        let Some(model) = &self.replanner.model else {
            return Ok(None);
        };
        let user = &attempt.user;
        let session = self.service.session(user, Actor::Model).await;
        let plans = self.service.active_plans(user).await?;
        let prompts = &self.replanner.prompts;
        let facts = Facts {
            plans: &plans,
            finished: &[],
            summary: None,
            now: self.now().with_timezone(&session.tz),
        };
        let (Ok(system), Ok(ask)) = (prompts.system(&facts), prompts.replan(plan, &attempt.step_id, error)) else {
            return Ok(None);
        };
        let request = ModelRequest {
            system,
            messages: vec![Message::User { text: ask, id: None }],
            tools: self.replanner.tools.clone(),
        };
        let sink = |_: &str| {};
        let answer = match tokio::time::timeout(REPLAN_TIMEOUT, model.complete(&request, &sink)).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the model could not replan; the offline replan is proposed");
                return Ok(None);
            }
            Err(_) => {
                tracing::warn!("the model did not replan in time; the offline replan is proposed");
                return Ok(None);
            }
        };
        for call in answer.tool_calls.iter().filter(|c| c.name == "update_plan") {
            let Ok(mut raw) = serde_json::from_str::<serde_json::Value>(&call.arguments) else {
                continue;
            };
            UpdatePlan.localize(&session, &mut raw);
            let Ok(args) = serde_json::from_value::<Args>(raw) else {
                continue;
            };
            let (Some(id), Some(ops)) = (args.plan_id, args.ops) else {
                continue;
            };
            if id != plan.id || ops.is_empty() {
                continue;
            }
            let why = format!("replan by the model: {} failed", attempt.step_id);
            match self.service.propose_replan(user, id, ops, &why, None).await {
                Ok(Some(proposal)) => return Ok(Some(proposal)),
                Ok(None) => {}
                Err(ServiceError::Refused(r)) => tracing::info!(reason = %r, "the model's replan was refused"),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }
}
