//! Commands against the user's real plans: each becomes one tool call (the
//! same tools, service and rules as a model's), an answer from the plans in
//! hand (agenda questions), or a question — "which one?" when the words fit
//! several plans or steps, and nothing changes before the answer.

use super::agenda;
use super::dialogue::Context;
use super::matching::{Pick, StepPick, find_step, pick_plan};
use super::replies;
use super::{Call, Step};
use crate::interpreter::Command;
use crate::plan::{Op, Plan, Step as PlanStep, StepStatus, due_on};
use crate::preferences::{DigestBody, QuietHoursBody};
use crate::tools::{list_plans, plan_history, remind, set_preferences, show_plan, undo, update_plan};
use chrono::{DateTime, Days, Utc};

/// A question with options the person answers in words.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Choice {
    pub(super) question: &'static str,
    pub(super) options: Vec<String>,
}

/// A step to take, or a choice to ask for first.
pub(super) type Decided = Result<Step, Choice>;

fn say(cx: &Context<'_>, name: &str) -> Decided {
    Ok(Step::Say(replies::say(cx.wording, name)))
}

/// The plan the words name; otherwise what to answer instead.
fn plan_for<'a>(cx: &Context<'a>, words: Option<&str>, question: &'static str) -> Result<&'a Plan, Box<Decided>> {
    let plans = cx.plans;
    match pick_plan(words, plans, cx.referent) {
        Pick::One(p) => Ok(p),
        Pick::None if plans.is_empty() => Err(Box::new(say(cx, "no_plans"))),
        Pick::None => Err(Box::new(Ok(Step::Say(replies::which_plan(
            cx.wording, question, plans,
        ))))),
        Pick::Ambiguous(fits) => match cx.choice.and_then(|k| fits.get(k)) {
            Some(p) => Ok(p),
            None => Err(Box::new(Err(Choice {
                question,
                options: fits.iter().map(|p| format!("“{}”", p.title)).collect(),
            }))),
        },
    }
}

/// The step the words name; otherwise what to answer instead.
fn step_for<'a>(cx: &Context<'a>, words: &str) -> Result<(&'a Plan, &'a PlanStep), Box<Decided>> {
    if cx.plans.is_empty() {
        return Err(Box::new(say(cx, "no_plans")));
    }
    match find_step(words, cx.plans, cx.referent) {
        StepPick::One(p, s) => Ok((p, s)),
        StepPick::None => Err(Box::new(Ok(Step::Say(replies::no_such_step(
            cx.wording, words, cx.plans,
        ))))),
        StepPick::Ambiguous(fits) => match cx.choice.and_then(|k| fits.get(k)) {
            Some((p, s)) => Ok((p, s)),
            None => Err(Box::new(Err(Choice {
                question: "Which one do you mean?",
                options: fits
                    .iter()
                    .map(|(p, s)| format!("“{}” in “{}”", s.title, p.title))
                    .collect(),
            }))),
        },
    }
}

/// One operation on a step the words name.
fn step_op(cx: &Context<'_>, words: &str, why: &str, op: impl Fn(&PlanStep) -> Op) -> Decided {
    match step_for(cx, words) {
        Ok((plan, step)) => Ok(change(plan, why, op(step))),
        Err(answer) => *answer,
    }
}

fn status(step: &PlanStep, status: StepStatus, result: Option<&String>) -> Op {
    Op::SetStatus {
        step: step.id.clone(),
        status,
        result: result.cloned(),
    }
}

/// Changes one field of a step (the others stay).
enum Field {
    Title(String),
    Due(DateTime<Utc>),
    DependsOn(Vec<String>),
}

fn update(step: &PlanStep, field: Field) -> Op {
    let (mut title, mut due_at, mut depends_on) = (None, None, None);
    match field {
        Field::Title(t) => title = Some(t),
        Field::Due(d) => due_at = Some(Some(d)),
        Field::DependsOn(d) => depends_on = Some(d),
    }
    Op::UpdateStep {
        step: step.id.clone(),
        title,
        depends_on,
        due_at,
        result: None,
    }
}

