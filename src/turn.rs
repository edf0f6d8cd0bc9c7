//! One chat turn: record the user's message, then call the model with the
//! plans in the system prompt, run the tools it asks for, and repeat until it
//! answers in words or the round limit is reached. Every message is flushed
//! before the next step, and a model retry never re-runs a tool: tool results
//! are part of the transcript the retried call sees.

use crate::app::App;
use crate::conversation::{self, Entry, Message};
use crate::hub::Outlet;
use crate::llm::{ModelError, ModelRequest, RetryPolicy, complete_with_retry};
use crate::plan::{Actor, PlanStatus};
use crate::prompts::PromptError;
use crate::protocol::{ErrorCode, ServerFrame};
use crate::store::StoreError;
use crate::tools::ToolContext;
use crate::user::UserId;
use tracing::Instrument;

/// Tool calls honoured from one model answer; the rest are refused.
const MAX_CALLS_PER_ROUND: usize = 16;

#[derive(Debug, thiserror::Error)]
enum TurnError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error("gave up after {0} tool rounds")]
    Rounds(usize),
}

/// Runs one turn and answers on `out` with a `reply` or an `error`.
pub async fn run(app: &App, user: &UserId, out: &Outlet, message_id: &str, text: &str) {
    let span = tracing::info_span!("turn", user_id = %user, message_id = %message_id, model = %app.model.name());
    let result = turn(app, user, out, message_id, text).instrument(span.clone()).await;
    let _entered = span.enter();
    let frame = match result {
        Ok(reply) => ServerFrame::Reply {
            reply_to: message_id.to_owned(),
            text: reply,
        },
        Err(TurnError::Model(e)) => {
            tracing::warn!(error = %e, "turn ended: model failed");
            ServerFrame::error(
                ErrorCode::ModelUnavailable,
                format!("The assistant could not answer ({e}). Changes already confirmed are saved; please try again."),
                Some(message_id.to_owned()),
            )
        }
        Err(TurnError::Rounds(n)) => {
            tracing::warn!(rounds = n, "turn ended: tool round limit");
            ServerFrame::error(
                ErrorCode::ToolRoundsExhausted,
                format!(
                    "The assistant stopped after {n} tool rounds without finishing. Changes already confirmed are saved."
                ),
                Some(message_id.to_owned()),
            )
        }
        Err(e @ (TurnError::Store(_) | TurnError::Prompt(_))) => {
            tracing::error!(error = %e, "turn failed");
            ServerFrame::error(
                ErrorCode::Internal,
                "The server could not complete this turn. Changes already confirmed are saved.",
                Some(message_id.to_owned()),
            )
        }
    };
    out.send(&frame);
}

async fn turn(app: &App, user: &UserId, out: &Outlet, message_id: &str, text: &str) -> Result<String, TurnError> {
    let store = &app.store;
    store
        .append_message(
            user,
            &Entry {
                at: app.now(),
                message: Message::User { text: text.to_owned() },
            },
        )
        .await?;
    let policy = RetryPolicy::from_config(&app.config.llm);
    let rounds = app.config.limits.max_tool_rounds;
    let sink = |delta: &str| {
        out.send(&ServerFrame::Delta {
            reply_to: message_id.to_owned(),
            text: delta.to_owned(),
        })
    };

    for round in 0..rounds {
        let plans: Vec<_> = store
            .list_plans(user)
            .await?
            .into_iter()
            .filter(|p| p.status == PlanStatus::Active)
            .collect();
        let system = app.prompts.system(user.as_str(), &plans, app.now())?;
        let history = store.recent_messages(user, app.config.limits.history_messages).await?;
        let messages = conversation::repair(history.into_iter().map(|e| e.message).collect());
        let request = ModelRequest {
            system,
            messages,
            tools: app.tools.specs(),
            plans,
        };
        let answer = complete_with_retry(app.model.as_ref(), &request, &sink, policy).await?;
        tracing::debug!(round, tool_calls = answer.tool_calls.len(), "model answered");

        if answer.tool_calls.is_empty() {
            store
                .append_message(
                    user,
                    &Entry {
                        at: app.now(),
                        message: Message::Assistant {
                            text: answer.text.clone(),
                            tool_calls: vec![],
                        },
                    },
                )
                .await?;
            return Ok(answer.text);
        }
        store
            .append_message(
                user,
                &Entry {
                    at: app.now(),
                    message: Message::Assistant {
                        text: answer.text,
                        tool_calls: answer.tool_calls.clone(),
                    },
                },
            )
            .await?;
        for (n, call) in answer.tool_calls.iter().enumerate() {
            let content = if n >= MAX_CALLS_PER_ROUND {
                format!("{{\"error\":\"at most {MAX_CALLS_PER_ROUND} tool calls per answer; this one was not run\"}}")
            } else {
                let ctx = ToolContext {
                    user: user.clone(),
                    actor: Actor::Model,
                    store: store.clone(),
                    hub: app.hub.clone(),
                    limits: app.config.plan,
                    max_active_plans: app.config.limits.max_active_plans,
                    now: app.now(),
                };
                app.tools.call(&ctx, call).await?.content
            };
            let message = Message::Tool {
                call_id: call.id.clone(),
                name: call.name.clone(),
                content,
            };
            store.append_message(user, &Entry { at: app.now(), message }).await?;
        }
    }
    Err(TurnError::Rounds(rounds))
}
