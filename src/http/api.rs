//! REST under `/api` for the re-engagement side: preferences, email
//! verification and unsubscribe links, web-push subscriptions, the calendar
//! feed, recent notifications. Same authentication as `/ws`; errors are
//! `{"error":{"code","message"}}` with a safe message.

use super::auth::{self, AuthQuery};
use crate::app::App;
use crate::channels::links::{Links, TokenPurpose};
use crate::channels::{calendar, push};
use crate::notification::PushSubscription;
use crate::preferences::{self, DigestBody, QuietHoursBody, Update};
use crate::preferences::{Channels, Preferences};
use crate::scheduler;
use crate::store::StoreError;
use crate::user::UserId;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "steward",
        description = "REST API of steward. Authentication as on /ws: `Authorization: Bearer <token>` or \
                       `?token=`; in loopback dev mode `?user=<name>`. Errors are `{\"error\":{\"code\",\"message\"}}`."
    ),
    tags(
        (name = "plans", description = "The user's plans and their history"),
        (name = "proposals", description = "Changes waiting for the user's yes or no"),
        (name = "conversation", description = "The conversation as the widget shows it"),
        (name = "preferences", description = "Time zone, email, quiet hours, digest, channels"),
        (name = "notifications", description = "Notifications, web push, email links, calendar feed")
    )
)]
struct ApiDoc;

/// Every `/api` route, registered together with its OpenAPI description
/// so the router and `/api/openapi.json` cannot disagree.
pub fn routes() -> Router<App> {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(super::rest::list_plans))
        .routes(routes!(super::rest::get_plan))
        .routes(routes!(super::rest::plan_history))
        .routes(routes!(super::rest::open_proposals))
        .routes(routes!(super::rest::confirm_proposal))
        .routes(routes!(super::rest::conversation))
        .routes(routes!(get_preferences, put_preferences))
        .routes(routes!(notifications))
        .routes(routes!(push_key))
        .routes(routes!(subscribe, unsubscribe_push))
        .routes(routes!(verify_email))
        .routes(routes!(unsubscribe_page, unsubscribe))
        .routes(routes!(calendar_link))
        .routes(routes!(calendar_feed))
        .split_for_parts();
    let doc = std::sync::Arc::new(doc);
    router.route(
        "/api/openapi.json",
        axum::routing::get(move || {
            let doc = doc.clone();
            async move { Json(doc.as_ref().clone()) }
        }),
    )
}

/// The body of every REST error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_json`, `not_found`.
    pub code: String,
    /// A safe, human-readable explanation.
    pub message: String,
}

/// A REST failure: status, stable code, safe message.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Seconds, sent as `Retry-After` (429).
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 429 with `Retry-After`.
    pub fn too_many(code: &'static str, message: impl Into<String>, retry_after: std::time::Duration) -> ApiError {
        ApiError {
            retry_after: Some(retry_after.as_secs().max(1)),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message)
        }
    }

    pub fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.into(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        tracing::error!(error = %e, "storage failed in a REST handler");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "storage is unavailable; try again later",
        )
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> ApiError {
        ApiError::new(e.status(), "invalid_json", e.body_text())
    }
}

