//! The built-in offline engine: the default model when none is configured.
//! It reads each message with the goal interpreter, turns new goals into
//! template-based plan proposals (asking for missing details one at a
//! time), runs commands against the user's real plans, and acts only
//! through the same tools a model would call.

use super::{ChatModel, DeltaSink, ModelError, ModelRequest, ModelResponse};
use crate::conversation::{Message, ToolCall};
use crate::interpreter::text::Input;
use crate::interpreter::{Command, Interpretation, goals, interpret};
use crate::plan::{Change, Plan, PlanId, Step, StepStatus, render};
use crate::planner::templates::Templates;
use crate::planner::{self, expand, missing_slot};
use async_trait::async_trait;
use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub struct OfflineEngine {
    templates: Arc<Templates>,
}

pub const HELP: &str = "I keep plans for you and follow up on them. You can say things like:\n\
- \"help me onboard Ana Souza, she starts Dec 1\"\n\
- \"plan a trip to Lisbon and Porto from May 4\"\n\
- \"show my onboarding plan\" or \"list my plans\"\n\
- \"done with order laptop\", \"start the orientation\", \"skip the welcome lunch\"\n\
- \"move the orientation to Friday\", \"add a step: book a room by Dec 3\"\n\
- \"undo\", \"what changed in the onboarding plan?\"\n\
- \"remind me tomorrow at 9 to call the recruiter\", \"send me a weekly digest on Mondays at 8\"";

impl OfflineEngine {
    pub fn new(templates: Arc<Templates>) -> OfflineEngine {
        OfflineEngine { templates }
    }
}

#[async_trait]
impl ChatModel for OfflineEngine {
    fn name(&self) -> String {
        "offline".into()
    }

    fn acts_for_user(&self) -> bool {
        true
    }

    async fn complete(&self, request: &ModelRequest, deltas: DeltaSink<'_>) -> Result<ModelResponse, ModelError> {
        let answer = self.respond(request);
        if !answer.text.is_empty() {
            deltas(&answer.text);
        }
        Ok(answer)
    }
}

fn text(t: impl Into<String>) -> ModelResponse {
    ModelResponse {
        text: t.into(),
        tool_calls: vec![],
    }
}

fn call(name: &str, args: Value) -> ModelResponse {
    ModelResponse {
        text: String::new(),
        tool_calls: vec![ToolCall {
            id: format!("offline-{name}"),
            name: name.into(),
            arguments: args.to_string(),
        }],
    }
}

impl OfflineEngine {
    fn respond(&self, req: &ModelRequest) -> ModelResponse {
        let Some(last_user) = req.messages.iter().rposition(|m| matches!(m, Message::User { .. })) else {
            return text(HELP);
        };
        if let Some(Message::Tool { name, content, .. }) = req.messages[last_user + 1..].last() {
            return text(self.explain(name, content, req, last_user));
        }
        let Message::User { text: said, .. } = &req.messages[last_user] else {
            return text(HELP);
        };
        let reading = interpret(said, req.now, &self.templates);
        if matches!(reading, Interpretation::Chat)
            && let Some(answer) = self.continue_goal(req, last_user, said)
        {
            return answer;
        }
        match reading {
            Interpretation::Chat => chat(said),
            Interpretation::Confirmation { .. } => text("There is nothing waiting for your confirmation right now."),
            Interpretation::NewGoal { kind, slots } => self.goal(&kind, slots, req),
            Interpretation::Command(command) => self.command(command, req),
        }
    }

    /// A new goal: ask for the first missing detail, or propose the plan.
    fn goal(&self, kind: &str, slots: Map<String, Value>, req: &ModelRequest) -> ModelResponse {
        let Some(template) = self.templates.get(kind) else {
            return text(HELP);
        };
        let today = req.now.date_naive();
        if let Some(missing) = missing_slot(template, &slots) {
            return text(planner::fill(&missing.question, &slots, today, None));
        }
        match expand(template, &slots, today, req.now.timezone()) {
            Ok(e) => call(
                "update_plan",
                json!({"title": e.title, "goal": e.goal, "objective": e.objective, "explanation": e.summary, "ops": e.ops}),
            ),
            Err(e) => text(format!("I couldn't put that plan together: {e}.")),
        }
    }

