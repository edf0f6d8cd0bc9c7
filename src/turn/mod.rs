//! One chat turn: record the user's message; answer a typed yes/no to an
//! open proposal directly (the model never confirms for the user);
//! otherwise let the engine answer — the offline engine, or a model called
//! with the plans in the system prompt, running the tools it asks for
//! until it answers in words or the round limit is reached. What the user
//! said is flushed before anything else happens, and the reply before it
//! is sent; tool calls and results ride on the next flush (the tool's own
//! change or the reply). A model retry never re-runs a tool: tool results
//! are part of the transcript the retry sees. What the turn
//! says goes to every socket of the user (see `crate::events`).

use crate::conversation::Message;
use crate::events::{Event, Publisher};
use crate::hub::{Hub, Outlet, TurnState};
use crate::interpreter::{Interpretation, interpret_in};
use crate::llm::{ChatModel, ModelError, RetryPolicy};
use crate::offline::{OfflineEngine, Step};
use crate::plan::{Actor, Plan, PlanStatus, render};
use crate::planner::templates::Templates;
use crate::prompts::PromptError;
use crate::prompts::Prompts;
use crate::proposal::ProposalStatus;
use crate::protocol::{ErrorCode, ServerFrame};
use crate::service::{Decision, Failure, Service, ServiceError, Session};
use crate::store::{Store, StoreError};
use crate::tools::{Registry, ToolContext};
use crate::user::UserId;
use crate::wording::Wording;
use chrono::DateTime;
use chrono_tz::Tz;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Arc;
use tracing::Instrument;

mod answer;
mod deltas;
mod model;
mod offer;
mod quota;
mod transcript;
use transcript::Transcript;

/// Tool calls honoured from one model answer; the rest are refused.
const MAX_CALLS_PER_ROUND: usize = 16;

/// What turns work with, built once by the app.
#[derive(Clone)]
pub(crate) struct Turns {
    pub(crate) service: Service,
    /// The transcript (read once per turn, appended to as it goes).
    pub(crate) store: Arc<dyn Store>,
    /// Publishes what the turn says to the user's sockets.
    pub(crate) hub: Hub,
    pub(crate) engine: Engine,
    pub(crate) tools: Arc<Registry>,
    pub(crate) prompts: Arc<Prompts>,
    pub(crate) templates: Arc<Templates>,
    /// How much of the conversation each turn reads and carries.
    pub(crate) history: History,
    /// Model rounds per turn.
    pub(crate) max_tool_rounds: usize,
    /// How one model call is retried.
    pub(crate) retry: RetryPolicy,
    /// Model tokens per user per day.
    pub(crate) model_tokens_per_day: u32,
}

/// How much of the conversation a turn reads and a model call carries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct History {
    /// Entries read per turn.
    pub(crate) entries: usize,
    /// Whole earlier turns carried to the model with the current one.
    pub(crate) turns: usize,
    /// Longest answer text kept from the model, in characters.
    pub(crate) max_answer_chars: usize,
}

impl From<&crate::config::Limits> for History {
    fn from(l: &crate::config::Limits) -> History {
        History {
            entries: l.history_messages,
            turns: l.history_turns,
            max_answer_chars: l.max_answer_chars,
        }
    }
}

/// Who answers the user's messages.
#[derive(Clone)]
pub enum Engine {
    /// The built-in engine: rules and templates, no model.
    Offline(Arc<OfflineEngine>),
    /// An OpenAI-compatible model (or, in tests, a scripted one).
    Model(Arc<dyn ChatModel>),
}

impl Engine {
    /// A short name for logs ("offline", "openai:gpt-4o-mini").
    pub fn name(&self) -> String {
        match self {
            Engine::Offline(_) => "offline".into(),
            Engine::Model(model) => model.name(),
        }
    }

    /// Who the history names for changes made in a turn: the offline
    /// engine only carries out what the user literally asked.
    fn actor(&self) -> Actor {
        match self {
            Engine::Offline(_) => Actor::User,
            Engine::Model(_) => Actor::Model,
        }
    }

