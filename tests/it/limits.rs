//! Limits that hold against a misbehaving client: connections that say
//! nothing, connections kept open, and the slot a websocket keeps.

use crate::harness::{TestApp, WAIT};
use std::sync::Arc;
use std::time::{Duration, Instant};
use steward::offline::OfflineEngine;
use steward::planner::templates::Templates;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ADMIN: &str = "operator-token-operator-token";

fn engine() -> Arc<OfflineEngine> {
    Arc::new(OfflineEngine::new(Arc::new(Templates::built_in().unwrap())))
}

/// Reads until the server closes the connection; what it sent.
async fn until_closed(tcp: &mut TcpStream, within: Duration) -> Result<Vec<u8>, &'static str> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => return Err("still open"),
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

async fn open_connections(app: &TestApp) -> f64 {
    app.metrics(ADMIN).await["steward_http_connections"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_idle_connections_are_closed_and_a_request_still_gets_in() {
    let app = TestApp::with(engine())
        .config(|c| {
            c.limits.max_connections = 400;
            c.limits.read_timeout_secs = 1;
            c.admin_token = Some(ADMIN.into());
        })
        .spawn()
        .await;
    // 1 100 connections that never send a byte: more than the cap, the
    // rest wait in the listen queue.
    let mut silent = Vec::new();
    for _ in 0..1100 {
        silent.push(TcpStream::connect(app.addr).await.unwrap());
    }
    // A request behind them gets in once the silent ones time out.
    let started = Instant::now();
    let health = tokio::time::timeout(Duration::from_secs(30), reqwest::get(app.url("/healthz")))
        .await
        .expect("a request behind silent connections got no answer")
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    // The server closed every silent connection, each after the read timeout.
    for (n, tcp) in silent.iter_mut().enumerate() {
        let sent = until_closed(tcp, Duration::from_secs(20)).await;
        assert!(sent.is_ok(), "silent connection {n} is still open");
    }
    // One that asked once and then kept the connection idle is closed too;
    // one sending its head a byte at a time is cut at the timeout.
    let mut idle = TcpStream::connect(app.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let answered = until_closed(&mut idle, Duration::from_secs(5)).await.unwrap();
    assert!(
        answered.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answered)
    );
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    let began = Instant::now();
    let mut cut = false;
    for byte in b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaa\r\n\r\n" {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if slow.write_all(&[*byte]).await.is_err() {
            cut = true;
            break;
        }
    }
    let rest = until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(
        cut || rest.is_ok_and(|r| !r.starts_with(b"HTTP/1.1 200")),
        "a slow head was answered"
    );
    assert!(began.elapsed() < Duration::from_secs(5));
    assert_eq!(open_connections(&app).await, 1.0, "only the metrics request is open");
    app.shutdown().await;
}

#[tokio::test]
async fn a_websocket_keeps_its_connection_slot_until_it_closes() {
    let app = TestApp::with(engine())
        .config(|c| {
            c.limits.max_connections = 2;
            c.admin_token = Some(ADMIN.into());
        })
        .spawn()
        .await;
    let first = app.connect("ana").await;
    let _second = app.connect("ben").await;
    // Both slots are taken: a third connection waits to be accepted.
    let url = app.url("/healthz");
    let waiting = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status()) });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "a third connection was served beside two open sockets"
    );
    drop(first);
    let status = tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap().unwrap();
    assert_eq!(status, 200);
    assert_eq!(open_connections(&app).await, 2.0, "ben's socket and this request");
    app.shutdown().await;
}