    /// Answers to earlier slot questions, replayed from the transcript: the
    /// engine keeps no state of its own.
    fn continue_goal(&self, req: &ModelRequest, last_user: usize, said: &str) -> Option<ModelResponse> {
        let msgs = &req.messages;
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
            match interpret(earlier, req.now, &self.templates) {
                Interpretation::NewGoal { kind, slots } => break (kind, slots),
                Interpretation::Chat => {
                    answers.push(earlier);
                    k -= 2;
                }
                _ => return None,
            }
        };
        let template = self.templates.get(&kind)?;
        let today = req.now.date_naive();
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
                    return Some(text(format!("Sorry, I didn't catch that. {question}")));
                }
            }
        }
        Some(self.goal(&kind, slots, req))
    }

    fn command(&self, command: Command, req: &ModelRequest) -> ModelResponse {
        let plans = &req.plans;
        let no_plans = || text(format!("You have no active plans yet.\n{HELP}"));
        match command {
            Command::Help {} => text(HELP),
            Command::ListPlans {} => call("list_plans", json!({})),
            Command::Undo {} => call("undo", json!({})),
            Command::ShowPlan { plan } => match pick_plan(plan.as_deref(), plans) {
                Pick::One(p) => call("show_plan", json!({"plan_id": p.id})),
                Pick::None if plans.is_empty() => no_plans(),
                Pick::None | Pick::Ambiguous => text(format!("Which plan? You have: {}.", names(plans))),
            },
            Command::History { plan } => match pick_plan(plan.as_deref(), plans) {
                Pick::One(p) => call("plan_history", json!({"plan_id": p.id})),
                Pick::None if plans.is_empty() => no_plans(),
                Pick::None | Pick::Ambiguous => text(format!("The history of which plan? You have: {}.", names(plans))),
            },
            Command::CancelPlan { plan } => match pick_plan(Some(&plan), plans) {
                Pick::One(p) => call(
                    "update_plan",
                    json!({"plan_id": p.id, "expected_version": p.version, "explanation": "the user asked to cancel the plan", "ops": [{"op": "cancel_plan"}]}),
                ),
                Pick::None if plans.is_empty() => no_plans(),
                Pick::None | Pick::Ambiguous => {
                    text(format!("Which plan should I cancel? You have: {}.", names(plans)))
                }
            },
            Command::CompleteStep { step } => self.step_op(
                &step,
                plans,
                |s| json!({"op": "set_status", "step": s.id, "status": StepStatus::Completed}),
                "the user finished it",
            ),
            Command::StartStep { step } => self.step_op(
                &step,
                plans,
                |s| json!({"op": "set_status", "step": s.id, "status": StepStatus::InProgress}),
                "the user started it",
            ),
            Command::SkipStep { step } => self.step_op(
                &step,
                plans,
                |s| json!({"op": "set_status", "step": s.id, "status": StepStatus::Cancelled}),
                "the user wants to skip it",
            ),
            Command::RemoveStep { step } => self.step_op(
                &step,
                plans,
                |s| json!({"op": "remove_step", "step": s.id}),
                "the user wants it removed",
            ),
            Command::RescheduleStep { step, due } => {
                let at = due_at(due, req);
                self.step_op(
                    &step,
                    plans,
                    |s| json!({"op": "update_step", "step": s.id, "due_at": at}),
                    "the user moved the date",
                )
            }
            Command::AddStep { title, due } => {
                let Some(plan) = plans.iter().max_by_key(|p| p.updated_at) else {
                    return no_plans();
                };
                let mut op = json!({"op": "add_step", "title": title});
                if let Some(due) = due {
                    op["due_at"] = Value::from(due_at(due, req));
                }
                call(
                    "update_plan",
                    json!({"plan_id": plan.id, "expected_version": plan.version, "explanation": "the user added a step", "ops": [op]}),
                )
            }
            Command::Remind { text, at } => call("remind", json!({"text": text, "at": at.to_rfc3339()})),
            Command::Digest {
                frequency,
                weekday,
                time,
            } => {
                let mut digest = json!({"frequency": frequency});
                if let Some(w) = weekday {
                    digest["weekday"] = Value::from(w);
                }
                if let Some(t) = time {
                    digest["time"] = Value::from(t);
                }
                call("set_preferences", json!({"digest": digest}))
            }
        }
    }

    fn step_op(&self, words: &str, plans: &[Plan], op: impl Fn(&Step) -> Value, why: &str) -> ModelResponse {
        if plans.is_empty() {
            return text(format!("You have no active plans yet.\n{HELP}"));
        }
        match find_step(words, plans) {
            Some((plan, step)) => call(
                "update_plan",
                json!({"plan_id": plan.id, "expected_version": plan.version, "explanation": why, "ops": [op(step)]}),
            ),
            None => text(format!(
                "I couldn't find a step matching “{words}” in {}.",
                names(plans)
            )),
        }
    }

    /// Words for the result of the tool this engine just called.
    fn explain(&self, tool: &str, content: &str, req: &ModelRequest, last_user: usize) -> String {
        let Ok(value) = serde_json::from_str::<Value>(content) else {
            return "Something went wrong reading that result.".into();
        };
        if let Some(error) = value.get("error").and_then(Value::as_str) {
            return format!("I couldn't do that: {error}");
        }
        let plan_in_prompt = |v: &Value| {
            v.as_str()
                .and_then(PlanId::parse)
                .and_then(|id| req.plans.iter().find(|p| p.id == id))
        };
        match tool {
            "list_plans" => {
                let listed = value["plans"].as_array().cloned().unwrap_or_default();
                if listed.is_empty() {
                    return format!("You have no active plans.\n{HELP}");
                }
                let mut out = String::from("Your plans:\n");
                for p in listed {
                    out.push_str(&format!(
                        "- {} ({}) — {}/{} done{}\n",
                        p["title"].as_str().unwrap_or_default(),
                        p["id"].as_str().unwrap_or_default(),
                        p["done"],
                        p["steps"],
                        p["next"].as_str().map(|n| format!(", next: {n}")).unwrap_or_default()
                    ));
                }
                out
            }
            "remind" => format!(
                "OK — I'll remind you {} at {}: {}.",
                value["when"].as_str().unwrap_or_default(),
                value["time"].as_str().unwrap_or_default(),
                value["reminder"]["text"].as_str().unwrap_or_default()
            ),
            "set_preferences" => {
                let d = &value["digest"];
                let when = match d["frequency"].as_str() {
                    Some("off") => return "OK — no more digests.".into(),
                    Some("weekly") => format!(
                        "every {} at {}",
                        d["weekday"].as_str().unwrap_or("Monday"),
                        d["time"].as_str().unwrap_or_default()
                    ),
                    _ => format!("every day at {}", d["time"].as_str().unwrap_or_default()),
                };
                if value["email_verified"] == json!(true) {
                    format!("OK — I'll email you a digest of your plans {when}.")
                } else {
                    format!(
                        "OK — your digest is set for {when}. Add and confirm your email address in the settings so I can send it."
                    )
                }
            }
            "show_plan" => match serde_json::from_value::<Plan>(value["plan"].clone()) {
                Ok(plan) => render::for_people(&plan),
                Err(_) => "I couldn't read that plan.".into(),
            },
            "plan_history" => {
                let mut out = format!(
                    "History of “{}”, newest first:\n",
                    value["title"].as_str().unwrap_or_default()
                );
                for e in value["history"].as_array().cloned().unwrap_or_default() {
                    let at = e["at"]
                        .as_str()
                        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
                    out.push_str(&format!(
                        "- {} by {}: {} ({})\n",
                        at.map(|d| d.with_timezone(&req.now.timezone()).format("%b %-d %H:%M").to_string())
                            .unwrap_or_default(),
                        e["who"].as_str().unwrap_or("?"),
                        e["what"].as_str().unwrap_or_default(),
                        e["why"].as_str().unwrap_or_default()
                    ));
                }
                out
            }
            "undo" => match plan_in_prompt(&value["plan_id"]) {
                Some(plan) => format!(
                    "Undone: {}.\n{}",
                    value["undone"].as_str().unwrap_or("the last change"),
                    render::for_people(plan)
                ),
                None => format!(
                    "Undone: {}. That plan is no longer active.",
                    value["undone"].as_str().unwrap_or("the last change")
                ),
            },
            "update_plan" if value["awaiting_confirmation"] == json!(true) => {
                proposal_text(&value["proposal"], req, last_user)
            }
            "update_plan" => match plan_in_prompt(&value["plan_id"]) {
                Some(plan) => format!("Updated.\n{}", render::for_people(plan)),
                None => format!(
                    "Done — that completes plan {}. Well done!",
                    value["plan_id"].as_str().unwrap_or("?")
                ),
            },
            _ => "Done.".into(),
        }
    }
}

