//! REST for coming back to the user: recent notifications, and the web-push
//! key and subscriptions of their browsers.

use super::error::{ApiError, ErrorBody};
use super::extract::{AuthUser, Body};
use crate::app::App;
use crate::channels::push;
use crate::notification::{NotificationView, PushSubscription};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// Browsers (push subscriptions) a user may have at once.
const MAX_SUBSCRIPTIONS: usize = 10;
/// Notifications `GET /api/notifications` returns.
const RECENT: usize = 50;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct NotificationsBody {
    pub(crate) notifications: Vec<NotificationView>,
}

/// The user's 50 most recent notifications, newest first.
#[utoipa::path(get, path = "/api/notifications", tag = "notifications",
    responses((status = 200, body = NotificationsBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn notifications(
    State(app): State<App>,
    AuthUser(user): AuthUser,
) -> Result<Json<NotificationsBody>, ApiError> {
    let list = app.store.recent_notifications(&user, RECENT).await?;
    Ok(Json(NotificationsBody {
        notifications: list.iter().map(|n| n.view()).collect(),
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PushKeyBody {
    /// The VAPID public key for `PushManager.subscribe({applicationServerKey})`.
    pub(crate) public_key: String,
}

#[utoipa::path(get, path = "/api/push/key", tag = "notifications",
    responses((status = 200, body = PushKeyBody), (status = 404, description = "push is off", body = ErrorBody)))]
pub(crate) async fn push_key(State(app): State<App>) -> Result<Json<PushKeyBody>, ApiError> {
    match &app.pusher {
        Some(p) => Ok(Json(PushKeyBody {
            public_key: p.public_key(),
        })),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "push_disabled",
            "web push is turned off on this server",
        )),
    }
}

/// The body `PushSubscription.toJSON()` produces in a browser.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct SubscriptionBody {
    endpoint: String,
    keys: SubscriptionKeys,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct SubscriptionKeys {
    p256dh: String,
    auth: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SubscribedBody {
    pub(crate) subscribed: bool,
}

/// Stores a browser's push subscription (at most 10 per user).
#[utoipa::path(post, path = "/api/push/subscribe", tag = "notifications", request_body = SubscriptionBody,
    responses((status = 201, description = "subscribed", body = SubscribedBody), (status = 400, body = ErrorBody)))]
pub(crate) async fn subscribe(
    State(app): State<App>,
    AuthUser(user): AuthUser,
    Body(body): Body<SubscriptionBody>,
) -> Result<(StatusCode, Json<SubscribedBody>), ApiError> {
    let sub = PushSubscription {
        endpoint: body.endpoint,
        p256dh: body.keys.p256dh,
        auth: body.keys.auth,
    };
    push::validate(&sub, app.config.dev_mode()).map_err(|e| ApiError::bad("invalid_field", e.to_string()))?;
    if app.store.push_subscriptions(&user).await?.len() >= MAX_SUBSCRIPTIONS {
        return Err(ApiError::bad(
            "too_many_subscriptions",
            format!("at most {MAX_SUBSCRIPTIONS} browsers per user; unsubscribe one first"),
        ));
    }
    app.store.add_push_subscription(&user, &sub).await?;
    Ok((StatusCode::CREATED, Json(SubscribedBody { subscribed: true })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct EndpointBody {
    endpoint: String,
}

/// Forgets a browser's push subscription.
#[utoipa::path(delete, path = "/api/push/subscribe", tag = "notifications", request_body = EndpointBody,
    responses((status = 204, description = "removed"), (status = 400, body = ErrorBody)))]
pub(crate) async fn unsubscribe_push(
    State(app): State<App>,
    AuthUser(user): AuthUser,
    Body(body): Body<EndpointBody>,
) -> Result<StatusCode, ApiError> {
    app.store.remove_push_subscription(&user, &body.endpoint).await?;
    Ok(StatusCode::NO_CONTENT)
}
