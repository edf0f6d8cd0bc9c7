//! The execution engine against a real HTTP tool service on loopback: a
//! plan made from a template whose steps are bound to a declared tool runs
//! by itself — independent steps at the same time, a step never before its
//! dependencies, each epoch under one idempotency key; transient failures
//! are retried after the backoff or the Retry-After, 4xx never; a step that
//! fails for good gets the template's fallback, a replan proposal, or
//! plain words; an engine stopped in the middle of a call never makes a
//! second effect; malformed bindings from the model reach no tool.

use crate::harness::{Client, TestApp, WAIT};
use crate::tool_service::{Answer, ToolService};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use steward::Config;
use steward::llm::scripted::{Script, ScriptedModel};
use steward::plan::{Plan, PlanId, StepStatus};
use steward::user::UserId;

const TEMPLATE: &str = r#"
kind = "provision"
title = "Provision {name}"
goal = "{name} has hardware and accounts"
summary = "To provision {name}"
keywords = ["provision"]
mode = "orchestrated"
working_days = false

[[slots]]
name = "name"
type = "person"
required = true
question = "Who?"
cues = ["provision"]

[[steps]]
id = "laptop"
title = "Order a laptop for {name}"
tool = { name = "open_ticket", args = { queue = "hardware", title = "Laptop for {name}" } }

[[steps]]
id = "accounts"
title = "Create accounts for {name}"
tool = { name = "open_ticket", args = { queue = "accounts", title = "Accounts for {name}" } }

[[steps]]
id = "welcome"
title = "Welcome {name}"
depends_on = ["laptop", "accounts"]
tool = { name = "notify_hr", args = { person = "{name}" } }

[[steps]]
id = "welcome_in_person"
title = "Welcome {name} in person"
fallback_for = "welcome"
"#;

/// A step and a check of its result, both run by the engine.
const SIGNUP: &str = r#"
kind = "signup"
title = "Sign-up form for {name}"
goal = "The sign-up form works"
summary = "To build the sign-up form"
keywords = ["signup"]
working_days = false

[[slots]]
name = "name"
type = "text"
required = true
question = "Which form?"
cues = ["signup"]

[[steps]]
id = "register"
title = "Deploy the registration form"
tool = { name = "open_ticket", args = { queue = "deploy", title = "Registration form" } }

[[steps]]
id = "verify"
title = "Test registration with invalid data"
checks = "register"
tool = { name = "open_ticket", args = { queue = "verify", title = "Invalid data test" } }

[[steps]]
id = "announce"
title = "Announce the form"
depends_on = ["verify"]
"#;

fn tool_files(dir: &Path, base: &str) {
    std::fs::create_dir_all(dir.join("tools")).unwrap();
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(dir.join("templates/provision.toml"), TEMPLATE).unwrap();
    std::fs::write(dir.join("templates/signup.toml"), SIGNUP).unwrap();
    std::fs::write(
        dir.join("tools/open_ticket.toml"),
        format!(
            r#"
name = "open_ticket"
description = "Opens a ticket in the IT helpdesk"
method = "POST"
url = "{base}/tickets/{{queue}}"
idempotency_header = "Idempotency-Key"
timeout_secs = 5
[parameters]
type = "object"
required = ["queue", "title"]
additionalProperties = false
properties.queue = {{ type = "string" }}
properties.title = {{ type = "string", maxLength = 100 }}
properties.tags = {{ type = "array", maxItems = 5, items = {{ type = "string" }} }}
[retry]
max_attempts = 4
base_ms = 100
"#
        ),
    )
    .unwrap();
    // A tool with a one-second timeout.
    std::fs::write(
        dir.join("tools/slow_ticket.toml"),
        format!(
            r#"
name = "slow_ticket"
description = "Opens a ticket in a slow helpdesk"
method = "POST"
url = "{base}/slow"
idempotency_header = "Idempotency-Key"
timeout_secs = 1
[parameters]
type = "object"
required = ["title"]
properties.title = {{ type = "string" }}
[retry]
max_attempts = 3
base_ms = 100
"#
        ),
    )
    .unwrap();
    // A tool that takes no idempotency key.
    std::fs::write(
        dir.join("tools/notify_hr.toml"),
        format!(
            r#"
name = "notify_hr"
description = "Tells HR someone is starting"
method = "POST"
url = "{base}/hr"
timeout_secs = 5
[parameters]
type = "object"
required = ["person"]
properties.person = {{ type = "string" }}
[retry]
max_attempts = 2
base_ms = 100
"#
        ),
    )
    .unwrap();
}

struct Setup {
    tools: ToolService,
    app: TestApp,
    model: Arc<ScriptedModel>,
    dir: tempfile::TempDir,
}

fn make_plan() -> Vec<Script> {
    vec![
        Script::tool(
            "t1",
            "plan_from_template",
            json!({"kind": "provision", "slots": {"name": "Ana"}}),
        ),
        Script::text("Planned."),
    ]
}

async fn setup(script: Vec<Script>, tweak: impl FnOnce(&mut Config)) -> Setup {
    let tools = ToolService::start().await;
    let dir = tempfile::tempdir().unwrap();
    tool_files(dir.path(), &tools.url());
    let model = Arc::new(ScriptedModel::new(script));
    let root = dir.path().to_owned();
    let app = TestApp::with(model.clone())
        .config(move |c| {
            c.tools_dir = root.join("tools");
            c.templates_dir = root.join("templates");
            tweak(c);
        })
        .spawn()
        .await;
    Setup { tools, app, model, dir }
}

fn ana() -> UserId {
    UserId::parse("ana").unwrap()
}

async fn plan(app: &TestApp) -> Plan {
    app.app
        .store
        .get_plan(&ana(), PlanId(1))
        .await
        .unwrap()
        .expect("plan p1")
}