/// How a proposal reads: for a new plan its steps and dates, then the question.
fn proposal_text(proposal: &Value, req: &ModelRequest, last_user: usize) -> String {
    let changes: Vec<Change> = serde_json::from_value(proposal["changes"].clone()).unwrap_or_default();
    let creates = changes.iter().any(|c| matches!(c, Change::PlanCreated { .. }));
    if !creates {
        return format!(
            "{}. Shall I go ahead?",
            proposal["summary"].as_str().unwrap_or("I'd like to change the plan")
        );
    }
    // The explanation this engine gave with the call ("To onboard Ana by Dec 1").
    let intro = req.messages[last_user..]
        .iter()
        .find_map(|m| match m {
            Message::Assistant { tool_calls, .. } => tool_calls.first(),
            _ => None,
        })
        .and_then(|c| serde_json::from_str::<Value>(&c.arguments).ok())
        .and_then(|a| a["explanation"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "Here is the plan".into());
    let tz = req.now.timezone();
    let mut out = format!("{intro}, I'll:\n");
    for change in &changes {
        if let Change::StepAdded { step, .. } = change {
            match step.due_at {
                Some(due) => out.push_str(&format!(
                    "- {} — due {}\n",
                    step.title,
                    due.with_timezone(&tz).format("%a %b %-d")
                )),
                None => out.push_str(&format!("- {}\n", step.title)),
            }
        }
    }
    out.push_str("Shall I set this up?");
    out
}

fn chat(said: &str) -> ModelResponse {
    let lower = said.trim().to_lowercase();
    let first = lower.split(|c: char| !c.is_alphanumeric()).next().unwrap_or("");
    if matches!(first, "hi" | "hello" | "hey" | "morning" | "evening" | "hiya" | "yo") {
        return text(format!("Hello! {HELP}"));
    }
    if lower.starts_with("thank") || lower.starts_with("cheers") || lower.starts_with("great, thanks") {
        return text("You're welcome! Tell me whenever something moves and I'll keep the plan up to date.");
    }
    text(format!("I'm not sure how to help with that. {HELP}"))
}

/// A due date as RFC 3339: that day at 09:00 in the user's time zone.
fn due_at(day: NaiveDate, req: &ModelRequest) -> String {
    let local = day.and_time(NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default());
    req.now
        .timezone()
        .from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc).to_rfc3339())
        .unwrap_or_else(|| day.format("%Y-%m-%d").to_string())
}

