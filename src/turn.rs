//! One chat turn: record the user's message; answer a typed yes/no to an
//! open proposal directly (the model never confirms for the user); otherwise
//! call the model with the plans in the system prompt, run the tools it asks
//! for, and repeat until it answers in words or the round limit is reached.
//! Every message is flushed before the next step, and a model retry never
//! re-runs a tool: tool results are part of the transcript the retry sees.

use crate::app::App;
use crate::conversation::{self, Entry, Message};
use crate::hub::{Outlet, TurnState};
use crate::interpreter::{Interpretation, interpret};
use crate::llm::{ModelError, ModelRequest, RetryPolicy, complete_with_retry};
use crate::plan::{Actor, PlanStatus, render};
use crate::prompts::PromptError;
use crate::proposal::{Action, ProposalStatus};
use crate::proposals::{self, Decision};
use crate::protocol::{ErrorCode, ServerFrame};
use crate::store::StoreError;
use crate::tools::ToolError;
use crate::user::UserId;
use std::collections::VecDeque;
use tracing::Instrument;

/// Tool calls honoured from one model answer; the rest are refused.
const MAX_CALLS_PER_ROUND: usize = 16;

/// What a socket asks its turn runner to do.
#[derive(Debug, Clone)]
pub enum Work {
    Message { id: String, text: String },
    Confirm { proposal_id: String, accept: bool },
}

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
    #[error("message {0} was already received")]
    Duplicate(String),
}

/// How far back message ids are looked for: a client resends only what it
/// sent just before its connection dropped. The transcript entries read
/// when a user's turns start up (a process start, or the first socket
/// after all had closed), and the user messages remembered after that.
const DUPLICATE_WINDOW: usize = 200;
const RECENT_MESSAGES: usize = 64;

pub async fn perform(app: &App, user: &UserId, out: &Outlet, work: Work, state: &mut TurnState) {
    match work {
        Work::Message { id, text } => run(app, user, out, &id, &text, state).await,
        Work::Confirm { proposal_id, accept } => confirm(app, user, out, &proposal_id, accept).await,
    }
}