// Long: one arm per command the interpreter knows, each a tool call, an
// answer or a question; a new command breaks the build here.
pub(super) fn command(cx: &Context<'_>, command: &Command) -> Decided {
    let tz = cx.now.timezone();
    match command {
        Command::Help {} => say(cx, "help"),
        Command::Dismiss {} => say(cx, "dismissed"),
        Command::ListPlans {} => Ok(Step::Call(Call::ListPlans(list_plans::Args::default()))),
        Command::Undo { plan } | Command::Redo { plan } => {
            // Without words: the plan last seen or acted on, even if that
            // change just finished or cancelled it (so it can be taken
            // back); else the only plan; else ask.
            let plan_id = match (plan, cx.referent, cx.plans) {
                (None, Some(seen), _) => Some(seen),
                (None, None, [] | [_]) => cx.plans.first().map(|p| p.id),
                _ => match plan_for(cx, plan.as_deref(), "Which plan?") {
                    Ok(p) => Some(p.id),
                    Err(answer) => return *answer,
                },
            };
            let args = undo::Args { plan_id };
            Ok(Step::Call(match command {
                Command::Redo { .. } => Call::Redo(args),
                _ => Call::Undo(args),
            }))
        }
        Command::ShowPlan { plan } => plan_for(cx, plan.as_deref(), "Which plan?")
            .map(|p| Step::Call(Call::ShowPlan(show_plan::Args { plan_id: p.id })))
            .or_else(|answer| *answer),
        Command::History { plan } => plan_for(cx, plan.as_deref(), "The history of which plan?")
            .map(|p| {
                Step::Call(Call::PlanHistory(plan_history::Args {
                    plan_id: p.id,
                    limit: None,
                }))
            })
            .or_else(|answer| *answer),
        Command::CancelPlan { plan } => plan_for(cx, plan.as_deref(), "Which plan should I cancel?")
            .map(|p| change(p, "the user asked to cancel the plan", Op::CancelPlan {}))
            .or_else(|answer| *answer),
        Command::RenamePlan { plan, title } => plan_for(cx, plan.as_deref(), "Which plan should I rename?")
            .map(|p| change(p, "the user renamed the plan", Op::RenamePlan { title: title.clone() }))
            .or_else(|answer| *answer),
        Command::CompleteStep { step, result } => step_op(cx, step, "the user finished it", |s| {
            status(s, StepStatus::Completed, result.as_ref())
        }),
        Command::StartStep { step } => step_op(cx, step, "the user started it", |s| {
            status(s, StepStatus::InProgress, None)
        }),
        Command::RetryStep { step } => step_op(cx, step, "the user asked to try it again", |s| {
            status(s, StepStatus::Pending, None)
        }),
        Command::SkipStep { step } => step_op(cx, step, "the user wants to skip it", |s| {
            status(s, StepStatus::Cancelled, None)
        }),
        Command::FailStep { step, reason } => step_op(cx, step, "the user says it failed", |s| {
            status(s, StepStatus::Failed, reason.as_ref())
        }),
        Command::RemoveStep { step } => step_op(cx, step, "the user wants it removed", |s| Op::RemoveStep {
            step: s.id.clone(),
        }),
        Command::RenameStep { step, title } => step_op(cx, step, "the user renamed it", |s| {
            update(s, Field::Title(title.clone()))
        }),
        Command::RescheduleStep { step, due } => {
            let at = due_on(*due, tz);
            step_op(cx, step, "the user moved the date", |s| update(s, Field::Due(at)))
        }
        Command::ShiftStep { step, days } => {
            let (plan, found) = match step_for(cx, step) {
                Ok(found) => found,
                Err(answer) => return *answer,
            };
            let Some(due) = found.due_at else {
                return Ok(Step::Say(replies::no_due_date(cx.wording, &found.title)));
            };
            let moved = if *days >= 0 {
                due.checked_add_days(Days::new(days.unsigned_abs()))
            } else {
                due.checked_sub_days(Days::new(days.unsigned_abs()))
            };
            let Some(moved) = moved else {
                return say(cx, "not_understood");
            };
            let why = format!("the user moved it by {days} days");
            Ok(change(plan, &why, update(found, Field::Due(moved))))
        }
        Command::AddStep { title, due, after } => {
            let plan = match plan_for(cx, None, "Which plan should the step go in?") {
                Ok(p) => p,
                Err(answer) => return *answer,
            };
            let depends_on = match after {
                Some(words) => match find_step(words, std::slice::from_ref(plan), Some(plan.id)) {
                    StepPick::One(_, s) => vec![s.id.clone()],
                    _ => {
                        return Ok(Step::Say(replies::no_such_step(
                            cx.wording,
                            words,
                            std::slice::from_ref(plan),
                        )));
                    }
                },
                None => Vec::new(),
            };
            let op = Op::AddStep {
                id: None,
                title: title.clone(),
                depends_on,
                due_at: due.map(|d| due_on(d, tz)),
                after: None,
                status: None,
                tool: None,
                checks: None,
            };
            Ok(change(plan, "the user added a step", op))
        }
        Command::AddDependency { step, after } => {
            let (plan, found) = match step_for(cx, step) {
                Ok(found) => found,
                Err(answer) => return *answer,
            };
            let first = match find_step(after, std::slice::from_ref(plan), Some(plan.id)) {
                StepPick::One(_, s) => s,
                _ => {
                    return Ok(Step::Say(replies::no_such_step(
                        cx.wording,
                        after,
                        std::slice::from_ref(plan),
                    )));
                }
            };
            let mut depends_on = found.depends_on.clone();
            if !depends_on.contains(&first.id) {
                depends_on.push(first.id.clone());
            }
            let op = update(found, Field::DependsOn(depends_on));
            Ok(change(plan, "the user made it wait for another step", op))
        }
        Command::Agenda { ask, plan } => {
            let plans: Vec<&Plan> = match plan {
                Some(words) => match plan_for(cx, Some(words), "Which plan?") {
                    Ok(p) => vec![p],
                    Err(answer) => return *answer,
                },
                None => cx.plans.iter().collect(),
            };
            if plans.is_empty() {
                return say(cx, "no_plans");
            }
            Ok(Step::Say(agenda::answer(cx.wording, *ask, &plans, cx.now)))
        }
        Command::Remind { text, at } => Ok(Step::Call(Call::Remind(remind::Args {
            text: text.clone(),
            at: *at,
            lapse_on_reply: false,
        }))),
        Command::Digest {
            frequency,
            weekday,
            time,
        } => Ok(preferences(set_preferences::Args {
            digest: Some(DigestBody {
                frequency: *frequency,
                weekday: weekday.clone(),
                time: time.clone(),
            }),
            ..Default::default()
        })),
        Command::SetTimezone { zone } => Ok(preferences(set_preferences::Args {
            time_zone: Some(zone.clone()),
            ..Default::default()
        })),
        Command::SetQuietHours { start, end } => Ok(preferences(set_preferences::Args {
            quiet_hours: Some(QuietHoursBody {
                start: start.clone(),
                end: end.clone(),
            }),
            ..Default::default()
        })),
        Command::QuietHoursOff {} => Ok(preferences(set_preferences::Args {
            clear_quiet_hours: true,
            ..Default::default()
        })),
        Command::SetEmail { email } => Ok(Step::Call(Call::SetEmail(email.clone()))),
    }
}

fn preferences(args: set_preferences::Args) -> Step {
    Step::Call(Call::SetPreferences(args))
}

/// One operation on `plan`, against the version the user is looking at.
pub(super) fn change(plan: &Plan, why: &str, op: Op) -> Step {
    Step::Call(Call::UpdatePlan(update_plan::Args {
        plan_id: Some(plan.id),
        expected_version: Some(plan.version),
        explanation: Some(why.into()),
        ops: Some(vec![op]),
        ..Default::default()
    }))
}
