//! REST under `/api`: every route with good and bad input (another user's
//! ids, unknown ids, malformed JSON, oversized bodies, no credentials), and
//! the OpenAPI document against what the router really serves.

use crate::harness::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use steward::config::ConfirmConfig;
use steward::offline::OfflineEngine;
use steward::planner::templates::Templates;

fn engine() -> Arc<OfflineEngine> {
    Arc::new(OfflineEngine::new(Arc::new(Templates::built_in().unwrap())))
}

async fn app() -> TestApp {
    TestApp::with(engine())
        .config(|c| {
            c.confirm = ConfirmConfig::default();
            c.time_zone = "Europe/Berlin".into();
            c.background = false;
        })
        .clock(crate::harness::clock_from("2026-11-22T10:00:00Z"))
        .spawn()
        .await
}

async fn call(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new().request(method, app.url(path));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Each GET answers with its status and typed error code.
async fn expect_errors(app: &TestApp, cases: &[(&str, u16, &str)]) {
    for &(path, status, code) in cases {
        let (s, e) = call(app, Method::GET, path, None).await;
        assert_eq!(
            (s.as_u16(), e["error"]["code"].clone()),
            (status, json!(code)),
            "{path}"
        );
    }
}

#[tokio::test]
async fn plans_and_proposals_over_rest_answer_only_for_their_own_user() {
    let app = app().await;
    let mut ana = app.connect("ana").await;
    ana.turn("g1", "help me onboard Ana Souza, she starts December 1").await;

    let (s, open) = call(&app, Method::GET, "/api/proposals?user=ana", None).await;
    assert_eq!(s, 200);
    let id = open["proposals"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(open["proposals"][0]["status"], "open");
    let (s, bobs) = call(&app, Method::GET, "/api/proposals?user=bob", None).await;
    assert_eq!((s, bobs), (StatusCode::OK, json!({"proposals": []})));
    // Bob cannot answer Ana's proposal: it is not found for him.
    let confirm = format!("/api/proposals/{id}/confirm");
    let (s, e) = call(
        &app,
        Method::POST,
        &format!("{confirm}?user=bob"),
        Some(json!({"accept": true})),
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found"))
    );
    let (s, e) = call(
        &app,
        Method::POST,
        &format!("{confirm}?user=ana"),
        Some(json!({"accept": "yes"})),
    )
    .await;
    assert_eq!((s.as_u16(), e["error"]["code"].clone()), (422, json!("invalid_json")));

    let (s, done) = call(
        &app,
        Method::POST,
        &format!("{confirm}?user=ana"),
        Some(json!({"accept": true})),
    )
    .await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(done["outcome"], "accepted");
    assert_eq!(done["plan"]["id"], "p1");
    assert_eq!(done["plan"]["steps"].as_array().unwrap().len(), 7);
    let (s, again) = call(
        &app,
        Method::POST,
        &format!("{confirm}?user=ana"),
        Some(json!({"accept": true})),
    )
    .await;
    assert_eq!(
        (s, again["outcome"].clone()),
        (StatusCode::CONFLICT, json!("already_decided"))
    );

    let (s, plans) = call(&app, Method::GET, "/api/plans?user=ana", None).await;
    assert_eq!(s, 200);
    assert_eq!(plans["plans"].as_array().unwrap().len(), 1);
    let (s, plan) = call(&app, Method::GET, "/api/plans/p1?user=ana", None).await;
    assert_eq!((s, plan["title"].clone()), (StatusCode::OK, json!("Onboard Ana Souza")));
    let (s, history) = call(&app, Method::GET, "/api/plans/p1/history?user=ana", None).await;
    assert_eq!(s, 200);
    assert_eq!(history["history"][0]["actor"], "user");
    expect_errors(
        &app,
        &[
            ("/api/plans/p1?user=bob", 404, "not_found"),
            ("/api/plans/p1/history?user=bob", 404, "not_found"),
            ("/api/plans/p99?user=ana", 404, "not_found"),
            ("/api/plans/banana?user=ana", 400, "invalid_field"),
            ("/api/plans", 400, "bad_user"),
        ],
    )
    .await;
    let (s, bob_plans) = call(&app, Method::GET, "/api/plans?user=bob", None).await;
    assert_eq!((s, bob_plans), (StatusCode::OK, json!({"plans": []})));
}

#[tokio::test]
async fn bodies_that_are_malformed_or_too_large_are_refused_with_a_code() {
    let app = app().await;
    let client = reqwest::Client::new();
    let big = format!("{{\"endpoint\": \"{}\"}}", "x".repeat(300 * 1024));
    let r = client
        .delete(app.url("/api/push/subscribe?user=ana"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "too_large", "{e}");
    // Every error has the same body, also the ones the router produces.
    let r = client
        .put(app.url("/api/preferences?user=ana"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "invalid_json");
    let r = client.get(app.url("/api/no-such-thing?user=ana")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "not_found");
    let r = client.delete(app.url("/api/plans?user=ana")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "method_not_allowed");
    for (method, path, body) in [
        (Method::PUT, "/api/preferences?user=ana", "{"),
        (Method::POST, "/api/push/subscribe?user=ana", "[]"),
        (Method::POST, "/api/proposals/r1/confirm?user=ana", "nope"),
    ] {
        let r = client
            .request(method.clone(), app.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let e: Value = r.json().await.unwrap();
        assert!(status == 400 || status == 422, "{method} {path}: {status}");
        assert_eq!(e["error"]["code"], "invalid_json", "{method} {path}");
    }
}

#[tokio::test]
async fn with_an_auth_secret_rest_needs_a_valid_token_and_ignores_user_parameters() {
    let secret = "a-secret-that-is-at-least-32-characters-long";
    let app = TestApp::with(engine())
        .config(|c| c.auth_secret = Some(secret.into()))
        .spawn()
        .await;
    let token = steward::http::auth::issue_token(secret, &steward::user::UserId::parse("ana").unwrap(), 60).unwrap();
    let client = reqwest::Client::new();
    let r = client.get(app.url("/api/plans?user=ana")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .get(app.url("/api/plans?token=forged.token.here"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .get(app.url("/api/preferences"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A token not valid yet, one expired 10 s ago (beyond the 5 s leeway),
    // and two different tokens in one request are all refused.
    let now = chrono::Utc::now().timestamp();
    let signed = |claims: serde_json::Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let early = signed(json!({"sub": "ana", "exp": now + 600, "nbf": now + 300}));
    let expired = signed(json!({"sub": "ana", "exp": now - 10}));
    for bad in [&early, &expired] {
        let r = client
            .get(app.url("/api/preferences"))
            .bearer_auth(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{bad}");
    }
    let other = steward::http::auth::issue_token(secret, &steward::user::UserId::parse("bob").unwrap(), 60).unwrap();
    let r = client
        .get(app.url(&format!("/api/preferences?token={other}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("differ"), "{body}");
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_routes_the_router_serves() {
    let app = app().await;
    let (s, doc) = call(&app, Method::GET, "/api/openapi.json", None).await;
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let expected: BTreeSet<(String, String)> = [
        ("GET", "/api/plans"),
        ("GET", "/api/plans/{id}"),
        ("GET", "/api/plans/{id}/history"),
        ("GET", "/api/proposals"),
        ("POST", "/api/proposals/{id}/confirm"),
        ("GET", "/api/conversation"),
        ("GET", "/api/preferences"),
        ("PUT", "/api/preferences"),
        ("GET", "/api/notifications"),
        ("GET", "/api/push/key"),
        ("POST", "/api/push/subscribe"),
        ("DELETE", "/api/push/subscribe"),
        ("GET", "/api/email/verify"),
        ("GET", "/api/email/unsubscribe"),
        ("POST", "/api/email/unsubscribe"),
        ("GET", "/api/calendar"),
        ("GET", "/api/calendar/{file}"),
    ]
    .iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    assert_eq!(documented, expected);
    // Every documented route is served, and on those paths every other
    // method is refused (405): the router serves nothing undocumented.
    let methods = [Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::PATCH];
    for path in documented.iter().map(|(_, p)| p.clone()).collect::<BTreeSet<_>>() {
        let concrete = path.replace("{id}", "p1").replace("{file}", "x.ics");
        for m in &methods {
            let r = reqwest::Client::new()
                .request(m.clone(), app.url(&format!("{concrete}?user=ana")))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let is_documented = documented.contains(&(m.to_string(), path.clone()));
            if is_documented {
                assert_ne!(r.status(), 405, "{m} {path} is documented but not served");
            } else {
                assert_eq!(r.status(), 405, "{m} {path} is served but not documented");
            }
        }
    }
    for schema in ["Plan", "Step", "ProposalView", "PreferencesView", "ErrorBody"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema} missing");
    }
}

#[tokio::test]
async fn the_conversation_route_gives_the_thread_as_shown_with_its_cards_and_only_to_its_user() {
    let app = app().await;
    let mut ana = app.connect("ana").await;
    ana.turn("g1", "help me onboard Ana Souza, she starts December 1").await;
    let (s, open) = call(&app, Method::GET, "/api/proposals?user=ana", None).await;
    assert_eq!(s, 200);
    let id = open["proposals"][0]["id"].as_str().unwrap().to_owned();
    ana.send(json!({"type": "confirm", "proposal_id": id, "accept": true}))
        .await;
    ana.until("plan").await;
    // `show_plan` sends the card to the user's sockets, marked as shown.
    let frames = ana.turn("s1", "show my onboarding plan").await;
    let shown: Vec<&Value> = frames.iter().filter(|f| f["type"] == "plan").collect();
    assert_eq!(shown.len(), 1, "{frames:?}");
    assert_eq!(shown[0]["shown"], true);
    assert_eq!(shown[0]["plan"]["id"], "p1");

    let (s, body) = call(&app, Method::GET, "/api/conversation?user=ana", None).await;
    assert_eq!(s, 200, "{body}");
    let kinds: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    // Cards follow the answer of the turn that produced them.
    assert_eq!(kinds, ["user", "assistant", "proposal", "user", "assistant", "plan"]);
    assert_eq!(
        body["items"][0]["text"],
        "help me onboard Ana Souza, she starts December 1"
    );
    assert_eq!(body["items"][2]["proposal_id"], json!(id));
    assert_eq!(body["proposals"][0]["status"], "accepted", "the proposal as it is now");
    assert_eq!(body["proposals"][0]["plan_id"], "p1");
    assert_eq!(body["plans"].as_array().unwrap().len(), 1);
    assert_eq!(body["plans"][0]["title"], "Onboard Ana Souza");

    let (s, two) = call(&app, Method::GET, "/api/conversation?user=ana&limit=2", None).await;
    assert_eq!(s, 200);
    assert_eq!(two["items"].as_array().unwrap().len(), 2, "{two}");
    let (s, bob) = call(&app, Method::GET, "/api/conversation?user=bob", None).await;
    assert_eq!(
        (s, bob),
        (
            StatusCode::OK,
            json!({"items": [], "plans": [], "proposals": [], "busy": false})
        )
    );
    expect_errors(
        &app,
        &[
            ("/api/conversation?user=ana&limit=0", 400, "invalid_field"),
            ("/api/conversation?user=ana&limit=5000", 400, "invalid_field"),
            ("/api/conversation", 400, "bad_user"),
        ],
    )
    .await;
    let (s, _) = call(&app, Method::GET, "/api/conversation?user=ana&limit=x", None).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn cross_origin_rest_is_allowed_only_for_origins_the_socket_accepts() {
    let app = TestApp::with(engine())
        .config(|c| {
            c.allowed_origins = vec!["https://intranet.example.com".into()];
            c.background = false;
        })
        .spawn()
        .await;
    let preflight = |origin: &'static str| {
        reqwest::Client::new()
            .request(Method::OPTIONS, app.url("/api/plans?user=ana"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let ok = preflight("https://intranet.example.com").await.unwrap();
    assert_eq!(
        ok.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap()),
        Some("https://intranet.example.com")
    );
    let allowed_headers = ok.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(allowed_headers.contains("authorization"), "{allowed_headers}");
    let foreign = preflight("https://evil.example.net").await.unwrap();
    assert!(foreign.headers().get("access-control-allow-origin").is_none());
    // And the request itself is refused for a foreign origin, CORS or not.
    let r = reqwest::Client::new()
        .get(app.url("/api/plans?user=ana"))
        .header("origin", "https://evil.example.net")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn a_message_resent_with_the_same_id_after_a_reconnect_runs_once() {
    let app = app().await;
    let mut ana = app.connect("ana").await;
    let frames = ana.turn("w1", "list my plans").await;
    assert_eq!(frames.last().unwrap()["type"], "reply");
    drop(ana);
    // The client never saw the reply, so it sends the message again.
    let mut again = app.connect("ana").await;
    let frames = again.turn("w1", "list my plans").await;
    let last = frames.last().unwrap();
    assert_eq!(
        (&last["type"], &last["code"], &last["reply_to"]),
        (&json!("error"), &json!("duplicate_message"), &json!("w1"))
    );
    let (_, body) = call(&app, Method::GET, "/api/conversation?user=ana", None).await;
    let users: Vec<&Value> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "user")
        .collect();
    assert_eq!(users.len(), 1, "{body}");
    assert_eq!(users[0]["id"], "w1", "the thread says which message id arrived");
    // A new id is a new message; so is an old id with other words (a client
    // that numbers per connection).
    let frames = again.turn("w2", "list my plans").await;
    assert_eq!(frames.last().unwrap()["type"], "reply");
    let frames = again.turn("w1", "show my plans").await;
    assert_eq!(frames.last().unwrap()["type"], "reply");
    // Refused from what this connection's turns remember, too (no restart
    // in between: the transcript is not read again).
    let frames = again.turn("w2", "list my plans").await;
    assert_eq!(frames.last().unwrap()["code"], "duplicate_message");
}

#[tokio::test]
async fn the_widget_files_are_served_gzipped_to_browsers_that_accept_it() {
    let app = app().await;
    for path in ["/widget.js", "/widget.css", "/"] {
        let r = reqwest::Client::new()
            .get(app.url(path))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-encoding"], "gzip", "{path}");
        let plain = reqwest::Client::new().get(app.url(path)).send().await.unwrap();
        assert!(plain.headers().get("content-encoding").is_none(), "{path}");
    }
}

/// Whether `/api/conversation` says `busy == want` within a second.
async fn becomes_busy(app: &TestApp, want: bool) -> bool {
    for _ in 0..50 {
        let (_, body) = call(app, Method::GET, "/api/conversation?user=ana", None).await;
        if body["busy"] == want {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn the_conversation_says_busy_while_a_turn_runs() {
    use steward::llm::scripted::{Script, ScriptedModel};
    let model = Arc::new(ScriptedModel::new(vec![Script::After(
        std::time::Duration::from_millis(1500),
        Box::new(Script::text("done thinking")),
    )]));
    let app = TestApp::with(model).config(|c| c.background = false).spawn().await;
    let mut ana = app.connect("ana").await;
    let (_, idle) = call(&app, Method::GET, "/api/conversation?user=ana", None).await;
    assert_eq!(idle["busy"], false);
    ana.say("m1", "think about it").await;
    assert!(becomes_busy(&app, true).await, "busy while the model is answering");
    ana.until("reply").await;
    // The reply is sent just before the turn lets go of the user's lock.
    assert!(becomes_busy(&app, false).await, "not busy once the turn is over");
}

#[tokio::test]
async fn pages_carry_a_strict_policy_and_the_widget_script_stays_embeddable() {
    let app = app().await;
    let page = reqwest::get(app.url("/")).await.unwrap();
    assert_eq!(page.status(), 200);
    let h = page.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let script = reqwest::get(app.url("/widget.js")).await.unwrap();
    assert_eq!(script.status(), 200);
    let h = script.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h.get("content-security-policy").is_none() && h.get("x-frame-options").is_none());
}

#[tokio::test]
async fn readiness_reports_the_store_and_the_background_workers() {
    let app = app().await;
    let r = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"store": "ok", "scheduler": "off", "notifier": "off", "engine": "off"}),
        "this app runs no background workers"
    );
    let engine = Arc::new(OfflineEngine::new(Arc::new(Templates::built_in().unwrap())));
    let running = TestApp::with(engine).config(|c| c.background = true).spawn().await;
    let body: Value = reqwest::get(running.url("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body,
        json!({"store": "ok", "scheduler": "running", "notifier": "running", "engine": "running"})
    );
}

/// Bodies shaped like the API's, with any values (the known field names
/// with values of every type, nested), and raw text.
fn fuzz_body() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".{0,30}".prop_map(Value::from),
        prop::sample::select(vec![
            "Europe/Berlin",
            "Mars/Olympus",
            "a@example.com",
            "not an email",
            "22:00",
            "25:61",
            "daily",
            "weekly",
            "monday",
            "https://push.example.com/x",
            "http://localhost:9/x",
            "",
        ])
        .prop_map(Value::from),
    ];
    let value = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::btree_map(".{0,8}", inner, 0..3).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let keys = prop::sample::select(vec![
        "time_zone",
        "email",
        "quiet_hours",
        "start",
        "end",
        "digest",
        "frequency",
        "weekday",
        "time",
        "channels",
        "push",
        "accept",
        "endpoint",
        "keys",
        "p256dh",
        "auth",
        "other",
    ]);
    let object = prop::collection::btree_map(keys, value, 0..6)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()).to_string());
    prop_oneof![4 => object, 1 => ".{0,80}"]
}

#[tokio::test]
async fn arbitrary_bodies_on_every_route_that_takes_one_get_a_4xx_or_a_2xx_never_a_5xx() {
    use proptest::strategy::{Strategy, ValueTree};
    let app = app().await;
    let cases: usize = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = fuzz_body();
    let routes = [
        (Method::PUT, "/api/preferences?user=ana"),
        (Method::POST, "/api/push/subscribe?user=ana"),
        (Method::DELETE, "/api/push/subscribe?user=ana"),
        (Method::POST, "/api/proposals/r1/confirm?user=ana"),
    ];
    let client = reqwest::Client::new();
    for n in 0..cases {
        let body = strategy.new_tree(&mut runner).unwrap().current();
        let (method, path) = &routes[n % routes.len()];
        let response = client
            .request(method.clone(), app.url(path))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.as_u16() < 500, "{method} {path} with {body}: {status} {text}");
        if !status.is_success() {
            let error: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not the error body: {text}"));
            assert!(
                error["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{text}"
            );
        }
    }
    // And the user's data is still readable.
    let (status, _) = call(&app, Method::GET, "/api/preferences?user=ana", None).await;
    assert_eq!(status, StatusCode::OK);
}
