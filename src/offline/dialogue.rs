//! What the offline engine does with a message: a new goal is proposed
//! from its template (missing details asked for one at a time; the goal
//! being set up is read back from the transcript, so the engine keeps no
//! state of its own), a command becomes one tool call against the user's
//! plans (see `commands`), a "which one?" is answered by re-running the
//! command with the option picked, anything else gets an answer in words.
//! Pure: the engine runs the call afterwards.

use super::commands;
use super::matching::choose;
use super::replies;
use super::{Call, Step};
use crate::conversation::Message;
use crate::interpreter::{Interpretation, Pending, interpret, interpret_in};
use crate::plan::{Plan, PlanId};
use crate::planner::templates::Templates;
use crate::planner::{self, expand, missing_slot};
use crate::tools::update_plan;
use crate::wording::Wording;
use chrono::DateTime;
use chrono_tz::Tz;
use serde_json::{Map, Value};

/// What the engine knows for one answer.
#[derive(Clone, Copy)]
pub(super) struct Context<'a> {
    pub(crate) templates: &'a Templates,
    /// The words steward says.
    pub(crate) wording: &'a Wording,
    /// The user's active plans.
    pub(crate) plans: &'a [Plan],
    /// The conversation so far, ending with the message being answered.
    pub(crate) history: &'a [Message],
    /// The user's local time.
    pub(crate) now: DateTime<Tz>,
    /// The plan the user last saw or acted on (see `matching`).
    pub(crate) referent: Option<PlanId>,
    /// The option picked in answer to a "which one?".
    pub(crate) choice: Option<usize>,
}

/// Decides the engine's next step for the message `said`, read as
/// `reading` (read with the goal being set up, if any: see [`pending`]).
pub(super) fn decide(cx: &Context<'_>, said: &str, reading: &Interpretation) -> Step {
    // An answer to "which one?" reads as talk ("Ben's", "the second") or is
    // a few words of a title; a command or a question is a new request.
    let answer_like = match reading {
        Interpretation::Chat => true,
        Interpretation::NewGoal { .. } => said.split_whitespace().count() <= 4,
        _ => false,
    };
    if answer_like && let Some(step) = answer_to_choice(cx, said) {
        return step;
    }
    match reading {
        Interpretation::Chat => match pending(cx) {
            // An answer that was not understood: the question again.
            Some(p) => Step::Say(replies::not_caught(cx.wording, &question(cx, &p))),
            None => Step::Say(replies::chat(cx.wording, said)),
        },
        Interpretation::Unclear { problem } => Step::Say(replies::unclear_time(cx.wording, *problem)),
        Interpretation::Confirmation { .. } => Step::Say(replies::say(cx.wording, "nothing_to_confirm")),
        Interpretation::NewGoal { kind, slots } => goal(cx, kind, slots.clone()),
        Interpretation::Command(command) => match commands::command(cx, command) {
            Ok(step) => step,
            Err(choice) => Step::Say(replies::choose(cx.wording, &choice)),
        },
    }
}

/// A new goal: ask for the first missing detail, or propose the plan.
fn goal(cx: &Context<'_>, kind: &str, slots: Map<String, Value>) -> Step {
    let Some(template) = cx.templates.get(kind) else {
        return Step::Say(replies::say(cx.wording, "help"));
    };
    let today = cx.now.date_naive();
    if let Some(missing) = missing_slot(template, &slots) {
        return Step::Say(planner::fill(&missing.question, &slots, today, None));
    }
    match expand(template, &slots, today, cx.now.timezone()) {
        Ok(e) => Step::Call(Call::UpdatePlan(update_plan::Args {
            title: Some(e.title),
            goal: Some(e.goal),
            objective: Some(e.objective),
            mode: Some(e.mode),
            explanation: Some(e.summary),
            ops: Some(e.ops),
            ..Default::default()
        })),
        Err(e) => Step::Say(replies::cannot_plan(cx.wording, &e)),
    }
}

fn question(cx: &Context<'_>, p: &Pending) -> String {
    let asked = cx
        .templates
        .get(&p.kind)
        .and_then(|t| t.slots.iter().find(|s| s.name == p.asked));
    match asked {
        Some(slot) => planner::fill(&slot.question, &p.slots, cx.now.date_naive(), None),
        None => replies::say(cx.wording, "help"),
    }
}

/// Answers asked for before this message, chained back at most this far.
const MAX_ANSWERS: usize = 8;

/// The goal being set up when the last message of `cx.history` arrived:
/// steward's message before it asked for a slot (a question, no tool
/// call), and the person's message before that read as that goal. The
/// state lives in the stored transcript: nothing else is kept.
pub(crate) fn pending(cx: &Context<'_>) -> Option<Pending> {
    let msgs = cx.history;
    let last_user = msgs.iter().rposition(|m| matches!(m, Message::User { .. }))?;
    pending_before(cx, &msgs[..last_user], MAX_ANSWERS)
}

fn pending_before(cx: &Context<'_>, msgs: &[Message], depth: usize) -> Option<Pending> {
    let [
        ..,
        Message::User { text: earlier, .. },
        Message::Assistant {
            text: asked,
            tool_calls,
            ..
        },
    ] = msgs
    else {
        return None;
    };
    if !tool_calls.is_empty() {
        return None;
    }
    let before = match depth {
        0 => None,
        _ => pending_before(cx, &msgs[..msgs.len() - 2], depth - 1),
    };
    let pending = match interpret_in(earlier, cx.now, cx.templates, before.as_ref()) {
        Interpretation::NewGoal { kind, slots } => {
            let slot = missing_slot(cx.templates.get(&kind)?, &slots)?;
            Pending {
                asked: slot.name.clone(),
                kind,
                slots,
            }
        }
        // An answer that was not understood: the same question again.
        _ => before?,
    };
    // Only if that is the question steward asked.
    asked.trim().ends_with(&question(cx, &pending)).then_some(pending)
}

/// The person answers a "which one?" question: the command they gave just
/// before runs again with the option their words pick ("the second",
/// "Ana's", a title). Steward asked only if that command, against the same
/// plans, still needs a choice.
fn answer_to_choice(cx: &Context<'_>, said: &str) -> Option<Step> {
    let msgs = cx.history;
    let last_user = msgs.iter().rposition(|m| matches!(m, Message::User { .. }))?;
    let [
        ..,
        Message::User { text: earlier, .. },
        Message::Assistant { tool_calls, .. },
    ] = &msgs[..last_user]
    else {
        return None;
    };
    if !tool_calls.is_empty() {
        return None;
    }
    let Interpretation::Command(command) = interpret(earlier, cx.now, cx.templates) else {
        return None;
    };
    let Err(choice) = commands::command(cx, &command) else {
        return None;
    };
    let picked = choose(said, &choice.options)?;
    let chosen = Context {
        choice: Some(picked),
        ..*cx
    };
    Some(match commands::command(&chosen, &command) {
        Ok(step) => step,
        Err(again) => Step::Say(replies::choose(cx.wording, &again)),
    })
}