/// The authenticated user, exactly as `/ws` decides it.
pub async fn user_of(app: &App, headers: &HeaderMap, query: &AuthQuery) -> Result<UserId, Response> {
    auth::check_origin(&app.config, headers).map_err(IntoResponse::into_response)?;
    let user = auth::authenticate(&app.config, headers, query).map_err(IntoResponse::into_response)?;
    app.store
        .ensure_user(&user)
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    Ok(user)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PreferencesView {
    time_zone: String,
    email: Option<String>,
    email_verified: bool,
    quiet_hours: Option<QuietHoursBody>,
    digest: DigestBody,
    channels: Channels,
    calendar_url: String,
    push_public_key: Option<String>,
}

async fn view(app: &App, user: &UserId, prefs: &Preferences) -> Result<PreferencesView, ApiError> {
    let links = app.links().await?;
    Ok(PreferencesView {
        time_zone: prefs.tz(app.config.tz()).name().to_owned(),
        email: prefs.email.clone(),
        email_verified: prefs.email_verified,
        quiet_hours: prefs.quiet_hours.map(|q| QuietHoursBody {
            start: q.start.format("%H:%M").to_string(),
            end: q.end.format("%H:%M").to_string(),
        }),
        digest: DigestBody {
            frequency: prefs.digest.frequency,
            weekday: prefs.digest.weekday.map(|w| w.to_string().to_lowercase()),
            time: Some(prefs.digest.time.format("%H:%M").to_string()),
        },
        channels: prefs.channels,
        calendar_url: links.calendar(user),
        push_public_key: app.pusher().await?.map(|p| p.public_key()),
    })
}

/// The user's preferences, calendar link and web-push key.
#[utoipa::path(get, path = "/api/preferences", tag = "preferences",
    responses((status = 200, body = PreferencesView), (status = 401, body = ErrorBody)))]
async fn get_preferences(State(app): State<App>, Query(q): Query<AuthQuery>, headers: HeaderMap) -> Response {
    let user = match user_of(&app, &headers, &q).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let result = async {
        let prefs = app.store.preferences(&user).await?;
        view(&app, &user, &prefs).await
    }
    .await;
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Changes preferences; absent fields stay, `null` clears email or quiet
/// hours; the whole update is checked before anything changes. A new
/// address gets a verification email and receives nothing else until its
/// link is opened. At most one verification email goes out per user per
/// ten minutes: a new address within that time is refused with 429
/// (`verification_rate_limited`, nothing changed); the address that email
/// went to is accepted without another email (its link still works).
#[utoipa::path(put, path = "/api/preferences", tag = "preferences", request_body = Update,
    responses((status = 200, body = PreferencesView), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 429, description = "`verification_rate_limited`: a verification email went to another address \
                                            less than ten minutes ago; nothing was changed", body = ErrorBody,
               headers(("retry-after" = u64, description = "Seconds until a verification email may be sent")))))]