/// GET `path` with `X-Forwarded-For` headers; the status and error code.
async fn get_from(app: &TestApp, path: &str, forwarded: Option<&str>) -> (u16, String, Option<String>) {
    let mut request = reqwest::Client::new().get(app.url(path));
    if let Some(f) = forwarded {
        request = request.header("x-forwarded-for", f);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    (status, body["error"]["code"].as_str().unwrap_or("").to_owned(), retry)
}

#[tokio::test]
async fn an_address_past_its_rate_is_refused_and_a_forwarded_address_counts_only_from_a_trusted_proxy() {
    let app = TestApp::with(engine())
        .config(|c| {
            c.limits.requests_per_minute_per_ip = 4;
            c.background = false;
        })
        .spawn()
        .await;
    // Writing another address in X-Forwarded-For does not help a client
    // that is not a trusted proxy.
    for n in 0..4 {
        let forged = format!("198.51.100.{n}");
        assert_eq!(get_from(&app, "/api/plans?user=ana", Some(&forged)).await.0, 200);
    }
    let (status, code, retry) = get_from(&app, "/api/plans?user=bob", Some("198.51.100.200")).await;
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
    assert!(retry.is_some_and(|r| r.parse::<u64>().unwrap() >= 1));
    // Opening a socket counts too; the probes and the widget's files do not.
    let refused = tokio_tungstenite::connect_async(app.ws_url("ana")).await.unwrap_err();
    assert!(refused.to_string().contains("429"), "{refused}");
    assert_eq!(get_from(&app, "/healthz", None).await.0, 200);
    assert_eq!(get_from(&app, "/widget.js", None).await.0, 200);
    app.shutdown().await;

    let app = TestApp::with(engine())
        .config(|c| {
            c.limits.requests_per_minute_per_ip = 2;
            c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
            c.background = false;
        })
        .spawn()
        .await;
    // Behind the trusted proxy each client has its own budget.
    for _ in 0..2 {
        assert_eq!(get_from(&app, "/api/plans?user=ana", Some("198.51.100.1")).await.0, 200);
    }
    assert_eq!(get_from(&app, "/api/plans?user=ana", Some("198.51.100.1")).await.0, 429);
    assert_eq!(get_from(&app, "/api/plans?user=ana", Some("198.51.100.2")).await.0, 200);
    // What the client wrote before the proxy's own entry is not believed.
    assert_eq!(
        get_from(&app, "/api/plans?user=ana", Some("203.0.113.5, 198.51.100.1"))
            .await
            .0,
        429
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_user_past_the_rest_rate_is_refused_whatever_address_they_come_from() {
    let app = TestApp::with(engine())
        .config(|c| {
            c.limits.requests_per_minute = 3;
            c.background = false;
        })
        .spawn()
        .await;
    for _ in 0..3 {
        assert_eq!(get_from(&app, "/api/plans?user=ana", None).await.0, 200);
    }
    let (status, code, _) = get_from(&app, "/api/proposals?user=ana", None).await;
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
    assert_eq!(get_from(&app, "/api/plans?user=ben", None).await.0, 200);
    app.shutdown().await;
}

#[tokio::test]
async fn an_open_socket_closes_with_4001_when_its_token_expires_and_a_fresh_token_gets_back_in() {
    let secret = "a-secret-of-at-least-thirty-two-bytes!";
    let app = TestApp::with(engine())
        .config(|c| {
            c.auth_secret = Some(secret.into());
            c.auth_leeway_secs = 0;
        })
        .spawn()
        .await;
    let ana = steward::user::UserId::parse("ana").unwrap();
    let token = steward::http::auth::issue_token(secret, &ana, 2).unwrap();
    let url = format!("ws://{}/ws?token={token}", app.addr);
    let (ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let mut client = crate::harness::Client {
        ws,
        user: "ana".into(),
        ready: None,
    };
    assert_eq!(client.recv().await["type"], "ready");
    let opened = Instant::now();
    // Still served before the expiry.
    let frames = client.turn("m1", "hello").await;
    assert!(frames.iter().any(|f| f["type"] == "reply"), "{frames:?}");
    assert_eq!(client.close_code().await, Some(4001));
    let lived = opened.elapsed();
    assert!(lived < Duration::from_secs(5), "closed after {lived:?}");
    // The old token is refused now; a fresh one is served.
    assert!(tokio_tungstenite::connect_async(&url).await.is_err());
    let fresh = steward::http::auth::issue_token(secret, &ana, 60).unwrap();
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws?token={fresh}", app.addr))
        .await
        .unwrap();
    let mut client = crate::harness::Client {
        ws,
        user: "ana".into(),
        ready: None,
    };
    assert_eq!(client.recv().await["type"], "ready");
    app.shutdown().await;
}
