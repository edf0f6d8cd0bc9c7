//! The `/ws` endpoint. Each socket gets three parts: a reader (parses frames,
//! answers pings, queues messages), a writer (the only task touching the
//! sink; bounded queue), and a turn runner (runs the socket's queued
//! messages one at a time under the user's turn lock).

use super::auth::{self, AuthQuery};
use crate::app::App;
use crate::hub::{Connection, Delivery, Outbound, Outlet};
use crate::plan::PlanStatus;
use crate::protocol::{ClientFrame, ErrorCode, ServerFrame, parse_client_frame};
use crate::turn::{self, Work};
use crate::user::UserId;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Longest wait for one frame to be written before the socket counts as stuck.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn upgrade(
    State(app): State<App>,
    Query(query): Query<AuthQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if let Err(e) = auth::check_origin(&app.config, &headers) {
        return e.into_response();
    }
    let user = match auth::authenticate(&app.config, &headers, &query) {
        Ok(user) => user,
        Err(e) => return e.into_response(),
    };
    let conn = match app.hub.register(&user) {
        Ok(conn) => conn,
        Err(e) => {
            let body = serde_json::json!({"error": {"code": "too_many_connections", "message": e.to_string()}});
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "30")], axum::Json(body)).into_response();
        }
    };
    if let Err(e) = app.store.ensure_user(&user).await {
        tracing::error!(user_id = %user, error = %e, "could not register user");
        return super::unavailable();
    }
    let limit = app.config.limits.max_frame_bytes;
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| serve_socket(app, conn, socket))
}

async fn serve_socket(app: App, mut conn: Connection, socket: WebSocket) {
    let span = tracing::info_span!("connection", user_id = %conn.user, conn = conn.id);
    async move {
        let Some(rx) = conn.rx.take() else { return };
        let out = conn.outlet();
        let (sink, stream) = socket.split();
        let unseen = app.store.unseen_notifications(&conn.user, 100).await;
        match (app.store.list_plans(&conn.user).await, unseen) {
            (Ok(plans), Ok(unseen)) => {
                let plans = plans.into_iter().filter(|p| p.status == PlanStatus::Active).collect();
                let delivery = out.send_tracked(&ServerFrame::Ready {
                    user: conn.user.to_string(),
                    plans,
                    notifications: unseen.iter().map(|n| n.view()).collect(),
                });
                // Store-and-forward: what waited is shown once `ready` is on
                // the socket, not when it is queued: a socket that dies first
                // leaves it for the next `ready`. A crash between writing and
                // marking shows it again (ids let clients drop repeats)
                // rather than never.
                let ids: Vec<String> = unseen.into_iter().map(|n| n.id).collect();
                if let Some(delivery) = delivery
                    && !ids.is_empty()
                {
                    tokio::spawn(
                        mark_seen_once_written(app.clone(), conn.user.clone(), ids, delivery).in_current_span(),
                    );
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "could not load plans for ready");
                out.send(&ServerFrame::error(
                    ErrorCode::Internal,
                    "could not load your plans; try again later",
                    None,
                ));
                out.send_raw(Outbound::Close {
                    code: 1011,
                    reason: "storage unavailable",
                });
            }
        }
        let writer = tokio::spawn(write_loop(sink, rx, conn.closed.clone()).in_current_span());
        let (turn_tx, turn_rx) = mpsc::channel(app.config.limits.turn_queue);
        // Queued messages still run after a disconnect: they were accepted,
        // and their results are in the store when the user comes back.
        tokio::spawn(turn_loop(app.clone(), conn.user.clone(), out.clone(), turn_rx).in_current_span());
        tracing::info!("socket open");
        read_loop(&app, &conn, &out, stream, &turn_tx).await;
        out.send_raw(Outbound::Close {
            code: 1000,
            reason: "bye",
        });
        if tokio::time::timeout(Duration::from_secs(2), writer).await.is_err() {
            conn.closed.cancel();
        }
        tracing::info!("socket closed");
    }
    .instrument(span)
    .await
}

/// Marks notifications seen once the frame showing them was written.
async fn mark_seen_once_written(app: App, user: UserId, ids: Vec<String>, delivery: Delivery) {
    if !delivery.written().await {
        tracing::debug!(?ids, "the socket closed before showing notifications; they stay unseen");
        return;
    }
    if let Err(e) = app.store.mark_seen(&user, &ids).await {
        tracing::warn!(error = %e, "could not mark notifications seen");
    }
}

