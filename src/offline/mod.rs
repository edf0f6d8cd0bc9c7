//! The built-in offline engine: how steward answers when no model is
//! configured. It reads each message with the goal interpreter (once, in
//! the turn), turns new goals into template-based plan proposals (asking
//! for missing details one at a time), runs commands against the user's
//! real plans through the same tools a model calls — with typed arguments
//! and typed results, no JSON in between — and words the outcome.
//!
//! A turn with the engine is `OfflineEngine::decide` (pure), then, for a
//! tool call, `OfflineEngine::run` and `OfflineEngine::explain`; the
//! turn records the call and its result in the transcript exactly as for a
//! model, so a model configured later reads the same history.

mod agenda;
mod commands;
mod dialogue;
mod matching;
mod replies;

use crate::conversation::{Message, ToolCall};
use crate::interpreter::{Interpretation, Pending};
use crate::plan::{Plan, PlanId};
use crate::planner::templates::Templates;
use crate::service::Failure;
use crate::tools::list_plans::{self, ListPlans, Listed};
use crate::tools::plan_history::{self, History, PlanHistory};
use crate::tools::remind::{self, Remind, Reminded};
use crate::tools::set_preferences::{self, Saved, SetPreferences};
use crate::tools::show_plan::{self, ShowPlan, Shown};
use crate::tools::undo::{self, Redo, Undo, UndoResult};
use crate::tools::update_plan::{self, PlanResult, UpdatePlan};
use crate::tools::{Tool, ToolContext, ToolError, error_output};
use crate::wording::Wording;
use chrono::DateTime;
use chrono_tz::Tz;
use serde::Serialize;
use std::sync::Arc;

pub struct OfflineEngine {
    templates: Arc<Templates>,
}

/// The engine's next step for a message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// Answer in words.
    Say(String),
    /// Call a tool, then word its outcome.
    Call(Call),
}

/// A tool call with typed arguments.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Call {
    UpdatePlan(update_plan::Args),
    ShowPlan(show_plan::Args),
    ListPlans(list_plans::Args),
    PlanHistory(plan_history::Args),
    Undo(undo::Args),
    Redo(undo::Args),
    Remind(remind::Args),
    SetPreferences(set_preferences::Args),
    /// A new address for email: the service sends it a verification link.
    SetEmail(String),
}

/// The typed outcome of a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Plan(PlanResult),
    Shown(Shown),
    Listed(Listed),
    History(History),
    Undone(UndoResult),
    Reminded(Reminded),
    Preferences(Saved),
    /// The service refused; the message says why, and `current` is the
    /// plan as it is now when the call was made against an older version.
    Refused {
        message: String,
        current: Option<Box<Plan>>,
    },
}

impl Call {
    /// The call as a model would have made it, for the transcript.
    pub(crate) fn record(&self) -> ToolCall {
        fn call(name: &str, args: &impl Serialize) -> ToolCall {
            ToolCall {
                id: format!("offline-{name}"),
                name: name.into(),
                arguments: serde_json::to_string(args).unwrap_or_else(|_| "{}".into()),
            }
        }
        match self {
            Call::UpdatePlan(a) => call(UpdatePlan::NAME, a),
            Call::ShowPlan(a) => call(ShowPlan::NAME, a),
            Call::ListPlans(a) => call(ListPlans::NAME, a),
            Call::PlanHistory(a) => call(PlanHistory::NAME, a),
            Call::Undo(a) => call(Undo::NAME, a),
            Call::Redo(a) => call(Redo::NAME, a),
            Call::Remind(a) => call(Remind::NAME, a),
            Call::SetPreferences(a) => call(SetPreferences::NAME, a),
            Call::SetEmail(email) => call("set_email", &serde_json::json!({ "email": email })),
        }
    }
}

impl Outcome {
    /// The result as the model would have read it, for the transcript.
    pub(crate) fn content(&self) -> String {
        fn json(v: &impl Serialize) -> String {
            serde_json::to_string(v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
        }
        match self {
            Outcome::Plan(v) => json(v),
            Outcome::Shown(v) => json(v),
            Outcome::Listed(v) => json(v),
            Outcome::History(v) => json(v),
            Outcome::Undone(v) => json(v),
            Outcome::Reminded(v) => json(v),
            Outcome::Preferences(v) => json(v),
            Outcome::Refused { message, current } => error_output(message, current.as_deref()).content,
        }
    }
}

/// The plan the user last saw or acted on: the newest tool call or result
/// in the conversation that names one — unless they looked at all their
/// plans since (a list), when none is.
fn referent(history: &[Message]) -> Option<PlanId> {
    let named = |json: &str| -> Option<PlanId> {
        let value: serde_json::Value = serde_json::from_str(json).ok()?;
        value.get("plan_id")?.as_str().and_then(PlanId::parse)
    };
    history
        .iter()
        .rev()
        .find_map(|m| match m {
            Message::Tool { content, .. } => named(content).map(Some),
            Message::Assistant { tool_calls, .. } => tool_calls.iter().rev().find_map(|c| match c.name.as_str() {
                ListPlans::NAME => Some(None),
                _ => named(&c.arguments).map(Some),
            }),
            Message::User { .. } => None,
        })
        .flatten()
}

impl OfflineEngine {
    pub fn new(templates: Arc<Templates>) -> OfflineEngine {
        OfflineEngine { templates }
    }