/// Waits until the plan satisfies `ready`.
async fn plan_when(app: &TestApp, what: &str, ready: impl Fn(&Plan) -> bool) -> Plan {
    let deadline = Instant::now() + WAIT;
    loop {
        let p = plan(app).await;
        if ready(&p) {
            return p;
        }
        assert!(Instant::now() < deadline, "the plan never got {what}: {p:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn status(p: &Plan, step: &str) -> StepStatus {
    p.steps.iter().find(|s| s.id == step).unwrap().status
}

fn result(p: &Plan, step: &str) -> String {
    p.steps
        .iter()
        .find(|s| s.id == step)
        .unwrap()
        .result
        .clone()
        .unwrap_or_default()
}

/// Notification frames until `n` have come.
async fn notifications(client: &mut Client, n: usize) -> Vec<Value> {
    let mut seen = Vec::new();
    while seen.len() < n {
        let frame = client.recv().await;
        if frame["type"] == "notification" {
            seen.push(frame["notification"].clone());
        }
    }
    seen
}

#[tokio::test]
async fn independent_steps_run_at_once_dependents_after_them_each_with_its_own_key_and_result() {
    let s = setup(make_plan(), |_| {}).await;
    s.tools.script("/tickets/hardware", vec![Answer::Hold]);
    s.tools.script("/tickets/accounts", vec![Answer::Hold]);
    let mut client = s.app.connect("ana").await;
    client.turn("c1", "provision Ana").await;

    // Both independent steps are in flight together, and the dependent one
    // has not started.
    s.tools
        .wait_for(WAIT, "both tickets at once", |seen| seen.len() == 2)
        .await;
    let running = plan(&s.app).await;
    assert_eq!(status(&running, "laptop"), StepStatus::InProgress);
    assert_eq!(status(&running, "accounts"), StepStatus::InProgress);
    assert_eq!(status(&running, "welcome"), StepStatus::Pending);
    assert!(s.tools.seen_at("/hr").is_empty());
    s.tools.release();

    let done = plan_when(&s.app, "every step completed", |p| {
        p.steps
            .iter()
            .filter(|s| s.id != "welcome_in_person")
            .all(|s| s.status == StepStatus::Completed)
    })
    .await;
    let seen = s.tools.seen();
    assert_eq!(seen.len(), 3, "{seen:#?}");
    let hr = &s.tools.seen_at("/hr")[0];
    for ticket in seen.iter().filter(|r| r.path.starts_with("/tickets")) {
        assert!(hr.at >= ticket.answered.unwrap(), "welcome ran before its dependencies");
        let key = ticket.key.clone().expect("an idempotency key");
        assert!(key.starts_with("stw-") && !key.contains("ana"), "{key}");
    }
    assert_ne!(seen[0].key, seen[1].key);
    assert_eq!(hr.key, None, "notify_hr declares no idempotency header");
    assert_eq!(
        seen.iter().find(|r| r.path == "/tickets/hardware").unwrap().body,
        json!({"queue": "hardware", "title": "Laptop for Ana"})
    );
    assert!(
        result(&done, "laptop").contains("\"id\":\"T-"),
        "{}",
        result(&done, "laptop")
    );
    assert!(
        !done.steps.iter().any(|s| s.id == "welcome_in_person"),
        "a fallback is not part of the plan"
    );

    let history = s.app.app.store.history(&ana(), PlanId(1), 50).await.unwrap();
    let by_tool: Vec<&str> = history
        .iter()
        .filter(|h| h.actor == steward::plan::Actor::Tool)
        .map(|h| h.why.as_str())
        .collect();
    assert_eq!(by_tool.iter().filter(|w| w.starts_with("running")).count(), 3);
    assert_eq!(by_tool.iter().filter(|w| w.ends_with("succeeded")).count(), 3);

    let told = notifications(&mut client, 3).await;
    assert!(told.iter().all(|n| n["kind"] == "step_done"), "{told:#?}");
    assert!(
        told.iter().any(|n| n["text"]
            .as_str()
            .unwrap()
            .starts_with("Done: “Order a laptop for Ana”")),
        "{told:#?}"
    );
    assert_eq!(s.tools.effects().values().sum::<u32>(), 3);
    drop(s.dir);
}

#[tokio::test]
async fn transient_failures_wait_for_the_backoff_and_retry_after_and_a_4xx_is_not_retried() {
    let s = setup(make_plan(), |_| {}).await;
    s.tools.script(
        "/tickets/hardware",
        vec![Answer::Status(503, None), Answer::Status(429, Some(1)), Answer::Ok],
    );
    s.tools.script("/tickets/accounts", vec![Answer::Status(422, None)]);
    let mut client = s.app.connect("ana").await;
    client.turn("c1", "provision Ana").await;

    let p = plan_when(&s.app, "the laptop ordered and the accounts failed", |p| {
        status(p, "laptop") == StepStatus::Completed && status(p, "accounts") == StepStatus::Failed
    })
    .await;
    let hardware = s.tools.seen_at("/tickets/hardware");
    assert_eq!(hardware.len(), 3);
    assert!(
        hardware.iter().all(|r| r.key == hardware[0].key),
        "one key for the epoch"
    );
    let first_gap = hardware[1].at - hardware[0].at;
    let second_gap = hardware[2].at - hardware[1].at;
    println!("engine retries: backoff gap {first_gap:?}, Retry-After gap {second_gap:?}");
    assert!(
        first_gap >= Duration::from_millis(50),
        "retried before the backoff: {first_gap:?}"
    );
    assert!(
        second_gap >= Duration::from_secs(1),
        "retried before Retry-After: {second_gap:?}"
    );
    assert!(
        result(&p, "accounts").starts_with("failed: the tool answered 422"),
        "{}",
        result(&p, "accounts")
    );
    assert_eq!(
        status(&p, "welcome"),
        StepStatus::Pending,
        "it waits on the failed step"
    );

    let told = notifications(&mut client, 2).await;
    let failed = told
        .iter()
        .find(|n| n["kind"] == "step_failed")
        .expect("a failure notice");
    assert!(
        failed["text"]
            .as_str()
            .unwrap()
            .contains("Fix that, then say “retry Create accounts for Ana”"),
        "{failed}"
    );
    // A 4xx is never tried again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(s.tools.seen_at("/tickets/accounts").len(), 1);

    // The user fixed it and says retry: a new epoch, under a new key.
    let version = plan(&s.app).await.version;
    s.model.push([
        Script::tool(
            "r1",
            "update_plan",
            json!({"plan_id": "p1", "expected_version": version, "explanation": "the user asked to retry",
                   "ops": [{"op": "set_status", "step": "accounts", "status": "pending"}]}),
        ),
        Script::text("Trying again."),
    ]);
    client.turn("c2", "retry the accounts").await;
    plan_when(&s.app, "the accounts created on the retry", |p| {
        status(p, "accounts") == StepStatus::Completed && status(p, "welcome") == StepStatus::Completed
    })
    .await;
    let accounts = s.tools.seen_at("/tickets/accounts");
    assert_eq!(accounts.len(), 2);
    assert_ne!(accounts[0].key, accounts[1].key, "a retry by the user is a new epoch");
}

#[tokio::test]
async fn a_step_that_fails_for_good_gets_the_fallback_then_a_replan_then_plain_words() {
    let s = setup(make_plan(), |c| c.engine.max_replans = 1).await;
    s.tools.script("/tickets/hardware", vec![Answer::Status(404, None)]);
    s.tools.script("/tickets/accounts", vec![Answer::Status(403, None)]);
    let mut client = s.app.connect("ana").await;
    client.turn("c1", "provision Ana").await;

    let p = plan_when(&s.app, "both tickets failed", |p| {
        status(p, "laptop") == StepStatus::Failed && status(p, "accounts") == StepStatus::Failed
    })
    .await;
    assert_eq!(s.tools.seen().len(), 2, "a 404 and a 403 are not retried");
    let told = notifications(&mut client, 2).await;
    let texts: Vec<&str> = told.iter().map(|n| n["text"].as_str().unwrap()).collect();
    assert!(
        texts.iter().any(|t| t.contains("I propose doing it by hand instead")),
        "{texts:#?}"
    );
    assert!(
        texts.iter().any(|t| t.contains("You can say “retry")),
        "past the replan limit the user is told plainly: {texts:#?}"
    );
    let proposals = s.app.app.store.open_proposals(&ana()).await.unwrap();
    assert_eq!(proposals.len(), 1, "{proposals:#?}");
    assert!(proposals[0].summary.contains("(by hand)"), "{}", proposals[0].summary);
    assert_eq!(p.steps.len(), 3);
}

#[tokio::test]
async fn a_failed_step_with_a_template_fallback_gets_the_fallback_added_in_its_place() {
    let s = setup(make_plan(), |_| {}).await;
    s.tools.script("/hr", vec![Answer::Status(410, None)]);
    let mut client = s.app.connect("ana").await;
    client.turn("c1", "provision Ana").await;
    let p = plan_when(&s.app, "the fallback added", |p| {
        p.steps.iter().any(|s| s.id == "welcome_in_person")
    })
    .await;
    assert_eq!(status(&p, "welcome"), StepStatus::Failed);
    let fallback = p.steps.iter().find(|s| s.id == "welcome_in_person").unwrap();
    assert_eq!(fallback.title, "Welcome Ana in person");
    assert_eq!(fallback.depends_on, ["laptop", "accounts"]);
    assert_eq!(fallback.tool, None);
    let told = notifications(&mut client, 3).await;
    let failed = told.iter().find(|n| n["kind"] == "step_failed").unwrap();
    assert!(
        failed["text"]
            .as_str()
            .unwrap()
            .contains("I added “Welcome Ana in person” instead"),
        "{failed}"
    );
}

#[tokio::test]
async fn an_engine_stopped_during_a_call_resends_with_the_same_key_or_asks_and_never_repeats_an_effect() {
    let s = setup(make_plan(), |_| {}).await;
    s.tools.script("/tickets/hardware", vec![Answer::Hold]);
    s.tools.script("/tickets/accounts", vec![Answer::Ok]);
    s.tools.script("/hr", vec![Answer::Hold]);
    let mut client = s.app.connect("ana").await;
    client.turn("c1", "provision Ana").await;
    s.tools
        .wait_for(WAIT, "the held laptop ticket", |seen| {
            seen.iter().any(|r| r.path == "/tickets/hardware")
        })
        .await;
    plan_when(&s.app, "accounts done", |p| {
        status(p, "accounts") == StepStatus::Completed
    })
    .await;
    drop(client);

    // Stopped after the request was sent: the effect is done, the answer lost.
    let app = s.app.restart(Arc::new(ScriptedModel::new(vec![]))).await;
    let p = plan_when(&app, "the laptop completed after the restart", |p| {
        status(p, "laptop") == StepStatus::Completed
    })
    .await;
    let hardware = s.tools.seen_at("/tickets/hardware");
    assert_eq!(hardware.len(), 2, "sent again once");
    assert_eq!(hardware[0].key, hardware[1].key, "with the same key");
    assert!(result(&p, "laptop").contains("\"id\":\"T-"), "{}", result(&p, "laptop"));

    // notify_hr takes no key: stopped during its call, it is not sent again.
    s.tools
        .wait_for(WAIT, "the held HR call", |seen| seen.iter().any(|r| r.path == "/hr"))
        .await;
    let app = app.restart(Arc::new(ScriptedModel::new(vec![]))).await;
    let p = plan_when(&app, "the HR step failed as unknown", |p| {
        status(p, "welcome") == StepStatus::Failed
    })
    .await;
    // Stopped mid-call, or timed out while the server stopped: either way
    // the outcome is unknown and handed to the person.
    let why = result(&p, "welcome");
    assert!(
        why.contains("steward stopped while calling notify_hr")
            || why.contains("notify_hr may or may not have done it"),
        "{why}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.tools.seen_at("/hr").len(), 1, "never blindly repeated");
    let effects = s.tools.effects();
    assert!(effects.values().all(|&n| n == 1), "duplicate effects: {effects:?}");
    // The person is told (written just after the step fails), in the
    // words of whichever of the two outcomes above it was.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let told = app.app.store.recent_notifications(&ana(), 10).await.unwrap();
        let unknown = |n: &steward::notification::Notification| {
            n.step_id.as_deref() == Some("welcome")
                && (n.text.contains("it may or may not have happened")
                    || n.text.contains("notify_hr may or may not have done it"))
        };
        if told.iter().any(unknown) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{told:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(s.model);
}

#[tokio::test]
async fn malformed_bindings_from_the_model_reach_no_tool_and_the_model_is_told_why() {
    let add = |tool: Value| {
        Script::tool(
            "m",
            "update_plan",
            json!({"title": "Bad", "explanation": "x", "ops": [{"op": "add_step", "title": "Do it", "tool": tool}]}),
        )
    };
    let cases = [
        (json!({"name": "rm_rf", "args": {}}), "there is no tool `rm_rf`"),
        (
            json!({"name": "open_ticket", "args": {"queue": "it"}}),
            "\"title\" is a required property",
        ),
        (
            json!({"name": "open_ticket", "args": {"queue": "it", "title": "x", "to": "everyone"}}),
            "Additional properties are not allowed",
        ),
        (
            json!({"name": "open_ticket", "args": {"queue": "it", "title": "x", "tags": vec!["t"; 50]}}),
            "/tags",
        ),
        (
            json!({"name": "open_ticket", "args": {"queue": 7, "title": "x"}}),
            "/queue",
        ),
    ];
    let mut script = Vec::new();
    for (tool, _) in &cases {
        script.push(add(tool.clone()));
        script.push(Script::text("Sorry."));
    }
    let s = setup(script, |_| {}).await;
    let mut client = s.app.connect("ana").await;
    for (n, (_, expected)) in cases.iter().enumerate() {
        client.turn(&format!("m{n}"), "add a step bound to a tool").await;
        let requests = s.model.requests();
        let last = requests.last().unwrap();
        let told = match last
            .messages
            .iter()
            .rev()
            .find(|m| matches!(m, steward::conversation::Message::Tool { .. }))
        {
            Some(steward::conversation::Message::Tool { content, .. }) => content.clone(),
            _ => panic!("no tool result"),
        };
        let error: Value = serde_json::from_str(&told).unwrap();
        let error = error["error"].as_str().unwrap_or_default();
        assert!(error.contains(expected), "case {n}: {told}");
    }
    assert!(s.app.app.store.list_plans(&ana()).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(s.tools.seen().is_empty(), "a tool was called: {:#?}", s.tools.seen());
}

/// A verified address, set in the store (the verification flow is tested
/// in `engage`).
async fn verified(app: &TestApp, user: &UserId, email: &str) {
    app.app.store.ensure_user(user).await.unwrap();
    let prefs = steward::preferences::Preferences {
        email: Some(email.into()),
        email_verified: true,
        ..Default::default()
    };
    let saved = app
        .app
        .store
        .save_preferences(user, &Default::default(), &prefs, None, None)
        .await
        .unwrap();
    assert!(saved);
}

#[tokio::test]
async fn the_built_in_templates_email_the_welcome_note_and_put_the_departure_in_the_calendar_feed() {
    let templates = Arc::new(steward::planner::templates::Templates::built_in().unwrap());
    let engine = Arc::new(steward::offline::OfflineEngine::new(templates));
    // Monday 2026-11-30, 13:00 in Berlin, running at real speed.
    let app = TestApp::with(engine)
        .config(|c| c.time_zone = "Europe/Berlin".into())
        .clock(crate::harness::clock_from("2026-11-30T12:00:00Z"))
        .spawn()
        .await;
    verified(&app, &ana(), "ana@example.com").await;
    let mut client = app.connect("ana").await;
    client
        .turn("g1", "help me onboard Ana Souza, she starts December 2")
        .await;
    let p = plan(&app).await;
    assert_eq!(p.mode, steward::plan::PlanMode::Orchestrated);
    let welcome = p.steps.iter().find(|s| s.id == "welcome_email").unwrap();
    assert_eq!(welcome.tool.as_ref().unwrap().name, "send_email");
    assert_eq!(
        welcome.status,
        StepStatus::Pending,
        "it waits for the accounts and the buddy"
    );

    client.turn("d1", "done with the accounts").await;
    client.turn("d2", "done with the buddy").await;
    let p = plan_when(&app, "the welcome email sent", |p| {
        status(p, "welcome_email") == StepStatus::Completed
    })
    .await;
    assert_eq!(result(&p, "welcome_email"), "emailed to ana@example.com");
    let attempt = app
        .app
        .store
        .last_attempt(&ana(), PlanId(1), "welcome_email")
        .await
        .unwrap()
        .expect("the welcome email's attempt");
    let key = attempt.key;
    let queued = app
        .app
        .store
        .outbox_by_key(&key)
        .await
        .unwrap()
        .expect("an outbox row under the step's key");
    match queued.payload {
        steward::notification::Payload::Email(email) => {
            assert_eq!(email.to, "ana@example.com");
            assert_eq!(email.subject, "Welcome email for Ana Souza, ready to forward");
            assert!(email.text.contains("Your first day is Dec 2."), "{}", email.text);
        }
        other => panic!("not an email: {other:?}"),
    }

    client.turn("t1", "plan a trip to Lisbon from December 20").await;
    let trip = app.app.store.get_plan(&ana(), PlanId(2)).await.unwrap().unwrap();
    assert!(trip.steps.iter().any(|s| s.id == "calendar"));
    client.turn("t2", "done with flights").await;
    let deadline = Instant::now() + WAIT;
    let events = loop {
        let events = app.app.store.events(&ana()).await.unwrap();
        if !events.is_empty() {
            break events;
        }
        assert!(Instant::now() < deadline, "no calendar event");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].title, "Departure to Lisbon");
    assert_eq!(
        events[0].starts.to_rfc3339(),
        "2026-12-20T08:00:00+00:00",
        "09:00 in Berlin"
    );
    let prefs: Value = reqwest::get(app.url("/api/preferences?user=ana"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let feed = prefs["calendar_url"]
        .as_str()
        .unwrap()
        .replace("http://127.0.0.1:8080", &format!("http://{}", app.addr));
    let ics = reqwest::get(&feed).await.unwrap().text().await.unwrap();
    assert!(ics.contains("SUMMARY:Departure to Lisbon"), "{ics}");
}

/// Checks every line is Prometheus/OpenMetrics text and returns the
/// samples as `name{labels}` → value.
pub(crate) fn parse_metrics(text: &str) -> std::collections::HashMap<String, f64> {
    let sample = regex::Regex::new(r#"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})?) (-?[0-9.e+-]+|\+Inf|NaN)$"#).unwrap();
    let mut out = std::collections::HashMap::new();
    assert!(text.ends_with("# EOF\n"), "{text}");
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") || line.starts_with("# UNIT ") || line == "# EOF"
        {
            continue;
        }
        let c = sample
            .captures(line)
            .unwrap_or_else(|| panic!("not a sample line: {line}"));
        out.insert(c[1].to_owned(), c[2].parse().unwrap());
    }
    out
}

#[tokio::test]
async fn metrics_and_the_admin_api_follow_the_engine_and_a_stalled_step_is_reported_once() {
    let token = "operator-token-".repeat(3);
    let admin = token.clone();
    let s = setup(make_plan(), move |c| {
        c.admin_token = Some(admin.into());
        c.engine.stall_after_secs = 1;
        c.engine.operator_email = Some("ops@example.com".into());
    })
    .await;
    s.tools.script("/tickets/hardware", vec![Answer::Hold]);
    s.tools.script("/tickets/accounts", vec![Answer::Status(404, None)]);
    let mut client = s.app.connect("ana").await;
    client.turn("c1", "provision Ana").await;
    let p = plan_when(&s.app, "accounts failed", |p| {
        status(p, "accounts") == StepStatus::Failed
    })
    .await;
    // (The failure's notification is worded first: the script is the model's.)
    notifications(&mut client, 1).await;
    // And a step the person works on, started now.
    s.model.push([
        Script::tool(
            "h",
            "update_plan",
            json!({"plan_id": "p1", "expected_version": p.version, "explanation": "x",
                   "ops": [{"op": "add_step", "id": "call_ana", "title": "Call Ana", "status": "in_progress"}]}),
        ),
        Script::text("Added."),
    ]);
    client.turn("c2", "I'm calling Ana").await;

    let http = reqwest::Client::new();
    let get = |path: &str, bearer: Option<&str>| {
        let mut r = http.get(s.app.url(path));
        if let Some(b) = bearer {
            r = r.bearer_auth(b);
        }
        r.send()
    };
    assert_eq!(get("/metrics", None).await.unwrap().status(), 401);
    assert_eq!(get("/metrics", Some("wrong")).await.unwrap().status(), 401);
    assert_eq!(get("/admin/steps/stalled", None).await.unwrap().status(), 401);
    // The failed step's task ends (its notification, its record) just
    // after the plan shows it failed: read once only the held one runs.
    let deadline = Instant::now() + WAIT;
    let metrics = loop {
        let m = parse_metrics(&get("/metrics", Some(&token)).await.unwrap().text().await.unwrap());
        if m.get("steward_steps_running") == Some(&1.0) {
            break m;
        }
        assert!(Instant::now() < deadline, "{m:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let at = |name: &str| metrics.get(name).copied().unwrap_or(0.0);
    assert_eq!(
        at(r#"steward_plans_created_total{kind="provision"}"#),
        1.0,
        "{metrics:#?}"
    );
    assert_eq!(
        at(r#"steward_tool_calls_total{tool="open_ticket",outcome="permanent"}"#),
        1.0
    );
    assert_eq!(at(r#"steward_steps_failed_total{kind="provision"}"#), 1.0);
    assert_eq!(at("steward_steps_running"), 1.0, "the held laptop ticket");
    assert_eq!(at("steward_ws_connections"), 1.0);
    assert!(at("steward_turns_total") >= 1.0);

    // Held past the threshold: stalled, listed, and reported once.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let stalled: Value = get("/admin/steps/stalled", Some(&token))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let human = stalled["in_progress"].as_array().unwrap().clone();
    assert_eq!(human.len(), 1, "{human:#?}");
    assert_eq!(human[0]["step_id"], "call_ana");
    let stalled = stalled["stalled"].as_array().unwrap();
    assert_eq!(stalled.len(), 1, "{stalled:#?}");
    assert_eq!(stalled[0]["step_id"], "laptop");
    let key = format!("stalled:{}", stalled[0]["key"].as_str().unwrap());
    let deadline = Instant::now() + WAIT;
    let alert = loop {
        if let Some(row) = s.app.app.store.outbox_by_key(&key).await.unwrap() {
            break row;
        }
        assert!(Instant::now() < deadline, "no operator alert");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    match alert.payload {
        steward::notification::Payload::Email(email) => {
            assert_eq!(email.to, "ops@example.com");
            assert!(email.subject.contains("laptop"), "{}", email.subject);
        }
        other => panic!("{other:?}"),
    }

    // The operator reads the plan and retries the failed step.
    let body: Value = get("/admin/users/ana/plans/p1", Some(&token))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["plan"]["id"], "p1");
    assert!(body["history"].as_array().unwrap().len() >= 3);
    let retry = |step: &str| {
        http.post(s.app.url(&format!("/admin/users/ana/plans/p1/steps/{step}/retry")))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(retry("laptop").await.unwrap().status(), 409, "only a failed step");
    let retried = retry("accounts").await.unwrap();
    assert_eq!(retried.status(), 200);
    plan_when(&s.app, "accounts created on the operator's retry", |p| {
        status(p, "accounts") == StepStatus::Completed
    })
    .await;
    let history = s.app.app.store.history(&ana(), PlanId(1), 50).await.unwrap();
    assert!(history.iter().any(|h| h.actor == steward::plan::Actor::Operator));
    let last = s
        .app
        .app
        .store
        .last_attempt(&ana(), PlanId(1), "accounts")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.epoch, 2, "the retry ran in a new attempt epoch");
    s.tools.release();
    plan_when(&s.app, "the laptop done", |p| {
        status(p, "laptop") == StepStatus::Completed
    })
    .await;
    // The counters move just after the plan write that shows the step done.
    let deadline = Instant::now() + WAIT;
    loop {
        let m = parse_metrics(&get("/metrics", Some(&token)).await.unwrap().text().await.unwrap());
        let ok = m
            .get(r#"steward_tool_calls_total{tool="open_ticket",outcome="ok"}"#)
            .copied();
        let timed = m
            .get(r#"steward_step_latency_seconds_count{kind="provision"}"#)
            .copied();
        // The laptop and the accounts (the welcome step may follow them).
        if ok.is_some_and(|n| n >= 2.0) && timed.is_some_and(|n| n >= 2.0) {
            break;
        }
        assert!(Instant::now() < deadline, "{m:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The rest of the server counts too: turns, model calls, routing.
    let m = parse_metrics(&get("/metrics", Some(&token)).await.unwrap().text().await.unwrap());
    assert!(m[r#"steward_model_calls_total{outcome="ok"}"#] >= 2.0, "{m:#?}");
    assert!(m["steward_turn_seconds_count"] >= 2.0);
    assert!(m["steward_model_call_seconds_count"] >= 2.0);
    assert!(m[r#"steward_notifications_total{channel="socket",outcome="routed"}"#] >= 1.0);
    drop(client);
}

#[tokio::test]
async fn a_failed_check_reopens_the_step_it_checks_which_runs_again_and_the_check_after_it() {
    let script = vec![
        Script::tool(
            "t1",
            "plan_from_template",
            json!({"kind": "signup", "slots": {"name": "beta"}}),
        ),
        Script::text("Planned."),
    ];
    let s = setup(script, |_| {}).await;
    s.tools
        .script("/tickets/verify", vec![Answer::Status(404, None), Answer::Ok]);
    let mut client = s.app.connect("ana").await;
    client.turn("c1", "signup beta").await;
    let p = plan(&s.app).await;
    let verify = p.steps.iter().find(|s| s.id == "verify").unwrap();
    assert_eq!(verify.checks.as_deref(), Some("register"));
    assert_eq!(verify.depends_on, ["register"], "a check waits for what it checks");

    let p = plan_when(&s.app, "the check passed on the second round", |p| {
        status(p, "verify") == StepStatus::Completed
    })
    .await;
    assert_eq!(status(&p, "register"), StepStatus::Completed);
    let register = s.tools.seen_at("/tickets/deploy");
    assert_eq!(register.len(), 2, "done again after the failed check");
    assert_ne!(register[0].key, register[1].key, "as a new epoch");
    let verify = s.tools.seen_at("/tickets/verify");
    assert_eq!(verify.len(), 2);
    assert!(
        verify[1].at >= register[1].answered.unwrap(),
        "the check ran after the step it checks"
    );
    let history = s.app.app.store.history(&ana(), PlanId(1), 50).await.unwrap();
    assert!(
        history.iter().any(|h| h.changes.iter().any(|c| matches!(c,
            steward::plan::Change::StepStatus { step, from: StepStatus::Completed, to: StepStatus::Pending } if step == "register"))),
        "{history:#?}"
    );
    let told = notifications(&mut client, 4).await;
    assert!(
        told.iter().any(|n| n["text"]
            .as_str()
            .unwrap()
            .contains("I reopened “Deploy the registration form” to do it again")),
        "{told:#?}"
    );

    // A person's own check fails: the same rule, through the service.
    let version = plan(&s.app).await.version;
    s.model.push([
        Script::tool(
            "f1",
            "update_plan",
            json!({"plan_id": "p1", "expected_version": version, "explanation": "the user tried it by hand",
                   "ops": [
                       {"op": "add_step", "id": "by_hand", "title": "Try the form by hand", "depends_on": ["register"], "checks": "register"},
                       {"op": "set_status", "step": "by_hand", "status": "in_progress"},
                       {"op": "set_status", "step": "by_hand", "status": "failed", "result": "accepts an empty email"}
                   ]}),
        ),
        Script::text("Reopened."),
    ]);
    client
        .turn("c2", "I tried the form by hand: it accepts an empty email")
        .await;
    let p = plan_when(&s.app, "register done a third time", |p| {
        status(p, "register") == StepStatus::Completed && s.tools.seen_at("/tickets/deploy").len() == 3
    })
    .await;
    assert_eq!(
        status(&p, "by_hand"),
        StepStatus::Pending,
        "the check waits to be tried again"
    );
    assert!(result(&p, "by_hand").contains("accepts an empty email"));
}

#[tokio::test]
async fn a_configured_model_writes_the_replan_when_the_template_has_none() {
    let mut script = make_plan();
    script.push(Script::tool(
        "rp",
        "update_plan",
        json!({"plan_id": "p1", "expected_version": 1, "explanation": "the laptop order failed",
               "ops": [{"op": "add_step", "id": "laptop_shop", "title": "Buy a laptop in a shop", "after": "laptop"},
                       {"op": "set_status", "step": "laptop", "status": "cancelled"}]}),
    ));
    let s = setup(script, |_| {}).await;
    s.tools.script("/tickets/hardware", vec![Answer::Status(404, None)]);
    s.tools.script("/tickets/accounts", vec![Answer::Hold]);
    let mut client = s.app.connect("ana").await;
    client.turn("c1", "provision Ana").await;
    plan_when(&s.app, "the laptop failed", |p| {
        status(p, "laptop") == StepStatus::Failed
    })
    .await;
    let told = notifications(&mut client, 1).await;
    assert!(
        told[0]["text"].as_str().unwrap().contains("I propose instead:"),
        "{told:#?}"
    );
    let proposals = s.app.app.store.open_proposals(&ana()).await.unwrap();
    assert_eq!(proposals.len(), 1);
    assert!(
        proposals[0].summary.contains("Buy a laptop in a shop"),
        "{}",
        proposals[0].summary
    );
    let asked = s.model.requests().into_iter().nth(2).expect("the replan request");
    assert_eq!(asked.tools.iter().map(|t| t.name).collect::<Vec<_>>(), ["update_plan"]);
    let said = format!("{:?}", asked.messages);
    assert!(said.contains("failed for good: the tool answered 404"), "{said}");
    assert_eq!(plan(&s.app).await.steps.len(), 3, "nothing changes before the yes");
    s.tools.release();
}

#[tokio::test]
async fn one_users_backlog_of_ready_steps_does_not_hide_another_users_step() {
    use steward::plan::{HistoryEntry, PlanMode, Step, ToolBinding};
    use steward::store::Derived;
    let s = setup(vec![], |c| {
        c.engine.max_concurrency = 2;
        c.engine.per_user = 1;
    })
    .await;
    // Everything the hog asks for is held: its one slot stays taken.
    s.tools.script("/tickets/hog", (0..400).map(|_| Answer::Hold).collect());
    let store = &s.app.app.store;
    let derive = |p: &Plan| Derived {
        triggers: Vec::new(),
        arm_after: p.updated_at,
        runnable: steward::execution::runnable(p),
    };
    let make = |queue: &str, n: usize| {
        let mut p = Plan::draft(format!("{queue} work"), "", chrono::Utc::now());
        p.version = 1;
        p.mode = PlanMode::Orchestrated;
        for i in 0..n {
            let mut step = Step::new(format!("s{i}"), format!("{queue} {i}"));
            // Dated an hour ago: listed first, wherever the plan moves.
            if queue == "hog" {
                step.due_at = Some(chrono::Utc::now() - chrono::Duration::hours(1));
            }
            step.tool = Some(ToolBinding {
                name: "open_ticket".into(),
                args: json!({"queue": queue, "title": format!("{queue} {i}")}),
            });
            p.steps.push(step);
        }
        p
    };
    let entry = || HistoryEntry {
        at: chrono::Utc::now(),
        actor: steward::plan::Actor::User,
        why: "test".into(),
        version: 1,
        changes: vec![],
        undoes: None,
    };
    let hog = UserId::parse("hog").unwrap();
    store.ensure_user(&hog).await.unwrap();
    for _ in 0..4 {
        store
            .create_plan(&hog, make("hog", 80), entry(), &derive)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    store.ensure_user(&ana()).await.unwrap();
    store
        .create_plan(&ana(), make("ana", 1), entry(), &derive)
        .await
        .unwrap();
    // Ana's step is listed after 320 of the hog's: it still runs.
    s.tools
        .wait_for(WAIT, "ana's ticket", |seen| {
            seen.iter().any(|r| r.path == "/tickets/ana")
        })
        .await;
    assert!(s.tools.seen_at("/tickets/hog").len() <= 2, "the hog holds one slot");
    s.tools.release();
}

#[tokio::test]
async fn only_a_step_bound_to_a_tool_with_side_effects_waits_for_a_yes() {
    let script = vec![
        Script::tool(
            "a",
            "update_plan",
            json!({"title": "Trip", "explanation": "x", "ops": [
                {"op": "add_step", "id": "pack", "title": "Pack"},
                {"op": "add_step", "id": "remind", "title": "Remind me to pack",
                 "tool": {"name": "schedule_reminder", "args": {"text": "pack", "at": "2027-01-10T09:00:00Z"}}}]}),
        ),
        Script::text("Added."),
    ];
    let s = setup(script, |c| {
        c.confirm = steward::config::ConfirmConfig {
            create_plan: false,
            ..Default::default()
        };
    })
    .await;
    let mut client = s.app.connect("ana").await;
    client.turn("c1", "remind me to pack").await;
    let p = plan_when(&s.app, "the reminder step ran", |p| {
        status(p, "remind") == StepStatus::Completed
    })
    .await;
    assert!(
        result(&p, "remind").starts_with("reminder set for"),
        "{}",
        result(&p, "remind")
    );
    assert!(s.app.app.store.open_proposals(&ana()).await.unwrap().is_empty());
    // The step's notification is worded first: the script is the model's.
    notifications(&mut client, 1).await;
    s.model.push([
        Script::tool(
            "b",
            "update_plan",
            json!({"plan_id": "p1", "expected_version": p.version, "explanation": "x", "ops": [{"op": "add_step", "id": "mail", "title": "Email me the packing list",
                   "tool": {"name": "send_email", "args": {"subject": "Packing", "body": "Passport"}}}]}),
        ),
        Script::text("Proposed."),
    ]);
    client.turn("c2", "and email me the packing list").await;
    let proposals = s.app.app.store.open_proposals(&ana()).await.unwrap();
    assert_eq!(proposals.len(), 1, "an email is sent only after the person's yes");
    assert!(plan(&s.app).await.steps.iter().all(|s| s.id != "mail"));
}

#[tokio::test]
async fn a_call_that_times_out_is_retried_under_its_key_and_takes_effect_once() {
    let script = vec![
        Script::tool(
            "a",
            "update_plan",
            json!({"title": "Slow", "explanation": "x", "ops": [{"op": "add_step", "id": "slow", "title": "Slow ticket",
                   "tool": {"name": "slow_ticket", "args": {"title": "slow"}}}]}),
        ),
        Script::text("Added."),
    ];
    let s = setup(script, |_| {}).await;
    // The first call is done on arrival but answered too late.
    s.tools.script("/slow", vec![Answer::Hold]);
    let mut client = s.app.connect("ana").await;
    client.turn("c1", "open a slow ticket").await;
    let p = plan_when(&s.app, "the slow ticket done", |p| {
        status(p, "slow") == StepStatus::Completed
    })
    .await;
    let calls = s.tools.seen_at("/slow");
    assert_eq!(calls.len(), 2, "timed out once, then answered from the stored result");
    assert_eq!(calls[0].key, calls[1].key);
    let gap = calls[1].at - calls[0].at;
    assert!(
        gap >= Duration::from_secs(1),
        "the retry waited for the timeout: {gap:?}"
    );
    assert_eq!(s.tools.effects().values().sum::<u32>(), 1);
    assert!(result(&p, "slow").contains("T-1"), "{}", result(&p, "slow"));
    s.tools.release();
}

#[tokio::test]
async fn a_call_that_may_have_run_on_a_tool_without_a_key_is_not_repeated() {
    let s = setup(make_plan(), |_| {}).await;
    // A 500 may come after the work was done: without a key, asking again
    // could do it twice.
    s.tools.script("/hr", vec![Answer::Status(500, None)]);
    let mut client = s.app.connect("ana").await;
    client.turn("c1", "provision Ana").await;
    let p = plan_when(&s.app, "the HR step failed", |p| {
        status(p, "welcome") == StepStatus::Failed
    })
    .await;
    assert!(
        result(&p, "welcome").contains("may or may not have done it"),
        "{}",
        result(&p, "welcome")
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(s.tools.seen_at("/hr").len(), 1, "not retried");
}

#[tokio::test]
async fn a_cancelled_plan_stops_its_retries() {
    let s = setup(make_plan(), |_| {}).await;
    s.tools.script("/tickets/hardware", vec![Answer::Status(503, Some(1))]);
    let mut client = s.app.connect("ana").await;
    client.turn("c1", "provision Ana").await;
    s.tools
        .wait_for(WAIT, "the first laptop call", |seen| {
            seen.iter().any(|r| r.path == "/tickets/hardware")
        })
        .await;
    let version = plan(&s.app).await.version;
    s.model.push([
        Script::tool(
            "x",
            "update_plan",
            json!({"plan_id": "p1", "expected_version": version, "explanation": "not needed",
                   "ops": [{"op": "cancel_plan"}]}),
        ),
        Script::text("Cancelled."),
    ]);
    // The accounts step may finish and bump the version meanwhile: retry
    // the cancel against the plan as it is until it lands.
    client.turn("c2", "cancel the provisioning").await;
    let deadline = Instant::now() + WAIT;
    let mut attempt = 0;
    while plan(&s.app).await.status != steward::plan::PlanStatus::Cancelled {
        attempt += 1;
        assert!(Instant::now() < deadline, "the plan was never cancelled");
        let version = plan(&s.app).await.version;
        s.model.push([
            Script::tool(
                "y",
                "update_plan",
                json!({"plan_id": "p1", "expected_version": version, "explanation": "not needed",
                       "ops": [{"op": "cancel_plan"}]}),
            ),
            Script::text("Cancelled."),
        ]);
        // A new id each time: the same id and words would be a resend, not run.
        client.turn(&format!("c3-{attempt}"), "cancel it").await;
    }
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(
        s.tools.seen_at("/tickets/hardware").len(),
        1,
        "no retry after the plan was cancelled"
    );
    let attempt = s
        .app
        .app
        .store
        .last_attempt(&ana(), PlanId(1), "laptop")
        .await
        .unwrap()
        .unwrap();
    assert!(attempt.settled, "{attempt:?}");
}

#[tokio::test]
async fn a_failure_recorded_before_a_stop_is_still_told_after_the_restart() {
    use steward::execution::{Attempt, AttemptState, ErrorClass};
    use steward::plan::{HistoryEntry, Step, ToolBinding};
    use steward::store::Derived;
    let s = setup(vec![], |_| {}).await;
    let store = &s.app.app.store;
    // As steward left it: the step marked failed, the attempt final but
    // not settled (it stopped before telling the person).
    let mut p = Plan::draft("Provision Ana", "", chrono::Utc::now());
    p.version = 1;
    let mut step = Step::new("laptop", "Order a laptop for Ana");
    step.status = StepStatus::Failed;
    step.tool = Some(ToolBinding {
        name: "open_ticket".into(),
        args: json!({"queue": "hardware", "title": "Laptop"}),
    });
    p.steps.push(step);
    let entry = HistoryEntry {
        at: chrono::Utc::now(),
        actor: steward::plan::Actor::Tool,
        why: "open_ticket failed".into(),
        version: 1,
        changes: vec![],
        undoes: None,
    };
    let derive = |p: &Plan| Derived {
        triggers: Vec::new(),
        arm_after: p.updated_at,
        runnable: steward::execution::runnable(p),
    };
    store.ensure_user(&ana()).await.unwrap();
    let plan = store.create_plan(&ana(), p, entry, &derive).await.unwrap();
    let mut attempt = Attempt::new(
        ana(),
        plan.id,
        "laptop".into(),
        1,
        "open_ticket".into(),
        json!({}),
        chrono::Utc::now(),
        chrono::Duration::hours(1),
        b"salt",
    );
    attempt.tries = 1;
    attempt.state = AttemptState::Failed {
        class: ErrorClass::Permanent,
        error: "the tool answered 404 Not Found".into(),
    };
    store.save_attempt(&attempt).await.unwrap();
    // Stopped and started again: the engine finds it at start-up.
    let app = s.app.restart(Arc::new(ScriptedModel::new(vec![]))).await;
    let store = &app.app.store;
    let deadline = Instant::now() + WAIT;
    loop {
        let told = store.recent_notifications(&ana(), 10).await.unwrap();
        if told
            .iter()
            .any(|n| n.text.contains("could not be done: the tool answered 404"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "never told: {told:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The attempt is closed just after the notification is stored.
    loop {
        let attempt = store.last_attempt(&ana(), plan.id, "laptop").await.unwrap().unwrap();
        if attempt.settled {
            break;
        }
        assert!(Instant::now() < deadline, "never settled: {attempt:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let told = store.recent_notifications(&ana(), 10).await.unwrap();
    let failures = told.iter().filter(|n| n.text.contains("could not be done")).count();
    assert_eq!(failures, 1, "told once: {told:#?}");
    assert!(s.tools.seen().is_empty(), "nothing was called again");
}