    /// The model, if one is configured (it also words notifications).
    pub(crate) fn model(&self) -> Option<&Arc<dyn ChatModel>> {
        match self {
            Engine::Offline(_) => None,
            Engine::Model(model) => Some(model),
        }
    }
}

impl From<Arc<OfflineEngine>> for Engine {
    fn from(engine: Arc<OfflineEngine>) -> Engine {
        Engine::Offline(engine)
    }
}

impl<M: ChatModel> From<Arc<M>> for Engine {
    fn from(model: Arc<M>) -> Engine {
        Engine::Model(model)
    }
}

impl From<Arc<dyn ChatModel>> for Engine {
    fn from(model: Arc<dyn ChatModel>) -> Engine {
        Engine::Model(model)
    }
}

/// What a socket asks its turn runner to do.
#[derive(Debug, Clone)]
pub(crate) enum Work {
    Message { id: String, text: String },
    Confirm { proposal_id: String, accept: bool },
}

#[derive(Debug, thiserror::Error)]
enum TurnError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Failed(#[from] Failure),
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error("gave up after {0} tool rounds")]
    Rounds(usize),
    #[error("message {0} was already received")]
    Duplicate(String),
    #[error("the day's model tokens are used up; more in {0:?}")]
    Quota(std::time::Duration),
}

impl From<StoreError> for TurnError {
    fn from(e: StoreError) -> TurnError {
        TurnError::Failed(Failure::Store(e))
    }
}

/// How far back message ids are looked for: a client resends only what it
/// sent just before its connection dropped. The transcript entries read
/// when a user's turns start up (a process start, or the first socket
/// after all had closed), and the user messages remembered after that.
const DUPLICATE_WINDOW: usize = 200;
const RECENT_MESSAGES: usize = 64;

pub(crate) async fn perform(app: &Turns, user: &UserId, out: &Outlet, work: Work, state: &mut TurnState) {
    match work {
        Work::Message { id, text } => run(app, user, out, &id, &text, state).await,
        Work::Confirm { proposal_id, accept } => confirm(app, user, out, &proposal_id, accept).await,
    }
}

/// Runs one turn and answers with a `reply` or an `error`.
pub(crate) async fn run(app: &Turns, user: &UserId, out: &Outlet, message_id: &str, text: &str, state: &mut TurnState) {
    let span = tracing::info_span!("turn", user_id = %user, message_id = %message_id, engine = %app.engine.name());
    let started = std::time::Instant::now();
    let result = turn(app, user, message_id, text, state).instrument(span.clone()).await;
    let metrics = app.service.metrics();
    metrics.turns.inc();
    metrics.turn_seconds.observe(started.elapsed().as_secs_f64());
    let _entered = span.enter();
    let failed = |code, message: String| Event::TurnFailed {
        reply_to: message_id.to_owned(),
        code,
        message,
    };
    let event = match result {
        Ok(reply) => Event::Reply {
            reply_to: message_id.to_owned(),
            text: reply,
        },
        Err(TurnError::Model(e)) => {
            tracing::warn!(error = %e, "turn ended: model failed");
            failed(
                ErrorCode::ModelUnavailable,
                format!("The assistant could not answer ({e}). Changes already confirmed are saved; please try again."),
            )
        }
        Err(TurnError::Rounds(n)) => {
            tracing::warn!(rounds = n, "turn ended: tool round limit");
            failed(
                ErrorCode::ToolRoundsExhausted,
                format!(
                    "The assistant stopped after {n} tool rounds without finishing. Changes already confirmed are saved."
                ),
            )
        }
        Err(TurnError::Quota(wait)) => {
            tracing::info!(wait_secs = wait.as_secs(), "turn refused: daily model tokens used up");
            let hours = wait.as_secs().div_ceil(3600).max(1);
            failed(
                ErrorCode::QuotaExceeded,
                format!(
                    "You have used today's share of the assistant ({} tokens a day); it is available again in about \
                     {hours} h. Your plans and reminders keep working meanwhile.",
                    app.model_tokens_per_day
                ),
            )
        }
        Err(TurnError::Duplicate(id)) => {
            // About the frame this socket sent: only it is told.
            tracing::info!("message id already received; not run again");
            out.send(&ServerFrame::error(
                ErrorCode::DuplicateMessage,
                format!("message `{id}` was already received, so it is not run again (see GET /api/conversation)"),
                Some(message_id.to_owned()),
            ));
            return;
        }
        Err(e @ (TurnError::Failed(_) | TurnError::Prompt(_))) => {
            tracing::error!(error = %e, "turn failed");
            failed(
                ErrorCode::Internal,
                "The server could not complete this turn. Changes already confirmed are saved.".into(),
            )
        }
    };
    app.hub.publish(user, event);
}

