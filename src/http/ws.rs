//! The `/ws` endpoint. Each socket gets three parts: a reader (parses frames,
//! answers pings, queues messages), a writer (the only task touching the
//! sink; bounded queue), and a turn runner (runs the socket's queued
//! messages one at a time under the user's turn lock).

use super::auth::{self, AuthQuery};
use super::error::ApiError;
use super::listen::Slot;
use crate::app::App;
use crate::hub::{Connection, Outbound, Outlet};
use crate::notifier::mark_seen_when_written;
use crate::protocol::{ClientFrame, ErrorCode, ServerFrame, parse_client_frame};
use crate::turn::{self, Work};
use crate::user::UserId;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Longest wait for one frame to be written before the socket counts as stuck.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Notifications that waited while no socket was open, sent with `ready`.
const READY_NOTIFICATIONS: usize = 100;
/// A user's turn lease among instances, renewed while the turn runs.
const TURN_LEASE: Duration = Duration::from_secs(10);
/// The close code of a socket whose token expired (4000–4999 are the
/// application's).
const TOKEN_EXPIRED: u16 = 4001;
/// The websocket read buffer a socket starts with.
const READ_BUFFER: usize = 4 * 1024;
/// When a client refused for too many connections may try again.
const CONNECTIONS_RETRY: Duration = Duration::from_secs(30);

pub(crate) async fn upgrade(
    State(app): State<App>,
    Query(query): Query<AuthQuery>,
    headers: HeaderMap,
    slot: Option<Extension<Slot>>,
    ws: WebSocketUpgrade,
) -> Response {
    if let Err(e) = auth::check_origin(&app.config, &headers) {
        return e.into_response();
    }
    let (user, ends) = match auth::session(&app.config, &headers, &query) {
        Ok(session) => (session.user, session.ends),
        Err(e) => return e.into_response(),
    };
    let conn = match app.hub.register(&user) {
        Ok(conn) => conn,
        Err(e) => {
            return ApiError::too_many("too_many_connections", e.to_string(), CONNECTIONS_RETRY).into_response();
        }
    };
    if let Err(e) = app.store.ensure_user(&user).await {
        return ApiError::from(e).into_response();
    }
    let limit = app.config.limits.max_frame_bytes;
    let owner = app.clone();
    // tungstenite zeroes its whole read buffer (128 KiB by default) on
    // the first read: most of an idle socket's memory. Frames are small;
    // a big one grows the buffer as it arrives.
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| {
            owner.track(async move {
                serve_socket(app, conn, socket, ends).await;
                // The connection's slot is given back when the socket ends.
                drop(slot);
            })
        })
}

/// Serves one socket until it closes, or until `ends`, when its token
/// expires: then it closes with 4001 and the client reconnects with a fresh
/// token.
async fn serve_socket(app: App, mut conn: Connection, socket: WebSocket, ends: Option<std::time::SystemTime>) {
    let span = tracing::info_span!("connection", user_id = %conn.user, conn = conn.id);
    async move {
        let Some(rx) = conn.rx.take() else { return };
        let out = conn.outlet();
        let (sink, stream) = socket.split();
        // `ready` is written first, ahead of anything queued since the
        // socket registered: it is the state those events follow.
        let mut first = Vec::new();
        let unseen = app.store.unseen_notifications(&conn.user, READY_NOTIFICATIONS).await;
        match (app.service.active_plans(&conn.user).await, unseen) {
            (Ok(plans), Ok(unseen)) => {
                let (ready, delivery) = Outbound::tracked(&ServerFrame::Ready {
                    user: conn.user.to_string(),
                    plans,
                    notifications: unseen.iter().map(|n| n.view()).collect(),
                });
                first.push(ready);
                // Store-and-forward: what waited is shown once `ready` is on
                // the socket, not when it is queued: a socket that dies first
                // leaves it for the next `ready`. A crash between writing and
                // marking shows it again (ids let clients drop repeats)
                // rather than never.
                let ids: Vec<String> = unseen.into_iter().map(|n| n.id).collect();
                if !ids.is_empty() {
                    let written = Box::pin(delivery.written());
                    mark_seen_when_written(app.tasks(), &app.store, &conn.user, ids, written);
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "could not load plans for ready");
                let error = ServerFrame::error(ErrorCode::Internal, "could not load your plans; try again later", None);
                first.push(Outbound::frame(error.to_json().into()));
                first.push(Outbound::Close {
                    code: 1011,
                    reason: "storage unavailable",
                });
            }
        }
        let writer = app.spawn(write_loop(sink, first, rx, conn.closed.clone()).in_current_span());
        let (turn_tx, turn_rx) = mpsc::channel(app.config.limits.turn_queue);
        // Queued messages still run after a disconnect: they were accepted,
        // and their results are in the store when the user comes back.
        app.spawn(turn_loop(app.clone(), conn.user.clone(), out.clone(), turn_rx).in_current_span());
        tracing::info!("socket open");
        app.metrics.ws_connections.inc();
        let expiry = async {
            match ends.map(|at| at.duration_since(std::time::SystemTime::now())) {
                Some(Ok(left)) => tokio::time::sleep(left).await,
                Some(Err(_)) => {}
                None => std::future::pending().await,
            }
        };
        let close = tokio::select! {
            close = read_loop(&app, &conn, &out, stream, &turn_tx) => close,
            _ = expiry => {
                tracing::info!("token expired; closing the socket");
                Outbound::Close { code: TOKEN_EXPIRED, reason: "token expired" }
            }
        };
        app.metrics.ws_connections.dec();
        out.send_raw(close);
        if tokio::time::timeout(Duration::from_secs(2), writer).await.is_err() {
            conn.closed.cancel();
        }
        tracing::info!("socket closed");
    }
    .instrument(span)
    .await
}