async fn read_loop(
    app: &App,
    conn: &Connection,
    out: &Outlet,
    mut stream: SplitStream<WebSocket>,
    turns: &mpsc::Sender<Work>,
) {
    let idle = Duration::from_secs(app.config.limits.idle_timeout_secs);
    loop {
        let next = tokio::select! {
            _ = conn.closed.cancelled() => return,
            next = tokio::time::timeout(idle, stream.next()) => next,
        };
        let message = match next {
            Err(_) => {
                out.send_raw(Outbound::Close {
                    code: 1000,
                    reason: "idle timeout",
                });
                return;
            }
            Ok(None) => return,
            Ok(Some(Err(e))) => {
                if let Some((code, reason)) = close_code_for(e) {
                    tracing::info!(code, reason, "closing socket after bad input");
                    out.send_raw(Outbound::Close { code, reason });
                }
                return;
            }
            Ok(Some(Ok(message))) => message,
        };
        match message {
            Message::Text(text) => handle_text(app, &conn.user, out, text.as_str(), turns),
            Message::Binary(_) => out.send(&ServerFrame::error(
                ErrorCode::BinaryNotSupported,
                "binary frames are not supported; send JSON text frames",
                None,
            )),
            Message::Ping(_) | Message::Pong(_) => {}
            Message::Close(_) => return,
        }
    }
}

/// The close code for a receive error: too big → 1009, invalid UTF-8 → 1007,
/// other protocol violations → 1002; a broken connection gets none.
fn close_code_for(e: axum::Error) -> Option<(u16, &'static str)> {
    match e.into_inner().downcast::<tungstenite::Error>() {
        Ok(inner) => match *inner {
            tungstenite::Error::Capacity(_) => Some((1009, "message too big")),
            tungstenite::Error::Utf8(_) => Some((1007, "invalid UTF-8")),
            tungstenite::Error::Protocol(_) => Some((1002, "protocol error")),
            _ => None,
        },
        Err(_) => None,
    }
}

fn handle_text(app: &App, user: &UserId, out: &Outlet, text: &str, turns: &mpsc::Sender<Work>) {
    match parse_client_frame(text, app.config.limits.max_message_chars) {
        Err(e) => out.send(&e.into_frame()),
        Ok(ClientFrame::Ping) => out.send(&ServerFrame::Pong),
        Ok(ClientFrame::Confirm { proposal_id, accept }) => {
            // Confirmations queue behind running turns, so they see the plan
            // those turns leave.
            if turns.try_send(Work::Confirm { proposal_id, accept }).is_err() {
                out.send(&ServerFrame::error(
                    ErrorCode::Busy,
                    "still working on your earlier messages; try again shortly",
                    None,
                ));
            }
        }
        Ok(ClientFrame::Message { id, text }) => {
            if let Err(wait) = app.hub.allow_message(user) {
                out.send(&ServerFrame::error(
                    ErrorCode::RateLimited,
                    format!("too many messages; try again in {} s", wait.as_secs().max(1)),
                    Some(id),
                ));
                return;
            }
            match turns.try_send(Work::Message { id, text }) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(Work::Message { id, .. })) => out.send(&ServerFrame::error(
                    ErrorCode::Busy,
                    "still working on your earlier messages; send this again once they are answered",
                    Some(id),
                )),
                Err(mpsc::error::TrySendError::Full(Work::Confirm { .. }) | mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
    }
}

async fn turn_loop(app: App, user: UserId, out: Outlet, mut queue: mpsc::Receiver<Work>) {
    while let Some(work) = queue.recv().await {
        let lock = app.hub.turn_lock(&user);
        let mut turn = lock.lock().await;
        turn::perform(&app, &user, &out, work, &mut turn).await;
    }
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outbound>,
    closed: CancellationToken,
) {
    loop {
        let item = tokio::select! {
            biased;
            _ = closed.cancelled() => Outbound::Close { code: 1008, reason: "too slow: reconnect to resync" },
            item = rx.recv() => match item {
                Some(item) => item,
                None => return,
            },
        };
        match item {
            Outbound::Frame { text, receipt } => {
                let sent = tokio::time::timeout(WRITE_TIMEOUT, sink.send(Message::Text(text.to_string().into()))).await;
                if !matches!(sent, Ok(Ok(()))) {
                    closed.cancel();
                    return;
                }
                if let Some(receipt) = receipt {
                    receipt.written();
                }
            }
            Outbound::Close { code, reason } => {
                let frame = CloseFrame {
                    code,
                    reason: reason.into(),
                };
                let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(Message::Close(Some(frame)))).await;
                return;
            }
        }
    }
}