/// A `confirm` frame: apply or decline the proposal; the proposal and plan
/// events go out from the service. Errors answer the frame's socket.
async fn confirm(app: &Turns, user: &UserId, out: &Outlet, proposal_id: &str, accept: bool) {
    let session = app.service.session(user, Actor::User).await;
    let decision = app.service.decide(&session, Some(proposal_id), accept).await;
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
        Err(ServiceError::Refused(refusal)) => error(ErrorCode::ProposalNotFound, refusal.to_string()),
        Err(ServiceError::Failed(e)) => {
            tracing::error!(user_id = %user, error = %e, "confirm failed");
            error(
                ErrorCode::Internal,
                "The server could not apply that; nothing changed.".into(),
            );
        }
    }
}

/// The answer to a typed yes/no, or `None` if nothing waits for one.
async fn typed_confirmation(app: &Turns, session: &Session, accept: bool) -> Result<Option<String>, TurnError> {
    let text = match app.service.decide(session, None, accept).await {
        Ok(Decision::NothingOpen) => return Ok(None),
        Ok(decision) => describe(app.service.wording(), &decision, app.service.local_now(session)),
        Err(ServiceError::Refused(refusal)) => app
            .service
            .wording()
            .reply("cannot_apply", &serde_json::json!({ "message": refusal.to_string() })),
        Err(ServiceError::Failed(e)) => return Err(e.into()),
    };
    Ok(Some(text))
}

/// How a decision reads in the chat (`decision` in `replies.j2`).
pub(crate) fn describe(wording: &Wording, decision: &Decision, now: DateTime<Tz>) -> String {
    #[derive(Serialize)]
    struct Facts<'a> {
        outcome: &'a str,
        plan: Option<String>,
        title: Option<&'a str>,
        status: Option<ProposalStatus>,
    }
    let rendered = |plan: &Plan| Some(render::for_people(plan, now));
    let facts = match decision {
        Decision::Applied {
            plan, created: true, ..
        } => Facts {
            outcome: "created",
            plan: rendered(plan),
            title: Some(&plan.title),
            status: None,
        },
        Decision::Applied { plan, .. } if plan.status == PlanStatus::Cancelled => Facts {
            outcome: "cancelled",
            plan: None,
            title: Some(&plan.title),
            status: None,
        },
        Decision::Applied { plan, .. } => Facts {
            outcome: "applied",
            plan: rendered(plan),
            title: Some(&plan.title),
            status: None,
        },
        Decision::Declined { .. } => Facts {
            outcome: "declined",
            plan: None,
            title: None,
            status: None,
        },
        Decision::Stale { current, .. } => Facts {
            outcome: if current.is_some() { "stale" } else { "gone" },
            plan: current.as_ref().and_then(rendered),
            title: current.as_ref().map(|p| p.title.as_str()),
            status: None,
        },
        Decision::AlreadyDecided { proposal } => Facts {
            outcome: "already",
            plan: None,
            title: None,
            status: Some(proposal.status),
        },
        Decision::NotFound | Decision::NothingOpen => Facts {
            outcome: "nothing",
            plan: None,
            title: None,
            status: None,
        },
    };
    wording.reply("decision", &facts)
}