async fn put_preferences(
    State(app): State<App>,
    Query(q): Query<AuthQuery>,
    headers: HeaderMap,
    body: Result<Json<Update>, JsonRejection>,
) -> Response {
    let user = match user_of(&app, &headers, &q).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    match update_preferences(&app, &user, body).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Validates the whole update before anything is written; a new address
/// is unverified until its link is opened, and gets a verification email.
async fn update_preferences(
    app: &App,
    user: &UserId,
    body: Result<Json<Update>, JsonRejection>,
) -> Result<PreferencesView, ApiError> {
    let Json(update) = body?;
    let current = app.store.preferences(user).await?;
    let (prefs, verify) =
        preferences::apply(&current, update).map_err(|e| ApiError::bad("invalid_field", e.to_string()))?;
    let now = app.now();
    let verify = match (verify, last_verification(app, user, now).await?) {
        (None, _) => None,
        (Some(address), None) => Some(address),
        // Sent to this very address a moment ago: that link still works.
        (Some(address), Some(last)) if last.to == address => None,
        (Some(_), Some(last)) => {
            let wait = (last.at + VERIFY_INTERVAL - now).to_std().unwrap_or_default();
            return Err(ApiError::too_many(
                "verification_rate_limited",
                format!(
                    "a verification email was sent less than ten minutes ago; try another address in {} s",
                    wait.as_secs().max(1)
                ),
                wait,
            ));
        }
    };
    save(app, user, &prefs).await?;
    if let Some(address) = verify {
        send_verification(app, user, &address, now).await?;
    }
    view(app, user, &prefs).await
}

/// At most one verification email per user per this long, whatever the
/// address: the server is not a way to mail strangers.
const VERIFY_INTERVAL: chrono::Duration = chrono::Duration::minutes(10);

/// A verification email sent less than [`VERIFY_INTERVAL`] ago.
struct Verification {
    to: String,
    at: chrono::DateTime<chrono::Utc>,
}

/// Verification rows are keyed by user and ten-minute slot; one sent in
/// the last ten minutes is in this slot or the one before.
fn verify_key(user: &UserId, slot: i64) -> String {
    format!("verify:{user}:{slot}")
}

fn verify_slot(at: chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp() / VERIFY_INTERVAL.num_seconds()
}

async fn last_verification(
    app: &App,
    user: &UserId,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Verification>, StoreError> {
    let slot = verify_slot(now);
    let mut last: Option<Verification> = None;
    for key in [verify_key(user, slot), verify_key(user, slot - 1)] {
        if let Some(item) = app.store.outbox_by_key(&key).await?
            && let crate::notification::Payload::Email(email) = item.payload
            && now - item.created_at < VERIFY_INTERVAL
            && last.as_ref().is_none_or(|l| l.at < item.created_at)
        {
            last = Some(Verification {
                to: email.to,
                at: item.created_at,
            });
        }
    }
    Ok(last)
}

/// Saves preferences and re-arms the digest to match them.
async fn save(app: &App, user: &UserId, prefs: &Preferences) -> Result<(), ApiError> {
    let now = app.now();
    let tz = prefs.tz(app.config.tz());
    scheduler::save_preferences(app.store.as_ref(), user, prefs, tz, now).await?;
    Ok(())
}

/// Queues a verification email (the caller checked [`VERIFY_INTERVAL`]).
async fn send_verification(
    app: &App,
    user: &UserId,
    address: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), ApiError> {
    let links = app.links().await?;
    let slot = verify_slot(now);
    let message_id = format!(
        "<verify.{slot}.{}@{}>",
        user.as_str().replace('@', "="),
        app.mail.domain
    );
    let email = app
        .mail
        .verification(address, &links.verify_email(user, address), message_id)
        .map_err(|e| {
            tracing::error!(error = %e, "could not render the verification email");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "could not prepare the verification email",
            )
        })?;
    let item = crate::notification::OutboxItem::new(
        user,
        verify_key(user, slot),
        crate::notification::Payload::Email(email),
        now,
    );
    // A concurrent request may have queued this slot's email first: then
    // that one goes out, never two.
    app.store.enqueue(vec![item]).await?;
    app.notifier_wake.notify_one();
    Ok(())
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct TokenQuery {
    /// The signed token from the link.
    token: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CalendarLinkBody {
    /// Subscribe to this URL in Google Calendar, Outlook or Apple Calendar.
    pub url: String,
}

/// The user's calendar-feed link.
#[utoipa::path(get, path = "/api/calendar", tag = "notifications",
    responses((status = 200, body = CalendarLinkBody), (status = 401, body = ErrorBody)))]
async fn calendar_link(State(app): State<App>, Query(q): Query<AuthQuery>, headers: HeaderMap) -> Response {
    let user = match user_of(&app, &headers, &q).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    match app.links().await {
        Ok(links) => Json(CalendarLinkBody {
            url: links.calendar(&user),
        })
        .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    // Fixed texts only: nothing from the request is echoed into the page.
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto\"><h1>{title}</h1><p>{text}</p></body></html>"
    );
    (status, Html(html)).into_response()
}

/// The user a signed token is for, if it checks out for `purpose`.
async fn token_user(app: &App, purpose: TokenPurpose, token: &str) -> Result<Option<(UserId, Preferences)>, ApiError> {
    let Some(user) = Links::claimed_user(token) else {
        return Ok(None);
    };
    let prefs = app.store.preferences(&user).await?;
    let bound = match purpose {
        TokenPurpose::VerifyEmail => prefs.email.clone().unwrap_or_default(),
        TokenPurpose::Unsubscribe | TokenPurpose::Calendar => String::new(),
    };
    let links = app.links().await?;
    Ok(links.check(purpose, token, &user, &bound).then_some((user, prefs)))
}

/// Confirms an address (the link in the verification email).
#[utoipa::path(get, path = "/api/email/verify", tag = "notifications", params(TokenQuery),
    responses((status = 200, description = "HTML page: confirmed", content_type = "text/html"),
              (status = 404, description = "HTML page: link not valid", content_type = "text/html")))]
