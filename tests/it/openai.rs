//! The OpenAI-compatible adapter against a real HTTP server on loopback.

use crate::fake_openai::{FakeOpenAi, Reply};
use crate::harness::{TestApp, of_type};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use steward::llm::openai::OpenAiModel;

pub(crate) fn adapter(fake: &FakeOpenAi) -> Arc<OpenAiModel> {
    let mut config = steward::config::LlmConfig {
        model: "test-model".into(),
        api_key: Some("sk-test".into()),
        ..Default::default()
    };
    config.first_token_timeout_secs = 5;
    Arc::new(OpenAiModel::new(&config, &fake.base_url()).unwrap())
}

fn create_args() -> Value {
    json!({
        "title": "Launch Nimbus — ünïcödé",
        "explanation": "launch plan",
        "ops": [{"op": "add_step", "id": "press", "title": "Press kit", "due_at": "2027-02-20"},
                {"op": "add_step", "id": "launch", "title": "Launch", "depends_on": ["press"], "due_at": "2027-03-03"}]
    })
}

#[tokio::test]
async fn the_adapter_streams_text_and_tool_calls_and_sends_the_whole_conversation() {
    let fake = FakeOpenAi::start(|_, n| match n {
        0 => Reply::ToolCall {
            id: "call_1".into(),
            name: "update_plan".into(),
            arguments: create_args(),
        },
        _ => Reply::Text(vec!["All ".into(), "set: ".into(), "two steps.".into()]),
    })
    .await;
    let app = TestApp::with(adapter(&fake))
        .config(|c| c.llm.retry_base_ms = 10)
        .spawn()
        .await;
    let mut ana = app.connect("ana").await;
    let frames = ana.turn("c1", "plan the launch of Nimbus on March 3").await;

    let plan = &of_type(&frames, "plan")[0]["plan"];
    assert_eq!(plan["title"], "Launch Nimbus — ünïcödé");
    assert_eq!(plan["steps"][1]["depends_on"], json!(["press"]));
    let deltas: Vec<&str> = of_type(&frames, "delta")
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    // The first piece goes out at once; pieces close behind it are sent together.
    assert_eq!(deltas[0], "All ");
    assert_eq!(deltas.concat(), "All set: two steps.");
    assert_eq!(frames.last().unwrap()["text"], "All set: two steps.");

    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    let first = &requests[0];
    assert_eq!(first["model"], "test-model");
    assert_eq!(first["stream"], true);
    let tool_names: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        tool_names,
        // The tools of every call, and templates for a person with no plan
        // yet (the rest come through load_tools).
        ["update_plan", "load_tools", "plan_from_template"]
    );
    assert_eq!(first["tools"][0]["type"], "function");
    assert_eq!(first["tools"][0]["function"]["parameters"]["type"], "object");
    assert_eq!(first["messages"][0]["role"], "system");
    assert!(
        first["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("(no active plans)")
    );
    assert_eq!(
        first["messages"][1],
        json!({"role": "user", "content": "plan the launch of Nimbus on March 3"})
    );

    let second = &requests[1];
    let messages = second["messages"].as_array().unwrap();
    assert!(
        messages[0]["content"]
            .as_str()
            .unwrap()
            .contains("p1 \"Launch Nimbus — ünïcödé\" version=1")
    );
    assert_eq!(messages[2]["role"], "assistant");
    assert_eq!(messages[2]["tool_calls"][0]["id"], "call_1");
    assert_eq!(messages[2]["tool_calls"][0]["type"], "function");
    assert_eq!(messages[2]["tool_calls"][0]["function"]["name"], "update_plan");
    let sent_args: Value =
        serde_json::from_str(messages[2]["tool_calls"][0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(
        sent_args,
        create_args(),
        "arguments reassembled from 7-character pieces"
    );
    assert_eq!(messages[3]["role"], "tool");
    assert_eq!(messages[3]["tool_call_id"], "call_1");
    let result: Value = serde_json::from_str(messages[3]["content"].as_str().unwrap()).unwrap();
    assert_eq!(
        (
            result["ok"].clone(),
            result["plan_id"].clone(),
            result["version"].clone()
        ),
        (json!(true), json!("p1"), json!(1))
    );
}

#[tokio::test]
async fn a_429_retry_after_is_honoured_and_malformed_or_truncated_answers_are_retried() {
    let fake = FakeOpenAi::start(|_, n| match n {
        0 => Reply::Status {
            code: 429,
            retry_after: Some(1),
            message: "slow down".into(),
        },
        1 => Reply::Garbage,
        2 => Reply::Truncated,
        3 => Reply::Status {
            code: 503,
            retry_after: None,
            message: "overloaded".into(),
        },
        _ => Reply::Text(vec!["finally".into()]),
    })
    .await;
    let app = TestApp::with(adapter(&fake))
        .config(|c| {
            c.llm.retry_base_ms = 10;
            c.llm.max_retries = 4;
        })
        .spawn()
        .await;
    let mut ana = app.connect("ana").await;
    let frames = ana.turn("c1", "hello").await;
    assert_eq!(frames.last().unwrap()["type"], "reply", "{frames:?}");
    assert_eq!(frames.last().unwrap()["text"], "finally");
    let times = fake.request_times();
    assert_eq!(times.len(), 5);
    let waited = times[1] - times[0];
    assert!(
        waited >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured: {waited:?}"
    );
    assert!(
        times[2] - times[1] < Duration::from_secs(1),
        "backoff without Retry-After stays short"
    );
}

#[tokio::test]
async fn a_client_error_is_not_retried_and_reaches_the_user_clearly() {
    let fake = FakeOpenAi::start(|_, _| Reply::Status {
        code: 400,
        retry_after: None,
        message: "model `nope` does not exist".into(),
    })
    .await;
    let app = TestApp::with(adapter(&fake))
        .config(|c| c.llm.retry_base_ms = 10)
        .spawn()
        .await;
    let mut ana = app.connect("ana").await;
    let frames = ana.turn("c1", "hello").await;
    let error = frames.last().unwrap();
    assert_eq!(error["code"], "model_unavailable");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("model `nope` does not exist"),
        "{error}"
    );
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_fails_at_once() {
    let fake = FakeOpenAi::start(|_, _| Reply::Status {
        code: 429,
        retry_after: Some(3600),
        message: "quota".into(),
    })
    .await;
    let app = TestApp::with(adapter(&fake))
        .config(|c| c.llm.max_retry_after_secs = 5)
        .spawn()
        .await;
    let mut ana = app.connect("ana").await;
    let frames = tokio::time::timeout(Duration::from_secs(3), ana.turn("c1", "hello"))
        .await
        .expect("no long wait");
    let error = frames.last().unwrap();
    assert_eq!(error["code"], "model_unavailable");
    assert!(error["message"].as_str().unwrap().contains("wait 3600s"), "{error}");
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn the_model_tokens_a_provider_reports_count_against_a_daily_cap_per_user() {
    let fake = FakeOpenAi::start(|_, _| Reply::Text(vec!["Noted.".into()])).await;
    let admin = "operator-token-operator-token";
    let app = TestApp::with(adapter(&fake))
        .config(|c| {
            c.llm.retry_base_ms = 10;
            c.limits.model_tokens_per_day = 1500;
            c.admin_token = Some(admin.into());
        })
        .spawn()
        .await;
    let mut ana = app.connect("ana").await;
    // 1 010 tokens a call: two calls fit in 1 500 (the second runs into debt).
    for id in ["c1", "c2"] {
        let frames = ana.turn(id, "hello").await;
        assert_eq!(frames.last().unwrap()["type"], "reply", "{frames:?}");
    }
    let frames = ana.turn("c3", "hello again").await;
    let refused = frames.last().unwrap();
    assert_eq!(refused["code"], "quota_exceeded", "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("available again in about"), "{message}");
    assert_eq!(fake.requests().len(), 2, "the refused turn never reached the model");
    assert_eq!(fake.requests()[0]["stream_options"]["include_usage"], true);
    // Another user has their own day.
    let mut ben = app.connect("ben").await;
    assert_eq!(ben.turn("b1", "hello").await.last().unwrap()["type"], "reply");
    let m = app.metrics(admin).await;
    assert_eq!(m["steward_model_prompt_tokens_total"], 3000.0);
    assert_eq!(m["steward_model_completion_tokens_total"], 30.0);
}

#[tokio::test]
async fn messages_waiting_behind_a_slow_model_show_on_metrics_until_answered() {
    let fake =
        FakeOpenAi::start(|_, _| Reply::Slow(Duration::from_millis(700), Box::new(Reply::Text(vec!["Noted.".into()]))))
            .await;
    let admin = "operator-token-operator-token";
    let app = TestApp::with(adapter(&fake))
        .config(|c| c.admin_token = Some(admin.into()))
        .spawn()
        .await;
    let mut ana = app.connect("ana").await;
    for id in ["q1", "q2", "q3"] {
        ana.say(id, "hello").await;
    }
    // The first is with the model; the other two wait their turn.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let m = app.metrics(admin).await;
        if m["steward_turns_queued"] == 2.0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never two waiting: {m:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut replies = 0;
    while replies < 3 {
        if ana.recv().await["type"] == "reply" {
            replies += 1;
        }
    }
    let m = app.metrics(admin).await;
    assert_eq!(m["steward_turns_queued"], 0.0, "{m:?}");
    assert_eq!(m["steward_outbound_frames_queued"], 0.0, "every frame written: {m:?}");
    assert_eq!(m["steward_turns_total"], 3.0);
}