/// The user's recent (id, text) pairs: kept in the turn state, read from
/// the transcript once when it is empty (a read of 200 entries costs about
/// five history reads, so it stays off the per-turn path) — and every
/// turn on a store other instances write, whose turns this state never saw.
async fn recent_messages<'s>(
    app: &Turns,
    user: &UserId,
    state: &'s mut TurnState,
) -> Result<&'s mut VecDeque<(String, String)>, TurnError> {
    if state.recent.is_none() || app.store.shared() {
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
    app: &Turns,
    user: &UserId,
    message_id: &str,
    text: &str,
    state: &mut TurnState,
) -> Result<String, TurnError> {
    // A client that lost its socket resends what it could not see arrive.
    // Turns run one at a time per user (`state` is behind their lock), so
    // this check cannot race its twin. Same id and same words: a client
    // numbering its messages per connection ("1", "2", …) still has its new
    // messages run.
    let recent = recent_messages(app, user, state).await?;
    if recent.iter().any(|(id, said)| id == message_id && said == text) {
        return Err(TurnError::Duplicate(message_id.to_owned()));
    }
    let narrow = matches!(app.engine, Engine::Model(_));
    let mut transcript = Transcript::open(app, user, narrow).await?;
    transcript
        .append(Message::User {
            text: text.to_owned(),
            id: Some(message_id.to_owned()),
        })
        .await?;
    // Remembered once stored: a turn that fails later was still received.
    recent.push_back((message_id.to_owned(), text.to_owned()));
    if recent.len() > RECENT_MESSAGES {
        recent.pop_front();
    }
    app.hub.publish(
        user,
        Event::Message {
            id: message_id.to_owned(),
            text: text.to_owned(),
        },
    );

    let session = app.service.session(user, app.engine.actor()).await;
    let local_now = app.service.local_now(&session);
    // With the offline engine, a message may answer the question it just
    // asked about a goal being set up.
    // The conversation as the offline engine reads it, built once.
    let history = match &app.engine {
        Engine::Offline(_) => transcript.messages(),
        Engine::Model(_) => Vec::new(),
    };
    let pending = match &app.engine {
        Engine::Offline(engine) => engine.pending(&history, local_now, app.service.wording()),
        Engine::Model(_) => None,
    };
    let reading = interpret_in(text, local_now, &app.templates, pending.as_ref());
    if let Interpretation::Confirmation { accept } = reading
        && let Some(reply) = typed_confirmation(app, &session, accept).await?
    {
        transcript.say(&reply).await?;
        return Ok(reply);
    }
    match &app.engine {
        Engine::Offline(engine) => {
            let said = Said {
                text,
                reading: &reading,
                history: &history,
            };
            offline_turn(app, &session, engine, &mut transcript, said, local_now).await
        }
        Engine::Model(model) => {
            let call = model::ModelCall {
                model: model.as_ref(),
                message_id,
                reading: &reading,
            };
            model::model_turn(app, &session, call, &mut transcript).await
        }
    }
}

/// The message the offline engine answers: its words, how they were read,
/// and the conversation up to it.
struct Said<'a> {
    text: &'a str,
    reading: &'a Interpretation,
    history: &'a [Message],
}

async fn offline_turn(
    app: &Turns,
    session: &Session,
    engine: &OfflineEngine,
    transcript: &mut Transcript<'_>,
    said: Said<'_>,
    now: DateTime<Tz>,
) -> Result<String, TurnError> {
    let plans = app.service.active_plans(&session.user).await?;
    let answer = match engine.decide(
        said.text,
        said.reading,
        &plans,
        said.history,
        now,
        app.service.wording(),
    ) {
        Step::Say(answer) => answer,
        Step::Call(call) => {
            let record = call.record();
            transcript
                .note(Message::Assistant {
                    text: String::new(),
                    tool_calls: vec![record.clone()],
                    notification: None,
                })
                .await?;
            let ctx = ToolContext {
                service: &app.service,
                session,
            };
            let outcome = engine.run(ctx, &call).await?;
            transcript
                .note(Message::Tool {
                    call_id: record.id,
                    name: record.name,
                    content: outcome.content(),
                })
                .await?;
            engine.explain(app.service.wording(), &call, &outcome, &plans, now)
        }
    };
    // Nothing streams: the whole answer goes out as the `reply`, once stored.
    transcript.say(&answer).await?;
    Ok(answer)
}
