//! What the offline engine does with a message: a new goal is proposed
//! from its template (missing details asked for one at a time, the answers
//! replayed from the transcript: the engine keeps no state of its own), a
//! command becomes one tool call against the user's plans, anything else
//! gets an answer in words. Pure: the engine runs the call afterwards.

use super::matching::{Pick, find_step, pick_plan};
use super::replies;
use super::{Call, Step};
use crate::conversation::Message;
use crate::interpreter::text::Input;
use crate::interpreter::{Command, Interpretation, goals, interpret};
use crate::plan::{Op, Plan, StepStatus};
use crate::planner::templates::Templates;
use crate::planner::{self, expand, missing_slot};
use crate::preferences::DigestBody;
use crate::tools::{list_plans, plan_history, remind, set_preferences, show_plan, update_plan};
use crate::wording::Wording;
use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value};

/// What the engine knows for one answer.
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
}

/// Decides the engine's next step for the message `said`, read as `reading`.
pub(super) fn decide(cx: &Context<'_>, said: &str, reading: &Interpretation) -> Step {
    if matches!(reading, Interpretation::Chat)
        && let Some(step) = continue_goal(cx, said)
    {
        return step;
    }
    match reading {
        Interpretation::Chat => Step::Say(replies::chat(cx.wording, said)),
        Interpretation::Confirmation { .. } => Step::Say(replies::say(cx.wording, "nothing_to_confirm")),
        Interpretation::NewGoal { kind, slots } => goal(cx, kind, slots.clone()),
        Interpretation::Command(command) => self::command(cx, command),
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
            explanation: Some(e.summary),
            ops: Some(e.ops),
            ..Default::default()
        })),
        Err(e) => Step::Say(replies::cannot_plan(cx.wording, &e)),
    }
}

/// Answers to earlier slot questions, replayed from the transcript.
fn continue_goal(cx: &Context<'_>, said: &str) -> Option<Step> {
    let msgs = cx.history;
    let last_user = msgs.iter().rposition(|m| matches!(m, Message::User { .. }))?;
    let mut answers: Vec<&str> = vec![said];
    let mut k = last_user;
    let (kind, mut slots) = loop {
        let Some(Message::Assistant {
            text: question,
            tool_calls,
            ..
        }) = k.checked_sub(1).and_then(|i| msgs.get(i))
        else {
            return None;
        };
        if !tool_calls.is_empty() || !question.ends_with('?') {
            return None;
        }
        let Some(Message::User { text: earlier, .. }) = k.checked_sub(2).and_then(|i| msgs.get(i)) else {
            return None;
        };
        match interpret(earlier, cx.now, cx.templates) {
            Interpretation::NewGoal { kind, slots } => break (kind, slots),
            Interpretation::Chat => {
                answers.push(earlier);
                k -= 2;
            }
            Interpretation::Command(_) | Interpretation::Confirmation { .. } => return None,
        }
    };
    let template = cx.templates.get(&kind)?;
    let today = cx.now.date_naive();
    let newest = answers.len() - 1;
    for (n, answer) in answers.iter().rev().enumerate() {
        let Some(slot) = missing_slot(template, &slots) else {
            break;
        };
        match goals::slot_from_answer(slot, &Input::new(answer, today)) {
            Some(value) => {
                slots.insert(slot.name.clone(), value);
            }
            // An older answer that was not understood was asked again.
            None if n < newest => {}
            None => {
                let question = planner::fill(&slot.question, &slots, today, None);
                return Some(Step::Say(replies::not_caught(cx.wording, &question)));
            }
        }
    }
    Some(goal(cx, &kind, slots))
}