    /// The next step for `said` (read as `reading`), given the user's
    /// active plans, the conversation so far (ending with `said`) and their
    /// local time.
    pub(crate) fn decide(
        &self,
        said: &str,
        reading: &Interpretation,
        plans: &[Plan],
        history: &[Message],
        now: DateTime<Tz>,
        wording: &Wording,
    ) -> Step {
        let cx = dialogue::Context {
            templates: &self.templates,
            wording,
            plans,
            history,
            now,
            referent: referent(history),
            choice: None,
        };
        dialogue::decide(&cx, said, reading)
    }

    /// The goal being set up when the last message of `history` arrived
    /// (steward had just asked for one of its slots), to read it with.
    pub(crate) fn pending(&self, history: &[Message], now: DateTime<Tz>, wording: &Wording) -> Option<Pending> {
        let cx = dialogue::Context {
            templates: &self.templates,
            wording,
            plans: &[],
            history,
            now,
            referent: None,
            choice: None,
        };
        dialogue::pending(&cx)
    }

    /// Runs a call for the session's user. A refusal is an outcome (the
    /// user is told why); only a server failure is an error.
    pub(crate) async fn run(&self, ctx: ToolContext<'_>, call: &Call) -> Result<Outcome, Failure> {
        let outcome = match call.clone() {
            Call::UpdatePlan(a) => UpdatePlan.run(ctx, a).await.map(Outcome::Plan),
            Call::ShowPlan(a) => ShowPlan.run(ctx, a).await.map(Outcome::Shown),
            Call::ListPlans(a) => ListPlans.run(ctx, a).await.map(Outcome::Listed),
            Call::PlanHistory(a) => PlanHistory.run(ctx, a).await.map(Outcome::History),
            Call::Undo(a) => Undo.run(ctx, a).await.map(Outcome::Undone),
            Call::Redo(a) => Redo.run(ctx, a).await.map(Outcome::Undone),
            Call::Remind(a) => Remind.run(ctx, a).await.map(Outcome::Reminded),
            Call::SetPreferences(a) => SetPreferences.run(ctx, a).await.map(Outcome::Preferences),
            Call::SetEmail(email) => {
                let update = crate::preferences::Update {
                    email: Some(Some(email)),
                    ..Default::default()
                };
                match ctx.service.update_preferences(ctx.session, update).await {
                    Ok(saved) => Ok(Outcome::Preferences(Saved(saved))),
                    Err(e) => Err(ToolError::from(e)),
                }
            }
        };
        match outcome {
            Ok(outcome) => Ok(outcome),
            Err(ToolError::Invalid { message, current }) => Ok(Outcome::Refused { message, current }),
            Err(ToolError::Fatal(failure)) => Err(failure),
        }
    }