fn names(plans: &[Plan]) -> String {
    plans
        .iter()
        .map(|p| format!("“{}” ({})", p.title, p.id))
        .collect::<Vec<_>>()
        .join(", ")
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Two words match if one starts the other and they share at least four
/// letters ("onboarding" ~ "onboard"), or they are equal.
fn similar(a: &str, b: &str) -> bool {
    a == b || (a.len().min(b.len()) >= 4 && (a.starts_with(b) || b.starts_with(a)))
}

enum Pick<'a> {
    One(&'a Plan),
    Ambiguous,
    None,
}

fn pick_plan<'a>(said: Option<&str>, plans: &'a [Plan]) -> Pick<'a> {
    let said = said.unwrap_or("").trim();
    if let Some(id) = words(said).iter().find_map(|w| PlanId::parse(w)) {
        return plans.iter().find(|p| p.id == id).map(Pick::One).unwrap_or(Pick::None);
    }
    let wanted = words(said);
    if wanted.is_empty() {
        return match plans {
            [only] => Pick::One(only),
            [] => Pick::None,
            _ => Pick::Ambiguous,
        };
    }
    let score = |p: &Plan| {
        let mut known = words(&p.title);
        known.extend(p.objective.kind.split('_').map(str::to_owned));
        wanted.iter().filter(|w| known.iter().any(|k| similar(w, k))).count()
    };
    let best = plans
        .iter()
        .map(|p| (score(p), p))
        .max_by_key(|(s, p)| (*s, p.updated_at));
    match best {
        Some((s, p)) if s > 0 => Pick::One(p),
        _ if plans.len() == 1 => Pick::One(&plans[0]),
        _ => Pick::None,
    }
}

const STEP_STOP: &[&str] = &[
    "the", "a", "an", "for", "and", "of", "to", "with", "on", "in", "my", "our",
];