// Long: one arm per command the interpreter knows, each a tool call or a
// question; a new command breaks the build here.
fn command(cx: &Context<'_>, command: &Command) -> Step {
    let plans = cx.plans;
    let no_plans = || Step::Say(replies::say(cx.wording, "no_plans"));
    let which = |question: &str| Step::Say(replies::which_plan(cx.wording, question, plans));
    match command {
        Command::Help {} => Step::Say(replies::say(cx.wording, "help")),
        Command::ListPlans {} => Step::Call(Call::ListPlans(list_plans::Args::default())),
        Command::Undo {} => Step::Call(Call::Undo),
        Command::ShowPlan { plan } => match pick_plan(plan.as_deref(), plans) {
            Pick::One(p) => Step::Call(Call::ShowPlan(show_plan::Args { plan_id: p.id })),
            Pick::None if plans.is_empty() => no_plans(),
            Pick::None | Pick::Ambiguous => which("Which plan?"),
        },
        Command::History { plan } => match pick_plan(plan.as_deref(), plans) {
            Pick::One(p) => Step::Call(Call::PlanHistory(plan_history::Args {
                plan_id: p.id,
                limit: None,
            })),
            Pick::None if plans.is_empty() => no_plans(),
            Pick::None | Pick::Ambiguous => which("The history of which plan?"),
        },
        Command::CancelPlan { plan } => match pick_plan(Some(plan), plans) {
            Pick::One(p) => change(p, "the user asked to cancel the plan", Op::CancelPlan {}),
            Pick::None if plans.is_empty() => no_plans(),
            Pick::None | Pick::Ambiguous => which("Which plan should I cancel?"),
        },
        Command::CompleteStep { step } => step_op(cx, step, "the user finished it", |s| Op::SetStatus {
            step: s.id.clone(),
            status: StepStatus::Completed,
            result: None,
        }),
        Command::StartStep { step } => step_op(cx, step, "the user started it", |s| Op::SetStatus {
            step: s.id.clone(),
            status: StepStatus::InProgress,
            result: None,
        }),
        Command::SkipStep { step } => step_op(cx, step, "the user wants to skip it", |s| Op::SetStatus {
            step: s.id.clone(),
            status: StepStatus::Cancelled,
            result: None,
        }),
        Command::RemoveStep { step } => step_op(cx, step, "the user wants it removed", |s| Op::RemoveStep {
            step: s.id.clone(),
        }),
        Command::RescheduleStep { step, due } => {
            let at = due_at(*due, cx.now.timezone());
            step_op(cx, step, "the user moved the date", |s| Op::UpdateStep {
                step: s.id.clone(),
                title: None,
                depends_on: None,
                due_at: Some(Some(at)),
                result: None,
            })
        }
        Command::AddStep { title, due } => {
            let Some(plan) = plans.iter().max_by_key(|p| p.updated_at) else {
                return no_plans();
            };
            let op = Op::AddStep {
                id: None,
                title: title.clone(),
                depends_on: Vec::new(),
                due_at: due.map(|d| due_at(d, cx.now.timezone())),
                after: None,
                status: None,
                tool: None,
            };
            change(plan, "the user added a step", op)
        }
        Command::Remind { text, at } => Step::Call(Call::Remind(remind::Args {
            text: text.clone(),
            at: *at,
            lapse_on_reply: false,
        })),
        Command::Digest {
            frequency,
            weekday,
            time,
        } => Step::Call(Call::SetPreferences(set_preferences::Args {
            digest: Some(DigestBody {
                frequency: *frequency,
                weekday: weekday.clone(),
                time: time.clone(),
            }),
            ..Default::default()
        })),
    }
}

/// One operation on `plan`, against the version the user is looking at.
fn change(plan: &Plan, why: &str, op: Op) -> Step {
    Step::Call(Call::UpdatePlan(update_plan::Args {
        plan_id: Some(plan.id),
        expected_version: Some(plan.version),
        explanation: Some(why.into()),
        ops: Some(vec![op]),
        ..Default::default()
    }))
}

fn step_op(cx: &Context<'_>, words: &str, why: &str, op: impl Fn(&crate::plan::Step) -> Op) -> Step {
    if cx.plans.is_empty() {
        return Step::Say(replies::say(cx.wording, "no_plans"));
    }
    match find_step(words, cx.plans) {
        Some((plan, step)) => change(plan, why, op(step)),
        None => Step::Say(replies::no_such_step(cx.wording, words, cx.plans)),
    }
}

/// A due date: that day at 09:00 in the user's time zone.
fn due_at(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let local = day.and_time(NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default());
    tz.from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| local.and_utc())
}