    /// Words for the outcome of `call`, with dates in the zone of the
    /// user's local `now`.
    pub(crate) fn explain(
        &self,
        wording: &Wording,
        call: &Call,
        outcome: &Outcome,
        plans: &[Plan],
        now: DateTime<Tz>,
    ) -> String {
        replies::explain(wording, call, outcome, plans, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interpreter::interpret_in;
    use crate::plan::{Op, PlanId, Step as PlanStep, StepStatus};
    use chrono::Utc;
    use serde_json::json;

    fn engine() -> OfflineEngine {
        OfflineEngine::new(Arc::new(Templates::built_in().unwrap()))
    }

    fn now() -> DateTime<Tz> {
        chrono::DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono_tz::Europe::Berlin)
    }

    fn user(t: &str) -> Message {
        Message::User {
            text: t.into(),
            id: None,
        }
    }

    fn assistant(t: &str) -> Message {
        Message::Assistant {
            text: t.into(),
            tool_calls: vec![],
            notification: None,
        }
    }

    fn plan(id: u64, title: &str, steps: &[&str]) -> Plan {
        let mut p = Plan::draft(title, "", Utc::now());
        p.id = PlanId(id);
        p.version = 2;
        for (i, s) in steps.iter().enumerate() {
            p.steps.push(PlanStep::new(format!("s{}", i + 1), *s));
        }
        p
    }

    /// The engine's step for the last user message of `history`.
    fn step(history: &[Message], plans: &[Plan]) -> Step {
        let e = engine();
        let Some(Message::User { text, .. }) = history.last() else {
            panic!("the history must end with a user message");
        };
        let wording = Wording::built_in().unwrap();
        let pending = e.pending(history, now(), &wording);
        let reading = interpret_in(text, now(), &e.templates, pending.as_ref());
        e.decide(text, &reading, plans, history, now(), &wording)
    }

    fn update(step: Step) -> update_plan::Args {
        match step {
            Step::Call(Call::UpdatePlan(args)) => args,
            other => panic!("expected update_plan, got {other:?}"),
        }
    }

    #[test]
    fn a_refusal_in_the_transcript_carries_the_current_plan_as_a_model_would_see_it() {
        let current = plan(1, "Onboard Ana", &["Order laptop"]);
        let refused = Outcome::Refused {
            message: "plan p1 is at version 2".into(),
            current: Some(Box::new(current.clone())),
        };
        let content: serde_json::Value = serde_json::from_str(&refused.content()).unwrap();
        assert_eq!(content["error"], "plan p1 is at version 2");
        assert_eq!(content["current_version"], current.version);
    }

    #[test]
    fn commands_become_typed_tool_calls_against_the_right_plan_and_step() {
        let plans = vec![
            plan(1, "Onboard Ana", &["Order laptop", "Create accounts"]),
            plan(2, "Launch Nimbus", &["Press kit"]),
        ];
        assert_eq!(
            step(&[user("show my onboarding plan")], &plans),
            Step::Call(Call::ShowPlan(show_plan::Args { plan_id: PlanId(1) }))
        );
        let done = update(step(&[user("mark the laptop step as done")], &plans));
        assert_eq!(
            done.ops,
            Some(vec![Op::SetStatus {
                step: "s1".into(),
                status: StepStatus::Completed,
                result: None
            }])
        );
        let moved = update(step(&[user("move the press kit to Friday")], &plans));
        assert_eq!(moved.plan_id, Some(PlanId(2)));
        assert_eq!(
            serde_json::to_value(&moved.ops).unwrap()[0]["due_at"],
            json!("2026-11-27T08:00:00Z")
        );
    }

    #[test]
    fn a_goal_with_a_missing_detail_is_asked_for_then_proposed() {
        let first = step(&[user("I need to onboard Ana Souza")], &[]);
        assert_eq!(first, Step::Say("When does Ana Souza start?".into()));
        let args = update(step(
            &[
                user("I need to onboard Ana Souza"),
                assistant("When does Ana Souza start?"),
                user("December 1"),
            ],
            &[],
        ));
        assert_eq!(args.title.as_deref(), Some("Onboard Ana Souza"));
        assert_eq!(
            serde_json::to_value(&args.objective).unwrap(),
            json!({"kind": "onboard_employee", "slots": {"name": "Ana Souza", "start_date": "2026-12-01"}})
        );
        assert_eq!(args.explanation.as_deref(), Some("To onboard Ana Souza by Dec 1"));
        let unclear = step(
            &[
                user("I need to onboard Ana Souza"),
                assistant("When does Ana Souza start?"),
                user("soon-ish"),
            ],
            &[],
        );
        assert_eq!(
            unclear,
            Step::Say("Sorry, I didn't catch that. When does Ana Souza start?".into())
        );
    }

    #[test]
    fn undo_takes_back_the_change_to_the_plan_in_view_even_when_it_closed_that_plan() {
        // The last call finished p2 (it left the active plans); p1 is active.
        let plans = vec![plan(1, "Onboard Ana", &["Order laptop"])];
        let finished = Message::Tool {
            call_id: "offline-update_plan".into(),
            name: "update_plan".into(),
            content: r#"{"ok":true,"created":false,"plan_id":"p2","version":5,"status":"done"}"#.into(),
        };
        let history = [
            user("done with the last step"),
            finished,
            assistant("Done."),
            user("undo"),
        ];
        assert_eq!(
            step(&history, &plans),
            Step::Call(Call::Undo(undo::Args {
                plan_id: Some(PlanId(2))
            }))
        );
        // Words that name no plan do not fall back to the only one.
        match step(&[user("rename the gym plan to Gym 2027")], &plans) {
            Step::Say(text) => assert!(text.starts_with("Which plan should I rename?"), "{text}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refusals_read_with_titles_and_plain_words() {
        let plans = vec![plan(1, "Onboard Ana", &["Order laptop", "Create accounts"])];
        let message = "step `s2` cannot be in_progress before its dependencies are completed: waiting on `s1`; \
                       `s1` cannot be removed: `s2` depend on it; change their depends_on first; `zz` stays";
        assert_eq!(
            replies::plain(message, &plans),
            "step “Create accounts” cannot be in progress before its dependencies are completed: waiting on \
             “Order laptop”; “Order laptop” cannot be removed: “Create accounts” depend on it; change what they \
             wait for first; zz stays"
        );
    }

    #[test]
    fn small_talk_gets_a_helpful_answer_and_no_action() {
        match step(&[user("what's the weather like?")], &[]) {
            Step::Say(text) => assert!(text.contains("show my onboarding plan"), "{text}"),
            other => panic!("expected words, got {other:?}"),
        }
    }

    #[test]
    fn a_call_is_recorded_as_a_model_would_have_made_it() {
        let call = Call::ShowPlan(show_plan::Args { plan_id: PlanId(3) });
        assert_eq!(
            call.record(),
            ToolCall {
                id: "offline-show_plan".into(),
                name: "show_plan".into(),
                arguments: r#"{"plan_id":"p3"}"#.into(),
            }
        );
    }
}
