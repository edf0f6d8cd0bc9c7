//! Bad input on `/ws`: every malformed frame gets a precise error and the
//! socket stays usable; oversized frames close it with 1009; bad handshakes
//! are refused before the upgrade.

use crate::harness::{TestApp, spawn_app};
use futures::SinkExt;
use serde_json::json;
use std::sync::Arc;
use steward::llm::scripted::ScriptedModel;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

#[tokio::test]
async fn malformed_frames_get_precise_error_codes_and_the_socket_stays_usable() {
    let app = spawn_app(Arc::new(ScriptedModel::new(vec![]))).await;
    let mut ana = app.connect("ana").await;
    let cases: Vec<(Message, &str)> = vec![
        (Message::Text("not json".into()), "invalid_json"),
        (Message::Text("[]".into()), "invalid_json"),
        (Message::Text(r#"{"text":"hi"}"#.into()), "missing_field"),
        (Message::Text(r#"{"type":"shout","id":"z"}"#.into()), "unknown_type"),
        (Message::Text(r#"{"type":"message","id":"m"}"#.into()), "missing_field"),
        (
            Message::Text(r#"{"type":"message","id":"m","text":""}"#.into()),
            "empty_message",
        ),
        (
            Message::Text(
                json!({"type":"message","id":"m","text":"x".repeat(8001)})
                    .to_string()
                    .into(),
            ),
            "message_too_long",
        ),
        (
            Message::Text(r#"{"type":"confirm","proposal_id":"p9","accept":true}"#.into()),
            "proposal_not_found",
        ),
        (Message::Binary(vec![0, 159, 146, 150].into()), "binary_not_supported"),
    ];
    for (frame, code) in cases {
        ana.ws.send(frame.clone()).await.unwrap();
        let answer = ana.recv().await;
        assert_eq!(answer["type"], "error", "{frame:?}");
        assert_eq!(answer["code"], code, "{frame:?} -> {answer}");
        assert!(!answer["message"].as_str().unwrap().is_empty());
    }
    ana.send(json!({"type": "ping"})).await;
    assert_eq!(ana.recv().await, json!({"type": "pong"}));
}

#[tokio::test]
async fn a_frame_above_the_limit_closes_the_socket_with_1009_and_others_are_unaffected() {
    let app = spawn_app(Arc::new(ScriptedModel::new(vec![]))).await;
    let mut other = app.connect("ana").await;
    let mut ana = app.connect("ana").await;
    let huge = json!({"type": "message", "id": "big", "text": "x".repeat(70 * 1024)}).to_string();
    ana.ws.send(Message::Text(huge.into())).await.unwrap();
    assert_eq!(ana.close_code().await, Some(1009));
    other.send(json!({"type": "ping"})).await;
    assert_eq!(other.recv().await, json!({"type": "pong"}));
}

#[tokio::test]
async fn handshakes_without_a_user_or_from_a_foreign_origin_are_refused_before_upgrade() {
    let app = spawn_app(Arc::new(ScriptedModel::new(vec![]))).await;
    let status = |e: WsError| match e {
        WsError::Http(response) => response.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    };
    let no_user = tokio_tungstenite::connect_async(format!("ws://{}/ws", app.addr))
        .await
        .unwrap_err();
    assert_eq!(status(no_user), 400);
    let bad_user = tokio_tungstenite::connect_async(format!("ws://{}/ws?user=a%20b", app.addr))
        .await
        .unwrap_err();
    assert_eq!(status(bad_user), 400);
    let mut request = app.ws_url("ana").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    let foreign = tokio_tungstenite::connect_async(request).await.unwrap_err();
    assert_eq!(status(foreign), 403);
    let mut request = app.ws_url("ana").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", format!("http://{}", app.addr).parse().unwrap());
    assert!(
        tokio_tungstenite::connect_async(request).await.is_ok(),
        "same-origin pages may connect"
    );
}

#[tokio::test]
async fn a_secured_server_accepts_signed_tokens_only() {
    let secret = "0123456789abcdef0123456789abcdef";
    let app = TestApp::with(Arc::new(ScriptedModel::new(vec![])))
        .config(|c| c.auth_secret = Some(secret.into()))
        .spawn()
        .await;
    let refused = tokio_tungstenite::connect_async(app.ws_url("ana")).await.unwrap_err();
    assert!(
        matches!(refused, WsError::Http(r) if r.status() == 401),
        "dev-mode ?user= is refused once a secret is set"
    );
    let token = steward::http::auth::issue_token(secret, &steward::user::UserId::parse("ana").unwrap(), 60).unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws?token={token}", app.addr))
        .await
        .unwrap();
    use futures::StreamExt;
    let ready = ws.next().await.unwrap().unwrap();
    let ready: serde_json::Value = serde_json::from_str(ready.to_text().unwrap()).unwrap();
    assert_eq!(
        (ready["type"].as_str(), ready["user"].as_str()),
        (Some("ready"), Some("ana"))
    );
}