async fn verify_email(State(app): State<App>, Query(q): Query<TokenQuery>) -> Response {
    match token_user(&app, TokenPurpose::VerifyEmail, &q.token).await {
        Ok(Some((user, mut prefs))) => {
            prefs.email_verified = true;
            match save(&app, &user, &prefs).await {
                Ok(()) => page(
                    StatusCode::OK,
                    "Email confirmed",
                    "steward will send your reminders and digests to this address. You can close this page.",
                ),
                Err(e) => e.into_response(),
            }
        }
        Ok(None) => page(
            StatusCode::NOT_FOUND,
            "Link not valid",
            "This confirmation link is not valid, or the address was changed since it was sent.",
        ),
        Err(e) => e.into_response(),
    }
}

/// Asks whether to stop emails (link scanners must not unsubscribe).
#[utoipa::path(get, path = "/api/email/unsubscribe", tag = "notifications", params(TokenQuery),
    responses((status = 200, description = "HTML form", content_type = "text/html"),
              (status = 404, description = "HTML page: link not valid", content_type = "text/html")))]
async fn unsubscribe_page(State(app): State<App>, Query(q): Query<TokenQuery>) -> Response {
    // GET only asks: link scanners open links, and must not unsubscribe.
    match token_user(&app, TokenPurpose::Unsubscribe, &q.token).await {
        Ok(Some(_)) => {
            let html = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Unsubscribe</title></head>\
                <body style=\"font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto\"><h1>Stop emails from steward?</h1>\
                <form method=\"post\"><button type=\"submit\">Stop all emails</button></form></body></html>";
            Html(html).into_response()
        }
        Ok(None) => page(
            StatusCode::NOT_FOUND,
            "Link not valid",
            "This unsubscribe link is not valid.",
        ),
        Err(e) => e.into_response(),
    }
}

/// One-click unsubscribe (RFC 8058) and the form above: email off.
#[utoipa::path(post, path = "/api/email/unsubscribe", tag = "notifications", params(TokenQuery),
    responses((status = 200, description = "HTML page: email is off", content_type = "text/html"),
              (status = 404, description = "HTML page: link not valid", content_type = "text/html")))]
async fn unsubscribe(State(app): State<App>, Query(q): Query<TokenQuery>) -> Response {
    match token_user(&app, TokenPurpose::Unsubscribe, &q.token).await {
        Ok(Some((user, mut prefs))) => {
            prefs.channels.email = false;
            match save(&app, &user, &prefs).await {
                Ok(()) => page(
                    StatusCode::OK,
                    "Unsubscribed",
                    "steward will not email you any more. Turn email back on in the chat widget's settings.",
                ),
                Err(e) => e.into_response(),
            }
        }
        Ok(None) => page(
            StatusCode::NOT_FOUND,
            "Link not valid",
            "This unsubscribe link is not valid.",
        ),
        Err(e) => e.into_response(),
    }
}

/// The iCalendar feed of the user's dated steps (the link from
/// `GET /api/calendar`).
#[utoipa::path(get, path = "/api/calendar/{file}", tag = "notifications",
    params(("file" = String, Path, description = "<token>.ics")),
    responses((status = 200, description = "iCalendar", content_type = "text/calendar"), (status = 404, body = ErrorBody)))]
