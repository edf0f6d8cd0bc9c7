//! A turn answered by the configured model: the system prompt with the
//! plans as they are now, the window of the conversation, the tools the
//! turn offers, and the tool rounds until the model answers in words.

use super::answer::{bounded, recorded};
use super::transcript::Transcript;
use super::{MAX_CALLS_PER_ROUND, TurnError, Turns, deltas, offer, quota};
use crate::conversation::{Message, ToolCall};
use crate::events::{Event, Publisher};
use crate::interpreter::Interpretation;
use crate::llm::{ChatModel, ModelRequest, complete_with_retry};
use crate::prompts::Facts;
use crate::service::Session;
use crate::tools::{Offer, ToolContext};

/// A turn for the configured model: which model, the message it answers
/// and how the interpreter read it (which tools the message calls for).
pub(super) struct ModelCall<'a> {
    pub(super) model: &'a dyn ChatModel,
    pub(super) message_id: &'a str,
    pub(super) reading: &'a Interpretation,
}

pub(super) async fn model_turn(
    app: &Turns,
    session: &Session,
    call: ModelCall<'_>,
    transcript: &mut Transcript<'_>,
) -> Result<String, TurnError> {
    let ModelCall {
        model,
        message_id,
        reading,
    } = call;
    let user = &session.user;
    let policy = app.retry;
    let rounds = app.max_tool_rounds;
    let deltas = deltas::Deltas::new(|text: String| {
        app.hub.publish(
            user,
            Event::Delta {
                reply_to: message_id.to_owned(),
                text,
            },
        );
    });
    let sink = |delta: &str| deltas.push(delta);
    let ctx = ToolContext {
        service: &app.service,
        session,
    };
    let summary = transcript.summarize(session.tz).await?;
    let quota = quota::Quota::new(app, user);
    let mut offered = None;
    for round in 0..rounds {
        let (plans, finished) = app.service.plans_in_view(user).await?;
        let messages = transcript.for_model();
        let offer = *offered.get_or_insert_with(|| offer::first(&app.tools, reading, &messages, !plans.is_empty()));
        let request = ModelRequest {
            system: app.prompts.system(&Facts {
                plans: &plans,
                finished: &finished,
                summary: summary.as_deref(),
                now: app.service.local_now(session),
            })?,
            messages,
            tools: app.tools.specs_for(offer),
        };
        quota.before_call().await?;
        let called = std::time::Instant::now();
        let answer = complete_with_retry(model, &request, &sink, policy).await;
        let outcome = answer.as_ref().map_or_else(|e| e.class(), |_| "ok");
        app.service.metrics().model_call(called.elapsed(), outcome);
        deltas.flush();
        let answer = answer?;
        quota.after_call(&request, &answer).await?;
        tracing::debug!(round, tool_calls = answer.tool_calls.len(), "model answered");
        let text = bounded(answer.text, app.history.max_answer_chars);
        if answer.tool_calls.is_empty() {
            transcript.say(&text).await?;
            return Ok(text);
        }
        transcript
            .note(Message::Assistant {
                text,
                tool_calls: answer.tool_calls.iter().map(recorded).collect(),
                notification: None,
            })
            .await?;
        offered = Some(run_calls(app, ctx, &answer.tool_calls, offer, transcript).await?);
    }
    Err(TurnError::Rounds(rounds))
}

/// Runs the calls of one answer in order, each result stored as it comes;
/// returns what the next call offers (a `load_tools` call adds to it).
async fn run_calls(
    app: &Turns,
    ctx: ToolContext<'_>,
    calls: &[ToolCall],
    mut offer: Offer,
    transcript: &mut Transcript<'_>,
) -> Result<Offer, TurnError> {
    for (n, call) in calls.iter().enumerate() {
        let content = if n >= MAX_CALLS_PER_ROUND {
            format!("{{\"error\":\"at most {MAX_CALLS_PER_ROUND} tool calls per answer; this one was not run\"}}")
        } else {
            offer = offer::after(&app.tools, offer, call);
            app.tools.call(ctx, call).await?.content
        };
        transcript
            .note(Message::Tool {
                call_id: call.id.clone(),
                name: call.name.clone(),
                content,
            })
            .await?;
    }
    Ok(offer)
}