/// The step the user's words name: by position ("2", "second"), by id, or by
/// the most title words in common; ties go to the most recently updated plan.
fn find_step<'a>(said: &str, plans: &'a [Plan]) -> Option<(&'a Plan, &'a Step)> {
    let wanted: Vec<String> = words(said)
        .into_iter()
        .filter(|w| !STEP_STOP.contains(&w.as_str()))
        .collect();
    let ordinal = match wanted.as_slice() {
        [n] => n.parse::<usize>().ok().or_else(|| {
            [
                "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
            ]
            .iter()
            .position(|o| o == n)
            .map(|i| i + 1)
        }),
        _ => None,
    };
    let newest = plans.iter().max_by_key(|p| p.updated_at)?;
    if let Some(n) = ordinal {
        return newest.steps.get(n.checked_sub(1)?).map(|s| (newest, s));
    }
    let mut best: Option<(&Plan, &Step, usize)> = None;
    for plan in plans {
        for step in &plan.steps {
            if step.id == said.trim() {
                return Some((plan, step));
            }
            let title = words(&step.title);
            let id_words: Vec<String> = step.id.split('_').map(str::to_owned).collect();
            let score = wanted
                .iter()
                .filter(|w| title.iter().chain(&id_words).any(|t| similar(w, t)))
                .count();
            let better = match best {
                None => score > 0,
                Some((bp, _, bs)) => score > bs || (score == bs && plan.updated_at > bp.updated_at),
            };
            if better && score > 0 {
                best = Some((plan, step, score));
            }
        }
    }
    best.map(|(p, s, _)| (p, s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn engine() -> OfflineEngine {
        OfflineEngine::new(Arc::new(Templates::built_in().unwrap()))
    }

    fn req(messages: Vec<Message>, plans: Vec<Plan>) -> ModelRequest {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono_tz::Europe::Berlin);
        ModelRequest {
            system: String::new(),
            messages,
            tools: vec![],
            plans,
            now,
        }
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
            p.steps.push(Step::new(format!("s{}", i + 1), *s));
        }
        p
    }

    fn args(answer: &ModelResponse) -> Value {
        serde_json::from_str(&answer.tool_calls[0].arguments).unwrap()
    }

    #[test]
    fn commands_become_tool_calls_against_the_right_plan_and_step() {
        let plans = vec![
            plan(1, "Onboard Ana", &["Order laptop", "Create accounts"]),
            plan(2, "Launch Nimbus", &["Press kit"]),
        ];
        let e = engine();
        let show = e.respond(&req(vec![user("show my onboarding plan")], plans.clone()));
        assert_eq!(
            (show.tool_calls[0].name.as_str(), args(&show)),
            ("show_plan", json!({"plan_id": "p1"}))
        );
        let done = e.respond(&req(vec![user("mark the laptop step as done")], plans.clone()));
        assert_eq!(
            args(&done)["ops"],
            json!([{"op": "set_status", "step": "s1", "status": "completed"}])
        );
        let moved = e.respond(&req(vec![user("move the press kit to Friday")], plans.clone()));
        assert_eq!(args(&moved)["plan_id"], "p2");
        assert_eq!(args(&moved)["ops"][0]["due_at"], "2026-11-27T08:00:00+00:00");
    }

    #[test]
    fn a_goal_with_a_missing_detail_is_asked_for_then_proposed() {
        let e = engine();
        let first = e.respond(&req(vec![user("I need to onboard Ana Souza")], vec![]));
        assert_eq!(first.text, "When does Ana Souza start?");
        let second = e.respond(&req(
            vec![
                user("I need to onboard Ana Souza"),
                assistant(&first.text),
                user("December 1"),
            ],
            vec![],
        ));
        let a = args(&second);
        assert_eq!(a["title"], "Onboard Ana Souza");
        assert_eq!(
            a["objective"],
            json!({"kind": "onboard_employee", "slots": {"name": "Ana Souza", "start_date": "2026-12-01"}})
        );
        assert_eq!(a["explanation"], "To onboard Ana Souza by Dec 1");
        let unclear = e.respond(&req(
            vec![
                user("I need to onboard Ana Souza"),
                assistant(&first.text),
                user("soon-ish"),
            ],
            vec![],
        ));
        assert_eq!(unclear.text, "Sorry, I didn't catch that. When does Ana Souza start?");
    }

    #[test]
    fn small_talk_gets_a_helpful_answer_and_no_action() {
        let answer = engine().respond(&req(vec![user("what's the weather like?")], vec![]));
        assert!(answer.tool_calls.is_empty());
        assert!(answer.text.contains("show my onboarding plan"));
    }
}