async fn calendar_feed(State(app): State<App>, Path(file): Path<String>) -> Response {
    let Some(token) = file.strip_suffix(".ics") else {
        return ApiError::new(StatusCode::NOT_FOUND, "not_found", "calendar feeds end in .ics").into_response();
    };
    match token_user(&app, TokenPurpose::Calendar, token).await {
        Ok(Some((user, _))) => match app.store.list_plans(&user).await {
            Ok(plans) => (
                [(header::CONTENT_TYPE, "text/calendar; charset=utf-8")],
                calendar::feed(&plans, &app.mail.domain, app.now()),
            )
                .into_response(),
            Err(e) => ApiError::from(e).into_response(),
        },
        Ok(None) => ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such calendar").into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotificationsBody {
    pub notifications: Vec<crate::notification::NotificationView>,
}

/// The user's 50 most recent notifications, newest first.
#[utoipa::path(get, path = "/api/notifications", tag = "notifications",
    responses((status = 200, body = NotificationsBody), (status = 401, body = ErrorBody)))]
async fn notifications(State(app): State<App>, Query(q): Query<AuthQuery>, headers: HeaderMap) -> Response {
    let user = match user_of(&app, &headers, &q).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    match app.store.recent_notifications(&user, 50).await {
        Ok(list) => Json(NotificationsBody {
            notifications: list.iter().map(|n| n.view()).collect(),
        })
        .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PushKeyBody {
    /// The VAPID public key for `PushManager.subscribe({applicationServerKey})`.
    pub public_key: String,
}

#[utoipa::path(get, path = "/api/push/key", tag = "notifications",
    responses((status = 200, body = PushKeyBody), (status = 404, description = "push is off", body = ErrorBody)))]
async fn push_key(State(app): State<App>) -> Response {
    match app.pusher().await {
        Ok(Some(p)) => Json(PushKeyBody {
            public_key: p.public_key(),
        })
        .into_response(),
        Ok(None) => ApiError::new(
            StatusCode::NOT_FOUND,
            "push_disabled",
            "web push is turned off on this server",
        )
        .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The body `PushSubscription.toJSON()` produces in a browser.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SubscriptionBody {
    endpoint: String,
    keys: SubscriptionKeys,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SubscriptionKeys {
    p256dh: String,
    auth: String,
}

/// Stores a browser's push subscription (at most 10 per user).
#[utoipa::path(post, path = "/api/push/subscribe", tag = "notifications", request_body = SubscriptionBody,
    responses((status = 201, description = "subscribed"), (status = 400, body = ErrorBody)))]
async fn subscribe(
    State(app): State<App>,
    Query(q): Query<AuthQuery>,
    headers: HeaderMap,
    body: Result<Json<SubscriptionBody>, JsonRejection>,
) -> Response {
    let user = match user_of(&app, &headers, &q).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let result = async {
        let Json(body) = body?;
        let sub = PushSubscription {
            endpoint: body.endpoint,
            p256dh: body.keys.p256dh,
            auth: body.keys.auth,
        };
        push::validate(&sub, app.config.dev_mode()).map_err(|m| ApiError::bad("invalid_field", m))?;
        if app.store.push_subscriptions(&user).await?.len() >= 10 {
            return Err(ApiError::bad(
                "too_many_subscriptions",
                "at most 10 browsers per user; unsubscribe one first",
            ));
        }
        app.store.add_push_subscription(&user, &sub).await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => (StatusCode::CREATED, Json(serde_json::json!({"subscribed": true}))).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct EndpointBody {
    endpoint: String,
}

/// Forgets a browser's push subscription.
#[utoipa::path(delete, path = "/api/push/subscribe", tag = "notifications", request_body = EndpointBody,
    responses((status = 204, description = "removed"), (status = 400, body = ErrorBody)))]
async fn unsubscribe_push(
    State(app): State<App>,
    Query(q): Query<AuthQuery>,
    headers: HeaderMap,
    body: Result<Json<EndpointBody>, JsonRejection>,
) -> Response {
    let user = match user_of(&app, &headers, &q).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let result = async {
        let Json(body) = body?;
        app.store.remove_push_subscription(&user, &body.endpoint).await?;
        Ok::<_, ApiError>(())
    }
    .await;
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}
