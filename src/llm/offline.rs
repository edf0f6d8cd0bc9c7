//! The built-in offline engine: the default model when none is configured.
//! It understands a small set of requests (help, list plans, show a plan,
//! create a plan from a list, start or complete a step) and acts through the
//! same tools a real model would. The full goal interpreter replaces its
//! keyword rules later; its outputs stay tool calls either way.

use super::{ChatModel, DeltaSink, ModelError, ModelRequest, ModelResponse};
use crate::conversation::{Message, ToolCall};
use crate::plan::{Plan, PlanId, Step, StepStatus, render};
use async_trait::async_trait;
use serde_json::{Value, json};

pub struct OfflineEngine;

const HELP: &str = "I keep plans for you and help you follow them. You can say:\n\
- \"new plan: Onboard Ana: order laptop; create accounts; welcome lunch\"\n\
- \"list my plans\"\n\
- \"show my onboarding plan\"\n\
- \"start order laptop\" or \"done with order laptop\"";

#[async_trait]
impl ChatModel for OfflineEngine {
    fn name(&self) -> String {
        "offline".into()
    }

    async fn complete(&self, request: &ModelRequest, deltas: DeltaSink<'_>) -> Result<ModelResponse, ModelError> {
        let answer = respond(request);
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

fn respond(request: &ModelRequest) -> ModelResponse {
    let Some(last_user) = request.messages.iter().rposition(|m| matches!(m, Message::User { .. })) else {
        return text(HELP);
    };
    let after = &request.messages[last_user + 1..];
    if let Some(Message::Tool { name, content, .. }) = after.last() {
        return text(explain_tool_result(name, content, &request.plans));
    }
    let Message::User { text: said } = &request.messages[last_user] else {
        return text(HELP);
    };
    decide(said, &request.plans)
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn decide(said: &str, plans: &[Plan]) -> ModelResponse {
    let lower = said.trim().to_lowercase();
    let w = words(&lower);
    let has = |x: &str| w.iter().any(|v| v == x);

    for prefix in ["new plan", "create plan", "create a plan", "make a plan"] {
        if let Some(rest) = lower.strip_prefix(prefix) {
            let original = &said.trim()[said.trim().len() - rest.len()..];
            return create_plan(original);
        }
    }
    if w.is_empty() || has("help") || lower.contains("what can you do") {
        return text(HELP);
    }
    if matches!(w.first().map(String::as_str), Some("hi" | "hello" | "hey")) && w.len() <= 3 {
        return text(format!("Hello! {HELP}"));
    }
    if has("list") || lower.contains("my plans") || lower.contains("all plans") || w == ["plans"] {
        return call("list_plans", json!({}));
    }
    if has("show") || has("status") || lower.starts_with("where") {
        if plans.is_empty() {
            return text(format!("You have no active plans yet.\n{HELP}"));
        }
        return match find_plan(&w, plans) {
            Some(plan) => call("show_plan", json!({"plan_id": plan.id})),
            None => text(format!("Which plan? You have: {}", plan_names(plans))),
        };
    }
    for (verbs, status) in [
        (
            &["done with", "finished", "complete", "completed", "mark done"][..],
            StepStatus::Completed,
        ),
        (&["start", "begin", "working on"][..], StepStatus::InProgress),
    ] {
        if let Some(rest) = verbs.iter().find_map(|v| lower.strip_prefix(v)) {
            return set_step_status(rest, status, plans);
        }
    }
    text(format!("I'm not sure what you mean. {HELP}"))
}

fn plan_names(plans: &[Plan]) -> String {
    plans
        .iter()
        .map(|p| format!("{} ({})", p.title, p.id))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A plan named by id ("p2") or by words of its title; the only plan if
/// nothing more specific is said.
fn find_plan<'a>(w: &[String], plans: &'a [Plan]) -> Option<&'a Plan> {
    if let Some(id) = w.iter().find_map(|x| PlanId::parse(x)) {
        return plans.iter().find(|p| p.id == id);
    }
    let stop = [
        "show", "my", "the", "plan", "status", "of", "where", "is", "are", "things", "with", "me", "for",
    ];
    let wanted: Vec<&String> = w.iter().filter(|x| !stop.contains(&x.as_str())).collect();
    let score = |p: &Plan| {
        let title = words(&p.title);
        wanted
            .iter()
            .filter(|x| {
                title
                    .iter()
                    .any(|t| t.starts_with(x.as_str()) || x.starts_with(t.as_str()))
            })
            .count()
    };
    let best = plans.iter().max_by_key(|p| score(p))?;
    if score(best) > 0 || plans.len() == 1 {
        Some(best)
    } else {
        None
    }
}

fn create_plan(rest: &str) -> ModelResponse {
    let rest = rest.trim_start_matches([':', ' ', '-']);
    let Some((title, steps)) = rest.split_once(':') else {
        return text("Tell me the title and the steps, e.g. \"new plan: Onboard Ana: order laptop; create accounts\".");
    };
    let steps: Vec<&str> = steps
        .split([';', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if title.trim().is_empty() || steps.is_empty() {
        return text(
            "A plan needs a title and at least one step, e.g. \"new plan: Onboard Ana: order laptop; create accounts\".",
        );
    }
    let ops: Vec<Value> = steps.iter().map(|s| json!({"op": "add_step", "title": s})).collect();
    call(
        "update_plan",
        json!({"title": title.trim(), "explanation": "created from the chat", "ops": ops}),
    )
}

/// The step whose title best matches the user's words, across active plans.
fn find_step<'a>(rest: &str, plans: &'a [Plan]) -> Option<(&'a Plan, &'a Step)> {
    let wanted = words(rest);
    let stop = ["the", "step", "with", "a", "an", "on", "as", "done", "to"];
    let wanted: Vec<&String> = wanted.iter().filter(|x| !stop.contains(&x.as_str())).collect();
    let mut best: Option<(&Plan, &Step, usize)> = None;
    for plan in plans {
        for step in &plan.steps {
            let title = words(&step.title);
            let score = wanted
                .iter()
                .filter(|x| title.contains(x) || step.id == x.as_str())
                .count();
            if score > 0 && best.is_none_or(|(_, _, s)| score > s) {
                best = Some((plan, step, score));
            }
        }
    }
    best.map(|(p, s, _)| (p, s))
}

fn set_step_status(rest: &str, status: StepStatus, plans: &[Plan]) -> ModelResponse {
    let Some((plan, step)) = find_step(rest, plans) else {
        return text(if plans.is_empty() {
            "You have no active plans yet.".to_owned()
        } else {
            format!("I couldn't find that step in your plans: {}", plan_names(plans))
        });
    };
    call(
        "update_plan",
        json!({
            "plan_id": plan.id,
            "expected_version": plan.version,
            "explanation": format!("the user said the step is {}", status.as_str().replace('_', " ")),
            "ops": [{"op": "set_status", "step": step.id, "status": status}]
        }),
    )
}

fn explain_tool_result(tool: &str, content: &str, plans: &[Plan]) -> String {
    let Ok(value) = serde_json::from_str::<Value>(content) else {
        return "Something went wrong reading that result.".into();
    };
    if let Some(error) = value.get("error").and_then(Value::as_str) {
        return format!("I couldn't do that: {error}");
    }
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
        "show_plan" => match serde_json::from_value::<Plan>(value["plan"].clone()) {
            Ok(plan) => render::for_people(&plan),
            Err(_) => "I couldn't read that plan.".into(),
        },
        "update_plan" => {
            let id = value["plan_id"].as_str().and_then(PlanId::parse);
            match id.and_then(|id| plans.iter().find(|p| p.id == id)) {
                Some(plan) if value["created"] == json!(true) => {
                    format!("Created your plan.\n{}", render::for_people(plan))
                }
                Some(plan) => format!("Updated.\n{}", render::for_people(plan)),
                None => format!(
                    "Done — that plan ({}) is now complete.",
                    value["plan_id"].as_str().unwrap_or("?")
                ),
            }
        }
        _ => "Done.".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn req(messages: Vec<Message>, plans: Vec<Plan>) -> ModelRequest {
        ModelRequest {
            system: String::new(),
            messages,
            tools: vec![],
            plans,
        }
    }

    fn user(t: &str) -> Message {
        Message::User { text: t.into() }
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

    #[test]
    fn requests_become_the_right_tool_calls() {
        let plans = vec![
            plan(1, "Onboard Ana", &["Order laptop", "Create accounts"]),
            plan(2, "Launch Nimbus", &["Press kit"]),
        ];
        let cases = [
            ("list my plans", "list_plans", json!({})),
            ("show my onboarding plan", "show_plan", json!({"plan_id": "p1"})),
            ("show p2", "show_plan", json!({"plan_id": "p2"})),
            (
                "done with the laptop step",
                "update_plan",
                json!({"plan_id": "p1", "expected_version": 2, "explanation": "the user said the step is completed", "ops": [{"op": "set_status", "step": "s1", "status": "completed"}]}),
            ),
            (
                "New plan: Trip to Lisbon: book flights; book hotel",
                "update_plan",
                json!({"title": "Trip to Lisbon", "explanation": "created from the chat", "ops": [{"op": "add_step", "title": "book flights"}, {"op": "add_step", "title": "book hotel"}]}),
            ),
        ];
        for (said, tool, args) in cases {
            let answer = respond(&req(vec![user(said)], plans.clone()));
            assert_eq!(answer.tool_calls.len(), 1, "{said}");
            assert_eq!(answer.tool_calls[0].name, tool, "{said}");
            assert_eq!(
                serde_json::from_str::<Value>(&answer.tool_calls[0].arguments).unwrap(),
                args,
                "{said}"
            );
        }
    }

    #[test]
    fn tool_results_become_readable_answers() {
        let p = plan(1, "Onboard Ana", &["Order laptop"]);
        let messages = vec![
            user("show my plan"),
            Message::Assistant {
                text: String::new(),
                tool_calls: vec![],
            },
            Message::Tool {
                call_id: "x".into(),
                name: "show_plan".into(),
                content: json!({"plan": p}).to_string(),
            },
        ];
        let answer = respond(&req(messages, vec![p.clone()]));
        assert_eq!(answer.text, render::for_people(&p));
        let refused = respond(&req(
            vec![
                user("x"),
                Message::Tool {
                    call_id: "y".into(),
                    name: "update_plan".into(),
                    content: json!({"error": "step `s9` does not exist"}).to_string(),
                },
            ],
            vec![],
        ));
        assert_eq!(refused.text, "I couldn't do that: step `s9` does not exist");
    }

    #[test]
    fn anything_else_gets_help_not_an_action() {
        let answer = respond(&req(vec![user("what's the weather like?")], vec![]));
        assert!(answer.tool_calls.is_empty());
        assert!(answer.text.contains("list my plans"));
    }
}