/// Runs one turn and answers on `out` with a `reply` or an `error`.
pub async fn run(app: &App, user: &UserId, out: &Outlet, message_id: &str, text: &str, state: &mut TurnState) {
    let span = tracing::info_span!("turn", user_id = %user, message_id = %message_id, model = %app.model.name());
    let result = turn(app, user, out, message_id, text, state)
        .instrument(span.clone())
        .await;
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
        Err(TurnError::Duplicate(id)) => {
            tracing::info!("message id already received; not run again");
            ServerFrame::error(
                ErrorCode::DuplicateMessage,
                format!("message `{id}` was already received, so it is not run again (see GET /api/conversation)"),
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

/// A `confirm` frame: apply or decline the proposal; the proposal and plan
/// frames go out from `decide`.
async fn confirm(app: &App, user: &UserId, out: &Outlet, proposal_id: &str, accept: bool) {
    let ctx = app.tool_context(user, Actor::User).await;
    let decision = proposals::decide(&ctx, Some(proposal_id), accept).await;
    let error = |code, message: String| out.send(&ServerFrame::error(code, message, None));
    match decision {
        Ok(Decision::Applied { .. } | Decision::Declined { .. }) => {}
        Ok(Decision::AlreadyDecided { proposal }) => out.send(&ServerFrame::Proposal {
            proposal: proposal.view(),
        }),
        Ok(Decision::Stale { .. }) => error(
            ErrorCode::ProposalStale,
            format!("proposal {proposal_id} is out of date: the plan changed since; the current plan was sent"),
        ),
        Ok(Decision::NotFound | Decision::NothingOpen) => error(
            ErrorCode::ProposalNotFound,
            format!(
                "there is no proposal `{}`",
                proposal_id.chars().take(64).collect::<String>()
            ),
        ),
        Err(ToolError::Invalid { message, .. }) => error(ErrorCode::ProposalNotFound, message),
        Err(ToolError::Fatal(e)) => {
            tracing::error!(user_id = %user, error = %e, "confirm failed");
            error(
                ErrorCode::Internal,
                "The server could not apply that; nothing changed.".into(),
            );
        }
    }
}

/// The answer to a typed yes/no, or `None` if nothing waits for one.
async fn typed_confirmation(app: &App, user: &UserId, accept: bool) -> Result<Option<String>, TurnError> {
    let ctx = app.tool_context(user, Actor::User).await;
    let text = match proposals::decide(&ctx, None, accept).await {
        Ok(Decision::NothingOpen) => return Ok(None),
        Ok(decision) => describe(&decision),
        Err(ToolError::Invalid { message, .. }) => format!("I couldn't apply that: {message}"),
        Err(ToolError::Fatal(e)) => return Err(e.into()),
    };
    Ok(Some(text))
}

/// How a decision reads in the chat.
pub fn describe(decision: &Decision) -> String {
    match decision {
        Decision::Applied { plan, proposal } if matches!(proposal.action, Action::Create { .. }) => {
            format!("Done — your plan is set up.\n{}", render::for_people(plan))
        }
        Decision::Applied { plan, .. } if plan.status == PlanStatus::Cancelled => {
            format!("Done — “{}” is cancelled.", plan.title)
        }
        Decision::Applied { plan, .. } => format!("Done.\n{}", render::for_people(plan)),
        Decision::Declined { .. } => "OK, I won't make that change.".into(),
        Decision::Stale {
            current: Some(plan), ..
        } => format!(
            "That proposal is out of date: the plan changed after I made it, so I didn't apply it. Here it is now:\n{}",
            render::for_people(plan)
        ),
        Decision::Stale { current: None, .. } => "That proposal is out of date: its plan no longer exists.".into(),
        Decision::AlreadyDecided { proposal } => format!(
            "That proposal was already {}.",
            match proposal.status {
                ProposalStatus::Open => "open",
                ProposalStatus::Accepted => "accepted",
                ProposalStatus::Declined => "declined",
                ProposalStatus::Stale => "out of date",
                ProposalStatus::Superseded => "replaced by a newer one",
            }
        ),
        Decision::NotFound | Decision::NothingOpen => "There is nothing waiting for your confirmation.".into(),
    }
}

/// The user's recent (id, text) pairs: kept in the turn state, read from
/// the transcript once when it is empty (a read of 200 entries costs about
/// five history reads, so it stays off the per-turn path).
async fn recent_messages<'s>(
    app: &App,
    user: &UserId,
    state: &'s mut TurnState,
) -> Result<&'s mut VecDeque<(String, String)>, TurnError> {
    if state.recent.is_none() {
        let entries = app.store.recent_messages(user, DUPLICATE_WINDOW).await?;
        let mut recent: VecDeque<(String, String)> = entries
            .into_iter()
            .filter_map(|e| match e.message {
                Message::User { id: Some(id), text } => Some((id, text)),
                _ => None,
            })
            .collect();
        while recent.len() > RECENT_MESSAGES {
            recent.pop_front();
        }
        state.recent = Some(recent);
    }
    Ok(state.recent.get_or_insert_default())
}

async fn turn(
    app: &App,
    user: &UserId,
    out: &Outlet,
    message_id: &str,
    text: &str,
    state: &mut TurnState,
) -> Result<String, TurnError> {
    let store = &app.store;
    // A client that lost its socket resends what it could not see arrive.
    // Turns run one at a time per user (`state` is behind their lock), so
    // this check cannot race its twin. Same id and same words: a client
    // numbering its messages per connection ("1", "2", …) still has its new
    // messages run.
    let recent = recent_messages(app, user, state).await?;
    if recent.iter().any(|(id, said)| id == message_id && said == text) {
        return Err(TurnError::Duplicate(message_id.to_owned()));
    }
    store
        .append_message(
            user,
            &Entry {
                at: app.now(),
                message: Message::User {
                    text: text.to_owned(),
                    id: Some(message_id.to_owned()),
                },
            },
        )
        .await?;
    // Remembered once stored: a turn that fails later was still received.
    recent.push_back((message_id.to_owned(), text.to_owned()));
    if recent.len() > RECENT_MESSAGES {
        recent.pop_front();
    }

    let local_now = app.local_now(user).await;
    if let Interpretation::Confirmation { accept } = interpret(text, local_now, &app.templates)
        && let Some(reply) = typed_confirmation(app, user, accept).await?
    {
        let message = Message::Assistant {
            text: reply.clone(),
            tool_calls: vec![],
            notification: None,
        };
        store.append_message(user, &Entry { at: app.now(), message }).await?;
        return Ok(reply);
    }

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
        let local_now = app.local_now(user).await;
        let system = app.prompts.system(user.as_str(), &plans, local_now)?;
        let history = store.recent_messages(user, app.config.limits.history_messages).await?;
        let messages = conversation::repair(history.into_iter().map(|e| e.message).collect());
        let request = ModelRequest {
            system,
            messages,
            tools: app.tools.specs(),
            plans,
            now: local_now,
        };
        let answer = complete_with_retry(app.model.as_ref(), &request, &sink, policy).await?;
        tracing::debug!(round, tool_calls = answer.tool_calls.len(), "model answered");

        if answer.tool_calls.is_empty() {
            let message = Message::Assistant {
                text: answer.text.clone(),
                tool_calls: vec![],
                notification: None,
            };
            store.append_message(user, &Entry { at: app.now(), message }).await?;
            return Ok(answer.text);
        }
        let message = Message::Assistant {
            text: answer.text,
            tool_calls: answer.tool_calls.clone(),
            notification: None,
        };
        store.append_message(user, &Entry { at: app.now(), message }).await?;
        for (n, call) in answer.tool_calls.iter().enumerate() {
            let content = if n >= MAX_CALLS_PER_ROUND {
                format!("{{\"error\":\"at most {MAX_CALLS_PER_ROUND} tool calls per answer; this one was not run\"}}")
            } else {
                let actor = if app.model.acts_for_user() {
                    Actor::User
                } else {
                    Actor::Model
                };
                let ctx = app.tool_context(user, actor).await;
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
