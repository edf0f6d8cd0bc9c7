//! Tools the model (and the offline engine) may call. `registry()` is the
//! one list of what the model sees. Each tool validates its arguments before
//! touching anything; the acting user comes from the session's context, never
//! from arguments.

pub mod list_plans;
pub mod plan_from_template;
pub mod plan_history;
pub mod remind;
pub mod set_preferences;
pub mod show_plan;
pub mod undo;
pub mod update_plan;

use crate::conversation::ToolCall;
use crate::hub::Hub;
use crate::llm::ToolSpec;
use crate::plan::{Actor, Plan, PlanError, PlanId, PlanLimits, PlanStatus, render};
use crate::planner::templates::Templates;
use crate::proposal::ConfirmPolicy;
use crate::store::{Store, StoreError};
use crate::user::UserId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Arc;
use tracing::Instrument;

/// Largest tool-argument payload accepted from a model.
const MAX_ARGUMENT_BYTES: usize = 256 * 1024;

/// Everything a tool may use, bound to one user's session.
pub struct ToolContext {
    pub user: UserId,
    pub actor: Actor,
    pub store: Arc<dyn Store>,
    pub hub: Hub,
    pub limits: PlanLimits,
    pub max_active_plans: usize,
    pub confirm: ConfirmPolicy,
    pub now: DateTime<Utc>,
    /// The user's time zone, for dates in their words.
    pub time_zone: chrono_tz::Tz,
    /// Pokes the notifier (a tool queued something to send).
    pub wake: Arc<tokio::sync::Notify>,
}

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// Bad arguments or a refused change: told to the model so it can
    /// correct itself. Nothing was written.
    #[error("{message}")]
    Invalid {
        message: String,
        current: Option<Box<Plan>>,
    },
    /// The store failed: the turn ends with an error to the user.
    #[error(transparent)]
    Fatal(StoreError),
}

impl ToolError {
    pub fn invalid(message: impl Into<String>) -> ToolError {
        ToolError::Invalid {
            message: message.into(),
            current: None,
        }
    }
}

impl From<PlanError> for ToolError {
    fn from(e: PlanError) -> ToolError {
        ToolError::invalid(e.to_string())
    }
}

impl From<StoreError> for ToolError {
    fn from(e: StoreError) -> ToolError {
        match e {
            StoreError::Conflict { current } => ToolError::Invalid {
                message: format!(
                    "plan {} changed meanwhile and is now at version {}; redo your change against the current plan",
                    current.id, current.version
                ),
                current: Some(current),
            },
            other => ToolError::Fatal(other),
        }
    }
}

#[async_trait]
pub trait Tool: Send + Sync {
    fn spec(&self) -> ToolSpec;
    async fn call(&self, ctx: &ToolContext, arguments: &str) -> Result<Value, ToolError>;
}

pub struct Registry {
    tools: Vec<Box<dyn Tool>>,
}

/// Every tool the model can call.
pub fn registry(templates: Arc<Templates>) -> Registry {
    Registry {
        tools: vec![
            Box::new(update_plan::UpdatePlan),
            Box::new(show_plan::ShowPlan),
            Box::new(list_plans::ListPlans),
            Box::new(plan_history::PlanHistory),
            Box::new(plan_from_template::PlanFromTemplate { templates }),
            Box::new(undo::Undo),
            Box::new(remind::Remind),
            Box::new(set_preferences::SetPreferences),
        ],
    }
}

/// The outcome of one tool call as the model will read it.
pub struct ToolOutput {
    pub content: String,
    pub ok: bool,
}

impl Registry {
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools.iter().map(|t| t.spec()).collect()
    }

    /// Runs one call. Model-correctable problems come back as an `error`
    /// object in the content; only store failures are `Err`.
    pub async fn call(&self, ctx: &ToolContext, call: &ToolCall) -> Result<ToolOutput, StoreError> {
        let span = tracing::info_span!("tool", tool = %call.name, user_id = %ctx.user, call_id = %call.id);
        async {
            let Some(tool) = self.tools.iter().find(|t| t.spec().name == call.name) else {
                let names: Vec<&str> = self.tools.iter().map(|t| t.spec().name).collect();
                return Ok(error_output(
                    &format!("unknown tool `{}`; available tools: {}", call.name, names.join(", ")),
                    None,
                ));
            };
            if call.arguments.len() > MAX_ARGUMENT_BYTES {
                return Ok(error_output(
                    &format!("arguments are larger than {MAX_ARGUMENT_BYTES} bytes"),
                    None,
                ));
            }
            match tool.call(ctx, &call.arguments).await {
                Ok(value) => {
                    tracing::info!("tool call succeeded");
                    Ok(ToolOutput {
                        content: value.to_string(),
                        ok: true,
                    })
                }
                Err(ToolError::Invalid { message, current }) => {
                    tracing::info!(error = %message, "tool call refused");
                    Ok(error_output(&message, current.as_deref()))
                }
                Err(ToolError::Fatal(e)) => {
                    tracing::error!(error = %e, "tool call failed in the store");
                    Err(e)
                }
            }
        }
        .instrument(span)
        .await
    }
}

fn error_output(message: &str, current: Option<&Plan>) -> ToolOutput {
    let mut value = json!({"error": message});
    if let Some(plan) = current {
        value["current_plan"] = Value::from(render::prompt_section(std::slice::from_ref(plan)));
    }
    ToolOutput {
        content: value.to_string(),
        ok: false,
    }
}

/// Parses tool arguments; unknown fields and wrong types are named.
pub fn parse_args<T: DeserializeOwned>(tool: &str, arguments: &str) -> Result<T, ToolError> {
    let text = if arguments.trim().is_empty() { "{}" } else { arguments };
    serde_json::from_str(text).map_err(|e| ToolError::invalid(format!("invalid arguments for {tool}: {e}")))
}

/// Loads one of the session user's plans; a foreign or unknown id is simply
/// not found.
pub async fn load_plan(ctx: &ToolContext, id: PlanId) -> Result<Plan, ToolError> {
    match ctx.store.get_plan(&ctx.user, id).await? {
        Some(plan) => Ok(plan),
        None => {
            let plans = ctx.store.list_plans(&ctx.user).await?;
            let ids: Vec<String> = plans
                .iter()
                .filter(|p| p.status == PlanStatus::Active)
                .map(|p| format!("{} ({})", p.id, p.title))
                .collect();
            Err(ToolError::invalid(format!(
                "plan {id} not found; active plans: {}",
                if ids.is_empty() {
                    "none".to_owned()
                } else {
                    ids.join(", ")
                }
            )))
        }
    }
}