/// Reads frames until the socket ends; returns the close frame to send.
async fn read_loop(
    app: &App,
    conn: &Connection,
    out: &Outlet,
    mut stream: SplitStream<WebSocket>,
    turns: &mpsc::Sender<Work>,
) -> Outbound {
    let bye = Outbound::Close {
        code: 1000,
        reason: "bye",
    };
    let idle = Duration::from_secs(app.config.limits.idle_timeout_secs);
    let stopping = app.stopping();
    loop {
        let next = tokio::select! {
            _ = conn.closed.cancelled() => return bye,
            _ = stopping.cancelled() => {
                return Outbound::Close {
                    code: 1001,
                    reason: "server shutting down",
                };
            }
            next = tokio::time::timeout(idle, stream.next()) => next,
        };
        let message = match next {
            Err(_) => {
                return Outbound::Close {
                    code: 1000,
                    reason: "idle timeout",
                };
            }
            Ok(None) => return bye,
            Ok(Some(Err(e))) => {
                return match close_code_for(e) {
                    Some((code, reason)) => {
                        tracing::info!(code, reason, "closing socket after bad input");
                        Outbound::Close { code, reason }
                    }
                    None => bye,
                };
            }
            Ok(Some(Ok(message))) => message,
        };
        match message {
            Message::Text(text) => handle_text(app, &conn.user, out, text.as_str(), turns).await,
            Message::Binary(_) => out.send(&ServerFrame::error(
                ErrorCode::BinaryNotSupported,
                "binary frames are not supported; send JSON text frames",
                None,
            )),
            Message::Ping(_) | Message::Pong(_) => {}
            Message::Close(_) => return bye,
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

async fn handle_text(app: &App, user: &UserId, out: &Outlet, text: &str, turns: &mpsc::Sender<Work>) {
    match parse_client_frame(text, app.config.limits.max_message_chars) {
        Err(e) => out.send(&e.into_frame()),
        Ok(ClientFrame::Ping) => out.send(&ServerFrame::Pong),
        Ok(ClientFrame::Confirm { proposal_id, accept }) => {
            // Confirmations queue behind running turns, so they see the plan
            // those turns leave.
            if turns.try_send(Work::Confirm { proposal_id, accept }).is_ok() {
                app.metrics.turns_queued.inc();
            } else {
                out.send(&ServerFrame::error(
                    ErrorCode::Busy,
                    "still working on your earlier messages; try again shortly",
                    None,
                ));
            }
        }
        Ok(ClientFrame::Message { id, text }) => {
            // One budget per user, across reconnects and instances.
            let per_minute = app.config.limits.messages_per_minute;
            match app
                .store
                .take_token(&format!("messages:{user}"), per_minute, app.now())
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(wait)) => {
                    out.send(&ServerFrame::error(
                        ErrorCode::RateLimited,
                        format!("too many messages; try again in {} s", wait.as_secs().max(1)),
                        Some(id),
                    ));
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not read the message budget");
                    out.send(&ServerFrame::error(
                        ErrorCode::Internal,
                        "could not take your message just now; send it again shortly",
                        Some(id),
                    ));
                    return;
                }
            }
            match turns.try_send(Work::Message { id, text }) {
                Ok(()) => {
                    app.metrics.turns_queued.inc();
                }
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

/// Runs the socket's queued work one at a time under the user's turn
/// lock. A stopping server drops the turn in progress: everything it did
/// is stored, and a cut-off tool call is answered when the transcript is
/// next read (`conversation::repair`).
async fn turn_loop(app: App, user: UserId, out: Outlet, mut queue: mpsc::Receiver<Work>) {
    let stopping = app.stopping();
    while let Some(work) = stopping.run_until_cancelled(queue.recv()).await.flatten() {
        app.metrics.turns_queued.dec();
        let lock = app.hub.turn_lock(&user);
        let performed = stopping.run_until_cancelled(async {
            let mut turn = lock.lock().await;
            // Then across instances: a user's sockets may be on several.
            let held = app.claims.hold_waiting(&format!("turn:{user}"), TURN_LEASE).await;
            if let Err(e) = &held {
                tracing::warn!(error = %e, "could not claim the turn among instances; running it here anyway");
            }
            turn::perform(&app.turns, &user, &out, work, &mut turn).await;
            if let Ok(held) = held {
                held.release().await;
            }
        });
        if performed.await.is_none() {
            break;
        }
    }
    // What a stopping server leaves queued is no longer waiting here.
    app.metrics.turns_queued.dec_by(i64::try_from(queue.len()).unwrap_or(0));
}

/// Writes `first`, then what is queued, until the socket closes.
async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    first: Vec<Outbound>,
    mut rx: mpsc::Receiver<Outbound>,
    closed: CancellationToken,
) {
    let mut first = first.into_iter();
    loop {
        let item = match first.next() {
            Some(item) => item,
            None => tokio::select! {
                biased;
                _ = closed.cancelled() => Outbound::Close { code: 1008, reason: "too slow: reconnect to resync" },
                item = rx.recv() => match item {
                    Some(item) => item,
                    None => return,
                },
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
